//! The bridge plugin binary against the real kernel, in throw-away namespaces: one "node"
//! namespace where the plugin runs (as a runtime would run it) and "pod" namespaces.

// Test helpers (not only #[test] functions) may panic on failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::time::Duration;

use cni_testkit::cni_linux::IpFamily;
use cni_testkit::cni_linux::netlink::{AddrFlags, mac};
use cni_testkit::cni_types::{CniResult, Version};
use cni_testkit::runner::{with_prev_result, with_valid_attachments};
use cni_testkit::{Versions, traffic};
use common::{Ipam, Node, addrs, att, pod_link, routes};
use serde_json::json;

fn gw(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The whole life cycle for one config, in every version: ADD (result layout and kernel
/// state), CHECK, DEL twice, nothing left.
fn life_cycle(subnets: &[&str], gateways: &[&str], versions: &[Version]) {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    for &v in versions {
        let pod = node.pod();
        let conf = node.conf(
            v,
            json!({"isDefaultGateway": true, "ipam": node.ipam(subnets)}),
        );
        let a = att(&format!("ctr-{v}"), &pod);
        let r = node
            .runner
            .add(&conf, &a)
            .unwrap_or_else(|e| panic!("[{v}] ADD: {e}"));

        // Result layout.
        assert_eq!(r.ips.len(), subnets.len(), "[{v}] {r:?}");
        for (ip, (subnet, gwy)) in r.ips.iter().zip(subnets.iter().zip(gateways)) {
            let net: ipnet::IpNet = subnet.parse().unwrap();
            assert!(net.contains(&ip.address.addr()), "[{v}] {ip:?}");
            assert_eq!(ip.address.prefix_len(), net.prefix_len());
            assert_eq!(ip.gateway, Some(gw(gwy)), "[{v}]");
        }
        if v >= Version::V0_3_0 {
            assert_eq!(r.interfaces.len(), 3, "[{v}] {r:?}");
            assert_eq!(r.interfaces[0].name, "cni0");
            assert_eq!(r.interfaces[0].mac.len(), 17);
            assert!(r.interfaces[1].name.starts_with("veth"), "[{v}]");
            assert_eq!(r.interfaces[1].sandbox, "");
            assert_eq!(r.interfaces[2].name, "eth0");
            assert_eq!(r.interfaces[2].sandbox, pod.path().display().to_string());
            assert!(r.ips.iter().all(|ip| ip.interface == Some(2)), "[{v}]");
        }

        // Kernel state: bridge with the gateway addresses, the host port, the container end.
        let br = node.link("cni0").expect("bridge");
        assert!(br.is_kind("bridge") && br.up);
        let br_addrs = addrs(&node.ns, "cni0");
        for (subnet, gwy) in subnets.iter().zip(gateways) {
            let prefix = subnet.split('/').nth(1).unwrap();
            assert!(
                br_addrs.contains(&format!("{gwy}/{prefix}")),
                "[{v}] {br_addrs:?}"
            );
        }
        // The bridge owns its routes: no router advertisements taken on it.
        assert_eq!(br.conf.ipv6_accept_ra, Some(0), "[{v}] accept_ra on cni0");
        // The gateway forwards: a fresh namespace starts with forwarding off.
        if gateways.iter().any(|g| !g.contains(':')) {
            let fwd = node.ns.sysctl_get("net.ipv4.ip_forward").unwrap();
            assert_eq!(fwd.trim(), "1", "[{v}]");
        }
        if gateways.iter().any(|g| g.contains(':')) {
            let fwd = node.ns.sysctl_get("net.ipv6.conf.all.forwarding").unwrap();
            assert_eq!(fwd.trim(), "1", "[{v}]");
        }
        let links = node.nl().links().unwrap();
        assert_eq!(links.len(), 3, "[{v}] lo, cni0 and one veth: {links:?}");
        let port = links.iter().find(|l| l.is_kind("veth")).expect("host veth");
        assert_eq!(port.master, Some(br.index));
        assert!(port.up && port.oper_up);
        // A bridge port needs no address: IPv6 is off on it, so it adds no link-local
        // address, routes or multicast memberships to the node.
        let v6 = format!("net.ipv6.conf.{}.disable_ipv6", port.name);
        assert_eq!(node.ns.sysctl_get(&v6).unwrap().trim(), "1", "[{v}]");
        let port_addrs = node.nl().addrs(Some(port.index), None).unwrap();
        assert!(port_addrs.is_empty(), "[{v}] {port_addrs:?}");
        let eth0 = pod_link(&pod, "eth0").expect("eth0 in the pod");
        assert!(eth0.is_kind("veth") && eth0.up);
        assert_eq!(eth0.conf.ipv4_arp_notify, Some(true), "[{v}] arp_notify");
        if subnets.iter().any(|s| s.contains(':')) {
            let dad = pod.sysctl_get("net.ipv6.conf.eth0.accept_dad").unwrap();
            assert_eq!(dad.trim(), "0", "[{v}] no DAD without enabledad");
        }
        if v >= Version::V0_3_0 {
            assert_eq!(r.interfaces[1].name, port.name);
            assert_eq!(r.interfaces[1].mac, mac::format(&port.mac.unwrap()));
            assert_eq!(r.interfaces[2].mac, mac::format(&eth0.mac.unwrap()));
            assert_eq!(r.interfaces[0].mac, mac::format(&br.mac.unwrap()));
        }
        let pod_addrs = addrs(&pod, "eth0");
        for ip in &r.ips {
            assert!(
                pod_addrs.contains(&ip.address.to_string()),
                "[{v}] {pod_addrs:?}"
            );
        }
        let pod_routes = routes(&pod);
        // One default route per family, via the family's first gateway.
        let firsts = [
            gateways.iter().find(|g| !g.contains(':')),
            gateways.iter().find(|g| g.contains(':')),
        ];
        for gwy in firsts.into_iter().flatten() {
            let default = if gwy.contains(':') {
                "::/0"
            } else {
                "0.0.0.0/0"
            };
            assert!(
                pod_routes.contains(&format!("{default} via {gwy}")),
                "[{v}] {pod_routes:?}"
            );
        }
        assert_eq!(node.allocations().len(), subnets.len());

        if v.supports_check() {
            let with_prev = with_prev_result(&conf, &r).unwrap();
            node.runner
                .check(&with_prev, &a)
                .unwrap_or_else(|e| panic!("[{v}] CHECK: {e}"));
        }

        node.runner.del(&conf, &a).unwrap();
        node.runner.del(&conf, &a).expect("a second DEL succeeds");
        assert!(
            pod_link(&pod, "eth0").is_none(),
            "[{v}] eth0 left in the pod"
        );
        assert_eq!(
            node.nl().links().unwrap().len(),
            2,
            "[{v}] only lo and cni0 remain"
        );
        assert!(node.allocations().is_empty(), "[{v}] IP not released");
    }
}

#[test]
fn ipv4_every_version() {
    life_cycle(&["10.1.2.0/24"], &["10.1.2.1"], &Versions::all());
}

#[test]
fn ipv6_every_version() {
    life_cycle(&["2001:db8::/64"], &["2001:db8::1"], &Versions::all());
}

#[test]
fn dual_stack_every_version() {
    life_cycle(
        &["192.168.0.0/24", "fd00::/64"],
        &["192.168.0.1", "fd00::1"],
        &Versions::all(),
    );
}

#[test]
fn two_ipv6_subnets_fail_cleanly_before_0_3_0() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let subnets = ["10.2.0.0/24", "fd01::/64", "fd02::/64"];
    for v in [Version::V0_1_0, Version::V0_2_0] {
        let pod = node.pod();
        let before = node.snapshot();
        let conf = node.conf(v, json!({"isGateway": true, "ipam": node.ipam(&subnets)}));
        let e = node.runner.add(&conf, &att("c", &pod)).unwrap_err();
        assert!(
            e.to_string()
                .contains("does not support more than 1 address per family"),
            "[{v}] {e}"
        );
        assert!(pod_link(&pod, "eth0").is_none());
        let after = node.snapshot();
        let diff = before.diff(&after).filter(|i| !i.text.contains("cni0"));
        assert!(diff.is_empty(), "[{v}] left behind:\n{diff}");
    }
    life_cycle(
        &subnets,
        &["10.2.0.1", "fd01::1", "fd02::1"],
        &Versions::since(Version::V0_3_0),
    );
}

#[test]
fn layer2_only() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    for v in Versions::since(Version::V0_3_0) {
        let pod = node.pod();
        let conf = node.conf(v, json!({"ipam": {}}));
        let a = att("l2", &pod);
        let r = node.runner.add(&conf, &a).unwrap();
        assert!(r.ips.is_empty());
        assert_eq!(r.interfaces.len(), 3);
        let eth0 = pod_link(&pod, "eth0").unwrap();
        assert!(eth0.up, "[{v}] an L2 container interface is up");
        assert!(addrs(&pod, "eth0").is_empty());
        assert!(addrs(&node.ns, "cni0").is_empty());
        node.runner.del(&conf, &a).unwrap();
        assert!(pod_link(&pod, "eth0").is_none());
    }
    // 0.1.0 / 0.2.0 results cannot express an L2 attachment: ADD fails and undoes itself.
    for v in [Version::V0_1_0, Version::V0_2_0] {
        let pod = node.pod();
        let conf = node.conf(v, json!({}));
        let e = node.runner.add(&conf, &att("l2", &pod)).unwrap_err();
        assert!(e.to_string().contains("no valid IP addresses"), "{e}");
        assert!(pod_link(&pod, "eth0").is_none());
        assert_eq!(node.nl().links().unwrap().len(), 2);
    }
}

/// On a kernel without `CONFIG_BRIDGE_VLAN_FILTERING` a VLAN config cannot work (with the
/// reference either): ADD must fail cleanly. Returns whether VLAN tests can run.
fn vlan_supported(node: &Node, conf: &serde_json::Value) -> bool {
    if common::kernel_has_vlan_filtering() {
        return true;
    }
    eprintln!("skipping the VLAN checks: this kernel has no CONFIG_BRIDGE_VLAN_FILTERING");
    let before = node.snapshot();
    let pod = node.pod();
    let e = node.runner.add(conf, &att("novlan", &pod)).unwrap_err();
    assert!(e.to_string().contains("Operation not supported"), "{e}");
    assert!(pod_link(&pod, "eth0").is_none());
    common::assert_nothing_left(
        &before,
        node,
        "a VLAN ADD on a kernel without VLAN filtering",
    );
    false
}

#[test]
fn vlan_access_port_with_gateway() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let pod = node.pod();
    let conf = node.conf(
        Version::V1_0_0,
        json!({"vlan": 100, "isGateway": true, "ipam": node.ipam(&["10.3.0.0/24"])}),
    );
    if !vlan_supported(&node, &conf) {
        return;
    }
    let a = att("v100", &pod);
    let r = node.runner.add(&conf, &a).unwrap();
    let mut nl = node.nl();
    let br = nl.link_by_name("cni0").unwrap().unwrap();
    assert_eq!(nl.vlan_filtering(br.index).unwrap(), Some(true));
    let port = nl.link_by_name(&r.interfaces[1].name).unwrap().unwrap();
    let vlans = nl.bridge_vlans(port.index).unwrap();
    assert!(
        vlans.iter().any(|v| v.vid == 100 && v.pvid && v.untagged),
        "{vlans:?}"
    );
    assert!(
        vlans.iter().any(|v| v.vid == 1),
        "default VLAN kept by default: {vlans:?}"
    );
    // The gateway lives on cni0.100, reported as a 4th interface.
    assert_eq!(r.interfaces.len(), 4, "{r:?}");
    assert_eq!(r.interfaces[3].name, "cni0.100");
    assert_eq!(addrs(&node.ns, "cni0.100"), vec!["10.3.0.1/24".to_string()]);
    assert!(addrs(&node.ns, "cni0").is_empty());
    // The pod reaches its gateway through the VLAN.
    traffic::ping(&pod, gw("10.3.0.1"), Duration::from_secs(5)).unwrap();
    node.runner.del(&conf, &a).unwrap();
}

#[test]
fn vlan_trunk_without_default_vlan() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let pod = node.pod();
    let conf = node.conf(
        Version::V1_1_0,
        json!({"vlanTrunk": [{"id": 101}, {"minID": 200, "maxID": 202}],
               "preserveDefaultVlan": false, "ipam": {}}),
    );
    if !vlan_supported(&node, &conf) {
        return;
    }
    let a = att("trunk", &pod);
    let r = node.runner.add(&conf, &a).unwrap();
    let mut nl = node.nl();
    let port = nl.link_by_name(&r.interfaces[1].name).unwrap().unwrap();
    let vids: Vec<(u16, bool, bool)> = nl
        .bridge_vlans(port.index)
        .unwrap()
        .into_iter()
        .map(|v| (v.vid, v.pvid, v.untagged))
        .collect();
    assert_eq!(
        vids,
        vec![
            (101, false, false),
            (200, false, false),
            (201, false, false),
            (202, false, false)
        ]
    );
    node.runner.del(&conf, &a).unwrap();
}

/// VLAN configs that can never work are refused by the binary with the reference's message,
/// code 7, before anything is done: no kernel VLAN support is needed, so this runs (and can
/// fail) on every kernel, before any VLAN test may skip.
#[test]
fn vlan_configs_are_refused_before_anything_is_done() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let before = node.snapshot();
    let pod = node.pod();
    let a = att("badvlan", &pod);
    let cases = [
        (
            json!({"vlan": 5, "vlanTrunk": [{"id": 6}]}),
            "cannot set vlan and vlanTrunk at the same time",
        ),
        (
            json!({"vlan": 4095}),
            "invalid VLAN ID 4095 (must be between 0 and 4094)",
        ),
        (
            json!({"vlan": -1}),
            "invalid VLAN ID -1 (must be between 0 and 4094)",
        ),
        (
            json!({"vlanTrunk": [{"id": 0}]}),
            "incorrect trunk id parameter",
        ),
        (
            json!({"vlanTrunk": [{"minID": 0, "maxID": 5}]}),
            "incorrect trunk minID parameter",
        ),
        (
            json!({"vlanTrunk": [{"minID": 1, "maxID": 4095}]}),
            "incorrect trunk maxID parameter",
        ),
        (
            json!({"vlanTrunk": [{"minID": 7, "maxID": 6}]}),
            "minID is greater than maxID in trunk parameter",
        ),
        (
            json!({"vlanTrunk": [{"minID": 7}]}),
            "minID and maxID should be configured simultaneously, maxID is missing",
        ),
        (
            json!({"vlanTrunk": [{"maxID": 7}]}),
            "minID and maxID should be configured simultaneously, minID is missing",
        ),
        (
            json!({"vlan": 5, "preserveDefaultVlan": "no"}),
            "cannot unmarshal string into Go struct field NetConf.preserveDefaultVlan of type bool",
        ),
    ];
    for (extra, msg) in cases {
        let mut extra = extra;
        extra["ipam"] = node.ipam(&["10.23.0.0/24"]);
        let conf = node.conf(Version::V1_0_0, extra.clone());
        let e = node
            .runner
            .add(&conf, &a)
            .expect_err(&format!("ADD accepted {extra}"));
        assert_eq!(e.code(), Some(7), "{extra}: {e}");
        assert!(e.to_string().contains(msg), "{extra}: {e}");
    }
    assert!(pod_link(&pod, "eth0").is_none());
    common::assert_nothing_left(&before, &node, "refused VLAN configs");
}

#[test]
fn existing_bridge_is_kept() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let mut nl = node.nl();
    let pre = nl
        .add_bridge("cni0", &Default::default())
        .expect("pre-existing bridge");
    let pod = node.pod();
    let conf = node.conf(
        Version::V1_0_0,
        json!({"isGateway": true, "ipam": node.ipam(&["10.4.0.0/24"])}),
    );
    let a = att("keep", &pod);
    let r = node.runner.add(&conf, &a).unwrap();
    let br = nl.link_by_name("cni0").unwrap().unwrap();
    assert_eq!(br.index, pre.index, "the same bridge is used");
    assert!(br.up, "and brought up");
    assert_ne!(pre.conf.ipv6_accept_ra, Some(0), "the kernel's default");
    assert_eq!(br.conf.ipv6_accept_ra, Some(0), "turned off by ADD");
    assert_eq!(r.interfaces[0].mac, mac::format(&br.mac.unwrap()));
    node.runner.del(&conf, &a).unwrap();
    assert_eq!(nl.link_by_name("cni0").unwrap().unwrap().index, pre.index);

    // A non-bridge link of that name is refused.
    nl.add_veth(&cni_testkit::cni_linux::netlink::VethRequest::new(
        "notabr",
        "notabr-peer",
    ))
    .unwrap();
    let conf = node.conf(Version::V1_0_0, json!({"bridge": "notabr", "ipam": {}}));
    let e = node.runner.add(&conf, &a).unwrap_err();
    assert_eq!(
        e.cni_error().unwrap().msg,
        "failed to create bridge \"notabr\": \"notabr\" already exists but is not a bridge"
    );
}

#[test]
fn bridge_mac_is_stable() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let conf = node.conf(
        Version::V1_0_0,
        json!({"isGateway": true, "ipam": node.ipam(&["10.4.1.0/24"])}),
    );
    let pods: Vec<_> = (0..3).map(|_| node.pod()).collect();
    let mut macs = Vec::new();
    for (i, pod) in pods.iter().enumerate() {
        let r = node.runner.add(&conf, &att(&format!("m{i}"), pod)).unwrap();
        assert_ne!(r.interfaces[0].mac, r.interfaces[1].mac);
        macs.push(r.interfaces[0].mac.clone());
    }
    node.runner.del(&conf, &att("m0", &pods[0])).unwrap();
    let now = mac::format(&node.link("cni0").unwrap().mac.unwrap());
    assert!(macs.iter().all(|m| *m == now), "{macs:?} then {now}");
}

#[test]
fn force_address() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let mut nl = node.nl();
    let opts = cni_testkit::cni_linux::netlink::BridgeOptions {
        up: true,
        ..Default::default()
    };
    let br = nl.add_bridge("cni0", &opts).unwrap();
    nl.addr_add(br.index, "10.0.0.1/8".parse().unwrap(), Default::default())
        .unwrap();
    let pod = node.pod();
    let a = att("force", &pod);
    let ipam = node.ipam(&["10.5.2.0/24"]);
    let before = node.snapshot();

    let conf = node.conf(Version::V1_0_0, json!({"isGateway": true, "ipam": ipam}));
    let e = node.runner.add(&conf, &a).unwrap_err();
    assert_eq!(
        e.cni_error().unwrap().msg,
        "failed to set bridge addr: \"cni0\" already has an IP address different from 10.5.2.1/24"
    );
    common::assert_nothing_left(&before, &node, "a refused ADD leaves nothing");
    assert!(pod_link(&pod, "eth0").is_none());

    let conf = node.conf(
        Version::V1_0_0,
        json!({"isGateway": true, "forceAddress": true, "ipam": ipam}),
    );
    node.runner.add(&conf, &a).unwrap();
    assert_eq!(addrs(&node.ns, "cni0"), vec!["10.5.2.1/24".to_string()]);
    node.runner.del(&conf, &a).unwrap();

    // Non-overlapping IPv6 addresses coexist; an overlapping one needs forceAddress.
    nl.addr_add(br.index, "fd10::1/64".parse().unwrap(), Default::default())
        .unwrap();
    let conf = node.conf(
        Version::V1_0_0,
        json!({"isGateway": true, "ipam": node.ipam(&["fd20::/64"])}),
    );
    node.runner.add(&conf, &a).unwrap();
    let v6: Vec<String> = addrs(&node.ns, "cni0")
        .into_iter()
        .filter(|a| a.contains(':'))
        .collect();
    assert_eq!(v6, vec!["fd10::1/64".to_string(), "fd20::1/64".to_string()]);
    node.runner.del(&conf, &a).unwrap();
}

#[test]
fn promisc_and_hairpin() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let pod = node.pod();
    let a = att("ph", &pod);
    let conf = node.conf(
        Version::V1_0_0,
        json!({"promiscMode": true, "ipam": node.ipam(&["10.6.0.0/24"])}),
    );
    let r = node.runner.add(&conf, &a).unwrap();
    assert!(node.link("cni0").unwrap().promisc);
    let port = node.link(&r.interfaces[1].name).unwrap();
    assert!(!port.bridge_port.unwrap().hairpin);
    let with_prev = with_prev_result(&conf, &r).unwrap();
    node.runner
        .check(&with_prev, &a)
        .expect("CHECK sees promisc as configured");
    node.runner.del(&conf, &a).unwrap();

    let conf = node.conf(
        Version::V1_0_0,
        json!({"hairpinMode": true, "bridge": "cni1", "ipam": node.ipam(&["10.6.1.0/24"])}),
    );
    let r = node.runner.add(&conf, &a).unwrap();
    let port = node.link(&r.interfaces[1].name).unwrap();
    assert!(port.bridge_port.unwrap().hairpin);
    node.runner.del(&conf, &a).unwrap();

    let conf = node.conf(
        Version::V1_0_0,
        json!({"hairpinMode": true, "promiscMode": true, "ipam": {}}),
    );
    let e = node.runner.add(&conf, &a).unwrap_err();
    assert_eq!(
        e.cni_error().unwrap().msg,
        "cannot set hairpin mode and promiscuous mode at the same time"
    );
}

#[test]
fn container_mac_from_each_source() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let cases = [
        (
            "args",
            json!({"args": {"cni": {"mac": "02:00:00:00:0a:01"}}}),
            "",
            "02:00:00:00:0a:01",
        ),
        (
            "runtimeConfig",
            json!({"runtimeConfig": {"mac": "02:00:00:00:0a:02"}, "args": {"cni": {"mac": "02:00:00:00:0a:01"}}}),
            "IgnoreUnknown=1;MAC=02:00:00:00:0a:03",
            "02:00:00:00:0a:02",
        ),
        (
            "CNI_ARGS",
            json!({}),
            "IgnoreUnknown=1;K8S_POD_NAME=x;MAC=02:00:00:00:0a:03",
            "02:00:00:00:0a:03",
        ),
    ];
    for (what, extra, args, want) in cases {
        let pod = node.pod();
        let mut conf = node.conf(
            Version::V1_0_0,
            json!({"ipam": node.ipam(&["10.7.0.0/24"])}),
        );
        conf.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let a = att(what, &pod).with_args(args);
        let r = node.runner.add(&conf, &a).unwrap();
        assert_eq!(r.interfaces[2].mac, want, "{what}");
        let eth0 = pod_link(&pod, "eth0").unwrap();
        assert_eq!(mac::format(&eth0.mac.unwrap()), want, "{what}");
        node.runner.del(&conf, &a).unwrap();
    }
}

#[test]
fn ping_between_pods_and_to_the_gateway() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let conf = node.conf(
        Version::V1_1_0,
        json!({"isDefaultGateway": true, "ipam": node.ipam(&["10.8.0.0/24", "fd08::/64"])}),
    );
    let p1 = node.pod();
    let p2 = node.pod();
    let r1 = node.runner.add(&conf, &att("p1", &p1)).unwrap();
    let r2 = node.runner.add(&conf, &att("p2", &p2)).unwrap();
    // The IPv6 gateway is usable at once: no duplicate address detection pending on it.
    let br = node.link("cni0").unwrap();
    let v6 = node.nl().addrs(Some(br.index), Some(IpFamily::V6)).unwrap();
    let gw6 = v6
        .iter()
        .find(|a| a.addr.addr() == gw("fd08::1"))
        .expect("gateway");
    assert!(!gw6.flags.contains(AddrFlags::TENTATIVE), "{gw6:?}");
    let t = Duration::from_secs(5);
    traffic::ping(&p1, gw("10.8.0.1"), t).unwrap();
    traffic::ping(&p1, gw("fd08::1"), t).unwrap();
    for ip in &r2.ips {
        traffic::ping(&p1, ip.address.addr(), t).unwrap();
    }
    for ip in &r1.ips {
        traffic::ping(&p2, ip.address.addr(), t).unwrap();
    }
    // The node reaches the pods through the bridge.
    traffic::ping(&node.ns, r1.ips[0].address.addr(), t).unwrap();
    node.runner.del(&conf, &att("p1", &p1)).unwrap();
    node.runner.del(&conf, &att("p2", &p2)).unwrap();
}

#[test]
fn port_isolation() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let conf = node.conf(
        Version::V1_0_0,
        json!({"isGateway": true, "portIsolation": true, "ipam": node.ipam(&["10.9.0.0/24"])}),
    );
    let p1 = node.pod();
    let p2 = node.pod();
    let r1 = node.runner.add(&conf, &att("i1", &p1)).unwrap();
    let r2 = node.runner.add(&conf, &att("i2", &p2)).unwrap();
    for r in [&r1, &r2] {
        let port = node.link(&r.interfaces[1].name).unwrap();
        assert!(port.bridge_port.unwrap().isolated);
    }
    let t = Duration::from_secs(2);
    // Isolated ports reach the bridge (gateway) but not each other.
    traffic::ping(&p1, gw("10.9.0.1"), t).unwrap();
    assert!(!traffic::can_ping(&p1, common::first_v4(&r2), t));
    node.runner.del(&conf, &att("i1", &p1)).unwrap();
    node.runner.del(&conf, &att("i2", &p2)).unwrap();

    // Without portIsolation the flag stays off.
    let conf = node.conf(
        Version::V1_0_0,
        json!({"ipam": node.ipam(&["10.9.1.0/24"])}),
    );
    let r = node.runner.add(&conf, &att("i3", &p1)).unwrap();
    assert!(
        !node
            .link(&r.interfaces[1].name)
            .unwrap()
            .bridge_port
            .unwrap()
            .isolated
    );
    node.runner.del(&conf, &att("i3", &p1)).unwrap();
}

#[test]
fn disable_container_interface() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let pod = node.pod();
    let a = att("dci", &pod);
    let conf = node.conf(Version::V1_0_0, json!({"disableContainerInterface": true}));
    let r = node.runner.add(&conf, &a).unwrap();
    assert_eq!(r.interfaces.len(), 3);
    let eth0 = pod_link(&pod, "eth0").unwrap();
    assert!(!eth0.up, "the container veth stays down");
    node.runner.del(&conf, &a).unwrap();

    let conf = node.conf(
        Version::V1_0_0,
        json!({"disableContainerInterface": true, "ipam": node.ipam(&["10.10.0.0/24"])}),
    );
    let e = node.runner.add(&conf, &a).unwrap_err();
    assert_eq!(
        e.cni_error().unwrap().msg,
        "cannot use IPAM when DisableContainerInterface flag is set"
    );
    assert!(pod_link(&pod, "eth0").is_none());
}

#[test]
fn del_after_the_namespace_is_gone() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let conf = node.conf(
        Version::V1_0_0,
        json!({"isGateway": true, "ipMasq": true, "ipam": node.ipam(&["10.11.0.0/24"])}),
    );
    let pod = node.pod();
    let path = pod.path().to_path_buf();
    let a = att("gone", &pod);
    node.runner.add(&conf, &a).unwrap();
    assert_eq!(node.allocations().len(), 1);
    pod.delete().unwrap();
    assert!(!path.exists());
    // The veth pair died with the namespace; DEL with the stale path must still release the
    // address and the masquerade chain.
    node.runner.del(&conf, &a).unwrap();
    assert!(node.allocations().is_empty());
    assert!(!node.exec("iptables-save", &["-t", "nat"]).contains("CNI-"));
    // (The host veth goes when the kernel finishes destroying the namespace, asynchronously.)
    node.runner.del(&conf, &a).unwrap();
}

#[test]
fn check_fails_after_an_address_is_removed_by_hand() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let conf = node.conf(
        Version::V1_0_0,
        json!({"isGateway": true, "ipam": node.ipam(&["10.12.0.0/24"])}),
    );
    let pod = node.pod();
    let a = att("chk", &pod);
    let r = node.runner.add(&conf, &a).unwrap();
    let with_prev = with_prev_result(&conf, &r).unwrap();
    node.runner.check(&with_prev, &a).unwrap();

    let mut nl = pod.netlink().unwrap();
    let eth0 = nl.require_link("eth0").unwrap();
    nl.addr_del(eth0.index, r.ips[0].address).unwrap();
    let e = node.runner.check(&with_prev, &a).unwrap_err();
    assert_eq!(
        e.cni_error().unwrap().msg,
        format!(
            "Failed to match addr {} on interface eth0",
            r.ips[0].address
        )
    );

    // CHECK without prevResult is refused.
    let e = node.runner.check(&conf, &a).unwrap_err();
    assert_eq!(e.cni_error().unwrap().msg, "Required prevResult missing");
    node.runner.del(&conf, &a).unwrap();
    // After DEL, CHECK fails (first at IPAM, which no longer holds the address).
    assert!(node.runner.check(&with_prev, &a).is_err());
}

fn masq_life_cycle(backend: Option<&str>) {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let before = node.snapshot();
    let mut extra = json!({"isDefaultGateway": true, "ipMasq": true,
        "ipam": node.ipam(&["10.13.0.0/24", "fd13::/64"])});
    if let Some(b) = backend {
        extra["ipMasqBackend"] = json!(b);
    }
    let conf = node.conf(Version::V1_0_0, extra);
    let pod = node.pod();
    let a = att("masq1", &pod);
    let r = node.runner.add(&conf, &a).unwrap();
    let v4 = common::first_v4(&r);
    let chain = cni_bridge::masq::iptables_chain("testnet", "masq1");
    let nft = node.exec("nft", &["list", "ruleset"]);
    let ipt = node.exec("iptables-save", &["-t", "nat"]);
    let ip6t = node.exec("ip6tables-save", &["-t", "nat"]);
    match backend {
        Some("nftables") => {
            use cni_bridge::masq::{nft_element_comment, nft_map_name, nft_owner};
            let comment = nft_element_comment("testnet", "eth0", "masq1");
            let owner = nft_owner("testnet", "eth0", "masq1");
            assert!(nft.contains("table ip cni_bridge_masq"), "{nft}");
            assert!(nft.contains("table ip6 cni_bridge_masq"), "{nft}");
            assert!(!nft.contains("cni_plugins_masquerade"), "{nft}");
            // One element per address, one rule per (network, subnet).
            let elements: Vec<&str> = nft.lines().filter(|l| l.contains(&comment)).collect();
            assert_eq!(elements.len(), 2, "{nft}");
            assert!(
                elements.iter().any(|l| l.contains(&format!(
                    "elements = {{ {v4} comment \"{comment}\" : \"{owner}\" }}"
                ))),
                "{elements:?}"
            );
            let m4 = nft_map_name("testnet", "10.13.0.0/24".parse().unwrap());
            let m6 = nft_map_name("testnet", "fd13::/64".parse().unwrap());
            for rule in [
                format!(
                    "ip saddr @{m4} ip daddr != 10.13.0.0/24 ip daddr != 224.0.0.0/4 masquerade"
                ),
                format!("ip6 saddr @{m6} ip6 daddr != fd13::/64 ip6 daddr != ff00::/8 masquerade"),
            ] {
                assert_eq!(nft.matches(&rule).count(), 1, "{rule}\n{nft}");
            }
            assert!(!ipt.contains(&chain), "{ipt}");
        }
        _ => {
            let comment = r#""name: \"testnet\" id: \"masq1\"""#;
            assert!(ipt.contains(&format!(":{chain} - [0:0]")), "{ipt}");
            assert!(
                ipt.contains(&format!(
                    "-A POSTROUTING -s {v4}/32 -m comment --comment {comment} -j {chain}"
                )),
                "{ipt}"
            );
            assert!(
                ipt.contains(&format!(
                    "-A {chain} -d 10.13.0.0/24 -m comment --comment {comment} -j ACCEPT"
                )),
                "{ipt}"
            );
            assert!(
                ipt.contains(&format!(
                    "-A {chain} ! -d 224.0.0.0/4 -m comment --comment {comment} -j MASQUERADE"
                )),
                "{ipt}"
            );
            assert!(
                ip6t.contains(&format!(
                    "-A {chain} ! -d ff00::/8 -m comment --comment {comment} -j MASQUERADE"
                )),
                "{ip6t}"
            );
            assert!(!nft.contains("cni_plugins_masquerade"), "{nft}");
        }
    }
    // Masquerade works: the pod reaches an "outside" address through the node, which sees the
    // node's own address as the source.
    let out = node.pod();
    {
        let mut nl = node.nl();
        let mut req = cni_testkit::cni_linux::netlink::VethRequest::new("uplink", "wan0");
        req.peer_netns = Some(std::os::fd::AsFd::as_fd(out.netns()));
        req.up = true;
        let up = nl.add_veth(&req).unwrap();
        nl.addr_add(
            up.index,
            "198.51.100.1/24".parse().unwrap(),
            Default::default(),
        )
        .unwrap();
        let mut onl = out.netlink().unwrap();
        let wan = onl.require_link("wan0").unwrap();
        onl.addr_add(
            wan.index,
            "198.51.100.2/24".parse().unwrap(),
            Default::default(),
        )
        .unwrap();
        onl.set_up(wan.index).unwrap();
    }
    let server = traffic::TcpEchoServer::start(&out, "198.51.100.2:7777".parse().unwrap()).unwrap();
    node.exec("ip", &["route", "add", "default", "via", "198.51.100.2"]);
    traffic::tcp_echo(
        &pod,
        "198.51.100.2:7777".parse().unwrap(),
        b"hi",
        Duration::from_secs(5),
    )
    .unwrap();
    let peers = server.peers();
    assert!(
        !peers.is_empty() && peers.iter().all(|p| p.ip() == gw("198.51.100.1")),
        "masqueraded source expected: {peers:?}"
    );
    drop(server);
    node.exec("ip", &["route", "del", "default"]);
    node.nl().delete_link_by_name("uplink").unwrap();

    // A pod reaching another pod of the same subnet is not masqueraded: the peer sees the
    // pod's own address.
    let other = node.pod();
    let b = att("masq2", &other);
    let rb = node.runner.add(&conf, &b).unwrap();
    let v4b = common::first_v4(&rb);
    let server = traffic::TcpEchoServer::start(&other, (v4b, 7778).into()).unwrap();
    traffic::tcp_echo(&pod, (v4b, 7778).into(), b"hi", Duration::from_secs(5)).unwrap();
    let peers = server.peers();
    assert!(
        !peers.is_empty() && peers.iter().all(|p| p.ip() == v4),
        "the pod's own source expected: {peers:?}"
    );
    drop(server);
    node.runner.del(&conf, &b).unwrap();

    // DEL without the namespace (plugins #810) removes the rules in any case.
    node.runner.del(&conf, &a.without_netns()).unwrap();
    assert!(!node.exec("iptables-save", &["-t", "nat"]).contains(&chain));
    assert!(!node.exec("ip6tables-save", &["-t", "nat"]).contains(&chain));
    let nft = node.exec("nft", &["list", "ruleset"]);
    assert!(!nft.contains("elements ="), "{nft}");
    node.runner.del(&conf, &a).unwrap();
    let after = node.snapshot();
    // Shared, expected leftovers, item by item: the bridge, its addresses and their routes,
    // and with nftables our two tables, each with its chain and this network's map and rule
    // but no element. (A snapshot leaves out empty built-in tables and chains, such as the
    // `nat` tables iptables creates.)
    let nft_skeleton: Vec<String> = if backend == Some("nftables") {
        use cni_bridge::masq::nft_map_name;
        let table_comment = "comment \"cni-rs bridge ipMasq: one map of container addresses \
                             and one rule per network and subnet\"";
        let mut v = Vec::new();
        for (family, addr, subnet, multicast) in [
            ("ip", "ipv4_addr", "10.13.0.0/24", "224.0.0.0/4"),
            ("ip6", "ipv6_addr", "fd13::/64", "ff00::/8"),
        ] {
            let t = format!("table {family} cni_bridge_masq");
            let m = nft_map_name("testnet", subnet.parse().unwrap());
            let comment = format!("comment \"testnet {subnet}\"");
            v.extend([
                t.clone(),
                format!("{t}: {table_comment}"),
                format!("{t} / chain postrouting"),
                format!("{t} / chain postrouting: type nat hook postrouting priority srcnat; policy accept;"),
                format!("{t} / chain postrouting: {family} saddr @{m} {family} daddr != {subnet} {family} daddr != {multicast} masquerade {comment}"),
                format!("{t} / map {m}"),
                format!("{t} / map {m}: {comment}"),
                format!("{t} / map {m}: type {addr} : ifname"),
            ]);
        }
        v
    } else {
        Vec::new()
    };
    let shared = |i: &cni_testkit::Item| {
        use cni_testkit::snapshot::Kind;
        let t = i.text.as_str();
        match i.kind {
            Kind::Link => t.starts_with("cni0 kind=bridge "),
            Kind::Addr => t == "cni0 10.13.0.1/24" || t == "cni0 fd13::1/64",
            Kind::Route => {
                t.starts_with("main 10.13.0.0/24 dev cni0 ")
                    || t.starts_with("main fd13::/64 dev cni0 ")
            }
            Kind::Nft => nft_skeleton.iter().any(|s| s == t),
            Kind::File => cni_testkit::snapshot::host_local_bookkeeping(i),
            _ => false,
        }
    };
    let diff = before.diff(&after);
    assert!(diff.removed.is_empty(), "removed:\n{diff}");
    let diff = diff.filter(|i| !shared(i));
    assert!(diff.is_empty(), "left behind:\n{diff}");
}

#[test]
fn ipmasq_iptables_default_backend() {
    masq_life_cycle(None);
}

#[test]
fn ipmasq_iptables() {
    masq_life_cycle(Some("iptables"));
}

#[test]
fn ipmasq_nftables() {
    masq_life_cycle(Some("nftables"));
}

#[test]
fn mac_spoof_check() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let conf = node.conf(
        Version::V1_0_0,
        json!({"isGateway": true, "macspoofchk": true, "ipam": node.ipam(&["10.14.0.0/24"])}),
    );
    let pod = node.pod();
    let a = att("spoof", &pod);
    let r = node.runner.add(&conf, &a).unwrap();
    let nft = node.exec("nft", &["list", "table", "bridge", "nat"]);
    assert!(nft.contains("chain cni-br-iface-spoof-eth0 {"), "{nft}");
    assert!(
        nft.contains(&format!(
            "ether saddr {} return comment \"macspoofchk-spoof-eth0\"",
            r.interfaces[2].mac
        )),
        "{nft}"
    );
    assert!(
        nft.contains(&format!(
            "iifname \"{}\" jump cni-br-iface-spoof-eth0",
            r.interfaces[1].name
        )),
        "{nft}"
    );
    let t = Duration::from_secs(2);
    traffic::ping(&pod, gw("10.14.0.1"), t).unwrap();
    // A spoofed source MAC is dropped at the bridge port.
    let mut nl = pod.netlink().unwrap();
    let eth0 = nl.require_link("eth0").unwrap();
    nl.set_down(eth0.index).unwrap();
    nl.set_mac(eth0.index, [0x02, 0x66, 0x66, 0x66, 0x66, 0x66])
        .unwrap();
    nl.set_up(eth0.index).unwrap();
    assert!(
        !traffic::can_ping(&pod, gw("10.14.0.1"), t),
        "spoofed frames must be dropped"
    );

    node.runner.del(&conf, &a).unwrap();
    let nft = node.exec("nft", &["list", "table", "bridge", "nat"]);
    assert!(!nft.contains("cni-br-iface"), "{nft}");
    assert!(!nft.contains("macspoofchk"), "{nft}");
}

/// `mtu` is given to a new bridge and to both ends of the veth (as the reference does), and
/// frames of that size cross them unfragmented.
#[test]
fn mtu_is_applied_to_the_bridge_and_both_veth_ends() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    for (mtu, bridge, subnet, gateway) in [
        (1280u32, "br1280", "10.25.0.0/24", "10.25.0.1"),
        (9000, "br9000", "10.26.0.0/24", "10.26.0.1"),
    ] {
        let conf = node.conf(
            Version::V1_0_0,
            json!({"bridge": bridge, "isGateway": true, "mtu": mtu,
                   "ipam": node.ipam(&[subnet])}),
        );
        let pod = node.pod();
        let a = att(&format!("mtu{mtu}"), &pod);
        let r = node.runner.add(&conf, &a).unwrap();
        assert_eq!(node.link(bridge).unwrap().mtu, mtu, "bridge");
        assert_eq!(
            node.link(&r.interfaces[1].name).unwrap().mtu,
            mtu,
            "host end"
        );
        assert_eq!(pod_link(&pod, "eth0").unwrap().mtu, mtu, "container end");
        // A full-size packet with "don't fragment" reaches the gateway; one byte more
        // cannot leave the pod.
        let payload = (mtu - 28).to_string();
        pod.exec_ok("ping", &["-c1", "-W2", "-M", "do", "-s", &payload, gateway])
            .unwrap_or_else(|e| panic!("mtu {mtu}: {e}"));
        let over = (mtu - 27).to_string();
        assert!(
            pod.exec_ok("ping", &["-c1", "-W2", "-M", "do", "-s", &over, gateway])
                .is_err(),
            "mtu {mtu}: a packet over the MTU left the pod"
        );
        node.runner.del(&conf, &a).unwrap();
    }
}

/// `enabledad: true` turns duplicate address detection on in the pod and ADD waits for it: an
/// address that another host on the bridge already holds fails ADD (which then leaves nothing
/// behind). Without it, DAD is off (`accept_dad` 0) and the duplicate goes unnoticed, as with
/// the reference.
#[test]
fn enabledad_performs_duplicate_address_detection() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let conf = |dad: bool| {
        node.conf(
            Version::V1_0_0,
            json!({"isGateway": true, "enabledad": dad, "ipam": node.ipam(&["fd27::/64"])}),
        )
    };
    let accept_dad =
        |pod: &cni_testkit::TempNetns| pod.sysctl_get("net/ipv6/conf/eth0/accept_dad").unwrap();
    // No duplicate: ADD returns once DAD has run, so the address is no longer tentative.
    let pod = node.pod();
    let a = att("dad", &pod);
    let r = node.runner.add(&conf(true), &a).unwrap();
    assert_eq!(accept_dad(&pod), "1");
    let mut nl = pod.netlink().unwrap();
    let eth0 = nl.require_link("eth0").unwrap();
    let v6 = nl
        .addrs(Some(eth0.index), Some(IpFamily::V6))
        .unwrap()
        .into_iter()
        .find(|x| x.addr == r.ips[0].address)
        .expect("the pod's IPv6 address");
    assert!(!v6.is_tentative() && !v6.is_dadfailed(), "{v6:?}");
    node.runner.del(&conf(true), &a).unwrap();

    // The next address host-local hands out is already on the node's side of the bridge.
    // (host-local hands addresses out in order, after the last one it reserved.)
    let next = {
        let IpAddr::V6(v) = r.ips[0].address.addr() else {
            panic!("IPv6 expected: {r:?}")
        };
        ipnet::IpNet::new(IpAddr::V6((u128::from(v) + 1).into()), 64).unwrap()
    };
    let squatter = node.pod();
    {
        let br = node.link("cni0").unwrap();
        let mut req = cni_testkit::cni_linux::netlink::VethRequest::new("squat0", "eth0");
        req.peer_netns = Some(std::os::fd::AsFd::as_fd(squatter.netns()));
        req.master = Some(br.index);
        req.up = true;
        node.nl().add_veth(&req).unwrap();
        let mut snl = squatter.netlink().unwrap();
        let eth0 = snl.require_link("eth0").unwrap();
        snl.addr_add(eth0.index, next, AddrFlags::NODAD).unwrap();
        snl.set_up(eth0.index).unwrap();
    }
    let before = node.snapshot();
    let pod = node.pod();
    let a = att("dup", &pod);
    let e = node.runner.add(&conf(true), &a).unwrap_err();
    assert!(
        e.to_string().contains("failed duplicate address detection"),
        "{e}"
    );
    assert!(pod_link(&pod, "eth0").is_none());
    common::assert_nothing_left(&before, &node, "ADD that failed DAD");
    // Without enabledad a duplicate is taken without a check. (host-local moves on to the
    // address after the one it gave back: the squatter takes that one too.)
    let after_next = {
        let IpAddr::V6(v) = next.addr() else {
            unreachable!()
        };
        ipnet::IpNet::new(IpAddr::V6((u128::from(v) + 1).into()), 64).unwrap()
    };
    let mut snl = squatter.netlink().unwrap();
    let eth0 = snl.require_link("eth0").unwrap();
    snl.addr_add(eth0.index, after_next, AddrFlags::NODAD)
        .unwrap();
    let r = node.runner.add(&conf(false), &a).unwrap();
    assert_eq!(r.ips[0].address, after_next);
    assert_eq!(accept_dad(&pod), "0");
    let mut nl = pod.netlink().unwrap();
    let eth0 = nl.require_link("eth0").unwrap();
    let v6 = nl
        .addrs(Some(eth0.index), Some(IpFamily::V6))
        .unwrap()
        .into_iter()
        .find(|x| x.addr == after_next)
        .expect("the pod's IPv6 address");
    assert!(!v6.is_tentative() && !v6.is_dadfailed(), "{v6:?}");
    node.runner.del(&conf(false), &a).unwrap();
}

/// Without `ipMasqBackend`, on a node with only nftables (no `iptables-save`/`iptables-restore`
/// in the plugin's `PATH`), the plugin picks nftables, as the reference does, and masquerades;
/// DEL removes it. With the tools in `PATH` it picks iptables.
#[test]
fn masq_backend_is_nftables_on_a_node_without_iptables() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let empty = cni_testkit::TempDir::new("no-iptables").unwrap();
    let nft_only = node
        .runner
        .clone()
        .env("PATH", empty.path().to_string_lossy());
    let conf = node.conf(
        Version::V1_0_0,
        json!({"isGateway": true, "ipMasq": true, "ipam": node.ipam(&["10.28.0.0/24"])}),
    );
    let pod = node.pod();
    let a = att("nftonly", &pod);
    let r = nft_only.add(&conf, &a).unwrap();
    let v4 = common::first_v4(&r);
    let owner = cni_bridge::masq::nft_owner("testnet", "eth0", "nftonly");
    let nft = node.exec("nft", &["list", "ruleset"]);
    assert!(
        nft.contains(&format!("{v4} comment")) && nft.contains(&owner),
        "no nftables element for {v4}:\n{nft}"
    );
    let chain = cni_bridge::masq::iptables_chain("testnet", "nftonly");
    let ipt = node.exec("iptables-save", &["-t", "nat"]);
    assert!(!ipt.contains(&chain), "{ipt}");
    nft_only.del(&conf, &a).unwrap();
    let nft = node.exec("nft", &["list", "ruleset"]);
    assert!(!nft.contains(&owner), "{nft}");

    // The same config with the tools in PATH: iptables, as the reference.
    let r = node.runner.add(&conf, &a).unwrap();
    let ipt = node.exec("iptables-save", &["-t", "nat"]);
    assert!(
        ipt.contains(&format!("-s {}/32", common::first_v4(&r))) && ipt.contains(&chain),
        "{ipt}"
    );
    assert!(!node.exec("nft", &["list", "ruleset"]).contains(&owner));
    node.runner.del(&conf, &a).unwrap();
}

/// DEL with input that ADD refuses (a runtime repeats the ADD's config, or the config was
/// changed to a bad one since) succeeds and removes everything the attachment has; DEL of an
/// ADD that was refused succeeds too (a runtime stops tearing down at the first failing DEL).
#[test]
fn del_succeeds_on_input_that_add_refuses() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let good = json!({"isGateway": true, "ipMasq": true, "macspoofchk": true,
                      "ipam": node.ipam(&["10.22.0.0/24"])});
    let conf = |extra: serde_json::Value| {
        let mut c = node.conf(Version::V1_0_0, good.clone());
        if let (Some(m), serde_json::Value::Object(e)) = (c.as_object_mut(), extra) {
            m.extend(e);
        }
        c
    };
    let warm_pod = node.pod();
    node.runner
        .add(&conf(json!({})), &att("warm", &warm_pod))
        .unwrap();
    node.runner
        .del(&conf(json!({})), &att("warm", &warm_pod))
        .unwrap();
    let before = node.snapshot();
    let bad = [
        json!({"vlan": 5000}),
        json!({"vlanTrunk": [{"minID": 9, "maxID": 3}]}),
        json!({"vlan": 3, "vlanTrunk": [{"id": 4}]}),
        json!({"mtu": -1}),
        json!({"mtu": "1500"}),
        json!({"isGateway": "yes", "hairpinMode": 1}),
        json!({"ipMasqBackend": "ebtables"}),
    ];
    for extra in bad {
        let bad_conf = conf(extra.clone());
        // The ADD is refused, and its DEL succeeds.
        let pod = node.pod();
        let a = att("refused", &pod);
        node.runner
            .add(&bad_conf, &a)
            .expect_err(&format!("ADD accepted {extra}"));
        node.runner
            .del(&bad_conf, &a)
            .unwrap_or_else(|e| panic!("DEL of the refused ADD with {extra}: {e}"));
        // A pod set up with the good config is torn down by the bad one.
        let a = att("changed", &pod);
        let r = node.runner.add(&conf(json!({})), &a).unwrap();
        node.runner
            .del(&bad_conf, &a)
            .unwrap_or_else(|e| panic!("DEL with {extra}: {e}"));
        assert!(pod_link(&pod, "eth0").is_none(), "{extra}");
        assert!(node.link(&r.interfaces[1].name).is_none(), "{extra}");
        common::assert_nothing_left(&before, &node, &format!("DEL with {extra}"));
    }
    // CNI_ARGS that ADD refuses (unknown keys without IgnoreUnknown), on an L2 network (an
    // IPAM plugin has its own view of CNI_ARGS).
    let l2 = node.conf(Version::V1_0_0, json!({"macspoofchk": true}));
    let pod = node.pod();
    let a = att("l2args", &pod);
    node.runner.add(&l2, &a).unwrap();
    let bad_args = a.clone().with_args("K8S_POD_NAME=x");
    assert!(node.runner.add(&l2, &bad_args).is_err());
    node.runner.del(&l2, &bad_args).unwrap();
    assert!(pod_link(&pod, "eth0").is_none());
    let nft = node.exec("nft", &["list", "table", "bridge", "nat"]);
    assert!(!nft.contains("l2args"), "{nft}");
    // GC, too, works with keys only ADD uses gone bad.
    let pod = node.pod();
    let a = att("gcbad", &pod);
    node.runner.add(&conf(json!({})), &a).unwrap();
    let gc_conf =
        cni_testkit::runner::with_version(&conf(json!({"vlan": 5000, "mtu": -1})), Version::V1_1_0);
    node.runner
        .gc(&with_valid_attachments(&gc_conf, &[]))
        .unwrap();
    assert!(node.allocations().is_empty(), "{:?}", node.allocations());
    node.runner.del(&conf(json!({})), &a).unwrap();
}

/// nftables DEL without `prevResult` reads the addresses from the container; when they were
/// changed since ADD, the attachment's elements are still found (by their owner) and deleted.
#[test]
fn nftables_del_after_the_addresses_changed_leaves_no_element() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let conf = node.conf(
        Version::V1_0_0,
        json!({"isGateway": true, "ipMasq": true, "ipMasqBackend": "nftables",
               "ipam": node.ipam(&["10.21.0.0/24", "fd21::/64"])}),
    );
    let owner = cni_bridge::masq::nft_owner("testnet", "eth0", "changed");
    // (what is changed in the pod, after ADD): the IPv4 address replaced by a foreign one
    // (the IPv6 one stays, so DEL finds one of its elements by key), then every address
    // replaced by foreign ones.
    for replace_v6 in [false, true] {
        let pod = node.pod();
        let a = att("changed", &pod);
        let r = node.runner.add(&conf, &a).unwrap();
        let nft = node.exec("nft", &["list", "ruleset"]);
        assert_eq!(nft.matches(&owner).count(), 2, "{nft}");
        let mut nl = pod.netlink().unwrap();
        let eth0 = nl.require_link("eth0").unwrap();
        for ip in &r.ips {
            if ip.address.addr().is_ipv4() || replace_v6 {
                nl.addr_del(eth0.index, ip.address).unwrap();
            }
        }
        nl.addr_add(
            eth0.index,
            "10.21.0.250/24".parse().unwrap(),
            Default::default(),
        )
        .unwrap();
        if replace_v6 {
            nl.addr_add(
                eth0.index,
                "fd21::250/64".parse().unwrap(),
                AddrFlags::NODAD,
            )
            .unwrap();
        }
        node.runner.del(&conf, &a).unwrap();
        let nft = node.exec("nft", &["list", "ruleset"]);
        assert!(
            !nft.contains(&owner),
            "[replace_v6 {replace_v6}] an element of the deleted attachment is left:\n{nft}"
        );
    }
}

/// `a-b` + `c` and `a` + `b-c` have the same reference spoof-check name: each must keep its
/// own MAC filter, and DEL of one must leave the other's intact.
#[test]
fn spoof_checks_of_colliding_reference_names_stay_apart() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let conf = node.conf(
        Version::V1_0_0,
        json!({"isGateway": true, "macspoofchk": true, "ipam": node.ipam(&["10.20.0.0/24"])}),
    );
    let (p1, p2) = (node.pod(), node.pod());
    let a1 = cni_testkit::Attachment::new("a-b", p1.path(), "c");
    let a2 = cni_testkit::Attachment::new("a", p2.path(), "b-c");
    let r1 = node.runner.add(&conf, &a1).unwrap();
    let r2 = node.runner.add(&conf, &a2).unwrap();
    let t = Duration::from_secs(3);
    traffic::ping(&p1, gw("10.20.0.1"), t).expect("first pod filtered by the second's MAC");
    traffic::ping(&p2, gw("10.20.0.1"), t).unwrap();
    let nft = node.exec("nft", &["list", "table", "bridge", "nat"]);
    for (r, cid, ifname) in [(&r1, "a-b", "c"), (&r2, "a", "b-c")] {
        let chain = cni_bridge::spoofchk::iface_chain(&cni_bridge::spoofchk::ref_id(cid, ifname));
        assert!(
            nft.contains(&format!(
                "iifname \"{}\" jump {chain}",
                r.interfaces[1].name
            )),
            "{nft}"
        );
    }

    node.runner.del(&conf, &a1).unwrap();
    let nft = node.exec("nft", &["list", "table", "bridge", "nat"]);
    let rid2 = cni_bridge::spoofchk::ref_id("a", "b-c");
    assert!(
        nft.contains(&format!(
            "iifname \"{}\" jump {}",
            r2.interfaces[1].name,
            cni_bridge::spoofchk::iface_chain(&rid2)
        )),
        "the second check's jump went with the first DEL:\n{nft}"
    );
    assert!(
        nft.contains(&format!(
            "ether saddr {} return comment \"{}\"",
            r2.interfaces[2].mac,
            cni_bridge::spoofchk::comment(&rid2)
        )),
        "{nft}"
    );
    assert!(
        !nft.contains(&cni_bridge::spoofchk::ref_id("a-b", "c")),
        "{nft}"
    );
    // The remaining check still works: the pod passes, a spoofed MAC does not.
    traffic::ping(&p2, gw("10.20.0.1"), t).unwrap();
    let mut nl = p2.netlink().unwrap();
    let eth = nl.require_link("b-c").unwrap();
    nl.set_down(eth.index).unwrap();
    nl.set_mac(eth.index, [0x02, 0x66, 0x66, 0x66, 0x66, 0x67])
        .unwrap();
    nl.set_up(eth.index).unwrap();
    assert!(
        !traffic::can_ping(&p2, gw("10.20.0.1"), t),
        "spoofed frames must still be dropped"
    );
    node.runner.del(&conf, &a2).unwrap();
    let nft = node.exec("nft", &["list", "table", "bridge", "nat"]);
    assert!(!nft.contains("cni-br-iface"), "{nft}");
}

#[test]
fn gc_removes_stale_masquerade_and_spoof_checks() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    for backend in ["iptables", "nftables"] {
        let conf = node.conf(
            Version::V1_1_0,
            json!({"isGateway": true, "ipMasq": true, "ipMasqBackend": backend, "macspoofchk": true,
                   "ipam": node.ipam(&["10.15.0.0/24"])}),
        );
        let keep = node.pod();
        let stale = node.pod();
        let rk = node.runner.add(&conf, &att("keep", &keep)).unwrap();
        node.runner.add(&conf, &att("stale", &stale)).unwrap();
        // The stale pod disappears without DEL. (Its interface is deleted directly: when a
        // namespace is deleted the kernel destroys its devices asynchronously.)
        let mut snl = stale.netlink().unwrap();
        let eth0 = snl.require_link("eth0").unwrap();
        snl.delete_link(eth0.index).unwrap();
        let valid = [cni_testkit::cni_types::Attachment {
            container_id: "keep".into(),
            ifname: "eth0".into(),
        }];
        node.runner
            .gc(&with_valid_attachments(&conf, &valid))
            .unwrap_or_else(|e| panic!("[{backend}] GC: {e}"));
        let ipt = node.exec("iptables-save", &["-t", "nat"]);
        let nft = node.exec("nft", &["list", "ruleset"]);
        let keep_chain = cni_bridge::masq::iptables_chain("testnet", "keep");
        let stale_chain = cni_bridge::masq::iptables_chain("testnet", "stale");
        let element = |id: &str| cni_bridge::masq::nft_element_comment("testnet", "eth0", id);
        assert!(!ipt.contains(&stale_chain), "[{backend}] {ipt}");
        assert!(!nft.contains(&element("stale")), "[{backend}] {nft}");
        assert!(
            !nft.contains("cni-br-iface-stale-eth0"),
            "[{backend}] {nft}"
        );
        match backend {
            "iptables" => assert!(ipt.contains(&keep_chain), "{ipt}"),
            _ => assert!(nft.contains(&element("keep")), "{nft}"),
        }
        assert!(nft.contains("cni-br-iface-keep-eth0"), "{nft}");
        // GC reached IPAM: only the valid attachment keeps its address.
        let allocs = node.allocations();
        assert_eq!(
            allocs,
            vec![common::first_v4(&rk).to_string()],
            "[{backend}]"
        );
        node.runner.del(&conf, &att("keep", &keep)).unwrap();
    }
}

#[test]
fn status_is_delegated_to_ipam() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let conf = node.conf(
        Version::V1_1_0,
        json!({"ipam": node.ipam(&["10.16.0.0/24"])}),
    );
    node.runner.status(&conf).unwrap();
    // An L2 network is always ready.
    node.runner
        .status(&node.conf(Version::V1_1_0, json!({})))
        .unwrap();
    // A full range makes IPAM (and so the bridge) report "not available".
    let mut ipam = node.ipam(&["10.16.1.0/30"]);
    ipam["ranges"][0][0]["rangeStart"] = json!("10.16.1.2");
    ipam["ranges"][0][0]["rangeEnd"] = json!("10.16.1.2");
    let conf = node.conf(Version::V1_1_0, json!({"ipam": ipam}));
    let pod = node.pod();
    node.runner.add(&conf, &att("full", &pod)).unwrap();
    let e = node.runner.status(&conf).unwrap_err();
    assert_eq!(e.code(), Some(50), "{e}");
    node.runner.del(&conf, &att("full", &pod)).unwrap();
}

#[test]
fn result_dns_from_config_overrides_ipam() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let conf = node.conf(
        Version::V1_0_0,
        json!({"dns": {"nameservers": ["9.9.9.9"], "search": ["svc"]},
               "ipam": node.ipam(&["10.17.0.0/24"])}),
    );
    let pod = node.pod();
    let r: CniResult = node.runner.add(&conf, &att("dns", &pod)).unwrap();
    assert_eq!(r.dns.nameservers, vec!["9.9.9.9".to_string()]);
    assert_eq!(r.dns.search, vec!["svc".to_string()]);
    node.runner.del(&conf, &att("dns", &pod)).unwrap();
}

#[test]
fn nftables_second_add_only_adds_an_element() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let conf = node.conf(
        Version::V1_0_0,
        json!({"isGateway": true, "ipMasq": true, "ipMasqBackend": "nftables",
               "ipam": node.ipam(&["10.18.0.0/24"])}),
    );
    let chain = || {
        node.exec(
            "nft",
            &[
                "-a",
                "list",
                "chain",
                "ip",
                "cni_bridge_masq",
                "postrouting",
            ],
        )
    };
    let map = cni_bridge::masq::nft_map_name("testnet", "10.18.0.0/24".parse().unwrap());
    let elements = || {
        let set = node.exec("nft", &["list", "map", "ip", "cni_bridge_masq", &map]);
        set.matches(" comment \"testnet eth0 ").count()
    };
    let (p1, p2) = (node.pod(), node.pod());
    node.runner.add(&conf, &att("pr1", &p1)).unwrap();
    let first = chain();
    assert_eq!(
        first.matches("# handle").count(),
        2,
        "chain + 1 rule:\n{first}"
    );
    assert_eq!(elements(), 1);
    node.runner.add(&conf, &att("pr2", &p2)).unwrap();
    assert_eq!(chain(), first, "the second ADD leaves the chain as it is");
    assert_eq!(elements(), 2);
    node.runner.del(&conf, &att("pr1", &p1)).unwrap();
    assert_eq!(elements(), 1);
    node.runner.del(&conf, &att("pr2", &p2)).unwrap();
    assert_eq!(elements(), 0);
    assert_eq!(chain(), first, "DEL leaves the chain as it is");

    // Another network (and subnet) gets its own map and rule next to the first.
    let mut other = node.conf(
        Version::V1_0_0,
        json!({"bridge": "cni1", "isGateway": true, "ipMasq": true, "ipMasqBackend": "nftables",
               "ipam": node.ipam(&["10.18.1.0/24"])}),
    );
    other["name"] = json!("othernet");
    let p3 = node.pod();
    node.runner.add(&other, &att("pr3", &p3)).unwrap();
    let both = chain();
    let other_map = cni_bridge::masq::nft_map_name("othernet", "10.18.1.0/24".parse().unwrap());
    assert_eq!(both.matches("masquerade comment").count(), 2, "{both}");
    assert!(
        both.contains(&format!("ip saddr @{other_map} ip daddr != 10.18.1.0/24")),
        "{both}"
    );
    node.runner.del(&other, &att("pr3", &p3)).unwrap();
}

#[test]
fn nftables_concurrent_first_adds_write_the_rule_once() {
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    let conf = node.conf(
        Version::V1_0_0,
        json!({"isGateway": true, "ipMasq": true, "ipMasqBackend": "nftables",
               "ipam": node.ipam(&["10.26.0.0/24"])}),
    );
    // The bridge exists already; its table, map and rule do not.
    node.runner
        .add(
            &node.conf(Version::V1_0_0, json!({})),
            &att("l2", &node.pod()),
        )
        .unwrap();
    let pods: Vec<_> = (0..6).map(|_| node.pod()).collect();
    std::thread::scope(|s| {
        for (i, pod) in pods.iter().enumerate() {
            let (node, conf) = (&node, &conf);
            s.spawn(move || {
                node.runner
                    .add(conf, &att(&format!("race{i}"), pod))
                    .unwrap()
            });
        }
    });
    let table = node.exec("nft", &["list", "table", "ip", "cni_bridge_masq"]);
    assert_eq!(table.matches("masquerade comment").count(), 1, "{table}");
    assert_eq!(
        table.matches(" comment \"testnet eth0 race").count(),
        6,
        "{table}"
    );
    for (i, pod) in pods.iter().enumerate() {
        node.runner
            .del(&conf, &att(&format!("race{i}"), pod))
            .unwrap();
    }
    let table = node.exec("nft", &["list", "table", "ip", "cni_bridge_masq"]);
    assert!(!table.contains("elements"), "{table}");
}

#[test]
fn del_removes_the_reference_nftables_rules() {
    // A node switching from the Go bridge v1.5+ (nftables): its rules in
    // `inet cni_plugins_masquerade` are removed by our DEL, whatever our backend.
    use cni_testkit::cni_linux::firewall::nftables::{
        self, ChainSpec, ChainType, CmpOp, Family, Field, Hook, NftPlan, RuleSpec, Stmt, Value,
        priority,
    };
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    for backend in ["iptables", "nftables"] {
        let conf = node.conf(
            Version::V1_0_0,
            json!({"isGateway": true, "ipMasq": true, "ipMasqBackend": backend,
                   "ipam": node.ipam(&["10.19.0.0/24"])}),
        );
        let pod = node.pod();
        let id = format!("goref-{backend}");
        let a = att(&id, &pod);
        let r = node.runner.add(&conf, &a).unwrap();
        // What the Go plugin would have written for this attachment and for another one.
        let (t, f) = (cni_bridge::masq::REF_NFT_TABLE, Family::Inet);
        let rule = |ip: &str, id: &str| {
            RuleSpec::new(
                cni_bridge::masq::REF_NFT_CHAIN,
                vec![
                    Stmt::Cmp {
                        field: Field::IpSaddr,
                        op: CmpOp::Eq,
                        value: Value::Addr(ip.parse().unwrap()),
                    },
                    Stmt::Cmp {
                        field: Field::IpDaddr,
                        op: CmpOp::Neq,
                        value: Value::Net("10.19.0.0/24".parse().unwrap()),
                    },
                    Stmt::Masquerade,
                ],
            )
            .with_comment(cni_bridge::masq::ref_nft_comment("testnet", "eth0", id))
        };
        let mut plan = NftPlan::new();
        plan.add_table(f, t, None)
            .add_chain(f, t, ChainSpec::regular(cni_bridge::masq::REF_NFT_CHAIN))
            .add_chain(
                f,
                t,
                ChainSpec::base(
                    "postrouting",
                    ChainType::Nat,
                    Hook::Postrouting,
                    priority::SRCNAT,
                ),
            )
            .add_rule(
                f,
                t,
                RuleSpec::new(
                    "postrouting",
                    vec![Stmt::Verdict(nftables::Verdict::Goto(
                        cni_bridge::masq::REF_NFT_CHAIN.into(),
                    ))],
                ),
            )
            .add_rule(f, t, rule(&common::first_v4(&r).to_string(), &id))
            .add_rule(f, t, rule("10.19.0.250", "someone-else"));
        node.ns.run(|| nftables::apply(&plan)).unwrap().unwrap();
        let mine = cni_bridge::masq::ref_nft_comment("testnet", "eth0", &id);
        assert!(node.exec("nft", &["list", "ruleset"]).contains(&mine));

        node.runner.del(&conf, &a).unwrap();
        let nft = node.exec("nft", &["list", "ruleset"]);
        assert!(!nft.contains(&mine), "[{backend}] {nft}");
        assert!(
            nft.contains(&cni_bridge::masq::ref_nft_comment(
                "testnet",
                "eth0",
                "someone-else"
            )),
            "[{backend}] another attachment's rule stays: {nft}"
        );
        let mut clean = NftPlan::new();
        clean.push(nftables::NftOp::DestroyTable {
            family: f,
            name: t.into(),
        });
        node.ns.run(|| nftables::apply(&clean)).unwrap().unwrap();
    }
}

/// Runs IPAM as processes, and records at each IPAM DEL whether the host end of the veth was
/// still there.
struct WatchingIpam {
    host_veth: String,
    seen_at_del: std::sync::Mutex<Vec<bool>>,
}

impl cni_proto::exec::Exec for WatchingIpam {
    fn exec(
        &self,
        plugin_type: &str,
        command: cni_proto::Command,
        stdin: &[u8],
        env: &cni_proto::Env,
    ) -> Result<Vec<u8>, cni_testkit::cni_types::Error> {
        if command == cni_proto::Command::Del {
            // Called on the thread that runs DEL, in the node's namespace.
            let mut nl = cni_testkit::cni_linux::netlink::Handle::new().unwrap();
            let present = nl.link_by_name(&self.host_veth).unwrap().is_some();
            self.seen_at_del.lock().unwrap().push(present);
        }
        cni_proto::exec::ProcessExec.exec(plugin_type, command, stdin, env)
    }
}

#[test]
fn ipam_del_runs_once_the_veth_is_gone() {
    // plugins #666: an address is released only once no device holds it, also now that IPAM
    // DEL starts while the kernel finishes deleting the veth.
    let Some(node) = Node::new(Ipam::Ours) else {
        return;
    };
    for extra in [
        json!({"isGateway": true, "ipam": node.ipam(&["10.25.0.0/24"])}),
        json!({"isGateway": true, "ipMasq": true, "ipMasqBackend": "nftables", "macspoofchk": true,
               "ipam": node.ipam(&["10.25.0.0/24"])}),
    ] {
        let conf = node.conf(Version::V1_0_0, extra);
        let pod = node.pod();
        let a = att("order", &pod);
        let r = node.runner.add(&conf, &a).unwrap();
        let host_veth = r.interfaces[1].name.clone();
        assert!(node.link(&host_veth).is_some());
        let bconf = cni_bridge::BridgeConf::parse(conf.to_string().as_bytes(), "").unwrap();
        let watch = std::sync::Arc::new(WatchingIpam {
            host_veth: host_veth.clone(),
            seen_at_del: Default::default(),
        });
        let latt = cni_bridge::Attachment::new(
            "order",
            "eth0",
            Some(pod.path().to_path_buf()),
            &node.bins.path().display().to_string(),
        );
        node.ns
            .run(|| {
                let mut deps = cni_bridge::Deps::system();
                deps.exec = watch.clone();
                cni_bridge::del(&bconf, &latt, &mut deps)
            })
            .unwrap()
            .unwrap();
        assert_eq!(*watch.seen_at_del.lock().unwrap(), vec![false], "{conf}");
        assert!(node.link(&host_veth).is_none());
        assert!(pod_link(&pod, "eth0").is_none());
        assert!(node.allocations().is_empty(), "{conf}");
        let nft = node.exec("nft", &["list", "ruleset"]);
        assert!(!nft.contains("elements ="), "{nft}");
        assert!(!nft.contains("cni-br-iface-order"), "{nft}");
    }
}
