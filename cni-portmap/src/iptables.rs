//! The iptables backend: the reference's chains, hashes, rules and comments, byte for byte,
//! as pure plans.
//!
//! All in table `nat` of the container address's family (`iptables` / `ip6tables`):
//!
//! ```text
//! PREROUTING, OUTPUT:    -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT      (appended)
//! CNI-HOSTPORT-DNAT:     -p tcp -m comment --comment "dnat name: \"<net>\" id: \"<cid>\""
//!                          -m multiport --dports 8080,8081 [conditions] -j CNI-DN-<hash>
//! CNI-DN-<hash>:         -s <container subnet> -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK
//!                        -s 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK  (IPv4)
//!                        -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.0.2:80
//! CNI-HOSTPORT-SETMARK:  -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000
//! POSTROUTING:           -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ (prepended)
//! CNI-HOSTPORT-MASQ:     -m mark --mark 0x2000/0x2000 -j MASQUERADE
//! ```
//!
//! `<hash>` is `sha512(net + cid)` cut so the name is 28 characters
//! ([`dnat_chain`]). Because names and rules are the reference's, the Go plugin deletes what
//! this one created and the other way round. Each verb is one `iptables-save` and at most one
//! `iptables-restore --noflush` per address family ([`cni_linux::firewall::iptables::apply`]),
//! never a process per rule.
//!
//! Two deliberate differences in *how* (not *what*): ADD replaces the container's chain
//! (flush, then append) instead of appending to whatever an earlier ADD left, and CHECK only
//! looks at the family of the address being checked (v1.1.1 also looks for IPv4 rules in
//! ip6tables and fails for IPv4-only pods).

use std::collections::BTreeSet;

use cni_linux::firewall::IpFamily;
use cni_linux::firewall::iptables::{IptablesPlan, IptablesState, Rule};
use cni_linux::firewall::names::{format_chain_name_with_prefix, trim_comment};
use ipnet::IpNet;

use crate::config::PortmapConf;
use crate::error::{CheckError, ConfigError};

/// The table everything lives in.
pub const TABLE: &str = "nat";
/// The shared chain entered from `PREROUTING` and `OUTPUT`.
pub const TOP_DNAT_CHAIN: &str = "CNI-HOSTPORT-DNAT";
/// The chain that sets the masquerade mark.
pub const SETMARK_CHAIN: &str = "CNI-HOSTPORT-SETMARK";
/// The chain that masquerades marked packets, entered from `POSTROUTING`.
pub const MASQ_CHAIN: &str = "CNI-HOSTPORT-MASQ";
/// The top-level chain of old plugin versions (torn down if present).
pub const OLD_SNAT_CHAIN: &str = "CNI-HOSTPORT-SNAT";

/// `CNI-DN-` + hex sha512(net + cid), 28 characters (`MustFormatChainNameWithPrefix`).
pub fn dnat_chain(network: &str, container_id: &str) -> String {
    // The prefix is 7 bytes, far below the limit: this cannot fail.
    format_chain_name_with_prefix("DN-", network, container_id).unwrap_or_default()
}

/// `CNI-SN-<hash>`: the per-container chain of old plugin versions.
pub fn old_snat_chain(network: &str, container_id: &str) -> String {
    format_chain_name_with_prefix("SN-", network, container_id).unwrap_or_default()
}

/// The comment of a container's entry rules, trimmed to 255 bytes like the reference's
/// `trimComment`. Note that the reference uses `"%s"`, not `%q`: nothing is escaped.
pub fn comment(network: &str, container_id: &str) -> String {
    trim_comment(&format!("dnat name: \"{network}\" id: \"{container_id}\""))
}

fn mark_def(bit: u8) -> String {
    let v = 1u32 << bit;
    format!("{v:#x}/{v:#x}")
}

fn toks(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// The rule of `CNI-HOSTPORT-SETMARK`, as the reference writes it.
pub fn setmark_rule(bit: u8) -> Vec<String> {
    let mut r = toks(&[
        "-m",
        "comment",
        "--comment",
        "CNI portfwd masquerade mark",
        "-j",
        "MARK",
        "--set-xmark",
    ]);
    r.push(mark_def(bit));
    r
}

/// The rule of `CNI-HOSTPORT-MASQ`.
pub fn masq_rule(bit: u8) -> Vec<String> {
    let mut r = toks(&["-m", "mark", "--mark"]);
    r.push(mark_def(bit));
    r.extend(toks(&["-j", "MASQUERADE"]));
    r
}

/// The rule prepended to `POSTROUTING`.
pub fn masq_entry_rule() -> Vec<String> {
    toks(&[
        "-m",
        "comment",
        "--comment",
        "CNI portfwd requiring masquerade",
        "-j",
        MASQ_CHAIN,
    ])
}

/// The rule appended to `PREROUTING` and `OUTPUT`.
pub fn top_entry_rule() -> Vec<String> {
    toks(&[
        "-m",
        "addrtype",
        "--dst-type",
        "LOCAL",
        "-j",
        TOP_DNAT_CHAIN,
    ])
}

/// A container's chain as the reference's `fillDnatRules` builds it: token lists exactly as
/// the Go code writes them (before iptables' canonical form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerChain {
    /// `CNI-DN-<hash>`.
    pub name: String,
    /// Rules for `CNI-HOSTPORT-DNAT`, without the final `-j <name>`.
    pub entry_rules: Vec<Vec<String>>,
    /// The chain's rules.
    pub rules: Vec<Vec<String>>,
}

/// Builds the reference's container chain for the container address `container`.
pub fn container_chain(conf: &PortmapConf, container_id: &str, container: IpNet) -> ContainerChain {
    let family = IpFamily::of(&container.addr());
    let is_v6 = family == IpFamily::V6;
    let cmt = comment(&conf.name, container_id);
    let setmark = conf
        .external_set_mark_chain
        .clone()
        .unwrap_or_else(|| SETMARK_CHAIN.to_owned());

    // Entry rules: one multiport rule per protocol (sorted) and 15 ports. As in the
    // reference, every mapping's host port is listed, whatever its hostIP family.
    let mut by_proto: Vec<(&'static str, Vec<u16>)> = Vec::new();
    for m in &conf.mappings {
        let p = m.protocol.as_str();
        match by_proto.iter_mut().find(|(q, _)| *q == p) {
            Some((_, ports)) => ports.push(m.host_port),
            None => by_proto.push((p, vec![m.host_port])),
        }
    }
    by_proto.sort_by(|a, b| a.0.cmp(b.0));
    let conditions = conf.conditions(family);
    let mut entry_rules = Vec::new();
    for (proto, ports) in &by_proto {
        for chunk in ports.chunks(15) {
            let list = chunk
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let mut r = toks(&["-m", "comment", "--comment"]);
            r.push(cmt.clone());
            r.extend(toks(&[
                "-m",
                "multiport",
                "-p",
                proto,
                "--destination-ports",
            ]));
            r.push(list);
            r.extend(conditions.iter().cloned());
            entry_rules.push(r);
        }
    }

    let mut rules = Vec::with_capacity(3 * conf.mappings.len());
    for m in conf.mappings_for(family) {
        let mut base = toks(&["-p", m.protocol.as_str(), "--dport"]);
        base.push(m.host_port.to_string());
        if let Some(dst) = m.dst() {
            base.push("-d".into());
            base.push(dst.to_string());
        }
        if conf.snat {
            let masq_src = if conf.masq_all {
                if is_v6 { "::/0" } else { "0.0.0.0/0" }.to_owned()
            } else {
                container.to_string()
            };
            let mut hp = base.clone();
            hp.extend(["-s".to_owned(), masq_src, "-j".to_owned(), setmark.clone()]);
            rules.push(hp);
            if !is_v6 && !conf.masq_all {
                let mut lo = base.clone();
                lo.extend(toks(&["-s", "127.0.0.1", "-j"]));
                lo.push(setmark.clone());
                rules.push(lo);
            }
        }
        let to = match container.addr() {
            std::net::IpAddr::V4(a) => format!("{a}:{}", m.container_port),
            std::net::IpAddr::V6(a) => format!("[{a}]:{}", m.container_port),
        };
        let mut dnat = base;
        dnat.extend(toks(&["-j", "DNAT", "--to-destination"]));
        dnat.push(to);
        rules.push(dnat);
    }
    ContainerChain {
        name: dnat_chain(&conf.name, container_id),
        entry_rules,
        rules,
    }
}

fn rule(tokens: Vec<String>) -> Result<Rule, ConfigError> {
    Rule::new(tokens).map_err(ConfigError::Rule)
}

fn with_jump(mut tokens: Vec<String>, chain: &str) -> Vec<String> {
    tokens.push("-j".into());
    tokens.push(chain.to_owned());
    tokens
}

/// Everything ADD installs for one container address, in canonical form: `(chain, rule)`
/// pairs in the order they are ensured.
struct Layout {
    chains: Vec<String>,
    /// Shared rules appended if missing.
    shared: Vec<(String, Rule)>,
    /// The `POSTROUTING` entry (prepended if missing).
    masq_entry: Option<Rule>,
    container: String,
    rules: Vec<Rule>,
    entries: Vec<Rule>,
}

fn layout(conf: &PortmapConf, container_id: &str, container: IpNet) -> Result<Layout, ConfigError> {
    let cc = container_chain(conf, container_id, container);
    let mut chains = Vec::new();
    let mut shared = Vec::new();
    let mut masq_entry = None;
    if conf.snat && conf.external_set_mark_chain.is_none() {
        chains.push(SETMARK_CHAIN.to_owned());
        chains.push(MASQ_CHAIN.to_owned());
        shared.push((
            SETMARK_CHAIN.to_owned(),
            rule(setmark_rule(conf.mark_masq_bit))?,
        ));
        shared.push((MASQ_CHAIN.to_owned(), rule(masq_rule(conf.mark_masq_bit))?));
        masq_entry = Some(rule(masq_entry_rule())?);
    }
    chains.push(TOP_DNAT_CHAIN.to_owned());
    let top = rule(top_entry_rule())?;
    shared.push(("PREROUTING".to_owned(), top.clone()));
    shared.push(("OUTPUT".to_owned(), top));
    chains.push(cc.name.clone());
    let rules = cc.rules.into_iter().map(rule).collect::<Result<_, _>>()?;
    let entries = cc
        .entry_rules
        .into_iter()
        .map(|r| rule(with_jump(r, &cc.name)))
        .collect::<Result<_, _>>()?;
    Ok(Layout {
        chains,
        shared,
        masq_entry,
        container: cc.name,
        rules,
        entries,
    })
}

/// The plan for ADD of one container address: shared chains and rules ensured, the
/// container's chain replaced, its entry rules appended to `CNI-HOSTPORT-DNAT`.
pub fn add_plan(
    conf: &PortmapConf,
    container_id: &str,
    container: IpNet,
) -> Result<IptablesPlan, ConfigError> {
    let l = layout(conf, container_id, container)?;
    let mut p = IptablesPlan::new(IpFamily::of(&container.addr()), TABLE);
    for c in &l.chains {
        p.ensure_chain(c.clone());
    }
    let mut shared = l.shared.into_iter();
    if conf.snat && conf.external_set_mark_chain.is_none() {
        // SETMARK and MASQ rules, then the POSTROUTING entry (the reference's order).
        for (c, r) in shared.by_ref().take(2) {
            p.append_unique(c, r);
        }
        if let Some(e) = l.masq_entry {
            p.insert_unique("POSTROUTING", e);
        }
    }
    for (c, r) in shared {
        p.append_unique(c, r);
    }
    p.flush(l.container.clone());
    p.delete_jumps_to_expected_in(l.container.clone(), [TOP_DNAT_CHAIN]);
    for r in l.rules {
        p.append_unique(l.container.clone(), r);
    }
    for r in l.entries {
        p.append_unique(TOP_DNAT_CHAIN, r);
    }
    Ok(p)
}

/// The plan for DEL in one family: every rule jumping to the container's chain, then the
/// chain; the same for the old `CNI-SN-` chain. Needs neither the address nor the mappings.
/// The jumps are expected where ADD puts them (`CNI-HOSTPORT-DNAT`, the old
/// `CNI-HOSTPORT-SNAT`): on iptables-nft only those chains are read unless the kernel counts
/// a jump elsewhere.
pub fn del_plan(family: IpFamily, network: &str, container_id: &str) -> IptablesPlan {
    let mut p = IptablesPlan::new(family, TABLE);
    for (c, parent) in [
        (dnat_chain(network, container_id), TOP_DNAT_CHAIN),
        (old_snat_chain(network, container_id), OLD_SNAT_CHAIN),
    ] {
        p.delete_jumps_to_expected_in(c.clone(), [parent]);
        p.delete_chain(c);
    }
    p
}

/// CHECK of one container address against the `nat` table of its family: the container's
/// chain with its rules, its entry rules, the top-level jumps and (with `snat` and no external
/// mark chain) the mark and masquerade chains.
pub fn check(
    state: &IptablesState,
    conf: &PortmapConf,
    container_id: &str,
    container: IpNet,
) -> Result<(), crate::error::PortmapError> {
    let l = layout(conf, container_id, container)?;
    let empty = cni_linux::firewall::iptables::TableState {
        name: TABLE.to_owned(),
        chains: Vec::new(),
    };
    let t = state.table(TABLE).unwrap_or(&empty);
    let missing_chain = |chain: &str| CheckError::MissingChain {
        chain: chain.to_owned(),
        table: TABLE.to_owned(),
    };
    let missing_rule = |chain: &str, r: &Rule| CheckError::MissingRule {
        chain: chain.to_owned(),
        rule: r.to_string(),
        table: TABLE.to_owned(),
    };
    for c in &l.chains {
        if !t.has_chain(c) {
            return Err(missing_chain(c).into());
        }
    }
    for r in &l.rules {
        if !t.contains_rule(&l.container, r) {
            return Err(missing_rule(&l.container, r).into());
        }
    }
    for r in &l.entries {
        if !t.contains_rule(TOP_DNAT_CHAIN, r) {
            return Err(missing_rule(TOP_DNAT_CHAIN, r).into());
        }
    }
    for (c, r) in &l.shared {
        if !t.contains_rule(c, r) {
            return Err(missing_rule(c, r).into());
        }
    }
    if let Some(e) = &l.masq_entry
        && !t.contains_rule("POSTROUTING", e)
    {
        return Err(missing_rule("POSTROUTING", e).into());
    }
    Ok(())
}

/// The chains of network `network` whose container is not in `valid_ids`, found by the
/// comment of their entry rules in `CNI-HOSTPORT-DNAT` (which is the reference's too, so
/// leftovers of the Go plugin are found as well).
pub fn stale_chains(
    state: &IptablesState,
    network: &str,
    valid_ids: &BTreeSet<String>,
) -> Vec<String> {
    let Some(t) = state.table(TABLE) else {
        return Vec::new();
    };
    let Some(top) = t.chain(TOP_DNAT_CHAIN) else {
        return Vec::new();
    };
    let prefix = format!("dnat name: \"{network}\" id: \"");
    let valid: BTreeSet<String> = valid_ids.iter().map(|id| comment(network, id)).collect();
    let mut out: Vec<String> = Vec::new();
    for r in &top.rules {
        let (Some(c), Some(target)) = (r.comment(), r.target()) else {
            continue;
        };
        if c.starts_with(&prefix)
            && !valid.contains(c)
            && target.starts_with("CNI-DN-")
            && !out.iter().any(|o| o == target)
        {
            out.push(target.to_owned());
        }
    }
    out
}

/// The plan for GC in one family: the stale chains of [`stale_chains`] and their jumps.
pub fn gc_plan(state: &IptablesState, network: &str, valid_ids: &BTreeSet<String>) -> IptablesPlan {
    let mut p = IptablesPlan::new(state.family, TABLE);
    for c in stale_chains(state, network, valid_ids) {
        p.delete_jumps_to_expected_in(c.clone(), [TOP_DNAT_CHAIN]);
        p.delete_chain(c);
    }
    p
}

#[cfg(test)]
mod tests;
