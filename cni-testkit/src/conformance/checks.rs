//! The checks and the per-check fixture (node + pods + dataDir).

use std::net::IpAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::Duration;

use cni_proto::exec::find_in_path;
use cni_types::version::ResultFamily;
use cni_types::{CniResult, Version};
use serde_json::{Map, Value, json};

use super::known::{PluginIdentity, known_issue};
use super::report::{CheckResult, Outcome};
use super::{SuiteError, SuiteOptions};
use crate::netns::TempNetns;
use crate::process::Output;
use crate::runner::{Attachment, Invocation, PluginError, PluginRunner, parse_error};
use crate::snapshot::{Diff, Kind, Snapshot, SnapshotOptions};
use crate::tempdir::{TempDir, random_hex};

/// How long the kernel may take to tear down a deleted pod namespace's links.
const TEARDOWN_WAIT: Duration = Duration::from_secs(10);
/// An address outside any sane range, requested to make an IPAM fail (TEST-NET-2).
const UNAVAILABLE_IP: &str = "198.51.100.77/24";

/// Why a check stopped early.
enum Stop {
    Fail(String),
    Skip(String),
    Error(String),
}

type R<T = ()> = Result<T, Stop>;

fn fail<T>(msg: impl Into<String>) -> R<T> {
    Err(Stop::Fail(msg.into()))
}

fn skip<T>(msg: impl Into<String>) -> R<T> {
    Err(Stop::Skip(msg.into()))
}

trait OrError<T> {
    fn or_error(self, what: &str) -> R<T>;
}

impl<T, E: std::error::Error + 'static> OrError<T> for Result<T, E> {
    fn or_error(self, what: &str) -> R<T> {
        self.map_err(|e| Stop::Error(format!("{what}: {}", cni_types::error::chain_message(&e))))
    }
}

fn plugin_err(what: &str, e: &PluginError) -> Stop {
    Stop::Fail(format!("{what}: {}", describe(e)))
}

/// A plugin error in one line, with stderr when there was no error JSON.
fn describe(e: &PluginError) -> String {
    match e {
        PluginError::Failed { error, .. } => {
            format!("error code {}: {}", error.code(), error)
        }
        PluginError::Run(inner) => cni_types::error::chain_message(inner),
        other => other.to_string(),
    }
}

/// Everything the checks share: the parsed config, who the plugin is, what it supports.
#[derive(Debug)]
pub(super) struct Ctx {
    pub options: SuiteOptions,
    pub identity: PluginIdentity,
    pub supported: Vec<Version>,
    pub versions: Vec<Version>,
    pub type_under_test: String,
    version_error: Option<String>,
    list_name: String,
    /// The chain up to and including the plugin under test.
    plugins: Vec<Map<String, Value>>,
    /// Index of the plugin under test in `plugins`.
    idx: usize,
    cni_path: Vec<PathBuf>,
    pre_chaining: Vec<Version>,
}

impl Ctx {
    pub fn new(options: SuiteOptions) -> Result<Ctx, SuiteError> {
        if !options.plugin.is_file() {
            return Err(SuiteError::NoPlugin(options.plugin.clone()));
        }
        let cfg = options
            .config
            .as_object()
            .ok_or_else(|| SuiteError::Config("not a JSON object".into()))?;
        let list_name = cfg
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| SuiteError::Config("no \"name\"".into()))?
            .to_string();
        let file_name = options
            .plugin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (mut plugins, idx) = match cfg.get("plugins") {
            Some(Value::Array(list)) => {
                let maps: Vec<Map<String, Value>> = list
                    .iter()
                    .map(|p| {
                        p.as_object()
                            .cloned()
                            .ok_or_else(|| SuiteError::Config("a plugin is not an object".into()))
                    })
                    .collect::<Result<_, _>>()?;
                let want = options.plugin_type.clone().unwrap_or(file_name.clone());
                let idx = maps
                    .iter()
                    .position(|p| p.get("type").and_then(Value::as_str) == Some(want.as_str()))
                    .or_else(|| (maps.len() == 1).then_some(0))
                    .ok_or_else(|| {
                        SuiteError::Config(format!(
                            "no plugin of type {want:?} in the conflist (use --type)"
                        ))
                    })?;
                (maps, idx)
            }
            Some(_) => return Err(SuiteError::Config("\"plugins\" is not a list".into())),
            None => {
                let mut m = cfg.clone();
                m.remove("name");
                m.remove("cniVersion");
                (vec![m], 0)
            }
        };
        plugins.truncate(idx + 1);
        let type_under_test = plugins[idx]
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(&file_name)
            .to_string();
        let mut cni_path = options.cni_path.clone();
        if let Some(dir) = options.plugin.parent() {
            cni_path.push(dir.to_path_buf());
        }

        let probe = TempNetns::new("conf-probe").map_err(SuiteError::Privilege)?;
        let runner = PluginRunner::new(&options.plugin)
            .in_netns(&probe)
            .map_err(SuiteError::Privilege)?
            .timeout(options.timeout);
        let about = runner.about().unwrap_or_default();
        let identity = PluginIdentity::detect(&options.plugin, &about);
        let (supported, version_error) = match runner.version(Version::CURRENT) {
            Ok(info) => (info.supported_versions, None),
            Err(e) => (Vec::new(), Some(describe(&e))),
        };
        let wanted = options
            .versions
            .clone()
            .unwrap_or_else(|| Version::ALL.to_vec());
        let mut versions: Vec<Version> = wanted
            .into_iter()
            .filter(|v| v.is_known())
            .filter(|v| version_error.is_some() || supported.contains(v))
            .collect();
        versions.sort();
        versions.dedup();
        let mut pre_chaining = Vec::new();
        if idx > 0 {
            pre_chaining = versions
                .iter()
                .copied()
                .filter(|v| !v.supports_chaining())
                .collect();
            versions.retain(Version::supports_chaining);
        }
        Ok(Ctx {
            options,
            identity,
            supported,
            versions,
            type_under_test,
            version_error,
            list_name,
            plugins,
            idx,
            cni_path,
            pre_chaining,
        })
    }

    fn newest(&self) -> Option<Version> {
        self.versions.last().copied()
    }

    fn supports(&self, v: Version) -> bool {
        self.supported.contains(&v)
    }

    /// Capability arguments for the `n`-th attachment of a check.
    fn caps_for(&self, n: usize) -> Map<String, Value> {
        let offset = i64::try_from(n).unwrap_or(0) * 100;
        let mut caps = self.options.capability_args.clone().unwrap_or_else(|| {
            let mut m = Map::new();
            m.insert(
                "portMappings".into(),
                json!([
                    {"hostPort": 30080, "containerPort": 80, "protocol": "tcp"},
                    {"hostPort": 30053, "containerPort": 53, "protocol": "udp"}
                ]),
            );
            m
        });
        if let Some(Value::Array(pms)) = caps.get_mut("portMappings") {
            for pm in pms {
                if let Some(hp) = pm.get("hostPort").and_then(Value::as_i64) {
                    pm["hostPort"] = json!(hp + offset);
                }
            }
        }
        caps
    }
}

/// One attachment of a check.
struct Att {
    id: String,
    ifname: String,
    pod: Option<TempNetns>,
    pod_path: PathBuf,
    caps: Map<String, Value>,
    /// `args` for the plugin under test (requested addresses).
    args: Option<Value>,
    /// The chain's result before the plugin under test.
    prev: Option<CniResult>,
    /// The plugin under test's ADD result.
    result: Option<CniResult>,
    base_node: Snapshot,
    base_pod: Option<Snapshot>,
}

impl Att {
    fn attachment(&self, ns: NsMode) -> Attachment {
        let a = Attachment::new(&self.id, &self.pod_path, &self.ifname);
        match ns {
            NsMode::Path => a,
            NsMode::Empty => a.without_netns(),
        }
    }

    fn final_result(&self) -> Option<&CniResult> {
        self.result.as_ref().or(self.prev.as_ref())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum NsMode {
    /// `CNI_NETNS` is the pod's path (which may no longer exist).
    Path,
    /// `CNI_NETNS` is empty.
    Empty,
}

/// A node namespace, a dataDir, and runners for the chain, for one check.
struct Fixture<'c> {
    ctx: &'c Ctx,
    v: Version,
    node: TempNetns,
    data: TempDir,
    runners: Vec<PluginRunner>,
    node_opts: SnapshotOptions,
    s0: Snapshot,
    n: usize,
}

impl<'c> Fixture<'c> {
    fn new(ctx: &'c Ctx, v: Version) -> R<Self> {
        let node = TempNetns::new("node").or_error("create node namespace")?;
        for cmd in &ctx.options.node_setup {
            node.exec_ok("sh", &["-c", cmd])
                .or_error(&format!("node setup {cmd:?}"))?;
        }
        let data = TempDir::new("cnitk-data").or_error("create dataDir")?;
        let mut runners = Vec::new();
        for (i, p) in ctx.plugins.iter().enumerate() {
            let binary = if i == ctx.idx {
                ctx.options.plugin.clone()
            } else {
                let t = p.get("type").and_then(Value::as_str).unwrap_or_default();
                find_in_path(t, &ctx.cni_path).map_err(|e| {
                    Stop::Error(format!("earlier plugin {t:?} not found: {}", e.msg))
                })?
            };
            runners.push(
                PluginRunner::new(binary)
                    .cni_path(&ctx.cni_path)
                    .timeout(ctx.options.timeout)
                    .in_netns(&node)
                    .or_error("open node namespace")?,
            );
        }
        let node_opts = SnapshotOptions::default().with_dir(data.path());
        let s0 = Snapshot::with(&node, node_opts.clone()).or_error("snapshot node")?;
        Ok(Fixture {
            ctx,
            v,
            node,
            data,
            runners,
            node_opts,
            s0,
            n: 0,
        })
    }

    fn under_test(&self) -> &PluginRunner {
        &self.runners[self.ctx.idx]
    }

    /// The config plugin `i` receives, as a runtime builds it.
    fn conf(&self, i: usize, att: Option<&Att>, prev: Option<&CniResult>) -> R<Value> {
        let mut m = self.ctx.plugins[i].clone();
        m.insert("name".into(), json!(self.ctx.list_name));
        m.insert("cniVersion".into(), json!(self.v.to_string()));
        if let Some(p) = prev {
            let pv = p
                .to_value(self.v)
                .map_err(|e| Stop::Error(format!("convert prevResult to {}: {e}", self.v)))?;
            m.insert("prevResult".into(), pv);
        }
        if let Some(att) = att {
            let mut rc = Map::new();
            if let Some(Value::Object(caps)) = m.get("capabilities") {
                for (cap, on) in caps {
                    if on.as_bool() == Some(true)
                        && let Some(v) = att.caps.get(cap)
                    {
                        rc.insert(cap.clone(), v.clone());
                    }
                }
            }
            if !rc.is_empty() {
                m.insert("runtimeConfig".into(), Value::Object(rc));
            }
            if i == self.ctx.idx
                && let Some(args) = &att.args
            {
                m.insert("args".into(), args.clone());
            }
        }
        if let Some(ipam) = m.get_mut("ipam").and_then(Value::as_object_mut) {
            ipam.insert("dataDir".into(), json!(self.data.path()));
        }
        if m.contains_key("dataDir") {
            m.insert("dataDir".into(), json!(self.data.path()));
        }
        Ok(Value::Object(m))
    }

    fn snap_node(&self) -> R<Snapshot> {
        Snapshot::with(&self.node, self.node_opts.clone()).or_error("snapshot node")
    }

    fn snap_pod(&self, att: &Att) -> R<Option<Snapshot>> {
        match &att.pod {
            Some(p) => Ok(Some(Snapshot::of(p).or_error("snapshot pod")?)),
            None => Ok(None),
        }
    }

    /// A new pod, `prep`ared, with the earlier plugins of the chain ADDed.
    fn attach(&mut self, args: Option<Value>, prep: impl FnOnce(&TempNetns) -> R) -> R<Att> {
        let n = self.n;
        self.n += 1;
        // A pod namespace as a runtime hands it to the first plugin: `lo` down, no addresses.
        let pod = TempNetns::sandbox("pod").or_error("create pod namespace")?;
        prep(&pod)?;
        let mut att = Att {
            id: format!("cnitk{n}-{}", random_hex()),
            ifname: "eth0".into(),
            pod_path: pod.path().to_path_buf(),
            pod: Some(pod),
            caps: self.ctx.caps_for(n),
            args,
            prev: None,
            result: None,
            base_node: self.s0.clone(),
            base_pod: None,
        };
        for i in 0..self.ctx.idx {
            let conf = self.conf(i, Some(&att), att.prev.as_ref())?;
            let res = self.runners[i]
                .add(&conf, &att.attachment(NsMode::Path))
                .map_err(|e| {
                    Stop::Error(format!(
                        "earlier plugin {:?} failed ADD: {}",
                        self.type_of(i),
                        describe(&e)
                    ))
                })?;
            att.prev = Some(res);
        }
        att.base_node = self.snap_node()?;
        att.base_pod = self.snap_pod(&att)?;
        Ok(att)
    }

    fn type_of(&self, i: usize) -> &str {
        self.ctx.plugins[i]
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// ADD of the plugin under test: the parsed result and the raw JSON.
    fn add(&self, att: &mut Att) -> Result<(CniResult, Value), PluginError> {
        let conf = self
            .conf(self.ctx.idx, Some(att), att.prev.as_ref())
            .map_err(stop_to_plugin_error)?;
        let out = self.under_test().call(&Invocation::new(
            "ADD",
            &conf,
            Some(&att.attachment(NsMode::Path)),
        ))?;
        let raw: Value = match serde_json::from_slice(&out.stdout) {
            Ok(v) => v,
            Err(e) => {
                return Err(PluginError::BadOutput {
                    output: out,
                    reason: format!("not JSON: {e}"),
                });
            }
        };
        match CniResult::from_value(raw.clone(), Some(self.v)) {
            Ok(r) => {
                att.result = Some(r.clone());
                Ok((r, raw))
            }
            Err(e) => Err(PluginError::BadOutput {
                output: out,
                reason: e.msg,
            }),
        }
    }

    /// Whether the node (with the plugin's data directory) and the pod are exactly as they were
    /// before the ADD of the plugin under test.
    fn add_changed_nothing(&self, att: &Att) -> R<bool> {
        let node_same = att.base_node.diff(&self.snap_node()?).is_empty();
        let pod_same = match (&att.base_pod, self.snap_pod(att)?) {
            (Some(before), Some(now)) => before.diff(&now).is_empty(),
            _ => true,
        };
        Ok(node_same && pod_same)
    }

    /// ADD that must succeed (a failure fails the check).
    fn add_ok(&self, att: &mut Att) -> R<CniResult> {
        self.add(att)
            .map(|(r, _)| r)
            .map_err(|e| plugin_err("ADD failed", &e))
    }

    fn del(&self, att: &Att, ns: NsMode) -> Result<(), PluginError> {
        let prev = if self.v.passes_prev_result_on_del() {
            att.final_result()
        } else {
            None
        };
        let conf = self
            .conf(self.ctx.idx, Some(att), prev)
            .map_err(stop_to_plugin_error)?;
        self.under_test().del(&conf, &att.attachment(ns))
    }

    fn check(&self, att: &Att) -> Result<(), PluginError> {
        let conf = self
            .conf(self.ctx.idx, Some(att), att.final_result())
            .map_err(stop_to_plugin_error)?;
        self.under_test()
            .check(&conf, &att.attachment(NsMode::Path))
    }

    /// DEL the earlier plugins of the chain, in reverse.
    fn del_prefix(&self, att: &Att, ns: NsMode) -> R {
        let prev = if self.v.passes_prev_result_on_del() {
            att.final_result()
        } else {
            None
        };
        for i in (0..self.ctx.idx).rev() {
            let conf = self.conf(i, Some(att), prev)?;
            self.runners[i]
                .del(&conf, &att.attachment(ns))
                .map_err(|e| {
                    Stop::Error(format!(
                        "earlier plugin {:?} failed DEL: {}",
                        self.type_of(i),
                        describe(&e)
                    ))
                })?;
        }
        Ok(())
    }

    /// Best-effort DEL of everything (for the end of a check).
    fn cleanup(&self, att: &Att) {
        let ns = if att.pod.is_some() {
            NsMode::Path
        } else {
            NsMode::Empty
        };
        let _ = self.del(att, ns);
        let _ = self.del_prefix(att, ns);
    }

    /// Delete the pod namespace and wait until the kernel removed the node ends of its veth
    /// pairs; returns what disappeared from the node.
    fn remove_pod(&self, att: &mut Att) -> R<Diff> {
        let before = self.snap_node()?;
        let Some(pod) = att.pod.take() else {
            return Ok(Diff::default());
        };
        let mut peers = Vec::new();
        {
            let mut pod_nl = pod.netlink().or_error("netlink in pod")?;
            let mut node_nl = self.node.netlink().or_error("netlink in node")?;
            for l in pod_nl.links().or_error("list pod links")? {
                if l.is_kind("veth")
                    && let Some(peer) = l.link
                    && let Ok(Some(n)) = node_nl.link_by_index(peer)
                    && n.is_kind("veth")
                    && n.link_netnsid.is_some()
                {
                    peers.push(peer);
                }
            }
        }
        pod.delete().or_error("delete pod namespace")?;
        let mut nl = self.node.netlink().or_error("netlink in node")?;
        if nl.wait_links_gone(&peers, TEARDOWN_WAIT).is_err() {
            return Err(Stop::Error(format!(
                "the node ends of the deleted pod's veths were still there after {TEARDOWN_WAIT:?}"
            )));
        }
        let after = self.snap_node()?;
        Ok(before.diff(&after))
    }

    /// Differences between the state before ADD of `att` (minus what the pod's deletion
    /// removed) and now, in the node and, if it still exists, the pod.
    fn leftovers(&self, att: &Att, vanished: Option<&Diff>) -> R<Vec<String>> {
        self.leftovers_ignoring(att, vanished, &[])
    }

    /// As [`Fixture::leftovers`], ignoring in the pod the links named in `pod_ignore` (and
    /// their addresses and routes), which may or may not have been removed.
    fn leftovers_ignoring(
        &self,
        att: &Att,
        vanished: Option<&Diff>,
        pod_ignore: &[&str],
    ) -> R<Vec<String>> {
        let now = self.snap_node()?;
        let mut problems = compare(&att.base_node, &now, &att.id, vanished, "node");
        if let (Some(base), Some(now)) = (&att.base_pod, self.snap_pod(att)?) {
            let keep =
                |i: &crate::snapshot::Item| !pod_ignore.iter().any(|n| contains_token(&i.text, n));
            let strip = |s: &Snapshot| {
                Snapshot::from_parts(
                    s.options().clone(),
                    s.items().iter().filter(|i| keep(i)).cloned().collect(),
                    s.files().clone(),
                )
            };
            problems.extend(compare(&strip(base), &strip(&now), &att.id, None, "pod"));
        }
        Ok(problems)
    }

    /// After the last DEL: what in the node, compared with before its ADD, still mentions
    /// `att` (its container ID, its addresses, its own host interfaces).
    fn last_leftovers(&self, att: &Att, others: &[&Att]) -> R<Vec<String>> {
        let now = self.snap_node()?;
        // Compared with the state before the plugin's ADD of `att` (after the earlier plugins'
        // ADD), so what the earlier plugins hold for it is not counted.
        let d = att.base_node.diff(&now);
        let mut needles: Vec<Needle> = vec![Needle::Text(att.id.clone())];
        if let Some(r) = &att.result {
            needles.extend(r.ips.iter().map(|ip| Needle::Ip(ip.address.addr())));
            for iface in r.interfaces.iter().filter(|i| i.sandbox.is_empty()) {
                let shared = others.iter().any(|o| {
                    o.result
                        .as_ref()
                        .is_some_and(|r| r.interfaces.iter().any(|i| i.name == iface.name))
                });
                let prev = att
                    .prev
                    .as_ref()
                    .is_some_and(|p| p.interfaces.iter().any(|i| i.name == iface.name));
                if !shared && !prev {
                    needles.push(Needle::Ifname(iface.name.clone()));
                }
            }
        }
        let mut problems: Vec<String> = d
            .added
            .iter()
            .filter(|i| needles.iter().any(|n| n.found_in(&i.text)))
            .map(|i| format!("left behind in the node: {i}"))
            .collect();
        if let (Some(base), Some(now)) = (&att.base_pod, self.snap_pod(att)?) {
            problems.extend(compare(base, &now, &att.id, None, "pod"));
        }
        Ok(problems)
    }
}

/// A call that did not complete: a plugin that hangs fails; anything else is the suite's
/// trouble.
fn run_failure(verb: &str, e: crate::Error) -> Stop {
    match e {
        crate::Error::Timeout { after, .. } => {
            Stop::Fail(format!("{verb} did not finish within {after:?}"))
        }
        other => Stop::Error(format!(
            "run {verb}: {}",
            cni_types::error::chain_message(&other)
        )),
    }
}

fn stop_to_plugin_error(s: Stop) -> PluginError {
    let msg = match s {
        Stop::Fail(m) | Stop::Skip(m) | Stop::Error(m) => m,
    };
    PluginError::Run(crate::Error::Invalid {
        what: "config",
        reason: msg,
    })
}

/// Something that identifies an attachment in a state item.
enum Needle {
    Text(String),
    Ip(IpAddr),
    Ifname(String),
}

impl Needle {
    fn found_in(&self, text: &str) -> bool {
        match self {
            Needle::Text(t) => text.contains(t.as_str()),
            Needle::Ip(ip) => mentions_ip(text, ip),
            Needle::Ifname(n) => contains_token(text, n),
        }
    }
}

/// `needle` in `text` where neither the character before nor the one after continues it.
fn contains_token_with(text: &str, needle: &str, continues: impl Fn(char) -> bool) -> bool {
    text.match_indices(needle).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + needle.len()..].chars().next();
        before.is_none_or(|c| !continues(c)) && after.is_none_or(|c| !continues(c))
    })
}

/// An interface or other name in `text`, not as part of a longer name (`eth0` is not in
/// `eth0.100` or `veth0`).
fn contains_token(text: &str, name: &str) -> bool {
    contains_token_with(text, name, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
    })
}

/// An address in `text`, not as part of a longer address (`10.1.0.2` is not in
/// `10.1.0.21`; it is in `10.1.0.2/32` and `10.1.0.2:80`).
fn mentions_ip(text: &str, ip: &IpAddr) -> bool {
    let s = ip.to_string();
    match ip {
        IpAddr::V4(_) => contains_token_with(text, &s, |c| c.is_ascii_digit() || c == '.'),
        IpAddr::V6(_) => contains_token_with(text, &s, |c| c.is_ascii_hexdigit() || c == ':'),
    }
}

/// `base` (minus `vanished.removed`) against `now`: every non-file item must match; files
/// must not be new, removed, or changed to mention `id`.
fn compare(
    base: &Snapshot,
    now: &Snapshot,
    id: &str,
    vanished: Option<&Diff>,
    place: &str,
) -> Vec<String> {
    let expected = match vanished {
        Some(d) => base.apply(&Diff {
            added: Vec::new(),
            removed: d.removed.clone(),
        }),
        None => base.clone(),
    };
    let non_file = |s: &Snapshot| -> Vec<crate::snapshot::Item> {
        s.items()
            .iter()
            .filter(|i| i.kind != Kind::File)
            .cloned()
            .collect()
    };
    let mut problems = Vec::new();
    let d = Diff::between(&non_file(&expected), &non_file(now));
    if !d.is_empty() {
        problems.push(format!("the {place} differs from before the ADD:\n{d}"));
    }
    for (path, content) in now.files() {
        match base.files().get(path) {
            None => problems.push(format!(
                "new file left in the {place}: {}{}",
                path.display(),
                content
                    .as_ref()
                    .map(|c| format!(" = {c:?}"))
                    .unwrap_or_else(|| "/".into())
            )),
            Some(old) if old != content && content.as_ref().is_some_and(|c| c.contains(id)) => {
                problems.push(format!(
                    "file {} still mentions {id}: {:?}",
                    path.display(),
                    content
                ))
            }
            _ => {}
        }
    }
    for path in base.files().keys() {
        if !now.files().contains_key(path) {
            problems.push(format!(
                "file {} (there before the ADD) was removed",
                path.display()
            ));
        }
    }
    problems
}

fn problems_to_result(problems: Vec<String>) -> R {
    if problems.is_empty() {
        Ok(())
    } else {
        fail(problems.join("\n"))
    }
}

/// A failed call must exit non-zero with the spec's error JSON, with a code in `codes` (any
/// code when empty).
fn expect_error(out: Output, codes: &[u32]) -> R {
    if out.status.success() {
        let want = if codes.is_empty() {
            "an error".to_string()
        } else {
            format!("error code {}", join_codes(codes))
        };
        return fail(format!(
            "exited 0 (stdout {:?}); want {want}",
            out.stdout_text()
        ));
    }
    match parse_error(out) {
        PluginError::Failed { error, .. } => {
            if codes.is_empty() || codes.contains(&error.code()) {
                Ok(())
            } else {
                fail(format!(
                    "error code {} ({}), want {}",
                    error.code(),
                    error,
                    join_codes(codes)
                ))
            }
        }
        other => fail(format!("not the spec's error result: {other}")),
    }
}

fn join_codes(codes: &[u32]) -> String {
    codes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}

// ---------------------------------------------------------------------------------------
// The checks

type CheckFn = fn(&Ctx, Version) -> R;

#[derive(Clone, Copy)]
enum Scope {
    /// Once, with the newest tested version.
    Once,
    /// For every tested version from this one.
    PerVersion(Version),
}

struct CheckDef {
    name: &'static str,
    about: &'static str,
    scope: Scope,
    run: CheckFn,
}

fn defs() -> Vec<CheckDef> {
    use Scope::{Once, PerVersion};
    let v010 = Version::V0_1_0;
    let mut d = vec![
        CheckDef {
            name: "version",
            about: "VERSION prints the versions the plugin supports",
            scope: Once,
            run: check_version,
        },
        CheckDef {
            name: "add",
            about: "ADD succeeds with a result in the version's shape that matches the kernel",
            scope: PerVersion(v010),
            run: check_add,
        },
        CheckDef {
            name: "del-cleans-up",
            about: "DEL removes everything its ADD created, and nothing else",
            scope: PerVersion(v010),
            run: check_del_cleans_up,
        },
        CheckDef {
            name: "del-idempotent",
            about: "a second DEL succeeds and changes nothing",
            scope: PerVersion(v010),
            run: check_del_idempotent,
        },
        CheckDef {
            name: "del-without-add",
            about: "DEL of an attachment never added succeeds and changes nothing",
            scope: PerVersion(v010),
            run: check_del_without_add,
        },
        CheckDef {
            name: "del-netns-gone",
            about: "DEL succeeds and cleans up after the netns was deleted (CNI_NETNS a stale path)",
            scope: PerVersion(v010),
            run: check_del_netns_gone,
        },
        CheckDef {
            name: "del-netns-empty",
            about: "DEL succeeds and cleans up after the netns was deleted (CNI_NETNS empty)",
            scope: PerVersion(v010),
            run: check_del_netns_empty,
        },
        CheckDef {
            name: "del-after-failed-add",
            about: "DEL after a failed ADD succeeds and leaves nothing",
            scope: PerVersion(v010),
            run: check_del_after_failed_add,
        },
        CheckDef {
            name: "add-existing-ifname",
            about: "ADD fails when CNI_IFNAME already exists in the pod",
            scope: Once,
            run: check_add_existing_ifname,
        },
        CheckDef {
            name: "check",
            about: "CHECK after ADD succeeds",
            scope: PerVersion(Version::V0_4_0),
            run: check_check,
        },
        CheckDef {
            name: "check-after-del",
            about: "CHECK after DEL reports the missing resources",
            scope: PerVersion(Version::V0_4_0),
            run: check_check_after_del,
        },
        CheckDef {
            name: "gc",
            about: "GC releases stale attachments and keeps valid ones",
            scope: PerVersion(Version::V1_1_0),
            run: check_gc,
        },
        CheckDef {
            name: "status",
            about: "STATUS succeeds in a fresh node",
            scope: PerVersion(Version::V1_1_0),
            run: check_status,
        },
    ];
    for (name, about, run) in BAD_INPUTS {
        d.push(CheckDef {
            name,
            about,
            scope: Once,
            run: *run,
        });
    }
    d
}

const BAD_INPUTS: &[(&str, &str, CheckFn)] = &[
    (
        "bad-input/unknown-command",
        "an unknown CNI_COMMAND is error 4",
        bad_unknown_command,
    ),
    (
        "bad-input/add-missing-CNI_CONTAINERID",
        "ADD without CNI_CONTAINERID is error 4",
        bad_add_missing_containerid,
    ),
    (
        "bad-input/add-missing-CNI_NETNS",
        "ADD without CNI_NETNS is error 4",
        bad_add_missing_netns,
    ),
    (
        "bad-input/add-missing-CNI_IFNAME",
        "ADD without CNI_IFNAME is error 4",
        bad_add_missing_ifname,
    ),
    (
        "bad-input/del-missing-CNI_CONTAINERID",
        "DEL without CNI_CONTAINERID is error 4",
        bad_del_missing_containerid,
    ),
    (
        "bad-input/invalid-container-id",
        "a container ID with characters outside [a-zA-Z0-9_.-] is error 4",
        bad_invalid_container_id,
    ),
    (
        "bad-input/invalid-ifname",
        "an interface name longer than 15 bytes is error 4",
        bad_invalid_ifname,
    ),
    (
        "bad-input/invalid-json",
        "a config that is not JSON is error 6",
        bad_invalid_json,
    ),
    (
        "bad-input/missing-name",
        "a config without a network name is error 7",
        bad_missing_name,
    ),
    (
        "bad-input/incompatible-version",
        "a cniVersion the plugin does not support is error 1",
        bad_incompatible_version,
    ),
    (
        "bad-input/check-before-0.4.0",
        "CHECK with a config older than 0.4.0 is error 1",
        bad_check_before_040,
    ),
    (
        "bad-input/gc-before-1.1.0",
        "GC with a config older than 1.1.0 is error 1",
        bad_gc_before_110,
    ),
    (
        "bad-input/status-before-1.1.0",
        "STATUS with a config older than 1.1.0 is error 1",
        bad_status_before_110,
    ),
];

/// Run every check (per version where it applies), calling `progress` after each.
pub(super) fn run_all(ctx: &Ctx, progress: &mut dyn FnMut(&CheckResult)) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let wanted = |name: &str| {
        ctx.options.only.is_empty()
            || ctx
                .options
                .only
                .iter()
                .any(|p| name.starts_with(p.as_str()))
    };
    let mut push = |r: CheckResult, out: &mut Vec<CheckResult>| {
        progress(&r);
        out.push(r);
    };
    if !ctx.pre_chaining.is_empty() && wanted("versions") {
        let vs: Vec<String> = ctx.pre_chaining.iter().map(ToString::to_string).collect();
        push(
            CheckResult {
                name: "versions-before-0.3.0".into(),
                about: "chained plugins need prevResult, which exists from 0.3.0",
                outcome: Outcome::Skip(format!(
                    "a chained plugin is not tested with {}",
                    vs.join(" ")
                )),
                known_issue: None,
            },
            &mut out,
        );
    }
    for def in defs() {
        match def.scope {
            Scope::Once => {
                if !wanted(def.name) {
                    continue;
                }
                let outcome = match ctx.newest() {
                    Some(v) => run_one(ctx, def.run, v),
                    None => Outcome::Skip("no version to test with".into()),
                };
                push(
                    result(ctx, def.name.to_string(), def.about, outcome),
                    &mut out,
                );
            }
            Scope::PerVersion(min) => {
                let vs: Vec<Version> = ctx.versions.iter().copied().filter(|v| *v >= min).collect();
                if vs.is_empty() {
                    if !wanted(def.name) {
                        continue;
                    }
                    let newest = ctx
                        .supported
                        .iter()
                        .max()
                        .map(|v| format!(" (VERSION lists up to {v})"))
                        .unwrap_or_default();
                    let reason = if ctx.supports(min) || ctx.supported.iter().any(|v| *v >= min) {
                        format!("not tested: no version from {min} was asked for")
                    } else {
                        format!("not supported: the plugin does not support {min} or later{newest}")
                    };
                    push(
                        result(ctx, def.name.to_string(), def.about, Outcome::Skip(reason)),
                        &mut out,
                    );
                    continue;
                }
                for v in vs {
                    let name = format!("{}/{v}", def.name);
                    if !wanted(&name) {
                        continue;
                    }
                    let outcome = run_one(ctx, def.run, v);
                    push(result(ctx, name, def.about, outcome), &mut out);
                }
            }
        }
    }
    out
}

fn result(ctx: &Ctx, name: String, about: &'static str, outcome: Outcome) -> CheckResult {
    let known_issue = match &outcome {
        Outcome::Fail(reason) => known_issue(&ctx.identity, &name, reason).copied(),
        _ => None,
    };
    CheckResult {
        name,
        about,
        outcome,
        known_issue,
    }
}

fn run_one(ctx: &Ctx, f: CheckFn, v: Version) -> Outcome {
    match catch_unwind(AssertUnwindSafe(|| f(ctx, v))) {
        Ok(Ok(())) => Outcome::Pass,
        Ok(Err(Stop::Fail(r))) => Outcome::Fail(r),
        Ok(Err(Stop::Skip(r))) => Outcome::Skip(r),
        Ok(Err(Stop::Error(r))) => Outcome::Error(r),
        Err(panic) => Outcome::Error(format!(
            "the check panicked: {}",
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_default()
        )),
    }
}

fn check_version(ctx: &Ctx, _v: Version) -> R {
    if let Some(e) = &ctx.version_error {
        return fail(format!("VERSION failed: {e}"));
    }
    if ctx.supported.is_empty() {
        return fail("VERSION lists no supportedVersions");
    }
    Ok(())
}

fn check_add(ctx: &Ctx, v: Version) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    let (res, raw) = fx.add(&mut a).map_err(|e| plugin_err("ADD failed", &e))?;
    let mut problems = shape_problems(&raw, v, a.prev.as_ref());
    problems.extend(kernel_problems(&fx, &a, &res)?);
    fx.cleanup(&a);
    problems_to_result(problems)
}

/// The result must be in the exact wire shape of `v`.
fn shape_problems(raw: &Value, v: Version, prev: Option<&CniResult>) -> Vec<String> {
    let mut p = Vec::new();
    let got = raw.get("cniVersion").and_then(Value::as_str).unwrap_or("");
    if got != v.to_string() {
        p.push(format!("result cniVersion is {got:?}, want \"{v}\""));
    }
    let ips = raw.get("ips").and_then(Value::as_array);
    match v.result_family() {
        ResultFamily::V020 => {
            if raw.get("ip4").is_none() && raw.get("ip6").is_none() {
                p.push(format!("a {v} result needs ip4 or ip6"));
            }
            if raw.get("ips").is_some() || raw.get("interfaces").is_some() {
                p.push(format!(
                    "a {v} result has no ips or interfaces (that is the 0.3.0 shape)"
                ));
            }
        }
        family => {
            if raw.get("ip4").is_some() || raw.get("ip6").is_some() {
                p.push(format!("a {v} result has ips, not ip4/ip6"));
            }
            let n_if = raw
                .get("interfaces")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            for (i, ip) in ips.into_iter().flatten().enumerate() {
                let addr = ip.get("address").and_then(Value::as_str).unwrap_or("");
                let ver = ip.get("version").and_then(Value::as_str);
                match family {
                    ResultFamily::V040 => {
                        let want = if addr.contains(':') { "6" } else { "4" };
                        if ver != Some(want) {
                            p.push(format!("ips[{i}] ({addr}) has version {ver:?}, want \"{want}\" in a {v} result"));
                        }
                    }
                    _ => {
                        if ver.is_some() {
                            p.push(format!("ips[{i}] has a version field, removed in 1.0.0"));
                        }
                    }
                }
                if let Some(idx) = ip.get("interface")
                    && idx.as_u64().is_none_or(|n| n >= n_if as u64)
                {
                    p.push(format!(
                        "ips[{i}].interface {idx} is not an index into {n_if} interfaces"
                    ));
                }
            }
        }
    }
    if let Some(prev) = prev
        && let Ok(res) = CniResult::from_value(raw.clone(), Some(v))
    {
        for ip in &prev.ips {
            if !res.ips.iter().any(|r| r.address == ip.address) {
                p.push(format!("prevResult address {} is missing from the result (a chained plugin passes it on)", ip.address));
            }
        }
    }
    p
}

/// What the result says must exist in the kernel.
fn kernel_problems(fx: &Fixture<'_>, a: &Att, res: &CniResult) -> R<Vec<String>> {
    let mut p = Vec::new();
    let node = fx.snap_node()?;
    let pod = fx.snap_pod(a)?;
    let pod_path = a.pod_path.display().to_string();
    let pod_links_added = match (&a.base_pod, &pod) {
        (Some(b), Some(n)) => b.diff(n).added.iter().any(|i| i.kind == Kind::Link),
        _ => false,
    };
    let has = |s: &Snapshot, kind: Kind, pred: &dyn Fn(&str) -> bool| {
        s.items().iter().any(|i| i.kind == kind && pred(&i.text))
    };
    for iface in &res.interfaces {
        let named = |t: &str| t.split_whitespace().next() == Some(iface.name.as_str());
        if iface.sandbox.is_empty() {
            if !has(&node, Kind::Link, &named) {
                p.push(format!(
                    "host interface {:?} from the result is not in the node",
                    iface.name
                ));
            }
        } else {
            if iface.sandbox != pod_path {
                p.push(format!(
                    "interface {:?} has sandbox {:?}, want CNI_NETNS {pod_path:?}",
                    iface.name, iface.sandbox
                ));
            }
            if let Some(pod) = &pod
                && !has(pod, Kind::Link, &named)
            {
                p.push(format!(
                    "interface {:?} from the result is not in the pod",
                    iface.name
                ));
            }
        }
    }
    if let Some(pod) = &pod {
        for ip in &res.ips {
            let on = ip.interface.and_then(|i| res.interfaces.get(i));
            let want = ip.address.to_string();
            match on {
                Some(iface) if !iface.sandbox.is_empty() => {
                    let text = format!("{} {want}", iface.name);
                    if !has(pod, Kind::Addr, &|t| t == text) {
                        p.push(format!(
                            "address {want} is not on {:?} in the pod",
                            iface.name
                        ));
                    }
                }
                None if pod_links_added
                    && !has(pod, Kind::Addr, &|t| t.ends_with(&format!(" {want}"))) =>
                {
                    p.push(format!("address {want} is not on any link of the pod"));
                }
                _ => {}
            }
        }
        if pod_links_added {
            for r in &res.routes {
                let dst = format!(" {} ", r.dst.trunc());
                if !has(pod, Kind::Route, &|t| format!("{t} ").contains(&dst)) {
                    p.push(format!(
                        "route to {} from the result is not in the pod",
                        r.dst
                    ));
                }
            }
        }
    }
    Ok(p)
}

fn check_del_cleans_up(ctx: &Ctx, v: Version) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut a)?;
    let mut b = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut b)?;
    fx.del(&b, NsMode::Path)
        .map_err(|e| plugin_err("DEL failed", &e))?;
    let mut problems: Vec<String> = fx
        .leftovers(&b, None)?
        .into_iter()
        .map(|s| format!("after DEL of the second attachment: {s}"))
        .collect();
    fx.del_prefix(&b, NsMode::Path)?;
    fx.del(&a, NsMode::Path)
        .map_err(|e| plugin_err("DEL of the first attachment failed", &e))?;
    problems.extend(
        fx.last_leftovers(&a, &[&b])?
            .into_iter()
            .map(|s| format!("after DEL of the last attachment: {s}")),
    );
    fx.del_prefix(&a, NsMode::Path)?;
    problems_to_result(problems)
}

fn check_del_idempotent(ctx: &Ctx, v: Version) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut a)?;
    fx.del(&a, NsMode::Path)
        .map_err(|e| plugin_err("first DEL failed", &e))?;
    let once = fx.snap_node()?;
    let pod_once = fx.snap_pod(&a)?;
    fx.del(&a, NsMode::Path)
        .map_err(|e| plugin_err("second DEL failed", &e))?;
    let twice = fx.snap_node()?;
    let mut problems = Vec::new();
    let d = once.diff(&twice);
    if !d.is_empty() {
        problems.push(format!("the second DEL changed the node:\n{d}"));
    }
    if let (Some(p1), Some(p2)) = (pod_once, fx.snap_pod(&a)?) {
        let d = p1.diff(&p2);
        if !d.is_empty() {
            problems.push(format!("the second DEL changed the pod:\n{d}"));
        }
    }
    fx.del_prefix(&a, NsMode::Path)?;
    problems_to_result(problems)
}

fn check_del_without_add(ctx: &Ctx, v: Version) -> R {
    // On a node already in use (state shared by attachments, such as a store's lock file,
    // exists), DEL of an attachment the plugin never saw must change nothing.
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut a)?;
    let b = fx.attach(None, |_| Ok(()))?;
    fx.del(&b, NsMode::Path)
        .map_err(|e| plugin_err("DEL failed", &e))?;
    let problems = fx.leftovers(&b, None)?;
    fx.del_prefix(&b, NsMode::Path)?;
    fx.cleanup(&a);
    problems_to_result(problems)
}

fn del_netns_gone(ctx: &Ctx, v: Version, mode: NsMode) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut a)?;
    let mut b = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut b)?;
    let vanished = fx.remove_pod(&mut b)?;
    fx.del(&b, mode).map_err(|e| plugin_err("DEL failed", &e))?;
    let problems = fx.leftovers(&b, Some(&vanished))?;
    let _ = fx.del_prefix(&b, mode);
    fx.cleanup(&a);
    problems_to_result(problems)
}

fn check_del_netns_gone(ctx: &Ctx, v: Version) -> R {
    del_netns_gone(ctx, v, NsMode::Path)
}

fn check_del_netns_empty(ctx: &Ctx, v: Version) -> R {
    del_netns_gone(ctx, v, NsMode::Empty)
}

/// Create a link named `ifname` in `pod` (a veth pair, both ends inside).
fn occupy_ifname(pod: &TempNetns, ifname: &str) -> R {
    let mut nl = pod.netlink().or_error("netlink in pod")?;
    nl.add_veth(&cni_linux::netlink::VethRequest::new(ifname, "cnitk-peer"))
        .or_error("create a link named like CNI_IFNAME in the pod")?;
    Ok(())
}

fn check_del_after_failed_add(ctx: &Ctx, v: Version) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut a)?;
    let mut tried = Vec::new();
    // 1: the interface name is taken in the pod (not for chained plugins: the earlier plugins
    //    would fail first).
    if ctx.idx == 0 {
        let mut b = fx.attach(None, |pod| occupy_ifname(pod, "eth0"))?;
        match fx.add(&mut b) {
            Err(PluginError::Run(e)) => {
                return fail(format!(
                    "ADD did not complete: {}",
                    cni_types::error::chain_message(&e)
                ));
            }
            Err(e) => {
                if let Some(out) = e.output() {
                    expect_error(out.clone(), &[]).map_err(|s| match s {
                        Stop::Fail(m) => Stop::Fail(format!("the failed ADD: {m}")),
                        other => other,
                    })?;
                }
                return del_failed(
                    &fx,
                    &b,
                    &a,
                    "CNI_IFNAME already existed in the pod",
                    &["eth0", "cnitk-peer"],
                );
            }
            Ok(_) => {
                fx.cleanup(&b);
                tried.push("an existing CNI_IFNAME in the pod");
            }
        }
    }
    // 2: an address outside every range requested through args.cni.ips.
    let args = json!({"cni": {"ips": [UNAVAILABLE_IP]}});
    let mut c = fx.attach(Some(args), |_| Ok(()))?;
    match fx.add(&mut c) {
        Err(PluginError::Run(e)) => fail(format!(
            "ADD did not complete: {}",
            cni_types::error::chain_message(&e)
        )),
        Err(e) => {
            if let Some(out) = e.output() {
                expect_error(out.clone(), &[])?;
            }
            del_failed(
                &fx,
                &c,
                &a,
                &format!("args.cni.ips requested {UNAVAILABLE_IP}"),
                &[],
            )
        }
        Ok(_) => {
            fx.cleanup(&c);
            fx.cleanup(&a);
            tried.push("args.cni.ips with an unavailable address");
            skip(format!(
                "could not make ADD fail (tried: {})",
                tried.join(", ")
            ))
        }
    }
}

/// DEL after a failed ADD must succeed and leave nothing. The links in `pod_ignore` were put
/// there by the check; DEL (of `CNI_IFNAME`) may remove them.
fn del_failed(fx: &Fixture<'_>, b: &Att, a: &Att, how: &str, pod_ignore: &[&str]) -> R {
    fx.del(b, NsMode::Path)
        .map_err(|e| plugin_err(&format!("DEL after the failed ADD ({how}) failed"), &e))?;
    let problems = fx.leftovers_ignoring(b, None, pod_ignore)?;
    let _ = fx.del_prefix(b, NsMode::Path);
    fx.cleanup(a);
    problems_to_result(
        problems
            .into_iter()
            .map(|p| format!("after the failed ADD ({how}) and DEL: {p}"))
            .collect(),
    )
}

fn check_add_existing_ifname(ctx: &Ctx, v: Version) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    let res = fx.add_ok(&mut a)?;
    let creates = |r: &CniResult| {
        r.interfaces
            .iter()
            .any(|i| i.name == a.ifname && !i.sandbox.is_empty())
    };
    let own = creates(&res) && !a.prev.as_ref().is_some_and(creates);
    fx.cleanup(&a);
    if !own {
        return skip("the plugin does not create CNI_IFNAME in the pod");
    }
    let mut b = fx.attach(None, |pod| occupy_ifname(pod, "eth0"))?;
    let conf = fx.conf(ctx.idx, Some(&b), b.prev.as_ref())?;
    let out = fx
        .under_test()
        .invoke(&Invocation::new(
            "ADD",
            &conf,
            Some(&b.attachment(NsMode::Path)),
        ))
        .map_err(|e| run_failure("ADD", e))?;
    let ok = out.status.success();
    let verdict = expect_error(out, &[]);
    if ok {
        b.result = None;
    }
    fx.cleanup(&b);
    verdict
}

fn check_check(ctx: &Ctx, v: Version) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut a)?;
    let r = fx
        .check(&a)
        .map_err(|e| plugin_err("CHECK after ADD failed", &e));
    fx.cleanup(&a);
    r
}

fn check_check_after_del(ctx: &Ctx, v: Version) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut a)?;
    if fx.add_changed_nothing(&a)? {
        fx.del(&a, NsMode::Path)
            .map_err(|e| plugin_err("DEL failed", &e))?;
        fx.del_prefix(&a, NsMode::Path)?;
        return skip(
            "ADD changed no state of the node, the pod or the plugin's files (a stateless \
             plugin such as static IPAM): nothing can be missing after DEL",
        );
    }
    fx.del(&a, NsMode::Path)
        .map_err(|e| plugin_err("DEL failed", &e))?;
    let conf = fx.conf(ctx.idx, Some(&a), a.final_result())?;
    let out = fx
        .under_test()
        .invoke(&Invocation::new(
            "CHECK",
            &conf,
            Some(&a.attachment(NsMode::Path)),
        ))
        .map_err(|e| run_failure("CHECK", e))?;
    fx.del_prefix(&a, NsMode::Path)?;
    expect_error(out, &[]).map_err(|s| match s {
        Stop::Fail(m) if m.starts_with("exited 0") => Stop::Fail(
            "CHECK succeeded after DEL, although the attachment's resources are gone".into(),
        ),
        other => other,
    })
}

fn check_gc(ctx: &Ctx, v: Version) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut a)?;
    let mut b = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut b)?;
    let vanished = fx.remove_pod(&mut b)?;
    let conf = crate::runner::with_valid_attachments(
        &fx.conf(ctx.idx, None, None)?,
        &[cni_types::Attachment {
            container_id: a.id.clone(),
            ifname: a.ifname.clone(),
        }],
    );
    fx.under_test()
        .gc(&conf)
        .map_err(|e| plugin_err("GC failed", &e))?;
    let mut problems: Vec<String> = fx
        .leftovers(&b, Some(&vanished))?
        .into_iter()
        .map(|p| format!("after GC with only the first attachment valid: {p}"))
        .collect();
    if let Err(e) = fx.check(&a) {
        problems.push(format!(
            "CHECK of the attachment kept valid fails after GC: {}",
            describe(&e)
        ));
    }
    let _ = fx.del_prefix(&b, NsMode::Empty);
    fx.cleanup(&a);
    problems_to_result(problems)
}

fn check_status(ctx: &Ctx, v: Version) -> R {
    let fx = Fixture::new(ctx, v)?;
    let conf = fx.conf(ctx.idx, None, None)?;
    fx.under_test()
        .status(&conf)
        .map_err(|e| plugin_err("STATUS failed", &e))
}

/// Run one malformed call of the plugin under test and judge its error code.
fn bad_call(
    ctx: &Ctx,
    v: Version,
    codes: &[u32],
    build: impl FnOnce(&Value, Attachment) -> Invocation,
) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let a = fx.attach(None, |_| Ok(()))?;
    let conf = fx.conf(ctx.idx, Some(&a), a.prev.as_ref())?;
    let inv = build(&conf, a.attachment(NsMode::Path));
    let out = fx
        .under_test()
        .invoke(&inv)
        .map_err(|e| run_failure(&inv.command, e))?;
    let ok = out.status.success();
    let verdict = expect_error(out, codes);
    if ok {
        fx.cleanup(&a);
    }
    verdict
}

fn bad_unknown_command(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[4], |c, a| Invocation::new("FOO", c, Some(&a)))
}

fn bad_add_missing_containerid(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[4], |c, a| {
        Invocation::new("ADD", c, Some(&a)).unset("CNI_CONTAINERID")
    })
}

fn bad_add_missing_netns(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[4], |c, a| {
        Invocation::new("ADD", c, Some(&a)).unset("CNI_NETNS")
    })
}

fn bad_add_missing_ifname(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[4], |c, a| {
        Invocation::new("ADD", c, Some(&a)).unset("CNI_IFNAME")
    })
}

fn bad_del_missing_containerid(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[4], |c, a| {
        Invocation::new("DEL", c, Some(&a)).unset("CNI_CONTAINERID")
    })
}

fn bad_invalid_container_id(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[4], |c, a| {
        Invocation::new("ADD", c, Some(&a)).set("CNI_CONTAINERID", "bad/id!")
    })
}

fn bad_invalid_ifname(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[4], |c, a| {
        Invocation::new("ADD", c, Some(&a)).set("CNI_IFNAME", "name-longer-than-15")
    })
}

fn bad_invalid_json(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[6], |_, a| {
        Invocation::new("ADD", "{\"cniVersion\": ", Some(&a))
    })
}

fn bad_missing_name(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[7], |c, a| {
        let mut c = c.clone();
        if let Some(o) = c.as_object_mut() {
            o.remove("name");
        }
        Invocation::new("ADD", &c, Some(&a))
    })
}

fn bad_incompatible_version(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[1], |c, a| {
        let mut c = c.clone();
        c["cniVersion"] = json!("99.0.0");
        Invocation::new("ADD", &c, Some(&a))
    })
}

/// The newest supported version older than `floor`, if the plugin supports any.
fn older_than(ctx: &Ctx, floor: Version) -> Option<Version> {
    ctx.supported
        .iter()
        .copied()
        .filter(|v| *v < floor && v.is_known())
        .max()
}

fn bad_check_before_040(ctx: &Ctx, _v: Version) -> R {
    let Some(old) = older_than(ctx, Version::V0_4_0) else {
        return skip("the plugin supports no version older than 0.4.0");
    };
    if ctx.idx > 0 && !old.supports_chaining() {
        return skip("a chained plugin is not run with a version older than 0.3.0");
    }
    bad_call(ctx, old, &[1], |c, a| Invocation::new("CHECK", c, Some(&a)))
}

fn bad_before_110(ctx: &Ctx, verb: &str) -> R {
    if !ctx.supports(Version::V1_1_0) {
        return skip(format!(
            "not supported: the plugin does not support 1.1.0, where {verb} exists"
        ));
    }
    let Some(old) =
        older_than(ctx, Version::V1_1_0).filter(|v| ctx.idx == 0 || v.supports_chaining())
    else {
        return skip("the plugin supports no version older than 1.1.0");
    };
    bad_call(ctx, old, &[1], |c, _| Invocation::new(verb, c, None))
}

fn bad_gc_before_110(ctx: &Ctx, _v: Version) -> R {
    bad_before_110(ctx, "GC")
}

fn bad_status_before_110(ctx: &Ctx, _v: Version) -> R {
    bad_before_110(ctx, "STATUS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_do_not_match_longer_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(mentions_ip(
            "v4 nat -A POSTROUTING -s 10.1.0.2/32 -j X",
            &ip("10.1.0.2")
        ));
        assert!(mentions_ip("eth0 10.1.0.2", &ip("10.1.0.2")));
        assert!(!mentions_ip("eth0 10.1.0.21/24", &ip("10.1.0.2")));
        assert!(!mentions_ip("eth0 110.1.0.2/24", &ip("10.1.0.2")));
        assert!(mentions_ip("ip saddr 10.1.0.2 masquerade", &ip("10.1.0.2")));
        assert!(mentions_ip("dnat to 10.1.0.2:80", &ip("10.1.0.2")));
        assert!(mentions_ip("dnat to [fd00::2]:80", &ip("fd00::2")));
        assert!(!mentions_ip("eth0 fd00::2a/64", &ip("fd00::2")));
        assert!(!contains_token("veth1234abcd up", "veth1234"));
        assert!(contains_token("veth1234abcd kind=veth", "veth1234abcd"));
        assert!(!contains_token("eth0.100 up", "eth0"));
        assert!(contains_token("main 10.0.0.0/8 dev eth0 scope=253", "eth0"));
    }

    #[test]
    fn shapes_are_checked_per_version() {
        let r040 = json!({"cniVersion":"0.4.0","interfaces":[{"name":"eth0"}],
            "ips":[{"version":"4","interface":0,"address":"10.0.0.2/24"}]});
        assert!(shape_problems(&r040, Version::V0_4_0, None).is_empty());
        let p = shape_problems(&r040, Version::V1_0_0, None);
        assert_eq!(p.len(), 2, "{p:?}"); // cniVersion and the version field
        let bad_idx = json!({"cniVersion":"1.0.0","ips":[{"interface":1,"address":"10.0.0.2/24"}]});
        assert!(shape_problems(&bad_idx, Version::V1_0_0, None)[0].contains("not an index"));
        let r020 = json!({"cniVersion":"0.2.0","ip4":{"ip":"10.0.0.2/24"}});
        assert!(shape_problems(&r020, Version::V0_2_0, None).is_empty());
        assert!(!shape_problems(&r020, Version::V0_3_1, None).is_empty());
        let prev = CniResult::from_value(
            json!({"cniVersion":"1.0.0","ips":[{"address":"10.0.0.9/24"}]}),
            None,
        )
        .unwrap();
        let r = json!({"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]});
        assert!(shape_problems(&r, Version::V1_0_0, Some(&prev))[0].contains("prevResult"));
    }

    #[test]
    fn compare_reports_new_changed_and_removed_files() {
        let mk = |files: &[(&str, &str)]| {
            let mut items = Vec::new();
            let mut map = std::collections::BTreeMap::new();
            for (p, c) in files {
                items.push(crate::snapshot::Item::new(
                    Kind::File,
                    format!("{p} = {c:?}"),
                ));
                map.insert(PathBuf::from(p), Some(c.to_string()));
            }
            (items, map)
        };
        let base = snapshot_for_test(mk(&[("/d/lock", ""), ("/d/last", "10.0.0.2")]));
        let same = snapshot_for_test(mk(&[("/d/lock", ""), ("/d/last", "10.0.0.3")]));
        assert!(compare(&base, &same, "cid-b", None, "node").is_empty());
        let leak = snapshot_for_test(mk(&[
            ("/d/lock", ""),
            ("/d/last", "10.0.0.3"),
            ("/d/10.0.0.3", "cid-b\r\neth0"),
        ]));
        let p = compare(&base, &leak, "cid-b", None, "node");
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("new file left in the node: /d/10.0.0.3"),
            "{p:?}"
        );
        let gone = snapshot_for_test(mk(&[("/d/last", "x")]));
        assert!(compare(&base, &gone, "cid-b", None, "node")[0].contains("was removed"));
    }

    fn snapshot_for_test(
        (items, files): (
            Vec<crate::snapshot::Item>,
            std::collections::BTreeMap<PathBuf, Option<String>>,
        ),
    ) -> Snapshot {
        Snapshot::from_parts(SnapshotOptions::default(), items, files)
    }
}
