//! Helpers shared by the integration tests: chains of bridge + host-local + portmap +
//! firewall per network, run inside a node namespace.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use cni_proto::runtime::RuntimeConf;
use cni_testkit::bins::CniPathDir;
use cni_testkit::traffic;
use cni_testkit::{ChainRunner, TempDir, TempNetns};
use cni_types::CniResult;
use serde_json::{Value, json};

pub const T: Duration = Duration::from_secs(5);

/// A network `name` on bridge `bridge` with subnet `subnet`, ending with `firewall` (whose
/// keys are `fw`), with portmap (backend `backend`) before it.
#[allow(clippy::too_many_arguments)]
pub fn chain(
    name: &str,
    bridge: &str,
    subnet: &str,
    backend: &str,
    fw: Value,
    node: &TempNetns,
    plugins: &CniPathDir,
    data: &TempDir,
) -> ChainRunner {
    let mut firewall = json!({"type": "firewall", "dataDir": data.join("firewall")});
    for (k, v) in fw.as_object().unwrap() {
        firewall[k] = v.clone();
    }
    let mut list = json!({
    "cniVersion": "1.0.0", "name": name,
    "plugins": [
        {"type": "bridge", "bridge": bridge, "isGateway": true, "isDefaultGateway": true, "ipMasq": true,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]]}},
        {"type": "portmap", "backend": backend, "capabilities": {"portMappings": true}},
        firewall
    ]});
    cni_testkit::chain::set_ipam_data_dir(&mut list, data.path());
    ChainRunner::from_json(&list, [plugins.path()])
        .unwrap()
        .in_netns(node)
        .unwrap()
}

pub fn rt(id: &str, pod: &TempNetns, maps: Value) -> RuntimeConf {
    let r = RuntimeConf::new(id, pod.path().display().to_string(), "eth0");
    if maps.as_array().is_some_and(|a| a.is_empty()) {
        r
    } else {
        r.with_capability("portMappings", maps)
    }
}

pub fn v4(res: &CniResult) -> IpAddr {
    res.ips
        .iter()
        .map(|i| i.address.addr())
        .find(|a| a.is_ipv4())
        .unwrap()
}

pub fn sa(ip: impl ToString, port: u16) -> SocketAddr {
    SocketAddr::new(ip.to_string().parse().unwrap(), port)
}

#[track_caller]
pub fn echo(from: &TempNetns, dst: SocketAddr, what: &str) {
    let msg = format!("hello {what}");
    let got = traffic::tcp_echo(from, dst, msg.as_bytes(), T).unwrap_or_else(|e| {
        panic!(
            "{what}: tcp to {dst}: {}",
            cni_types::error::chain_message(&e)
        )
    });
    assert_eq!(got, msg.as_bytes(), "{what}");
}

#[track_caller]
pub fn no_echo(from: &TempNetns, dst: SocketAddr, what: &str) {
    let r = traffic::tcp_echo(from, dst, b"x", Duration::from_secs(2));
    assert!(r.is_err(), "{what}: {dst} answered");
}

/// `iptables-save -t filter` in `ns`.
pub fn filter(ns: &TempNetns) -> String {
    ns.exec_ok("iptables-save", &["-t", "filter"])
        .unwrap()
        .stdout_text()
}

/// `nft list ruleset` in `ns`.
pub fn nft(ns: &TempNetns) -> String {
    ns.exec_ok("nft", &["list", "ruleset"])
        .unwrap()
        .stdout_text()
}
