use super::*;
use cni_linux::firewall::Backend;

const NET: &str = "testNetName";
const CID: &str = "icee6giejonei6sohng6ahngee7laquohquee9shiGo7fohferakah3Feiyoolu2pei7ciPhoh7shaoX6vai3vuf0ahfaeng8yohb9ceu0daez5hashee8ooYai5wa3y";

fn conf(extra: &str) -> PortmapConf {
    let j = format!(
        r#"{{"name":"test","type":"portmap","cniVersion":"1.0.0",
        "runtimeConfig":{{"portMappings":[
            {{"hostPort":8080,"containerPort":80,"protocol":"tcp"}},
            {{"hostPort":8081,"containerPort":80,"protocol":"tcp"}},
            {{"hostPort":8080,"containerPort":81,"protocol":"udp"}},
            {{"hostPort":8082,"containerPort":82,"protocol":"udp"}},
            {{"hostPort":8083,"containerPort":83,"protocol":"tcp","hostIP":"192.168.0.2"}},
            {{"hostPort":8084,"containerPort":84,"protocol":"tcp","hostIP":"0.0.0.0"}},
            {{"hostPort":8085,"containerPort":85,"protocol":"tcp","hostIP":"2001:db8:a::1"}},
            {{"hostPort":8086,"containerPort":86,"protocol":"tcp","hostIP":"::"}}]}}{extra}}}"#
    );
    PortmapConf::parse(j.as_bytes(), "foo", &mut || Backend::Iptables).unwrap()
}

fn t(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// A rule's tokens, written space-separated (for rules whose tokens contain no space).
fn w(rule: &str) -> Vec<String> {
    rule.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn reference_chain_names() {
    assert_eq!(dnat_chain(NET, CID), "CNI-DN-bfd599665540dd91d5d28");
    assert_eq!(dnat_chain("test", CID), "CNI-DN-67e92b96e692a494b6b85");
    assert_eq!(old_snat_chain("test", CID).len(), 28);
    assert!(old_snat_chain("test", CID).starts_with("CNI-SN-"));
}

/// `portmap_iptables_test.go` "generates a correct standard container chain", token for
/// token.
#[test]
fn reference_standard_container_chain() {
    let c = conf(r#","snat":true,"conditionsV4":["-a","b"],"conditionsV6":["-c","d"]"#);
    let ch = container_chain(&c, CID, "10.0.0.2/24".parse().unwrap());
    assert_eq!(ch.name, "CNI-DN-67e92b96e692a494b6b85");
    let cmt = format!("dnat name: \"test\" id: \"{CID}\"");
    let mut e1 = w("-m comment --comment");
    e1.push(cmt.clone());
    e1.extend(w(
        "-m multiport -p tcp --destination-ports 8080,8081,8083,8084,8085,8086 -a b",
    ));
    let mut e2 = w("-m comment --comment");
    e2.push(cmt);
    e2.extend(w("-m multiport -p udp --destination-ports 8080,8082 -a b"));
    assert_eq!(ch.entry_rules, vec![e1, e2]);
    let want: Vec<Vec<String>> = [
        "-p tcp --dport 8080 -s 10.0.0.2/24 -j CNI-HOSTPORT-SETMARK",
        "-p tcp --dport 8080 -s 127.0.0.1 -j CNI-HOSTPORT-SETMARK",
        "-p tcp --dport 8080 -j DNAT --to-destination 10.0.0.2:80",
        "-p tcp --dport 8081 -s 10.0.0.2/24 -j CNI-HOSTPORT-SETMARK",
        "-p tcp --dport 8081 -s 127.0.0.1 -j CNI-HOSTPORT-SETMARK",
        "-p tcp --dport 8081 -j DNAT --to-destination 10.0.0.2:80",
        "-p udp --dport 8080 -s 10.0.0.2/24 -j CNI-HOSTPORT-SETMARK",
        "-p udp --dport 8080 -s 127.0.0.1 -j CNI-HOSTPORT-SETMARK",
        "-p udp --dport 8080 -j DNAT --to-destination 10.0.0.2:81",
        "-p udp --dport 8082 -s 10.0.0.2/24 -j CNI-HOSTPORT-SETMARK",
        "-p udp --dport 8082 -s 127.0.0.1 -j CNI-HOSTPORT-SETMARK",
        "-p udp --dport 8082 -j DNAT --to-destination 10.0.0.2:82",
        "-p tcp --dport 8083 -d 192.168.0.2 -s 10.0.0.2/24 -j CNI-HOSTPORT-SETMARK",
        "-p tcp --dport 8083 -d 192.168.0.2 -s 127.0.0.1 -j CNI-HOSTPORT-SETMARK",
        "-p tcp --dport 8083 -d 192.168.0.2 -j DNAT --to-destination 10.0.0.2:83",
        "-p tcp --dport 8084 -s 10.0.0.2/24 -j CNI-HOSTPORT-SETMARK",
        "-p tcp --dport 8084 -s 127.0.0.1 -j CNI-HOSTPORT-SETMARK",
        "-p tcp --dport 8084 -j DNAT --to-destination 10.0.0.2:84",
    ]
    .map(w)
    .to_vec();
    assert_eq!(ch.rules, want);

    let ch = container_chain(&c, CID, "2001:db8::2/64".parse().unwrap());
    assert_eq!(ch.entry_rules[0][10..], w("-c d")[..]);
    let want: Vec<Vec<String>> = [
        "-p tcp --dport 8080 -s 2001:db8::2/64 -j CNI-HOSTPORT-SETMARK",
        "-p tcp --dport 8080 -j DNAT --to-destination [2001:db8::2]:80",
        "-p tcp --dport 8081 -s 2001:db8::2/64 -j CNI-HOSTPORT-SETMARK",
        "-p tcp --dport 8081 -j DNAT --to-destination [2001:db8::2]:80",
        "-p udp --dport 8080 -s 2001:db8::2/64 -j CNI-HOSTPORT-SETMARK",
        "-p udp --dport 8080 -j DNAT --to-destination [2001:db8::2]:81",
        "-p udp --dport 8082 -s 2001:db8::2/64 -j CNI-HOSTPORT-SETMARK",
        "-p udp --dport 8082 -j DNAT --to-destination [2001:db8::2]:82",
        "-p tcp --dport 8085 -d 2001:db8:a::1 -s 2001:db8::2/64 -j CNI-HOSTPORT-SETMARK",
        "-p tcp --dport 8085 -d 2001:db8:a::1 -j DNAT --to-destination [2001:db8::2]:85",
        "-p tcp --dport 8086 -s 2001:db8::2/64 -j CNI-HOSTPORT-SETMARK",
        "-p tcp --dport 8086 -j DNAT --to-destination [2001:db8::2]:86",
    ]
    .map(w)
    .to_vec();
    assert_eq!(ch.rules, want);

    let c = conf(r#","snat":false"#);
    let ch = container_chain(&c, CID, "10.0.0.2/24".parse().unwrap());
    let want: Vec<Vec<String>> = [
        "-p tcp --dport 8080 -j DNAT --to-destination 10.0.0.2:80",
        "-p tcp --dport 8081 -j DNAT --to-destination 10.0.0.2:80",
        "-p udp --dport 8080 -j DNAT --to-destination 10.0.0.2:81",
        "-p udp --dport 8082 -j DNAT --to-destination 10.0.0.2:82",
        "-p tcp --dport 8083 -d 192.168.0.2 -j DNAT --to-destination 10.0.0.2:83",
        "-p tcp --dport 8084 -j DNAT --to-destination 10.0.0.2:84",
    ]
    .map(w)
    .to_vec();
    assert_eq!(ch.rules, want);
}

/// "generates a correct chain with external mark", and masqAll.
#[test]
fn reference_external_mark_and_masq_all() {
    let j = r#"{"name":"test","type":"portmap","cniVersion":"1.0.0",
        "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]},
        "externalSetMarkChain":"PLZ-SET-MARK","conditionsV4":["-a","b"],"conditionsV6":["-c","d"]}"#;
    let c = PortmapConf::parse(j.as_bytes(), "foo", &mut || Backend::Iptables).unwrap();
    let ch = container_chain(&c, CID, "10.0.0.2/24".parse().unwrap());
    assert_eq!(
        ch.rules,
        vec![
            w("-p tcp --dport 8080 -s 10.0.0.2/24 -j PLZ-SET-MARK"),
            w("-p tcp --dport 8080 -s 127.0.0.1 -j PLZ-SET-MARK"),
            w("-p tcp --dport 8080 -j DNAT --to-destination 10.0.0.2:80"),
        ]
    );
    let j = r#"{"name":"test","type":"portmap","cniVersion":"1.0.0","masqAll":true,
        "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}}"#;
    let c = PortmapConf::parse(j.as_bytes(), "foo", &mut || Backend::Iptables).unwrap();
    let ch = container_chain(&c, CID, "10.0.0.2/24".parse().unwrap());
    assert_eq!(
        ch.rules[0],
        w("-p tcp --dport 8080 -s 0.0.0.0/0 -j CNI-HOSTPORT-SETMARK")
    );
    assert_eq!(ch.rules.len(), 2);
    let ch = container_chain(&c, CID, "fd00::2/64".parse().unwrap());
    assert_eq!(
        ch.rules[0],
        w("-p tcp --dport 8080 -s ::/0 -j CNI-HOSTPORT-SETMARK")
    );
}

/// "generates the correct mark chains" and the top-level chain.
#[test]
fn reference_mark_and_top_chains() {
    assert_eq!(
        setmark_rule(5),
        t(&[
            "-m",
            "comment",
            "--comment",
            "CNI portfwd masquerade mark",
            "-j",
            "MARK",
            "--set-xmark",
            "0x20/0x20"
        ])
    );
    assert_eq!(masq_rule(5), w("-m mark --mark 0x20/0x20 -j MASQUERADE"));
    assert_eq!(
        masq_entry_rule(),
        t(&[
            "-m",
            "comment",
            "--comment",
            "CNI portfwd requiring masquerade",
            "-j",
            "CNI-HOSTPORT-MASQ"
        ])
    );
    assert_eq!(
        top_entry_rule(),
        w("-m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT")
    );
}

/// More than 15 ports of a protocol are split across multiport rules.
#[test]
fn multiport_split() {
    let maps: Vec<String> = (0..17)
        .map(|i| {
            format!(
                r#"{{"hostPort":{},"containerPort":80,"protocol":"tcp"}}"#,
                9000 + i
            )
        })
        .collect();
    let j = format!(
        r#"{{"name":"n","type":"portmap","cniVersion":"1.0.0","runtimeConfig":{{"portMappings":[{}]}}}}"#,
        maps.join(",")
    );
    let c = PortmapConf::parse(j.as_bytes(), "eth0", &mut || Backend::Iptables).unwrap();
    let ch = container_chain(&c, "c", "10.0.0.2/24".parse().unwrap());
    assert_eq!(ch.entry_rules.len(), 2);
    assert_eq!(ch.entry_rules[0][9].split(',').count(), 15);
    assert_eq!(ch.entry_rules[1][9], "9015,9016");
}

/// Golden dump of the ADD plan (canonical iptables-save form, what the restore script
/// writes).
#[test]
fn golden_add_plan_v4() {
    let j = r#"{"name":"net1","type":"portmap","cniVersion":"1.0.0",
        "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"},
          {"hostPort":5353,"containerPort":53,"protocol":"udp","hostIP":"192.168.1.10"}]}}"#;
    let c = PortmapConf::parse(j.as_bytes(), "eth0", &mut || Backend::Iptables).unwrap();
    let p = add_plan(&c, "ctr1", "10.88.0.5/16".parse().unwrap()).unwrap();
    let chain = dnat_chain("net1", "ctr1");
    let want = format!(
        r#"table ipv4 nat
  chain CNI-HOSTPORT-SETMARK
  chain CNI-HOSTPORT-MASQ
  chain CNI-HOSTPORT-DNAT
  chain {chain}
  append-unique CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000
  append-unique CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE
  insert-unique POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ
  append-unique PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
  append-unique OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
  flush {chain}
  delete-jumps-to {chain} (expected in CNI-HOSTPORT-DNAT)
  append-unique {chain} -s 10.88.0.0/16 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK
  append-unique {chain} -s 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK
  append-unique {chain} -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.88.0.5:80
  append-unique {chain} -s 10.88.0.0/16 -d 192.168.1.10/32 -p udp -m udp --dport 5353 -j CNI-HOSTPORT-SETMARK
  append-unique {chain} -s 127.0.0.1/32 -d 192.168.1.10/32 -p udp -m udp --dport 5353 -j CNI-HOSTPORT-SETMARK
  append-unique {chain} -d 192.168.1.10/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 10.88.0.5:53
  append-unique CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"net1\" id: \"ctr1\"" -m multiport --dports 8080 -j {chain}
  append-unique CNI-HOSTPORT-DNAT -p udp -m comment --comment "dnat name: \"net1\" id: \"ctr1\"" -m multiport --dports 5353 -j {chain}
"#
    );
    assert_eq!(p.to_string(), want);
}

#[test]
fn golden_add_plan_v6_external_mark_conditions() {
    let j = r#"{"name":"net1","type":"portmap","cniVersion":"1.0.0","externalSetMarkChain":"KUBE-MARK-MASQ",
        "conditionsV6":["!","-s","fd00:1::/64"],
        "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}}"#;
    let c = PortmapConf::parse(j.as_bytes(), "eth0", &mut || Backend::Iptables).unwrap();
    let p = add_plan(&c, "ctr1", "fd00::5/64".parse().unwrap()).unwrap();
    let chain = dnat_chain("net1", "ctr1");
    let want = format!(
        r#"table ipv6 nat
  chain CNI-HOSTPORT-DNAT
  chain {chain}
  append-unique PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
  append-unique OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
  flush {chain}
  delete-jumps-to {chain} (expected in CNI-HOSTPORT-DNAT)
  append-unique {chain} -s fd00::/64 -p tcp -m tcp --dport 8080 -j KUBE-MARK-MASQ
  append-unique {chain} -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd00::5]:80
  append-unique CNI-HOSTPORT-DNAT ! -s fd00:1::/64 -p tcp -m comment --comment "dnat name: \"net1\" id: \"ctr1\"" -m multiport --dports 8080 -j {chain}
"#
    );
    assert_eq!(p.to_string(), want);
}

#[test]
fn golden_del_plan() {
    let p = del_plan(IpFamily::V4, "net1", "ctr1");
    let dn = dnat_chain("net1", "ctr1");
    let sn = old_snat_chain("net1", "ctr1");
    assert_eq!(
        p.to_string(),
        format!(
            "table ipv4 nat\n  delete-jumps-to {dn} (expected in CNI-HOSTPORT-DNAT)\n  delete-chain {dn}\n  delete-jumps-to {sn} (expected in CNI-HOSTPORT-SNAT)\n  delete-chain {sn}\n"
        )
    );
}

fn saved(text: &str) -> IptablesState {
    IptablesState::parse(IpFamily::V4, text).unwrap()
}

/// The restore script ADD produces on an empty table, and that a second ADD changes nothing
/// but the container chain (replaced).
#[test]
fn restore_scripts() {
    use cni_linux::firewall::iptables::restore_script;
    let j = r#"{"name":"net1","type":"portmap","cniVersion":"1.0.0",
        "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}}"#;
    let c = PortmapConf::parse(j.as_bytes(), "eth0", &mut || Backend::Iptables).unwrap();
    let p = add_plan(&c, "ctr1", "10.88.0.5/16".parse().unwrap()).unwrap();
    let empty = saved(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n",
    );
    let s = restore_script(&[&p], &empty).unwrap();
    let chain = dnat_chain("net1", "ctr1");
    assert!(
        s.starts_with(
            "*nat\n-N CNI-HOSTPORT-SETMARK\n-N CNI-HOSTPORT-MASQ\n-N CNI-HOSTPORT-DNAT\n"
        ),
        "{s}"
    );
    assert!(s.contains("-I POSTROUTING 1 -m comment --comment \"CNI portfwd requiring masquerade\" -j CNI-HOSTPORT-MASQ\n"));
    assert!(
        !s.contains("-F "),
        "nothing to flush on a fresh table:\n{s}"
    );
    assert_eq!(s.matches(&format!("-A {chain} ")).count(), 3);
    assert!(s.ends_with("COMMIT\n"));
    // The rules as iptables-save would print them after the restore.
    let mut after = String::from(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n",
    );
    for line in s.lines().filter(|l| l.starts_with("-N ")) {
        after.push_str(&format!(":{} - [0:0]\n", &line[3..]));
    }
    for line in s
        .lines()
        .filter(|l| l.starts_with("-A ") || l.starts_with("-I "))
    {
        let line = line.replacen("-I POSTROUTING 1", "-A POSTROUTING", 1);
        after.push_str(&line);
        after.push('\n');
    }
    after.push_str("COMMIT\n");
    let state = saved(&after);
    check(&state, &c, "ctr1", "10.88.0.5/16".parse().unwrap()).unwrap();
    // A second identical ADD: only the container chain is rewritten.
    let s2 = restore_script(&[&p], &state).unwrap();
    assert!(
        s2.starts_with(&format!("*nat\n-F {chain}\n-D CNI-HOSTPORT-DNAT ")),
        "{s2}"
    );
    assert!(!s2.contains("SETMARK -m"), "{s2}");
    // CHECK finds a missing rule, and says which.
    let broken = after.replace(
        "-j DNAT --to-destination 10.88.0.5:80",
        "-j DNAT --to-destination 10.88.0.6:80",
    );
    let e = check(&saved(&broken), &c, "ctr1", "10.88.0.5/16".parse().unwrap()).unwrap_err();
    assert!(e.to_string().contains("portmap check failed"), "{e}");
    assert!(
        cni_types::error::chain_message(&e).contains("10.88.0.5:80"),
        "{e}"
    );
    // DEL removes every trace of the container and nothing shared.
    let d = restore_script(&[&del_plan(IpFamily::V4, "net1", "ctr1")], &state).unwrap();
    assert_eq!(d.matches("-D CNI-HOSTPORT-DNAT").count(), 1, "{d}");
    assert!(d.contains(&format!("-F {chain}\n-X {chain}\n")), "{d}");
    assert!(!d.contains("SETMARK"));
}

#[test]
fn gc_finds_stale_chains_by_comment() {
    let a = dnat_chain("net1", "alive");
    let s = dnat_chain("net1", "stale");
    let o = dnat_chain("other", "x");
    let text = format!(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:CNI-HOSTPORT-DNAT - [0:0]\n:{a} - [0:0]\n:{s} - [0:0]\n:{o} - [0:0]\n\
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment \"dnat name: \\\"net1\\\" id: \\\"alive\\\"\" -m multiport --dports 80 -j {a}\n\
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment \"dnat name: \\\"net1\\\" id: \\\"stale\\\"\" -m multiport --dports 81 -j {s}\n\
-A CNI-HOSTPORT-DNAT -p udp -m comment --comment \"dnat name: \\\"net1\\\" id: \\\"stale\\\"\" -m multiport --dports 81 -j {s}\n\
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment \"dnat name: \\\"other\\\" id: \\\"x\\\"\" -m multiport --dports 82 -j {o}\n\
COMMIT\n"
    );
    let state = saved(&text);
    let valid: BTreeSet<String> = ["alive".to_owned()].into();
    assert_eq!(stale_chains(&state, "net1", &valid), vec![s.clone()]);
    assert_eq!(
        gc_plan(&state, "net1", &valid).to_string(),
        format!(
            "table ipv4 nat\n  delete-jumps-to {s} (expected in CNI-HOSTPORT-DNAT)\n  delete-chain {s}\n"
        )
    );
    // Everything of net1 goes when nothing is valid; other networks stay.
    assert_eq!(stale_chains(&state, "net1", &BTreeSet::new()), vec![a, s]);
}
