use super::*;
use cni_linux::firewall::Backend;
use cni_linux::firewall::nftables::{ChainListing, ElementListing, SetListing};

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

/// Compares with a golden file; `UPDATE_GOLDEN=1` rewrites it.
#[track_caller]
fn golden(name: &str, have: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/nftables/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, have).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(have, want, "golden file {} differs", path.display());
}

#[test]
fn golden_add_v4_snat_conditions() {
    let c = conf(
        r#","conditionsV4":["ip saddr != 10.0.0.0/8"],"conditionsV6":["ip6 saddr fd00::/8"]"#,
        REF_MAPS,
    );
    let p = add_plan(&c, &att("icee6giejonei6so"), "10.0.0.2/24".parse().unwrap(), &[]).unwrap();
    golden("add_v4.nft", &p.to_string());
}

#[test]
fn golden_add_v6_no_snat() {
    let c = conf(r#","snat":false"#, REF_MAPS);
    let p = add_plan(&c, &att("icee6giejonei6so"), "2001:db8::2/64".parse().unwrap(), &[]).unwrap();
    golden("add_v6_nosnat.nft", &p.to_string());
}

#[test]
fn golden_add_masq_all_and_mark_bit() {
    let c = conf(
        r#","masqAll":true,"markMasqBit":5"#,
        r#"{"hostPort":8080,"containerPort":80,"protocol":"tcp"}"#,
    );
    let p = add_plan(&c, &att("c1"), "10.0.0.2/24".parse().unwrap(), &[]).unwrap();
    golden("add_v4_masqall.nft", &p.to_string());
    let p = add_plan(&c, &att("c1"), "fd00::2/64".parse().unwrap(), &[]).unwrap();
    golden("add_v6_masqall.nft", &p.to_string());
}

#[test]
fn golden_takeover_and_del() {
    let c = conf("", REF_MAPS);
    let taken = [Key {
        host_ip: None,
        protocol: 6,
        host_port: 8080,
    }];
    let p = add_plan(&c, &att("c1"), "10.0.0.2/24".parse().unwrap(), &taken).unwrap();
    let text = p.to_string();
    let del_at = text.find("delete element ip cni_portmap ports { tcp . 8080 }").unwrap();
    let add_at = text.find("add element ip cni_portmap ports").unwrap();
    assert!(del_at < add_at, "{text}");
    let chain = container_chain("net1", "c1", "eth0");
    let cmt = owner_comment("net1", "c1", "eth0");
    let p = del_plan(IpFamily::V4, &chain, &cmt, &keys(&c, IpFamily::V4));
    golden("del_v4.nft", &p.to_string());
}

#[test]
fn names_and_comments() {
    let c = container_chain("net1", "c1", "eth0");
    assert!(c.starts_with("pm-") && c.len() == 43, "{c}");
    assert_ne!(c, container_chain("net1", "c1", "eth1"));
    assert_ne!(c, container_chain("net2", "c1", "eth0"));
    // "a\nb" + "c" must not collide with "a" + "b\nc": separators make the input unambiguous
    // for valid names (which contain no newline).
    assert_eq!(owner_comment("net1", "c1", "eth0"), "net1 eth0 c1");
    let long_cid = "x".repeat(200);
    let cm = owner_comment("net1", &long_cid, "eth0");
    assert_eq!(cm.len(), MAX_COMMENT_LEN);
    assert!(cm.starts_with("net1 eth0 xxx"));
    let long_net = "n".repeat(60);
    let tag = network_tag(&long_net);
    assert!(tag.starts_with('#') && tag.len() == 25);
    assert!(owner_comment(&long_net, "c", "eth0").starts_with(&format!("{tag} eth0 ")));
}

#[test]
fn keys_decode_as_encoded() {
    for (f, key) in [
        (
            IpFamily::V4,
            Key {
                host_ip: None,
                protocol: 17,
                host_port: 53,
            },
        ),
        (
            IpFamily::V4,
            Key {
                host_ip: Some("192.168.7.1".parse().unwrap()),
                protocol: 6,
                host_port: 65535,
            },
        ),
        (
            IpFamily::V6,
            Key {
                host_ip: Some("2001:db8::7".parse().unwrap()),
                protocol: 132,
                host_port: 1,
            },
        ),
        (
            IpFamily::V6,
            Key {
                host_ip: None,
                protocol: 6,
                host_port: 8080,
            },
        ),
    ] {
        let bytes = key_bytes(f, &key).unwrap();
        assert_eq!(decode_key(f, key.map(), &bytes), Some(key), "{bytes:?}");
    }
    assert_eq!(decode_key(IpFamily::V4, PORTS_MAP, &[6, 0, 0]), None);
}

#[test]
fn keys_skip_other_family_and_dedupe() {
    let c = conf(
        "",
        r#"{"hostPort":80,"containerPort":80,"protocol":"tcp"},
           {"hostPort":80,"containerPort":81,"protocol":"tcp"},
           {"hostPort":81,"containerPort":81,"protocol":"tcp","hostIP":"fd00::1"},
           {"hostPort":82,"containerPort":81,"protocol":"tcp","hostIP":"10.1.1.1"}"#,
    );
    let k4: Vec<String> = keys(&c, IpFamily::V4).iter().map(ToString::to_string).collect();
    assert_eq!(k4, vec!["10.1.1.1 . tcp . 82", "tcp . 80"]);
    let k6: Vec<String> = keys(&c, IpFamily::V6).iter().map(ToString::to_string).collect();
    assert_eq!(k6, vec!["fd00::1 . tcp . 81", "tcp . 80"]);
}

/// A listing as the kernel would return it after ADD of `c` for `att` at `net`.
fn listing_after_add(entries: &[(&PortmapConf, &Attachment, &str)]) -> TableListing {
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
    t.sets.push(set(HOSTIP_PORTS_MAP));
    t.sets.push(set(PORTS_MAP));
    let rule = |h: u64| cni_linux::firewall::nftables::RuleListing {
        handle: h,
        comment: None,
        exprs: vec![],
    };
    for (name, n) in [(PREROUTING, 1), (OUTPUT, 1), (POSTROUTING, 1), (HOSTPORTS, 2)] {
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
    for (c, a, net) in entries {
        let net: IpNet = net.parse().unwrap();
        let chain = container_chain(&c.name, &a.container_id, &a.ifname);
        t.chains.retain(|x| x.name != chain);
        t.chains.push(ChainListing {
            name: chain.clone(),
            handle: 9,
            hook: None,
            chain_type: None,
            policy: None,
            comment: Some(owner_comment(&c.name, &a.container_id, &a.ifname)),
            rules: (0..container_rules(c, net).len() as u64).map(rule).collect(),
        });
        for k in keys(c, IpFamily::V4) {
            let bytes = key_bytes(IpFamily::V4, &k).unwrap();
            let s = t.sets.iter_mut().find(|s| s.name == k.map()).unwrap();
            s.elements.retain(|e| e.key != bytes);
            s.elements.push(ElementListing {
                key: bytes,
                data: Some(ElementData::Verdict(Verdict::Goto(chain.clone()))),
                comment: None,
            });
        }
    }
    t
}

#[test]
fn check_conflicts_gc_from_listings() {
    let a = conf(
        "",
        r#"{"hostPort":80,"containerPort":80,"protocol":"tcp"},{"hostPort":53,"containerPort":53,"protocol":"udp","hostIP":"10.1.1.1"}"#,
    );
    let b = conf("", r#"{"hostPort":80,"containerPort":8080,"protocol":"tcp"}"#);
    let (aa, ab) = (att("a"), att("b"));
    let t = listing_after_add(&[(&a, &aa, "10.0.0.2/24")]);
    check(Some(&t), &a, &aa, "10.0.0.2/24".parse().unwrap()).unwrap();
    assert_eq!(
        check(None, &a, &aa, "10.0.0.2/24".parse().unwrap()).unwrap_err().to_string(),
        "nftables table cni_portmap not found in table ip cni_portmap"
    );
    // Different rule count (e.g. snat changed).
    let mut a_nosnat = a.clone();
    a_nosnat.snat = false;
    assert!(matches!(
        check(Some(&t), &a_nosnat, &aa, "10.0.0.2/24".parse().unwrap()),
        Err(CheckError::RuleCount { found: 6, expected: 2, .. })
    ));
    // B over A.
    let chain_a = container_chain("net1", "a", "eth0");
    let chain_b = container_chain("net1", "b", "eth0");
    assert_eq!(conflicts(&t, IpFamily::V4, &chain_b, &keys(&b, IpFamily::V4)).len(), 1);
    assert!(conflicts(&t, IpFamily::V4, &chain_a, &keys(&a, IpFamily::V4)).is_empty());
    let t = listing_after_add(&[(&a, &aa, "10.0.0.2/24"), (&b, &ab, "10.0.0.3/24")]);
    let e = check(Some(&t), &a, &aa, "10.0.0.2/24".parse().unwrap()).unwrap_err();
    assert_eq!(e.to_string(), format!("host port ports tcp . 80 is mapped to goto {chain_b}"));
    check(Some(&t), &b, &ab, "10.0.0.3/24".parse().unwrap()).unwrap();
    // DEL of A from the listing: only A's hostIP element and A's chain.
    assert_eq!(
        del_plan_listed(&t, IpFamily::V4, &chain_a).to_string(),
        format!(
            "delete element ip cni_portmap hostip_ports {{ 10.1.1.1 . udp . 53 }}\nflush chain ip cni_portmap {chain_a}\ndelete chain ip cni_portmap {chain_a}\n"
        )
    );
    // GC.
    assert_eq!(stale_chains(&t, "net1", &[ab.clone()]), vec![chain_a.clone()]);
    assert_eq!(stale_chains(&t, "net2", &[]), Vec::<String>::new());
    let mut both = stale_chains(&t, "net1", &[]);
    both.sort();
    let mut want = vec![chain_a, chain_b];
    want.sort();
    assert_eq!(both, want);
    let gc = gc_plan(&t, IpFamily::V4, "net1", &[aa.clone(), ab.clone()]);
    assert!(gc.is_empty());
}
