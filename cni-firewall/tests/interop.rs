//! Interop with the Go firewall v1.1.1 (iptables backend) in a throw-away node namespace:
//! both write the same rules (ours adds only its `DNAT` accept rule), each CHECKs what the
//! other added, and each DELs what the other added.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cni_testkit::{Attachment, PluginRunner, TempDir, TempNetns, bins};
use serde_json::{Value, json};

fn conf(data: &TempDir) -> Value {
    json!({"cniVersion": "1.0.0", "name": "fwinterop", "type": "firewall",
        "backend": "iptables", "ingressPolicy": "same-bridge", "dataDir": data.path(),
        "prevResult": {"cniVersion": "1.0.0",
            "interfaces": [{"name": "fwi0"}, {"name": "vethfwi"}, {"name": "eth0", "sandbox": "/x"}],
            "ips": [{"address": "10.99.0.5/24", "interface": 2, "gateway": "10.99.0.1"},
                    {"address": "fd00:99::5/64", "interface": 2}]}})
}

/// `iptables-save` and `ip6tables-save` of the filter table, without comments and counters.
fn state(node: &TempNetns) -> String {
    let mut s = String::new();
    for bin in ["iptables-save", "ip6tables-save"] {
        let out = node.exec_ok(bin, &["-t", "filter"]).unwrap().stdout_text();
        for l in out.lines().filter(|l| !l.starts_with('#')) {
            let l = match l.find(" [") {
                Some(i) if l.starts_with(':') => &l[..i],
                _ => l,
            };
            s.push_str(l);
            s.push('\n');
        }
    }
    s
}

fn without_dnat(s: &str) -> String {
    s.lines()
        .filter(|l| !l.contains("--ctstate DNAT"))
        .map(|l| format!("{l}\n"))
        .collect()
}

struct Setup {
    node: TempNetns,
    _pod: TempNetns,
    data: TempDir,
    att: Attachment,
    ours: PluginRunner,
    go: PluginRunner,
}

fn setup() -> Option<Setup> {
    if !cni_testkit::require_root() {
        return None;
    }
    let node = TempNetns::new("fwi-node").unwrap();
    let pod = TempNetns::new("fwi-pod").unwrap();
    let data = TempDir::new("fwi").unwrap();
    let att = Attachment::new("ctr-fwi", pod.path(), "eth0");
    let ours = PluginRunner::new(bins::our_plugin("firewall").unwrap())
        .in_netns(&node)
        .unwrap();
    let go = PluginRunner::new(bins::go_plugin("firewall").unwrap())
        .in_netns(&node)
        .unwrap();
    Some(Setup {
        node,
        _pod: pod,
        data,
        att,
        ours,
        go,
    })
}

#[test]
fn same_rules_as_the_go_firewall() {
    let Some(s) = setup() else { return };
    let c = conf(&s.data);
    let empty = state(&s.node);
    s.go.add(&c, &s.att).unwrap();
    let go_state = state(&s.node);
    s.go.del(&c, &s.att).unwrap();
    // The Go DEL leaves its chains and isolation rules; start ours from an empty table.
    s.node.exec_ok("iptables", &["-F"]).unwrap();
    s.node.exec_ok("iptables", &["-X"]).unwrap();
    s.node.exec_ok("ip6tables", &["-F"]).unwrap();
    s.node.exec_ok("ip6tables", &["-X"]).unwrap();
    assert_eq!(state(&s.node), empty);
    s.ours.add(&c, &s.att).unwrap();
    let our_state = state(&s.node);
    assert_eq!(without_dnat(&our_state), go_state);
    assert!(our_state.contains(
        "-A CNI-FORWARD -m conntrack --ctstate DNAT -m comment --comment \"CNI firewall plugin rules (DNAT)\" -j ACCEPT"
    ));
    // Adding again changes nothing (idempotent).
    s.ours.add(&c, &s.att).unwrap();
    assert_eq!(state(&s.node), our_state);
    s.ours.del(&c, &s.att).unwrap();
}

#[test]
fn ours_checks_and_deletes_what_the_go_firewall_added() {
    let Some(s) = setup() else { return };
    let c = conf(&s.data);
    s.go.add(&c, &s.att).unwrap();
    s.ours.check(&c, &s.att).unwrap();
    s.ours.del(&c, &s.att).unwrap();
    let after = state(&s.node);
    assert!(
        !after.contains("10.99.0.5") && !after.contains("fd00:99::5"),
        "{after}"
    );
    // No port is on fwi0 (it does not even exist): its isolation went too.
    assert!(!after.contains("fwi0"), "{after}");
    // The pod is gone: CHECK fails with the reference's message.
    let e = s.ours.check(&c, &s.att).unwrap_err();
    assert!(format!("{e:?}").contains("not found"), "{e:?}");
}

#[test]
fn the_go_firewall_checks_and_deletes_what_ours_added() {
    let Some(s) = setup() else { return };
    let c = conf(&s.data);
    s.ours.add(&c, &s.att).unwrap();
    s.go.check(&c, &s.att).unwrap();
    s.go.del(&c, &s.att).unwrap();
    let after = state(&s.node);
    assert!(
        !after.contains("10.99.0.5") && !after.contains("fd00:99::5"),
        "{after}"
    );
    // Ours again: nothing left to delete is no error.
    s.ours.del(&c, &s.att).unwrap();
}

/// A config like [`conf`] on bridge `bridge` with host veth `veth` and address `addr`.
fn conf_on(data: &TempDir, bridge: &str, veth: &str, addr: &str) -> Value {
    let mut c = conf(data);
    c["prevResult"]["interfaces"][0]["name"] = bridge.into();
    c["prevResult"]["interfaces"][1]["name"] = veth.into();
    c["prevResult"]["ips"] = json!([{"address": addr, "interface": 2}]);
    c
}

/// Our DEL removes its bridge's isolation only once nothing else is on the bridge, and never
/// what a Go firewall on the node still needs: the Go pod's bridge keeps its rules and the
/// chains stay; a bridge with a Go pod's port keeps its rules too.
#[test]
fn isolation_teardown_leaves_a_go_firewall_alone() {
    let Some(s) = setup() else { return };
    // The Go pod on fwx0, and (as the Go plugin would) a pod of ours on fwi0.
    let go_conf = conf_on(&s.data, "fwx0", "vethx", "10.98.0.5/24");
    let go_att = Attachment::new("ctr-go", s._pod.path(), "eth0");
    s.go.add(&go_conf, &go_att).unwrap();
    let c = conf(&s.data);
    s.ours.add(&c, &s.att).unwrap();

    // fwi0 exists with another pod's port on it: our DEL keeps its isolation.
    {
        let mut nl = s.node.netlink().unwrap();
        let br = nl.add_bridge("fwi0", &Default::default()).unwrap();
        let mut req = cni_testkit::cni_linux::netlink::VethRequest::new("vethother", "vethpeer");
        req.master = Some(br.index);
        nl.add_veth(&req).unwrap();
    }
    s.ours.del(&c, &s.att).unwrap();
    let after = state(&s.node);
    assert!(after.contains("-i fwi0 ! -o fwi0"), "{after}");
    // Once the other port is gone, the next DEL (or GC) removes it; fwx0's stay.
    s.node.exec_ok("ip", &["link", "del", "vethother"]).unwrap();
    s.ours.del(&c, &s.att).unwrap();
    let after = state(&s.node);
    assert!(!after.contains("fwi0"), "{after}");
    assert!(after.contains("-i fwx0 ! -o fwx0"), "{after}");
    assert!(after.contains("-A FORWARD -m comment --comment \"CNI firewall plugin rules (ingressPolicy: same-bridge)\" -j CNI-ISOLATION-STAGE-1"), "{after}");
    s.go.check(&go_conf, &go_att).unwrap();
    s.go.del(&go_conf, &go_att).unwrap();
}

/// GC against the kernel: the rules of an attachment missing from the valid list go, the
/// valid one's stay (both backends).
#[test]
fn gc_removes_only_invalid_attachments() {
    let Some(s) = setup() else { return };
    for backend in ["iptables", "nftables"] {
        let mut a = conf_on(&s.data, "fwg0", "vethg1", "10.97.0.5/24");
        let mut b = conf_on(&s.data, "fwg0", "vethg2", "10.97.0.6/24");
        a["backend"] = backend.into();
        b["backend"] = backend.into();
        let att_a = Attachment::new("ctr-a", s._pod.path(), "eth0");
        let att_b = Attachment::new("ctr-b", s._pod.path(), "eth0");
        s.ours.add(&a, &att_a).unwrap();
        s.ours.add(&b, &att_b).unwrap();
        let mut gc = a.clone();
        gc.as_object_mut().unwrap().remove("prevResult");
        gc["cniVersion"] = "1.1.0".into();
        gc["cni.dev/valid-attachments"] = json!([{"containerID": "ctr-b", "ifname": "eth0"}]);
        s.ours.gc(&gc).unwrap();
        let rules = format!(
            "{}{}",
            state(&s.node),
            s.node
                .exec_ok("nft", &["list", "ruleset"])
                .unwrap()
                .stdout_text()
        );
        assert!(!rules.contains("10.97.0.5"), "{backend}: {rules}");
        assert!(rules.contains("10.97.0.6"), "{backend}: {rules}");
        s.ours.check(&b, &att_b).unwrap();
        s.ours.del(&b, &att_b).unwrap();
    }
}
