//! ADD completes or undoes what it did (plugins #29): IPAM failing, a kernel failure after
//! IPAM, and failures injected at each step through the library's hooks, each followed by a
//! snapshot of the node (links, addresses, routes, nftables, iptables, IPAM files) that must
//! be unchanged.

// Test helpers (not only #[test] functions) may panic on failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cni_bridge::{Attachment, BridgeConf, BridgeError, Deps, FailPoint, Hooks};
use cni_testkit::Snapshot;
use cni_testkit::cni_types::Version;
use common::{Ipam, Node, assert_nothing_left, att, pod_link};
use serde_json::{Value, json};

/// The node's state after one ADD/DEL cycle (so the bridge, its addresses and the shared
/// firewall skeleton exist, as they do on a working node).
fn warm(node: &Node, conf: &Value) -> Snapshot {
    let pod = node.pod();
    let a = att("warm", &pod);
    node.runner.add(conf, &a).expect("warm-up ADD");
    node.runner.del(conf, &a).expect("warm-up DEL");
    node.snapshot()
}

#[test]
fn ipam_failure_leaves_nothing() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let mut ipam = node.ipam(&["10.20.0.0/24"]);
    ipam["ranges"][0][0]["rangeStart"] = json!("10.20.0.2");
    ipam["ranges"][0][0]["rangeEnd"] = json!("10.20.0.2");
    let conf = node.conf(
        Version::V1_0_0,
        json!({"isGateway": true, "ipMasq": true, "macspoofchk": true, "ipam": ipam}),
    );
    warm(&node, &conf);
    let p1 = node.pod();
    node.runner.add(&conf, &att("first", &p1)).unwrap();
    let before = node.snapshot();

    // The range is exhausted: IPAM fails, and the veth and spoof check made before are gone.
    let p2 = node.pod();
    let e = node.runner.add(&conf, &att("second", &p2)).unwrap_err();
    let msg = e.cni_error().expect("an error result").msg.clone();
    assert!(msg.contains("no IP addresses available"), "{msg}");
    assert!(pod_link(&p2, "eth0").is_none());
    assert_nothing_left(&before, &node, "after a failed IPAM ADD");

    node.runner.del(&conf, &att("first", &p1)).unwrap();
}

#[test]
fn kernel_failure_after_ipam_leaves_nothing() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let good = node.conf(
        Version::V1_0_0,
        json!({"isGateway": true, "ipMasq": true, "macspoofchk": true,
               "ipam": node.ipam(&["10.21.0.0/24"])}),
    );
    let before = warm(&node, &good);
    // A route via a gateway outside every subnet of the pod cannot be added: the failure comes
    // from the kernel after IPAM allocated and the addresses were configured.
    let mut ipam = node.ipam(&["10.21.0.0/24"]);
    ipam["routes"] = json!([{"dst": "192.0.2.0/24", "gw": "198.18.0.1"}]);
    let bad = node.conf(
        Version::V1_0_0,
        json!({"isGateway": true, "ipMasq": true, "macspoofchk": true, "ipam": ipam}),
    );
    let pod = node.pod();
    let e = node.runner.add(&bad, &att("badroute", &pod)).unwrap_err();
    let msg = e.cni_error().expect("an error result").msg.clone();
    assert!(
        msg.starts_with("failed to add route '192.0.2.0/24 via 198.18.0.1 dev eth0'"),
        "{msg}"
    );
    assert!(pod_link(&pod, "eth0").is_none());
    assert_nothing_left(&before, &node, "after a failed route");
}

/// Injected failures at each step, with every feature that leaves state on.
#[test]
fn injected_failures_leave_nothing() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    for backend in ["iptables", "nftables"] {
        let conf_json = node.conf(
            Version::V1_0_0,
            json!({"isDefaultGateway": true, "ipMasq": true, "ipMasqBackend": backend,
                   "macspoofchk": true, "hairpinMode": true,
                   "ipam": node.ipam(&["10.22.0.0/24", "fd22::/64"])}),
        );
        let before = warm(&node, &conf_json);
        let raw = serde_json::to_vec(&conf_json).unwrap();
        let conf = BridgeConf::parse(&raw, "").unwrap();
        for at in [
            FailPoint::AfterVeth,
            FailPoint::AfterIpam,
            FailPoint::BeforeResult,
        ] {
            let pod = node.pod();
            let a = Attachment::new(
                "inject",
                "eth0",
                Some(pod.path().to_path_buf()),
                &node.bins.path().display().to_string(),
            );
            let mut deps = Deps::system();
            deps.hooks = Hooks { fail_at: Some(at) };
            let r = node
                .ns
                .run(|| cni_bridge::add(&conf, &a, &mut deps))
                .unwrap();
            match r {
                Err(BridgeError::Injected(_)) => {}
                other => panic!("[{backend} {at:?}] expected the injected failure, got {other:?}"),
            }
            assert!(pod_link(&pod, "eth0").is_none(), "[{backend} {at:?}]");
            assert_nothing_left(&before, &node, &format!("[{backend}] failure at {at:?}"));
        }
        // Without the hook the same in-process ADD works, and DEL undoes it.
        let pod = node.pod();
        let a = Attachment::new(
            "inject",
            "eth0",
            Some(pod.path().to_path_buf()),
            &node.bins.path().display().to_string(),
        );
        let mut deps = Deps::system();
        let r = node
            .ns
            .run(|| cni_bridge::add(&conf, &a, &mut deps))
            .unwrap()
            .unwrap();
        assert_eq!(r.ips.len(), 2);
        node.ns
            .run(|| cni_bridge::del(&conf, &a, &mut deps))
            .unwrap()
            .unwrap();
        assert_nothing_left(
            &before,
            &node,
            &format!("[{backend}] after in-process ADD + DEL"),
        );
    }
}

#[test]
fn existing_container_interface_is_refused_and_kept() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let conf = node.conf(
        Version::V1_0_0,
        json!({"ipam": node.ipam(&["10.23.0.0/24"])}),
    );
    let before = warm(&node, &conf);
    let pod = node.pod();
    let mine = pod
        .netlink()
        .unwrap()
        .add_veth(&cni_testkit::cni_linux::netlink::VethRequest::new(
            "eth0", "eth0peer",
        ))
        .unwrap();
    let e = node.runner.add(&conf, &att("dup", &pod)).unwrap_err();
    let msg = e.cni_error().unwrap().msg.clone();
    assert!(
        msg.starts_with("container veth name (\"eth0\") peer provided (\"veth"),
        "{msg}"
    );
    assert!(msg.ends_with("already exists"), "{msg}");
    assert_eq!(
        pod_link(&pod, "eth0").unwrap().index,
        mine.index,
        "the pod's eth0 is untouched"
    );
    assert_nothing_left(&before, &node, "refused ADD");
}

#[test]
fn duplicate_add_of_a_live_attachment_keeps_its_address() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let conf = node.conf(
        Version::V1_0_0,
        json!({"isGateway": true, "ipMasq": true, "ipMasqBackend": "nftables",
               "ipam": node.ipam(&["10.24.0.0/24"])}),
    );
    let pod = node.pod();
    let a = att("twice", &pod);
    let r = node.runner.add(&conf, &a).unwrap();
    let before = node.snapshot();
    // The second ADD fails (the interface exists; host-local refuses a duplicate, while the
    // veth is being made). Its rollback must not release the live attachment's address.
    node.runner.add(&conf, &a).unwrap_err();
    assert_eq!(
        node.allocations(),
        vec![common::first_v4(&r).to_string()],
        "the address stays reserved"
    );
    assert_nothing_left(&before, &node, "a refused duplicate ADD");
    node.runner.del(&conf, &a).unwrap();
    assert!(node.allocations().is_empty());
}
