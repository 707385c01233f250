//! The conformance suite (`cni-conformance`) judges our static and the Go one, run directly
//! with the config in `tests/conformance.json`.
//!
//! One check cannot pass for a stateless IPAM plugin: `check-after-del/*` wants CHECK to fail
//! after DEL "because the resources are gone", but static allocates nothing, so nothing can
//! be gone; its CHECK compares the configuration with `prevResult`, which still matches (the
//! reference behaves the same). Everything else must pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use cni_testkit::cni_types::Version;
use cni_testkit::conformance::{Outcome, Report, Suite, SuiteOptions};
use cni_testkit::require_root;

fn judge(plugin: PathBuf) -> Report {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance.json");
    let config = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let report = Suite::new(SuiteOptions::new(plugin, config)).unwrap().run();
    println!("{report}");
    report
}

/// The failures must be exactly `check-after-del/V` for the versions with CHECK, each for
/// the stateless reason.
fn assert_only_check_after_del_fails(report: &Report) {
    let want: Vec<String> = report
        .versions
        .iter()
        .filter(|v| v.supports_check())
        .map(|v| format!("check-after-del/{v}"))
        .collect();
    assert_eq!(report.failures(), want, "{report}");
    for name in &want {
        let Outcome::Fail(reason) = &report.get(name).unwrap().outcome else {
            unreachable!()
        };
        assert!(reason.starts_with("CHECK succeeded after DEL"), "{reason}");
    }
}

#[test]
fn ours_passes_everything_a_stateless_ipam_plugin_can() {
    if !require_root() {
        return;
    }
    let report = judge(PathBuf::from(env!("CARGO_BIN_EXE_static")));
    assert_eq!(report.versions, Version::ALL.to_vec());
    assert_only_check_after_del_fails(&report);
    for must_pass in [
        "add/0.2.0",
        "add/1.1.0",
        "check/1.1.0",
        "gc/1.1.0",
        "status/1.1.0",
    ] {
        assert_eq!(
            report.get(must_pass).unwrap().outcome,
            Outcome::Pass,
            "{must_pass}"
        );
    }
}

#[test]
fn the_go_static_is_judged_the_same() {
    if !require_root() {
        return;
    }
    let go = PathBuf::from("/usr/lib/cni/static");
    if !go.is_file() && !cni_testkit::privilege::skip_or_fail("no Go static in /usr/lib/cni") {
        return;
    }
    let report = judge(go);
    assert_only_check_after_del_fails(&report);
}
