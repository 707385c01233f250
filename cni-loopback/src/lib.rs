#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! - [`config`]: [`LoopbackConf`], the version and `prevResult` (the only keys it reads).
//! - [`lo`]: the [`Lo`] seam (link state, addresses, up/down) and [`KernelLo`], one rtnetlink
//!   socket opened inside the container's namespace.
//! - [`verbs`]: [`add()`], [`check()`], [`del()`] on a namespace path, and their rules over any
//!   [`Lo`] ([`add_with`], [`check_with`], [`del_with`]), unit-tested with a double.
//! - [`error`]: [`LoopbackError`] and its spec error codes.
//! - [`LoopbackPlugin`]: the verbs behind [`cni_proto::skel`]; the `loopback` binary is three
//!   lines around it.
//!
//! # Behaviour (as the reference)
//!
//! - **ADD** sets `lo` up in `CNI_NETNS` (`CNI_IFNAME` is ignored) and fails with
//!   `loopback interface found with non-loopback address "…"` when `lo` carries an address
//!   outside 127.0.0.0/8 and ::1. The result is the `prevResult` unchanged when there is one;
//!   otherwise interface `lo` (MAC `00:00:00:00:00:00`, sandbox `CNI_NETNS`) with the first
//!   IPv4 and the first IPv6 address of `lo`, `interface: 0`: 127.0.0.1/8 and ::1/128 in a
//!   fresh namespace.
//! - **DEL** sets `lo` down. It succeeds with an empty `CNI_NETNS`, when the namespace no
//!   longer exists, and when `lo` is already down; it reads nothing from the config.
//! - **CHECK** (0.4.0+) fails with `loopback interface is down`, or `loopback interface lacks
//!   address …` when an address `prevResult` lists on `lo` is gone (without such a
//!   `prevResult`: 127.0.0.1/8, and ::1/128 when IPv6 is enabled on `lo`).
//! - **GC** and **STATUS** (1.1.0) succeed: nothing outlives the namespace, and the plugin is
//!   always ready.
//! - Every spec version 0.1.0 - 1.1.0.
//!
//! # What differs from the reference, on purpose
//!
//! - **The result has the shape of the config's version.** The reference prints its 1.0.0
//!   result under any `cniVersion` unconverted: at 0.1.0/0.2.0 `interfaces`/`ips` instead of
//!   `ip4`/`ip6`, at 0.3.x/0.4.0 `ips` without `version`. Ours is converted as the spec says
//!   (the same addresses; 0.1.0/0.2.0 have no `interfaces`).
//! - **A failed ADD sets `lo` down again** if it was down before (the reference leaves it up).
//! - **CHECK also verifies the addresses**, not only the up flag.
//! - **1.1.0 is supported** (GC and STATUS); the reference v1.1.1 stops at 1.0.0.

#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod lo;
mod plugin;
pub mod verbs;

pub use config::LoopbackConf;
pub use error::LoopbackError;
pub use lo::{KernelLo, LinkState, Lo};
pub use plugin::LoopbackPlugin;
pub use verbs::{add, add_with, check, check_with, del, del_with};
