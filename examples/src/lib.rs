//! Examples for the cni-rs workspace: small programs a newcomer reads first.
//!
//! # Layout
//!
//! - `src/bin/two-node.rs`: the README's main command and the place to start. The cluster
//!   of the "write your own CNI plugin in bash" walkthrough (two nodes on an underlay, three
//!   pods, an outside "internet") built in namespaces with `cni-testkit`'s topology and wired
//!   by our `bridge` + `host-local` + `portmap` binaries through `cni-proto`'s runtime, as a
//!   container runtime would; it prints the walkthrough's connectivity table, DELs every pod
//!   and proves nothing is left. `run` reads as its phases: runners per node, ADD, the
//!   connectivity checks, DEL.
//! - `src/bin/run-conflist.rs`: the same kind of chain (bridge + host-local + portmap) run
//!   from Rust with every plugin in-process (`cni-proto`'s `InProcessExec`): no plugin
//!   process; ADD, CHECK and DEL through the runtime, a ping from the node in between.
//! - `src/bin/mini-bridge.rs`: the plugin of that walkthrough (veth pair into the container,
//!   an address from a subnet, a default route via the node's bridge), in about a hundred
//!   lines on `cni-proto`'s skel and `cni-linux`'s netlink: how to write a plugin.
//! - `tests/two_node.rs`: the README's demo stays true with either firewall backend (every
//!   connectivity row passes, no namespace left behind).
//! - `tests/run_conflist.rs`: the in-process chain runs and leaves nothing cached.
//! - `tests/mini_bridge.rs`: mini-bridge tested with `cni-testkit`: two nodes, pods on each,
//!   traffic between them, nothing left behind, and the conformance suite.
