//! The conformance suite (`cni-conformance`) judges our loopback and the Go one with the
//! config in `tests/conformance.json`. The suite's pods are what a runtime hands to a sandbox's
//! first plugin: `lo` down, without addresses.
//!
//! Ours passes every check. The Go loopback v1.1.1 fails two, both registered in the suite's
//! known issues (so the report explains them): `add/V` before 1.0.0 (it prints its 1.0.0
//! result unconverted) and `del-cleans-up/*` (DEL sets `lo` down and leaves the 127.0.0.1/8
//! that coming up gave it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use cni_testkit::cni_types::Version;
use cni_testkit::conformance::{Outcome, Report, Suite, SuiteOptions};
use cni_testkit::require_root;
use common::{go, ours};

fn config() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn judge(plugin: PathBuf) -> Report {
    let report = Suite::new(SuiteOptions::new(plugin, config()))
        .unwrap()
        .run();
    println!("{report}");
    report
}

#[test]
fn ours_passes_every_check() {
    if !require_root() {
        return;
    }
    let report = judge(ours());
    assert_eq!(report.versions, Version::ALL.to_vec());
    assert!(report.failures().is_empty(), "{report}");
    for must_pass in [
        "add/0.2.0",
        "add/0.4.0",
        "add/1.1.0",
        "del-cleans-up/1.1.0",
        "del-without-add/0.3.1",
        "check/1.1.0",
        "check-after-del/1.1.0",
        "gc/1.1.0",
        "status/1.1.0",
    ] {
        let r = report.get(must_pass).unwrap();
        assert_eq!(r.outcome, Outcome::Pass, "{must_pass}");
    }
}

#[test]
fn the_go_loopback_fails_only_its_two_known_issues() {
    if !require_root() {
        return;
    }
    if !go().is_file() && !cni_testkit::privilege::skip_or_fail("no Go loopback in /usr/lib/cni") {
        return;
    }
    let report = judge(go());
    let mut want: Vec<String> = Version::ALL
        .iter()
        .filter(|v| **v < Version::V1_0_0)
        .map(|v| format!("add/{v}"))
        .collect();
    want.extend(report.versions.iter().map(|v| format!("del-cleans-up/{v}")));
    let mut got: Vec<String> = report.failures().iter().map(|s| s.to_string()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{report}");
    for name in &want {
        let r = report.get(name).unwrap();
        assert!(
            r.known_issue.is_some(),
            "{name} is not explained by a known issue:\n{report}"
        );
    }
}
