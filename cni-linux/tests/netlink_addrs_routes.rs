//! Addresses and routes against the real kernel, inside throw-away namespaces only.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::net::IpAddr;

use cni_linux::netlink::{AddrFlags, Handle, IpFamily, Link, Route, Scope, VethRequest};
use common::{TestNs, require_root};
use ipnet::IpNet;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A veth pair `a` ↔ `b`, both up, in the handle's namespace.
fn up_pair(h: &mut Handle) -> (Link, Link) {
    let mut req = VethRequest::new("a", "b");
    req.up = true;
    let a = h.add_veth(&req).unwrap();
    let b = h.link_by_name("b").unwrap().unwrap();
    h.set_up(b.index).unwrap();
    (a, b)
}

#[test]
fn addresses_add_list_delete() {
    if !require_root() {
        return;
    }
    let t = TestNs::new("addr");
    let mut h = t.handle();
    let (a, b) = up_pair(&mut h);

    h.addr_add(a.index, net("10.1.2.3/24"), AddrFlags::NONE)
        .unwrap();
    h.addr_add(a.index, net("fd00:1::2/64"), AddrFlags::NODAD)
        .unwrap();
    h.addr_add(b.index, net("10.1.2.4/24"), AddrFlags::NONE)
        .unwrap();

    let v4 = h.addrs(Some(a.index), Some(IpFamily::V4)).unwrap();
    assert_eq!(v4.len(), 1);
    assert_eq!(v4[0].addr, net("10.1.2.3/24"), "host bits kept");
    assert_eq!(v4[0].index, a.index);
    assert_eq!(v4[0].label.as_deref(), Some("a"));
    assert!(v4[0].flags.contains(AddrFlags::PERMANENT));

    let v6 = h.addrs(Some(a.index), Some(IpFamily::V6)).unwrap();
    let ours = v6
        .iter()
        .find(|x| x.addr == net("fd00:1::2/64"))
        .expect("v6 listed");
    assert!(ours.flags.contains(AddrFlags::NODAD));
    assert!(!ours.is_tentative(), "nodad: never tentative");

    let all = h.addrs(None, None).unwrap();
    assert!(
        all.iter()
            .any(|x| x.index == b.index && x.addr == net("10.1.2.4/24"))
    );

    let dup = h
        .addr_add(a.index, net("10.1.2.3/24"), AddrFlags::NONE)
        .unwrap_err();
    assert!(dup.is_exists(), "{dup}");
    h.addr_replace(a.index, net("10.1.2.3/24"), AddrFlags::NONE)
        .unwrap();

    h.addr_del(a.index, net("10.1.2.3/24")).unwrap();
    h.addr_del(a.index, net("fd00:1::2/64")).unwrap();
    let left = h.addrs(Some(a.index), None).unwrap();
    assert!(
        !left
            .iter()
            .any(|x| x.addr == net("10.1.2.3/24") || x.addr == net("fd00:1::2/64"))
    );
    let gone = h.addr_del(a.index, net("10.1.2.3/24")).unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
}

#[test]
fn routes_add_list_get_delete() {
    if !require_root() {
        return;
    }
    let t = TestNs::new("route");
    let mut h = t.handle();
    let (a, _b) = up_pair(&mut h);
    h.addr_add(a.index, net("10.1.2.3/24"), AddrFlags::NONE)
        .unwrap();
    h.addr_add(a.index, net("fd00:1::2/64"), AddrFlags::NODAD)
        .unwrap();

    // The kernel's own prefix route, link scope.
    let main = h.routes(Some(IpFamily::V4), Some(254)).unwrap();
    let prefix = main
        .iter()
        .find(|r| r.dst == net("10.1.2.0/24"))
        .expect("prefix route");
    assert_eq!(prefix.oif, Some(a.index));
    assert_eq!(prefix.scope, Some(Scope::Link));

    let default = Route::default_via(ip("10.1.2.1"));
    h.route_add(&default).unwrap();
    let mut special = Route::new(net("10.9.0.0/16"))
        .via(ip("10.1.2.1"))
        .metric(50);
    special.mtu = Some(1400);
    special.advmss = Some(1360);
    h.route_add(&special).unwrap();
    let other_table = Route::new(net("10.20.0.0/16"))
        .via(ip("10.1.2.254"))
        .table(1000);
    h.route_add(&other_table).unwrap();
    let direct = Route::new(net("192.168.7.0/24")).dev(a.index);
    h.route_add(&direct).unwrap();

    let main = h.routes(Some(IpFamily::V4), Some(254)).unwrap();
    let d = main
        .iter()
        .find(|r| r.is_default())
        .expect("default route listed");
    assert_eq!(d.gw, Some(ip("10.1.2.1")));
    assert_eq!(d.oif, Some(a.index), "kernel resolved the interface");
    let s = main
        .iter()
        .find(|r| r.dst == net("10.9.0.0/16"))
        .expect("metric route");
    assert_eq!(s.priority, Some(50));
    assert_eq!(s.mtu, Some(1400));
    assert_eq!(s.advmss, Some(1360));
    let dr = main
        .iter()
        .find(|r| r.dst == net("192.168.7.0/24"))
        .expect("direct route");
    assert_eq!(dr.scope, Some(Scope::Link));
    assert_eq!(dr.gw, None);
    assert!(
        !main.iter().any(|r| r.dst == net("10.20.0.0/16")),
        "other table filtered"
    );

    let t1000 = h.routes(Some(IpFamily::V4), Some(1000)).unwrap();
    assert_eq!(t1000.len(), 1);
    assert_eq!(t1000[0].dst, net("10.20.0.0/16"));
    assert_eq!(t1000[0].table, Some(1000));

    let all = h.routes(None, None).unwrap();
    assert!(
        all.iter().any(|r| r.table == Some(255)),
        "local table included"
    );

    // route_get resolves through the metric route.
    let got = h.route_get(ip("10.9.1.1")).unwrap();
    assert_eq!(got.oif, Some(a.index));
    assert_eq!(got.gw, Some(ip("10.1.2.1")));
    assert_eq!(got.dst, net("10.9.1.1/32"));
    assert_eq!(got.src, Some(ip("10.1.2.3")));
    let on_link = h.route_get(ip("10.1.2.200")).unwrap();
    assert_eq!(on_link.oif, Some(a.index));
    assert_eq!(on_link.gw, None);

    // IPv6 default route.
    let d6 = Route::default_via(ip("fd00:1::1")).dev(a.index);
    h.route_add(&d6).unwrap();
    let v6 = h.routes(Some(IpFamily::V6), Some(254)).unwrap();
    assert!(
        v6.iter()
            .any(|r| r.is_default() && r.gw == Some(ip("fd00:1::1")))
    );
    assert_eq!(
        h.route_get(ip("2001:db8::1")).unwrap().gw,
        Some(ip("fd00:1::1"))
    );

    let dup = h.route_add(&default).unwrap_err();
    assert!(dup.is_exists(), "{dup}");
    h.route_replace(&Route::default_via(ip("10.1.2.2")))
        .unwrap();
    let d = h
        .routes(Some(IpFamily::V4), Some(254))
        .unwrap()
        .into_iter()
        .find(|r| r.is_default())
        .unwrap();
    assert_eq!(d.gw, Some(ip("10.1.2.2")), "replaced");

    for r in [
        &Route::default_via(ip("10.1.2.2")),
        &special,
        &other_table,
        &direct,
        &d6,
    ] {
        h.route_del(r).unwrap();
    }
    let left = h.routes(None, None).unwrap();
    assert!(!left.iter().any(|r| r.is_default()));
    assert!(
        !left
            .iter()
            .any(|r| r.dst == net("10.9.0.0/16") || r.dst == net("10.20.0.0/16"))
    );
    let gone = h.route_del(&special).unwrap_err();
    assert!(gone.is_not_found(), "{gone}");

    let unreachable = h.route_get(ip("203.0.113.9")).unwrap_err();
    assert!(unreachable.errno().is_some(), "{unreachable}");
}
