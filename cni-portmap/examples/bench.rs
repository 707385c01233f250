//! Benchmark, not a test: `portmap` ADD, ours against the Go reference (/usr/lib/cni/portmap,
//! v1.1.1, iptables), interleaved runs, medians.
//!
//! ```text
//! cargo build --release -p cni-portmap -p cni-ipam-hostlocal -p cni-bridge --bins
//! cargo run --release -p cni-portmap --example bench-portmap [-- ITERATIONS [PODS]]
//! ```
//!
//! Needs root; everything happens in throw-away namespaces. Measured:
//!
//! 1. ADD of one container with one mapping on an empty node, per implementation (ours with
//!    the nftables backend, ours with the iptables backend, the Go plugin); DEL (untimed)
//!    between runs.
//! 2. The same with 200 and PODS (default 1000) containers already mapped on the node. The
//!    preloaded state is what the plugins themselves produce: for our nftables backend the
//!    library's ADD is run in-process PODS times; for iptables (ours and Go's, which are
//!    byte-identical) the library's ADD plans of all containers are applied in one
//!    `iptables-restore` (running the Go plugin PODS times would take minutes).
//! 3. A whole chain ADD through the runtime (cni-proto, as libcni does it): bridge +
//!    host-local + portmap, ours against the Go plugins.
//!
//! Every process is spawned from a thread inside the node namespace and timed from spawn to
//! exit (wall clock). Because the machine may be shared, the CPU time the plugin and its own
//! children used (user + system, from `getrusage(RUSAGE_CHILDREN)` around the wait) is
//! reported as well: it is what the plugin costs the node, whatever else runs.

#![allow(unsafe_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cni_linux::firewall::{FirewallApplier, System};
use cni_portmap::{FakeHost, PortmapConf, iptables};
use cni_proto::runtime::RuntimeConf;
use cni_testkit::bins::CniPathDir;
use cni_testkit::{ChainRunner, TempDir, TempNetns};
use cni_types::Attachment;
use serde_json::json;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Impl {
    OursNft,
    OursIpt,
    Go,
}

impl Impl {
    const ALL: [Impl; 3] = [Impl::OursNft, Impl::OursIpt, Impl::Go];

    fn name(self) -> &'static str {
        match self {
            Impl::OursNft => "ours (nftables)",
            Impl::OursIpt => "ours (iptables)",
            Impl::Go => "Go v1.1.1 (iptables)",
        }
    }

    fn backend(self) -> &'static str {
        match self {
            Impl::OursNft => "nftables",
            _ => "iptables",
        }
    }
}

fn conf(im: Impl, ip: &str, port: u32, sandbox: &str) -> String {
    // The Go plugin v1.1.1 ignores the unknown `backend` key.
    json!({"cniVersion": "1.0.0", "name": "benchnet", "type": "portmap", "backend": im.backend(),
        "runtimeConfig": {"portMappings": [{"hostPort": port, "containerPort": 80, "protocol": "tcp"}]},
        "prevResult": {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": sandbox}],
                       "ips": [{"address": format!("{ip}/16"), "interface": 0}]}})
    .to_string()
}

/// User + system CPU time of all reaped children of this process so far.
fn children_cpu() -> Duration {
    // SAFETY: getrusage only writes into the zeroed struct we pass; RUSAGE_CHILDREN is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; the pointer is to a live, writable rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// A timed run: wall clock and CPU time.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

/// Runs `bin` with `command` inside `ns`; returns the wall time from spawn to exit and the
/// CPU time it (and its children) used.
fn exec(
    ns: &TempNetns,
    bin: &Path,
    command: &str,
    cid: &str,
    pod: &Path,
    cni_path: &Path,
    stdin: &[u8],
) -> Result<Sample> {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", cid)
        .env("CNI_NETNS", pod)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", cni_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cpu0 = children_cpu();
    let start = Instant::now();
    let mut child = ns.run(|| cmd.spawn())??;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(stdin)?;
    }
    let out = child.wait_with_output()?;
    let elapsed = Sample {
        wall: start.elapsed(),
        cpu: children_cpu().saturating_sub(cpu0),
    };
    if !out.status.success() {
        bail!(
            "{} {command} failed: {}{}",
            bin.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(elapsed)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn p90(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 9 / 10).min(v.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Median wall, p90 wall, median CPU.
fn stats(v: &[Sample]) -> (Duration, Duration, Duration) {
    let wall: Vec<Duration> = v.iter().map(|s| s.wall).collect();
    let cpu: Vec<Duration> = v.iter().map(|s| s.cpu).collect();
    (median(wall.clone()), p90(wall), median(cpu))
}

fn pod_ip(i: u32) -> String {
    let n = i + 2;
    format!("10.{}.{}.{}", 100 + n / 65536, (n / 256) % 256, n % 256)
}

/// Fills `node` with `n` containers (one mapping each, host ports 20000..) as `im` would.
fn preload(node: &TempNetns, im: Impl, n: u32, sandbox: &str) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    match im {
        Impl::OursNft => {
            let res: Result<()> = node.run(|| {
                let mut host = FakeHost::default();
                for i in 0..n {
                    let c = PortmapConf::parse(
                        conf(im, &pod_ip(i), 20000 + i, sandbox).as_bytes(),
                        "eth0",
                        &mut || cni_linux::firewall::Backend::Nftables,
                    )?;
                    let att = Attachment {
                        container_id: format!("preload-{i}"),
                        ifname: "eth0".into(),
                    };
                    cni_portmap::add(&c, &att, &mut System, &mut host)?;
                }
                Ok(())
            })?;
            res
        }
        Impl::OursIpt | Impl::Go => {
            let mut plans = Vec::new();
            for i in 0..n {
                let c = PortmapConf::parse(
                    conf(im, &pod_ip(i), 20000 + i, sandbox).as_bytes(),
                    "eth0",
                    &mut || cni_linux::firewall::Backend::Iptables,
                )?;
                let net = c.container_v4.context("no address")?;
                plans.push(iptables::add_plan(&c, &format!("preload-{i}"), net)?);
            }
            node.run(|| System.apply_iptables(&plans))??;
            Ok(())
        }
    }
}

fn count_state(node: &TempNetns, im: Impl) -> Result<usize> {
    match im {
        Impl::OursNft => {
            let t = node.run(|| {
                cni_linux::firewall::nftables::list_table(
                    cni_linux::firewall::nftables::Family::Ip,
                    cni_portmap::nftables::TABLE,
                )
            })??;
            Ok(
                t.and_then(|t| t.set(cni_portmap::nftables::DNAT).map(|s| s.elements.len()))
                    .unwrap_or(0),
            )
        }
        _ => {
            let text = node.exec_ok("iptables-save", &["-t", "nat"])?.stdout_text();
            Ok(text.lines().filter(|l| l.starts_with(":CNI-DN-")).count())
        }
    }
}

struct Row {
    what: String,
    times: Vec<(Impl, Vec<Sample>)>,
}

fn portmap_bench(iterations: usize, pods: &[u32]) -> Result<Vec<Row>> {
    let dir = CniPathDir::new()?.ours(&["portmap"])?;
    let ours = dir.plugin("portmap");
    let go = cni_testkit::bins::go_plugin("portmap")?;
    let pod = TempNetns::new("bpod")?;
    let sandbox = pod.path().display().to_string();
    let mut rows = Vec::new();
    for &n in pods {
        let nodes: Vec<(Impl, TempNetns)> = Impl::ALL
            .iter()
            .map(|im| Ok((*im, TempNetns::new("bnode")?)))
            .collect::<Result<_>>()?;
        for (im, node) in &nodes {
            preload(node, *im, n, &sandbox)?;
            let have = count_state(node, *im)?;
            if have != n as usize {
                bail!("{}: preloaded {have} containers, expected {n}", im.name());
            }
        }
        let mut times: Vec<(Impl, Vec<Sample>)> =
            Impl::ALL.iter().map(|i| (*i, Vec::new())).collect();
        // Warm-up (page cache, first nf_tables/iptables table setup), then interleaved runs in
        // rotating order.
        for round in 0..iterations + 2 {
            for k in 0..nodes.len() {
                let (im, node) = &nodes[(k + round) % nodes.len()];
                let bin: &Path = if *im == Impl::Go { &go } else { &ours };
                let c = conf(*im, "10.99.0.2", 8080, &sandbox);
                let t = exec(
                    node,
                    bin,
                    "ADD",
                    "bench-ctr",
                    pod.path(),
                    dir.path(),
                    c.as_bytes(),
                )?;
                exec(
                    node,
                    bin,
                    "DEL",
                    "bench-ctr",
                    pod.path(),
                    dir.path(),
                    c.as_bytes(),
                )?;
                if round >= 2
                    && let Some((_, v)) = times.iter_mut().find(|(i, _)| i == im)
                {
                    v.push(t);
                }
            }
        }
        rows.push(Row {
            what: format!("portmap ADD, 1 mapping, {n} containers already mapped"),
            times,
        });
    }
    Ok(rows)
}

fn chain_bench(iterations: usize, masq: bool) -> Result<Row> {
    let ours = CniPathDir::new()?.ours(&["bridge", "host-local", "portmap"])?;
    let go = CniPathDir::new()?.go(&["bridge", "host-local", "portmap"])?;
    let pod = TempNetns::new("bchainpod")?;
    let list = |backend: &str, data: &Path| {
        let mut l = json!({"cniVersion": "1.0.0", "name": "benchchain", "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": masq,
             "ipam": {"type": "host-local", "subnet": "10.77.0.0/16"}},
            {"type": "portmap", "backend": backend, "capabilities": {"portMappings": true}}]});
        cni_testkit::chain::set_ipam_data_dir(&mut l, data);
        l
    };
    let variants: Vec<(Impl, &CniPathDir)> = vec![
        (Impl::OursNft, &ours),
        (Impl::OursIpt, &ours),
        (Impl::Go, &go),
    ];
    let mut setups = Vec::new();
    for (im, dir) in &variants {
        let node = TempNetns::new("bchain")?;
        node.sysctl_set("net.ipv4.ip_forward", "1")?;
        let data = TempDir::new("bchain-ipam")?;
        let ch = ChainRunner::from_json(&list(im.backend(), data.path()), [dir.path()])?
            .in_netns(&node)?;
        setups.push((*im, node, data, ch));
    }
    let rt = RuntimeConf::new("chain-ctr", pod.path().display().to_string(), "eth0")
        .with_capability(
            "portMappings",
            json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
        );
    let mut times: Vec<(Impl, Vec<Sample>)> =
        variants.iter().map(|(i, _)| (*i, Vec::new())).collect();
    for round in 0..iterations + 2 {
        for k in 0..setups.len() {
            let (im, _node, _data, ch) = &setups[(k + round) % setups.len()];
            let cpu0 = children_cpu();
            let start = Instant::now();
            ch.add(&rt)
                .map_err(|e| anyhow::anyhow!("{} chain ADD: {e}", im.name()))?;
            let t = Sample {
                wall: start.elapsed(),
                cpu: children_cpu().saturating_sub(cpu0),
            };
            ch.del(&rt)
                .map_err(|e| anyhow::anyhow!("{} chain DEL: {e}", im.name()))?;
            if round >= 2
                && let Some((_, v)) = times.iter_mut().find(|(i, _)| i == im)
            {
                v.push(t);
            }
        }
    }
    Ok(Row {
        what: format!(
            "chain ADD bridge{} + host-local + portmap (ours: ours; Go: Go's)",
            if masq { " (ipMasq)" } else { "" }
        ),
        times,
    })
}

fn main() -> Result<()> {
    if !cni_testkit::require_root() {
        bail!("the benchmark needs root");
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let iterations: usize = args.first().map(|s| s.parse()).transpose()?.unwrap_or(30);
    let pods: u32 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "portmap benchmark: {iterations} interleaved runs per cell, medians (p90) in ms; {cpus} CPUs; kernel {}",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    );
    let mut rows = portmap_bench(iterations, &[0, 200, pods])?;
    rows.push(chain_bench(iterations, false)?);
    rows.push(chain_bench(iterations, true)?);

    println!();
    println!(
        "Wall clock median (p90) / CPU median, ms; ratios of wall-clock medians to the Go plugin's."
    );
    println!();
    println!(
        "| measurement | ours (nftables) | ours (iptables) | Go v1.1.1 | ours nft / Go | ours ipt / Go |"
    );
    println!("|---|---|---|---|---|---|");
    let mut base: Vec<(Impl, Duration, Duration)> = Vec::new();
    for (idx, row) in rows.iter().enumerate() {
        let st: Vec<(Impl, (Duration, Duration, Duration))> =
            row.times.iter().map(|(im, v)| (*im, stats(v))).collect();
        let get = |im: Impl| {
            st.iter()
                .find(|(i, _)| *i == im)
                .map(|(_, s)| *s)
                .unwrap_or_default()
        };
        let cell = |im: Impl| {
            let (m, p, c) = get(im);
            format!("{} ({}) / {}", ms(m), ms(p), ms(c))
        };
        let go = get(Impl::Go).0.as_secs_f64();
        println!(
            "| {} | {} | {} | {} | {:.3} | {:.3} |",
            row.what,
            cell(Impl::OursNft),
            cell(Impl::OursIpt),
            cell(Impl::Go),
            get(Impl::OursNft).0.as_secs_f64() / go,
            get(Impl::OursIpt).0.as_secs_f64() / go
        );
        if idx == 0 {
            base = st.iter().map(|(im, s)| (*im, s.0, s.2)).collect();
        }
    }
    println!();
    println!(
        "Growth of portmap ADD with the containers already mapped (wall median / wall median with none; CPU likewise):"
    );
    for row in rows
        .iter()
        .filter(|r| r.what.starts_with("portmap ADD"))
        .skip(1)
    {
        let parts: Vec<String> = row
            .times
            .iter()
            .map(|(im, v)| {
                let (m, _, c) = stats(v);
                let (bm, bc) = base
                    .iter()
                    .find(|(i, _, _)| i == im)
                    .map(|(_, m, c)| (*m, *c))
                    .unwrap_or_default();
                format!(
                    "{} {:.2}x (CPU {:.2}x)",
                    im.name(),
                    m.as_secs_f64() / bm.as_secs_f64(),
                    c.as_secs_f64() / bc.as_secs_f64()
                )
            })
            .collect();
        println!("- {}: {}", row.what, parts.join(", "));
    }
    Ok(())
}
