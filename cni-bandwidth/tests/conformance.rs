//! The conformance suite (cni-testkit) judges our bandwidth chained after our bridge, with
//! the config in tests/configs/conformance.conflist; the Go bandwidth v1.1.1 is judged the
//! same way and passes too (the suite's snapshots do not include qdiscs, so the qdiscs its
//! DEL leaves on the veth are not seen here; interop.rs shows them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use cni_testkit::conformance::{Outcome, Report, Suite, SuiteOptions};
use cni_testkit::{bins, require_root};

fn config() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/conformance.conflist");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn judge(plugin: std::path::PathBuf, helpers: &Path) -> Report {
    let opts = SuiteOptions::new(plugin, config()).cni_path([helpers]);
    let report = Suite::new(opts).unwrap().run();
    println!("{report}");
    report
}

#[test]
fn our_bandwidth_passes_the_conformance_suite() {
    if !require_root() {
        return;
    }
    let helpers = bins::cni_path_with(&["bridge", "host-local"]).unwrap();
    let r = judge(bins::our_plugin("bandwidth").unwrap(), helpers.path());
    assert!(
        r.passed(),
        "our bandwidth fails the conformance suite:\n{r}"
    );
    // The suite really ran the verbs (not everything skipped).
    for check in [
        "add/1.1.0",
        "del-cleans-up/1.1.0",
        "check/1.1.0",
        "check-after-del/1.1.0",
        "gc/1.1.0",
        "status/1.1.0",
        "del-netns-gone/1.0.0",
    ] {
        let c = r
            .get(check)
            .unwrap_or_else(|| panic!("no check {check}\n{r}"));
        assert_eq!(c.outcome, Outcome::Pass, "{check}");
    }
}

#[test]
fn the_go_bandwidth_is_judged_the_same_way() {
    if !require_root() {
        return;
    }
    let helpers = bins::cni_path_with(&["bridge", "host-local"]).unwrap();
    let r = judge(bins::go_plugin("bandwidth").unwrap(), helpers.path());
    let failed: Vec<&str> = r
        .results
        .iter()
        .filter(|c| c.outcome.is_failure())
        .map(|c| c.name.as_str())
        .collect();
    assert!(failed.is_empty(), "the Go bandwidth fails {failed:?}\n{r}");
}
