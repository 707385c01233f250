//! `macspoofchk`: drop frames entering the bridge from the container's port whose source MAC
//! is not the container's, as nftables plans laid out exactly as the reference's
//! `pkg/link/spoofcheck.go`:
//!
//! ```text
//! table bridge nat {
//!   chain PREROUTING { type filter hook prerouting priority -300; policy accept;
//!     iifname "<host veth>" jump cni-br-iface-<cid>-<ifname> comment "macspoofchk-<cid>-<ifname>" }
//!   chain cni-br-iface-<cid>-<ifname> { jump cni-br-iface-<cid>-<ifname>-mac comment "…" }
//!   chain cni-br-iface-<cid>-<ifname>-mac {
//!     ether saddr <mac> return comment "…"
//!     drop comment "…" }
//! }
//! ```
//!
//! `<cid>-<ifname>` is the reference's id when neither part contains a `-`; otherwise a hash
//! of the pair, so that two attachments never share a chain (see [`ref_id`]).
//!
//! The reference needs two transactions (declare, then flush and fill); one suffices here,
//! because the chains are added before they are flushed in the same batch.

//!
//! `plan` holds the rules as values; `apply` sets them up (ADD), tears them down (DEL and
//! ADD's rollback) and collects stale ones (GC) through the
//! [`cni_linux::firewall::FirewallApplier`] seam. Spoof checks are nftables only, whatever
//! the masquerade backend.

pub(crate) mod apply;
mod plan;

pub use plan::*;
