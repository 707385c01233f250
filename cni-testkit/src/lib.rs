//! A test kit for CNI plugins: throw-away namespaces, plugin and chain runners, traffic
//! helpers, state snapshots, topologies, and a conformance suite that judges any plugin binary
//! against the spec.
//!
//! Everything privileged happens inside namespaces the kit creates; the machine's own network
//! namespace is never changed.
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
//! - [`bins`]: the workspace's built plugin binaries, the Go reference plugins, and `CNI_PATH`
//!   directories mixing them.
//! - [`conformance`]: the suite behind the `cni-conformance` binary (`src/bin/`): the
//!   per-check fixture, the judging of leftovers and error codes, the registry of checks, and
//!   one module of checks per verb.
//! - [`process`]: programs run with a timeout, optionally inside a namespace
//!   ([`process::run`]), and what they printed ([`process::Output`]).
//! - [`privilege`]: [`require_root`], the policy for privileged tests (skip with a message,
//!   but fail in CI).
//! - [`kernel`]: kernel features probed from the kernel's configuration, and the one list of
//!   features a CI machine may lack ([`kernel::require`]).
//! - `tempdir` (private): [`TempDir`], removed on drop, and [`unique_name`] / [`random_hex`].
//! - `error` (private): the kit's [`Error`], causes kept as sources, and [`Result`].
//!
//! # Quick start
//!
//! A privileged test: our bridge (delegating to our host-local) wires a pod from inside a
//! throw-away node namespace; the node can ping it; after DEL the pod is as before.
//!
//! ```no_run
//! use std::time::Duration;
//! use cni_testkit::{Attachment, PluginRunner, Snapshot, TempDir, TempNetns, assert_unchanged, bins};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! if !cni_testkit::require_root() {
//!     return Ok(()); // prints why; panics instead when CI is set
//! }
//! let (node, pod, data) = (TempNetns::new("node")?, TempNetns::new("pod")?, TempDir::new("ipam")?);
//! let plugins = bins::cni_path_with(&["bridge", "host-local"])?;
//! let bridge = PluginRunner::new(plugins.plugin("bridge")).cni_path([plugins.path()]).in_netns(&node)?;
//! let conf = json!({"cniVersion": "1.1.0", "name": "net", "type": "bridge", "isGateway": true,
//!     "ipam": {"type": "host-local", "subnet": "10.1.0.0/24", "dataDir": data.path()}});
//! let before = Snapshot::of(&pod)?;
//! let att = Attachment::new("c1", pod.path(), "eth0");
//! let res = bridge.add(&conf, &att)?;
//! cni_testkit::traffic::ping(&node, res.ips[0].address.addr(), Duration::from_secs(2))?;
//! bridge.del(&conf, &att)?;
//! assert_unchanged!(before, &pod);
//! # Ok(())
//! # }
//! ```
//!
//! The conformance suite judges a plugin binary in a few lines (or with the `cni-conformance`
//! binary):
//!
//! ```no_run
//! use cni_testkit::conformance::{Suite, SuiteOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let conf = serde_json::json!({"cniVersion": "1.1.0", "name": "net", "type": "host-local",
//!     "ipam": {"type": "host-local", "subnet": "10.1.0.0/24"}});
//! let report = Suite::new(SuiteOptions::new("/usr/lib/cni/host-local", conf))?.run();
//! println!("{report}");
//! assert!(report.passed());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod bins;
pub mod chain;
pub mod conformance;
mod error;
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
