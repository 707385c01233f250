//! containerd's call pattern: for each pod sandbox go-cni sets up its built-in loopback
//! network (`{"cniVersion":"0.3.1","name":"cni-loopback","plugins":[{"type":"loopback"}]}` on
//! `lo`) and the pod network (here bridge + host-local on `eth0`) at the same time, from two
//! goroutines, then removes them one after the other, loopback first. Here: two threads per
//! pod, several pods at once, every plugin ours, run through the protocol crate's runtime as
//! libcni would run them.
//!
//! Needs the workspace's binaries: `cargo build --workspace --bins` first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::time::Duration;

use cni_testkit::bins::CniPathDir;
use cni_testkit::cni_proto::runtime::RuntimeConf;
use cni_testkit::snapshot::Kind;
use cni_testkit::{ChainRunner, Snapshot, TempDir, TempNetns, require_root, traffic};
use common::{lo_state, ours, pod};
use serde_json::json;

const PODS: usize = 3;

fn bins() -> CniPathDir {
    CniPathDir::new()
        .and_then(|d| d.link("loopback", &ours()))
        .and_then(|d| d.ours(&["bridge", "host-local"]))
        .expect("our bridge and host-local: run `cargo build --workspace --bins` first")
}

/// What containerd sends in CNI_ARGS.
fn runtime_conf(id: &str, pod: &TempNetns, ifname: &str) -> RuntimeConf {
    RuntimeConf::new(id, pod.path().display().to_string(), ifname)
        .with_arg("IgnoreUnknown", "1")
        .with_arg("K8S_POD_NAMESPACE", "default")
        .with_arg("K8S_POD_NAME", id)
        .with_arg("K8S_POD_INFRA_CONTAINER_ID", id)
        .with_arg("K8S_POD_UID", "0b5d7a4e-1111-2222-3333-444455556666")
}

#[test]
fn loopback_and_pod_network_set_up_in_parallel_then_removed_in_order() {
    if !require_root() {
        return;
    }
    let node = TempNetns::new("node").unwrap();
    let data = TempDir::new("lo-ipam").unwrap();
    let bins = bins();
    let loopback = ChainRunner::from_json(
        &json!({"cniVersion": "0.3.1", "name": "cni-loopback",
                "plugins": [{"type": "loopback"}]}),
        [bins.path()],
    )
    .unwrap()
    .in_netns(&node)
    .unwrap();
    let podnet = ChainRunner::from_json(
        &json!({"cniVersion": "1.0.0", "name": "containerd-net", "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": true,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/24"}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": data.path()}}]}),
        [bins.path()],
    )
    .unwrap()
    .in_netns(&node)
    .unwrap();
    let node_before = Snapshot::of(&node).unwrap();

    let pods: Vec<TempNetns> = (0..PODS).map(|_| pod()).collect();
    let ids: Vec<String> = (0..PODS).map(|i| format!("sandbox{i}")).collect();
    // Every pod's two networks at once, and all pods at once.
    let addrs: Vec<IpAddr> = std::thread::scope(|s| {
        let handles: Vec<_> = pods
            .iter()
            .zip(&ids)
            .map(|(pod, id)| {
                let lo = s.spawn(|| loopback.add(&runtime_conf(id, pod, "lo")));
                let eth = s.spawn(|| podnet.add(&runtime_conf(id, pod, "eth0")));
                (lo, eth)
            })
            .collect();
        handles
            .into_iter()
            .map(|(lo, eth)| {
                let lo_res = lo.join().unwrap().expect("loopback ADD");
                assert_eq!(lo_res.ips[0].address.to_string(), "127.0.0.1/8");
                let eth_res = eth.join().unwrap().expect("pod network ADD");
                eth_res.ips[0].address.addr()
            })
            .collect()
    });

    let gateway: IpAddr = "10.88.0.1".parse().unwrap();
    for (pod, addr) in pods.iter().zip(&addrs) {
        let (up, lo_addrs) = lo_state(pod);
        assert!(up, "lo is down in {}", pod.name());
        assert!(
            lo_addrs.contains(&"127.0.0.1/8".to_string()),
            "{lo_addrs:?}"
        );
        traffic::ping(pod, "127.0.0.1".parse().unwrap(), Duration::from_secs(2)).unwrap();
        traffic::ping(pod, gateway, Duration::from_secs(2)).unwrap();
        traffic::ping(&node, *addr, Duration::from_secs(2)).unwrap();
    }
    // Pods reach each other through the bridge.
    traffic::ping(&pods[0], addrs[1], Duration::from_secs(2)).unwrap();

    // Removal: serially, in go-cni's order (loopback first), stopping at the first error.
    for (pod, id) in pods.iter().zip(&ids) {
        loopback.del(&runtime_conf(id, pod, "lo")).unwrap();
        podnet.del(&runtime_conf(id, pod, "eth0")).unwrap();
        assert!(!lo_state(pod).0, "lo still up after DEL");
        let links = Snapshot::of(pod).unwrap();
        assert!(!links.has(Kind::Link, "eth0"), "eth0 left in the pod");
    }
    // The node keeps only the bridge (shared by the network's pods, as with the reference).
    let after = Snapshot::of(&node).unwrap();
    let diff = node_before.diff(&after);
    let not_bridge =
        diff.filter(|i| !(i.text.starts_with("cni0 ") || i.text.contains(" dev cni0")));
    assert!(not_bridge.is_empty(), "left in the node:\n{not_bridge}");
}
