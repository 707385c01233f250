//! Event-driven waits, inside throw-away namespaces only. Timeouts here are bounds that
//! keep a broken wait from hanging, never timing assertions.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::os::fd::AsFd;
use std::time::Duration;

use cni_linux::netlink::{AddrFlags, Error, Handle, VethRequest};
use common::{TestNs, require_root};
use ipnet::IpNet;

const GENEROUS: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(200);

#[test]
fn oper_up_when_both_ends_are_up() {
    if !require_root() {
        return;
    }
    let node = TestNs::new("wait-node");
    let pod = TestNs::new("wait-pod");
    let mut h = node.handle();
    let mut req = VethRequest::new("vhost", "eth0");
    req.peer_netns = Some(pod.ns.as_fd());
    req.up = true;
    let host = h.add_veth(&req).unwrap();

    // The peer comes up from another thread while we wait: whichever happens first, the
    // wait must see it (subscription before the state check).
    let pod_ns = pod.ns.try_clone().unwrap();
    let link = std::thread::scope(|s| {
        s.spawn(move || {
            let mut inside = Handle::new_in(&pod_ns).unwrap();
            let eth0 = inside.link_by_name("eth0").unwrap().unwrap();
            inside.set_up(eth0.index).unwrap();
        });
        h.wait_oper_up(host.index, GENEROUS).unwrap()
    });
    assert!(link.oper_up);
    assert_eq!(link.index, host.index);
    // Already up: returns at once.
    assert!(h.wait_oper_up(host.index, GENEROUS).unwrap().oper_up);
}

#[test]
fn oper_up_times_out_when_peer_stays_down() {
    if !require_root() {
        return;
    }
    let node = TestNs::new("wait-down");
    let mut h = node.handle();
    let mut req = VethRequest::new("vhost", "vpeer");
    req.up = true;
    let host = h.add_veth(&req).unwrap();
    let err = h.wait_oper_up(host.index, SHORT).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(!h.link_by_index(host.index).unwrap().unwrap().oper_up);

    let missing = h.wait_oper_up(999_999, SHORT).unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
}

/// A veth pair a ↔ b inside `h`'s namespace, both up.
fn up_pair(h: &mut Handle) -> (u32, u32) {
    let mut req = VethRequest::new("a", "b");
    req.up = true;
    let a = h.add_veth(&req).unwrap().index;
    let b = h.link_by_name("b").unwrap().unwrap().index;
    h.set_up(b).unwrap();
    (a, b)
}

#[test]
fn dad_settles() {
    if !require_root() {
        return;
    }
    let t = TestNs::new("dad");
    let mut h = t.handle();
    let (a, b) = up_pair(&mut h);
    let addr: IpNet = "fd00:5::2/64".parse().unwrap();
    h.addr_add(a, addr, AddrFlags::NONE).unwrap();
    h.wait_oper_up(a, GENEROUS).unwrap();
    h.wait_addrs_not_tentative(a, GENEROUS).unwrap();
    let addrs = h
        .addrs(Some(a), Some(cni_linux::netlink::IpFamily::V6))
        .unwrap();
    assert!(addrs.iter().any(|x| x.addr == addr));
    assert!(addrs.iter().all(|x| !x.is_tentative()), "{addrs:?}");
    let _ = b;
}

#[test]
fn dad_times_out_on_a_down_link_and_reports_failure() {
    if !require_root() {
        return;
    }
    let t = TestNs::new("dad-fail");
    let mut h = t.handle();
    // Down link: DAD never runs, the address stays tentative.
    let down = h.add_veth(&VethRequest::new("d0", "d1")).unwrap().index;
    h.addr_add(down, "fd00:6::2/64".parse().unwrap(), AddrFlags::NONE)
        .unwrap();
    let err = h.wait_addrs_not_tentative(down, SHORT).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");

    // Duplicate: b already owns the address, a's DAD must fail.
    let (a, b) = up_pair(&mut h);
    h.wait_oper_up(a, GENEROUS).unwrap();
    let dup: IpNet = "fd00:7::9/64".parse().unwrap();
    h.addr_add(b, dup, AddrFlags::NODAD).unwrap();
    h.addr_add(a, dup, AddrFlags::NONE).unwrap();
    let err = h.wait_addrs_not_tentative(a, GENEROUS).unwrap_err();
    match err {
        Error::DadFailed { index, addr } => {
            assert_eq!(index, a);
            assert_eq!(addr, dup);
        }
        other => panic!("expected DAD failure, got {other}"),
    }
}

#[test]
fn links_gone_after_their_pod_namespace_is_deleted() {
    if !require_root() {
        return;
    }
    let node = TestNs::new("wait-gone");
    let pod = TestNs::new("wait-gone-pod");
    let mut h = node.handle();
    let mut hosts = Vec::new();
    for (host, peer) in [("vg0", "eth0"), ("vg1", "eth1")] {
        let mut req = VethRequest::new(host, peer);
        req.peer_netns = Some(pod.ns.as_fd());
        hosts.push(h.add_veth(&req).unwrap().index);
    }
    // Still there: a short wait times out.
    let err = h.wait_links_gone(&hosts, SHORT).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    // Deleting the pod namespace takes its veths, and the node ends with them.
    drop(pod);
    h.wait_links_gone(&hosts, GENEROUS).unwrap();
    for i in &hosts {
        assert!(h.link_by_index(*i).unwrap().is_none());
    }
    // Nothing to wait for: returns at once.
    h.wait_links_gone(&[], SHORT).unwrap();
}

#[test]
fn links_gone_or_stop() {
    if !require_root() {
        return;
    }
    let node = TestNs::new("wait-or");
    let pod = TestNs::new("wait-or-pod");
    let mut h = node.handle();
    let mut req = VethRequest::new("vo0", "eth0");
    req.peer_netns = Some(pod.ns.as_fd());
    let host = h.add_veth(&req).unwrap().index;
    let slice = std::time::Duration::from_millis(2);
    // Still there and asked to stop: false, the link untouched.
    assert!(!h.wait_links_gone_or(&[host], slice, || true).unwrap());
    assert!(h.link_by_index(host).unwrap().is_some());
    // Deleted by another thread while waiting: the kernel announces the deletion before the
    // delete call returns, so the event ends the wait even if `stop` has turned true by then.
    let done = std::sync::atomic::AtomicBool::new(false);
    let gone = std::thread::scope(|s| {
        s.spawn(|| {
            let mut other = node.handle();
            other.delete_link(host).unwrap();
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        h.wait_links_gone_or(&[host], slice, || {
            done.load(std::sync::atomic::Ordering::SeqCst)
        })
        .unwrap()
    });
    assert!(gone);
    assert!(h.link_by_index(host).unwrap().is_none());
    // Nothing left: true at once.
    assert!(h.wait_links_gone_or(&[host], slice, || false).unwrap());
}
