//! Interop with the Go reference plugins v1.1.1 (/usr/lib/cni): our tuning chained after the
//! Go bridge, the Go tuning chained after our bridge, and the saved originals written by one
//! tuning and restored by the other's DEL. Only keys v1.1.1 knows are used with it (no
//! `txQLen`, no allow-list).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cni_testkit::cni_proto::runtime::RuntimeConf;
use cni_testkit::{ChainRunner, TempDir, TempNetns, bins, random_hex};
use common::{Pod, json_of, with_prev};
use serde_json::{Value, json};

/// bridge + host-local + tuning, with private data directories.
fn conflist(data: &TempDir, subnet: &str) -> Value {
    json!({"cniVersion": "1.0.0", "name": "tunchain", "plugins": [
        {"type": "bridge", "bridge": "cnitun0", "isGateway": true,
         "ipam": {"type": "host-local", "subnet": subnet, "dataDir": data.join("ipam")}},
        {"type": "tuning", "dataDir": data.join("tuning"), "mac": "c2:11:22:33:44:55",
         "mtu": 1400, "promisc": true, "allmulti": true,
         "sysctl": {"net.ipv4.conf.eth0.arp_notify": "1", "net.core.somaxconn": "321"}}
    ]})
}

/// Runs the chain ADD, CHECK, DEL with the given plugin mix and checks the pod in between.
fn chain_mix(path: &bins::CniPathDir, subnet: &str) {
    let node = TempNetns::new("tun-chain-node").unwrap();
    let pod = TempNetns::new("tun-chain-pod").unwrap();
    let data = TempDir::new("tun-chain").unwrap();
    let chain = ChainRunner::from_json(&conflist(&data, subnet), [path.path()])
        .unwrap()
        .in_netns(&node)
        .unwrap();
    let id = format!("ctr-{}", random_hex());
    let rt = RuntimeConf::new(&id, pod.path().display().to_string(), "eth0");
    let r = chain.add(&rt).unwrap();
    let eth0 = pod
        .netlink()
        .unwrap()
        .link_by_name("eth0")
        .unwrap()
        .unwrap();
    assert_eq!(eth0.mac, Some([0xc2, 0x11, 0x22, 0x33, 0x44, 0x55]));
    assert_eq!(eth0.mtu, 1400);
    assert!(eth0.promisc && eth0.allmulti, "{eth0:?}");
    assert_eq!(
        pod.sysctl_get("net.ipv4.conf.eth0.arp_notify").unwrap(),
        "1"
    );
    assert_eq!(pod.sysctl_get("net.core.somaxconn").unwrap(), "321");
    let j = json_of(&r);
    let sandbox = j["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "eth0")
        .unwrap();
    assert_eq!(sandbox["mac"], "c2:11:22:33:44:55");
    assert!(data.join(format!("tuning/{id}_eth0.json")).exists());
    chain.check(&rt).unwrap();
    chain.del(&rt).unwrap();
    assert!(
        pod.netlink()
            .unwrap()
            .link_by_name("eth0")
            .unwrap()
            .is_none()
    );
    assert!(!data.join(format!("tuning/{id}_eth0.json")).exists());
}

#[test]
fn our_tuning_after_the_go_bridge() {
    if !cni_testkit::require_root() {
        return;
    }
    let path = bins::CniPathDir::new()
        .unwrap()
        .go(&["bridge", "host-local"])
        .unwrap()
        .ours(&["tuning"])
        .unwrap();
    chain_mix(&path, "10.77.1.0/24");
}

#[test]
fn the_go_tuning_after_our_bridge() {
    if !cni_testkit::require_root() {
        return;
    }
    let path = bins::CniPathDir::new()
        .unwrap()
        .ours(&["bridge", "host-local"])
        .unwrap()
        .go(&["tuning"])
        .unwrap();
    chain_mix(&path, "10.77.2.0/24");
}

/// The keys v1.1.1 knows.
fn keys_111(p: &Pod) -> Value {
    p.conf(json!({"mac": "c2:11:22:33:44:55", "mtu": 1400, "promisc": true, "allmulti": true}))
}

#[test]
fn go_saves_the_same_file_as_ours() {
    let Some(p) = Pod::new() else { return };
    let conf = keys_111(&p);
    p.go().add(&conf, &p.att()).unwrap();
    let go_file = std::fs::read_to_string(p.saved_file()).unwrap();
    p.go().del(&conf, &p.att()).unwrap();
    assert!(!p.saved_file().exists());
    let r = p.ours().add(&conf, &p.att()).unwrap();
    let our_file = std::fs::read_to_string(p.saved_file()).unwrap();
    assert_eq!(our_file, go_file);
    p.ours().del(&with_prev(&conf, &r), &p.att()).unwrap();
}

#[test]
fn state_written_by_ours_is_restored_by_go_and_the_other_way_round() {
    let Some(p) = Pod::new() else { return };
    let before = p.eth0();
    let conf = keys_111(&p);

    // Ours ADD, Go's CHECK and DEL.
    let r = p.ours().add(&conf, &p.att()).unwrap();
    assert_eq!(p.eth0().mtu, 1400);
    p.go().check(&with_prev(&conf, &r), &p.att()).unwrap();
    p.go().del(&with_prev(&conf, &r), &p.att()).unwrap();
    let after = p.eth0();
    assert_eq!((after.mac, after.mtu), (before.mac, before.mtu));
    assert_eq!((after.promisc, after.allmulti), (false, false));
    assert!(!p.saved_file().exists(), "Go's DEL removed our file");

    // Go's ADD, our CHECK and DEL.
    let r = p.go().add(&conf, &p.att()).unwrap();
    assert_eq!(p.eth0().mac, Some([0xc2, 0x11, 0x22, 0x33, 0x44, 0x55]));
    p.ours().check(&with_prev(&conf, &r), &p.att()).unwrap();
    p.ours().del(&with_prev(&conf, &r), &p.att()).unwrap();
    let after = p.eth0();
    assert_eq!((after.mac, after.mtu), (before.mac, before.mtu));
    assert_eq!((after.promisc, after.allmulti), (false, false));
    assert!(!p.saved_file().exists(), "our DEL removed Go's file");
}

#[test]
fn results_and_errors_match_the_go_tuning() {
    let Some(p) = Pod::new() else { return };
    let conf = keys_111(&p);
    let ours = p.ours().add(&conf, &p.att()).unwrap();
    p.ours().del(&with_prev(&conf, &ours), &p.att()).unwrap();
    let go = p.go().add(&conf, &p.att()).unwrap();
    p.go().del(&with_prev(&conf, &go), &p.att()).unwrap();
    assert_eq!(json_of(&ours), json_of(&go));

    // v1.1.1 quotes the sysctl key before its dots become slashes; newer references (and we)
    // after (upstream 198ab129, which also made keys with dotted interface names work).
    for (extra, ours_msg, go_msg) in [
        (
            json!({"sysctl": {"kernel.hostname": "x"}}),
            "invalid net sysctl key: \"kernel/hostname\"",
            "invalid net sysctl key: \"kernel.hostname\"",
        ),
        (
            json!({"mac": "zz"}),
            "invalid args zz for MAC addr: address zz: invalid MAC address",
            "invalid args zz for MAC addr: address zz: invalid MAC address",
        ),
    ] {
        let c = p.conf(extra);
        let o = p.ours().add(&c, &p.att()).unwrap_err();
        let g = p.go().add(&c, &p.att()).unwrap_err();
        assert_eq!(o.cni_error().unwrap().msg, ours_msg);
        assert_eq!(g.cni_error().unwrap().msg, go_msg);
    }
    let mut c = p.conf(json!({}));
    c.as_object_mut().unwrap().remove("prevResult");
    let o = p.ours().add(&c, &p.att()).unwrap_err();
    let g = p.go().add(&c, &p.att()).unwrap_err();
    assert_eq!(o.cni_error().unwrap().msg, g.cni_error().unwrap().msg);
}
