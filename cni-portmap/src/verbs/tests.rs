use super::*;
use crate::host::FakeHost;
use cni_linux::firewall::Recorder;
use cni_types::ErrorCode;

fn conf(backend: &str, maps: &str, extra: &str, addrs: &[&str]) -> PortmapConf {
    let ips: Vec<String> = addrs
        .iter()
        .map(|a| format!(r#"{{"address":"{a}","interface":0}}"#))
        .collect();
    let prev = if addrs.is_empty() {
        String::new()
    } else {
        format!(
            r#","prevResult":{{"cniVersion":"1.0.0","interfaces":[{{"name":"eth0","sandbox":"/x"}}],"ips":[{}]}}"#,
            ips.join(",")
        )
    };
    let j = format!(
        r#"{{"cniVersion":"1.0.0","name":"net1","type":"portmap","backend":"{backend}",
        "runtimeConfig":{{"portMappings":[{maps}]}}{extra}{prev}}}"#
    );
    PortmapConf::parse(j.as_bytes(), "eth0", &mut || Backend::Iptables).unwrap()
}

fn att() -> Attachment {
    Attachment {
        container_id: "ctr1".into(),
        ifname: "eth0".into(),
    }
}

const TCP: &str = r#"{"hostPort":8080,"containerPort":80,"protocol":"tcp"}"#;
const BOTH: &str = r#"{"hostPort":8080,"containerPort":80,"protocol":"tcp"},{"hostPort":53,"containerPort":53,"protocol":"udp"}"#;

#[test]
fn add_requires_prev_result() {
    let c = conf("iptables", TCP, "", &[]);
    let e = add(
        &c,
        &att(),
        &mut Recorder::default(),
        &mut FakeHost::default(),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "must be called as chained plugin");
    let e: cni_types::Error = e.into();
    assert_eq!(e.code, ErrorCode::InvalidNetworkConfig);
}

#[test]
fn no_mappings_touch_nothing() {
    for backend in ["iptables", "nftables"] {
        let c = conf(backend, "", "", &["10.0.0.2/24"]);
        let (mut fw, mut host) = (Recorder::default(), FakeHost::default());
        let r = add(&c, &att(), &mut fw, &mut host).unwrap();
        assert_eq!(Some(r), c.prev_result);
        del(&c, &att(), &mut fw, &mut host).unwrap();
        check(&c, &att(), &mut fw, &mut host).unwrap();
        assert!(fw.iptables.is_empty() && fw.nft.is_empty(), "{}", fw.dump());
        assert!(host.calls.is_empty(), "{:?}", host.calls);
    }
}

#[test]
fn add_iptables_dual_stack() {
    let c = conf("iptables", BOTH, "", &["10.0.0.2/24", "fd00::2/64"]);
    let (mut fw, mut host) = (Recorder::default(), FakeHost::default());
    add(&c, &att(), &mut fw, &mut host).unwrap();
    // nat per family, and the route_localnet guard (filter, IPv4) in the same apply.
    assert_eq!(fw.iptables.len(), 3);
    assert_eq!(fw.iptables[0].family, IpFamily::V4);
    assert_eq!(fw.iptables[1].family, IpFamily::V6);
    assert_eq!(
        (fw.iptables[2].family, fw.iptables[2].table.as_str()),
        (IpFamily::V4, "filter")
    );
    assert!(fw.nft.is_empty());
    assert_eq!(
        host.calls,
        vec![
            "conntrack ipv4 udp [53]",
            "conntrack ipv6 udp [53]",
            "route_localnet 10.0.0.2"
        ]
    );
}

#[test]
fn add_nftables_no_snat_no_route_localnet() {
    let c = conf("nftables", TCP, r#","snat":false"#, &["10.0.0.2/24"]);
    let (mut fw, mut host) = (Recorder::default(), FakeHost::default());
    add(&c, &att(), &mut fw, &mut host).unwrap();
    assert_eq!(fw.nft.len(), 1);
    assert!(fw.iptables.is_empty());
    assert!(host.calls.is_empty(), "{:?}", host.calls);
    // v6 only: no route_localnet either.
    let c = conf("nftables", TCP, "", &["fd00::2/64"]);
    let (mut fw, mut host) = (Recorder::default(), FakeHost::default());
    add(&c, &att(), &mut fw, &mut host).unwrap();
    assert!(
        fw.dump().contains("add element ip6 cni_portmap skeleton"),
        "{}",
        fw.dump()
    );
    assert!(host.calls.is_empty(), "{:?}", host.calls);
}

#[test]
fn del_cleans_both_backends_and_conntrack() {
    let c = conf("iptables", BOTH, "", &["10.0.0.2/24"]);
    let (mut fw, mut host) = (Recorder::default(), FakeHost::default());
    fw.nft_tables = vec![empty_table(nftables::family(IpFamily::V4))];
    host.route_localnet_in_use = true;
    del(&c, &att(), &mut fw, &mut host).unwrap();
    // iptables per family, then nftables for the family the container has an address in;
    // the route_localnet guard stays (route_localnet is still on).
    assert_eq!(fw.iptables.len(), 2);
    assert_eq!(fw.nft.len(), 1);
    assert!(fw.dump().contains("delete-chain CNI-DN-"));
    assert!(
        fw.dump()
            .contains("delete element ip cni_portmap dnat { tcp . 8080, udp . 53 }"),
        "{}",
        fw.dump()
    );
    assert_eq!(
        host.calls,
        vec![
            "route_localnet in use? [10.0.0.2]",
            "conntrack ipv4 udp [53]"
        ]
    );
    // Without prevResult: both families.
    let c = conf("nftables", BOTH, "", &[]);
    let (mut fw, mut host) = (Recorder::default(), FakeHost::default());
    del(&c, &att(), &mut fw, &mut host).unwrap();
    assert_eq!(
        host.calls,
        vec![
            "route_localnet in use? []",
            "conntrack ipv4 udp [53]",
            "conntrack ipv6 udp [53]",
        ]
    );
    assert!(fw.dump().starts_with("table ipv4 nat"), "{}", fw.dump());
}

/// A table of ours with nothing in it: what the DEL of the other backend finds after an ADD.
fn empty_table(
    family: cni_linux::firewall::nftables::Family,
) -> cni_linux::firewall::nftables::TableListing {
    cni_linux::firewall::nftables::TableListing {
        family,
        name: nftables::TABLE.into(),
        handle: 1,
        comment: None,
        chains: Vec::new(),
        sets: Vec::new(),
    }
}

#[test]
fn del_sends_no_nftables_batch_without_the_table() {
    // The container used iptables and nftables was never used on the node: the other
    // backend's cleanup asks for the table and sends nothing (a refused batch would cost the
    // kernel an RCU grace period).
    let c = conf("iptables", BOTH, "", &["10.0.0.2/24"]);
    let (mut fw, mut host) = (Recorder::default(), FakeHost::default());
    host.route_localnet_in_use = true;
    del(&c, &att(), &mut fw, &mut host).unwrap();
    assert_eq!(fw.iptables.len(), 2);
    assert!(fw.nft.is_empty(), "{}", fw.dump());
    // The same for a container of the nftables backend whose table is gone.
    let c = conf("nftables", BOTH, "", &["10.0.0.2/24"]);
    let (mut fw, mut host) = (Recorder::default(), FakeHost::default());
    del(&c, &att(), &mut fw, &mut host).unwrap();
    assert!(fw.nft.is_empty(), "{}", fw.dump());
}

#[test]
fn check_iptables_from_state() {
    let c = conf("iptables", TCP, "", &["10.0.0.2/24"]);
    let mut fw = Recorder::default();
    let e = check(&c, &att(), &mut fw, &mut FakeHost::default()).unwrap_err();
    assert!(
        cni_types::error::chain_message(&e)
            .contains("chain CNI-HOSTPORT-SETMARK not found in iptables table nat"),
        "{e}"
    );
    let c = conf("iptables", TCP, "", &[]);
    let e = check(&c, &att(), &mut fw, &mut FakeHost::default()).unwrap_err();
    assert_eq!(e.to_string(), "Required prevResult missing");
}

#[test]
fn status_and_gc() {
    let c = conf("nftables", TCP, "", &[]);
    let mut host = FakeHost::default();
    status(&c, &mut host).unwrap();
    host.unavailable = true;
    let e = status(&c, &mut host).unwrap_err();
    assert_eq!(e.to_string(), "nftables backend is not available");
    assert_eq!(
        cni_types::Error::from(e).code,
        ErrorCode::PluginNotAvailable
    );
    // GC on empty state does nothing (route_localnet in use: the guard stays).
    let mut fw = Recorder::default();
    host.route_localnet_in_use = true;
    gc(&c, &[att()], &mut fw, &mut host).unwrap();
    assert!(fw.iptables.is_empty() && fw.nft.is_empty(), "{}", fw.dump());
    // Without route_localnet anywhere, the guard goes from both backends.
    host.route_localnet_in_use = false;
    gc(&c, &[att()], &mut fw, &mut host).unwrap();
    assert!(
        fw.dump().contains("delete-chain CNI-PORTMAP-LOCALNET"),
        "{}",
        fw.dump()
    );
}

/// Issue 12 item 13: DEL with a mapping ADD refused still removes the attachment's state in
/// both backends (iptables by chain name, nftables by owner from a listing).
#[test]
fn del_with_refused_mappings_cleans_by_owner() {
    let j = r#"{"cniVersion":"1.0.0","name":"net1","type":"portmap","backend":"nftables",
        "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"bogus"}]},
        "prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}],
          "ips":[{"address":"10.0.0.2/24","interface":0}]}}"#;
    let nc = cni_types::NetConf::from_slice(j.as_bytes()).unwrap();
    let c = PortmapConf::from_netconf_for_del(&nc, "eth0", &mut || Backend::Iptables).unwrap();
    assert!(c.mappings.is_empty());
    let (mut fw, mut host) = (Recorder::default(), FakeHost::default());
    del(&c, &att(), &mut fw, &mut host).unwrap();
    assert!(fw.dump().contains("delete-chain CNI-DN-"), "{}", fw.dump());
}

/// Issue 12 item 5: a conntrack cleanup that keeps being interrupted fails ADD (which undoes
/// its rules) with the reason; DEL still succeeds.
#[test]
fn add_reports_an_interrupted_conntrack_cleanup() {
    let c = conf("iptables", BOTH, "", &["10.0.0.2/24"]);
    let mut fw = Recorder::default();
    let mut host = FakeHost {
        conntrack_interrupted: true,
        ..FakeHost::default()
    };
    let e = add(&c, &att(), &mut fw, &mut host).unwrap_err();
    let msg = cni_types::error::chain_message(&e);
    assert!(
        msg.contains("could not delete stale UDP conntrack entries")
            && msg.contains("interrupted 3 times"),
        "{msg}"
    );
    assert!(
        fw.dump().contains("delete-chain CNI-DN-"),
        "undone: {}",
        fw.dump()
    );
    del(&c, &att(), &mut fw, &mut host).unwrap();
}
