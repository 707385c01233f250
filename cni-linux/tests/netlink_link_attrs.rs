//! Link attribute setters (MAC, MTU, promisc, allmulti, txqlen, name) read back from the
//! kernel, inside throw-away namespaces only.

mod common;

use common::{TestNs, require_root};

#[test]
fn each_setter_is_read_back() {
    if !require_root() {
        return;
    }
    let ns = TestNs::new("attrs");
    let mut h = ns.handle();
    // A veth pair (dummy devices may not be built into the test kernel).
    let d = h
        .add_veth(&cni_linux::netlink::VethRequest::new("dum0", "dum0peer"))
        .unwrap();
    assert!(!d.promisc && !d.allmulti, "{d:?}");
    let qlen = d.txqlen.expect("the kernel reports IFLA_TXQLEN");

    let mac = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    h.set_mac(d.index, mac).unwrap();
    h.set_mtu(d.index, 1280).unwrap();
    h.set_promisc(d.index, true).unwrap();
    h.set_allmulti(d.index, true).unwrap();
    h.set_txqlen(d.index, qlen + 7).unwrap();
    let l = h.link_by_index(d.index).unwrap().unwrap();
    assert_eq!(l.mac, Some(mac));
    assert_eq!(l.mtu, 1280);
    assert!(l.promisc && l.allmulti, "{l:?}");
    assert_eq!(l.txqlen, Some(qlen + 7));
    // `ip` agrees on the flags (a second reader, not our own parser).
    let out = ns.cmd(&["ip", "-o", "link", "show", "dum0"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("PROMISC") && text.contains("ALLMULTI"),
        "{text}"
    );
    assert!(text.contains(&format!("qlen {}", qlen + 7)), "{text}");

    h.set_promisc(d.index, false).unwrap();
    h.set_allmulti(d.index, false).unwrap();
    h.set_txqlen(d.index, 0).unwrap();
    let l = h.link_by_index(d.index).unwrap().unwrap();
    assert!(!l.promisc && !l.allmulti, "{l:?}");
    assert_eq!(l.txqlen, Some(0));

    h.set_name(d.index, "renamed0").unwrap();
    assert!(h.link_by_name("dum0").unwrap().is_none());
    assert_eq!(h.link_by_name("renamed0").unwrap().unwrap().index, d.index);
    // A multicast address is refused by the kernel, and the error says so.
    let err = h.set_mac(d.index, [0x01, 0, 0x5e, 0, 0, 1]).unwrap_err();
    assert_eq!(err.errno(), Some(nix::errno::Errno::EADDRNOTAVAIL), "{err}");
}
