#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! - [`config`]: host-local's view of the network configuration ([`Config`]): range sets,
//!   routes, `dataDir`, `resolvConf`, requested addresses.
//! - [`range`]: [`Range`] and [`RangeSet`] with the reference's defaults and validation, and the
//!   round-robin iterator.
//! - [`allocator`]: [`Allocator`]: allocate, release, check, gc and status over any store.
//! - [`store`]: the [`Store`] / [`Session`] seam, reservations and holders, and [`MemStore`].
//! - [`disk`]: [`DiskStore`], the reference's `<dataDir>/<network>/` layout under its `flock`.
//! - [`dns`]: `resolvConf` parsing.
//! - [`plugin`]: the verbs over the disk store and the [`HostLocal`] skel plugin.
//!
//! # Behaviour (as the reference)
//!
//! - **Config**: `ipam.ranges` (a list of range sets; one address per set), the legacy
//!   `ipam.subnet`/`rangeStart`/`rangeEnd`/`gateway` prepended as a set, `runtimeConfig.ipRanges`
//!   prepended before both, `ipam.rangeFromFile` when there is no range at all (from the
//!   reference's unmerged pull request #1179: released Go plugins ignore it), `routes`,
//!   `dataDir` (default `/var/lib/cni/networks`), `resolvConf`. Requested addresses come from
//!   `runtimeConfig.ips`, `args.cni.ips` and `CNI_ARGS` `IP=` (with or without prefix).
//! - **Defaults**: gateway = network + 1; the first address handed out is `.2`; IPv4 ranges end
//!   before the broadcast; IPv6 ranges end at the all-ones address.
//! - **ADD**: round robin from `last_reserved_ip.<set>`; a duplicate `(container, interface)` is
//!   refused (`… has been allocated to …, duplicate allocation is not allowed`); an exhausted
//!   set is `no IP addresses available in range set: <start>-<end>`; when a set fails, the sets
//!   already allocated are released.
//! - **DEL** is idempotent. **CHECK** succeeds when the container holds an address.
//!
//! # GC (spec 1.1.0; the reference has none)
//!
//! GC releases every reservation whose `(containerID, ifname)` is not in
//! `cni.dev/valid-attachments` (libcni's misspelt `cni.dev/attachments` is read when the spec's
//! key is absent):
//! - a reservation file written by old host-local versions holds only a container ID; it is kept
//!   when *any* valid attachment has that container ID;
//! - an empty list (or `null`, which is how libcni marshals an empty list) means nothing is
//!   valid: every reservation is released;
//! - without the key at all, nothing is released (we cannot tell what is in use);
//! - only files named by an address are reservations: `lock`, `last_reserved_ip.*`, our index
//!   and temporary files are never touched;
//! - GC runs under the store's lock and reads the reservation files themselves, never a cache;
//!   every release is attempted and failures are reported together.
//!
//! The runtime must build the valid list from its own synchronous state: an address released
//! by GC can be handed out by the next ADD.
//!
//! # STATUS (spec 1.1.0; the reference has none)
//!
//! STATUS succeeds when every range set of the network still has at least one free address
//! (ADD needs one from each). Otherwise it fails with code 50 (`PluginNotAvailable`) and the
//! message `host-local: network <name> cannot allocate: range set <i>: no IP addresses
//! available in range set: <start>-<end>` for each exhausted set. Reservations of a range's
//! gateway, or outside every range, do not count as used.
//!
//! # Differences from the reference (deliberate)
//!
//! - All range sets of one ADD are allocated under one lock (the reference locks per set).
//! - A failed ADD releases only the addresses it reserved (the reference releases everything the
//!   attachment holds).
//! - `args.cni.ips` makes `CNI_ARGS` `IP=` ignored, as the CNI conventions ask (the reference
//!   uses both).
//! - Only files named by an address are ever released (the reference's DEL removes any file
//!   whose content equals the container ID, even `last_reserved_ip.*` for a container named
//!   like an address).
//! - Error codes: configuration errors are 7 (6 when undecodable), `CNI_ARGS` errors 4, store
//!   I/O errors 5, others 999 (the reference reports 999 for all). Messages are unchanged.
//! - New reservation files are mode 0600 (the reference: 0644).
//! - DEL and GC read only `name` and `ipam.dataDir` (and `CNI_ARGS` is not parsed for them),
//!   so a network whose ranges became invalid can still release its addresses; the reference
//!   refuses DEL until the configuration is valid again. DEL of a configuration ADD refuses
//!   outright (no `ipam`, a store location of the wrong type, a `dataDir` that is not a
//!   directory, an invalid network name or attachment) releases nothing and succeeds.
//! - A range that can hand nothing out (`rangeStart` after `rangeEnd` once the defaults are
//!   filled in, e.g. `rangeStart` at the broadcast address) is refused at configuration time
//!   (the reference accepts it and hands out addresses outside the range).
//! - The `host-local` binary leaves the store alone when the process that started it died
//!   while it waited for the store's lock ([`HostLocalChild`]).
//! - No symlink planted in the store is ever followed when writing (see [`disk`]); the index
//!   is removed with the last reservation, so an empty store holds what the reference leaves.
//! - The owner index (see [`disk`]) makes ADD, DEL and CHECK independent of the number of
//!   reservations; the reference reads every reservation file on each of them.

#![warn(missing_docs)]

pub mod allocator;
pub mod config;
pub mod disk;
pub mod dns;
pub mod plugin;
pub mod range;
pub mod store;

pub use allocator::{AllocError, Allocator};
pub use config::{Config, ConfigError, Location};
pub use disk::DiskStore;
pub use plugin::{Error, HostLocal, HostLocalChild, add, check, del, gc, status};
pub use range::{Range, RangeError, RangeSet};
pub use store::{Holder, MemStore, Reservation, Session, Store, StoreError};
