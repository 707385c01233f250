//! Examples for the cni-rs workspace: small programs a newcomer reads first.
//!
//! # Layout
//!
//! - `src/bin/mini-bridge.rs`: the plugin of the well-known "write your own CNI plugin in
//!   bash" walkthrough (veth pair into the container, an address from a subnet, a default
//!   route via the node's bridge), in about a hundred lines on `cni-proto`'s skel and
//!   `cni-linux`'s netlink.
//! - `tests/mini_bridge.rs`: its test with `cni-testkit`: two nodes, pods on each, traffic
//!   between them, nothing left behind, and the conformance suite.
