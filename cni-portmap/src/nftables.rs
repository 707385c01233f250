//! The nftables backend: one table per family, verdict maps keyed by protocol and port, one
//! chain per container. Spoken over netlink, one transaction per verb, no `nft` process.
//!
//! # Why not the reference's layout
//!
//! The Go plugin (v1.5+) puts one rule per mapping in a chain, so every new connection to a
//! local address walks every mapping of every pod, and the cost grows with the node. Here the
//! packet path does two hash lookups whatever the number of pods, and ADD touches only the
//! container's own chain and map elements. The table is called `cni_portmap`, not
//! `cni_hostport`, so a node switching between the Go plugin and this one never sees a table
//! laid out in a way it does not understand.
//!
//! # Layout (family `ip`; `ip6` is the same with `ip6` addresses)
//!
//! ```text
//! table ip cni_portmap {
//!   map hostip_ports { type ipv4_addr . inet_proto . inet_service : verdict }   # hostIP given
//!   map ports        { type inet_proto . inet_service : verdict }               # any address
//!   chain prerouting  { type nat hook prerouting priority -100;
//!                       [conditionsV4] fib daddr type local jump hostports }
//!   chain output      { type nat hook output priority -100;
//!                       [conditionsV4] fib daddr type local jump hostports }
//!   chain hostports   { ip daddr . meta l4proto . th dport vmap @hostip_ports
//!                       meta l4proto . th dport vmap @ports }
//!   chain postrouting { type nat hook postrouting priority 100;
//!                       meta mark 0x00002000 meta mark set 0x00000000 masquerade }
//!   chain pm-<hash> {   # one per (network, container, interface); comment "<net> <if> <id>"
//!     tcp dport 8080 ip saddr 10.88.0.0/16 meta mark 0x00000000 meta mark set 0x00002000
//!     tcp dport 8080 ip saddr 127.0.0.1 meta mark 0x00000000 meta mark set 0x00002000
//!     tcp dport 8080 dnat to 10.88.0.5:80
//!   }
//!   # elements: tcp . 8080 : goto pm-<hash>, 192.168.1.5 . tcp . 8081 : goto pm-<hash>
//! }
//! ```
//!
//! - **Packet path**: `fib daddr type local`, then at most two verdict-map lookups (hostIP
//!   mappings first, then wildcard ones), then the few rules of *one* container's chain.
//!   Nothing depends on the number of containers.
//! - **Masquerade** (`snat`, default on): the container chain marks hairpin traffic (source in
//!   the container's subnet, any source with `masqAll`) and, for IPv4, traffic from
//!   `127.0.0.1`; `postrouting` masquerades marked packets and clears the mark. The mark is
//!   `1 << markMasqBit` and is only set on packets that carry no mark yet, so marks set by
//!   others are never overwritten (see the crate docs for the consequence).
//! - **Ownership**: an element's value is `goto <the container's chain>`, and the chain name
//!   is a hash of (network, container ID, interface). So "this host port belongs to this
//!   container" is exact, also when a second container takes the port over (last ADD wins).
//!
//! # How each verb finds one container's entries
//!
//! - **ADD** is O(mappings): the transaction (re)writes the fixed skeleton (constant size),
//!   replaces the container's chain and adds its elements. Only if the kernel answers `EEXIST`
//!   (a key owned by another container) is the table listed, and the conflicting keys are
//!   deleted and re-added in a second transaction.
//! - **DEL** is O(mappings) too: the keys are recomputed from `runtimeConfig.portMappings`
//!   and each is deleted *only if* it still points to this container, atomically: the
//!   transaction adds `key : goto <own chain>` (a no-op when present, an `EEXIST` failure when
//!   the key is another container's) and deletes it; then it flushes and deletes the chain.
//!   On `EEXIST`/`ENOENT`/`EBUSY` (key taken over, no table, leftover elements) it falls back
//!   to listing the table and deleting exactly the elements that point to the chain.
//! - **CHECK** lists the table and compares: skeleton present, the container chain holds the
//!   expected number of rules, every key points to the container chain.
//! - **GC** lists the table: container chains of this network (by the network tag in their
//!   comment) whose name is not that of a valid attachment are deleted with their elements.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use cni_linux::firewall::IpFamily;
use cni_linux::firewall::nftables::{
    ChainSpec, ChainType, CmpOp, DataType, ElemValue, Element, ElementData, Family, Field, Hook,
    MAX_COMMENT_LEN, MapData, NatKind, NftOp, NftPlan, RuleSpec, SetSpec, Stmt, TableListing,
    Value, Verdict, encode_key, priority,
};
use cni_linux::firewall::sha512::sha512_hex;
use cni_types::Attachment;
use ipnet::IpNet;

use crate::config::{Mapping, PortmapConf};
use crate::error::{CheckError, ConfigError};

/// The table name, in families `ip` and `ip6`.
pub const TABLE: &str = "cni_portmap";
/// The table's comment.
pub const TABLE_COMMENT: &str = "CNI portmap (cni-rs): host ports by verdict map";
/// Verdict map for mappings with a `hostIP`.
pub const HOSTIP_PORTS_MAP: &str = "hostip_ports";
/// Verdict map for mappings without `hostIP`.
pub const PORTS_MAP: &str = "ports";
/// Base chain (nat, prerouting).
pub const PREROUTING: &str = "prerouting";
/// Base chain (nat, output).
pub const OUTPUT: &str = "output";
/// Base chain (nat, postrouting): masquerades marked packets.
pub const POSTROUTING: &str = "postrouting";
/// Regular chain holding the two map lookups.
pub const HOSTPORTS: &str = "hostports";
/// Prefix of the per-container chains.
pub const CONTAINER_CHAIN_PREFIX: &str = "pm-";

/// The nft family of an address family.
pub fn family(f: IpFamily) -> Family {
    Family::of(f)
}

/// The container chain of one attachment: `pm-` + the first 40 hex digits of
/// sha512(`<network>\n<container id>\n<ifname>`).
pub fn container_chain(network: &str, container_id: &str, ifname: &str) -> String {
    let h = sha512_hex(format!("{network}\n{container_id}\n{ifname}").as_bytes());
    format!("{CONTAINER_CHAIN_PREFIX}{}", &h[..40])
}

/// How a network is named in comments: its name, or `#` + 24 hex digits of its sha512 when
/// longer than 48 bytes.
pub fn network_tag(network: &str) -> String {
    if network.len() <= 48 {
        network.to_owned()
    } else {
        format!("#{}", &sha512_hex(network.as_bytes())[..24])
    }
}

/// The comment of a container chain and its elements: `<network tag> <ifname> <container
/// id>`, cut to nft's 128 bytes. GC reads the network tag back; the rest is for people.
pub fn owner_comment(network: &str, container_id: &str, ifname: &str) -> String {
    let mut s = format!("{} {ifname} {container_id}", network_tag(network));
    if s.len() > MAX_COMMENT_LEN {
        let mut cut = MAX_COMMENT_LEN;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

fn addr_type(f: IpFamily) -> DataType {
    match f {
        IpFamily::V4 => DataType::Ipv4Addr,
        IpFamily::V6 => DataType::Ipv6Addr,
    }
}

fn daddr(f: IpFamily) -> Field {
    match f {
        IpFamily::V4 => Field::IpDaddr,
        IpFamily::V6 => Field::Ip6Daddr,
    }
}

fn saddr(f: IpFamily) -> Field {
    match f {
        IpFamily::V4 => Field::IpSaddr,
        IpFamily::V6 => Field::Ip6Saddr,
    }
}

/// The wildcard verdict map.
pub fn ports_map() -> SetSpec {
    let mut s = SetSpec::map(
        PORTS_MAP,
        vec![DataType::InetProto, DataType::InetService],
        MapData::Verdict,
    );
    s.comment = Some("protocol . host port : goto container chain".into());
    s
}

/// The hostIP verdict map of `f`.
pub fn hostip_ports_map(f: IpFamily) -> SetSpec {
    let mut s = SetSpec::map(
        HOSTIP_PORTS_MAP,
        vec![addr_type(f), DataType::InetProto, DataType::InetService],
        MapData::Verdict,
    );
    s.comment = Some("host address . protocol . host port : goto container chain".into());
    s
}

/// One map key: `(hostIP, protocol, host port)`, `hostIP` `None` for the wildcard map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The host address, for the hostIP map.
    pub host_ip: Option<IpAddr>,
    /// Protocol.
    pub protocol: u8,
    /// Host port.
    pub host_port: u16,
}

impl Key {
    fn of(m: &Mapping) -> Key {
        Key {
            host_ip: m.dst(),
            protocol: m.protocol.l4().number(),
            host_port: m.host_port,
        }
    }

    /// The map this key lives in.
    pub fn map(&self) -> &'static str {
        if self.host_ip.is_some() {
            HOSTIP_PORTS_MAP
        } else {
            PORTS_MAP
        }
    }

    fn spec(&self, f: IpFamily) -> SetSpec {
        if self.host_ip.is_some() {
            hostip_ports_map(f)
        } else {
            ports_map()
        }
    }

    /// The key's values in the map's types.
    pub fn values(&self) -> Vec<Value> {
        let mut v = Vec::with_capacity(3);
        if let Some(ip) = self.host_ip {
            v.push(Value::Addr(ip));
        }
        v.push(Value::Proto(self.protocol));
        v.push(Value::Port(self.host_port));
        v
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self
            .values()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" . ");
        f.write_str(&v)
    }
}

/// The keys of the mappings installed for addresses of `f`, without duplicates: hostIP keys
/// first, each group in mapping order.
pub fn keys(conf: &PortmapConf, f: IpFamily) -> Vec<Key> {
    let mut out: Vec<Key> = Vec::new();
    for m in conf.mappings_for(f) {
        let k = Key::of(m);
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out.sort_by_key(|k| k.host_ip.is_none());
    out
}

/// Decodes a listed element key of `map` back into a [`Key`].
pub fn decode_key(f: IpFamily, map: &str, bytes: &[u8]) -> Option<Key> {
    let alen = match f {
        IpFamily::V4 => 4,
        IpFamily::V6 => 16,
    };
    let (host_ip, rest) = if map == HOSTIP_PORTS_MAP {
        let a = bytes.get(..alen)?;
        let ip = match f {
            IpFamily::V4 => IpAddr::from(<[u8; 4]>::try_from(a).ok()?),
            IpFamily::V6 => IpAddr::from(<[u8; 16]>::try_from(a).ok()?),
        };
        (Some(ip), bytes.get(alen..)?)
    } else {
        (None, bytes)
    };
    if rest.len() != 8 {
        return None;
    }
    Some(Key {
        host_ip,
        protocol: rest[0],
        host_port: u16::from_be_bytes([rest[4], rest[5]]),
    })
}

fn cmp(field: Field, value: Value) -> Stmt {
    Stmt::Cmp {
        field,
        op: CmpOp::Eq,
        value,
    }
}

/// The fixed part of the table in family `f`: maps, base chains and their rules. Written
/// whole by every ADD (flush + add), so it repairs itself and takes the latest `conditions`
/// and mark, as the reference's nftables backend does.
pub fn skeleton(plan: &mut NftPlan, f: IpFamily, conditions: &[Stmt], mark: u32) {
    let fam = family(f);
    let t = TABLE;
    plan.add_table(fam, t, Some(TABLE_COMMENT))
        .add_set(fam, t, hostip_ports_map(f))
        .add_set(fam, t, ports_map())
        .add_chain(fam, t, ChainSpec::regular(HOSTPORTS))
        .add_chain(
            fam,
            t,
            ChainSpec::base(PREROUTING, ChainType::Nat, Hook::Prerouting, priority::DSTNAT),
        )
        .add_chain(
            fam,
            t,
            ChainSpec::base(OUTPUT, ChainType::Nat, Hook::Output, priority::DSTNAT),
        )
        .add_chain(
            fam,
            t,
            ChainSpec::base(POSTROUTING, ChainType::Nat, Hook::Postrouting, priority::SRCNAT),
        );
    for c in [PREROUTING, OUTPUT, POSTROUTING, HOSTPORTS] {
        plan.flush_chain(fam, t, c);
    }
    for c in [PREROUTING, OUTPUT] {
        let mut stmts = conditions.to_vec();
        stmts.push(Stmt::FibDaddrLocal { negate: false });
        stmts.push(Stmt::Verdict(Verdict::Jump(HOSTPORTS.into())));
        plan.add_rule(fam, t, RuleSpec::new(c, stmts));
    }
    plan.add_rule(
        fam,
        t,
        RuleSpec::new(
            HOSTPORTS,
            vec![Stmt::VerdictMap {
                fields: vec![daddr(f), Field::L4Proto, Field::ThDport],
                map: HOSTIP_PORTS_MAP.into(),
            }],
        ),
    )
    .add_rule(
        fam,
        t,
        RuleSpec::new(
            HOSTPORTS,
            vec![Stmt::VerdictMap {
                fields: vec![Field::L4Proto, Field::ThDport],
                map: PORTS_MAP.into(),
            }],
        ),
    )
    .add_rule(
        fam,
        t,
        RuleSpec::new(
            POSTROUTING,
            vec![
                cmp(Field::Mark, Value::Mark(mark)),
                Stmt::SetMark(0),
                Stmt::Masquerade,
            ],
        ),
    );
}

/// The rules of a container chain for the container address `container`.
pub fn container_rules(conf: &PortmapConf, container: IpNet) -> Vec<Vec<Stmt>> {
    let f = IpFamily::of(&container.addr());
    let mut out = Vec::new();
    for m in conf.mappings_for(f) {
        let mut base = Vec::with_capacity(2);
        if let Some(dst) = m.dst() {
            base.push(cmp(daddr(f), Value::Addr(dst)));
        }
        base.push(cmp(
            Field::Dport(m.protocol.l4()),
            Value::Port(m.host_port),
        ));
        let mark = |mut r: Vec<Stmt>| {
            r.push(cmp(Field::Mark, Value::Mark(0)));
            r.push(Stmt::SetMark(conf.mark()));
            r
        };
        if conf.snat {
            let mut hp = base.clone();
            if !conf.masq_all {
                hp.push(cmp(saddr(f), Value::Net(container.trunc())));
            }
            out.push(mark(hp));
            if f == IpFamily::V4 && !conf.masq_all {
                let mut lo = base.clone();
                lo.push(cmp(Field::IpSaddr, Value::Addr(IpAddr::V4(Ipv4Addr::LOCALHOST))));
                out.push(mark(lo));
            }
        }
        let mut dnat = base;
        dnat.push(Stmt::Nat {
            kind: NatKind::Dnat,
            addr: container.addr(),
            port: Some(m.container_port),
        });
        out.push(dnat);
    }
    out
}

fn elements_op(f: IpFamily, key: &Key, chain: &str, comment: &str) -> NftOp {
    let spec = key.spec(f);
    NftOp::AddElements {
        family: family(f),
        table: TABLE.into(),
        set: spec.name,
        key: spec.key,
        data: spec.data,
        elements: vec![Element {
            key: key.values(),
            value: Some(ElemValue::Verdict(Verdict::Goto(chain.to_owned()))),
            comment: Some(comment.to_owned()),
        }],
    }
}

fn delete_key_op(f: IpFamily, key: &Key) -> NftOp {
    let spec = key.spec(f);
    NftOp::DeleteElements {
        family: family(f),
        table: TABLE.into(),
        set: spec.name,
        key: spec.key,
        keys: vec![key.values()],
    }
}

/// Groups consecutive element ops on the same set into one op (fewer netlink messages).
fn push_grouped(plan: &mut NftPlan, op: NftOp) {
    match (plan.ops.last_mut(), op) {
        (
            Some(NftOp::AddElements {
                set: s1, elements, ..
            }),
            NftOp::AddElements {
                set: s2,
                elements: mut more,
                ..
            },
        ) if *s1 == s2 => elements.append(&mut more),
        (
            Some(NftOp::DeleteElements { set: s1, keys, .. }),
            NftOp::DeleteElements {
                set: s2,
                keys: mut more,
                ..
            },
        ) if *s1 == s2 => keys.append(&mut more),
        (_, op) => {
            plan.push(op);
        }
    }
}

/// The ADD transaction for one container address: skeleton, the container's chain replaced,
/// `replace` keys (owned by another container, see [`conflicts`]) deleted, then the
/// container's elements added.
pub fn add_plan(
    conf: &PortmapConf,
    att: &Attachment,
    container: IpNet,
    replace: &[Key],
) -> Result<NftPlan, ConfigError> {
    let f = IpFamily::of(&container.addr());
    let key = match f {
        IpFamily::V4 => "conditionsV4",
        IpFamily::V6 => "conditionsV6",
    };
    let conds = crate::conditions::parse(conf.conditions(f), f)
        .map_err(|source| ConfigError::Condition { key, source })?;
    let fam = family(f);
    let chain = container_chain(&conf.name, &att.container_id, &att.ifname);
    let comment = owner_comment(&conf.name, &att.container_id, &att.ifname);
    let mut plan = NftPlan::new();
    skeleton(&mut plan, f, &conds, conf.mark());
    plan.add_chain(fam, TABLE, ChainSpec::regular(&chain).with_comment(&comment))
        .flush_chain(fam, TABLE, &chain);
    for stmts in container_rules(conf, container) {
        plan.add_rule(fam, TABLE, RuleSpec::new(&chain, stmts));
    }
    let mut replace: Vec<&Key> = replace.iter().collect();
    replace.sort();
    replace.dedup();
    for k in replace {
        push_grouped(&mut plan, delete_key_op(f, k));
    }
    for k in keys(conf, f) {
        push_grouped(&mut plan, elements_op(f, &k, &chain, &comment));
    }
    Ok(plan)
}

/// The keys of `wanted` that exist in the listed table pointing somewhere else than `chain`.
pub fn conflicts(listing: &TableListing, f: IpFamily, chain: &str, wanted: &[Key]) -> Vec<Key> {
    let ours = ElementData::Verdict(Verdict::Goto(chain.to_owned()));
    let mut out = Vec::new();
    for k in wanted {
        let spec = k.spec(f);
        let Some(set) = listing.set(&spec.name) else {
            continue;
        };
        if let Some(e) = set.find(&spec.key, &k.values())
            && e.data.as_ref() != Some(&ours)
        {
            out.push(*k);
        }
    }
    out
}

/// The DEL transaction for family `f` when the keys are known: each key is deleted only if
/// it points to the container chain (add-then-delete: adding a key that holds another
/// verdict fails with `EEXIST` and aborts everything), then the chain goes.
pub fn del_plan(f: IpFamily, chain: &str, comment: &str, keys: &[Key]) -> NftPlan {
    let fam = family(f);
    let mut plan = NftPlan::new();
    plan.add_chain(fam, TABLE, ChainSpec::regular(chain));
    for k in keys {
        push_grouped(&mut plan, elements_op(f, k, chain, comment));
    }
    for k in keys {
        push_grouped(&mut plan, delete_key_op(f, k));
    }
    plan.flush_chain(fam, TABLE, chain).push(NftOp::DeleteChain {
        family: fam,
        table: TABLE.into(),
        chain: chain.to_owned(),
    });
    plan
}

/// The elements of the listed table that point to `chain`, as `(map, key)`.
pub fn elements_of(listing: &TableListing, f: IpFamily, chain: &str) -> Vec<Key> {
    let mut out = Vec::new();
    for map in [HOSTIP_PORTS_MAP, PORTS_MAP] {
        let Some(set) = listing.set(map) else {
            continue;
        };
        for e in &set.elements {
            let points = matches!(&e.data, Some(ElementData::Verdict(Verdict::Goto(c) | Verdict::Jump(c))) if c == chain);
            if points && let Some(k) = decode_key(f, map, &e.key) {
                out.push(k);
            }
        }
    }
    out
}

/// Removes from `plan` everything of the container chains `chains` in the listed table:
/// their elements, their rules, the chains.
fn remove_chains(plan: &mut NftPlan, listing: &TableListing, f: IpFamily, chains: &[String]) {
    let fam = family(f);
    for c in chains {
        for k in elements_of(listing, f, c) {
            push_grouped(plan, delete_key_op(f, &k));
        }
    }
    for c in chains {
        if listing.chain(c).is_some() {
            plan.flush_chain(fam, TABLE, c).push(NftOp::DeleteChain {
                family: fam,
                table: TABLE.into(),
                chain: c.clone(),
            });
        }
    }
}

/// The DEL transaction computed from a listing: exactly the elements that point to the
/// container chain, then the chain. Empty when there is nothing.
pub fn del_plan_listed(listing: &TableListing, f: IpFamily, chain: &str) -> NftPlan {
    let mut plan = NftPlan::new();
    remove_chains(&mut plan, listing, f, &[chain.to_owned()]);
    plan
}

/// The container chains of `network` in the listing whose attachment is not in `valid`.
pub fn stale_chains(listing: &TableListing, network: &str, valid: &[Attachment]) -> Vec<String> {
    let keep: BTreeSet<String> = valid
        .iter()
        .map(|a| container_chain(network, &a.container_id, &a.ifname))
        .collect();
    let tag = format!("{} ", network_tag(network));
    listing
        .chains
        .iter()
        .filter(|c| {
            c.name.starts_with(CONTAINER_CHAIN_PREFIX)
                && c.comment.as_deref().is_some_and(|m| m.starts_with(&tag))
                && !keep.contains(&c.name)
        })
        .map(|c| c.name.clone())
        .collect()
}

/// The GC transaction for one family.
pub fn gc_plan(listing: &TableListing, f: IpFamily, network: &str, valid: &[Attachment]) -> NftPlan {
    let mut plan = NftPlan::new();
    let stale = stale_chains(listing, network, valid);
    remove_chains(&mut plan, listing, f, &stale);
    plan
}

/// CHECK of one container address against the listed table of its family.
pub fn check(
    listing: Option<&TableListing>,
    conf: &PortmapConf,
    att: &Attachment,
    container: IpNet,
) -> Result<(), CheckError> {
    let f = IpFamily::of(&container.addr());
    let fam = family(f).to_string();
    let missing = |what: &'static str, name: &str| CheckError::MissingNft {
        what,
        name: name.to_owned(),
        family: fam.clone(),
        table: TABLE.to_owned(),
    };
    let Some(t) = listing else {
        return Err(missing("table", TABLE));
    };
    for c in [PREROUTING, OUTPUT, POSTROUTING, HOSTPORTS] {
        let Some(ch) = t.chain(c) else {
            return Err(missing("chain", c));
        };
        if ch.rules.is_empty() {
            return Err(CheckError::RuleCount {
                chain: c.to_owned(),
                found: 0,
                expected: if c == HOSTPORTS { 2 } else { 1 },
            });
        }
    }
    for m in [HOSTIP_PORTS_MAP, PORTS_MAP] {
        if t.set(m).is_none() {
            return Err(missing("map", m));
        }
    }
    let chain = container_chain(&conf.name, &att.container_id, &att.ifname);
    let Some(ch) = t.chain(&chain) else {
        return Err(missing("chain", &chain));
    };
    let expected = container_rules(conf, container).len();
    if ch.rules.len() != expected {
        return Err(CheckError::RuleCount {
            chain,
            found: ch.rules.len(),
            expected,
        });
    }
    let ours = ElementData::Verdict(Verdict::Goto(chain.clone()));
    for k in keys(conf, f) {
        let spec = k.spec(f);
        let state = match t.set(&spec.name).and_then(|s| s.find(&spec.key, &k.values())) {
            None => "not mapped".to_owned(),
            Some(e) if e.data.as_ref() == Some(&ours) => continue,
            Some(e) => match &e.data {
                Some(ElementData::Verdict(v)) => format!("mapped to {v}"),
                _ => "mapped elsewhere".to_owned(),
            },
        };
        return Err(CheckError::Element {
            key: format!("{} {k}", k.map()),
            state,
        });
    }
    Ok(())
}

/// Sanity check that a key encodes as the kernel stores it (used by tests and debugging).
pub fn key_bytes(f: IpFamily, key: &Key) -> Option<Vec<u8>> {
    encode_key(&key.spec(f).key, &key.values()).ok()
}

#[cfg(test)]
mod tests;
