//! Interoperability with the Go reference plugins v1.1.1 in /usr/lib/cni: our bridge
//! delegating to the Go host-local, the Go bridge delegating to our host-local, results of the
//! same shape, and masquerade / spoof-check state that each implementation removes after the
//! other.

// Test helpers (not only #[test] functions) may panic on failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use cni_testkit::cni_types::{CniResult, Version};
use cni_testkit::runner::with_prev_result;
use common::{Ipam, Node, addrs, att, pod_link, root};
use serde_json::{Value, json};

fn go_bridge() -> PathBuf {
    PathBuf::from("/usr/lib/cni/bridge")
}

fn have_go() -> bool {
    let ok = go_bridge().is_file() && PathBuf::from("/usr/lib/cni/host-local").is_file();
    if !ok {
        let why = "the Go reference plugins are not installed in /usr/lib/cni";
        if cni_testkit::privilege::in_ci() {
            panic!("{why}, and CI is set");
        }
        eprintln!("skipping: {why}");
    }
    ok
}

#[test]
fn our_bridge_with_go_host_local() {
    if !root() || !have_go() {
        return;
    }
    let Some(node) = Node::new(Ipam::Go) else {
        return;
    };
    // The Go host-local v1.1.1 speaks up to 1.0.0.
    for v in [Version::V0_3_1, Version::V0_4_0, Version::V1_0_0] {
        let pod = node.pod();
        let conf = node.conf(
            v,
            json!({"isDefaultGateway": true, "ipMasq": true,
                   "ipam": node.ipam(&["10.30.0.0/24", "fd30::/64"])}),
        );
        let a = att(&format!("go-ipam-{v}"), &pod);
        let r = node
            .runner
            .add(&conf, &a)
            .unwrap_or_else(|e| panic!("[{v}] {e}"));
        assert_eq!(r.ips.len(), 2);
        assert_eq!(
            node.allocations().len(),
            2,
            "[{v}] the Go host-local's files"
        );
        if v.supports_check() {
            node.runner
                .check(&with_prev_result(&conf, &r).unwrap(), &a)
                .unwrap_or_else(|e| panic!("[{v}] CHECK: {e}"));
        }
        node.runner.del(&conf, &a).unwrap();
        assert!(node.allocations().is_empty(), "[{v}]");
        assert!(pod_link(&pod, "eth0").is_none());
    }
}

#[test]
fn go_bridge_with_our_host_local() {
    if !root() || !have_go() {
        return;
    }
    let Some(node) = Node::with_bridge(go_bridge(), Ipam::Ours) else {
        return;
    };
    for v in [Version::V0_4_0, Version::V1_0_0] {
        let pod = node.pod();
        let conf = node.conf(
            v,
            json!({"isDefaultGateway": true, "ipam": node.ipam(&["10.31.0.0/24"])}),
        );
        let a = att(&format!("go-br-{v}"), &pod);
        let r = node
            .runner
            .add(&conf, &a)
            .unwrap_or_else(|e| panic!("[{v}] {e}"));
        assert_eq!(r.ips[0].gateway, Some("10.31.0.1".parse().unwrap()));
        assert_eq!(
            node.allocations(),
            vec![r.ips[0].address.addr().to_string()],
            "[{v}] our host-local's file"
        );
        node.runner
            .check(&with_prev_result(&conf, &r).unwrap(), &a)
            .unwrap_or_else(|e| panic!("[{v}] CHECK: {e}"));
        node.runner.del(&conf, &a).unwrap();
        assert!(node.allocations().is_empty());
    }
}

/// Replace what differs between two runs (MACs, veth names, addresses' last octet).
fn normalize(r: &CniResult, pod: &cni_testkit::TempNetns) -> Value {
    let mut v = serde_json::to_value(r).unwrap();
    if let Some(ifs) = v["interfaces"].as_array_mut() {
        for i in ifs {
            if i.get("mac").is_some() {
                i["mac"] = json!("<mac>");
            }
            if i["name"].as_str().is_some_and(|n| n.starts_with("veth")) {
                i["name"] = json!("<veth>");
            }
            if i.get("sandbox").is_some() {
                assert_eq!(i["sandbox"], json!(pod.path()));
                i["sandbox"] = json!("<netns>");
            }
        }
    }
    if let Some(ips) = v["ips"].as_array_mut() {
        for ip in ips {
            ip["address"] = json!("<addr>");
        }
    }
    v
}

#[test]
fn same_result_layout_as_the_go_bridge() {
    if !root() || !have_go() {
        return;
    }
    let (Some(ours), Some(go)) = (
        Node::new(Ipam::Go),
        Node::with_bridge(go_bridge(), Ipam::Go),
    ) else {
        return;
    };
    for v in [Version::V0_3_1, Version::V0_4_0, Version::V1_0_0] {
        let extra = |n: &Node| {
            json!({"isDefaultGateway": true, "hairpinMode": true,
                   "dns": {"nameservers": ["10.32.0.53"]},
                   "ipam": n.ipam(&["10.32.0.0/24"])})
        };
        let (p1, p2) = (ours.pod(), go.pod());
        let c1 = ours.conf(v, extra(&ours));
        let c2 = go.conf(v, extra(&go));
        let r1 = ours.runner.add(&c1, &att("same", &p1)).unwrap();
        let r2 = go.runner.add(&c2, &att("same", &p2)).unwrap();
        assert_eq!(normalize(&r1, &p1), normalize(&r2, &p2), "[{v}]");
        assert_eq!(addrs(&p1, "eth0"), addrs(&p2, "eth0"), "[{v}]");
        assert_eq!(common::routes(&p1), common::routes(&p2), "[{v}]");
        ours.runner.del(&c1, &att("same", &p1)).unwrap();
        go.runner.del(&c2, &att("same", &p2)).unwrap();
    }
}

/// Two runners on the same node: ours and the Go bridge, sharing the IPAM data dir.
fn both() -> Option<(Node, cni_testkit::PluginRunner)> {
    let node = Node::new(Ipam::Go)?;
    let go = cni_testkit::PluginRunner::new(go_bridge())
        .cni_path([node.bins.path()])
        .in_netns(&node.ns)
        .expect("the Go bridge runner in the node namespace");
    Some((node, go))
}

#[test]
fn masquerade_set_up_by_one_is_removed_by_the_other() {
    if !root() || !have_go() {
        return;
    }
    let Some((node, go)) = both() else {
        return;
    };
    let conf = node.conf(
        Version::V1_0_0,
        json!({"isGateway": true, "ipMasq": true, "ipam": node.ipam(&["10.33.0.0/24"])}),
    );
    for (name, adder, deleter) in [
        ("go-then-ours", &go, &node.runner),
        ("ours-then-go", &node.runner, &go),
    ] {
        let pod = node.pod();
        let a = att(name, &pod);
        adder
            .add(&conf, &a)
            .unwrap_or_else(|e| panic!("[{name}] ADD: {e}"));
        let chain = cni_bridge::masq::iptables_chain("testnet", name);
        assert!(
            node.exec("iptables-save", &["-t", "nat"])
                .contains(&format!(":{chain}")),
            "[{name}]"
        );
        deleter
            .del(&conf, &a)
            .unwrap_or_else(|e| panic!("[{name}] DEL: {e}"));
        let ipt = node.exec("iptables-save", &["-t", "nat"]);
        assert!(!ipt.contains(&chain), "[{name}] chain left:\n{ipt}");
        assert!(node.allocations().is_empty(), "[{name}]");
    }

    // A node switching from the Go bridge v1.1.1 (iptables) to ours with the nftables backend:
    // our DEL still removes the Go plugin's iptables chain (v1.1.1 ignores ipMasqBackend).
    let nft_conf = node.conf(
        Version::V1_0_0,
        json!({"isGateway": true, "ipMasq": true, "ipMasqBackend": "nftables",
               "ipam": node.ipam(&["10.33.0.0/24"])}),
    );
    let pod = node.pod();
    let a = att("go-then-ours-nft", &pod);
    go.add(&nft_conf, &a).unwrap();
    let chain = cni_bridge::masq::iptables_chain("testnet", "go-then-ours-nft");
    assert!(node.exec("iptables-save", &["-t", "nat"]).contains(&chain));
    node.runner.del(&nft_conf, &a).unwrap();
    let ipt = node.exec("iptables-save", &["-t", "nat"]);
    assert!(!ipt.contains(&chain), "chain left:\n{ipt}");
    assert!(node.allocations().is_empty());

    // The Go bridge leaks its chain on a DEL without namespace (plugins #810); ours cleans it.
    let pod = node.pod();
    let a = att("leak", &pod);
    go.add(&conf, &a).unwrap();
    go.del(&conf, &a.without_netns()).unwrap();
    let chain = cni_bridge::masq::iptables_chain("testnet", "leak");
    assert!(
        node.exec("iptables-save", &["-t", "nat"]).contains(&chain),
        "the reference is expected to leak here"
    );
    node.runner.del(&conf, &a.without_netns()).unwrap();
    assert!(!node.exec("iptables-save", &["-t", "nat"]).contains(&chain));
}

#[test]
fn spoof_check_set_up_by_one_is_removed_by_the_other() {
    if !root() || !have_go() {
        return;
    }
    let Some((node, go)) = both() else {
        return;
    };
    let conf = node.conf(
        Version::V1_0_0,
        json!({"macspoofchk": true, "ipam": node.ipam(&["10.34.0.0/24"])}),
    );
    for (name, adder, deleter) in [
        ("gothenours", &go, &node.runner),
        ("oursthengo", &node.runner, &go),
    ] {
        let pod = node.pod();
        let a = att(name, &pod);
        adder
            .add(&conf, &a)
            .unwrap_or_else(|e| panic!("[{name}] ADD: {e}"));
        let nft = node.exec("nft", &["list", "table", "bridge", "nat"]);
        assert!(
            nft.contains(&format!("cni-br-iface-{name}-eth0")),
            "[{name}] {nft}"
        );
        deleter
            .del(&conf, &a)
            .unwrap_or_else(|e| panic!("[{name}] DEL: {e}"));
        let nft = node.exec("nft", &["list", "table", "bridge", "nat"]);
        assert!(!nft.contains(name), "[{name}] left:\n{nft}");
    }

    // A container ID with a `-`: the Go plugin uses the reference's (ambiguous) names, ours a
    // hashed id. Our DEL finds the Go plugin's check by its port.
    let pod = node.pod();
    let a = att("go-cid-1", &pod);
    go.add(&conf, &a).unwrap();
    let nft = node.exec("nft", &["list", "table", "bridge", "nat"]);
    assert!(nft.contains("cni-br-iface-go-cid-1-eth0"), "{nft}");
    node.runner.del(&conf, &a).unwrap();
    let nft = node.exec("nft", &["list", "table", "bridge", "nat"]);
    assert!(!nft.contains("go-cid-1"), "left:\n{nft}");
    // The other way, the Go plugin's DEL does not find our hashed names (it only reports that
    // on stderr and succeeds); the check is inert without its port, and our GC removes it.
    // (Layer 2: the Go host-local v1.1.1 knows no GC.)
    let conf = node.conf(Version::V1_0_0, json!({"macspoofchk": true}));
    let pod = node.pod();
    let a = att("ours-cid-1", &pod);
    node.runner.add(&conf, &a).unwrap();
    let chain =
        cni_bridge::spoofchk::iface_chain(&cni_bridge::spoofchk::ref_id("ours-cid-1", "eth0"));
    go.del(&conf, &a).unwrap();
    node.runner
        .gc(&cni_testkit::runner::with_valid_attachments(
            &cni_testkit::runner::with_version(&conf, Version::V1_1_0),
            &[],
        ))
        .unwrap();
    let nft = node.exec("nft", &["list", "table", "bridge", "nat"]);
    assert!(!nft.contains(&chain), "left:\n{nft}");
}

/// The iptables chain name and comment our bridge derives for (network, container ID) are the
/// ones the Go bridge writes: read from the `nat` table after a Go ADD, not from our own
/// formatter.
#[test]
fn iptables_masquerade_names_are_the_go_bridge_s() {
    if !root() || !have_go() {
        return;
    }
    let Some((node, go)) = both() else {
        return;
    };
    for (network, cid) in [
        ("testnet", "f9b1c8a3d2e4"),
        (
            "a.network_with-a-name-longer-than-any-chain-name",
            "a.b_c-d9",
        ),
    ] {
        let mut conf = node.conf(
            Version::V1_0_0,
            json!({"isGateway": true, "ipMasq": true, "ipam": node.ipam(&["10.35.0.0/24"])}),
        );
        conf["name"] = json!(network);
        let pod = node.pod();
        let a = att(cid, &pod);
        let r = go
            .add(&conf, &a)
            .unwrap_or_else(|e| panic!("[{network}] Go ADD: {e}"));
        let ip = common::first_v4(&r);
        let saved = node.exec("iptables-save", &["-t", "nat"]);
        let jump = saved
            .lines()
            .find(|l| l.starts_with(&format!("-A POSTROUTING -s {ip}/32 ")))
            .unwrap_or_else(|| panic!("[{network}] no jump of the Go bridge:\n{saved}"));
        let chain = cni_bridge::masq::iptables_chain(network, cid);
        // iptables-save quotes the comment, escaping `\` and `"`.
        let quoted = format!(
            "\"{}\"",
            cni_bridge::masq::iptables_comment(network, cid)
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
        );
        assert_eq!(
            jump,
            format!("-A POSTROUTING -s {ip}/32 -m comment --comment {quoted} -j {chain}"),
            "[{network}]"
        );
        assert!(saved.contains(&format!(":{chain} - [0:0]")), "{saved}");
        go.del(&conf, &a)
            .unwrap_or_else(|e| panic!("[{network}] Go DEL: {e}"));
    }
}
