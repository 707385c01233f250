//! Event-driven waits: a second socket subscribes to the relevant multicast group *before*
//! the current state is checked, so no change can slip between the check and the wait, and
//! then blocks in `recv` with a receive timeout. No sleep loops.

use std::io;
use std::time::{Duration, Instant};

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, protocols::NETLINK_ROUTE};
use nix::sys::socket::{setsockopt, sockopt::ReceiveTimeout};
use nix::sys::time::{TimeVal, TimeValLike};

use super::{Error, Handle, IpFamily, Link, RECV_BUF_SIZE, Result};
use crate::netns::NetNs;
use crate::nl;

/// `RTNLGRP_LINK`: link changes.
const RTNLGRP_LINK: u32 = 1;
/// `RTNLGRP_IPV6_IFADDR`: IPv6 address changes.
const RTNLGRP_IPV6_IFADDR: u32 = 9;

/// A subscribed multicast socket.
struct Events {
    socket: Socket,
    buf: Vec<u8>,
}

impl Events {
    fn open(ns: &NetNs, group: u32) -> Result<Self> {
        let open = move || -> Result<Socket> {
            let err = |op| move |source| Error::Socket { op, source };
            let mut socket = Socket::new(NETLINK_ROUTE).map_err(err("open event socket"))?;
            socket.bind_auto().map_err(err("bind event socket"))?;
            socket
                .add_membership(group)
                .map_err(err("subscribe to rtnetlink group"))?;
            Ok(socket)
        };
        let here = NetNs::current()?;
        let socket = if here.is_same(ns) {
            open()?
        } else {
            ns.run(open)??
        };
        Ok(Events {
            socket,
            buf: Vec::with_capacity(RECV_BUF_SIZE),
        })
    }

    /// Blocks until an event for which `relevant` returns true arrives or events were lost
    /// (`ENOBUFS`): `Ok(true)`, check the state again. `Ok(false)` once `deadline` passes.
    fn wait(
        &mut self,
        deadline: Instant,
        mut relevant: impl FnMut(&RouteNetlinkMessage) -> bool,
    ) -> Result<bool> {
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Ok(false);
            }
            // A zero SO_RCVTIMEO would mean "forever".
            let micros = i64::try_from(remaining.as_micros())
                .unwrap_or(i64::MAX)
                .max(1);
            let tv = TimeVal::microseconds(micros);
            setsockopt(&self.socket, ReceiveTimeout, &tv).map_err(|e| Error::Socket {
                op: "set receive timeout",
                source: io::Error::from(e),
            })?;
            self.buf.clear();
            let len = match self.socket.recv(&mut self.buf, libc::MSG_TRUNC) {
                Ok(n) => n.min(self.buf.len()),
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN) => continue, // deadline re-checked above
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS) => return Ok(true),
                    _ => {
                        return Err(Error::Socket {
                            op: "receive event",
                            source: e,
                        });
                    }
                },
            };
            for m in nl::messages(&self.buf[..len]) {
                let Ok(m) = m else {
                    break;
                };
                let Ok(nl) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(m.bytes) else {
                    // An event we cannot decode might still be ours: look again.
                    return Ok(true);
                };
                if let NetlinkPayload::InnerMessage(m) = &nl.payload
                    && relevant(m)
                {
                    return Ok(true);
                }
            }
        }
    }
}

impl Handle {
    /// Waits until link `index` is operationally up and returns it. Subscribes to link events
    /// first, then checks the current state, then waits for events: no polling interval.
    ///
    /// Fails with [`Error::Timeout`] after `timeout` and with [`Error::NotFound`] if the link
    /// disappears.
    pub fn wait_oper_up(&mut self, index: u32, timeout: Duration) -> Result<Link> {
        let deadline = Instant::now() + timeout;
        let mut events = Events::open(&self.ns, RTNLGRP_LINK)?;
        loop {
            let link = self.link_by_index(index)?.ok_or_else(|| Error::NotFound {
                what: "link index",
                name: index.to_string(),
            })?;
            if link.oper_up {
                return Ok(link);
            }
            let woke = events.wait(deadline, |m| match m {
                RouteNetlinkMessage::NewLink(l) | RouteNetlinkMessage::DelLink(l) => {
                    l.header.index == index
                }
                _ => false,
            })?;
            if !woke {
                return Err(Error::Timeout {
                    what: format!("link {} ({index}) to be operationally up", link.name),
                    timeout,
                });
            }
        }
    }

    /// Waits until every link in `indexes` is gone (for example the host ends of veths whose
    /// pod namespace was deleted: the kernel removes them asynchronously). Subscribes to link
    /// events first, then checks, then waits for events.
    ///
    /// Fails with [`Error::Timeout`] after `timeout`.
    pub fn wait_links_gone(&mut self, indexes: &[u32], timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut events = Events::open(&self.ns, RTNLGRP_LINK)?;
        loop {
            let left = self.links_left(indexes)?;
            if left.is_empty() {
                return Ok(());
            }
            if !events.wait(deadline, |m| is_del_of(m, &left))? {
                return Err(Error::Timeout {
                    what: format!("links {left:?} to disappear"),
                    timeout,
                });
            }
        }
    }

    /// Waits until every link in `indexes` is gone (`Ok(true)`) or `stop()` is true
    /// (`Ok(false)`), asking `stop` after every `slice` without a relevant event; one
    /// subscription for the whole wait. For a caller whose own progress ends the wait
    /// (another thread's delete call returning).
    pub fn wait_links_gone_or(
        &mut self,
        indexes: &[u32],
        slice: Duration,
        stop: impl Fn() -> bool,
    ) -> Result<bool> {
        let mut events = Events::open(&self.ns, RTNLGRP_LINK)?;
        let mut left = self.links_left(indexes)?;
        while !left.is_empty() {
            // Events first: a deletion announced before `stop()` turned true is still seen.
            if events.wait(Instant::now() + slice, |m| is_del_of(m, &left))? {
                left = self.links_left(&left)?;
            } else if stop() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The links of `indexes` that still exist.
    fn links_left(&mut self, indexes: &[u32]) -> Result<Vec<u32>> {
        let mut left = Vec::new();
        for &i in indexes {
            if self.link_by_index(i)?.is_some() {
                left.push(i);
            }
        }
        Ok(left)
    }

    /// Waits until no IPv6 address of link `index` is tentative (duplicate address detection
    /// finished), like the reference plugins' `SettleAddresses` but event-driven.
    ///
    /// Fails with [`Error::DadFailed`] as soon as an address fails DAD and with
    /// [`Error::Timeout`] after `timeout` (for example when the link is down, where DAD never
    /// runs).
    pub fn wait_addrs_not_tentative(&mut self, index: u32, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut events = Events::open(&self.ns, RTNLGRP_IPV6_IFADDR)?;
        loop {
            let addrs = self.addrs(Some(index), Some(IpFamily::V6))?;
            if let Some(failed) = addrs.iter().find(|a| a.is_dadfailed()) {
                return Err(Error::DadFailed {
                    index,
                    addr: failed.addr,
                });
            }
            let tentative: Vec<String> = addrs
                .iter()
                .filter(|a| a.is_tentative())
                .map(|a| a.addr.to_string())
                .collect();
            if tentative.is_empty() {
                return Ok(());
            }
            let woke = events.wait(deadline, |m| match m {
                RouteNetlinkMessage::NewAddress(a) | RouteNetlinkMessage::DelAddress(a) => {
                    a.header.index == index
                }
                _ => false,
            })?;
            if !woke {
                return Err(Error::Timeout {
                    what: format!(
                        "tentative addresses {} on link {index} to settle",
                        tentative.join(", ")
                    ),
                    timeout,
                });
            }
        }
    }
}

/// Whether `m` is the `RTM_DELLINK` of one of `indexes`.
fn is_del_of(m: &RouteNetlinkMessage, indexes: &[u32]) -> bool {
    matches!(m, RouteNetlinkMessage::DelLink(l) if indexes.contains(&l.header.index))
}
