//! Shared fixture for the privileged tests: a throw-away "node" namespace where the plugin
//! runs, throw-away "pod" namespaces, a temporary IPAM data directory and a `CNI_PATH`
//! directory with our `bridge` and the chosen `host-local`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::PathBuf;

use cni_testkit::bins::CniPathDir;
use cni_testkit::cni_linux::netlink::{Handle, Link};
use cni_testkit::cni_types::{CniResult, Version};
use cni_testkit::{Attachment, PluginRunner, Snapshot, SnapshotOptions, TempDir, TempNetns};
use serde_json::{Value, json};

/// Which host-local the bridge delegates to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipam {
    /// The workspace's `host-local`.
    Ours,
    /// The Go reference `host-local` (v1.1.1).
    Go,
}

/// Our `bridge` binary (built by cargo for this test).
pub fn our_bridge() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bridge"))
}

/// Our `host-local`, next to our `bridge`, if it was built.
pub fn our_host_local() -> Option<PathBuf> {
    let p = our_bridge().with_file_name("host-local");
    p.is_file().then_some(p)
}

/// A node namespace with a `CNI_PATH` and an IPAM data directory.
pub struct Node {
    pub ns: TempNetns,
    pub data: TempDir,
    pub bins: CniPathDir,
    pub runner: PluginRunner,
}

impl Node {
    /// Our bridge with the given host-local. `None` without root or when that host-local is
    /// not available (printed, and a failure under CI, so a skip is never silent).
    pub fn new(ipam: Ipam) -> Option<Node> {
        Self::with_bridge(our_bridge(), ipam)
    }

    /// Any bridge binary with the given host-local (see [`Node::new`]).
    pub fn with_bridge(bridge: PathBuf, ipam: Ipam) -> Option<Node> {
        if !root() {
            return None;
        }
        let host_local = match ipam {
            Ipam::Ours => match our_host_local() {
                Some(p) => p,
                None => {
                    let why =
                        "our host-local binary is not built (cargo build -p cni-ipam-hostlocal)";
                    if cni_testkit::privilege::in_ci() {
                        panic!("{why}, and CI is set");
                    }
                    eprintln!("skipping: {why}");
                    return None;
                }
            },
            Ipam::Go => PathBuf::from("/usr/lib/cni/host-local"),
        };
        let ns = TempNetns::new("node").expect("node namespace");
        let data = TempDir::new("bridge-ipam").expect("ipam data dir");
        let bins = CniPathDir::new()
            .and_then(|d| d.link("bridge", &bridge))
            .and_then(|d| d.link("host-local", &host_local))
            .expect("CNI_PATH dir");
        let runner = PluginRunner::new(bins.plugin("bridge"))
            .cni_path([bins.path()])
            .in_netns(&ns)
            .expect("runner in node");
        Some(Node {
            ns,
            data,
            bins,
            runner,
        })
    }

    /// A new pod namespace.
    pub fn pod(&self) -> TempNetns {
        TempNetns::new("pod").expect("pod namespace")
    }

    /// host-local `ipam` section over `ranges` (each a subnet string), with our data dir.
    pub fn ipam(&self, subnets: &[&str]) -> Value {
        let ranges: Vec<Value> = subnets.iter().map(|s| json!([{ "subnet": s }])).collect();
        json!({"type": "host-local", "ranges": ranges, "dataDir": self.data.path()})
    }

    /// A bridge config for `version` with `extra` keys merged in.
    pub fn conf(&self, version: Version, extra: Value) -> Value {
        let mut c =
            json!({"cniVersion": version, "name": "testnet", "type": "bridge", "bridge": "cni0"});
        if let (Some(m), Value::Object(e)) = (c.as_object_mut(), extra) {
            m.extend(e);
        }
        c
    }

    /// A netlink handle in the node.
    pub fn nl(&self) -> Handle {
        self.ns.netlink().expect("netlink in node")
    }

    /// The node's link called `name`.
    pub fn link(&self, name: &str) -> Option<Link> {
        self.nl().link_by_name(name).expect("get link")
    }

    /// A snapshot of the node including the IPAM data directory.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::with(
            &self.ns,
            SnapshotOptions::default()
                .with_dir(self.data.path())
                .normalize_veth_names(),
        )
        .expect("snapshot")
    }

    /// Allocations (files named by an address) in the IPAM data dir of network `testnet`.
    pub fn allocations(&self) -> Vec<String> {
        let dir = self.data.path().join("testnet");
        let mut out: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.replace('_', ":").parse::<IpAddr>().is_ok())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Runs `program args` inside the node and returns stdout.
    pub fn exec(&self, program: &str, args: &[&str]) -> String {
        self.ns
            .exec_ok(program, args)
            .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"))
            .stdout_text()
    }
}

/// An attachment of container `id` in `pod` as `eth0`.
pub fn att(id: &str, pod: &TempNetns) -> Attachment {
    Attachment::new(id, pod.path(), "eth0")
}

/// The container's `eth0`, read inside `pod`.
pub fn pod_link(pod: &TempNetns, name: &str) -> Option<Link> {
    pod.netlink()
        .expect("netlink")
        .link_by_name(name)
        .expect("get link")
}

/// Addresses (global) of `name` in `ns`.
pub fn addrs(ns: &TempNetns, name: &str) -> Vec<String> {
    let mut nl = ns.netlink().expect("netlink");
    let Some(l) = nl.link_by_name(name).expect("get link") else {
        return Vec::new();
    };
    let mut v: Vec<String> = nl
        .addrs(Some(l.index), None)
        .expect("addrs")
        .into_iter()
        .filter(|a| a.scope == 0)
        .map(|a| a.addr.to_string())
        .collect();
    v.sort();
    v
}

/// Routes of `ns` as `dst via gw` strings (main table, no link-local/multicast).
pub fn routes(ns: &TempNetns) -> Vec<String> {
    let mut nl = ns.netlink().expect("netlink");
    let mut v: Vec<String> = nl
        .routes(None, Some(254))
        .expect("routes")
        .into_iter()
        .filter(|r| !r.dst.addr().is_multicast() && !is_ll(&r.dst.addr()))
        .map(|r| match r.gw {
            Some(gw) => format!("{} via {gw}", r.dst),
            None => r.dst.to_string(),
        })
        .collect();
    v.sort();
    v
}

fn is_ll(a: &IpAddr) -> bool {
    match a {
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        IpAddr::V4(_) => false,
    }
}

/// The first IPv4 address of a result.
pub fn first_v4(r: &CniResult) -> IpAddr {
    r.ips
        .iter()
        .find(|ip| ip.address.addr().is_ipv4())
        .expect("an IPv4 address")
        .address
        .addr()
}

/// Whether the test may run (root); prints why not, fails under CI.
pub fn root() -> bool {
    cni_testkit::require_root()
}

/// Panics unless the node's state equals `before`, ignoring host-local's bookkeeping.
pub fn assert_nothing_left(before: &Snapshot, node: &Node, ctx: &str) {
    let after = node.snapshot();
    let diff = before
        .diff(&after)
        .filter(|i| !cni_testkit::snapshot::host_local_bookkeeping(i));
    assert!(diff.is_empty(), "{ctx}: namespace state changed:\n{diff}");
}

/// Whether the kernel can filter VLANs on a bridge (`CONFIG_BRIDGE_VLAN_FILTERING`), from
/// cni-testkit's probe of the kernel's configuration (never from our own netlink code, so a
/// bug of ours cannot pass for a missing feature). Missing: skipped if the feature is on the
/// allow-list of features a CI machine may lack, a failure under CI otherwise.
pub fn kernel_has_vlan_filtering() -> bool {
    cni_testkit::kernel::require(cni_testkit::kernel::Feature::BridgeVlanFiltering)
}
