//! The measured scenarios and the report.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cni_proto::exec::{Exec, InProcessExec, ProcessExec};
use cni_proto::runtime::{CniConfig, RuntimeConf};
use cni_proto::{Command, Env};
use cni_testkit::bins::CniPathDir;
use cni_testkit::{TempDir, TempNetns};
use cni_types::{Error as CniError, NetConfList};
use serde_json::json;

use crate::Opts;
use crate::measure::{self, Call, Stats, ms};
use crate::svg::{Series, line_chart};

mod bandwidth;
mod firewall;
mod small;

const PLUGINS: [&str; 8] = [
    "bridge",
    "host-local",
    "portmap",
    "loopback",
    "static",
    "tuning",
    "bandwidth",
    "firewall",
];

/// One line of a table: a figure for ours and for the reference, and reference / ours.
struct Row {
    what: String,
    ours: Option<Stats>,
    reference: Option<Stats>,
    note: String,
}

struct Section {
    title: &'static str,
    intro: String,
    rows: Vec<Row>,
}

struct Goal {
    text: String,
    measured: String,
    met: bool,
}

/// Chain ADD medians at one pod count, for the chart.
#[derive(Clone, Copy)]
struct ScalePoint {
    pods: usize,
    ours_nft: Duration,
    ours_ipt: Duration,
    go: Duration,
    portmap_nft: Duration,
    portmap_go: Duration,
    bridge_nft: Duration,
    bridge_go: Duration,
}

/// Everything measured in one run.
pub struct Report {
    quick: bool,
    header: String,
    sections: Vec<Section>,
    goals: Vec<Goal>,
    scale: Vec<ScalePoint>,
    sizes: Vec<(String, u64, u64)>,
    failed: Vec<String>,
}

/// `a` over `b`: how many times faster ours is (reference, ours), or how much a figure grew
/// (at N, at 0).
fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

/// The growth of each implementation, as the goals report it.
fn growth_text(nft: f64, ipt: f64, reference: f64) -> String {
    format!("nftables {nft:.2}x, iptables (default) {ipt:.2}x, reference {reference:.2}x")
}

fn stat_cell(s: &Option<Stats>) -> String {
    match s {
        Some(s) if s.n > 0 => format!("{} ({} / {})", ms(s.median), ms(s.p90), ms(s.max)),
        _ => "–".into(),
    }
}

impl Report {
    fn section(&mut self, title: &'static str, intro: impl Into<String>) -> &mut Section {
        self.sections.push(Section {
            title,
            intro: intro.into(),
            rows: Vec::new(),
        });
        let last = self.sections.len() - 1;
        &mut self.sections[last]
    }

    fn goal(&mut self, text: impl Into<String>, measured: impl Into<String>, met: bool) {
        self.goals.push(Goal {
            text: text.into(),
            measured: measured.into(),
            met,
        });
    }

    /// The markdown report.
    pub fn markdown(&self, took: Duration) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.header);
        let _ = writeln!(
            s,
            "Run took {:.0} s{}. Times are wall clock from spawn to exit, in ms: median \
             (p90 / max). \"ref / ours\" is the reference's median over ours: how many times \
             faster ours is.\n",
            took.as_secs_f64(),
            if self.quick { " (`--quick`)" } else { "" }
        );
        for f in &self.failed {
            let _ = writeln!(s, "**Section failed**: {f}\n");
        }
        let _ = writeln!(s, "## Goals\n");
        let _ = writeln!(s, "| goal | measured | |\n|---|---|---|");
        for g in &self.goals {
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                g.text,
                g.measured,
                if g.met { "met" } else { "**missed**" }
            );
        }
        for sec in &self.sections {
            let _ = writeln!(s, "\n## {}\n\n{}\n", sec.title, sec.intro);
            if sec.title == "Scale" {
                self.scale_table(&mut s);
            }
            if sec.rows.is_empty() {
                continue;
            }
            let _ = writeln!(s, "| | ours | reference | ref / ours |\n|---|---|---|---|");
            for r in &sec.rows {
                let rat = match (&r.ours, &r.reference) {
                    (Some(o), Some(g)) if o.n > 0 && g.n > 0 => {
                        format!("{:.1}x", ratio(g.median, o.median))
                    }
                    _ => r.note.clone(),
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    r.what,
                    stat_cell(&r.ours),
                    stat_cell(&r.reference),
                    rat
                );
            }
        }
        if !self.sizes.is_empty() {
            let _ = writeln!(
                s,
                "\n## Binary sizes\n\n| binary | ours (KiB) | reference (KiB) | ref / ours |\n|---|---|---|---|"
            );
            for (n, o, g) in &self.sizes {
                let _ = writeln!(
                    s,
                    "| {n} | {} | {} | {:.1}x |",
                    o / 1024,
                    g / 1024,
                    *g as f64 / (*o).max(1) as f64
                );
            }
        }
        s
    }

    fn scale_table(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "| pods on the node | chain ADD, ours with nftables | chain ADD, ours with iptables (default) | chain ADD, reference | ref / ours (nftables) | bridge + host-local alone: ours (nftables) / reference | portmap alone: ours (nftables) / reference |\n|---|---|---|---|---|---|---|"
        );
        for p in &self.scale {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.1}x | {} / {} | {} / {} |",
                p.pods,
                ms(p.ours_nft),
                ms(p.ours_ipt),
                ms(p.go),
                ratio(p.go, p.ours_nft),
                ms(p.bridge_nft),
                ms(p.bridge_go),
                ms(p.portmap_nft),
                ms(p.portmap_go)
            );
        }
    }

    /// The chart of chain ADD latency against pods on the node.
    pub fn chart(&self) -> String {
        let pts = |f: &dyn Fn(&ScalePoint) -> Duration| -> Vec<(f64, f64)> {
            self.scale
                .iter()
                .map(|p| (p.pods as f64, f(p).as_secs_f64() * 1000.0))
                .collect()
        };
        line_chart(
            "bridge + host-local + portmap ADD, median per pod count",
            "pods already on the node (each with a port mapping)",
            "ms",
            &[
                Series {
                    name: "reference (Go)".into(),
                    color: "#d95f02",
                    points: pts(&|p| p.go),
                },
                Series {
                    name: "ours, iptables".into(),
                    color: "#7570b3",
                    points: pts(&|p| p.ours_ipt),
                },
                Series {
                    name: "ours, nftables".into(),
                    color: "#1b9e77",
                    points: pts(&|p| p.ours_nft),
                },
            ],
        )
    }
}

/// Where the binaries are.
struct Bins {
    ours: CniPathDir,
    go: PathBuf,
}

impl Bins {
    fn find(opts: &Opts) -> Result<Bins> {
        let ours_dir = match &opts.ours_dir {
            Some(d) => d.clone(),
            None => cni_testkit::bins::bin_dir().context("no directory of built binaries")?,
        };
        let mut ours = CniPathDir::new()?;
        for p in PLUGINS {
            let bin = ours_dir.join(p);
            if !bin.is_file() {
                bail!(
                    "{} is missing: run `cargo build --release --workspace --bins` first",
                    bin.display()
                );
            }
            ours = ours.link(p, &bin)?;
        }
        for p in PLUGINS {
            if !opts.go_dir.join(p).is_file() {
                bail!(
                    "{}/{p} is missing: install Debian's containernetworking-plugins",
                    opts.go_dir.display()
                );
            }
        }
        Ok(Bins {
            ours,
            go: opts.go_dir.clone(),
        })
    }
}

/// Which implementation and firewall backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    /// Ours with its default backend (iptables, as the reference).
    OursIpt,
    /// Ours with `ipMasqBackend`/`backend` = nftables.
    OursNft,
    /// The Go reference plugins.
    Go,
}

impl Impl {
    fn dir(self, b: &Bins) -> &Path {
        match self {
            Impl::Go => &b.go,
            _ => b.ours.path(),
        }
    }
}

/// Records how long each plugin process of a chain took.
struct TimedExec {
    log: Mutex<Vec<(String, Duration)>>,
}

impl TimedExec {
    fn new() -> Arc<TimedExec> {
        Arc::new(TimedExec {
            log: Mutex::new(Vec::new()),
        })
    }

    fn take(&self) -> Vec<(String, Duration)> {
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
fn conflist(
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
struct ChainNode {
    imp: Impl,
    node: TempNetns,
    list: NetConfList,
    cni: CniConfig,
    timed: Arc<TimedExec>,
    pods: Vec<(TempNetns, RuntimeConf)>,
    /// Pod namespaces made before a measurement, and those used by it: deleting a namespace
    /// makes the kernel clean it up in the background, which must not overlap what is timed.
    spare: Vec<TempNetns>,
    used: Vec<TempNetns>,
    _data: TempDir,
    _cache: TempDir,
    seq: usize,
}

impl ChainNode {
    fn new(imp: Impl, bins: &Bins) -> Result<ChainNode> {
        ChainNode::with_extra(imp, bins, &[])
    }

    /// A node whose chain ends with the `extra` plugins.
    fn with_extra(imp: Impl, bins: &Bins, extra: &[serde_json::Value]) -> Result<ChainNode> {
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

    fn runtime_conf(&mut self, pod: &TempNetns) -> RuntimeConf {
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
    fn populate_one(&mut self) -> Result<()> {
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
    fn reserve(&mut self, n: usize) -> Result<()> {
        for _ in 0..n {
            self.spare.push(TempNetns::new("bench-pod")?);
        }
        Ok(())
    }

    /// Delete the namespaces the measurements used.
    fn release(&mut self) {
        self.used.clear();
    }

    /// ADD (timed: whole chain and per plugin), CHECK (timed), DEL (timed) of a fresh pod.
    fn cycle(&mut self, check: bool) -> Result<Cycle> {
        let pod = match self.spare.pop() {
            Some(p) => p,
            None => TempNetns::new("bench-pod")?,
        };
        let rt = self.runtime_conf(&pod);
        let (cni, list) = (&self.cni, &self.list);
        let (add, check_t, del) = self.node.run(|| -> Result<_> {
            let t = Instant::now();
            let res = cni.add_network_list(list, &rt)?;
            let add = t.elapsed();
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
            Ok((add, check_t, t.elapsed()))
        })??;
        self.used.push(pod);
        let log = self.timed.take();
        let per = |ty: &str| {
            log.iter()
                .find(|(t, _)| t == ty)
                .map(|(_, d)| *d)
                .unwrap_or_default()
        };
        Ok(Cycle {
            add,
            check: check_t,
            del,
            bridge: per("bridge"),
            portmap: per("portmap"),
            tuning: per("tuning"),
            bandwidth: per("bandwidth"),
            firewall: per("firewall"),
        })
    }
}

struct Cycle {
    add: Duration,
    check: Option<Duration>,
    del: Duration,
    bridge: Duration,
    portmap: Duration,
    /// Zero when the chain has no tuning.
    tuning: Duration,
    /// Zero when the chain has no bandwidth.
    bandwidth: Duration,
    /// Zero when the chain has no firewall.
    firewall: Duration,
}

#[derive(Default)]
struct Cycles {
    add: Vec<Duration>,
    check: Vec<Duration>,
    check_failed: usize,
    del: Vec<Duration>,
    bridge: Vec<Duration>,
    portmap: Vec<Duration>,
    tuning: Vec<Duration>,
    bandwidth: Vec<Duration>,
    firewall: Vec<Duration>,
}

impl Cycles {
    fn push(&mut self, c: Cycle) {
        self.add.push(c.add);
        match c.check {
            Some(d) => self.check.push(d),
            None => self.check_failed += 1,
        }
        self.del.push(c.del);
        self.bridge.push(c.bridge);
        self.portmap.push(c.portmap);
        if !c.tuning.is_zero() {
            self.tuning.push(c.tuning);
        }
        if !c.bandwidth.is_zero() {
            self.bandwidth.push(c.bandwidth);
        }
        if !c.firewall.is_zero() {
            self.firewall.push(c.firewall);
        }
    }
}

/// Run `f` for each implementation in a rotating order, `runs` times: ours and theirs take
/// turns going first, so drifting load hits both alike.
fn interleave<T>(
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
fn settle() {
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
fn settle_node(node: &TempNetns) {
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

fn wanted(opts: &Opts, section: &str) -> bool {
    opts.only.is_empty() || opts.only.iter().any(|s| s == section)
}

fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let kernel = read("/proc/sys/kernel/osrelease");
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let load = read("/proc/loadavg");
    let model = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("")
        .trim()
        .to_string();
    format!(
        "Machine: {cpus} CPUs ({model}), kernel {}, load average at start {}",
        kernel.trim(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// Run every wanted section.
pub fn run_all(opts: &Opts) -> Result<Report> {
    if !cni_testkit::require_root() {
        bail!("cni-bench needs root (network namespaces, bridges, firewall rules)");
    }
    let bins = Bins::find(opts)?;
    let runs = opts.runs.unwrap_or(if opts.quick { 8 } else { 40 });
    let pods: Vec<usize> = if !opts.pods.is_empty() {
        opts.pods.clone()
    } else if opts.quick {
        vec![0, 50, 100]
    } else {
        vec![0, 100, 250, 500, 1000]
    };
    let mut r = Report {
        quick: opts.quick,
        header: format!(
            "# Benchmark: ours against the Go reference plugins\n\n{}. Reference: the Go \
             plugins in `{}` (Debian `containernetworking-plugins`). Ours: `{}`.",
            machine(),
            bins.go.display(),
            std::fs::read_link(bins.ours.plugin("bridge"))
                .map(|p| p.parent().unwrap_or(Path::new("")).display().to_string())
                .unwrap_or_default()
        ),
        sections: Vec::new(),
        goals: Vec::new(),
        scale: Vec::new(),
        sizes: Vec::new(),
        failed: Vec::new(),
    };
    let existing = if opts.quick { 2000 } else { 10_000 };
    let mapped: Vec<usize> = if opts.quick {
        vec![0, 100]
    } else {
        vec![0, 250, 1000]
    };
    let scale_samples = (runs / 4).max(3);
    let rounds = if opts.quick { 1 } else { 3 };
    type Step<'a> = (
        &'static str,
        &'static str,
        Box<dyn Fn(&mut Report) -> Result<()> + 'a>,
    );
    let steps: Vec<Step<'_>> = vec![
        (
            "process",
            "process cost (VERSION, sizes)",
            Box::new(|r| process(r, &bins, runs * 5)),
        ),
        (
            "hostlocal",
            "host-local ADD with 0 and many reservations",
            Box::new(|r| hostlocal(r, &bins, runs, existing)),
        ),
        (
            "bridge",
            "bridge + host-local ADD and DEL",
            Box::new(|r| bridge(r, &bins, runs)),
        ),
        (
            "portmap",
            "portmap ADD with 0 to 1000 containers mapped",
            Box::new(|r| portmap(r, &bins, runs, &mapped)),
        ),
        (
            "chain",
            "chain ADD / CHECK / DEL through a conflist",
            Box::new(|r| chain(r, &bins, runs)),
        ),
        (
            "small",
            "loopback, static and tuning",
            Box::new(|r| small::small(r, &bins, runs)),
        ),
        (
            "bandwidth",
            "bandwidth in a chain",
            Box::new(|r| bandwidth::bandwidth(r, &bins, (runs / 2).max(3))),
        ),
        (
            "firewall",
            "firewall in a chain, 0 and many pods on the node",
            Box::new(|r| firewall::firewall(r, &bins, (runs / 2).max(3), opts.quick)),
        ),
        (
            "concurrency",
            "32 ADDs at once",
            Box::new(|r| concurrency(r, &bins, rounds)),
        ),
        (
            "scale",
            "chain ADD against pods on the node",
            Box::new(|r| scale(r, &bins, &pods, scale_samples)),
        ),
    ];
    for (key, title, f) in steps {
        if !(wanted(opts, key) || (key == "bridge" && wanted(opts, "floor"))) {
            continue;
        }
        eprintln!("cni-bench: {title}");
        let t = Instant::now();
        // A section that fails is reported, and the others still run.
        if let Err(e) = f(&mut r) {
            eprintln!("cni-bench: {title} failed: {e:#}");
            r.failed.push(format!("{title}: {e:#}"));
        }
        eprintln!("cni-bench: {title}: {:.0} s", t.elapsed().as_secs_f64());
        settle();
    }
    Ok(r)
}

fn process(r: &mut Report, bins: &Bins, runs: usize) -> Result<()> {
    let stdin = br#"{"cniVersion":"1.0.0"}"#;
    let call = |p: &Path| -> Result<Duration> {
        let c = Call {
            plugin: p,
            command: "VERSION",
            container_id: "",
            netns: "",
            ifname: "",
            cni_path: "",
            stdin,
        };
        measure::run(&c)
    };
    let mut rows = Vec::new();
    let mut floor = Vec::new();
    for p in PLUGINS {
        let ours = bins.ours.plugin(p);
        let go = bins.go.join(p);
        let mut pair = [(ours.clone(), Vec::new()), (go.clone(), Vec::new())];
        interleave(&mut pair, runs, |(bin, v), _| {
            v.push(call(bin)?);
            Ok(())
        })?;
        for _ in 0..runs / 5 {
            floor.push(call(Path::new("/bin/true"))?);
        }
        let (o, g) = (Stats::of(&pair[0].1), Stats::of(&pair[1].1));
        r.goal(
            format!("`{p}` answers VERSION in at most 1.5 ms (issue #2)"),
            format!("{} ms median", ms(o.median)),
            o.median <= Duration::from_micros(1500),
        );
        rows.push(Row {
            what: format!("`{p}` VERSION"),
            ours: Some(o),
            reference: Some(g),
            note: String::new(),
        });
        let size = |q: &Path| std::fs::metadata(q).map(|m| m.len()).unwrap_or(0);
        r.sizes.push((p.to_string(), size(&ours), size(&go)));
    }
    rows.push(Row {
        what: "`/bin/true` (the floor of a process)".into(),
        ours: Some(Stats::of(&floor)),
        reference: None,
        note: String::new(),
    });
    r.section(
        "Process cost",
        "One `VERSION` call per process, as runtimes probe every plugin when they load networks.",
    )
    .rows = rows;
    Ok(())
}

fn hostlocal(r: &mut Report, bins: &Bins, runs: usize, existing: usize) -> Result<()> {
    let mut rows = Vec::new();
    let mut medians = Vec::new();
    for n in [0, existing] {
        // Each implementation gets its own store with `n` reservations in a /16, in the
        // on-disk format both share.
        let mut stores = Vec::new();
        for imp in [Impl::OursIpt, Impl::Go] {
            let dir = TempDir::new("bench-hl")?;
            let net = dir.path().join("benchnet");
            std::fs::create_dir_all(&net)?;
            for i in 0..n {
                let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 100, 0, 2)) + i as u32);
                std::fs::write(net.join(ip.to_string()), format!("pre-{i}\r\neth0"))?;
            }
            if n > 0 {
                let last = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 100, 0, 1)) + n as u32);
                std::fs::write(net.join("last_reserved_ip.0"), last.to_string())?;
            }
            let conf = json!({"cniVersion": "1.0.0", "name": "benchnet", "type": "bridge",
                "ipam": {"type": "host-local", "dataDir": dir.path(),
                         "ranges": [[{"subnet": "10.100.0.0/16"}]]}})
            .to_string();
            stores.push((imp, dir, conf, Vec::new()));
        }
        interleave(&mut stores, runs, |(imp, _dir, conf, v), i| {
            let plugin = imp.dir(bins).join("host-local");
            let id = format!("hl-{i}");
            let mut c = Call {
                plugin: &plugin,
                command: "ADD",
                container_id: &id,
                netns: "/var/run/netns/cni-bench-none",
                ifname: "eth0",
                cni_path: "/nonexistent",
                stdin: conf.as_bytes(),
            };
            v.push(measure::run(&c)?);
            c.command = "DEL";
            measure::run(&c)?;
            Ok(())
        })?;
        let (o, g) = (Stats::of(&stores[0].3), Stats::of(&stores[1].3));
        medians.push((o.median, g.median));
        rows.push(Row {
            what: format!("ADD with {n} reservations"),
            ours: Some(o),
            reference: Some(g),
            note: String::new(),
        });
    }
    let (o0, g0) = medians[0];
    let (on, gn) = medians[1];
    r.goal(
        "host-local ADD at most a third of the reference's (issue #3)",
        format!(
            "{:.2}x at 0, {:.2}x at {existing}",
            o0.as_secs_f64() / g0.as_secs_f64(),
            on.as_secs_f64() / gn.as_secs_f64()
        ),
        o0 * 3 <= g0 && on * 3 <= gn,
    );
    r.goal(
        format!("host-local ADD at {existing} reservations at most 1.2x ADD at 0 (issue #3)"),
        format!("{:.2}x", on.as_secs_f64() / o0.as_secs_f64()),
        on.as_secs_f64() <= 1.2 * o0.as_secs_f64(),
    );
    r.section(
        "host-local",
        format!(
            "One ADD per process into a /16, each implementation on its own store, released \
             (untimed) after each run. The {existing} reservations are files in the format both \
             share."
        ),
    )
    .rows = rows;
    Ok(())
}

struct BridgeNode {
    imp: Impl,
    node: TempNetns,
    _data: TempDir,
    conf: String,
    add: Vec<Duration>,
    del: Vec<Duration>,
    rss: u64,
}

impl BridgeNode {
    /// ADD of container `id` in `pod` from the node, through `add` (which runs the call and
    /// measures what it wants), then a DEL whose wall time is returned with it.
    fn add_then_del<T>(
        &self,
        bins: &Bins,
        id: &str,
        pod: &TempNetns,
        add: impl FnOnce(&Call<'_>) -> Result<T> + Send,
    ) -> Result<(T, Duration)>
    where
        T: Send,
    {
        let plugin = self.imp.dir(bins).join("bridge");
        let dir = self.imp.dir(bins).display().to_string();
        let netns = pod.path().display().to_string();
        self.node.run(|| -> Result<_> {
            let mut c = Call {
                plugin: &plugin,
                command: "ADD",
                container_id: id,
                netns: &netns,
                ifname: "eth0",
                cni_path: &dir,
                stdin: self.conf.as_bytes(),
            };
            let a = add(&c)?;
            c.command = "DEL";
            Ok((a, measure::run(&c)?))
        })?
    }
}

fn bridge(r: &mut Report, bins: &Bins, runs: usize) -> Result<()> {
    let mut nodes = Vec::new();
    for imp in [Impl::OursIpt, Impl::Go] {
        let node = TempNetns::new("bench-node")?;
        let data = TempDir::new("bench-ipam")?;
        let conf = json!({"cniVersion": "1.0.0", "name": "benchnet", "type": "bridge",
            "bridge": "cni0", "isGateway": true,
            "ipam": {"type": "host-local", "dataDir": data.path(),
                     "ranges": [[{"subnet": "10.22.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}})
        .to_string();
        nodes.push(BridgeNode {
            imp,
            node,
            _data: data,
            conf,
            add: Vec::new(),
            del: Vec::new(),
            rss: 0,
        });
    }
    // Pods stay until the end: deleting a namespace makes the kernel clean it up in the
    // background, which must not overlap the next timed call.
    let mut keep = Vec::new();
    let mut used = Vec::new();
    for _ in 0..runs * 2 {
        keep.push(TempNetns::new("bench-pod")?);
    }
    interleave(&mut nodes, runs, |n, i| {
        let pod = keep.pop().context("pods")?;
        let (a, d) = n.add_then_del(bins, &format!("br-{i}"), &pod, measure::run)?;
        n.add.push(a);
        n.del.push(d);
        used.push(pod);
        Ok(())
    })?;
    drop(used);
    // Peak RSS, through the small launcher (a child of this big process would report ours).
    interleave(&mut nodes, 5, |n, i| {
        let pod = TempNetns::new("bench-pod")?;
        let (rss, _) = n.add_then_del(bins, &format!("rss-{i}"), &pod, measure::peak_rss)?;
        n.rss = n.rss.max(rss);
        Ok(())
    })?;
    let (oa, ga) = (Stats::of(&nodes[0].add), Stats::of(&nodes[1].add));
    let (od, gd) = (Stats::of(&nodes[0].del), Stats::of(&nodes[1].del));
    r.goal(
        "bridge + host-local ADD at most a fifth of the reference's (issue #4)",
        format!("{:.2}x", oa.median.as_secs_f64() / ga.median.as_secs_f64()),
        oa.median * 5 <= ga.median,
    );
    r.goal(
        "bridge + host-local DEL at most half of the reference's (issues #4, #7)",
        format!("{:.2}x", od.median.as_secs_f64() / gd.median.as_secs_f64()),
        od.median * 2 <= gd.median,
    );
    r.goal(
        "peak RSS of an ADD at most half of the reference's (issues #4, #7)",
        format!(
            "{} KiB against {} KiB ({:.2}x)",
            nodes[0].rss,
            nodes[1].rss,
            nodes[0].rss as f64 / nodes[1].rss.max(1) as f64
        ),
        nodes[0].rss * 2 <= nodes[1].rss,
    );

    // The floor: the same ADD through our library in-process (IPAM in-process too).
    let floor = {
        let node = TempNetns::new("bench-floor")?;
        let data = TempDir::new("bench-ipam")?;
        let conf = nodes[0].conf.replace(
            &nodes[0]._data.path().display().to_string(),
            &data.path().display().to_string(),
        );
        let bconf = cni_bridge::BridgeConf::parse(conf.as_bytes(), "")?;
        let exec = Arc::new(InProcessExec::new().with_plugin(
            "host-local",
            Arc::new(cni_ipam_hostlocal_plugin()) as Arc<dyn cni_proto::skel::Plugin + Send + Sync>,
        ));
        let mut samples = Vec::new();
        for i in 0..runs {
            let pod = TempNetns::new("bench-pod")?;
            let att = cni_bridge::Attachment::new(
                format!("floor-{i}"),
                "eth0",
                Some(pod.path().to_path_buf()),
                "/nonexistent",
            );
            let d = node.run(|| -> Result<Duration> {
                let mut deps = cni_bridge::Deps::system();
                deps.exec = exec.clone();
                let t = Instant::now();
                cni_bridge::add(&bconf, &att, &mut deps)?;
                let d = t.elapsed();
                cni_bridge::del(&bconf, &att, &mut deps)?;
                Ok(d)
            })??;
            samples.push(d);
        }
        Stats::of(&samples)
    };
    r.section(
        "bridge + host-local",
        "ADD then DEL of one pod per run (each in its own pod namespace) on one bridge, with \
         `isGateway` and host-local IPAM, no masquerade. Peak RSS is the largest resident set \
         `wait4` reported for an ADD (the bridge process and the host-local it ran), started \
         from a small launcher (`cni-bench-rss`) so that the benchmark's own memory does not \
         count. The last \
         row is the floor: the same ADD through our library in-process, no process started \
         at all.",
    )
    .rows = vec![
        Row {
            what: "ADD".into(),
            ours: Some(oa),
            reference: Some(ga),
            note: String::new(),
        },
        Row {
            what: "DEL".into(),
            ours: Some(od),
            reference: Some(gd),
            note: String::new(),
        },
        Row {
            what: format!(
                "peak RSS of ADD: ours {} KiB, reference {} KiB",
                nodes[0].rss, nodes[1].rss
            ),
            ours: None,
            reference: None,
            note: format!("{:.1}x", nodes[1].rss as f64 / nodes[0].rss.max(1) as f64),
        },
        Row {
            what: "ADD in-process through the library (the floor)".into(),
            ours: Some(floor),
            reference: None,
            note: String::new(),
        },
    ];
    Ok(())
}

fn cni_ipam_hostlocal_plugin() -> cni_ipam_hostlocal::HostLocal {
    cni_ipam_hostlocal::HostLocal
}

/// A node for portmap alone: a bridge with a route towards the fake containers (for
/// `route_localnet`), and the containers mapped on it so far.
struct PortmapNode {
    node: TempNetns,
    mapped: usize,
}

impl PortmapNode {
    fn new() -> Result<PortmapNode> {
        let node = TempNetns::new("bench-node")?;
        let mut nl = node.netlink()?;
        let br = nl.add_bridge(
            "cni0",
            &cni_linux::netlink::BridgeOptions {
                up: true,
                ..Default::default()
            },
        )?;
        nl.addr_add(
            br.index,
            "10.33.0.1/16".parse()?,
            cni_linux::netlink::AddrFlags::NONE,
        )?;
        Ok(PortmapNode { node, mapped: 0 })
    }

    /// Run portmap `command` for one container with one TCP mapping, prevResult given as a
    /// chain would; the wall time of the process.
    fn call(
        &self,
        plugin: &Path,
        nftables: bool,
        command: &str,
        id: &str,
        ip: Ipv4Addr,
        host_port: u32,
    ) -> Result<Duration> {
        let conf = json!({"cniVersion": "1.0.0", "name": "benchnet", "type": "portmap",
            "backend": if nftables { "nftables" } else { "iptables" },
            "runtimeConfig": {"portMappings": [{"hostPort": host_port, "containerPort": 80, "protocol": "tcp"}]},
            "prevResult": {"cniVersion": "1.0.0",
                "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/x"}],
                "ips": [{"address": format!("{ip}/16"), "gateway": "10.33.0.1", "interface": 0}]}})
        .to_string();
        self.node.run(|| -> Result<Duration> {
            let c = Call {
                plugin,
                command,
                container_id: id,
                netns: "/var/run/netns/x",
                ifname: "eth0",
                cni_path: "/nonexistent",
                stdin: conf.as_bytes(),
            };
            measure::run(&c)
        })?
    }

    /// Map containers with our portmap until `count` are mapped (10.33.16.0 upwards, host
    /// ports from 30000).
    fn populate(&mut self, plugin: &Path, nftables: bool, count: usize) -> Result<()> {
        while self.mapped < count {
            let k = self.mapped as u32;
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 33, 16, 0)) + k);
            self.call(
                plugin,
                nftables,
                "ADD",
                &format!("mapped-{k}"),
                ip,
                30000 + k,
            )
            .context("populate")?;
            self.mapped += 1;
        }
        Ok(())
    }
}

fn portmap(r: &mut Report, bins: &Bins, runs: usize, counts: &[usize]) -> Result<()> {
    // Two nodes. One runs ours with nftables. The other is populated by ours with the iptables
    // backend (the reference's chains and rules, byte for byte) and is measured with ours
    // (iptables) and with the Go portmap, taking turns.
    let mut nft = PortmapNode::new()?;
    let mut ipt = PortmapNode::new()?;
    let ours = bins.ours.plugin("portmap");
    let go = bins.go.join("portmap");
    // 0: ours nftables, 1: ours iptables, 2: reference; one row of samples per pod count.
    let mut medians: Vec<(usize, [Stats; 3])> = Vec::new();
    let mut first: Option<[Stats; 3]> = None;
    let mut seq = 0u32;
    for (level, &count) in counts.iter().enumerate() {
        nft.populate(&ours, true, count)?;
        ipt.populate(&ours, false, count)?;
        settle();
        // Every figure at 0 mappings gets the full sample count: it is also the one-mapping goal.
        let samples = if level == 0 { runs } else { (runs / 2).max(3) };
        let mut v: [Vec<Duration>; 3] = Default::default();
        interleave(&mut [0usize, 1, 2], samples, |&mut which, _| {
            seq += 1;
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 33, 1, 0)) + (seq % 3000));
            let port = 20000 + (seq % 9000);
            let id = format!("pm-{seq}");
            let (node, plugin, nftables) = match which {
                0 => (&nft, &ours, true),
                1 => (&ipt, &ours, false),
                _ => (&ipt, &go, false),
            };
            v[which].push(node.call(plugin, nftables, "ADD", &id, ip, port)?);
            node.call(plugin, nftables, "DEL", &id, ip, port)?;
            Ok(())
        })?;
        let stats = [Stats::of(&v[0]), Stats::of(&v[1]), Stats::of(&v[2])];
        if level == 0 {
            first = Some(stats);
        }
        medians.push((count, stats));
    }
    let Some([n, i, g]) = first else {
        bail!("no pod counts");
    };
    r.goal(
        "portmap ADD with one mapping at most a tenth of the reference's (issue #5)",
        format!(
            "nftables {:.3}x, iptables (default) {:.3}x",
            n.median.as_secs_f64() / g.median.as_secs_f64(),
            i.median.as_secs_f64() / g.median.as_secs_f64()
        ),
        n.median * 10 <= g.median,
    );
    if let Some((last, [ln, li, lg])) = medians.last().filter(|(c, _)| *c > 0) {
        let nft = ratio(ln.median, n.median);
        r.goal(
            format!(
                "portmap ADD with {last} containers mapped at most 1.3x ADD with none (issue #5)"
            ),
            growth_text(nft, ratio(li.median, i.median), ratio(lg.median, g.median)),
            nft <= 1.3,
        );
    }
    let mut rows = Vec::new();
    for (count, [sn, si, sg]) in &medians {
        let at = if *count == 0 {
            String::from("no other container mapped")
        } else {
            format!("{count} containers mapped")
        };
        rows.push(Row {
            what: format!("ADD, {at}, ours with nftables"),
            ours: Some(*sn),
            reference: Some(*sg),
            note: String::new(),
        });
        rows.push(Row {
            what: format!("ADD, {at}, ours with iptables (the default, as the reference)"),
            ours: Some(*si),
            reference: Some(*sg),
            note: String::new(),
        });
    }
    r.section(
        "portmap",
        "ADD of one container with one TCP mapping (prevResult given, as in a chain), then DEL \
         (untimed), on a node where N other containers are already mapped (each with its own \
         address and host port) and nothing else runs: portmap's own cost as mappings \
         accumulate, apart from the kernel's cost of pods. Ours with nftables has a node of \
         its own; the other node is populated by ours with the iptables backend (the \
         reference's chains and rules, byte for byte) and measured with ours and the Go \
         portmap taking turns.",
    )
    .rows = rows;
    Ok(())
}

fn chain(r: &mut Report, bins: &Bins, runs: usize) -> Result<()> {
    let mut nodes = vec![
        (ChainNode::new(Impl::OursNft, bins)?, Cycles::default()),
        (ChainNode::new(Impl::OursIpt, bins)?, Cycles::default()),
        (ChainNode::new(Impl::Go, bins)?, Cycles::default()),
    ];
    for (n, _) in nodes.iter_mut() {
        n.reserve(runs)?;
    }
    interleave(&mut nodes, runs, |(n, c), _| {
        c.push(n.cycle(true)?);
        Ok(())
    })?;
    for (n, _) in nodes.iter_mut() {
        n.release();
    }
    let st = |i: usize, f: &dyn Fn(&Cycles) -> &Vec<Duration>| Stats::of(f(&nodes[i].1));
    let go_check_failed = nodes[2].1.check_failed;
    let row = |what: &str, i: usize, f: &dyn Fn(&Cycles) -> &Vec<Duration>| Row {
        what: what.into(),
        ours: Some(st(i, f)),
        reference: Some(st(2, f)),
        note: String::new(),
    };
    let mut rows = vec![
        row("ADD, ours with nftables", 0, &|c| &c.add),
        row("ADD, ours with iptables (default)", 1, &|c| &c.add),
        row("DEL, ours with nftables", 0, &|c| &c.del),
        row("DEL, ours with iptables (default)", 1, &|c| &c.del),
    ];
    for (i, label) in [(0, "nftables"), (1, "iptables (default)")] {
        rows.push(Row {
            what: format!("CHECK, ours with {label}"),
            ours: Some(st(i, &|c| &c.check)),
            reference: (go_check_failed == 0).then(|| st(2, &|c| &c.check)),
            note: if go_check_failed > 0 {
                format!(
                    "reference CHECK fails ({go_check_failed}/{runs}: portmap v1.1.1 looks for \
                     IPv6 rules of an IPv4 pod, plugins #819)"
                )
            } else {
                String::new()
            },
        });
    }
    let (on, oi, g) = (st(0, &|c| &c.add), st(1, &|c| &c.add), st(2, &|c| &c.add));
    r.goal(
        "chain ADD at least 10x faster than the reference (issue #7)",
        format!(
            "nftables {:.1}x, iptables (default) {:.1}x",
            ratio(g.median, on.median),
            ratio(g.median, oi.median)
        ),
        ratio(g.median, on.median) >= 10.0,
    );
    r.goal(
        "chain bridge + host-local + portmap ADD at most 12 ms median (issue #5)",
        format!(
            "nftables {} ms, iptables (default) {} ms",
            ms(on.median),
            ms(oi.median)
        ),
        on.median <= Duration::from_millis(12),
    );
    r.section(
        "Chain: bridge (ipMasq) + host-local + portmap through a conflist",
        "ADD, CHECK and DEL of one pod with one port mapping through `cni-proto`'s runtime, \
         which runs each plugin as a process (as libcni does); each figure is the whole chain.",
    )
    .rows = rows;
    Ok(())
}

fn scale(r: &mut Report, bins: &Bins, counts: &[usize], samples: usize) -> Result<()> {
    // Two nodes. One runs ours with nftables. The other is populated by our plugins with the
    // iptables backend, whose rules, reservation files and links are the reference's byte for
    // byte, and is measured with both ours (iptables) and the Go plugins, taking turns: the
    // same node switching plugins, as nodes may. (Running the Go chain a thousand times to
    // populate would take most of the time budget.)
    let mut nft = ChainNode::new(Impl::OursNft, bins)?;
    let mut ipt = ChainNode::new(Impl::OursIpt, bins)?;
    let env = Env::new().with("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    let cache = ipt.cni.cache_dir.clone();
    let go_cni = CniConfig::new(vec![bins.go.clone()])
        .with_base_env(env.clone())
        .with_exec(ipt.timed.clone())
        .with_cache_dir(&cache);
    let ours_cni = ipt.cni.clone();
    for &count in counts {
        while nft.pods.len() < count {
            nft.populate_one()?;
        }
        while ipt.pods.len() < count {
            ipt.populate_one()?;
        }
        eprintln!("cni-bench:   {count} pods");
        settle();
        settle_node(&nft.node);
        settle_node(&ipt.node);
        // 0: ours nftables, 1: ours iptables, 2: reference.
        let mut cycles: [Cycles; 3] = Default::default();
        nft.reserve(samples)?;
        ipt.reserve(2 * samples)?;
        interleave(&mut [0usize, 1, 2], samples, |&mut which, _| {
            let c = match which {
                0 => nft.cycle(false)?,
                1 => {
                    ipt.cni = ours_cni.clone();
                    ipt.cycle(false)?
                }
                _ => {
                    ipt.cni = go_cni.clone();
                    ipt.cycle(false)?
                }
            };
            cycles[which].push(c);
            Ok(())
        })?;
        ipt.cni = ours_cni.clone();
        nft.release();
        ipt.release();
        let med = |i: usize, f: &dyn Fn(&Cycles) -> &Vec<Duration>| Stats::of(f(&cycles[i])).median;
        r.scale.push(ScalePoint {
            pods: count,
            ours_nft: med(0, &|c| &c.add),
            ours_ipt: med(1, &|c| &c.add),
            go: med(2, &|c| &c.add),
            portmap_nft: med(0, &|c| &c.portmap),
            portmap_go: med(2, &|c| &c.portmap),
            bridge_nft: med(0, &|c| &c.bridge),
            bridge_go: med(2, &|c| &c.bridge),
        });
    }
    if let (Some(first), Some(last)) = (r.scale.first(), r.scale.last())
        && last.pods > first.pods
    {
        let (first, last) = (*first, *last);
        r.goal(
            format!(
                "chain ADD at {} pods at most 1.3x ADD at {} (issue #7)",
                last.pods, first.pods
            ),
            growth_text(
                ratio(last.ours_nft, first.ours_nft),
                ratio(last.ours_ipt, first.ours_ipt),
                ratio(last.go, first.go),
            ),
            ratio(last.ours_nft, first.ours_nft) <= 1.3,
        );
        if let Some(mid) = r.scale.iter().find(|p| p.pods >= 500).copied() {
            r.goal(
                format!(
                    "bridge ADD with {} pods at most 1.2x ADD with none (issue #4)",
                    mid.pods
                ),
                format!("{:.2}x", ratio(mid.bridge_nft, first.bridge_nft)),
                ratio(mid.bridge_nft, first.bridge_nft) <= 1.2,
            );
        }
    }
    let intro = String::from(
        "Chain ADD (bridge with ipMasq + host-local + portmap with one mapping) with N pods \
         already on the node, each with its own namespace, veth, address, masquerade rules \
         and port mapping; the pods each measurement uses are made beforehand and deleted \
         afterwards. Ours with nftables has a node of its own. The other node is populated by \
         our plugins with the iptables backend (the reference's rules, reservation files and \
         links, byte for byte) and is measured with ours (iptables) and with the Go plugins, \
         taking turns, as a node switching plugins. The pods already on the node no longer \
         solicit routers, as pods that have been up for a while (the kernel repeats \
         solicitations with a backoff up to an hour, and the bridge floods each to every port: \
         a node whose thousand pods all came up within two minutes measures that storm). \
         Medians; the chart is `docs/bench-scale.svg`.",
    );
    r.section("Scale", intro).rows = Vec::new();
    Ok(())
}

fn concurrency(r: &mut Report, bins: &Bins, rounds: usize) -> Result<()> {
    const N: usize = 32;
    let mut rows = Vec::new();
    let mut per_impl: Vec<(Impl, Vec<Duration>)> = vec![
        (Impl::OursNft, Vec::new()),
        (Impl::OursIpt, Vec::new()),
        (Impl::Go, Vec::new()),
    ];
    let mut all_distinct = true;
    // Failed ADDs per implementation, with the first error.
    let mut failures: Vec<(usize, String)> = vec![(0, String::new()); per_impl.len()];
    let mut round = 0usize;
    interleave(&mut per_impl, rounds, |(imp, v), _| {
        round += 1;
        let slot = match imp {
            Impl::OursNft => 0,
            Impl::OursIpt => 1,
            Impl::Go => 2,
        };
        let mut n = ChainNode::new(*imp, bins)?;
        let pods: Vec<TempNetns> = (0..N)
            .map(|_| TempNetns::new("bench-pod"))
            .collect::<cni_testkit::Result<_>>()?;
        let rts: Vec<RuntimeConf> = pods.iter().map(|p| n.runtime_conf(p)).collect();
        let barrier = Barrier::new(N);
        let (cni, list, node) = (&n.cni, &n.list, &n.node);
        let t = Instant::now();
        let results: Vec<Result<IpAddr>> = std::thread::scope(|s| {
            let hs: Vec<_> = rts
                .iter()
                .map(|rt| {
                    let barrier = &barrier;
                    s.spawn(move || -> Result<IpAddr> {
                        node.run(|| {
                            barrier.wait();
                            let res = cni.add_network_list(list, rt).map_err(|e| {
                                anyhow::anyhow!(cni_types::error::chain_message(&e))
                            })?;
                            Ok(res.ips.first().context("no address")?.address.addr())
                        })?
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("thread panicked")))
                })
                .collect()
        });
        let wall = t.elapsed();
        let mut ips = Vec::new();
        for res in results {
            match res {
                Ok(ip) => ips.push(ip),
                Err(e) => {
                    if failures[slot].0 == 0 {
                        failures[slot].1 = format!("{e:#}");
                    }
                    failures[slot].0 += 1;
                }
            }
        }
        let mut sorted = ips.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != ips.len() {
            all_distinct = false;
        }
        // DEL every pod, as a runtime does after a failed ADD too.
        for rt in &rts {
            let _ = node.run(|| cni.del_network_list(list, rt));
        }
        v.push(wall);
        Ok(())
    })?;
    let attempts = N * round / per_impl.len();
    let g = Stats::of(&per_impl[2].1);
    let failed = |i: usize| {
        if failures[i].0 == 0 {
            String::new()
        } else {
            format!(
                "{} of {attempts} ADDs failed, e.g. `{}`",
                failures[i].0,
                failures[i].1.replace('|', "/")
            )
        }
    };
    for (i, label) in [
        (0, "ours with nftables"),
        (1, "ours with iptables (default)"),
    ] {
        rows.push(Row {
            what: format!("{N} chain ADDs at once, {label}: wall time of all"),
            ours: Some(Stats::of(&per_impl[i].1)),
            reference: Some(g),
            note: String::new(),
        });
    }
    let ours_failed = failures[0].0 + failures[1].0;
    r.goal(
        format!("{N} concurrent ADDs all succeed with {N} distinct addresses (issue #7)"),
        format!(
            "{}{}",
            if all_distinct {
                "all distinct"
            } else {
                "DUPLICATES"
            },
            if ours_failed == 0 {
                String::new()
            } else {
                format!(", {ours_failed} of ours failed")
            }
        ),
        all_distinct && ours_failed == 0,
    );
    for (i, who) in [
        (0, "ours (nftables)"),
        (1, "ours (iptables)"),
        (2, "reference"),
    ] {
        if failures[i].0 > 0 {
            rows.push(Row {
                what: format!("failed ADDs, {who}"),
                ours: None,
                reference: None,
                note: failed(i),
            });
        }
    }
    r.section(
        "Concurrency",
        format!(
            "{N} chain ADDs started at once (a barrier releases {N} threads, each running the \
             whole chain through the runtime for its own pod), on a fresh node per round; wall \
             time until the last one finished. Every round checks that the {N} addresses are \
             distinct."
        ),
    )
    .rows = rows;
    Ok(())
}
