//! The binary's protocol surface in a throw-away node: STATUS per backend, errors and their
//! codes for bad configurations (nothing is changed), ADD without prevResult.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cni_testkit::{Attachment, PluginRunner, TempDir, TempNetns, bins};
use serde_json::json;

fn setup() -> Option<(TempNetns, TempNetns, TempDir, PluginRunner)> {
    if !cni_testkit::require_root() {
        return None;
    }
    let node = TempNetns::new("fwb-node").unwrap();
    let pod = TempNetns::new("fwb-pod").unwrap();
    let data = TempDir::new("fwb").unwrap();
    let ours = PluginRunner::new(bins::our_plugin("firewall").unwrap())
        .in_netns(&node)
        .unwrap();
    Some((node, pod, data, ours))
}

#[test]
fn status_per_backend() {
    let Some((_node, _pod, data, ours)) = setup() else {
        return;
    };
    for backend in ["iptables", "nftables"] {
        ours.status(
            &json!({"cniVersion": "1.1.0", "name": "n", "type": "firewall",
            "backend": backend, "dataDir": data.path()}),
        )
        .unwrap();
    }
    // firewalld asked for, no bus: not available, with the reason.
    let e = PluginRunner::new(bins::our_plugin("firewall").unwrap())
        .env(
            "DBUS_SYSTEM_BUS_ADDRESS",
            format!("unix:path={}", data.join("none.sock").display()),
        )
        .status(
            &json!({"cniVersion": "1.1.0", "name": "n", "type": "firewall",
            "backend": "firewalld"}),
        )
        .unwrap_err();
    assert_eq!(e.code(), Some(50), "{e:?}");
}

#[test]
fn bad_configs_fail_with_code_7_and_change_nothing() {
    let Some((node, pod, data, ours)) = setup() else {
        return;
    };
    let before = node.exec_ok("iptables-save", &[]).unwrap().stdout_text();
    let att = Attachment::new("ctr-bad", pod.path(), "eth0");
    let prev = json!({"cniVersion": "1.0.0", "interfaces": [{"name": "br0"}],
        "ips": [{"address": "10.95.0.5/24", "interface": 0}]});
    for (key, value, needle) in [
        (
            "ingressPolicy",
            json!("closed"),
            "unknown ingress policy: \"closed\"",
        ),
        ("backend", json!("ebtables"), "unknown firewall backend"),
        (
            "iptablesAdminChainName",
            json!("-j DROP"),
            "invalid iptablesAdminChainName",
        ),
    ] {
        let mut c = json!({"cniVersion": "1.0.0", "name": "n", "type": "firewall",
            "dataDir": data.path(), "prevResult": prev});
        c[key] = value;
        let e = ours.add(&c, &att).unwrap_err();
        assert_eq!(e.code(), Some(7), "{key}: {e:?}");
        let msg = e.cni_error().map(|c| c.msg.clone()).unwrap_or_default();
        assert!(msg.contains(needle), "{key}: {e:?}");
    }
    // ADD without prevResult: the reference's message.
    let e = ours
        .add(
            &json!({"cniVersion": "1.0.0", "name": "n", "type": "firewall",
                "backend": "iptables", "dataDir": data.path()}),
            &att,
        )
        .unwrap_err();
    assert!(
        format!("{e:?}").contains("missing prevResult from earlier plugin"),
        "{e:?}"
    );
    let strip = |s: String| {
        s.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let after = node.exec_ok("iptables-save", &[]).unwrap().stdout_text();
    assert_eq!(strip(after), strip(before));
}
