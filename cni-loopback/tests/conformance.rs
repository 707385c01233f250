//! The conformance suite (`cni-conformance`) judges our loopback and the Go one with the
//! config in `tests/conformance.json`.
//!
//! The suite's pods start with `lo` up (its throw-away namespaces bring `lo` up; a runtime's
//! fresh sandbox has it down), so a DEL that sets `lo` down, as the reference's and ours do,
//! makes the pod differ from "before the ADD" in `del-cleans-up/*` and `del-without-add/*`.
//! Those FAILs are expected, and only with exactly that difference (lo up -> down, ::1 gone);
//! everything else must pass. The Go loopback v1.1.1 also fails `add/V` before 1.0.0: it
//! prints its 1.0.0 result unconverted (no `ips[].version`, no `ip4`/`ip6`).

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

/// The checks that fail only because the suite's pods start with lo up.
fn lo_was_up(name: &str) -> bool {
    name.starts_with("del-cleans-up/") || name.starts_with("del-without-add/")
}

/// A FAIL of [`lo_was_up`] must show exactly lo going down (and ::1 with it), nothing else.
fn assert_only_lo_went_down(report: &Report) {
    for r in report.results.iter().filter(|r| lo_was_up(&r.name)) {
        let Outcome::Fail(reason) = &r.outcome else {
            panic!("{} did not fail as expected: {:?}", r.name, r.outcome);
        };
        let diff_lines: Vec<&str> = reason
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("+ ") || l.starts_with("- "))
            .collect();
        assert!(!diff_lines.is_empty(), "{}: {reason}", r.name);
        for l in diff_lines {
            let ok = matches!(
                l.split_whitespace().collect::<Vec<_>>().as_slice(),
                ["-", "link", "lo", "up", "mtu=65536"]
                    | ["+", "link", "lo", "down", "mtu=65536"]
                    | ["-", "addr", "lo", "::1/128"]
            );
            assert!(ok, "{}: unexpected difference {l:?} in\n{reason}", r.name);
        }
        assert!(
            !reason.contains("new file") && !reason.contains("node differs"),
            "{}: {reason}",
            r.name
        );
    }
}

#[test]
fn ours_passes_everything_but_the_lo_down_after_del() {
    if !require_root() {
        return;
    }
    let report = judge(ours());
    assert_eq!(report.versions, Version::ALL.to_vec());
    let unexpected: Vec<&str> = report
        .failures()
        .into_iter()
        .filter(|n| !lo_was_up(n))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}\n{report}");
    assert_only_lo_went_down(&report);
    for must_pass in [
        "add/0.2.0",
        "add/0.4.0",
        "add/1.1.0",
        "check-after-del/1.1.0",
    ] {
        let r = report.get(must_pass).unwrap();
        assert_eq!(r.outcome, Outcome::Pass, "{must_pass}");
    }
    for v in Version::ALL {
        for check in ["del-netns-gone", "del-netns-empty", "del-idempotent"] {
            let name = format!("{check}/{v}");
            assert_eq!(report.get(&name).unwrap().outcome, Outcome::Pass, "{name}");
        }
    }
    assert_eq!(report.get("gc/1.1.0").unwrap().outcome, Outcome::Pass);
    assert_eq!(report.get("status/1.1.0").unwrap().outcome, Outcome::Pass);
}

#[test]
fn the_go_loopback_fails_only_its_known_shape_bug_and_the_lo_down_after_del() {
    if !require_root() {
        return;
    }
    if !go().is_file() && !cni_testkit::privilege::skip_or_fail("no Go loopback in /usr/lib/cni") {
        return;
    }
    let report = judge(go());
    let shape_bug = |n: &str| n.starts_with("add/") && n != "add/1.0.0" && report.get(n).is_some();
    let unexpected: Vec<&str> = report
        .failures()
        .into_iter()
        .filter(|n| !lo_was_up(n) && !shape_bug(n))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}\n{report}");
    assert_only_lo_went_down(&report);
    let Outcome::Fail(reason) = &report.get("add/0.4.0").unwrap().outcome else {
        panic!("the Go loopback's 0.4.0 result has no ips[].version: expected a FAIL");
    };
    assert!(reason.contains("has version None"), "{reason}");
}
