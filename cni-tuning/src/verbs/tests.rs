use super::*;
use crate::pod::FakePod;
use serde_json::json;

const MAC0: [u8; 6] = [0x0a, 0x58, 0x0a, 0x58, 0x00, 0x05];

fn conf(extra: serde_json::Value) -> TuningConf {
    let mut v = json!({"cniVersion": "1.0.0", "name": "net", "type": "tuning",
        "prevResult": {"cniVersion": "1.0.0",
            "interfaces": [{"name": "veth1", "mac": "aa:aa:aa:aa:aa:aa"},
                {"name": "eth0", "mac": "0a:58:0a:58:00:05", "sandbox": "/run/netns/p"}],
            "ips": [{"address": "10.1.0.2/24", "interface": 1, "gateway": "10.1.0.1"}]}});
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    TuningConf::parse(v.to_string().as_bytes(), "", true).unwrap()
}

fn pod() -> FakePod {
    FakePod {
        link: Some((
            "eth0".into(),
            LinkState {
                index: 3,
                mac: Some(MAC0),
                mtu: 1500,
                promisc: false,
                allmulti: false,
                txqlen: 1000,
            },
        )),
        sysctls: [
            (
                "/proc/sys/net/core/somaxconn".to_string(),
                "4096".to_string(),
            ),
            (
                "/proc/sys/net/ipv4/conf/eth0/arp_notify".to_string(),
                "0".to_string(),
            ),
        ]
        .into(),
        ..Default::default()
    }
}

struct Dir(std::path::PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
fn store(name: &str) -> (Dir, Store) {
    let d = std::env::temp_dir().join(format!("cni-tuning-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    (Dir(d.clone()), Store::new(d))
}

fn att() -> Attachment {
    Attachment {
        container_id: "ctr1".into(),
        ifname: "eth0".into(),
    }
}

fn all_keys() -> TuningConf {
    conf(
        json!({"sysctl": {"net.core.somaxconn": "500", "net.ipv4.conf.IFNAME.arp_notify": "1"},
        "mac": "C2-11-22-33-44-55", "promisc": true, "mtu": 1400, "allmulti": true, "txQLen": 20}),
    )
}

#[test]
fn add_sets_everything_in_the_references_order_and_reports_the_mac() {
    let (_d, store) = store("add");
    let c = all_keys();
    let plan = c.plan("eth0", None).unwrap();
    let mut p = pod();
    let r = add(&c, &plan, &att(), &mut p, &store).unwrap();
    assert_eq!(
        p.log,
        [
            "sysctl /proc/sys/net/core/somaxconn=500",
            "sysctl /proc/sys/net/ipv4/conf/eth0/arp_notify=1",
            "set Mac([194, 17, 34, 51, 68, 85])",
            "set Promisc(true)",
            "set Mtu(1400)",
            "set Allmulti(true)",
            "set TxQLen(20)",
        ]
    );
    // The result: prevResult with the MAC as configured on the container interface only.
    let golden = json!({"cniVersion": "1.0.0",
        "interfaces": [{"name": "veth1", "mac": "aa:aa:aa:aa:aa:aa"},
            {"name": "eth0", "mac": "C2-11-22-33-44-55", "sandbox": "/run/netns/p"}],
        "ips": [{"address": "10.1.0.2/24", "interface": 1, "gateway": "10.1.0.1"}]});
    assert_eq!(r.to_value(cni_types::Version::V1_0_0).unwrap(), golden);
    // The saved originals, in the reference's layout.
    assert_eq!(
        std::fs::read_to_string(store.file(&att())).unwrap(),
        "{\n \"mac\": \"0a:58:0a:58:00:05\",\n \"promisc\": false,\n \"mtu\": 1500,\n \"allmulti\": false,\n \"txQLen\": 1000\n}"
    );
    check(&c, &att(), &mut p).unwrap();

    p.log.clear();
    del(&c, &att(), Some(&mut p), &store).unwrap();
    assert_eq!(
        p.log,
        [
            "set Mtu(1500)",
            "set Mac([10, 88, 10, 88, 0, 5])",
            "set Promisc(false)",
            "set Allmulti(false)",
            "set TxQLen(1000)",
        ]
    );
    assert_eq!(p.link.as_ref().unwrap().1, pod().link.unwrap().1);
    assert!(store.load(&att()).unwrap().is_none());
    assert!(store.marked("net").unwrap().is_empty());
    // Sysctls are not restored by DEL (as the reference).
    assert_eq!(p.sysctls["/proc/sys/net/core/somaxconn"], "500");
}

#[test]
fn no_link_keys_means_no_file_and_no_link_needed() {
    let (_d, store) = store("nolink");
    let c = conf(json!({"sysctl": {"net.core.somaxconn": "500"}}));
    let plan = c.plan("eth0", None).unwrap();
    let mut p = pod();
    p.link = None;
    add(&c, &plan, &att(), &mut p, &store).unwrap();
    assert!(store.load(&att()).unwrap().is_none());
    // podman's tuning (no options) changes nothing at all.
    let c = conf(json!({}));
    let mut p = pod();
    let r = add(&c, &c.plan("eth0", None).unwrap(), &att(), &mut p, &store).unwrap();
    assert!(p.log.is_empty());
    assert_eq!(r, c.prev_result.unwrap());
}

#[test]
fn a_failing_step_undoes_the_earlier_ones() {
    let (_d, store) = store("rollback");
    let c = all_keys();
    let plan = c.plan("eth0", None).unwrap();
    let mut p = pod();
    p.fail_attr = Some("all-multicast mode");
    let before = pod();
    let e = add(&c, &plan, &att(), &mut p, &store).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("failed to set all-multicast mode of \"eth0\""),
        "{e}"
    );
    assert_eq!(p.link, before.link);
    assert_eq!(p.sysctls, before.sysctls);
    assert!(store.load(&att()).unwrap().is_none());
    assert!(store.marked("net").unwrap().is_empty());

    // A sysctl that does not exist: the ones written before it are put back.
    let c = conf(
        json!({"sysctl": {"net.core.somaxconn": "1", "net.core.zz_missing": "1"}, "mtu": 1400}),
    );
    let mut p = pod();
    let e = add(&c, &c.plan("eth0", None).unwrap(), &att(), &mut p, &store).unwrap_err();
    assert!(matches!(e, TuningError::Sysctl(_)), "{e}");
    assert_eq!(p.sysctls, before.sysctls);
    assert_eq!(p.link, before.link);

    // The container link is missing.
    let c = conf(json!({"sysctl": {"net.core.somaxconn": "1"}, "mtu": 1400}));
    let mut p = pod();
    p.link = None;
    let e = add(&c, &c.plan("eth0", None).unwrap(), &att(), &mut p, &store).unwrap_err();
    assert_eq!(e.to_string(), "failed to get \"eth0\": Link not found");
    assert_eq!(p.sysctls, before.sysctls);
}

#[test]
fn add_without_prev_result_fails_and_changes_nothing() {
    let (_d, store) = store("noprev");
    let c = TuningConf::parse(
        br#"{"cniVersion":"1.0.0","name":"n","type":"tuning","mtu":1400}"#,
        "",
        true,
    )
    .unwrap();
    let mut p = pod();
    let e = add(&c, &c.plan("eth0", None).unwrap(), &att(), &mut p, &store).unwrap_err();
    assert_eq!(e.to_string(), "Required prevResult missing");
    assert_eq!(e.code(), cni_types::ErrorCode::InvalidNetworkConfig);
    assert!(p.log.is_empty());
    assert_eq!(
        check(&c, &att(), &mut p).unwrap_err().to_string(),
        "Required prevResult missing"
    );
}

#[test]
fn check_reports_each_drift_with_the_references_message() {
    let c = all_keys();
    type Drift = Box<dyn Fn(&mut FakePod)>;
    let cases: Vec<(Drift, &str)> = vec![
        (
            Box::new(|p| {
                p.sysctls
                    .insert("/proc/sys/net/core/somaxconn".into(), "7".into());
            }),
            "Error: Tuning configured value of /proc/sys/net/core/somaxconn is 500, current value is 7",
        ),
        (
            Box::new(|p| p.link.as_mut().unwrap().1.mac = Some(MAC0)),
            "Error: Tuning configured Ethernet of eth0 is C2-11-22-33-44-55, current value is 0a:58:0a:58:00:05",
        ),
        (
            Box::new(|p| p.link.as_mut().unwrap().1.promisc = false),
            "Error: Tuning link eth0 configured promisc is true, current value is 0",
        ),
        (
            Box::new(|p| p.link.as_mut().unwrap().1.mtu = 1500),
            "Error: Tuning configured MTU of eth0 is 1400, current value is 1500",
        ),
        (
            Box::new(|p| p.link.as_mut().unwrap().1.allmulti = false),
            "Error: Tuning configured all-multicast mode of eth0 is true, current value is false",
        ),
        (
            Box::new(|p| p.link.as_mut().unwrap().1.txqlen = 1000),
            "Error: Tuning configured Transmit Queue Length of eth0 is 20, current value is 1000",
        ),
        (
            Box::new(|p| p.link = None),
            "Cannot find container link eth0",
        ),
    ];
    for (drift, msg) in cases {
        let (_d, store) = store("check");
        let mut p = pod();
        add(&c, &c.plan("eth0", None).unwrap(), &att(), &mut p, &store).unwrap();
        check(&c, &att(), &mut p).unwrap();
        drift(&mut p);
        assert_eq!(check(&c, &att(), &mut p).unwrap_err().to_string(), msg);
    }
    // Promiscuous mode on without `promisc: true` is a drift too (the reference's rule).
    let plain = conf(json!({}));
    let mut p = pod();
    check(&plain, &att(), &mut p).unwrap();
    p.link.as_mut().unwrap().1.promisc = true;
    assert_eq!(
        check(&plain, &att(), &mut p).unwrap_err().to_string(),
        "Error: Tuning link eth0 configured promisc is false, current value is 1"
    );
}

#[test]
fn del_is_idempotent_and_drops_the_file_when_nothing_can_be_restored() {
    let (_d, store) = store("del");
    let c = conf(json!({"mtu": 1400}));
    let plan = c.plan("eth0", None).unwrap();
    // Without a file: nothing to do.
    del(&c, &att(), Some(&mut pod()), &store).unwrap();
    // Namespace gone.
    add(&c, &plan, &att(), &mut pod(), &store).unwrap();
    del(&c, &att(), None, &store).unwrap();
    assert!(store.load(&att()).unwrap().is_none());
    // Link gone.
    add(&c, &plan, &att(), &mut pod(), &store).unwrap();
    let mut gone = pod();
    gone.link = None;
    del(&c, &att(), Some(&mut gone), &store).unwrap();
    assert!(store.load(&att()).unwrap().is_none());
    // A failing restore keeps the file for another DEL.
    let mut p = pod();
    add(&c, &plan, &att(), &mut p, &store).unwrap();
    p.fail_attr = Some("MTU");
    let e = del(&c, &att(), Some(&mut p), &store).unwrap_err();
    assert!(e.to_string().starts_with("failed to restore MTU"), "{e}");
    assert!(store.load(&att()).unwrap().is_some());
    p.fail_attr = None;
    del(&c, &att(), Some(&mut p), &store).unwrap();
    assert_eq!(p.link.as_ref().unwrap().1.mtu, 1500);
    assert!(store.load(&att()).unwrap().is_none());
}

#[test]
fn gc_drops_only_this_networks_stale_files() {
    let (_d, store) = store("gc");
    let c = conf(json!({"mtu": 1400}));
    let other = TuningConf {
        name: "other".into(),
        ..c.clone()
    };
    let plan = c.plan("eth0", None).unwrap();
    let a = att();
    let b = Attachment {
        container_id: "ctr2".into(),
        ifname: "eth0".into(),
    };
    let o = Attachment {
        container_id: "ctr3".into(),
        ifname: "net1".into(),
    };
    add(&c, &plan, &a, &mut pod(), &store).unwrap();
    add(&c, &plan, &b, &mut pod(), &store).unwrap();
    let mut op = pod();
    op.link.as_mut().unwrap().0 = "net1".into();
    add(
        &other,
        &other.plan("net1", None).unwrap(),
        &o,
        &mut op,
        &store,
    )
    .unwrap();
    // A file a Go tuning wrote (no marker).
    std::fs::write(store.dir().join("ctr4_eth0.json"), b"{}").unwrap();

    gc(&c, std::slice::from_ref(&a), &store).unwrap();
    assert!(store.load(&a).unwrap().is_some());
    assert!(store.load(&b).unwrap().is_none());
    assert!(
        store.load(&o).unwrap().is_some(),
        "another network's file is kept"
    );
    assert!(store.dir().join("ctr4_eth0.json").exists());
    assert_eq!(store.marked("net").unwrap(), ["ctr1_eth0"]);
}
