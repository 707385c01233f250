//! The nftables backend: one table per family in which every port mapping is a few map
//! elements, looked up in constant time. Spoken over netlink, one transaction per verb, no
//! `nft` process.
//!
//! # Why not the reference's layout
//!
//! The Go plugin (v1.5+) puts one rule per mapping in a chain, so every new connection to a
//! local address walks every mapping of every pod, and the cost grows with the node. Here the
//! packet path does a fixed number of hash lookups whatever the number of pods, and ADD adds
//! only the container's own map elements. The table is called `cni_portmap`, not
//! `cni_hostport`, so a node switching between the Go plugin and this one never sees a table
//! laid out in a way it does not understand.
//!
//! # Layout (family `ip`; `ip6` is the same with `ip6` addresses and no 127.0.0.1 entries)
//!
//! ```text
//! table ip cni_portmap {
//!   # DNAT targets: (host address .) protocol . host port -> container address . port
//!   map dnat           { type inet_proto . inet_service : ipv4_addr . inet_service }
//!   map hostip_dnat    { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service }
//!   # Sources to masquerade (snat): the container itself (hairpin) and 127.0.0.1
//!   map masq           { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service }
//!   map hostip_masq    { type ipv4_addr . ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service }
//!   # Any source (snat with masqAll)
//!   map masqall        { type inet_proto . inet_service : ipv4_addr . inet_service }
//!   map hostip_masqall { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service }
//!   map skeleton       { type ifname : ifname; elements = { "stamp" : "v2-<12 hex>" } }
//!   chain prerouting  { type nat hook prerouting priority -100;
//!                       [conditionsV4] fib daddr type local jump hostports }
//!   chain output      { type nat hook output priority -100;
//!                       [conditionsV4] fib daddr type local jump hostports }
//!   chain hostports {
//!     ip saddr . meta l4proto . th dport @masq meta mark 0x00000000 meta mark set 0x00002000
//!     ip saddr . ip daddr . meta l4proto . th dport @hostip_masq meta mark 0x00000000 meta mark set 0x00002000
//!     meta l4proto . th dport @masqall meta mark 0x00000000 meta mark set 0x00002000
//!     ip daddr . meta l4proto . th dport @hostip_masqall meta mark 0x00000000 meta mark set 0x00002000
//!     dnat ip to ip daddr . meta l4proto . th dport map @hostip_dnat
//!     dnat ip to meta l4proto . th dport map @dnat
//!   }
//!   chain postrouting { type nat hook postrouting priority 100;
//!                       meta mark 0x00002000 meta mark set 0x00000000 masquerade }
//! }
//! ```
//!
//! One container with `8080 -> 80/tcp` at 10.88.0.5 adds `tcp . 8080 : 10.88.0.5 . 80` to
//! `dnat` and, with `snat`, `10.88.0.5 . tcp . 8080` and `127.0.0.1 . tcp . 8080` (same value)
//! to `masq`. Every element carries the comment `<network> <ifname> <container id>`.
//!
//! - **Packet path**: `fib daddr type local`, then six hash lookups (four to decide on
//!   masquerading, two for the DNAT target, `hostIP` mappings first). Nothing depends on the
//!   number of containers.
//! - **Masquerade** (`snat`, default on): hairpin traffic (the container reaching itself
//!   through the host port) and, for IPv4, traffic from `127.0.0.1` are marked, any source
//!   with `masqAll`; `postrouting` masquerades marked packets and clears the mark. The mark is
//!   `1 << markMasqBit` and is only set on packets that carry no mark yet, so marks set by
//!   others are never overwritten. As in the reference's nftables backend (and unlike its
//!   iptables one, which masquerades the whole container subnet), other pods reaching a pod
//!   through a host port are not masqueraded: on a bridge this needs `br_netfilter` (so the
//!   bridged reply is un-NATed) or `masqAll`.
//! - **Ownership**: an element's value is the container's address and port and its comment
//!   names the attachment. ADD never takes a key that another attachment holds (it fails,
//!   see [`holders`]), and DEL only deletes elements that hold its own value (or carry its
//!   comment), so a refused attachment's DEL leaves the holder alone. Conflicts are found
//!   per key: a mapping with `hostIP` and one without, of the same protocol and port, by two
//!   containers, are both installed (the `hostIP` one is more specific and gets the traffic
//!   to its address; the reference's iptables rule order would give it to the first).
//! - **Skeleton stamp**: the base chains, `hostports`, the maps and the stamp are written
//!   together; the stamp is a hash of that text (so of the conditions and the mark).
//!
//! # What a transaction costs, and why ADD is flat
//!
//! Measured here (kernel 6.18): a transaction that only adds map elements commits in about a
//! tenth of a millisecond whatever the table holds. Adding a rule, or an element with a
//! `jump`/`goto` verdict, makes the kernel validate the whole table at commit (so a design
//! with one chain per container reached through a verdict map gets slower with every pod);
//! deleting a rule or an element, updating an existing chain, or a failed transaction waits
//! for an RCU grace period (8-16 ms). So ADD's common path is a single transaction that
//! re-adds the identical stamp element (a no-op that fails with `ENOENT` when the table is
//! missing and `EEXIST` when another configuration's skeleton is in place) and adds the
//! container's elements. Only when that fails is the table listed and the skeleton
//! (re)written, or the attachment's own earlier keys replaced.
//!
//! # How each verb finds one container's entries
//!
//! - **ADD**: [`entries`] computes the elements from the config and the container address;
//!   [`add_plan`] adds them (O(mappings)). A new node, another configuration's skeleton or a
//!   key held by another container costs one listing and a second transaction
//!   ([`add_plan_with_skeleton`], [`holders`]). A key held by another attachment, or a
//!   skeleton of other conditions or mark that another network's elements rely on
//!   ([`other_networks`]), fails ADD instead.
//! - **DEL** is O(mappings) when the container address is known (`prevResult`): each element
//!   is deleted *only if* it still holds this container's value, atomically: the transaction
//!   adds the element with that value (a no-op when present, an `EEXIST` failure when the key
//!   holds another container's value) and deletes it ([`del_plan`]). On `EEXIST`/`ENOENT`, or
//!   without the address, it lists the table and deletes exactly the elements whose comment is
//!   this attachment's ([`del_plan_listed`]).
//! - **CHECK** lists the table and compares: this configuration's stamp, every element with
//!   this container's value.
//! - **GC** lists the table and deletes this network's elements (by the network tag in their
//!   comment) whose attachment is not valid.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cni_linux::firewall::IpFamily;
use cni_linux::firewall::nftables::{
    ChainSpec, ChainType, CmpOp, DataType, ElemValue, Element, ElementData, Family, Field, Hook,
    MAX_COMMENT_LEN, MapData, NatKind, NftOp, NftPlan, RuleSpec, SetSpec, Stmt, TableListing,
    Value, Verdict, encode_key, priority,
};
use cni_linux::firewall::owner::{Owner, network_tag};
use cni_linux::firewall::sha512::sha512_hex;
use cni_types::Attachment;
use ipnet::IpNet;

use crate::config::PortmapConf;
use crate::error::{CheckError, ConfigError};

/// The table name, in families `ip` and `ip6`.
pub const TABLE: &str = "cni_portmap";
/// The table's comment.
pub const TABLE_COMMENT: &str = "CNI portmap (cni-rs): host ports in maps";
/// DNAT targets of mappings without `hostIP`.
pub const DNAT: &str = "dnat";
/// DNAT targets of mappings with `hostIP`.
pub const HOSTIP_DNAT: &str = "hostip_dnat";
/// Sources to masquerade (container, 127.0.0.1) for mappings without `hostIP`.
pub const MASQ: &str = "masq";
/// Sources to masquerade for mappings with `hostIP`.
pub const HOSTIP_MASQ: &str = "hostip_masq";
/// Mappings whose traffic is masqueraded from any source (`masqAll`), without `hostIP`.
pub const MASQALL: &str = "masqall";
/// Mappings whose traffic is masqueraded from any source, with `hostIP`.
pub const HOSTIP_MASQALL: &str = "hostip_masqall";
/// The maps holding mapping elements, in the order they are looked up.
pub const MAPS: [&str; 6] = [
    MASQ,
    HOSTIP_MASQ,
    MASQALL,
    HOSTIP_MASQALL,
    HOSTIP_DNAT,
    DNAT,
];
/// Map holding the skeleton's stamp (see [`skeleton_stamp`]).
pub const STAMP_MAP: &str = "skeleton";
/// The key of the stamp element.
pub const STAMP_KEY: &str = "stamp";
/// Base chain (nat, prerouting).
pub const PREROUTING: &str = "prerouting";
/// Base chain (nat, output).
pub const OUTPUT: &str = "output";
/// Base chain (nat, postrouting): masquerades marked packets.
pub const POSTROUTING: &str = "postrouting";
/// Regular chain holding the lookups.
pub const HOSTPORTS: &str = "hostports";
const LAYOUT_VERSION: &str = "v2";

/// The nft family of an address family.
pub fn family(f: IpFamily) -> Family {
    Family::of(f)
}

/// The owner of an attachment's elements ([`Owner::comment`] is their comment: DEL without
/// address and GC find elements by it).
pub fn owner<'a>(network: &'a str, att: &'a Attachment) -> Owner<'a> {
    Owner::new(network, &att.ifname, &att.container_id)
}

/// The comment earlier versions wrote for an identity longer than 128 bytes: the text cut
/// ([`Owner::cut_comment`], ambiguous). `None` when the identity fits, as both formats agree
/// then. DEL and GC still recognise it, so elements written before an upgrade are found.
pub fn legacy_comment(owner: &Owner<'_>) -> Option<String> {
    (owner.text().len() > MAX_COMMENT_LEN).then(|| owner.cut_comment())
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

/// The specification of map `name` (one of [`MAPS`]) in family `f`.
pub fn map_spec(name: &str, f: IpFamily) -> SetSpec {
    let a = addr_type(f);
    let (p, s) = (DataType::InetProto, DataType::InetService);
    let (key, comment) = match name {
        DNAT => (
            vec![p, s],
            "protocol . host port : container address . port",
        ),
        HOSTIP_DNAT => (
            vec![a, p, s],
            "host address . protocol . host port : container address . port",
        ),
        MASQ => (
            vec![a, p, s],
            "source to masquerade . protocol . host port : container address . port",
        ),
        HOSTIP_MASQ => (
            vec![a, a, p, s],
            "source to masquerade . host address . protocol . host port : container address . port",
        ),
        MASQALL => (
            vec![p, s],
            "protocol . host port (masqAll) : container address . port",
        ),
        _ => (
            vec![a, p, s],
            "host address . protocol . host port (masqAll) : container address . port",
        ),
    };
    let mut spec = SetSpec::map(name, key, MapData::Values(vec![a, s]));
    spec.comment = Some(comment.into());
    spec
}

fn known_map(name: &str) -> Option<&'static str> {
    MAPS.iter().copied().find(|m| *m == name)
}

/// The map holding the skeleton stamp: `ifname : ifname` (a 15-byte string each way).
pub fn stamp_map() -> SetSpec {
    let mut s = SetSpec::map(
        STAMP_MAP,
        vec![DataType::Ifname],
        MapData::Values(vec![DataType::Ifname]),
    );
    s.comment = Some("stamp: layout version and hash of conditions and mark".into());
    s
}

fn stamp_element(stamp: &str) -> Element {
    Element {
        key: vec![Value::Ifname(STAMP_KEY.into())],
        value: Some(ElemValue::Values(vec![Value::Ifname(stamp.to_owned())])),
        comment: None,
    }
}

/// One map element of a container: `map { key : value }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// One of [`MAPS`].
    pub map: &'static str,
    /// Key values, in the map's key types.
    pub key: Vec<Value>,
    /// The container's address and port.
    pub value: Vec<Value>,
}

/// Values joined as nft prints a concatenation (`a . b`).
pub fn join(v: &[Value]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" . ")
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {{ {} : {} }}",
            self.map,
            join(&self.key),
            join(&self.value)
        )
    }
}

/// The elements ADD installs for the container address `container`, without duplicate keys
/// (the first mapping with a key wins), grouped by map.
pub fn entries(conf: &PortmapConf, container: IpNet) -> Vec<Entry> {
    let f = IpFamily::of(&container.addr());
    let c = container.addr();
    let local: Option<IpAddr> = match f {
        IpFamily::V4 => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        IpFamily::V6 => None,
    };
    let mut out: Vec<Entry> = Vec::new();
    let mut push = |map: &'static str, key: Vec<Value>, value: &[Value]| {
        if !out.iter().any(|e| e.map == map && e.key == key) {
            out.push(Entry {
                map,
                key,
                value: value.to_vec(),
            });
        }
    };
    for m in conf.mappings_for(f) {
        let value = [Value::Addr(c), Value::Port(m.container_port)];
        let (p, hp) = (
            Value::Proto(m.protocol.l4().number()),
            Value::Port(m.host_port),
        );
        let dst = m.dst().map(Value::Addr);
        match &dst {
            None => push(DNAT, vec![p.clone(), hp.clone()], &value),
            Some(h) => push(HOSTIP_DNAT, vec![h.clone(), p.clone(), hp.clone()], &value),
        }
        if !conf.snat {
            continue;
        }
        if conf.masq_all {
            match &dst {
                None => push(MASQALL, vec![p, hp], &value),
                Some(h) => push(HOSTIP_MASQALL, vec![h.clone(), p, hp], &value),
            }
            continue;
        }
        for src in std::iter::once(c).chain(local) {
            let s = Value::Addr(src);
            match &dst {
                None => push(MASQ, vec![s, p.clone(), hp.clone()], &value),
                Some(h) => push(
                    HOSTIP_MASQ,
                    vec![s, h.clone(), p.clone(), hp.clone()],
                    &value,
                ),
            }
        }
    }
    out.sort_by_key(|e| MAPS.iter().position(|m| *m == e.map));
    out
}

fn cmp(field: Field, value: Value) -> Stmt {
    Stmt::Cmp {
        field,
        op: CmpOp::Eq,
        value,
    }
}

/// The fixed part of the table in family `f`: maps, base chains and their rules, written
/// whole (flush + add). Its last ops store the stamp of this very skeleton, which the fast
/// path of ADD asserts (see [`add_plan`]).
pub fn skeleton(plan: &mut NftPlan, f: IpFamily, conditions: &[Stmt], mark: u32) {
    let mut body = NftPlan::new();
    skeleton_body(&mut body, f, conditions, mark);
    let stamp = stamp_of(&body);
    let fam = family(f);
    plan.ops.extend(body.ops);
    plan.add_set(fam, TABLE, stamp_map())
        .push(NftOp::FlushSet {
            family: fam,
            table: TABLE.into(),
            set: STAMP_MAP.into(),
        })
        .add_elements(fam, TABLE, &stamp_map(), vec![stamp_element(&stamp)]);
}

/// The layout version + 12 hex digits of sha512 of the skeleton's text: 15 bytes, an
/// `ifname` value.
fn stamp_of(body: &NftPlan) -> String {
    format!(
        "{LAYOUT_VERSION}-{}",
        &sha512_hex(body.to_string().as_bytes())[..12]
    )
}

/// The stamp of the skeleton `conf` needs in family `f`.
pub fn skeleton_stamp(conf: &PortmapConf, f: IpFamily) -> Result<String, ConfigError> {
    let conds = conditions(conf, f)?;
    let mut body = NftPlan::new();
    skeleton_body(&mut body, f, &conds, conf.mark());
    Ok(stamp_of(&body))
}

/// The stamp stored in a listed table, if any.
pub fn listed_stamp(listing: &TableListing) -> Option<String> {
    let set = listing.set(STAMP_MAP)?;
    let e = set.find(&[DataType::Ifname], &[Value::Ifname(STAMP_KEY.into())])?;
    match &e.data {
        Some(ElementData::Value(b)) => {
            let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
            Some(String::from_utf8_lossy(&b[..end]).into_owned())
        }
        _ => None,
    }
}

fn mark_if_unmarked(mut stmts: Vec<Stmt>, mark: u32) -> Vec<Stmt> {
    stmts.push(cmp(Field::Mark, Value::Mark(0)));
    stmts.push(Stmt::SetMark(mark));
    stmts
}

fn skeleton_body(plan: &mut NftPlan, f: IpFamily, conditions: &[Stmt], mark: u32) {
    let fam = family(f);
    let t = TABLE;
    plan.add_table(fam, t, Some(TABLE_COMMENT));
    for m in MAPS {
        plan.add_set(fam, t, map_spec(m, f));
    }
    plan.add_chain(fam, t, ChainSpec::regular(HOSTPORTS))
        .add_chain(
            fam,
            t,
            ChainSpec::base(
                PREROUTING,
                ChainType::Nat,
                Hook::Prerouting,
                priority::DSTNAT,
            ),
        )
        .add_chain(
            fam,
            t,
            ChainSpec::base(OUTPUT, ChainType::Nat, Hook::Output, priority::DSTNAT),
        )
        .add_chain(
            fam,
            t,
            ChainSpec::base(
                POSTROUTING,
                ChainType::Nat,
                Hook::Postrouting,
                priority::SRCNAT,
            ),
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
    let (sa, da, p, dp) = (saddr(f), daddr(f), Field::L4Proto, Field::ThDport);
    let lookups: [(Vec<Field>, &str); 4] = [
        (vec![sa, p, dp], MASQ),
        (vec![sa, da, p, dp], HOSTIP_MASQ),
        (vec![p, dp], MASQALL),
        (vec![da, p, dp], HOSTIP_MASQALL),
    ];
    for (fields, set) in lookups {
        let lookup = Stmt::InSet {
            fields,
            set: set.into(),
            negate: false,
        };
        plan.add_rule(
            fam,
            t,
            RuleSpec::new(HOSTPORTS, mark_if_unmarked(vec![lookup], mark)),
        );
    }
    for (fields, map) in [(vec![da, p, dp], HOSTIP_DNAT), (vec![p, dp], DNAT)] {
        plan.add_rule(
            fam,
            t,
            RuleSpec::new(
                HOSTPORTS,
                vec![Stmt::NatMap {
                    kind: NatKind::Dnat,
                    family: f,
                    fields,
                    map: map.into(),
                    with_port: true,
                }],
            ),
        );
    }
    plan.add_rule(
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

fn conditions(conf: &PortmapConf, f: IpFamily) -> Result<Vec<Stmt>, ConfigError> {
    let key = match f {
        IpFamily::V4 => "conditionsV4",
        IpFamily::V6 => "conditionsV6",
    };
    crate::conditions::parse(conf.conditions(f), f)
        .map_err(|source| ConfigError::Condition { key, source })
}

fn add_op(f: IpFamily, e: &Entry, comment: &str) -> NftOp {
    let spec = map_spec(e.map, f);
    NftOp::AddElements {
        family: family(f),
        table: TABLE.into(),
        set: spec.name,
        key: spec.key,
        data: spec.data,
        elements: vec![Element {
            key: e.key.clone(),
            value: Some(ElemValue::Values(e.value.clone())),
            comment: Some(comment.to_owned()),
        }],
    }
}

fn delete_op(f: IpFamily, map: &str, key: &[Value]) -> NftOp {
    let spec = map_spec(map, f);
    NftOp::DeleteElements {
        family: family(f),
        table: TABLE.into(),
        set: spec.name,
        key: spec.key,
        keys: vec![key.to_vec()],
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

/// The fast ADD transaction for one container address, when the skeleton is in place: it
/// asserts the skeleton's stamp (re-adding the identical stamp element is a no-op; a missing
/// table or map fails with `ENOENT`, another stamp with `EEXIST`), deletes the `replace`
/// entries' keys (this attachment's own, written with another address) and adds the
/// container's elements; with `snat` in IPv4 it also asserts the
/// [`localnet`](crate::localnet) guard's stamp the same way. Without `replace` it only adds
/// elements: the kernel commits it in constant time.
pub fn add_plan(
    conf: &PortmapConf,
    att: &Attachment,
    container: IpNet,
    replace: &[Entry],
) -> Result<NftPlan, ConfigError> {
    let f = IpFamily::of(&container.addr());
    let stamp = skeleton_stamp(conf, f)?;
    let mut plan = NftPlan::new();
    plan.add_elements(family(f), TABLE, &stamp_map(), vec![stamp_element(&stamp)]);
    if needs_guard(conf, f) {
        crate::localnet::nft_assert(&mut plan);
    }
    container_part(&mut plan, conf, att, container, replace);
    Ok(plan)
}

/// Whether ADD in family `f` enables `route_localnet` and so needs the
/// [`localnet`](crate::localnet) guard: IPv4 with `snat`.
pub fn needs_guard(conf: &PortmapConf, f: IpFamily) -> bool {
    conf.snat && f == IpFamily::V4
}

/// The slow ADD transaction when the skeleton is in place: the
/// [`localnet`](crate::localnet) guard (re)written when needed, then [`add_plan`].
pub fn add_plan_with_guard(
    conf: &PortmapConf,
    att: &Attachment,
    container: IpNet,
    replace: &[Entry],
) -> Result<NftPlan, ConfigError> {
    let f = IpFamily::of(&container.addr());
    let mut plan = NftPlan::new();
    if needs_guard(conf, f) {
        crate::localnet::nft_write(&mut plan);
    }
    plan.ops
        .extend(add_plan(conf, att, container, replace)?.ops);
    Ok(plan)
}

/// The ADD transaction that (re)writes the skeleton first (a new node, or another
/// configuration's conditions or mark) and the [`localnet`](crate::localnet) guard when
/// needed, then adds the container's elements as [`add_plan`] does.
pub fn add_plan_with_skeleton(
    conf: &PortmapConf,
    att: &Attachment,
    container: IpNet,
    replace: &[Entry],
) -> Result<NftPlan, ConfigError> {
    let f = IpFamily::of(&container.addr());
    let conds = conditions(conf, f)?;
    let mut plan = NftPlan::new();
    skeleton(&mut plan, f, &conds, conf.mark());
    if needs_guard(conf, f) {
        crate::localnet::nft_write(&mut plan);
    }
    container_part(&mut plan, conf, att, container, replace);
    Ok(plan)
}

fn container_part(
    plan: &mut NftPlan,
    conf: &PortmapConf,
    att: &Attachment,
    container: IpNet,
    replace: &[Entry],
) {
    let f = IpFamily::of(&container.addr());
    let comment = owner(&conf.name, att).comment();
    for e in replace {
        push_grouped(plan, delete_op(f, e.map, &e.key));
    }
    for e in entries(conf, container) {
        push_grouped(plan, add_op(f, &e, &comment));
    }
}

fn value_bytes(f: IpFamily, value: &[Value]) -> Option<Vec<u8>> {
    encode_key(&[addr_type(f), DataType::InetService], value).ok()
}

/// The listed element of `e`'s key, if any.
fn listed<'a>(
    listing: &'a TableListing,
    f: IpFamily,
    e: &Entry,
) -> Option<&'a cni_linux::firewall::nftables::ElementListing> {
    let spec = map_spec(e.map, f);
    listing.set(e.map)?.find(&spec.key, &e.key)
}

/// The entries of `wanted` whose key exists in the listed table with another value (held by
/// another container).
pub fn conflicts(listing: &TableListing, f: IpFamily, wanted: &[Entry]) -> Vec<Entry> {
    wanted
        .iter()
        .filter(|e| {
            listed(listing, f, e).is_some_and(|l| {
                l.data.as_ref() != value_bytes(f, &e.value).map(ElementData::Value).as_ref()
            })
        })
        .cloned()
        .collect()
}

/// Who holds the key of an entry that [`conflicts`] reported, as ADD sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The entry as this attachment wants it.
    pub entry: Entry,
    /// The listed element's comment (`None`: an element without comment).
    pub owner: Option<String>,
    /// Where the key leads now (`<address> . <port>`), when decodable.
    pub target: Option<String>,
}

/// The holders of the keys of `wanted` that exist in the listed table with another value.
pub fn holders(listing: &TableListing, f: IpFamily, wanted: &[Entry]) -> Vec<Holder> {
    conflicts(listing, f, wanted)
        .into_iter()
        .map(|entry| {
            let l = listed(listing, f, &entry);
            Holder {
                owner: l.and_then(|l| l.comment.clone()),
                target: l.and_then(|l| match &l.data {
                    Some(ElementData::Value(b)) => decode_value(f, b),
                    _ => None,
                }),
                entry,
            }
        })
        .collect()
}

/// Whether `comment` is the owner comment of this attachment (current or earlier format).
pub fn is_owner(comment: &str, network: &str, att: &Attachment) -> bool {
    let who = owner(network, att);
    comment == who.comment() || legacy_comment(&who).as_deref() == Some(comment)
}

/// The network tags (first word of the comment) of the elements in our maps whose network
/// is not `network`, without duplicates, sorted.
pub fn other_networks(listing: &TableListing, network: &str) -> Vec<String> {
    let ours = network_tag(network);
    let mut out = BTreeSet::new();
    for map in MAPS {
        let Some(set) = listing.set(map) else {
            continue;
        };
        for e in &set.elements {
            if let Some(tag) = e.comment.as_deref().and_then(|c| c.split(' ').next())
                && tag != ours
            {
                out.insert(tag.to_owned());
            }
        }
    }
    out.into_iter().collect()
}

/// The DEL transaction for a known container address: each element is deleted only if it
/// still holds this container's value (add-then-delete: adding a key that holds another
/// value fails with `EEXIST` and aborts everything).
pub fn del_plan(f: IpFamily, comment: &str, entries: &[Entry]) -> NftPlan {
    let mut plan = NftPlan::new();
    for e in entries {
        push_grouped(&mut plan, add_op(f, e, comment));
    }
    for e in entries {
        push_grouped(&mut plan, delete_op(f, e.map, &e.key));
    }
    plan
}

/// Decodes the listed key bytes of `map` into values.
pub fn decode_key(f: IpFamily, map: &str, bytes: &[u8]) -> Option<Vec<Value>> {
    let spec = map_spec(known_map(map)?, f);
    let mut out = Vec::new();
    let mut off = 0;
    for t in &spec.key {
        let v = match t {
            DataType::Ipv4Addr => {
                let b: [u8; 4] = bytes.get(off..off + 4)?.try_into().ok()?;
                off += 4;
                Value::Addr(IpAddr::V4(Ipv4Addr::from(b)))
            }
            DataType::Ipv6Addr => {
                let b: [u8; 16] = bytes.get(off..off + 16)?.try_into().ok()?;
                off += 16;
                Value::Addr(IpAddr::V6(Ipv6Addr::from(b)))
            }
            DataType::InetProto => {
                let p = *bytes.get(off)?;
                off += 4;
                Value::Proto(p)
            }
            DataType::InetService => {
                let b = bytes.get(off..off + 2)?;
                off += 4;
                Value::Port(u16::from_be_bytes([b[0], b[1]]))
            }
            _ => return None,
        };
        out.push(v);
    }
    (off == bytes.len()).then_some(out)
}

/// `(map, key)` of every listed element of our maps whose comment satisfies `pred`.
fn listed_keys(
    listing: &TableListing,
    f: IpFamily,
    pred: impl Fn(&str) -> bool,
) -> Vec<(&'static str, Vec<Value>)> {
    let mut out = Vec::new();
    for map in MAPS {
        let Some(set) = listing.set(map) else {
            continue;
        };
        for e in &set.elements {
            if e.comment.as_deref().is_some_and(&pred)
                && let Some(k) = decode_key(f, map, &e.key)
            {
                out.push((map, k));
            }
        }
    }
    out
}

fn delete_plan(f: IpFamily, keys: &[(&'static str, Vec<Value>)]) -> NftPlan {
    let mut plan = NftPlan::new();
    for (map, key) in keys {
        push_grouped(&mut plan, delete_op(f, map, key));
    }
    plan
}

/// The DEL transaction computed from a listing: exactly the elements whose comment is the
/// attachment's. Empty when there are none.
pub fn del_plan_listed(listing: &TableListing, f: IpFamily, comment: &str) -> NftPlan {
    delete_plan(f, &listed_keys(listing, f, |c| c == comment))
}

/// The DEL transaction computed from a listing for one attachment: the elements carrying its
/// comment, in the current format or the one earlier versions wrote
/// ([`legacy_comment`]). Empty when there are none.
pub fn del_plan_owned(
    listing: &TableListing,
    f: IpFamily,
    network: &str,
    att: &Attachment,
) -> NftPlan {
    let who = owner(network, att);
    let current = who.comment();
    let legacy = legacy_comment(&who);
    delete_plan(
        f,
        &listed_keys(listing, f, |c| c == current || legacy.as_deref() == Some(c)),
    )
}

/// The GC transaction for one family: the elements of `network` whose attachment is not in
/// `valid`.
pub fn gc_plan(
    listing: &TableListing,
    f: IpFamily,
    network: &str,
    valid: &[Attachment],
) -> NftPlan {
    let keep: BTreeSet<String> = valid
        .iter()
        .flat_map(|a| {
            let who = owner(network, a);
            std::iter::once(who.comment()).chain(legacy_comment(&who))
        })
        .collect();
    let tag = format!("{} ", network_tag(network));
    delete_plan(
        f,
        &listed_keys(listing, f, |c| c.starts_with(&tag) && !keep.contains(c)),
    )
}

/// CHECK of one container address against the listed table of its family.
pub fn check(
    listing: Option<&TableListing>,
    conf: &PortmapConf,
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
        let expected = match c {
            HOSTPORTS => 6,
            _ => 1,
        };
        if ch.rules.len() != expected {
            return Err(CheckError::RuleCount {
                chain: c.to_owned(),
                found: ch.rules.len(),
                expected,
            });
        }
    }
    for m in MAPS.iter().chain([&STAMP_MAP]) {
        if t.set(m).is_none() {
            return Err(missing("map", m));
        }
    }
    let expected = skeleton_stamp(conf, f).map_err(|e| CheckError::Skeleton {
        found: String::new(),
        expected: cni_types::error::chain_message(&e),
    })?;
    let found = listed_stamp(t).unwrap_or_default();
    if found != expected {
        return Err(CheckError::Skeleton { found, expected });
    }
    for e in entries(conf, container) {
        let state = match listed(t, f, &e) {
            None => "not mapped".to_owned(),
            Some(l) => match (&l.data, value_bytes(f, &e.value)) {
                (Some(ElementData::Value(have)), Some(want)) if *have == want => continue,
                (Some(ElementData::Value(have)), _) => match decode_value(f, have) {
                    Some(v) => format!("mapped to {v}"),
                    None => "mapped elsewhere".to_owned(),
                },
                _ => "mapped elsewhere".to_owned(),
            },
        };
        return Err(CheckError::Element {
            key: format!("{} {}", e.map, join(&e.key)),
            state,
        });
    }
    Ok(())
}

fn decode_value(f: IpFamily, b: &[u8]) -> Option<String> {
    let alen = match f {
        IpFamily::V4 => 4,
        IpFamily::V6 => 16,
    };
    let addr = match f {
        IpFamily::V4 => IpAddr::from(<[u8; 4]>::try_from(b.get(..4)?).ok()?),
        IpFamily::V6 => IpAddr::from(<[u8; 16]>::try_from(b.get(..16)?).ok()?),
    };
    let p = b.get(alen..alen + 2)?;
    Some(format!("{addr} . {}", u16::from_be_bytes([p[0], p[1]])))
}

#[cfg(test)]
mod tests;
