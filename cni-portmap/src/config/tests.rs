use super::*;
use crate::error::ConfigError;

fn ipt() -> Backend {
    Backend::Iptables
}

fn parse(json: &str, ifname: &str) -> Result<PortmapConf, ConfigError> {
    PortmapConf::parse(json.as_bytes(), ifname, &mut ipt)
}

fn parse_detect(json: &str, b: Backend) -> Result<PortmapConf, ConfigError> {
    PortmapConf::parse(json.as_bytes(), "eth0", &mut || b)
}

fn err(json: &str) -> String {
    cni_types::error::chain_message(&parse(json, "eth0").unwrap_err())
}

const VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The reference's "correctly parses an ADD config": the container address is the one of
/// the sandbox interface named CNI_IFNAME.
#[test]
fn parses_an_add_config() {
    for ver in VERSIONS {
        let j = format!(
            r#"{{"name":"test","type":"portmap","cniVersion":"{ver}",
            "runtimeConfig":{{"portMappings":[{{"hostPort":8080,"containerPort":80,"protocol":"tcp"}}]}},
            "snat":false,"conditionsV4":["a","b"],"conditionsV6":["c","d"],"backend":"nftables",
            "prevResult":{{"cniVersion":"{ver}",
              "interfaces":[{{"name":"host"}},{{"name":"container","sandbox":"netns"}}],
              "ips":[{{"version":"4","address":"10.0.0.1/24","gateway":"10.0.0.200","interface":0}},
                     {{"version":"6","address":"2001:db8:1::2/64","gateway":"2001:db8:1::1","interface":1}},
                     {{"version":"4","address":"10.0.0.2/24","gateway":"10.0.0.200","interface":1}}]}}}}"#
        );
        let c = parse(&j, "container").unwrap();
        assert_eq!(c.cni_version.to_string(), ver);
        assert!(!c.snat);
        assert_eq!(c.conditions_v4, vec!["a", "b"]);
        assert_eq!(c.conditions_v6, vec!["c", "d"]);
        assert_eq!(c.container_v4, Some("10.0.0.2/24".parse().unwrap()));
        assert_eq!(c.container_v6, Some("2001:db8:1::2/64".parse().unwrap()));
        assert_eq!(c.name, "test");
        assert_eq!(c.backend, Backend::Nftables);
        assert_eq!(
            c.mappings,
            vec![Mapping {
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp,
                host_ip: None
            }]
        );
        assert_eq!(c.mark_masq_bit, DEFAULT_MARK_BIT);
        assert_eq!(c.mark(), 0x2000);
    }
}

/// "correctly parses a DEL config": no runtimeConfig, no prevResult.
#[test]
fn parses_a_del_config() {
    let c = parse(
        r#"{"name":"test","type":"portmap","cniVersion":"0.3.1","snat":false,
            "conditionsV4":["-a","b"],"conditionsV6":["-c","d"]}"#,
        "eth0",
    )
    .unwrap();
    assert!(c.mappings.is_empty());
    assert!(c.prev_result.is_none());
    assert_eq!(c.container_v4, None);
    assert_eq!(c.backend, Backend::Iptables);
}

#[test]
fn invalid_mappings_use_the_reference_messages() {
    let j = |pm: &str| {
        format!(
            r#"{{"name":"test","type":"portmap","cniVersion":"1.0.0","runtimeConfig":{{"portMappings":[{pm}]}}}}"#
        )
    };
    assert_eq!(
        err(&j(r#"{"hostPort":0,"containerPort":80,"protocol":"tcp"}"#)),
        "Invalid host port number: 0"
    );
    assert_eq!(
        err(&j(
            r#"{"hostPort":8080,"containerPort":-1,"protocol":"tcp"}"#
        )),
        "Invalid container port number: -1"
    );
    // Both wrong: the container port is reported, as in the reference.
    assert_eq!(
        err(&j(r#"{"hostPort":0,"containerPort":0,"protocol":"tcp"}"#)),
        "Invalid container port number: 0"
    );
    assert_eq!(
        err(&j(
            r#"{"hostPort":65536,"containerPort":80,"protocol":"tcp"}"#
        )),
        "Invalid host port number: 65536"
    );
    assert_eq!(
        err(&j(r#"{"hostPort":1,"containerPort":80,"protocol":"icmp"}"#)),
        "invalid protocol \"icmp\" in port mapping (expected tcp, udp or sctp)"
    );
    assert_eq!(
        err(&j(
            r#"{"hostPort":1,"containerPort":80,"protocol":"tcp","hostIP":"nope"}"#
        )),
        "invalid hostIP \"nope\" in port mapping"
    );
    assert!(
        err(&j(
            r#"{"hostPort":"1","containerPort":80,"protocol":"tcp"}"#
        ))
        .starts_with("failed to parse network configuration: hostPort: invalid type")
    );
}

#[test]
fn capitalised_keys_from_containerd() {
    let c = parse(
        r#"{"name":"n","type":"portmap","cniVersion":"1.0.0","runtimeConfig":{"portMappings":[
            {"HostPort":8080,"ContainerPort":80,"Protocol":"TCP","HostIP":""},
            {"HostPort":53,"ContainerPort":5353,"Protocol":"udp","HostIP":"127.0.0.1"}]},
            "SNAT":false,"MasqAll":true}"#,
        "eth0",
    )
    .unwrap();
    assert_eq!(c.mappings[0].protocol, Protocol::Tcp);
    assert_eq!(c.mappings[0].host_ip, None);
    assert_eq!(c.mappings[1].host_ip, Some("127.0.0.1".parse().unwrap()));
    assert!(!c.snat);
    assert!(c.masq_all);
    assert_eq!(c.udp_host_ports(), vec![53]);
}

#[test]
fn backend_default_and_conflicts() {
    let base = r#"{"name":"test","type":"portmap","cniVersion":"1.0.0""#;
    // Default: what detection says.
    assert_eq!(
        parse_detect(&format!("{base}}}"), Backend::Iptables)
            .unwrap()
            .backend,
        Backend::Iptables
    );
    assert_eq!(
        parse_detect(&format!("{base}}}"), Backend::Nftables)
            .unwrap()
            .backend,
        Backend::Nftables
    );
    // Detection is not consulted when the backend is explicit.
    let mut asked = false;
    let c = PortmapConf::parse(
        format!(
            r#"{base},"backend":"nftables","conditionsV4":["aaa","bbbb"],"conditionsV6":["ccc"]}}"#
        )
        .as_bytes(),
        "eth0",
        &mut || {
            asked = true;
            Backend::Iptables
        },
    )
    .unwrap();
    assert!(!asked);
    assert_eq!(c.backend, Backend::Nftables);
    assert_eq!(
        err(&format!(
            r#"{base},"backend":"iptables","conditionsV4":["aaa","bbbb"],"conditionsV6":["ccc"]}}"#
        )),
        "iptables backend was requested but configuration contains nftables-specific options [conditionsV4 conditionsV6]"
    );
    assert_eq!(
        err(&format!(
            r#"{base},"backend":"nftables","externalSetMarkChain":"KUBE-MARK-MASQ","conditionsV4":["-a","b"],"conditionsV6":["-c","d"]}}"#
        )),
        "nftables backend was requested but configuration contains iptables-specific options [externalSetMarkChain conditionsV4 conditionsV6]"
    );
    // nft conditions with the detected default (iptables) are the same error.
    assert_eq!(
        err(&format!(
            r#"{base},"conditionsV4":["ip saddr 10.0.0.0/8"]}}"#
        )),
        "iptables backend was requested but configuration contains nftables-specific options [conditionsV4]"
    );
    // `!` starts an iptables condition.
    assert!(
        parse(
            &format!(r#"{base},"conditionsV4":["!","-s","10.0.0.0/8"]}}"#),
            "eth0"
        )
        .is_ok()
    );
    assert_eq!(
        err(&format!(r#"{base},"backend":"ebpf"}}"#)),
        "unrecognized backend \"ebpf\""
    );
    assert_eq!(
        err(&format!(
            r#"{base},"backend":"ebpf","externalSetMarkChain":"X"}}"#
        )),
        "ebpf backend was requested but configuration contains iptables-specific options [externalSetMarkChain]"
    );
}

#[test]
fn mark_bit_rules() {
    let base = r#"{"name":"test","type":"portmap","cniVersion":"1.0.0""#;
    assert_eq!(
        err(&format!(
            r#"{base},"markMasqBit":5,"externalSetMarkChain":"X"}}"#
        )),
        "Cannot specify externalSetMarkChain and markMasqBit"
    );
    assert_eq!(
        err(&format!(r#"{base},"markMasqBit":32}}"#)),
        "MasqMarkBit must be between 0 and 31"
    );
    assert_eq!(
        err(&format!(r#"{base},"markMasqBit":-1}}"#)),
        "MasqMarkBit must be between 0 and 31"
    );
    let c = parse(&format!(r#"{base},"markMasqBit":0}}"#), "eth0").unwrap();
    assert_eq!(c.mark(), 1);
    let c = parse(&format!(r#"{base},"markMasqBit":31}}"#), "eth0").unwrap();
    assert_eq!(c.mark(), 0x8000_0000);
    // null means "not given".
    let c = parse(
        &format!(
            r#"{base},"markMasqBit":null,"externalSetMarkChain":"KUBE-MARK-MASQ","snat":null}}"#
        ),
        "eth0",
    )
    .unwrap();
    assert!(c.snat);
    assert_eq!(c.external_set_mark_chain.as_deref(), Some("KUBE-MARK-MASQ"));
}

#[test]
fn external_chain_must_be_a_chain_name() {
    let base = r#"{"name":"test","type":"portmap","cniVersion":"1.0.0""#;
    for bad in [
        "X -j ACCEPT",
        "X\n-A INPUT -j ACCEPT",
        "\"quoted\"",
        "-j",
        "",
        "A-CHAIN-NAME-LONGER-THAN-28-BYTES",
    ] {
        let conf = format!(
            r#"{base},"externalSetMarkChain":{}}}"#,
            serde_json::to_string(bad).unwrap()
        );
        let e = PortmapConf::parse(conf.as_bytes(), "eth0", &mut || Backend::Iptables).unwrap_err();
        assert!(matches!(e, ConfigError::ExternalChain(_)), "{bad:?}: {e}");
    }
    assert!(is_chain_name("KUBE-MARK-MASQ"));
    assert!(is_chain_name("A-CHAIN-NAME-OF-28-BYTES-XYZ"));
}

/// "does not fail on missing prevResult interface index", plus the other selection rules.
#[test]
fn container_address_selection() {
    let c = parse(
        r#"{"name":"test","type":"portmap","cniVersion":"1.0.0",
            "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]},
            "conditionsV4":["-a","b"],
            "prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"host"}],
              "ips":[{"address":"10.0.0.1/24","gateway":"10.0.0.200"}]}}"#,
        "container",
    )
    .unwrap();
    assert_eq!(c.container_v4, Some("10.0.0.1/24".parse().unwrap()));
    assert_eq!(c.container_v6, None);

    let res = |ips: &str| {
        CniResult::from_slice(
            format!(
                r#"{{"cniVersion":"1.0.0","interfaces":[{{"name":"eth0"}},{{"name":"eth0","sandbox":"/x"}},{{"name":"eth1","sandbox":"/x"}}],"ips":[{ips}]}}"#
            )
            .as_bytes(),
            None,
        )
        .unwrap()
    };
    // Host interface (no sandbox) and other ifname skipped; out-of-range index accepted.
    let r = res(
        r#"{"address":"10.0.0.1/24","interface":0},{"address":"10.0.1.1/24","interface":2},
           {"address":"10.0.2.1/24","interface":7},{"address":"10.0.3.1/24","interface":1}"#,
    );
    assert_eq!(
        container_addresses(&r, "eth0"),
        (Some("10.0.2.1/24".parse().unwrap()), None)
    );
    let r = res(r#"{"address":"fd00::5/64","interface":1},{"address":"fd00::6/64","interface":1}"#);
    assert_eq!(
        container_addresses(&r, "eth0"),
        (None, Some("fd00::5/64".parse().unwrap()))
    );
}

#[test]
fn host_ip_families() {
    let m = |ip: &str| Mapping {
        host_port: 1,
        container_port: 1,
        protocol: Protocol::Tcp,
        host_ip: (!ip.is_empty()).then(|| ip.parse().unwrap()),
    };
    assert!(m("").applies_to(IpFamily::V4) && m("").applies_to(IpFamily::V6));
    assert!(m("0.0.0.0").applies_to(IpFamily::V4));
    assert!(!m("0.0.0.0").applies_to(IpFamily::V6));
    assert!(m("::").applies_to(IpFamily::V6) && !m("::").applies_to(IpFamily::V4));
    assert_eq!(m("0.0.0.0").dst(), None);
    assert_eq!(m("::").dst(), None);
    assert_eq!(m("192.168.0.2").dst(), Some("192.168.0.2".parse().unwrap()));
    assert!(!m("192.168.0.2").applies_to(IpFamily::V6));
}

#[test]
fn conditions_backend_detection() {
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    assert_eq!(conditions_backend(&[]), None);
    assert_eq!(conditions_backend(&s(&[""])), None);
    assert_eq!(
        conditions_backend(&s(&["-s", "x"])),
        Some(Backend::Iptables)
    );
    assert_eq!(
        conditions_backend(&s(&["!", "-s", "x"])),
        Some(Backend::Iptables)
    );
    assert_eq!(
        conditions_backend(&s(&["ip", "saddr"])),
        Some(Backend::Nftables)
    );
}

/// The podman 4.3 request with a hostIP, UDP and a port range.
#[test]
fn podman_vector() {
    let v: serde_json::Value = serde_json::from_str(include_str!(
        "../../../cni-types/tests/fixtures/podman-4.3/s2-static-ip-mac-multi-ports/03-portmap-ADD.json"
    ))
    .unwrap();
    let stdin = v["stdin_raw"].as_str().unwrap();
    let c = parse(stdin, "eth0").unwrap();
    assert_eq!(c.container_v4, Some("10.88.5.50/24".parse().unwrap()));
    assert_eq!(c.mappings.len(), 4);
    assert_eq!(c.mappings[0].host_ip, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(c.mappings[0].protocol, Protocol::Udp);
    assert_eq!(c.udp_host_ports(), vec![18081]);
    assert_eq!(c.mappings_for(IpFamily::V6).count(), 3);
}

fn parse_for_del(json: &str) -> Result<PortmapConf, ConfigError> {
    let conf = NetConf::from_slice(json.as_bytes()).unwrap();
    PortmapConf::from_netconf_for_del(&conf, "eth0", &mut ipt)
}

/// Issue 12 item 13: DEL of what ADD refused succeeds; the bad mappings are left out and
/// flagged so DEL looks for the owner's state instead.
#[test]
fn del_takes_what_add_refuses() {
    let bad_maps = [
        r#"{"hostPort":8080,"containerPort":80,"protocol":"bogus"}"#,
        r#"{"hostPort":0,"containerPort":80,"protocol":"tcp"}"#,
        r#"{"hostPort":70000,"containerPort":80,"protocol":"tcp"}"#,
        r#"{"hostPort":8080,"containerPort":-1,"protocol":"tcp"}"#,
        r#"{"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":"nope"}"#,
        r#"{"hostPort":"x","containerPort":80,"protocol":"tcp"}"#,
    ];
    for m in bad_maps {
        let j = format!(
            r#"{{"cniVersion":"1.0.0","name":"n","type":"portmap",
            "runtimeConfig":{{"portMappings":[{m},{{"hostPort":53,"containerPort":53,"protocol":"udp"}}]}}}}"#
        );
        assert!(parse(&j, "eth0").is_err(), "ADD refuses {m}");
        let c = parse_for_del(&j).unwrap_or_else(|e| panic!("{m}: {e}"));
        assert!(c.unvalidated_mappings, "{m}");
        assert!(c.has_mappings());
    }
    // The other keys ADD validates.
    for extra in [
        r#""markMasqBit":99"#,
        r#""markMasqBit":1,"externalSetMarkChain":"X""#,
        r#""externalSetMarkChain":"bad chain name with spaces""#,
        r#""backend":"ebpf""#,
        r#""backend":"iptables","conditionsV4":["ip","saddr","1.2.3.4"]"#,
        r#""snat":"yes""#,
        r#""prevResult":{"cniVersion":"1.0.0","ips":"broken"}"#,
    ] {
        let j = format!(
            r#"{{"cniVersion":"1.0.0","name":"n","type":"portmap",{extra},
            "runtimeConfig":{{"portMappings":[{{"hostPort":8080,"containerPort":80,"protocol":"tcp"}}]}}}}"#
        );
        assert!(parse(&j, "eth0").is_err(), "ADD refuses {extra}");
        let c = parse_for_del(&j).unwrap_or_else(|e| panic!("{extra}: {e}"));
        assert_eq!(c.mappings.len(), 1, "{extra}");
        assert!(!c.unvalidated_mappings);
    }
    // A valid config reads the same either way.
    let j = r#"{"cniVersion":"1.0.0","name":"n","type":"portmap","markMasqBit":3,
        "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}}"#;
    assert_eq!(parse_for_del(j).unwrap(), parse(j, "eth0").unwrap());
}
