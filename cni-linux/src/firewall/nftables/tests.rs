use std::net::IpAddr;

use super::*;
use crate::firewall::IpFamily;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn eq(field: Field, value: Value) -> Stmt {
    Stmt::Cmp {
        field,
        op: CmpOp::Eq,
        value,
    }
}

fn sample_plan() -> NftPlan {
    let f = Family::Ip;
    let t = "cni_hostport";
    let dmap = SetSpec::map(
        "dnat",
        vec![DataType::InetProto, DataType::InetService],
        MapData::Values(vec![DataType::Ipv4Addr, DataType::InetService]),
    );
    let vmap = SetSpec::map("svc", vec![DataType::InetService], MapData::Verdict);
    let mut p = NftPlan::new();
    p.add_table(f, t, Some("CNI portmap plugin"))
        .add_chain(f, t, ChainSpec::regular("hostports"))
        .add_chain(
            f,
            t,
            ChainSpec::base(
                "prerouting",
                ChainType::Nat,
                Hook::Prerouting,
                priority::DSTNAT,
            )
            .with_comment("entry"),
        )
        .flush_chain(f, t, "prerouting")
        .add_rule(
            f,
            t,
            RuleSpec::new(
                "prerouting",
                vec![
                    Stmt::FibDaddrLocal { negate: false },
                    Stmt::Verdict(Verdict::Jump("hostports".into())),
                ],
            ),
        )
        .add_rule(
            f,
            t,
            RuleSpec::new(
                "hostports",
                vec![
                    eq(Field::IpDaddr, Value::Addr(ip("192.168.1.1"))),
                    eq(Field::Dport(L4Proto::Tcp), Value::Port(8080)),
                    Stmt::Nat {
                        kind: NatKind::Dnat,
                        addr: ip("10.0.0.2"),
                        port: Some(80),
                    },
                ],
            )
            .with_comment("cid \"quoted\""),
        )
        .insert_rule(
            f,
            t,
            RuleSpec::new(
                "hostports",
                vec![
                    Stmt::Cmp {
                        field: Field::IpSaddr,
                        op: CmpOp::Neq,
                        value: Value::Net("10.0.0.0/24".parse().unwrap()),
                    },
                    Stmt::CtState(vec![CtState::Established, CtState::Related]),
                    Stmt::Counter,
                    Stmt::SetMark(0x2000),
                    Stmt::Masquerade,
                ],
            ),
        )
        .add_set(f, t, dmap.clone())
        .add_set(f, t, vmap.clone())
        .add_elements(
            f,
            t,
            &dmap,
            vec![Element {
                key: vec![Value::l4(L4Proto::Tcp), Value::Port(8080)],
                value: Some(ElemValue::Values(vec![
                    Value::Addr(ip("10.0.0.2")),
                    Value::Port(80),
                ])),
                comment: Some("cid".into()),
            }],
        )
        .add_elements(
            f,
            t,
            &vmap,
            vec![Element {
                key: vec![Value::Port(53)],
                value: Some(ElemValue::Verdict(Verdict::Goto("dns".into()))),
                comment: None,
            }],
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
        )
        .add_rule(
            f,
            t,
            RuleSpec::new(
                "hostports",
                vec![Stmt::VerdictMap {
                    fields: vec![Field::ThDport],
                    map: "svc".into(),
                }],
            ),
        )
        .delete_elements(
            f,
            t,
            &dmap,
            vec![vec![Value::l4(L4Proto::Udp), Value::Port(53)]],
        )
        .delete_rule(f, t, "hostports", 42)
        .push(NftOp::DestroyTable {
            family: Family::Inet,
            name: "old".into(),
        });
    p
}

#[test]
fn golden_plan_dump() {
    let want = r#"add table ip cni_hostport { comment "CNI portmap plugin" }
add chain ip cni_hostport hostports
add chain ip cni_hostport prerouting { type nat hook prerouting priority -100; comment "entry"; }
flush chain ip cni_hostport prerouting
add rule ip cni_hostport prerouting fib daddr type local jump hostports
add rule ip cni_hostport hostports ip daddr 192.168.1.1 tcp dport 8080 dnat to 10.0.0.2:80 comment "cid \"quoted\""
insert rule ip cni_hostport hostports ip saddr != 10.0.0.0/24 ct state established,related counter meta mark set 0x00002000 masquerade
add map ip cni_hostport dnat { type inet_proto . inet_service : ipv4_addr . inet_service; }
add map ip cni_hostport svc { type inet_service : verdict; }
add element ip cni_hostport dnat { tcp . 8080 : 10.0.0.2 . 80 comment "cid" }
add element ip cni_hostport svc { 53 : goto dns }
add rule ip cni_hostport hostports dnat ip to meta l4proto . th dport map @dnat
add rule ip cni_hostport hostports th dport vmap @svc
delete element ip cni_hostport dnat { udp . 53 }
delete rule ip cni_hostport hostports handle 42
destroy table inet old
"#;
    assert_eq!(sample_plan().to_string(), want);
}

#[test]
fn nat_family_is_printed_in_inet_tables_only() {
    let nat = Stmt::Nat {
        kind: NatKind::Snat,
        addr: ip("fd00::1"),
        port: Some(1),
    };
    assert_eq!(expr::stmt_text(&nat, Family::Ip6), "snat to [fd00::1]:1");
    assert_eq!(
        expr::stmt_text(&nat, Family::Inet),
        "snat ip6 to [fd00::1]:1"
    );
    let nat = Stmt::Nat {
        kind: NatKind::Dnat,
        addr: ip("10.0.0.1"),
        port: None,
    };
    assert_eq!(expr::stmt_text(&nat, Family::Inet), "dnat ip to 10.0.0.1");
}

#[test]
fn encodes_a_batch_with_begin_and_end() {
    let bytes = encode(&sample_plan()).unwrap();
    // First message: NFNL_MSG_BATCH_BEGIN (0x10), res_id NFNL_SUBSYS_NFTABLES (10) big endian.
    let len0 = u32::from_ne_bytes(bytes[0..4].try_into().unwrap()) as usize;
    assert_eq!(len0, 20);
    assert_eq!(u16::from_ne_bytes(bytes[4..6].try_into().unwrap()), 0x10);
    assert_eq!(&bytes[18..20], &[0, 10]);
    // Walk all messages; the last is NFNL_MSG_BATCH_END (0x11).
    let mut off = 0;
    let mut types = Vec::new();
    while off < bytes.len() {
        let len = u32::from_ne_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        types.push(u16::from_ne_bytes(
            bytes[off + 4..off + 6].try_into().unwrap(),
        ));
        off += (len + 3) & !3;
    }
    assert_eq!(off, bytes.len());
    assert_eq!(types.first(), Some(&0x10));
    assert_eq!(types.last(), Some(&0x11));
    // DestroyTable is two messages (add + delete); everything else one.
    assert_eq!(types.len(), sample_plan().ops.len() + 1 + 2);
    // nf_tables messages: subsystem 10 in the high byte.
    assert!(types[1..types.len() - 1].iter().all(|t| t >> 8 == 10));
}

#[track_caller]
fn invalid(op: NftOp) -> String {
    let plan = NftPlan { ops: vec![op] };
    match encode(&plan) {
        Err(NftError::Invalid { reason, .. }) => reason,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn rejects_what_the_kernel_or_nft_would_misread() {
    let rule = |family, stmts| NftOp::AddRule {
        family,
        table: "t".into(),
        rule: RuleSpec::new("c", stmts),
    };
    assert!(
        invalid(rule(
            Family::Ip,
            vec![eq(Field::Ip6Saddr, Value::Addr(ip("::1")))]
        ))
        .contains("ip6")
    );
    assert!(
        invalid(rule(
            Family::Ip,
            vec![eq(Field::EtherSaddr, Value::Ether([0; 6]))]
        ))
        .contains("ether")
    );
    assert!(
        invalid(rule(Family::Ip, vec![eq(Field::IpSaddr, Value::Port(1))]))
            .contains("does not fit")
    );
    assert!(
        invalid(rule(
            Family::Ip,
            vec![eq(
                Field::Iifname,
                Value::Ifname("a-name-longer-than-15".into())
            )]
        ))
        .contains("interface")
    );
    assert!(
        invalid(rule(
            Family::Ip6,
            vec![Stmt::Nat {
                kind: NatKind::Dnat,
                addr: ip("10.0.0.1"),
                port: None
            }]
        ))
        .contains("nat")
    );
    assert!(invalid(rule(Family::Bridge, vec![Stmt::Masquerade])).contains("masquerade"));
    assert!(invalid(rule(Family::Ip, vec![Stmt::CtState(vec![])])).contains("ct state"));
    let long = NftOp::AddRule {
        family: Family::Ip,
        table: "t".into(),
        rule: RuleSpec::new("c", vec![]).with_comment("x".repeat(129)),
    };
    assert!(invalid(long).contains("128"));
    assert!(
        invalid(NftOp::AddTable {
            family: Family::Ip,
            name: "a\0b".into(),
            comment: None
        })
        .contains("table name")
    );
    let set = SetSpec::set("s", vec![DataType::Ipv4Addr]);
    let bad_elem = NftOp::AddElements {
        family: Family::Ip,
        table: "t".into(),
        set: "s".into(),
        key: set.key.clone(),
        data: None,
        elements: vec![Element {
            key: vec![Value::Port(1)],
            value: None,
            comment: None,
        }],
    };
    assert!(invalid(bad_elem).contains("not of type"));
    let wrong_arity = NftOp::DeleteElements {
        family: Family::Ip,
        table: "t".into(),
        set: "s".into(),
        key: set.key,
        keys: vec![vec![Value::Addr(ip("1.2.3.4")), Value::Port(1)]],
    };
    assert!(invalid(wrong_arity).contains("values"));
}

#[test]
fn element_keys_are_padded_in_concatenations_only() {
    let k = encode_key(&[DataType::InetService], &[Value::Port(80)]).unwrap();
    assert_eq!(k, [0, 80]);
    let k = encode_key(
        &[DataType::InetProto, DataType::InetService],
        &[Value::l4(L4Proto::Udp), Value::Port(0x1234)],
    )
    .unwrap();
    assert_eq!(k, [17, 0, 0, 0, 0x12, 0x34, 0, 0]);
    let k = encode_key(
        &[DataType::Ipv4Addr, DataType::InetService],
        &[Value::Addr(ip("10.0.0.2")), Value::Port(80)],
    )
    .unwrap();
    assert_eq!(k, [10, 0, 0, 2, 0, 80, 0, 0]);
    assert_eq!(
        type_id(&[DataType::InetProto, DataType::InetService]),
        (12 << 6) | 13
    );
    assert_eq!(type_len(&[DataType::Ipv6Addr, DataType::InetService]), 20);
}

#[test]
fn large_element_lists_are_split_into_several_messages() {
    let set = SetSpec::set("s", vec![DataType::Ipv4Addr]);
    let elements = (0..10_000u32)
        .map(|i| Element {
            key: vec![Value::Addr(IpAddr::from(std::net::Ipv4Addr::from(
                0x0a00_0000 + i,
            )))],
            value: None,
            comment: Some("0123456789abcdef0123456789abcdef".into()),
        })
        .collect();
    let mut p = NftPlan::new();
    p.add_elements(Family::Ip, "t", &set, elements);
    let msgs = socket::encode_plan(&p).unwrap();
    assert!(msgs.len() > 1, "split into {} messages", msgs.len());
    assert!(msgs.iter().all(|m| m.op == 0));
}

#[test]
fn create_set_is_exclusive_and_dumped_as_create() {
    let spec = SetSpec::map(
        "m",
        vec![DataType::Ipv4Addr],
        MapData::Values(vec![DataType::Ifname]),
    );
    let mut p = NftPlan::new();
    p.add_set(Family::Ip, "t", spec.clone())
        .create_set(Family::Ip, "t", spec);
    assert_eq!(
        p.to_string(),
        "add map ip t m { type ipv4_addr : ifname; }\ncreate map ip t m { type ipv4_addr : ifname; }\n"
    );
    // The two NEWSET messages differ only in NLM_F_EXCL (0x200) in the netlink flags.
    let bytes = encode(&p).unwrap();
    let mut off = 0;
    let mut flags = Vec::new();
    while off < bytes.len() {
        let len = u32::from_ne_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        flags.push(u16::from_ne_bytes(
            bytes[off + 6..off + 8].try_into().unwrap(),
        ));
        off += (len + 3) & !3;
    }
    assert_eq!(flags.len(), 4, "begin, add, create, end");
    assert_eq!(flags[1] & 0x200, 0);
    assert_eq!(flags[2] & 0x200, 0x200);
    assert_eq!(flags[1] | 0x200, flags[2]);
}

#[test]
fn a_rejection_prints_its_errno_once() {
    use std::error::Error as _;
    let errno = std::io::Error::from_raw_os_error(libc::EEXIST);
    let e = NftError::Rejected {
        index: Some(2),
        op: Some("add table ip t".into()),
        message: Some("bad table".into()),
        source: std::io::Error::from_raw_os_error(libc::EEXIST),
    };
    assert_eq!(
        e.to_string(),
        "nf_tables rejected op #2 `add table ip t` (bad table)"
    );
    assert_eq!(e.source().map(ToString::to_string), Some(errno.to_string()));
    assert!(!e.to_string().contains(&errno.to_string()));
}
