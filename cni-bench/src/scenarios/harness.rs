//! What the sections share: turn-taking, a node running a chain with each plugin process
//! timed, and waiting for the machine and a node to be quiet.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cni_proto::exec::{Exec, ProcessExec};
use cni_proto::runtime::{CniConfig, RuntimeConf};
use cni_proto::{Command, Env};
use cni_testkit::{TempDir, TempNetns};
use cni_types::{Error as CniError, NetConfList};
use serde_json::json;

use super::bins::{Bins, Impl};
use crate::measure;

/// Records how long each plugin process of a chain took.
pub(super) struct TimedExec {
    pub(super) log: Mutex<Vec<(String, Duration)>>,
}

impl TimedExec {
    pub(super) fn new() -> Arc<TimedExec> {
        Arc::new(TimedExec {
            log: Mutex::new(Vec::new()),
        })
    }

    pub(super) fn take(&self) -> Vec<(String, Duration)> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Exec for TimedExec {
    fn exec(
        &self,
        plugin_type: &str,
        command: Command,
        stdin: &[u8],
        env: &Env,
    ) -> Result<Vec<u8>, CniError> {
        let t = Instant::now();
        let r = ProcessExec.exec(plugin_type, command, stdin, env);
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((plugin_type.to_string(), t.elapsed()));
        r
    }
}

/// bridge (host-local) + portmap, then `extra` plugins (e.g. tuning), as the node would chain them.
pub(super) fn conflist(
    imp: Impl,
    subnet: &str,
    data_dir: &Path,
    extra: &[serde_json::Value],
) -> Result<NetConfList> {
    let mut bridge = json!({
        "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                 "routes": [{"dst": "0.0.0.0/0"}], "dataDir": data_dir}
    });
    let mut portmap = json!({"type": "portmap", "capabilities": {"portMappings": true}});
    if imp == Impl::OursNft {
        bridge["ipMasqBackend"] = json!("nftables");
        portmap["backend"] = json!("nftables");
    }
    let mut plugins = vec![bridge, portmap];
    plugins.extend(extra.iter().cloned());
    let list = json!({"cniVersion": "1.0.0", "name": "benchnet", "plugins": plugins});
    Ok(NetConfList::from_slice(&serde_json::to_vec(&list)?)?)
}

/// A node namespace running one implementation's chain.
pub(super) struct ChainNode {
    pub(super) imp: Impl,
    pub(super) node: TempNetns,
    pub(super) list: NetConfList,
    pub(super) cni: CniConfig,
    pub(super) timed: Arc<TimedExec>,
    pub(super) pods: Vec<(TempNetns, RuntimeConf)>,
    /// Pod namespaces made before a measurement, and those used by it: deleting a namespace
    /// makes the kernel clean it up in the background, which must not overlap what is timed.
    pub(super) spare: Vec<TempNetns>,
    pub(super) used: Vec<TempNetns>,
    pub(super) _data: TempDir,
    pub(super) _cache: TempDir,
    pub(super) seq: usize,
}

impl ChainNode {
    pub(super) fn new(imp: Impl, bins: &Bins) -> Result<ChainNode> {
        ChainNode::with_extra(imp, bins, &[])
    }

    /// A node whose chain ends with the `extra` plugins.
    pub(super) fn with_extra(
        imp: Impl,
        bins: &Bins,
        extra: &[serde_json::Value],
    ) -> Result<ChainNode> {
        let node = TempNetns::new("bench-node")?;
        node.sysctl_set("net.ipv4.ip_forward", "1")?;
        let data = TempDir::new("bench-ipam")?;
        let cache = TempDir::new("bench-cache")?;
        let list = conflist(imp, "10.64.0.0/12", data.path(), extra)?;
        let timed = TimedExec::new();
        let cni = CniConfig::new(vec![imp.dir(bins).to_path_buf()])
            .with_cache_dir(cache.path())
            .with_base_env(Env::new().with("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"))
            .with_exec(timed.clone());
        Ok(ChainNode {
            imp,
            node,
            list,
            cni,
            timed,
            pods: Vec::new(),
            spare: Vec::new(),
            used: Vec::new(),
            _data: data,
            _cache: cache,
            seq: 0,
        })
    }

    /// The peak resident set (KiB) of a whole chain ADD's process tree: a runtime process
    /// (`cnitool`, next to this program) with every plugin and every tool they start, through
    /// the `cni-bench-rss` launcher (the largest of them all: `wait4`'s figure covers the
    /// descendants a process waited for). The pod is removed again (DEL, untimed).
    pub(super) fn tree_peak_rss(&mut self, bins: &Bins) -> Result<u64> {
        let pod = match self.spare.pop() {
            Some(p) => p,
            None => TempNetns::new("bench-pod")?,
        };
        self.seq += 1;
        let here = std::env::current_exe()?;
        let dir = here.parent().context("no directory of this program")?;
        let confdir = self._cache.path().join("netconf");
        std::fs::create_dir_all(&confdir)?;
        std::fs::write(
            confdir.join("bench.conflist"),
            serde_json::to_vec(&self.list)?,
        )?;
        let caps = json!({"portMappings": [
            {"hostPort": 10000 + self.seq, "containerPort": 80, "protocol": "tcp"}]});
        let netns = pod.path().display().to_string();
        let (tool, launcher) = (dir.join("cnitool"), measure::launcher()?);
        // `cnitool <verb>`, under the launcher or not.
        let cnitool = |verb: &str, launched: bool| {
            let mut cmd = std::process::Command::new(if launched { &launcher } else { &tool });
            if launched {
                cmd.arg(&tool);
            }
            cmd.args([verb, self.list.name.as_str(), netns.as_str()])
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .env("NETCONFPATH", &confdir)
                .env("CNI_PATH", self.imp.dir(bins))
                .env("CNI_CACHE_DIR", self._cache.path())
                .env("CAP_ARGS", caps.to_string())
                .env("CNI_IFNAME", "eth0");
            cmd
        };
        let add = self.node.run(|| cnitool("add", true).output())??;
        let del = self.node.run(|| cnitool("del", false).output())??;
        self.used.push(pod);
        match measure::launcher_reports(&add.stderr).pop() {
            Some((kib, 0)) if del.status.success() => Ok(kib),
            _ => bail!(
                "chain ADD/DEL through cnitool failed ({:?}): {}{}",
                self.imp,
                String::from_utf8_lossy(&add.stderr),
                String::from_utf8_lossy(&del.stdout)
            ),
        }
    }

    /// One bare process (`/bin/true`) spawned exactly as this node's runtime spawns a plugin
    /// (same thread in the node's namespace, same exec path: fork, pipes, the config written,
    /// wait): what any plugin at the end of the chain costs before it does anything.
    pub(super) fn bare_exec(&self) -> Result<Duration> {
        let env = Env::new()
            .with("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .with("CNI_CONTAINERID", "bench-floor")
            .with("CNI_IFNAME", "eth0");
        self.node.run(|| -> Result<Duration> {
            let t = Instant::now();
            ProcessExec.exec_path(Path::new("/bin/true"), Command::Version, b"{}", &env)?;
            Ok(t.elapsed())
        })?
    }

    pub(super) fn runtime_conf(&mut self, pod: &TempNetns) -> RuntimeConf {
        self.seq += 1;
        let port = 10000 + self.seq;
        RuntimeConf::new(
            format!("bench-{}", self.seq),
            pod.path().display().to_string(),
            "eth0",
        )
        .with_arg("IgnoreUnknown", "1")
        .with_capability(
            "portMappings",
            json!([{"hostPort": port, "containerPort": 80, "protocol": "tcp"}]),
        )
    }

    /// ADD one pod and keep it.
    pub(super) fn populate_one(&mut self) -> Result<()> {
        let pod = TempNetns::new("bench-pod")?;
        // A pod that has been up for a while no longer solicits routers: the kernel repeats
        // router solicitations with a backoff from 4 s to an hour, and the bridge floods each
        // to every port. A thousand pods made within two minutes would all still be
        // soliciting, and the node would be measuring that storm.
        for key in [
            "net.ipv6.conf.all.router_solicitations",
            "net.ipv6.conf.default.router_solicitations",
        ] {
            pod.sysctl_set(key, "0")?;
        }
        let rt = self.runtime_conf(&pod);
        let (cni, list) = (&self.cni, &self.list);
        self.node
            .run(|| cni.add_network_list(list, &rt))?
            .with_context(|| format!("populate {:?}", self.imp))?;
        self.timed.take();
        self.pods.push((pod, rt));
        Ok(())
    }

    /// Make `n` pod namespaces for the next measurements.
    pub(super) fn reserve(&mut self, n: usize) -> Result<()> {
        for _ in 0..n {
            self.spare.push(TempNetns::new("bench-pod")?);
        }
        Ok(())
    }

    /// Delete the namespaces the measurements used.
    pub(super) fn release(&mut self) {
        self.used.clear();
    }

    /// ADD (timed: whole chain and per plugin), CHECK (timed), DEL (timed) of a fresh pod.
    pub(super) fn cycle(&mut self, check: bool) -> Result<Cycle> {
        let pod = match self.spare.pop() {
            Some(p) => p,
            None => TempNetns::new("bench-pod")?,
        };
        let rt = self.runtime_conf(&pod);
        let (cni, list, timed) = (&self.cni, &self.list, &self.timed);
        let (add, log, check_t, del) = self.node.run(|| -> Result<_> {
            let t = Instant::now();
            let res = cni.add_network_list(list, &rt)?;
            let add = t.elapsed();
            // The per-plugin figures are the ADD's: CHECK and DEL run the same plugins again.
            let add_log = timed.take();
            if res.ips.is_empty() {
                bail!("no address");
            }
            let check_t = if check {
                let t = Instant::now();
                match cni.check_network_list(list, &rt) {
                    Ok(()) => Some(t.elapsed()),
                    Err(_) => None,
                }
            } else {
                None
            };
            let t = Instant::now();
            cni.del_network_list(list, &rt)?;
            Ok((add, add_log, check_t, t.elapsed()))
        })??;
        self.used.push(pod);
        // What CHECK and DEL logged is not used: the per-plugin figures are the ADD's.
        self.timed.take();
        let per = |ty: &str| {
            log.iter()
                .find(|(t, _)| t == ty)
                .map(|(_, d)| *d)
                .unwrap_or_default()
        };
        let tail = log
            .iter()
            .filter(|(t, _)| !matches!(t.as_str(), "bridge" | "host-local" | "portmap"))
            .map(|(_, d)| *d)
            .sum();
        Ok(Cycle {
            add,
            check: check_t,
            del,
            bridge: per("bridge"),
            portmap: per("portmap"),
            tail,
        })
    }
}

pub(super) struct Cycle {
    pub(super) add: Duration,
    pub(super) check: Option<Duration>,
    pub(super) del: Duration,
    pub(super) bridge: Duration,
    pub(super) portmap: Duration,
    /// The `extra` plugins' own time at the end of the chain (zero without them).
    pub(super) tail: Duration,
}

#[derive(Default)]
pub(super) struct Cycles {
    pub(super) add: Vec<Duration>,
    pub(super) check: Vec<Duration>,
    pub(super) check_failed: usize,
    pub(super) del: Vec<Duration>,
    pub(super) bridge: Vec<Duration>,
    pub(super) portmap: Vec<Duration>,
    /// Only cycles whose chain has `extra` plugins.
    pub(super) tail: Vec<Duration>,
}

impl Cycles {
    pub(super) fn push(&mut self, c: Cycle) {
        self.add.push(c.add);
        match c.check {
            Some(d) => self.check.push(d),
            None => self.check_failed += 1,
        }
        self.del.push(c.del);
        self.bridge.push(c.bridge);
        self.portmap.push(c.portmap);
        if !c.tail.is_zero() {
            self.tail.push(c.tail);
        }
    }
}

/// Run `f` for each implementation in a rotating order, `runs` times: ours and theirs take
/// turns going first, so drifting load hits both alike.
pub(super) fn interleave<T>(
    items: &mut [T],
    runs: usize,
    mut f: impl FnMut(&mut T, usize) -> Result<()>,
) -> Result<()> {
    let n = items.len();
    for i in 0..runs {
        for k in 0..n {
            let idx = if i % 2 == 0 { k } else { n - 1 - k };
            f(&mut items[idx], i)?;
        }
    }
    Ok(())
}

/// Let the machine settle between sections. Also wait until the kernel has finished cleaning up
/// the network namespaces a section deleted:
/// that cleanup runs in the background, holds the rtnl lock, and would slow the next section's
/// measurements down. The count of allocated namespace objects stops falling when it is done.
pub(super) fn settle() {
    // Write back what the section left dirty (host-local's stores are thousands of files), so
    // the journal does not flush in the middle of the next section's measurements.
    let _ = std::process::Command::new("sync").status();
    let count = || -> Option<u64> {
        let slab = std::fs::read_to_string("/proc/slabinfo").ok()?;
        let line = slab.lines().find(|l| l.starts_with("net_namespace "))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    let Some(mut last) = count() else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stable = 0;
    while stable < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let now = count().unwrap_or(last);
        if now < last {
            stable = 0;
        } else {
            stable += 1;
        }
        last = now;
    }
}

/// Wait until a node is quiet: pods that were just created send IPv6 duplicate-address
/// detection, MLD reports and router solicitations for several seconds, and a bridge floods
/// them to every port, so right after creating hundreds of pods the node is busy forwarding
/// their start-up chatter. A node whose pods came up over time is not; measure that state.
/// Quiet: fewer than 50 packets a second through all its interfaces (or 30 s passed).
pub(super) fn settle_node(node: &TempNetns) {
    let packets = || -> u64 {
        node.run(|| {
            std::fs::read_to_string("/proc/thread-self/net/dev")
                .unwrap_or_default()
                .lines()
                .skip(2)
                .filter_map(|l| l.split(':').nth(1))
                .map(|f| {
                    let v: Vec<u64> = f
                        .split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect();
                    v.get(1).copied().unwrap_or(0) + v.get(9).copied().unwrap_or(0)
                })
                .sum()
        })
        .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = packets();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        let now = packets();
        if now.saturating_sub(last) < 50 {
            return;
        }
        last = now;
    }
}
