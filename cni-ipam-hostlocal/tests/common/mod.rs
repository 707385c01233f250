//! Helpers shared by the integration tests: run a host-local binary exactly as a runtime does
//! (CNI_* environment, config on stdin), temporary data directories, the Go reference binary.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use cni_types::{CniResult, Version};
use serde_json::Value;

/// Our binary.
pub fn ours() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_host-local"))
}

/// The Go reference binary from the Debian package (v1.1.1).
pub const GO_PATH: &str = "/usr/lib/cni/host-local";

/// The Go binary, or `None` (with the reason printed) when it is not installed; with `CI` set
/// a missing binary is a failure.
pub fn go() -> Option<PathBuf> {
    let p = PathBuf::from(GO_PATH);
    if p.exists() {
        return Some(p);
    }
    let why =
        format!("{GO_PATH} is missing (install the Debian package containernetworking-plugins)");
    if cni_testkit::privilege::in_ci() {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
    None
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "hl-it-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn s(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a plugin run produced.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        self
    }

    pub fn result(&self) -> CniResult {
        self.ok();
        CniResult::from_slice(self.stdout.as_bytes(), None).expect("a result")
    }

    /// The error JSON of a failed run.
    pub fn err(&self) -> cni_types::Error {
        assert_ne!(self.code, 0, "expected failure: {self:?}");
        serde_json::from_str(&self.stdout).expect("error JSON")
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).expect("JSON")
    }
}

/// One plugin invocation.
pub struct Call<'a> {
    pub bin: &'a Path,
    pub command: &'a str,
    pub id: &'a str,
    pub ifname: &'a str,
    pub args: &'a str,
}

impl<'a> Call<'a> {
    pub fn new(bin: &'a Path, command: &'a str, id: &'a str) -> Self {
        Call {
            bin,
            command,
            id,
            ifname: "eth0",
            args: "",
        }
    }

    pub fn ifname(mut self, ifname: &'a str) -> Self {
        self.ifname = ifname;
        self
    }

    pub fn args(mut self, args: &'a str) -> Self {
        self.args = args;
        self
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(self.bin);
        c.env_clear()
            .env("CNI_COMMAND", self.command)
            .env("CNI_PATH", "/usr/lib/cni")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if matches!(self.command, "ADD" | "DEL" | "CHECK") {
            c.env("CNI_CONTAINERID", self.id)
                .env("CNI_IFNAME", self.ifname);
        }
        if matches!(self.command, "ADD" | "CHECK") {
            c.env("CNI_NETNS", "/var/run/netns/none");
        }
        if !self.args.is_empty() {
            c.env("CNI_ARGS", self.args);
        }
        c
    }

    pub fn run(&self, stdin: &str) -> Out {
        let mut child = self.command().spawn().expect("spawn plugin");
        // VERSION does not read stdin: the plugin may exit before the write.
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes());
        let o = child.wait_with_output().expect("wait plugin");
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A network config with `ipam` built from `ipam_extra` (JSON object members, without braces).
pub fn conf(version: Version, name: &str, data_dir: &str, ipam_extra: &str) -> String {
    format!(
        r#"{{"cniVersion":"{version}","name":"{name}","type":"ipvlan","master":"foo0",
            "ipam":{{"type":"host-local","dataDir":"{data_dir}",{ipam_extra}}}}}"#
    )
}

/// Read a file as a string.
pub fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p.as_ref())
        .unwrap_or_else(|e| panic!("read {}: {e}", p.as_ref().display()))
}

/// Names of the reservation files (named by an address) in a store directory.
pub fn reservations(dir: impl AsRef<Path>) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir.as_ref()) {
        Err(_) => Vec::new(),
        Ok(rd) => rd
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
            .collect(),
    };
    v.sort();
    v
}
