//! Replays the firewall requests podman 4.3 made (cni-types/tests/fixtures/podman-4.3) against
//! our firewall in a throw-away node namespace: the recorded config bytes and CNI_ARGS, with
//! the namespace path replaced and a private `dataDir` added. ADD must print the recorded
//! result and install the pod's rules; DEL must remove them; DEL without prevResult (podman
//! after a failed ADD) must succeed and touch nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use cni_testkit::cni_types::{Version, VersionInfo};
use cni_testkit::{Attachment, Invocation, PluginRunner, TempDir, TempNetns, bins};
use serde_json::Value;

fn vector(path: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cni-types/tests/fixtures/podman-4.3")
        .join(path);
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

struct Node {
    node: TempNetns,
    pod: TempNetns,
    data: TempDir,
    ours: PluginRunner,
}

impl Node {
    fn new() -> Option<Node> {
        if !cni_testkit::require_root() {
            return None;
        }
        let node = TempNetns::new("fwp-node").unwrap();
        let ours = PluginRunner::new(bins::our_plugin("firewall").unwrap())
            .in_netns(&node)
            .unwrap();
        Some(Node {
            node,
            pod: TempNetns::new("fwp-pod").unwrap(),
            data: TempDir::new("fwp").unwrap(),
            ours,
        })
    }

    /// The vector's `field` with the recorded namespace path replaced by ours.
    fn replaced(&self, v: &Value, field: &str) -> Value {
        let recorded_ns = v["env"]["CNI_NETNS"].as_str().unwrap();
        let text = match &v[field] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let text = text.replace(recorded_ns, &self.pod.path().display().to_string());
        serde_json::from_str(&text).unwrap()
    }

    fn run(&self, v: &Value) -> cni_testkit::process::Output {
        let env = &v["env"];
        let mut stdin = self.replaced(v, "stdin_raw");
        stdin["dataDir"] = Value::from(self.data.path().display().to_string());
        let att = Attachment::new(
            env["CNI_CONTAINERID"].as_str().unwrap(),
            self.pod.path(),
            env["CNI_IFNAME"].as_str().unwrap(),
        )
        .with_args(env["CNI_ARGS"].as_str().unwrap());
        let inv = Invocation::new(v["command"].as_str().unwrap(), &stdin, Some(&att));
        self.ours.invoke(&inv).unwrap()
    }

    fn filter(&self) -> String {
        self.node
            .exec_ok("iptables-save", &["-t", "filter"])
            .unwrap()
            .stdout_text()
    }
}

fn pod_addrs(v: &Value) -> Vec<String> {
    v["stdin"]["prevResult"]["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let a = i["address"].as_str().unwrap();
            format!("{}/32", &a[..a.find('/').unwrap()])
        })
        .collect()
}

fn replay(dir: &str, add: &str, del: &str) {
    let Some(n) = Node::new() else { return };
    let add = vector(&format!("{dir}/{add}"));
    let del = vector(&format!("{dir}/{del}"));
    let out = n.run(&add);
    assert!(
        out.status.success(),
        "{dir}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let ours: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut recorded = n.replaced(&add, "stdout");
    if recorded["dns"] == serde_json::json!({}) {
        recorded.as_object_mut().unwrap().remove("dns");
    }
    assert_eq!(ours, recorded, "{dir}");
    let rules = n.filter();
    for a in pod_addrs(&add) {
        assert!(
            rules.contains(&format!("-A CNI-FORWARD -s {a} -j ACCEPT")),
            "{dir}: {a} not accepted:\n{rules}"
        );
    }
    let out = n.run(&del);
    assert!(out.status.success(), "{dir}: DEL failed");
    assert!(out.stdout.is_empty(), "{dir}: DEL printed something");
    let rules = n.filter();
    for a in pod_addrs(&add) {
        assert!(!rules.contains(&a), "{dir}: {a} left:\n{rules}");
    }
}

#[test]
fn run_with_port() {
    replay(
        "s1-run-with-port-18080",
        "04-firewall-ADD.json",
        "07-firewall-DEL.json",
    );
}

#[test]
fn static_ip_mac_multi_ports() {
    replay(
        "s2-static-ip-mac-multi-ports",
        "04-firewall-ADD.json",
        "07-firewall-DEL.json",
    );
}

#[test]
fn bridge_del_fails() {
    replay(
        "s4-bridge-DEL-fails",
        "04-firewall-ADD.json",
        "07-firewall-DEL.json",
    );
}

/// Podman sends DEL without prevResult to a firewall that never got an ADD: success, and
/// the node's filter table is untouched.
#[test]
fn del_without_prev_result_after_a_failed_add() {
    let Some(n) = Node::new() else { return };
    let before = n.filter();
    let del = vector("s3-add-fails-at-portmap-then-DEL-without-prevResult/05-firewall-DEL.json");
    let out = n.run(&del);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    assert_eq!(n.filter(), before);
}

#[test]
fn version_probe() {
    let Some(n) = Node::new() else { return };
    let v = vector("s0-version/03-firewall-VERSION.json");
    let ours: VersionInfo = n.ours.version(Version::V1_0_0).unwrap();
    let recorded: VersionInfo = serde_json::from_value(v["stdout"].clone()).unwrap();
    // Ours also speaks 1.1.0 (GC, STATUS); the reference's versions are all there.
    for want in &recorded.supported_versions {
        assert!(ours.supported_versions.contains(want), "{want}");
    }
    assert!(
        !ours
            .supported_versions
            .iter()
            .any(|v| v.to_string().starts_with("0.3"))
    );
}
