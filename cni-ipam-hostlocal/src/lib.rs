//! host-local IPAM: a drop-in for the reference plugin, with GC and STATUS
