//! static as the `ipam` of our bridge, against the kernel: the pod gets the static address,
//! its routes, and reaches the gateway; CHECK passes through both; DEL leaves the pod as it
//! was. The addresses also come from CNI_ARGS `IP=`/`GATEWAY=` and from the `ips` capability,
//! through the protocol crate's runtime as libcni would pass them.
//!
//! Needs our bridge: `cargo build --workspace --bins` first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use cni_testkit::bins::CniPathDir;
use cni_testkit::cni_proto::runtime::RuntimeConf;
use cni_testkit::cni_types::Version;
use cni_testkit::runner::with_prev_result;
use cni_testkit::{
    Attachment, ChainRunner, PluginRunner, Snapshot, TempNetns, assert_unchanged, require_root,
    traffic,
};
use serde_json::{Value, json};

fn bins() -> CniPathDir {
    CniPathDir::new()
        .and_then(|d| d.link("static", &PathBuf::from(env!("CARGO_BIN_EXE_static"))))
        .and_then(|d| d.ours(&["bridge"]))
        .expect("our bridge: run `cargo build --workspace --bins` first")
}

/// Global addresses of `ifname` in `ns`, sorted.
fn addrs(ns: &TempNetns, ifname: &str) -> Vec<String> {
    let mut nl = ns.netlink().unwrap();
    let Some(l) = nl.link_by_name(ifname).unwrap() else {
        return Vec::new();
    };
    let mut v: Vec<String> = nl
        .addrs(Some(l.index), None)
        .unwrap()
        .into_iter()
        .filter(|a| a.scope == 0)
        .map(|a| a.addr.to_string())
        .collect();
    v.sort();
    v
}

/// Default routes of `ns` as `dst via gw`.
fn default_routes(ns: &TempNetns) -> Vec<String> {
    let mut nl = ns.netlink().unwrap();
    let mut v: Vec<String> = nl
        .routes(None, Some(254))
        .unwrap()
        .into_iter()
        .filter(|r| r.dst.prefix_len() == 0)
        .map(|r| {
            format!(
                "{} via {}",
                r.dst,
                r.gw.map(|g| g.to_string()).unwrap_or_default()
            )
        })
        .collect();
    v.sort();
    v
}

fn bridge_conf(version: Version, ipam: Value) -> Value {
    json!({"cniVersion": version, "name": "staticnet", "type": "bridge", "bridge": "cni0",
           "isGateway": true, "ipam": ipam})
}

#[test]
fn the_pod_gets_the_static_addresses_and_reaches_the_gateway() {
    if !require_root() {
        return;
    }
    let node = TempNetns::new("node").unwrap();
    let bins = bins();
    let bridge = PluginRunner::new(bins.plugin("bridge"))
        .cni_path([bins.path()])
        .in_netns(&node)
        .unwrap();
    let ipam = json!({"type": "static",
        "addresses": [{"address": "10.66.0.5/24", "gateway": "10.66.0.1"},
                      {"address": "fd66::5/64", "gateway": "fd66::1"}],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}],
        "dns": {"nameservers": ["10.66.0.1"]}});
    for v in [
        Version::V0_3_1,
        Version::V0_4_0,
        Version::V1_0_0,
        Version::V1_1_0,
    ] {
        let pod = TempNetns::new("pod").unwrap();
        let pod_before = Snapshot::of(&pod).unwrap();
        let conf = bridge_conf(v, ipam.clone());
        let a = Attachment::new("ctr", pod.path(), "eth0");
        let res = bridge.add(&conf, &a).unwrap_or_else(|e| panic!("{v}: {e}"));
        let ips: Vec<String> = res.ips.iter().map(|i| i.address.to_string()).collect();
        assert_eq!(ips, ["10.66.0.5/24", "fd66::5/64"], "{v}");
        assert_eq!(res.dns.nameservers, ["10.66.0.1"]);
        // The kernel: the addresses on eth0, default routes via the gateways, the gateways on
        // the bridge (isGateway), and traffic both ways.
        assert_eq!(addrs(&pod, "eth0"), ["10.66.0.5/24", "fd66::5/64"], "{v}");
        assert_eq!(
            default_routes(&pod),
            ["0.0.0.0/0 via 10.66.0.1", "::/0 via fd66::1"],
            "{v}"
        );
        assert_eq!(addrs(&node, "cni0"), ["10.66.0.1/24", "fd66::1/64"]);
        let gw4: IpAddr = "10.66.0.1".parse().unwrap();
        traffic::ping(&pod, gw4, Duration::from_secs(3)).unwrap();
        traffic::ping(&node, "10.66.0.5".parse().unwrap(), Duration::from_secs(3)).unwrap();
        if v >= Version::V0_4_0 {
            bridge
                .check(&with_prev_result(&conf, &res).unwrap(), &a)
                .unwrap_or_else(|e| panic!("CHECK at {v}: {e}"));
        }
        bridge.del(&conf, &a).unwrap();
        assert_unchanged!(pod_before, &pod, "the pod after DEL at {v}");
    }
}

#[test]
fn addresses_from_cni_args_and_the_ips_capability() {
    if !require_root() {
        return;
    }
    let node = TempNetns::new("node").unwrap();
    let bins = bins();
    let list = json!({"cniVersion": "1.0.0", "name": "staticnet", "plugins": [
        {"type": "bridge", "bridge": "cni0", "isGateway": true, "capabilities": {"ips": true},
         "ipam": {"type": "static", "routes": [{"dst": "0.0.0.0/0"}]}}]});
    let chain = ChainRunner::from_json(&list, [bins.path()])
        .unwrap()
        .in_netns(&node)
        .unwrap();

    // CNI_ARGS IP= with GATEWAY= (as podman's --ip used to send it).
    let pod1 = TempNetns::new("pod").unwrap();
    let rt1 = RuntimeConf::new("c1", pod1.path().display().to_string(), "eth0")
        .with_arg("IgnoreUnknown", "1")
        .with_arg("IP", "10.67.0.9/24")
        .with_arg("GATEWAY", "10.67.0.1");
    let res = chain.add(&rt1).unwrap();
    assert_eq!(res.ips[0].gateway, Some("10.67.0.1".parse().unwrap()));
    assert_eq!(addrs(&pod1, "eth0"), ["10.67.0.9/24"]);
    assert_eq!(default_routes(&pod1), ["0.0.0.0/0 via 10.67.0.1"]);
    traffic::ping(&pod1, "10.67.0.1".parse().unwrap(), Duration::from_secs(3)).unwrap();
    chain.check(&rt1).unwrap();

    // The `ips` capability (runtimeConfig.ips): no gateway; the bridge still gets the
    // address on its own subnet, and the pod reaches the first pod over the bridge.
    let pod2 = TempNetns::new("pod").unwrap();
    let rt2 = RuntimeConf::new("c2", pod2.path().display().to_string(), "eth0")
        .with_capability("ips", json!(["10.67.0.10/24"]));
    let res = chain.add(&rt2).unwrap();
    assert_eq!(res.ips[0].address.to_string(), "10.67.0.10/24");
    assert_eq!(addrs(&pod2, "eth0"), ["10.67.0.10/24"]);
    traffic::ping(&pod2, "10.67.0.9".parse().unwrap(), Duration::from_secs(3)).unwrap();

    chain.del(&rt2).unwrap();
    chain.del(&rt1).unwrap();
    assert!(addrs(&pod1, "eth0").is_empty());
    assert!(addrs(&pod2, "eth0").is_empty());
}
