//! Real traffic through our firewall, for both backends, in throw-away namespaces.
//!
//! Topology: cni-testkit's single-node cluster (an "outside" namespace on the node's
//! underlay). Two networks on the node, `fwa0` (10.244.1.0/24) and `fwb0` (10.244.2.0/24),
//! each a chain of our bridge, host-local, portmap and firewall with
//! `ingressPolicy: same-bridge`. With iptables the node's `FORWARD` policy is `DROP`, so only
//! what the firewall accepts is forwarded.
//!
//! Checked: pods reach the node and the outside; a pod on `fwa0` reaches another pod on
//! `fwa0` but not one on `fwb0` (and the other way round); a host port is reachable from the
//! outside with `FORWARD` at `DROP` (our `ctstate DNAT` accept); CHECK; after DEL of every pod
//! the node's state is what it was after a first ADD + DEL (warm-up), the isolation rules of
//! both bridges are gone; and the Go firewall in the same place leaves the host port dropped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cni_testkit::bins::CniPathDir;
use cni_testkit::topology::Cluster;
use cni_testkit::traffic::TcpEchoServer;
use cni_testkit::{Snapshot, TempDir, TempNetns, assert_unchanged};
use serde_json::json;

use common::*;

fn scenario(backend: &str) {
    if !cni_testkit::require_root() {
        return;
    }
    let cluster = Cluster::single().unwrap();
    let node = &cluster.node(0).ns;
    let node_ip = cluster.node(0).underlay_ip.addr();
    let outside = &cluster.outside.ns;
    let outside_ip = cluster.outside.underlay_ip.addr();
    if backend == "iptables" {
        node.exec_ok("iptables", &["-P", "FORWARD", "DROP"])
            .unwrap();
    }
    let plugins = CniPathDir::new()
        .unwrap()
        .ours(&["bridge", "host-local", "portmap", "firewall"])
        .unwrap();
    let data = TempDir::new("fw-data").unwrap();
    let fw = json!({"backend": backend, "ingressPolicy": "same-bridge"});
    let net_a = chain(
        "fwnet-a",
        "fwa0",
        "10.244.1.0/24",
        backend,
        fw.clone(),
        node,
        &plugins,
        &data,
    );
    let net_b = chain(
        "fwnet-b",
        "fwb0",
        "10.244.2.0/24",
        backend,
        fw,
        node,
        &plugins,
        &data,
    );

    // Warm-up: bridges, shared chains and skeletons exist from here on.
    let warm_a = TempNetns::new("fwwa").unwrap();
    let warm_b = TempNetns::new("fwwb").unwrap();
    let rt_wa = rt(
        "warm-a",
        &warm_a,
        json!([{"hostPort": 8090, "containerPort": 80, "protocol": "tcp"}]),
    );
    let rt_wb = rt("warm-b", &warm_b, json!([]));
    net_a.add(&rt_wa).unwrap();
    net_b.add(&rt_wb).unwrap();
    let isolated = filter(node) + &nft(node);
    assert!(
        isolated.contains("fwa0") && isolated.contains("fwb0"),
        "{isolated}"
    );
    net_a.del(&rt_wa).unwrap();
    net_b.del(&rt_wb).unwrap();
    drop((warm_a, warm_b));
    // The isolation of both bridges went with their last pod.
    let after_warm = filter(node) + &nft(node);
    assert!(
        !after_warm.contains("fwa0") && !after_warm.contains("fwb0"),
        "isolation left after the last DEL:\n{after_warm}"
    );
    let before = Snapshot::of(node).unwrap();

    let _node_srv = TcpEchoServer::start(node, sa("0.0.0.0", 7000)).unwrap();
    let _out_srv = TcpEchoServer::start(outside, sa("0.0.0.0", 7001)).unwrap();
    let a1 = TempNetns::new("fwa1").unwrap();
    let a2 = TempNetns::new("fwa2").unwrap();
    let b1 = TempNetns::new("fwb1").unwrap();
    let _s_a1 = TcpEchoServer::start(&a1, sa("0.0.0.0", 80)).unwrap();
    let _s_a2 = TcpEchoServer::start(&a2, sa("0.0.0.0", 80)).unwrap();
    let _s_b1 = TcpEchoServer::start(&b1, sa("0.0.0.0", 80)).unwrap();
    let rt_a1 = rt(
        "ctr-a1",
        &a1,
        json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
    );
    let rt_a2 = rt("ctr-a2", &a2, json!([]));
    let rt_b1 = rt("ctr-b1", &b1, json!([]));
    let ip_a1 = v4(&net_a.add(&rt_a1).unwrap());
    let ip_a2 = v4(&net_a.add(&rt_a2).unwrap());
    let ip_b1 = v4(&net_b.add(&rt_b1).unwrap());
    net_a.check(&rt_a1).unwrap();
    net_b.check(&rt_b1).unwrap();

    echo(&a1, sa("10.244.1.1", 7000), "a1 -> node");
    echo(&b1, sa("10.244.2.1", 7000), "b1 -> node");
    echo(&a1, sa(outside_ip, 7001), "a1 -> outside");
    echo(&b1, sa(outside_ip, 7001), "b1 -> outside");
    echo(&a1, sa(ip_a2, 80), "a1 -> a2 (same bridge)");
    no_echo(&a1, sa(ip_b1, 80), "a1 -> b1 (other isolated bridge)");
    no_echo(&b1, sa(ip_a1, 80), "b1 -> a1 (other isolated bridge)");
    echo(outside, sa(node_ip, 8080), "outside -> host port of a1");

    // DEL of a1 keeps fwa0 isolated for a2.
    net_a.del(&rt_a1).unwrap();
    no_echo(&b1, sa(ip_a2, 80), "b1 -> a2 after a1's DEL");
    net_a.del(&rt_a2).unwrap();
    net_b.del(&rt_b1).unwrap();
    // Twice: DEL is idempotent.
    net_a.del(&rt_a2).unwrap();
    net_b.del(&rt_b1).unwrap();
    let after = filter(node) + &nft(node);
    for needle in ["10.244.1.", "10.244.2.", "fwa0", "fwb0", "ctr-"] {
        let left: Vec<&str> = after
            .lines()
            .filter(|l| {
                l.contains(needle) && !l.contains("10.244.1.0/24") && !l.contains("10.244.2.0/24")
            })
            .collect();
        assert!(left.is_empty(), "{needle:?} left after DEL: {left:?}");
    }
    assert_unchanged!(before, node, "the node after DEL of every pod");
}

#[test]
fn iptables_traffic_isolation_and_cleanup() {
    scenario("iptables");
}

#[test]
fn nftables_traffic_isolation_and_cleanup() {
    scenario("nftables");
}

/// With `FORWARD` at `DROP`, the Go firewall's chain does not accept the new DNAT'd
/// connection of a host port; ours does (above). Shows the test above can fail.
#[test]
fn go_firewall_drops_host_ports_with_forward_drop() {
    if !cni_testkit::require_root() {
        return;
    }
    let cluster = Cluster::single().unwrap();
    let node = &cluster.node(0).ns;
    let node_ip = cluster.node(0).underlay_ip.addr();
    let outside = &cluster.outside.ns;
    node.exec_ok("iptables", &["-P", "FORWARD", "DROP"])
        .unwrap();
    let plugins = CniPathDir::new()
        .unwrap()
        .ours(&["bridge", "host-local", "portmap"])
        .unwrap()
        .go(&["firewall"])
        .unwrap();
    let data = TempDir::new("fw-data").unwrap();
    let net = chain(
        "fwnet-go",
        "fwg0",
        "10.244.3.0/24",
        "iptables",
        json!({"backend": "iptables"}),
        node,
        &plugins,
        &data,
    );
    let pod = TempNetns::new("fwg1").unwrap();
    let _srv = TcpEchoServer::start(&pod, sa("0.0.0.0", 80)).unwrap();
    let r = rt(
        "ctr-g1",
        &pod,
        json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
    );
    let ip = v4(&net.add(&r).unwrap());
    echo(node, sa(ip, 80), "node -> pod");
    no_echo(
        outside,
        sa(node_ip, 8080),
        "outside -> host port (Go firewall)",
    );
    net.del(&r).unwrap();
}
