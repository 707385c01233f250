use super::*;
use cni_linux::firewall::Backend;
use cni_linux::firewall::nftables::{ChainListing, ElementListing, SetListing};
use cni_linux::firewall::owner::Owner;
use ipnet::IpNet;

fn conf(json_extra: &str, maps: &str) -> PortmapConf {
    let j = format!(
        r#"{{"name":"net1","type":"portmap","cniVersion":"1.0.0","backend":"nftables",
        "runtimeConfig":{{"portMappings":[{maps}]}}{json_extra}}}"#
    );
    PortmapConf::parse(j.as_bytes(), "eth0", &mut || Backend::Nftables).unwrap()
}

fn att(id: &str) -> Attachment {
    Attachment {
        container_id: id.into(),
        ifname: "eth0".into(),
    }
}

/// The reference test's mappings (`portmap_nftables_test.go`).
const REF_MAPS: &str = r#"
    {"hostPort":8080,"containerPort":80,"protocol":"tcp"},
    {"hostPort":8081,"containerPort":80,"protocol":"tcp"},
    {"hostPort":8080,"containerPort":81,"protocol":"udp"},
    {"hostPort":8082,"containerPort":82,"protocol":"udp"},
    {"hostPort":8083,"containerPort":83,"protocol":"tcp","hostIP":"192.168.0.2"},
    {"hostPort":8084,"containerPort":84,"protocol":"tcp","hostIP":"0.0.0.0"},
    {"hostPort":8085,"containerPort":85,"protocol":"tcp","hostIP":"2001:db8:a::1"},
    {"hostPort":8086,"containerPort":86,"protocol":"tcp","hostIP":"::"}"#;

/// Compares with a golden file; `UPDATE_GOLDEN=1` rewrites it, never under CI (a golden
/// written by the code under test would pass whatever the code does).
#[track_caller]
fn golden(name: &str, have: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/nftables/golden");
    cni_testkit::golden::assert_golden(&dir.join(name), have);
}

#[test]
fn golden_add_v4_snat_conditions() {
    let c = conf(
        r#","conditionsV4":["ip saddr != 10.0.0.0/8"],"conditionsV6":["ip6 saddr fd00::/8"]"#,
        REF_MAPS,
    );
    let p = add_plan_with_skeleton(
        &c,
        &att("icee6giejonei6so"),
        "10.0.0.2/24".parse().unwrap(),
        &[],
    )
    .unwrap();
    golden("add_v4.nft", &p.to_string());
    // The fast path: the stamp assertion and the container's part only.
    let fast = add_plan(
        &c,
        &att("icee6giejonei6so"),
        "10.0.0.2/24".parse().unwrap(),
        &[],
    )
    .unwrap();
    golden("add_v4_fast.nft", &fast.to_string());
    let text = p.to_string();
    let stamp = skeleton_stamp(&c, IpFamily::V4).unwrap();
    assert!(text.contains(&format!(
        "add element ip cni_portmap skeleton {{ \"stamp\" : \"{stamp}\" }}"
    )));
    assert!(fast.to_string().starts_with(&format!(
        "add element ip cni_portmap skeleton {{ \"stamp\" : \"{stamp}\" }}\n"
    )));
    // Only element additions: what the kernel commits without validating the table or
    // waiting for a grace period.
    assert!(
        fast.ops
            .iter()
            .all(|o| matches!(o, NftOp::AddElements { .. })),
        "{fast}"
    );
}

#[test]
fn golden_add_v6_no_snat() {
    let c = conf(r#","snat":false"#, REF_MAPS);
    let p = add_plan_with_skeleton(
        &c,
        &att("icee6giejonei6so"),
        "2001:db8::2/64".parse().unwrap(),
        &[],
    )
    .unwrap();
    golden("add_v6_nosnat.nft", &p.to_string());
}

#[test]
fn golden_add_masq_all_and_mark_bit() {
    let c = conf(
        r#","masqAll":true,"markMasqBit":5"#,
        r#"{"hostPort":8080,"containerPort":80,"protocol":"tcp"}"#,
    );
    let p = add_plan_with_skeleton(&c, &att("c1"), "10.0.0.2/24".parse().unwrap(), &[]).unwrap();
    golden("add_v4_masqall.nft", &p.to_string());
    let p = add_plan(&c, &att("c1"), "fd00::2/64".parse().unwrap(), &[]).unwrap();
    golden("add_v6_masqall.nft", &p.to_string());
}

#[test]
fn golden_takeover_and_del() {
    let c = conf("", REF_MAPS);
    let net: IpNet = "10.0.0.2/24".parse().unwrap();
    let all = entries(&c, net);
    let taken: Vec<Entry> = all
        .iter()
        .filter(|e| e.map == DNAT)
        .take(1)
        .cloned()
        .collect();
    assert_eq!(taken[0].to_string(), "dnat { tcp . 8080 : 10.0.0.2 . 80 }");
    let p = add_plan(&c, &att("c1"), net, &taken).unwrap();
    let text = p.to_string();
    let del_at = text
        .find("delete element ip cni_portmap dnat { tcp . 8080 }")
        .unwrap();
    let add_at = text.find("add element ip cni_portmap dnat").unwrap();
    assert!(del_at < add_at, "{text}");
    let p = del_plan(
        IpFamily::V4,
        &Owner::new("net1", "eth0", "c1").comment(),
        &all,
    );
    golden("del_v4.nft", &p.to_string());
}

#[test]
fn stamps_follow_conditions_and_mark() {
    let a = conf("", REF_MAPS);
    let b = conf(r#","markMasqBit":5"#, REF_MAPS);
    let c = conf(r#","conditionsV4":["iifname eth0"]"#, REF_MAPS);
    let s = |c: &PortmapConf, f| skeleton_stamp(c, f).unwrap();
    assert_eq!(s(&a, IpFamily::V4).len(), 15);
    assert!(s(&a, IpFamily::V4).starts_with("v2-"));
    assert_ne!(s(&a, IpFamily::V4), s(&b, IpFamily::V4));
    assert_ne!(s(&a, IpFamily::V4), s(&c, IpFamily::V4));
    assert_ne!(s(&a, IpFamily::V4), s(&a, IpFamily::V6));
    // conditionsV4 do not change the IPv6 skeleton.
    assert_eq!(s(&a, IpFamily::V6), s(&c, IpFamily::V6));
    // Mappings and containers do not matter.
    assert_eq!(
        s(&a, IpFamily::V4),
        s(
            &conf("", r#"{"hostPort":1,"containerPort":1,"protocol":"udp"}"#),
            IpFamily::V4
        )
    );
}

#[test]
fn names_and_comments() {
    assert_eq!(Owner::new("net1", "eth0", "c1").comment(), "net1 eth0 c1");
    let long_cid = "x".repeat(200);
    let cm = Owner::new("net1", "eth0", &long_cid).comment();
    assert_eq!(cm.len(), MAX_COMMENT_LEN);
    assert!(cm.starts_with("net1 eth0 xxx"));
    let long_net = "n".repeat(60);
    let tag = network_tag(&long_net);
    assert!(tag.starts_with('#') && tag.len() == 25);
    assert!(
        Owner::new(&long_net, "eth0", "c")
            .comment()
            .starts_with(&format!("{tag} eth0 "))
    );
}

#[test]
fn entries_per_family_and_options() {
    let c = conf(
        "",
        r#"{"hostPort":80,"containerPort":80,"protocol":"tcp"},
           {"hostPort":80,"containerPort":81,"protocol":"tcp"},
           {"hostPort":81,"containerPort":81,"protocol":"tcp","hostIP":"fd00::1"},
           {"hostPort":82,"containerPort":81,"protocol":"sctp","hostIP":"10.1.1.1"}"#,
    );
    let text = |c: &PortmapConf, n: &str| {
        entries(c, n.parse().unwrap())
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    // The duplicate tcp/80 keeps the first mapping; hostIP of the other family skipped.
    assert_eq!(
        text(&c, "10.0.0.2/24"),
        vec![
            "masq { 10.0.0.2 . tcp . 80 : 10.0.0.2 . 80 }",
            "masq { 127.0.0.1 . tcp . 80 : 10.0.0.2 . 80 }",
            "hostip_masq { 10.0.0.2 . 10.1.1.1 . sctp . 82 : 10.0.0.2 . 81 }",
            "hostip_masq { 127.0.0.1 . 10.1.1.1 . sctp . 82 : 10.0.0.2 . 81 }",
            "hostip_dnat { 10.1.1.1 . sctp . 82 : 10.0.0.2 . 81 }",
            "dnat { tcp . 80 : 10.0.0.2 . 80 }",
        ]
    );
    assert_eq!(
        text(&c, "fd00::2/64"),
        vec![
            "masq { fd00::2 . tcp . 80 : fd00::2 . 80 }",
            "hostip_masq { fd00::2 . fd00::1 . tcp . 81 : fd00::2 . 81 }",
            "hostip_dnat { fd00::1 . tcp . 81 : fd00::2 . 81 }",
            "dnat { tcp . 80 : fd00::2 . 80 }",
        ]
    );
    let all = conf(
        r#","masqAll":true"#,
        r#"{"hostPort":80,"containerPort":80,"protocol":"udp"},{"hostPort":81,"containerPort":80,"protocol":"udp","hostIP":"10.9.9.9"}"#,
    );
    assert_eq!(
        text(&all, "10.0.0.2/24"),
        vec![
            "masqall { udp . 80 : 10.0.0.2 . 80 }",
            "hostip_masqall { 10.9.9.9 . udp . 81 : 10.0.0.2 . 80 }",
            "hostip_dnat { 10.9.9.9 . udp . 81 : 10.0.0.2 . 80 }",
            "dnat { udp . 80 : 10.0.0.2 . 80 }",
        ]
    );
    let nosnat = conf(
        r#","snat":false"#,
        r#"{"hostPort":80,"containerPort":80,"protocol":"tcp"}"#,
    );
    assert_eq!(
        text(&nosnat, "10.0.0.2/24"),
        vec!["dnat { tcp . 80 : 10.0.0.2 . 80 }"]
    );
}

#[test]
fn keys_decode_as_encoded() {
    let c = conf("", REF_MAPS);
    for net in ["10.0.0.2/24", "2001:db8::2/64"] {
        let net: IpNet = net.parse().unwrap();
        let f = IpFamily::of(&net.addr());
        for e in entries(&c, net) {
            let spec = map_spec(e.map, f);
            let bytes = encode_key(&spec.key, &e.key).unwrap();
            assert_eq!(decode_key(f, e.map, &bytes).as_ref(), Some(&e.key), "{e}");
            let v = value_bytes(f, &e.value).unwrap();
            assert_eq!(decode_value(f, &v).unwrap(), join(&e.value));
        }
    }
    assert_eq!(decode_key(IpFamily::V4, DNAT, &[6, 0, 0]), None);
    assert_eq!(
        decode_key(IpFamily::V4, "nope", &[6, 0, 0, 0, 0, 80, 0, 0]),
        None
    );
}

/// A listing as the kernel would return it after the ADDs of `added`.
fn listing_after(added: &[(&PortmapConf, &Attachment, &str)]) -> TableListing {
    let mut t = TableListing {
        family: Family::Ip,
        name: TABLE.into(),
        handle: 1,
        comment: Some(TABLE_COMMENT.into()),
        chains: Vec::new(),
        sets: Vec::new(),
    };
    let set = |name: &str| SetListing {
        name: name.into(),
        handle: 1,
        flags: 0,
        key_type: 0,
        key_len: 0,
        data_type: None,
        data_len: None,
        comment: None,
        elements: Vec::new(),
    };
    for m in MAPS {
        t.sets.push(set(m));
    }
    let mut stamp = set(STAMP_MAP);
    if let Some((c, _, _)) = added.first() {
        let ifname = |v: &str| encode_key(&[DataType::Ifname], &[Value::Ifname(v.into())]).unwrap();
        stamp.elements.push(ElementListing {
            key: ifname(STAMP_KEY),
            data: Some(ElementData::Value(ifname(
                &skeleton_stamp(c, IpFamily::V4).unwrap(),
            ))),
            comment: None,
        });
    }
    t.sets.push(stamp);
    let rule = |h: u64| cni_linux::firewall::nftables::RuleListing {
        handle: h,
        comment: None,
        exprs: vec![],
    };
    for (name, n) in [
        (PREROUTING, 1),
        (OUTPUT, 1),
        (POSTROUTING, 1),
        (HOSTPORTS, 6),
    ] {
        t.chains.push(ChainListing {
            name: name.into(),
            handle: 1,
            hook: None,
            chain_type: None,
            policy: None,
            comment: None,
            rules: (0..n).map(rule).collect(),
        });
    }
    for (c, a, net) in added {
        let comment = Owner::new(&c.name, &a.ifname, &a.container_id).comment();
        for e in entries(c, net.parse().unwrap()) {
            let spec = map_spec(e.map, IpFamily::V4);
            let key = encode_key(&spec.key, &e.key).unwrap();
            let s = t.sets.iter_mut().find(|s| s.name == e.map).unwrap();
            s.elements.retain(|x| x.key != key);
            s.elements.push(ElementListing {
                key,
                data: Some(ElementData::Value(
                    value_bytes(IpFamily::V4, &e.value).unwrap(),
                )),
                comment: Some(comment.clone()),
            });
        }
    }
    t
}

#[test]
fn check_conflicts_del_gc_from_listings() {
    let a = conf(
        "",
        r#"{"hostPort":80,"containerPort":80,"protocol":"tcp"},{"hostPort":53,"containerPort":53,"protocol":"udp","hostIP":"10.1.1.1"}"#,
    );
    let b = conf(
        "",
        r#"{"hostPort":80,"containerPort":8080,"protocol":"tcp"}"#,
    );
    let (aa, ab) = (att("a"), att("b"));
    let (na, nb): (IpNet, IpNet) = (
        "10.0.0.2/24".parse().unwrap(),
        "10.0.0.3/24".parse().unwrap(),
    );
    let t = listing_after(&[(&a, &aa, "10.0.0.2/24")]);
    check(Some(&t), &a, na).unwrap();
    assert_eq!(
        listed_stamp(&t),
        Some(skeleton_stamp(&a, IpFamily::V4).unwrap())
    );
    assert_eq!(
        check(None, &a, na).unwrap_err().to_string(),
        "nftables table cni_portmap not found in table ip cni_portmap"
    );
    // Another configuration's skeleton.
    let mut a_cond = a.clone();
    a_cond.conditions_v4 = vec!["iifname".into(), "eth0".into()];
    assert!(matches!(
        check(Some(&t), &a_cond, na),
        Err(CheckError::Skeleton { .. })
    ));
    // snat off: the masq elements are not expected, the rest matches.
    let mut a_nosnat = a.clone();
    a_nosnat.snat = false;
    check(Some(&t), &a_nosnat, na).unwrap();
    // B over A: B's entries conflict with A's, not with themselves.
    assert_eq!(conflicts(&t, IpFamily::V4, &entries(&b, nb)).len(), 2);
    assert!(conflicts(&t, IpFamily::V4, &entries(&a, na)).is_empty());
    let t = listing_after(&[(&a, &aa, "10.0.0.2/24"), (&b, &ab, "10.0.0.3/24")]);
    let e = check(Some(&t), &a, na).unwrap_err();
    assert_eq!(
        e.to_string(),
        "host port masq 127.0.0.1 . tcp . 80 is mapped to 10.0.0.3 . 8080"
    );
    check(Some(&t), &b, nb).unwrap();
    // DEL of A from the listing: only what carries A's comment.
    let d = del_plan_listed(&t, IpFamily::V4, &Owner::new("net1", "eth0", "a").comment());
    assert_eq!(
        d.to_string(),
        "delete element ip cni_portmap masq { 10.0.0.2 . tcp . 80 }\n\
         delete element ip cni_portmap hostip_masq { 10.0.0.2 . 10.1.1.1 . udp . 53, 127.0.0.1 . 10.1.1.1 . udp . 53 }\n\
         delete element ip cni_portmap hostip_dnat { 10.1.1.1 . udp . 53 }\n"
    );
    // GC.
    assert!(gc_plan(&t, IpFamily::V4, "net1", &[aa.clone(), ab.clone()]).is_empty());
    assert!(gc_plan(&t, IpFamily::V4, "net2", &[]).is_empty());
    assert_eq!(
        gc_plan(&t, IpFamily::V4, "net1", std::slice::from_ref(&ab)).to_string(),
        d.to_string()
    );
    assert_eq!(gc_plan(&t, IpFamily::V4, "net1", &[]).ops.len(), 4);
}
