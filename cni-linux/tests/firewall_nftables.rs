//! nftables backend against the real kernel, inside throw-away namespaces. Every construct
//! is checked twice: the kernel accepts it, and `nft list ruleset` (run in the namespace)
//! shows it as nft itself would have written it.

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;

use cni_linux::firewall::IpFamily;
use cni_linux::firewall::nftables::{
    self, ChainSpec, ChainType, CmpOp, CtState, DataType, ElemValue, Element, ElementData, Family,
    Field, Hook, L4Proto, MapData, NatKind, NftError, NftOp, NftPlan, Policy, RuleSpec, SetSpec,
    Stmt, Value, Verdict, priority,
};
use common::TestNs;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cmp(field: Field, value: Value) -> Stmt {
    Stmt::Cmp {
        field,
        op: CmpOp::Eq,
        value,
    }
}

fn jump(c: &str) -> Stmt {
    Stmt::Verdict(Verdict::Jump(c.to_owned()))
}

/// The trimmed lines of `nft list ruleset` in the namespace.
fn ruleset(ns: &TestNs) -> Vec<String> {
    ns.ok(&["nft", "list", "ruleset"])
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[track_caller]
fn assert_lines(have: &[String], want: &[&str]) {
    for w in want {
        assert!(
            have.iter().any(|h| h == w),
            "missing line {w:?} in nft list ruleset:\n{}",
            have.join("\n")
        );
    }
}

const T: &str = "cni_hostport";
const CID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The portmap plugin's nftables rules for one IPv4 container.
fn portmap_plan() -> NftPlan {
    let f = Family::Ip;
    let mut p = NftPlan::new();
    p.add_table(f, T, Some("CNI portmap plugin"))
        .add_chain(f, T, ChainSpec::regular("hostports"))
        .add_chain(f, T, ChainSpec::regular("hostip_hostports"))
        .add_chain(
            f,
            T,
            ChainSpec::base(
                "prerouting",
                ChainType::Nat,
                Hook::Prerouting,
                priority::DSTNAT,
            ),
        )
        .flush_chain(f, T, "prerouting")
        .add_rule(
            f,
            T,
            RuleSpec::new("prerouting", vec![jump("hostip_hostports")]),
        )
        .add_rule(f, T, RuleSpec::new("prerouting", vec![jump("hostports")]))
        .add_chain(
            f,
            T,
            ChainSpec::base("output", ChainType::Nat, Hook::Output, priority::DSTNAT),
        )
        .flush_chain(f, T, "output")
        .add_rule(
            f,
            T,
            RuleSpec::new("output", vec![jump("hostip_hostports")]),
        )
        .add_rule(
            f,
            T,
            RuleSpec::new(
                "output",
                vec![Stmt::FibDaddrLocal { negate: false }, jump("hostports")],
            ),
        )
        .add_chain(
            f,
            T,
            ChainSpec::base(
                "masquerading",
                ChainType::Nat,
                Hook::Postrouting,
                priority::SRCNAT,
            ),
        )
        .add_rule(
            f,
            T,
            RuleSpec::new(
                "hostports",
                vec![
                    cmp(Field::Dport(L4Proto::Tcp), Value::Port(8080)),
                    Stmt::Nat {
                        kind: NatKind::Dnat,
                        addr: ip("10.0.0.2"),
                        port: Some(80),
                    },
                ],
            )
            .with_comment(CID),
        )
        .add_rule(
            f,
            T,
            RuleSpec::new(
                "hostip_hostports",
                vec![
                    cmp(Field::IpDaddr, Value::Addr(ip("192.168.1.1"))),
                    cmp(Field::Dport(L4Proto::Udp), Value::Port(8081)),
                    Stmt::Nat {
                        kind: NatKind::Dnat,
                        addr: ip("10.0.0.2"),
                        port: Some(81),
                    },
                ],
            )
            .with_comment(CID),
        )
        .add_rule(
            f,
            T,
            RuleSpec::new(
                "masquerading",
                vec![
                    cmp(Field::IpSaddr, Value::Addr(ip("10.0.0.2"))),
                    cmp(Field::IpDaddr, Value::Addr(ip("10.0.0.2"))),
                    Stmt::Masquerade,
                ],
            )
            .with_comment(CID),
        )
        .add_rule(
            f,
            T,
            RuleSpec::new(
                "masquerading",
                vec![
                    cmp(Field::IpSaddr, Value::Addr(ip("127.0.0.1"))),
                    cmp(Field::IpDaddr, Value::Addr(ip("10.0.0.2"))),
                    Stmt::Masquerade,
                ],
            )
            .with_comment(CID),
        );
    p
}

#[test]
fn portmap_rules_are_accepted_listed_and_deleted_by_comment() {
    if !common::require_tool("nft") {
        return;
    }
    let ns = TestNs::new("nftpm");
    let plan = portmap_plan();
    ns.run(|| nftables::apply(&plan)).unwrap();
    let have = ruleset(&ns);
    assert_lines(
        &have,
        &[
            "table ip cni_hostport {",
            "comment \"CNI portmap plugin\"",
            "type nat hook prerouting priority dstnat; policy accept;",
            "jump hostip_hostports",
            "fib daddr type local jump hostports",
            "type nat hook postrouting priority srcnat; policy accept;",
            &format!("tcp dport 8080 dnat to 10.0.0.2:80 comment \"{CID}\""),
            &format!("ip daddr 192.168.1.1 udp dport 8081 dnat to 10.0.0.2:81 comment \"{CID}\""),
            &format!("ip saddr 10.0.0.2 ip daddr 10.0.0.2 masquerade comment \"{CID}\""),
            &format!("ip saddr 127.0.0.1 ip daddr 10.0.0.2 masquerade comment \"{CID}\""),
        ],
    );

    // Applying the same plan again: ensures succeed, flushed chains are rebuilt, the
    // per-container rules are appended again (nf_tables has no "unique" rules).
    ns.run(|| nftables::apply(&plan)).unwrap();
    let listing = ns
        .run(|| nftables::list_table(Family::Ip, T))
        .unwrap()
        .unwrap();
    assert_eq!(listing.comment.as_deref(), Some("CNI portmap plugin"));
    assert_eq!(
        listing.chain("prerouting").unwrap().rules.len(),
        2,
        "flush + add"
    );
    assert_eq!(listing.chain("prerouting").unwrap().hook, Some((0, -100)));
    assert_eq!(
        listing.chain("prerouting").unwrap().chain_type.as_deref(),
        Some("nat")
    );
    assert_eq!(listing.rules_with_comment(CID).count(), 8);

    // DEL as portmap does it: delete every rule carrying the container id, by handle.
    let mut del = NftPlan::new();
    for (chain, rule) in listing.rules_with_comment(CID) {
        del.delete_rule(Family::Ip, T, &chain.name, rule.handle);
    }
    ns.run(|| nftables::apply(&del)).unwrap();
    let after = ns
        .run(|| nftables::list_table(Family::Ip, T))
        .unwrap()
        .unwrap();
    assert_eq!(after.rules_with_comment(CID).count(), 0);
    assert_eq!(
        after.chain("output").unwrap().rules.len(),
        2,
        "skeleton stays"
    );
    // A second delete of the same handles fails as a whole and names the op.
    let err = ns.run(|| nftables::apply(&del)).unwrap_err();
    match err {
        NftError::Rejected { index, source, .. } => {
            assert_eq!(index, Some(0));
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn ipmasq_inet_rules_with_prefixes_and_goto() {
    if !common::require_tool("nft") {
        return;
    }
    let ns = TestNs::new("nftmq");
    let f = Family::Inet;
    let t = "cni_plugins_masquerade";
    let comment = "a1b2c3d4e5f60718-0918273645abcdef, net: mynet, if: eth0, id: cid";
    let mut p = NftPlan::new();
    p.add_table(
        f,
        t,
        Some("Masquerading for plugins from github.com/containernetworking/plugins"),
    )
    .add_chain(
        f,
        t,
        ChainSpec::regular("masq_checks").with_comment(
            "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet",
        ),
    )
    .add_chain(
        f,
        t,
        ChainSpec::base(
            "postrouting",
            ChainType::Nat,
            Hook::Postrouting,
            priority::SRCNAT,
        ),
    )
    .flush_chain(f, t, "postrouting")
    .add_rule(
        f,
        t,
        RuleSpec::new(
            "postrouting",
            vec![
                cmp(Field::IpDaddr, Value::Net("224.0.0.0/4".parse().unwrap())),
                Stmt::Verdict(Verdict::Return),
            ],
        ),
    )
    .add_rule(
        f,
        t,
        RuleSpec::new(
            "postrouting",
            vec![
                cmp(Field::Ip6Daddr, Value::Net("ff00::/8".parse().unwrap())),
                Stmt::Verdict(Verdict::Return),
            ],
        ),
    )
    .add_rule(
        f,
        t,
        RuleSpec::new(
            "postrouting",
            vec![Stmt::Verdict(Verdict::Goto("masq_checks".into()))],
        ),
    )
    .add_rule(
        f,
        t,
        RuleSpec::new(
            "masq_checks",
            vec![
                cmp(Field::IpSaddr, Value::Addr(ip("10.88.0.2"))),
                Stmt::Cmp {
                    field: Field::IpDaddr,
                    op: CmpOp::Neq,
                    value: Value::Net("10.88.0.0/16".parse().unwrap()),
                },
                Stmt::Masquerade,
            ],
        )
        .with_comment(comment),
    )
    .add_rule(
        f,
        t,
        RuleSpec::new(
            "masq_checks",
            vec![
                cmp(Field::Ip6Saddr, Value::Addr(ip("fd00::2"))),
                Stmt::Cmp {
                    field: Field::Ip6Daddr,
                    op: CmpOp::Neq,
                    value: Value::Net("fd00::/64".parse().unwrap()),
                },
                Stmt::Masquerade,
            ],
        )
        .with_comment(comment),
    );
    ns.run(|| nftables::apply(&p)).unwrap();
    assert_lines(
        &ruleset(&ns),
        &[
            "table inet cni_plugins_masquerade {",
            "comment \"Masquerading for plugins from github.com/containernetworking/plugins\"",
            "comment \"Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet\"",
            "ip daddr 224.0.0.0/4 return",
            "ip6 daddr ff00::/8 return",
            "goto masq_checks",
            &format!(
                "ip saddr 10.88.0.2 ip daddr != 10.88.0.0/16 masquerade comment \"{comment}\""
            ),
            &format!("ip6 saddr fd00::2 ip6 daddr != fd00::/64 masquerade comment \"{comment}\""),
        ],
    );
    let listing = ns.run(|| nftables::list_table(f, t)).unwrap().unwrap();
    let chain = listing.chain("masq_checks").unwrap();
    assert_eq!(
        chain.comment.as_deref(),
        Some("Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet")
    );
    assert_eq!(chain.rules.len(), 2);
    assert!(
        chain.rules[0]
            .exprs
            .iter()
            .any(|e| e == "meta load nfproto => reg 1"),
        "{:?}",
        chain.rules[0].exprs
    );
    assert!(chain.rules[0].exprs.iter().any(|e| e == "masq"));
}

#[test]
fn verdict_maps_and_concatenated_dnat_maps() {
    if !common::require_tool("nft") {
        return;
    }
    let ns = TestNs::new("nftmap");
    let f = Family::Ip;
    let t = "maps";
    let vmap = SetSpec::map(
        "svc",
        vec![DataType::InetProto, DataType::InetService],
        MapData::Verdict,
    );
    let dmap = SetSpec::map(
        "dnat",
        vec![DataType::InetProto, DataType::InetService],
        MapData::Values(vec![DataType::Ipv4Addr, DataType::InetService]),
    );
    let mut allowed = SetSpec::set("allowed", vec![DataType::Ipv4Addr]);
    allowed.comment = Some("allowed sources".into());
    let mut p = NftPlan::new();
    p.add_table(f, t, None)
        .add_chain(f, t, ChainSpec::regular("hostports"))
        .add_chain(
            f,
            t,
            ChainSpec::base("pre", ChainType::Nat, Hook::Prerouting, priority::DSTNAT),
        )
        .add_set(f, t, vmap.clone())
        .add_set(f, t, dmap.clone())
        .add_set(f, t, allowed.clone())
        .add_elements(
            f,
            t,
            &vmap,
            vec![Element {
                key: vec![Value::l4(L4Proto::Tcp), Value::Port(80)],
                value: Some(ElemValue::Verdict(Verdict::Jump("hostports".into()))),
                comment: Some(CID.into()),
            }],
        )
        .add_elements(
            f,
            t,
            &dmap,
            vec![
                Element {
                    key: vec![Value::l4(L4Proto::Tcp), Value::Port(8080)],
                    value: Some(ElemValue::Values(vec![
                        Value::Addr(ip("10.0.0.2")),
                        Value::Port(80),
                    ])),
                    comment: Some(CID.into()),
                },
                Element {
                    key: vec![Value::l4(L4Proto::Udp), Value::Port(5353)],
                    value: Some(ElemValue::Values(vec![
                        Value::Addr(ip("10.0.0.3")),
                        Value::Port(53),
                    ])),
                    comment: None,
                },
            ],
        )
        .add_elements(
            f,
            t,
            &allowed,
            vec![Element {
                key: vec![Value::Addr(ip("192.168.7.7"))],
                value: None,
                comment: None,
            }],
        )
        .add_rule(
            f,
            t,
            RuleSpec::new(
                "pre",
                vec![
                    Stmt::InSet {
                        fields: vec![Field::IpSaddr],
                        set: "allowed".into(),
                        negate: true,
                    },
                    Stmt::Verdict(Verdict::Return),
                ],
            ),
        )
        .add_rule(
            f,
            t,
            RuleSpec::new(
                "pre",
                vec![Stmt::VerdictMap {
                    fields: vec![Field::L4Proto, Field::ThDport],
                    map: "svc".into(),
                }],
            ),
        )
        .add_rule(
            f,
            t,
            RuleSpec::new(
                "hostports",
                vec![Stmt::NatMap {
                    kind: NatKind::Dnat,
                    family: IpFamily::V4,
                    fields: vec![Field::L4Proto, Field::ThDport],
                    map: "dnat".into(),
                    with_port: true,
                }],
            ),
        );
    ns.run(|| nftables::apply(&p)).unwrap();
    let have = ruleset(&ns);
    assert_lines(
        &have,
        &[
            "map svc {",
            "type inet_proto . inet_service : verdict",
            &format!("elements = {{ tcp . 80 comment \"{CID}\" : jump hostports }}"),
            "map dnat {",
            "type inet_proto . inet_service : ipv4_addr . inet_service",
            "set allowed {",
            "type ipv4_addr",
            "comment \"allowed sources\"",
            "elements = { 192.168.7.7 }",
            "ip saddr != @allowed return",
            "meta l4proto . th dport vmap @svc",
            "dnat ip to meta l4proto . th dport map @dnat",
        ],
    );
    assert!(
        have.iter()
            .any(|l| l.contains("tcp . 8080 comment") && l.contains(": 10.0.0.2 . 80")),
        "dnat element missing:\n{}",
        have.join("\n")
    );

    let listing = ns.run(|| nftables::list_table(f, t)).unwrap().unwrap();
    let svc = listing.set("svc").unwrap();
    let e = svc
        .find(&vmap.key, &[Value::l4(L4Proto::Tcp), Value::Port(80)])
        .unwrap();
    assert_eq!(
        e.data,
        Some(ElementData::Verdict(Verdict::Jump("hostports".into())))
    );
    assert_eq!(e.comment.as_deref(), Some(CID));
    let d = listing.set("dnat").unwrap();
    assert_eq!(d.elements.len(), 2);
    let e = d
        .find(&dmap.key, &[Value::l4(L4Proto::Udp), Value::Port(5353)])
        .unwrap();
    assert_eq!(
        e.data,
        Some(ElementData::Value(vec![10, 0, 0, 3, 0, 53, 0, 0]))
    );
    assert_eq!(
        listing.set("allowed").unwrap().comment.as_deref(),
        Some("allowed sources")
    );

    // Adding the same elements again is fine; deleting by key works; flushing empties.
    ns.run(|| nftables::apply(&p)).unwrap();
    let mut del = NftPlan::new();
    del.delete_elements(
        f,
        t,
        &dmap,
        vec![vec![Value::l4(L4Proto::Tcp), Value::Port(8080)]],
    )
    .push(NftOp::FlushSet {
        family: f,
        table: t.into(),
        set: "allowed".into(),
    });
    ns.run(|| nftables::apply(&del)).unwrap();
    let listing = ns.run(|| nftables::list_table(f, t)).unwrap().unwrap();
    assert_eq!(listing.set("dnat").unwrap().elements.len(), 1);
    assert!(listing.set("allowed").unwrap().elements.is_empty());
}

#[test]
fn bridge_macspoofchk_rules() {
    if !common::require_tool("nft") {
        return;
    }
    let ns = TestNs::new("nftbr");
    let f = Family::Bridge;
    let t = "nat";
    let iface_chain = "cni-br-iface-cid-eth0";
    let mac_chain = "cni-br-iface-cid-eth0-mac";
    let comment = "macspoofchk-cid-eth0";
    let mut base = ChainSpec::base(
        "PREROUTING",
        ChainType::Filter,
        Hook::Prerouting,
        priority::BRIDGE_DSTNAT,
    );
    if let Some(b) = base.base.as_mut() {
        b.policy = Some(Policy::Accept);
    }
    let mut p = NftPlan::new();
    p.add_table(f, t, None)
        .add_chain(f, t, base)
        .add_chain(f, t, ChainSpec::regular(iface_chain))
        .add_chain(f, t, ChainSpec::regular(mac_chain))
        .flush_chain(f, t, iface_chain)
        .flush_chain(f, t, mac_chain)
        .add_rule(
            f,
            t,
            RuleSpec::new(
                "PREROUTING",
                vec![
                    cmp(Field::Iifname, Value::Ifname("veth1234abcd".into())),
                    jump(iface_chain),
                ],
            )
            .with_comment(comment),
        )
        .add_rule(
            f,
            t,
            RuleSpec::new(iface_chain, vec![jump(mac_chain)]).with_comment(comment),
        )
        .add_rule(
            f,
            t,
            RuleSpec::new(
                mac_chain,
                vec![
                    cmp(
                        Field::EtherSaddr,
                        Value::Ether([0x0a, 0x58, 0x0a, 0x00, 0x00, 0x02]),
                    ),
                    Stmt::Verdict(Verdict::Return),
                ],
            )
            .with_comment(comment),
        )
        .add_rule(
            f,
            t,
            RuleSpec::new(mac_chain, vec![Stmt::Verdict(Verdict::Drop)]).with_comment(comment),
        );
    ns.run(|| nftables::apply(&p)).unwrap();
    assert_lines(
        &ruleset(&ns),
        &[
            "table bridge nat {",
            "type filter hook prerouting priority dstnat; policy accept;",
            &format!("iifname \"veth1234abcd\" jump {iface_chain} comment \"{comment}\""),
            &format!("jump {mac_chain} comment \"{comment}\""),
            &format!("ether saddr 0a:58:0a:00:00:02 return comment \"{comment}\""),
            &format!("drop comment \"{comment}\""),
        ],
    );
    // Teardown: delete the jump rule by handle, then the two chains, in one transaction.
    let listing = ns.run(|| nftables::list_table(f, t)).unwrap().unwrap();
    let (_, jump_rule) = listing
        .rules_with_comment(comment)
        .find(|(c, _)| c.name == "PREROUTING")
        .unwrap();
    let mut down = NftPlan::new();
    down.delete_rule(f, t, "PREROUTING", jump_rule.handle)
        .push(NftOp::DeleteChain {
            family: f,
            table: t.into(),
            chain: iface_chain.into(),
        })
        .push(NftOp::DeleteChain {
            family: f,
            table: t.into(),
            chain: mac_chain.into(),
        });
    ns.run(|| nftables::apply(&down)).unwrap();
    let listing = ns.run(|| nftables::list_table(f, t)).unwrap().unwrap();
    assert_eq!(listing.chains.len(), 1);
    assert!(listing.chain("PREROUTING").unwrap().rules.is_empty());
}

#[test]
fn misc_statements_are_accepted_and_shown() {
    if !common::require_tool("nft") {
        return;
    }
    let ns = TestNs::new("nftmisc");
    let f = Family::Inet;
    let t = "misc";
    let mut p = NftPlan::new();
    p.add_table(f, t, None)
        .add_chain(
            f,
            t,
            ChainSpec::base("fwd", ChainType::Filter, Hook::Forward, priority::FILTER),
        )
        .add_chain(
            f,
            t,
            ChainSpec::base(
                "nat_pre",
                ChainType::Nat,
                Hook::Prerouting,
                priority::DSTNAT,
            ),
        )
        .add_rule(
            f,
            t,
            RuleSpec::new(
                "fwd",
                vec![
                    Stmt::CtState(vec![CtState::Established, CtState::Related]),
                    Stmt::Verdict(Verdict::Accept),
                ],
            ),
        )
        .add_rule(
            f,
            t,
            RuleSpec::new(
                "fwd",
                vec![
                    cmp(Field::Oifname, Value::Ifname("cni*".into())),
                    Stmt::Counter,
                    Stmt::SetMark(0x2000),
                ],
            ),
        )
        .add_rule(
            f,
            t,
            RuleSpec::new(
                "fwd",
                vec![
                    cmp(Field::Mark, Value::Mark(0x2000)),
                    cmp(Field::NfProto, Value::NfProto(IpFamily::V6)),
                    Stmt::Verdict(Verdict::Drop),
                ],
            ),
        )
        .add_rule(
            f,
            t,
            RuleSpec::new(
                "fwd",
                vec![
                    cmp(Field::L4Proto, Value::l4(L4Proto::Sctp)),
                    cmp(Field::ThDport, Value::Port(9)),
                    Stmt::Verdict(Verdict::Continue),
                ],
            ),
        )
        .add_rule(
            f,
            t,
            RuleSpec::new(
                "nat_pre",
                vec![
                    cmp(Field::Dport(L4Proto::Tcp), Value::Port(8443)),
                    Stmt::Redirect { port: Some(443) },
                ],
            ),
        )
        .add_rule(
            f,
            t,
            RuleSpec::new(
                "nat_pre",
                vec![
                    cmp(Field::Ip6Daddr, Value::Addr(ip("fd01::1"))),
                    cmp(Field::Dport(L4Proto::Tcp), Value::Port(80)),
                    Stmt::Nat {
                        kind: NatKind::Dnat,
                        addr: ip("fd00::2"),
                        port: Some(8080),
                    },
                ],
            ),
        )
        .insert_rule(
            f,
            t,
            RuleSpec::new(
                "nat_pre",
                vec![
                    Stmt::FibDaddrLocal { negate: true },
                    Stmt::Verdict(Verdict::Return),
                ],
            ),
        );
    ns.run(|| nftables::apply(&p)).unwrap();
    let have = ruleset(&ns);
    assert_lines(
        &have,
        &[
            "ct state established,related accept",
            "oifname \"cni*\" counter packets 0 bytes 0 meta mark set 0x00002000",
            "meta mark 0x00002000 meta nfproto ipv6 drop",
            // nft folds `meta l4proto sctp` + `th dport` into `sctp dport`.
            "sctp dport 9 continue",
            "tcp dport 8443 redirect to :443",
            "ip6 daddr fd01::1 tcp dport 80 dnat ip6 to [fd00::2]:8080",
            "fib daddr type != local return",
        ],
    );
    let listing = ns.run(|| nftables::list_table(f, t)).unwrap().unwrap();
    // insert_rule put the fib rule first.
    assert!(listing.chain("nat_pre").unwrap().rules[0].exprs[0].starts_with("fib daddr type"));
}

#[test]
fn failing_op_is_named_and_nothing_is_applied() {
    if !common::require_root() {
        return;
    }
    let ns = TestNs::new("nftfail");
    let f = Family::Ip;
    let mut p = NftPlan::new();
    p.add_table(f, "atomic", None)
        .add_chain(f, "atomic", ChainSpec::regular("a"))
        .add_rule(
            f,
            "atomic",
            RuleSpec::new("a", vec![Stmt::Verdict(Verdict::Accept)]),
        )
        .add_rule(
            f,
            "atomic",
            RuleSpec::new("a", vec![jump("does_not_exist")]),
        )
        .add_rule(
            f,
            "atomic",
            RuleSpec::new("a", vec![Stmt::Verdict(Verdict::Drop)]),
        );
    let err = ns.run(|| nftables::apply(&p)).unwrap_err();
    match &err {
        NftError::Rejected {
            index, op, source, ..
        } => {
            assert_eq!(*index, Some(3), "{err}");
            assert!(op.as_deref().unwrap().contains("jump does_not_exist"));
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        ns.run(|| nftables::list_table(f, "atomic"))
            .unwrap()
            .is_none(),
        "all or nothing"
    );

    // Destroy of missing objects succeeds; of present ones deletes them.
    let mut d = NftPlan::new();
    d.push(NftOp::DestroyTable {
        family: f,
        name: "atomic".into(),
    });
    ns.run(|| nftables::apply(&d)).unwrap();
    p.ops.truncate(3);
    ns.run(|| nftables::apply(&p)).unwrap();
    let mut d2 = NftPlan::new();
    d2.push(NftOp::DestroyChain {
        family: f,
        table: "atomic".into(),
        chain: "a".into(),
    })
    .push(NftOp::DestroyChain {
        family: f,
        table: "atomic".into(),
        chain: "a".into(),
    });
    ns.run(|| nftables::apply(&d2)).unwrap();
    let listing = ns
        .run(|| nftables::list_table(f, "atomic"))
        .unwrap()
        .unwrap();
    assert!(listing.chains.is_empty());
    ns.run(|| nftables::apply(&d)).unwrap();
    assert!(
        ns.run(|| nftables::list_table(f, "atomic"))
            .unwrap()
            .is_none()
    );
    let tables = ns.run(nftables::list_tables).unwrap();
    assert!(tables.is_empty(), "{tables:?}");
    assert!(ns.run(cni_linux::firewall::nftables_available));
    let g1 = ns.run(nftables::generation).unwrap();
    ns.run(|| nftables::apply(&d)).unwrap();
    let g2 = ns.run(nftables::generation).unwrap();
    assert_ne!(g1, g2, "a transaction bumps the generation");
}

#[test]
fn bulk_transaction_cost() {
    if !common::require_tool("nft") {
        return;
    }
    let ns = TestNs::new("nftbulk");
    let f = Family::Ip;
    let t = "bulk";
    let n = 2000u16;
    let mut p = NftPlan::new();
    p.add_table(f, t, None)
        .add_chain(f, t, ChainSpec::regular("c"));
    for i in 0..n {
        p.add_rule(
            f,
            t,
            RuleSpec::new(
                "c",
                vec![
                    cmp(Field::Dport(L4Proto::Tcp), Value::Port(10000 + i)),
                    Stmt::Nat {
                        kind: NatKind::Dnat,
                        addr: ip("10.0.0.2"),
                        port: Some(80),
                    },
                ],
            )
            .with_comment(CID),
        );
    }
    let start = std::time::Instant::now();
    ns.run(|| nftables::apply(&p)).unwrap();
    let rules_elapsed = start.elapsed();

    let map = SetSpec::map(
        "m",
        vec![DataType::InetProto, DataType::InetService],
        MapData::Values(vec![DataType::Ipv4Addr, DataType::InetService]),
    );
    let mut p2 = NftPlan::new();
    p2.add_set(f, t, map.clone()).add_elements(
        f,
        t,
        &map,
        (0..n)
            .map(|i| Element {
                key: vec![Value::l4(L4Proto::Tcp), Value::Port(10000 + i)],
                value: Some(ElemValue::Values(vec![
                    Value::Addr(ip("10.0.0.2")),
                    Value::Port(80),
                ])),
                comment: Some(CID.into()),
            })
            .collect(),
    );
    let start = std::time::Instant::now();
    ns.run(|| nftables::apply(&p2)).unwrap();
    let elems_elapsed = start.elapsed();

    let start = std::time::Instant::now();
    let listing = ns.run(|| nftables::list_table(f, t)).unwrap().unwrap();
    let list_elapsed = start.elapsed();
    assert_eq!(listing.chain("c").unwrap().rules.len(), usize::from(n));
    assert_eq!(listing.set("m").unwrap().elements.len(), usize::from(n));

    // One nft process adding one rule, for comparison.
    let start = std::time::Instant::now();
    ns.ok(&[
        "nft",
        "add",
        "rule",
        "ip",
        t,
        "c",
        "tcp",
        "dport",
        "9999",
        "dnat",
        "to",
        "10.0.0.2:80",
    ]);
    let nft_elapsed = start.elapsed();
    let one = NftPlan {
        ops: vec![NftOp::AddRule {
            family: f,
            table: t.into(),
            rule: RuleSpec::new(
                "c",
                vec![
                    cmp(Field::Dport(L4Proto::Tcp), Value::Port(9998)),
                    Stmt::Verdict(Verdict::Accept),
                ],
            ),
        }],
    };
    let start = std::time::Instant::now();
    ns.run(|| nftables::apply(&one)).unwrap();
    let one_elapsed = start.elapsed();

    eprintln!(
        "nftables cost: {n} rules in one transaction {rules_elapsed:?} ({:.1} µs/rule); \
         {n} map elements {elems_elapsed:?} ({:.1} µs/element); listing {list_elapsed:?}; \
         one-rule transaction incl. netns thread {one_elapsed:?}; one `nft add rule` process {nft_elapsed:?}",
        rules_elapsed.as_secs_f64() * 1e6 / f64::from(n),
        elems_elapsed.as_secs_f64() * 1e6 / f64::from(n),
    );
}

#[test]
fn traffic_is_dnatted_through_verdict_map_and_concatenated_map() {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    if !common::require_root() {
        return;
    }
    let ns = TestNs::new("nftflow");
    ns.sh("ip link set lo up && ip addr add 10.0.0.2/32 dev lo && ip addr add 10.0.0.3/32 dev lo");
    let exchange = || {
        let listener = TcpListener::bind("10.0.0.2:80").unwrap();
        let mut client = match TcpStream::connect("10.0.0.3:8080") {
            Ok(c) => c,
            Err(e) => return Err(e.kind()),
        };
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        Ok(server.local_addr().unwrap())
    };
    // Nothing listens on 8080: refused before the rules exist.
    assert_eq!(ns.run(exchange), Err(std::io::ErrorKind::ConnectionRefused));

    let f = Family::Ip;
    let t = "flow";
    let svc = SetSpec::map(
        "svc",
        vec![DataType::InetProto, DataType::InetService],
        MapData::Verdict,
    );
    let dnat = SetSpec::map(
        "dnat",
        vec![DataType::InetProto, DataType::InetService],
        MapData::Values(vec![DataType::Ipv4Addr, DataType::InetService]),
    );
    let mut p = NftPlan::new();
    p.add_table(f, t, None)
        .add_chain(f, t, ChainSpec::regular("hostports"))
        .add_chain(
            f,
            t,
            ChainSpec::base("output", ChainType::Nat, Hook::Output, priority::DSTNAT),
        )
        .add_set(f, t, svc.clone())
        .add_set(f, t, dnat.clone())
        .add_elements(
            f,
            t,
            &svc,
            vec![Element {
                key: vec![Value::l4(L4Proto::Tcp), Value::Port(8080)],
                value: Some(ElemValue::Verdict(Verdict::Jump("hostports".into()))),
                comment: None,
            }],
        )
        .add_elements(
            f,
            t,
            &dnat,
            vec![Element {
                key: vec![Value::l4(L4Proto::Tcp), Value::Port(8080)],
                value: Some(ElemValue::Values(vec![
                    Value::Addr(ip("10.0.0.2")),
                    Value::Port(80),
                ])),
                comment: Some(CID.into()),
            }],
        )
        .add_rule(
            f,
            t,
            RuleSpec::new(
                "output",
                vec![
                    Stmt::FibDaddrLocal { negate: false },
                    Stmt::VerdictMap {
                        fields: vec![Field::L4Proto, Field::ThDport],
                        map: "svc".into(),
                    },
                ],
            ),
        )
        .add_rule(
            f,
            t,
            RuleSpec::new(
                "hostports",
                vec![Stmt::NatMap {
                    kind: NatKind::Dnat,
                    family: IpFamily::V4,
                    fields: vec![Field::L4Proto, Field::ThDport],
                    map: "dnat".into(),
                    with_port: true,
                }],
            ),
        );
    ns.run(|| nftables::apply(&p)).unwrap();
    let served_by = ns.run(exchange).unwrap();
    assert_eq!(served_by.to_string(), "10.0.0.2:80");
}

#[test]
fn create_set_get_element_and_chain_exists() {
    if !common::require_tool("nft") {
        return;
    }
    let ns = TestNs::new("nftget");
    let f = Family::Ip;
    let t = "lookups";
    let map = SetSpec::map(
        "owners",
        vec![DataType::Ipv4Addr],
        MapData::Values(vec![DataType::Ifname]),
    );
    let key = [DataType::Ipv4Addr];
    let get = |addr: &str| {
        let v = [Value::Addr(ip(addr))];
        ns.run(|| nftables::get_element(f, t, "owners", &key, &v))
            .unwrap()
    };
    // Nothing yet: no table, no chain, no element.
    assert_eq!(get("10.0.0.2"), None);
    assert!(!ns.run(|| nftables::chain_exists(f, t, "post")).unwrap());

    let elem = |addr: &str, owner: &str| Element {
        key: vec![Value::Addr(ip(addr))],
        value: Some(ElemValue::Values(vec![Value::Ifname(owner.into())])),
        comment: Some(format!("owner {owner}")),
    };
    let mut p = NftPlan::new();
    p.add_table(f, t, None)
        .add_chain(
            f,
            t,
            ChainSpec::base("post", ChainType::Nat, Hook::Postrouting, priority::SRCNAT),
        )
        .create_set(f, t, map.clone())
        .add_elements(f, t, &map, vec![elem("10.0.0.2", "aaa")]);
    ns.run(|| nftables::apply(&p)).unwrap();
    assert!(ns.run(|| nftables::chain_exists(f, t, "post")).unwrap());
    assert!(!ns.run(|| nftables::chain_exists(f, t, "other")).unwrap());
    assert!(
        !ns.run(|| nftables::chain_exists(Family::Ip6, t, "post"))
            .unwrap()
    );

    let e = get("10.0.0.2").expect("element");
    assert_eq!(e.key, vec![10, 0, 0, 2]);
    assert_eq!(e.comment.as_deref(), Some("owner aaa"));
    let mut owner = b"aaa".to_vec();
    owner.resize(16, 0);
    assert_eq!(e.data, Some(ElementData::Value(owner)));
    assert_eq!(get("10.0.0.3"), None, "a missing key");

    // A second `create` of the same map fails with EEXIST and applies nothing.
    let mut again = NftPlan::new();
    again
        .create_set(f, t, map.clone())
        .add_elements(f, t, &map, vec![elem("10.0.0.3", "bbb")]);
    match ns.run(|| nftables::apply(&again)).unwrap_err() {
        NftError::Rejected { index, source, .. } => {
            assert_eq!(index, Some(0));
            assert_eq!(source.raw_os_error(), Some(libc::EEXIST));
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(get("10.0.0.3"), None, "all or nothing");
    // `add` of the same map is idempotent.
    let mut add = NftPlan::new();
    add.add_set(f, t, map.clone())
        .add_elements(f, t, &map, vec![elem("10.0.0.3", "bbb")]);
    ns.run(|| nftables::apply(&add)).unwrap();
    assert!(get("10.0.0.3").is_some());
    // Re-adding a key with another value is refused (the value tells owners apart).
    let mut clash = NftPlan::new();
    clash.add_elements(f, t, &map, vec![elem("10.0.0.3", "ccc")]);
    let err = ns.run(|| nftables::apply(&clash)).unwrap_err();
    assert_eq!(err.errno(), Some(libc::EEXIST), "{err}");
    let rs = ruleset(&ns);
    assert!(
        rs.iter()
            .any(|l| l.contains(r#"10.0.0.3 comment "owner bbb" : "bbb""#)),
        "{rs:#?}"
    );
}

#[test]
fn iptables_chain_may_exist_without_running_iptables() {
    if !common::require_tool("iptables") {
        return;
    }
    use cni_linux::firewall::{FirewallApplier, System};
    let ns = TestNs::new("iptexists");
    let exists = |f: IpFamily, chain: &str| {
        let chain = chain.to_owned();
        ns.run(move || System.iptables_chain_may_exist(f, "nat", &chain))
            .unwrap()
    };
    let legacy = ns
        .cmd(&["iptables", "--version"])
        .stdout
        .windows(6)
        .any(|w| w == b"legacy");
    assert!(!exists(IpFamily::V4, "CNI-probe"));
    assert!(!exists(IpFamily::V6, "CNI-probe"));
    let out = ns.cmd(&["iptables", "-t", "nat", "-N", "CNI-probe"]);
    assert!(out.status.success(), "{out:?}");
    assert!(exists(IpFamily::V4, "CNI-probe"));
    // iptables-nft: the answer is exact; legacy: any chain of a loaded table may exist.
    assert_eq!(exists(IpFamily::V4, "CNI-other"), legacy);
    assert!(!exists(IpFamily::V6, "CNI-probe"));
}
