//! Reads that used to be unbounded stop one byte past 16 MiB with a clear error: a plugin's
//! stdin (the skel) and a delegated plugin's stdout (a real process).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::os::unix::fs::PermissionsExt;

use cni_proto::exec::ProcessExec;
use cni_proto::limit::READ_LIMIT;
use cni_proto::skel::{self, Plugin, Request};
use cni_proto::{Command, Env};
use cni_types::{CniResult, Error};

struct Noop;

impl Plugin for Noop {
    fn add(&self, _req: &Request) -> Result<CniResult, Error> {
        Ok(CniResult::default())
    }
    fn del(&self, _req: &Request) -> Result<(), Error> {
        Ok(())
    }
}

fn del_env() -> Env {
    Env::new()
        .with("CNI_COMMAND", "DEL")
        .with("CNI_CONTAINERID", "c1")
        .with("CNI_IFNAME", "eth0")
        .with("CNI_PATH", "/nonexistent")
}

/// A valid config padded with whitespace (still valid JSON) to `len` bytes.
fn padded_config(len: u64) -> impl Read {
    let conf = br#"{"cniVersion":"1.0.0","name":"n","type":"noop"}"#;
    let pad = len - conf.len() as u64;
    conf.as_slice().chain(std::io::repeat(b' ').take(pad))
}

#[test]
fn skel_stdin_past_the_limit_is_an_io_failure() {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = skel::run(
        &Noop,
        &del_env(),
        &mut padded_config(READ_LIMIT + 1),
        &mut out,
        &mut err,
    );
    assert_eq!(code, 1);
    let e: Error = serde_json::from_slice(&out).unwrap();
    assert_eq!(e.code(), 5, "{e:?}");
    assert_eq!(
        e.msg,
        format!("error reading from stdin: more than {READ_LIMIT} bytes")
    );

    // At the limit the same config is accepted.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = skel::run(
        &Noop,
        &del_env(),
        &mut padded_config(READ_LIMIT),
        &mut out,
        &mut err,
    );
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));
}

#[test]
fn a_delegated_plugins_stdout_past_the_limit_is_an_error() {
    let dir = std::env::temp_dir().join(format!("cni-proto-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = |name: &str, body: String| {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    };
    // One byte too many, and a plugin that never stops printing.
    let big = script(
        "big",
        format!("cat >/dev/null; exec head -c {} /dev/zero", READ_LIMIT + 1),
    );
    let endless = script("endless", "exec yes".into());
    let env = Env::new().with("PATH", "/usr/bin:/bin");
    let results: Vec<_> = [big, endless]
        .iter()
        .map(|p| ProcessExec.exec_path(p, Command::Add, b"{}", &env))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    for r in results {
        let e = r.unwrap_err();
        assert_eq!(e.code(), 5, "{e:?}");
        assert!(
            e.msg.contains(&format!("more than {READ_LIMIT} bytes")),
            "{e:?}"
        );
    }
}
