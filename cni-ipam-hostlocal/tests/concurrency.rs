//! Many ADD processes at once against one store hand out distinct addresses: ours alone, and
//! ours mixed with the reference Go binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use cni_types::{CniResult, Version};
use common::{Call, TempDir, conf, go, ours, read, reservations};

const N: usize = 64;

/// Start every process first (each blocks reading its config), then feed them all, then
/// collect: the ADDs really run at the same time.
fn run_at_once(bins: &[PathBuf], config: &str) -> Vec<(String, CniResult)> {
    let ids: Vec<String> = (0..bins.len()).map(|i| format!("ctr{i}")).collect();
    let mut children: Vec<_> = bins
        .iter()
        .zip(&ids)
        .map(|(bin, id)| Call::new(bin, "ADD", id).command().spawn().expect("spawn"))
        .collect();
    for child in &mut children {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(config.as_bytes()).expect("write");
    }
    children
        .into_iter()
        .zip(ids)
        .map(|(child, id)| {
            let o = child.wait_with_output().expect("wait");
            assert!(
                o.status.success(),
                "{id}: {}",
                String::from_utf8_lossy(&o.stdout)
            );
            let r = CniResult::from_slice(&o.stdout, None).expect("result");
            (id, r)
        })
        .collect()
}

fn assert_distinct(results: &[(String, CniResult)], dir: &std::path::Path) {
    let addrs: HashSet<IpAddr> = results
        .iter()
        .map(|(_, r)| r.ips[0].address.addr())
        .collect();
    assert_eq!(addrs.len(), N, "{N} distinct addresses");
    assert_eq!(reservations(dir).len(), N);
    for (id, r) in results {
        let f = dir.join(r.ips[0].address.addr().to_string());
        assert_eq!(
            read(f),
            format!("{id}\r\neth0"),
            "each file names its owner"
        );
    }
}

#[test]
fn sixty_four_concurrent_adds() {
    let t = TempDir::new("conc");
    let c = conf(
        Version::V1_0_0,
        "busy",
        &t.s(),
        r#""subnet":"10.60.0.0/24""#,
    );
    let results = run_at_once(&vec![ours(); N], &c);
    assert_distinct(&results, &t.path().join("busy"));
}

#[test]
fn sixty_four_concurrent_adds_mixed_with_go() {
    let Some(go) = go() else { return };
    let t = TempDir::new("conc-mixed");
    let c = conf(
        Version::V1_0_0,
        "busy",
        &t.s(),
        r#""subnet":"10.61.0.0/24""#,
    );
    let bins: Vec<PathBuf> = (0..N)
        .map(|i| if i % 2 == 0 { ours() } else { go.clone() })
        .collect();
    let results = run_at_once(&bins, &c);
    assert_distinct(&results, &t.path().join("busy"));
    // Both kinds of process can release what the other wrote.
    for (i, (id, _)) in results.iter().enumerate() {
        let bin = if i % 3 == 0 { go.clone() } else { ours() };
        Call::new(&bin, "DEL", id).run(&c).ok();
    }
    assert!(reservations(t.path().join("busy")).is_empty());
}
