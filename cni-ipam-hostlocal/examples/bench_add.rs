//! Benchmark (not a test): ADD latency of our `host-local` against the reference Go binary,
//! on an empty store and on a store holding 10,000 reservations in a /16.
//!
//! Every run execs the plugin exactly as a runtime does (env + stdin) and times spawn to exit.
//! The scenarios are interleaved run by run (Go empty, ours empty, Go 10k, ours 10k, ...) so
//! machine noise hits all alike; each timed ADD is undone by a DEL of the same implementation
//! (timed separately), so the stores keep their size and round robin moves on as on a node.
//!
//! ```text
//! cargo build --release -p cni-ipam-hostlocal --bins --examples
//! target/release/examples/bench-add [--runs 100] [--reservations 10000] [--dir /tmp]
//!                                   [--go /usr/lib/cni/host-local] [--ours target/release/host-local]
//! ```
//!
//! `floor` is `/bin/true` spawned the same way: the cost of a process that does nothing.
//! `ours-10k-cold` additionally makes a foreign change to the store before each run (as the
//! Go plugin or an administrator would), so our index is rebuilt from the files every time:
//! the worst case of a node where both plugins write to one store.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

struct Scenario {
    name: &'static str,
    bin: PathBuf,
    data_dir: PathBuf,
    cold: bool,
    add: Vec<Duration>,
    del: Vec<Duration>,
}

const NET: &str = "bench";

fn config(data_dir: &Path) -> String {
    format!(
        r#"{{"cniVersion":"1.0.0","name":"{NET}","type":"bridge","ipam":{{"type":"host-local","dataDir":"{}","ranges":[[{{"subnet":"10.20.0.0/16"}}]],"routes":[{{"dst":"0.0.0.0/0"}}]}}}}"#,
        data_dir.display()
    )
}

fn exec(bin: &Path, command: &str, id: &str, stdin: &str) -> Result<(Duration, Vec<u8>)> {
    let start = Instant::now();
    let mut child = Command::new(bin)
        .env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", "/var/run/netns/bench-none")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/opt/cni/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("spawn {}", bin.display()))?;
    // A process that does not read its stdin (the floor) closes the pipe early.
    let _ = child
        .stdin
        .take()
        .context("stdin")?
        .write_all(stdin.as_bytes());
    let out = child.wait_with_output()?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!(
            "{} {command} {id} failed: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok((took, out.stdout))
}

/// Fill a store with `n` reservations from 10.20.0.2 on, as a busy node would have them.
fn prepare(data_dir: &Path, n: u32) -> Result<()> {
    let _ = std::fs::remove_dir_all(data_dir);
    let dir = data_dir.join(NET);
    std::fs::create_dir_all(&dir)?;
    let first = u32::from(Ipv4Addr::new(10, 20, 0, 2));
    for i in 0..n {
        let ip = Ipv4Addr::from(first + i);
        std::fs::write(dir.join(ip.to_string()), format!("pod{i:05}\r\neth0"))?;
    }
    if n > 0 {
        let last = Ipv4Addr::from(first + n - 1);
        std::fs::write(dir.join("last_reserved_ip.0"), last.to_string())?;
    }
    Ok(())
}

/// Removes the bench stores however `main` ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stats(v: &[Duration]) -> (f64, f64, f64, f64) {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    (pct(0.5), pct(0.1), pct(0.9), mean)
}

fn main() -> Result<()> {
    let mut runs = 100usize;
    let mut n = 10_000u32;
    let mut dir = std::env::temp_dir();
    let mut go = PathBuf::from("/usr/lib/cni/host-local");
    let exe = std::env::current_exe()?;
    let mut ours = exe
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("host-local"))
        .context("locate host-local next to the examples directory")?;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().context("missing value");
        match a.as_str() {
            "--runs" => runs = val()?.parse()?,
            "--reservations" => n = val()?.parse()?,
            "--dir" => dir = PathBuf::from(val()?),
            "--go" => go = PathBuf::from(val()?),
            "--ours" => ours = PathBuf::from(val()?),
            other => bail!("unknown argument {other}"),
        }
    }
    for b in [&go, &ours] {
        if !b.exists() {
            bail!("{} not found", b.display());
        }
    }
    let root = dir.join(format!("hl-bench-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(root.clone());
    let k = if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    };
    let mk = |name, bin: &PathBuf, sub: &str, cold| Scenario {
        name,
        bin: bin.clone(),
        data_dir: root.join(sub),
        cold,
        add: Vec::new(),
        del: Vec::new(),
    };
    let mut scenarios = vec![
        mk("floor", &PathBuf::from("/bin/true"), "floor", false),
        mk("go-0", &go, "go-0", false),
        mk("ours-0", &ours, "ours-0", false),
        mk("go-10k", &go, "go-n", false),
        mk("ours-10k", &ours, "ours-n", false),
        mk("ours-10k-cold", &ours, "ours-n-cold", true),
    ];
    for s in scenarios.iter().filter(|s| s.name != "floor") {
        let count = if s.name.ends_with('0') { 0 } else { n };
        prepare(&s.data_dir, count)?;
        // Warm up: page cache, and our index (built by the first operation after the
        // bench wrote the files).
        let conf = config(&s.data_dir);
        exec(&s.bin, "ADD", "warmup", &conf)?;
        exec(&s.bin, "DEL", "warmup", &conf)?;
    }
    eprintln!(
        "{runs} runs, {n} reservations, store under {}, ours {}, go {}",
        root.display(),
        ours.display(),
        go.display()
    );
    for run in 0..runs {
        for s in &mut scenarios {
            let conf = config(&s.data_dir);
            if s.cold {
                // A foreign writer touched the store: create and remove a reservation.
                let f = s.data_dir.join(NET).join("10.20.255.250");
                std::fs::write(&f, "foreign\r\neth0")?;
                std::fs::remove_file(&f)?;
            }
            let id = format!("bench{run}");
            if s.name == "floor" {
                // Spawning a process that does nothing: the cost every plugin pays.
                s.add.push(exec(&s.bin, "ADD", &id, &conf)?.0);
                s.del.push(exec(&s.bin, "DEL", &id, &conf)?.0);
                continue;
            }
            let (t_add, out) = exec(&s.bin, "ADD", &id, &conf)?;
            if run == 0 {
                let v: serde_json::Value = serde_json::from_slice(&out)?;
                eprintln!("{}: first ADD got {}", s.name, v["ips"][0]["address"]);
            }
            let (t_del, _) = exec(&s.bin, "DEL", &id, &conf)?;
            s.add.push(t_add);
            s.del.push(t_del);
        }
    }
    println!("| scenario | ADD median ms | p10 | p90 | mean | DEL median ms |");
    println!("|---|---|---|---|---|---|");
    let mut med = std::collections::HashMap::new();
    for s in &scenarios {
        let (m, p10, p90, mean) = stats(&s.add);
        let (dm, ..) = stats(&s.del);
        med.insert(s.name, m);
        let name = s.name.replace("10k", &k);
        println!("| {name} | {m:.2} | {p10:.2} | {p90:.2} | {mean:.2} | {dm:.2} |");
    }
    let r = |a: &str, b: &str| med[a] / med[b];
    println!();
    println!(
        "ours/go at 0: {:.2}x; ours/go at {k}: {:.3}x; ours {k}/0: {:.2}x; go {k}/0: {:.1}x; ours cold {k}/go {k}: {:.2}x",
        r("ours-0", "go-0"),
        r("ours-10k", "go-10k"),
        r("ours-10k", "ours-0"),
        r("go-10k", "go-0"),
        r("ours-10k-cold", "go-10k"),
    );
    Ok(())
}
