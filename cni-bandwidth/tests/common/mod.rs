//! Shared helpers: a node namespace and a pod namespace joined by a veth pair with
//! addresses, runners for our bandwidth and the Go one, `tc` (iproute2) read-outs as an
//! independent view of the kernel, and a bounded, rate-measuring transfer.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod rate;

use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use cni_testkit::cni_linux::netlink::VethRequest;
use cni_testkit::cni_types::{CniResult, Version};
use cni_testkit::{Attachment, PluginRunner, TempNetns, bins, random_hex};
use serde_json::{Value, json};

/// The node's address on the host veth.
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The pod's address on `eth0`.
pub const POD_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The host-side veth.
pub const HOST_VETH: &str = "vethbw0";

/// A node, a pod whose `eth0` is the peer of [`HOST_VETH`], both addressed and up.
pub struct Pod {
    pub node: TempNetns,
    pub pod: TempNetns,
    pub id: String,
}

impl Pod {
    /// `None` (after printing why) without root; panics instead under CI.
    pub fn new() -> Option<Pod> {
        if !cni_testkit::require_root() {
            return None;
        }
        let node = TempNetns::new("bw-node").unwrap();
        let pod = TempNetns::new("bw-pod").unwrap();
        let mut h = node.netlink().unwrap();
        let mut req = VethRequest::new(HOST_VETH, "eth0");
        req.peer_netns = Some(pod.netns().as_fd());
        req.up = true;
        let host = h.add_veth(&req).unwrap();
        h.addr_add(
            host.index,
            "10.77.0.1/24".parse().unwrap(),
            Default::default(),
        )
        .unwrap();
        let mut p = pod.netlink().unwrap();
        let eth0 = p.require_link("eth0").unwrap();
        p.addr_add(
            eth0.index,
            "10.77.0.2/24".parse().unwrap(),
            Default::default(),
        )
        .unwrap();
        p.set_up(eth0.index).unwrap();
        Some(Pod {
            node,
            pod,
            id: format!("ctr-{}", random_hex()),
        })
    }

    pub fn att(&self) -> Attachment {
        Attachment::new(&self.id, self.pod.path(), "eth0")
    }

    /// A prevResult as bridge or ptp returns it.
    pub fn prev_result(&self) -> Value {
        json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": HOST_VETH},
                {"name": "eth0", "sandbox": self.pod.path()}],
            "ips": [{"address": "10.77.0.2/24", "interface": 1}]})
    }

    /// A bandwidth config with `extra` keys and the prevResult.
    pub fn conf(&self, extra: Value) -> Value {
        let mut c = json!({"cniVersion": "1.0.0", "name": "bwnet", "type": "bandwidth",
            "prevResult": self.prev_result()});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    pub fn ours(&self) -> PluginRunner {
        PluginRunner::new(bins::our_plugin("bandwidth").unwrap())
            .in_netns(&self.node)
            .unwrap()
    }

    pub fn go(&self) -> PluginRunner {
        PluginRunner::new(bins::go_plugin("bandwidth").unwrap())
            .in_netns(&self.node)
            .unwrap()
    }

    /// Another pod on the same node: a new namespace whose `eth0` is the peer of
    /// `host_veth`, and the prevResult naming both.
    pub fn another(&self, host_veth: &str) -> (TempNetns, Value) {
        let pod = TempNetns::new("bw-pod").unwrap();
        let mut h = self.node.netlink().unwrap();
        let mut req = VethRequest::new(host_veth, "eth0");
        req.peer_netns = Some(pod.netns().as_fd());
        req.up = true;
        h.add_veth(&req).unwrap();
        let prev = json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": host_veth}, {"name": "eth0", "sandbox": pod.path()}],
            "ips": [{"address": "10.77.0.9/24", "interface": 1}]});
        (pod, prev)
    }

    /// The ifb device's name for this pod on network `bwnet`.
    pub fn ifb(&self) -> String {
        cni_bandwidth::ifb_name("bwnet", &self.id)
    }

    /// `tc -d qdisc show` in the node, one qdisc a line.
    pub fn qdiscs(&self) -> Vec<String> {
        tc(&self.node, &["-d", "qdisc", "show"])
    }

    /// `tc filter show dev <host veth> ingress`.
    pub fn filters(&self) -> Vec<String> {
        tc(
            &self.node,
            &["filter", "show", "dev", HOST_VETH, "parent", "ffff:"],
        )
    }

    /// The ifb devices of the node (`ip -o link show type ifb`).
    pub fn ifbs(&self) -> Vec<String> {
        ifbs(&self.node)
    }
}

/// Lines of `tc args...` in `ns`.
pub fn tc(ns: &TempNetns, args: &[&str]) -> Vec<String> {
    let out = ns.exec_ok("tc", args).unwrap();
    out.stdout_text()
        .lines()
        .map(str::to_string)
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// Names of the ifb devices in `ns`.
pub fn ifbs(ns: &TempNetns) -> Vec<String> {
    let out = ns
        .exec_ok("ip", &["-o", "link", "show", "type", "ifb"])
        .unwrap();
    out.stdout_text()
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// The config with `prevResult` set to `r`.
pub fn with_prev(conf: &Value, r: &CniResult) -> Value {
    cni_testkit::runner::with_prev_result(conf, r).unwrap()
}

/// The result as 1.0.0 JSON.
pub fn json_of(r: &CniResult) -> Value {
    r.to_value(Version::V1_0_0).unwrap()
}
