//! The conformance suite (`cni-conformance`) judges our static and the Go one, run directly
//! with the config in `tests/conformance.json`.
//!
//! Static allocates nothing, so the suite skips `check-after-del/*` for it (ADD changes no
//! state, so nothing can be missing after DEL; its CHECK compares the configuration with
//! `prevResult`, which still matches, as the reference's does). Everything else passes.

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

/// No failure, and `check-after-del/V` skipped for the stateless reason wherever CHECK
/// exists.
fn assert_passes_what_a_stateless_ipam_plugin_can(report: &Report) {
    assert!(report.failures().is_empty(), "{report}");
    for v in report.versions.iter().filter(|v| v.supports_check()) {
        let name = format!("check-after-del/{v}");
        let Outcome::Skip(reason) = &report.get(&name).unwrap().outcome else {
            panic!("{name} was not skipped:\n{report}")
        };
        assert!(reason.contains("stateless"), "{name}: {reason}");
    }
}

#[test]
fn ours_passes_everything_a_stateless_ipam_plugin_can() {
    if !require_root() {
        return;
    }
    let report = judge(PathBuf::from(env!("CARGO_BIN_EXE_static")));
    assert_eq!(report.versions, Version::ALL.to_vec());
    assert_passes_what_a_stateless_ipam_plugin_can(&report);
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
    assert_passes_what_a_stateless_ipam_plugin_can(&report);
}
