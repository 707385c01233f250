//! The conformance suite: does a plugin binary behave as the CNI spec says?
//!
//! [`Suite::run`] judges any plugin binary, ours or not, by its behaviour alone:
//!
//! | check | what must hold |
//! |---|---|
//! | `version` | VERSION prints `{cniVersion, supportedVersions}` that parse |
//! | `add/V` | ADD exits 0 with a result in the exact shape of version V (`cniVersion` = V, `ip4`/`ip6` before 0.3.0, `ips[].version` from 0.3.0 to 0.4.0 and not after, valid interface indices); a chained plugin passes the `prevResult` addresses on; what the result says exists in the kernel (sandbox interfaces in the pod, host interfaces in the node, addresses on the pod's links, routes) |
//! | `del-cleans-up/V` | after ADD A, ADD B, DEL B the node and pod B are exactly as before ADD B (files: no new file, none still mentioning B); after DEL A nothing mentions A (its container ID, addresses, or its own host interfaces) |
//! | `del-idempotent/V` | DEL, then DEL again, both exit 0 and the second changes nothing |
//! | `del-without-add/V` | DEL of an attachment never added exits 0 and changes nothing |
//! | `del-netns-gone/V`, `del-netns-empty/V` | after the pod namespace is deleted, DEL with its old path / with an empty `CNI_NETNS` exits 0 and leaves nothing of the attachment |
//! | `del-after-failed-add/V` | when ADD fails (the interface name already exists in the pod, or a requested address outside every range through `args.cni.ips`), DEL exits 0 and leaves nothing |
//! | `add-existing-ifname` | ADD into a pod that already has an interface named `CNI_IFNAME` fails (for plugins that create that interface) |
//! | `check/V` (0.4.0+) | CHECK after ADD exits 0 |
//! | `check-after-del/V` (0.4.0+) | CHECK after DEL fails with a valid error (the resources are gone); skipped for a plugin whose ADD changed no state (stateless IPAM such as `static`) |
//! | `gc/V` (1.1.0+) | after ADD A, ADD B and the removal of pod B, GC with only A valid removes everything of B and keeps A (CHECK A still passes) |
//! | `status/V` (1.1.0+) | STATUS exits 0 in a fresh node |
//! | `bad-input/*` | wrong inputs get the spec's error codes: unknown verb 4, missing or invalid `CNI_CONTAINERID` / `CNI_NETNS` / `CNI_IFNAME` 4, undecodable config 6, config without `name` 7, unsupported `cniVersion` 1, CHECK before 0.4.0 and GC / STATUS before 1.1.0 1 |
//!
//! Every failing call must exit non-zero with the spec's error JSON (`code` number, `msg`
//! string) on stdout.
//!
//! Each check runs in its own throw-away node and pod namespaces with a temporary `dataDir`
//! (put into every `ipam` section of the config, and in place of a top-level `dataDir`), the
//! plugin running inside the node namespace. A pod namespace is what a runtime hands to the
//! first plugin of a sandbox: `lo` down and without addresses, as the kernel creates it.
//! [`SuiteOptions::node_setup`] prepares each node
//! for plugins that expect something there (a bridge, an uplink).
//!
//! **Versions.** Per-version checks run for every version the plugin lists in VERSION (and the
//! caller asked for). A version the plugin does not list is *not supported*, not failed: the
//! Debian Go plugins v1.1.1 list up to 1.0.0, so their GC and STATUS checks are skipped with
//! that reason. A chained plugin (one with earlier plugins in the conflist) is only run from
//! 0.3.0, where chaining exists.
//!
//! **Chained plugins.** The config may be a conflist; the plugin under test is the one whose
//! `type` is [`SuiteOptions::plugin_type`] (default: the binary's file name). The plugins
//! before it, found in [`SuiteOptions::cni_path`], produce its `prevResult` as a runtime's
//! chain would; state is judged around the plugin under test only (before its ADD, after its
//! DEL), so a leak of an earlier plugin is not blamed on it. Capability arguments are injected
//! as a runtime does, per plugin `capabilities`; without [`SuiteOptions::capability_args`], a
//! plugin declaring `portMappings` gets a TCP and a UDP mapping (host ports 30000+ per
//! attachment).
//!
//! **Known issues.** When a FAIL matches [`known::KNOWN_ISSUES`] (by the binary's
//! implementation language and name), the report prints the upstream issue under the reason.
//! The outcome stays FAIL.
//!
//! # Layout
//!
//! - `ctx`: what every check shares: the chain parsed from the config, the plugin's identity
//!   and VERSION answer, the versions to test.
//! - `fixture`: one check's node namespace, `dataDir` and runners, its attachments (pods), and
//!   the calls a runtime makes for them.
//! - `judge`: how a check stops (fail, skip, error), what counts as a leftover, what a failed
//!   call must print.
//! - `registry`: every check with its name, its claim and its versions, and the loop that runs
//!   them.
//! - `checks`: the checks, one module per verb (`version`, `add`, `del`, `check`, `gc`,
//!   `status`) and one for malformed input (`bad_input`).
//! - [`known`]: upstream issues that explain a Go plugin's FAIL; `report`: the [`Report`].

mod checks;
mod ctx;
mod fixture;
mod judge;
pub mod known;
mod registry;
mod report;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cni_types::Version;
use serde_json::{Map, Value};

pub use known::{Implementation, KnownIssue, PluginIdentity, ReasonMatch};
pub use report::{CheckResult, Outcome, Report};

use crate::runner::PLUGIN_TIMEOUT;

/// What to judge and how.
#[derive(Clone, Debug)]
pub struct SuiteOptions {
    /// The plugin binary under test.
    pub plugin: PathBuf,
    /// A network config (`.conf`-style object) or a conflist (object with `plugins`).
    pub config: Value,
    /// Where delegated and earlier chained plugins are found (`CNI_PATH`). The plugin's own
    /// directory is appended.
    pub cni_path: Vec<PathBuf>,
    /// In a conflist, the `type` of the plugin under test (default: the binary's file name).
    pub plugin_type: Option<String>,
    /// Versions to test (default: all the plugin supports).
    pub versions: Option<Vec<Version>>,
    /// Capability arguments for the runtime to inject (default: see the module docs).
    pub capability_args: Option<Map<String, Value>>,
    /// Only run checks whose name starts with one of these (default: all).
    pub only: Vec<String>,
    /// Shell commands (`sh -c`) run inside every fresh node namespace before a check: what
    /// the node must already have for the plugin (a bridge it expects, an uplink for
    /// macvlan, ...).
    pub node_setup: Vec<String>,
    /// Time allowed for one plugin call.
    pub timeout: Duration,
}

impl SuiteOptions {
    /// Judge `plugin` with `config`.
    pub fn new(plugin: impl Into<PathBuf>, config: Value) -> Self {
        SuiteOptions {
            plugin: plugin.into(),
            config,
            cni_path: Vec::new(),
            plugin_type: None,
            versions: None,
            capability_args: None,
            only: Vec::new(),
            node_setup: Vec::new(),
            timeout: PLUGIN_TIMEOUT,
        }
    }

    /// Add `CNI_PATH` directories.
    pub fn cni_path<P: AsRef<Path>>(mut self, dirs: impl IntoIterator<Item = P>) -> Self {
        self.cni_path
            .extend(dirs.into_iter().map(|p| p.as_ref().to_path_buf()));
        self
    }

    /// Test only these versions (among those the plugin supports).
    pub fn versions(mut self, v: impl IntoIterator<Item = Version>) -> Self {
        self.versions = Some(v.into_iter().collect());
        self
    }

    /// Only run checks whose names start with one of `prefixes`.
    pub fn only<S: Into<String>>(mut self, prefixes: impl IntoIterator<Item = S>) -> Self {
        self.only = prefixes.into_iter().map(Into::into).collect();
        self
    }

    /// Run `command` (with `sh -c`) inside every node namespace before each check.
    pub fn node_setup(mut self, command: impl Into<String>) -> Self {
        self.node_setup.push(command.into());
        self
    }

    /// The `type` of the plugin under test in a conflist.
    pub fn plugin_type(mut self, t: impl Into<String>) -> Self {
        self.plugin_type = Some(t.into());
        self
    }

    /// Capability arguments to inject.
    pub fn capability_args(mut self, args: Map<String, Value>) -> Self {
        self.capability_args = Some(args);
        self
    }
}

/// Why the suite could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SuiteError {
    /// The config is not usable.
    #[error("invalid config: {0}")]
    Config(String),
    /// The plugin binary is missing.
    #[error("plugin binary {0:?} not found")]
    NoPlugin(PathBuf),
    /// Namespaces cannot be created (not root?).
    #[error("cannot create namespaces (the suite needs root)")]
    Privilege(#[source] crate::Error),
}

/// A configured conformance run. See the [module docs](self).
#[derive(Debug)]
pub struct Suite {
    ctx: ctx::Ctx,
}

impl Suite {
    /// Prepare a run: reads the config, identifies the plugin and asks its VERSION.
    pub fn new(options: SuiteOptions) -> Result<Suite, SuiteError> {
        Ok(Suite {
            ctx: ctx::Ctx::new(options)?,
        })
    }

    /// Who the plugin is.
    pub fn identity(&self) -> &PluginIdentity {
        &self.ctx.identity
    }

    /// The versions the per-version checks run for.
    pub fn tested_versions(&self) -> &[Version] {
        &self.ctx.versions
    }

    /// Run every check and return the report.
    pub fn run(&self) -> Report {
        self.run_with(&mut |_| {})
    }

    /// Run every check, calling `progress` after each one.
    pub fn run_with(&self, progress: &mut dyn FnMut(&CheckResult)) -> Report {
        let mut results = Vec::new();
        for r in registry::run_all(&self.ctx, progress) {
            results.push(r);
        }
        Report {
            plugin: self.ctx.options.plugin.clone(),
            identity: self.ctx.identity.clone(),
            plugin_type: self.ctx.type_under_test.clone(),
            supported: self.ctx.supported.clone(),
            versions: self.ctx.versions.clone(),
            results,
        }
    }
}
