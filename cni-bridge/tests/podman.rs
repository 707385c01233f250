//! Replays the bridge requests podman 4.3 made (cni-types/tests/fixtures/podman-4.3, in the
//! repository) against our
//! bridge and host-local: same config bytes, same CNI_ARGS (with `MAC=` and `IP=`), only the
//! namespace, `CNI_PATH` and the IPAM data directory replaced. The results must have the
//! recorded shape and values (static IP and MAC).

// Test helpers (not only #[test] functions) may panic on failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use cni_testkit::Attachment;
use common::{Ipam, Node, pod_link, root};
use serde_json::Value;

/// The captured vectors, kept in the repository with cni-types' fixtures.
fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cni-types/tests/fixtures/podman-4.3")
}

/// A vector; `None` (with the reason printed) when it is missing, a failure under CI.
fn vector(path: &str) -> Option<Value> {
    let p = vectors().join(path);
    match std::fs::read(&p) {
        Ok(b) => Some(serde_json::from_slice(&b).unwrap()),
        Err(e) => {
            cni_testkit::privilege::skip_or_fail(&format!(
                "vector {} not readable: {e}",
                p.display()
            ));
            None
        }
    }
}

/// The recorded config with our IPAM data directory.
fn conf_of(v: &Value, node: &Node) -> Value {
    let mut c: Value = serde_json::from_str(v["stdin_raw"].as_str().unwrap()).unwrap();
    c["ipam"]["dataDir"] = Value::from(node.data.path().display().to_string());
    c
}

/// Keys of a JSON value, recursively (`a.b[].c`), to compare result shapes.
fn shape(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{at}.{k}");
                out.push(p.clone());
                shape(x, &p, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                shape(x, &format!("{at}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn podman_static_ip_and_mac() {
    if !root() {
        return;
    }
    let (Some(add), Some(del)) = (
        vector("s2-static-ip-mac-multi-ports/01-bridge-ADD.json"),
        vector("s2-static-ip-mac-multi-ports/09-bridge-DEL.json"),
    ) else {
        return;
    };
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let pod = node.pod();
    let env = &add["env"];
    let a = Attachment::new(env["CNI_CONTAINERID"].as_str().unwrap(), pod.path(), "eth0")
        .with_args(env["CNI_ARGS"].as_str().unwrap());
    let conf = conf_of(&add, &node);
    let r = node.runner.add(&conf, &a).unwrap();
    let ours = r.to_value(cni_testkit::cni_types::Version::V1_0_0).unwrap();
    let recorded = &add["stdout"];
    let (mut s1, mut s2) = (Vec::new(), Vec::new());
    shape(&ours, "", &mut s1);
    shape(recorded, "", &mut s2);
    // The reference printed an empty `dns: {}`; a 1.0.0 result omits it when empty.
    s2.retain(|k| k != ".dns");
    s1.sort();
    s1.dedup();
    s2.sort();
    s2.dedup();
    assert_eq!(s1, s2, "result shape");
    assert_eq!(ours["interfaces"][0]["name"], "demo-br0");
    assert_eq!(ours["interfaces"][2]["mac"], "02:42:0a:58:05:32");
    assert_eq!(ours["ips"], recorded["ips"]);
    assert_eq!(ours["routes"], recorded["routes"]);
    let eth0 = pod_link(&pod, "eth0").unwrap();
    assert_eq!(
        cni_testkit::cni_linux::netlink::mac::format(&eth0.mac.unwrap()),
        "02:42:0a:58:05:32"
    );

    // DEL as podman sent it: with the ADD's result as prevResult (ours this time).
    let mut dconf = conf_of(&del, &node);
    dconf["prevResult"] = ours;
    node.runner.del(&dconf, &a).unwrap();
    assert!(pod_link(&pod, "eth0").is_none());
    assert!(node.allocations().is_empty());
    let chain =
        cni_bridge::masq::iptables_chain("podnet", env["CNI_CONTAINERID"].as_str().unwrap());
    assert!(!node.exec("iptables-save", &["-t", "nat"]).contains(&chain));
}
