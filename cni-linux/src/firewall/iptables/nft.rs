//! Reading iptables-nft's rules straight from nf_tables, without `iptables-save`.
//!
//! iptables-nft (`xtables-nft-multi`) stores table `nat` of `iptables` as nf_tables table
//! `ip nat` (`ip6 nat` for `ip6tables`), each iptables chain as a chain of the same name, and
//! each rule as a list of expressions: native ones for the common header matches (`-s`, `-d`,
//! `-i`, `-o`, `-p`, tcp/udp ports, `-m mark`, verdicts) and xtables compat `match`/`target`
//! expressions carrying the extension's info struct for the rest. [`decode_rule`] turns one
//! rule back into the tokens `iptables-save` (1.8.9) prints for it, for the forms our plans
//! and the reference plugins use. Anything else (another extension, a revision, a flag or an
//! expression it does not know) makes it return `None`, and the caller falls back to
//! `iptables-save`: it never guesses. A rule carrying userdata is not decoded either
//! (1.8.9 stores none; an nft comment or another version's annotations would be lost).
//!
//! Versions: the decoder is proven against Debian 12's iptables 1.8.9 by
//! `tests/firewall_iptables_nft.rs`, which compares it with `iptables-save` for every form the
//! plugins write. Other versions were not measured here; a form they encode differently does
//! not decode and falls back to `iptables-save`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use super::rule::Rule;
use super::state::{ChainState, IptablesState, TableState};
use crate::firewall::IpFamily;
use crate::firewall::nftables::decode::{
    RawRule, generation, get_chain, list_raw, list_raw_rules, list_raw_rules_until,
};
use crate::firewall::nftables::socket::NfSocket;
use crate::firewall::nftables::uapi::{
    NF_ACCEPT, NF_DROP, NFT_CMP_EQ, NFT_CMP_NEQ, NFT_GOTO, NFT_JUMP, NFT_META_IIFNAME,
    NFT_META_L4PROTO, NFT_META_MARK, NFT_META_OIFNAME, NFT_PAYLOAD_NETWORK, NFT_PAYLOAD_TRANSPORT,
    NFT_REG_1, NFT_REG_VERDICT, NFT_RETURN, NFTA_BITWISE_DREG, NFTA_BITWISE_LEN, NFTA_BITWISE_MASK,
    NFTA_BITWISE_OP, NFTA_BITWISE_SREG, NFTA_BITWISE_XOR, NFTA_CMP_DATA, NFTA_CMP_OP,
    NFTA_CMP_SREG, NFTA_DATA_VALUE, NFTA_DATA_VERDICT, NFTA_IMMEDIATE_DATA, NFTA_IMMEDIATE_DREG,
    NFTA_META_DREG, NFTA_META_KEY, NFTA_PAYLOAD_BASE, NFTA_PAYLOAD_DREG, NFTA_PAYLOAD_LEN,
    NFTA_PAYLOAD_OFFSET, NFTA_VERDICT_CHAIN, NFTA_VERDICT_CODE, NFTA_XT_INFO, NFTA_XT_NAME,
    NFTA_XT_REV,
};
use crate::firewall::nftables::{Family, NftError};
use crate::nl::{self, be32};

/// The most rules of a chain read whole rather than up to the jumps looked for, on a socket
/// of its own (see `chains_state`). Measured here: a rule costs about 4.5 µs to dump and
/// parse (a chain of 1,000), a socket of its own tens of microseconds (portmap's ADD took
/// 0.2 ms longer when its three small chains each had one).
const SMALL_CHAIN: usize = 32;

/// Whether `save` (the `iptables-save` found in `PATH`) is iptables-nft: the file it finally
/// resolves to is `xtables-nft-multi` (Debian, Fedora, Alpine, ... through their alternatives
/// symlinks). No process is started; anything else, legacy included, answers `false`.
pub(crate) fn is_iptables_nft(save: &Path) -> bool {
    std::fs::canonicalize(save)
        .ok()
        .and_then(|p| p.file_name().map(|n| n == "xtables-nft-multi"))
        .unwrap_or(false)
}

/// What a caller needs read from one table.
#[derive(Debug, Default)]
pub(crate) struct Need {
    /// Every chain and rule (as `iptables-save -t TABLE` would give).
    pub(crate) all: bool,
    /// Chains whose rules are all needed.
    pub(crate) chains: BTreeSet<String>,
    /// Targets whose jump rules are needed from every chain, each with the chains they are
    /// expected in (`None`: no hint, the whole table is read when the target exists). With a
    /// hint, those chains are read, and the rest of the table only when the kernel's
    /// reference count of the target (`NFTA_CHAIN_USE`: its own rules plus every jump and
    /// goto to it) is more than the target's rules and the jumps found there.
    pub(crate) jumps_to: BTreeMap<String, Option<BTreeSet<String>>>,
    /// Chains whose existence alone is needed (the targets of jumps to write).
    pub(crate) exists: BTreeSet<String>,
    /// Chains (not in `chains`) whose rules matter only where they jump to one of the given
    /// targets: an existing chain is listed in the state, but its rules are dumped only when
    /// one of the targets exists (a rule cannot jump to a missing chain), and then only the
    /// rules jumping to an existing target are decoded. An empty set: existence alone.
    pub(crate) jumps_only: BTreeMap<String, BTreeSet<String>>,
}

/// What the writer needs besides the state: the rules' handles, which chains exist, and the
/// ruleset generation the state belongs to.
#[derive(Debug)]
pub(crate) struct NftState {
    /// The state, as `iptables-save` would give it for the chains read.
    pub(crate) state: IptablesState,
    /// The kernel handle of every rule of `state`, by `(table, chain)`, in rule order.
    pub(crate) handles: BTreeMap<(String, String), Vec<u64>>,
    /// The `(table, chain)` that exist in nf_tables: every chain read, and those of
    /// [`Need::exists`] found. (The state also lists built-in chains iptables-nft has not
    /// created yet, as `iptables-save` does.)
    pub(crate) present: BTreeSet<(String, String)>,
    /// The ruleset generation, read before anything else: a batch carrying it is refused if
    /// anything changed since.
    pub(crate) genid: u32,
    /// Rule dumps requested (one per chain read, one per whole table listed).
    pub(crate) rule_dumps: usize,
    /// Rules decoded.
    pub(crate) rules_decoded: usize,
    /// Rules received from the kernel (a dump stopped early reads fewer than its chain has).
    pub(crate) rules_read: usize,
}

/// Reads `tables` of `family` from nf_tables, as far as `need` asks, into the state
/// `iptables-save` would give for those chains and rules, with the rules' handles, the chains
/// that exist and the generation read first. `Ok(None)` when some needed rule cannot be
/// decoded exactly (the caller then runs `iptables-save`).
pub(crate) fn read_state(
    family: IpFamily,
    tables: &[(&str, Need)],
) -> Result<Option<NftState>, NftError> {
    let mut sock = NfSocket::open()?;
    let mut out = NftState {
        state: IptablesState {
            family,
            tables: Vec::new(),
        },
        handles: BTreeMap::new(),
        present: BTreeSet::new(),
        genid: generation(&mut sock)?,
        rule_dumps: 0,
        rules_decoded: 0,
        rules_read: 0,
    };
    for (table, need) in tables {
        if !need.all {
            match chains_state(&mut sock, family, table, need, &mut out)? {
                Chains::Read(Some(t)) => {
                    out.state.tables.push(t);
                    continue;
                }
                Chains::Read(None) => return Ok(None),
                Chains::NeedTable => {}
            }
        }
        // A built-in table iptables-nft has not created yet: `iptables-save -t TABLE` prints
        // it with its built-in chains all the same.
        let (chains, rules) = list_raw(&mut sock, Family::of(family), table)?.unwrap_or_default();
        out.rule_dumps += 1;
        out.rules_read += rules.len();
        if chains.is_empty() && builtin_chains(table).is_empty() {
            continue;
        }
        match table_state(family, table, need, &chains, &rules, &mut out) {
            Some(t) => out.state.tables.push(t),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

enum Chains {
    /// The needed chains, read one by one (`None`: a rule did not decode).
    Read(Option<TableState>),
    /// A target of `jumps_to` exists and may be jumped to from chains not read: every chain
    /// must be read.
    NeedTable,
}

/// The chains `need` names, each with a `GETCHAIN` and a rule dump filtered to it, so the
/// cost follows the chains a plan touches, not the whole table. A jump target that does not
/// exist cannot be jumped to (the kernel refuses such rules), so it needs no reading. One that
/// exists needs the whole table, unless the plan says where its jumps are expected: then its
/// own rules and those chains are read, and the kernel's reference count of the target
/// (`NFTA_CHAIN_USE`, the target's rules plus every jump, goto or other reference to it)
/// tells whether that found them all; if it did not, the whole table is read. The chains of
/// `need.exists` only get a `GETCHAIN`; those of `need.jumps_only` a rule dump only when one
/// of their targets exists (decided after every `GETCHAIN`), of which only the rules jumping
/// to an existing target are decoded.
fn chains_state(
    sock: &mut NfSocket,
    family: IpFamily,
    table: &str,
    need: &Need,
    out: &mut NftState,
) -> Result<Chains, NftError> {
    let fam = Family::of(family);
    let mut found = BTreeMap::new();
    // The chains to look for jumps to existing targets in, and each target's reference count.
    let mut scan: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut counted: Vec<(&str, u32)> = Vec::new();
    for (target, hint) in &need.jumps_to {
        let Some((c, uses)) = get_chain(sock, fam, table, target)? else {
            continue;
        };
        let Some(hint) = hint else {
            return Ok(Chains::NeedTable);
        };
        found.insert(target.as_str(), (c, uses));
        counted.push((target, uses));
        for h in hint {
            scan.entry(h).or_default().insert(target.clone());
        }
    }
    // One GETCHAIN per name: the chains to read, then the jump targets.
    let names: BTreeSet<&str> = need
        .chains
        .iter()
        .chain(need.jumps_only.keys())
        .chain(need.exists.iter())
        .chain(need.jumps_only.values().flatten())
        .map(String::as_str)
        .chain(scan.keys().copied())
        .collect();
    for name in names {
        if found.contains_key(name) {
            continue;
        }
        if let Some(c) = get_chain(sock, fam, table, name)? {
            found.insert(name, c);
        }
    }
    let mut chains = Vec::new();
    let mut rules: Vec<RawRule> = Vec::new();
    // The counted targets are read whole: their own rules are part of their count. The whole
    // chains are read first, so that the jumps to each of them are known in number (its
    // reference count less its rules) when the others are read.
    let full: BTreeSet<&str> = need
        .chains
        .iter()
        .map(String::as_str)
        .chain(counted.iter().map(|(t, _)| *t))
        .collect();
    for name in &full {
        let Some((c, _)) = found.get(name) else {
            continue;
        };
        chains.push(c.clone());
        out.rule_dumps += 1;
        let read = list_raw_rules(sock, fam, table, name)?;
        out.rules_read += read.len();
        rules.extend(read);
    }
    let partial: BTreeSet<&str> = need
        .jumps_only
        .keys()
        .map(String::as_str)
        .chain(scan.keys().copied())
        .filter(|c| !full.contains(c))
        .collect();
    for name in partial {
        let Some((c, _)) = found.get(name) else {
            continue;
        };
        chains.push(c.clone());
        let mut live: BTreeSet<String> = need
            .jumps_only
            .get(name)
            .into_iter()
            .flatten()
            .filter(|t| found.contains_key(t.as_str()))
            .cloned()
            .collect();
        live.extend(scan.get(name).into_iter().flatten().cloned());
        // No target exists: the chain cannot hold any rule the plans look for.
        if live.is_empty() {
            continue;
        }
        // How many jumps to the targets are still unaccounted for, when each target's count
        // is known: none, no dump; otherwise the dump stops at the last of them (a long
        // chain whose jump sits near its top costs one message).
        let mut enough = Some(0usize);
        for t in &live {
            // Known only for a target read whole (its own rules are part of its count).
            let left = match (full.contains(t.as_str()), found.get(t.as_str())) {
                (true, Some((_, uses))) => (*uses as usize).checked_sub(refs_read(&rules, t)),
                _ => None,
            };
            enough = enough.zip(left).map(|(sum, left)| sum + left);
        }
        if enough == Some(0) {
            continue;
        }
        out.rule_dumps += 1;
        let keep = |r: &RawRule| jumps_to_any(r, &live);
        // A dump stopped early needs a socket of its own, which costs about as much as
        // reading a few dozen rules: a chain that small (its reference count bounds its
        // rules) is read whole on this one.
        let small = found
            .get(name)
            .is_some_and(|(_, uses)| *uses as usize <= SMALL_CHAIN);
        match enough {
            Some(enough) if !small => {
                let (kept, read) = list_raw_rules_until(fam, table, name, &keep, enough)?;
                out.rules_read += read;
                rules.extend(kept);
            }
            _ => {
                let read = list_raw_rules(sock, fam, table, name)?;
                out.rules_read += read.len();
                rules.extend(read.into_iter().filter(|r| keep(r)));
            }
        }
    }
    // Every reference to each counted target must be one of its rules or a jump read.
    if counted
        .iter()
        .any(|(target, uses)| refs_read(&rules, target) != *uses as usize)
    {
        return Ok(Chains::NeedTable);
    }
    for name in &need.exists {
        if found.contains_key(name.as_str()) {
            out.present.insert((table.to_owned(), name.clone()));
        }
    }
    let need_rules = Need {
        all: true,
        ..Need::default()
    };
    Ok(Chains::Read(table_state(
        family,
        table,
        &need_rules,
        &chains,
        &rules,
        out,
    )))
}

/// The state of one table from its listed `chains` and `rules`; records each rule's handle
/// and each listed chain in `out`.
fn table_state(
    family: IpFamily,
    table: &str,
    need: &Need,
    chains: &[crate::firewall::nftables::ChainListing],
    rules: &[RawRule],
    out: &mut NftState,
) -> Option<TableState> {
    let mut t = TableState {
        name: table.to_owned(),
        chains: chains
            .iter()
            .map(|c| ChainState {
                name: c.name.clone(),
                policy: c
                    .policy
                    .map(|p| if p == NF_ACCEPT { "ACCEPT" } else { "DROP" }.to_owned()),
                rules: Vec::new(),
            })
            .collect(),
    };
    for c in chains {
        out.present.insert((table.to_owned(), c.name.clone()));
    }
    // iptables-nft creates a built-in chain on first use; iptables-save lists them all.
    let builtins = builtin_chains(table);
    for name in builtins {
        if !t.has_chain(name) {
            t.chains.push(ChainState {
                name: (*name).to_owned(),
                policy: Some("ACCEPT".to_owned()),
                rules: Vec::new(),
            });
        }
    }
    // In iptables-save's order, whatever order the kernel created them in: the built-in
    // chains by hook, then the others by name.
    t.chains.sort_by(|a, b| {
        let rank = |c: &ChainState| builtins.iter().position(|n| *n == c.name);
        match (rank(a), rank(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.name.cmp(&b.name),
        }
    });
    for r in rules {
        // The whole table was listed (a target of `jumps_to` exists): the chains of
        // `jumps_only` are read in full, as before that optimisation.
        let full =
            need.all || need.chains.contains(&r.chain) || need.jumps_only.contains_key(&r.chain);
        if !full && !jumps_where(r, |c| need.jumps_to.contains_key(c)) {
            continue;
        }
        // iptables-nft 1.8.9 stores no userdata; what another tool or version put there
        // (e.g. a comment) could be part of the rule's meaning: not decoded.
        if r.userdata {
            return None;
        }
        out.rules_decoded += 1;
        let rule = decode_rule(family, &r.exprs)?;
        let c = t.chain_mut(&r.chain)?;
        c.rules.push(rule);
        out.handles
            .entry((table.to_owned(), r.chain.clone()))
            .or_default()
            .push(r.handle);
    }
    Some(t)
}

pub(super) fn builtin_chains(table: &str) -> &'static [&'static str] {
    match table {
        "filter" => &["INPUT", "FORWARD", "OUTPUT"],
        "nat" => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
        "mangle" => &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
        "raw" => &["PREROUTING", "OUTPUT"],
        "security" => &["INPUT", "FORWARD", "OUTPUT"],
        _ => &[],
    }
}

/// The references to chain `target` among `rules` as the kernel counts them in
/// `NFTA_CHAIN_USE`: its own rules, and the rules elsewhere that jump or go to it.
fn refs_read(rules: &[RawRule], target: &str) -> usize {
    rules
        .iter()
        .filter(|r| r.chain == target || jumps_where(r, |c| c == target))
        .count()
}

/// Whether the rule ends in a jump or goto to one of `targets` (read from its verdict alone).
fn jumps_to_any(r: &RawRule, targets: &BTreeSet<String>) -> bool {
    !targets.is_empty() && jumps_where(r, |c| targets.contains(c))
}

/// Whether the rule ends in a jump or goto to a chain `pred` accepts.
fn jumps_where(r: &RawRule, pred: impl Fn(&String) -> bool) -> bool {
    r.exprs.iter().any(|(name, data)| {
        name == "immediate"
            && matches!(verdict(data), Some(Verdict::Jump(c) | Verdict::Goto(c)) if pred(&c))
    })
}

enum Verdict {
    Accept,
    Drop,
    Return,
    Jump(String),
    Goto(String),
}

fn verdict(data: &[u8]) -> Option<Verdict> {
    if nl::attr(data, NFTA_IMMEDIATE_DREG).and_then(be32)? != NFT_REG_VERDICT {
        return None;
    }
    let d = nl::attr(data, NFTA_IMMEDIATE_DATA)?;
    let v = nl::attr(d, NFTA_DATA_VERDICT)?;
    let chain = || nl::attr(v, NFTA_VERDICT_CHAIN).map(nl::string);
    Some(match nl::attr(v, NFTA_VERDICT_CODE).and_then(be32)? {
        NF_ACCEPT => Verdict::Accept,
        NF_DROP => Verdict::Drop,
        NFT_RETURN => Verdict::Return,
        NFT_JUMP => Verdict::Jump(chain()?),
        NFT_GOTO => Verdict::Goto(chain()?),
        _ => return None,
    })
}

/// What the last `payload`/`meta` expression loaded into register 1.
#[derive(Clone, Copy)]
enum Load {
    Network { offset: u32, len: u32 },
    Transport { offset: u32, len: u32 },
    Meta(u32),
}

#[derive(Default)]
struct Tokens {
    src: Vec<String>,
    dst: Vec<String>,
    iif: Vec<String>,
    oif: Vec<String>,
    proto: Vec<String>,
    proto_num: Option<u8>,
    matches: Vec<String>,
    target: Vec<String>,
}

fn attr_u32(data: &[u8], kind: u16) -> Option<u32> {
    nl::attr(data, kind).and_then(be32)
}

fn value(data: &[u8], kind: u16) -> Option<&[u8]> {
    nl::attr(nl::attr(data, kind)?, NFTA_DATA_VALUE)
}

/// One iptables-nft rule's expressions as the tokens `iptables-save` prints after
/// `-A CHAIN`; `None` when any part is not a form decoded here.
pub(crate) fn decode_rule(family: IpFamily, exprs: &[(String, Vec<u8>)]) -> Option<Rule> {
    let mut t = Tokens::default();
    let mut load: Option<Load> = None;
    let mut mask: Option<Vec<u8>> = None;
    for (name, data) in exprs {
        if !t.target.is_empty() {
            return None; // nothing follows the verdict in iptables-nft's rules
        }
        match name.as_str() {
            "counter" => {}
            "payload" => {
                if attr_u32(data, NFTA_PAYLOAD_DREG)? != NFT_REG_1 {
                    return None;
                }
                let (offset, len) = (
                    attr_u32(data, NFTA_PAYLOAD_OFFSET)?,
                    attr_u32(data, NFTA_PAYLOAD_LEN)?,
                );
                load = Some(match attr_u32(data, NFTA_PAYLOAD_BASE)? {
                    NFT_PAYLOAD_NETWORK => Load::Network { offset, len },
                    NFT_PAYLOAD_TRANSPORT => Load::Transport { offset, len },
                    _ => return None,
                });
                mask = None;
            }
            "meta" => {
                if attr_u32(data, NFTA_META_DREG)? != NFT_REG_1 {
                    return None;
                }
                load = Some(Load::Meta(attr_u32(data, NFTA_META_KEY)?));
                mask = None;
            }
            "bitwise" => {
                // Only `reg 1 = (reg 1 & mask) ^ 0` (the boolean form).
                if attr_u32(data, NFTA_BITWISE_SREG)? != NFT_REG_1
                    || attr_u32(data, NFTA_BITWISE_DREG)? != NFT_REG_1
                    || attr_u32(data, NFTA_BITWISE_OP).is_some_and(|op| op != 0)
                    || load.is_none()
                    || mask.is_some()
                {
                    return None;
                }
                let len = attr_u32(data, NFTA_BITWISE_LEN)? as usize;
                let m = value(data, NFTA_BITWISE_MASK)?;
                let x = value(data, NFTA_BITWISE_XOR)?;
                if m.len() != len || x.len() != len || x.iter().any(|b| *b != 0) {
                    return None;
                }
                mask = Some(m.to_vec());
            }
            "cmp" => {
                if attr_u32(data, NFTA_CMP_SREG)? != NFT_REG_1 {
                    return None;
                }
                let neg = match attr_u32(data, NFTA_CMP_OP)? {
                    NFT_CMP_EQ => false,
                    NFT_CMP_NEQ => true,
                    _ => return None,
                };
                let v = value(data, NFTA_CMP_DATA)?;
                cmp(family, &mut t, load.take()?, mask.take(), neg, v)?;
            }
            "match" => {
                if load.is_some() {
                    return None;
                }
                xt_match(&mut t, data)?;
            }
            "target" => {
                if load.is_some() {
                    return None;
                }
                xt_target(family, &mut t, data)?;
            }
            "immediate" => {
                if load.is_some() {
                    return None;
                }
                t.target = match verdict(data)? {
                    Verdict::Accept => vec!["-j".into(), "ACCEPT".into()],
                    Verdict::Drop => vec!["-j".into(), "DROP".into()],
                    Verdict::Return => vec!["-j".into(), "RETURN".into()],
                    Verdict::Jump(c) => vec!["-j".into(), c],
                    Verdict::Goto(c) => vec!["-g".into(), c],
                };
            }
            _ => return None,
        }
    }
    if load.is_some() || mask.is_some() {
        return None;
    }
    let mut out = Vec::new();
    for part in [t.src, t.dst, t.iif, t.oif, t.proto, t.matches, t.target] {
        out.extend(part);
    }
    Some(Rule::from_saved(out))
}

fn neg_flag(out: &mut Vec<String>, neg: bool, flag: &str) {
    if neg {
        out.push("!".into());
    }
    out.push(flag.into());
}

fn cmp(
    family: IpFamily,
    t: &mut Tokens,
    load: Load,
    mask: Option<Vec<u8>>,
    neg: bool,
    v: &[u8],
) -> Option<()> {
    match load {
        Load::Network { offset, len } => {
            let (src_off, dst_off, width) = match family {
                IpFamily::V4 => (12, 16, 4),
                IpFamily::V6 => (8, 24, 16),
            };
            let slot = if offset == src_off && t.src.is_empty() {
                &mut t.src
            } else if offset == dst_off && t.dst.is_empty() {
                &mut t.dst
            } else {
                return None;
            };
            let len = len as usize;
            if len == 0 || len > width || v.len() != len {
                return None;
            }
            let prefix = match &mask {
                None => len * 8,
                Some(m) => prefix_len(m)?,
            };
            if prefix > len * 8 {
                return None;
            }
            let mut addr = [0u8; 16];
            addr[..len].copy_from_slice(v);
            if let Some(m) = &mask
                && v.iter().zip(m).any(|(b, m)| b & !m != 0)
            {
                return None;
            }
            let ip: IpAddr = match family {
                IpFamily::V4 => Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).into(),
                IpFamily::V6 => Ipv6Addr::from(addr).into(),
            };
            if prefix == 0 {
                return None;
            }
            neg_flag(slot, neg, if offset == src_off { "-s" } else { "-d" });
            slot.push(format!("{ip}/{prefix}"));
        }
        Load::Meta(NFT_META_L4PROTO) => {
            if mask.is_some() || v.len() != 1 || !t.proto.is_empty() {
                return None;
            }
            let name = match (v[0], family) {
                (6, _) => "tcp",
                (17, _) => "udp",
                (132, _) => "sctp",
                (1, IpFamily::V4) => "icmp",
                (58, IpFamily::V6) => "ipv6-icmp",
                _ => return None,
            };
            neg_flag(&mut t.proto, neg, "-p");
            t.proto.push(name.into());
            t.proto_num = (!neg).then_some(v[0]);
        }
        Load::Meta(key @ (NFT_META_IIFNAME | NFT_META_OIFNAME)) => {
            if mask.is_some() {
                return None;
            }
            let slot = if key == NFT_META_IIFNAME {
                &mut t.iif
            } else {
                &mut t.oif
            };
            if !slot.is_empty() || v.is_empty() {
                return None;
            }
            // `-i eth0` compares the name with its NUL; `-i br+` only the prefix.
            let name = match v.split_last() {
                Some((0, name)) => nl::string(name),
                _ => format!("{}+", nl::string(v)),
            };
            if name.is_empty() || name.contains('\0') || name.bytes().any(|b| b <= b' ') {
                return None;
            }
            neg_flag(slot, neg, if key == NFT_META_IIFNAME { "-i" } else { "-o" });
            slot.push(name);
        }
        Load::Meta(NFT_META_MARK) => {
            let mark = u32::from_ne_bytes(v.try_into().ok()?);
            let m = match &mask {
                Some(m) => u32::from_ne_bytes(m.as_slice().try_into().ok()?),
                None => u32::MAX,
            };
            t.matches.extend(["-m".into(), "mark".into()]);
            neg_flag(&mut t.matches, neg, "--mark");
            t.matches.push(mark_text(mark, m));
        }
        Load::Transport { offset, len: 2 } => {
            if mask.is_some() || v.len() != 2 {
                return None;
            }
            let proto = match t.proto_num? {
                6 => "tcp",
                17 => "udp",
                _ => return None,
            };
            let flag = match offset {
                2 => "--dport",
                _ => return None,
            };
            let port = u16::from_be_bytes([v[0], v[1]]);
            t.matches.extend(["-m".into(), proto.into()]);
            neg_flag(&mut t.matches, neg, flag);
            t.matches.push(port.to_string());
        }
        _ => return None,
    }
    Some(())
}

/// The length of a contiguous prefix mask; `None` for any other mask.
fn prefix_len(m: &[u8]) -> Option<usize> {
    let ones: usize = m.iter().map(|b| b.count_ones() as usize).sum();
    let ok = m
        .iter()
        .enumerate()
        .all(|(i, b)| *b == prefix_byte(ones.saturating_sub(i * 8)));
    ok.then_some(ones)
}

fn prefix_byte(bits: usize) -> u8 {
    match bits {
        0 => 0,
        b if b >= 8 => 0xff,
        b => 0xffu8 << (8 - b),
    }
}

fn mark_text(mark: u32, mask: u32) -> String {
    if mask == u32::MAX {
        format!("0x{mark:x}")
    } else {
        format!("0x{mark:x}/0x{mask:x}")
    }
}

fn xt_parts(data: &[u8]) -> Option<(String, u32, &[u8])> {
    Some((
        nl::attr(data, NFTA_XT_NAME).map(nl::string)?,
        attr_u32(data, NFTA_XT_REV)?,
        nl::attr(data, NFTA_XT_INFO)?,
    ))
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn xt_match(t: &mut Tokens, data: &[u8]) -> Option<()> {
    let (name, rev, info) = xt_parts(data)?;
    let m = &mut t.matches;
    match (name.as_str(), rev) {
        ("comment", 0) => {
            // struct xt_comment_info { char comment[256]; }
            let raw = info.get(..256)?;
            let end = raw.iter().position(|b| *b == 0)?;
            let text = std::str::from_utf8(&raw[..end]).ok()?;
            m.extend(["-m".into(), "comment".into(), "--comment".into()]);
            m.push(text.to_owned());
        }
        ("multiport", 1) => {
            // struct xt_multiport_v1 { u8 flags, count; u16 ports[15]; u8 pflags[15], invert; }
            let (flags, count, invert) = (*info.first()?, *info.get(1)? as usize, *info.get(47)?);
            if count == 0 || count > 15 || invert > 1 {
                return None;
            }
            let flag = match flags {
                0 => "--sports",
                1 => "--dports",
                2 => "--ports",
                _ => return None,
            };
            let mut list = Vec::new();
            let mut i = 0;
            while i < count {
                let mut p = u16_at(info, 2 + 2 * i)?.to_string();
                if *info.get(32 + i)? != 0 {
                    i += 1;
                    if i >= count {
                        return None;
                    }
                    p.push(':');
                    p.push_str(&u16_at(info, 2 + 2 * i)?.to_string());
                }
                list.push(p);
                i += 1;
            }
            m.extend(["-m".into(), "multiport".into()]);
            neg_flag(m, invert == 1, flag);
            m.push(list.join(","));
        }
        ("addrtype", 1) => {
            // struct xt_addrtype_info_v1 { u16 source, dest; u32 flags; }
            let (src, dst, flags) = (u16_at(info, 0)?, u16_at(info, 2)?, u32_at(info, 4)?);
            if flags & !0xf != 0 {
                return None;
            }
            m.extend(["-m".into(), "addrtype".into()]);
            if src != 0 {
                neg_flag(m, flags & 1 != 0, "--src-type");
                m.push(addr_types(src)?);
            }
            if dst != 0 {
                neg_flag(m, flags & 2 != 0, "--dst-type");
                m.push(addr_types(dst)?);
            }
            if flags & 4 != 0 {
                m.push("--limit-iface-in".into());
            }
            if flags & 8 != 0 {
                m.push("--limit-iface-out".into());
            }
        }
        ("conntrack", 3) => {
            // struct xt_conntrack_mtinfo3: match_flags @146, invert_flags @148,
            // state_mask @150. Only `[!] --ctstate LIST`.
            let (flags, inv, states) = (u16_at(info, 146)?, u16_at(info, 148)?, u16_at(info, 150)?);
            if flags != 1 || inv & !1 != 0 {
                return None;
            }
            m.extend(["-m".into(), "conntrack".into()]);
            neg_flag(m, inv == 1, "--ctstate");
            m.push(ct_states(states)?);
        }
        ("mark", 1) => {
            // struct xt_mark_mtinfo1 { u32 mark, mask; u8 invert; }
            let (mark, mask, inv) = (u32_at(info, 0)?, u32_at(info, 4)?, *info.get(8)?);
            if inv > 1 {
                return None;
            }
            m.extend(["-m".into(), "mark".into()]);
            neg_flag(m, inv == 1, "--mark");
            m.push(mark_text(mark, mask));
        }
        _ => return None,
    }
    Some(())
}

/// The `addrtype` match's type names, bit `i` of its mask being `ADDR_TYPES[i]` (the kernel's
/// `RTN_*` order, as iptables prints them).
pub(super) const ADDR_TYPES: [&str; 12] = [
    "UNSPEC",
    "UNICAST",
    "LOCAL",
    "BROADCAST",
    "ANYCAST",
    "MULTICAST",
    "BLACKHOLE",
    "UNREACHABLE",
    "PROHIBIT",
    "THROW",
    "NAT",
    "XRESOLVE",
];

fn addr_types(mask: u16) -> Option<String> {
    if mask >> ADDR_TYPES.len() != 0 {
        return None;
    }
    let names: Vec<&str> = (0..ADDR_TYPES.len())
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| ADDR_TYPES[i])
        .collect();
    Some(names.join(","))
}

fn ct_states(mask: u16) -> Option<String> {
    // libxt_conntrack's print order.
    const STATES: [(u16, &str); 7] = [
        (1 << 0, "INVALID"),
        (1 << 3, "NEW"),
        (1 << 2, "RELATED"),
        (1 << 1, "ESTABLISHED"),
        (1 << 8, "UNTRACKED"),
        (1 << 6, "SNAT"),
        (1 << 7, "DNAT"),
    ];
    let known: u16 = STATES.iter().map(|(b, _)| b).sum();
    if mask == 0 || mask & !known != 0 {
        return None;
    }
    let names: Vec<&str> = STATES
        .iter()
        .filter(|(b, _)| mask & b != 0)
        .map(|(_, n)| *n)
        .collect();
    Some(names.join(","))
}

fn xt_target(family: IpFamily, t: &mut Tokens, data: &[u8]) -> Option<()> {
    let (name, rev, info) = xt_parts(data)?;
    match (name.as_str(), rev, family) {
        ("MASQUERADE", 0, IpFamily::V4) => {
            // struct nf_nat_ipv4_multi_range_compat { u32 rangesize; { u32 flags; ... } }
            if u32_at(info, 0)? != 1 || u32_at(info, 4)? != 0 {
                return None;
            }
            t.target = vec!["-j".into(), "MASQUERADE".into()];
        }
        ("MASQUERADE", 0, IpFamily::V6) => {
            // struct nf_nat_range { u32 flags; ... }
            if u32_at(info, 0)? != 0 {
                return None;
            }
            t.target = vec!["-j".into(), "MASQUERADE".into()];
        }
        ("MARK", 2, _) => {
            // struct xt_mark_tginfo2 { u32 mark, mask; }
            let (mark, mask) = (u32_at(info, 0)?, u32_at(info, 4)?);
            t.target = vec![
                "-j".into(),
                "MARK".into(),
                "--set-xmark".into(),
                format!("0x{mark:x}/0x{mask:x}"),
            ];
        }
        ("DNAT", 2, _) => {
            // struct nf_nat_range2 { u32 flags; addr min_addr @4, max_addr @20;
            // be16 min_proto @36, max_proto @38; ... }. Only one address, one optional port.
            let flags = u32_at(info, 0)?;
            let (min, max) = (info.get(4..20)?, info.get(20..36)?);
            let (pmin, pmax) = (info.get(36..38)?, info.get(38..40)?);
            if !(flags == 1 || flags == 3) || min != max || pmin != pmax {
                return None;
            }
            let addr: IpAddr = match family {
                IpFamily::V4 => Ipv4Addr::new(min[0], min[1], min[2], min[3]).into(),
                IpFamily::V6 => Ipv6Addr::from(<[u8; 16]>::try_from(min).ok()?).into(),
            };
            let to = match (flags, family) {
                (1, _) => addr.to_string(),
                (_, IpFamily::V4) => format!("{addr}:{}", u16::from_be_bytes([pmin[0], pmin[1]])),
                (_, IpFamily::V6) => {
                    format!("[{addr}]:{}", u16::from_be_bytes([pmin[0], pmin[1]]))
                }
            };
            t.target = vec!["-j".into(), "DNAT".into(), "--to-destination".into(), to];
        }
        _ => return None,
    }
    Some(())
}
