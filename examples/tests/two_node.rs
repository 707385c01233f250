//! The README's demo stays true: `two-node` wires both nodes, every connectivity row passes,
//! and it leaves no namespace behind, with either firewall backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};

fn run(backend: &str) {
    if !cni_testkit::require_root() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_two-node");
    let child = Command::new(bin)
        .args(["--backend", backend])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("9/9 connectivity checks passed"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    // The test kit names namespaces `cnitk-<hint>-<pid>-...`: none of the demo's may remain.
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap().stdout;
    let left: Vec<_> = String::from_utf8_lossy(&list)
        .lines()
        .filter(|l| l.contains(&format!("-{pid}-")))
        .map(str::to_string)
        .collect();
    assert!(left.is_empty(), "namespaces left by the demo: {left:?}");
}

#[test]
fn two_node_demo_with_iptables() {
    run("iptables");
}

#[test]
fn two_node_demo_with_nftables() {
    run("nftables");
}
