//! Replays the tuning requests podman 4.3 made (cni-types/tests/fixtures/podman-4.3) against
//! our tuning: the recorded config bytes and CNI_ARGS, with only the namespace path replaced
//! and a private `dataDir` added. Results must equal the recorded ones; DEL must restore.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cni_testkit::Invocation;
use cni_testkit::cni_types::{Version, VersionInfo};
use common::{Pod, here};
use serde_json::Value;

fn vector(path: &str) -> Option<Value> {
    let p = here("../cni-types/tests/fixtures/podman-4.3").join(path);
    match std::fs::read(&p) {
        Ok(b) => Some(serde_json::from_slice(&b).unwrap()),
        Err(e) => {
            cni_testkit::privilege::skip_or_fail(&format!(
                "vector {} not readable: {e}",
                p.display()
            ));
            None
        }
    }
}

/// The vector's text with its namespace path replaced by the pod's, parsed, with our
/// `dataDir` (podman uses the default `/run/cni/tuning`, which is the machine's).
fn replace_netns(v: &Value, p: &Pod, field: &str) -> Value {
    let recorded_ns = v["env"]["CNI_NETNS"].as_str().unwrap();
    let text = match &v[field] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let text = text.replace(recorded_ns, &p.pod.path().display().to_string());
    serde_json::from_str(&text).unwrap()
}

fn stdin_of(v: &Value, p: &Pod) -> Value {
    let mut c = replace_netns(v, p, "stdin_raw");
    c["dataDir"] = Value::from(p.data.path().display().to_string());
    c
}

fn run(p: &Pod, v: &Value) -> cni_testkit::process::Output {
    let env = &v["env"];
    let att = cni_testkit::Attachment::new(
        env["CNI_CONTAINERID"].as_str().unwrap(),
        p.pod.path(),
        "eth0",
    )
    .with_args(env["CNI_ARGS"].as_str().unwrap());
    let inv = Invocation::new(v["command"].as_str().unwrap(), &stdin_of(v, p), Some(&att));
    p.ours().invoke(&inv).unwrap()
}

/// ADD then DEL of one scenario; the result must be the recorded one (an empty `dns` the
/// reference printed is omitted in 1.0.0) and DEL must leave eth0 as it was.
fn replay(dir: &str) {
    let (Some(add), Some(del)) = (
        vector(&format!("{dir}/05-tuning-ADD.json")),
        vector(&format!("{dir}/06-tuning-DEL.json")),
    ) else {
        return;
    };
    let Some(p) = Pod::new() else { return };
    let before = p.eth0();
    let out = run(&p, &add);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let ours: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut recorded = replace_netns(&add, &p, "stdout");
    if recorded["dns"] == serde_json::json!({}) {
        recorded.as_object_mut().unwrap().remove("dns");
    }
    assert_eq!(ours, recorded, "{dir}");
    // The container's MAC is the one the result reports.
    let mac = recorded["interfaces"][2]["mac"].as_str().unwrap();
    let eth0 = p.eth0();
    if add["env"]["CNI_ARGS"].as_str().unwrap().contains("MAC=") {
        assert_eq!(
            cni_testkit::cni_linux::netlink::mac::format(&eth0.mac.unwrap()),
            mac
        );
        assert!(
            p.data
                .join(format!(
                    "{}_eth0.json",
                    add["env"]["CNI_CONTAINERID"].as_str().unwrap()
                ))
                .exists()
        );
    } else {
        assert_eq!(
            eth0.mac, before.mac,
            "podman's tuning has no options: nothing changes"
        );
    }
    let out = run(&p, &del);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.stdout.is_empty());
    let after = p.eth0();
    assert_eq!(
        (after.mac, after.mtu, after.promisc),
        (before.mac, before.mtu, before.promisc)
    );
    assert_eq!(
        std::fs::read_dir(p.data.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_file())
            .count(),
        0
    );
}

#[test]
fn podman_run_with_a_port() {
    replay("s1-run-with-port-18080");
}

#[test]
fn podman_static_ip_and_mac() {
    replay("s2-static-ip-mac-multi-ports");
}

#[test]
fn podman_bridge_del_fails() {
    replay("s4-bridge-DEL-fails");
}

#[test]
fn podman_del_without_add_and_without_prev_result() {
    let Some(v) = vector("s3-add-fails-at-portmap-then-DEL-without-prevResult/04-tuning-DEL.json")
    else {
        return;
    };
    let Some(p) = Pod::new() else { return };
    let before = p.eth0();
    let out = run(&p, &v);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.stdout.is_empty());
    assert_eq!(p.eth0(), before);
}

#[test]
fn podman_version_probe() {
    let Some(v) = vector("s0-version/04-tuning-VERSION.json") else {
        return;
    };
    if !cni_testkit::require_root() {
        return;
    }
    let runner = cni_testkit::PluginRunner::new(cni_testkit::bins::our_plugin("tuning").unwrap());
    let ours: VersionInfo = runner.version(Version::V1_0_0).unwrap();
    let recorded: VersionInfo = serde_json::from_value(v["stdout"].clone()).unwrap();
    // Each speaks its newest version (v1.1.1: 1.0.0; ours: 1.1.0), and ours every one the
    // reference lists.
    assert!(ours.cni_version >= recorded.cni_version);
    for version in &recorded.supported_versions {
        assert!(ours.supported_versions.contains(version), "{version}");
    }
}
