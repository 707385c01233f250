//! Shared support of the hardening tests (issue #8): our plugin binaries and the Go reference
//! ones, run as a runtime runs them, inside throw-away node namespaces.
//!
//! The binaries are the workspace's, found next to the test executable (`cargo build
//! --workspace --bins` builds them; `cargo test --workspace` does too). Run these tests alone
//! with `cargo build --workspace --bins && cargo test -p cni-testkit --test 'hardening_*'`.
//!
//! # The bad-input table
//!
//! [`run_table`] runs every [`Case`] of a plugin:
//! - against **our** binary twice, in a *cold* node (nothing created yet: a refused call must
//!   not create a bridge, a table or a store) and in a *warm* one (a live attachment with its
//!   veth, addresses, masquerade and port-mapping rules and reservations: a refused call must
//!   not remove or change any of it). Each time the node (links, addresses, routes, nftables,
//!   iptables, forwarding sysctls, the IPAM data directory and a scratch directory) and the
//!   pod are snapshotted before and after, and must be equal; the exit status must be
//!   non-zero and stdout the spec's error JSON with the expected code;
//! - against the **Go reference** v1.1.1 (`/usr/lib/cni`), in its own warm node, to compare
//!   the code ([`Go`] says what is asserted about it and why we differ when we do).
//!
//! Every row is printed (`--nocapture` shows the table); every mismatch is collected and the
//! test fails once with all of them.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cni_testkit::bins::{self, CniPathDir};
use cni_testkit::runner::{Invocation, parse_error};
use cni_testkit::{
    Attachment, PluginError, PluginRunner, Snapshot, SnapshotOptions, TempDir, TempNetns,
};
use serde_json::Value;

/// How long one plugin call may take here.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether privileged tests can run (prints why not; panics in CI).
pub fn root() -> bool {
    cni_testkit::require_root()
}

/// Whether the Go reference plugins are installed; panics in CI when they are not.
pub fn go_plugins_available(names: &[&str]) -> bool {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| bins::go_plugin(n).is_err())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "the Go reference plugins {missing:?} are not in {}",
        bins::GO_PLUGINS_DIR
    );
    if cni_testkit::privilege::in_ci() {
        panic!("{msg}, and CI is set");
    }
    eprintln!("SKIPPED the comparison with the reference: {msg}");
    false
}

/// Which implementation a [`Side`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    /// The workspace's binaries.
    Ours,
    /// The Go reference plugins v1.1.1.
    Go,
}

/// A node namespace with a `CNI_PATH`, an IPAM data directory and a scratch directory, and a
/// runner for the plugin under test inside the node.
pub struct Side {
    pub which: Impl,
    pub node: TempNetns,
    pub data: TempDir,
    pub scratch: TempDir,
    pub bins: CniPathDir,
    pub runner: PluginRunner,
    /// Namespaces of the live attachments made by the warm-up (kept alive).
    pub live: Vec<TempNetns>,
}

impl Side {
    /// `plugin` (and `others`, for delegation and chaining) of `which` in a fresh node.
    pub fn new(which: Impl, plugin: &str, others: &[&str]) -> Side {
        let mut names = vec![plugin];
        names.extend_from_slice(others);
        let bins = match which {
            Impl::Ours => CniPathDir::new().unwrap().ours(&names),
            Impl::Go => CniPathDir::new().unwrap().go(&names),
        }
        .expect("plugin binaries (cargo build --workspace --bins)");
        let node = TempNetns::new("hnode").unwrap();
        let runner = PluginRunner::new(bins.plugin(plugin))
            .cni_path([bins.path()])
            .timeout(CALL_TIMEOUT)
            .in_netns(&node)
            .unwrap();
        let scratch = TempDir::new("hscratch").unwrap();
        std::fs::write(scratch.join("regular-file"), "not a namespace\n").unwrap();
        std::fs::create_dir(scratch.join("a-directory")).unwrap();
        Side {
            which,
            node,
            data: TempDir::new("hdata").unwrap(),
            scratch,
            bins,
            runner,
            live: Vec::new(),
        }
    }

    /// A runner of another plugin of this side, inside the node.
    pub fn runner_for(&self, plugin: &str) -> PluginRunner {
        PluginRunner::new(self.bins.plugin(plugin))
            .cni_path([self.bins.path()])
            .timeout(CALL_TIMEOUT)
            .in_netns(&self.node)
            .unwrap()
    }

    /// What is snapshotted in the node: everything, plus the forwarding and `route_localnet`
    /// sysctls and the files of the data and scratch directories.
    pub fn node_options(&self) -> SnapshotOptions {
        SnapshotOptions::default()
            .with_dir(self.data.path())
            .with_dir(self.scratch.path())
            .with_sysctl("net.ipv4.ip_forward")
            .with_sysctl("net.ipv6.conf.all.forwarding")
            .with_sysctl("net.ipv4.conf.all.route_localnet")
            .with_sysctl("net.ipv4.conf.cni0.route_localnet")
    }

    pub fn snapshot_node(&self) -> Snapshot {
        Snapshot::with(&self.node, self.node_options()).expect("node snapshot")
    }
}

/// A pod snapshot: links, addresses, routes (plugins never touch a pod's firewall).
pub fn snapshot_pod(pod: &TempNetns) -> Snapshot {
    Snapshot::with(pod, SnapshotOptions::default().without_firewall()).expect("pod snapshot")
}

/// What a case builder sees.
pub struct Ctx<'a> {
    pub side: &'a Side,
    /// A fresh pod for this case.
    pub pod: &'a TempNetns,
    /// The plugin's valid base config for this side.
    pub conf: Value,
    /// A valid attachment in `pod`: container `hv<case number>`, `eth0`.
    pub att: Attachment,
}

impl Ctx<'_> {
    /// `verb` with `conf` and this case's attachment.
    pub fn call(&self, verb: &str, conf: &Value) -> Invocation {
        Invocation::new(verb, conf, Some(&self.att))
    }

    /// ADD of the base config.
    pub fn add(&self) -> Invocation {
        self.call("ADD", &self.conf)
    }

    /// ADD of the base config changed by `f`.
    pub fn add_with(&self, f: impl FnOnce(&mut Value)) -> Invocation {
        let mut c = self.conf.clone();
        f(&mut c);
        self.call("ADD", &c)
    }

    /// `verb` of the base config changed by `f`.
    pub fn verb_with(&self, verb: &str, f: impl FnOnce(&mut Value)) -> Invocation {
        let mut c = self.conf.clone();
        f(&mut c);
        self.call(verb, &c)
    }

    /// ADD with raw bytes on stdin.
    pub fn add_raw(&self, stdin: &[u8]) -> Invocation {
        Invocation::new("ADD", stdin, Some(&self.att))
    }

    /// The node's own namespace file.
    pub fn node_path(&self) -> &Path {
        self.side.node.path()
    }

    /// A path in the scratch directory.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.side.scratch.join(name)
    }
}

/// What we assert about the Go reference's answer to a case.
#[derive(Clone, Debug)]
pub enum Go {
    /// It fails with the same code as ours.
    Same,
    /// It fails with another code; why we differ.
    Code(u32, &'static str),
    /// It succeeds (v1.1.1 lacks the check); why we refuse.
    Succeeds(&'static str),
    /// Its answer is not asserted (recorded only); why.
    Unasserted(&'static str),
}

type Build = Box<dyn Fn(&Ctx<'_>) -> Invocation>;

/// One bad input.
pub struct Case {
    pub name: &'static str,
    /// The code our plugin must answer with.
    pub code: u32,
    pub go: Go,
    /// Refused by the kernel in the middle of ADD (see [`Case::kernel_refused`]).
    pub kernel_refused: bool,
    build: Build,
}

impl Case {
    /// The failure is one only the kernel detects, in the middle of ADD (an interface name
    /// taken in the pod, an MTU a device refuses). ADD undoes what it made for the attachment,
    /// but shared state it prepared may stay, as with the reference: the bridge on a node that
    /// had none (the cold node), and host-local's bookkeeping (the store directory, `lock`, the
    /// round-robin cursor `last_reserved_ip.*` and our index; our bridge runs host-local
    /// while it creates the veth). No reservation, veth, address, route or rule may differ.
    pub fn kernel_refused(mut self) -> Case {
        self.kernel_refused = true;
        self
    }
}

/// A case: `name`, our expected `code`, what Go does, and how to build the call.
pub fn case(
    name: &'static str,
    code: u32,
    go: Go,
    build: impl Fn(&Ctx<'_>) -> Invocation + 'static,
) -> Case {
    Case {
        name,
        code,
        go,
        kernel_refused: false,
        build: Box::new(build),
    }
}

/// A plugin's table.
pub struct Table {
    /// The plugin under test (`bridge`, `host-local`, `portmap`).
    pub plugin: &'static str,
    /// Plugins it needs in `CNI_PATH`.
    pub others: &'static [&'static str],
    /// The valid base config of a side.
    pub base: fn(&Side) -> Value,
    /// What every node has before any plugin runs (e.g. an uplink with a route).
    pub prepare: fn(&Side),
    /// Brings a side into a lived-in state (live attachments).
    pub warm: fn(&mut Side),
    pub cases: Vec<Case>,
}

/// What one run of a case gave.
#[derive(Debug)]
enum Answer {
    /// Exit non-zero with the spec's error.
    Error(u32, String),
    /// Exit 0.
    Success,
    /// Non-zero without a valid error, or not run to completion.
    Broken(String),
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Error(c, _) => write!(f, "{c}"),
            Answer::Success => f.write_str("ok"),
            Answer::Broken(_) => f.write_str("BROKEN"),
        }
    }
}

fn answer(side: &Side, inv: &Invocation) -> Answer {
    match side.runner.invoke(inv) {
        Err(e) => Answer::Broken(format!("not run to completion: {e}")),
        Ok(out) if out.status.success() => Answer::Success,
        Ok(out) => match parse_error(out) {
            PluginError::Failed { error, .. } => Answer::Error(error.code(), error.msg),
            other => Answer::Broken(other.to_string()),
        },
    }
}

/// The `cni0` bridge appearing (and its sysctl directory with it).
fn new_bridge(i: &cni_testkit::Item) -> bool {
    use cni_testkit::snapshot::Kind;
    (i.kind == Kind::Link && i.text.starts_with("cni0 kind=bridge "))
        || (i.kind == Kind::Sysctl && i.text.starts_with("net.ipv4.conf.cni0."))
}

/// Runs `inv` on `side` and checks it changed nothing; returns the answer and the problems.
fn run_ours(
    side: &Side,
    cold: bool,
    pod: &TempNetns,
    inv: &Invocation,
    c: &Case,
) -> (Answer, Vec<String>) {
    let code = c.code;
    let mut problems = Vec::new();
    let node_before = side.snapshot_node();
    let pod_before = snapshot_pod(pod);
    let got = answer(side, inv);
    match &got {
        Answer::Error(c, _) if *c == code => {}
        Answer::Error(c, msg) => problems.push(format!("code {c} ({msg}), expected {code}")),
        Answer::Success => problems.push(format!("succeeded, expected code {code}")),
        Answer::Broken(why) => problems.push(why.clone()),
    }
    let mut d = node_before.diff(&side.snapshot_node());
    if c.kernel_refused {
        d = d.filter(|i| {
            !(cni_testkit::snapshot::host_local_bookkeeping(i) || (cold && new_bridge(i)))
        });
    }
    if !d.is_empty() {
        problems.push(format!("node changed:\n{d}"));
    }
    let d = pod_before.diff(&snapshot_pod(pod));
    if !d.is_empty() {
        problems.push(format!("pod changed:\n{d}"));
    }
    (got, problems)
}

/// Whether `text` names an IPv4 address starting with `prefix` (e.g. `"10.88."`) other than
/// those in `except` (a subnet's network address and gateway): a pod's address, as in
/// `-s 10.88.0.2/32` or an nft map element, as opposed to per-network state such as
/// `ip daddr != 10.88.0.0/22`.
pub fn mentions_pod_addr(text: &str, prefix: &str, except: &[&str]) -> bool {
    text.match_indices(prefix).any(|(i, _)| {
        let start_ok = i == 0 || !text[..i].ends_with(|c: char| c.is_ascii_digit() || c == '.');
        let rest: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let addr = rest.trim_end_matches('.');
        start_ok && addr.parse::<std::net::Ipv4Addr>().is_ok() && !except.contains(&addr)
    })
}

/// Nothing to prepare.
pub fn nothing(_: &Side) {}

/// Runs the table: see the [module docs](self).
pub fn run_table(table: Table, compare_with_go: bool) {
    let cold = Side::new(Impl::Ours, table.plugin, table.others);
    (table.prepare)(&cold);
    let mut warm = Side::new(Impl::Ours, table.plugin, table.others);
    (table.prepare)(&warm);
    (table.warm)(&mut warm);
    let go_side = compare_with_go.then(|| {
        let mut s = Side::new(Impl::Go, table.plugin, table.others);
        (table.prepare)(&s);
        (table.warm)(&mut s);
        s
    });

    let mut report = String::new();
    let mut failures = Vec::new();
    let _ = writeln!(
        report,
        "{:<44} {:>4} {:>5} {:>5} {:>6}  note",
        table.plugin, "want", "cold", "warm", "go"
    );
    for (i, c) in table.cases.iter().enumerate() {
        let id = format!("hv{i}");
        let mut answers = Vec::new();
        for side in [&cold, &warm] {
            let pod = TempNetns::new("hpod").unwrap();
            let ctx = Ctx {
                side,
                pod: &pod,
                conf: (table.base)(side),
                att: Attachment::new(id.as_str(), pod.path(), "eth0"),
            };
            let inv = (c.build)(&ctx);
            let is_cold = std::ptr::eq(side, &cold);
            let (got, problems) = run_ours(side, is_cold, &pod, &inv, c);
            let label = if is_cold { "cold" } else { "warm" };
            for p in problems {
                failures.push(format!("{} / {} ({label}): {p}", table.plugin, c.name));
            }
            answers.push(got);
        }
        let mut note = String::new();
        let go_answer = go_side.as_ref().map(|side| {
            let pod = TempNetns::new("hpod").unwrap();
            let ctx = Ctx {
                side,
                pod: &pod,
                conf: (table.base)(side),
                att: Attachment::new(id.as_str(), pod.path(), "eth0"),
            };
            let inv = (c.build)(&ctx);
            let got = answer(side, &inv);
            let problem = match (&c.go, &got) {
                (Go::Same, Answer::Error(g, _)) if *g == c.code => None,
                (Go::Same, other) => Some(format!(
                    "the reference answered {other} ({other:?}), the table says it answers {} too",
                    c.code
                )),
                (Go::Code(want, why), Answer::Error(g, _)) if g == want => {
                    note = if *want == c.code {
                        format!("same code, another cause: {why}")
                    } else {
                        format!("differs: {why}")
                    };
                    None
                }
                (Go::Code(want, _), other) => Some(format!(
                    "the reference answered {other} ({other:?}), the table says {want}"
                )),
                (Go::Succeeds(why), Answer::Success) => {
                    note = format!("reference accepts: {why}");
                    // Undo what it did, so later cases start from the same state.
                    let mut undo = inv.clone();
                    undo.command = "DEL".into();
                    let _ = side.runner.invoke(&undo);
                    None
                }
                (Go::Succeeds(_), other) => Some(format!(
                    "the reference answered {other} ({other:?}), the table says it succeeds"
                )),
                (Go::Unasserted(why), _) => {
                    note = format!("not compared: {why}");
                    if matches!(got, Answer::Success) {
                        let mut undo = inv.clone();
                        undo.command = "DEL".into();
                        let _ = side.runner.invoke(&undo);
                    }
                    None
                }
            };
            if let Some(p) = problem {
                failures.push(format!("{} / {} (reference): {p}", table.plugin, c.name));
            }
            got
        });
        let _ = writeln!(
            report,
            "{:<44} {:>4} {:>5} {:>5} {:>6}  {note}",
            c.name,
            c.code,
            answers[0].to_string(),
            answers[1].to_string(),
            go_answer
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".into()),
        );
    }
    println!("{report}");
    assert!(
        table.cases.len() >= 25,
        "{}: only {} cases",
        table.plugin,
        table.cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} bad-input failures:\n{}\n\n{report}",
        failures.len(),
        failures.join("\n")
    );
}
