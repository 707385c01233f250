//! The nftables backend against the kernel, beyond the traffic tests: bridges isolated by
//! concurrent first ADDs all end up isolated from each other, and DEL of the last pod of
//! each removes every pair and element.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cni_testkit::{Attachment, PluginRunner, TempDir, TempNetns, bins};
use serde_json::{Value, json};

fn conf(data: &TempDir, bridge: &str, addr: &str) -> Value {
    json!({"cniVersion": "1.0.0", "name": "fwnft", "type": "firewall",
        "backend": "nftables", "ingressPolicy": "same-bridge", "dataDir": data.path(),
        "prevResult": {"cniVersion": "1.0.0",
            "interfaces": [{"name": bridge}, {"name": format!("v{bridge}")},
                           {"name": "eth0", "sandbox": "/x"}],
            "ips": [{"address": addr, "interface": 2}]}})
}

#[test]
fn concurrent_first_adds_isolate_every_pair() {
    if !cni_testkit::require_root() {
        return;
    }
    let node = TempNetns::new("fwnft-node").unwrap();
    let pod = TempNetns::new("fwnft-pod").unwrap();
    let data = TempDir::new("fwnft").unwrap();
    let ours = PluginRunner::new(bins::our_plugin("firewall").unwrap())
        .in_netns(&node)
        .unwrap();
    let n = 6;
    let bridges: Vec<String> = (0..n).map(|i| format!("fwn{i}")).collect();
    let confs: Vec<Value> = (0..n)
        .map(|i| conf(&data, &bridges[i], &format!("10.96.{i}.5/24")))
        .collect();
    let atts: Vec<Attachment> = (0..n)
        .map(|i| Attachment::new(format!("ctr-{i}"), pod.path(), "eth0"))
        .collect();
    // The table exists first, so every ADD takes the isolation path at once.
    let warm = conf(&data, "fwnwarm", "10.96.99.5/24");
    let warm_att = Attachment::new("ctr-warm", pod.path(), "eth0");
    ours.add(&warm, &warm_att).unwrap();
    ours.del(&warm, &warm_att).unwrap();
    std::thread::scope(|s| {
        for i in 0..n {
            let (ours, c, a) = (&ours, &confs[i], &atts[i]);
            s.spawn(move || ours.add(c, a).unwrap());
        }
    });
    let ruleset = node
        .exec_ok("nft", &["list", "set", "inet", "cni_firewall", "isolation"])
        .unwrap()
        .stdout_text();
    for a in &bridges {
        for b in &bridges {
            if a != b {
                assert!(
                    ruleset.contains(&format!("\"{a}\" . \"{b}\"")),
                    "pair {a} . {b} missing:\n{ruleset}"
                );
            }
        }
    }
    for i in 0..n {
        ours.del(&confs[i], &atts[i]).unwrap();
    }
    let after = node
        .exec_ok("nft", &["list", "ruleset"])
        .unwrap()
        .stdout_text();
    assert!(
        !after.contains("fwn") && !after.contains("10.96."),
        "{after}"
    );
}
