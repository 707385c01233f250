//! Shared helpers: a node namespace with a pod whose `eth0` is one end of a veth pair, the
//! tuning runners (ours and Go's), configs with a private `dataDir`, and link state read back
//! over netlink.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::os::fd::AsFd;
use std::path::Path;

use cni_testkit::cni_linux::netlink::{Link, VethRequest};
use cni_testkit::cni_types::{CniResult, Version};
use cni_testkit::{Attachment, PluginRunner, TempDir, TempNetns, bins, random_hex};
use serde_json::{Value, json};

/// A node, a pod with `eth0` (veth to the node), a private `dataDir`.
pub struct Pod {
    pub node: TempNetns,
    pub pod: TempNetns,
    pub data: TempDir,
    pub id: String,
}

impl Pod {
    /// `None` (after printing why) without root; panics instead under CI.
    pub fn new() -> Option<Pod> {
        if !cni_testkit::require_root() {
            return None;
        }
        let node = TempNetns::new("tun-node").unwrap();
        let pod = TempNetns::new("tun-pod").unwrap();
        let data = TempDir::new("tuning-data").unwrap();
        let mut h = node.netlink().unwrap();
        let mut req = VethRequest::new("veth-tun", "eth0");
        req.peer_netns = Some(pod.netns().as_fd());
        req.peer_mac = Some([0x0a, 0x58, 0x0a, 0x58, 0x00, 0x05]);
        req.up = true;
        h.add_veth(&req).unwrap();
        Some(Pod {
            node,
            pod,
            data,
            id: format!("ctr-{}", random_hex()),
        })
    }

    pub fn att(&self) -> Attachment {
        Attachment::new(&self.id, self.pod.path(), "eth0")
    }

    /// The pod's `eth0` as the kernel reports it.
    pub fn eth0(&self) -> Link {
        self.pod
            .netlink()
            .unwrap()
            .link_by_name("eth0")
            .unwrap()
            .expect("eth0 in the pod")
    }

    /// A prevResult naming the pod's eth0, as bridge would return it.
    pub fn prev_result(&self) -> Value {
        json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "veth-tun", "mac": "aa:aa:aa:aa:aa:aa"},
                {"name": "eth0", "mac": "0a:58:0a:58:00:05", "sandbox": self.pod.path()}],
            "ips": [{"address": "10.1.0.2/24", "interface": 1, "gateway": "10.1.0.1"}]})
    }

    /// A tuning config with `extra` keys, our `dataDir` and a prevResult.
    pub fn conf(&self, extra: Value) -> Value {
        let mut c = json!({"cniVersion": "1.0.0", "name": "tunnet", "type": "tuning",
            "dataDir": self.data.path(), "prevResult": self.prev_result()});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    /// The saved-originals file of this attachment.
    pub fn saved_file(&self) -> std::path::PathBuf {
        self.data.join(format!("{}_eth0.json", self.id))
    }

    pub fn ours(&self) -> PluginRunner {
        PluginRunner::new(bins::our_plugin("tuning").unwrap())
            .in_netns(&self.node)
            .unwrap()
    }

    pub fn go(&self) -> PluginRunner {
        PluginRunner::new(bins::go_plugin("tuning").unwrap())
            .in_netns(&self.node)
            .unwrap()
    }

    /// A sysctl inside the pod.
    pub fn sysctl(&self, key: &str) -> String {
        self.pod.sysctl_get(key).unwrap()
    }
}

/// The config with `prevResult` set to `r` (in the config's version).
pub fn with_prev(conf: &Value, r: &CniResult) -> Value {
    cni_testkit::runner::with_prev_result(conf, r).unwrap()
}

/// The result as 1.0.0 JSON.
pub fn json_of(r: &CniResult) -> Value {
    r.to_value(Version::V1_0_0).unwrap()
}

/// `path` relative to this crate.
pub fn here(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}
