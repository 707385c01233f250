//! The nftables backend against the real kernel, in throw-away namespaces: the layout is
//! accepted and reads back as designed, takeover, ownership-exact DEL, CHECK and GC.

mod common;

use cni_linux::firewall::{IpFamily, System};
use cni_linux::firewall::nftables::{self as nft, Family};
use cni_portmap::{FakeHost, nftables};
use cni_testkit::TempNetns;
use common::*;

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
    let chain_a = nftables::container_chain("net1", "ctr-a", "eth0");
    let chain_b = nftables::container_chain("net1", "ctr-b", "eth0");
    let run = |f: &(dyn Fn() -> Result<(), cni_portmap::PortmapError> + Sync)| {
        ns.run(f).unwrap().unwrap_or_else(|e| panic!("{}", cni_types::error::chain_message(&e)))
    };
    let mut host = FakeHost::default();
    ns.run(|| cni_portmap::add(&a, &att_a, &mut System, &mut FakeHost::default()))
        .unwrap()
        .unwrap();
    let rs = nft_ruleset(&ns);
    assert_has(&rs, "table ip cni_portmap {");
    assert_has(&rs, "type ipv4_addr . inet_proto . inet_service : verdict");
    assert_has(&rs, "fib daddr type local jump hostports");
    assert_has(&rs, "ip daddr . meta l4proto . th dport vmap @hostip_ports");
    assert_has(&rs, "meta l4proto . th dport vmap @ports");
    assert_has(&rs, "meta mark 0x00002000 meta mark set 0x00000000 masquerade");
    assert_has(&rs, &format!("chain {chain_a} {{"));
    assert_has(&rs, "tcp dport 8080 ip saddr 10.88.0.0/16 meta mark 0x00000000 meta mark set 0x00002000");
    assert_has(&rs, "tcp dport 8080 ip saddr 127.0.0.1 meta mark 0x00000000 meta mark set 0x00002000");
    assert_has(&rs, "tcp dport 8080 dnat to 10.88.0.5:80");
    assert_has(&rs, "ip daddr 192.168.1.10 udp dport 5353 dnat to 10.88.0.5:53");
    assert!(
        rs.iter().any(|l| l.contains(&format!("tcp . 8080 comment \"net1 eth0 ctr-a\" : goto {chain_a}"))),
        "{}",
        rs.join("\n")
    );
    assert_lacks(&rs, "table ip6");
    run(&|| cni_portmap::check(&a, &att_a, &mut System, &mut FakeHost::default()));
    // ADD again: idempotent, same state.
    run(&|| cni_portmap::add(&a, &att_a, &mut System, &mut FakeHost::default()).map(drop));
    assert_eq!(nft_ruleset(&ns), rs);

    // B takes tcp/8080 over.
    run(&|| cni_portmap::add(&b, &att_b, &mut System, &mut FakeHost::default()).map(drop));
    let t = ns.run(|| nft::list_table(Family::Ip, nftables::TABLE)).unwrap().unwrap().unwrap();
    let ports = t.set(nftables::PORTS_MAP).unwrap();
    assert_eq!(ports.elements.len(), 1);
    assert_eq!(nftables::elements_of(&t, IpFamily::V4, &chain_b).len(), 1);
    assert_eq!(nftables::elements_of(&t, IpFamily::V4, &chain_a).len(), 1, "A keeps its hostIP port");
    let e = ns
        .run(|| cni_portmap::check(&a, &att_a, &mut System, &mut FakeHost::default()))
        .unwrap()
        .unwrap_err();
    assert!(
        cni_types::error::chain_message(&e).contains(&format!("host port ports tcp . 8080 is mapped to goto {chain_b}")),
        "{}",
        cni_types::error::chain_message(&e)
    );
    run(&|| cni_portmap::check(&b, &att_b, &mut System, &mut FakeHost::default()));

    // DEL A: B's element stays, A's chain and elements go. Twice.
    for _ in 0..2 {
        run(&|| cni_portmap::del(&a, &att_a, &mut System, &mut FakeHost::default()));
        let t = ns.run(|| nft::list_table(Family::Ip, nftables::TABLE)).unwrap().unwrap().unwrap();
        assert!(t.chain(&chain_a).is_none());
        assert!(nftables::elements_of(&t, IpFamily::V4, &chain_a).is_empty());
        assert_eq!(nftables::elements_of(&t, IpFamily::V4, &chain_b).len(), 1);
    }
    run(&|| cni_portmap::check(&b, &att_b, &mut System, &mut FakeHost::default()));

    // GC with B valid keeps it; with nothing valid removes it; other networks untouched.
    let other = {
        let j = conf_json("nftables", r#"{"hostPort":9090,"containerPort":90,"protocol":"tcp"}"#, "", &["10.99.0.2/16"])
            .replace("\"net1\"", "\"net2\"");
        cni_portmap::PortmapConf::parse(j.as_bytes(), "eth0", &mut || cni_linux::firewall::Backend::Nftables).unwrap()
    };
    run(&|| cni_portmap::add(&other, &att("ctr-o"), &mut System, &mut FakeHost::default()).map(drop));
    run(&|| cni_portmap::gc(&b, &[att_b.clone()], &mut System, &mut FakeHost::default()));
    run(&|| cni_portmap::check(&b, &att_b, &mut System, &mut FakeHost::default()));
    run(&|| cni_portmap::gc(&b, &[], &mut System, &mut FakeHost::default()));
    let t = ns.run(|| nft::list_table(Family::Ip, nftables::TABLE)).unwrap().unwrap().unwrap();
    assert!(t.chain(&chain_b).is_none());
    assert!(t.set(nftables::PORTS_MAP).unwrap().elements.len() == 1);
    run(&|| cni_portmap::check(&other, &att("ctr-o"), &mut System, &mut FakeHost::default()));
    host.calls.clear();
}

/// The conditional delete DEL relies on, in each situation, straight against the kernel.
#[test]
fn conditional_delete_transaction() {
    if !root() {
        return;
    }
    let ns = TempNetns::new("pmnftdel").unwrap();
    let a = conf("nftables", MAPS, "", &["10.88.0.5/16"]);
    let chain_a = nftables::container_chain("net1", "ctr-a", "eth0");
    let cmt = nftables::owner_comment("net1", "ctr-a", "eth0");
    let keys = nftables::keys(&a, IpFamily::V4);
    let del = nftables::del_plan(IpFamily::V4, &chain_a, &cmt, &keys);
    let errno = |r: Result<(), nft::NftError>| r.err().and_then(|e| e.errno());

    // No table: ENOENT (DEL then lists, finds nothing, succeeds).
    assert_eq!(errno(ns.run(|| nft::apply(&del)).unwrap()), Some(libc::ENOENT));

    // Present and ours: removed, chain gone.
    let add = nftables::add_plan(&a, &att("ctr-a"), "10.88.0.5/16".parse().unwrap(), &[]).unwrap();
    ns.run(|| nft::apply(&add)).unwrap().unwrap();
    ns.run(|| nft::apply(&del)).unwrap().unwrap();
    let t = ns.run(|| nft::list_table(Family::Ip, nftables::TABLE)).unwrap().unwrap().unwrap();
    assert!(t.chain(&chain_a).is_none());
    assert!(t.sets.iter().all(|s| s.elements.is_empty()));

    // Absent (table there): a no-op that succeeds.
    ns.run(|| nft::apply(&del)).unwrap().unwrap();

    // Owned by someone else: EEXIST and nothing changes.
    let b = conf("nftables", r#"{"hostPort":8080,"containerPort":80,"protocol":"tcp"}"#, "", &["10.88.0.6/16"]);
    let add_b = nftables::add_plan(&b, &att("ctr-b"), "10.88.0.6/16".parse().unwrap(), &[]).unwrap();
    ns.run(|| nft::apply(&add_b)).unwrap().unwrap();
    let before = nft_ruleset(&ns);
    assert_eq!(errno(ns.run(|| nft::apply(&del)).unwrap()), Some(libc::EEXIST));
    assert_eq!(nft_ruleset(&ns), before);

    // ADD of A while B holds tcp/8080: EEXIST, then the takeover plan from the listing.
    assert_eq!(errno(ns.run(|| nft::apply(&add)).unwrap()), Some(libc::EEXIST));
    let t = ns.run(|| nft::list_table(Family::Ip, nftables::TABLE)).unwrap().unwrap().unwrap();
    let taken = nftables::conflicts(&t, IpFamily::V4, &chain_a, &keys);
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].to_string(), "tcp . 8080");
    let add2 = nftables::add_plan(&a, &att("ctr-a"), "10.88.0.5/16".parse().unwrap(), &taken).unwrap();
    ns.run(|| nft::apply(&add2)).unwrap().unwrap();
    let t = ns.run(|| nft::list_table(Family::Ip, nftables::TABLE)).unwrap().unwrap().unwrap();
    assert_eq!(nftables::elements_of(&t, IpFamily::V4, &chain_a).len(), 2);
    // B's chain is still there (B's DEL removes it), pointing nowhere.
    let chain_b = nftables::container_chain("net1", "ctr-b", "eth0");
    assert!(t.chain(&chain_b).is_some());
    assert!(nftables::elements_of(&t, IpFamily::V4, &chain_b).is_empty());
    // B's conditional DEL: its key is now A's, so EEXIST; the listed plan removes the chain.
    let del_b = nftables::del_plan(
        IpFamily::V4,
        &chain_b,
        &nftables::owner_comment("net1", "ctr-b", "eth0"),
        &nftables::keys(&b, IpFamily::V4),
    );
    assert_eq!(errno(ns.run(|| nft::apply(&del_b)).unwrap()), Some(libc::EEXIST));
    let listed = nftables::del_plan_listed(&t, IpFamily::V4, &chain_b);
    assert_eq!(
        listed.to_string(),
        format!(
            "flush chain ip cni_portmap {chain_b}\ndelete chain ip cni_portmap {chain_b}\n"
        )
    );
    ns.run(|| nft::apply(&listed)).unwrap().unwrap();
    let t = ns.run(|| nft::list_table(Family::Ip, nftables::TABLE)).unwrap().unwrap().unwrap();
    assert!(t.chain(&chain_b).is_none());
    assert_eq!(nftables::elements_of(&t, IpFamily::V4, &chain_a).len(), 2);
}
