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
    config_with(addrs, sandbox, "")
}

/// [`config`] with `extra` keys (starting with a comma).
fn config_with(addrs: &[&str], sandbox: &str, extra: &str) -> String {
    let ips: Vec<String> = addrs
        .iter()
        .map(|a| format!(r#"{{"address":"{a}","interface":0}}"#))
        .collect();
    format!(
        r#"{{"cniVersion":"1.0.0","name":"interop","type":"portmap"{extra},
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

/// Issue 19 item 5: the keys that change the rules, each diffed against the Go plugin's
/// rules (not only our own rule text): `snat`, `masqAll`, `markMasqBit`,
/// `externalSetMarkChain`, `conditionsV4`/`conditionsV6`.
#[test]
fn same_rules_as_the_go_plugin_for_every_key() {
    if !root() {
        return;
    }
    let p = Plugins::new();
    let pod = TempNetns::new("pmpod").unwrap();
    let sandbox = pod.path().display().to_string();
    for extra in [
        r#","snat":false"#,
        r#","masqAll":true"#,
        r#","markMasqBit":5"#,
        r#","externalSetMarkChain":"KUBE-MARK-MASQ""#,
        r#","conditionsV4":["!","-s","10.9.0.0/16"],"conditionsV6":["!","-s","fd00:9::/64"]"#,
        r#","snat":true,"masqAll":true,"markMasqBit":20,"conditionsV6":["-m","comment","--comment","v6 only"]"#,
    ] {
        let (node_go, node_ours) = (
            TempNetns::new("pmgo").unwrap(),
            TempNetns::new("pmours").unwrap(),
        );
        if extra.contains("externalSetMarkChain") {
            // The chain belongs to someone else (kube-proxy); it must exist.
            for n in [&node_go, &node_ours] {
                n.exec_ok("iptables", &["-t", "nat", "-N", "KUBE-MARK-MASQ"])
                    .unwrap();
                n.exec_ok("ip6tables", &["-t", "nat", "-N", "KUBE-MARK-MASQ"])
                    .unwrap();
            }
        }
        let conf = config_with(&["10.0.0.2/24", "fd00::2/64"], &sandbox, extra);
        let att = Attachment::new("ctr-keys", pod.path(), "eth0");
        p.go(&node_go)
            .add(&conf, &att)
            .unwrap_or_else(|e| panic!("Go ADD with {extra}: {e}"));
        p.ours(&node_ours)
            .add(&conf, &att)
            .unwrap_or_else(|e| panic!("our ADD with {extra}: {e}"));
        for v6 in [false, true] {
            let mut want = nat(&node_go, v6);
            if extra.contains(r#""masqAll":true"#) {
                want = masq_all_of(want);
            }
            assert_eq!(
                nat(&node_ours, v6),
                want,
                "nat table (v6: {v6}) with {extra} differs from the Go plugin's"
            );
        }
        // And each deletes the other's (v1.1.1 finds chains by name, whatever their rules).
        p.go(&node_ours).del(&conf, &att).unwrap();
        p.ours(&node_go).del(&conf, &att).unwrap();
        for v6 in [false, true] {
            assert_eq!(
                nat(&node_ours, v6),
                nat(&node_go, v6),
                "after DEL with {extra}"
            );
            assert!(dn_chains(&nat(&node_ours, v6)).is_empty());
        }
    }
}

/// `masqAll` came after v1.1.1 (reference commit 0463fd19, v1.2.0; source address fixed in
/// 3d27709f): the reference then marks mapped traffic from any source (`-s 0.0.0.0/0` /
/// `-s ::/0`, which iptables-save omits) and writes no separate 127.0.0.1 rule. This is
/// v1.1.1's table (which ignores the key) with exactly that change.
fn masq_all_of(mut t: BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
    for (chain, rules) in t.iter_mut() {
        if !chain.starts_with("CNI-DN-") {
            continue;
        }
        rules.retain(|r| !r.starts_with("-s 127.0.0.1/32 "));
        for r in rules.iter_mut() {
            if r.ends_with("-j CNI-HOSTPORT-SETMARK")
                && let Some(rest) = r.strip_prefix("-s ")
                && let Some((_, rest)) = rest.split_once(' ')
            {
                *r = rest.to_owned();
            }
        }
    }
    t
}

/// The nat table the Go plugin leaves after its own ADD + DEL of [`config`].
fn reference(p: &Plugins, v6: bool) -> BTreeMap<String, Vec<String>> {
    let node = TempNetns::new("pmref").unwrap();
    let pod = TempNetns::new("pmpod").unwrap();
    let conf = config(
        &["10.0.0.2/24", "fd00::2/64"],
        &pod.path().display().to_string(),
    );
    let att = Attachment::new("ctr-ref", pod.path(), "eth0");
    p.go(&node).add(&conf, &att).unwrap();
    p.go(&node).del(&conf, &att).unwrap();
    nat(&node, v6)
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
        // Exactly what the Go plugin leaves after its own ADD + DEL of the same config in a
        // fresh namespace (issue 19 item 4: this used to accept any rule in a
        // `CNI-HOSTPORT-*` chain).
        assert_eq!(t, reference(&p, v6), "leftovers (v6: {v6})");
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
