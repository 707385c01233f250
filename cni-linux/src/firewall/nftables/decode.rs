//! Reading nf_tables state back: tables, chains, rules (handles, comments, a readable
//! expression dump) and set/map elements.
//!
//! Tables, chains, rules, sets and elements are decoded through netlink-packet-netfilter's
//! attribute types; rule expressions are read raw by the numbers of [`super::uapi`] (the codec
//! models only some expressions).

use netlink_packet_core::{NlaBuffer, NlasIterator, Parseable};
use netlink_packet_netfilter::nftables::{
    ChainAttribute, ChainMessage, DataAttribute, GenAttribute, GenMessage, Hook, HookNumber,
    ListAttribute, NfTablesMessage, RuleAttribute, RuleMessage, SetAttribute, SetElementAttribute,
    SetElementList, SetElementMessage, SetMessage, TableAttribute, TableMessage, VerdictAttribute,
};

use super::socket::{NfSocket, RawMsg};
use super::{DataType, Family, NftError, Value, Verdict, uapi};
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

// ------------------------------------------------------------------ upstream attribute types

/// The attributes of a message (after its `nfgenmsg`), parsed with netlink-packet-netfilter's
/// type `A`. An attribute the codec cannot parse is skipped, as an unknown one would be: a
/// listing shows what it understands.
fn parsed<A>(m: &RawMsg) -> Vec<A>
where
    A: for<'b> Parseable<NlaBuffer<&'b [u8]>>,
{
    let body = m.payload.get(NFGENMSG_LEN..).unwrap_or_default();
    NlasIterator::new(body)
        .filter_map(|nla| A::parse(&nla.ok()?).ok())
        .collect()
}

/// `sizeof(struct nfgenmsg)`: family, version, resource id before the attributes.
const NFGENMSG_LEN: usize = 4;

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

/// A verdict as the codec parsed it (code, and the chain of a jump or goto).
fn verdict_of(attrs: &[VerdictAttribute]) -> Option<Verdict> {
    let mut code = None;
    let mut chain = None;
    for a in attrs {
        match a {
            VerdictAttribute::Code(c) => code = Some(u32::from(*c)),
            VerdictAttribute::Chain(c) => chain = Some(c.clone()),
            _ => {}
        }
    }
    Some(match code? {
        uapi::NF_DROP => Verdict::Drop,
        uapi::NF_ACCEPT => Verdict::Accept,
        uapi::NFT_CONTINUE => Verdict::Continue,
        uapi::NFT_RETURN => Verdict::Return,
        uapi::NFT_JUMP => Verdict::Jump(chain.unwrap_or_default()),
        uapi::NFT_GOTO => Verdict::Goto(chain.unwrap_or_default()),
        _ => return None,
    })
}

/// An `NFTA_DATA_*` nested attribute's value (`v` holds the inner attribute).
fn data_of(v: &[u8]) -> Option<DataAttribute> {
    DataAttribute::parse(&NlaBuffer::new_checked(v).ok()?).ok()
}

// ------------------------------------------------------------------ expression text

/// `NFTA_DATA_*` nested attribute: value bytes or verdict text.
fn data_text(v: &[u8]) -> String {
    match data_of(v) {
        Some(DataAttribute::Value(val)) => hex(&val),
        Some(DataAttribute::Verdict(attrs)) => verdict_of(&attrs)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "verdict ?".to_owned()),
        _ => "?".to_owned(),
    }
}

fn meta_key(k: u32) -> String {
    match k {
        uapi::NFT_META_LEN => "len".into(),
        uapi::NFT_META_PROTOCOL => "protocol".into(),
        uapi::NFT_META_MARK => "mark".into(),
        uapi::NFT_META_IIF => "iif".into(),
        uapi::NFT_META_OIF => "oif".into(),
        uapi::NFT_META_IIFNAME => "iifname".into(),
        uapi::NFT_META_OIFNAME => "oifname".into(),
        uapi::NFT_META_NFPROTO => "nfproto".into(),
        uapi::NFT_META_L4PROTO => "l4proto".into(),
        n => format!("key {n}"),
    }
}

/// One expression's attributes, read by the numbers of [`uapi`].
struct ExprAttrs<'a>(&'a [u8]);

impl<'a> ExprAttrs<'a> {
    fn get(&self, kind: u16) -> Option<&'a [u8]> {
        nl::attr(self.0, kind)
    }

    fn u32(&self, kind: u16) -> Option<u32> {
        self.get(kind).and_then(be32)
    }

    fn reg(&self, kind: u16) -> String {
        self.u32(kind)
            .map(|r| r.to_string())
            .unwrap_or_else(|| "?".into())
    }

    fn data(&self, kind: u16) -> String {
        self.get(kind).map(data_text).unwrap_or_default()
    }
}

fn payload_text(a: &ExprAttrs<'_>) -> String {
    use uapi::*;
    let base = match a.u32(NFTA_PAYLOAD_BASE) {
        Some(NFT_PAYLOAD_LL) => "link",
        Some(NFT_PAYLOAD_NETWORK) => "network",
        Some(NFT_PAYLOAD_TRANSPORT) => "transport",
        _ => "?",
    };
    format!(
        "payload load {}b @ {base} header + {} => reg {}",
        a.u32(NFTA_PAYLOAD_LEN).unwrap_or(0),
        a.u32(NFTA_PAYLOAD_OFFSET).unwrap_or(0),
        a.reg(NFTA_PAYLOAD_DREG)
    )
}

fn meta_text(a: &ExprAttrs<'_>) -> String {
    use uapi::*;
    let key = meta_key(a.u32(NFTA_META_KEY).unwrap_or(u32::MAX));
    if a.get(NFTA_META_SREG).is_some() {
        format!("meta set {key} with reg {}", a.reg(NFTA_META_SREG))
    } else {
        format!("meta load {key} => reg {}", a.reg(NFTA_META_DREG))
    }
}

fn cmp_text(a: &ExprAttrs<'_>) -> String {
    use uapi::*;
    let op = match a.u32(NFTA_CMP_OP) {
        Some(NFT_CMP_EQ) => "eq",
        Some(NFT_CMP_NEQ) => "neq",
        Some(NFT_CMP_LT) => "lt",
        Some(NFT_CMP_LTE) => "lte",
        Some(NFT_CMP_GT) => "gt",
        Some(NFT_CMP_GTE) => "gte",
        _ => "?",
    };
    format!(
        "cmp {op} reg {} {}",
        a.reg(NFTA_CMP_SREG),
        a.data(NFTA_CMP_DATA)
    )
}

fn lookup_text(a: &ExprAttrs<'_>) -> String {
    use uapi::*;
    let mut s = format!(
        "lookup reg {} set {}",
        a.reg(NFTA_LOOKUP_SREG),
        a.get(NFTA_LOOKUP_SET).map(string).unwrap_or_default()
    );
    if a.get(NFTA_LOOKUP_DREG).is_some() {
        s.push_str(&format!(" dreg {}", a.reg(NFTA_LOOKUP_DREG)));
    }
    if a.u32(NFTA_LOOKUP_FLAGS).unwrap_or(0) & NFT_LOOKUP_F_INV != 0 {
        s.push_str(" inverted");
    }
    s
}

fn nat_text(a: &ExprAttrs<'_>) -> String {
    use uapi::*;
    let kind = if a.u32(NFTA_NAT_TYPE) == Some(NFT_NAT_DNAT) {
        "dnat"
    } else {
        "snat"
    };
    let fam = match a.u32(NFTA_NAT_FAMILY) {
        Some(f) if f == u32::from(NFPROTO_IPV4) => "ip",
        Some(f) if f == u32::from(NFPROTO_IPV6) => "ip6",
        _ => "?",
    };
    let mut s = format!("nat {kind} {fam}");
    if a.get(NFTA_NAT_REG_ADDR_MIN).is_some() {
        s.push_str(&format!(" addr_min reg {}", a.reg(NFTA_NAT_REG_ADDR_MIN)));
    }
    if a.get(NFTA_NAT_REG_PROTO_MIN).is_some() {
        s.push_str(&format!(" proto_min reg {}", a.reg(NFTA_NAT_REG_PROTO_MIN)));
    }
    s
}

fn fib_text(a: &ExprAttrs<'_>) -> String {
    use uapi::*;
    let flags = a.u32(NFTA_FIB_FLAGS).unwrap_or(0);
    let which = if flags & NFTA_FIB_F_DADDR != 0 {
        "daddr"
    } else {
        "saddr"
    };
    let result = match a.u32(NFTA_FIB_RESULT) {
        Some(NFT_FIB_RESULT_OIF) => "oif",
        Some(NFT_FIB_RESULT_OIFNAME) => "oifname",
        Some(NFT_FIB_RESULT_ADDRTYPE) => "type",
        _ => "?",
    };
    format!("fib {which} {result} => reg {}", a.reg(NFTA_FIB_DREG))
}

fn ct_text(a: &ExprAttrs<'_>) -> String {
    use uapi::*;
    let key = match a.u32(NFTA_CT_KEY) {
        Some(NFT_CT_STATE) => "state".to_owned(),
        Some(NFT_CT_MARK) => "mark".to_owned(),
        Some(k) => format!("key {k}"),
        None => "?".to_owned(),
    };
    format!("ct load {key} => reg {}", a.reg(NFTA_CT_DREG))
}

fn expr_text(name: &str, data: &[u8]) -> String {
    use uapi::*;
    let a = ExprAttrs(data);
    match name {
        "payload" => payload_text(&a),
        "meta" => meta_text(&a),
        "cmp" => cmp_text(&a),
        "bitwise" => format!(
            "bitwise reg {} = ( reg {} & {} ) ^ {}",
            a.reg(NFTA_BITWISE_DREG),
            a.reg(NFTA_BITWISE_SREG),
            a.data(NFTA_BITWISE_MASK),
            a.data(NFTA_BITWISE_XOR)
        ),
        "immediate" => format!(
            "immediate reg {} {}",
            a.reg(NFTA_IMMEDIATE_DREG),
            a.data(NFTA_IMMEDIATE_DATA)
        ),
        "lookup" => lookup_text(&a),
        "nat" => nat_text(&a),
        "fib" => fib_text(&a),
        "ct" => ct_text(&a),
        "counter" => format!(
            "counter packets {} bytes {}",
            a.get(NFTA_COUNTER_PACKETS).and_then(be64).unwrap_or(0),
            a.get(NFTA_COUNTER_BYTES).and_then(be64).unwrap_or(0)
        ),
        "redir" => match a.get(NFTA_REDIR_REG_PROTO_MIN) {
            Some(_) => format!("redir proto_min reg {}", a.reg(NFTA_REDIR_REG_PROTO_MIN)),
            None => "redir".to_owned(),
        },
        other => other.to_owned(),
    }
}

/// The readable lines of a rule's `NFTA_RULE_EXPRESSIONS` (read raw: the codec models only
/// some expressions, and one it cannot parse would lose the whole rule).
fn rule_exprs(v: &[u8]) -> Vec<String> {
    nl::attrs(v)
        .filter(|(k, _)| *k == uapi::NFTA_LIST_ELEM)
        .map(|(_, e)| {
            let name = nl::attr(e, uapi::NFTA_EXPR_NAME)
                .map(string)
                .unwrap_or_default();
            let data = nl::attr(e, uapi::NFTA_EXPR_DATA).unwrap_or(&[]);
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
    parsed::<GenAttribute>(m)
        .into_iter()
        .find_map(|a| match a {
            GenAttribute::Id(id) => Some(id),
            _ => None,
        })
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
            let name = parsed::<TableAttribute>(m)
                .into_iter()
                .find_map(|a| match a {
                    TableAttribute::Name(n) => Some(n),
                    _ => None,
                })?;
            Some((fam, name))
        })
        .collect())
}

/// `f` again while the kernel answers `EINTR` (a dump that crossed a ruleset change), at
/// most five times in all.
fn retry_interrupted<T>(mut f: impl FnMut() -> Result<T, NftError>) -> Result<T, NftError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match f() {
            Err(e) if is_eintr(&e) && attempt < 5 => continue,
            other => return other,
        }
    }
}

/// A request's answer, `None` when the kernel says the object does not exist (`ENOENT`).
fn unless_missing<T>(r: Result<T, NftError>) -> Result<Option<T>, NftError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_enoent(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) fn list_table(
    sock: &mut NfSocket,
    family: Family,
    name: &str,
) -> Result<Option<TableListing>, NftError> {
    retry_interrupted(|| list_table_once(sock, family, name))
}

fn table_of(family: Family, name: &str, m: &RawMsg) -> TableListing {
    let mut t = TableListing {
        family,
        name: name.to_owned(),
        handle: 0,
        comment: None,
        chains: Vec::new(),
        sets: Vec::new(),
    };
    for a in parsed::<TableAttribute>(m) {
        match a {
            TableAttribute::Handle(h) => t.handle = h,
            TableAttribute::UserData(u) => t.comment = udata_comment(&u, uapi::UDATA_COMMENT),
            _ => {}
        }
    }
    t
}

/// A chain of table `table`; `None` for a chain of another table.
fn chain_of(table: &str, m: &RawMsg) -> Option<ChainListing> {
    counted_chain_of(table, m).map(|(c, _)| c)
}

/// [`chain_of`] with the chain's reference count (`NFTA_CHAIN_USE`: its rules plus every jump,
/// goto and other reference to it; 0 when the kernel sent none).
fn counted_chain_of(table: &str, m: &RawMsg) -> Option<(ChainListing, u32)> {
    let mut uses = 0;
    let mut in_table = false;
    let mut c = ChainListing {
        name: String::new(),
        handle: 0,
        hook: None,
        chain_type: None,
        policy: None,
        comment: None,
        rules: Vec::new(),
    };
    for a in parsed::<ChainAttribute>(m) {
        match a {
            ChainAttribute::Table(t) => in_table = t == table,
            ChainAttribute::Name(n) => c.name = n,
            ChainAttribute::Handle(h) => c.handle = h,
            ChainAttribute::Hook(hooks) => {
                let (mut num, mut prio) = (0, 0);
                for h in hooks {
                    match h {
                        Hook::Number(HookNumber::Inet(n)) => num = u32::from(n),
                        Hook::Number(HookNumber::Dev(n)) => num = u32::from(n),
                        Hook::Number(HookNumber::Other(n)) => num = n,
                        Hook::Priority(p) => prio = p as i32,
                        _ => {}
                    }
                }
                c.hook = Some((num, prio));
            }
            ChainAttribute::Type(t) => c.chain_type = Some(t),
            ChainAttribute::Policy(p) => c.policy = Some(p),
            ChainAttribute::UserData(u) => c.comment = udata_comment(&u, uapi::UDATA_COMMENT),
            ChainAttribute::Use(n) => uses = n,
            _ => {}
        }
    }
    in_table.then_some((c, uses))
}

/// A rule of table `table` and the name of its chain; `None` for a rule of another table.
/// The expressions are read raw (see [`rule_exprs`]).
fn rule_of(table: &str, m: &RawMsg) -> Option<(String, RuleListing)> {
    let body = m.payload.get(NFGENMSG_LEN..).unwrap_or_default();
    let mut in_table = false;
    let mut chain = String::new();
    let mut r = RuleListing {
        handle: 0,
        comment: None,
        exprs: Vec::new(),
    };
    for nla in NlasIterator::new(body).filter_map(Result::ok) {
        if nla.kind() == uapi::NFTA_RULE_EXPRESSIONS {
            r.exprs = rule_exprs(nla.value());
            continue;
        }
        match RuleAttribute::parse(&nla) {
            Ok(RuleAttribute::Table(t)) => in_table = t == table,
            Ok(RuleAttribute::Chain(c)) => chain = c,
            Ok(RuleAttribute::Handle(h)) => r.handle = h,
            Ok(RuleAttribute::UserData(u)) => r.comment = udata_comment(&u, uapi::UDATA_COMMENT),
            _ => {}
        }
    }
    in_table.then_some((chain, r))
}

/// A named set of table `table`; `None` for an anonymous set or one of another table.
fn set_of(table: &str, m: &RawMsg) -> Option<SetListing> {
    let mut in_table = false;
    let mut s = SetListing {
        name: String::new(),
        handle: 0,
        flags: 0,
        key_type: 0,
        key_len: 0,
        data_type: None,
        data_len: None,
        comment: None,
        elements: Vec::new(),
    };
    for a in parsed::<SetAttribute>(m) {
        match a {
            SetAttribute::Table(t) => in_table = t == table,
            SetAttribute::Name(n) => s.name = n,
            SetAttribute::Handle(h) => s.handle = h,
            SetAttribute::Flags(f) => s.flags = f.bits(),
            SetAttribute::KeyType(t) => s.key_type = t,
            SetAttribute::KeyLen(l) => s.key_len = l,
            SetAttribute::DataType(t) => s.data_type = Some(t),
            SetAttribute::DataLen(l) => s.data_len = Some(l),
            SetAttribute::UserData(u) => s.comment = udata_comment(&u, uapi::UDATA_SET_COMMENT),
            _ => {}
        }
    }
    (in_table && s.flags & uapi::NFT_SET_ANONYMOUS == 0).then_some(s)
}

fn list_table_once(
    sock: &mut NfSocket,
    family: Family,
    name: &str,
) -> Result<Option<TableListing>, NftError> {
    let fam = family.nfproto();
    let Some(tables) = unless_missing(sock.request(
        "get table",
        fam,
        NfTablesMessage::GetTable(TableMessage {
            attributes: vec![TableAttribute::Name(name.to_owned())],
        }),
        false,
    ))?
    else {
        return Ok(None);
    };
    let Some(t) = tables.first() else {
        return Ok(None);
    };
    let mut listing = table_of(family, name, t);

    let chains = sock.request(
        "list chains",
        fam,
        NfTablesMessage::GetChain(ChainMessage {
            attributes: vec![ChainAttribute::Table(name.to_owned())],
        }),
        true,
    )?;
    listing
        .chains
        .extend(chains.iter().filter_map(|m| chain_of(name, m)));

    let rules = sock.request("list rules", fam, rules_request(name, None), true)?;
    for (chain, rule) in rules.iter().filter_map(|m| rule_of(name, m)) {
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
    listing
        .sets
        .extend(sets.iter().filter_map(|m| set_of(name, m)));
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
    for list in parsed::<SetElementList>(m) {
        let SetElementList::Elements(elements) = list else {
            continue;
        };
        for e in elements {
            let ListAttribute::Element(attrs) = e else {
                continue;
            };
            let mut el = ElementListing {
                key: Vec::new(),
                data: None,
                comment: None,
            };
            for a in attrs {
                match a {
                    SetElementAttribute::Key(DataAttribute::Value(k)) => el.key = k,
                    SetElementAttribute::Data(DataAttribute::Value(v)) => {
                        el.data = Some(ElementData::Value(v));
                    }
                    SetElementAttribute::Data(DataAttribute::Verdict(v)) => {
                        el.data = verdict_of(&v).map(ElementData::Verdict);
                    }
                    SetElementAttribute::UserData(u) => {
                        el.comment = udata_comment(&u, uapi::UDATA_COMMENT);
                    }
                    _ => {}
                }
            }
            out.push(el);
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
    let msgs = unless_missing(sock.request(
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
    ))?;
    Ok(msgs.and_then(|msgs| msgs.iter().flat_map(elements_of).find(|e| e.key == key)))
}

/// Whether a chain exists (a non-dump `GETCHAIN`).
pub(crate) fn chain_exists(
    sock: &mut NfSocket,
    family: Family,
    table: &str,
    chain: &str,
) -> Result<bool, NftError> {
    Ok(get_chain(sock, family, table, chain)?.is_some())
}

// ------------------------------------------------------------------ raw rules (iptables-nft)

/// A rule with its expressions undecoded: `(name, NFTA_EXPR_DATA bytes)` each, in order. For
/// readers that need the exact bytes (the iptables-nft decoder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRule {
    /// The chain it belongs to.
    pub(crate) chain: String,
    /// Kernel handle (what a `DELRULE` names).
    pub(crate) handle: u64,
    /// The expressions.
    pub(crate) exprs: Vec<(String, Vec<u8>)>,
    /// Whether the rule carries userdata (`NFTA_RULE_USERDATA`: an nft comment, or what other
    /// tools or versions store there).
    pub(crate) userdata: bool,
}

/// The `GETRULE` dump request for the rules of `table`, of one `chain` of it if given.
fn rules_request(table: &str, chain: Option<&str>) -> NfTablesMessage {
    let mut attributes = vec![RuleAttribute::Table(table.to_owned())];
    attributes.extend(chain.map(|c| RuleAttribute::Chain(c.to_owned())));
    NfTablesMessage::GetRule(RuleMessage { attributes })
}

/// The rules of `chain` that `keep` accepts, read until `enough` of them were, with how many
/// rules were read in all. Stopping early leaves the rest of the dump unread, so it runs on a
/// socket of its own that is dropped after: a long chain costs only the messages up to the last
/// rule wanted. An interrupted dump is read again; a missing chain has no rules.
pub(crate) fn list_raw_rules_until(
    family: Family,
    table: &str,
    chain: &str,
    keep: &dyn Fn(&RawRule) -> bool,
    enough: usize,
) -> Result<(Vec<RawRule>, usize), NftError> {
    let rules = retry_interrupted(|| {
        let mut kept = Vec::new();
        let mut read = 0;
        let mut each = |m: crate::nl::Msg<'_>| {
            let raw = RawMsg::of(m);
            let rule = raw_rule_of(table, &raw).filter(|r| r.chain == chain);
            read += usize::from(rule.is_some());
            if let Some(r) = rule.filter(|r| keep(r)) {
                kept.push(r);
                if kept.len() >= enough {
                    return crate::nl::Flow::Stop;
                }
            }
            crate::nl::Flow::Continue
        };
        let interrupted = NfSocket::open()?.dump_until(
            "list rules",
            family.nfproto(),
            rules_request(table, Some(chain)),
            &mut each,
        )?;
        if interrupted {
            return Err(NftError::Request {
                request: "list rules".to_owned(),
                source: std::io::Error::from_raw_os_error(libc::EINTR),
            });
        }
        Ok((kept, read))
    });
    Ok(unless_missing(rules)?.unwrap_or_default())
}

/// A table's chains (without rules) and its raw rules.
pub(crate) type RawTable = (Vec<ChainListing>, Vec<RawRule>);

fn raw_rule_of(table: &str, m: &RawMsg) -> Option<RawRule> {
    let body = m.payload.get(NFGENMSG_LEN..).unwrap_or_default();
    let mut in_table = false;
    let mut r = RawRule {
        chain: String::new(),
        handle: 0,
        exprs: Vec::new(),
        userdata: false,
    };
    for nla in NlasIterator::new(body).filter_map(Result::ok) {
        if nla.kind() == uapi::NFTA_RULE_EXPRESSIONS {
            r.exprs = nl::attrs(nla.value())
                .filter(|(k, _)| *k == uapi::NFTA_LIST_ELEM)
                .map(|(_, e)| {
                    let name = nl::attr(e, uapi::NFTA_EXPR_NAME)
                        .map(string)
                        .unwrap_or_default();
                    let data = nl::attr(e, uapi::NFTA_EXPR_DATA).unwrap_or(&[]).to_vec();
                    (name, data)
                })
                .collect();
            continue;
        }
        match RuleAttribute::parse(&nla) {
            Ok(RuleAttribute::Table(t)) => in_table = t == table,
            Ok(RuleAttribute::Chain(c)) => r.chain = c,
            Ok(RuleAttribute::Handle(h)) => r.handle = h,
            Ok(RuleAttribute::UserData(_)) => r.userdata = true,
            _ => {}
        }
    }
    in_table.then_some(r)
}

/// The chains (without rules) and the raw rules of one table, or `None` when the table does
/// not exist. Three round trips (table, chains, rules), retried on `EINTR` (a dump that
/// crossed a ruleset change).
pub(crate) fn list_raw(
    sock: &mut NfSocket,
    family: Family,
    name: &str,
) -> Result<Option<RawTable>, NftError> {
    retry_interrupted(|| list_raw_once(sock, family, name))
}

fn list_raw_once(
    sock: &mut NfSocket,
    family: Family,
    name: &str,
) -> Result<Option<RawTable>, NftError> {
    let fam = family.nfproto();
    let Some(chains) = unless_missing(sock.request(
        "list chains",
        fam,
        NfTablesMessage::GetChain(ChainMessage {
            attributes: vec![ChainAttribute::Table(name.to_owned())],
        }),
        true,
    ))?
    else {
        return Ok(None);
    };
    let chains: Vec<ChainListing> = chains.iter().filter_map(|m| chain_of(name, m)).collect();
    if chains.is_empty() {
        // A dump of the chains of a missing table is empty, not ENOENT.
        return Ok(None);
    }
    let rules = sock.request("list rules", fam, rules_request(name, None), true)?;
    Ok(Some((
        chains,
        rules.iter().filter_map(|m| raw_rule_of(name, m)).collect(),
    )))
}

/// One chain (without its rules) by name (a non-dump `GETCHAIN`), with its reference count
/// (see [`counted_chain_of`]); `None` when it or its table does not exist.
pub(crate) fn get_chain(
    sock: &mut NfSocket,
    family: Family,
    table: &str,
    chain: &str,
) -> Result<Option<(ChainListing, u32)>, NftError> {
    Ok(unless_missing(sock.request(
        "get chain",
        family.nfproto(),
        NfTablesMessage::GetChain(ChainMessage {
            attributes: vec![
                ChainAttribute::Table(table.to_owned()),
                ChainAttribute::Name(chain.to_owned()),
            ],
        }),
        false,
    ))?
    .and_then(|m| {
        m.iter()
            .filter_map(|m| counted_chain_of(table, m))
            .find(|(c, _)| c.name == chain)
    }))
}

/// Whether table `name` of `family` exists: one `GETTABLE` round trip, nothing listed.
pub(crate) fn table_exists(
    sock: &mut NfSocket,
    family: Family,
    name: &str,
) -> Result<bool, NftError> {
    Ok(unless_missing(sock.request(
        "get table",
        family.nfproto(),
        NfTablesMessage::GetTable(TableMessage {
            attributes: vec![TableAttribute::Name(name.to_owned())],
        }),
        false,
    ))?
    .is_some())
}

/// The raw rules of one chain, in order (a `GETRULE` dump the kernel filters by table and
/// chain), retried on `EINTR`.
pub(crate) fn list_raw_rules(
    sock: &mut NfSocket,
    family: Family,
    table: &str,
    chain: &str,
) -> Result<Vec<RawRule>, NftError> {
    let msgs = retry_interrupted(|| {
        unless_missing(sock.request(
            "list rules",
            family.nfproto(),
            rules_request(table, Some(chain)),
            true,
        ))
    })?
    .unwrap_or_default();
    Ok(msgs
        .iter()
        .filter_map(|m| raw_rule_of(table, m))
        .filter(|r| r.chain == chain)
        .collect())
}
