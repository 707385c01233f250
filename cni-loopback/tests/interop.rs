//! Ours against the Go reference `loopback` (Debian v1.1.1 in /usr/lib/cni): the same input
//! gives the same kernel state and the same result, and each one's DEL and CHECK work on what
//! the other's ADD did.
//!
//! One known difference, on purpose: before 1.0.0 the reference prints its 1.0.0 result
//! unconverted under the config's `cniVersion`; ours is in the version's shape. The
//! addresses and interface are compared there; at 1.0.0 the whole JSON is.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cni_testkit::cni_types::{CniResult, Version};
use cni_testkit::runner::with_prev_result;
use cni_testkit::{Invocation, PluginRunner, TempNetns, require_root};
use common::{att, conf, go, lo_state, normalize, ours, pod, runner};
use serde_json::Value;

fn have_go() -> bool {
    if go().is_file() {
        return true;
    }
    cni_testkit::privilege::skip_or_fail("the Go loopback is not installed in /usr/lib/cni")
}

/// ADD with `plugin` on a fresh pod: the raw result and the kernel's view of lo after.
fn add(plugin: &PluginRunner, v: Version) -> (Value, (bool, Vec<String>), TempNetns) {
    let pod = pod();
    let out = plugin
        .call(&Invocation::new("ADD", &conf(v), Some(&att("ctr", &pod))))
        .unwrap_or_else(|e| panic!("{} at {v}: {e}", plugin.binary().display()));
    let raw: Value = serde_json::from_slice(&out.stdout).unwrap();
    (raw, lo_state(&pod), pod)
}

/// The addresses and interface names of a result, read as the shape it is really in.
fn content(raw: &Value) -> (Vec<String>, Vec<String>) {
    let shape = if raw.get("ips").is_some() {
        Some(Version::V1_0_0)
    } else {
        None
    };
    let mut r = raw.clone();
    if shape.is_some() {
        // The reference's pre-1.0.0 output is a 1.0.0 result: read it as one.
        r["cniVersion"] = Value::from("1.0.0");
    }
    let res = CniResult::from_value(r, shape).unwrap();
    (
        res.ips.iter().map(|i| i.address.to_string()).collect(),
        res.interfaces.iter().map(|i| i.name.clone()).collect(),
    )
}

#[test]
fn same_kernel_state_and_result_as_the_go_loopback() {
    if !require_root() || !have_go() {
        return;
    }
    let node = TempNetns::new("node").unwrap();
    let (theirs, mine) = (runner(go(), &node), runner(ours(), &node));
    let go_versions = theirs.version(Version::V1_0_0).unwrap().supported_versions;
    for v in Version::ALL.into_iter().filter(|v| go_versions.contains(v)) {
        let (go_raw, go_lo, _p1) = add(&theirs, v);
        let (our_raw, our_lo, _p2) = add(&mine, v);
        assert_eq!(our_lo, go_lo, "{v}: lo after ADD");
        assert!(our_lo.0);
        let (go_ips, go_ifs) = content(&go_raw);
        let (our_ips, our_ifs) = content(&our_raw);
        assert_eq!(our_ips, go_ips, "{v}: addresses");
        if v >= Version::V0_3_0 {
            assert_eq!(our_ifs, go_ifs, "{v}: interfaces");
        }
        if v == Version::V1_0_0 {
            assert_eq!(
                normalize(our_raw),
                normalize(go_raw),
                "{v}: the whole result"
            );
        }
    }
}

#[test]
fn each_removes_and_checks_what_the_other_set_up() {
    if !require_root() || !have_go() {
        return;
    }
    let node = TempNetns::new("node").unwrap();
    let (theirs, mine) = (runner(go(), &node), runner(ours(), &node));
    let v = Version::V1_0_0;
    for (adder, other) in [(&theirs, &mine), (&mine, &theirs)] {
        let pod = pod();
        let a = att("ctr", &pod);
        let res = adder.add(&conf(v), &a).unwrap();
        let c = with_prev_result(&conf(v), &res).unwrap();
        other.check(&c, &a).unwrap();
        other.del(&c, &a).unwrap();
        assert!(!lo_state(&pod).0);
        // Both CHECKs now fail: lo is down.
        assert!(adder.check(&c, &a).is_err());
        assert!(other.check(&c, &a).is_err());
        // DEL with the namespace gone succeeds for both.
        pod.delete().unwrap();
        adder.del(&c, &a).unwrap();
        other.del(&c, &a).unwrap();
        // And with an empty CNI_NETNS.
        adder.del(&c, &a.without_netns()).unwrap();
        other.del(&c, &a.without_netns()).unwrap();
    }
}
