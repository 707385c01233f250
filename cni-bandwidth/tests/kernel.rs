//! Our bandwidth binary against the kernel, read back with iproute2's `tc` and `ip` (an
//! independent view): the reference's layout after ADD, nothing after DEL, CHECK failing on
//! each drift, the configuration's errors and precedence, containerd's capability, GC.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cni_testkit::Attachment;
use cni_testkit::cni_types::ErrorCode;
use common::{HOST_VETH, Pod, json_of, tc, with_prev};
use serde_json::json;

fn both() -> serde_json::Value {
    json!({"ingressRate": 8_000_000, "ingressBurst": 80_000,
        "egressRate": 20_000_000, "egressBurst": 160_000})
}

fn has(lines: &[String], parts: &[&str]) -> bool {
    lines.iter().any(|l| parts.iter().all(|p| l.contains(p)))
}

#[test]
fn add_installs_the_references_layout_and_del_removes_it() {
    let Some(p) = Pod::new() else { return };
    let conf = p.conf(both());
    let r = p.ours().add(&conf, &p.att()).unwrap();
    let ifb = p.ifb();

    // The result: prevResult plus the ifb device (no sandbox), with its MAC.
    let j = json_of(&r);
    let mut want = p.prev_result();
    let mac = j["interfaces"][2]["mac"].as_str().unwrap().to_string();
    want["interfaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": ifb, "mac": mac}));
    assert_eq!(j, want);

    let q = p.qdiscs();
    let host = format!("dev {HOST_VETH} root");
    let ifb_root = format!("dev {ifb} root");
    assert!(
        has(
            &q,
            &[
                "qdisc tbf 1:",
                &host,
                "rate 8Mbit",
                "burst 10000b",
                "lat 25ms"
            ]
        ),
        "{q:#?}"
    );
    assert!(
        has(&q, &["qdisc ingress ffff:", &format!("dev {HOST_VETH}")]),
        "{q:#?}"
    );
    assert!(
        has(
            &q,
            &[
                "qdisc tbf 1:",
                &ifb_root,
                "rate 20Mbit",
                "burst 20000b",
                "lat 25ms"
            ]
        ),
        "{q:#?}"
    );
    let f = p.filters();
    assert!(has(&f, &["u32", "flowid 1:1"]), "{f:#?}");
    assert!(has(&f, &["match 00000000/00000000 at 0"]), "{f:#?}");
    assert!(
        has(
            &f,
            &[&format!("mirred (Egress Redirect to device {ifb}) stolen")]
        ),
        "{f:#?}"
    );
    // The ifb device: up, the veth's MTU, queue length 0 as the reference's, our alias.
    let link = p
        .node
        .exec_ok("ip", &["-d", "link", "show", &ifb])
        .unwrap()
        .stdout_text();
    assert!(link.contains("UP") && link.contains("mtu 1500"), "{link}");
    assert!(!link.contains("qlen"), "qlen 0 is not printed: {link}");
    assert!(link.contains("alias cni-rs bandwidth "), "{link}");

    p.ours().check(&with_prev(&conf, &r), &p.att()).unwrap();

    p.ours().del(&with_prev(&conf, &r), &p.att()).unwrap();
    assert!(p.ifbs().is_empty(), "{:?}", p.ifbs());
    let q = p.qdiscs();
    assert!(!has(&q, &["tbf"]) && !has(&q, &["ingress"]), "{q:#?}");
    // Again: nothing to do.
    p.ours().del(&with_prev(&conf, &r), &p.att()).unwrap();
}

#[test]
fn one_direction_installs_only_its_half() {
    let Some(p) = Pod::new() else { return };
    let conf = p.conf(json!({"ingressRate": 8_000_000, "ingressBurst": 80_000}));
    let r = p.ours().add(&conf, &p.att()).unwrap();
    assert_eq!(r.interfaces.len(), 2);
    assert!(p.ifbs().is_empty());
    assert!(!has(&p.qdiscs(), &["ingress"]));
    p.ours().del(&conf, &p.att()).unwrap();

    let conf = p.conf(json!({"egressRate": 20_000_000, "egressBurst": 160_000}));
    let r = p.ours().add(&conf, &p.att()).unwrap();
    assert_eq!(r.interfaces.len(), 3);
    let q = p.qdiscs();
    assert!(!has(&q, &[&format!("tbf 1: dev {HOST_VETH}")]), "{q:#?}");
    p.ours().check(&with_prev(&conf, &r), &p.att()).unwrap();
    p.ours().del(&conf, &p.att()).unwrap();
    assert!(p.ifbs().is_empty());
    assert!(!has(&p.qdiscs(), &["ingress"]));
}

#[test]
fn check_fails_on_each_drift() {
    let Some(p) = Pod::new() else { return };
    let conf = p.conf(both());
    let r = p.ours().add(&conf, &p.att()).unwrap();
    let conf = with_prev(&conf, &r);
    let ifb = p.ifb();
    let check_err = || {
        p.ours()
            .check(&conf, &p.att())
            .unwrap_err()
            .cni_error()
            .unwrap()
            .msg
            .clone()
    };
    // CHECK looks at the host's bucket, the ifb, its bucket, then the redirect: each drift
    // below is earlier in that order than the one before, so each is the one reported.
    tc(
        &p.node,
        &["filter", "del", "dev", HOST_VETH, "parent", "ffff:"],
    );
    assert_eq!(
        check_err(),
        format!("no filter on {HOST_VETH} redirects to {ifb}")
    );
    tc(
        &p.node,
        &[
            "qdisc", "change", "dev", &ifb, "root", "handle", "1:", "tbf", "rate", "20mbit",
            "burst", "20000", "limit", "99999",
        ],
    );
    assert_eq!(check_err(), "Limit doesn't match");
    tc(&p.node, &["qdisc", "del", "dev", &ifb, "root"]);
    assert_eq!(check_err(), "Failed to find qdisc");
    p.node.exec_ok("ip", &["link", "del", &ifb]).unwrap();
    assert_eq!(check_err(), "get ifb device: Link not found");
    tc(
        &p.node,
        &[
            "qdisc", "change", "dev", HOST_VETH, "root", "handle", "1:", "tbf", "rate", "1mbit",
            "burst", "10000", "latency", "25ms",
        ],
    );
    assert_eq!(check_err(), "Rate doesn't match");
    p.ours().del(&conf, &p.att()).unwrap();
    assert!(!has(&p.qdiscs(), &["tbf"]));
}

#[test]
fn the_references_errors_and_nothing_changes() {
    let Some(p) = Pod::new() else { return };
    let before = p.qdiscs();
    for (extra, msg) in [
        (
            json!({"ingressRate": 1000}),
            "if rate is set, burst must also be set",
        ),
        (
            json!({"egressBurst": 1000}),
            "if burst is set, rate must also be set",
        ),
        (
            json!({"egressRate": 1000, "egressBurst": 34_359_738_360u64}),
            "burst cannot be more than 4GB",
        ),
        (
            json!({"runtimeConfig": {"bandwidth": {"IngressRate": 1000}}}),
            "if rate is set, burst must also be set",
        ),
    ] {
        let e = p.ours().add(&p.conf(extra.clone()), &p.att()).unwrap_err();
        let e = e.cni_error().unwrap();
        assert_eq!(e.msg, msg, "{extra}");
        assert_eq!(e.code, ErrorCode::InvalidNetworkConfig, "{extra}");
        // DEL of what ADD refused succeeds (the runtime's teardown goes on).
        p.ours().del(&p.conf(extra), &p.att()).unwrap();
    }
    // Shaping without prevResult.
    let mut c = p.conf(both());
    c.as_object_mut().unwrap().remove("prevResult");
    let e = p.ours().add(&c, &p.att()).unwrap_err();
    assert_eq!(
        e.cni_error().unwrap().msg,
        "must be called as chained plugin"
    );
    // A prevResult that does not list the host side.
    let mut c = p.conf(both());
    c["prevResult"]["interfaces"][0]["name"] = json!("elsewhere");
    let e = p.ours().add(&c, &p.att()).unwrap_err();
    assert_eq!(
        e.cni_error().unwrap().msg,
        "no veth peer of container interface found in host ns"
    );
    assert_eq!(p.qdiscs(), before);
    assert!(p.ifbs().is_empty());
}

#[test]
fn nothing_to_shape_returns_prev_result_untouched() {
    let Some(p) = Pod::new() else { return };
    let before = p.qdiscs();
    for extra in [
        json!({}),
        json!({"ingressRate": 0, "ingressBurst": 0}),
        json!({"runtimeConfig": {"bandwidth": {}}}),
    ] {
        let r = p.ours().add(&p.conf(extra), &p.att()).unwrap();
        assert_eq!(json_of(&r), p.prev_result());
    }
    assert_eq!(p.qdiscs(), before);
}

/// containerd's go-cni sends the capability with Go's field names and a burst of
/// `math.MaxUint32` bits. The reference's 32-bit arithmetic wraps the bucket (in ticks) to
/// 154.6 s of the rate at 10 Mbit/s, 193 MB; ours computes the same, and CHECK agrees.
#[test]
fn containerds_capability_with_its_max_burst() {
    let Some(p) = Pod::new() else { return };
    let conf = p.conf(json!({"runtimeConfig": {"bandwidth": {
        "IngressRate": 10_000_000, "IngressBurst": 4_294_967_295u64,
        "EgressRate": 10_000_000, "EgressBurst": 4_294_967_295u64}}}));
    let r = p.ours().add(&conf, &p.att()).unwrap();
    let q = p.qdiscs();
    assert!(
        has(
            &q,
            &[&format!("tbf 1: dev {HOST_VETH} root"), "rate 10Mbit"]
        ),
        "{q:#?}"
    );
    assert!(has(&q, &["burst 1932735"]), "{q:#?}");
    p.ours().check(&with_prev(&conf, &r), &p.att()).unwrap();
    p.ours().del(&with_prev(&conf, &r), &p.att()).unwrap();
}

/// The pod's own values (the capability) win over the network's keys (the reference lets any
/// config key hide the capability).
#[test]
fn the_capability_wins_over_the_configs_keys() {
    let Some(p) = Pod::new() else { return };
    let conf = p.conf(json!({"ingressRate": 8_000_000, "ingressBurst": 80_000,
        "runtimeConfig": {"bandwidth": {"ingressRate": 1_000_000, "ingressBurst": 80_000}}}));
    p.ours().add(&conf, &p.att()).unwrap();
    assert!(
        has(&p.qdiscs(), &["tbf 1:", "rate 1Mbit"]),
        "{:#?}",
        p.qdiscs()
    );
    p.ours().del(&conf, &p.att()).unwrap();
}

#[test]
fn gc_removes_the_ifbs_of_attachments_no_longer_valid() {
    let Some(p) = Pod::new() else { return };
    let egress = json!({"egressRate": 20_000_000, "egressBurst": 160_000});
    // Pod 1 stays valid, pod 2 is stale; pod 3 belongs to another network, pod 4 was set up
    // by the Go bandwidth: GC of "bwnet" leaves both alone.
    p.ours().add(&p.conf(egress.clone()), &p.att()).unwrap();
    let (pod2, prev2) = p.another("vethbw2");
    let att2 = Attachment::new("ctr-stale", pod2.path(), "eth0");
    let mut c2 = p.conf(egress.clone());
    c2["prevResult"] = prev2;
    p.ours().add(&c2, &att2).unwrap();
    let (pod3, prev3) = p.another("vethbw3");
    let att3 = Attachment::new("ctr-other", pod3.path(), "eth0");
    let mut c3 = c2.clone();
    c3["prevResult"] = prev3;
    c3["name"] = json!("othernet");
    p.ours().add(&c3, &att3).unwrap();
    let (pod4, prev4) = p.another("vethbw4");
    let att4 = Attachment::new("ctr-go", pod4.path(), "eth0");
    let mut c4 = c2.clone();
    c4["prevResult"] = prev4;
    c4["cniVersion"] = json!("1.0.0");
    p.go().add(&c4, &att4).unwrap();
    assert_eq!(p.ifbs().len(), 4);

    let mut gc_conf = p.conf(egress);
    gc_conf["cniVersion"] = json!("1.1.0");
    gc_conf.as_object_mut().unwrap().remove("prevResult");
    let valid = [cni_testkit::cni_types::Attachment {
        container_id: p.id.clone(),
        ifname: "eth0".into(),
    }];
    let gc_conf = cni_testkit::runner::with_valid_attachments(&gc_conf, &valid);
    p.ours().gc(&gc_conf).unwrap();
    let mut left = p.ifbs();
    left.sort();
    let mut want = vec![
        p.ifb(),
        cni_bandwidth::ifb_name("othernet", "ctr-other"),
        cni_bandwidth::ifb_name("bwnet", "ctr-go"),
    ];
    want.sort();
    assert_eq!(left, want);
    assert!(!left.contains(&cni_bandwidth::ifb_name("bwnet", "ctr-stale")));
    // STATUS.
    p.ours().status(&gc_conf).unwrap();
}
