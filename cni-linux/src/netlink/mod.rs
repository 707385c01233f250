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
//! | `netconf` | [`Handle::forwarding`]: namespace-wide forwarding over `RTM_GETNETCONF` |
//!
//! Sockets, the reply loop, extended ACKs and attribute walking are the crate's netlink core
//! (`nl`), shared with nf_tables and conntrack.
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
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, protocols::NETLINK_ROUTE};

use crate::netns::{NetNs, NetnsError};
use crate::nl::{self, Flow, ReplyError};

pub use addr::{Addr, AddrFlags};
pub use bridge::{BridgePortOptions, BridgeVlan};
pub use link::{
    BridgeInfo, BridgeOptions, BridgePortInfo, DevConf, Ipv4Conf, Link, VethRequest,
    validate_ifname,
};
pub use route::{Route, RouteKind, Scope, TABLE_LOCAL, TABLE_MAIN};
pub use tc::{Filter, Ifb, IfbOptions, Qdisc, TbfParams, TcRequest};

/// The codec crate, re-exported so users of [`Handle::ack_request`] /
/// [`Handle::dump_request`] need no second version of it (part of the semver contract, see
/// the crate docs).
pub use netlink_packet_route as packet_route;

/// The errno type of [`Error::Kernel`] (nix 0.32), re-exported for matching on it without a
/// direct nix dependency (part of the semver contract, see the crate docs).
pub use nix::errno::Errno;

/// The codec error in [`Error::Decode`] (netlink-packet-core 0.9), re-exported (part of the
/// semver contract, see the crate docs).
pub use netlink_packet_core::DecodeError;

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
    // Extended ACK messages and capped ACKs: see `nl::open`.
    let socket = nl::open(NETLINK_ROUTE).map_err(err("open"))?;
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

    /// Like [`Handle::new_in`], and also runs `f` in the namespace while it is entered for
    /// the socket: one entry for both, for example to write the interface sysctls a plugin
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
        let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        m.finalize();
        self.sbuf.clear();
        self.sbuf.resize(m.buffer_len(), 0);
        m.serialize(&mut self.sbuf);
        nl::send(&self.socket, &self.sbuf)
            .map_err(|source| Error::Socket { op: "send", source })?;
        Ok(self.seq)
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
        let mut on_data = |m: nl::Msg<'_>| -> Result<Flow> {
            let nl = NetlinkMessage::<RouteNetlinkMessage>::deserialize(m.bytes)
                .map_err(|source| Error::Decode { op, source })?;
            if let NetlinkPayload::InnerMessage(m) = nl.payload {
                on_msg(m)?;
                if expect == Expect::One {
                    // A `One` request never asks for an ACK: this reply is the answer.
                    return Ok(Flow::Stop);
                }
            }
            Ok(Flow::Continue)
        };
        nl::replies(&self.socket, &mut self.rbuf, seq, &mut on_data)
            .map(|_| ())
            .map_err(|e| Error::from_reply(op, subject, e))
    }
}

impl Error {
    /// The error of a failed exchange `op` on `subject`.
    pub(crate) fn from_reply(
        op: &'static str,
        subject: &dyn fmt::Display,
        e: ReplyError<Error>,
    ) -> Error {
        match e {
            ReplyError::Recv(e) => Error::from_recv(op, e),
            ReplyError::BadLength(nl::BadLength(len)) | ReplyError::ShortError(len) => {
                Error::Truncated { op, len }
            }
            ReplyError::Kernel(status) => Error::Kernel {
                op,
                subject: subject.to_string(),
                errno: Errno::from_raw(status.errno),
                message: status.ext_ack,
            },
            ReplyError::Data(e) => e,
        }
    }

    /// The error of a failed receive for `op`.
    pub(crate) fn from_recv(op: &'static str, e: nl::RecvError) -> Error {
        match e {
            nl::RecvError::Truncated(len) => Error::Truncated { op, len },
            nl::RecvError::Io(source) => Error::Socket {
                op: "receive",
                source,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
