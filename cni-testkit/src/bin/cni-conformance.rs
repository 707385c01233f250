//! `cni-conformance`: judge a CNI plugin binary against the spec.
//!
//! ```text
//! cni-conformance --plugin /usr/lib/cni/host-local --config host-local.json
//! cni-conformance --plugin target/debug/portmap --config bridge-portmap.conflist \
//!     --cni-path /usr/lib/cni --versions 1.0.0,1.1.0 --json
//! ```
//!
//! Prints PASS / FAIL / SKIP / ERROR per check with the reason; exits 1 on any FAIL or
//! ERROR, 2 when the suite cannot start. Needs root: every check runs in throw-away network
//! namespaces.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use cni_testkit::conformance::{Suite, SuiteOptions};
use cni_types::Version;

/// Judge a CNI plugin binary against the CNI spec, in throw-away network namespaces.
#[derive(Parser, Debug)]
#[command(name = "cni-conformance", version)]
struct Args {
    /// The plugin binary to judge.
    #[arg(long)]
    plugin: PathBuf,
    /// A network config (.conf JSON) or a conflist whose plugin of the binary's type (or
    /// --type) is judged, the earlier ones producing its prevResult.
    #[arg(long)]
    config: PathBuf,
    /// Directories of delegated / earlier chained plugins (colon-separated, repeatable).
    #[arg(long = "cni-path", value_delimiter = ':')]
    cni_path: Vec<PathBuf>,
    /// The `type` of the plugin under test in a conflist (default: the binary's file name).
    #[arg(long = "type")]
    plugin_type: Option<String>,
    /// Spec versions to test (comma-separated; default: all the plugin supports).
    #[arg(long, value_delimiter = ',')]
    versions: Vec<Version>,
    /// Capability arguments as a JSON object (e.g. '{"portMappings": [...]}').
    #[arg(long = "capability-args")]
    capability_args: Option<String>,
    /// Only run checks whose names start with one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// A shell command run inside every fresh node namespace before each check (repeatable),
    /// e.g. "ip link add cni0 type bridge && ip addr add 10.244.1.1/24 dev cni0 && ip link set cni0 up".
    #[arg(long = "node-setup")]
    node_setup: Vec<String>,
    /// Seconds one plugin call may take.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("cni-conformance: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<u8, String> {
    let text =
        std::fs::read(&args.config).map_err(|e| format!("{}: {e}", args.config.display()))?;
    let config =
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", args.config.display()))?;
    let mut opts = SuiteOptions::new(&args.plugin, config)
        .cni_path(&args.cni_path)
        .only(args.only);
    if !args.versions.is_empty() {
        opts = opts.versions(args.versions);
    }
    if let Some(t) = args.plugin_type {
        opts = opts.plugin_type(t);
    }
    if let Some(c) = args.capability_args {
        let v: serde_json::Value =
            serde_json::from_str(&c).map_err(|e| format!("--capability-args: {e}"))?;
        let serde_json::Value::Object(m) = v else {
            return Err("--capability-args: not a JSON object".into());
        };
        opts = opts.capability_args(m);
    }
    opts.node_setup = args.node_setup;
    opts.timeout = Duration::from_secs(args.timeout);
    let suite = Suite::new(opts).map_err(|e| cni_types::error::chain_message(&e))?;
    let mut stderr = std::io::stderr();
    let report = suite.run_with(&mut |r| {
        if !args.json {
            let _ = writeln!(stderr, "{:<5} {}", r.outcome.label(), r.name);
        }
    });
    let mut out = std::io::stdout().lock();
    let printed = if args.json {
        writeln!(out, "{}", cni_types::to_json_pretty(&report.to_json()))
    } else {
        writeln!(out, "{report}")
    };
    printed.map_err(|e| format!("write report: {e}"))?;
    Ok(report.exit_code())
}
