//! The portmap CNI plugin: host port mappings with iptables or nftables
