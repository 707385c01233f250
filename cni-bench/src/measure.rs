//! Running one plugin process as a runtime does and measuring it: wall time from spawn to
//! exit; peak resident set through the `cni-bench-rss` launcher.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// One plugin call.
#[derive(Clone, Debug)]
pub struct Call<'a> {
    /// The binary.
    pub plugin: &'a Path,
    /// `CNI_COMMAND`.
    pub command: &'a str,
    /// `CNI_CONTAINERID`.
    pub container_id: &'a str,
    /// `CNI_NETNS` (may be empty).
    pub netns: &'a str,
    /// `CNI_IFNAME`.
    pub ifname: &'a str,
    /// `CNI_PATH`.
    pub cni_path: &'a str,
    /// The config on stdin.
    pub stdin: &'a [u8],
}

/// Run one call in the calling thread's network namespace: its wall time from spawn to exit;
/// an error if it fails.
pub fn run(call: &Call<'_>) -> Result<Duration> {
    Ok(spawn(call, None)?.0)
}

/// Run one call through the `cni-bench-rss` launcher next to this program and return the
/// plugin's own peak RSS in KiB (see that program for why a launcher).
pub fn peak_rss(call: &Call<'_>) -> Result<u64> {
    let (_, out) = spawn(call, Some(&launcher()?))?;
    let (kib, _) = launcher_reports(&out.stderr)
        .pop()
        .context("the launcher printed no RSS")?;
    Ok(kib)
}

/// The `cni-bench-rss` launcher next to this program.
pub fn launcher() -> Result<PathBuf> {
    Ok(std::env::current_exe()?
        .parent()
        .context("no directory of this program")?
        .join("cni-bench-rss"))
}

/// Every `cni-bench-rss <KiB> <exit code>` line of `stderr`, in order: the peak RSS and exit
/// code of each program the launcher ran.
pub fn launcher_reports(stderr: &[u8]) -> Vec<(u64, i32)> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("cni-bench-rss ")?.split_whitespace();
            Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
        })
        .collect()
}

fn spawn(call: &Call<'_>, launcher: Option<&Path>) -> Result<(Duration, Output)> {
    let start = Instant::now();
    let mut cmd = match launcher {
        Some(l) => {
            let mut c = Command::new(l);
            c.arg(call.plugin);
            c
        }
        None => Command::new(call.plugin),
    };
    let mut child = cmd
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_COMMAND", call.command)
        .env("CNI_CONTAINERID", call.container_id)
        .env("CNI_NETNS", call.netns)
        .env("CNI_IFNAME", call.ifname)
        .env("CNI_PATH", call.cni_path)
        .env("CNI_ARGS", "IgnoreUnknown=1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {}", call.plugin.display()))?;
    if let Some(mut i) = child.stdin.take() {
        // A plugin may exit without reading stdin (VERSION does).
        match i.write_all(call.stdin) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
            _ => {}
        }
    }
    // Both pipes are read together, so a chatty stderr cannot stall the plugin.
    let out = child.wait_with_output()?;
    let wall = start.elapsed();
    if !out.status.success() {
        bail!(
            "{} {} failed: {}{}",
            call.plugin.display(),
            call.command,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((wall, out))
}

/// Summary statistics of wall times.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Median.
    pub median: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// Maximum.
    pub max: Duration,
    /// Number of samples.
    pub n: usize,
}

impl Stats {
    /// Of a set of samples (empty: all zero).
    pub fn of(samples: &[Duration]) -> Stats {
        if samples.is_empty() {
            return Stats::default();
        }
        let mut v = samples.to_vec();
        v.sort();
        let pick = |q: f64| v[(((v.len() - 1) as f64) * q).round() as usize];
        Stats {
            median: pick(0.5),
            p90: pick(0.9),
            max: v[v.len() - 1],
            n: v.len(),
        }
    }
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_pick_order_statistics() {
        let v: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        let s = Stats::of(&v);
        assert_eq!(s.median, Duration::from_millis(6));
        assert_eq!(s.p90, Duration::from_millis(9));
        assert_eq!(s.max, Duration::from_millis(10));
        assert_eq!(Stats::of(&[]).n, 0);
    }

    #[test]
    fn launcher_reports_are_read_from_mixed_stderr() {
        let err =
            b"plugin noise\ncni-bench-rss 2344 0\nmore\ncni-bench-rss 811 1\ncni-bench-rss x 0\n";
        assert_eq!(launcher_reports(err), vec![(2344, 0), (811, 1)]);
        assert!(launcher_reports(b"nothing here\n").is_empty());
    }
}
