#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! - [`config`]: the raw keys parsed once into a validated [`BridgeConf`].
//! - [`add()`], [`del()`], [`check()`], [`gc()`], [`status()`]: the verbs, callable in-process;
//!   [`BridgePlugin`] runs them behind [`cni_proto::skel`].
//! - [`deps`]: the seams ([`Deps`]: IPAM exec, firewall applier, test [`Hooks`]) and the
//!   [`Attachment`] a verb applies to.
//! - [`masq`]: masquerade, one module per layout (iptables, our nftables, the reference's
//!   nftables) of pure plans (golden tested), and `masq::apply`, which sets up, tears down and
//!   collects them through the firewall seam. iptables rules are laid out exactly as the
//!   reference's, so either implementation cleans up after the other; nftables masquerade has
//!   its own flat-cost layout (tables `ip`/`ip6` `cni_bridge_masq`), and teardown also
//!   removes the reference's.
//! - [`spoofchk`]: the MAC spoof check, laid out as the reference's: its plans, and
//!   `spoofchk::apply` (set-up, teardown, GC).
//! - `host` (private): the node's side: the bridge, its gateway addresses and VLAN
//!   interface, the veth pair and its port settings.
//! - `container` (private): the container's side: sysctls, addresses and routes of the
//!   container interface, finding and deleting it on DEL.
//! - [`error`]: [`BridgeError`] (with [`error::ConfigError`]) and its spec error codes.
//!
//! # What differs from the reference, on purpose
//!
//! - **ADD completes or undoes what it did** (plugins #29): a failure at any step, including
//!   IPAM itself, deletes the veth, removes the spoof check and masquerade rules, and runs IPAM
//!   DEL if IPAM allocated. The bridge, its gateway addresses and the sysctls are shared state
//!   and stay, as with the reference.
//! - **DEL cleans masquerade rules without a namespace** (plugins #810): iptables chains are
//!   found from (network, container ID), our nftables elements by their owner value, the
//!   reference's nftables rules by their comment hash. As the reference, masquerade is torn
//!   down only with `ipMasq` and the spoof check only with `macspoofchk`; it runs on a second
//!   thread while the kernel deletes the veth, and `iptables-save` runs only if the chain may
//!   exist (a look at `/proc` and one nf_tables round trip). The container interface is
//!   deleted before IPAM DEL (#666). Every step runs; errors are collected.
//! - **DEL and GC do not fail on keys only ADD uses** ([`BridgeConf::parse_for_teardown`]):
//!   a bad `vlan`, `vlanTrunk`, `mtu`, container MAC, unknown `CNI_ARGS` or a setup key of the
//!   wrong type fails ADD with code 7 and is ignored by DEL, which tears down what it can
//!   identify. The reference fails such a DEL, and a runtime that stops at the first failing
//!   DEL (containerd's go-cni) then leaks the pod's other networks.
//! - **Spoof-check names never collide**: the reference's `<cid>-<ifname>` is ambiguous
//!   (`a-b` + `c` and `a` + `b-c`); it is kept when neither part contains a `-` (the Go
//!   plugin's DEL finds those), otherwise a hash of the pair is used ([`spoofchk::ref_id`]).
//!   DEL also removes a check the Go plugin set up under the ambiguous name, told apart by
//!   its host port.
//! - **GC** is implemented (the reference has none, plugins #1013): stale masquerade rules of
//!   both backends and stale spoof checks are removed, then GC is passed on to IPAM.
//! - **No sleeping**: the veth's container end is created directly in the container's
//!   namespace under its final name (no rename, no namespace move: the move alone costs about
//!   20 ms of kernel time); the wait for the port to come up and for IPv6 DAD are netlink
//!   event waits, not the reference's 0/50/500/1000/1000 ms polls.
//! - **The host end of the veth has IPv6 disabled** (set before it comes up): a bridge port
//!   needs no address. With IPv6 on, as in the reference, every pod adds a link-local address,
//!   an `fe80::/64` and an `ff00::/8` route and multicast memberships to the node, and each
//!   later link change walks that growing table. Pods keep IPv6; traffic is bridged as before.
//! - **An IPv6 gateway address is usable at once**: it is added to the bridge without
//!   duplicate address detection (IPAM never hands it out), so the first pods of a new bridge
//!   reach it immediately instead of after the one to two seconds of DAD.
//! - **IPAM runs while the veth is made** when its type is `host-local` or `static` (they never
//!   look at the container interface); other IPAM types (`dhcp` needs the interface) run
//!   after, as in the reference.
//! - **nftables `ipMasq`** uses its own layout ([`masq`]): per family a table
//!   `cni_bridge_masq` with one map of container addresses and one rule per (network, subnet),
//!   so ADD adds only map elements (no rule, no chain rewrite: a constant-time commit) and DEL
//!   deletes only the attachment's elements, whatever the number of pods. The reference
//!   (v1.5+) adds one rule per container address to `inet cni_plugins_masquerade` and flushes
//!   and rewrites its `postrouting` chain on every ADD.
//! - **Route `mtu` and `advmss`** of the result (spec 1.1) are applied; the reference drops
//!   them. **Config errors** carry code 7 (`CNI_ARGS` errors code 4) instead of the reference's
//!   999; the messages are the reference's.
//! - A new bridge gets a fixed random MAC at creation, so its MAC never follows its ports'
//!   (the reference re-sets the MAC after each gateway address for the same effect).
//! - IPAM CHECK is only called when IPAM is configured (the reference fails CHECK of L2
//!   networks looking for a plugin named "").
//!
//! # Masquerade backend when `ipMasqBackend` is unset
//!
//! The reference's rule: **iptables, unless only nftables is available** (no `iptables-save`/
//! `iptables-restore` in `PATH`, and nf_tables answers). We keep it, because a node may run the
//! Go bridge v1.1.1, which only knows iptables: masquerade state created by one implementation
//! must be removable by the other. nftables is faster (one netlink transaction of element
//! additions, no process); choose it explicitly with `"ipMasqBackend": "nftables"`. Teardown
//! (with `ipMasq`) always covers both backends and the reference's nftables layout.

#![warn(missing_docs)]

mod add;
mod check;
pub mod config;
mod container;
mod del;
pub mod deps;
pub mod error;
mod host;
pub mod masq;
mod plugin;
pub mod spoofchk;

pub use add::{add, calc_gateways, default_masq_backend};
pub use check::check;
pub use config::{BridgeConf, MasqBackend};
pub use del::{del, gc, status};
pub use deps::{Attachment, Deps, FailPoint, Hooks};
pub use error::BridgeError;
pub use plugin::BridgePlugin;
