//! The bridge CNI plugin: a drop-in for the reference on a synchronous netlink path
