//! The nftables backend against the real kernel, in throw-away namespaces: the layout is
//! accepted and reads back as designed, takeover, ownership-exact DEL, CHECK and GC.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] functions

mod common;

use cni_linux::firewall::nftables::{self as nft, Family};
use cni_linux::firewall::owner::Owner;
use cni_linux::firewall::{IpFamily, System};
use cni_portmap::{FakeHost, nftables};
use cni_testkit::TempNetns;
use common::*;

/// A host whose bridge has route_localnet on (as after any snat ADD): DEL keeps the guard.
fn host() -> FakeHost {
    FakeHost {
        route_localnet_in_use: true,
        ..FakeHost::default()
    }
}

const MAPS: &str = r#"{"hostPort":8080,"containerPort":80,"protocol":"tcp"},
    {"hostPort":5353,"containerPort":53,"protocol":"udp","hostIP":"192.168.1.10"}"#;

#[test]
fn layout_takeover_del_check_gc() {
    if !root() {
        return;
    }
    let ns = TempNetns::new("pmnft").unwrap();
    let a = conf("nftables", MAPS, "", &["10.88.0.5/16"]);
    let b = conf(
        "nftables",
        r#"{"hostPort":8080,"containerPort":8000,"protocol":"tcp"}"#,
        "",
        &["10.88.0.6/16"],
    );
    let (att_a, att_b) = (att("ctr-a"), att("ctr-b"));
    let run = |f: &(dyn Fn() -> Result<(), cni_portmap::PortmapError> + Sync)| {
        ns.run(f)
            .unwrap()
            .unwrap_or_else(|e| panic!("{}", cni_types::error::chain_message(&e)))
    };
    let listing = || {
        ns.run(|| nft::list_table(Family::Ip, nftables::TABLE))
            .unwrap()
            .unwrap()
            .unwrap()
    };
    let owned_by = |t: &nft::TableListing, who: &str| {
        t.sets
            .iter()
            .flat_map(|s| s.elements.iter())
            .filter(|e| e.comment.as_deref() == Some(&format!("net1 eth0 {who}")))
            .count()
    };
    run(&|| cni_portmap::add(&a, &att_a, &mut System, &mut host()).map(drop));
    let rs = nft_ruleset(&ns);
    for line in [
        "table ip cni_portmap {",
        "type inet_proto . inet_service : ipv4_addr . inet_service",
        "type ipv4_addr . ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service",
        "fib daddr type local jump hostports",
        "ip saddr . meta l4proto . th dport @masq meta mark 0x00000000 meta mark set 0x00002000",
        "ip saddr . ip daddr . meta l4proto . th dport @hostip_masq meta mark 0x00000000 meta mark set 0x00002000",
        "meta l4proto . th dport @masqall meta mark 0x00000000 meta mark set 0x00002000",
        "ip daddr . meta l4proto . th dport @hostip_masqall meta mark 0x00000000 meta mark set 0x00002000",
        "dnat ip to ip daddr . meta l4proto . th dport map @hostip_dnat",
        "dnat ip to meta l4proto . th dport map @dnat",
        "meta mark 0x00002000 meta mark set 0x00000000 masquerade",
    ] {
        assert_has(&rs, line);
    }
    let text = rs.join("\n");
    for e in [
        "tcp . 8080 comment \"net1 eth0 ctr-a\" : 10.88.0.5 . 80",
        "192.168.1.10 . udp . 5353 comment \"net1 eth0 ctr-a\" : 10.88.0.5 . 53",
        "127.0.0.1 . 192.168.1.10 . udp . 5353 comment \"net1 eth0 ctr-a\" : 10.88.0.5 . 53",
        "10.88.0.5 . tcp . 8080 comment \"net1 eth0 ctr-a\" : 10.88.0.5 . 80",
    ] {
        assert!(text.contains(e), "missing element {e:?}:\n{text}");
    }
    assert_lacks(&rs, "table ip6");
    run(&|| cni_portmap::check(&a, &att_a, &mut System, &mut host()));
    // ADD again: idempotent, same state.
    run(&|| cni_portmap::add(&a, &att_a, &mut System, &mut host()).map(drop));
    assert_eq!(nft_ruleset(&ns), rs);
    assert_eq!(owned_by(&listing(), "ctr-a"), 6);

    // B asks for tcp/8080, which A holds: refused with a clear error (issue 12 item 4),
    // nothing of B is written and A keeps every element.
    let before = nft_ruleset(&ns);
    let e = ns
        .run(|| cni_portmap::add(&b, &att_b, &mut System, &mut host()))
        .unwrap()
        .unwrap_err();
    let msg = cni_types::error::chain_message(&e);
    assert!(
        msg.contains(
            "host port masq 127.0.0.1 . tcp . 8080 is already mapped by \"net1 eth0 ctr-a\""
        ) || msg.contains("host port dnat tcp . 8080 is already mapped by \"net1 eth0 ctr-a\""),
        "{msg}"
    );
    assert!(msg.contains("refusing to take it over"), "{msg}");
    assert_eq!(nft_ruleset(&ns), before, "a refused ADD changes nothing");
    assert_eq!(owned_by(&listing(), "ctr-b"), 0);
    assert_eq!(owned_by(&listing(), "ctr-a"), 6);
    run(&|| cni_portmap::check(&a, &att_a, &mut System, &mut host()));
    // The runtime then deletes B: A is undisturbed.
    run(&|| cni_portmap::del(&b, &att_b, &mut System, &mut host()));
    assert_eq!(
        nft_ruleset(&ns),
        before,
        "DEL of the refused one leaves A alone"
    );
    run(&|| cni_portmap::check(&a, &att_a, &mut System, &mut host()));

    // DEL A: its elements go. Twice. Then B can have the port.
    for _ in 0..2 {
        run(&|| cni_portmap::del(&a, &att_a, &mut System, &mut host()));
        let t = listing();
        assert_eq!(owned_by(&t, "ctr-a"), 0);
    }
    run(&|| cni_portmap::add(&b, &att_b, &mut System, &mut host()).map(drop));
    assert_eq!(owned_by(&listing(), "ctr-b"), 3);
    run(&|| cni_portmap::check(&b, &att_b, &mut System, &mut host()));
    // B again with another address (same attachment, e.g. a restarted sandbox): its own
    // keys are replaced, not refused.
    let b2 = conf(
        "nftables",
        r#"{"hostPort":8080,"containerPort":8000,"protocol":"tcp"}"#,
        "",
        &["10.88.0.7/16"],
    );
    run(&|| cni_portmap::add(&b2, &att_b, &mut System, &mut host()).map(drop));
    run(&|| cni_portmap::check(&b2, &att_b, &mut System, &mut host()));
    run(&|| cni_portmap::add(&b, &att_b, &mut System, &mut host()).map(drop));
    run(&|| cni_portmap::check(&b, &att_b, &mut System, &mut host()));

    // GC with B valid keeps it; with nothing valid removes it; other networks untouched.
    let other = {
        let j = conf_json(
            "nftables",
            r#"{"hostPort":9090,"containerPort":90,"protocol":"tcp"}"#,
            "",
            &["10.99.0.2/16"],
        )
        .replace("\"net1\"", "\"net2\"");
        cni_portmap::PortmapConf::parse(j.as_bytes(), "eth0", &mut || {
            cni_linux::firewall::Backend::Nftables
        })
        .unwrap()
    };
    run(&|| cni_portmap::add(&other, &att("ctr-o"), &mut System, &mut host()).map(drop));
    run(&|| cni_portmap::gc(&b, std::slice::from_ref(&att_b), &mut System, &mut host()));
    run(&|| cni_portmap::check(&b, &att_b, &mut System, &mut host()));
    run(&|| cni_portmap::gc(&b, &[], &mut System, &mut host()));
    let t = listing();
    assert_eq!(owned_by(&t, "ctr-b"), 0);
    run(&|| cni_portmap::check(&other, &att("ctr-o"), &mut System, &mut host()));
    // DEL without prevResult finds the elements by comment.
    let other_no_prev = {
        let j = r#"{"cniVersion":"1.0.0","name":"net2","type":"portmap","backend":"nftables",
            "runtimeConfig":{"portMappings":[{"hostPort":9090,"containerPort":90,"protocol":"tcp"}]}}"#;
        cni_portmap::PortmapConf::parse(j.as_bytes(), "eth0", &mut || {
            cni_linux::firewall::Backend::Nftables
        })
        .unwrap()
    };
    run(&|| cni_portmap::del(&other_no_prev, &att("ctr-o"), &mut System, &mut host()));
    let t = listing();
    assert!(
        t.sets
            .iter()
            .filter(|s| s.name != nftables::STAMP_MAP)
            .all(|s| s.elements.is_empty())
    );
}

/// The conditional delete DEL relies on, in each situation, straight against the kernel.
#[test]
fn conditional_delete_transaction() {
    if !root() {
        return;
    }
    let ns = TempNetns::new("pmnftdel").unwrap();
    let a = conf("nftables", MAPS, "", &["10.88.0.5/16"]);
    let net_a: ipnet::IpNet = "10.88.0.5/16".parse().unwrap();
    let cmt_a = Owner::new("net1", "eth0", "ctr-a").comment();
    let del = nftables::del_plan(IpFamily::V4, &cmt_a, &nftables::entries(&a, net_a));
    let errno = |r: Result<(), nft::NftError>| r.err().and_then(|e| e.errno());
    let listing = || {
        ns.run(|| nft::list_table(Family::Ip, nftables::TABLE))
            .unwrap()
            .unwrap()
            .unwrap()
    };
    let elements = |t: &nft::TableListing| {
        t.sets
            .iter()
            .filter(|s| s.name != nftables::STAMP_MAP)
            .map(|s| s.elements.len())
            .sum::<usize>()
    };

    // No table: ENOENT (DEL then lists, finds nothing, succeeds).
    assert_eq!(
        errno(ns.run(|| nft::apply(&del)).unwrap()),
        Some(libc::ENOENT)
    );
    // The fast ADD needs the skeleton: ENOENT without it.
    let add = nftables::add_plan(&a, &att("ctr-a"), net_a, &[]).unwrap();
    assert_eq!(
        errno(ns.run(|| nft::apply(&add)).unwrap()),
        Some(libc::ENOENT)
    );
    // Present and ours: removed.
    let add_full = nftables::add_plan_with_skeleton(&a, &att("ctr-a"), net_a, &[]).unwrap();
    ns.run(|| nft::apply(&add_full)).unwrap().unwrap();
    assert_eq!(elements(&listing()), 6);
    ns.run(|| nft::apply(&del)).unwrap().unwrap();
    assert_eq!(elements(&listing()), 0);
    // Absent (table there): a no-op that succeeds.
    ns.run(|| nft::apply(&del)).unwrap().unwrap();

    // Held by someone else: EEXIST and nothing changes.
    let b = conf(
        "nftables",
        r#"{"hostPort":8080,"containerPort":80,"protocol":"tcp"}"#,
        "",
        &["10.88.0.6/16"],
    );
    let net_b: ipnet::IpNet = "10.88.0.6/16".parse().unwrap();
    ns.run(|| nft::apply(&nftables::add_plan(&b, &att("ctr-b"), net_b, &[]).unwrap()))
        .unwrap()
        .unwrap();
    let before = nft_ruleset(&ns);
    assert_eq!(
        errno(ns.run(|| nft::apply(&del)).unwrap()),
        Some(libc::EEXIST)
    );
    assert_eq!(nft_ruleset(&ns), before);

    // ADD of A while B holds tcp/8080: EEXIST, then the takeover plan from the listing.
    assert_eq!(
        errno(ns.run(|| nft::apply(&add)).unwrap()),
        Some(libc::EEXIST)
    );
    let taken = nftables::conflicts(&listing(), IpFamily::V4, &nftables::entries(&a, net_a));
    let taken_text: Vec<String> = taken.iter().map(ToString::to_string).collect();
    assert_eq!(
        taken_text,
        vec![
            "masq { 127.0.0.1 . tcp . 8080 : 10.88.0.5 . 80 }",
            "dnat { tcp . 8080 : 10.88.0.5 . 80 }"
        ]
    );
    let add2 = nftables::add_plan(&a, &att("ctr-a"), net_a, &taken).unwrap();
    ns.run(|| nft::apply(&add2)).unwrap().unwrap();
    assert_eq!(elements(&listing()), 7, "A's six and B's own hairpin key");
    // B's conditional DEL: two of its keys are A's now, so EEXIST; the listed plan removes
    // only what still carries B's comment.
    let cmt_b = Owner::new("net1", "eth0", "ctr-b").comment();
    let del_b = nftables::del_plan(IpFamily::V4, &cmt_b, &nftables::entries(&b, net_b));
    assert_eq!(
        errno(ns.run(|| nft::apply(&del_b)).unwrap()),
        Some(libc::EEXIST)
    );
    let listed = nftables::del_plan_listed(&listing(), IpFamily::V4, &cmt_b);
    assert_eq!(
        listed.to_string(),
        "delete element ip cni_portmap masq { 10.88.0.6 . tcp . 8080 }\n"
    );
    ns.run(|| nft::apply(&listed)).unwrap().unwrap();
    assert_eq!(elements(&listing()), 6);
    ns.run(|| cni_portmap::check(&a, &att("ctr-a"), &mut System, &mut host()))
        .unwrap()
        .unwrap();
}

/// Counts what reaches the kernel.
#[derive(Default)]
struct Counting {
    applies: usize,
    listings: usize,
}

impl cni_linux::firewall::FirewallApplier for Counting {
    fn apply_iptables(
        &mut self,
        p: &[cni_linux::firewall::iptables::IptablesPlan],
    ) -> Result<(), cni_linux::firewall::FirewallError> {
        System.apply_iptables(p)
    }
    fn iptables_state(
        &mut self,
        f: IpFamily,
        t: &str,
    ) -> Result<cni_linux::firewall::iptables::IptablesState, cni_linux::firewall::FirewallError>
    {
        System.iptables_state(f, t)
    }
    fn apply_nft(&mut self, p: &nft::NftPlan) -> Result<(), cni_linux::firewall::FirewallError> {
        self.applies += 1;
        System.apply_nft(p)
    }
    fn nft_table(
        &mut self,
        f: Family,
        t: &str,
    ) -> Result<Option<nft::TableListing>, cni_linux::firewall::FirewallError> {
        self.listings += 1;
        System.nft_table(f, t)
    }
}

/// ADD on a node whose skeleton is in place is one transaction and never reads the table;
/// another configuration's conditions rewrite the skeleton once.
#[test]
fn add_is_one_transaction_without_listing() {
    if !root() {
        return;
    }
    let ns = TempNetns::new("pmnftfast").unwrap();
    let one = |port: u16, ip: &str| {
        conf(
            "nftables",
            &format!(r#"{{"hostPort":{port},"containerPort":80,"protocol":"tcp"}}"#),
            "",
            &[ip],
        )
    };
    let count = |c: &cni_portmap::PortmapConf, id: &str| {
        ns.run(|| {
            let mut fw = Counting::default();
            cni_portmap::add(c, &att(id), &mut fw, &mut host()).unwrap();
            (fw.applies, fw.listings)
        })
        .unwrap()
    };
    // A new node: the fast transaction fails (ENOENT), one listing, the full one.
    assert_eq!(count(&one(1000, "10.88.0.2/16"), "c0"), (2, 1));
    // Then: one transaction each, no listing, whatever the table holds.
    for i in 1..50u16 {
        assert_eq!(
            count(&one(1000 + i, "10.88.0.3/16"), &format!("c{i}")),
            (1, 0)
        );
    }
    // Another configuration (conditions): skeleton rewritten, once.
    let other = conf(
        "nftables",
        r#"{"hostPort":2000,"containerPort":80,"protocol":"tcp"}"#,
        r#","conditionsV4":["iifname != \"lo\""]"#,
        &["10.88.0.9/16"],
    );
    assert_eq!(count(&other, "o1"), (2, 1));
    assert_has(
        &nft_ruleset(&ns),
        "iifname != \"lo\" fib daddr type local jump hostports",
    );
    let e = ns
        .run(|| {
            cni_portmap::check(
                &one(1001, "10.88.0.3/16"),
                &att("c1"),
                &mut System,
                &mut host(),
            )
        })
        .unwrap()
        .unwrap_err();
    assert!(
        cni_types::error::chain_message(&e).contains("skeleton stamp"),
        "{e}"
    );
    ns.run(|| cni_portmap::check(&other, &att("o1"), &mut System, &mut host()))
        .unwrap()
        .unwrap();
}

fn net_conf(name: &str, maps: &str, extra: &str, addr: &str) -> cni_portmap::PortmapConf {
    let j = conf_json("nftables", maps, extra, &[addr]).replace("\"net1\"", &format!("\"{name}\""));
    cni_portmap::PortmapConf::parse(j.as_bytes(), "eth0", &mut || {
        cni_linux::firewall::Backend::Nftables
    })
    .unwrap()
}

/// Issue 12 item 4: ADD of network B (no conditions) must not drop the source conditions of
/// network A from the shared skeleton while A has mappings; once A is gone, B may.
#[test]
fn another_network_keeps_its_conditions() {
    if !root() {
        return;
    }
    let ns = TempNetns::new("pmcond").unwrap();
    let a = net_conf(
        "neta",
        r#"{"hostPort":8080,"containerPort":80,"protocol":"tcp"}"#,
        r#","conditionsV4":["iifname","eth0"]"#,
        "10.88.0.5/16",
    );
    let b = net_conf(
        "netb",
        r#"{"hostPort":8081,"containerPort":80,"protocol":"tcp"}"#,
        "",
        "10.89.0.5/16",
    );
    let ok = |r: Result<Result<(), cni_portmap::PortmapError>, _>| {
        r.unwrap()
            .unwrap_or_else(|e| panic!("{}", cni_types::error::chain_message(&e)))
    };
    ok(ns.run(|| cni_portmap::add(&a, &att("ctr-a"), &mut System, &mut host()).map(drop)));
    let rs = nft_ruleset(&ns);
    assert_has(&rs, "iifname \"eth0\" fib daddr type local jump hostports");
    let e = ns
        .run(|| cni_portmap::add(&b, &att("ctr-b"), &mut System, &mut host()))
        .unwrap()
        .unwrap_err();
    let msg = cni_types::error::chain_message(&e);
    assert!(
        msg.contains("in use by neta; refusing to replace it"),
        "{msg}"
    );
    assert_eq!(nft_ruleset(&ns), rs, "A's conditions are in place");
    ok(ns.run(|| cni_portmap::check(&a, &att("ctr-a"), &mut System, &mut host())));
    // DEL of the refused B leaves A alone.
    ok(ns.run(|| cni_portmap::del(&b, &att("ctr-b"), &mut System, &mut host())));
    assert_eq!(nft_ruleset(&ns), rs);
    // A second attachment of network A with the same conditions is fine.
    let a2 = net_conf(
        "neta",
        r#"{"hostPort":8082,"containerPort":80,"protocol":"tcp"}"#,
        r#","conditionsV4":["iifname","eth0"]"#,
        "10.88.0.6/16",
    );
    ok(ns.run(|| cni_portmap::add(&a2, &att("ctr-a2"), &mut System, &mut host()).map(drop)));
    // Once network A has no mappings left, B's skeleton may replace it.
    ok(ns.run(|| cni_portmap::del(&a, &att("ctr-a"), &mut System, &mut host())));
    ok(ns.run(|| cni_portmap::del(&a2, &att("ctr-a2"), &mut System, &mut host())));
    ok(ns.run(|| cni_portmap::add(&b, &att("ctr-b"), &mut System, &mut host()).map(drop)));
    ok(ns.run(|| cni_portmap::check(&b, &att("ctr-b"), &mut System, &mut host())));
    assert_lacks(&nft_ruleset(&ns), "iifname \"eth0\"");
}

/// Issue 12 item 9: two identities whose owner text shares its first 128 bytes get
/// different comments, and DEL by owner (no prevResult) removes only its own elements.
#[test]
fn long_identities_do_not_collide() {
    if !root() {
        return;
    }
    let ns = TempNetns::new("pmlong").unwrap();
    let base = "c".repeat(140);
    let (id1, id2) = (format!("{base}1"), format!("{base}2"));
    let c1 = conf(
        "nftables",
        r#"{"hostPort":8080,"containerPort":80,"protocol":"tcp"}"#,
        "",
        &["10.88.0.5/16"],
    );
    let c2 = conf(
        "nftables",
        r#"{"hostPort":8081,"containerPort":80,"protocol":"tcp"}"#,
        "",
        &["10.88.0.6/16"],
    );
    let (k1, k2) = (
        Owner::new("net1", "eth0", &id1).comment(),
        Owner::new("net1", "eth0", &id2).comment(),
    );
    assert_ne!(k1, k2);
    assert!(k1.len() <= 128 && k1.starts_with("net1 eth0 cccc"), "{k1}");
    let ok = |r: Result<Result<(), cni_portmap::PortmapError>, _>| {
        r.unwrap()
            .unwrap_or_else(|e| panic!("{}", cni_types::error::chain_message(&e)))
    };
    ok(ns.run(|| cni_portmap::add(&c1, &att(&id1), &mut System, &mut host()).map(drop)));
    ok(ns.run(|| cni_portmap::add(&c2, &att(&id2), &mut System, &mut host()).map(drop)));
    // DEL of id1 without prevResult: by owner.
    let no_prev = cni_portmap::PortmapConf::parse(
        br#"{"cniVersion":"1.0.0","name":"net1","type":"portmap","backend":"nftables",
        "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}}"#,
        "eth0",
        &mut || cni_linux::firewall::Backend::Nftables,
    )
    .unwrap();
    ok(ns.run(|| cni_portmap::del(&no_prev, &att(&id1), &mut System, &mut host())));
    ok(ns.run(|| cni_portmap::check(&c2, &att(&id2), &mut System, &mut host())));
    let text = nft_ruleset(&ns).join("\n");
    assert!(!text.contains(&k1), "{text}");
    assert!(text.contains(&k2), "{text}");
}
