use super::*;
use serde_json::json;

fn parse(v: Value, args: &str) -> Result<TuningConf, ConfigError> {
    TuningConf::parse(v.to_string().as_bytes(), args, true)
}

fn base() -> Value {
    json!({"cniVersion": "1.0.0", "name": "net", "type": "tuning"})
}

fn with(extra: Value) -> Value {
    let mut b = base();
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

#[test]
fn defaults() {
    let c = parse(base(), "").unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/run/cni/tuning"));
    assert!(c.sysctl.is_empty());
    assert_eq!((c.mac.as_deref(), c.promisc, c.mtu), (None, false, 0));
    assert_eq!((c.allmulti, c.txqlen), (None, None));
    assert!(c.prev_result.is_none());
    assert!(!c.plan("eth0", None).unwrap().changes_link());
}

#[test]
fn keys_are_read_case_insensitively_as_go_does() {
    let c = parse(
        with(
            json!({"MTU": 1400, "Promisc": true, "TXQLEN": 5, "AllMulti": false, "DataDir": "/x"}),
        ),
        "",
    )
    .unwrap();
    assert_eq!(c.mtu, 1400);
    assert!(c.promisc);
    assert_eq!((c.txqlen, c.allmulti), (Some(5), Some(false)));
    assert_eq!(c.data_dir, PathBuf::from("/x"));
}

#[test]
fn mac_precedence_config_then_cni_args_then_runtime_config_then_args_cni() {
    let conf = with(json!({"mac": "02:00:00:00:00:01"}));
    assert_eq!(
        parse(conf.clone(), "").unwrap().mac.as_deref(),
        Some("02:00:00:00:00:01")
    );
    let c = parse(
        conf.clone(),
        "IgnoreUnknown=1;K8S_POD_NAME=x;MAC=02:00:00:00:00:02",
    )
    .unwrap();
    assert_eq!(c.mac.as_deref(), Some("02:00:00:00:00:02"));
    let mut rc = conf.clone();
    rc["runtimeConfig"] = json!({"mac": "02:00:00:00:00:03"});
    let c = parse(rc.clone(), "MAC=02:00:00:00:00:02").unwrap();
    assert_eq!(c.mac.as_deref(), Some("02:00:00:00:00:03"));
    let mut ac = rc.clone();
    ac["args"] = json!({"cni": {"mac": "02:00:00:00:00:04"}});
    let c = parse(ac, "MAC=02:00:00:00:00:02").unwrap();
    assert_eq!(c.mac.as_deref(), Some("02:00:00:00:00:04"));
    // An empty MAC= or runtimeConfig.mac does not override.
    // Capability keys are matched ignoring case, as Go's decoder does.
    let mut upper = conf.clone();
    upper["runtimeConfig"] = json!({"MAC": "02:00:00:00:00:05"});
    assert_eq!(
        parse(upper, "").unwrap().mac.as_deref(),
        Some("02:00:00:00:00:05")
    );
    let mut empty = conf;
    empty["runtimeConfig"] = json!({"mac": ""});
    let c = parse(empty, "MAC=").unwrap();
    assert_eq!(c.mac.as_deref(), Some("02:00:00:00:00:01"));
}

#[test]
fn args_cni_overrides_and_merges_sysctl() {
    let c = parse(
        with(json!({
            "sysctl": {"net.core.somaxconn": "500", "net.ipv4.conf.IFNAME.arp_notify": "1"},
            "mtu": 1400, "promisc": true, "allmulti": true, "txQLen": 100,
            "args": {"cni": {"sysctl": {"net.core.somaxconn": "600"}, "mtu": 1300,
                "promisc": false, "allmulti": false, "txQLen": 0}}
        })),
        "",
    )
    .unwrap();
    assert_eq!(c.sysctl["net.core.somaxconn"], "600");
    assert_eq!(c.sysctl["net.ipv4.conf.IFNAME.arp_notify"], "1");
    assert_eq!(
        (c.mtu, c.promisc, c.allmulti, c.txqlen),
        (1300, false, Some(false), Some(0))
    );
    // args.cni.sysctl without a top-level sysctl (the reference panics on a nil map here).
    let c = parse(
        with(json!({"args": {"cni": {"sysctl": {"net.core.somaxconn": "7"}}}})),
        "",
    )
    .unwrap();
    assert_eq!(c.sysctl["net.core.somaxconn"], "7");
}

#[test]
fn cni_args_errors_are_the_references() {
    let e = parse(base(), "K8S_POD_NAME=x").unwrap_err();
    assert_eq!(e.to_string(), r#"ARGS: unknown args ["K8S_POD_NAME=x"]"#);
    let e = parse(base(), "MAC").unwrap_err();
    assert_eq!(e.to_string(), r#"ARGS: invalid pair "MAC""#);
}

#[test]
fn wrong_types_are_refused() {
    for bad in [
        json!({"mtu": "1400"}),
        json!({"sysctl": {"net.core.somaxconn": 5}}),
        json!({"promisc": "yes"}),
        json!({"args": {"cni": {"mtu": "x"}}}),
        json!({"runtimeConfig": {"mac": 5}}),
    ] {
        let e = parse(with(bad.clone()), "").unwrap_err();
        assert!(matches!(e, ConfigError::Json(_)), "{bad}: {e}");
        assert_eq!(e.to_string(), "failed to load netconf");
    }
}

#[test]
fn duplicate_sysctl_keys_are_refused_for_add_and_check_only() {
    let raw = br#"{"cniVersion":"1.0.0","name":"n","type":"tuning",
        "sysctl":{"net.core.somaxconn":"1","net.core.somaxconn":"2"}}"#;
    let e = TuningConf::parse(raw, "", true).unwrap_err();
    assert_eq!(e.to_string(), "duplicated sysctl keys are not allowed");
    // DEL parses without the check (serde keeps the last value).
    assert_eq!(
        TuningConf::parse(raw, "", false).unwrap().sysctl["net.core.somaxconn"],
        "2"
    );
    // Duplicates elsewhere, and the same key in different case, are fine.
    let ok = br#"{"cniVersion":"1.0.0","name":"n","type":"tuning",
        "sysctl":{"net.core.somaxconn":"1","NET.core.somaxconn":"2"},"x":1,"y":{"a":1,"a":2}}"#;
    TuningConf::parse(ok, "", true).unwrap();
}

#[test]
fn sysctl_paths_as_the_reference_resolves_them() {
    let p = |k: &str, i: &str| sysctl_path(k, i);
    assert_eq!(
        p("net.ipv4.conf.IFNAME.arp_notify", "eth0").unwrap(),
        "/proc/sys/net/ipv4/conf/eth0/arp_notify"
    );
    // The interface name is substituted after the dots became slashes.
    assert_eq!(
        p("net.ipv4.conf.IFNAME.forwarding", "eth0.100").unwrap(),
        "/proc/sys/net/ipv4/conf/eth0.100/forwarding"
    );
    // Only the first IFNAME.
    assert_eq!(
        p("net.IFNAME.IFNAME", "e").unwrap(),
        "/proc/sys/net/e/IFNAME"
    );
    assert_eq!(
        p("net/core/somaxconn", "e").unwrap(),
        "/proc/sys/net/core/somaxconn"
    );
    assert_eq!(
        p("net.core..somaxconn", "e").unwrap(),
        "/proc/sys/net/core/somaxconn"
    );
    for (bad, msg) in [
        (
            "kernel.hostname",
            r#"invalid net sysctl key: "kernel/hostname""#,
        ),
        ("net", r#"invalid net sysctl key: "net""#),
        ("networking.x", r#"invalid net sysctl key: "networking/x""#),
    ] {
        assert_eq!(p(bad, "eth0").unwrap_err().to_string(), msg, "{bad}");
    }
    // Dots in a key become slashes, so `..` cannot climb out of net/.
    assert_eq!(p("net/../kernel/x", "e").unwrap(), "/proc/sys/net/kernel/x");
    // Neither can an interface name.
    assert!(p("net.IFNAME", "..").is_err());
}

#[test]
fn plan_validates_everything_before_anything_runs() {
    let c = parse(
        with(json!({"sysctl": {"net.core.somaxconn": "5", "kernel.x": "1"}, "mtu": 1400})),
        "",
    )
    .unwrap();
    assert!(matches!(
        c.plan("eth0", None),
        Err(ConfigError::SysctlKey(_))
    ));

    let c = parse(with(json!({"mac": "zz"})), "").unwrap();
    assert_eq!(
        c.plan("eth0", None).unwrap_err().to_string(),
        "invalid args zz for MAC addr: address zz: invalid MAC address"
    );
    let c = parse(with(json!({"mtu": -1})), "").unwrap();
    assert!(matches!(
        c.plan("eth0", None),
        Err(ConfigError::Range { key: "mtu", .. })
    ));
    let c = parse(with(json!({"txQLen": -1})), "").unwrap();
    assert!(matches!(
        c.plan("eth0", None),
        Err(ConfigError::Range { key: "txQLen", .. })
    ));
    assert_eq!(
        parse(base(), "")
            .unwrap()
            .plan("a/b", None)
            .unwrap_err()
            .to_string(),
        "Interface name (a/b) contains an invalid character /"
    );

    let c = parse(
        with(
            json!({"sysctl": {"net.ipv4.conf.IFNAME.arp_notify": "1"}, "mac": "C2-11-22-33-44-55",
            "promisc": true, "mtu": 1400, "allmulti": false, "txQLen": 0}),
        ),
        "",
    )
    .unwrap();
    let plan = c.plan("eth1", None).unwrap();
    assert_eq!(
        plan,
        Plan {
            sysctls: vec![Sysctl {
                key: "net.ipv4.conf.IFNAME.arp_notify".into(),
                path: "/proc/sys/net/ipv4/conf/eth1/arp_notify".into(),
                value: "1".into(),
            }],
            mac: Some((
                [0xc2, 0x11, 0x22, 0x33, 0x44, 0x55],
                "C2-11-22-33-44-55".into()
            )),
            promisc: true,
            mtu: Some(1400),
            allmulti: Some(false),
            txqlen: Some(0),
        }
    );
}

#[test]
fn allowlist_is_applied_to_config_and_args_keys() {
    let list =
        Allowlist::parse("^net\\.core\\.somaxconn$\n^net\\.ipv4\\.conf\\.IFNAME\\.arp_notify$\n");
    let c = parse(
        with(json!({"sysctl": {"net.ipv4.conf.IFNAME.arp_notify": "1"},
            "args": {"cni": {"sysctl": {"net.core.somaxconn": "9"}}}})),
        "",
    )
    .unwrap();
    c.plan("eth0", Some(&list)).unwrap();
    let c = parse(
        with(json!({"args": {"cni": {"sysctl": {"net.ipv4.ip_forward": "1"}}}})),
        "",
    )
    .unwrap();
    assert_eq!(
        c.plan("eth0", Some(&list)).unwrap_err().to_string(),
        "Sysctl net.ipv4.ip_forward is not allowed. Only the following sysctls are allowed: \
         [^net\\.core\\.somaxconn$ ^net\\.ipv4\\.conf\\.IFNAME\\.arp_notify$]"
    );
    // The key is matched as written, before IFNAME is substituted.
    let c = parse(
        with(json!({"sysctl": {"net.ipv4.conf.eth0.arp_notify": "1"}})),
        "",
    )
    .unwrap();
    assert!(matches!(
        c.plan("eth0", Some(&list)),
        Err(ConfigError::NotAllowed { .. })
    ));
}

#[test]
fn mac_forms_go_accepts() {
    let want = Some([0x00, 0x00, 0x5e, 0x00, 0x53, 0x01]);
    for ok in ["00:00:5e:00:53:01", "00-00-5E-00-53-01", "0000.5e00.5301"] {
        assert_eq!(parse_mac(ok), want, "{ok}");
    }
    for bad in [
        "",
        "00:00:5e:00:53",
        "00:00:5e:00:53:01:02",
        "00:00-5e:00:53:01",
        "0:00:5e:00:53:01:",
        "00:00:5e:00:53:0g",
        "0000.5e00-5301",
        "+0:00:5e:00:53:01",
        "00:00:5e:00:53:+1",
    ] {
        assert_eq!(parse_mac(bad), None, "{bad}");
    }
}

#[test]
fn prev_result_is_parsed_with_the_configs_version() {
    let c = parse(
        with(json!({"prevResult": {"cniVersion": "1.0.0",
            "interfaces": [{"name": "eth0", "sandbox": "/run/netns/x"}],
            "ips": [{"address": "10.1.0.2/24", "interface": 0}]}})),
        "",
    )
    .unwrap();
    assert_eq!(
        c.prev_result.unwrap().ips[0].address.to_string(),
        "10.1.0.2/24"
    );
    let e = parse(with(json!({"prevResult": {"ips": "x"}})), "").unwrap_err();
    assert!(matches!(e, ConfigError::PrevResult(_)), "{e}");
}
