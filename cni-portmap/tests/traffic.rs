//! Real traffic through port mappings, for both backends, in throw-away namespaces.
//!
//! Topology (cni-testkit's single-node cluster): an "outside" namespace and a node on an
//! underlay (192.168.200.0/24, plus fd00:200::/64 here); pods on the node's bridge `cni0`
//! (10.244.0.0/24, fd00:244::/64) set up by the Go reference bridge (and, once, by ours) with
//! our host-local, then our portmap, chained through cni-proto's runtime with the plugins run
//! inside the node.
//!
//! Checked per backend: TCP to a pod through the node's address from outside, from the node
//! itself, through 127.0.0.1, from another pod and from the pod itself (hairpin); IPv6 from
//! outside and hairpin; `hostIP` binding; UDP, with a fixed client source port, still working
//! after the first container is deleted and a second one takes the host port (stale
//! conntrack entries are deleted on DEL and on ADD); with nftables also that a host port
//! held by a live container is refused to a second one; CHECK; and DEL removing every rule of
//! every container.
//!
//! "From another pod" on the same bridge works with the nftables backend because the kernel
//! here has `br_netfilter` (bridge-nf-call-iptables=1, as on Kubernetes nodes): the bridged
//! reply is un-NATed. The iptables backend masquerades the container's whole subnet instead,
//! as the reference does.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] functions

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use cni_linux::conntrack;
use cni_linux::firewall::IpFamily;
use cni_linux::netlink::AddrFlags;
use cni_proto::runtime::RuntimeConf;
use cni_testkit::bins::CniPathDir;
use cni_testkit::topology::Cluster;
use cni_testkit::traffic::{self, TcpEchoServer, UdpEchoServer};
use cni_testkit::{ChainRunner, TempDir, TempNetns};
use cni_types::CniResult;
use serde_json::json;

use common::*;

const T: Duration = Duration::from_secs(5);
const NODE_V6: &str = "fd00:200::10";
const OUTSIDE_V6: &str = "fd00:200::1";
const EXTRA_V4: &str = "192.168.200.20";

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

fn add_v6(ns: &TempNetns, dev: &str, addr: &str) {
    let mut nl = ns.netlink().unwrap();
    let l = nl.require_link(dev).unwrap();
    nl.addr_add(l.index, addr.parse().unwrap(), AddrFlags::NODAD)
        .unwrap();
}

fn chain(backend: &str, node: &TempNetns, plugins: &CniPathDir, data: &TempDir) -> ChainRunner {
    chain_with(backend, node, plugins, data, json!({}))
}

/// [`chain`] with more portmap keys (`extra`, an object).
fn chain_with(
    backend: &str,
    node: &TempNetns,
    plugins: &CniPathDir,
    data: &TempDir,
    extra: serde_json::Value,
) -> ChainRunner {
    let mut list = json!({
    "cniVersion": "1.0.0", "name": "pmnet",
    "plugins": [
        {"type": "bridge", "bridge": "cni0", "isGateway": true, "isDefaultGateway": true, "hairpinMode": true,
         "ipam": {"type": "host-local",
                  "ranges": [[{"subnet": "10.244.0.0/24"}], [{"subnet": "fd00:244::/64"}]]}},
        {"type": "portmap", "backend": backend, "capabilities": {"portMappings": true}}
    ]});
    if let (Some(pm), Some(extra)) = (list["plugins"][1].as_object_mut(), extra.as_object()) {
        pm.extend(extra.clone());
    }
    cni_testkit::chain::set_ipam_data_dir(&mut list, data.path());
    ChainRunner::from_json(&list, [plugins.path()])
        .unwrap()
        .in_netns(node)
        .unwrap()
}

fn rt(id: &str, pod: &TempNetns, maps: serde_json::Value) -> RuntimeConf {
    let r = RuntimeConf::new(id, pod.path().display().to_string(), "eth0");
    if maps.as_array().is_some_and(|a| a.is_empty()) {
        r
    } else {
        r.with_capability("portMappings", maps)
    }
}

fn addr(res: &CniResult, v6: bool) -> IpAddr {
    res.ips
        .iter()
        .map(|i| i.address.addr())
        .find(|a| a.is_ipv6() == v6)
        .unwrap()
}

#[track_caller]
fn echo(from: &TempNetns, dst: SocketAddr, what: &str) {
    let msg = format!("hello {what}");
    let got = traffic::tcp_echo(from, dst, msg.as_bytes(), T).unwrap_or_else(|e| {
        panic!(
            "{what}: tcp to {dst}: {}",
            cni_types::error::chain_message(&e)
        )
    });
    assert_eq!(got, msg.as_bytes(), "{what}");
}

#[track_caller]
fn no_echo(from: &TempNetns, dst: SocketAddr, what: &str) {
    let r = traffic::tcp_echo(from, dst, b"x", Duration::from_secs(2));
    assert!(r.is_err(), "{what}: {dst} answered");
}

/// A UDP exchange from a fixed source port (so a stale conntrack entry would be reused).
fn udp_from(ns: &TempNetns, src_port: u16, dst: SocketAddr, msg: &[u8]) -> Option<Vec<u8>> {
    let sock = ns
        .run(move || UdpSocket::bind(SocketAddr::new("0.0.0.0".parse().unwrap(), src_port)))
        .unwrap()
        .unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 1500];
    while Instant::now() < deadline {
        sock.send_to(msg, dst).unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            return Some(buf[..n].to_vec());
        }
    }
    None
}

fn udp_entries(node: &TempNetns, port: u16) -> usize {
    node.run(|| conntrack::list(Some(IpFamily::V4)))
        .unwrap()
        .unwrap()
        .iter()
        .filter(|e| e.orig.protocol == conntrack::PROTO_UDP && e.orig.dst_port == Some(port))
        .count()
}

fn ruleset(node: &TempNetns, backend: &str) -> String {
    match backend {
        "iptables" => format!("{}{}", iptables_nat(node, false), iptables_nat(node, true)),
        _ => nft_ruleset(node).join("\n"),
    }
}

fn scenario(backend: &str, our_bridge: bool) {
    let cluster = Cluster::single().unwrap();
    let node = &cluster.node(0).ns;
    let node_ip = cluster.node(0).underlay_ip.addr().to_string();
    let outside = &cluster.outside.ns;
    add_v6(node, "eth0", &format!("{NODE_V6}/64"));
    add_v6(outside, "eth0", &format!("{OUTSIDE_V6}/64"));
    {
        let mut nl = node.netlink().unwrap();
        let l = nl.require_link("eth0").unwrap();
        nl.addr_add(
            l.index,
            format!("{EXTRA_V4}/24").parse().unwrap(),
            AddrFlags::NONE,
        )
        .unwrap();
    }
    let plugins = CniPathDir::new().unwrap();
    let plugins = if our_bridge {
        plugins.ours(&["bridge"]).unwrap()
    } else {
        plugins.go(&["bridge"]).unwrap()
    };
    let plugins = plugins.ours(&["host-local", "portmap"]).unwrap();
    let data = TempDir::new("pm-ipam").unwrap();
    let ch = chain(backend, node, &plugins, &data);
    let before = ruleset(node, backend);
    let before_tables = nft_tables(node);
    let before_filter = iptables_filter(node);

    // Pod A: TCP echo on 80 (both families), UDP echo on 53.
    let pod_a = TempNetns::new("pma").unwrap();
    let _tcp_a = TcpEchoServer::start(&pod_a, sa("::", 80)).unwrap();
    let _udp_a = UdpEchoServer::start(&pod_a, sa("0.0.0.0", 53)).unwrap();
    let maps_a = json!([
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 5353, "containerPort": 53, "protocol": "udp"},
        {"hostPort": 9090, "containerPort": 80, "protocol": "tcp", "hostIP": node_ip},
        {"hostPort": 9191, "containerPort": 80, "protocol": "tcp", "hostIP": NODE_V6},
    ]);
    let rt_a = rt("ctr-a", &pod_a, maps_a);
    let res_a = ch.add(&rt_a).unwrap();
    let a4 = addr(&res_a, false);
    let a6 = addr(&res_a, true);
    ch.check(&rt_a).unwrap();

    // Sanity: the pod itself answers.
    echo(node, SocketAddr::new(a4, 80), "direct to pod");

    echo(outside, sa(&node_ip, 8080), "outside -> node ip");
    echo(node, sa(&node_ip, 8080), "node -> node ip");
    echo(node, sa("127.0.0.1", 8080), "node -> 127.0.0.1");
    assert_eq!(
        node.sysctl_get("net.ipv4.conf.cni0.route_localnet")
            .unwrap(),
        "1",
        "route_localnet on the host side"
    );
    echo(&pod_a, sa(&node_ip, 8080), "hairpin");
    loopback_is_closed_to_pods(node, &pod_a, backend, &ch);
    echo(
        outside,
        sa(EXTRA_V4, 8080),
        "outside -> second node address",
    );

    // hostIP: only on that address.
    echo(outside, sa(&node_ip, 9090), "hostIP mapping on its address");
    no_echo(
        outside,
        sa(EXTRA_V4, 9090),
        "hostIP mapping on another address",
    );
    no_echo(outside, sa(&node_ip, 9191), "IPv6 hostIP mapping on IPv4");

    // IPv6.
    echo(outside, sa(NODE_V6, 8080), "outside -> node ipv6");
    echo(outside, sa(NODE_V6, 9191), "hostIP mapping on ipv6");
    echo(&pod_a, sa(NODE_V6, 8080), "hairpin ipv6");
    let _ = a6;

    // Another pod.
    let pod_b = TempNetns::new("pmb").unwrap();
    let rt_b = rt("ctr-b", &pod_b, json!([]));
    ch.add(&rt_b).unwrap();
    echo(&pod_b, sa(&node_ip, 8080), "pod b -> node ip");
    echo(&pod_b, sa(NODE_V6, 8080), "pod b -> node ipv6");

    // UDP from a fixed source port.
    let msg = b"udp to a";
    assert_eq!(
        udp_from(outside, 40000, sa(&node_ip, 5353), msg).as_deref(),
        Some(&msg[..])
    );
    assert!(udp_entries(node, 5353) > 0, "a conntrack entry exists");
    // DEL A: every entry for the port is gone (plugins #1190), not only after the next ADD.
    ch.del(&rt_a).unwrap();
    assert_eq!(
        udp_entries(node, 5353),
        0,
        "DEL deletes the UDP conntrack entries"
    );
    // C takes the port; the same client (same source port) reaches C.
    let pod_c = TempNetns::new("pmc").unwrap();
    let udp_c = UdpEchoServer::start(&pod_c, sa("0.0.0.0", 53)).unwrap();
    let rt_c = rt(
        "ctr-c",
        &pod_c,
        json!([{"hostPort": 5353, "containerPort": 53, "protocol": "udp"}]),
    );
    let res_c = ch.add(&rt_c).unwrap();
    let msg = b"udp to c";
    assert_eq!(
        udp_from(outside, 40000, sa(&node_ip, 5353), msg).as_deref(),
        Some(&msg[..])
    );
    assert!(!udp_c.peers().is_empty(), "C got the datagram");
    let _ = res_c;

    if backend == "nftables" {
        // A host port held by a live container is never taken over (issue 12 item 4): D's
        // ADD of E's port fails, E keeps serving it, and D's DEL leaves E alone.
        let pod_e = TempNetns::new("pme").unwrap();
        let tcp_e = TcpEchoServer::start(&pod_e, sa("::", 80)).unwrap();
        let rt_e = rt(
            "ctr-e",
            &pod_e,
            json!([{"hostPort": 7070, "containerPort": 80, "protocol": "tcp"}]),
        );
        ch.add(&rt_e).unwrap();
        echo(outside, sa(&node_ip, 7070), "e on 7070");
        let pod_d = TempNetns::new("pmd").unwrap();
        let tcp_d = TcpEchoServer::start(&pod_d, sa("::", 80)).unwrap();
        let rt_d = rt(
            "ctr-d",
            &pod_d,
            json!([{"hostPort": 7070, "containerPort": 80, "protocol": "tcp"}]),
        );
        let e = ch.add(&rt_d).unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(text.contains("refusing to take it over"), "{text}");
        ch.del(&rt_d).unwrap();
        let served_e = tcp_e.peers().len();
        echo(outside, sa(&node_ip, 7070), "e keeps 7070");
        assert!(tcp_e.peers().len() > served_e, "the connection went to E");
        assert!(tcp_d.peers().is_empty(), "D never got a connection");
        ch.check(&rt_e).unwrap();
        ch.del(&rt_e).unwrap();
        no_echo(outside, sa(&node_ip, 7070), "7070 after E's DEL");
    }

    // DEL everything: no trace of any container is left, twice (idempotent).
    for _ in 0..2 {
        ch.del(&rt_b).unwrap();
        ch.del(&rt_c).unwrap();
        ch.del(&rt_a).unwrap();
    }
    no_echo(outside, sa(&node_ip, 8080), "8080 after DEL");
    let after = ruleset(node, backend);
    for needle in [
        "CNI-DN-",
        "-j DNAT",
        "10.244.",
        "fd00:244",
        "comment \"pmnet ",
    ] {
        assert!(
            !after.contains(needle),
            "{needle:?} left after DEL:\n{after}"
        );
    }
    // Only the shared skeleton was added.
    match backend {
        "iptables" => {
            let added: Vec<&str> = after
                .lines()
                .filter(|l| !before.lines().any(|b| b == *l))
                .filter(|l| !l.starts_with('#'))
                .collect();
            for l in &added {
                let shared = l.contains("CNI-HOSTPORT-")
                    || l.starts_with(':')
                    || *l == "*nat"
                    || *l == "COMMIT";
                assert!(shared, "unexpected line after DEL: {l}\n{after}");
            }
        }
        _ => assert_only_skeleton_added(node, &before_tables),
    }

    // The route_localnet guard: exactly one drop rule and one jump however many ADDs ran
    // (iptables), and it goes with the first DEL after route_localnet is off everywhere.
    if backend == "iptables" {
        let filter = iptables_filter(node);
        let count = |needle: &str| filter.lines().filter(|l| l.contains(needle)).count();
        assert_eq!(count("-A CNI-PORTMAP-LOCALNET "), 1, "{filter}");
        assert_eq!(
            count("-A INPUT ") - count_before_input(&before_filter),
            1,
            "{filter}"
        );
        assert!(
            filter.contains(
                "-A CNI-PORTMAP-LOCALNET ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment"
            ) && filter.contains("-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"),
            "{filter}"
        );
    }
    node.sysctl_set("net.ipv4.conf.cni0.route_localnet", "0")
        .unwrap();
    ch.del(&rt_a).unwrap();
    assert!(
        !iptables_filter(node).contains("CNI-PORTMAP-LOCALNET"),
        "iptables guard removed"
    );
    assert!(
        !nft_ruleset(node)
            .iter()
            .any(|l| l.contains("cni_portmap_localnet")),
        "nftables guard removed"
    );
}

fn count_before_input(filter: &str) -> usize {
    filter
        .lines()
        .filter(|l| l.starts_with("-A INPUT "))
        .count()
}

/// Issue 12 item 3 (CVE-2020-8558 class): with route_localnet on the bridge, a pod that
/// routes 127.0.0.0/8 to its gateway must not reach TCP or UDP services bound to 127.0.0.1
/// on the node, while 127.0.0.1:hostPort on the node still reaches the pod (checked by the
/// caller). First shows that the probe does reach them without the guard, so the check can
/// fail.
fn loopback_is_closed_to_pods(node: &TempNetns, pod: &TempNetns, backend: &str, ch: &ChainRunner) {
    let tcp = TcpEchoServer::start(node, sa("127.0.0.1", 7777)).unwrap();
    let udp = UdpEchoServer::start(node, sa("127.0.0.1", 7778)).unwrap();
    // The pod (with NET_ADMIN in its own namespace) sends 127.0.0.0/8 to its gateway.
    pod.exec_ok("ip", &["addr", "flush", "dev", "lo"]).unwrap();
    pod.exec_ok(
        "ip",
        &[
            "route",
            "add",
            "127.0.0.0/8",
            "via",
            "10.244.0.1",
            "dev",
            "eth0",
        ],
    )
    .unwrap();
    pod.sysctl_set("net.ipv4.conf.eth0.route_localnet", "1")
        .unwrap();
    let reach_tcp = |timeout| traffic::tcp_echo(pod, sa("127.0.0.1", 7777), b"x", timeout);
    let reach_udp = || traffic::udp_echo(pod, sa("127.0.0.1", 7778), b"x", Duration::from_secs(1));
    let guard_present = || match backend {
        "iptables" => iptables_filter(node).contains(":CNI-PORTMAP-LOCALNET"),
        _ => nft_ruleset(node)
            .iter()
            .any(|l| l == "table ip cni_portmap_localnet {"),
    };
    assert!(guard_present(), "ADD installed the route_localnet guard");
    // Without the guard the hole is real (this probe works).
    let remove = |on: bool| match (backend, on) {
        ("iptables", false) => {
            node.exec_ok(
                "iptables",
                &[
                    "-D",
                    "INPUT",
                    "-m",
                    "comment",
                    "--comment",
                    cni_portmap::localnet::COMMENT,
                    "-j",
                    "CNI-PORTMAP-LOCALNET",
                ],
            )
            .unwrap();
        }
        (_, false) => {
            node.exec_ok("nft", &["delete", "table", "ip", "cni_portmap_localnet"])
                .unwrap();
        }
        _ => {}
    };
    remove(false);
    assert!(
        reach_tcp(T).is_ok(),
        "probe: tcp to the node's 127.0.0.1 without the guard"
    );
    assert!(
        reach_udp().is_ok(),
        "probe: udp to the node's 127.0.0.1 without the guard"
    );
    // The next ADD with a mapping puts it back (nftables: the fast transaction asserts the
    // guard's stamp; iptables: the restore ensures the jump).
    let pod_g = TempNetns::new("pmguard").unwrap();
    let rt_g = rt(
        "ctr-guard",
        &pod_g,
        json!([{"hostPort": 6060, "containerPort": 80, "protocol": "tcp"}]),
    );
    ch.add(&rt_g).unwrap();
    ch.del(&rt_g).unwrap();
    assert!(
        guard_present(),
        "ADD restored the guard, DEL kept it (route_localnet is on)"
    );
    let (tcp_seen, udp_seen) = (tcp.peers().len(), udp.peers().len());
    assert!(
        reach_tcp(Duration::from_secs(2)).is_err(),
        "tcp from a pod to the node's 127.0.0.1"
    );
    assert!(
        reach_udp().is_err(),
        "udp from a pod to the node's 127.0.0.1"
    );
    assert_eq!(
        tcp.peers().len(),
        tcp_seen,
        "no tcp connection reached the node"
    );
    assert_eq!(udp.peers().len(), udp_seen, "no datagram reached the node");
    // The node itself still talks to its loopback services, and 127.0.0.1:hostPort on the
    // node still reaches the pod (the localhost DNAT path the guard lets through), also
    // from the pod itself through its gateway (DNATed, so not dropped).
    assert!(traffic::tcp_echo(node, sa("127.0.0.1", 7777), b"x", T).is_ok());
    echo(
        node,
        sa("127.0.0.1", 8080),
        "node -> 127.0.0.1:hostPort with the guard",
    );
    echo(
        pod,
        sa("127.0.0.1", 8080),
        "pod -> 127.0.0.1:hostPort via its gateway",
    );
    pod.exec_ok("ip", &["route", "del", "127.0.0.0/8"]).unwrap();
}

/// `iptables-save -t filter` in `ns`.
fn iptables_filter(ns: &TempNetns) -> String {
    ns.exec_ok("iptables-save", &["-t", "filter"])
        .unwrap()
        .stdout_text()
}

/// `nft list ruleset` split into its tables: header line -> whole block.
fn nft_tables(ns: &TempNetns) -> std::collections::BTreeMap<String, String> {
    let text = ns
        .exec_ok("nft", &["list", "ruleset"])
        .unwrap()
        .stdout_text();
    let mut out = std::collections::BTreeMap::new();
    let mut cur: Option<(String, String)> = None;
    for l in text.lines() {
        if l.starts_with("table ") {
            cur = Some((l.to_owned(), String::new()));
        }
        if let Some((_, body)) = cur.as_mut() {
            body.push_str(l);
            body.push('\n');
        }
        if l == "}"
            && let Some((h, b)) = cur.take()
        {
            out.insert(h, b);
        }
    }
    out
}

/// After every DEL, the node's nftables state is exactly the state before plus the skeleton
/// of both families and the route_localnet guard (as written into an empty namespace),
/// nothing else (issue 19 item 4:
/// this used to accept any line).
fn assert_only_skeleton_added(
    node: &TempNetns,
    before: &std::collections::BTreeMap<String, String>,
) {
    use cni_linux::firewall::nftables::{self as nft, NftPlan};
    let reference = TempNetns::new("pmskel").unwrap();
    let mut plan = NftPlan::new();
    for f in [IpFamily::V4, IpFamily::V6] {
        cni_portmap::nftables::skeleton(&mut plan, f, &[], 1 << 13);
    }
    // And the route_localnet guard, which stays while route_localnet is on (cni0).
    cni_portmap::localnet::nft_write(&mut plan);
    reference.run(|| nft::apply(&plan)).unwrap().unwrap();
    let want = nft_tables(&reference);
    assert_eq!(want.len(), 3, "{want:?}");
    let have = nft_tables(node);
    for (header, block) in &want {
        assert_eq!(
            have.get(header),
            Some(block),
            "{header}: only the skeleton may be left"
        );
    }
    let others: std::collections::BTreeMap<_, _> = have
        .into_iter()
        .filter(|(h, _)| !want.contains_key(h))
        .collect();
    assert_eq!(&others, before, "the other tables are as before");
}

/// Issue 19 item 5: the keys' effect on real traffic. With `masqAll` every connection to a
/// mapped port is masqueraded (the pod sees the bridge address, also for another pod and
/// for hairpin), with the mark bit `markMasqBit` chosen; with `snat: false` nothing is
/// (another pod is seen with its own address, and 127.0.0.1 is not mapped).
fn keys_scenario(backend: &str) {
    let cluster = Cluster::single().unwrap();
    let node = &cluster.node(0).ns;
    let node_ip = cluster.node(0).underlay_ip.addr().to_string();
    let plugins = CniPathDir::new()
        .unwrap()
        .ours(&["bridge", "host-local", "portmap"])
        .unwrap();
    let data = TempDir::new("pm-ipam").unwrap();
    let gw: IpAddr = "10.244.0.1".parse().unwrap();
    let maps = json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]);

    let masq_all = chain_with(
        backend,
        node,
        &plugins,
        &data,
        json!({"masqAll": true, "markMasqBit": 20}),
    );
    let pod_a = TempNetns::new("pmka").unwrap();
    let tcp_a = TcpEchoServer::start(&pod_a, sa("::", 80)).unwrap();
    let rt_a = rt("ctr-ka", &pod_a, maps.clone());
    masq_all.add(&rt_a).unwrap();
    let pod_b = TempNetns::new("pmkb").unwrap();
    let rt_b = rt("ctr-kb", &pod_b, json!([]));
    masq_all.add(&rt_b).unwrap();
    assert!(
        ["0x100000/0x100000", "0x00100000"]
            .iter()
            .any(|m| ruleset(node, backend).contains(m)),
        "markMasqBit 20 is the mark:\n{}",
        ruleset(node, backend)
    );
    let last_peer = |srv: &TcpEchoServer| srv.peers().last().map(|p| p.ip().to_canonical());
    echo(&pod_a, sa(&node_ip, 8080), "hairpin with masqAll");
    assert_eq!(last_peer(&tcp_a), Some(gw), "hairpin is masqueraded");
    echo(&pod_b, sa(&node_ip, 8080), "pod b with masqAll");
    assert_eq!(
        last_peer(&tcp_a),
        Some(gw),
        "another pod is masqueraded with masqAll"
    );
    masq_all.del(&rt_b).unwrap();
    masq_all.del(&rt_a).unwrap();

    // snat: false: nothing is masqueraded.
    let plain = chain_with(backend, node, &plugins, &data, json!({"snat": false}));
    let a4 = addr(&plain.add(&rt_a).unwrap(), false);
    let b4 = addr(&plain.add(&rt_b).unwrap(), false);
    echo(&pod_b, sa(&node_ip, 8080), "pod b without snat");
    assert_eq!(last_peer(&tcp_a), Some(b4), "not masqueraded without snat");
    no_echo(
        node,
        sa("127.0.0.1", 8080),
        "127.0.0.1 is not mapped without snat",
    );
    assert_ne!(a4, b4);
    plain.del(&rt_b).unwrap();
    plain.del(&rt_a).unwrap();
}

#[test]
fn keys_traffic_iptables() {
    if !root() {
        return;
    }
    keys_scenario("iptables");
}

#[test]
fn keys_traffic_nftables() {
    if !root() {
        return;
    }
    keys_scenario("nftables");
}

#[test]
fn traffic_iptables() {
    if !root() {
        return;
    }
    scenario("iptables", false);
}

#[test]
fn traffic_nftables() {
    if !root() {
        return;
    }
    scenario("nftables", false);
}

/// The same through the whole cni-rs chain (our bridge, host-local and portmap).
#[test]
fn traffic_nftables_our_bridge() {
    if !root() {
        return;
    }
    scenario("nftables", true);
}
