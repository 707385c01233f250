//! Writing iptables rules into nf_tables the way iptables-nft writes them, without
//! `iptables-restore`.
//!
//! [`encode_rule`] is the inverse of [`super::nft::decode_rule`]: a [`Rule`] in canonical form
//! becomes the expression list iptables-nft 1.8.9 builds for the same rule line, plus its
//! rule-level `NFTA_RULE_COMPAT` (the `-p` protocol and its negation, which the kernel hands
//! to xtables matches such as `multiport` as the rule's `ip.proto`). The kernel does not dump
//! `NFTA_RULE_COMPAT`; iptables-nft sets it on every rule (`add_compat`: protocol 0 without
//! `-p`), and so does this encoder.
//!
//! What 1.8.9 writes, in this order:
//!
//! - `-i`/`-o`: `meta load iifname/oifname`, `cmp` with the name and its NUL (a `+` wildcard:
//!   the prefix without NUL);
//! - `-p`: `meta load l4proto`, `cmp` of one byte;
//! - `-s`/`-d`: `payload load` of the network header (v4 offsets 12/16, v6 8/24) as many
//!   bytes as the prefix covers whole, a `bitwise` mask only for a prefix that is not a
//!   multiple of 8 (then over the whole address), `cmp` (`neq` for `!`);
//! - the matches in order: `tcp`/`udp` with a single `--dport` natively (`payload load 2b @
//!   transport header + 2`, `cmp`), `mark` natively (`meta load mark`, `bitwise` unless the
//!   mask is all ones, `cmp` in host byte order), the others (`comment`, `multiport` rev 1,
//!   `addrtype` rev 1, `conntrack` rev 3) as xtables `match` expressions carrying the
//!   extension's info struct, zero padded to 8 bytes (`XT_ALIGN`);
//! - a `counter` (0 packets, 0 bytes), always, before the target;
//! - the target: `immediate` verdicts (`ACCEPT`, `DROP`, `RETURN`, jump, goto) or an xtables
//!   `target` (`MASQUERADE` rev 0, `MARK` rev 2, `DNAT` rev 2).
//!
//! No userdata. Every encoded rule is decoded back with `decode_rule` and must give the very
//! same [`Rule`]: anything else (another extension, option, revision, spelling) makes
//! `encode_rule` return `None`, and the caller writes the rule with `iptables-restore`.
//!
//! # Versions
//!
//! Proven byte for byte against Debian 12's iptables 1.8.9 (nf_tables) by
//! `tests/firewall_iptables_nft_write.rs`: each form written by `iptables-restore` in one
//! namespace and by this encoder in another dumps the same rule attributes. From the iptables
//! sources (not measured here): 1.8.12 also embeds the xtables form of natively encoded
//! matches in the rule's userdata (`UDATA_TYPE_COMPAT_EXT`), so its rules carry userdata that
//! ours lack; any iptables-nft reads ours (the native forms above are what it parses), and
//! the reader of this crate gives up on rules with userdata and falls back to
//! `iptables-save`. Versions before 1.8.9 that wrote `mark` and port matches as xtables
//! matches were not measured either.

use std::collections::BTreeSet;
use std::net::IpAddr;

use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL};

use super::nft::{NftState, builtin_chains, decode_rule};
use super::rule::Rule;
use super::{IptablesOp, IptablesPlan};
use crate::firewall::IpFamily;
use crate::firewall::nftables::socket::{NfSocket, raw_attr, raw_nested, raw_nft_msg};
use crate::firewall::nftables::uapi::{
    NF_ACCEPT, NF_DROP, NFT_CMP_EQ, NFT_CMP_NEQ, NFT_GOTO, NFT_JUMP, NFT_META_IIFNAME,
    NFT_META_L4PROTO, NFT_META_MARK, NFT_META_OIFNAME, NFT_MSG_DELCHAIN, NFT_MSG_DELRULE,
    NFT_MSG_NEWCHAIN, NFT_MSG_NEWRULE, NFT_PAYLOAD_NETWORK, NFT_PAYLOAD_TRANSPORT, NFT_REG_1,
    NFT_REG_VERDICT, NFT_RETURN, NFT_RULE_COMPAT_F_INV, NFTA_BITWISE_DREG, NFTA_BITWISE_LEN,
    NFTA_BITWISE_MASK, NFTA_BITWISE_SREG, NFTA_BITWISE_XOR, NFTA_CHAIN_NAME, NFTA_CHAIN_TABLE,
    NFTA_CMP_DATA, NFTA_CMP_OP, NFTA_CMP_SREG, NFTA_COUNTER_BYTES, NFTA_COUNTER_PACKETS,
    NFTA_DATA_VALUE, NFTA_DATA_VERDICT, NFTA_EXPR_DATA, NFTA_EXPR_NAME, NFTA_IMMEDIATE_DATA,
    NFTA_IMMEDIATE_DREG, NFTA_LIST_ELEM, NFTA_META_DREG, NFTA_META_KEY, NFTA_PAYLOAD_BASE,
    NFTA_PAYLOAD_DREG, NFTA_PAYLOAD_LEN, NFTA_PAYLOAD_OFFSET, NFTA_RULE_CHAIN, NFTA_RULE_COMPAT,
    NFTA_RULE_COMPAT_FLAGS, NFTA_RULE_COMPAT_PROTO, NFTA_RULE_EXPRESSIONS, NFTA_RULE_HANDLE,
    NFTA_RULE_TABLE, NFTA_VERDICT_CHAIN, NFTA_VERDICT_CODE, NFTA_XT_INFO, NFTA_XT_NAME,
    NFTA_XT_REV,
};
use crate::firewall::nftables::{Family, NftError};

/// `XT_ALIGN`: xtables info structs are padded to 8 bytes (`__alignof__(struct _xt_align)`).
const fn xt_align(n: usize) -> usize {
    (n + 7) & !7
}

/// One rule as iptables-nft 1.8.9 writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Encoded {
    /// The expressions: `(name, NFTA_EXPR_DATA attributes)`, in order.
    pub(crate) exprs: Vec<(String, Vec<u8>)>,
    /// `NFTA_RULE_COMPAT_PROTO`: the `-p` protocol number, 0 without `-p`.
    pub(crate) compat_proto: u32,
    /// `NFT_RULE_COMPAT_F_INV`: `! -p`.
    pub(crate) compat_inv: bool,
    /// The user chain a `-j CHAIN` / `-g CHAIN` passes to (it must exist for the kernel).
    pub(crate) jump: Option<String>,
}

impl Encoded {
    /// The attributes of the `NEWRULE` that appends (or inserts) this rule to `chain` of
    /// `table`: table, chain, expressions and compat, as libnftnl orders them.
    fn rule_attrs(&self, table: &str, chain: &str) -> Vec<u8> {
        let mut elems = Vec::new();
        for (name, data) in &self.exprs {
            let mut e = raw_attr(NFTA_EXPR_NAME, &strz(name));
            e.extend(raw_nested(NFTA_EXPR_DATA, data));
            elems.extend(raw_nested(NFTA_LIST_ELEM, &e));
        }
        let mut compat = u32_attr(NFTA_RULE_COMPAT_PROTO, self.compat_proto);
        compat.extend(u32_attr(
            NFTA_RULE_COMPAT_FLAGS,
            if self.compat_inv {
                NFT_RULE_COMPAT_F_INV
            } else {
                0
            },
        ));
        let mut a = raw_attr(NFTA_RULE_TABLE, &strz(table));
        a.extend(raw_attr(NFTA_RULE_CHAIN, &strz(chain)));
        a.extend(raw_nested(NFTA_RULE_EXPRESSIONS, &elems));
        a.extend(raw_nested(NFTA_RULE_COMPAT, &compat));
        a
    }
}

fn strz(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    v
}

fn u32_attr(kind: u16, v: u32) -> Vec<u8> {
    raw_attr(kind, &v.to_be_bytes())
}

fn data_value(kind: u16, bytes: &[u8]) -> Vec<u8> {
    raw_nested(kind, &raw_attr(NFTA_DATA_VALUE, bytes))
}

/// Expression list under construction.
#[derive(Default)]
struct Exprs(Vec<(String, Vec<u8>)>);

impl Exprs {
    fn push(&mut self, name: &str, data: Vec<u8>) {
        self.0.push((name.to_owned(), data));
    }

    fn payload(&mut self, base: u32, offset: u32, len: u32) {
        let mut d = u32_attr(NFTA_PAYLOAD_DREG, NFT_REG_1);
        d.extend(u32_attr(NFTA_PAYLOAD_BASE, base));
        d.extend(u32_attr(NFTA_PAYLOAD_OFFSET, offset));
        d.extend(u32_attr(NFTA_PAYLOAD_LEN, len));
        self.push("payload", d);
    }

    fn meta(&mut self, key: u32) {
        let mut d = u32_attr(NFTA_META_KEY, key);
        d.extend(u32_attr(NFTA_META_DREG, NFT_REG_1));
        self.push("meta", d);
    }

    fn bitwise(&mut self, mask: &[u8]) {
        let mut d = u32_attr(NFTA_BITWISE_SREG, NFT_REG_1);
        d.extend(u32_attr(NFTA_BITWISE_DREG, NFT_REG_1));
        d.extend(u32_attr(NFTA_BITWISE_LEN, mask.len() as u32));
        d.extend(data_value(NFTA_BITWISE_MASK, mask));
        d.extend(data_value(NFTA_BITWISE_XOR, &vec![0; mask.len()]));
        self.push("bitwise", d);
    }

    fn cmp(&mut self, neg: bool, value: &[u8]) {
        let mut d = u32_attr(NFTA_CMP_SREG, NFT_REG_1);
        d.extend(u32_attr(
            NFTA_CMP_OP,
            if neg { NFT_CMP_NEQ } else { NFT_CMP_EQ },
        ));
        d.extend(data_value(NFTA_CMP_DATA, value));
        self.push("cmp", d);
    }

    fn counter(&mut self) {
        let mut d = raw_attr(NFTA_COUNTER_BYTES, &0u64.to_be_bytes());
        d.extend(raw_attr(NFTA_COUNTER_PACKETS, &0u64.to_be_bytes()));
        self.push("counter", d);
    }

    fn verdict(&mut self, code: u32, chain: Option<&str>) {
        let mut v = u32_attr(NFTA_VERDICT_CODE, code);
        if let Some(c) = chain {
            v.extend(raw_attr(NFTA_VERDICT_CHAIN, &strz(c)));
        }
        let mut d = u32_attr(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
        d.extend(raw_nested(
            NFTA_IMMEDIATE_DATA,
            &raw_nested(NFTA_DATA_VERDICT, &v),
        ));
        self.push("immediate", d);
    }

    /// An xtables `match` or `target` expression with the info struct `info` (padded here).
    fn xt(&mut self, kind: &str, name: &str, rev: u32, mut info: Vec<u8>) {
        info.resize(xt_align(info.len()), 0);
        let mut d = raw_attr(NFTA_XT_NAME, &strz(name));
        d.extend(u32_attr(NFTA_XT_REV, rev));
        d.extend(raw_attr(NFTA_XT_INFO, &info));
        self.push(kind, d);
    }
}

/// The header options of a rule.
#[derive(Default)]
struct Header {
    src: Option<(bool, Vec<u8>, u32)>,
    dst: Option<(bool, Vec<u8>, u32)>,
    iif: Option<(bool, String)>,
    oif: Option<(bool, String)>,
    proto: Option<(bool, u8)>,
}

/// `addr/prefix` with host bits clear, as the bytes of `family`'s address and the prefix.
fn parse_net(family: IpFamily, v: &str) -> Option<(Vec<u8>, u32)> {
    let (a, p) = v.split_once('/')?;
    let ip: IpAddr = a.parse().ok()?;
    let prefix: u32 = p.parse().ok()?;
    if p != prefix.to_string() {
        return None;
    }
    let bytes = match (family, ip) {
        (IpFamily::V4, IpAddr::V4(a)) => a.octets().to_vec(),
        (IpFamily::V6, IpAddr::V6(a)) => a.octets().to_vec(),
        _ => return None,
    };
    if prefix == 0 || prefix as usize > bytes.len() * 8 {
        return None;
    }
    let mask = prefix_mask(bytes.len(), prefix);
    if bytes.iter().zip(&mask).any(|(b, m)| b & !m != 0) {
        return None;
    }
    Some((bytes, prefix))
}

fn prefix_mask(len: usize, prefix: u32) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let bits = (prefix as usize).saturating_sub(i * 8);
            match bits {
                0 => 0,
                b if b >= 8 => 0xff,
                b => 0xffu8 << (8 - b),
            }
        })
        .collect()
}

/// An interface name as `-i`/`-o` takes it: at most 15 bytes, a `+` only at the end (and not
/// alone), no blank, quote, slash or other character a name cannot carry.
fn valid_iface(name: &str) -> bool {
    let base = name.strip_suffix('+').unwrap_or(name);
    !base.is_empty()
        && name.len() < 16
        && base.bytes().all(|b| {
            b.is_ascii_graphic() && !matches!(b, b'/' | b'"' | b'\'' | b'\\' | b'+' | b'!')
        })
}

fn proto_number(family: IpFamily, name: &str) -> Option<u8> {
    Some(match (name, family) {
        ("tcp", _) => 6,
        ("udp", _) => 17,
        ("sctp", _) => 132,
        ("icmp", IpFamily::V4) => 1,
        ("ipv6-icmp", IpFamily::V6) => 58,
        _ => return None,
    })
}

/// A decimal port as iptables-save prints it (no name, no leading zero, not 0).
fn port(s: &str) -> Option<u16> {
    let p: u16 = s.parse().ok()?;
    (p != 0 && s == p.to_string()).then_some(p)
}

/// `0x…` as iptables-save prints marks.
fn hex_u32(s: &str) -> Option<u32> {
    u32::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

/// `0xV` or `0xV/0xM` (an absent mask is all ones).
fn mark_mask(s: &str) -> Option<(u32, u32)> {
    match s.split_once('/') {
        Some((v, m)) => Some((hex_u32(v)?, hex_u32(m)?)),
        None => Some((hex_u32(s)?, u32::MAX)),
    }
}

/// Targets iptables loads as extensions: `-j NAME` with one of these names is never a jump
/// to a chain of that name (iptables refuses to create such chains).
const EXTENSION_TARGETS: &[&str] = &[
    "ACCEPT",
    "AUDIT",
    "CHECKSUM",
    "CLASSIFY",
    "CLUSTERIP",
    "CONNMARK",
    "CONNSECMARK",
    "CT",
    "DNAT",
    "DNPT",
    "DROP",
    "DSCP",
    "ECN",
    "ERROR",
    "HL",
    "HMARK",
    "IDLETIMER",
    "LED",
    "LOG",
    "MARK",
    "MASQUERADE",
    "MIRROR",
    "NETMAP",
    "NFLOG",
    "NFQUEUE",
    "NOTRACK",
    "QUEUE",
    "RATEEST",
    "REDIRECT",
    "REJECT",
    "RETURN",
    "SECMARK",
    "SET",
    "SNAT",
    "SNPT",
    "SYNPROXY",
    "TCPMSS",
    "TCPOPTSTRIP",
    "TEE",
    "TOS",
    "TPROXY",
    "TRACE",
    "TTL",
    "ULOG",
    "standard",
];

/// The chain a `-j NAME` (with no target options) would jump to: `None` for the verdicts and
/// every extension target name.
pub(crate) fn jump_target(name: &str) -> Option<&str> {
    (!EXTENSION_TARGETS.contains(&name) && super::is_chain_name(name)).then_some(name)
}

/// Cursor over a rule's tokens.
struct Toks<'a> {
    t: &'a [String],
    i: usize,
}

impl<'a> Toks<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.t.get(self.i).map(String::as_str)
    }

    fn next(&mut self) -> Option<&'a str> {
        let v = self.peek()?;
        self.i += 1;
        Some(v)
    }

    /// `!` if it is next (consumed).
    fn bang(&mut self) -> bool {
        if self.peek() == Some("!") {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn done(&self) -> bool {
        self.i >= self.t.len()
    }

    /// Whether the next tokens begin a new segment (`-m`, `-j`, `-g`) or end the rule.
    fn at_segment(&self) -> bool {
        matches!(self.peek(), None | Some("-m" | "-j" | "-g"))
    }
}

/// `rule` (canonical) for `family` as iptables-nft 1.8.9 writes it; `None` when any part is
/// not a form proven here.
pub(crate) fn encode_rule(family: IpFamily, rule: &Rule) -> Option<Encoded> {
    let enc = encode_unchecked(family, rule)?;
    // What we write must read back as the very rule (and so print the same in iptables-save).
    (decode_rule(family, &enc.exprs).as_ref() == Some(rule)).then_some(enc)
}

fn encode_unchecked(family: IpFamily, rule: &Rule) -> Option<Encoded> {
    let mut t = Toks {
        t: rule.tokens(),
        i: 0,
    };
    let h = header(family, &mut t)?;
    let mut e = Exprs::default();
    for (slot, key) in [(&h.iif, NFT_META_IIFNAME), (&h.oif, NFT_META_OIFNAME)] {
        if let Some((neg, name)) = slot {
            e.meta(key);
            match name.strip_suffix('+') {
                Some(prefix) => e.cmp(*neg, prefix.as_bytes()),
                None => e.cmp(*neg, &strz(name)),
            }
        }
    }
    if let Some((neg, p)) = h.proto {
        e.meta(NFT_META_L4PROTO);
        e.cmp(neg, &[p]);
    }
    let (src_off, dst_off) = match family {
        IpFamily::V4 => (12, 16),
        IpFamily::V6 => (8, 24),
    };
    for (slot, offset) in [(&h.src, src_off), (&h.dst, dst_off)] {
        if let Some((neg, addr, prefix)) = slot {
            // add_addr: whole bytes of the prefix compared directly, a partial byte masked
            // (then the whole address).
            let whole = (*prefix / 8) as usize;
            if prefix % 8 == 0 {
                e.payload(NFT_PAYLOAD_NETWORK, offset, whole as u32);
                e.cmp(*neg, &addr[..whole]);
            } else {
                e.payload(NFT_PAYLOAD_NETWORK, offset, addr.len() as u32);
                e.bitwise(&prefix_mask(addr.len(), *prefix));
                e.cmp(*neg, addr);
            }
        }
    }
    // The protocol a port match or a DNAT port needs: `-p` given and not negated.
    let plain_proto = h.proto.and_then(|(neg, p)| (!neg).then_some(p));
    while t.peek() == Some("-m") {
        t.next();
        let name = t.next()?;
        encode_match(&mut t, &mut e, name, plain_proto)?;
        if !t.at_segment() {
            return None;
        }
    }
    e.counter();
    let jump = encode_target(family, &mut t, &mut e, plain_proto)?;
    if !t.done() {
        return None;
    }
    Some(Encoded {
        exprs: e.0,
        compat_proto: h.proto.map_or(0, |(_, p)| u32::from(p)),
        compat_inv: h.proto.is_some_and(|(neg, _)| neg),
        jump,
    })
}

fn header(family: IpFamily, t: &mut Toks<'_>) -> Option<Header> {
    let mut h = Header::default();
    loop {
        let start = t.i;
        let neg = t.bang();
        let flag = match t.peek() {
            Some(f @ ("-s" | "-d" | "-i" | "-o" | "-p")) => f,
            _ => {
                t.i = start;
                return Some(h);
            }
        };
        t.next();
        let v = t.next()?;
        let fresh = match flag {
            "-s" | "-d" => {
                let (addr, prefix) = parse_net(family, v)?;
                let slot = if flag == "-s" { &mut h.src } else { &mut h.dst };
                slot.replace((neg, addr, prefix)).is_none()
            }
            "-i" => valid_iface(v) && h.iif.replace((neg, v.to_owned())).is_none(),
            "-o" => valid_iface(v) && h.oif.replace((neg, v.to_owned())).is_none(),
            _ => h.proto.replace((neg, proto_number(family, v)?)).is_none(),
        };
        if !fresh {
            return None;
        }
    }
}

fn encode_match(t: &mut Toks<'_>, e: &mut Exprs, name: &str, proto: Option<u8>) -> Option<()> {
    match name {
        "comment" => {
            if t.next()? != "--comment" {
                return None;
            }
            let text = t.next()?;
            // struct xt_comment_info { char comment[256]; }: at most 255 bytes and a NUL.
            if text.len() > 255 || text.contains('\0') {
                return None;
            }
            let mut info = text.as_bytes().to_vec();
            info.resize(256, 0);
            e.xt("match", "comment", 0, info);
        }
        "tcp" | "udp" => {
            // Natively, as add_nft_tcp/add_nft_udp do for a single destination port.
            let want = if name == "tcp" { 6 } else { 17 };
            if proto != Some(want) {
                return None;
            }
            let neg = t.bang();
            if t.next()? != "--dport" {
                return None;
            }
            let p = port(t.next()?)?;
            e.payload(NFT_PAYLOAD_TRANSPORT, 2, 2);
            e.cmp(neg, &p.to_be_bytes());
        }
        "multiport" => {
            // libxt_multiport refuses a rule without a positive port protocol.
            if !matches!(proto, Some(6 | 17 | 132)) {
                return None;
            }
            let neg = t.bang();
            let flags: u8 = match t.next()? {
                "--sports" => 0,
                "--dports" => 1,
                "--ports" => 2,
                _ => return None,
            };
            // struct xt_multiport_v1 { u8 flags, count; u16 ports[15]; u8 pflags[15], invert; }
            let mut info = vec![0u8; 48];
            let mut n = 0usize;
            for item in t.next()?.split(',') {
                let (lo, hi) = match item.split_once(':') {
                    Some((lo, hi)) => (port(lo)?, Some(port(hi)?)),
                    None => (port(item)?, None),
                };
                let slots = if hi.is_some() { 2 } else { 1 };
                if n + slots > 15 {
                    return None;
                }
                info[2 + 2 * n..4 + 2 * n].copy_from_slice(&lo.to_ne_bytes());
                if let Some(hi) = hi {
                    if hi <= lo {
                        return None;
                    }
                    info[32 + n] = 1;
                    info[4 + 2 * n..6 + 2 * n].copy_from_slice(&hi.to_ne_bytes());
                }
                n += slots;
            }
            info[0] = flags;
            info[1] = n as u8;
            info[47] = u8::from(neg);
            e.xt("match", "multiport", 1, info);
        }
        "addrtype" => {
            // struct xt_addrtype_info_v1 { u16 source, dest; u32 flags; }
            let (mut src, mut dst, mut flags) = (0u16, 0u16, 0u32);
            while !t.at_segment() {
                let neg = t.bang();
                match t.next()? {
                    "--src-type" if src == 0 => {
                        src = addr_types(t.next()?)?;
                        flags |= if neg { 1 } else { 0 };
                    }
                    "--dst-type" if dst == 0 => {
                        dst = addr_types(t.next()?)?;
                        flags |= if neg { 2 } else { 0 };
                    }
                    "--limit-iface-in" if !neg && flags & 4 == 0 => flags |= 4,
                    "--limit-iface-out" if !neg && flags & 8 == 0 => flags |= 8,
                    _ => return None,
                }
            }
            if src == 0 && dst == 0 {
                return None;
            }
            let mut info = Vec::with_capacity(8);
            info.extend_from_slice(&src.to_ne_bytes());
            info.extend_from_slice(&dst.to_ne_bytes());
            info.extend_from_slice(&flags.to_ne_bytes());
            e.xt("match", "addrtype", 1, info);
        }
        "conntrack" => {
            let neg = t.bang();
            if t.next()? != "--ctstate" {
                return None;
            }
            let states = ct_states(t.next()?)?;
            // struct xt_conntrack_mtinfo3 (164 bytes): match_flags @146, invert_flags @148,
            // state_mask @150; XT_CONNTRACK_STATE is bit 0.
            let mut info = vec![0u8; 164];
            info[146..148].copy_from_slice(&1u16.to_ne_bytes());
            info[148..150].copy_from_slice(&u16::from(neg).to_ne_bytes());
            info[150..152].copy_from_slice(&states.to_ne_bytes());
            e.xt("match", "conntrack", 3, info);
        }
        "mark" => {
            // Natively, as add_nft_mark does.
            let neg = t.bang();
            if t.next()? != "--mark" {
                return None;
            }
            let (mark, mask) = mark_mask(t.next()?)?;
            e.meta(NFT_META_MARK);
            if mask != u32::MAX {
                e.bitwise(&mask.to_ne_bytes());
            }
            e.cmp(neg, &mark.to_ne_bytes());
        }
        _ => return None,
    }
    Some(())
}

fn addr_types(list: &str) -> Option<u16> {
    let mut mask = 0u16;
    for name in list.split(',') {
        mask |= 1 << super::nft::ADDR_TYPES.iter().position(|n| *n == name)?;
    }
    Some(mask)
}

fn ct_states(list: &str) -> Option<u16> {
    let mut mask = 0u16;
    for name in list.split(',') {
        mask |= match name {
            "INVALID" => 1 << 0,
            "ESTABLISHED" => 1 << 1,
            "RELATED" => 1 << 2,
            "NEW" => 1 << 3,
            "SNAT" => 1 << 6,
            "DNAT" => 1 << 7,
            "UNTRACKED" => 1 << 8,
            _ => return None,
        };
    }
    Some(mask)
}

/// The target; returns the chain a jump or goto passes to.
fn encode_target(
    family: IpFamily,
    t: &mut Toks<'_>,
    e: &mut Exprs,
    proto: Option<u8>,
) -> Option<Option<String>> {
    let Some(flag) = t.next() else {
        return Some(None); // no target: the counter alone
    };
    let name = t.next()?;
    if flag == "-g" {
        let chain = jump_target(name)?;
        e.verdict(NFT_GOTO, Some(chain));
        return Some(Some(chain.to_owned()));
    }
    if flag != "-j" {
        return None;
    }
    match name {
        "ACCEPT" => e.verdict(NF_ACCEPT, None),
        "DROP" => e.verdict(NF_DROP, None),
        "RETURN" => e.verdict(NFT_RETURN, None),
        "MASQUERADE" => match family {
            // struct nf_nat_ipv4_multi_range_compat { u32 rangesize = 1; range[1] (16) }
            IpFamily::V4 => {
                let mut info = vec![0u8; 20];
                info[..4].copy_from_slice(&1u32.to_ne_bytes());
                e.xt("target", "MASQUERADE", 0, info);
            }
            // struct nf_nat_range (40 bytes), all zero.
            IpFamily::V6 => e.xt("target", "MASQUERADE", 0, vec![0; 40]),
        },
        "MARK" => {
            if t.next()? != "--set-xmark" {
                return None;
            }
            let (mark, mask) = t.next()?.split_once('/')?;
            // struct xt_mark_tginfo2 { u32 mark, mask; }
            let mut info = hex_u32(mark)?.to_ne_bytes().to_vec();
            info.extend_from_slice(&hex_u32(mask)?.to_ne_bytes());
            e.xt("target", "MARK", 2, info);
        }
        "DNAT" => {
            if t.next()? != "--to-destination" {
                return None;
            }
            let (addr, port_no) = dnat_to(family, t.next()?)?;
            // A port needs a positive port protocol (libxt_DNAT refuses otherwise).
            if port_no.is_some() && !matches!(proto, Some(6 | 17 | 132)) {
                return None;
            }
            // struct nf_nat_range2 { u32 flags; addr min @4, max @20; be16 min_proto @36,
            // max_proto @38, base_proto @40; } (44 bytes).
            let mut info = vec![0u8; 44];
            let flags: u32 = if port_no.is_some() { 3 } else { 1 };
            info[..4].copy_from_slice(&flags.to_ne_bytes());
            info[4..4 + addr.len()].copy_from_slice(&addr);
            info[20..20 + addr.len()].copy_from_slice(&addr);
            if let Some(p) = port_no {
                info[36..38].copy_from_slice(&p.to_be_bytes());
                info[38..40].copy_from_slice(&p.to_be_bytes());
            }
            e.xt("target", "DNAT", 2, info);
        }
        other => {
            let chain = jump_target(other)?;
            e.verdict(NFT_JUMP, Some(chain));
            return Some(Some(chain.to_owned()));
        }
    }
    Some(None)
}

/// `--to-destination` of one address and an optional port: `A`, `A:P` (v4), `A`, `[A]:P`
/// (v6), as iptables-save prints them.
fn dnat_to(family: IpFamily, v: &str) -> Option<(Vec<u8>, Option<u16>)> {
    let (addr, p) = match family {
        IpFamily::V4 => match v.split_once(':') {
            Some((a, p)) => (a, Some(port(p)?)),
            None => (v, None),
        },
        IpFamily::V6 => match v.strip_prefix('[') {
            Some(rest) => {
                let (a, p) = rest.split_once("]:")?;
                (a, Some(port(p)?))
            }
            None => (v, None),
        },
    };
    let bytes = match (family, addr.parse::<IpAddr>().ok()?) {
        (IpFamily::V4, IpAddr::V4(a)) => a.octets().to_vec(),
        (IpFamily::V6, IpAddr::V6(a)) => a.octets().to_vec(),
        _ => return None,
    };
    Some((bytes, p))
}

// ------------------------------------------------------------------ batch messages

/// One change of a batch, in the order the restore script would make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// `-N CHAIN`: `NEWCHAIN` (exclusive), table and name only, as iptables-nft creates a
    /// user chain.
    NewChain(String),
    /// `-A CHAIN RULE`: `NEWRULE` appended.
    Append(String, Encoded),
    /// `-I CHAIN 1 RULE`: `NEWRULE` without position, which the kernel inserts at the head.
    Insert(String, Encoded),
    /// `-D CHAIN RULE`: `DELRULE` of the rule's handle.
    Delete(String, u64),
    /// `-F CHAIN`: `DELRULE` of the chain (every rule).
    Flush(String),
    /// `-X CHAIN`: `DELCHAIN`.
    DeleteChain(String),
}

/// The messages of `changes` to `table` of `family`, for one batch.
pub(crate) fn messages(family: IpFamily, table: &str, changes: &[Change]) -> Vec<Vec<u8>> {
    let fam = Family::of(family);
    let chain_attrs = |chain: &str| {
        let mut a = raw_attr(NFTA_CHAIN_TABLE, &strz(table));
        a.extend(raw_attr(NFTA_CHAIN_NAME, &strz(chain)));
        a
    };
    let rule_ids = |chain: &str| {
        let mut a = raw_attr(NFTA_RULE_TABLE, &strz(table));
        a.extend(raw_attr(NFTA_RULE_CHAIN, &strz(chain)));
        a
    };
    changes
        .iter()
        .map(|c| match c {
            Change::NewChain(chain) => raw_nft_msg(
                NFT_MSG_NEWCHAIN,
                fam,
                NLM_F_CREATE | NLM_F_EXCL,
                &chain_attrs(chain),
            ),
            Change::Append(chain, r) => raw_nft_msg(
                NFT_MSG_NEWRULE,
                fam,
                NLM_F_CREATE | NLM_F_APPEND,
                &r.rule_attrs(table, chain),
            ),
            Change::Insert(chain, r) => raw_nft_msg(
                NFT_MSG_NEWRULE,
                fam,
                NLM_F_CREATE,
                &r.rule_attrs(table, chain),
            ),
            Change::Delete(chain, handle) => {
                let mut a = rule_ids(chain);
                a.extend(raw_attr(NFTA_RULE_HANDLE, &handle.to_be_bytes()));
                raw_nft_msg(NFT_MSG_DELRULE, fam, 0, &a)
            }
            Change::Flush(chain) => raw_nft_msg(NFT_MSG_DELRULE, fam, 0, &rule_ids(chain)),
            Change::DeleteChain(chain) => {
                raw_nft_msg(NFT_MSG_DELCHAIN, fam, 0, &chain_attrs(chain))
            }
        })
        .collect()
}

/// A chain of the simulated table: its rules with their handles (`None` for a rule this
/// batch adds).
struct SimChain {
    name: String,
    rules: Vec<(Rule, Option<u64>)>,
    /// Whether it exists in nf_tables (read, or created earlier in this batch): a built-in
    /// chain iptables-nft has not created yet does not.
    present: bool,
}

/// The changes that bring `table` from the state of `read` to what `plans` require: the
/// same decisions as the restore script (`plan_into_script`), as nf_tables operations.
/// `None` when some change cannot be made exactly over netlink (the table or a built-in
/// chain does not exist yet, a rule is not a proven form, a jump target is not a known chain,
/// a rule to delete was added by this very batch, or the script would fail): the caller then
/// runs `iptables-restore`.
pub(crate) fn plan_changes(
    plans: &[&IptablesPlan],
    table: &str,
    read: &NftState,
) -> Option<Vec<Change>> {
    let family = read.state.family;
    let builtins = builtin_chains(table);
    // An unknown table, or one iptables-nft has not created yet (it creates the table and
    // its base chains its own way): iptables-restore.
    if builtins.is_empty() || !read.present.iter().any(|(t, _)| t == table) {
        return None;
    }
    let ts = read.state.table(table)?;
    let key = |chain: &str| (table.to_owned(), chain.to_owned());
    let mut sim: Vec<SimChain> = ts
        .chains
        .iter()
        .map(|c| {
            let handles = read.handles.get(&key(&c.name));
            SimChain {
                name: c.name.clone(),
                rules: c
                    .rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (r.clone(), handles.and_then(|h| h.get(i).copied())))
                    .collect(),
                present: read.present.contains(&key(&c.name)),
            }
        })
        .collect();
    // Chains that exist (read, or found as jump targets), as the batch goes.
    let mut known: BTreeSet<String> = read
        .present
        .iter()
        .filter(|(t, _)| t == table)
        .map(|(_, c)| c.clone())
        .collect();
    let mut out = Vec::new();
    for plan in plans.iter().filter(|p| p.table == table) {
        for c in &plan.chains_to_ensure {
            if sim.iter().any(|s| &s.name == c) {
                continue;
            }
            if builtins.contains(&c.as_str()) {
                return None;
            }
            out.push(Change::NewChain(c.clone()));
            known.insert(c.clone());
            sim.push(SimChain {
                name: c.clone(),
                rules: Vec::new(),
                present: true,
            });
        }
        for op in &plan.ops {
            apply_op(family, op, &mut sim, &mut known, builtins, &mut out)?;
        }
    }
    Some(out)
}

/// The iptables-restore script (for `--noflush`) that creates the tables and built-in chains
/// that `plans` add rules to and iptables-nft has not created yet, and nothing else: each
/// as `:CHAIN - [0:0]`, which creates a missing built-in chain as iptables-nft does and
/// leaves an existing one (rules and policy) alone, so running it twice, or after another
/// process created the chain, changes nothing. `None` when nothing is missing.
pub(crate) fn skeleton_script(
    plans: &[&IptablesPlan],
    tables: &BTreeSet<&str>,
    read: &NftState,
) -> Option<String> {
    let mut script = String::new();
    for table in tables {
        let builtins = builtin_chains(table);
        let mut missing: Vec<&str> = Vec::new();
        for plan in plans.iter().filter(|p| p.table == *table) {
            for op in &plan.ops {
                let (IptablesOp::AppendUnique { chain, .. }
                | IptablesOp::InsertUnique { chain, .. }) = op
                else {
                    continue;
                };
                if let Some(b) = builtins.iter().find(|b| **b == chain.as_str())
                    && !read.present.contains(&((*table).to_owned(), chain.clone()))
                    && !missing.contains(b)
                {
                    missing.push(b);
                }
            }
        }
        if missing.is_empty() {
            continue;
        }
        // In iptables-save's order, as iptables-nft creates them on first use.
        missing.sort_by_key(|m| builtins.iter().position(|b| b == m));
        script.push_str(&format!("*{table}\n"));
        for m in missing {
            script.push_str(&format!(":{m} - [0:0]\n"));
        }
        script.push_str("COMMIT\n");
    }
    (!script.is_empty()).then_some(script)
}

fn apply_op(
    family: IpFamily,
    op: &IptablesOp,
    sim: &mut Vec<SimChain>,
    known: &mut BTreeSet<String>,
    builtins: &[&str],
    out: &mut Vec<Change>,
) -> Option<()> {
    // Deletes every rule of `c` that `matches`, by handle.
    fn delete_where(
        c: &mut SimChain,
        out: &mut Vec<Change>,
        matches: impl Fn(&Rule) -> bool,
    ) -> Option<()> {
        let mut kept = Vec::with_capacity(c.rules.len());
        for (r, h) in std::mem::take(&mut c.rules) {
            if matches(&r) {
                out.push(Change::Delete(c.name.clone(), h?));
            } else {
                kept.push((r, h));
            }
        }
        c.rules = kept;
        Some(())
    }
    match op {
        IptablesOp::AppendUnique { chain, rule } | IptablesOp::InsertUnique { chain, rule } => {
            // A missing chain makes the script fail: iptables-restore reports it.
            let c = sim.iter_mut().find(|c| &c.name == chain)?;
            if !c.present {
                return None;
            }
            if c.rules.iter().any(|(r, _)| r == rule) {
                return Some(());
            }
            let enc = encode_rule(family, rule)?;
            if let Some(j) = &enc.jump
                && !known.contains(j)
            {
                return None;
            }
            if matches!(op, IptablesOp::AppendUnique { .. }) {
                c.rules.push((rule.clone(), None));
                out.push(Change::Append(chain.clone(), enc));
            } else {
                c.rules.insert(0, (rule.clone(), None));
                out.push(Change::Insert(chain.clone(), enc));
            }
        }
        IptablesOp::Delete { chain, rule } => {
            if let Some(c) = sim.iter_mut().find(|c| &c.name == chain) {
                delete_where(c, out, |r| r == rule)?;
            }
        }
        IptablesOp::DeleteWithComment { chain, comment } => {
            let comment = super::rule::stored_comment(comment);
            if let Some(c) = sim.iter_mut().find(|c| &c.name == chain) {
                delete_where(c, out, |r| r.comment() == Some(comment))?;
            }
        }
        IptablesOp::DeleteJumpsTo { target, .. } => {
            for c in sim.iter_mut() {
                delete_where(c, out, |r| r.target() == Some(target.as_str()))?;
            }
        }
        IptablesOp::Flush { chain } => {
            if let Some(c) = sim.iter_mut().find(|c| &c.name == chain)
                && !c.rules.is_empty()
            {
                out.push(Change::Flush(chain.clone()));
                c.rules.clear();
            }
        }
        IptablesOp::DeleteChain { chain } => {
            if let Some(idx) = sim.iter().position(|c| &c.name == chain) {
                if builtins.contains(&chain.as_str()) {
                    return None;
                }
                if !sim[idx].rules.is_empty() {
                    out.push(Change::Flush(chain.clone()));
                }
                out.push(Change::DeleteChain(chain.clone()));
                sim.remove(idx);
                known.remove(chain);
            }
        }
    }
    Some(())
}

/// Commits `msgs` as one nf_tables transaction that the kernel refuses (`ERESTART`, nothing
/// changed) unless the ruleset is still at generation `genid`.
pub(crate) fn commit(msgs: &[Vec<u8>], genid: u32) -> Result<(), NftError> {
    let mut sock = NfSocket::open()?;
    sock.transact_raw(msgs, Some(genid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(t: &[&str]) -> Rule {
        Rule::new(t.iter().copied()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_plugin_form_encodes_and_reads_back() {
        let forms: &[(IpFamily, &[&str])] = &[
            (IpFamily::V4, &["-s", "10.88.0.2", "-j", "CNI-abc"]),
            (IpFamily::V4, &["-d", "10.88.0.0/16", "-j", "ACCEPT"]),
            (
                IpFamily::V4,
                &["!", "-d", "224.0.0.0/4", "-j", "MASQUERADE"],
            ),
            (IpFamily::V6, &["!", "-d", "ff00::/8", "-j", "MASQUERADE"]),
            (
                IpFamily::V4,
                &[
                    "-p",
                    "tcp",
                    "--dport",
                    "8080",
                    "-s",
                    "10.0.0.0/24",
                    "-j",
                    "RETURN",
                ],
            ),
            (
                IpFamily::V4,
                &["-p", "udp", "!", "--dport", "53", "-j", "DROP"],
            ),
            (
                IpFamily::V4,
                &["-m", "mark", "--mark", "0x2000/0x2000", "-j", "RETURN"],
            ),
            (
                IpFamily::V4,
                &["-j", "MARK", "--set-xmark", "0x2000/0x2000"],
            ),
            (
                IpFamily::V6,
                &[
                    "-p",
                    "tcp",
                    "--dport",
                    "80",
                    "-j",
                    "DNAT",
                    "--to-destination",
                    "[fd00::2]:8080",
                ],
            ),
            (
                IpFamily::V4,
                &["-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-X"],
            ),
            (
                IpFamily::V4,
                &[
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "RELATED,ESTABLISHED",
                    "-j",
                    "ACCEPT",
                ],
            ),
            (
                IpFamily::V4,
                &[
                    "-p",
                    "tcp",
                    "-m",
                    "multiport",
                    "--dports",
                    "80,1000:2000",
                    "-j",
                    "CNI-DN-x",
                ],
            ),
            (
                IpFamily::V4,
                &["-i", "cni0", "!", "-o", "br+", "-g", "CNI-Y"],
            ),
            (IpFamily::V4, &["-m", "comment", "--comment", "x y"]),
        ];
        for (fam, toks) in forms {
            let r = rule(toks);
            assert!(encode_rule(*fam, &r).is_some(), "{fam} {r}");
        }
    }

    #[test]
    fn what_is_not_proven_is_not_encoded() {
        let forms: &[(IpFamily, &[&str])] = &[
            (
                IpFamily::V4,
                &["-p", "tcp", "--sport", "80", "-j", "ACCEPT"],
            ),
            (
                IpFamily::V4,
                &["-p", "tcp", "--dport", "80:90", "-j", "ACCEPT"],
            ),
            (IpFamily::V4, &["-j", "LOG"]),
            (IpFamily::V4, &["-j", "REJECT"]),
            (
                IpFamily::V4,
                &["-m", "multiport", "--dports", "80", "-j", "ACCEPT"],
            ),
            (IpFamily::V4, &["-p", "gre", "-j", "ACCEPT"]),
            (
                IpFamily::V4,
                &["-m", "state", "--state", "NEW", "-j", "ACCEPT"],
            ),
            // Not in iptables-save's order: would not read back as the same rule.
            (
                IpFamily::V4,
                &[
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "ESTABLISHED,RELATED",
                    "-j",
                    "ACCEPT",
                ],
            ),
            (IpFamily::V6, &["-s", "10.0.0.1", "-j", "ACCEPT"]),
            (
                IpFamily::V4,
                &["-p", "udp", "-j", "DNAT", "--to-destination", "1.2.3.4:0"],
            ),
        ];
        for (fam, toks) in forms {
            let r = rule(toks);
            assert!(encode_rule(*fam, &r).is_none(), "{fam} {r}");
        }
    }

    #[test]
    fn header_bytes_follow_add_addr() {
        let r = rule(&["-s", "10.0.0.0/24", "-d", "10.0.0.0/9", "-j", "ACCEPT"]);
        let e = encode_rule(IpFamily::V4, &r).unwrap();
        let names: Vec<&str> = e.exprs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "payload",
                "cmp",
                "payload",
                "bitwise",
                "cmp",
                "counter",
                "immediate"
            ]
        );
        assert_eq!((e.compat_proto, e.compat_inv, e.jump), (0, false, None));
        let e = encode_rule(IpFamily::V4, &rule(&["!", "-p", "tcp", "-j", "CNI-A"])).unwrap();
        assert_eq!((e.compat_proto, e.compat_inv), (6, true));
        assert_eq!(e.jump.as_deref(), Some("CNI-A"));
    }
}
