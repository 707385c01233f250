//! The conformance suite (cni-testkit) judges our firewall chained after our bridge, with the
//! config in tests/configs/conformance.conflist (iptables and nftables backends).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use cni_testkit::conformance::{Outcome, Report, Suite, SuiteOptions};
use cni_testkit::{bins, require_root};

fn config(backend: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/conformance.conflist");
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    c["plugins"][1]["backend"] = backend.into();
    c
}

fn judge(backend: &str) -> Report {
    let helpers = bins::cni_path_with(&["bridge", "host-local"]).unwrap();
    let opts = SuiteOptions::new(bins::our_plugin("firewall").unwrap(), config(backend))
        .cni_path([helpers.path()]);
    let report = Suite::new(opts).unwrap().run();
    println!("{report}");
    report
}

fn passes(backend: &str) {
    if !require_root() {
        return;
    }
    let r = judge(backend);
    assert!(
        r.passed(),
        "our firewall ({backend}) fails the conformance suite:\n{r}"
    );
    for check in [
        "add/1.1.0",
        "del-cleans-up/1.1.0",
        "check-after-del/1.1.0",
        "gc/1.1.0",
        "del-netns-gone/1.0.0",
    ] {
        let c = r
            .get(check)
            .unwrap_or_else(|| panic!("no check {check}\n{r}"));
        assert_eq!(c.outcome, Outcome::Pass, "{check}\n{r}");
    }
}

#[test]
fn our_firewall_passes_the_conformance_suite_with_iptables() {
    passes("iptables");
}

#[test]
fn our_firewall_passes_the_conformance_suite_with_nftables() {
    passes("nftables");
}
