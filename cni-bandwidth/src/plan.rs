//! What ADD installs, as a value: [`Plan::new`] is pure, [`Plan::requests`] gives the tc
//! requests once the devices' indexes are known, and [`Plan::dump`] renders them (readable
//! and as the netlink bytes) for golden tests.
//!
//! The layout is the reference's:
//!
//! ```text
//! pod eth0 ──veth── host veth ──root qdisc tbf 1: (ingress shaping: traffic to the pod)
//!                       │
//!                       └─ingress qdisc ffff: ─ u32 match-all, prio 1, flowid 1:1
//!                                                └─ mirred egress redirect (stolen)
//!                                                      ↓
//!                  ifb bwp<hash> ──root qdisc tbf 1: (egress shaping: traffic from the pod)
//! ```

use std::fmt::Write as _;

use cni_linux::firewall::names::format_hash_with_prefix;
use cni_linux::firewall::sha512::sha512_hex;
use cni_linux::netlink::TbfParams;
use cni_linux::netlink::tc::{self, IfbOptions, TcRequest};

use crate::config::Shaping;

/// Prefix of the ifb device's name (`ifbDevicePrefix`).
pub const IFB_PREFIX: &str = "bwp";
/// The handle of both token buckets, `1:`.
pub const TBF_HANDLE: u32 = tc::handle(1, 0);
/// The class the redirect filter names (`flowid 1:1`), as the reference.
pub const CLASS_ID: u32 = tc::handle(1, 1);
/// The redirect filter's priority.
pub const FILTER_PRIORITY: u16 = 1;

/// The ifb device's name: `bwp` and the hex SHA-512 of network name and container ID, 15
/// bytes in all (the reference's `getIfbDeviceName`).
pub fn ifb_name(network: &str, container_id: &str) -> String {
    let mut to_hash = String::with_capacity(network.len() + container_id.len());
    to_hash.push_str(network);
    to_hash.push_str(container_id);
    // 15 > 3 and 15 <= 128: the only failure of the helper cannot happen.
    format_hash_with_prefix(15, IFB_PREFIX, &to_hash).unwrap_or_default()
}

/// The alias our ifb devices carry, so GC can tell this network's devices from other
/// networks' (the name is a one-way hash). The reference sets none.
pub fn ifb_alias(network: &str) -> String {
    format!("cni-rs bandwidth {}", &sha512_hex(network.as_bytes())[..32])
}

/// The egress half of a [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPlan {
    /// The ifb device's name.
    pub ifb: String,
    /// How it is created: the host interface's MTU, up, queue length 0 (as the reference,
    /// whose comment keeps it 0 until multi-queue ifb issues are fixed), our alias.
    pub ifb_options: IfbOptions,
    /// The token bucket on the ifb device.
    pub tbf: TbfParams,
}

/// What ADD installs for one attachment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// The token bucket on the host interface, for traffic to the pod.
    pub ingress: Option<TbfParams>,
    /// The ifb device and its token bucket, for traffic from the pod.
    pub egress: Option<EgressPlan>,
}

impl Plan {
    /// The plan for `shaping` on a host interface of MTU `host_mtu`.
    pub fn new(
        shaping: &Shaping,
        network: &str,
        container_id: &str,
        host_mtu: u32,
        tick_in_usec: f64,
    ) -> Plan {
        Plan {
            ingress: shaping.ingress.map(|b| b.tbf(tick_in_usec)),
            egress: shaping.egress.map(|b| EgressPlan {
                ifb: ifb_name(network, container_id),
                ifb_options: IfbOptions {
                    mtu: Some(host_mtu),
                    txqlen: Some(0),
                    alias: Some(ifb_alias(network)),
                    up: true,
                },
                tbf: b.tbf(tick_in_usec),
            }),
        }
    }

    /// The tc requests, in the order ADD sends them: the host's token bucket; then the
    /// ifb's token bucket, the host's ingress qdisc and the redirect (the redirect last,
    /// so redirected traffic always meets its bucket). `ifb` is the ifb device's index
    /// (ignored without egress).
    pub fn requests(&self, host: u32, ifb: u32) -> Vec<TcRequest> {
        let mut out = Vec::new();
        if let Some(params) = self.ingress {
            out.push(TcRequest::Tbf {
                ifindex: host,
                handle: TBF_HANDLE,
                params,
            });
        }
        if let Some(e) = &self.egress {
            out.push(TcRequest::Tbf {
                ifindex: ifb,
                handle: TBF_HANDLE,
                params: e.tbf,
            });
            out.push(TcRequest::Ingress { ifindex: host });
            out.push(TcRequest::RedirectAll {
                ifindex: host,
                parent: tc::INGRESS_QDISC,
                priority: FILTER_PRIORITY,
                class_id: CLASS_ID,
                target: ifb,
            });
        }
        out
    }

    /// A readable rendering with each message's bytes in hex, for golden files.
    pub fn dump(&self, host: u32, ifb: u32) -> String {
        let mut s = String::new();
        if let Some(e) = &self.egress {
            let o = &e.ifb_options;
            let _ = writeln!(
                s,
                "link add {} type ifb mtu {:?} txqueuelen {:?} up {}, then alias {:?}",
                e.ifb, o.mtu, o.txqlen, o.up, o.alias
            );
            let msg = cni_linux::netlink::packet_route::RouteNetlinkMessage::NewLink(
                tc::ifb_message(&e.ifb, &e.ifb_options),
            );
            hex_lines(&mut s, &tc::message_bytes(&msg));
        }
        for req in self.requests(host, ifb) {
            let _ = writeln!(s, "{}", describe(&req));
            hex_lines(&mut s, &tc::message_bytes(&req.message()));
        }
        s
    }
}

fn h(handle: u32) -> String {
    format!("{:x}:{:x}", handle >> 16, handle & 0xffff)
}

/// A request in `tc`'s words (devices by index).
fn describe(req: &TcRequest) -> String {
    match req {
        TcRequest::Tbf {
            ifindex,
            handle,
            params,
        } => format!(
            "qdisc add dev #{ifindex} root handle {} tbf rate {}B/s buffer {} ticks limit {}B",
            h(*handle),
            params.rate,
            params.buffer,
            params.limit
        ),
        TcRequest::Ingress { ifindex } => {
            format!(
                "qdisc add dev #{ifindex} handle {} ingress",
                h(tc::INGRESS_QDISC)
            )
        }
        TcRequest::RedirectAll {
            ifindex,
            parent,
            priority,
            class_id,
            target,
        } => format!(
            "filter add dev #{ifindex} parent {} prio {priority} protocol all u32 \
             match u32 0 0 at 0 flowid {} action mirred egress redirect dev #{target} (stolen)",
            h(*parent),
            h(*class_id)
        ),
        other => format!("{other:?}"),
    }
}

fn hex_lines(s: &mut String, bytes: &[u8]) {
    for chunk in bytes.chunks(16) {
        s.push_str("   ");
        for b in chunk {
            let _ = write!(s, " {b:02x}");
        }
        s.push('\n');
    }
}

#[cfg(test)]
mod tests;
