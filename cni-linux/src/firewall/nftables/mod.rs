//! nftables backend: nf_tables spoken over `NETLINK_NETFILTER`, no `nft` process.
//!
//! # Model
//!
//! An [`NftPlan`] is a pure list of [`NftOp`]s with a deterministic nft-like text dump
//! ([`Display`](std::fmt::Display)) for golden tests:
//!
//! ```text
//! add table inet cni_plugins_masquerade { comment "masquerading" }
//! add chain inet cni_plugins_masquerade postrouting { type nat hook postrouting priority 100; }
//! add rule inet cni_plugins_masquerade masq_checks ip saddr 10.0.0.2 ip daddr != 10.0.0.0/24 masquerade comment "h"
//! ```
//!
//! [`apply`] sends the whole plan as **one** nf_tables transaction (batch begin, one message
//! per op with `NLM_F_ACK`, batch end) in a single `sendmsg`; the kernel applies all or
//! nothing. A failure is reported against the op that caused it ([`NftError::Rejected`]).
//! "Add" ops for tables, chains, sets and elements are idempotent (`NLM_F_CREATE` without
//! `NLM_F_EXCL`): adding what exists is not an error. Rules are not deduplicated (nf_tables
//! has no such notion): read the state with [`list_table`] first and delete by handle.
//!
//! [`list_table`] reads a table back: chains, rules with their handles and comments, sets
//! and maps with their elements, so DEL/CHECK/GC can find entries by comment or key.
//!
//! Everything happens in the network namespace of the calling thread.

pub(crate) mod decode;
mod expr;
pub(crate) mod socket;
pub(crate) mod uapi;

use std::fmt;

pub use decode::{
    ChainListing, ElementData, ElementListing, RuleListing, SetListing, TableListing,
};
pub use expr::{CmpOp, CtState, Field, L4Proto, NatKind, Stmt, Value, Verdict};

use expr::quote;

/// Errors of the nftables backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NftError {
    /// A netlink socket operation failed.
    #[error("nf_tables netlink socket error")]
    Socket(#[source] std::io::Error),
    /// The plan cannot be encoded (bad name, value of the wrong type, ...).
    #[error("invalid nftables op #{index} `{op}`: {reason}")]
    Invalid {
        /// Index of the op in the plan.
        index: usize,
        /// The op, as dumped.
        op: String,
        /// What is wrong.
        reason: String,
    },
    /// The kernel refused the transaction; nothing was changed. The errno is the `source`
    /// (printed once, after the message, by a chain printer); the message names the op and
    /// carries the kernel's extended-ACK text.
    #[error("nf_tables rejected {}{}", match (.index, .op) {
        (Some(i), Some(op)) => format!("op #{i} `{op}`"),
        _ => "the transaction".to_owned(),
    }, .message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Rejected {
        /// Index of the failing op, when the kernel pointed at one.
        index: Option<usize>,
        /// The failing op, as dumped.
        op: Option<String>,
        /// Extended ack message from the kernel, if any.
        message: Option<String>,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
    /// A kernel request (list, get) failed.
    #[error("nf_tables request {request} failed")]
    Request {
        /// What was asked.
        request: String,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
    /// A kernel answer could not be decoded.
    #[error("cannot decode nf_tables message: {0}")]
    Decode(String),
    /// A kernel answer did not fit the receive buffer.
    #[error("nf_tables netlink reply truncated ({len} bytes)")]
    Truncated {
        /// The datagram's real length.
        len: usize,
    },
}

impl NftError {
    /// The errno of a kernel refusal, if this is one (e.g. `libc::ENOENT`).
    pub fn errno(&self) -> Option<i32> {
        match self {
            NftError::Rejected { source, .. } | NftError::Request { source, .. } => {
                source.raw_os_error()
            }
            _ => None,
        }
    }
}

/// nf_tables address family of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `ip` (IPv4).
    Ip,
    /// `ip6`.
    Ip6,
    /// `inet` (IPv4 and IPv6).
    Inet,
    /// `bridge`.
    Bridge,
    /// `netdev`.
    Netdev,
    /// `arp`.
    Arp,
}

impl Family {
    /// The `NFPROTO_*` number.
    pub fn nfproto(self) -> u8 {
        match self {
            Family::Inet => 1,
            Family::Ip => 2,
            Family::Arp => 3,
            Family::Netdev => 5,
            Family::Bridge => 7,
            Family::Ip6 => 10,
        }
    }

    /// `ip` for IPv4, `ip6` for IPv6.
    pub fn of(f: crate::firewall::IpFamily) -> Family {
        match f {
            crate::firewall::IpFamily::V4 => Family::Ip,
            crate::firewall::IpFamily::V6 => Family::Ip6,
        }
    }

    pub(crate) fn from_nfproto(n: u8) -> Option<Family> {
        Some(match n {
            1 => Family::Inet,
            2 => Family::Ip,
            3 => Family::Arp,
            5 => Family::Netdev,
            7 => Family::Bridge,
            10 => Family::Ip6,
            _ => return None,
        })
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Inet => "inet",
            Family::Bridge => "bridge",
            Family::Netdev => "netdev",
            Family::Arp => "arp",
        })
    }
}

/// Type of a base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainType {
    /// `filter`.
    Filter,
    /// `nat`.
    Nat,
    /// `route`.
    Route,
}

impl ChainType {
    fn name(self) -> &'static str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
            ChainType::Route => "route",
        }
    }
}

/// Netfilter hook of a base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// `prerouting`.
    Prerouting,
    /// `input`.
    Input,
    /// `forward`.
    Forward,
    /// `output`.
    Output,
    /// `postrouting`.
    Postrouting,
}

impl Hook {
    fn name(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
        }
    }
}

/// Standard chain priorities (nft's named priorities for ip/ip6/inet).
pub mod priority {
    /// `raw`.
    pub const RAW: i32 = -300;
    /// `mangle`.
    pub const MANGLE: i32 = -150;
    /// `dstnat`.
    pub const DSTNAT: i32 = -100;
    /// `filter`.
    pub const FILTER: i32 = 0;
    /// `srcnat`.
    pub const SRCNAT: i32 = 100;
    /// `dstnat` in the bridge family.
    pub const BRIDGE_DSTNAT: i32 = -300;
    /// `filter` in the bridge family.
    pub const BRIDGE_FILTER: i32 = -200;
}

/// Base chain policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// `accept`.
    Accept,
    /// `drop`.
    Drop,
}

/// What makes a chain a base chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaseChain {
    /// Chain type.
    pub kind: ChainType,
    /// Hook.
    pub hook: Hook,
    /// Priority (see [`priority`]).
    pub priority: i32,
    /// Policy; `None` leaves the kernel default (accept).
    pub policy: Option<Policy>,
}

/// A chain to add.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChainSpec {
    /// Name.
    pub name: String,
    /// `Some` for a base chain.
    pub base: Option<BaseChain>,
    /// Comment (up to 128 bytes).
    pub comment: Option<String>,
}

impl ChainSpec {
    /// A regular chain.
    pub fn regular(name: impl Into<String>) -> ChainSpec {
        ChainSpec {
            name: name.into(),
            base: None,
            comment: None,
        }
    }

    /// A base chain with the default policy.
    pub fn base(name: impl Into<String>, kind: ChainType, hook: Hook, priority: i32) -> ChainSpec {
        ChainSpec {
            name: name.into(),
            base: Some(BaseChain {
                kind,
                hook,
                priority,
                policy: None,
            }),
            comment: None,
        }
    }

    /// Sets the comment.
    pub fn with_comment(mut self, comment: impl Into<String>) -> ChainSpec {
        self.comment = Some(comment.into());
        self
    }
}

/// Data type of set keys and map values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataType {
    /// `ipv4_addr`.
    Ipv4Addr,
    /// `ipv6_addr`.
    Ipv6Addr,
    /// `ether_addr`.
    EtherAddr,
    /// `inet_proto`.
    InetProto,
    /// `inet_service` (a port).
    InetService,
    /// `ifname`.
    Ifname,
}

impl DataType {
    /// nft's datatype number, used for `NFTA_SET_KEY_TYPE` (concatenations shift by 6 bits).
    fn id(self) -> u32 {
        match self {
            DataType::Ipv4Addr => 7,
            DataType::Ipv6Addr => 8,
            DataType::EtherAddr => 9,
            DataType::InetProto => 12,
            DataType::InetService => 13,
            DataType::Ifname => 41,
        }
    }

    fn len(self) -> usize {
        match self {
            DataType::Ipv4Addr => 4,
            DataType::Ipv6Addr => 16,
            DataType::EtherAddr => 6,
            DataType::InetProto => 1,
            DataType::InetService => 2,
            DataType::Ifname => 16,
        }
    }

    fn encode(self, v: &Value) -> Result<Vec<u8>, expr::EncodeError> {
        expr::encode_typed(self, v)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataType::Ipv4Addr => "ipv4_addr",
            DataType::Ipv6Addr => "ipv6_addr",
            DataType::EtherAddr => "ether_addr",
            DataType::InetProto => "inet_proto",
            DataType::InetService => "inet_service",
            DataType::Ifname => "ifname",
        })
    }
}

fn type_id(types: &[DataType]) -> u32 {
    types.iter().fold(0u32, |acc, t| (acc << 6) | t.id())
}

fn type_len(types: &[DataType]) -> usize {
    if types.len() == 1 {
        types[0].len()
    } else {
        types.iter().map(|t| t.len().div_ceil(4) * 4).sum()
    }
}

fn types_text(types: &[DataType]) -> String {
    types
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" . ")
}

/// What a map stores.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MapData {
    /// A verdict map (`vmap`).
    Verdict,
    /// Values of these (concatenated) types, e.g. `ipv4_addr . inet_service` for dnat maps.
    Values(Vec<DataType>),
}

/// A set or map to add.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetSpec {
    /// Name.
    pub name: String,
    /// Key type; more than one is a concatenation (`inet_proto . inet_service`).
    pub key: Vec<DataType>,
    /// `None` for a set, `Some` for a map.
    pub data: Option<MapData>,
    /// Comment (up to 128 bytes).
    pub comment: Option<String>,
}

impl SetSpec {
    /// A set of `key`.
    pub fn set(name: impl Into<String>, key: Vec<DataType>) -> SetSpec {
        SetSpec {
            name: name.into(),
            key,
            data: None,
            comment: None,
        }
    }

    /// A map from `key` to `data`.
    pub fn map(name: impl Into<String>, key: Vec<DataType>, data: MapData) -> SetSpec {
        SetSpec {
            name: name.into(),
            key,
            data: Some(data),
            comment: None,
        }
    }
}

/// The value of a map element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ElemValue {
    /// For verdict maps.
    Verdict(Verdict),
    /// For value maps, in the map's data types.
    Values(Vec<Value>),
}

/// A set or map element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Element {
    /// Key values, in the set's key types.
    pub key: Vec<Value>,
    /// Value, for maps.
    pub value: Option<ElemValue>,
    /// Comment (up to 128 bytes).
    pub comment: Option<String>,
}

/// A rule to add.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleSpec {
    /// Chain name.
    pub chain: String,
    /// Statements.
    pub stmts: Vec<Stmt>,
    /// Comment (up to 128 bytes), stored as nft does (`comment "..."` in `nft list`).
    pub comment: Option<String>,
}

impl RuleSpec {
    /// A rule without comment.
    pub fn new(chain: impl Into<String>, stmts: Vec<Stmt>) -> RuleSpec {
        RuleSpec {
            chain: chain.into(),
            stmts,
            comment: None,
        }
    }

    /// Sets the comment.
    pub fn with_comment(mut self, comment: impl Into<String>) -> RuleSpec {
        self.comment = Some(comment.into());
        self
    }
}

/// One operation of an [`NftPlan`]. Every op names its table by family and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NftOp {
    /// Create the table if missing (`add table`).
    AddTable {
        /// Family.
        family: Family,
        /// Name.
        name: String,
        /// Comment (applied when the table is created).
        comment: Option<String>,
    },
    /// Delete the table and everything in it; fails if missing.
    DeleteTable {
        /// Family.
        family: Family,
        /// Name.
        name: String,
    },
    /// Delete the table if it exists (encoded as add + delete, which works on any kernel).
    DestroyTable {
        /// Family.
        family: Family,
        /// Name.
        name: String,
    },
    /// Create the chain if missing (`add chain`).
    AddChain {
        /// Family.
        family: Family,
        /// Table.
        table: String,
        /// Chain.
        chain: ChainSpec,
    },
    /// Remove all rules of a chain; fails if the chain is missing.
    FlushChain {
        /// Family.
        family: Family,
        /// Table.
        table: String,
        /// Chain name.
        chain: String,
    },
    /// Delete a chain and its rules; fails if missing or still jumped to.
    DeleteChain {
        /// Family.
        family: Family,
        /// Table.
        table: String,
        /// Chain name.
        chain: String,
    },
    /// Delete a chain if it exists (add + delete).
    DestroyChain {
        /// Family.
        family: Family,
        /// Table.
        table: String,
        /// Chain name.
        chain: String,
    },
    /// Create the set or map if missing.
    AddSet {
        /// Family.
        family: Family,
        /// Table.
        table: String,
        /// Set.
        set: SetSpec,
    },
    /// Create the set or map; fails with `EEXIST` if one of that name exists (`create set`).
    /// Lets a transaction that also adds the rules using the set run at most once, however
    /// many processes race to run it.
    CreateSet {
        /// Family.
        family: Family,
        /// Table.
        table: String,
        /// Set.
        set: SetSpec,
    },
    /// Remove all elements of a set; fails if missing.
    FlushSet {
        /// Family.
        family: Family,
        /// Table.
        table: String,
        /// Set name.
        set: String,
    },
    /// Delete a set; fails if missing or in use.
    DeleteSet {
        /// Family.
        family: Family,
        /// Table.
        table: String,
        /// Set name.
        set: String,
    },
    /// Add elements (existing identical elements are fine; a map key with another value is
    /// an error).
    AddElements {
        /// Family.
        family: Family,
        /// Table.
        table: String,
        /// Set name.
        set: String,
        /// Key (and data) types of the set, needed to encode the elements.
        key: Vec<DataType>,
        /// Map data type, `None` for sets.
        data: Option<MapData>,
        /// Elements.
        elements: Vec<Element>,
    },
    /// Delete elements by key; fails if one is missing.
    DeleteElements {
        /// Family.
        family: Family,
        /// Table.
        table: String,
        /// Set name.
        set: String,
        /// Key types of the set.
        key: Vec<DataType>,
        /// Keys to delete.
        keys: Vec<Vec<Value>>,
    },
    /// Append a rule at the end of its chain (`add rule`).
    AddRule {
        /// Family.
        family: Family,
        /// Table.
        table: String,
        /// Rule.
        rule: RuleSpec,
    },
    /// Insert a rule at the top of its chain (`insert rule`).
    InsertRule {
        /// Family.
        family: Family,
        /// Table.
        table: String,
        /// Rule.
        rule: RuleSpec,
    },
    /// Delete a rule by handle (from [`list_table`]); fails if missing.
    DeleteRule {
        /// Family.
        family: Family,
        /// Table.
        table: String,
        /// Chain name.
        chain: String,
        /// Rule handle.
        handle: u64,
    },
}

/// An ordered list of operations applied as one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct NftPlan {
    /// The operations, in order.
    pub ops: Vec<NftOp>,
}

impl NftPlan {
    /// An empty plan.
    pub fn new() -> NftPlan {
        NftPlan::default()
    }

    /// Whether the plan does nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Appends an op.
    pub fn push(&mut self, op: NftOp) -> &mut Self {
        self.ops.push(op);
        self
    }

    /// [`NftOp::AddTable`].
    pub fn add_table(&mut self, family: Family, name: &str, comment: Option<&str>) -> &mut Self {
        self.push(NftOp::AddTable {
            family,
            name: name.to_owned(),
            comment: comment.map(str::to_owned),
        })
    }

    /// [`NftOp::AddChain`].
    pub fn add_chain(&mut self, family: Family, table: &str, chain: ChainSpec) -> &mut Self {
        self.push(NftOp::AddChain {
            family,
            table: table.to_owned(),
            chain,
        })
    }

    /// [`NftOp::FlushChain`].
    pub fn flush_chain(&mut self, family: Family, table: &str, chain: &str) -> &mut Self {
        self.push(NftOp::FlushChain {
            family,
            table: table.to_owned(),
            chain: chain.to_owned(),
        })
    }

    /// [`NftOp::AddSet`].
    pub fn add_set(&mut self, family: Family, table: &str, set: SetSpec) -> &mut Self {
        self.push(NftOp::AddSet {
            family,
            table: table.to_owned(),
            set,
        })
    }

    /// [`NftOp::CreateSet`].
    pub fn create_set(&mut self, family: Family, table: &str, set: SetSpec) -> &mut Self {
        self.push(NftOp::CreateSet {
            family,
            table: table.to_owned(),
            set,
        })
    }

    /// [`NftOp::AddElements`] for `set` (whose key/data types are given by `spec`).
    pub fn add_elements(
        &mut self,
        family: Family,
        table: &str,
        spec: &SetSpec,
        elements: Vec<Element>,
    ) -> &mut Self {
        self.push(NftOp::AddElements {
            family,
            table: table.to_owned(),
            set: spec.name.clone(),
            key: spec.key.clone(),
            data: spec.data.clone(),
            elements,
        })
    }

    /// [`NftOp::DeleteElements`].
    pub fn delete_elements(
        &mut self,
        family: Family,
        table: &str,
        spec: &SetSpec,
        keys: Vec<Vec<Value>>,
    ) -> &mut Self {
        self.push(NftOp::DeleteElements {
            family,
            table: table.to_owned(),
            set: spec.name.clone(),
            key: spec.key.clone(),
            keys,
        })
    }

    /// [`NftOp::AddRule`].
    pub fn add_rule(&mut self, family: Family, table: &str, rule: RuleSpec) -> &mut Self {
        self.push(NftOp::AddRule {
            family,
            table: table.to_owned(),
            rule,
        })
    }

    /// [`NftOp::InsertRule`].
    pub fn insert_rule(&mut self, family: Family, table: &str, rule: RuleSpec) -> &mut Self {
        self.push(NftOp::InsertRule {
            family,
            table: table.to_owned(),
            rule,
        })
    }

    /// [`NftOp::DeleteRule`].
    pub fn delete_rule(
        &mut self,
        family: Family,
        table: &str,
        chain: &str,
        handle: u64,
    ) -> &mut Self {
        self.push(NftOp::DeleteRule {
            family,
            table: table.to_owned(),
            chain: chain.to_owned(),
            handle,
        })
    }
}

fn comment_suffix(c: &Option<String>) -> String {
    c.as_ref()
        .map(|c| format!(" comment {}", quote(c)))
        .unwrap_or_default()
}

fn element_text(e: &Element) -> String {
    let key = e
        .key
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" . ");
    let val = match &e.value {
        None => String::new(),
        Some(ElemValue::Verdict(v)) => format!(" : {v}"),
        Some(ElemValue::Values(vs)) => format!(
            " : {}",
            vs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" . ")
        ),
    };
    format!("{key}{val}{}", comment_suffix(&e.comment))
}

/// `add chain <family> <table> <name> [{ type … hook … priority …; policy …; comment …; }]`.
fn write_chain(
    f: &mut fmt::Formatter<'_>,
    family: Family,
    table: &str,
    chain: &ChainSpec,
) -> fmt::Result {
    write!(f, "add chain {family} {table} {}", chain.name)?;
    let mut inner = Vec::new();
    if let Some(b) = &chain.base {
        inner.push(format!(
            "type {} hook {} priority {};",
            b.kind.name(),
            b.hook.name(),
            b.priority
        ));
        if let Some(p) = b.policy {
            inner.push(format!(
                "policy {};",
                match p {
                    Policy::Accept => "accept",
                    Policy::Drop => "drop",
                }
            ));
        }
    }
    if let Some(c) = &chain.comment {
        inner.push(format!("comment {};", quote(c)));
    }
    if !inner.is_empty() {
        write!(f, " {{ {} }}", inner.join(" "))?;
    }
    Ok(())
}

/// `<verb> set|map <family> <table> <name> { type …[ : …]; [comment …;] }`.
fn write_set(
    f: &mut fmt::Formatter<'_>,
    verb: &str,
    family: Family,
    table: &str,
    set: &SetSpec,
) -> fmt::Result {
    let kind = if set.data.is_some() { "map" } else { "set" };
    let data = match &set.data {
        None => String::new(),
        Some(MapData::Verdict) => " : verdict".to_owned(),
        Some(MapData::Values(t)) => format!(" : {}", types_text(t)),
    };
    write!(
        f,
        "{verb} {kind} {family} {table} {} {{ type {}{data};{} }}",
        set.name,
        types_text(&set.key),
        set.comment
            .as_ref()
            .map(|c| format!(" comment {};", quote(c)))
            .unwrap_or_default()
    )
}

/// A key as nft prints it: values joined with ` . `.
fn key_text(key: &[Value]) -> String {
    key.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" . ")
}

impl fmt::Display for NftOp {
    /// One line in nft-like syntax (stable, not necessarily parseable by `nft`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NftOp::AddTable {
                family,
                name,
                comment,
            } => match comment {
                Some(c) => write!(f, "add table {family} {name} {{ comment {} }}", quote(c)),
                None => write!(f, "add table {family} {name}"),
            },
            NftOp::DeleteTable { family, name } => write!(f, "delete table {family} {name}"),
            NftOp::DestroyTable { family, name } => write!(f, "destroy table {family} {name}"),
            NftOp::AddChain {
                family,
                table,
                chain,
            } => write_chain(f, *family, table, chain),
            NftOp::FlushChain {
                family,
                table,
                chain,
            } => write!(f, "flush chain {family} {table} {chain}"),
            NftOp::DeleteChain {
                family,
                table,
                chain,
            } => write!(f, "delete chain {family} {table} {chain}"),
            NftOp::DestroyChain {
                family,
                table,
                chain,
            } => write!(f, "destroy chain {family} {table} {chain}"),
            NftOp::AddSet { family, table, set } => write_set(f, "add", *family, table, set),
            NftOp::CreateSet { family, table, set } => write_set(f, "create", *family, table, set),
            NftOp::FlushSet { family, table, set } => write!(f, "flush set {family} {table} {set}"),
            NftOp::DeleteSet { family, table, set } => {
                write!(f, "delete set {family} {table} {set}")
            }
            NftOp::AddElements {
                family,
                table,
                set,
                elements,
                ..
            } => write!(
                f,
                "add element {family} {table} {set} {{ {} }}",
                elements
                    .iter()
                    .map(element_text)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            NftOp::DeleteElements {
                family,
                table,
                set,
                keys,
                ..
            } => write!(
                f,
                "delete element {family} {table} {set} {{ {} }}",
                keys.iter()
                    .map(|k| key_text(k))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            NftOp::AddRule {
                family,
                table,
                rule,
            } => write_rule(f, "add", *family, table, rule),
            NftOp::InsertRule {
                family,
                table,
                rule,
            } => write_rule(f, "insert", *family, table, rule),
            NftOp::DeleteRule {
                family,
                table,
                chain,
                handle,
            } => write!(f, "delete rule {family} {table} {chain} handle {handle}"),
        }
    }
}

fn write_rule(
    f: &mut fmt::Formatter<'_>,
    verb: &str,
    family: Family,
    table: &str,
    rule: &RuleSpec,
) -> fmt::Result {
    write!(f, "{verb} rule {family} {table} {}", rule.chain)?;
    for s in &rule.stmts {
        write!(f, " {}", expr::stmt_text(s, family))?;
    }
    f.write_str(&comment_suffix(&rule.comment))
}

impl fmt::Display for NftPlan {
    /// One op per line, in order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for op in &self.ops {
            writeln!(f, "{op}")?;
        }
        Ok(())
    }
}

/// Maximum comment length accepted by `nft` (`NFTNL_UDATA_COMMENT_MAXLEN`).
pub const MAX_COMMENT_LEN: usize = 128;

/// Applies `plan` as one nf_tables transaction in the calling thread's network namespace.
/// An empty plan does nothing (no socket is opened).
pub fn apply(plan: &NftPlan) -> Result<(), NftError> {
    if plan.is_empty() {
        return Ok(());
    }
    let msgs = socket::encode_plan(plan)?;
    let mut sock = socket::NfSocket::open()?;
    sock.transact(plan, msgs)
}

/// Encodes `plan` into the exact bytes [`apply`] would send (batch begin, messages, batch
/// end), for tests and debugging. No kernel access.
pub fn encode(plan: &NftPlan) -> Result<Vec<u8>, NftError> {
    let msgs = socket::encode_plan(plan)?;
    Ok(socket::batch_bytes(&msgs, 1))
}

/// Reads one table: chains, rules (handles, comments), sets and maps with their elements.
/// `Ok(None)` when the table does not exist.
pub fn list_table(family: Family, name: &str) -> Result<Option<TableListing>, NftError> {
    let mut sock = socket::NfSocket::open()?;
    decode::list_table(&mut sock, family, name)
}

/// Lists the names of all tables of all families.
pub fn list_tables() -> Result<Vec<(Family, String)>, NftError> {
    let mut sock = socket::NfSocket::open()?;
    decode::list_tables(&mut sock)
}

/// The current ruleset generation id (`NFT_MSG_GETGEN`). Cheap: one round trip; used to
/// check that nf_tables is usable.
pub fn generation() -> Result<u32, NftError> {
    let mut sock = socket::NfSocket::open()?;
    decode::generation(&mut sock)
}

/// Reads one element of a set or map by its key (`NFT_MSG_GETSETELEM`, one round trip, no
/// dump, so its cost does not depend on the size of the set). `Ok(None)` when the table, the
/// set or the element does not exist.
pub fn get_element(
    family: Family,
    table: &str,
    set: &str,
    key: &[DataType],
    values: &[Value],
) -> Result<Option<ElementListing>, NftError> {
    let key = encode_key(key, values)?;
    let mut sock = socket::NfSocket::open()?;
    decode::get_element(&mut sock, family, table, set, key)
}

/// Whether table `name` exists (`NFT_MSG_GETTABLE`, one round trip, nothing listed). A
/// teardown that asks first sends no batch to a table that is not there: a refused batch
/// costs the kernel an RCU grace period (milliseconds) before it answers.
pub fn table_exists(family: Family, name: &str) -> Result<bool, NftError> {
    let mut sock = socket::NfSocket::open()?;
    decode::table_exists(&mut sock, family, name)
}

/// Whether chain `chain` of table `table` exists (`NFT_MSG_GETCHAIN`, one round trip, rules
/// are not read). `Ok(false)` when the table does not exist either.
pub fn chain_exists(family: Family, table: &str, chain: &str) -> Result<bool, NftError> {
    let mut sock = socket::NfSocket::open()?;
    decode::chain_exists(&mut sock, family, table, chain)
}

/// Encodes set element key values as the kernel stores them (what
/// [`ElementListing::key`] holds), to find an element of a listed set.
pub fn encode_key(types: &[DataType], values: &[Value]) -> Result<Vec<u8>, NftError> {
    expr::key_bytes(types, values).map_err(|e| NftError::Invalid {
        index: 0,
        op: "encode key".to_owned(),
        reason: e.0,
    })
}

#[cfg(test)]
mod tests;
