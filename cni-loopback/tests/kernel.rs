//! The `loopback` binary against the kernel: ADD brings `lo` up with its addresses (read back
//! from the kernel, traffic over it), CHECK notices drift, DEL sets it down and succeeds when
//! there is nothing left to do. Every call runs the binary as a runtime does, inside a
//! throw-away node namespace, on a throw-away pod.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use cni_testkit::cni_types::{CniResult, Version};
use cni_testkit::runner::with_prev_result;
use cni_testkit::{Invocation, Snapshot, TempNetns, assert_unchanged, require_root, traffic};
use common::{att, conf, lo_state, ours, pod, runner, set_lo};

const LO_ADDRS: [&str; 2] = ["127.0.0.1/8", "::1/128"];

#[test]
fn add_brings_lo_up_with_its_addresses_at_every_version_and_del_sets_it_down() {
    if !require_root() {
        return;
    }
    let node = TempNetns::new("node").unwrap();
    let node_before = Snapshot::of(&node).unwrap();
    let lo = runner(ours(), &node);
    for v in Version::ALL {
        let pod = pod();
        let pod_before = Snapshot::of(&pod).unwrap();
        assert!(!lo_state(&pod).0);
        let a = att("ctr", &pod);
        let out = lo
            .call(&Invocation::new("ADD", &conf(v), Some(&a)))
            .unwrap_or_else(|e| panic!("{v}: {e}"));

        // The kernel: lo is up with 127.0.0.1/8 and ::1/128, and carries traffic.
        assert_eq!(
            lo_state(&pod),
            (true, LO_ADDRS.map(String::from).to_vec()),
            "{v}"
        );
        traffic::ping(&pod, "127.0.0.1".parse().unwrap(), Duration::from_secs(2)).unwrap();
        traffic::ping(&pod, "::1".parse().unwrap(), Duration::from_secs(2)).unwrap();

        // The result, in the version's shape, says the same.
        let raw: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(raw["cniVersion"], v.to_string());
        let res = CniResult::from_value(raw.clone(), Some(v)).unwrap();
        let ips: Vec<String> = res.ips.iter().map(|i| i.address.to_string()).collect();
        assert_eq!(ips, LO_ADDRS, "{v}");
        if v >= Version::V0_3_0 {
            assert_eq!(raw["interfaces"][0]["name"], "lo");
            assert_eq!(
                raw["interfaces"][0]["sandbox"],
                pod.path().display().to_string()
            );
            assert_eq!(raw["ips"][0]["interface"], 0);
            assert_eq!(raw["ips"][1]["version"].is_string(), v < Version::V1_0_0);
        } else {
            assert_eq!(raw["ip4"]["ip"], "127.0.0.1/8");
            assert_eq!(raw["ip6"]["ip"], "::1/128");
        }

        lo.del(&conf(v), &a).unwrap();
        assert!(!lo_state(&pod).0, "{v}: lo still up after DEL");
        assert!(
            !traffic::can_ping(&pod, "127.0.0.1".parse().unwrap(), Duration::from_secs(1)),
            "{v}: 127.0.0.1 still answers with lo down"
        );
        assert_unchanged!(pod_before, &pod, "pod after ADD + DEL at {v}");
    }
    assert_unchanged!(node_before, &node, "the node");
}

#[test]
fn check_fails_when_lo_is_down_or_lacks_an_address() {
    if !require_root() {
        return;
    }
    let node = TempNetns::new("node").unwrap();
    let lo = runner(ours(), &node);
    for v in [Version::V0_4_0, Version::V1_0_0, Version::V1_1_0] {
        let pod = pod();
        let a = att("ctr", &pod);
        let res = lo.add(&conf(v), &a).unwrap();
        let with_prev = with_prev_result(&conf(v), &res).unwrap();
        lo.check(&with_prev, &a).unwrap();
        // Without a prevResult, CHECK looks for the kernel's own addresses.
        lo.check(&conf(v), &a).unwrap();

        set_lo(&pod, false);
        let e = lo.check(&with_prev, &a).unwrap_err();
        let e = e.cni_error().expect("a CNI error");
        assert_eq!(
            (e.code(), e.msg.as_str()),
            (999, "loopback interface is down")
        );

        set_lo(&pod, true);
        lo.check(&with_prev, &a).unwrap();
        // IPv6 switched off on lo: ::1, which ADD reported, is gone.
        pod.sysctl_set("net.ipv6.conf.lo.disable_ipv6", "1")
            .unwrap();
        let e = lo.check(&with_prev, &a).unwrap_err();
        assert_eq!(
            e.cni_error().map(|e| e.msg.as_str()),
            Some("loopback interface lacks address ::1/128"),
            "{v}"
        );
        // ... which a CHECK without prevResult no longer expects.
        lo.check(&conf(v), &a).unwrap();
        lo.del(&conf(v), &a).unwrap();
    }
}

#[test]
fn del_succeeds_when_lo_is_down_the_netns_empty_or_gone() {
    if !require_root() {
        return;
    }
    let node = TempNetns::new("node").unwrap();
    let lo = runner(ours(), &node);
    let v = Version::V0_3_1;
    let pod = pod();
    let a = att("ctr", &pod);
    lo.add(&conf(v), &a).unwrap();
    lo.del(&conf(v), &a).unwrap();
    // Again, lo already down.
    lo.del(&conf(v), &a).unwrap();
    assert!(!lo_state(&pod).0);
    // An empty CNI_NETNS: nothing to do, and the pod is not touched.
    set_lo(&pod, true);
    lo.del(&conf(v), &a.without_netns()).unwrap();
    assert!(lo_state(&pod).0, "DEL without CNI_NETNS changed the pod");
    // The namespace is gone.
    pod.delete().unwrap();
    lo.del(&conf(v), &a).unwrap();
    // A config DEL cannot use is no reason to fail (DEL reads nothing from it).
    let broken = serde_json::json!({"cniVersion": "1.0.0", "name": "cni-loopback",
        "type": "loopback", "prevResult": {"ips": "nonsense"}});
    lo.del(&broken, &a).unwrap();
}

#[test]
fn add_refuses_a_non_loopback_address_and_leaves_lo_as_it_was() {
    if !require_root() {
        return;
    }
    let node = TempNetns::new("node").unwrap();
    let lo = runner(ours(), &node);
    let pod = pod();
    {
        let mut nl = pod.netlink().unwrap();
        let idx = nl.require_link("lo").unwrap().index;
        nl.addr_add(idx, "10.1.2.3/24".parse().unwrap(), Default::default())
            .unwrap();
    }
    let before = lo_state(&pod);
    let e = lo
        .add(&conf(Version::V1_0_0), &att("ctr", &pod))
        .unwrap_err();
    assert_eq!(
        e.cni_error().map(|e| e.msg.as_str()),
        Some("loopback interface found with non-loopback address \"10.1.2.3\"")
    );
    assert_eq!(lo_state(&pod), before, "a failed ADD changed lo");
    assert!(!before.0);
}

#[test]
fn add_passes_prev_result_on() {
    if !require_root() {
        return;
    }
    let node = TempNetns::new("node").unwrap();
    let lo = runner(ours(), &node);
    let pod = pod();
    let prev = CniResult::from_slice(
        br#"{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","sandbox":"/x"}],
            "ips":[{"version":"4","interface":0,"address":"10.1.0.2/24","gateway":"10.1.0.1"}],
            "dns":{"nameservers":["10.1.0.1"]}}"#,
        None,
    )
    .unwrap();
    let c = with_prev_result(&conf(Version::V0_4_0), &prev).unwrap();
    let res = lo.add(&c, &att("ctr", &pod)).unwrap();
    assert_eq!(res, prev);
    assert!(lo_state(&pod).0);
}

#[test]
fn the_netns_must_exist_for_add_and_check() {
    if !require_root() {
        return;
    }
    let node = TempNetns::new("node").unwrap();
    let lo = runner(ours(), &node);
    let gone = pod();
    let a = att("ctr", &gone);
    gone.delete().unwrap();
    let e = lo.add(&conf(Version::V1_0_0), &a).unwrap_err();
    let msg = &e.cni_error().expect("a CNI error").msg;
    assert!(msg.starts_with("failed to open netns"), "{msg}");
    assert!(lo.check(&conf(Version::V1_0_0), &a).is_err());
}

#[test]
fn version_gc_and_status() {
    if !require_root() {
        return;
    }
    let node = TempNetns::new("node").unwrap();
    let lo = runner(ours(), &node);
    let info = lo.version(Version::V1_1_0).unwrap();
    assert_eq!(info.cni_version, Version::V1_1_0);
    assert_eq!(info.supported_versions, Version::ALL.to_vec());
    let out = lo
        .call(&Invocation::new("VERSION", &conf(Version::V0_3_1), None))
        .unwrap();
    assert_eq!(
        out.stdout_text(),
        "{\"cniVersion\":\"1.1.0\",\"supportedVersions\":[\"0.1.0\",\"0.2.0\",\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]}\n"
    );
    assert!(lo.about().unwrap().starts_with("CNI loopback plugin v"));
    lo.gc(&conf(Version::V1_1_0)).unwrap();
    lo.status(&conf(Version::V1_1_0)).unwrap();
    // GC and STATUS need 1.1.0, CHECK 0.4.0 (the skel's rule).
    assert_eq!(lo.gc(&conf(Version::V1_0_0)).unwrap_err().code(), Some(1));
    assert_eq!(
        lo.status(&conf(Version::V1_0_0)).unwrap_err().code(),
        Some(1)
    );
    let pod = pod();
    let e = lo
        .check(&conf(Version::V0_3_1), &att("c", &pod))
        .unwrap_err();
    assert_eq!(e.code(), Some(1));
}
