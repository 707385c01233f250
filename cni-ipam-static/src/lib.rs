#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! - [`config`]: [`StaticConf`] (built with `TryFrom<`[`Input`]`>` from stdin and `CNI_ARGS`):
//!   the addresses after the reference's precedence, routes, dns; [`ConfigError`].
//! - [`verbs`]: [`add`] (the result) and [`check`] (against `prevResult`).
//! - [`error`]: [`StaticError`] and its spec error codes.
//! - [`StaticPlugin`]: the verbs behind [`cni_proto::skel`]; the `static` binary is three lines
//!   around it.
//!
//! # Behaviour (as the reference)
//!
//! - **Addresses**: `runtimeConfig.ips` (the `ips` capability) replaces `args.cni.ips`, which
//!   replaces `ipam.addresses` + `CNI_ARGS` `IP=` (comma-separated; `GATEWAY=` sets the gateway
//!   of the `IP=` addresses whose subnet contains it). See [`config`] for the details. Zero
//!   addresses are allowed (a result with routes and dns only; not printable before 0.3.0).
//! - **Validation and errors**: `IPAM config missing 'ipam' key`, `the 'address' field is
//!   expected to be in CIDR notation, got: '…'`, `an entry in the 'ips' field is NOT in CIDR
//!   notation, got: '…'`, `the 'ip' field is expected to be in CIDR notation, got: '…'`,
//!   `invalid gateway address: …`, `CNI version X does not support more than 1 address per
//!   family` (before 0.3.0), `CNI_ARGS` keys other than `IP`, `GATEWAY` without
//!   `IgnoreUnknown`. Unknown config keys are ignored; keys match case-insensitively.
//! - **ADD** prints the result converted to the config's version. **DEL** does nothing.
//! - **CHECK** (0.4.0+) needs `prevResult` (`Required prevResult missing`) and fails with
//!   `static: Failed to match addr … on interface …` when a configured address has another
//!   gateway there.
//! - **GC** and **STATUS** (1.1.0) succeed: nothing is allocated, the plugin is always ready.
//!
//! # What differs from the reference, on purpose
//!
//! - **CHECK also fails when a configured address is missing** from `prevResult`
//!   (`static: addr … not found in prevResult for interface …`); the reference passes.
//! - **Error codes**: configuration errors are 7 (6 when undecodable), `CNI_ARGS` errors 4;
//!   the reference reports 999 for all. Messages are unchanged, except for JSON type errors,
//!   which name the key (`failed to decode ipam.routes: …`).
//! - A route without `dst` is refused (the reference returns it with an empty destination).
//! - **1.1.0 is supported** (GC and STATUS); the reference v1.1.1 stops at 1.0.0.

#![warn(missing_docs)]

pub mod config;
pub mod error;
mod plugin;
pub mod verbs;

pub use config::{Address, ConfigError, Input, StaticConf};
pub use error::StaticError;
pub use plugin::StaticPlugin;
pub use verbs::{add, check};
