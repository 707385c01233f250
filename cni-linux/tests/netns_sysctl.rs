//! Sysctls inside throw-away namespaces; the root namespace value must not change.

mod common;

use cni_linux::sysctl;
use common::{TestNs, require_root};

#[test]
fn ip_forward_is_per_namespace() {
    if !require_root() {
        return;
    }
    let root_before = sysctl::read("net.ipv4.ip_forward").unwrap();
    let t = TestNs::new("sysctl");

    let initial = sysctl::get_in(&t.ns, "net.ipv4.ip_forward").unwrap();
    let flipped = if initial == "1" { "0" } else { "1" };
    sysctl::set_in(&t.ns, "net.ipv4.ip_forward", flipped).unwrap();
    assert_eq!(
        sysctl::get_in(&t.ns, "net.ipv4.ip_forward").unwrap(),
        flipped
    );

    // The same key read from a thread in the namespace, slash form.
    let inside =
        t.ns.run(|| sysctl::read("/proc/sys/net/ipv4/ip_forward"))
            .unwrap()
            .unwrap();
    assert_eq!(inside, flipped);

    // ensure() writes only when needed.
    let wrote =
        t.ns.run(|| sysctl::ensure("net.ipv4.ip_forward", flipped))
            .unwrap()
            .unwrap();
    assert!(!wrote);
    let wrote =
        t.ns.run(|| sysctl::ensure("net.ipv4.ip_forward", &initial))
            .unwrap()
            .unwrap();
    assert!(wrote);

    assert_eq!(sysctl::read("net.ipv4.ip_forward").unwrap(), root_before);
}

#[test]
fn per_interface_keys_and_batches() {
    if !require_root() {
        return;
    }
    let root_before = sysctl::read("net/ipv4/conf/lo/arp_notify").unwrap();
    let t = TestNs::new("sysctl-if");
    let flipped = if sysctl::get_in(&t.ns, "net/ipv4/conf/lo/arp_notify").unwrap() == "1" {
        "0"
    } else {
        "1"
    };
    sysctl::set_many_in(
        &t.ns,
        &[
            ("net/ipv4/conf/lo/arp_notify", flipped),
            ("net.ipv6.conf.lo.keep_addr_on_down", "1"),
        ],
    )
    .unwrap();
    assert_eq!(
        sysctl::get_in(&t.ns, "net.ipv4.conf.lo.arp_notify").unwrap(),
        flipped
    );
    assert_eq!(
        sysctl::get_in(&t.ns, "net.ipv6.conf.lo.keep_addr_on_down").unwrap(),
        "1"
    );
    assert_eq!(
        sysctl::read("net/ipv4/conf/lo/arp_notify").unwrap(),
        root_before
    );

    let missing = sysctl::get_in(&t.ns, "net/ipv4/conf/nope0/forwarding").unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
}

#[test]
fn handle_and_sysctls_in_one_thread_hop() {
    if !require_root() {
        return;
    }
    let t = TestNs::new("hop");
    let (mut h, wrote) = cni_linux::netlink::Handle::new_in_with(&t.ns, || {
        sysctl::write("net.ipv4.conf.all.arp_notify", "1")
    })
    .unwrap();
    wrote.unwrap();
    assert_eq!(
        sysctl::get_in(&t.ns, "net.ipv4.conf.all.arp_notify").unwrap(),
        "1"
    );
    assert!(h.netns().is_same(&t.ns));
    // The handle acts in the namespace: what it creates is visible there, not here.
    h.add_veth(&cni_linux::netlink::VethRequest::new("hop0", "hop1"))
        .unwrap();
    assert!(t.handle().link_by_name("hop0").unwrap().is_some());
    let mut here = cni_linux::netlink::Handle::new().unwrap();
    assert!(here.link_by_name("hop0").unwrap().is_none());
}
