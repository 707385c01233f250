//! Hardening (issue #8): 100 ADD/DEL cycles in parallel (20 threads × 5 cycles, each cycle its
//! own pod) through our `bridge` and `host-local`, on one bridge and one store, in a node
//! where nothing exists yet. The 20 ADDs of a round start together (the first ones race to
//! create the bridge), and so do its 20 DELs once all 20 pods are up. No call may fail; no address may be held by two live pods at once
//! (and each pod really has the address it was given); the bridge is created once (every result
//! names the same bridge MAC, and a re-created bridge would get a new random one); at the end
//! nothing of any pod remains: no veth, no pod address or route, no masquerade or spoof-check
//! rule, no reservation or temporary file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod hardening;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Barrier, Mutex};

use cni_testkit::bins;
use cni_testkit::snapshot::Kind;
use cni_testkit::{Attachment, PluginRunner, Snapshot, SnapshotOptions, TempDir, TempNetns};
use serde_json::{Value, json};

use hardening::root;

const THREADS: usize = 20;
const CYCLES: usize = 5;

/// Whether the pod's `eth0` has `ip`.
fn pod_has(pod: &TempNetns, ip: IpAddr) -> bool {
    let Ok(mut nl) = pod.netlink() else {
        return false;
    };
    let Ok(Some(l)) = nl.link_by_name("eth0") else {
        return false;
    };
    nl.addrs(Some(l.index), None)
        .is_ok_and(|a| a.iter().any(|a| a.addr.addr() == ip))
}

/// The names of the pod's links (empty if they cannot be read).
fn pod_links(pod: &TempNetns) -> Vec<String> {
    pod.netlink()
        .and_then(|mut nl| Ok(nl.links()?))
        .map(|l| l.into_iter().map(|l| l.name).collect())
        .unwrap_or_default()
}

fn parallel_cycles(label: &str, extra: Value) {
    let plugins = bins::cni_path_with(&["bridge", "host-local"])
        .expect("our plugins (cargo build --workspace --bins)");
    let node = TempNetns::new("conc").unwrap();
    let data = TempDir::new("conc-data").unwrap();
    let runner = PluginRunner::new(plugins.plugin("bridge"))
        .cni_path([plugins.path()])
        .in_netns(&node)
        .unwrap();
    let mut conf = json!({"cniVersion": "1.0.0", "name": "concnet", "type": "bridge",
        "bridge": "cni0", "isGateway": true, "ipMasq": true,
        "ipam": {"type": "host-local", "subnet": "10.90.0.0/24", "dataDir": data.path()}});
    if let (Some(c), Value::Object(e)) = (conf.as_object_mut(), extra) {
        c.extend(e);
    }

    let live: Mutex<BTreeSet<IpAddr>> = Mutex::new(BTreeSet::new());
    let bridge_macs: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let max_live = Mutex::new(0usize);
    // Every cycle starts its 20 ADDs at once, and its 20 DELs at once once every pod is up:
    // 20 pods live together, the first ADDs race to create the bridge.
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let runner = runner.clone();
            let (conf, live, bridge_macs, errors, max_live, barrier) =
                (&conf, &live, &bridge_macs, &errors, &max_live, &barrier);
            s.spawn(move || {
                // Nothing here may panic: a thread that left would leave the others waiting at
                // the barrier for ever. Failures are recorded and the cycle goes on.
                let fail = |m: String| {
                    if let Ok(mut e) = errors.lock() {
                        e.push(m);
                    }
                };
                for c in 0..CYCLES {
                    let id = format!("conc-{t}-{c}");
                    let pod = TempNetns::new("conc-pod")
                        .map_err(|e| fail(format!("{id}: pod: {e}")))
                        .ok();
                    let att = pod
                        .as_ref()
                        .map(|p| Attachment::new(id.as_str(), p.path(), "eth0"));
                    barrier.wait();
                    let ip = att.as_ref().and_then(|att| match runner.add(conf, att) {
                        Ok(r) => {
                            if let (Ok(mut m), Some(i)) = (bridge_macs.lock(), r.interfaces.first())
                            {
                                m.insert(i.mac.clone());
                            }
                            r.ips.first().map(|i| i.address.addr())
                        }
                        Err(e) => {
                            fail(format!("{id}: ADD: {e}"));
                            None
                        }
                    });
                    if let (Some(ip), Some(pod)) = (ip, &pod) {
                        if let (Ok(mut l), Ok(mut m)) = (live.lock(), max_live.lock()) {
                            if !l.insert(ip) {
                                fail(format!("{id}: {ip} is already held by a live pod"));
                            }
                            *m = (*m).max(l.len());
                        }
                        if !pod_has(pod, ip) {
                            fail(format!("{id}: eth0 of the pod does not have {ip}"));
                        }
                    }
                    barrier.wait();
                    // Out of the live set before DEL gives the address back.
                    if let (Some(ip), Ok(mut l)) = (ip, live.lock()) {
                        l.remove(&ip);
                    }
                    if let (Some(att), Some(pod)) = (&att, &pod) {
                        if let Err(e) = runner.del(conf, att) {
                            fail(format!("{id}: DEL: {e}"));
                        }
                        let links = pod_links(pod);
                        if links != ["lo"] {
                            fail(format!("{id}: pod links after DEL: {links:?}"));
                        }
                    }
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap();
    assert!(errors.is_empty(), "{label}:\n{}", errors.join("\n"));
    let max_live = max_live.into_inner().unwrap();
    println!("{label}: up to {max_live} pods were live at once");
    assert_eq!(max_live, THREADS, "every pod of a cycle is live at once");

    // One bridge, created once.
    let macs = bridge_macs.into_inner().unwrap();
    assert_eq!(macs.len(), 1, "{label}: bridge MACs seen: {macs:?}");
    let mut nl = node.netlink().unwrap();
    let links = nl.links().unwrap();
    let bridges: Vec<_> = links.iter().filter(|l| l.is_kind("bridge")).collect();
    assert_eq!(bridges.len(), 1, "{label}: {links:?}");
    let mac = bridges[0]
        .mac
        .map(|m| cni_testkit::cni_linux::netlink::mac::format(&m));
    assert_eq!(mac.as_ref(), macs.iter().next(), "{label}");

    // Nothing of any pod is left.
    let snap = Snapshot::with(&node, SnapshotOptions::default().with_dir(data.path())).unwrap();
    let mut left = Vec::new();
    for i in snap.items() {
        let pod_state = match i.kind {
            Kind::Link => i.text.starts_with("veth"),
            Kind::Addr => !i.text.starts_with("cni0 10.90.0.1/24") && !i.text.starts_with("lo "),
            // Per-network state (the bridge's masquerade rule for the subnet) stays, as the
            // bridge does; nothing may name a pod or its address.
            Kind::Nft | Kind::Iptables => {
                hardening::mentions_pod_addr(&i.text, "10.90.", &["10.90.0.0", "10.90.0.1"])
                    || i.text.contains("conc-")
            }
            Kind::File => {
                let name = i.text.split(" = ").next().unwrap_or("");
                let name = name.rsplit('/').next().unwrap_or("");
                name.parse::<IpAddr>().is_ok() || name.ends_with(".tmp")
            }
            _ => false,
        };
        if pod_state {
            left.push(i.to_string());
        }
    }
    assert!(
        left.is_empty(),
        "{label}: left behind:\n{}",
        left.join("\n")
    );
    // And the network still works for a new pod.
    let pod = TempNetns::new("conc-after").unwrap();
    let att = Attachment::new("after", pod.path(), "eth0");
    runner.add(&conf, &att).unwrap();
    cni_testkit::traffic::ping(
        &pod,
        "10.90.0.1".parse().unwrap(),
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    runner.del(&conf, &att).unwrap();
}

#[test]
fn parallel_add_del_iptables_masquerade() {
    if !root() {
        return;
    }
    parallel_cycles("iptables ipMasq", json!({"ipMasqBackend": "iptables"}));
}

#[test]
fn parallel_add_del_nftables_masquerade_and_spoofchk() {
    if !root() {
        return;
    }
    parallel_cycles(
        "nftables ipMasq, macspoofchk",
        json!({"ipMasqBackend": "nftables", "macspoofchk": true}),
    );
}
