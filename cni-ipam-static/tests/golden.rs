//! The plugin driven in-process through the skel (environment, stdin and stdout passed in):
//! ADD prints, byte for byte, what the Go reference `static` v1.1.1 prints for the same input
//! at every version both support (the files in `tests/golden/` were captured from it; 1.1.0,
//! which it does not support, is its 1.0.0 output under the new version), and errors come out
//! as the spec's error JSON.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use cni_ipam_static::StaticPlugin;
use cni_proto::{Env, skel};
use cni_types::Version;

const CONF: &str = r#"{"cniVersion":"V","name":"n","ipam":{"type":"static",
    "addresses":[{"address":"10.10.0.1/24","gateway":"10.10.0.254"},{"address":"3ffe:ffff:0:01ff::1/64"}],
    "routes":[{"dst":"0.0.0.0/0"},{"dst":"3ffe::/16","gw":"3ffe:ffff:0:1ff::fe"}],
    "dns":{"nameservers":["8.8.8.8"],"domain":"example.com","search":["example.com"],"options":["ndots:2"]}}}"#;

/// Run one verb in-process; the exit code and stdout.
fn run(command: &str, conf: &str, args: &str) -> (i32, String) {
    let env = Env::new()
        .with("CNI_COMMAND", command)
        .with("CNI_CONTAINERID", "ctr")
        // Never opened by static; the skel only checks it is not the plugin's own namespace.
        .with("CNI_NETNS", "/run/netns/static-golden-test")
        .with("CNI_IFNAME", "eth0")
        .with("CNI_PATH", "/opt/cni/bin")
        .with("CNI_ARGS", args);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = skel::run(
        &StaticPlugin,
        &env,
        &mut conf.as_bytes(),
        &mut out,
        &mut err,
    );
    (code, String::from_utf8(out).unwrap())
}

#[test]
fn add_prints_what_the_reference_prints_at_every_version() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for v in Version::ALL {
        let want = std::fs::read_to_string(dir.join(format!("add-{v}.json"))).unwrap();
        let (code, got) = run("ADD", &CONF.replace("\"V\"", &format!("\"{v}\"")), "");
        assert_eq!(code, 0, "{v}: {got}");
        assert_eq!(got, want, "{v}");
    }
}

#[test]
fn errors_are_the_spec_error_json() {
    let conf = CONF.replace("\"V\"", "\"1.0.0\"");
    let (code, out) = run("ADD", &conf, "IP=10.1.0.5");
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "{\n    \"code\": 4,\n    \"msg\": \"the 'ip' field is expected to be in CIDR notation, got: '10.1.0.5'\"\n}"
    );
    let (code, out) = run(
        "ADD",
        r#"{"cniVersion":"1.0.0","name":"n","type":"bridge"}"#,
        "",
    );
    assert_eq!(
        (code, out.contains("IPAM config missing 'ipam' key")),
        (1, true)
    );
    // Zero addresses cannot be printed as a 0.2.0 result.
    let (code, out) = run(
        "ADD",
        r#"{"cniVersion":"0.2.0","name":"n","ipam":{"type":"static"}}"#,
        "",
    );
    assert_eq!(
        (code, out.contains("cannot convert: no valid IP addresses")),
        (1, true)
    );
}

#[test]
fn del_gc_status_succeed_and_check_compares_with_prev_result() {
    let conf = CONF.replace("\"V\"", "\"1.1.0\"");
    assert_eq!(run("DEL", &conf, ""), (0, String::new()));
    // DEL reads nothing from the config: one ADD refuses still deletes.
    assert_eq!(
        run("DEL", r#"{"cniVersion":"1.1.0","name":"n"}"#, "IP=bad").0,
        0
    );
    assert_eq!(run("GC", &conf, ""), (0, String::new()));
    assert_eq!(run("STATUS", &conf, ""), (0, String::new()));

    let (_, result) = run("ADD", &conf, "");
    let mut with_prev: serde_json::Value = serde_json::from_str(&conf).unwrap();
    with_prev["prevResult"] = serde_json::from_str(&result).unwrap();
    assert_eq!(run("CHECK", &with_prev.to_string(), "").0, 0);
    with_prev["prevResult"]["ips"][0]["gateway"] = "10.10.0.1".into();
    let (code, out) = run("CHECK", &with_prev.to_string(), "");
    assert_eq!(code, 1);
    assert!(
        out.contains("static: Failed to match addr 10.10.0.1 on interface eth0"),
        "{out}"
    );
    let (code, out) = run("CHECK", &conf, "");
    assert_eq!(
        (code, out.contains("Required prevResult missing")),
        (1, true)
    );
}

#[test]
fn version() {
    let (code, out) = run("VERSION", "{}", "");
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "{\"cniVersion\":\"1.1.0\",\"supportedVersions\":[\"0.1.0\",\"0.2.0\",\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]}\n"
    );
}
