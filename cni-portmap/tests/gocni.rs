//! Issue 12 item 13, driven the way containerd's CRI drives plugins (go-cni over libcni):
//! a bridge + host-local + portmap conflist through our runtime (cni-proto), whose ADD fails
//! at portmap on input ADD refuses (protocol `bogus`, host port 0, host port out of range).
//! The runtime then runs DEL of the chain in order and stops at the first failing plugin;
//! so portmap's DEL must succeed on that same input, or bridge and host-local DEL never run
//! and the veth, the pod's addresses and its masquerade rules leak. After DEL the node is
//! exactly as before the failed ADD.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] functions

mod common;

use cni_proto::runtime::RuntimeConf;
use cni_testkit::bins::CniPathDir;
use cni_testkit::snapshot::{SnapshotOptions, host_local_bookkeeping};
use cni_testkit::{ChainRunner, Snapshot, TempDir, TempNetns};
use serde_json::json;

fn chain(backend: &str, node: &TempNetns, plugins: &CniPathDir, data: &TempDir) -> ChainRunner {
    let mut list = json!({
    "cniVersion": "1.0.0", "name": "gocninet",
    "plugins": [
        {"type": "bridge", "bridge": "cni9", "isGateway": true, "ipMasq": true,
         "ipam": {"type": "host-local",
                  "ranges": [[{"subnet": "10.245.0.0/24"}], [{"subnet": "fd00:245::/64"}]]}},
        {"type": "portmap", "backend": backend, "capabilities": {"portMappings": true}}
    ]});
    cni_testkit::chain::set_ipam_data_dir(&mut list, data.path());
    ChainRunner::from_json(&list, [plugins.path()])
        .unwrap()
        .in_netns(node)
        .unwrap()
}

fn rt(id: &str, pod: &TempNetns, maps: serde_json::Value) -> RuntimeConf {
    RuntimeConf::new(id, pod.path().display().to_string(), "eth0")
        .with_capability("portMappings", maps)
}

fn scenario(backend: &str) {
    let node = TempNetns::new("pmgocni").unwrap();
    let plugins = CniPathDir::new()
        .unwrap()
        .ours(&["bridge", "host-local", "portmap"])
        .unwrap();
    let data = TempDir::new("pm-gocni").unwrap();
    let ch = chain(backend, &node, &plugins, &data);
    // A good pod first, so the shared state (the bridge, its address, the shared chains)
    // exists before the snapshot.
    let good = TempNetns::new("pmgood").unwrap();
    let rt_good = rt(
        "ctr-good",
        &good,
        json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
    );
    ch.add(&rt_good).unwrap();
    let opts = SnapshotOptions::default().with_dir(data.path());
    for (i, bad) in [
        json!([{"hostPort": 8081, "containerPort": 80, "protocol": "bogus"}]),
        json!([{"hostPort": 0, "containerPort": 80, "protocol": "tcp"}]),
        json!([{"hostPort": 70000, "containerPort": 80, "protocol": "udp"}]),
        json!([{"hostPort": 8082, "containerPort": 80, "protocol": "tcp"},
               {"hostPort": 8083, "containerPort": 80, "protocol": "tcp", "hostIP": "nope"}]),
    ]
    .into_iter()
    .enumerate()
    {
        let before = Snapshot::with(&node, opts.clone()).unwrap();
        let pod = TempNetns::new("pmbad").unwrap();
        let rt_bad = rt(&format!("ctr-bad-{i}"), &pod, bad.clone());
        let e = ch.add(&rt_bad).unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(
            text.contains("protocol") || text.contains("port number") || text.contains("hostIP"),
            "{backend} {bad}: ADD fails at portmap: {text}"
        );
        // go-cni: Remove runs DEL of the chain (portmap, then bridge, which calls host-local),
        // stopping at the first error.
        ch.del(&rt_bad)
            .unwrap_or_else(|e| panic!("{backend} {bad}: DEL of the chain failed: {e} {e:?}"));
        let after = before.retake(&node).unwrap();
        let diff = before.diff(&after).filter(|i| !host_local_bookkeeping(i));
        assert!(
            diff.is_empty(),
            "{backend} {bad}: DEL left something behind:\n{diff}"
        );
        // And again (idempotent).
        ch.del(&rt_bad).unwrap();
    }
    ch.del(&rt_good).unwrap();
}

#[test]
fn del_after_refused_add_leaves_nothing_iptables() {
    if !common::root() {
        return;
    }
    scenario("iptables");
}

#[test]
fn del_after_refused_add_leaves_nothing_nftables() {
    if !common::root() {
        return;
    }
    scenario("nftables");
}
