//! Synchronous rtnetlink: links, addresses, routes, bridge ports and VLANs.
//!
//! A [`Handle`] is one `NETLINK_ROUTE` socket (netlink-sys) speaking the netlink-packet-route
//! codec, with its own sequence numbers and a reusable receive buffer. No async runtime, no
//! `ip` processes.
//!
//! A socket stays bound to the network namespace it was created in, so
//! [`Handle::new_in`] opens the socket inside a namespace once (one thread hop) and then
//! every request runs from the calling thread, in that namespace.
//!
//! | module | what |
//! |---|---|
//! | `link` ([`Link`], [`VethRequest`], [`BridgeOptions`]) | list, create (bridge, veth with the peer created directly inside another namespace, vlan, dummy), change and delete links |
//! | `bridge` ([`BridgePortOptions`], [`BridgeVlan`]) | bridge-port flags (hairpin, isolation), VLAN filtering, per-port VLANs |
//! | `addr` ([`Addr`], [`AddrFlags`]) | add, list, delete addresses |
//! | `route` ([`Route`], [`Scope`], [`RouteKind`]) | add, replace, list, delete routes; `route_get` |
//! | `wait` | [`Handle::wait_oper_up`], [`Handle::wait_addrs_not_tentative`]: event-driven waits with a timeout |
//! | [`mac`] | parse, format and generate MAC addresses |
//! | [`tc`] ([`TcRequest`], [`Qdisc`], [`Filter`]) | traffic control: tbf and ingress qdiscs, u32 redirect filters, ifb devices |
//!
//! Kernel errors come back as [`Error::Kernel`] with the errno and, when the kernel sends one,
//! its extended-ACK message; [`Error::is_exists`] and [`Error::is_not_found`] classify them.
//!
//! ```no_run
//! use cni_linux::netlink::{BridgeOptions, Handle, VethRequest};
//! use cni_linux::netns::NetNs;
//! use std::os::fd::AsFd;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pod = NetNs::open("/run/netns/pod1")?;
//! let mut host = Handle::new()?;
//! let br = match host.add_bridge("cni0", &BridgeOptions { up: true, ..Default::default() }) {
//!     Ok(link) => link,
//!     Err(e) if e.is_exists() => host.link_by_name("cni0")?.expect("cni0 exists"),
//!     Err(e) => return Err(e.into()),
//! };
//! let mut veth = VethRequest::new("veth1a2b3c4d", "eth0");
//! veth.peer_netns = Some(pod.as_fd());
//! veth.master = Some(br.index);
//! veth.up = true;
//! let host_end = host.add_veth(&veth)?;
//!
//! let mut inside = Handle::new_in(&pod)?;
//! let eth0 = inside.link_by_name("eth0")?.expect("created in place");
//! inside.addr_add(eth0.index, "10.88.0.2/16".parse()?, Default::default())?;
//! inside.set_up(eth0.index)?;
//! # let _ = host_end;
//! # Ok(())
//! # }
//! ```

mod addr;
mod bridge;
mod link;
pub mod mac;
mod netconf;
mod route;
pub mod tc;
mod wait;

use std::fmt;
use std::io;

use netlink_packet_core::{
    DecodeError, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkBuffer, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use nix::errno::Errno;

use crate::netns::{NetNs, NetnsError};

pub use addr::{Addr, AddrFlags};
pub use bridge::{BridgePortOptions, BridgeVlan};
pub use link::{
    BridgeInfo, BridgeOptions, BridgePortInfo, DevConf, Ipv4Conf, Link, VethRequest,
    validate_ifname,
};
pub use route::{Route, RouteKind, Scope, TABLE_LOCAL, TABLE_MAIN};
pub use tc::{Filter, Ifb, IfbOptions, Qdisc, TbfParams, TcRequest};

/// The codec crate, re-exported so users of [`Handle::ack_request`] /
/// [`Handle::dump_request`] need no second version of it.
pub use netlink_packet_route as packet_route;

/// `NLM_F_CAPPED` on an error message: the echoed request was truncated to its header.
const NLM_F_CAPPED: u16 = 0x100;
/// `NLM_F_ACK_TLVS` on an error message: extended-ACK attributes follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG`: the human-readable extended-ACK message.
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// Size of the reusable receive buffer. Kernel dump batches are at most 32 KiB.
const RECV_BUF_SIZE: usize = 64 * 1024;

/// Flags for requests that create objects and must fail if they exist.
pub(crate) const CREATE_EXCL: u16 =
    netlink_packet_core::NLM_F_CREATE | netlink_packet_core::NLM_F_EXCL;

pub use crate::IpFamily;

pub(crate) fn family_to_af(f: IpFamily) -> netlink_packet_route::AddressFamily {
    match f {
        IpFamily::V4 => netlink_packet_route::AddressFamily::Inet,
        IpFamily::V6 => netlink_packet_route::AddressFamily::Inet6,
    }
}

/// Errors of netlink operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The socket could not be opened, configured, written or read.
    #[error("netlink socket: {op}")]
    Socket {
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The kernel refused a request (`NLMSG_ERROR` with a negative errno).
    #[error("{op} {subject}: {}{}", errno.desc(), fmt_ext(message))]
    Kernel {
        /// The operation, e.g. `"add veth"`.
        op: &'static str,
        /// What it was applied to (a link name, an index, an address…).
        subject: String,
        /// The kernel's errno.
        errno: Errno,
        /// The extended-ACK message, when the kernel sent one.
        message: Option<String>,
    },
    /// A reply could not be decoded.
    #[error("decode netlink reply to {op}")]
    Decode {
        /// The operation whose reply failed to decode.
        op: &'static str,
        /// The codec error.
        #[source]
        source: DecodeError,
    },
    /// A reply did not fit the receive buffer.
    #[error("netlink reply to {op} truncated ({len} bytes)")]
    Truncated {
        /// The operation.
        op: &'static str,
        /// The datagram's real length.
        len: usize,
    },
    /// A named object the operation needs does not exist (checked in user space).
    #[error("{what} {name:?} not found")]
    NotFound {
        /// The kind of object, e.g. `"link"`.
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// An argument was rejected before anything was sent.
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        /// The argument, e.g. `"interface name"`.
        what: &'static str,
        /// The rejected value.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// A wait ran out of time.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The timeout that expired.
        timeout: std::time::Duration,
    },
    /// An IPv6 address failed duplicate address detection.
    #[error("address {addr} on link {index} failed duplicate address detection")]
    DadFailed {
        /// The link index.
        index: u32,
        /// The address in `DADFAILED` state.
        addr: ipnet::IpNet,
    },
    /// Entering a namespace (to open a socket there) failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

fn fmt_ext(message: &Option<String>) -> String {
    match message {
        Some(m) => format!(" ({m})"),
        None => String::new(),
    }
}

impl Error {
    /// The kernel errno, for [`Error::Kernel`].
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// True if the object already exists (`EEXIST`): "create if missing" callers ignore it.
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(Errno::EEXIST)
    }

    /// True if the object (link, address, route, namespace) does not exist: `ENODEV`,
    /// `ENOENT`, `ESRCH`, `EADDRNOTAVAIL`, or a user-space [`Error::NotFound`].
    /// Teardown callers treat it as success.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::NotFound { .. } => true,
            Error::Netns(e) => e.is_not_found(),
            _ => matches!(
                self.errno(),
                Some(Errno::ENODEV | Errno::ENOENT | Errno::ESRCH | Errno::EADDRNOTAVAIL)
            ),
        }
    }

    #[cfg(test)]
    pub(crate) fn kernel(op: &'static str, subject: &dyn fmt::Display, code: i32) -> Self {
        Error::Kernel {
            op,
            subject: subject.to_string(),
            errno: Errno::from_raw(code.abs()),
            message: None,
        }
    }
}

/// Short alias used throughout the module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a request expects back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// An ACK (the request carries `NLM_F_ACK`); other replies (echoes) are passed on.
    Ack,
    /// Exactly one reply message (a non-dump `RTM_GET*`).
    One,
    /// A multi-part dump ending with `NLMSG_DONE`.
    Dump,
}

/// An rtnetlink socket bound to one network namespace. See the [module docs](self).
///
/// Methods take `&mut self` (sequence numbers and buffers); a handle is `Send`, so it can be
/// moved to another thread, and it keeps working in its namespace from any thread.
#[derive(Debug)]
pub struct Handle {
    socket: Socket,
    ns: NetNs,
    seq: u32,
    rbuf: Vec<u8>,
    sbuf: Vec<u8>,
}

pub(crate) fn open_socket() -> Result<Socket> {
    let err = |op| move |source| Error::Socket { op, source };
    let socket = Socket::new(NETLINK_ROUTE).map_err(err("open"))?;
    // Extended ACK messages and capped ACKs (no copy of our request in every ACK); both
    // are optional features, so an old kernel refusing them is not an error.
    let _ = socket.set_ext_ack(true);
    let _ = socket.set_cap_ack(true);
    // Strict checking makes the kernel filter address and route dumps by the index / table
    // in the request; we still filter in user space for kernels without it.
    let _ = socket.set_netlink_get_strict_chk(true);
    Ok(socket)
}

impl Handle {
    /// Opens an rtnetlink socket in the calling thread's network namespace.
    pub fn new() -> Result<Self> {
        let ns = NetNs::current()?;
        let socket = open_socket()?;
        Ok(Self::from_parts(socket, ns))
    }

    /// Opens an rtnetlink socket inside `ns` (on a short-lived thread, see [`NetNs::run`]).
    /// The handle then operates in `ns` from whichever thread uses it.
    ///
    /// When `ns` is the calling thread's own namespace the socket is opened directly, without
    /// the thread hop.
    pub fn new_in(ns: &NetNs) -> Result<Self> {
        let socket = if NetNs::current()?.is_same(ns) {
            open_socket()?
        } else {
            ns.run(open_socket)??
        };
        Ok(Self::from_parts(socket, ns.try_clone()?))
    }

    /// Like [`Handle::new_in`], and also runs `f` in the namespace on the same short-lived
    /// thread: one thread hop for both, for example to write the interface sysctls a plugin
    /// needs next to its netlink work.
    pub fn new_in_with<F, T>(ns: &NetNs, f: F) -> Result<(Self, T)>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let (socket, value) = ns.run(|| open_socket().map(|s| (s, f())))??;
        Ok((Self::from_parts(socket, ns.try_clone()?), value))
    }

    fn from_parts(socket: Socket, ns: NetNs) -> Self {
        Handle {
            socket,
            ns,
            seq: 0,
            rbuf: Vec::with_capacity(RECV_BUF_SIZE),
            sbuf: Vec::with_capacity(1024),
        }
    }

    /// The namespace this handle operates in.
    pub fn netns(&self) -> &NetNs {
        &self.ns
    }

    /// Sends a request that expects an ACK (`NLM_F_ACK` is added to `flags`), for messages this
    /// module has no method for. Replies other than the ACK (such as `NLM_F_ECHO` echoes) are
    /// returned.
    pub fn ack_request(
        &mut self,
        op: &'static str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let mut out = Vec::new();
        self.exchange(op, &"", msg, flags | NLM_F_ACK, Expect::Ack, |m| {
            out.push(m);
            Ok(())
        })?;
        Ok(out)
    }

    /// Sends a dump request (`NLM_F_DUMP`) and returns every reply message.
    pub fn dump_request(
        &mut self,
        op: &'static str,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let mut out = Vec::new();
        self.dump(op, msg, |m| {
            out.push(m);
            Ok(())
        })?;
        Ok(out)
    }

    /// Request + ACK; `subject` names the object for error messages.
    pub(crate) fn ack(
        &mut self,
        op: &'static str,
        subject: &dyn fmt::Display,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<()> {
        self.exchange(op, subject, msg, flags | NLM_F_ACK, Expect::Ack, |_| Ok(()))
    }

    /// A non-dump `RTM_GET*`: exactly one reply, or the kernel's error.
    pub(crate) fn get_one(
        &mut self,
        op: &'static str,
        subject: &dyn fmt::Display,
        msg: RouteNetlinkMessage,
    ) -> Result<RouteNetlinkMessage> {
        let mut reply = None;
        self.exchange(op, subject, msg, 0, Expect::One, |m| {
            reply = Some(m);
            Ok(())
        })?;
        reply.ok_or(Error::Socket {
            op,
            source: io::Error::new(io::ErrorKind::UnexpectedEof, "no reply"),
        })
    }

    pub(crate) fn dump(
        &mut self,
        op: &'static str,
        msg: RouteNetlinkMessage,
        on_msg: impl FnMut(RouteNetlinkMessage) -> Result<()>,
    ) -> Result<()> {
        self.exchange(op, &"", msg, NLM_F_DUMP, Expect::Dump, on_msg)
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32> {
        self.seq = self.seq.wrapping_add(1).max(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        nl.finalize();
        self.sbuf.clear();
        self.sbuf.resize(nl.buffer_len(), 0);
        nl.serialize(&mut self.sbuf);
        let kernel = SocketAddr::new(0, 0);
        loop {
            match self.socket.send_to(&self.sbuf, &kernel, 0) {
                Ok(_) => return Ok(self.seq),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(Error::Socket { op: "send", source }),
            }
        }
    }

    fn exchange(
        &mut self,
        op: &'static str,
        subject: &dyn fmt::Display,
        msg: RouteNetlinkMessage,
        flags: u16,
        expect: Expect,
        mut on_msg: impl FnMut(RouteNetlinkMessage) -> Result<()>,
    ) -> Result<()> {
        let seq = self.send(msg, flags)?;
        loop {
            let len = recv_into(&self.socket, &mut self.rbuf, op)?;
            let mut off = 0;
            while off < len {
                let rest = &self.rbuf[off..len];
                let nlbuf = NetlinkBuffer::new_checked(rest)
                    .map_err(|source| Error::Decode { op, source })?;
                let msg_len = nlbuf.length() as usize;
                let (msg_type, msg_flags, msg_seq) =
                    (nlbuf.message_type(), nlbuf.flags(), nlbuf.sequence_number());
                let bytes = &rest[..msg_len];
                off += align4(msg_len);
                if msg_seq != seq {
                    // A stale reply to an earlier, abandoned request.
                    continue;
                }
                match msg_type {
                    NLMSG_ERROR => {
                        let payload = &bytes[16..];
                        if payload.len() < 4 {
                            return Err(Error::Truncated { op, len: msg_len });
                        }
                        let code =
                            i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
                        if code == 0 {
                            // ACK. (A `One` request never asks for one.)
                            return Ok(());
                        }
                        return Err(Error::Kernel {
                            op,
                            subject: subject.to_string(),
                            errno: Errno::from_raw(code.abs()),
                            message: ext_ack_message(msg_flags, &payload[4..]),
                        });
                    }
                    NLMSG_DONE => {
                        let payload = &bytes[16..];
                        if payload.len() >= 4 {
                            let code = i32::from_ne_bytes([
                                payload[0], payload[1], payload[2], payload[3],
                            ]);
                            if code < 0 {
                                return Err(Error::Kernel {
                                    op,
                                    subject: subject.to_string(),
                                    errno: Errno::from_raw(code.abs()),
                                    message: ext_ack_message(msg_flags, &payload[4..]),
                                });
                            }
                        }
                        return Ok(());
                    }
                    _ => {
                        let nl = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
                            .map_err(|source| Error::Decode { op, source })?;
                        if let NetlinkPayload::InnerMessage(m) = nl.payload {
                            on_msg(m)?;
                            if expect == Expect::One {
                                return Ok(());
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(crate) fn recv_into(socket: &Socket, buf: &mut Vec<u8>, op: &'static str) -> Result<usize> {
    loop {
        buf.clear();
        match socket.recv(buf, libc::MSG_TRUNC) {
            Ok(n) if n > buf.capacity() => return Err(Error::Truncated { op, len: n }),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(Error::Socket {
                    op: "receive",
                    source,
                });
            }
        }
    }
}

pub(crate) fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// Extracts `NLMSGERR_ATTR_MSG` from an error payload (after the errno): the echoed request
/// (only its header when capped), then extended-ACK attributes.
fn ext_ack_message(flags: u16, payload: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || payload.len() < 16 {
        return None;
    }
    let echoed = if flags & NLM_F_CAPPED != 0 {
        16
    } else {
        u32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize
    };
    let mut off = align4(echoed);
    while off + 4 <= payload.len() {
        let nla_len = u16::from_ne_bytes([payload[off], payload[off + 1]]) as usize;
        let kind = u16::from_ne_bytes([payload[off + 2], payload[off + 3]]) & 0x3fff;
        if nla_len < 4 || off + nla_len > payload.len() {
            break;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let value = &payload[off + 4..off + nla_len];
            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            return Some(String::from_utf8_lossy(&value[..end]).into_owned());
        }
        off += align4(nla_len);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_ack_message_is_parsed_from_capped_error() {
        // Capped echo (16-byte header) followed by NLMSGERR_ATTR_MSG "bad name\0".
        let mut payload = vec![0u8; 16];
        payload[0..4].copy_from_slice(&40u32.to_ne_bytes());
        let text = b"bad name\0";
        let nla_len = 4 + text.len();
        payload.extend_from_slice(&(nla_len as u16).to_ne_bytes());
        payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        payload.extend_from_slice(text);
        assert_eq!(
            ext_ack_message(NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload).as_deref(),
            Some("bad name")
        );
        assert_eq!(ext_ack_message(NLM_F_CAPPED, &payload), None);
    }

    #[test]
    fn error_classification() {
        let e = Error::kernel("add bridge", &"cni0", -libc::EEXIST);
        assert!(e.is_exists());
        assert!(!e.is_not_found());
        assert_eq!(e.to_string(), "add bridge cni0: File exists");
        for code in [libc::ENODEV, libc::ESRCH, libc::EADDRNOTAVAIL, libc::ENOENT] {
            assert!(Error::kernel("x", &1, -code).is_not_found());
        }
        let with_ext = Error::Kernel {
            op: "add veth",
            subject: "v0".into(),
            errno: Errno::EINVAL,
            message: Some("peer name missing".into()),
        };
        assert_eq!(
            with_ext.to_string(),
            "add veth v0: Invalid argument (peer name missing)"
        );
    }
}
