//! Benchmark (not a test): our `bridge` + `host-local` against the Go reference v1.1.1
//! (`/usr/lib/cni/bridge` + `/usr/lib/cni/host-local`), ADD and DEL latency, ADD with 500 pods
//! on the bridge, and peak RSS.
//!
//! Each call execs the plugin exactly as a runtime does (env + config on stdin), from a thread
//! inside a throw-away "node" namespace, into a throw-away "pod" namespace, and is timed from
//! spawn to exit. Implementations are interleaved run by run (ours, Go, Go, ours, ...), so
//! machine noise hits both alike; both use one host-local store (the on-disk formats are the
//! same) and one bridge.
//!
//! ```text
//! cargo build --release -p cni-bridge -p cni-ipam-hostlocal --bins --examples
//! chrt -f 10 target/release/examples/bench [--runs 50] [--pods 500] [--skip-pods] [--ours-dir DIR]
//! ```
//!
//! `chrt -f 10` (real-time FIFO priority, inherited by the plugin processes) keeps other load
//! on the machine from queueing ahead of the measured processes; it helps both implementations
//! alike. `--ours-dir` takes `bridge` and `host-local` from another build (e.g. a static one:
//! `RUSTFLAGS="-C target-feature=+crt-static" CARGO_PROFILE_RELEASE_OPT_LEVEL=s cargo build
//! --release --target x86_64-unknown-linux-gnu -p cni-bridge -p cni-ipam-hostlocal --bins`).
//!
//! Peak RSS: a sub-process (`bench rss <dir>`) runs 10 ADD/DEL cycles of one implementation
//! and reports `getrusage(RUSAGE_CHILDREN).ru_maxrss`: the largest resident set of any plugin
//! process it ran (an L2 config, so the bridge plugin alone; and an L3 one, where host-local
//! counts too).
//!
//! Needs root. Nothing outside the namespaces it creates is touched.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cni_testkit::bins::CniPathDir;
use cni_testkit::{TempDir, TempNetns};

#[derive(Clone)]
struct Impl {
    bins: PathBuf,
}

fn conf(data_dir: &Path, l3: bool, masq: Option<&str>) -> String {
    let mut extra = String::new();
    if let Some(b) = masq {
        extra = format!(r#","ipMasq":true,"ipMasqBackend":"{b}""#);
        if b == "default" {
            extra = r#","ipMasq":true"#.to_string();
        }
    }
    let ipam = if l3 {
        format!(
            r#","ipam":{{"type":"host-local","dataDir":"{}","ranges":[[{{"subnet":"10.200.0.0/16"}}]],"routes":[{{"dst":"0.0.0.0/0"}}]}}"#,
            data_dir.display()
        )
    } else {
        String::new()
    };
    format!(
        r#"{{"cniVersion":"1.0.0","name":"benchnet","type":"bridge","bridge":"cni0","isGateway":{l3}{extra}{ipam}}}"#
    )
}

/// One plugin call; returns its duration. Fails on a non-zero exit.
fn call(bins: &Path, command: &str, id: &str, netns: &Path, stdin: &str) -> Result<Duration> {
    let start = Instant::now();
    let mut child = Command::new(bins.join("bridge"))
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", bins)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {}", bins.display()))?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(stdin.as_bytes())?;
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .context("stdout")?
        .read_to_end(&mut out)?;
    let status = child.wait()?;
    let took = start.elapsed();
    if !status.success() {
        bail!(
            "{} {command} failed: {}",
            bins.display(),
            String::from_utf8_lossy(&out)
        );
    }
    Ok(took)
}

#[derive(Default)]
struct Samples {
    add: Vec<Duration>,
    del: Vec<Duration>,
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    if s.is_empty() {
        return Duration::ZERO;
    }
    s[s.len() / 2]
}

fn pct(v: &[Duration], p: f64) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    if s.is_empty() {
        return Duration::ZERO;
    }
    let i = ((s.len() - 1) as f64 * p).round() as usize;
    s[i]
}

fn row(what: &str, o: &[Duration], g: &[Duration], target: &str) -> String {
    let (mo, mg) = (median(o), median(g));
    format!(
        "| {what} | {} ({}–{}) | {} ({}–{}) | {:.2} | {target} |\n",
        ms(mo),
        ms(pct(o, 0.1)),
        ms(pct(o, 0.9)),
        ms(mg),
        ms(pct(g, 0.1)),
        ms(pct(g, 0.9)),
        mo.as_secs_f64() / mg.as_secs_f64()
    )
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// `runs` interleaved ADD/DEL cycles of every implementation into `pod`.
fn cycles(impls: &[Impl], pod: &Path, stdin: &str, runs: usize) -> Result<Vec<Samples>> {
    let mut out: Vec<Samples> = impls.iter().map(|_| Samples::default()).collect();
    for run in 0..runs {
        let order: Vec<usize> = if run % 2 == 0 {
            (0..impls.len()).collect()
        } else {
            (0..impls.len()).rev().collect()
        };
        for i in order {
            let id = format!("bench-{run}");
            out[i]
                .add
                .push(call(&impls[i].bins, "ADD", &id, pod, stdin)?);
            out[i]
                .del
                .push(call(&impls[i].bins, "DEL", &id, pod, stdin)?);
        }
    }
    Ok(out)
}

fn rss_child(bins: &Path, pod: &Path, stdin: &str) -> Result<u64> {
    for i in 0..10 {
        let id = format!("rss-{i}");
        call(bins, "ADD", &id, pod, stdin)?;
        call(bins, "DEL", &id, pod, stdin)?;
    }
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)?;
    Ok(u64::try_from(usage.max_rss()).unwrap_or(0))
}

/// Peak RSS of one implementation, measured in a fresh sub-process (run inside the node).
fn rss(node: &TempNetns, imp: &Impl, pod: &Path, stdin: &str) -> Result<u64> {
    let me = std::env::current_exe()?;
    let mut cmd = Command::new(me);
    cmd.args(["rss"])
        .arg(&imp.bins)
        .arg(pod)
        .arg(stdin)
        .stdout(Stdio::piped());
    let out = node.run(|| cmd.output())??;
    if !out.status.success() {
        bail!("rss child failed: {}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("rss") {
        let kb = rss_child(Path::new(&args[2]), Path::new(&args[3]), &args[4])?;
        println!("{kb}");
        return Ok(());
    }
    let mut runs = 50usize;
    let mut pods = 500usize;
    let mut skip_pods = false;
    let mut ours_from: Option<PathBuf> = None;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().context("--runs N")?.parse()?,
            "--pods" => pods = it.next().context("--pods N")?.parse()?,
            "--skip-pods" => skip_pods = true,
            "--ours-dir" => ours_from = Some(it.next().context("--ours-dir DIR")?.into()),
            other => bail!("unknown argument {other}"),
        }
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("the benchmark needs root (network namespaces)");
    }

    let ours_dir = match &ours_from {
        Some(d) => CniPathDir::new()?
            .link("bridge", &d.join("bridge"))?
            .link("host-local", &d.join("host-local"))?,
        None => CniPathDir::new()?.ours(&["bridge", "host-local"]).context(
            "build ours first: cargo build --release -p cni-bridge -p cni-ipam-hostlocal --bins",
        )?,
    };
    let go_dir = CniPathDir::new()?.go(&["bridge", "host-local"])?;
    let ours = Impl {
        bins: ours_dir.path().to_path_buf(),
    };
    let go = Impl {
        bins: go_dir.path().to_path_buf(),
    };
    let impls = vec![ours.clone(), go.clone()];
    eprintln!(
        "ours: {}\nreference: {}",
        std::fs::canonicalize(ours_dir.plugin("bridge"))?.display(),
        cni_testkit::bins::go_plugin("bridge")?.display()
    );

    let node = TempNetns::new("bench-node")?;
    let data = TempDir::new("bench-ipam")?;
    let pod = TempNetns::new("bench-pod")?;
    let pod_path = pod.path().to_path_buf();
    let l3 = conf(data.path(), true, None);

    let mut report = String::new();
    // Warm-up (page cache, the bridge exists).
    node.run(|| cycles(&impls, &pod_path, &l3, 3))??;

    eprintln!("ADD/DEL, empty bridge: {runs} runs each");
    let s = node.run(|| cycles(&impls, &pod_path, &l3, runs))??;
    report.push_str(&row(
        "ADD (bridge + host-local)",
        &s[0].add,
        &s[1].add,
        "≤ 0.20",
    ));
    report.push_str(&row(
        "DEL (bridge + host-local)",
        &s[0].del,
        &s[1].del,
        "≤ 0.50",
    ));
    let base_add = median(&s[0].add);

    for (label, backend, pair) in [
        (
            "ADD ipMasq, default backend (iptables)",
            "default",
            vec![ours.clone(), go.clone()],
        ),
        (
            "ADD ipMasq, nftables (ours) vs iptables (Go)",
            "nftables",
            vec![ours.clone(), go.clone()],
        ),
    ] {
        eprintln!("{label}: {runs} runs each");
        let c = conf(data.path(), true, Some(backend));
        let c_go = conf(data.path(), true, Some("default"));
        let mut o = Samples::default();
        let mut g = Samples::default();
        node.run(|| -> Result<()> {
            for run in 0..runs {
                let id = format!("masq-{run}");
                let one = |imp: &Impl, stdin: &str, s: &mut Samples| -> Result<()> {
                    s.add.push(call(&imp.bins, "ADD", &id, &pod_path, stdin)?);
                    s.del.push(call(&imp.bins, "DEL", &id, &pod_path, stdin)?);
                    Ok(())
                };
                if run % 2 == 0 {
                    one(&pair[0], &c, &mut o)?;
                    one(&pair[1], &c_go, &mut g)?;
                } else {
                    one(&pair[1], &c_go, &mut g)?;
                    one(&pair[0], &c, &mut o)?;
                }
            }
            Ok(())
        })??;
        report.push_str(&row(label, &o.add, &g.add, ""));
        report.push_str(&row(&label.replace("ADD", "DEL"), &o.del, &g.del, ""));
    }

    if !skip_pods {
        eprintln!("attaching {pods} pods with ours");
        let mut pod_ns = Vec::new();
        for i in 0..pods {
            let p = TempNetns::new("bench-many")?;
            let path = p.path().to_path_buf();
            node.run(|| call(&ours.bins, "ADD", &format!("many-{i}"), &path, &l3))??;
            pod_ns.push(p);
        }
        eprintln!("ADD/DEL with {pods} pods: {runs} runs each");
        let s = node.run(|| cycles(&impls, &pod_path, &l3, runs))??;
        report.push_str(&row(
            &format!("ADD, {pods} pods on the bridge"),
            &s[0].add,
            &s[1].add,
            "",
        ));
        report.push_str(&row(
            &format!("DEL, {pods} pods on the bridge"),
            &s[0].del,
            &s[1].del,
            "",
        ));
        let many = median(&s[0].add);
        report.push_str(&format!(
            "\nours: ADD with {pods} pods / ADD with none = {:.2} (target ≤ 1.2)\n",
            many.as_secs_f64() / base_add.as_secs_f64()
        ));
        drop(pod_ns);
    }

    eprintln!("peak RSS");
    let l2 = conf(data.path(), false, None);
    let rss_o2 = rss(&node, &ours, &pod_path, &l2)?;
    let rss_g2 = rss(&node, &go, &pod_path, &l2)?;
    let rss_o3 = rss(&node, &ours, &pod_path, &l3)?;
    let rss_g3 = rss(&node, &go, &pod_path, &l3)?;

    println!(
        "| scenario | ours ms median (p10–p90) | reference ms median (p10–p90) | ours / ref | target |"
    );
    println!("|---|---|---|---|---|");
    print!("{report}");
    println!();
    println!(
        "| peak RSS (max over plugin processes) | ours KiB | reference KiB | ours / ref | target |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| bridge alone (L2 config) | {rss_o2} | {rss_g2} | {:.2} | ≤ 0.50 |",
        rss_o2 as f64 / rss_g2 as f64
    );
    println!(
        "| bridge + host-local (L3 config) | {rss_o3} | {rss_g3} | {:.2} | |",
        rss_o3 as f64 / rss_g3 as f64
    );
    Ok(())
}
