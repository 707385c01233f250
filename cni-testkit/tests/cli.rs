//! The `cni-conformance` binary: report on stdout, exit codes 0 / 1 / 2.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] functions

use std::path::PathBuf;
use std::process::Command;

use cni_testkit::{TempDir, bins, require_root};

const BIN: &str = env!("CARGO_BIN_EXE_cni-conformance");

fn faulty(dir: &TempDir, name: &str) -> PathBuf {
    let link = dir.join(name);
    std::os::unix::fs::symlink(bins::example_bin("faulty-plugin").expect(
            "the faulty-plugin example: `cargo test -p cni-testkit` builds it (or `cargo build -p cni-testkit --examples`)",
        ), &link).unwrap();
    link
}

fn config(dir: &TempDir) -> PathBuf {
    let path = dir.join("faulty.json");
    std::fs::write(
        &path,
        r#"{"cniVersion":"1.1.0","name":"faulty","type":"faulty","ipam":{}}"#,
    )
    .unwrap();
    path
}

#[test]
fn exit_code_is_1_on_a_fail_and_0_otherwise() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("cli").unwrap();
    let conf = config(&dir);
    for (name, code) in [("leaky", 1), ("conformant", 0)] {
        let out = Command::new(BIN)
            .args(["--plugin", faulty(&dir, name).to_str().unwrap()])
            .args(["--config", conf.to_str().unwrap(), "--versions", "1.1.0"])
            .args(["--only", "del-cleans-up,version"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(code), "{name}:\n{text}");
        assert!(text.starts_with("cni-conformance: "), "{text}");
        assert!(text.contains("PASS  version"), "{text}");
        let line = if code == 1 {
            "FAIL  del-cleans-up/1.1.0"
        } else {
            "PASS  del-cleans-up/1.1.0"
        };
        assert!(text.contains(line), "{text}");
    }
}

#[test]
fn json_output_parses() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("cli").unwrap();
    let out = Command::new(BIN)
        .args(["--plugin", faulty(&dir, "conformant").to_str().unwrap()])
        .args(["--config", config(&dir).to_str().unwrap()])
        .args(["--versions", "1.0.0", "--only", "add", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["results"][0]["check"], "add/1.0.0");
    assert_eq!(v["summary"]["passed"], true);
}

#[test]
fn unusable_inputs_exit_2() {
    let dir = TempDir::new("cli").unwrap();
    let out = Command::new(BIN)
        .args([
            "--plugin",
            "/nonexistent/plugin",
            "--config",
            config(&dir).to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    let out = Command::new(BIN)
        .args(["--plugin", "/bin/sh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap usage error");
}
