#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! - [`netns`]: [`TempNetns`], a named namespace with a unique name, `lo` up, deleted (and its
//!   processes killed) on drop, also after a panic.
//! - [`runner`]: [`PluginRunner`] execs a plugin binary with `CNI_*` variables and a config on
//!   stdin, inside a "node" namespace, and returns a typed result or a [`PluginError`].
//! - [`chain`]: [`ChainRunner`] runs a conflist through `cni-proto`'s runtime (capability
//!   args, `prevResult`, the result cache) with plugins started inside a node namespace.
//! - [`versions`]: [`Versions`] sets and [`versions::each`] to loop a test over spec versions.
//! - [`traffic`]: ping, TCP and UDP echo servers and clients inside namespaces, with timeouts.
//! - [`snapshot`]: [`Snapshot`]s of links, addresses, routes, firewall and files, their
//!   [`Diff`], and [`assert_unchanged!`].
//! - [`topology`]: nodes on an underlay with pod subnets and routes between them, and an
//!   outside namespace standing for the internet ([`topology::Cluster`]).
//! - [`bins`]: the plugin binaries under test (an explicit directory, `CARGO_BIN_EXE_<name>`,
//!   the target directory), the Go reference plugins, and `CNI_PATH` directories mixing them.
//! - [`conformance`]: the suite behind the `cni-conformance` binary (`src/bin/`, `cli`
//!   feature): the per-check fixture, the judging of leftovers and error codes, the registry
//!   of checks, and one module of checks per verb.
//! - [`process`]: programs run with a timeout, optionally inside a namespace
//!   ([`process::run`]), and what they printed ([`process::Output`]).
//! - [`privilege`]: [`require_root`], the policy for privileged tests (skip with a message,
//!   but fail in CI).
//! - [`kernel`]: kernel features probed from the kernel's configuration, and the one list of
//!   features a CI machine may lack ([`kernel::require`]).
//! - `tempdir` (private): [`TempDir`], removed on drop, and [`unique_name`] / [`random_hex`].
//! - `error` (private): the kit's [`Error`], causes kept as sources, and [`Result`].

#![warn(missing_docs)]

pub mod bins;
pub mod chain;
pub mod conformance;
mod error;
pub mod golden;
pub mod kernel;
pub mod netns;
pub mod privilege;
pub mod process;
pub mod runner;
pub mod snapshot;
mod tempdir;
pub mod topology;
pub mod traffic;
pub mod versions;

pub use chain::ChainRunner;
pub use error::{Error, Result};
pub use netns::TempNetns;
pub use privilege::require_root;
pub use runner::{Attachment, Invocation, PluginError, PluginRunner};
pub use snapshot::{Diff, Item, Snapshot, SnapshotOptions};
pub use tempdir::{TempDir, random_hex, unique_name};
pub use versions::Versions;

pub use cni_linux;
pub use cni_proto;
pub use cni_types;
