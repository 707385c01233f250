//! Replay the host-local requests podman 4.3 really sent (captured in
//! cni-types/tests/fixtures/podman-4.3, in the repository) against our binary, with our own dataDir, and compare with
//! what the reference plugin answered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use cni_types::CniResult;
use common::{Call, TempDir, ours, reservations};
use serde_json::Value;

/// The captured vectors, kept in the repository with cni-types' fixtures.
fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cni-types/tests/fixtures/podman-4.3")
}

fn vector_files() -> Option<Vec<PathBuf>> {
    let root = vectors();
    if !root.is_dir() {
        let why = format!("{} is missing", root.display());
        if cni_testkit::privilege::in_ci() {
            panic!("{why}");
        }
        eprintln!("SKIPPED: {why}");
        return None;
    }
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    scenarios.sort();
    let mut files = Vec::new();
    for s in scenarios {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&s)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.contains("-host-local-"))
            })
            .collect();
        v.sort();
        files.extend(v);
    }
    Some(files)
}

#[test]
fn replays_podman_requests() {
    let Some(files) = vector_files() else { return };
    assert!(
        files.len() >= 7,
        "expected the host-local vectors, got {files:?}"
    );
    let bin = ours();
    let t = TempDir::new("podman");
    let mut held = 0i64;
    for f in files {
        let rec: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let env = &rec["env"];
        let command = env["CNI_COMMAND"].as_str().unwrap();
        let id = env["CNI_CONTAINERID"].as_str().unwrap();
        let args = env["CNI_ARGS"].as_str().unwrap_or("");
        let mut stdin: Value = serde_json::from_str(rec["stdin_raw"].as_str().unwrap()).unwrap();
        stdin["ipam"]["dataDir"] = Value::String(t.s());
        let net = stdin["name"].as_str().unwrap().to_string();
        let dir = t.path().join(&net);
        let name = f.display().to_string();

        let expected = (command == "ADD")
            .then(|| CniResult::from_value(rec["stdout"].clone(), None).expect("recorded result"));
        // Seed round robin so the reference's address comes next (the recorded runs had
        // earlier allocations on that node).
        if let Some(exp) = &expected
            && !args.contains("IP=")
        {
            let IpAddr::V4(a) = exp.ips[0].address.addr() else {
                panic!("v4 vector")
            };
            std::fs::create_dir_all(&dir).unwrap();
            let prev = std::net::Ipv4Addr::from(u32::from(a) - 1);
            std::fs::write(dir.join("last_reserved_ip.0"), prev.to_string()).unwrap();
        }

        let out = Call::new(&bin, command, id)
            .ifname(env["CNI_IFNAME"].as_str().unwrap())
            .args(args)
            .run(&stdin.to_string());
        assert_eq!(
            Some(i64::from(out.code)),
            rec["exit_code"].as_i64(),
            "{name}: {out:?}"
        );
        match expected {
            Some(exp) => {
                held += 1;
                let got = out.result();
                assert_eq!(got, exp, "{name}");
                let ip = exp.ips[0].address.addr().to_string();
                assert!(reservations(&dir).contains(&ip), "{name}");
                assert_eq!(
                    std::fs::read_to_string(dir.join(&ip)).unwrap(),
                    format!("{id}\r\neth0")
                );
            }
            None => {
                held -= 1;
                assert!(out.stdout.is_empty(), "{name}");
                assert!(
                    !std::fs::read_dir(&dir).unwrap().any(|e| {
                        std::fs::read_to_string(e.unwrap().path()).is_ok_and(|c| c.starts_with(id))
                    }),
                    "{name}: released"
                );
            }
        }
    }
    // s4's bridge DEL failed, so its host-local DEL never ran: that one stays reserved.
    assert_eq!(reservations(t.path().join("podnet")).len() as i64, held);
    assert_eq!(held, 1);
}
