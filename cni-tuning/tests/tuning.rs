//! Our tuning binary against the real kernel, in throw-away namespaces: each key's effect
//! read back after ADD, DEL restoring it, CHECK failing on drift, refused configs changing
//! nothing, the allow-list, every spec version, GC and STATUS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cni_testkit::cni_linux::netlink::mac;
use cni_testkit::cni_proto::env::Env;
use cni_testkit::cni_types::Version;
use cni_testkit::{Invocation, TempDir};
use common::{Pod, json_of, with_prev};
use serde_json::json;

const NEW_MAC: [u8; 6] = [0xc2, 0x11, 0x22, 0x33, 0x44, 0x55];

fn all_keys(p: &Pod) -> serde_json::Value {
    p.conf(json!({
        "sysctl": {"net.ipv4.conf.IFNAME.arp_notify": "1", "net.core.somaxconn": "1234"},
        "mac": "c2:11:22:33:44:55", "mtu": 1400, "promisc": true, "allmulti": true, "txQLen": 42
    }))
}

#[test]
fn each_key_is_applied_inside_the_pod_and_restored_by_del() {
    let Some(p) = Pod::new() else { return };
    let before = p.eth0();
    // A new namespace inherits some IPv4 settings from the machine's: start from a known one.
    p.pod
        .sysctl_set("net.ipv4.conf.eth0.arp_notify", "0")
        .unwrap();
    let node_somaxconn = p.node.sysctl_get("net.core.somaxconn").unwrap();
    let conf = all_keys(&p);

    let r = p.ours().add(&conf, &p.att()).unwrap();
    let l = p.eth0();
    assert_eq!(l.mac, Some(NEW_MAC));
    assert_eq!(l.mtu, 1400);
    assert!(l.promisc && l.allmulti, "{l:?}");
    assert_eq!(l.txqlen, Some(42));
    assert_eq!(p.sysctl("net.ipv4.conf.eth0.arp_notify"), "1");
    assert_eq!(p.sysctl("net.core.somaxconn"), "1234");
    // Only the pod changed.
    assert_eq!(
        p.node.sysctl_get("net.core.somaxconn").unwrap(),
        node_somaxconn
    );
    // The result is prevResult with the new MAC on eth0 only.
    let mut want = p.prev_result();
    want["interfaces"][1]["mac"] = json!("c2:11:22:33:44:55");
    assert_eq!(json_of(&r), want);
    // The originals, in the reference's layout.
    assert_eq!(
        std::fs::read_to_string(p.saved_file()).unwrap(),
        format!(
            "{{\n \"mac\": \"{}\",\n \"promisc\": false,\n \"mtu\": {},\n \"allmulti\": false,\n \"txQLen\": {}\n}}",
            mac::format(&before.mac.unwrap()),
            before.mtu,
            before.txqlen.unwrap()
        )
    );
    p.ours().check(&with_prev(&conf, &r), &p.att()).unwrap();

    p.ours().del(&with_prev(&conf, &r), &p.att()).unwrap();
    let after = p.eth0();
    assert_eq!(after.mac, before.mac);
    assert_eq!(after.mtu, before.mtu);
    assert_eq!((after.promisc, after.allmulti), (false, false));
    assert_eq!(after.txqlen, before.txqlen);
    assert!(!p.saved_file().exists());
    assert_eq!(
        std::fs::read_dir(p.data.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().unwrap().is_file())
            .count(),
        0
    );
    // A second DEL is a no-op.
    p.ours().del(&conf, &p.att()).unwrap();
}

#[test]
fn del_ignores_an_undecodable_prev_result_as_the_reference() {
    let Some(p) = Pod::new() else { return };
    let before = p.eth0();
    let conf = p.conf(json!({"mtu": 1400}));
    p.ours().add(&conf, &p.att()).unwrap();
    let mut bad = conf.clone();
    bad["prevResult"] = json!({"ips": "not a list"});
    p.ours().del(&bad, &p.att()).unwrap();
    assert_eq!(p.eth0().mtu, before.mtu);
    assert!(!p.saved_file().exists());
}

#[test]
fn a_write_only_sysctl_is_written() {
    let Some(p) = Pod::new() else { return };
    // Mode 0200: not even root can read it, so there is no old value to keep.
    let conf = p.conf(json!({"sysctl": {"net.ipv4.route.flush": "1"}}));
    p.ours().add(&conf, &p.att()).unwrap();
    p.ours().del(&conf, &p.att()).unwrap();
}

#[test]
fn check_fails_on_each_drift() {
    let Some(p) = Pod::new() else { return };
    let conf = all_keys(&p);
    let r = p.ours().add(&conf, &p.att()).unwrap();
    let conf = with_prev(&conf, &r);
    let idx = p.eth0().index;
    type Drift = (Box<dyn Fn(&Pod)>, Box<dyn Fn(&Pod)>, &'static str);
    let nl = |p: &Pod| p.pod.netlink().unwrap();
    let drifts: Vec<Drift> = vec![
        (
            Box::new(|p| p.pod.sysctl_set("net.core.somaxconn", "77").unwrap()),
            Box::new(|p| p.pod.sysctl_set("net.core.somaxconn", "1234").unwrap()),
            "Error: Tuning configured value of /proc/sys/net/core/somaxconn is 1234, current value is 77",
        ),
        (
            Box::new(move |p| nl(p).set_mac(idx, [0x02, 0, 0, 0, 0, 9]).unwrap()),
            Box::new(move |p| nl(p).set_mac(idx, NEW_MAC).unwrap()),
            "Error: Tuning configured Ethernet of eth0 is c2:11:22:33:44:55, current value is 02:00:00:00:00:09",
        ),
        (
            Box::new(move |p| nl(p).set_mtu(idx, 1300).unwrap()),
            Box::new(move |p| nl(p).set_mtu(idx, 1400).unwrap()),
            "Error: Tuning configured MTU of eth0 is 1400, current value is 1300",
        ),
        (
            Box::new(move |p| nl(p).set_promisc(idx, false).unwrap()),
            Box::new(move |p| nl(p).set_promisc(idx, true).unwrap()),
            "Error: Tuning link eth0 configured promisc is true, current value is 0",
        ),
        (
            Box::new(move |p| nl(p).set_allmulti(idx, false).unwrap()),
            Box::new(move |p| nl(p).set_allmulti(idx, true).unwrap()),
            "Error: Tuning configured all-multicast mode of eth0 is true, current value is false",
        ),
        (
            Box::new(move |p| nl(p).set_txqlen(idx, 7).unwrap()),
            Box::new(move |p| nl(p).set_txqlen(idx, 42).unwrap()),
            "Error: Tuning configured Transmit Queue Length of eth0 is 42, current value is 7",
        ),
    ];
    for (drift, undo, msg) in drifts {
        drift(&p);
        let e = p.ours().check(&conf, &p.att()).unwrap_err();
        assert_eq!(e.cni_error().unwrap().msg, msg);
        undo(&p);
        p.ours().check(&conf, &p.att()).unwrap();
    }
    p.ours().del(&conf, &p.att()).unwrap();
    // After DEL the originals are back, which CHECK reports as drift.
    let e = p.ours().check(&conf, &p.att()).unwrap_err();
    assert!(
        e.cni_error().unwrap().msg.starts_with("Error: Tuning"),
        "{e}"
    );
}

/// The pod's eth0, the sysctls a config touches and the saved files, to compare.
fn state(p: &Pod) -> (String, String, String, Vec<String>) {
    let l = p.eth0();
    let files = std::fs::read_dir(p.data.path())
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path().display().to_string())
                .collect()
        })
        .unwrap_or_default();
    (
        format!("{l:?}"),
        p.sysctl("net.core.somaxconn"),
        p.sysctl("net.ipv4.conf.eth0.arp_notify"),
        files,
    )
}

#[test]
fn refused_configs_change_nothing() {
    let Some(p) = Pod::new() else { return };
    let before = state(&p);
    let cases = [
        (
            json!({"sysctl": {"net.core.somaxconn": "1", "kernel.hostname": "x"}, "mtu": 1400}),
            7,
            "invalid net sysctl key: \"kernel/hostname\"",
        ),
        (
            json!({"sysctl": {"net.core.somaxconn": "1"}, "mac": "zz:zz", "mtu": 1400}),
            7,
            "invalid args zz:zz for MAC addr: address zz:zz: invalid MAC address",
        ),
        (
            json!({"mtu": "1400"}),
            7,
            "failed to load netconf: invalid type: string \"1400\", expected i64",
        ),
        // Fails in the kernel after the sysctls and the MAC were set: all undone.
        (
            json!({"sysctl": {"net.core.somaxconn": "1", "net.ipv4.conf.IFNAME.arp_notify": "1"},
                "mac": "c2:11:22:33:44:55", "mtu": 70000}),
            999,
            "failed to set MTU of \"eth0\"",
        ),
        // A sysctl that does not exist, after one that does.
        (
            json!({"sysctl": {"net.core.somaxconn": "1", "net.core.zz_no_such_key": "1"}, "mtu": 1400}),
            999,
            "write \"1\" to sysctl \"/proc/sys/net/core/zz_no_such_key\": No such file",
        ),
    ];
    for (extra, code, msg) in cases {
        let e = p.ours().add(&p.conf(extra.clone()), &p.att()).unwrap_err();
        let err = e.cni_error().unwrap();
        assert_eq!(err.code(), code, "{extra}: {err:?}");
        assert!(err.msg.starts_with(msg), "{extra}: {}", err.msg);
        assert_eq!(state(&p), before, "{extra}");
    }
    // Duplicate keys (raw JSON: serde_json would merge them).
    let raw = format!(
        r#"{{"cniVersion":"1.0.0","name":"tunnet","type":"tuning","dataDir":{},"prevResult":{},
            "sysctl":{{"net.core.somaxconn":"1","net.core.somaxconn":"2"}}}}"#,
        json!(p.data.path()),
        p.prev_result()
    );
    let out = p
        .ours()
        .invoke(&Invocation::new("ADD", raw.as_bytes(), Some(&p.att())))
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("duplicated sysctl keys are not allowed")
    );
    // Without prevResult (reported before a bad value, as the reference's order).
    let mut c = p.conf(json!({"mtu": 1400, "mac": "zz"}));
    c.as_object_mut().unwrap().remove("prevResult");
    let e = p.ours().add(&c, &p.att()).unwrap_err();
    assert_eq!(e.cni_error().unwrap().msg, "Required prevResult missing");
    assert_eq!(state(&p), before);
}

/// Runs our plugin in-process (the skel with injected env and stdio) with another
/// allow-list file.
fn run_with_allowlist(
    p: &Pod,
    list: &std::path::Path,
    cmd: &str,
    conf: &serde_json::Value,
) -> (i32, String) {
    let plugin = cni_tuning::TuningPlugin::with_allowlist(list);
    let env = Env::new()
        .with("CNI_COMMAND", cmd)
        .with("CNI_CONTAINERID", &p.id)
        .with("CNI_NETNS", p.pod.path().display().to_string())
        .with("CNI_IFNAME", "eth0")
        .with("CNI_PATH", "/nonexistent");
    let stdin = conf.to_string();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code =
        cni_testkit::cni_proto::skel::run(&plugin, &env, &mut stdin.as_bytes(), &mut out, &mut err);
    (code, String::from_utf8(out).unwrap())
}

#[test]
fn the_allowlist_file_restricts_keys_from_config_and_args() {
    let Some(p) = Pod::new() else { return };
    p.pod.sysctl_set("net.ipv4.ip_forward", "0").unwrap();
    p.pod
        .sysctl_set("net.ipv4.conf.eth0.arp_notify", "0")
        .unwrap();
    let dir = TempDir::new("tuning-allow").unwrap();
    let list = dir.join("allowlist.conf");
    std::fs::write(
        &list,
        "^net\\.ipv4\\.conf\\.IFNAME\\.arp_notify$\n\n  ^net\\.core\\.somaxconn$  \n",
    )
    .unwrap();
    let ok = p.conf(json!({"sysctl": {"net.ipv4.conf.IFNAME.arp_notify": "1"},
        "args": {"cni": {"sysctl": {"net.core.somaxconn": "999"}}}}));
    let (code, out) = run_with_allowlist(&p, &list, "ADD", &ok);
    assert_eq!(code, 0, "{out}");
    assert_eq!(p.sysctl("net.ipv4.conf.eth0.arp_notify"), "1");
    assert_eq!(p.sysctl("net.core.somaxconn"), "999");

    let before = state(&p);
    let refused = p.conf(json!({"sysctl": {"net.core.somaxconn": "5"},
        "args": {"cni": {"sysctl": {"net.ipv4.ip_forward": "1"}}}, "mtu": 1400}));
    let (code, out) = run_with_allowlist(&p, &list, "ADD", &refused);
    assert_eq!(code, 1);
    let err: cni_testkit::cni_types::Error = serde_json::from_str(&out).unwrap();
    assert_eq!(
        err.msg,
        "Sysctl net.ipv4.ip_forward is not allowed. Only the following sysctls are allowed: \
         [^net\\.ipv4\\.conf\\.IFNAME\\.arp_notify$ ^net\\.core\\.somaxconn$]"
    );
    assert_eq!(state(&p), before);
    assert_eq!(p.sysctl("net.ipv4.ip_forward"), "0");

    // Without the file there is no restriction.
    let (code, out) = run_with_allowlist(&p, &dir.join("missing.conf"), "ADD", &refused);
    assert_eq!(code, 0, "{out}");
    assert_eq!(p.sysctl("net.ipv4.ip_forward"), "1");
    let (code, out) = run_with_allowlist(&p, &list, "DEL", &refused);
    assert_eq!(code, 0, "DEL does not consult the allow-list: {out}");
}

#[test]
fn mac_from_cni_args_runtime_config_and_args_cni() {
    let Some(p) = Pod::new() else { return };
    let conf = p.conf(json!({"mac": "02:00:00:00:00:01", "capabilities": {"mac": true}}));
    let att = p
        .att()
        .with_args("IgnoreUnknown=1;K8S_POD_NAME=x;MAC=02:00:00:00:00:02");
    p.ours().add(&conf, &att).unwrap();
    assert_eq!(p.eth0().mac, Some([2, 0, 0, 0, 0, 2]));
    let mut rc = conf.clone();
    rc["runtimeConfig"] = json!({"mac": "02:00:00:00:00:03"});
    p.ours().add(&rc, &att).unwrap();
    assert_eq!(p.eth0().mac, Some([2, 0, 0, 0, 0, 3]));
    let mut ac = rc.clone();
    ac["args"] = json!({"cni": {"mac": "02:00:00:00:00:04"}});
    let r = p.ours().add(&ac, &att).unwrap();
    assert_eq!(p.eth0().mac, Some([2, 0, 0, 0, 0, 4]));
    assert_eq!(json_of(&r)["interfaces"][1]["mac"], "02:00:00:00:00:04");
    // Unknown CNI_ARGS without IgnoreUnknown: the reference's error.
    let e = p
        .ours()
        .add(&conf, &p.att().with_args("FOO=1"))
        .unwrap_err();
    assert_eq!(e.cni_error().unwrap().msg, "ARGS: unknown args [\"FOO=1\"]");
    p.ours().del(&ac, &att).unwrap();
}

#[test]
fn every_spec_version() {
    let Some(p) = Pod::new() else { return };
    let before = p.eth0();
    for v in Version::ALL {
        let mut conf = p.conf(json!({"mtu": 1280, "mac": "c2:11:22:33:44:55"}));
        conf["cniVersion"] = json!(v.to_string());
        let prev = cni_testkit::cni_types::CniResult::from_value(p.prev_result(), None).unwrap();
        conf["prevResult"] = prev.to_value(v).unwrap();
        let r = p.ours().add(&conf, &p.att()).unwrap();
        assert_eq!(p.eth0().mtu, 1280, "{v}");
        if v >= Version::V0_3_0 {
            assert_eq!(r.interfaces[1].mac, "c2:11:22:33:44:55", "{v}");
        }
        if v >= Version::V0_4_0 {
            p.ours().check(&with_prev(&conf, &r), &p.att()).unwrap();
        }
        p.ours().del(&with_prev(&conf, &r), &p.att()).unwrap();
        assert_eq!(
            (p.eth0().mtu, p.eth0().mac),
            (before.mtu, before.mac),
            "{v}"
        );
    }
}

#[test]
fn del_after_the_namespace_is_gone_drops_the_file_and_gc_drops_stale_ones() {
    let Some(p) = Pod::new() else { return };
    let conf = p.conf(json!({"mtu": 1400}));
    p.ours().add(&conf, &p.att()).unwrap();
    assert!(p.saved_file().exists());
    p.ours().del(&conf, &p.att().without_netns()).unwrap();
    assert!(!p.saved_file().exists());

    // GC at 1.1.0: the stale attachment's file goes, the valid one's stays.
    let mut conf = conf;
    conf["cniVersion"] = json!("1.1.0");
    p.ours().add(&conf, &p.att()).unwrap();
    let stale = cni_testkit::cni_types::Attachment {
        container_id: "gone".into(),
        ifname: "eth0".into(),
    };
    let gone_file = p.data.join("gone_eth0.json");
    // What our ADD leaves for an attachment: the file and its marker; fake the stale one's.
    std::fs::copy(p.saved_file(), &gone_file).unwrap();
    std::fs::write(p.data.join(".gc/tunnet/gone_eth0"), b"").unwrap();
    let valid = cni_testkit::cni_types::Attachment {
        container_id: p.id.clone(),
        ifname: "eth0".into(),
    };
    let gc = cni_testkit::runner::with_valid_attachments(&conf, &[valid]);
    p.ours().gc(&gc).unwrap();
    assert!(!gone_file.exists());
    assert!(p.saved_file().exists());
    let _ = stale;
    p.ours().status(&conf).unwrap();
    p.ours().del(&conf, &p.att()).unwrap();
    assert!(!p.saved_file().exists());
}
