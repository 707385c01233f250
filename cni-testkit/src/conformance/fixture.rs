//! The per-check fixture: a node namespace, a `dataDir`, the chain's runners, and the
//! attachments (pods) a check creates, with the calls a runtime would make for them.

use std::path::PathBuf;
use std::time::Duration;

use cni_proto::exec::find_in_path;
use cni_types::{CniResult, Version};
use serde_json::{Map, Value, json};

use super::ctx::Ctx;
use super::judge::{
    Needle, OrError, R, Stop, compare, contains_token, describe, plugin_err, stop_to_plugin_error,
};
use crate::netns::TempNetns;
use crate::runner::{Attachment, Invocation, PluginError, PluginRunner};
use crate::snapshot::{Diff, Snapshot, SnapshotOptions};
use crate::tempdir::{TempDir, random_hex};

/// How long the kernel may take to tear down a deleted pod namespace's links.
pub(super) const TEARDOWN_WAIT: Duration = Duration::from_secs(10);

/// One attachment of a check.
pub(super) struct Att {
    pub(super) id: String,
    pub(super) ifname: String,
    pub(super) pod: Option<TempNetns>,
    pub(super) pod_path: PathBuf,
    pub(super) caps: Map<String, Value>,
    /// `args` for the plugin under test (requested addresses).
    pub(super) args: Option<Value>,
    /// The chain's result before the plugin under test.
    pub(super) prev: Option<CniResult>,
    /// The plugin under test's ADD result.
    pub(super) result: Option<CniResult>,
    pub(super) base_node: Snapshot,
    pub(super) base_pod: Option<Snapshot>,
}

impl Att {
    pub(super) fn attachment(&self, ns: NsMode) -> Attachment {
        let a = Attachment::new(&self.id, &self.pod_path, &self.ifname);
        match ns {
            NsMode::Path => a,
            NsMode::Empty => a.without_netns(),
        }
    }

    pub(super) fn final_result(&self) -> Option<&CniResult> {
        self.result.as_ref().or(self.prev.as_ref())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum NsMode {
    /// `CNI_NETNS` is the pod's path (which may no longer exist).
    Path,
    /// `CNI_NETNS` is empty.
    Empty,
}

/// A node namespace, a dataDir, and runners for the chain, for one check.
pub(super) struct Fixture<'c> {
    pub(super) ctx: &'c Ctx,
    pub(super) v: Version,
    pub(super) node: TempNetns,
    pub(super) data: TempDir,
    pub(super) runners: Vec<PluginRunner>,
    pub(super) node_opts: SnapshotOptions,
    pub(super) s0: Snapshot,
    pub(super) n: usize,
}

impl<'c> Fixture<'c> {
    pub(super) fn new(ctx: &'c Ctx, v: Version) -> R<Self> {
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

    pub(super) fn under_test(&self) -> &PluginRunner {
        &self.runners[self.ctx.idx]
    }

    /// The config plugin `i` receives, as a runtime builds it.
    pub(super) fn conf(&self, i: usize, att: Option<&Att>, prev: Option<&CniResult>) -> R<Value> {
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

    pub(super) fn snap_node(&self) -> R<Snapshot> {
        Snapshot::with(&self.node, self.node_opts.clone()).or_error("snapshot node")
    }

    pub(super) fn snap_pod(&self, att: &Att) -> R<Option<Snapshot>> {
        match &att.pod {
            Some(p) => Ok(Some(Snapshot::of(p).or_error("snapshot pod")?)),
            None => Ok(None),
        }
    }

    /// A new pod, `prep`ared, with the earlier plugins of the chain ADDed.
    pub(super) fn attach(
        &mut self,
        args: Option<Value>,
        prep: impl FnOnce(&TempNetns) -> R,
    ) -> R<Att> {
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

    pub(super) fn type_of(&self, i: usize) -> &str {
        self.ctx.plugins[i]
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// ADD of the plugin under test: the parsed result and the raw JSON.
    pub(super) fn add(&self, att: &mut Att) -> Result<(CniResult, Value), PluginError> {
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
    pub(super) fn add_changed_nothing(&self, att: &Att) -> R<bool> {
        let node_same = att.base_node.diff(&self.snap_node()?).is_empty();
        let pod_same = match (&att.base_pod, self.snap_pod(att)?) {
            (Some(before), Some(now)) => before.diff(&now).is_empty(),
            _ => true,
        };
        Ok(node_same && pod_same)
    }

    /// ADD that must succeed (a failure fails the check).
    pub(super) fn add_ok(&self, att: &mut Att) -> R<CniResult> {
        self.add(att)
            .map(|(r, _)| r)
            .map_err(|e| plugin_err("ADD failed", &e))
    }

    pub(super) fn del(&self, att: &Att, ns: NsMode) -> Result<(), PluginError> {
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

    pub(super) fn check(&self, att: &Att) -> Result<(), PluginError> {
        let conf = self
            .conf(self.ctx.idx, Some(att), att.final_result())
            .map_err(stop_to_plugin_error)?;
        self.under_test()
            .check(&conf, &att.attachment(NsMode::Path))
    }

    /// DEL the earlier plugins of the chain, in reverse.
    pub(super) fn del_prefix(&self, att: &Att, ns: NsMode) -> R {
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
    pub(super) fn cleanup(&self, att: &Att) {
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
    pub(super) fn remove_pod(&self, att: &mut Att) -> R<Diff> {
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
    pub(super) fn leftovers(&self, att: &Att, vanished: Option<&Diff>) -> R<Vec<String>> {
        self.leftovers_ignoring(att, vanished, &[])
    }

    /// As [`Fixture::leftovers`], ignoring in the pod the links named in `pod_ignore` (and
    /// their addresses and routes), which may or may not have been removed.
    pub(super) fn leftovers_ignoring(
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
    pub(super) fn last_leftovers(&self, att: &Att, others: &[&Att]) -> R<Vec<String>> {
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

/// Create a link named `ifname` in `pod` (a veth pair, both ends inside).
pub(super) fn occupy_ifname(pod: &TempNetns, ifname: &str) -> R {
    let mut nl = pod.netlink().or_error("netlink in pod")?;
    nl.add_veth(&cni_linux::netlink::VethRequest::new(ifname, "cnitk-peer"))
        .or_error("create a link named like CNI_IFNAME in the pod")?;
    Ok(())
}
