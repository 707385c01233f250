//! The config reaches a plugin whole, whatever its size: a small one written at once (no
//! writer thread), a big one (past any pipe's capacity) partly on a helper thread, also when
//! the plugin prints a lot before it reads its input, and when it never reads it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cni_proto::exec::ProcessExec;
use cni_proto::{Command, Env};

struct Scripts(PathBuf);

impl Scripts {
    fn new(tag: &str) -> Scripts {
        let dir =
            std::env::temp_dir().join(format!("cni-proto-exec-stdin-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scripts(dir)
    }

    fn script(&self, name: &str, body: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }
}

impl Drop for Scripts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(p: &Path, stdin: &[u8]) -> Vec<u8> {
    let env = Env::new().with("PATH", "/usr/bin:/bin");
    ProcessExec.exec_path(p, Command::Add, stdin, &env).unwrap()
}

/// `len` bytes that are not all alike, so a lost or repeated chunk shows.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 23) as u8).collect()
}

#[test]
fn every_size_of_config_arrives_whole() {
    let s = Scripts::new("echo");
    let echo = s.script("echo", "exec cat");
    for len in [0, 1, 100, 4096, 65_535, 65_536, 65_537, 1 << 20] {
        let data = payload(len);
        let out = run(&echo, &data);
        assert_eq!(out.len(), data.len(), "length {len}");
        assert!(out == data, "content of length {len}");
    }
}

#[test]
fn a_plugin_printing_before_reading_does_not_deadlock() {
    let s = Scripts::new("chatty");
    // 1 MiB out before a byte is read, then the input's size.
    let chatty = s.script(
        "chatty",
        "head -c 1048576 /dev/zero; wc -c | tr -d ' \\n' | sed 's/^/\\nread:/'",
    );
    let data = payload(3 << 20);
    let out = run(&chatty, &data);
    let tail = String::from_utf8_lossy(&out[1 << 20..]).into_owned();
    assert_eq!(tail, format!("\nread:{}", data.len()));
}

#[test]
fn a_plugin_that_never_reads_its_input_is_not_an_error() {
    let s = Scripts::new("deaf");
    let deaf = s.script("deaf", "exec printf ok");
    for len in [10, 1 << 20] {
        assert_eq!(run(&deaf, &payload(len)), b"ok", "length {len}");
    }
}
