//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use cni_linux::firewall::Backend;
use cni_portmap::PortmapConf;
use cni_testkit::TempNetns;
use cni_types::Attachment;

/// Whether privileged tests can run (prints why not; panics in CI).
pub fn root() -> bool {
    cni_testkit::require_root()
}

/// The lines of `nft list ruleset` in `ns`, trimmed.
pub fn nft_ruleset(ns: &TempNetns) -> Vec<String> {
    let out = ns.exec_ok("nft", &["list", "ruleset"]).unwrap();
    out.stdout_text()
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// `iptables-save -t nat` (or ip6tables) in `ns`.
pub fn iptables_nat(ns: &TempNetns, v6: bool) -> String {
    let bin = if v6 {
        "ip6tables-save"
    } else {
        "iptables-save"
    };
    ns.exec_ok(bin, &["-t", "nat"]).unwrap().stdout_text()
}

/// A portmap config for `backend` with `maps` (JSON array body), `extra` keys (starting with
/// a comma) and a prevResult with the container addresses `addrs` on `eth0`.
pub fn conf_json(backend: &str, maps: &str, extra: &str, addrs: &[&str]) -> String {
    let ips: Vec<String> = addrs
        .iter()
        .map(|a| format!(r#"{{"address":"{a}","interface":0}}"#))
        .collect();
    format!(
        r#"{{"cniVersion":"1.0.0","name":"net1","type":"portmap","backend":"{backend}",
        "runtimeConfig":{{"portMappings":[{maps}]}}{extra},
        "prevResult":{{"cniVersion":"1.0.0","interfaces":[{{"name":"eth0","sandbox":"/x"}}],
          "ips":[{}]}}}}"#,
        ips.join(",")
    )
}

pub fn conf(backend: &str, maps: &str, extra: &str, addrs: &[&str]) -> PortmapConf {
    PortmapConf::parse(
        conf_json(backend, maps, extra, addrs).as_bytes(),
        "eth0",
        &mut || Backend::Iptables,
    )
    .unwrap()
}

pub fn att(id: &str) -> Attachment {
    Attachment {
        container_id: id.into(),
        ifname: "eth0".into(),
    }
}

#[track_caller]
pub fn assert_has(lines: &[String], want: &str) {
    assert!(
        lines.iter().any(|l| l == want),
        "missing {want:?} in:\n{}",
        lines.join("\n")
    );
}

#[track_caller]
pub fn assert_lacks(lines: &[String], needle: &str) {
    assert!(
        !lines.iter().any(|l| l.contains(needle)),
        "unexpected {needle:?} in:\n{}",
        lines.join("\n")
    );
}
