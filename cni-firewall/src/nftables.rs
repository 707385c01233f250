//! The nftables backend (ours; the reference has none): one `inet` table in which a pod is one
//! set element per address, so the packet path is a fixed number of hash lookups and ADD a
//! single small transaction, whatever the number of pods.
//!
//! # Layout
//!
//! ```text
//! table inet cni_firewall {
//!   set pods4     { type ipv4_addr }           # one element per pod address, comment = owner
//!   set pods6     { type ipv6_addr }
//!   set isolated  { type ifname }              # bridges with ingressPolicy same-bridge, comment = network
//!   set isolation { type ifname . ifname }     # (A, B) for every two distinct isolated bridges
//!   chain admin   { }                          # administrators' rules, evaluated first
//!   chain forward { type filter hook forward priority 0;
//!     iifname . oifname @isolation drop
//!     jump admin
//!     ct status dnat accept
//!     ip daddr @pods4 ct state established,related accept
//!     ip saddr @pods4 accept
//!     ip6 daddr @pods6 ct state established,related accept
//!     ip6 saddr @pods6 accept
//!   }
//! }
//! ```
//!
//! The rules mirror the reference's iptables chain. An `accept` ends the evaluation of this
//! table only: a `drop` in another table's forward chain (an iptables `FORWARD` policy of
//! `DROP` included) still applies, as with every nftables table; the isolation `drop` is
//! final everywhere.
//!
//! # Transactions
//!
//! - **ADD**: one transaction adding the pod's elements (owner comment
//!   `<network> <ifname> <container id>`, as our portmap). Only when the table is missing
//!   (`ENOENT`) is the skeleton written, in the same retried transaction. With `same-bridge`,
//!   one element lookup tells whether the bridge is isolated already; the first pod of a
//!   bridge lists the table to add the pairs, and lists it again after its commit to add the
//!   pairs with bridges that concurrent ADDs isolated meanwhile.
//! - **DEL**: deletes the pod's elements that carry its comment (one lookup per address,
//!   a listing without `prevResult`); the bridge's pairs go once no other port is on it.
//! - **GC**: one listing; elements of this network whose attachment is not valid go.

use std::net::IpAddr;

use cni_linux::firewall::nftables::{
    ChainSpec, ChainType, CtState, DataType, Element, Family, Field, Hook, NftPlan, RuleSpec,
    SetSpec, Stmt, TableListing, Value, Verdict,
};

use crate::config::Pod;
use crate::error::CheckError;

/// The table's family.
pub const FAMILY: Family = Family::Inet;
/// The table.
pub const TABLE: &str = "cni_firewall";
/// The table's comment.
pub const TABLE_COMMENT: &str = "CNI firewall (cni-rs): pod addresses and isolated bridges in sets";
/// IPv4 pod addresses.
pub const PODS4: &str = "pods4";
/// IPv6 pod addresses.
pub const PODS6: &str = "pods6";
/// Isolated bridges.
pub const ISOLATED: &str = "isolated";
/// Pairs of distinct isolated bridges.
pub const ISOLATION: &str = "isolation";
/// The base chain.
pub const FORWARD: &str = "forward";
/// The administrators' chain.
pub const ADMIN: &str = "admin";

fn pods_set(v6: bool) -> SetSpec {
    let (name, ty, c) = if v6 {
        (PODS6, DataType::Ipv6Addr, "IPv6 pod addresses")
    } else {
        (PODS4, DataType::Ipv4Addr, "IPv4 pod addresses")
    };
    let mut s = SetSpec::set(name, vec![ty]);
    s.comment = Some(c.into());
    s
}

fn isolated_set() -> SetSpec {
    let mut s = SetSpec::set(ISOLATED, vec![DataType::Ifname]);
    s.comment = Some("bridges with ingressPolicy same-bridge".into());
    s
}

fn isolation_set() -> SetSpec {
    let mut s = SetSpec::set(ISOLATION, vec![DataType::Ifname, DataType::Ifname]);
    s.comment = Some("input bridge . output bridge: both isolated, not the same".into());
    s
}

/// The network part of an owner comment: the name, or a hash of a long one (the tag bridge and
/// portmap write too).
pub use cni_linux::firewall::owner::network_tag;

/// An attachment's comment: `<network tag> <ifname> <container id>`, or a readable prefix
/// and a hash of the whole identity when that is longer than nft's 128 bytes (the shared
/// [`Owner::comment`](cni_linux::firewall::owner::Owner::comment), as portmap writes it).
pub fn owner_comment(network: &str, container_id: &str, ifname: &str) -> String {
    cni_linux::firewall::owner::Owner::new(network, ifname, container_id).comment()
}

fn rule(stmts: Vec<Stmt>, comment: &str) -> RuleSpec {
    RuleSpec::new(FORWARD, stmts).with_comment(comment)
}

fn pod_rules(v6: bool) -> [RuleSpec; 2] {
    let (set, saddr, daddr) = if v6 {
        (PODS6, Field::Ip6Saddr, Field::Ip6Daddr)
    } else {
        (PODS4, Field::IpSaddr, Field::IpDaddr)
    };
    let in_set = |f: Field| Stmt::InSet {
        fields: vec![f],
        set: set.into(),
        negate: false,
    };
    [
        rule(
            vec![
                in_set(daddr),
                Stmt::CtState(vec![CtState::Established, CtState::Related]),
                Stmt::Verdict(Verdict::Accept),
            ],
            crate::iptables::RULES_COMMENT,
        ),
        rule(
            vec![in_set(saddr), Stmt::Verdict(Verdict::Accept)],
            crate::iptables::RULES_COMMENT,
        ),
    ]
}

/// The table, its sets and chains, and the forward chain's rules (flushed first).
pub fn skeleton(plan: &mut NftPlan) {
    plan.add_table(FAMILY, TABLE, Some(TABLE_COMMENT));
    for s in [
        pods_set(false),
        pods_set(true),
        isolated_set(),
        isolation_set(),
    ] {
        plan.add_set(FAMILY, TABLE, s);
    }
    plan.add_chain(FAMILY, TABLE, ChainSpec::regular(ADMIN));
    plan.add_chain(
        FAMILY,
        TABLE,
        ChainSpec::base(FORWARD, ChainType::Filter, Hook::Forward, 0),
    );
    plan.flush_chain(FAMILY, TABLE, FORWARD);
    plan.add_rule(
        FAMILY,
        TABLE,
        rule(
            vec![
                Stmt::InSet {
                    fields: vec![Field::Iifname, Field::Oifname],
                    set: ISOLATION.into(),
                    negate: false,
                },
                Stmt::Verdict(Verdict::Drop),
            ],
            crate::iptables::ISOLATION_COMMENT,
        ),
    );
    plan.add_rule(
        FAMILY,
        TABLE,
        rule(
            vec![Stmt::Verdict(Verdict::Jump(ADMIN.into()))],
            crate::iptables::ADMIN_COMMENT,
        ),
    );
    plan.add_rule(
        FAMILY,
        TABLE,
        rule(
            vec![Stmt::CtStatusDnat, Stmt::Verdict(Verdict::Accept)],
            crate::iptables::DNAT_COMMENT,
        ),
    );
    for v6 in [false, true] {
        for r in pod_rules(v6) {
            plan.add_rule(FAMILY, TABLE, r);
        }
    }
}

/// ADD's elements: each address of the pod in its set, with the owner comment.
pub fn add_elements(plan: &mut NftPlan, pod: &Pod, owner: &str) {
    for v6 in [false, true] {
        let elems: Vec<Element> = pod
            .addrs_of(v6)
            .map(|a| Element {
                key: vec![Value::Addr(a)],
                value: None,
                comment: Some(owner.to_owned()),
            })
            .collect();
        if !elems.is_empty() {
            plan.add_elements(FAMILY, TABLE, &pods_set(v6), elems);
        }
    }
}

/// Makes `bridge` isolated: its element in `isolated` (comment: the network) and the pairs
/// with every bridge in `others` (the isolated bridges listed).
pub fn isolate(plan: &mut NftPlan, bridge: &str, network: &str, others: &[String]) {
    plan.add_elements(
        FAMILY,
        TABLE,
        &isolated_set(),
        vec![Element {
            key: vec![Value::Ifname(bridge.into())],
            value: None,
            comment: Some(network_tag(network)),
        }],
    );
    let pairs: Vec<Element> = others
        .iter()
        .filter(|o| o.as_str() != bridge)
        .flat_map(|o| [(bridge, o.as_str()), (o.as_str(), bridge)])
        .map(|(a, b)| Element {
            key: vec![Value::Ifname(a.into()), Value::Ifname(b.into())],
            value: None,
            comment: None,
        })
        .collect();
    if !pairs.is_empty() {
        plan.add_elements(FAMILY, TABLE, &isolation_set(), pairs);
    }
}

/// Removes `bridge` from `isolated` and every pair that names it, as listed.
pub fn unisolate(plan: &mut NftPlan, bridge: &str, listing: &TableListing) {
    if isolated_bridges(listing).iter().any(|b| b == bridge) {
        plan.delete_elements(
            FAMILY,
            TABLE,
            &isolated_set(),
            vec![vec![Value::Ifname(bridge.into())]],
        );
    }
    let keys: Vec<Vec<Value>> = isolation_pairs(listing)
        .into_iter()
        .filter(|(a, b)| a == bridge || b == bridge)
        .map(|(a, b)| vec![Value::Ifname(a), Value::Ifname(b)])
        .collect();
    if !keys.is_empty() {
        plan.delete_elements(FAMILY, TABLE, &isolation_set(), keys);
    }
}

/// Deletes the given addresses from the pods sets.
pub fn delete_addrs(plan: &mut NftPlan, addrs: &[IpAddr]) {
    for v6 in [false, true] {
        let keys: Vec<Vec<Value>> = addrs
            .iter()
            .filter(|a| a.is_ipv6() == v6)
            .map(|a| vec![Value::Addr(*a)])
            .collect();
        if !keys.is_empty() {
            plan.delete_elements(FAMILY, TABLE, &pods_set(v6), keys);
        }
    }
}

/// The key types of the pods set of `a`'s family (for element lookups).
pub fn addr_key(a: IpAddr) -> (&'static str, [DataType; 1]) {
    if a.is_ipv6() {
        (PODS6, [DataType::Ipv6Addr])
    } else {
        (PODS4, [DataType::Ipv4Addr])
    }
}

/// The key types of `isolated`.
pub const ISOLATED_KEY: [DataType; 1] = [DataType::Ifname];

fn ifname_of(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// The isolated bridges of a listing.
pub fn isolated_bridges(listing: &TableListing) -> Vec<String> {
    listing
        .set(ISOLATED)
        .map(|s| s.elements.iter().map(|e| ifname_of(&e.key)).collect())
        .unwrap_or_default()
}

/// The isolated bridges of a listing whose element names `network`.
pub fn isolated_bridges_of(listing: &TableListing, network: &str) -> Vec<String> {
    let tag = network_tag(network);
    listing
        .set(ISOLATED)
        .map(|s| {
            s.elements
                .iter()
                .filter(|e| e.comment.as_deref() == Some(tag.as_str()))
                .map(|e| ifname_of(&e.key))
                .collect()
        })
        .unwrap_or_default()
}

/// The pairs of `isolation`.
pub fn isolation_pairs(listing: &TableListing) -> Vec<(String, String)> {
    listing
        .set(ISOLATION)
        .map(|s| {
            s.elements
                .iter()
                .filter(|e| e.key.len() >= 32)
                .map(|e| (ifname_of(&e.key[..16]), ifname_of(&e.key[16..32])))
                .collect()
        })
        .unwrap_or_default()
}

/// The pod addresses in a listing with their comments.
pub fn pod_elements(listing: &TableListing) -> Vec<(IpAddr, Option<String>)> {
    let mut out = Vec::new();
    for name in [PODS4, PODS6] {
        let Some(s) = listing.set(name) else {
            continue;
        };
        for e in &s.elements {
            let addr = match e.key.len() {
                4 => <[u8; 4]>::try_from(&e.key[..]).ok().map(IpAddr::from),
                16 => <[u8; 16]>::try_from(&e.key[..]).ok().map(IpAddr::from),
                _ => None,
            };
            if let Some(a) = addr {
                out.push((a, e.comment.clone()));
            }
        }
    }
    out
}

/// CHECK: the table, its chain and every address of the pod with this attachment's comment.
pub fn check(listing: Option<&TableListing>, pod: &Pod, owner: &str) -> Result<(), CheckError> {
    let Some(t) = listing else {
        return Err(CheckError::Nft(format!("table inet {TABLE} not found")));
    };
    let Some(c) = t.chain(FORWARD) else {
        return Err(CheckError::Nft(format!("chain {FORWARD} not found")));
    };
    if c.rules.len() < 7 {
        return Err(CheckError::Nft(format!(
            "chain {FORWARD} has {} rules, expected 7",
            c.rules.len()
        )));
    }
    let elems = pod_elements(t);
    for a in &pod.addrs {
        if !elems
            .iter()
            .any(|(e, c)| e == a && c.as_deref() == Some(owner))
        {
            return Err(CheckError::Nft(format!(
                "address {a} of this attachment not found in set {}",
                addr_key(*a).0
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
