//! The conformance suite run against real plugins: ours (the workspace's binaries) and the Go
//! reference plugins from Debian's containernetworking-plugins (/usr/lib/cni), which shows the
//! suite is not tuned to our plugins. A FAIL of a Go plugin must be explained by a known
//! upstream issue; ours must pass.
//!
//! To add a plugin: a config in tests/configs/ and one line calling `ours` or `go`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] functions

use std::path::{Path, PathBuf};

use cni_testkit::conformance::{Report, Suite, SuiteOptions};
use cni_testkit::{bins, require_root};

fn config(name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn judge(plugin: PathBuf, config_file: &str, cni_path: &[&Path]) -> Report {
    let opts = SuiteOptions::new(plugin, config(config_file)).cni_path(cni_path.iter().copied());
    let report = Suite::new(opts).unwrap().run();
    println!("{report}");
    report
}

/// Our plugin `name` (delegates and earlier chain members: ours too) must pass.
fn ours(name: &str, config_file: &str, helpers: &[&str]) {
    if !require_root() {
        return;
    }
    let helpers = bins::cni_path_with(helpers).unwrap();
    let r = judge(
        bins::our_plugin(name).unwrap(),
        config_file,
        &[helpers.path()],
    );
    assert!(r.passed(), "our {name} fails the conformance suite:\n{r}");
}

/// The Go plugin `name` (helpers from /usr/lib/cni) may fail only with a known upstream
/// issue; `must_fail` lists check prefixes it is known to fail (proving the suite sees it).
fn go(name: &str, config_file: &str, must_fail: &[&str]) {
    if !require_root() {
        return;
    }
    let dir = Path::new(bins::GO_PLUGINS_DIR);
    let r = judge(bins::go_plugin(name).unwrap(), config_file, &[dir]);
    let unexplained: Vec<&str> = r
        .results
        .iter()
        .filter(|c| c.outcome.is_failure() && c.known_issue.is_none())
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        unexplained.is_empty(),
        "unexplained failures of the Go {name}: {unexplained:?}\n{r}"
    );
    for prefix in must_fail {
        assert!(
            r.failures().iter().any(|f| f.starts_with(prefix)),
            "the Go {name} is known to fail {prefix}, but the suite did not see it:\n{r}"
        );
    }
}

#[test]
fn our_host_local() {
    ours("host-local", "host-local.json", &[]);
}

#[test]
fn go_host_local() {
    go("host-local", "host-local.json", &[]);
}

#[test]
fn go_bridge() {
    // plugins#810: DEL without the netns leaks the ipMasq rules.
    go(
        "bridge",
        "bridge.json",
        &["del-netns-empty/", "del-netns-gone/"],
    );
}

#[test]
fn go_portmap() {
    // plugins#819: CHECK fails for IPv4-only containers.
    go("portmap", "bridge-portmap.conflist", &["check/"]);
}

#[test]
fn our_bridge() {
    ours("bridge", "bridge.json", &["host-local"]);
}

#[test]
fn our_portmap() {
    ours(
        "portmap",
        "bridge-portmap.conflist",
        &["bridge", "host-local"],
    );
}
