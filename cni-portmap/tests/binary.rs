//! The `portmap` binary through the skel: passthrough of `prevResult` for every version,
//! error JSON, GC and STATUS (which the reference does not have), in throw-away namespaces.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] functions

mod common;

use cni_testkit::bins::CniPathDir;
use cni_testkit::runner::{Invocation, with_valid_attachments};
use cni_testkit::{Attachment, PluginRunner, TempNetns};
use cni_types::ErrorCode;
use serde_json::{Value, json};

use common::*;

fn runner(node: &TempNetns, dir: &CniPathDir) -> PluginRunner {
    PluginRunner::new(dir.plugin("portmap"))
        .cni_path([dir.path()])
        .in_netns(node)
        .unwrap()
}

#[test]
fn add_without_mappings_prints_prev_result_for_every_version() {
    if !root() {
        return;
    }
    let dir = CniPathDir::new().unwrap().ours(&["portmap"]).unwrap();
    let node = TempNetns::new("pmbin").unwrap();
    let pod = TempNetns::new("pmpod").unwrap();
    let r = runner(&node, &dir);
    let before = nft_ruleset(&node);
    for ver in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
        let prev = if ver.starts_with("0.") {
            json!({"cniVersion": ver, "interfaces":[{"name":"eth0","sandbox":"/x"}],
                   "ips":[{"version":"4","address":"10.0.0.2/24","interface":0}], "dns":{}})
        } else {
            json!({"cniVersion": ver, "interfaces":[{"name":"eth0","sandbox":"/x"}],
                   "ips":[{"address":"10.0.0.2/24","interface":0}]})
        };
        let conf = json!({"cniVersion": ver, "name":"n", "type":"portmap", "prevResult": prev});
        let att = Attachment::new("c1", pod.path(), "eth0");
        let out = r.call(&Invocation::new("ADD", &conf, Some(&att))).unwrap();
        let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(printed, prev, "{ver}");
        r.del(&conf, &att).unwrap();
    }
    assert_eq!(nft_ruleset(&node), before, "nothing was touched");
    assert!(
        !iptables_nat(&node, false).contains("CNI-"),
        "nothing was touched"
    );
}

#[test]
fn errors_as_json() {
    if !root() {
        return;
    }
    let dir = CniPathDir::new().unwrap().ours(&["portmap"]).unwrap();
    let node = TempNetns::new("pmbin").unwrap();
    let pod = TempNetns::new("pmpod").unwrap();
    let r = runner(&node, &dir);
    let att = Attachment::new("c1", pod.path(), "eth0");
    let maps = json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]);
    let e = r
        .add(
            &json!({"cniVersion":"1.0.0","name":"n","type":"portmap","runtimeConfig":{"portMappings":maps}}),
            &att,
        )
        .unwrap_err();
    let e = e.cni_error().unwrap();
    assert_eq!(e.msg, "must be called as chained plugin");
    assert_eq!(e.code, ErrorCode::InvalidNetworkConfig);
    let e = r
        .add(
            &json!({"cniVersion":"1.0.0","name":"n","type":"portmap",
                "runtimeConfig":{"portMappings":[{"hostPort":0,"containerPort":80,"protocol":"tcp"}]},
                "prevResult":{"cniVersion":"1.0.0"}}),
            &att,
        )
        .unwrap_err();
    assert_eq!(
        e.cni_error().unwrap().msg,
        "failed to parse config: Invalid host port number: 0"
    );
    let e = r
        .check(
            &json!({"cniVersion":"1.0.0","name":"n","type":"portmap","runtimeConfig":{"portMappings":maps}}),
            &att,
        )
        .unwrap_err();
    assert_eq!(e.cni_error().unwrap().msg, "Required prevResult missing");
    assert!(
        r.about()
            .unwrap()
            .starts_with("CNI portmap plugin (cni-rs)")
    );
}

fn conf(backend: &str, version: &str, sandbox: &str, port: u16) -> Value {
    json!({"cniVersion": version, "name": "gcnet", "type": "portmap", "backend": backend,
        "runtimeConfig": {"portMappings": [{"hostPort": port, "containerPort": 80, "protocol": "tcp"}]},
        "prevResult": {"cniVersion": version, "interfaces": [{"name": "eth0", "sandbox": sandbox}],
                       "ips": [{"address": "10.0.0.2/24", "interface": 0}]}})
}

#[test]
fn gc_and_status_both_backends() {
    if !root() {
        return;
    }
    let dir = CniPathDir::new().unwrap().ours(&["portmap"]).unwrap();
    for backend in ["iptables", "nftables"] {
        let node = TempNetns::new("pmgc").unwrap();
        let pod = TempNetns::new("pmpod").unwrap();
        let sandbox = pod.path().display().to_string();
        let r = runner(&node, &dir);
        let keep = Attachment::new("keep", pod.path(), "eth0");
        let stale = Attachment::new("stale", pod.path(), "eth0");
        r.add(&conf(backend, "1.1.0", &sandbox, 8080), &keep)
            .unwrap();
        r.add(&conf(backend, "1.1.0", &sandbox, 8081), &stale)
            .unwrap();
        let rules = |node: &TempNetns| match backend {
            "iptables" => iptables_nat(node, false),
            _ => nft_ruleset(node).join("\n"),
        };
        let text = rules(&node);
        assert!(text.contains("8080") && text.contains("8081"), "{text}");

        let gc_conf = with_valid_attachments(
            &json!({"cniVersion":"1.1.0","name":"gcnet","type":"portmap","backend":backend}),
            &[cni_types::Attachment {
                container_id: "keep".into(),
                ifname: "eth0".into(),
            }],
        );
        r.gc(&gc_conf).unwrap();
        let text = rules(&node);
        assert!(text.contains("8080"), "kept: {text}");
        assert!(!text.contains("8081"), "collected: {text}");
        r.check(&conf(backend, "1.1.0", &sandbox, 8080), &keep)
            .unwrap();
        // Another network's GC does not touch this one's entries.
        let other = with_valid_attachments(
            &json!({"cniVersion":"1.1.0","name":"othernet","type":"portmap","backend":backend}),
            &[],
        );
        r.gc(&other).unwrap();
        assert!(rules(&node).contains("8080"));
        // Without the list, GC removes nothing.
        r.gc(&json!({"cniVersion":"1.1.0","name":"gcnet","type":"portmap","backend":backend}))
            .unwrap();
        assert!(rules(&node).contains("8080"));

        r.status(&json!({"cniVersion":"1.1.0","name":"gcnet","type":"portmap","backend":backend}))
            .unwrap();
    }
    // STATUS with iptables when the binaries cannot be found: error 50.
    let node = TempNetns::new("pmst").unwrap();
    let r = runner(&node, &dir).env("PATH", "/nonexistent");
    let e = r
        .status(&json!({"cniVersion":"1.1.0","name":"n","type":"portmap","backend":"iptables"}))
        .unwrap_err();
    assert_eq!(e.cni_error().unwrap().code, ErrorCode::PluginNotAvailable);
    assert_eq!(
        e.cni_error().unwrap().msg,
        "iptables backend is not available"
    );
}
