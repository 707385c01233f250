//! `NETLINK_NETFILTER` socket: plan encoding, batched transactions, requests and dumps.

use std::io;
use std::os::fd::AsFd;

use netlink_packet_core::{
    Emitable, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
    NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_netfilter::nftables::{
    ChainAttribute, DataAttribute, Hook, HookNumber, InetHookNumber, ListAttribute,
    NfTablesMessage, RuleAttribute, SetAttribute, SetElementAttribute, SetElementList,
    SetElementMessage, SetFlags, SetMessage, TableAttribute, TableMessage,
};
use netlink_packet_netfilter::nftables::{ChainMessage, RuleMessage};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

use crate::nl::{self, Flow, ReplyError};

use super::expr::{self, EncodeError};
use super::{
    ElemValue, Family, MAX_COMMENT_LEN, MapData, NftError, NftOp, NftPlan, Policy, type_id,
    type_len,
};

/// `NFNL_SUBSYS_NFTABLES`: the subsystem of batch begin / end messages.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
use super::uapi::{
    BYTEORDER_BIG_ENDIAN, BYTEORDER_HOST, NF_ACCEPT, NF_DROP, NFT_DATA_VERDICT, NFT_SET_MAP,
    UDATA_COMMENT, UDATA_SET_COMMENT, UDATA_SET_DATABYTEORDER, UDATA_SET_KEYBYTEORDER,
};

/// One encoded message and the plan op it belongs to.
pub(crate) struct Msg {
    pub(crate) op: usize,
    pub(crate) msg: NetlinkMessage<NetfilterMessage>,
}

fn nf_msg(family: Family, flags: u16, inner: NfTablesMessage) -> NetlinkMessage<NetfilterMessage> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    let mut m = NetlinkMessage::new(
        header,
        NetlinkPayload::from(NetfilterMessage::new(
            NetfilterHeader::new(NetfilterProtoFamily::from(family.nfproto()), 0, 0),
            inner,
        )),
    );
    m.finalize();
    m
}

fn control(msg: ControlMessage, seq: u32) -> NetlinkMessage<NetfilterMessage> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    header.sequence_number = seq;
    let mut m = NetlinkMessage::new(
        header,
        NetlinkPayload::from(NetfilterMessage::new(
            NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, NFNL_SUBSYS_NFTABLES),
            msg,
        )),
    );
    m.finalize();
    m
}

/// `NFNL_MSG_BATCH_BEGIN` / `NFNL_MSG_BATCH_END`, and the begin's `NFNL_BATCH_GENID`.
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_BATCH_GENID: u16 = 1;

/// `Ok` when all `n` messages of a batch were acknowledged (errors already handled).
fn all_acked(acked: u32, n: u32) -> Result<(), NftError> {
    if acked < n {
        return Err(NftError::Rejected {
            index: None,
            op: None,
            message: Some(format!("only {acked} of {n} messages acknowledged")),
            source: io::Error::other("incomplete acknowledgement"),
        });
    }
    Ok(())
}

/// A batch begin or end message (`seq`), the begin optionally carrying the generation id the
/// batch was computed from.
fn raw_batch_control(msg_type: u16, seq: u32, genid: Option<u32>) -> Vec<u8> {
    let mut attrs = Vec::new();
    if let Some(g) = genid {
        attrs.extend(raw_attr(NFNL_BATCH_GENID, &g.to_be_bytes()));
    }
    let mut m = raw_header(
        msg_type,
        NLM_F_REQUEST,
        seq,
        0,
        NFNL_SUBSYS_NFTABLES.to_be_bytes(),
    );
    m.extend(attrs);
    finish_raw(m)
}

/// A netlink header (length filled in by [`finish_raw`]) and an nfgenmsg.
fn raw_header(msg_type: u16, flags: u16, seq: u32, family: u8, res_id: [u8; 2]) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&msg_type.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[family, 0, res_id[0], res_id[1]]);
    m
}

fn finish_raw(mut m: Vec<u8>) -> Vec<u8> {
    let len = m.len() as u32;
    m[..4].copy_from_slice(&len.to_ne_bytes());
    m
}

/// One netlink attribute (`kind`, `value`), padded to 4 bytes.
pub(crate) fn raw_attr(kind: u16, value: &[u8]) -> Vec<u8> {
    let len = 4 + value.len();
    let mut a = Vec::with_capacity(nl::align4(len));
    a.extend_from_slice(&(len as u16).to_ne_bytes());
    a.extend_from_slice(&kind.to_ne_bytes());
    a.extend_from_slice(value);
    a.resize(nl::align4(len), 0);
    a
}

/// A nested attribute (`NLA_F_NESTED` set, as libmnl sets it) holding `inner`.
pub(crate) fn raw_nested(kind: u16, inner: &[u8]) -> Vec<u8> {
    raw_attr(kind | NLA_F_NESTED, inner)
}

/// `NLA_F_NESTED`.
const NLA_F_NESTED: u16 = 0x8000;

/// An nf_tables request (`NFT_MSG_*` `msg`) of `family` for a [`NfSocket::transact_raw`]
/// batch: `flags` besides `NLM_F_REQUEST | NLM_F_ACK`, then the attributes `attrs` (already
/// encoded with [`raw_attr`]).
pub(crate) fn raw_nft_msg(msg: u16, family: Family, flags: u16, attrs: &[u8]) -> Vec<u8> {
    let mut m = raw_header(
        (NFNL_SUBSYS_NFTABLES << 8) | msg,
        NLM_F_REQUEST | NLM_F_ACK | flags,
        0,
        family.nfproto(),
        [0, 0],
    );
    m.extend_from_slice(attrs);
    finish_raw(m)
}

/// nftnl userdata TLV holding a NUL-terminated comment (type 0 is the comment for tables,
/// chains, rules and elements; sets use 7).
fn udata_comment(kind: u8, comment: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(comment.len() + 3);
    v.push(kind);
    v.push((comment.len() + 1) as u8);
    v.extend_from_slice(comment.as_bytes());
    v.push(0);
    v
}

/// The byte order nft records for a single-type key or value (`NFTNL_UDATA_SET_*BYTEORDER`):
/// host (1) for strings, big endian (2) for addresses, ports and protocols. Without it `nft
/// list` prints an `ifname` value as `""`. Concatenations carry none, as nft writes them.
fn byteorder(types: &[super::DataType]) -> Option<u32> {
    match types {
        [super::DataType::Ifname] => Some(BYTEORDER_HOST),
        [_] => Some(BYTEORDER_BIG_ENDIAN),
        _ => None,
    }
}

/// A set's nftnl userdata: key and data byte order (types 0 and 1) as nft writes them, then
/// the comment (type 7).
fn set_udata(set: &super::SetSpec) -> Vec<u8> {
    let mut v = Vec::new();
    let mut u32_tlv = |kind: u8, value: u32| {
        v.push(kind);
        v.push(4);
        v.extend_from_slice(&value.to_ne_bytes());
    };
    if let Some(b) = byteorder(&set.key) {
        u32_tlv(UDATA_SET_KEYBYTEORDER, b);
    }
    if let Some(MapData::Values(t)) = &set.data
        && let Some(b) = byteorder(t)
    {
        u32_tlv(UDATA_SET_DATABYTEORDER, b);
    }
    if let Some(c) = &set.comment {
        v.extend(udata_comment(UDATA_SET_COMMENT, c));
    }
    v
}

fn check_name(what: &str, name: &str) -> Result<(), EncodeError> {
    if name.is_empty() || name.len() > 255 || name.contains('\0') {
        return Err(EncodeError(format!("invalid {what} name {name:?}")));
    }
    Ok(())
}

fn check_comment(c: &Option<String>) -> Result<(), EncodeError> {
    if let Some(c) = c
        && (c.len() > MAX_COMMENT_LEN || c.contains('\0'))
    {
        return Err(EncodeError(format!(
            "comment {c:?} is longer than {MAX_COMMENT_LEN} bytes or contains NUL"
        )));
    }
    Ok(())
}

fn hook_number(family: Family, hook: super::Hook) -> HookNumber {
    let _ = family;
    HookNumber::Inet(match hook {
        super::Hook::Prerouting => InetHookNumber::PreRouting,
        super::Hook::Input => InetHookNumber::LocalIn,
        super::Hook::Forward => InetHookNumber::Forward,
        super::Hook::Output => InetHookNumber::LocalOut,
        super::Hook::Postrouting => InetHookNumber::PostRouting,
    })
}

/// Netlink attribute lengths are 16 bits: nested lists must stay well below 64 KiB.
const MAX_NLA_PAYLOAD: usize = 60 * 1024;

/// Splits set elements into lists that each fit one netlink attribute.
#[derive(Default)]
struct Chunker {
    done: Vec<Vec<ListAttribute<SetElementAttribute>>>,
    cur: Vec<ListAttribute<SetElementAttribute>>,
    cur_len: usize,
}

impl Chunker {
    fn push(&mut self, e: ListAttribute<SetElementAttribute>) {
        let len = e.buffer_len();
        if !self.cur.is_empty() && self.cur_len + len > MAX_NLA_PAYLOAD {
            self.done.push(std::mem::take(&mut self.cur));
            self.cur_len = 0;
        }
        self.cur_len += len;
        self.cur.push(e);
    }

    fn finish(mut self) -> Vec<Vec<ListAttribute<SetElementAttribute>>> {
        if !self.cur.is_empty() {
            self.done.push(self.cur);
        }
        self.done
    }
}

const CREATE: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE;
const PLAIN: u16 = NLM_F_REQUEST | NLM_F_ACK;

/// Encodes one plan op into `out` (one message, or several for destroy-by-create-then-delete
/// and for element lists split over several messages). One function per kind of object.
fn encode_op(
    op: &NftOp,
    set_id: &mut u32,
    out: &mut Vec<NetlinkMessage<NetfilterMessage>>,
) -> Result<(), EncodeError> {
    match op {
        NftOp::AddTable {
            family,
            name,
            comment,
        } => out.push(add_table(*family, name, comment)?),
        NftOp::DeleteTable { family, name } => out.push(delete_table(*family, name)?),
        NftOp::DestroyTable { family, name } => {
            // Destroy = create if missing (no-op if present), then delete: never ENOENT.
            out.push(add_table(*family, name, &None)?);
            out.push(delete_table(*family, name)?);
        }
        NftOp::AddChain {
            family,
            table,
            chain,
        } => out.push(add_chain(*family, table, chain)?),
        NftOp::FlushChain {
            family,
            table,
            chain,
        } => out.push(rule_msg(*family, PLAIN, table, chain, None)?),
        NftOp::DeleteChain {
            family,
            table,
            chain,
        } => out.push(delete_chain(*family, table, chain)?),
        NftOp::DestroyChain {
            family,
            table,
            chain,
        } => {
            out.push(nf_msg(
                *family,
                CREATE,
                NfTablesMessage::NewChain(ChainMessage {
                    attributes: chain_ids(table, chain)?,
                }),
            ));
            out.push(delete_chain(*family, table, chain)?);
        }
        NftOp::AddSet { family, table, set } => {
            out.push(add_set(*family, table, set, set_id, CREATE)?);
        }
        NftOp::CreateSet { family, table, set } => {
            out.push(add_set(*family, table, set, set_id, CREATE | NLM_F_EXCL)?);
        }
        NftOp::FlushSet { family, table, set } => {
            check_name("table", table)?;
            check_name("set", set)?;
            out.push(element_msgs(*family, false, table, set, vec![]).remove(0));
        }
        NftOp::DeleteSet { family, table, set } => {
            check_name("table", table)?;
            check_name("set", set)?;
            out.push(nf_msg(
                *family,
                PLAIN,
                NfTablesMessage::DeleteSet(SetMessage {
                    attributes: vec![
                        SetAttribute::Table(table.clone()),
                        SetAttribute::Name(set.clone()),
                    ],
                }),
            ));
        }
        NftOp::AddElements {
            family,
            table,
            set,
            key,
            data,
            elements,
        } => out.extend(add_elements(*family, table, set, key, data, elements)?),
        NftOp::DeleteElements {
            family,
            table,
            set,
            key,
            keys,
        } => out.extend(delete_elements(*family, table, set, key, keys)?),
        NftOp::AddRule {
            family,
            table,
            rule,
        } => out.push(add_rule(*family, table, rule, CREATE | NLM_F_APPEND)?),
        NftOp::InsertRule {
            family,
            table,
            rule,
        } => out.push(add_rule(*family, table, rule, CREATE)?),
        NftOp::DeleteRule {
            family,
            table,
            chain,
            handle,
        } => out.push(rule_msg(*family, PLAIN, table, chain, Some(*handle))?),
    }
    Ok(())
}

fn add_table(
    family: Family,
    name: &str,
    comment: &Option<String>,
) -> Result<NetlinkMessage<NetfilterMessage>, EncodeError> {
    check_name("table", name)?;
    check_comment(comment)?;
    let mut attrs = vec![TableAttribute::Name(name.to_owned())];
    if let Some(c) = comment {
        attrs.push(TableAttribute::UserData(udata_comment(UDATA_COMMENT, c)));
    }
    Ok(nf_msg(
        family,
        CREATE,
        NfTablesMessage::NewTable(TableMessage { attributes: attrs }),
    ))
}

fn delete_table(
    family: Family,
    name: &str,
) -> Result<NetlinkMessage<NetfilterMessage>, EncodeError> {
    check_name("table", name)?;
    Ok(nf_msg(
        family,
        PLAIN,
        NfTablesMessage::DeleteTable(TableMessage {
            attributes: vec![TableAttribute::Name(name.to_owned())],
        }),
    ))
}

/// The table and name attributes of a chain.
fn chain_ids(table: &str, chain: &str) -> Result<Vec<ChainAttribute>, EncodeError> {
    check_name("table", table)?;
    check_name("chain", chain)?;
    Ok(vec![
        ChainAttribute::Table(table.to_owned()),
        ChainAttribute::Name(chain.to_owned()),
    ])
}

fn add_chain(
    family: Family,
    table: &str,
    chain: &super::ChainSpec,
) -> Result<NetlinkMessage<NetfilterMessage>, EncodeError> {
    let mut attrs = chain_ids(table, &chain.name)?;
    check_comment(&chain.comment)?;
    if let Some(b) = &chain.base {
        attrs.push(ChainAttribute::Hook(vec![
            Hook::Number(hook_number(family, b.hook)),
            Hook::Priority(b.priority as u32),
        ]));
        if let Some(p) = b.policy {
            attrs.push(ChainAttribute::Policy(match p {
                Policy::Accept => NF_ACCEPT,
                Policy::Drop => NF_DROP,
            }));
        }
        attrs.push(ChainAttribute::Type(b.kind.name().to_owned()));
    }
    if let Some(c) = &chain.comment {
        attrs.push(ChainAttribute::UserData(udata_comment(UDATA_COMMENT, c)));
    }
    Ok(nf_msg(
        family,
        CREATE,
        NfTablesMessage::NewChain(ChainMessage { attributes: attrs }),
    ))
}

fn delete_chain(
    family: Family,
    table: &str,
    chain: &str,
) -> Result<NetlinkMessage<NetfilterMessage>, EncodeError> {
    Ok(nf_msg(
        family,
        PLAIN,
        NfTablesMessage::DeleteChain(ChainMessage {
            attributes: chain_ids(table, chain)?,
        }),
    ))
}

/// A `NEWSET` (`flags` says whether an existing set is an error).
fn add_set(
    family: Family,
    table: &str,
    set: &super::SetSpec,
    set_id: &mut u32,
    flags: u16,
) -> Result<NetlinkMessage<NetfilterMessage>, EncodeError> {
    check_name("table", table)?;
    check_name("set", &set.name)?;
    check_comment(&set.comment)?;
    if set.key.is_empty() {
        return Err(EncodeError("a set needs a key type".into()));
    }
    *set_id += 1;
    let mut attrs = vec![
        SetAttribute::Table(table.to_owned()),
        SetAttribute::Name(set.name.clone()),
    ];
    let set_flags = if set.data.is_some() { NFT_SET_MAP } else { 0 };
    attrs.push(SetAttribute::Flags(SetFlags::from_bits_retain(set_flags)));
    attrs.push(SetAttribute::KeyType(type_id(&set.key)));
    attrs.push(SetAttribute::KeyLen(type_len(&set.key) as u32));
    match &set.data {
        None => {}
        Some(MapData::Verdict) => {
            attrs.push(SetAttribute::DataType(NFT_DATA_VERDICT));
            attrs.push(SetAttribute::DataLen(0));
        }
        Some(MapData::Values(t)) => {
            if t.is_empty() {
                return Err(EncodeError("a map needs a data type".into()));
            }
            attrs.push(SetAttribute::DataType(type_id(t)));
            attrs.push(SetAttribute::DataLen(type_len(t) as u32));
        }
    }
    attrs.push(SetAttribute::Id(*set_id));
    let udata = set_udata(set);
    if !udata.is_empty() {
        attrs.push(SetAttribute::UserData(udata));
    }
    Ok(nf_msg(
        family,
        flags,
        NfTablesMessage::NewSet(SetMessage { attributes: attrs }),
    ))
}

/// Element messages of `table`/`set` (`NEWSETELEM` when `add`, else `DELSETELEM`): one per
/// chunk of `lists` (one without elements, a flush, when `lists` is empty).
fn element_msgs(
    family: Family,
    add: bool,
    table: &str,
    set: &str,
    lists: Vec<Vec<ListAttribute<SetElementAttribute>>>,
) -> Vec<NetlinkMessage<NetfilterMessage>> {
    let msg = |elements: Option<Vec<ListAttribute<SetElementAttribute>>>| {
        let mut attributes = vec![
            SetElementList::Table(table.to_owned()),
            SetElementList::Set(set.to_owned()),
        ];
        attributes.extend(elements.map(SetElementList::Elements));
        let m = SetElementMessage { attributes };
        if add {
            nf_msg(family, CREATE, NfTablesMessage::NewSetElement(m))
        } else {
            nf_msg(family, PLAIN, NfTablesMessage::DeleteSetElement(m))
        }
    };
    if lists.is_empty() {
        return vec![msg(None)];
    }
    lists.into_iter().map(|l| msg(Some(l))).collect()
}

/// One element's attributes: key, value (for maps), comment.
fn element_attrs(
    key: &[super::DataType],
    data: &Option<MapData>,
    e: &super::Element,
) -> Result<Vec<SetElementAttribute>, EncodeError> {
    check_comment(&e.comment)?;
    let mut attrs = vec![SetElementAttribute::Key(DataAttribute::Value(
        expr::key_bytes(key, &e.key)?,
    ))];
    match (data, &e.value) {
        (None, None) => {}
        (Some(MapData::Verdict), Some(ElemValue::Verdict(v))) => {
            attrs.push(SetElementAttribute::Data(DataAttribute::Verdict(
                expr::verdict_attrs(v),
            )));
        }
        (Some(MapData::Values(t)), Some(ElemValue::Values(vs))) => {
            attrs.push(SetElementAttribute::Data(DataAttribute::Value(
                expr::key_bytes(t, vs)?,
            )));
        }
        _ => {
            return Err(EncodeError(
                "element value does not match the set's data type".into(),
            ));
        }
    }
    if let Some(c) = &e.comment {
        attrs.push(SetElementAttribute::UserData(udata_comment(
            UDATA_COMMENT,
            c,
        )));
    }
    Ok(attrs)
}

fn add_elements(
    family: Family,
    table: &str,
    set: &str,
    key: &[super::DataType],
    data: &Option<MapData>,
    elements: &[super::Element],
) -> Result<Vec<NetlinkMessage<NetfilterMessage>>, EncodeError> {
    check_name("table", table)?;
    check_name("set", set)?;
    if elements.is_empty() {
        return Ok(vec![]);
    }
    let mut chunks = Chunker::default();
    for e in elements {
        chunks.push(ListAttribute::Element(element_attrs(key, data, e)?));
    }
    Ok(element_msgs(family, true, table, set, chunks.finish()))
}

fn delete_elements(
    family: Family,
    table: &str,
    set: &str,
    key: &[super::DataType],
    keys: &[Vec<super::Value>],
) -> Result<Vec<NetlinkMessage<NetfilterMessage>>, EncodeError> {
    check_name("table", table)?;
    check_name("set", set)?;
    if keys.is_empty() {
        return Ok(vec![]);
    }
    let mut chunks = Chunker::default();
    for k in keys {
        chunks.push(ListAttribute::Element(vec![SetElementAttribute::Key(
            DataAttribute::Value(expr::key_bytes(key, k)?),
        )]));
    }
    Ok(element_msgs(family, false, table, set, chunks.finish()))
}

/// A `DELRULE` for a whole chain (a flush) or, with `handle`, one rule.
fn rule_msg(
    family: Family,
    flags: u16,
    table: &str,
    chain: &str,
    handle: Option<u64>,
) -> Result<NetlinkMessage<NetfilterMessage>, EncodeError> {
    check_name("table", table)?;
    check_name("chain", chain)?;
    let mut attributes = vec![
        RuleAttribute::Table(table.to_owned()),
        RuleAttribute::Chain(chain.to_owned()),
    ];
    attributes.extend(handle.map(RuleAttribute::Handle));
    Ok(nf_msg(
        family,
        flags,
        NfTablesMessage::DeleteRule(RuleMessage { attributes }),
    ))
}

/// A `NEWRULE` (`flags` with `NLM_F_APPEND` appends, without it inserts at the head).
fn add_rule(
    family: Family,
    table: &str,
    rule: &super::RuleSpec,
    flags: u16,
) -> Result<NetlinkMessage<NetfilterMessage>, EncodeError> {
    check_name("table", table)?;
    check_name("chain", &rule.chain)?;
    check_comment(&rule.comment)?;
    let exprs = expr::encode_rule(&rule.stmts, family)?;
    if exprs.as_slice().buffer_len() > MAX_NLA_PAYLOAD {
        return Err(EncodeError(
            "rule too large for one netlink attribute".into(),
        ));
    }
    let mut attrs = vec![
        RuleAttribute::Table(table.to_owned()),
        RuleAttribute::Chain(rule.chain.clone()),
        RuleAttribute::Expressions(exprs),
    ];
    if let Some(c) = &rule.comment {
        attrs.push(RuleAttribute::UserData(udata_comment(UDATA_COMMENT, c)));
    }
    Ok(nf_msg(
        family,
        flags,
        NfTablesMessage::NewRule(RuleMessage { attributes: attrs }),
    ))
}

/// Encodes every op of `plan` (sequence numbers are assigned when sending).
pub(crate) fn encode_plan(plan: &NftPlan) -> Result<Vec<Msg>, NftError> {
    let mut msgs = Vec::with_capacity(plan.ops.len());
    let mut set_id = 0u32;
    for (index, op) in plan.ops.iter().enumerate() {
        let mut out = Vec::new();
        encode_op(op, &mut set_id, &mut out).map_err(|e| NftError::Invalid {
            index,
            op: op.to_string(),
            reason: e.0,
        })?;
        msgs.extend(out.into_iter().map(|msg| Msg { op: index, msg }));
    }
    Ok(msgs)
}

fn serialize_into(buf: &mut Vec<u8>, m: &NetlinkMessage<NetfilterMessage>) {
    let start = buf.len();
    buf.resize(start + m.buffer_len(), 0);
    m.serialize(&mut buf[start..]);
}

/// The batch as sent: begin (seq `base`), messages (`base + 1 + i`), end.
pub(crate) fn batch_bytes(msgs: &[Msg], base: u32) -> Vec<u8> {
    let mut buf = Vec::with_capacity(msgs.iter().map(|m| m.msg.buffer_len()).sum::<usize>() + 40);
    serialize_into(&mut buf, &control(ControlMessage::BatchBegin, base));
    for (i, m) in msgs.iter().enumerate() {
        let mut msg = m.msg.clone();
        msg.header.sequence_number = base.wrapping_add(1 + i as u32);
        serialize_into(&mut buf, &msg);
    }
    serialize_into(
        &mut buf,
        &control(
            ControlMessage::BatchEnd,
            base.wrapping_add(1 + msgs.len() as u32),
        ),
    );
    buf
}

/// A data message from the kernel, kept after its datagram's buffer is reused.
pub(crate) struct RawMsg {
    /// Payload after the netlink header (for nfnetlink: nfgenmsg + attributes).
    pub(crate) payload: Vec<u8>,
}

impl RawMsg {
    pub(crate) fn of(m: nl::Msg<'_>) -> RawMsg {
        RawMsg {
            payload: m.payload.to_vec(),
        }
    }
}

/// The receive buffer: a batch's acks arrive together.
const RECV_BUF_SIZE: usize = 256 * 1024;

impl NftError {
    fn from_recv(e: nl::RecvError) -> NftError {
        match e {
            nl::RecvError::Io(e) => NftError::Socket(e),
            nl::RecvError::Truncated(len) => NftError::Truncated { len },
        }
    }

    fn from_reply(request: &str, e: ReplyError<std::convert::Infallible>) -> NftError {
        match e {
            ReplyError::Recv(e) => NftError::from_recv(e),
            ReplyError::BadLength(nl::BadLength(len)) | ReplyError::ShortError(len) => {
                NftError::Decode(format!("bad netlink message length {len}"))
            }
            ReplyError::Kernel(status) => NftError::Request {
                request: request.to_owned(),
                source: io::Error::from_raw_os_error(status.errno),
            },
            ReplyError::Data(never) => match never {},
        }
    }
}

/// An nfnetlink socket bound to the calling thread's network namespace.
pub(crate) struct NfSocket {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl NfSocket {
    pub(crate) fn open() -> Result<NfSocket, NftError> {
        // Best effort inside `nl::open`: smaller acks and kernel error strings.
        let mut sock = nl::open(NETLINK_NETFILTER).map_err(NftError::Socket)?;
        sock.bind_auto().map_err(NftError::Socket)?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(NftError::Socket)?;
        let seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        Ok(NfSocket {
            sock,
            seq,
            buf: Vec::with_capacity(RECV_BUF_SIZE),
        })
    }

    fn next_seq(&mut self, n: u32) -> u32 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(n);
        s
    }

    /// Grows the socket buffers so a batch of `bytes` and its `acks` fit.
    fn size_buffers(&self, bytes: usize, acks: usize) {
        use nix::sys::socket::{setsockopt, sockopt};
        let fd = self.sock.as_fd();
        let want_snd = bytes + 4096;
        if want_snd > 200 * 1024 {
            // SO_SNDBUFFORCE needs CAP_NET_ADMIN (which nf_tables changes need anyway).
            if setsockopt(&fd, sockopt::SndBufForce, &want_snd).is_err() {
                let _ = setsockopt(&fd, sockopt::SndBuf, &want_snd);
            }
        }
        // Each ack is a small skb, but its memory accounting (truesize) is about 1 KiB.
        let want_rcv = acks * 1024 + 64 * 1024;
        if want_rcv > 200 * 1024 && setsockopt(&fd, sockopt::RcvBufForce, &want_rcv).is_err() {
            let _ = setsockopt(&fd, sockopt::RcvBuf, &want_rcv);
        }
    }

    /// The answers to a batch sent with sequence numbers `base ..= base + n + 1`: how many
    /// messages were acknowledged and the first error (its sequence number and status). The
    /// kernel processes the whole batch inside sendmsg(), so every answer is queued by now:
    /// drains without blocking.
    fn collect_acks(
        &mut self,
        base: u32,
        n: u32,
    ) -> Result<(u32, Option<(u32, nl::Status)>), NftError> {
        let mut acked = 0u32;
        let mut first_err: Option<(u32, nl::Status)> = None;
        loop {
            let len = match nl::recv(&self.sock, &mut self.buf, libc::MSG_DONTWAIT) {
                Ok(len) => len,
                Err(nl::RecvError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(NftError::from_recv(e)),
            };
            for r in nl::messages(&self.buf[..len]) {
                let r = r.map_err(|nl::BadLength(len)| {
                    NftError::Decode(format!("bad netlink message length {len}"))
                })?;
                if r.msg_type != nl::NLMSG_ERROR || r.seq < base || r.seq > base + n + 1 {
                    continue;
                }
                match r.status() {
                    // An error message too short for an errno counts as an ack, as before.
                    None => acked += 1,
                    Some(s) if s.errno == 0 => acked += 1,
                    Some(s) => {
                        if first_err.is_none() {
                            first_err = Some((r.seq, s));
                        }
                    }
                }
            }
        }
        Ok((acked, first_err))
    }

    /// Sends `msgs` (whole netlink messages, built by the caller; their sequence numbers are
    /// set here, and each must ask for an ACK) as one transaction. With `genid`, the batch
    /// begin carries `NFNL_BATCH_GENID`, as iptables-nft and nft send it: the kernel refuses
    /// the whole batch with `ERESTART` when the ruleset generation is no longer `genid` (the
    /// ruleset changed since it was read). A refusal is `NftError::Rejected` whose `index`
    /// is the failing message's (`None` for the batch itself); nothing was changed then.
    pub(crate) fn transact_raw(
        &mut self,
        msgs: &[Vec<u8>],
        genid: Option<u32>,
    ) -> Result<(), NftError> {
        if msgs.is_empty() {
            return Ok(());
        }
        let n = msgs.len() as u32;
        let base = self.next_seq(n + 2);
        let total: usize = msgs.iter().map(Vec::len).sum();
        let mut bytes = Vec::with_capacity(total + 48);
        bytes.extend(raw_batch_control(NFNL_MSG_BATCH_BEGIN, base, genid));
        for (i, m) in msgs.iter().enumerate() {
            if m.len() < nl::NLMSG_HDRLEN {
                return Err(NftError::Decode(
                    "batch message shorter than its header".into(),
                ));
            }
            let start = bytes.len();
            bytes.extend_from_slice(m);
            let seq = base.wrapping_add(1 + i as u32);
            bytes[start + 8..start + 12].copy_from_slice(&seq.to_ne_bytes());
        }
        bytes.extend(raw_batch_control(
            NFNL_MSG_BATCH_END,
            base.wrapping_add(1 + n),
            None,
        ));
        self.exchange(&bytes, base, n, |index| (index, None))
    }

    /// Sends the batch `bytes` (`n` messages between a begin and an end numbered from `base`)
    /// in one `sendmsg` and collects every acknowledgement. A refusal is
    /// `NftError::Rejected`, its index and op given by `which` from the failing message's index
    /// (`None` for the batch itself).
    fn exchange(
        &mut self,
        bytes: &[u8],
        base: u32,
        n: u32,
        which: impl FnOnce(Option<usize>) -> (Option<usize>, Option<String>),
    ) -> Result<(), NftError> {
        self.size_buffers(bytes.len(), n as usize);
        nl::send(&self.sock, bytes).map_err(NftError::Socket)?;
        let (acked, first_err) = self.collect_acks(base, n)?;
        if let Some((seq, status)) = first_err {
            let idx = seq.wrapping_sub(base);
            let (index, op) = which((idx >= 1 && idx <= n).then(|| (idx - 1) as usize));
            return Err(NftError::Rejected {
                index,
                op,
                message: status.ext_ack,
                source: io::Error::from_raw_os_error(status.errno),
            });
        }
        all_acked(acked, n)
    }

    /// Sends the batch in one `sendmsg` and collects every acknowledgement.
    pub(crate) fn transact(&mut self, plan: &NftPlan, msgs: Vec<Msg>) -> Result<(), NftError> {
        if msgs.is_empty() {
            return Ok(());
        }
        let n = msgs.len() as u32;
        let base = self.next_seq(n + 2);
        let bytes = batch_bytes(&msgs, base);
        self.exchange(&bytes, base, n, |msg| {
            let op_index = msg.map(|i| msgs[i].op);
            let op = op_index
                .and_then(|i| plan.ops.get(i))
                .map(ToString::to_string);
            (op_index, op)
        })
    }

    /// Sends one request for `family` with `flags` (besides `NLM_F_REQUEST`); returns its
    /// sequence number.
    fn send_request<M: Into<NetfilterMessageInner>>(
        &mut self,
        family: u8,
        inner: M,
        flags: u16,
    ) -> Result<u32, NftError> {
        let seq = self.next_seq(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut m = NetlinkMessage::new(
            header,
            NetlinkPayload::from(NetfilterMessage::new(
                NetfilterHeader::new(NetfilterProtoFamily::from(family), 0, 0),
                inner,
            )),
        );
        m.finalize();
        let mut bytes = Vec::new();
        serialize_into(&mut bytes, &m);
        nl::send(&self.sock, &bytes).map_err(NftError::Socket)?;
        Ok(seq)
    }

    /// Sends a dump request and hands each data message to `each` as it arrives, so the
    /// caller keeps only what it needs (a conntrack table can be huge). Reads to the end of
    /// the dump even when the kernel flags it interrupted (`NLM_F_DUMP_INTR`: the table
    /// changed under it, entries may be missing or repeated); returns whether it was.
    pub(crate) fn dump_each<M: Into<NetfilterMessageInner>>(
        &mut self,
        what: &str,
        family: u8,
        inner: M,
        each: &mut dyn FnMut(nl::Msg<'_>),
    ) -> Result<bool, NftError> {
        self.dump_flow(what, family, inner, &mut |m| {
            each(m);
            Flow::Continue
        })
    }

    /// [`NfSocket::dump_each`] that stops reading when `each` answers [`Flow::Stop`]: the
    /// rest of the dump stays unread on this socket, which must then be dropped, not reused.
    /// Returns whether the dump was flagged interrupted in what was read.
    pub(crate) fn dump_until<M: Into<NetfilterMessageInner>>(
        mut self,
        what: &str,
        family: u8,
        inner: M,
        each: &mut dyn FnMut(nl::Msg<'_>) -> Flow,
    ) -> Result<bool, NftError> {
        self.dump_flow(what, family, inner, each)
    }

    /// The dump both of those run: `each` decides whether to read on.
    fn dump_flow<M: Into<NetfilterMessageInner>>(
        &mut self,
        what: &str,
        family: u8,
        inner: M,
        each: &mut dyn FnMut(nl::Msg<'_>) -> Flow,
    ) -> Result<bool, NftError> {
        let seq = self.send_request(family, inner, NLM_F_DUMP)?;
        let mut on_data =
            |m: nl::Msg<'_>| -> Result<Flow, std::convert::Infallible> { Ok(each(m)) };
        nl::replies(&self.sock, &mut self.buf, seq, &mut on_data)
            .map(|o| o.interrupted)
            .map_err(|e| NftError::from_reply(what, e))
    }

    /// Sends a GET request (`dump` adds `NLM_F_DUMP`, otherwise an ACK is asked for) and
    /// returns the data messages. `Err(Request)` carries the kernel's errno (e.g. ENOENT); an
    /// interrupted dump is `EINTR`.
    pub(crate) fn request<M: Into<NetfilterMessageInner>>(
        &mut self,
        what: &str,
        family: u8,
        inner: M,
        dump: bool,
    ) -> Result<Vec<RawMsg>, NftError> {
        let flags = if dump { NLM_F_DUMP } else { NLM_F_ACK };
        let seq = self.send_request(family, inner, flags)?;
        let mut data = Vec::new();
        let mut on_data = |m: nl::Msg<'_>| {
            data.push(RawMsg::of(m));
            Ok(Flow::Continue)
        };
        let outcome = nl::replies(&self.sock, &mut self.buf, seq, &mut on_data)
            .map_err(|e| NftError::from_reply(what, e))?;
        if outcome.interrupted {
            return Err(NftError::Request {
                request: what.to_owned(),
                source: io::Error::from_raw_os_error(libc::EINTR),
            });
        }
        Ok(data)
    }
}
