//! `cni-bench`: one run that measures our plugins and the Go reference plugins (Debian's
//! `containernetworking-plugins`, `/usr/lib/cni`) side by side, interleaved (ours, theirs,
//! theirs, ours, ...) so machine noise hits both alike, and reports medians and ratios.
//!
//! ```sh
//! cargo build --release --workspace --bins
//! cargo run --release -p cni-bench -- --out BENCHMARKS.md --svg docs/bench-scale.svg
//! cargo run --release -p cni-bench -- --quick          # under two minutes
//! ```
//!
//! Every plugin runs as a runtime runs it: one process per call, `CNI_*` environment, config on
//! stdin, spawned from a thread inside a throw-away "node" namespace with `CNI_NETNS` a
//! throw-away "pod" namespace; chains go through `cni-proto`'s runtime as libcni does. Needs
//! root; nothing outside the namespaces and temporary directories it creates is touched. It
//! never asserts a timing: it reports.

mod measure;
mod scenarios;
mod svg;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

/// Benchmark our CNI plugins against the Go reference plugins.
#[derive(Parser, Debug, Clone)]
#[command(version, about)]
pub struct Opts {
    /// A short run (fewer samples, up to 100 pods): under two minutes.
    #[arg(long)]
    pub quick: bool,
    /// Write the markdown report here too.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the chart of chain ADD latency against pods on the node here.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// The directory of the Go reference plugins.
    #[arg(long, default_value = "/usr/lib/cni")]
    pub go_dir: PathBuf,
    /// The directory of our plugin binaries (default: next to this program).
    #[arg(long)]
    pub ours_dir: Option<PathBuf>,
    /// Only these sections (comma separated: process, hostlocal, bridge, portmap, chain, small,
    /// bandwidth, firewall, golibcni, scale, concurrency, floor).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Samples per measured figure (default 40, quick 8).
    #[arg(long)]
    pub runs: Option<usize>,
    /// Pod counts for the scale section (default 0,100,200,500,1000; quick 0,50,100).
    #[arg(long, value_delimiter = ',')]
    pub pods: Vec<usize>,
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cni-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(opts: &Opts) -> Result<()> {
    let started = std::time::Instant::now();
    let report = scenarios::run_all(opts)?;
    let text = report.markdown(started.elapsed());
    println!("{text}");
    if let Some(p) = &opts.out {
        std::fs::write(p, &text)?;
    }
    if let Some(p) = &opts.svg {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(p, report.chart())?;
    }
    Ok(())
}
