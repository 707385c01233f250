//! The iptables layout (every version of the Go plugin, and ours with `"ipMasqBackend":
//! "iptables"`). Per container, in table `nat` of the address's family:
//!
//! ```text
//! :CNI-<sha512(net + cid)[:24]> -                      (chain, 28 characters)
//! -A CNI-… -d <subnet> -m comment --comment "name: \"<net>\" id: \"<cid>\"" -j ACCEPT
//! -A CNI-… ! -d 224.0.0.0/4 -m comment --comment "…" -j MASQUERADE   (ff00::/8 for IPv6)
//! -A POSTROUTING -s <ip>/32 -m comment --comment "…" -j CNI-…
//! ```
//!
//! Teardown needs only the network name and the container ID: every rule of the table that
//! jumps to the chain is deleted, then the chain (so DEL works without a namespace and without
//! `prevResult`, which the reference does not: plugins #810).

use std::collections::BTreeSet;

use cni_linux::IpFamily;
use cni_linux::firewall::iptables::{IptablesPlan, IptablesState, Rule, RuleError};
use cni_linux::firewall::names::{format_chain_name, format_comment};
use cni_types::go;
use ipnet::IpNet;

use super::multicast;

/// The iptables chain of one container: `("CNI-" + hex(sha512(net + cid)))[:28]`.
pub fn iptables_chain(network: &str, container_id: &str) -> String {
    format_chain_name(network, container_id)
}

/// The iptables comment of one container: `name: "<net>" id: "<cid>"` (Go `%q` quoting).
pub fn iptables_comment(network: &str, container_id: &str) -> String {
    format_comment(network, container_id)
}

fn family_of(ip: &IpNet) -> IpFamily {
    IpFamily::of(&ip.addr())
}

/// The plans that masquerade traffic from `ips` (container addresses with their prefix) to
/// destinations outside their subnet: one plan per family present, applied with one
/// `iptables-save` + `iptables-restore --noflush` each.
pub fn iptables_setup(
    network: &str,
    container_id: &str,
    ips: &[IpNet],
) -> Result<Vec<IptablesPlan>, RuleError> {
    let chain = iptables_chain(network, container_id);
    let comment = iptables_comment(network, container_id);
    let mut plans = Vec::new();
    for family in [IpFamily::V4, IpFamily::V6] {
        let of_family: Vec<&IpNet> = ips.iter().filter(|ip| family_of(ip) == family).collect();
        if of_family.is_empty() {
            continue;
        }
        let mut plan = IptablesPlan::new(family, "nat");
        plan.ensure_chain(&chain);
        for ip in of_family {
            plan.append_unique(
                &chain,
                Rule::new([
                    "-d",
                    &ip.trunc().to_string(),
                    "-m",
                    "comment",
                    "--comment",
                    &comment,
                    "-j",
                    "ACCEPT",
                ])?,
            );
            plan.append_unique(
                &chain,
                Rule::new([
                    "!",
                    "-d",
                    multicast(family),
                    "-m",
                    "comment",
                    "--comment",
                    &comment,
                    "-j",
                    "MASQUERADE",
                ])?,
            );
            plan.append_unique(
                "POSTROUTING",
                Rule::new([
                    "-s",
                    &ip.addr().to_string(),
                    "-m",
                    "comment",
                    "--comment",
                    &comment,
                    "-j",
                    &chain,
                ])?,
            );
        }
        plans.push(plan);
    }
    Ok(plans)
}

/// Undoes [`iptables_setup`] for the given families, from the network name and container ID
/// alone: deletes every rule of `nat` that jumps to the container's chain (whatever its `-s`,
/// so also the old `-s <ip>/<prefix>` form), then flushes and deletes the chain. The jumps are
/// expected in `POSTROUTING`: on iptables-nft the rest of the table is read only when the
/// kernel counts a jump elsewhere.
pub fn iptables_teardown(
    network: &str,
    container_id: &str,
    families: &[IpFamily],
) -> Vec<IptablesPlan> {
    let chain = iptables_chain(network, container_id);
    families
        .iter()
        .map(|&family| {
            let mut plan = IptablesPlan::new(family, "nat");
            plan.delete_jumps_to_expected_in(&chain, ["POSTROUTING"]);
            plan.delete_chain(&chain);
            plan
        })
        .collect()
}

/// The container ID of a reference comment `name: "<network>" id: "<cid>"`, if `comment` is
/// one for `network`.
pub fn container_of_comment(network: &str, comment: &str) -> Option<String> {
    let rest = comment.strip_prefix("name: ")?;
    let (name, rest) = go::unquote_prefix(rest)?;
    if name != network {
        return None;
    }
    let (id, rest) = go::unquote_prefix(rest.strip_prefix(" id: ")?)?;
    rest.is_empty().then_some(id)
}

/// The stale masquerade chains of `network` in one family's `nat` table: chains whose rules
/// (or whose `POSTROUTING` jump) carry this network's comment for a container ID that is not
/// in `valid`, and whose name is the one the reference derives from that ID. Returns the
/// `(container ID, chain)` pairs, sorted.
pub fn iptables_stale(
    network: &str,
    valid: &BTreeSet<String>,
    state: &IptablesState,
) -> Vec<(String, String)> {
    let mut stale = BTreeSet::new();
    let Some(nat) = state.table("nat") else {
        return Vec::new();
    };
    for chain in &nat.chains {
        for rule in &chain.rules {
            let Some(cid) = rule
                .comment()
                .and_then(|c| container_of_comment(network, c))
            else {
                continue;
            };
            if valid.contains(&cid) {
                continue;
            }
            let expected = iptables_chain(network, &cid);
            // The rule is either in the container's chain or a jump to it.
            if chain.name == expected || rule.target() == Some(expected.as_str()) {
                stale.insert((cid, expected));
            }
        }
    }
    stale.into_iter().collect()
}

/// The GC plan for one family: tear down every stale chain found by [`iptables_stale`].
pub fn iptables_gc(
    network: &str,
    valid: &BTreeSet<String>,
    state: &IptablesState,
) -> Option<IptablesPlan> {
    let stale = iptables_stale(network, valid, state);
    if stale.is_empty() {
        return None;
    }
    let mut plan = IptablesPlan::new(state.family, "nat");
    for (_, chain) in stale {
        plan.delete_jumps_to_expected_in(&chain, ["POSTROUTING"]);
        plan.delete_chain(&chain);
    }
    Some(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "f9b1c8a3d2e4";

    fn ips() -> Vec<IpNet> {
        vec![
            "10.88.0.5/16".parse().unwrap(),
            "fd00:1::5/64".parse().unwrap(),
        ]
    }

    #[test]
    fn iptables_setup_golden() {
        let plans = iptables_setup("podnet", CID, &ips()).unwrap();
        let text: String = plans.iter().map(ToString::to_string).collect();
        let chain = iptables_chain("podnet", CID);
        assert_eq!(chain.len(), 28);
        let c = r#""name: \"podnet\" id: \"f9b1c8a3d2e4\"""#;
        let expected = format!(
            "table ipv4 nat\n  chain {chain}\n  append-unique {chain} -d 10.88.0.0/16 -m comment --comment {c} -j ACCEPT\n  append-unique {chain} ! -d 224.0.0.0/4 -m comment --comment {c} -j MASQUERADE\n  append-unique POSTROUTING -s 10.88.0.5/32 -m comment --comment {c} -j {chain}\n\
             table ipv6 nat\n  chain {chain}\n  append-unique {chain} -d fd00:1::/64 -m comment --comment {c} -j ACCEPT\n  append-unique {chain} ! -d ff00::/8 -m comment --comment {c} -j MASQUERADE\n  append-unique POSTROUTING -s fd00:1::5/128 -m comment --comment {c} -j {chain}\n"
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn iptables_names_match_the_reference() {
        // Recorded once from the Go bridge v1.1.1 (/usr/lib/cni/bridge, Debian): ADD with
        // `ipMasq` in a throw-away namespace, then `iptables-save -t nat` there. The interop
        // test `iptables_masquerade_names_are_the_go_bridge_s` repeats this live.
        assert_eq!(
            iptables_chain("testnet", "f9b1c8a3d2e4"),
            "CNI-64bb64beb791587f4bb2db7e"
        );
        assert_eq!(
            iptables_comment("testnet", "f9b1c8a3d2e4"),
            r#"name: "testnet" id: "f9b1c8a3d2e4""#
        );
        let long = "a.network_with-a-name-longer-than-any-chain-name";
        assert_eq!(
            iptables_chain(long, "a.b_c-d9"),
            "CNI-5a323e95f590bce0fc19e499"
        );
        assert_eq!(
            iptables_comment(long, "a.b_c-d9"),
            format!(r#"name: "{long}" id: "a.b_c-d9""#)
        );
        // From the reference's own unit tests (pkg/utils/utils_test.go).
        assert_eq!(
            iptables_chain("test", "1234"),
            "CNI-2bbe0c48b91a7d1b8a6753a8"
        );
        assert_eq!(
            iptables_chain("testalongnamethatdoesnotmakesense", "1234"),
            "CNI-374f33fe84ab0ed84dcdebe3"
        );
    }

    #[test]
    fn iptables_teardown_golden() {
        let plans = iptables_teardown("podnet", CID, &[IpFamily::V4, IpFamily::V6]);
        let chain = iptables_chain("podnet", CID);
        let text: String = plans.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            format!(
                "table ipv4 nat\n  delete-jumps-to {chain} (expected in POSTROUTING)\n  delete-chain {chain}\ntable ipv6 nat\n  delete-jumps-to {chain} (expected in POSTROUTING)\n  delete-chain {chain}\n"
            )
        );
    }

    #[test]
    fn comments_parse_back() {
        let c = iptables_comment("my \"net\"", "id\n1");
        assert_eq!(
            container_of_comment("my \"net\"", &c).as_deref(),
            Some("id\n1")
        );
        assert_eq!(container_of_comment("other", &c), None);
        assert_eq!(
            container_of_comment("net", "dnat name: \"net\" id: \"x\""),
            None
        );
        assert_eq!(
            container_of_comment("net", r#"name: "net" id: "\x01é\u200b""#).as_deref(),
            Some("\u{1}é\u{200b}")
        );
    }

    #[test]
    fn iptables_gc_finds_stale_chains_only_for_this_network() {
        let stale_chain = iptables_chain("podnet", "gone");
        let live_chain = iptables_chain("podnet", "live");
        let other_chain = iptables_chain("othernet", "gone");
        let cm = |net: &str, id: &str| {
            cni_linux::firewall::iptables::Rule::new([
                "-m",
                "comment",
                "--comment",
                &iptables_comment(net, id),
                "-j",
                "ACCEPT",
            ])
            .unwrap()
            .to_string()
        };
        let saved = format!(
            "*nat\n:POSTROUTING ACCEPT [0:0]\n:{stale_chain} - [0:0]\n:{live_chain} - [0:0]\n:{other_chain} - [0:0]\n\
             -A POSTROUTING -s 10.0.0.2/32 -m comment --comment \"name: \\\"podnet\\\" id: \\\"gone\\\"\" -j {stale_chain}\n\
             -A POSTROUTING -s 10.0.0.3/32 -m comment --comment \"name: \\\"podnet\\\" id: \\\"live\\\"\" -j {live_chain}\n\
             -A POSTROUTING -s 10.1.0.3/32 -m comment --comment \"name: \\\"othernet\\\" id: \\\"gone\\\"\" -j {other_chain}\n\
             -A {stale_chain} {}\n-A {live_chain} {}\n-A {other_chain} {}\nCOMMIT\n",
            cm("podnet", "gone"),
            cm("podnet", "live"),
            cm("othernet", "gone")
        );
        let state = IptablesState::parse(IpFamily::V4, &saved).unwrap();
        let valid: BTreeSet<String> = ["live".to_string()].into();
        let stale = iptables_stale("podnet", &valid, &state);
        assert_eq!(stale, vec![("gone".to_string(), stale_chain.clone())]);
        let plan = iptables_gc("podnet", &valid, &state).unwrap();
        assert_eq!(
            plan.to_string(),
            format!(
                "table ipv4 nat\n  delete-jumps-to {stale_chain} (expected in POSTROUTING)\n  delete-chain {stale_chain}\n"
            )
        );
        let all: BTreeSet<String> = ["live".to_string(), "gone".to_string()].into();
        assert!(iptables_gc("podnet", &all, &state).is_none());
    }
}
