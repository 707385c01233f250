//! Interop with the Go reference portmap v1.1.1 (/usr/lib/cni/portmap), iptables backend:
//! both produce the same rules, each deletes what the other created, each CHECKs the other's
//! state. Plugins run as processes inside throw-away node namespaces.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] functions

mod common;

use std::collections::BTreeMap;

use cni_testkit::bins::CniPathDir;
use cni_testkit::{Attachment, PluginRunner, TempNetns};

use common::*;

const MAPS: &str = r#"{"hostPort":8080,"containerPort":80,"protocol":"tcp"},
    {"hostPort":8081,"containerPort":80,"protocol":"tcp"},
    {"hostPort":5353,"containerPort":53,"protocol":"udp"},
    {"hostPort":8083,"containerPort":83,"protocol":"tcp","hostIP":"192.168.0.2"},
    {"hostPort":8084,"containerPort":84,"protocol":"tcp","hostIP":"0.0.0.0"},
    {"hostPort":8085,"containerPort":85,"protocol":"tcp","hostIP":"fd00:a::1"},
    {"hostPort":8086,"containerPort":86,"protocol":"sctp","hostIP":"::"}"#;

struct Plugins {
    dir: CniPathDir,
}

impl Plugins {
    fn new() -> Plugins {
        let dir = CniPathDir::new().unwrap().ours(&["portmap"]).unwrap();
        let go = cni_testkit::bins::go_plugin("portmap").unwrap();
        let dir = dir.link("go-portmap", &go).unwrap();
        Plugins { dir }
    }

    fn ours(&self, node: &TempNetns) -> PluginRunner {
        PluginRunner::new(self.dir.plugin("portmap"))
            .cni_path([self.dir.path()])
            .in_netns(node)
            .unwrap()
    }

    fn go(&self, node: &TempNetns) -> PluginRunner {
        PluginRunner::new(self.dir.plugin("go-portmap"))
            .cni_path([self.dir.path()])
            .in_netns(node)
            .unwrap()
    }
}

/// The config both receive (no `backend`: ours detects iptables, v1.1.1 knows nothing else).
fn config(addrs: &[&str], sandbox: &str) -> String {
    let ips: Vec<String> = addrs
        .iter()
        .map(|a| format!(r#"{{"address":"{a}","interface":0}}"#))
        .collect();
    format!(
        r#"{{"cniVersion":"1.0.0","name":"interop","type":"portmap",
        "runtimeConfig":{{"portMappings":[{MAPS}]}},
        "prevResult":{{"cniVersion":"1.0.0","interfaces":[{{"name":"eth0","sandbox":"{sandbox}"}}],
          "ips":[{}]}}}}"#,
        ips.join(",")
    )
}

/// The nat table as chain -> rules, ignoring chain order and counters.
fn nat(ns: &TempNetns, v6: bool) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in iptables_nat(ns, v6).lines() {
        if let Some(decl) = l.strip_prefix(':') {
            let name = decl.split_whitespace().next().unwrap().to_owned();
            out.entry(name).or_default();
        } else if let Some(rule) = l.strip_prefix("-A ") {
            let (chain, rest) = rule.split_once(' ').unwrap();
            out.entry(chain.to_owned())
                .or_default()
                .push(rest.to_owned());
        }
    }
    out
}

fn dn_chains(t: &BTreeMap<String, Vec<String>>) -> Vec<&String> {
    t.keys().filter(|k| k.starts_with("CNI-DN-")).collect()
}

#[test]
fn same_rules_as_the_go_plugin() {
    if !root() {
        return;
    }
    let p = Plugins::new();
    let (node_go, node_ours) = (
        TempNetns::new("pmgo").unwrap(),
        TempNetns::new("pmours").unwrap(),
    );
    let pod = TempNetns::new("pmpod").unwrap();
    let conf = config(
        &["10.0.0.2/24", "fd00::2/64"],
        &pod.path().display().to_string(),
    );
    let att = Attachment::new("ctr-interop", pod.path(), "eth0");
    p.go(&node_go).add(&conf, &att).unwrap();
    p.ours(&node_ours).add(&conf, &att).unwrap();
    for v6 in [false, true] {
        let (g, o) = (nat(&node_go, v6), nat(&node_ours, v6));
        assert_eq!(o, g, "nat table (v6: {v6}) differs from the Go plugin's");
        assert_eq!(dn_chains(&o).len(), 1);
    }
    // Adding a second container keeps them identical (ordering in the shared chains).
    let att2 = Attachment::new("ctr-two", pod.path(), "eth0");
    let conf2 = config(&["10.0.0.3/24"], &pod.path().display().to_string());
    p.go(&node_go).add(&conf2, &att2).unwrap();
    p.ours(&node_ours).add(&conf2, &att2).unwrap();
    assert_eq!(nat(&node_ours, false), nat(&node_go, false));
    assert_eq!(nat(&node_ours, true), nat(&node_go, true));
}

#[test]
fn each_deletes_what_the_other_created() {
    if !root() {
        return;
    }
    let p = Plugins::new();
    let node = TempNetns::new("pmx").unwrap();
    let pod = TempNetns::new("pmpod").unwrap();
    let sandbox = pod.path().display().to_string();
    let conf = config(&["10.0.0.2/24", "fd00::2/64"], &sandbox);
    let (ours_att, go_att) = (
        Attachment::new("made-by-ours", pod.path(), "eth0"),
        Attachment::new("made-by-go", pod.path(), "eth0"),
    );
    let empty = (nat(&node, false), nat(&node, true));
    p.ours(&node).add(&conf, &ours_att).unwrap();
    p.go(&node).add(&conf, &go_att).unwrap();
    assert_eq!(dn_chains(&nat(&node, false)).len(), 2);
    assert_eq!(dn_chains(&nat(&node, true)).len(), 2);

    // The Go plugin deletes ours, we delete the Go plugin's.
    p.go(&node).del(&conf, &ours_att).unwrap();
    p.ours(&node).del(&conf, &go_att).unwrap();
    for v6 in [false, true] {
        let t = nat(&node, v6);
        assert!(dn_chains(&t).is_empty(), "{t:#?}");
        assert!(t["CNI-HOSTPORT-DNAT"].is_empty(), "{t:#?}");
        // Only the shared chains and their entry rules are left, as after the Go plugin's
        // own ADD + DEL.
        let before = if v6 { &empty.1 } else { &empty.0 };
        for (chain, rules) in &t {
            if before.contains_key(chain) && before[chain] == *rules {
                continue;
            }
            assert!(
                chain.starts_with("CNI-HOSTPORT-")
                    || rules.iter().all(|r| r.contains("CNI-HOSTPORT-")),
                "unexpected leftover in {chain}: {rules:?}"
            );
        }
    }
    // Both are idempotent on what is already gone.
    p.go(&node).del(&conf, &go_att).unwrap();
    p.ours(&node).del(&conf, &ours_att).unwrap();
}

#[test]
fn check_across_implementations() {
    if !root() {
        return;
    }
    let p = Plugins::new();
    let node = TempNetns::new("pmchk").unwrap();
    let pod = TempNetns::new("pmpod").unwrap();
    let sandbox = pod.path().display().to_string();
    for (i, addrs) in [&["10.0.0.2/24", "fd00::2/64"][..], &["10.0.0.3/24"][..]]
        .iter()
        .enumerate()
    {
        let conf = config(addrs, &sandbox);
        let by_go = Attachment::new(format!("go-{i}"), pod.path(), "eth0");
        let by_ours = Attachment::new(format!("ours-{i}"), pod.path(), "eth0");
        p.go(&node).add(&conf, &by_go).unwrap();
        p.ours(&node).add(&conf, &by_ours).unwrap();
        // Ours accepts both states.
        p.ours(&node).check(&conf, &by_go).unwrap();
        p.ours(&node).check(&conf, &by_ours).unwrap();
        // The Go plugin judges both states the same way.
        let go_on_go = p.go(&node).check(&conf, &by_go).is_ok();
        let go_on_ours = p.go(&node).check(&conf, &by_ours).is_ok();
        assert_eq!(
            go_on_go, go_on_ours,
            "Go CHECK differs between the two states ({addrs:?})"
        );
        println!(
            "Go v1.1.1 CHECK with addresses {addrs:?}: {}",
            if go_on_go { "passes" } else { "fails" }
        );
        // CHECK notices a deleted rule.
        p.ours(&node).del(&conf, &by_ours).unwrap();
        assert!(p.ours(&node).check(&conf, &by_ours).is_err());
    }
}
