//! The k3s-style chain (here bridge + host-local + portmap + bandwidth, all ours) through
//! cni-proto's runtime, the `bandwidth` and `portMappings` capabilities set the way
//! containerd's go-cni sends them: ADD shapes the pod's veth, CHECK passes, GC keeps it,
//! DEL leaves no ifb device and no qdisc.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cni_testkit::cni_proto::runtime::RuntimeConf;
use cni_testkit::{ChainRunner, TempDir, TempNetns, bins};
use common::{ifbs, tc};
use serde_json::json;

#[test]
fn k3s_style_chain_shapes_and_tears_down_to_nothing() {
    if !cni_testkit::require_root() {
        return;
    }
    let node = TempNetns::new("bw-k3s").unwrap();
    let plugins = bins::cni_path_with(&["bridge", "host-local", "portmap", "bandwidth"]).unwrap();
    let data = TempDir::new("bw-k3s").unwrap();
    let mut list = json!({
    "cniVersion": "1.0.0", "name": "cbr0",
    "plugins": [
        {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.42.0.0/24"}]]}},
        {"type": "portmap", "capabilities": {"portMappings": true}},
        {"type": "bandwidth", "capabilities": {"bandwidth": true}}
    ]});
    cni_testkit::chain::set_ipam_data_dir(&mut list, data.path());
    let chain = ChainRunner::from_json(&list, [plugins.path()])
        .unwrap()
        .in_netns(&node)
        .unwrap();
    let pod = TempNetns::new("bw-k3s-pod").unwrap();
    // go-cni: Go field names, bursts of math.MaxUint32.
    let rt = RuntimeConf::new("k3s-ctr-1", pod.path().display().to_string(), "eth0")
        .with_capability(
            "bandwidth",
            json!({"IngressRate": 8_000_000, "IngressBurst": 4_294_967_295u64,
                   "EgressRate": 20_000_000, "EgressBurst": 4_294_967_295u64}),
        )
        .with_capability(
            "portMappings",
            json!([{"HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}]),
        );
    let ifb = cni_bandwidth::ifb_name("cbr0", "k3s-ctr-1");

    let r = chain.add(&rt).unwrap();
    let names: Vec<&str> = r.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(names[0], "cni0");
    assert_eq!(names[3], ifb);
    let veth = names[1].to_string();
    let q = tc(&node, &["qdisc", "show"]);
    assert!(
        q.iter()
            .any(|l| l.contains(&format!("tbf 1: dev {veth} root")) && l.contains("rate 8Mbit")),
        "{q:#?}"
    );
    assert!(
        q.iter()
            .any(|l| l.contains(&format!("tbf 1: dev {ifb} root")) && l.contains("rate 20Mbit")),
        "{q:#?}"
    );
    let f = tc(&node, &["filter", "show", "dev", &veth, "parent", "ffff:"]);
    assert!(
        f.iter()
            .any(|l| l.contains(&format!("Egress Redirect to device {ifb}"))),
        "{f:#?}"
    );
    chain.check(&rt).unwrap();
    // GC with the attachment valid keeps it.
    chain
        .gc(&[cni_testkit::cni_types::Attachment {
            container_id: "k3s-ctr-1".into(),
            ifname: "eth0".into(),
        }])
        .unwrap();
    assert_eq!(ifbs(&node), vec![ifb.clone()]);

    chain.del(&rt).unwrap();
    assert!(ifbs(&node).is_empty(), "{:?}", ifbs(&node));
    let q = tc(&node, &["qdisc", "show"]);
    assert!(
        !q.iter().any(|l| l.contains("tbf") || l.contains("ingress")),
        "{q:#?}"
    );
    // DEL again: nothing to do, no error.
    chain.del(&rt).unwrap();
}

/// GC through the runtime after the pod vanished without DEL and its cached result was lost
/// (so the runtime synthesises no DEL): our GC finds the ifb device by its alias and
/// removes it.
#[test]
fn gc_through_the_runtime_removes_a_vanished_pods_ifb() {
    if !cni_testkit::require_root() {
        return;
    }
    let node = TempNetns::new("bw-gc").unwrap();
    let plugins = bins::cni_path_with(&["bridge", "host-local", "bandwidth"]).unwrap();
    let data = TempDir::new("bw-gc").unwrap();
    let mut list = json!({
    "cniVersion": "1.1.0", "name": "gcnet",
    "plugins": [
        {"type": "bridge", "bridge": "cni1",
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.43.0.0/24"}]]}},
        {"type": "bandwidth", "egressRate": 20_000_000, "egressBurst": 160_000}
    ]});
    cni_testkit::chain::set_ipam_data_dir(&mut list, data.path());
    let chain = ChainRunner::from_json(&list, [plugins.path()])
        .unwrap()
        .in_netns(&node)
        .unwrap();
    let pod = TempNetns::new("bw-gc-pod").unwrap();
    let rt = RuntimeConf::new("gone-ctr", pod.path().display().to_string(), "eth0");
    chain.add(&rt).unwrap();
    assert_eq!(ifbs(&node).len(), 1);
    // The pod vanishes without DEL (its veth goes with it; the ifb stays).
    pod.delete().unwrap();
    assert_eq!(ifbs(&node).len(), 1);
    for entry in std::fs::read_dir(chain.cache_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
    chain.gc(&[]).unwrap();
    assert!(ifbs(&node).is_empty(), "{:?}", ifbs(&node));
}
