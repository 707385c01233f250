//! Connection tracking entries over `NETLINK_NETFILTER` (ctnetlink): list and delete.
//!
//! Portmap deletes the UDP entries of its host ports on ADD (and may on DEL) so that a stale
//! entry pointing at an old container does not blackhole the traffic (reference plugins
//! #123, #1190). The kernel cannot delete by port, so [`delete_where`] dumps the table once
//! (`IPCTNL_MSG_CT_GET` with `NLM_F_DUMP`, only the requested family), looks at each entry as
//! it is read and deletes a matching one at once by its original tuple (and zone) over a
//! second socket: one pass per call whatever the number of ports
//! ([`delete_udp_by_dports`]), and memory that does not grow with the table. A dump the
//! kernel flags as interrupted (`NLM_F_DUMP_INTR`) is repeated; if every attempt is
//! interrupted the call fails with [`ConntrackError::Interrupted`]. Entries that vanish in
//! between are not errors. [`Conntrack`] is the seam: tests count passes.
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
use crate::firewall::nftables::socket::NfSocket;
use crate::nl::{self, attr, be16};

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
    /// The netfilter netlink layer failed otherwise (a malformed or truncated reply).
    #[error("conntrack netlink reply")]
    Netlink(#[source] NftError),
    /// Every dump of the table was interrupted (`NLM_F_DUMP_INTR`: the table kept changing
    /// while it was read), so matching entries may remain.
    #[error(
        "conntrack dump interrupted {attempts} times in a row (the table kept changing); {deleted} entries deleted, others may remain"
    )]
    Interrupted {
        /// Dumps tried.
        attempts: u32,
        /// Entries deleted meanwhile.
        deleted: usize,
    },
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
            other => ConntrackError::Netlink(other),
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

/// `sizeof(struct nfgenmsg)`: family, version, resource id before the attributes.
const NFGENMSG_LEN: usize = 4;

fn parse_tuple(v: &[u8]) -> Option<Tuple> {
    let ip = attr(v, CTA_TUPLE_IP)?;
    let addr4 = |k| {
        attr(ip, k)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| IpAddr::V4(Ipv4Addr::from(b)))
    };
    let addr6 = |k| {
        attr(ip, k)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map(|b| IpAddr::V6(Ipv6Addr::from(b)))
    };
    let src = addr4(CTA_IP_V4_SRC).or_else(|| addr6(CTA_IP_V6_SRC))?;
    let dst = addr4(CTA_IP_V4_DST).or_else(|| addr6(CTA_IP_V6_DST))?;
    let proto = attr(v, CTA_TUPLE_PROTO)?;
    Some(Tuple {
        src,
        dst,
        protocol: *attr(proto, CTA_PROTO_NUM)?.first()?,
        src_port: attr(proto, CTA_PROTO_SRC_PORT).and_then(be16),
        dst_port: attr(proto, CTA_PROTO_DST_PORT).and_then(be16),
    })
}

fn parse_entry(m: nl::Msg<'_>) -> Option<Entry> {
    if m.msg_type != IPCTNL_MSG_CT_NEW {
        return None;
    }
    let a = m.payload.get(NFGENMSG_LEN..)?;
    let orig_raw = attr(a, CTA_TUPLE_ORIG)?;
    let orig = parse_tuple(orig_raw)?;
    let zone_raw = attr(a, CTA_ZONE).map(<[u8]>::to_vec);
    Some(Entry {
        family: IpFamily::of(&orig.src),
        reply: attr(a, CTA_TUPLE_REPLY).and_then(parse_tuple),
        zone: zone_raw.as_deref().and_then(be16),
        orig,
        orig_raw: orig_raw.to_vec(),
        zone_raw,
    })
}

/// What one pass over the table did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Entries deleted (entries that vanished before their deletion are not counted).
    pub deleted: usize,
    /// The kernel flagged the dump as interrupted (`NLM_F_DUMP_INTR`): the table changed
    /// while it was read, so entries may have been missed.
    pub interrupted: bool,
}

/// The conntrack table as [`delete_where`] needs it: one pass that streams the entries and
/// deletes those `doomed` selects. [`Netlink`] is the kernel; tests can count passes.
pub trait Conntrack {
    /// One dump of `family` (both when `None`); each entry is handed to `doomed` as it is
    /// read and deleted at once when it returns true. Memory does not grow with the table.
    fn sweep(
        &mut self,
        family: Option<IpFamily>,
        doomed: &mut dyn FnMut(&Entry) -> bool,
    ) -> Result<Sweep, ConntrackError>;
}

/// The kernel's table in the calling thread's network namespace: one socket reads the dump,
/// another deletes while it is read.
pub struct Netlink {
    dump: NfSocket,
    del: NfSocket,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("conntrack::Netlink")
    }
}

impl Netlink {
    /// Opens both sockets.
    pub fn open() -> Result<Netlink, ConntrackError> {
        Ok(Netlink {
            dump: NfSocket::open()?,
            del: NfSocket::open()?,
        })
    }
}

fn delete_entry(sock: &mut NfSocket, e: &Entry) -> Result<bool, ConntrackError> {
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
        Ok(_) => Ok(true),
        Err(err) if err.errno() == Some(libc::ENOENT) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

impl Conntrack for Netlink {
    fn sweep(
        &mut self,
        family: Option<IpFamily>,
        doomed: &mut dyn FnMut(&Entry) -> bool,
    ) -> Result<Sweep, ConntrackError> {
        let mut sweep = Sweep::default();
        let mut failed: Option<ConntrackError> = None;
        let del = &mut self.del;
        sweep.interrupted = self.dump.dump_each(
            "dump",
            family_byte(family),
            ConntrackMessage::Get(vec![]),
            &mut |m| {
                if failed.is_some() {
                    return;
                }
                let Some(e) = parse_entry(m) else {
                    return;
                };
                if doomed(&e) {
                    match delete_entry(del, &e) {
                        Ok(true) => sweep.deleted += 1,
                        Ok(false) => {}
                        Err(err) => failed = Some(err),
                    }
                }
            },
        )?;
        match failed {
            Some(e) => Err(e),
            None => Ok(sweep),
        }
    }
}

/// How many passes [`delete_where`] makes over a table whose dumps keep being interrupted.
pub const SWEEP_ATTEMPTS: u32 = 3;

/// Deletes the entries of `family` that `doomed` selects, in one pass over the table; an
/// interrupted pass is repeated (up to [`SWEEP_ATTEMPTS`] in all) and, when the last one is
/// still interrupted, reported as [`ConntrackError::Interrupted`].
pub fn delete_where(
    ct: &mut dyn Conntrack,
    family: Option<IpFamily>,
    doomed: &mut dyn FnMut(&Entry) -> bool,
) -> Result<usize, ConntrackError> {
    let mut deleted = 0;
    for _ in 0..SWEEP_ATTEMPTS {
        let s = ct.sweep(family, doomed)?;
        deleted += s.deleted;
        if !s.interrupted {
            return Ok(deleted);
        }
    }
    Err(ConntrackError::Interrupted {
        attempts: SWEEP_ATTEMPTS,
        deleted,
    })
}

/// Lists the conntrack entries of `family` (both when `None`).
pub fn list(family: Option<IpFamily>) -> Result<Vec<Entry>, ConntrackError> {
    let mut sock = NfSocket::open()?;
    for _ in 0..SWEEP_ATTEMPTS {
        let mut out = Vec::new();
        let interrupted = sock.dump_each(
            "dump",
            family_byte(family),
            ConntrackMessage::Get(vec![]),
            &mut |m| out.extend(parse_entry(m)),
        )?;
        if !interrupted {
            return Ok(out);
        }
    }
    Err(ConntrackError::Interrupted {
        attempts: SWEEP_ATTEMPTS,
        deleted: 0,
    })
}

/// Deletes every entry matching `filter`; returns how many were deleted. Entries that
/// disappear before we get to them are not counted and not errors.
pub fn delete(filter: &Filter) -> Result<usize, ConntrackError> {
    delete_where(&mut Netlink::open()?, filter.family, &mut |e| {
        filter.matches(e)
    })
}

/// Deletes the UDP entries of `family` whose original destination port is one of `ports`,
/// in one pass over the table whatever the number of ports (portmap after ADD and DEL).
pub fn delete_udp_by_dports(family: IpFamily, ports: &[u16]) -> Result<usize, ConntrackError> {
    delete_udp_by_dports_with(&mut Netlink::open()?, family, ports)
}

/// [`delete_udp_by_dports`] on any [`Conntrack`]. No pass when `ports` is empty.
pub fn delete_udp_by_dports_with(
    ct: &mut dyn Conntrack,
    family: IpFamily,
    ports: &[u16],
) -> Result<usize, ConntrackError> {
    if ports.is_empty() {
        return Ok(0);
    }
    delete_where(ct, Some(family), &mut |e| {
        e.family == family
            && e.orig.protocol == PROTO_UDP
            && e.orig.dst_port.is_some_and(|p| ports.contains(&p))
    })
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

    /// A table in memory that counts passes and reports the first `interrupts` as
    /// interrupted.
    struct Fake {
        entries: Vec<Entry>,
        sweeps: u32,
        interrupts: u32,
    }

    impl Conntrack for Fake {
        fn sweep(
            &mut self,
            family: Option<IpFamily>,
            doomed: &mut dyn FnMut(&Entry) -> bool,
        ) -> Result<Sweep, ConntrackError> {
            self.sweeps += 1;
            let before = self.entries.len();
            self.entries
                .retain(|e| !(family.is_none_or(|f| f == e.family) && doomed(e)));
            Ok(Sweep {
                deleted: before - self.entries.len(),
                interrupted: self.sweeps <= self.interrupts,
            })
        }
    }

    fn fake(interrupts: u32) -> Fake {
        let mut entries = Vec::new();
        for port in [53, 54, 55, 56] {
            entries.push(entry(PROTO_UDP, "10.0.0.1", port));
            entries.push(entry(PROTO_TCP, "10.0.0.1", port));
            entries.push(entry(PROTO_UDP, "fd00::1", port));
        }
        Fake {
            entries,
            sweeps: 0,
            interrupts,
        }
    }

    /// Issue 12 item 5: one pass for any number of ports.
    #[test]
    fn one_pass_for_all_ports() {
        let mut ct = fake(0);
        let n = delete_udp_by_dports_with(&mut ct, IpFamily::V4, &[53, 55, 56]).unwrap();
        assert_eq!(n, 3);
        assert_eq!(ct.sweeps, 1);
        assert_eq!(ct.entries.len(), 9);
        assert!(ct.entries.contains(&entry(PROTO_UDP, "10.0.0.1", 54)));
        assert!(ct.entries.contains(&entry(PROTO_TCP, "10.0.0.1", 53)));
        assert!(ct.entries.contains(&entry(PROTO_UDP, "fd00::1", 53)));
        delete_udp_by_dports_with(&mut ct, IpFamily::V4, &[]).unwrap();
        assert_eq!(ct.sweeps, 1, "no ports, no pass");
    }

    /// An interrupted pass is repeated; when every pass is, the error says so.
    #[test]
    fn interrupted_dumps_are_retried_then_reported() {
        let mut ct = fake(1);
        assert_eq!(
            delete_udp_by_dports_with(&mut ct, IpFamily::V4, &[53]).unwrap(),
            1
        );
        assert_eq!(ct.sweeps, 2);
        let mut ct = fake(SWEEP_ATTEMPTS);
        let e = delete_udp_by_dports_with(&mut ct, IpFamily::V4, &[53, 54]).unwrap_err();
        assert_eq!(ct.sweeps, SWEEP_ATTEMPTS);
        assert!(
            matches!(
                e,
                ConntrackError::Interrupted {
                    attempts: SWEEP_ATTEMPTS,
                    deleted: 2
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("interrupted 3 times"), "{e}");
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

    #[test]
    fn netlink_failures_keep_their_cause() {
        use std::error::Error as _;
        let e = ConntrackError::from(NftError::Truncated { len: 300_000 });
        assert!(matches!(e, ConntrackError::Netlink(_)));
        assert_eq!(e.to_string(), "conntrack netlink reply");
        assert_eq!(
            e.source().map(ToString::to_string).as_deref(),
            Some("nf_tables netlink reply truncated (300000 bytes)")
        );
    }
}
