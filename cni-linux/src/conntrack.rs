//! Connection tracking entries over `NETLINK_NETFILTER` (ctnetlink): list and delete.
//!
//! Portmap deletes the UDP entries of its host ports on ADD (and may on DEL) so that a stale
//! entry pointing at an old container does not blackhole the traffic (reference plugins
//! #123, #1190). The kernel cannot filter deletions by port, so [`delete`] dumps the table
//! once (`IPCTNL_MSG_CT_GET` with `NLM_F_DUMP`) and deletes each matching entry by its
//! original tuple (and zone). Entries that vanish in between are not errors.
//!
//! Everything happens in the calling thread's network namespace (conntrack tables are per
//! namespace).
//!
//! ```no_run
//! use cni_linux::conntrack;
//! use cni_linux::firewall::IpFamily;
//! // Forget every UDP flow to host port 5353 (IPv4), as portmap does after ADD.
//! let n = conntrack::delete_udp_by_dport(IpFamily::V4, 5353)?;
//! # Ok::<(), conntrack::ConntrackError>(())
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{DefaultNla, NLA_F_NESTED};
use netlink_packet_netfilter::conntrack::{ConntrackAttribute, ConntrackMessage};

use crate::firewall::IpFamily;
use crate::firewall::nftables::NftError;
use crate::firewall::nftables::decode::{attrs_of, get, nlas};
use crate::firewall::nftables::socket::NfSocket;

/// IANA number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IANA number of UDP.
pub const PROTO_UDP: u8 = 17;
/// IANA number of SCTP.
pub const PROTO_SCTP: u8 = 132;

const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_ZONE: u16 = 18;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const IPCTNL_MSG_CT_NEW: u16 = 1 << 8;

/// Errors of conntrack operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConntrackError {
    /// The netlink socket failed.
    #[error("conntrack netlink socket error")]
    Socket(#[source] std::io::Error),
    /// The kernel refused a request.
    #[error("conntrack request {request} failed")]
    Request {
        /// What was asked.
        request: String,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
    /// A kernel message could not be decoded.
    #[error("cannot decode conntrack message: {0}")]
    Decode(String),
}

impl From<NftError> for ConntrackError {
    fn from(e: NftError) -> Self {
        match e {
            NftError::Socket(s) => ConntrackError::Socket(s),
            NftError::Request { request, source } => ConntrackError::Request { request, source },
            NftError::Rejected { source, .. } => ConntrackError::Request {
                request: "conntrack".to_owned(),
                source,
            },
            other => ConntrackError::Decode(other.to_string()),
        }
    }
}

/// One direction of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number.
    pub protocol: u8,
    /// Source port (TCP, UDP, SCTP, ...).
    pub src_port: Option<u16>,
    /// Destination port.
    pub dst_port: Option<u16>,
}

/// A conntrack entry as dumped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// IPv4 or IPv6.
    pub family: IpFamily,
    /// Original direction.
    pub orig: Tuple,
    /// Reply direction.
    pub reply: Option<Tuple>,
    /// Conntrack zone, if not the default.
    pub zone: Option<u16>,
    orig_raw: Vec<u8>,
    zone_raw: Option<Vec<u8>>,
}

/// Which entries [`delete`] removes: all given criteria must match the original tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter {
    /// Only this family; `None` for both.
    pub family: Option<IpFamily>,
    /// IP protocol number ([`PROTO_UDP`], ...).
    pub protocol: u8,
    /// Original destination port (the host port for port mappings).
    pub dst_port: Option<u16>,
    /// Original destination address.
    pub dst_addr: Option<IpAddr>,
}

impl Filter {
    /// Whether `e` matches.
    pub fn matches(&self, e: &Entry) -> bool {
        self.family.is_none_or(|f| f == e.family)
            && e.orig.protocol == self.protocol
            && self.dst_port.is_none_or(|p| e.orig.dst_port == Some(p))
            && self.dst_addr.is_none_or(|a| e.orig.dst == a)
    }
}

fn family_byte(f: Option<IpFamily>) -> u8 {
    match f {
        None => 0,
        Some(IpFamily::V4) => libc::AF_INET as u8,
        Some(IpFamily::V6) => libc::AF_INET6 as u8,
    }
}

fn be16(v: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(v.get(..2)?.try_into().ok()?))
}

fn parse_tuple(v: &[u8]) -> Option<Tuple> {
    let a = nlas(v);
    let ipa = nlas(get(&a, CTA_TUPLE_IP)?);
    let addr4 = |k| {
        get(&ipa, k)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| IpAddr::V4(Ipv4Addr::from(b)))
    };
    let addr6 = |k| {
        get(&ipa, k)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map(|b| IpAddr::V6(Ipv6Addr::from(b)))
    };
    let src = addr4(CTA_IP_V4_SRC).or_else(|| addr6(CTA_IP_V6_SRC))?;
    let dst = addr4(CTA_IP_V4_DST).or_else(|| addr6(CTA_IP_V6_DST))?;
    let pa = nlas(get(&a, CTA_TUPLE_PROTO)?);
    Some(Tuple {
        src,
        dst,
        protocol: *get(&pa, CTA_PROTO_NUM)?.first()?,
        src_port: get(&pa, CTA_PROTO_SRC_PORT).and_then(be16),
        dst_port: get(&pa, CTA_PROTO_DST_PORT).and_then(be16),
    })
}

fn dump(sock: &mut NfSocket, family: Option<IpFamily>) -> Result<Vec<Entry>, ConntrackError> {
    let mut attempt = 0;
    let msgs = loop {
        attempt += 1;
        match sock.request(
            "dump",
            family_byte(family),
            ConntrackMessage::Get(vec![]),
            true,
        ) {
            Err(e) if e.errno() == Some(libc::EINTR) && attempt < 5 => continue,
            other => break other?,
        }
    };
    let mut out = Vec::new();
    for m in &msgs {
        if m.msg_type != IPCTNL_MSG_CT_NEW {
            continue;
        }
        let a = attrs_of(m);
        let Some(orig_raw) = get(&a, CTA_TUPLE_ORIG) else {
            continue;
        };
        let Some(orig) = parse_tuple(orig_raw) else {
            continue;
        };
        let fam = match orig.src {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        };
        let zone_raw = get(&a, CTA_ZONE).map(<[u8]>::to_vec);
        out.push(Entry {
            family: fam,
            reply: get(&a, CTA_TUPLE_REPLY).and_then(parse_tuple),
            zone: zone_raw.as_deref().and_then(be16),
            orig,
            orig_raw: orig_raw.to_vec(),
            zone_raw,
        });
    }
    Ok(out)
}

/// Lists the conntrack entries of `family` (both when `None`).
pub fn list(family: Option<IpFamily>) -> Result<Vec<Entry>, ConntrackError> {
    let mut sock = NfSocket::open()?;
    dump(&mut sock, family)
}

/// Deletes every entry matching `filter`; returns how many were deleted. Entries that
/// disappear before we get to them are not counted and not errors.
pub fn delete(filter: &Filter) -> Result<usize, ConntrackError> {
    let mut sock = NfSocket::open()?;
    let entries = dump(&mut sock, filter.family)?;
    let mut deleted = 0;
    for e in entries.iter().filter(|e| filter.matches(e)) {
        let mut attrs = vec![ConntrackAttribute::Other(DefaultNla::new(
            CTA_TUPLE_ORIG | NLA_F_NESTED,
            e.orig_raw.clone(),
        ))];
        if let Some(z) = &e.zone_raw {
            attrs.push(ConntrackAttribute::Other(DefaultNla::new(
                CTA_ZONE,
                z.clone(),
            )));
        }
        match sock.request(
            "delete entry",
            family_byte(Some(e.family)),
            ConntrackMessage::Delete(attrs),
            false,
        ) {
            Ok(_) => deleted += 1,
            Err(err) if err.errno() == Some(libc::ENOENT) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(deleted)
}

/// Deletes the UDP entries whose original destination port is `dport` (portmap's
/// `DeleteConntrackEntriesForDstPort(port, UDP, family)`).
pub fn delete_udp_by_dport(family: IpFamily, dport: u16) -> Result<usize, ConntrackError> {
    delete(&Filter {
        family: Some(family),
        protocol: PROTO_UDP,
        dst_port: Some(dport),
        dst_addr: None,
    })
}

/// Deletes the entries of `protocol` whose original destination is `addr`
/// (the reference's `DeleteConntrackEntriesForDstIP`).
pub fn delete_by_dst_addr(addr: IpAddr, protocol: u8) -> Result<usize, ConntrackError> {
    delete(&Filter {
        family: Some(IpFamily::of(&addr)),
        protocol,
        dst_port: None,
        dst_addr: Some(addr),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(proto: u8, dst: &str, dport: u16) -> Entry {
        let dst: IpAddr = dst.parse().unwrap();
        Entry {
            family: IpFamily::of(&dst),
            orig: Tuple {
                src: dst,
                dst,
                protocol: proto,
                src_port: Some(1),
                dst_port: Some(dport),
            },
            reply: None,
            zone: None,
            orig_raw: vec![],
            zone_raw: None,
        }
    }

    #[test]
    fn filter_matches_all_given_criteria() {
        let f = Filter {
            family: Some(IpFamily::V4),
            protocol: PROTO_UDP,
            dst_port: Some(53),
            dst_addr: None,
        };
        assert!(f.matches(&entry(PROTO_UDP, "10.0.0.1", 53)));
        assert!(!f.matches(&entry(PROTO_TCP, "10.0.0.1", 53)));
        assert!(!f.matches(&entry(PROTO_UDP, "10.0.0.1", 54)));
        assert!(!f.matches(&entry(PROTO_UDP, "fd00::1", 53)));
        let f = Filter {
            family: None,
            protocol: PROTO_UDP,
            dst_port: None,
            dst_addr: Some("fd00::1".parse().unwrap()),
        };
        assert!(f.matches(&entry(PROTO_UDP, "fd00::1", 9)));
        assert!(!f.matches(&entry(PROTO_UDP, "fd00::2", 9)));
    }

    #[test]
    fn parses_a_tuple() {
        // CTA_TUPLE_IP { V4_SRC 10.0.0.1, V4_DST 10.0.0.2 }, CTA_TUPLE_PROTO { NUM 17,
        // SRC 1000, DST 53 } (nested flag set on the containers, as the kernel does).
        let mut ip = Vec::new();
        for (k, v) in [(1u16, [10, 0, 0, 1]), (2, [10, 0, 0, 2])] {
            ip.extend_from_slice(&8u16.to_ne_bytes());
            ip.extend_from_slice(&k.to_ne_bytes());
            ip.extend_from_slice(&v);
        }
        let mut proto = Vec::new();
        proto.extend_from_slice(&5u16.to_ne_bytes());
        proto.extend_from_slice(&1u16.to_ne_bytes());
        proto.extend_from_slice(&[17, 0, 0, 0]);
        for (k, p) in [(2u16, 1000u16), (3, 53)] {
            proto.extend_from_slice(&6u16.to_ne_bytes());
            proto.extend_from_slice(&k.to_ne_bytes());
            proto.extend_from_slice(&p.to_be_bytes());
            proto.extend_from_slice(&[0, 0]);
        }
        let mut t = Vec::new();
        t.extend_from_slice(&((ip.len() + 4) as u16).to_ne_bytes());
        t.extend_from_slice(&(1u16 | NLA_F_NESTED).to_ne_bytes());
        t.extend_from_slice(&ip);
        t.extend_from_slice(&((proto.len() + 4) as u16).to_ne_bytes());
        t.extend_from_slice(&(2u16 | NLA_F_NESTED).to_ne_bytes());
        t.extend_from_slice(&proto);
        let tuple = parse_tuple(&t).unwrap();
        assert_eq!(tuple.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(tuple.dst, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(tuple.protocol, 17);
        assert_eq!(tuple.src_port, Some(1000));
        assert_eq!(tuple.dst_port, Some(53));
    }
}
