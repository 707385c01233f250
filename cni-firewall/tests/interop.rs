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
