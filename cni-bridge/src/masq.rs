//! `ipMasq`: the masquerade rules of both backends as pure plans, laid out exactly as the
//! reference plugins lay them out so that either implementation can tear down what the other
//! set up.
//!
//! # iptables (every version of the Go plugin)
//!
//! Per container, in table `nat` of the address's family:
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
//!
//! # nftables (Go plugin v1.5 and later)
//!
//! Table `inet cni_plugins_masquerade`; base chain `postrouting` (nat, srcnat priority) that
//! returns multicast and jumps (`goto`) to `masq_checks`; one rule per container address in
//! `masq_checks`:
//!
//! ```text
//! ip saddr 10.88.0.2 ip daddr != 10.88.0.0/16 masquerade comment "<h(net)>-<h(if:cid)>, net: …, if: …, id: …"
//! ```
//!
//! Rules are found again by the hash prefix of their comment.

use std::collections::BTreeSet;

use cni_linux::IpFamily;
use cni_linux::firewall::iptables::{IptablesPlan, IptablesState, Rule, RuleError};
use cni_linux::firewall::names::{format_chain_name, format_comment, format_hash_with_prefix};
use cni_linux::firewall::nftables::{
    ChainSpec, ChainType, CmpOp, Family, Field, Hook, MAX_COMMENT_LEN, NftPlan, RuleSpec, Stmt,
    TableListing, Value, Verdict, priority,
};
use ipnet::IpNet;

/// The nftables table (family `inet`).
pub const NFT_TABLE: &str = "cni_plugins_masquerade";
/// The regular chain holding one rule per container address.
pub const NFT_CHAIN: &str = "masq_checks";
/// The base chain (nat, postrouting hook).
pub const NFT_POSTROUTING: &str = "postrouting";
const NFT_TABLE_COMMENT: &str =
    "Masquerading for plugins from github.com/containernetworking/plugins";
const NFT_CHAIN_COMMENT: &str =
    "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet";

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

fn multicast(family: IpFamily) -> &'static str {
    match family {
        IpFamily::V4 => "224.0.0.0/4",
        IpFamily::V6 => "ff00::/8",
    }
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
/// so also the old `-s <ip>/<prefix>` form), then flushes and deletes the chain.
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
            plan.delete_jumps_to(&chain);
            plan.delete_chain(&chain);
            plan
        })
        .collect()
}

/// Decodes a Go `%q` string (`"..."` with backslash escapes) at the start of `s`; returns the
/// text and the rest after the closing quote.
pub(crate) fn go_unquote_prefix(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('"')?.char_indices();
    let body = &s[1..];
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'v' => out.push('\u{b}'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut hex = String::new();
                        for _ in 0..n {
                            hex.push(chars.next()?.1);
                        }
                        let v = u32::from_str_radix(&hex, 16).ok()?;
                        out.push(char::from_u32(v)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    None
}

/// The container ID of a reference comment `name: "<network>" id: "<cid>"`, if `comment` is
/// one for `network`.
pub fn container_of_comment(network: &str, comment: &str) -> Option<String> {
    let rest = comment.strip_prefix("name: ")?;
    let (name, rest) = go_unquote_prefix(rest)?;
    if name != network {
        return None;
    }
    let (id, rest) = go_unquote_prefix(rest.strip_prefix(" id: ")?)?;
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
        plan.delete_jumps_to(&chain);
        plan.delete_chain(&chain);
    }
    Some(plan)
}

// ------------------------------------------------------------------------------ nftables

/// `hex(sha512(network))[:16]`: the prefix of every nftables comment of the network.
pub fn nft_network_hash(network: &str) -> String {
    format_hash_with_prefix(16, "", network).unwrap_or_default()
}

/// `<network hash>-<hex(sha512(ifname + ":" + cid))[:16]>`: the prefix identifying one
/// attachment's rules.
pub fn nft_instance_hash(network: &str, ifname: &str, container_id: &str) -> String {
    let inst =
        format_hash_with_prefix(16, "", &format!("{ifname}:{container_id}")).unwrap_or_default();
    format!("{}-{inst}", nft_network_hash(network))
}

/// The comment of one attachment's rules: its hash, then a readable description without
/// double quotes, cut to nft's 128 bytes (at a character boundary).
pub fn nft_comment(network: &str, ifname: &str, container_id: &str) -> String {
    let strip = |s: &str| s.replace('"', "");
    let mut c = format!(
        "{}, net: {}, if: {}, id: {}",
        nft_instance_hash(network, ifname, container_id),
        strip(network),
        strip(ifname),
        strip(container_id)
    );
    if c.len() > MAX_COMMENT_LEN {
        let mut cut = MAX_COMMENT_LEN;
        while !c.is_char_boundary(cut) {
            cut -= 1;
        }
        c.truncate(cut);
    }
    c
}

fn masq_rules<'a>(
    listing: Option<&'a TableListing>,
    prefix: &'a str,
) -> impl Iterator<Item = (u64, &'a str)> + 'a {
    listing
        .and_then(|t| t.chain(NFT_CHAIN))
        .into_iter()
        .flat_map(|c| c.rules.iter())
        .filter_map(move |r| {
            r.comment
                .as_deref()
                .filter(|c| c.starts_with(prefix))
                .map(|c| (r.handle, c))
        })
}

/// The one-transaction plan that masquerades `ips` of one attachment: ensures the table and
/// chains (re-writing `postrouting` unless it is already in place), deletes this attachment's stale rules found in
/// `existing` (the current table, if any) and adds one rule per address.
pub fn nft_setup(
    network: &str,
    ifname: &str,
    container_id: &str,
    ips: &[IpNet],
    existing: Option<&TableListing>,
) -> NftPlan {
    let f = Family::Inet;
    let mut plan = NftPlan::new();
    plan.add_table(f, NFT_TABLE, Some(NFT_TABLE_COMMENT));
    plan.add_chain(
        f,
        NFT_TABLE,
        ChainSpec::regular(NFT_CHAIN).with_comment(NFT_CHAIN_COMMENT),
    );
    plan.add_chain(
        f,
        NFT_TABLE,
        ChainSpec::base(
            NFT_POSTROUTING,
            ChainType::Nat,
            Hook::Postrouting,
            priority::SRCNAT,
        ),
    );
    // The reference rewrites `postrouting` on every ADD. Deleting rules makes the kernel defer
    // their release past an RCU grace period, which the process then waits for when it closes
    // its nf_tables socket (about 15 ms here), so the chain is rewritten only when it is not
    // already what it should be.
    let cmp = |field, op, value| Stmt::Cmp { field, op, value };
    if !postrouting_in_place(existing) {
        plan.flush_chain(f, NFT_TABLE, NFT_POSTROUTING);
        plan.add_rule(
            f,
            NFT_TABLE,
            RuleSpec::new(
                NFT_POSTROUTING,
                vec![
                    cmp(Field::IpDaddr, CmpOp::Eq, Value::Net(net("224.0.0.0/4"))),
                    Stmt::Verdict(Verdict::Return),
                ],
            ),
        );
        plan.add_rule(
            f,
            NFT_TABLE,
            RuleSpec::new(
                NFT_POSTROUTING,
                vec![
                    cmp(Field::Ip6Daddr, CmpOp::Eq, Value::Net(net("ff00::/8"))),
                    Stmt::Verdict(Verdict::Return),
                ],
            ),
        );
        plan.add_rule(
            f,
            NFT_TABLE,
            RuleSpec::new(
                NFT_POSTROUTING,
                vec![Stmt::Verdict(Verdict::Goto(NFT_CHAIN.to_string()))],
            ),
        );
    }
    let prefix = nft_instance_hash(network, ifname, container_id);
    for (handle, _) in masq_rules(existing, &prefix) {
        plan.delete_rule(f, NFT_TABLE, NFT_CHAIN, handle);
    }
    let comment = nft_comment(network, ifname, container_id);
    for ip in ips {
        let (saddr, daddr) = match family_of(ip) {
            IpFamily::V4 => (Field::IpSaddr, Field::IpDaddr),
            IpFamily::V6 => (Field::Ip6Saddr, Field::Ip6Daddr),
        };
        plan.add_rule(
            f,
            NFT_TABLE,
            RuleSpec::new(
                NFT_CHAIN,
                vec![
                    cmp(saddr, CmpOp::Eq, Value::Addr(ip.addr())),
                    cmp(daddr, CmpOp::Neq, Value::Net(ip.trunc())),
                    Stmt::Masquerade,
                ],
            )
            .with_comment(comment.clone()),
        );
    }
    plan
}

/// Whether `postrouting` holds exactly the reference's three rules (multicast returns, then
/// `goto masq_checks`).
fn postrouting_in_place(existing: Option<&TableListing>) -> bool {
    let Some(chain) = existing.and_then(|t| t.chain(NFT_POSTROUTING)) else {
        return false;
    };
    let rule_has = |i: usize, text: &str| {
        chain
            .rules
            .get(i)
            .is_some_and(|r| r.exprs.iter().any(|e| e.ends_with(text)))
    };
    chain.rules.len() == 3
        && chain.hook.is_some()
        && rule_has(0, "return")
        && rule_has(1, "return")
        && rule_has(2, &format!("goto {NFT_CHAIN}"))
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap_or_default()
}

/// Deletes the rules of one attachment (found by its comment hash in `existing`). Empty when
/// there are none, or no table.
pub fn nft_teardown(
    network: &str,
    ifname: &str,
    container_id: &str,
    existing: Option<&TableListing>,
) -> NftPlan {
    let mut plan = NftPlan::new();
    let prefix = nft_instance_hash(network, ifname, container_id);
    for (handle, _) in masq_rules(existing, &prefix) {
        plan.delete_rule(Family::Inet, NFT_TABLE, NFT_CHAIN, handle);
    }
    plan
}

/// Deletes the rules of `network` whose comment is not that of a valid attachment.
pub fn nft_gc(
    network: &str,
    valid: &[cni_types::Attachment],
    existing: Option<&TableListing>,
) -> NftPlan {
    let keep: BTreeSet<String> = valid
        .iter()
        .map(|a| nft_comment(network, &a.ifname, &a.container_id))
        .collect();
    let mut plan = NftPlan::new();
    let prefix = nft_network_hash(network);
    for (handle, comment) in masq_rules(existing, &prefix) {
        if !keep.contains(comment) {
            plan.delete_rule(Family::Inet, NFT_TABLE, NFT_CHAIN, handle);
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni_linux::firewall::nftables::{ChainListing, RuleListing};

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
    fn iptables_chain_matches_the_reference() {
        // sha512("testNetName" + "abc")[:24], as utils.FormatChainName computes it.
        let name = iptables_chain("testNetName", "abc");
        assert!(name.starts_with("CNI-"));
        assert_eq!(
            name,
            cni_linux::firewall::names::format_chain_name_with_prefix("", "testNetName", "abc")
                .unwrap()
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
                "table ipv4 nat\n  delete-jumps-to {chain}\n  delete-chain {chain}\ntable ipv6 nat\n  delete-jumps-to {chain}\n  delete-chain {chain}\n"
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
                "table ipv4 nat\n  delete-jumps-to {stale_chain}\n  delete-chain {stale_chain}\n"
            )
        );
        let all: BTreeSet<String> = ["live".to_string(), "gone".to_string()].into();
        assert!(iptables_gc("podnet", &all, &state).is_none());
    }

    #[test]
    fn nft_names_match_the_reference_scheme() {
        let h = nft_network_hash("podnet");
        assert_eq!(h.len(), 16);
        let inst = nft_instance_hash("podnet", "eth0", CID);
        assert!(inst.starts_with(&format!("{h}-")));
        assert_eq!(inst.len(), 33);
        let c = nft_comment("pod\"net", "eth0", CID);
        assert_eq!(
            c,
            format!(
                "{}, net: podnet, if: eth0, id: {CID}",
                nft_instance_hash("pod\"net", "eth0", CID)
            )
        );
        let long = nft_comment("n", "eth0", &"x".repeat(200));
        assert_eq!(long.len(), 128);
        // sha512("") starts with cf83e1357eefb8bd.
        assert_eq!(nft_network_hash(""), "cf83e1357eefb8bd");
    }

    fn listing(rules: Vec<(u64, String)>) -> TableListing {
        TableListing {
            family: Family::Inet,
            name: NFT_TABLE.into(),
            handle: 1,
            comment: None,
            chains: vec![ChainListing {
                name: NFT_CHAIN.into(),
                handle: 2,
                hook: None,
                chain_type: None,
                policy: None,
                comment: None,
                rules: rules
                    .into_iter()
                    .map(|(handle, c)| RuleListing {
                        handle,
                        comment: Some(c),
                        exprs: vec![],
                    })
                    .collect(),
            }],
            sets: vec![],
        }
    }

    #[test]
    fn nft_setup_golden() {
        let existing = listing(vec![(7, nft_comment("podnet", "eth0", CID))]);
        let plan = nft_setup("podnet", "eth0", CID, &ips(), Some(&existing));
        let c = nft_comment("podnet", "eth0", CID);
        let expected = format!(
            "add table inet cni_plugins_masquerade {{ comment \"{NFT_TABLE_COMMENT}\" }}\n\
             add chain inet cni_plugins_masquerade masq_checks {{ comment \"{NFT_CHAIN_COMMENT}\"; }}\n\
             add chain inet cni_plugins_masquerade postrouting {{ type nat hook postrouting priority 100; }}\n\
             flush chain inet cni_plugins_masquerade postrouting\n\
             add rule inet cni_plugins_masquerade postrouting ip daddr 224.0.0.0/4 return\n\
             add rule inet cni_plugins_masquerade postrouting ip6 daddr ff00::/8 return\n\
             add rule inet cni_plugins_masquerade postrouting goto masq_checks\n\
             delete rule inet cni_plugins_masquerade masq_checks handle 7\n\
             add rule inet cni_plugins_masquerade masq_checks ip saddr 10.88.0.5 ip daddr != 10.88.0.0/16 masquerade comment \"{c}\"\n\
             add rule inet cni_plugins_masquerade masq_checks ip6 saddr fd00:1::5 ip6 daddr != fd00:1::/64 masquerade comment \"{c}\"\n"
        );
        assert_eq!(plan.to_string(), expected);
    }

    #[test]
    fn nft_setup_leaves_a_correct_postrouting_alone() {
        let mut existing = listing(vec![]);
        let rule = |handle, last: &str| RuleListing {
            handle,
            comment: None,
            exprs: vec![
                "payload load 4b @ network header + 16 => reg 1".into(),
                last.into(),
            ],
        };
        existing.chains.push(ChainListing {
            name: NFT_POSTROUTING.into(),
            handle: 3,
            hook: Some((4, 100)),
            chain_type: Some("nat".into()),
            policy: Some(1),
            comment: None,
            rules: vec![
                rule(4, "immediate reg 0 return"),
                rule(5, "immediate reg 0 return"),
                rule(6, "immediate reg 0 goto masq_checks"),
            ],
        });
        let plan = nft_setup("podnet", "eth0", CID, &ips()[..1], Some(&existing));
        let text = plan.to_string();
        assert!(!text.contains("flush chain"), "{text}");
        assert!(!text.contains("postrouting ip daddr"), "{text}");
        assert!(
            text.contains("add rule inet cni_plugins_masquerade masq_checks ip saddr 10.88.0.5")
        );
        // A postrouting chain that differs is rewritten.
        existing.chains[1].rules.pop();
        let text = nft_setup("podnet", "eth0", CID, &ips()[..1], Some(&existing)).to_string();
        assert!(
            text.contains("flush chain inet cni_plugins_masquerade postrouting"),
            "{text}"
        );
    }

    #[test]
    fn nft_teardown_and_gc_by_comment() {
        let mine = nft_comment("podnet", "eth0", CID);
        let other_if = nft_comment("podnet", "eth1", CID);
        let other_net = nft_comment("othernet", "eth0", "zzz");
        let existing = listing(vec![
            (10, mine.clone()),
            (11, mine.clone()),
            (12, other_if.clone()),
            (13, other_net.clone()),
        ]);
        assert_eq!(
            nft_teardown("podnet", "eth0", CID, Some(&existing)).to_string(),
            "delete rule inet cni_plugins_masquerade masq_checks handle 10\n\
             delete rule inet cni_plugins_masquerade masq_checks handle 11\n"
        );
        assert!(nft_teardown("podnet", "eth0", CID, None).is_empty());
        let valid = vec![cni_types::Attachment {
            container_id: CID.into(),
            ifname: "eth0".into(),
        }];
        assert_eq!(
            nft_gc("podnet", &valid, Some(&existing)).to_string(),
            "delete rule inet cni_plugins_masquerade masq_checks handle 12\n"
        );
    }
}
