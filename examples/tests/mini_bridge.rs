//! The mini-bridge example plugin, tested with cni-testkit: the two-node network of the bash
//! walkthrough (a bridge per node, pods on each, routes between the nodes' pod subnets),
//! traffic between pods, nothing left behind after DEL, and the conformance suite.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] functions

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use cni_testkit::conformance::{Suite, SuiteOptions};
use cni_testkit::topology::{Cluster, Node};
use cni_testkit::traffic::{self, TcpEchoServer};
use cni_testkit::{
    Attachment, PluginRunner, Snapshot, SnapshotOptions, TempDir, assert_unchanged, require_root,
};
use cni_types::ipnet::IpNet;
use serde_json::{Value, json};

const PLUGIN: &str = env!("CARGO_BIN_EXE_mini-bridge");
const T: Duration = Duration::from_secs(5);

/// The node's bridge `cni0` with the first address of its pod subnet, as the walkthrough's
/// admin sets it up by hand, and the node's address store (the plugin creates the network's
/// directory on first use and keeps it).
fn prepare(node: &Node) -> TempDir {
    let gw = IpNet::new(node.pod_gateway().into(), node.pod_subnet.prefix_len()).unwrap();
    node.add_bridge("cni0", Some(gw)).unwrap();
    let data = TempDir::new("mini-bridge").unwrap();
    std::fs::create_dir(data.join("mynet")).unwrap();
    data
}

fn conf(node: &Node, data: &TempDir) -> Value {
    json!({"cniVersion": "1.0.0", "name": "mynet", "type": "mini-bridge",
           "bridge": "cni0", "subnet": node.pod_subnet, "dataDir": data.path()})
}

fn pod_ip(r: &cni_types::CniResult) -> IpAddr {
    r.ips[0].address.addr()
}

#[test]
fn pods_on_two_nodes_talk_and_nothing_is_left_behind() {
    if !require_root() {
        return;
    }
    let cluster = Cluster::new(2).unwrap();
    let (n0, n1) = (cluster.node(0), cluster.node(1));
    let (data0, data1) = (prepare(n0), prepare(n1));
    let before = Snapshot::with(&n0.ns, SnapshotOptions::default().with_dir(data0.path())).unwrap();

    let on_n0 = PluginRunner::new(PLUGIN).in_netns(&n0.ns).unwrap();
    let on_n1 = PluginRunner::new(PLUGIN).in_netns(&n1.ns).unwrap();
    let (a, b, c) = (n0.new_pod().unwrap(), n0.new_pod().unwrap(), n1.new_pod().unwrap());
    let (att_a, att_b) =
        (Attachment::new("a", a.path(), "eth0"), Attachment::new("b", b.path(), "eth0"));
    let att_c = Attachment::new("c", c.path(), "eth0");
    let ra = on_n0.add(&conf(n0, &data0), &att_a).unwrap();
    let rb = on_n0.add(&conf(n0, &data0), &att_b).unwrap();
    let rc = on_n1.add(&conf(n1, &data1), &att_c).unwrap();
    assert_eq!(ra.ips[0].address.to_string(), "10.244.0.2/24");
    assert_eq!(rb.ips[0].address.to_string(), "10.244.0.3/24");
    assert_eq!(rc.ips[0].address.to_string(), "10.244.1.2/24");
    assert_eq!(ra.interfaces[1].sandbox, a.path().display().to_string());

    // Same node, through the bridge; the gateway; the other node, through the underlay.
    traffic::ping(&a, pod_ip(&rb), T).unwrap();
    traffic::ping(&a, n0.pod_gateway().into(), T).unwrap();
    traffic::ping(&a, pod_ip(&rc), T).unwrap();
    let server = TcpEchoServer::start(&c, "0.0.0.0:8080".parse().unwrap()).unwrap();
    let reply = traffic::tcp_echo(&b, SocketAddr::new(pod_ip(&rc), 8080), b"hi", T).unwrap();
    assert_eq!(reply, b"hi");
    assert_eq!(server.peers()[0].ip(), pod_ip(&rb), "no NAT between pods");

    on_n0.del(&conf(n0, &data0), &att_a).unwrap();
    on_n0.del(&conf(n0, &data0), &att_b).unwrap();
    on_n0.del(&conf(n0, &data0), &att_b).unwrap(); // DEL is idempotent
    assert_unchanged!(before, &n0.ns);
    assert!(!traffic::can_ping(&c, pod_ip(&ra), Duration::from_secs(1)));
    on_n1.del(&conf(n1, &data1), &att_c).unwrap();
}

#[test]
fn add_fails_cleanly_when_the_bridge_is_missing() {
    if !require_root() {
        return;
    }
    let cluster = Cluster::single().unwrap();
    let node = cluster.node(0);
    let data = TempDir::new("mini-bridge").unwrap();
    let pod = node.new_pod().unwrap();
    let before =
        Snapshot::with(&node.ns, SnapshotOptions::default().with_dir(data.path())).unwrap();
    let runner = PluginRunner::new(PLUGIN).in_netns(&node.ns).unwrap();
    let err =
        runner.add(&conf(node, &data), &Attachment::new("x", pod.path(), "eth0")).unwrap_err();
    assert!(err.cni_error().unwrap().msg.contains("cni0"), "{err}");
    assert_unchanged!(before, &node.ns, "a failed ADD undoes itself");
}

#[test]
fn mini_bridge_passes_the_conformance_suite() {
    if !require_root() {
        return;
    }
    let conf = json!({"cniVersion": "1.0.0", "name": "mynet", "type": "mini-bridge",
                      "subnet": "10.244.1.0/24", "dataDir": "/unused/replaced/by/the/suite"});
    let opts = SuiteOptions::new(PLUGIN, conf).node_setup(
        "ip link add cni0 type bridge && ip addr add 10.244.1.1/24 dev cni0 && ip link set cni0 up",
    );
    let report = Suite::new(opts).unwrap().run();
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert!(report.get("gc").is_some_and(|r| r.outcome.reason().contains("not supported")));
}
