//! Shared helpers for the privileged tests: a "node" namespace where the plugin runs, "pod"
//! namespaces whose `lo` starts down (as in a runtime's fresh sandbox), and what the kernel
//! says about a pod's `lo`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use cni_testkit::cni_types::Version;
use cni_testkit::{Attachment, PluginRunner, TempNetns};
use serde_json::{Value, json};

/// Our `loopback` binary (built by cargo for these tests).
pub fn ours() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_loopback"))
}

/// The Go reference `loopback` (v1.1.1).
pub fn go() -> PathBuf {
    PathBuf::from("/usr/lib/cni/loopback")
}

/// The config containerd's go-cni sends, at `version`.
pub fn conf(version: Version) -> Value {
    json!({"cniVersion": version, "name": "cni-loopback", "type": "loopback"})
}

/// A pod namespace as a runtime creates it: `lo` down and without addresses.
pub fn pod() -> TempNetns {
    TempNetns::sandbox("pod").expect("pod namespace")
}

/// Set the pod's `lo` up or down, behind the plugin's back.
pub fn set_lo(pod: &TempNetns, up: bool) {
    let mut nl = pod.netlink().expect("netlink in pod");
    let lo = nl.require_link("lo").expect("lo");
    if up {
        nl.set_up(lo.index).expect("set lo up");
    } else {
        nl.set_down(lo.index).expect("set lo down");
    }
}

/// The kernel's view of the pod's `lo`: up, and its addresses (sorted).
pub fn lo_state(pod: &TempNetns) -> (bool, Vec<String>) {
    let mut nl = pod.netlink().expect("netlink in pod");
    let lo = nl.require_link("lo").expect("lo");
    let mut addrs: Vec<String> = nl
        .addrs(Some(lo.index), None)
        .expect("addresses")
        .into_iter()
        .map(|a| a.addr.to_string())
        .collect();
    addrs.sort();
    (lo.up, addrs)
}

/// The attachment containerd makes for the loopback network.
pub fn att(id: &str, pod: &TempNetns) -> Attachment {
    Attachment::new(id, pod.path(), "lo")
}

/// `binary` run inside `node`.
pub fn runner(binary: PathBuf, node: &TempNetns) -> PluginRunner {
    PluginRunner::new(binary).in_netns(node).expect("runner")
}

/// `v` without `"dns": {}` (Go prints an empty DNS object, we omit it from 1.0.0 on) and with
/// `sandbox` values replaced by `"SANDBOX"`, so two plugins' results over different pods
/// compare.
pub fn normalize(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        if o.get("dns") == Some(&json!({})) {
            o.remove("dns");
        }
        if let Some(Value::Array(ifs)) = o.get_mut("interfaces") {
            for i in ifs {
                if let Some(s) = i.get_mut("sandbox") {
                    *s = json!("SANDBOX");
                }
            }
        }
    }
    v
}
