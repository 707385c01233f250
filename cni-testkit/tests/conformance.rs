//! The conformance suite judged on its own: a deliberately faulty plugin (the
//! `faulty-plugin` example, run under the name of the fault it should show) must fail exactly
//! the checks its fault breaks, and its conformant mode must pass everything.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] functions

use std::path::PathBuf;

use cni_testkit::conformance::{Outcome, Report, Suite, SuiteOptions};
use cni_testkit::{TempDir, bins, require_root};
use cni_types::Version;
use serde_json::json;

/// The example binary linked under `name` (the fault it shows).
fn faulty(dir: &TempDir, name: &str) -> PathBuf {
    let bin = bins::example_bin("faulty-plugin").expect(
        "the faulty-plugin example: `cargo test -p cni-testkit` builds it (or `cargo build -p cni-testkit --examples`)",
    );
    let link = dir.join(name);
    std::os::unix::fs::symlink(bin, &link).unwrap();
    link
}

fn judge(plugin: PathBuf, versions: &[Version]) -> Report {
    let conf = json!({"cniVersion": "1.1.0", "name": "faulty", "type": "faulty",
        "ipam": {"type": "none"}});
    let mut opts = SuiteOptions::new(plugin, conf);
    if !versions.is_empty() {
        opts = opts.versions(versions.iter().copied());
    }
    Suite::new(opts).unwrap().run()
}

fn outcome<'r>(r: &'r Report, check: &str) -> &'r Outcome {
    &r.get(check)
        .unwrap_or_else(|| panic!("no check {check} in\n{r}"))
        .outcome
}

#[test]
fn a_conformant_plugin_passes_every_check_of_every_version() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("faulty").unwrap();
    let r = judge(faulty(&dir, "conformant"), &[]);
    assert!(r.passed(), "{r}");
    assert_eq!(r.versions, Version::ALL.to_vec());
    assert_eq!(*outcome(&r, "gc/1.1.0"), Outcome::Pass);
    assert_eq!(*outcome(&r, "del-after-failed-add/0.2.0"), Outcome::Pass);
    assert!(matches!(
        outcome(&r, "add-existing-ifname"),
        Outcome::Skip(_)
    ));
    assert_eq!(r.exit_code(), 0);
}

#[test]
fn a_leak_on_del_is_caught() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("faulty").unwrap();
    let r = judge(faulty(&dir, "leaky"), &[Version::V0_2_0, Version::V1_1_0]);
    for check in [
        "del-cleans-up/0.2.0",
        "del-cleans-up/1.1.0",
        "del-netns-gone/1.1.0",
        "del-netns-empty/1.1.0",
    ] {
        let Outcome::Fail(reason) = outcome(&r, check) else {
            panic!("{check} should fail:\n{r}");
        };
        assert!(reason.contains("new file left in the node"), "{reason}");
        assert!(
            reason.contains("cnitk1-"),
            "names the second attachment: {reason}"
        );
    }
    // A leaky DEL is still idempotent, and the file it keeps makes CHECK pass after DEL.
    assert_eq!(*outcome(&r, "del-idempotent/1.1.0"), Outcome::Pass);
    assert!(matches!(
        outcome(&r, "check-after-del/1.1.0"),
        Outcome::Fail(_)
    ));
    assert!(r.get("del-cleans-up/0.2.0").unwrap().known_issue.is_none());
    assert_eq!(r.exit_code(), 1);
}

#[test]
fn wrong_error_codes_are_caught() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("faulty").unwrap();
    let r = judge(faulty(&dir, "bad-codes"), &[Version::V1_1_0]);
    let bad: Vec<&str> = r
        .results
        .iter()
        .filter(|c| c.name.starts_with("bad-input/"))
        .map(|c| c.name.as_str())
        .collect();
    assert!(bad.len() >= 10, "{r}");
    for name in bad {
        let Outcome::Fail(reason) = outcome(&r, name) else {
            panic!("{name} should fail:\n{r}");
        };
        assert!(reason.starts_with("error code 999"), "{name}: {reason}");
    }
    // Everything that does not look at codes still passes.
    assert_eq!(*outcome(&r, "add/1.1.0"), Outcome::Pass);
    assert_eq!(*outcome(&r, "gc/1.1.0"), Outcome::Pass);
}

#[test]
fn a_gc_that_releases_nothing_is_caught() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("faulty").unwrap();
    let r = judge(faulty(&dir, "no-gc"), &[Version::V1_1_0]);
    let Outcome::Fail(reason) = outcome(&r, "gc/1.1.0") else {
        panic!("gc should fail:\n{r}");
    };
    assert!(
        reason.contains("after GC with only the first attachment valid"),
        "{reason}"
    );
    assert_eq!(r.failures(), vec!["gc/1.1.0"], "{r}");
}

#[test]
fn a_check_that_always_passes_is_caught() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("faulty").unwrap();
    let r = judge(
        faulty(&dir, "check-ok"),
        &[Version::V0_4_0, Version::V1_1_0],
    );
    assert_eq!(
        r.failures(),
        vec!["check-after-del/0.4.0", "check-after-del/1.1.0"],
        "{r}"
    );
}

#[test]
fn versions_the_plugin_does_not_list_are_not_tested() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("faulty").unwrap();
    // Ask for 1.1.0 only from a plugin that supports it, and one that is not a spec version.
    let r = judge(
        faulty(&dir, "conformant"),
        &[Version::V1_1_0, Version::new(9, 9, 9)],
    );
    assert_eq!(r.versions, vec![Version::V1_1_0]);
    assert!(r.get("add/1.0.0").is_none());
    assert!(r.passed(), "{r}");
}

#[test]
fn the_json_report_has_every_check() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("faulty").unwrap();
    let opts = SuiteOptions::new(
        faulty(&dir, "leaky"),
        json!({"cniVersion": "1.1.0", "name": "faulty", "type": "faulty", "ipam": {}}),
    )
    .versions([Version::V1_1_0])
    .only(["del-cleans-up", "version"]);
    let r = Suite::new(opts).unwrap().run();
    let j = r.to_json();
    let names: Vec<&str> = j["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["version", "del-cleans-up/1.1.0"]);
    assert_eq!(j["summary"]["fail"], 1);
    assert_eq!(j["identity"]["implementation"], "other");
}
