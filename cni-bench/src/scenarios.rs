//! The measured scenarios and the report.
//!
//! # Layout
//!
//! - [`run_all`] (here): the list of sections, each a step run in turn (a failed section is
//!   reported and the others still run), the machine settling in between.
//! - `report`: the [`Report`]: sections of rows (ours beside the reference), goals, the scale
//!   points; its markdown and its chart.
//! - `bins`: where our binaries and the reference's are ([`Bins`]), and which
//!   implementation and firewall backend a measurement uses ([`Impl`]).
//! - `harness`: what the sections share: [`interleave`] (ours and theirs take turns), a node
//!   running a chain through the runtime with each plugin process timed ([`ChainNode`],
//!   [`Cycles`]), and waiting for the machine and a node to be quiet.
//! - One module per section: `process` (VERSION and sizes), `hostlocal`, `bridge` (with the
//!   in-process floor and peak RSS), `portmap`, `chain`, `small` (loopback, static, tuning),
//!   `bandwidth`, `firewall`, `golibcni` (the default chain through Go's libcni), `concurrency`,
//!   `scale`. A section is a
//!   `fn(&mut Report, &Bins, ...) -> Result<()>` with a step in [`run_all`]; `use super::*`
//!   gives it what is imported here.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use cni_testkit::TempNetns;
use serde_json::json;

use crate::Opts;
use crate::measure::{self, Call, Stats, ms};

mod bandwidth;
mod bins;
mod bridge;
mod chain;
mod concurrency;
mod firewall;
mod golibcni;
mod harness;
mod hostlocal;
mod portmap;
mod process;
mod report;
mod scale;
mod small;

use bins::{Bins, Impl};
use harness::{ChainNode, Cycles, interleave, settle};
use report::{Report, Row};

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

/// `dir` as the report prints it: relative to the current directory `cwd` when under it
/// (`target/x86_64-unknown-linux-gnu/release`), so the report names no directory of the
/// machine it ran on; otherwise as given.
fn shown_dir(dir: &Path, cwd: Option<&Path>) -> String {
    cwd.and_then(|c| dir.strip_prefix(c).ok())
        .filter(|rel| !rel.as_os_str().is_empty())
        .unwrap_or(dir)
        .display()
        .to_string()
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
        vec![0, 100, 200, 500, 1000]
    };
    let mut r = Report::new(
        opts.quick,
        format!(
            "# Benchmark: ours against the Go reference plugins\n\n{}. Reference: the Go \
             plugins in `{}` (Debian `containernetworking-plugins`). Ours: `{}`.",
            machine(),
            bins.go.display(),
            std::fs::read_link(bins.ours.plugin("bridge"))
                .map(|p| shown_dir(
                    p.parent().unwrap_or(Path::new("")),
                    std::env::current_dir().ok().as_deref()
                ))
                .unwrap_or_default()
        ),
    );
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
            Box::new(|r| process::process(r, &bins, runs * 5)),
        ),
        (
            "hostlocal",
            "host-local ADD with 0 and many reservations",
            Box::new(|r| hostlocal::hostlocal(r, &bins, runs, existing)),
        ),
        (
            "bridge",
            "bridge + host-local ADD and DEL",
            Box::new(|r| bridge::bridge(r, &bins, runs)),
        ),
        (
            "portmap",
            "portmap ADD with 0 to 1000 containers mapped",
            Box::new(|r| portmap::portmap(r, &bins, runs, &mapped)),
        ),
        (
            "chain",
            "chain ADD / CHECK / DEL through a conflist",
            Box::new(|r| chain::chain(r, &bins, runs)),
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
            "golibcni",
            "the default chain through Go's libcni",
            Box::new(|r| golibcni::golibcni(r, &bins, opts.quick)),
        ),
        (
            "concurrency",
            "32 ADDs at once",
            Box::new(|r| concurrency::concurrency(r, &bins, rounds)),
        ),
        (
            "scale",
            "chain ADD against pods on the node",
            Box::new(|r| scale::scale(r, &bins, &pods, scale_samples)),
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

#[cfg(test)]
mod shown_dir_tests {
    use super::*;

    #[test]
    fn a_build_directory_under_the_current_one_is_printed_relative() {
        let cwd = Path::new("/home/u/src/cni-rs");
        let dir = cwd.join("target/x86_64-unknown-linux-gnu/release");
        assert_eq!(
            shown_dir(&dir, Some(cwd)),
            "target/x86_64-unknown-linux-gnu/release"
        );
        assert_eq!(shown_dir(Path::new("/opt/bin"), Some(cwd)), "/opt/bin");
        assert_eq!(shown_dir(Path::new("/opt/bin"), None), "/opt/bin");
    }
}
