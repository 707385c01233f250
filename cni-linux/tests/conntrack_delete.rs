//! Conntrack deletion against the real kernel, inside a throw-away namespace (conntrack
//! tables are per namespace, so the machine's own entries are never seen or touched).

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::UdpSocket;

use cni_linux::conntrack::{self, Filter, PROTO_UDP};
use cni_linux::firewall::IpFamily;
use cni_linux::firewall::nftables::{
    self, ChainSpec, ChainType, CtState, Family, Hook, NftPlan, RuleSpec, Stmt, priority,
};
use common::TestNs;

/// Brings `lo` up and loads a `ct state` rule so the namespace tracks connections (conntrack
/// hooks are only registered in a namespace once a ruleset needs them).
fn tracking_ns(tag: &str) -> TestNs {
    let ns = TestNs::new(tag);
    ns.ok(&["ip", "link", "set", "lo", "up"]);
    let mut p = NftPlan::new();
    p.add_table(Family::Inet, "track", None)
        .add_chain(
            Family::Inet,
            "track",
            ChainSpec::base("out", ChainType::Filter, Hook::Output, priority::FILTER),
        )
        .add_rule(
            Family::Inet,
            "track",
            RuleSpec::new(
                "out",
                vec![Stmt::CtState(vec![CtState::New]), Stmt::Counter],
            ),
        );
    ns.run(|| nftables::apply(&p)).unwrap();
    ns
}

fn send_udp(ns: &TestNs, from: &str, to: &[&str]) {
    ns.run(|| {
        let s = UdpSocket::bind(from).unwrap();
        for t in to {
            s.send_to(b"ping", t).unwrap();
        }
    });
}

fn cli_udp_dports(ns: &TestNs) -> Vec<u16> {
    let out = ns.cmd(&["conntrack", "-L", "-p", "udp"]);
    let mut ports: Vec<u16> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("dport="))
                .and_then(|p| p.parse().ok())
        })
        .collect();
    ports.sort_unstable();
    ports
}

#[test]
fn deletes_udp_entries_by_destination_port_only() {
    if !common::require_tool("conntrack") {
        return;
    }
    let ns = tracking_ns("ct4");
    send_udp(&ns, "127.0.0.1:0", &["127.0.0.1:5353", "127.0.0.1:5354"]);
    assert_eq!(cli_udp_dports(&ns), [5353, 5354], "entries created");

    let listed = ns.run(|| conntrack::list(Some(IpFamily::V4))).unwrap();
    let mut ports: Vec<u16> = listed
        .iter()
        .filter(|e| e.orig.protocol == PROTO_UDP)
        .filter_map(|e| e.orig.dst_port)
        .collect();
    ports.sort_unstable();
    assert_eq!(ports, [5353, 5354]);
    let e = listed
        .iter()
        .find(|e| e.orig.dst_port == Some(5353))
        .unwrap();
    assert_eq!(e.orig.dst, "127.0.0.1".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(e.reply.as_ref().unwrap().src_port, Some(5353));

    let n = ns
        .run(|| conntrack::delete_udp_by_dport(IpFamily::V4, 5353))
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        cli_udp_dports(&ns),
        [5354],
        "only the matching entry is gone"
    );
    // Already gone: nothing to do, no error. Wrong family: untouched.
    assert_eq!(
        ns.run(|| conntrack::delete_udp_by_dport(IpFamily::V4, 5353))
            .unwrap(),
        0
    );
    assert_eq!(
        ns.run(|| conntrack::delete_udp_by_dport(IpFamily::V6, 5354))
            .unwrap(),
        0
    );
    assert_eq!(cli_udp_dports(&ns), [5354]);
}

#[test]
fn deletes_ipv6_entries_by_destination_address() {
    if !common::require_tool("conntrack") {
        return;
    }
    let ns = tracking_ns("ct6");
    send_udp(&ns, "[::1]:0", &["[::1]:6000", "[::1]:6001"]);
    send_udp(&ns, "127.0.0.1:0", &["127.0.0.1:6000"]);
    assert_eq!(
        cli_udp_dports(&ns),
        [6000, 6000, 6001],
        "entries created (both families)"
    );
    let v6 = ns.run(|| conntrack::list(Some(IpFamily::V6))).unwrap();
    assert_eq!(
        v6.iter().filter(|e| e.orig.protocol == PROTO_UDP).count(),
        2
    );

    let n = ns
        .run(|| conntrack::delete_by_dst_addr("::1".parse().unwrap(), PROTO_UDP))
        .unwrap();
    assert_eq!(n, 2);
    let all = ns.run(|| conntrack::list(None)).unwrap();
    let udp: Vec<_> = all
        .iter()
        .filter(|e| e.orig.protocol == PROTO_UDP)
        .collect();
    assert_eq!(udp.len(), 1, "{udp:?}");
    assert_eq!(udp[0].family, IpFamily::V4);
    assert_eq!(cli_udp_dports(&ns), [6000]);

    // The general filter: both families, port only.
    let n = ns
        .run(|| {
            conntrack::delete(&Filter {
                family: None,
                protocol: PROTO_UDP,
                dst_port: Some(6000),
                dst_addr: None,
            })
        })
        .unwrap();
    assert_eq!(n, 1);
    assert!(cli_udp_dports(&ns).is_empty());
}

/// Counts the passes a deletion makes over the kernel's table.
struct Counting {
    inner: conntrack::Netlink,
    sweeps: u32,
    seen: usize,
}

impl conntrack::Conntrack for Counting {
    fn sweep(
        &mut self,
        family: Option<IpFamily>,
        doomed: &mut dyn FnMut(&conntrack::Entry) -> bool,
    ) -> Result<conntrack::Sweep, conntrack::ConntrackError> {
        self.sweeps += 1;
        let seen = &mut self.seen;
        self.inner.sweep(family, &mut |e| {
            *seen += 1;
            doomed(e)
        })
    }
}

/// Issue 12 item 5: many ports, many entries, one dump; only the matching entries go.
#[test]
fn deletes_many_ports_in_one_dump() {
    if !common::require_tool("conntrack") {
        return;
    }
    let ns = tracking_ns("ctmany");
    let targets: Vec<String> = (7000..7040).map(|p| format!("127.0.0.1:{p}")).collect();
    let refs: Vec<&str> = targets.iter().map(String::as_str).collect();
    send_udp(&ns, "127.0.0.1:0", &refs);
    send_udp(&ns, "[::1]:0", &["[::1]:7000"]);
    assert_eq!(cli_udp_dports(&ns).len(), 41, "entries created");
    let ports: Vec<u16> = (7000..7040).step_by(2).collect();
    let (n, sweeps, seen) = ns.run(|| {
        let mut ct = Counting {
            inner: conntrack::Netlink::open().unwrap(),
            sweeps: 0,
            seen: 0,
        };
        let n = conntrack::delete_udp_by_dports_with(&mut ct, IpFamily::V4, &ports).unwrap();
        (n, ct.sweeps, ct.seen)
    });
    assert_eq!(n, 20);
    assert_eq!(sweeps, 1, "one dump for 20 ports");
    assert!(seen >= 40, "the dump streamed every IPv4 entry ({seen})");
    let mut left = cli_udp_dports(&ns);
    left.dedup();
    let want: Vec<u16> = (7001..7040).step_by(2).chain([7000]).collect::<Vec<_>>();
    let mut want = want;
    want.sort_unstable();
    assert_eq!(left, want, "odd ports and the IPv6 entry stay");
}
