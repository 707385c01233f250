#![allow(clippy::unwrap_used)]

use super::*;

fn parse(extra: &str) -> Result<FirewallConf, ConfigError> {
    FirewallConf::parse(
        format!(r#"{{"cniVersion":"1.0.0","name":"net1","type":"firewall"{extra}}}"#).as_bytes(),
    )
}

#[test]
fn defaults_are_the_reference_ones() {
    let c = parse("").unwrap();
    assert_eq!(c.backend, BackendChoice::Auto);
    assert_eq!(c.admin_chain, "CNI-ADMIN");
    assert_eq!(c.zone, "trusted");
    assert_eq!(c.ingress, IngressPolicy::Open);
    assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
}

#[test]
fn keys_match_ignoring_case_as_go_does() {
    let c =
        parse(r#","Backend":"nftables","IngressPolicy":"same-bridge","firewalldzone":"public""#)
            .unwrap();
    assert_eq!(c.backend, BackendChoice::Nftables);
    assert_eq!(c.ingress, IngressPolicy::SameBridge);
    assert_eq!(c.zone, "public");
}

#[test]
fn bad_values_are_refused() {
    assert_eq!(
        parse(r#","ingressPolicy":"closed""#)
            .unwrap_err()
            .to_string(),
        "unknown ingress policy: \"closed\""
    );
    assert!(parse(r#","backend":"ebtables""#).is_err());
    assert!(parse(r#","iptablesAdminChainName":"-j DROP""#).is_err());
    assert!(parse(r#","backend":1"#).is_err());
}

#[test]
fn the_pod_view_names_the_bridge_and_host_veth() {
    let c = parse(
        r#","prevResult":{"cniVersion":"1.0.0",
          "interfaces":[{"name":"cni0"},{"name":"veth1"},{"name":"eth0","sandbox":"/x"}],
          "ips":[{"address":"10.88.0.5/16","interface":2},{"address":"10.88.0.5/16","interface":2}]}"#,
    )
    .unwrap();
    let p = c.pod();
    assert_eq!(p.bridge.as_deref(), Some("cni0"));
    assert_eq!(p.host_ifs, ["veth1"]);
    assert_eq!(p.addrs.len(), 1);
    assert_eq!(host_cidr(p.addrs[0]), "10.88.0.5/32");
}
