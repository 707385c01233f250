//! Smoke test: `cni-bench --quick` runs and produces the report and the chart. It never
//! asserts a timing; it only checks that every section was measured.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn quick_run_produces_the_table_and_the_chart() {
    if !cni_testkit::require_root() {
        return;
    }
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_cni-bench"));
    let dir = cni_testkit::TempDir::new("cni-bench-smoke").unwrap();
    let svg = dir.path().join("scale.svg");
    // --quick with fewer samples and pods than usual: debug builds are slower and this only
    // checks that everything runs.
    let out = Command::new(bin)
        .args(["--quick", "--runs", "2", "--pods", "0,5", "--ours-dir"])
        .arg(bin.parent().unwrap())
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for heading in [
        "## Goals",
        "## Process cost",
        "## host-local",
        "## bridge + host-local",
        "## portmap",
        "## Chain",
        "## Small plugins",
        // CI installs golang-go and golang-github-appc-cni-dev for the driver.
        "## Go libcni runtime",
        "## Scale",
        "## Concurrency",
        "## Binary sizes",
    ] {
        assert!(stdout.contains(heading), "missing {heading}:\n{stdout}");
    }
    assert!(
        stdout.contains("| 5 |"),
        "the scale table has the 5-pod row:\n{stdout}"
    );
    assert!(stdout.contains("all distinct"), "{stdout}");
    // The whole process tree of a chain ADD through cnitool was measured, for both.
    assert!(
        stdout.contains("chain ADD's process tree") && stdout.contains(" KiB against "),
        "{stdout}"
    );
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(chart.matches("<polyline").count(), 3);
}
