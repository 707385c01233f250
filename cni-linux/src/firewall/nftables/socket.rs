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

use super::expr::{self, EncodeError};
use super::{
    ElemValue, Family, MAX_COMMENT_LEN, MapData, NftError, NftOp, NftPlan, Policy, type_id,
    type_len,
};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NFT_SET_MAP: u32 = 0x8;
const NFT_DATA_VERDICT: u32 = 0xffff_ff00;

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
        [super::DataType::Ifname] => Some(1),
        [_] => Some(2),
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
        u32_tlv(0, b);
    }
    if let Some(MapData::Values(t)) = &set.data
        && let Some(b) = byteorder(t)
    {
        u32_tlv(1, b);
    }
    if let Some(c) = &set.comment {
        v.extend(udata_comment(7, c));
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
        } => {
            check_name("table", name)?;
            check_comment(comment)?;
            let mut attrs = vec![TableAttribute::Name(name.clone())];
            if let Some(c) = comment {
                attrs.push(TableAttribute::UserData(udata_comment(0, c)));
            }
            out.push(nf_msg(
                *family,
                CREATE,
                NfTablesMessage::NewTable(TableMessage { attributes: attrs }),
            ));
        }
        NftOp::DeleteTable { family, name } | NftOp::DestroyTable { family, name } => {
            check_name("table", name)?;
            if matches!(op, NftOp::DestroyTable { .. }) {
                out.push(nf_msg(
                    *family,
                    CREATE,
                    NfTablesMessage::NewTable(TableMessage {
                        attributes: vec![TableAttribute::Name(name.clone())],
                    }),
                ));
            }
            out.push(nf_msg(
                *family,
                PLAIN,
                NfTablesMessage::DeleteTable(TableMessage {
                    attributes: vec![TableAttribute::Name(name.clone())],
                }),
            ));
        }
        NftOp::AddChain {
            family,
            table,
            chain,
        } => {
            check_name("table", table)?;
            check_name("chain", &chain.name)?;
            check_comment(&chain.comment)?;
            let mut attrs = vec![
                ChainAttribute::Table(table.clone()),
                ChainAttribute::Name(chain.name.clone()),
            ];
            if let Some(b) = &chain.base {
                attrs.push(ChainAttribute::Hook(vec![
                    Hook::Number(hook_number(*family, b.hook)),
                    Hook::Priority(b.priority as u32),
                ]));
                if let Some(p) = b.policy {
                    attrs.push(ChainAttribute::Policy(match p {
                        Policy::Accept => 1,
                        Policy::Drop => 0,
                    }));
                }
                attrs.push(ChainAttribute::Type(b.kind.name().to_owned()));
            }
            if let Some(c) = &chain.comment {
                attrs.push(ChainAttribute::UserData(udata_comment(0, c)));
            }
            out.push(nf_msg(
                *family,
                CREATE,
                NfTablesMessage::NewChain(ChainMessage { attributes: attrs }),
            ));
        }
        NftOp::FlushChain {
            family,
            table,
            chain,
        } => {
            check_name("table", table)?;
            check_name("chain", chain)?;
            out.push(nf_msg(
                *family,
                PLAIN,
                NfTablesMessage::DeleteRule(RuleMessage {
                    attributes: vec![
                        RuleAttribute::Table(table.clone()),
                        RuleAttribute::Chain(chain.clone()),
                    ],
                }),
            ));
        }
        NftOp::DeleteChain {
            family,
            table,
            chain,
        }
        | NftOp::DestroyChain {
            family,
            table,
            chain,
        } => {
            check_name("table", table)?;
            check_name("chain", chain)?;
            let attrs = vec![
                ChainAttribute::Table(table.clone()),
                ChainAttribute::Name(chain.clone()),
            ];
            if matches!(op, NftOp::DestroyChain { .. }) {
                out.push(nf_msg(
                    *family,
                    CREATE,
                    NfTablesMessage::NewChain(ChainMessage {
                        attributes: attrs.clone(),
                    }),
                ));
            }
            out.push(nf_msg(
                *family,
                PLAIN,
                NfTablesMessage::DeleteChain(ChainMessage { attributes: attrs }),
            ));
        }
        NftOp::AddSet { family, table, set } | NftOp::CreateSet { family, table, set } => {
            check_name("table", table)?;
            check_name("set", &set.name)?;
            check_comment(&set.comment)?;
            if set.key.is_empty() {
                return Err(EncodeError("a set needs a key type".into()));
            }
            *set_id += 1;
            let mut attrs = vec![
                SetAttribute::Table(table.clone()),
                SetAttribute::Name(set.name.clone()),
            ];
            let flags = if set.data.is_some() { NFT_SET_MAP } else { 0 };
            attrs.push(SetAttribute::Flags(SetFlags::from_bits_retain(flags)));
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
            let flags = if matches!(op, NftOp::CreateSet { .. }) {
                CREATE | NLM_F_EXCL
            } else {
                CREATE
            };
            out.push(nf_msg(
                *family,
                flags,
                NfTablesMessage::NewSet(SetMessage { attributes: attrs }),
            ));
        }
        NftOp::FlushSet { family, table, set } => {
            check_name("table", table)?;
            check_name("set", set)?;
            out.push(nf_msg(
                *family,
                PLAIN,
                NfTablesMessage::DeleteSetElement(SetElementMessage {
                    attributes: vec![
                        SetElementList::Table(table.clone()),
                        SetElementList::Set(set.clone()),
                    ],
                }),
            ));
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
        } => {
            check_name("table", table)?;
            check_name("set", set)?;
            if elements.is_empty() {
                return Ok(());
            }
            let mut chunks = Chunker::default();
            for e in elements {
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
                    attrs.push(SetElementAttribute::UserData(udata_comment(0, c)));
                }
                chunks.push(ListAttribute::Element(attrs));
            }
            for list in chunks.finish() {
                out.push(nf_msg(
                    *family,
                    CREATE,
                    NfTablesMessage::NewSetElement(SetElementMessage {
                        attributes: vec![
                            SetElementList::Table(table.clone()),
                            SetElementList::Set(set.clone()),
                            SetElementList::Elements(list),
                        ],
                    }),
                ));
            }
        }
        NftOp::DeleteElements {
            family,
            table,
            set,
            key,
            keys,
        } => {
            check_name("table", table)?;
            check_name("set", set)?;
            if keys.is_empty() {
                return Ok(());
            }
            let mut chunks = Chunker::default();
            for k in keys {
                chunks.push(ListAttribute::Element(vec![SetElementAttribute::Key(
                    DataAttribute::Value(expr::key_bytes(key, k)?),
                )]));
            }
            for list in chunks.finish() {
                out.push(nf_msg(
                    *family,
                    PLAIN,
                    NfTablesMessage::DeleteSetElement(SetElementMessage {
                        attributes: vec![
                            SetElementList::Table(table.clone()),
                            SetElementList::Set(set.clone()),
                            SetElementList::Elements(list),
                        ],
                    }),
                ));
            }
        }
        NftOp::AddRule {
            family,
            table,
            rule,
        }
        | NftOp::InsertRule {
            family,
            table,
            rule,
        } => {
            check_name("table", table)?;
            check_name("chain", &rule.chain)?;
            check_comment(&rule.comment)?;
            let exprs = expr::encode_rule(&rule.stmts, *family)?;
            if exprs.as_slice().buffer_len() > MAX_NLA_PAYLOAD {
                return Err(EncodeError(
                    "rule too large for one netlink attribute".into(),
                ));
            }
            let mut attrs = vec![
                RuleAttribute::Table(table.clone()),
                RuleAttribute::Chain(rule.chain.clone()),
                RuleAttribute::Expressions(exprs),
            ];
            if let Some(c) = &rule.comment {
                attrs.push(RuleAttribute::UserData(udata_comment(0, c)));
            }
            let flags = if matches!(op, NftOp::AddRule { .. }) {
                CREATE | NLM_F_APPEND
            } else {
                CREATE
            };
            out.push(nf_msg(
                *family,
                flags,
                NfTablesMessage::NewRule(RuleMessage { attributes: attrs }),
            ));
        }
        NftOp::DeleteRule {
            family,
            table,
            chain,
            handle,
        } => {
            check_name("table", table)?;
            check_name("chain", chain)?;
            out.push(nf_msg(
                *family,
                PLAIN,
                NfTablesMessage::DeleteRule(RuleMessage {
                    attributes: vec![
                        RuleAttribute::Table(table.clone()),
                        RuleAttribute::Chain(chain.clone()),
                        RuleAttribute::Handle(*handle),
                    ],
                }),
            ));
        }
    }
    Ok(())
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

/// A raw netlink message from the kernel.
pub(crate) struct RawMsg {
    pub(crate) msg_type: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
    /// Payload after the netlink header (for nfnetlink: nfgenmsg + attributes).
    pub(crate) payload: Vec<u8>,
}

fn parse_msgs(buf: &[u8], out: &mut Vec<RawMsg>) -> Result<(), NftError> {
    let mut off = 0;
    while off + 16 <= buf.len() {
        let u32_at = |o: usize| u32::from_ne_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]);
        let u16_at = |o: usize| u16::from_ne_bytes([buf[o], buf[o + 1]]);
        let len = u32_at(off) as usize;
        if len < 16 || off + len > buf.len() {
            return Err(NftError::Decode(format!(
                "bad netlink message length {len}"
            )));
        }
        out.push(RawMsg {
            msg_type: u16_at(off + 4),
            flags: u16_at(off + 6),
            seq: u32_at(off + 8),
            payload: buf[off + 16..off + len].to_vec(),
        });
        off += (len + 3) & !3;
    }
    Ok(())
}

/// An NLMSG_ERROR: errno (0 for an ack) and the extended ack message, if any.
fn parse_error(m: &RawMsg) -> (i32, Option<String>) {
    let p = &m.payload;
    if p.len() < 4 {
        return (0, None);
    }
    let code = i32::from_ne_bytes([p[0], p[1], p[2], p[3]]);
    let mut msg = None;
    if m.flags & NLM_F_ACK_TLVS != 0 && p.len() >= 20 {
        let orig_len = u32::from_ne_bytes([p[4], p[5], p[6], p[7]]) as usize;
        let mut off = if m.flags & NLM_F_CAPPED != 0 {
            20
        } else {
            4 + ((orig_len + 3) & !3)
        };
        while off + 4 <= p.len() {
            let alen = u16::from_ne_bytes([p[off], p[off + 1]]) as usize;
            let akind = u16::from_ne_bytes([p[off + 2], p[off + 3]]) & 0x3fff;
            if alen < 4 || off + alen > p.len() {
                break;
            }
            if akind == 1 {
                let s = &p[off + 4..off + alen];
                let s = s.split(|b| *b == 0).next().unwrap_or(s);
                msg = Some(String::from_utf8_lossy(s).into_owned());
            }
            off += (alen + 3) & !3;
        }
    }
    (code, msg)
}

/// An nfnetlink socket bound to the calling thread's network namespace.
pub(crate) struct NfSocket {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl NfSocket {
    pub(crate) fn open() -> Result<NfSocket, NftError> {
        let mut sock = Socket::new(NETLINK_NETFILTER).map_err(NftError::Socket)?;
        sock.bind_auto().map_err(NftError::Socket)?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(NftError::Socket)?;
        // Best effort: smaller acks and kernel error strings.
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_ext_ack(true);
        let seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        Ok(NfSocket {
            sock,
            seq,
            buf: vec![0; 256 * 1024],
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

    fn recv_into(&mut self, out: &mut Vec<RawMsg>, nonblocking: bool) -> Result<bool, NftError> {
        let flags = if nonblocking { libc::MSG_DONTWAIT } else { 0 };
        let n = match self.sock.recv(&mut &mut self.buf[..], flags) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
            Err(e) => return Err(NftError::Socket(e)),
        };
        parse_msgs(&self.buf[..n], out)?;
        Ok(true)
    }

    /// Sends the batch in one `sendmsg` and collects every acknowledgement.
    pub(crate) fn transact(&mut self, plan: &NftPlan, msgs: Vec<Msg>) -> Result<(), NftError> {
        if msgs.is_empty() {
            return Ok(());
        }
        let n = msgs.len() as u32;
        let base = self.next_seq(n + 2);
        let bytes = batch_bytes(&msgs, base);
        self.size_buffers(bytes.len(), msgs.len());
        let sent = self.sock.send(&bytes, 0).map_err(NftError::Socket)?;
        if sent != bytes.len() {
            return Err(NftError::Socket(io::Error::other("short netlink send")));
        }
        // The kernel processes the whole batch inside sendmsg(), so every answer is queued
        // by now: drain without blocking.
        let mut acked = 0u32;
        let mut first_err: Option<(u32, i32, Option<String>)> = None;
        let mut replies = Vec::new();
        loop {
            replies.clear();
            if !self.recv_into(&mut replies, true)? {
                break;
            }
            for r in &replies {
                if r.msg_type != NLMSG_ERROR || r.seq < base || r.seq > base + n + 1 {
                    continue;
                }
                let (code, text) = parse_error(r);
                if code == 0 {
                    acked += 1;
                } else if first_err.is_none() {
                    first_err = Some((r.seq, -code, text));
                }
            }
        }
        if let Some((seq, errno, message)) = first_err {
            let idx = seq.wrapping_sub(base);
            let op_index = (idx >= 1 && idx <= n).then(|| msgs[(idx - 1) as usize].op);
            return Err(NftError::Rejected {
                index: op_index,
                op: op_index
                    .and_then(|i| plan.ops.get(i))
                    .map(ToString::to_string),
                message,
                source: io::Error::from_raw_os_error(errno),
            });
        }
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

    /// Sends a dump request and hands each data message to `each` as it arrives, so the
    /// caller keeps only what it needs (a conntrack table can be huge). Reads to the end of
    /// the dump even when the kernel flags it interrupted (`NLM_F_DUMP_INTR`: the table
    /// changed under it, entries may be missing or repeated); returns whether it was.
    pub(crate) fn dump_each<M: Into<NetfilterMessageInner>>(
        &mut self,
        what: &str,
        family: u8,
        inner: M,
        each: &mut dyn FnMut(&RawMsg),
    ) -> Result<bool, NftError> {
        let seq = self.next_seq(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
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
        self.sock.send(&bytes, 0).map_err(NftError::Socket)?;
        let mut interrupted = false;
        let mut replies = Vec::new();
        loop {
            replies.clear();
            self.recv_into(&mut replies, false)?;
            for r in &replies {
                if r.seq != seq {
                    continue;
                }
                interrupted |= r.flags & NLM_F_DUMP_INTR != 0;
                match r.msg_type {
                    NLMSG_ERROR => {
                        let (code, _) = parse_error(r);
                        if code == 0 {
                            return Ok(interrupted);
                        }
                        return Err(NftError::Request {
                            request: what.to_owned(),
                            source: io::Error::from_raw_os_error(-code),
                        });
                    }
                    NLMSG_DONE => return Ok(interrupted),
                    _ => each(r),
                }
            }
        }
    }

    /// Sends a GET request (`dump` adds `NLM_F_DUMP`) and returns the data messages.
    /// `Err(Request)` carries the kernel's errno (e.g. ENOENT).
    pub(crate) fn request<M: Into<NetfilterMessageInner>>(
        &mut self,
        what: &str,
        family: u8,
        inner: M,
        dump: bool,
    ) -> Result<Vec<RawMsg>, NftError> {
        let seq = self.next_seq(1);
        let flags = if dump {
            NLM_F_REQUEST | NLM_F_DUMP
        } else {
            NLM_F_REQUEST | NLM_F_ACK
        };
        let mut header = NetlinkHeader::default();
        header.flags = flags;
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
        self.sock.send(&bytes, 0).map_err(NftError::Socket)?;
        let mut data = Vec::new();
        let mut replies = Vec::new();
        loop {
            replies.clear();
            self.recv_into(&mut replies, false)?;
            for r in replies.drain(..) {
                if r.seq != seq {
                    continue;
                }
                if r.flags & NLM_F_DUMP_INTR != 0 {
                    return Err(NftError::Request {
                        request: what.to_owned(),
                        source: io::Error::from_raw_os_error(libc::EINTR),
                    });
                }
                match r.msg_type {
                    NLMSG_ERROR => {
                        let (code, _) = parse_error(&r);
                        if code == 0 {
                            return Ok(data);
                        }
                        return Err(NftError::Request {
                            request: what.to_owned(),
                            source: io::Error::from_raw_os_error(-code),
                        });
                    }
                    NLMSG_DONE => return Ok(data),
                    _ => {
                        data.push(r);
                        if !dump {
                            // Wait for the ack that follows.
                        }
                    }
                }
            }
        }
    }
}
