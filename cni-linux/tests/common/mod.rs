//! Shared helpers for the privileged integration tests: throw-away named namespaces that are
//! removed on drop (also when a test panics), and the root check.
//!
//! Everything privileged happens inside namespaces created here; the machine's own root
//! namespace is never changed.

#![allow(dead_code, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use cni_linux::netlink::Handle;
use cni_linux::netns::NetNs;

/// True when the tests can run. Without root they print why and return early, except under
/// `CI`, where skipping would hide failures: then they panic.
pub fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let why = "privileged test needs root (network namespaces, links, mounts)";
    if std::env::var_os("CI").is_some() {
        panic!("{why}, and CI is set");
    }
    eprintln!("skipping: {why}");
    false
}

/// A uniquely named namespace under /run/netns, deleted on drop.
pub struct TestNs {
    /// The name under /run/netns.
    pub name: String,
    /// An open handle on it.
    pub ns: NetNs,
}

impl TestNs {
    /// Creates `cnil-<tag>-<pid>-<n>`.
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("cnil-{tag}-{}-{n}", std::process::id());
        let ns = NetNs::create_named(&name).expect("create test namespace");
        TestNs { name, ns }
    }

    /// A netlink handle operating inside this namespace.
    pub fn handle(&self) -> Handle {
        Handle::new_in(&self.ns).expect("netlink handle in test namespace")
    }

    /// The namespace path.
    pub fn path(&self) -> std::path::PathBuf {
        self.ns.path().to_path_buf()
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        if let Err(e) = NetNs::delete_named(&self.name) {
            eprintln!("cleanup of namespace {} failed: {e}", self.name);
        }
    }
}
