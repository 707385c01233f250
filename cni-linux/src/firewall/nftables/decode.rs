//! Reading nf_tables state back: tables, chains, rules (handles, comments, a readable
//! expression dump) and set/map elements.

use netlink_packet_netfilter::nftables::{
    ChainAttribute, ChainMessage, DataAttribute, GenMessage, ListAttribute, NfTablesMessage,
    RuleAttribute, RuleMessage, SetAttribute, SetElementAttribute, SetElementList,
    SetElementMessage, SetMessage, TableAttribute, TableMessage,
};

use super::socket::{NfSocket, RawMsg};
use super::{DataType, Family, NftError, Value, Verdict};
use crate::nl::{self, be32, be64, string};

/// A listed table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableListing {
    /// Family.
    pub family: Family,
    /// Name.
    pub name: String,
    /// Kernel handle.
    pub handle: u64,
    /// Comment.
    pub comment: Option<String>,
    /// Chains, in kernel order.
    pub chains: Vec<ChainListing>,
    /// Named sets and maps (anonymous sets are skipped).
    pub sets: Vec<SetListing>,
}

/// A listed chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainListing {
    /// Name.
    pub name: String,
    /// Kernel handle.
    pub handle: u64,
    /// `(hook number, priority)` for base chains.
    pub hook: Option<(u32, i32)>,
    /// `filter`, `nat`, `route` for base chains.
    pub chain_type: Option<String>,
    /// Policy verdict code for base chains (1 accept, 0 drop).
    pub policy: Option<u32>,
    /// Comment.
    pub comment: Option<String>,
    /// Rules, in order.
    pub rules: Vec<RuleListing>,
}

/// A listed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleListing {
    /// Kernel handle (for [`super::NftOp::DeleteRule`]).
    pub handle: u64,
    /// Comment (nft's `comment "..."`).
    pub comment: Option<String>,
    /// The expressions, one readable line each in the style of `nft --debug=netlink`
    /// (e.g. `payload load 4b @ network header + 12 => reg 1`).
    pub exprs: Vec<String>,
}

/// A listed set or map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetListing {
    /// Name.
    pub name: String,
    /// Kernel handle.
    pub handle: u64,
    /// `NFT_SET_*` flags.
    pub flags: u32,
    /// Key type id (concatenations combine ids 6 bits apart).
    pub key_type: u32,
    /// Key length in bytes.
    pub key_len: u32,
    /// Data type id for maps (`0xffffff00` for verdict maps).
    pub data_type: Option<u32>,
    /// Data length for maps.
    pub data_len: Option<u32>,
    /// Comment.
    pub comment: Option<String>,
    /// Elements.
    pub elements: Vec<ElementListing>,
}

/// A listed element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementListing {
    /// Key bytes as stored (see [`super::encode_key`]).
    pub key: Vec<u8>,
    /// Value, for maps.
    pub data: Option<ElementData>,
    /// Comment.
    pub comment: Option<String>,
}

/// The value of a listed map element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElementData {
    /// Raw value bytes (value maps).
    Value(Vec<u8>),
    /// A verdict (verdict maps).
    Verdict(Verdict),
}

impl TableListing {
    /// The chain called `name`.
    pub fn chain(&self, name: &str) -> Option<&ChainListing> {
        self.chains.iter().find(|c| c.name == name)
    }

    /// The set or map called `name`.
    pub fn set(&self, name: &str) -> Option<&SetListing> {
        self.sets.iter().find(|s| s.name == name)
    }

    /// Every `(chain, rule)` whose comment equals `comment`.
    pub fn rules_with_comment<'a>(
        &'a self,
        comment: &'a str,
    ) -> impl Iterator<Item = (&'a ChainListing, &'a RuleListing)> + 'a {
        self.chains.iter().flat_map(move |c| {
            c.rules
                .iter()
                .filter(move |r| r.comment.as_deref() == Some(comment))
                .map(move |r| (c, r))
        })
    }
}

impl SetListing {
    /// The element whose key is `values` (in the set's `types`).
    pub fn find(&self, types: &[DataType], values: &[Value]) -> Option<&ElementListing> {
        let key = super::expr::key_bytes(types, values).ok()?;
        self.elements.iter().find(|e| e.key == key)
    }
}

// ------------------------------------------------------------------ raw attribute walking

fn nlas(buf: &[u8]) -> Vec<(u16, &[u8])> {
    nl::attrs(buf).collect()
}

fn attrs_of(m: &RawMsg) -> Vec<(u16, &[u8])> {
    m.payload.get(4..).map(nlas).unwrap_or_default()
}

fn get<'a>(attrs: &[(u16, &'a [u8])], kind: u16) -> Option<&'a [u8]> {
    attrs.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
}

/// The comment TLV (`kind`) of an nftnl userdata blob.
fn udata_comment(v: &[u8], kind: u8) -> Option<String> {
    let mut off = 0;
    while off + 2 <= v.len() {
        let t = v[off];
        let len = usize::from(v[off + 1]);
        let val = v.get(off + 2..off + 2 + len)?;
        if t == kind {
            return Some(string(val));
        }
        off += 2 + len;
    }
    None
}

fn hex(v: &[u8]) -> String {
    let mut s = String::from("0x");
    for b in v {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn decode_verdict(v: &[u8]) -> Option<Verdict> {
    let a = nlas(v);
    let code = be32(get(&a, 1)?)?;
    let chain = get(&a, 2).map(string);
    Some(match code {
        0 => Verdict::Drop,
        1 => Verdict::Accept,
        0xffff_ffff => Verdict::Continue,
        0xffff_fffb => Verdict::Return,
        0xffff_fffd => Verdict::Jump(chain.unwrap_or_default()),
        0xffff_fffc => Verdict::Goto(chain.unwrap_or_default()),
        _ => return None,
    })
}

/// `NFTA_DATA_*` nested attribute: value bytes or verdict text.
fn data_text(v: &[u8]) -> String {
    let a = nlas(v);
    if let Some(val) = get(&a, 1) {
        return hex(val);
    }
    if let Some(verdict) = get(&a, 2) {
        return decode_verdict(verdict)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "verdict ?".to_owned());
    }
    "?".to_owned()
}

fn meta_key(k: u32) -> String {
    match k {
        0 => "len".into(),
        1 => "protocol".into(),
        3 => "mark".into(),
        4 => "iif".into(),
        5 => "oif".into(),
        6 => "iifname".into(),
        7 => "oifname".into(),
        15 => "nfproto".into(),
        16 => "l4proto".into(),
        n => format!("key {n}"),
    }
}

fn reg(a: &[(u16, &[u8])], kind: u16) -> String {
    get(a, kind)
        .and_then(be32)
        .map(|r| r.to_string())
        .unwrap_or_else(|| "?".into())
}

fn expr_text(name: &str, data: &[u8]) -> String {
    let a = nlas(data);
    let n = |kind: u16| get(&a, kind).and_then(be32);
    match name {
        "payload" => {
            let base = match n(2) {
                Some(0) => "link",
                Some(1) => "network",
                Some(2) => "transport",
                _ => "?",
            };
            format!(
                "payload load {}b @ {base} header + {} => reg {}",
                n(4).unwrap_or(0),
                n(3).unwrap_or(0),
                reg(&a, 1)
            )
        }
        "meta" => {
            let key = meta_key(n(2).unwrap_or(u32::MAX));
            if get(&a, 3).is_some() {
                format!("meta set {key} with reg {}", reg(&a, 3))
            } else {
                format!("meta load {key} => reg {}", reg(&a, 1))
            }
        }
        "cmp" => {
            let op = match n(2) {
                Some(0) => "eq",
                Some(1) => "neq",
                Some(2) => "lt",
                Some(3) => "lte",
                Some(4) => "gt",
                Some(5) => "gte",
                _ => "?",
            };
            format!(
                "cmp {op} reg {} {}",
                reg(&a, 1),
                get(&a, 3).map(data_text).unwrap_or_default()
            )
        }
        "bitwise" => format!(
            "bitwise reg {} = ( reg {} & {} ) ^ {}",
            reg(&a, 2),
            reg(&a, 1),
            get(&a, 4).map(data_text).unwrap_or_default(),
            get(&a, 5).map(data_text).unwrap_or_default()
        ),
        "immediate" => format!(
            "immediate reg {} {}",
            reg(&a, 1),
            get(&a, 2).map(data_text).unwrap_or_default()
        ),
        "lookup" => {
            let mut s = format!(
                "lookup reg {} set {}",
                reg(&a, 2),
                get(&a, 1).map(string).unwrap_or_default()
            );
            if get(&a, 3).is_some() {
                s.push_str(&format!(" dreg {}", reg(&a, 3)));
            }
            if n(5).unwrap_or(0) & 1 != 0 {
                s.push_str(" inverted");
            }
            s
        }
        "nat" => {
            let kind = if n(1) == Some(1) { "dnat" } else { "snat" };
            let fam = match n(2) {
                Some(2) => "ip",
                Some(10) => "ip6",
                _ => "?",
            };
            let mut s = format!("nat {kind} {fam}");
            if get(&a, 3).is_some() {
                s.push_str(&format!(" addr_min reg {}", reg(&a, 3)));
            }
            if get(&a, 5).is_some() {
                s.push_str(&format!(" proto_min reg {}", reg(&a, 5)));
            }
            s
        }
        "fib" => {
            let flags = n(3).unwrap_or(0);
            let which = if flags & 2 != 0 { "daddr" } else { "saddr" };
            let result = match n(2) {
                Some(1) => "oif",
                Some(2) => "oifname",
                Some(3) => "type",
                _ => "?",
            };
            format!("fib {which} {result} => reg {}", reg(&a, 1))
        }
        "ct" => {
            let key = match n(2) {
                Some(0) => "state".to_owned(),
                Some(3) => "mark".to_owned(),
                Some(k) => format!("key {k}"),
                None => "?".to_owned(),
            };
            format!("ct load {key} => reg {}", reg(&a, 1))
        }
        "counter" => format!(
            "counter packets {} bytes {}",
            get(&a, 2).and_then(be64).unwrap_or(0),
            get(&a, 1).and_then(be64).unwrap_or(0)
        ),
        "redir" => match get(&a, 1) {
            Some(_) => format!("redir proto_min reg {}", reg(&a, 1)),
            None => "redir".to_owned(),
        },
        other => other.to_owned(),
    }
}

fn rule_exprs(v: &[u8]) -> Vec<String> {
    nlas(v)
        .into_iter()
        .filter(|(k, _)| *k == 1)
        .map(|(_, e)| {
            let a = nlas(e);
            let name = get(&a, 1).map(string).unwrap_or_default();
            let data = get(&a, 2).unwrap_or(&[]);
            expr_text(&name, data)
        })
        .collect()
}

// ------------------------------------------------------------------ requests

fn is_enoent(e: &NftError) -> bool {
    e.errno() == Some(libc::ENOENT)
}

fn is_eintr(e: &NftError) -> bool {
    e.errno() == Some(libc::EINTR)
}

pub(crate) fn generation(sock: &mut NfSocket) -> Result<u32, NftError> {
    let msgs = sock.request(
        "get generation",
        0,
        NfTablesMessage::GetGen(GenMessage { attributes: vec![] }),
        false,
    )?;
    let m = msgs
        .first()
        .ok_or_else(|| NftError::Decode("no generation message".into()))?;
    get(&attrs_of(m), 1)
        .and_then(be32)
        .ok_or_else(|| NftError::Decode("generation message without id".into()))
}

pub(crate) fn list_tables(sock: &mut NfSocket) -> Result<Vec<(Family, String)>, NftError> {
    let msgs = sock.request(
        "list tables",
        0,
        NfTablesMessage::GetTable(TableMessage { attributes: vec![] }),
        true,
    )?;
    Ok(msgs
        .iter()
        .filter_map(|m| {
            let fam = Family::from_nfproto(*m.payload.first()?)?;
            let name = get(&attrs_of(m), 1).map(string)?;
            Some((fam, name))
        })
        .collect())
}

pub(crate) fn list_table(
    sock: &mut NfSocket,
    family: Family,
    name: &str,
) -> Result<Option<TableListing>, NftError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match list_table_once(sock, family, name) {
            Err(e) if is_eintr(&e) && attempt < 5 => continue,
            other => return other,
        }
    }
}

fn list_table_once(
    sock: &mut NfSocket,
    family: Family,
    name: &str,
) -> Result<Option<TableListing>, NftError> {
    let fam = family.nfproto();
    let tables = match sock.request(
        "get table",
        fam,
        NfTablesMessage::GetTable(TableMessage {
            attributes: vec![TableAttribute::Name(name.to_owned())],
        }),
        false,
    ) {
        Ok(t) => t,
        Err(e) if is_enoent(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(t) = tables.first() else {
        return Ok(None);
    };
    let ta = attrs_of(t);
    let mut listing = TableListing {
        family,
        name: name.to_owned(),
        handle: get(&ta, 4).and_then(be64).unwrap_or(0),
        comment: get(&ta, 6).and_then(|u| udata_comment(u, 0)),
        chains: Vec::new(),
        sets: Vec::new(),
    };

    let chains = sock.request(
        "list chains",
        fam,
        NfTablesMessage::GetChain(ChainMessage {
            attributes: vec![ChainAttribute::Table(name.to_owned())],
        }),
        true,
    )?;
    for m in &chains {
        let a = attrs_of(m);
        if get(&a, 1).map(string).as_deref() != Some(name) {
            continue;
        }
        let hook = get(&a, 4).map(|h| {
            let ha = nlas(h);
            (
                get(&ha, 1).and_then(be32).unwrap_or(0),
                get(&ha, 2).and_then(be32).unwrap_or(0) as i32,
            )
        });
        listing.chains.push(ChainListing {
            name: get(&a, 3).map(string).unwrap_or_default(),
            handle: get(&a, 2).and_then(be64).unwrap_or(0),
            hook,
            chain_type: get(&a, 7).map(string),
            policy: get(&a, 5).and_then(be32),
            comment: get(&a, 12).and_then(|u| udata_comment(u, 0)),
            rules: Vec::new(),
        });
    }

    let rules = sock.request(
        "list rules",
        fam,
        NfTablesMessage::GetRule(RuleMessage {
            attributes: vec![RuleAttribute::Table(name.to_owned())],
        }),
        true,
    )?;
    for m in &rules {
        let a = attrs_of(m);
        if get(&a, 1).map(string).as_deref() != Some(name) {
            continue;
        }
        let chain = get(&a, 2).map(string).unwrap_or_default();
        let rule = RuleListing {
            handle: get(&a, 3).and_then(be64).unwrap_or(0),
            comment: get(&a, 7).and_then(|u| udata_comment(u, 0)),
            exprs: get(&a, 4).map(rule_exprs).unwrap_or_default(),
        };
        if let Some(c) = listing.chains.iter_mut().find(|c| c.name == chain) {
            c.rules.push(rule);
        }
    }

    let sets = sock.request(
        "list sets",
        fam,
        NfTablesMessage::GetSet(SetMessage {
            attributes: vec![SetAttribute::Table(name.to_owned())],
        }),
        true,
    )?;
    for m in &sets {
        let a = attrs_of(m);
        if get(&a, 1).map(string).as_deref() != Some(name) {
            continue;
        }
        let flags = get(&a, 3).and_then(be32).unwrap_or(0);
        if flags & 1 != 0 {
            continue; // anonymous
        }
        listing.sets.push(SetListing {
            name: get(&a, 2).map(string).unwrap_or_default(),
            handle: get(&a, 16).and_then(be64).unwrap_or(0),
            flags,
            key_type: get(&a, 4).and_then(be32).unwrap_or(0),
            key_len: get(&a, 5).and_then(be32).unwrap_or(0),
            data_type: get(&a, 6).and_then(be32),
            data_len: get(&a, 7).and_then(be32),
            comment: get(&a, 13).and_then(|u| udata_comment(u, 7)),
            elements: Vec::new(),
        });
    }
    for set in &mut listing.sets {
        let elems = sock.request(
            "list set elements",
            fam,
            NfTablesMessage::GetSetElement(SetElementMessage {
                attributes: vec![
                    SetElementList::Table(name.to_owned()),
                    SetElementList::Set(set.name.clone()),
                ],
            }),
            true,
        )?;
        for m in &elems {
            set.elements.extend(elements_of(m));
        }
    }
    Ok(Some(listing))
}

/// The elements of one `NFT_MSG_NEWSETELEM` message (an element list).
fn elements_of(m: &RawMsg) -> Vec<ElementListing> {
    let mut out = Vec::new();
    for (k, list) in attrs_of(m) {
        if k != 3 {
            continue;
        }
        for (ek, e) in nlas(list) {
            if ek != 1 {
                continue;
            }
            let ea = nlas(e);
            let key = get(&ea, 1)
                .and_then(|k| get(&nlas(k), 1).map(<[u8]>::to_vec))
                .unwrap_or_default();
            let data = get(&ea, 2).and_then(|d| {
                let da = nlas(d);
                if let Some(v) = get(&da, 1) {
                    Some(ElementData::Value(v.to_vec()))
                } else {
                    get(&da, 2)
                        .and_then(decode_verdict)
                        .map(ElementData::Verdict)
                }
            });
            out.push(ElementListing {
                key,
                data,
                comment: get(&ea, 6).and_then(|u| udata_comment(u, 0)),
            });
        }
    }
    out
}

/// One element by key (a non-dump `GETSETELEM`); `None` when the table, the set or the
/// element is missing.
pub(crate) fn get_element(
    sock: &mut NfSocket,
    family: Family,
    table: &str,
    set: &str,
    key: Vec<u8>,
) -> Result<Option<ElementListing>, NftError> {
    let msgs = match sock.request(
        "get set element",
        family.nfproto(),
        NfTablesMessage::GetSetElement(SetElementMessage {
            attributes: vec![
                SetElementList::Table(table.to_owned()),
                SetElementList::Set(set.to_owned()),
                SetElementList::Elements(vec![ListAttribute::Element(vec![
                    SetElementAttribute::Key(DataAttribute::Value(key.clone())),
                ])]),
            ],
        }),
        false,
    ) {
        Ok(m) => m,
        Err(e) if is_enoent(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(msgs.iter().flat_map(elements_of).find(|e| e.key == key))
}

/// Whether a chain exists (a non-dump `GETCHAIN`).
pub(crate) fn chain_exists(
    sock: &mut NfSocket,
    family: Family,
    table: &str,
    chain: &str,
) -> Result<bool, NftError> {
    match sock.request(
        "get chain",
        family.nfproto(),
        NfTablesMessage::GetChain(ChainMessage {
            attributes: vec![
                ChainAttribute::Table(table.to_owned()),
                ChainAttribute::Name(chain.to_owned()),
            ],
        }),
        false,
    ) {
        Ok(m) => Ok(!m.is_empty()),
        Err(e) if is_enoent(&e) => Ok(false),
        Err(e) => Err(e),
    }
}
