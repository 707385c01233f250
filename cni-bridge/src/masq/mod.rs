//! `ipMasq`: masquerading of container traffic that leaves the container's subnet, in three
//! layouts, each a module of pure plans (golden tested), and `apply`, which runs them
//! through the [`cni_linux::firewall::FirewallApplier`] seam.
//!
//! - iptables: the reference's layout, so
//!   either implementation removes what the other set up ([`iptables_setup`],
//!   [`iptables_teardown`], [`iptables_gc`]).
//! - our nftables layout: tables `ip`/`ip6` `cni_bridge_masq`, one
//!   map of container addresses and one rule per (network, subnet), so its cost stays flat as
//!   pods accumulate ([`nft_add_plan`], [`nft_del_plan`], [`nft_gc_plan`], ...).
//! - the reference's nftables layout (Go plugin v1.5 and later): never written;
//!   DEL and GC remove its rules ([`ref_nft_teardown`], [`ref_nft_gc`]).
//!
//! # iptables (every version of the Go plugin)
//!
//! See the `iptables` module: one chain per container, `CNI-<sha512(net + cid)[:24]>`, in
//! `nat`, with a `POSTROUTING` jump per container address ([`iptables_chain`],
//! [`iptables_comment`]).
//!
//! # nftables: our layout
//!
//! See the `nftables` module: per family a table `cni_bridge_masq` ([`NFT_TABLE`]), one map
//! per (network, subnet) ([`nft_map_name`]) whose elements' value identifies the attachment
//! ([`nft_owner`]), one rule per map; ADD adds only map elements (a constant-time commit) and
//! DEL deletes only the attachment's.
//!
//! # The reference's nftables layout
//!
//! See the `reference_nft` module: table `inet cni_plugins_masquerade` ([`REF_NFT_TABLE`]),
//! one rule per container address in `masq_checks`, found by the hash prefix of its comment
//! ([`ref_nft_comment`]).

use cni_linux::IpFamily;

pub(crate) mod apply;
mod iptables;
mod nftables;
mod reference_nft;

pub use iptables::*;
pub use nftables::*;
pub use reference_nft::*;

/// The destinations never masqueraded: multicast of the family.
fn multicast(family: IpFamily) -> &'static str {
    match family {
        IpFamily::V4 => "224.0.0.0/4",
        IpFamily::V6 => "ff00::/8",
    }
}

/// Cuts a comment to nft's 128 bytes (at a character boundary): cni-linux's shared helper.
use cni_linux::firewall::owner::cut_comment as cut;
