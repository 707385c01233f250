use std::path::Path;

use cni_types::NetConf;
use serde_json::json;

use super::*;
use crate::kernel::Recorder;

fn conf(extra: serde_json::Value) -> BandwidthConf {
    let mut c = json!({"cniVersion": "1.0.0", "name": "bwnet", "type": "bandwidth",
        "prevResult": {"cniVersion": "1.0.0",
            "interfaces": [{"name": "veth0"}, {"name": "eth0", "sandbox": "/run/netns/p"}],
            "ips": [{"address": "10.1.0.2/24", "interface": 1}]}});
    for (k, v) in extra.as_object().expect("object") {
        c[k] = v.clone();
    }
    let nc: NetConf = serde_json::from_value(c).expect("netconf");
    BandwidthConf::try_from(&nc).expect("valid")
}

fn att() -> Attachment {
    Attachment {
        container_id: "ctr1".into(),
        ifname: "eth0".into(),
    }
}

fn ns() -> Option<&'static Path> {
    Some(Path::new("/run/netns/p"))
}

fn both() -> BandwidthConf {
    conf(json!({"ingressRate": 8000000, "ingressBurst": 80000,
        "egressRate": 20000000, "egressBurst": 160000}))
}

#[test]
fn add_appends_the_ifb_and_sends_the_plan_in_order() {
    let mut k = Recorder::with_veth("veth0", 7);
    let r = add(&both(), &att(), ns(), &mut k, 15.625).expect("add");
    assert_eq!(r.interfaces.len(), 3);
    assert_eq!(r.interfaces[2].name, "bwpea62040b30ca");
    assert_eq!(r.interfaces[2].mac, "02:00:00:00:00:01");
    assert!(r.interfaces[2].sandbox.is_empty());
    let kinds: Vec<&str> = k
        .log
        .iter()
        .map(|l| l.split([' ', '{']).next().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["add", "Tbf", "Tbf", "Ingress", "RedirectAll"]);
}

#[test]
fn a_failing_step_undoes_the_earlier_ones() {
    for fail in 0..4 {
        let mut k = Recorder::with_veth("veth0", 7);
        k.fail_tc_add = Some(fail);
        let e = add(&both(), &att(), ns(), &mut k, 15.625).expect_err("fails");
        assert!(matches!(e, BandwidthError::Netlink { .. }), "{e}");
        // Only the host veth is left.
        assert_eq!(
            k.links.keys().collect::<Vec<_>>(),
            ["veth0"],
            "{:#?}",
            k.log
        );
        // Every qdisc added before the failure was deleted again.
        let added = k
            .log
            .iter()
            .filter(|l| l.starts_with("Tbf") || l.starts_with("Ingress"));
        let deleted = k.log.iter().filter(|l| l.starts_with("delete qdisc"));
        assert_eq!(added.count(), deleted.count(), "{:#?}", k.log);
    }
}

#[test]
fn nothing_to_shape_returns_prev_result() {
    let c = conf(json!({}));
    let mut k = Recorder::with_veth("veth0", 7);
    let r = add(&c, &att(), None, &mut k, 15.625).expect("add");
    assert_eq!(Some(r), c.prev_result);
    assert!(k.log.is_empty());
    let mut no_prev = c.clone();
    no_prev.prev_result = None;
    assert!(matches!(
        add(&no_prev, &att(), None, &mut k, 15.625),
        Err(BandwidthError::NotChained)
    ));
}

#[test]
fn the_host_interface_must_be_listed_without_sandbox() {
    let mut k = Recorder::with_veth("other", 7);
    let e = add(&both(), &att(), ns(), &mut k, 15.625).expect_err("unlisted");
    assert_eq!(
        e.to_string(),
        "no veth peer of container interface found in host ns"
    );
    let mut k = Recorder::default();
    let e = add(&both(), &att(), ns(), &mut k, 15.625).expect_err("no peer");
    assert_eq!(e.to_string(), "container interface eth0 has no veth peer");
}
