//! Delegation to plugins found in CNI_PATH, run as real processes (small shell scripts).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use cni_proto::exec::{ProcessExec, find_in_path};
use cni_proto::{Env, delegate};

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn plugins() -> Dir {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("cni-proto-delegate-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let script = |name: &str, body: &str| {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    // Echoes the verb, the container ID and stdin's name into the result.
    script(
        "ipam-ok",
        r#"name=$(cat | sed 's/.*"name":"\([^"]*\)".*/\1/')
printf '{"ips":[{"address":"10.0.0.2/24","gateway":"10.0.0.1"}],"dns":{"domain":"%s","search":["%s","%s"]}}' "$CNI_COMMAND" "$CNI_CONTAINERID" "$name""#,
    );
    script(
        "ipam-fail",
        r#"cat >/dev/null; printf '{"code":11,"msg":"try later","details":"busy"}'; exit 1"#,
    );
    script("ipam-garbage", "cat >/dev/null; echo oops; exit 2");
    script("ipam-silent", "exit 3");
    Dir(dir)
}

fn env(dir: &Dir) -> Env {
    Env::new()
        .with("CNI_PATH", format!("/nonexistent:{}", dir.0.display()))
        .with("CNI_CONTAINERID", "ctr1")
        .with("PATH", "/usr/bin:/bin")
}

const CONF: &[u8] =
    br#"{"cniVersion":"0.4.0","name":"dnet","type":"bridge","ipam":{"type":"ipam-ok"}}"#;

#[test]
fn add_parses_the_result_with_the_config_version() {
    let d = plugins();
    let res = delegate::add(&ProcessExec, "ipam-ok", CONF, &env(&d)).unwrap();
    assert_eq!(
        res.cni_version.to_string(),
        "0.4.0",
        "no cniVersion: the config's is used"
    );
    assert_eq!(res.ips[0].address.to_string(), "10.0.0.2/24");
    assert_eq!(res.dns.domain, "ADD", "CNI_COMMAND overridden to the verb");
    assert_eq!(res.dns.search, vec!["ctr1", "dnet"], "same env and stdin");
    delegate::del(&ProcessExec, "ipam-ok", CONF, &env(&d)).unwrap();
    delegate::check(&ProcessExec, "ipam-ok", CONF, &env(&d)).unwrap();
}

#[test]
fn plugin_errors_come_back_typed() {
    let d = plugins();
    let e = delegate::add(&ProcessExec, "ipam-fail", CONF, &env(&d)).unwrap_err();
    assert_eq!(e.code.code(), 11);
    assert_eq!(e.msg, "try later");
    assert_eq!(e.details, "busy");
    let e = delegate::del(&ProcessExec, "ipam-garbage", CONF, &env(&d)).unwrap_err();
    assert!(
        e.msg
            .starts_with("netplugin failed but error parsing its diagnostic message \"oops\\n\""),
        "{}",
        e.msg
    );
    let e = delegate::del(&ProcessExec, "ipam-silent", CONF, &env(&d)).unwrap_err();
    assert!(
        e.msg.starts_with("netplugin failed with no error message"),
        "{}",
        e.msg
    );
}

#[test]
fn lookup_in_cni_path() {
    let d = plugins();
    let e = delegate::add(&ProcessExec, "missing", CONF, &env(&d)).unwrap_err();
    assert!(
        e.msg
            .starts_with("failed to find plugin \"missing\" in path [/nonexistent "),
        "{}",
        e.msg
    );
    assert!(
        find_in_path("../ipam-ok", std::slice::from_ref(&d.0)).is_err(),
        "no path separators in a type"
    );
    assert!(find_in_path("ipam-ok", &[]).is_err());
    assert_eq!(
        find_in_path("ipam-ok", std::slice::from_ref(&d.0)).unwrap(),
        d.0.join("ipam-ok")
    );
}
