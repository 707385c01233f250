//! Shared helpers for the privileged integration tests: throw-away named namespaces that are
//! removed on drop (also when a test panics), running code or commands inside them, and the
//! root and tool checks.
//!
//! Everything privileged happens inside namespaces created here: closures run on the calling
//! thread, which enters the namespace and comes back ([`TestNs::run`]), commands through
//! `ip netns exec <name>` ([`TestNs::cmd`]). The machine's own root namespace (links, routes,
//! sysctls, firewall) is never changed.

#![allow(dead_code, clippy::expect_used)]

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use cni_linux::netlink::Handle;
use cni_linux::netns::NetNs;

// "Is CI set?": cni-testkit depends on this crate, so these tests cannot use its rule; the one
// copy for the crates below it lives with cni-types' tests (and cni-testkit checks it).
#[path = "../../../cni-types/tests/common/ci.rs"]
mod ci;
pub use ci::in_ci;

/// True when the tests can run. Without root they print why and return early, except under
/// `CI`, where skipping would hide failures: then they panic.
pub fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let why = "privileged test needs root (network namespaces, links, mounts)";
    if in_ci() {
        panic!("{why}, and CI is set");
    }
    eprintln!("skipping: {why}");
    false
}

/// Like [`require_root`], and also requires the binary `name` in `PATH`.
pub fn require_tool(name: &str) -> bool {
    if !require_root() {
        return false;
    }
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    if found {
        return true;
    }
    let why = format!("test needs `{name}` in PATH");
    if in_ci() {
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

    /// Runs `f` inside the namespace (the calling thread enters it and comes back).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.ns.run(f).expect("enter test namespace")
    }

    /// Runs `argv` inside the namespace (`ip netns exec <name> argv...`).
    pub fn cmd(&self, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .output()
            .expect("run ip netns exec")
    }

    /// Runs `argv` inside the namespace, asserts success and returns stdout.
    pub fn ok(&self, argv: &[&str]) -> String {
        let out = self.cmd(argv);
        assert!(
            out.status.success(),
            "{argv:?} failed in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a shell script inside the namespace, asserts success and returns stdout.
    pub fn sh(&self, script: &str) -> String {
        self.ok(&["sh", "-c", script])
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        if let Err(e) = NetNs::delete_named(&self.name) {
            eprintln!("cleanup of namespace {} failed: {e}", self.name);
        }
    }
}

/// Whether `iptables` in `ns` is iptables-nft, which the iptables-nft reader and writer tests
/// are about. Where it is not (a node on iptables-legacy) they print why and return, except
/// under CI, whose machines run Debian's iptables-nft: there a skip would hide the whole
/// reader and writer, so it fails.
pub fn iptables_is_nft(ns: &TestNs) -> bool {
    if ns.ok(&["iptables", "--version"]).contains("nf_tables") {
        return true;
    }
    let why = "iptables is not iptables-nft here: nothing to compare";
    if in_ci() {
        panic!("{why}, and CI is set");
    }
    eprintln!("skipping: {why}");
    false
}

/// `iptables<what>` or `ip6tables<what>` (`what`: "", "-save", "-restore") for `fam`.
pub fn ipt_bin(fam: cni_linux::firewall::IpFamily, what: &str) -> String {
    match fam {
        cni_linux::firewall::IpFamily::V4 => format!("iptables{what}"),
        cni_linux::firewall::IpFamily::V6 => format!("ip6tables{what}"),
    }
}
