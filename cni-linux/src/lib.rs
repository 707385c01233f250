#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! | module | job |
//! |---|---|
//! | [`netns`] | [`NetNs`](netns::NetNs): an owned handle on a network namespace; run a closure inside it on the calling thread, which comes back afterwards; create and delete named (bind-mounted) namespaces like `ip netns`; [`is_netns`](netns::is_netns) |
//! | `nl` (crate-private) | the netlink core every netlink user here shares: socket options, send, bounded receive, message walk, `NLMSG_ERROR`/`NLMSG_DONE` with extended ACK, the reply loop of one request (ACK, single answer, dump, `NLM_F_DUMP_INTR`), attribute walking |
//! | [`netlink`] | synchronous rtnetlink ([`Handle`](netlink::Handle)) over that core: links (bridge, veth with the peer created directly inside the target namespace, vlan, dummy), addresses, routes, bridge ports and VLANs, namespace-wide forwarding (`RTM_GETNETCONF`), event-driven waits, [`mac`](netlink::mac) helpers, [`tc`](netlink::tc) (tbf and ingress qdiscs, u32 redirect filters, ifb devices) |
//! | [`sysctl`] | `/proc/sys` keys in the calling thread's or a given namespace |
//! | [`firewall`] | [`iptables`](firewall::iptables) and [`nftables`](firewall::nftables) backends (plan, then apply; nf_tables codec over the netlink core with listings decoded through netlink-packet-netfilter), [`names`](firewall::names) (the reference's chain names and hashes), [`owner`](firewall::owner) (owner tag and comments of our nftables objects), [`sha512`](firewall::sha512) (the digest behind them), the [`FirewallApplier`](firewall::FirewallApplier) seam |
//! | [`conntrack`] | conntrack entries over ctnetlink (same core): stream the table, delete matching entries |
//! | `child` (crate-private) | the tools we start (`iptables-save`, `iptables-restore`) die with the plugin that started them (`PR_SET_PDEATHSIG`) |
//! | [`fsutil`] | [`Dir`](fsutil::Dir): state files in a directory others may plant names in, touched relative to its opened descriptor (atomic writes through unpredictable `O_EXCL \| O_NOFOLLOW` temporaries, bounded non-blocking reads of regular files only, unlinks that never follow a symlink) |
//!
//! # Semver: types from 0.x crates in this API
//!
//! These are part of cni-linux's semver contract: they appear in public signatures, a new
//! major of cni-linux follows an incompatible release of them, and each is reachable through
//! cni-linux, so users need no second version of the crate it comes from:
//!
//! | type | where | reach it as |
//! |---|---|---|
//! | `netlink_packet_route` 0.34 messages (`RouteNetlinkMessage`, ...) | [`Handle::ack_request`](netlink::Handle::ack_request), [`Handle::dump_request`](netlink::Handle::dump_request), [`TcRequest::message`](netlink::TcRequest::message), [`tc::message_bytes`](netlink::tc::message_bytes) | [`netlink::packet_route`] |
//! | `nix` 0.32 `Errno` | [`netlink::Error::Kernel`]'s `errno`, [`netlink::Error::errno`] | [`netlink::Errno`] |
//! | `netlink_packet_core` 0.9 `DecodeError` | [`netlink::Error::Decode`]'s `source` | [`netlink::DecodeError`] |
//!
//! Everything else (netlink-sys sockets, netlink-packet-netfilter messages) stays inside:
//! nftables and conntrack speak our own types ([`firewall::nftables::NftPlan`],
//! [`firewall::nftables::TableListing`], [`conntrack::Entry`]) and report `std::io::Error`
//! errnos.

mod child;
pub mod conntrack;
pub mod firewall;
pub mod fsutil;
pub mod netlink;
pub mod netns;
mod nl;
pub mod sysctl;

/// IPv4 or IPv6: address families for netlink listings, firewall tables and conntrack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpFamily {
    /// IPv4 (`AF_INET`, `iptables`, nft family `ip`).
    V4,
    /// IPv6 (`AF_INET6`, `ip6tables`, nft family `ip6`).
    V6,
}

impl IpFamily {
    /// The family of an address.
    pub fn of(addr: &std::net::IpAddr) -> IpFamily {
        match addr {
            std::net::IpAddr::V4(_) => IpFamily::V4,
            std::net::IpAddr::V6(_) => IpFamily::V6,
        }
    }
}

impl std::fmt::Display for IpFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IpFamily::V4 => "ipv4",
            IpFamily::V6 => "ipv6",
        })
    }
}
