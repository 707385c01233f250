//! Linux plumbing for CNI plugins.

pub mod conntrack;
pub mod firewall;
pub mod netlink;
pub mod netns;
pub mod sysctl;
