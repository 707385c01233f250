//! Rule statements: a small, typed vocabulary of nft statements, their nft-like text, and
//! their encoding into nf_tables expressions.
//!
//! Each [`Stmt`] expands to the register-level expressions `nft` itself generates for the same
//! statement (including the implicit dependencies such as `meta l4proto tcp` before
//! `tcp dport`, or `meta nfproto ipv4` before `ip saddr` in an `inet` table), so that
//! `nft list ruleset` shows the rule the way it was written.

use std::fmt;
use std::net::IpAddr;

use netlink_packet_core::DefaultNla;
use netlink_packet_netfilter::nftables::{
    Bitwise, Cmp, DataAttribute, ExpressionAttribute, Expressions, Immediate, ListAttribute,
    Lookup, Meta, MetaKey, Operator, Payload, Register, VerdictAttribute,
};

use super::Family;
use crate::firewall::IpFamily;

/// A transport protocol usable with port matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L4Proto {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// SCTP (132).
    Sctp,
}

impl L4Proto {
    /// IANA protocol number.
    pub fn number(self) -> u8 {
        match self {
            L4Proto::Tcp => 6,
            L4Proto::Udp => 17,
            L4Proto::Sctp => 132,
        }
    }

    /// Parses `tcp`, `udp`, `sctp` (any case).
    pub fn parse(s: &str) -> Option<L4Proto> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Some(L4Proto::Tcp),
            "udp" => Some(L4Proto::Udp),
            "sctp" => Some(L4Proto::Sctp),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            L4Proto::Tcp => "tcp",
            L4Proto::Udp => "udp",
            L4Proto::Sctp => "sctp",
        }
    }
}

/// Something a rule can load from a packet (the left-hand side of a match).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// `ip saddr`.
    IpSaddr,
    /// `ip daddr`.
    IpDaddr,
    /// `ip6 saddr`.
    Ip6Saddr,
    /// `ip6 daddr`.
    Ip6Daddr,
    /// `meta l4proto` (compare with [`Value::Proto`]).
    L4Proto,
    /// `meta nfproto` (compare with [`Value::NfProto`]).
    NfProto,
    /// `<proto> dport`, with the `meta l4proto <proto>` dependency.
    Dport(L4Proto),
    /// `<proto> sport`, with the `meta l4proto <proto>` dependency.
    Sport(L4Proto),
    /// `th dport` (transport header, any protocol with ports).
    ThDport,
    /// `th sport`.
    ThSport,
    /// `iifname`.
    Iifname,
    /// `oifname`.
    Oifname,
    /// `meta mark`.
    Mark,
    /// `ether saddr` (bridge and netdev families).
    EtherSaddr,
    /// `ether daddr` (bridge and netdev families).
    EtherDaddr,
}

/// A constant to compare with or to store in a set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Value {
    /// An IPv4 or IPv6 address.
    Addr(IpAddr),
    /// A network (`10.0.0.0/24`): only for `==`/`!=` matches on address fields.
    Net(ipnet::IpNet),
    /// A protocol number, shown by name when known.
    Proto(u8),
    /// A [`Field::NfProto`] value.
    NfProto(IpFamily),
    /// A port.
    Port(u16),
    /// An interface name; a trailing `*` matches a prefix.
    Ifname(String),
    /// A packet mark.
    Mark(u32),
    /// A MAC address.
    Ether([u8; 6]),
}

impl Value {
    /// `Value::Proto` for a transport protocol.
    pub fn l4(p: L4Proto) -> Value {
        Value::Proto(p.number())
    }
}

/// Comparison operator of [`Stmt::Cmp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `==` (printed without operator, like nft).
    Eq,
    /// `!=`.
    Neq,
}

/// A verdict.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// `accept`.
    Accept,
    /// `drop`.
    Drop,
    /// `continue`.
    Continue,
    /// `return`.
    Return,
    /// `jump CHAIN`.
    Jump(String),
    /// `goto CHAIN`.
    Goto(String),
}

/// `dnat` or `snat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatKind {
    /// Destination NAT.
    Dnat,
    /// Source NAT.
    Snat,
}

/// Connection tracking states for [`Stmt::CtState`] (bit values of the kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CtState {
    /// `invalid`.
    Invalid,
    /// `established`.
    Established,
    /// `related`.
    Related,
    /// `new`.
    New,
    /// `untracked`.
    Untracked,
}

impl CtState {
    fn bit(self) -> u32 {
        match self {
            CtState::Invalid => 1,
            CtState::Established => 2,
            CtState::Related => 4,
            CtState::New => 8,
            CtState::Untracked => 64,
        }
    }

    fn name(self) -> &'static str {
        match self {
            CtState::Invalid => "invalid",
            CtState::Established => "established",
            CtState::Related => "related",
            CtState::New => "new",
            CtState::Untracked => "untracked",
        }
    }
}

/// One statement of a rule. A rule is a sequence of statements evaluated left to right.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stmt {
    /// `field [!=] value`, e.g. `ip daddr != 10.0.0.0/24`, `tcp dport 8080`,
    /// `iifname "veth0"`, `ether saddr 0a:58:0a:00:00:02`.
    Cmp {
        /// Left side.
        field: Field,
        /// Operator.
        op: CmpOp,
        /// Right side.
        value: Value,
    },
    /// `f1 . f2 ... [!=] @set`: set membership of the (concatenated) fields.
    InSet {
        /// Fields, concatenated in order; must match the set's key types.
        fields: Vec<Field>,
        /// Set name.
        set: String,
        /// `!=` when true.
        negate: bool,
    },
    /// `fib daddr type [!=] local`.
    FibDaddrLocal {
        /// `!=` when true.
        negate: bool,
    },
    /// `ct state s1,s2`: true when the connection is in any of the states.
    CtState(Vec<CtState>),
    /// `ct status dnat`: the connection's destination was NATed (conntrack's `DNAT`
    /// pseudo-state of `-m conntrack --ctstate DNAT`).
    CtStatusDnat,
    /// `meta mark set VALUE`.
    SetMark(u32),
    /// `counter`.
    Counter,
    /// A verdict.
    Verdict(Verdict),
    /// `f1 . f2 vmap @map`: jump to the verdict stored in a verdict map.
    VerdictMap {
        /// Key fields.
        fields: Vec<Field>,
        /// Verdict map name.
        map: String,
    },
    /// `dnat|snat [ip|ip6] to ADDR[:PORT]` (the family is printed in `inet` tables only).
    Nat {
        /// dnat or snat.
        kind: NatKind,
        /// New address.
        addr: IpAddr,
        /// New port, if any.
        port: Option<u16>,
    },
    /// `dnat|snat ip|ip6 to f1 . f2 map @map`: address (and port when `with_port`) looked up
    /// in a map whose data is `ipv4_addr [. inet_service]` (or `ipv6_addr ...`).
    NatMap {
        /// dnat or snat.
        kind: NatKind,
        /// Address family of the map data.
        family: IpFamily,
        /// Key fields.
        fields: Vec<Field>,
        /// Map name.
        map: String,
        /// Whether the map data carries a port after the address.
        with_port: bool,
    },
    /// `masquerade`.
    Masquerade,
    /// `redirect [to :PORT]`.
    Redirect {
        /// New port.
        port: Option<u16>,
    },
}

// ---------------------------------------------------------------- text

fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "ipv6-icmp".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

fn mac_text(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Quotes a string the way our dumps show it: double quotes, `"` and `\` escaped.
pub(crate) fn quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            o.push('\\');
        }
        o.push(c);
    }
    o.push('"');
    o
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::IpSaddr => f.write_str("ip saddr"),
            Field::IpDaddr => f.write_str("ip daddr"),
            Field::Ip6Saddr => f.write_str("ip6 saddr"),
            Field::Ip6Daddr => f.write_str("ip6 daddr"),
            Field::L4Proto => f.write_str("meta l4proto"),
            Field::NfProto => f.write_str("meta nfproto"),
            Field::Dport(p) => write!(f, "{} dport", p.name()),
            Field::Sport(p) => write!(f, "{} sport", p.name()),
            Field::ThDport => f.write_str("th dport"),
            Field::ThSport => f.write_str("th sport"),
            Field::Iifname => f.write_str("iifname"),
            Field::Oifname => f.write_str("oifname"),
            Field::Mark => f.write_str("meta mark"),
            Field::EtherSaddr => f.write_str("ether saddr"),
            Field::EtherDaddr => f.write_str("ether daddr"),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Addr(a) => write!(f, "{a}"),
            Value::Net(n) => write!(f, "{}/{}", n.network(), n.prefix_len()),
            Value::Proto(p) => f.write_str(&proto_name(*p)),
            Value::NfProto(IpFamily::V4) => f.write_str("ipv4"),
            Value::NfProto(IpFamily::V6) => f.write_str("ipv6"),
            Value::Port(p) => write!(f, "{p}"),
            Value::Ifname(s) => f.write_str(&quote(s)),
            Value::Mark(m) => write!(f, "{m:#010x}"),
            Value::Ether(m) => f.write_str(&mac_text(m)),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Accept => f.write_str("accept"),
            Verdict::Drop => f.write_str("drop"),
            Verdict::Continue => f.write_str("continue"),
            Verdict::Return => f.write_str("return"),
            Verdict::Jump(c) => write!(f, "jump {c}"),
            Verdict::Goto(c) => write!(f, "goto {c}"),
        }
    }
}

fn concat(fields: &[Field]) -> String {
    fields
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" . ")
}

fn nat_name(k: NatKind) -> &'static str {
    match k {
        NatKind::Dnat => "dnat",
        NatKind::Snat => "snat",
    }
}

/// Formats a statement; `table_family` decides whether nat statements print their family.
pub(crate) fn stmt_text(s: &Stmt, table_family: Family) -> String {
    match s {
        Stmt::Cmp { field, op, value } => match op {
            CmpOp::Eq => format!("{field} {value}"),
            CmpOp::Neq => format!("{field} != {value}"),
        },
        Stmt::InSet {
            fields,
            set,
            negate,
        } => {
            if *negate {
                format!("{} != @{set}", concat(fields))
            } else {
                format!("{} @{set}", concat(fields))
            }
        }
        Stmt::FibDaddrLocal { negate } => {
            if *negate {
                "fib daddr type != local".to_owned()
            } else {
                "fib daddr type local".to_owned()
            }
        }
        Stmt::CtState(states) => format!(
            "ct state {}",
            states
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(",")
        ),
        Stmt::CtStatusDnat => "ct status dnat".to_owned(),
        Stmt::SetMark(m) => format!("meta mark set {m:#010x}"),
        Stmt::Counter => "counter".to_owned(),
        Stmt::Verdict(v) => v.to_string(),
        Stmt::VerdictMap { fields, map } => format!("{} vmap @{map}", concat(fields)),
        Stmt::Nat { kind, addr, port } => {
            let fam = if table_family == Family::Inet {
                match addr {
                    IpAddr::V4(_) => " ip",
                    IpAddr::V6(_) => " ip6",
                }
            } else {
                ""
            };
            let to = match (addr, port) {
                (IpAddr::V4(a), Some(p)) => format!("{a}:{p}"),
                (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
                (a, None) => a.to_string(),
            };
            format!("{}{fam} to {to}", nat_name(*kind))
        }
        Stmt::NatMap {
            kind,
            family,
            fields,
            map,
            ..
        } => {
            let fam = match family {
                IpFamily::V4 => "ip",
                IpFamily::V6 => "ip6",
            };
            format!("{} {fam} to {} map @{map}", nat_name(*kind), concat(fields))
        }
        Stmt::Masquerade => "masquerade".to_owned(),
        Stmt::Redirect { port: None } => "redirect".to_owned(),
        Stmt::Redirect { port: Some(p) } => format!("redirect to :{p}"),
    }
}

// ---------------------------------------------------------------- encoding

pub(crate) type Expr = ListAttribute<ExpressionAttribute>;

use super::uapi::{
    ETH_P_IP, ETH_P_IPV6, IPS_DST_NAT, NF_ACCEPT, NF_DROP, NFPROTO_IPV4, NFPROTO_IPV6,
    NFT_CONTINUE, NFT_CT_STATE, NFT_CT_STATUS, NFT_FIB_RESULT_ADDRTYPE, NFT_GOTO, NFT_JUMP,
    NFT_LOOKUP_F_INV, NFT_NAT_DNAT, NFT_NAT_SNAT, NFT_PAYLOAD_LL, NFT_PAYLOAD_NETWORK,
    NFT_PAYLOAD_TRANSPORT, NFT_RETURN, NFTA_CT_DREG, NFTA_CT_KEY, NFTA_FIB_DREG, NFTA_FIB_F_DADDR,
    NFTA_FIB_FLAGS, NFTA_FIB_RESULT, NFTA_NAT_FAMILY, NFTA_NAT_REG_ADDR_MIN,
    NFTA_NAT_REG_PROTO_MIN, NFTA_NAT_TYPE, NFTA_REDIR_REG_PROTO_MIN, RTN_LOCAL,
};

/// An encoding problem: the statement does not make sense in this table family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EncodeError(pub String);

/// How a field is loaded, and what it needs first.
struct Load {
    expr: Expr,
    len: usize,
    deps: Vec<Dep>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dep {
    NfProto(u8),
    EtherType(u16),
    L4(u8),
}

fn reg_from(n: u32) -> Register {
    match n {
        0 => Register::Verdict,
        1 => Register::Reg1,
        2 => Register::Reg2,
        3 => Register::Reg3,
        4 => Register::Reg4,
        n => Register::Other(n),
    }
}

fn payload(base: u32, offset: u32, len: u32, dreg: u32) -> Expr {
    Expressions::Payload(vec![
        Payload::DestinationRegister(reg_from(dreg)),
        Payload::Base(base),
        Payload::Offset(offset),
        Payload::Len(len),
    ])
    .into()
}

fn meta_load(key: MetaKey, dreg: u32) -> Expr {
    Expressions::Meta(vec![
        Meta::DestinationRegister(reg_from(dreg)),
        Meta::Key(key),
    ])
    .into()
}

fn cmp(op: CmpOp, sreg: u32, data: Vec<u8>) -> Expr {
    Expressions::Cmp(vec![
        Cmp::SourceRegister(reg_from(sreg)),
        Cmp::Op(match op {
            CmpOp::Eq => Operator::Equal,
            CmpOp::Neq => Operator::NotEqual,
        }),
        Cmp::Data(DataAttribute::Value(data)),
    ])
    .into()
}

fn bitwise(reg: u32, mask: Vec<u8>) -> Expr {
    let len = mask.len();
    Expressions::Bitwise(vec![
        Bitwise::SourceRegister(reg_from(reg)),
        Bitwise::DestinationRegister(reg_from(reg)),
        Bitwise::Length(len as u32),
        Bitwise::Mask(DataAttribute::Value(mask)),
        Bitwise::Xor(DataAttribute::Value(vec![0; len])),
    ])
    .into()
}

fn immediate_data(dreg: u32, data: Vec<u8>) -> Expr {
    Expressions::Immediate(vec![
        Immediate::DestinationRegister(reg_from(dreg)),
        Immediate::Data(DataAttribute::Value(data)),
    ])
    .into()
}

pub(crate) fn verdict_attrs(v: &Verdict) -> Vec<VerdictAttribute> {
    use netlink_packet_netfilter::nftables::Verdict as V;
    match v {
        Verdict::Accept => vec![VerdictAttribute::Code(V::Other(NF_ACCEPT))],
        Verdict::Drop => vec![VerdictAttribute::Code(V::Other(NF_DROP))],
        Verdict::Continue => vec![VerdictAttribute::Code(V::from(NFT_CONTINUE))],
        Verdict::Return => vec![VerdictAttribute::Code(V::from(NFT_RETURN))],
        Verdict::Jump(c) => vec![
            VerdictAttribute::Code(V::from(NFT_JUMP)),
            VerdictAttribute::Chain(c.clone()),
        ],
        Verdict::Goto(c) => vec![
            VerdictAttribute::Code(V::from(NFT_GOTO)),
            VerdictAttribute::Chain(c.clone()),
        ],
    }
}

fn other(name: &str, attrs: Vec<(u16, Vec<u8>)>) -> Expr {
    Expressions::Other {
        expression_type: name.to_owned(),
        attributes: attrs
            .into_iter()
            .map(|(k, v)| DefaultNla::new(k, v))
            .collect(),
    }
    .into()
}

fn be32(v: u32) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

/// Byte length of a field's value.
pub(crate) fn field_len(f: Field) -> usize {
    match f {
        Field::IpSaddr | Field::IpDaddr => 4,
        Field::Ip6Saddr | Field::Ip6Daddr => 16,
        Field::L4Proto | Field::NfProto => 1,
        Field::Dport(_) | Field::Sport(_) | Field::ThDport | Field::ThSport => 2,
        Field::Iifname | Field::Oifname => 16,
        Field::Mark => 4,
        Field::EtherSaddr | Field::EtherDaddr => 6,
    }
}

fn ip_dep(table: Family, v6: bool) -> Result<Vec<Dep>, EncodeError> {
    match (table, v6) {
        (Family::Ip, false) | (Family::Ip6, true) => Ok(vec![]),
        (Family::Inet, false) => Ok(vec![Dep::NfProto(NFPROTO_IPV4)]),
        (Family::Inet, true) => Ok(vec![Dep::NfProto(NFPROTO_IPV6)]),
        (Family::Bridge | Family::Netdev, false) => Ok(vec![Dep::EtherType(ETH_P_IP)]),
        (Family::Bridge | Family::Netdev, true) => Ok(vec![Dep::EtherType(ETH_P_IPV6)]),
        (t, _) => Err(EncodeError(format!(
            "{} addresses cannot be matched in a {t} table",
            if v6 { "ip6" } else { "ip" }
        ))),
    }
}

fn load(field: Field, table: Family, dreg: u32) -> Result<Load, EncodeError> {
    let len = field_len(field);
    let (expr, deps) = match field {
        Field::IpSaddr => (
            payload(NFT_PAYLOAD_NETWORK, 12, 4, dreg),
            ip_dep(table, false)?,
        ),
        Field::IpDaddr => (
            payload(NFT_PAYLOAD_NETWORK, 16, 4, dreg),
            ip_dep(table, false)?,
        ),
        Field::Ip6Saddr => (
            payload(NFT_PAYLOAD_NETWORK, 8, 16, dreg),
            ip_dep(table, true)?,
        ),
        Field::Ip6Daddr => (
            payload(NFT_PAYLOAD_NETWORK, 24, 16, dreg),
            ip_dep(table, true)?,
        ),
        Field::L4Proto => (meta_load(MetaKey::L4Proto, dreg), vec![]),
        Field::NfProto => (meta_load(MetaKey::Nfproto, dreg), vec![]),
        Field::Dport(p) => (
            payload(NFT_PAYLOAD_TRANSPORT, 2, 2, dreg),
            vec![Dep::L4(p.number())],
        ),
        Field::Sport(p) => (
            payload(NFT_PAYLOAD_TRANSPORT, 0, 2, dreg),
            vec![Dep::L4(p.number())],
        ),
        Field::ThDport => (payload(NFT_PAYLOAD_TRANSPORT, 2, 2, dreg), vec![]),
        Field::ThSport => (payload(NFT_PAYLOAD_TRANSPORT, 0, 2, dreg), vec![]),
        Field::Iifname => (meta_load(MetaKey::Iifname, dreg), vec![]),
        Field::Oifname => (meta_load(MetaKey::Oifname, dreg), vec![]),
        Field::Mark => (meta_load(MetaKey::Mark, dreg), vec![]),
        Field::EtherSaddr | Field::EtherDaddr => {
            if !matches!(table, Family::Bridge | Family::Netdev) {
                return Err(EncodeError(format!(
                    "ether addresses can only be matched in bridge and netdev tables, not {table}"
                )));
            }
            let off = if field == Field::EtherSaddr { 6 } else { 0 };
            (payload(NFT_PAYLOAD_LL, off, 6, dreg), vec![])
        }
    };
    Ok(Load { expr, len, deps })
}

/// Encodes a constant for `field`. Returns the bytes and, for networks, the prefix mask.
fn value_bytes(field: Field, value: &Value) -> Result<(Vec<u8>, Option<Vec<u8>>), EncodeError> {
    let bad = || EncodeError(format!("value {value} does not fit {field}"));
    let v4 = matches!(field, Field::IpSaddr | Field::IpDaddr);
    let v6 = matches!(field, Field::Ip6Saddr | Field::Ip6Daddr);
    match value {
        Value::Addr(IpAddr::V4(a)) if v4 => Ok((a.octets().to_vec(), None)),
        Value::Addr(IpAddr::V6(a)) if v6 => Ok((a.octets().to_vec(), None)),
        Value::Net(ipnet::IpNet::V4(n)) if v4 => {
            if n.prefix_len() == 32 {
                Ok((n.addr().octets().to_vec(), None))
            } else {
                Ok((
                    n.network().octets().to_vec(),
                    Some(n.netmask().octets().to_vec()),
                ))
            }
        }
        Value::Net(ipnet::IpNet::V6(n)) if v6 => {
            if n.prefix_len() == 128 {
                Ok((n.addr().octets().to_vec(), None))
            } else {
                Ok((
                    n.network().octets().to_vec(),
                    Some(n.netmask().octets().to_vec()),
                ))
            }
        }
        Value::Proto(p) if field == Field::L4Proto => Ok((vec![*p], None)),
        Value::NfProto(fam) if field == Field::NfProto => Ok((
            vec![match fam {
                IpFamily::V4 => NFPROTO_IPV4,
                IpFamily::V6 => NFPROTO_IPV6,
            }],
            None,
        )),
        Value::Port(p)
            if matches!(
                field,
                Field::Dport(_) | Field::Sport(_) | Field::ThDport | Field::ThSport
            ) =>
        {
            Ok((p.to_be_bytes().to_vec(), None))
        }
        Value::Mark(m) if field == Field::Mark => Ok((m.to_ne_bytes().to_vec(), None)),
        Value::Ether(m) if matches!(field, Field::EtherSaddr | Field::EtherDaddr) => {
            Ok((m.to_vec(), None))
        }
        Value::Ifname(name) if matches!(field, Field::Iifname | Field::Oifname) => {
            check_ifname(name)?;
            if let Some(prefix) = name.strip_suffix('*') {
                // Prefix match: compare only the given bytes (no NUL).
                Ok((prefix.as_bytes().to_vec(), None))
            } else {
                let mut b = vec![0u8; 16];
                b[..name.len()].copy_from_slice(name.as_bytes());
                Ok((b, None))
            }
        }
        _ => Err(bad()),
    }
}

fn check_ifname(name: &str) -> Result<(), EncodeError> {
    let base = name.strip_suffix('*').unwrap_or(name);
    if name.is_empty() || base.len() > 15 || name.contains('\0') {
        return Err(EncodeError(format!("invalid interface name {name:?}")));
    }
    Ok(())
}

/// Encodes the key of a set element or a concatenated lookup: each value padded to a
/// multiple of 4 bytes (the register size), in order.
pub(crate) fn key_bytes(
    types: &[super::DataType],
    values: &[Value],
) -> Result<Vec<u8>, EncodeError> {
    if types.len() != values.len() {
        return Err(EncodeError(format!(
            "key has {} values, the set type has {}",
            values.len(),
            types.len()
        )));
    }
    let single = types.len() == 1;
    let mut out = Vec::new();
    for (t, v) in types.iter().zip(values) {
        let b = t.encode(v)?;
        out.extend_from_slice(&b);
        if !single {
            while out.len() % 4 != 0 {
                out.push(0);
            }
        }
    }
    Ok(out)
}

struct Ctx {
    table: Family,
    out: Vec<Expr>,
    deps_done: Vec<Dep>,
}

impl Ctx {
    fn deps(&mut self, deps: &[Dep]) {
        for d in deps {
            if self.deps_done.contains(d) {
                continue;
            }
            match *d {
                Dep::NfProto(p) => {
                    self.out.push(meta_load(MetaKey::Nfproto, 1));
                    self.out.push(cmp(CmpOp::Eq, 1, vec![p]));
                }
                Dep::EtherType(t) => {
                    self.out.push(payload(NFT_PAYLOAD_LL, 12, 2, 1));
                    self.out.push(cmp(CmpOp::Eq, 1, t.to_be_bytes().to_vec()));
                }
                Dep::L4(p) => {
                    self.out.push(meta_load(MetaKey::L4Proto, 1));
                    self.out.push(cmp(CmpOp::Eq, 1, vec![p]));
                }
            }
            self.deps_done.push(*d);
        }
    }

    /// Loads the fields into consecutive registers starting at register 1 (32-bit register
    /// 8), dependencies first. Returns the total key length.
    fn load_concat(&mut self, fields: &[Field]) -> Result<usize, EncodeError> {
        if fields.is_empty() {
            return Err(EncodeError("a lookup needs at least one field".into()));
        }
        let mut loads = Vec::new();
        let mut reg32 = 8u32;
        let mut total = 0;
        for (i, f) in fields.iter().enumerate() {
            // nft uses register 1 for the first field and 32-bit registers for the rest.
            let dreg = if i == 0 { 1 } else { reg32 };
            let l = load(*f, self.table, dreg)?;
            let words = l.len.div_ceil(4);
            reg32 += words as u32;
            total += if fields.len() == 1 { l.len } else { words * 4 };
            loads.push(l);
        }
        if reg32 > 24 {
            return Err(EncodeError(
                "concatenation too long for the registers".into(),
            ));
        }
        for l in &loads {
            self.deps(&l.deps);
        }
        for l in loads {
            self.out.push(l.expr);
        }
        Ok(total)
    }
}

/// Encodes the statements of one rule into nf_tables expressions.
pub(crate) fn encode_rule(stmts: &[Stmt], table: Family) -> Result<Vec<Expr>, EncodeError> {
    let mut c = Ctx {
        table,
        out: Vec::new(),
        deps_done: Vec::new(),
    };
    for s in stmts {
        encode_stmt(&mut c, s)?;
    }
    Ok(c.out)
}

fn nat_family(table: Family, fam: IpFamily) -> Result<u32, EncodeError> {
    let ok = matches!(
        (table, fam),
        (Family::Ip, IpFamily::V4) | (Family::Ip6, IpFamily::V6) | (Family::Inet, _)
    );
    if !ok {
        return Err(EncodeError(format!(
            "{fam} nat is not possible in a {table} table"
        )));
    }
    Ok(u32::from(match fam {
        IpFamily::V4 => NFPROTO_IPV4,
        IpFamily::V6 => NFPROTO_IPV6,
    }))
}

fn nat_expr(kind: NatKind, family: u32, addr_reg: u32, proto_reg: Option<u32>) -> Expr {
    let mut attrs = vec![
        (
            NFTA_NAT_TYPE,
            be32(match kind {
                NatKind::Snat => NFT_NAT_SNAT,
                NatKind::Dnat => NFT_NAT_DNAT,
            }),
        ),
        (NFTA_NAT_FAMILY, be32(family)),
        (NFTA_NAT_REG_ADDR_MIN, be32(addr_reg)),
    ];
    if let Some(r) = proto_reg {
        attrs.push((NFTA_NAT_REG_PROTO_MIN, be32(r)));
    }
    other("nat", attrs)
}

/// Appends the expressions of one statement: matches, then the statements that act.
fn encode_stmt(c: &mut Ctx, s: &Stmt) -> Result<(), EncodeError> {
    match s {
        Stmt::Cmp { field, op, value } => encode_cmp(c, *field, *op, value)?,
        Stmt::InSet {
            fields,
            set,
            negate,
        } => {
            c.load_concat(fields)?;
            let mut attrs = vec![
                Lookup::Set(set.clone()),
                Lookup::SourceRegister(Register::Reg1),
            ];
            if *negate {
                attrs.push(Lookup::Flags(NFT_LOOKUP_F_INV));
            }
            c.out.push(Expressions::Lookup(attrs).into());
        }
        Stmt::FibDaddrLocal { negate } => encode_fib_daddr_local(c, *negate),
        Stmt::CtState(states) => {
            if states.is_empty() {
                return Err(EncodeError("ct state needs at least one state".into()));
            }
            let bits = states.iter().fold(0u32, |a, s| a | s.bit());
            encode_ct_bits(c, NFT_CT_STATE, bits);
        }
        Stmt::CtStatusDnat => encode_ct_bits(c, NFT_CT_STATUS, IPS_DST_NAT),
        Stmt::SetMark(m) => {
            c.out.push(immediate_data(1, m.to_ne_bytes().to_vec()));
            c.out.push(
                Expressions::Meta(vec![
                    Meta::Key(MetaKey::Mark),
                    Meta::SourceRegister(Register::Reg1),
                ])
                .into(),
            );
        }
        Stmt::Counter => c.out.push(other("counter", vec![])),
        Stmt::Verdict(v) => {
            c.out.push(
                Expressions::Immediate(vec![
                    Immediate::DestinationRegister(Register::Verdict),
                    Immediate::Data(DataAttribute::Verdict(verdict_attrs(v))),
                ])
                .into(),
            );
        }
        Stmt::VerdictMap { fields, map } => {
            c.load_concat(fields)?;
            c.out.push(
                Expressions::Lookup(vec![
                    Lookup::Set(map.clone()),
                    Lookup::SourceRegister(Register::Reg1),
                    Lookup::DestinationRegister(Register::Verdict),
                ])
                .into(),
            );
        }
        Stmt::Nat { kind, addr, port } => encode_nat(c, *kind, *addr, *port)?,
        Stmt::NatMap {
            kind,
            family,
            fields,
            map,
            with_port,
        } => encode_nat_map(c, *kind, *family, fields, map, *with_port)?,
        Stmt::Masquerade => {
            if !matches!(c.table, Family::Ip | Family::Ip6 | Family::Inet) {
                return Err(EncodeError(format!(
                    "masquerade is not possible in a {} table",
                    c.table
                )));
            }
            c.out.push(other("masq", vec![]));
        }
        Stmt::Redirect { port } => match port {
            Some(p) => {
                c.out.push(immediate_data(1, p.to_be_bytes().to_vec()));
                c.out
                    .push(other("redir", vec![(NFTA_REDIR_REG_PROTO_MIN, be32(1))]));
            }
            None => c.out.push(other("redir", vec![])),
        },
    }
    Ok(())
}

/// `<field> [!=] <value>`: load (after its dependencies), mask a prefix, compare.
fn encode_cmp(c: &mut Ctx, field: Field, op: CmpOp, value: &Value) -> Result<(), EncodeError> {
    let l = load(field, c.table, 1)?;
    let (data, mask) = value_bytes(field, value)?;
    c.deps(&l.deps);
    c.out.push(l.expr);
    if let Some(mask) = mask {
        c.out.push(bitwise(1, mask));
    }
    c.out.push(cmp(op, 1, data));
    Ok(())
}

/// `fib daddr type [!=] local`.
fn encode_fib_daddr_local(c: &mut Ctx, negate: bool) {
    c.out.push(other(
        "fib",
        vec![
            (NFTA_FIB_DREG, be32(1)),
            (NFTA_FIB_RESULT, be32(NFT_FIB_RESULT_ADDRTYPE)),
            (NFTA_FIB_FLAGS, be32(NFTA_FIB_F_DADDR)),
        ],
    ));
    let op = if negate { CmpOp::Neq } else { CmpOp::Eq };
    c.out.push(cmp(op, 1, RTN_LOCAL.to_ne_bytes().to_vec()));
}

/// `ct <key> & <bits> != 0` (ct state, ct status).
fn encode_ct_bits(c: &mut Ctx, key: u32, bits: u32) {
    c.out.push(other(
        "ct",
        vec![(NFTA_CT_DREG, be32(1)), (NFTA_CT_KEY, be32(key))],
    ));
    c.out.push(bitwise(1, bits.to_ne_bytes().to_vec()));
    c.out.push(cmp(CmpOp::Neq, 1, vec![0; 4]));
}

/// `snat`/`dnat to <addr>[:<port>]`: the address in register 1, the port in register 2.
fn encode_nat(
    c: &mut Ctx,
    kind: NatKind,
    addr: IpAddr,
    port: Option<u16>,
) -> Result<(), EncodeError> {
    let fam = nat_family(c.table, IpFamily::of(&addr))?;
    let bytes = match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    c.out.push(immediate_data(1, bytes));
    if let Some(p) = port {
        c.out.push(immediate_data(2, p.to_be_bytes().to_vec()));
    }
    c.out.push(nat_expr(kind, fam, 1, port.map(|_| 2)));
    Ok(())
}

/// `snat`/`dnat <family> to <fields> map @<map>`: the lookup writes address (and port) into
/// register 1 on.
fn encode_nat_map(
    c: &mut Ctx,
    kind: NatKind,
    family: IpFamily,
    fields: &[Field],
    map: &str,
    with_port: bool,
) -> Result<(), EncodeError> {
    let fam = nat_family(c.table, family)?;
    c.load_concat(fields)?;
    c.out.push(
        Expressions::Lookup(vec![
            Lookup::Set(map.to_owned()),
            Lookup::SourceRegister(Register::Reg1),
            Lookup::DestinationRegister(Register::Reg1),
        ])
        .into(),
    );
    // Address in 32-bit registers 8.., port right after it.
    let port_reg = match family {
        IpFamily::V4 => 9,
        IpFamily::V6 => 12,
    };
    c.out
        .push(nat_expr(kind, fam, 1, with_port.then_some(port_reg)));
    Ok(())
}

/// Checks a value against a set data type and encodes it (without padding).
pub(crate) fn encode_typed(t: super::DataType, v: &Value) -> Result<Vec<u8>, EncodeError> {
    use super::DataType as T;
    let bad = || EncodeError(format!("value {v} is not of type {t}"));
    match (t, v) {
        (T::Ipv4Addr, Value::Addr(IpAddr::V4(a))) => Ok(a.octets().to_vec()),
        (T::Ipv6Addr, Value::Addr(IpAddr::V6(a))) => Ok(a.octets().to_vec()),
        (T::InetProto, Value::Proto(p)) => Ok(vec![*p]),
        (T::InetService, Value::Port(p)) => Ok(p.to_be_bytes().to_vec()),
        (T::EtherAddr, Value::Ether(m)) => Ok(m.to_vec()),
        (T::Ifname, Value::Ifname(n)) if !n.ends_with('*') => {
            check_ifname(n)?;
            let mut b = vec![0u8; 16];
            b[..n.len()].copy_from_slice(n.as_bytes());
            Ok(b)
        }
        _ => Err(bad()),
    }
}
