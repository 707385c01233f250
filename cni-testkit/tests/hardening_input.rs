//! Hardening (issue #8): the bad-input corpus of `host-local`, `bridge` and `portmap`.
//!
//! Every case is a call a buggy or hostile runtime or conflist could make. Our binary must
//! exit non-zero with the spec's error JSON and the code of the table, and change nothing at
//! all (node and pod snapshots, IPAM store, forwarding sysctls), both in a node where nothing
//! exists yet and in one with a live attachment. The Go reference v1.1.1 runs the same case
//! and its code is compared; where we deliberately differ, the table says why. See
//! `hardening/mod.rs` for the harness.
//!
//! Codes: 1 incompatible version, 4 invalid environment, 5 I/O, 6 undecodable, 7 invalid
//! config, 8 CNI_NETNS is the plugin's own namespace, 999 other.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod hardening;

use hardening::{Ctx, Go, Side, Table, case, go_plugins_available, root, run_table};
use serde_json::{Value, json};

use cni_testkit::Attachment;
use cni_testkit::runner::Invocation;

/// Why our config errors are 7 where the reference says 999.
const CONF7: &str = "config errors are code 7 (invalid network config); the reference reports every plugin error as 999";
/// Why we refuse with the config what the reference refuses later.
const LATE7: &str =
    "we refuse the config (7); the reference accepts it and iptables refuses the rules (999)";
/// Why our decoding errors are 6.
const DECODE6: &str = "undecodable values are code 6 (decoding failure); the reference reports 999";
/// Why our CNI_ARGS errors are 4.
const ARGS4: &str =
    "CNI_ARGS errors are code 4 (invalid environment variables); the reference reports 999";

/// The bad inputs every plugin shares: the skel's validation (stdin, names, versions, verbs,
/// required variables, container IDs, interface names).
fn skel_cases() -> Vec<hardening::Case> {
    let set = |k: &'static str, v: &'static str| move |c: &Ctx<'_>| c.add().set(k, v);
    vec![
        case("empty stdin", 6, Go::Same, |c| c.add_raw(b"")),
        case("truncated JSON", 6, Go::Same, |c| {
            c.add_raw(br#"{"cniVersion":"1.0.0","name":"#)
        }),
        case("stdin is a JSON array", 6, Go::Same, |c| {
            c.add_raw(br#"["hardnet"]"#)
        }),
        case("stdin is null", 7, Go::Same, |c| c.add_raw(b"null")),
        case("stdin is not UTF-8", 6, Go::Same, |c| {
            c.add_raw(b"\xff\xfe{\"name\":\"x\"}")
        }),
        case("no network name", 7, Go::Same, |c| {
            c.add_with(|v| drop(v.as_object_mut().unwrap().remove("name")))
        }),
        case("network name escaping dataDir", 7, Go::Same, |c| {
            c.add_with(|v| v["name"] = json!("../../escape"))
        }),
        case("network name with quote and $(...)", 7, Go::Same, |c| {
            c.add_with(|v| v["name"] = json!("n\"$(touch /tmp/pwned)"))
        }),
        case("network name with newline", 7, Go::Same, |c| {
            c.add_with(|v| v["name"] = json!("net\n-A INPUT -j ACCEPT"))
        }),
        case("network name not a string", 6, Go::Same, |c| {
            c.add_with(|v| v["name"] = json!(42))
        }),
        case("unsupported cniVersion", 1, Go::Same, |c| {
            c.add_with(|v| v["cniVersion"] = json!("9.9.9"))
        }),
        case("cniVersion not a string", 6, Go::Same, |c| {
            c.add_with(|v| v["cniVersion"] = json!(1.0))
        }),
        case("CHECK without cniVersion (0.1.0)", 1, Go::Same, |c| {
            c.verb_with("CHECK", |v| {
                drop(v.as_object_mut().unwrap().remove("cniVersion"))
            })
        }),
        case("CHECK of a 0.3.1 config", 1, Go::Same, |c| {
            c.verb_with("CHECK", |v| v["cniVersion"] = json!("0.3.1"))
        }),
        case("unknown verb", 4, Go::Same, |c| {
            let mut i = c.add();
            i.command = "FROBNICATE".into();
            i
        }),
        case("lower-case verb", 4, Go::Same, |c| {
            let mut i = c.add();
            i.command = "add".into();
            i
        }),
        case("ADD without CNI_CONTAINERID", 4, Go::Same, |c| {
            c.add().unset("CNI_CONTAINERID")
        }),
        case("ADD without CNI_NETNS", 4, Go::Same, |c| {
            c.add().unset("CNI_NETNS")
        }),
        case("ADD without CNI_IFNAME", 4, Go::Same, |c| {
            c.add().unset("CNI_IFNAME")
        }),
        case("ADD without CNI_PATH", 4, Go::Same, |c| {
            c.add().unset("CNI_PATH")
        }),
        case("DEL without CNI_CONTAINERID", 4, Go::Same, |c| {
            c.call("DEL", &c.conf).unset("CNI_CONTAINERID")
        }),
        case("DEL without CNI_IFNAME", 4, Go::Same, |c| {
            c.call("DEL", &c.conf).unset("CNI_IFNAME")
        }),
        case("DEL without CNI_PATH", 4, Go::Same, |c| {
            c.call("DEL", &c.conf).unset("CNI_PATH")
        }),
        case("CHECK without CNI_NETNS", 4, Go::Same, |c| {
            c.call("CHECK", &c.conf).unset("CNI_NETNS")
        }),
        case("CHECK without CNI_CONTAINERID", 4, Go::Same, |c| {
            c.call("CHECK", &c.conf).unset("CNI_CONTAINERID")
        }),
        case(
            "GC without CNI_PATH",
            4,
            Go::Code(4, "v1.1.1 knows no GC: unknown CNI_COMMAND"),
            |c| {
                c.verb_with("GC", |v| v["cniVersion"] = json!("1.1.0"))
                    .unset("CNI_PATH")
            },
        ),
        case(
            "STATUS without CNI_PATH",
            4,
            Go::Code(4, "v1.1.1 knows no STATUS: unknown CNI_COMMAND"),
            |c| {
                c.verb_with("STATUS", |v| v["cniVersion"] = json!("1.1.0"))
                    .unset("CNI_PATH")
            },
        ),
        case(
            "container ID ../../escape",
            4,
            Go::Same,
            set("CNI_CONTAINERID", "../../escape"),
        ),
        case(
            "container ID with /",
            4,
            Go::Same,
            set("CNI_CONTAINERID", "abc/def"),
        ),
        case(
            "container ID with newline",
            4,
            Go::Same,
            set("CNI_CONTAINERID", "abc\n-A INPUT -j ACCEPT"),
        ),
        case(
            "container ID with quote and $(...)",
            4,
            Go::Same,
            set("CNI_CONTAINERID", "abc\"$(touch /tmp/pwned)"),
        ),
        case(
            "container ID starting with -",
            4,
            Go::Same,
            set("CNI_CONTAINERID", "-j"),
        ),
        case("DEL of container ID ../../escape", 4, Go::Same, |c| {
            c.call("DEL", &c.conf)
                .set("CNI_CONTAINERID", "../../escape")
        }),
        case(
            "interface name of 16 bytes",
            4,
            Go::Same,
            set("CNI_IFNAME", "eth0123456789abc"),
        ),
        case(
            "interface name with /",
            4,
            Go::Same,
            set("CNI_IFNAME", "../eth0"),
        ),
        case("interface name ..", 4, Go::Same, set("CNI_IFNAME", "..")),
        case(
            "interface name with space",
            4,
            Go::Same,
            set("CNI_IFNAME", "eth 0"),
        ),
        case(
            "CNI_NETNS is the plugin's own namespace",
            8,
            Go::Succeeds("v1.1.1 has no such check (later versions check it after ADD has run)"),
            |c| {
                c.add()
                    .set("CNI_NETNS", &c.node_path().display().to_string())
            },
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// host-local

fn hl_base(side: &Side) -> Value {
    json!({"cniVersion": "1.0.0", "name": "hardnet", "type": "bridge",
        "ipam": {"type": "host-local", "subnet": "10.77.0.0/24",
                 "dataDir": side.data.path()}})
}

fn hl_warm(side: &mut Side) {
    let pod = cni_testkit::TempNetns::new("hlive").unwrap();
    let conf = hl_base(side);
    side.runner
        .add(&conf, &Attachment::new("live", pod.path(), "eth0"))
        .expect("warm-up ADD");
    side.live.push(pod);
}

/// ADD with the `ipam` section changed by `f`.
fn ipam_with(c: &Ctx<'_>, f: impl FnOnce(&mut Value)) -> Invocation {
    c.add_with(|v| f(&mut v["ipam"]))
}

fn host_local_cases() -> Vec<hardening::Case> {
    let mut v = skel_cases();
    v.extend([
        case(
            "CNI_ARGS unknown key without IgnoreUnknown",
            4,
            Go::Code(999, ARGS4),
            |c| c.add().set("CNI_ARGS", "K8S_POD_NAME=x"),
        ),
        case("CNI_ARGS pair without =", 4, Go::Code(999, ARGS4), |c| {
            c.add().set("CNI_ARGS", "IgnoreUnknown=1;IP")
        }),
        case(
            "CNI_ARGS IgnoreUnknown=maybe",
            4,
            Go::Code(999, ARGS4),
            |c| c.add().set("CNI_ARGS", "IgnoreUnknown=maybe;X=1"),
        ),
        case("CNI_ARGS IP=not-an-ip", 4, Go::Code(999, ARGS4), |c| {
            c.add().set("CNI_ARGS", "IP=10.77.0.300")
        }),
        case("CNI_ARGS IP outside every range", 999, Go::Same, |c| {
            c.add().set("CNI_ARGS", "IP=10.99.0.5")
        }),
        case("CNI_ARGS IP is the gateway", 999, Go::Same, |c| {
            c.add().set("CNI_ARGS", "IP=10.77.0.1")
        }),
        case("no ipam key", 7, Go::Code(999, CONF7), |c| {
            c.add_with(|v| drop(v.as_object_mut().unwrap().remove("ipam")))
        }),
        case("no ranges", 7, Go::Code(999, CONF7), |c| {
            ipam_with(c, |i| drop(i.as_object_mut().unwrap().remove("subnet")))
        }),
        case("subnet /33", 6, Go::Code(999, DECODE6), |c| {
            ipam_with(c, |i| i["subnet"] = json!("10.77.0.0/33"))
        }),
        case("subnet not an address", 6, Go::Code(999, DECODE6), |c| {
            ipam_with(c, |i| i["subnet"] = json!("$(reboot)/24"))
        }),
        case("subnet with host bits", 7, Go::Code(999, CONF7), |c| {
            ipam_with(c, |i| i["subnet"] = json!("10.77.0.1/24"))
        }),
        case("subnet /32", 7, Go::Code(999, CONF7), |c| {
            ipam_with(c, |i| i["subnet"] = json!("10.77.0.7/32"))
        }),
        case("IPv6 subnet /127", 7, Go::Code(999, CONF7), |c| {
            ipam_with(c, |i| i["subnet"] = json!("fd77::/127"))
        }),
        case(
            "rangeStart outside the subnet",
            7,
            Go::Code(999, CONF7),
            |c| ipam_with(c, |i| i["rangeStart"] = json!("10.78.0.5")),
        ),
        case("rangeEnd before rangeStart", 7, Go::Code(999, CONF7), |c| {
            ipam_with(c, |i| {
                i["rangeStart"] = json!("10.77.0.50");
                i["rangeEnd"] = json!("10.77.0.40");
            })
        }),
        case("gateway not an address", 6, Go::Code(999, DECODE6), |c| {
            ipam_with(c, |i| i["gateway"] = json!("gw"))
        }),
        case("overlapping range sets", 7, Go::Code(999, CONF7), |c| {
            ipam_with(
                c,
                |i| {
                    i["ranges"] =
                        json!([[{"subnet": "10.78.0.0/16"}], [{"subnet": "10.78.1.0/24"}]])
                },
            )
        }),
        case(
            "mixed families in a range set",
            7,
            Go::Code(999, CONF7),
            |c| {
                ipam_with(c, |i| {
                    i["ranges"] = json!([[{"subnet": "10.78.0.0/24"}, {"subnet": "fd78::/64"}]])
                })
            },
        ),
        case("ranges not a list", 6, Go::Code(999, DECODE6), |c| {
            ipam_with(c, |i| i["ranges"] = json!("10.78.0.0/24"))
        }),
        case(
            "two IPv4 range sets in a 0.2.0 config",
            7,
            Go::Code(999, CONF7),
            |c| {
                c.add_with(|v| {
                    v["cniVersion"] = json!("0.2.0");
                    v["ipam"]["ranges"] =
                        json!([[{"subnet": "10.78.0.0/24"}], [{"subnet": "10.79.0.0/24"}]]);
                })
            },
        ),
        case("requested IP outside every range", 999, Go::Same, |c| {
            c.add_with(|v| v["runtimeConfig"] = json!({"ips": ["10.99.0.5/24"]}))
        }),
        case(
            "dataDir is a regular file",
            5,
            Go::Code(999, "store I/O errors are code 5"),
            |c| {
                let file = c.scratch("regular-file");
                ipam_with(c, move |i| i["dataDir"] = json!(file))
            },
        ),
        case(
            "resolvConf does not exist",
            5,
            Go::Code(999, "I/O errors are code 5"),
            |c| {
                let missing = c.scratch("no-such-resolv.conf");
                ipam_with(c, move |i| i["resolvConf"] = json!(missing))
            },
        ),
    ]);
    v
}

#[test]
fn host_local_bad_input() {
    if !root() {
        return;
    }
    let go = go_plugins_available(&["host-local"]);
    run_table(
        Table {
            plugin: "host-local",
            others: &[],
            base: hl_base,
            prepare: hardening::nothing,
            warm: hl_warm,
            cases: host_local_cases(),
        },
        go,
    );
}

// ---------------------------------------------------------------------------------------------
// bridge

fn br_base(side: &Side) -> Value {
    json!({"cniVersion": "1.0.0", "name": "hardnet", "type": "bridge", "bridge": "cni0",
        "isGateway": true, "ipMasq": true,
        "ipam": {"type": "host-local", "subnet": "10.77.0.0/24", "dataDir": side.data.path()}})
}

fn br_warm(side: &mut Side) {
    // One attachment with iptables masquerading, one with nftables and the MAC spoof check
    // (v1.1.1 ignores ipMasqBackend and uses iptables).
    let mut nft = br_base(side);
    nft["ipMasqBackend"] = json!("nftables");
    nft["macspoofchk"] = json!(true);
    for (id, conf) in [("live-ipt", br_base(side)), ("live-nft", nft)] {
        let pod = cni_testkit::TempNetns::new("hlive").unwrap();
        side.runner
            .add(&conf, &Attachment::new(id, pod.path(), "eth0"))
            .expect("warm-up ADD");
        side.live.push(pod);
    }
}

fn bridge_cases() -> Vec<hardening::Case> {
    let mut v = skel_cases();
    let netns = |p: fn(&Ctx<'_>) -> String| move |c: &Ctx<'_>| c.add().set("CNI_NETNS", &p(c));
    v.extend([
        case(
            "netns does not exist",
            999,
            Go::Same,
            netns(|c| c.scratch("no-such-netns").display().to_string()),
        ),
        case(
            "netns is a regular file",
            999,
            Go::Same,
            netns(|c| c.scratch("regular-file").display().to_string()),
        ),
        case(
            "netns is a directory",
            999,
            Go::Same,
            netns(|c| c.scratch("a-directory").display().to_string()),
        ),
        case(
            "netns is a mount namespace",
            999,
            Go::Same,
            netns(|_| "/proc/self/ns/mnt".to_string()),
        ),
        case(
            "interface name exists in the pod (lo)",
            999,
            Go::Same,
            |c| c.add().set("CNI_IFNAME", "lo"),
        )
        .kernel_refused(),
        case("bridge name of 16 bytes", 999, Go::Same, |c| {
            c.add_with(|v| v["bridge"] = json!("cni0123456789abc"))
        }),
        case("bridge name with /", 999, Go::Same, |c| {
            c.add_with(|v| v["bridge"] = json!("../cni0"))
        }),
        case(
            "bridge name of a non-bridge link (lo)",
            999,
            Go::Same,
            |c| c.add_with(|v| v["bridge"] = json!("lo")),
        ),
        case("vlan 5000", 7, Go::Code(999, CONF7), |c| {
            c.add_with(|v| v["vlan"] = json!(5000))
        }),
        case("vlan -1", 7, Go::Code(999, CONF7), |c| {
            c.add_with(|v| v["vlan"] = json!(-1))
        }),
        case("vlan not a number", 7, Go::Code(999, CONF7), |c| {
            c.add_with(|v| v["vlan"] = json!("100; reboot"))
        }),
        case(
            "vlanTrunk minID above maxID",
            7,
            Go::Succeeds("v1.1.1 has no vlanTrunk"),
            |c| c.add_with(|v| v["vlanTrunk"] = json!([{"minID": 200, "maxID": 100}])),
        ),
        case(
            "vlanTrunk id 5000",
            7,
            Go::Succeeds("v1.1.1 has no vlanTrunk"),
            |c| c.add_with(|v| v["vlanTrunk"] = json!([{"id": 5000}])),
        ),
        case(
            "hairpinMode with promiscMode",
            7,
            Go::Code(999, CONF7),
            |c| {
                c.add_with(|v| {
                    v["hairpinMode"] = json!(true);
                    v["promiscMode"] = json!(true);
                })
            },
        ),
        case(
            "mtu -1",
            7,
            Go::Succeeds("v1.1.1 does not check the MTU"),
            |c| c.add_with(|v| v["mtu"] = json!(-1)),
        ),
        case("mtu 70000 (above the maximum)", 999, Go::Same, |c| {
            c.add_with(|v| v["mtu"] = json!(70000))
        })
        .kernel_refused(),
        case("isGateway not a bool", 7, Go::Code(999, CONF7), |c| {
            c.add_with(|v| v["isGateway"] = json!("yes"))
        }),
        case(
            "ipMasqBackend unknown",
            7,
            Go::Succeeds("v1.1.1 has no ipMasqBackend"),
            |c| c.add_with(|v| v["ipMasqBackend"] = json!("pf")),
        ),
        case(
            "disableContainerInterface with IPAM",
            7,
            Go::Succeeds("v1.1.1 has no disableContainerInterface"),
            |c| c.add_with(|v| v["disableContainerInterface"] = json!(true)),
        ),
        case("IPAM plugin not in CNI_PATH", 999, Go::Same, |c| {
            c.add_with(|v| v["ipam"]["type"] = json!("no-such-ipam"))
        }),
        case("IPAM type is a path out of CNI_PATH", 999, Go::Same, |c| {
            c.add_with(|v| v["ipam"]["type"] = json!("../../../../usr/bin/true"))
        }),
        case("IPAM refuses its config", 7, Go::Code(999, CONF7), |c| {
            c.add_with(|v| v["ipam"]["subnet"] = json!("10.77.0.1/24"))
        }),
        case(
            "CNI_ARGS unknown key without IgnoreUnknown",
            4,
            Go::Code(999, ARGS4),
            |c| c.add().set("CNI_ARGS", "K8S_POD_NAME=x"),
        ),
        case("CNI_ARGS MAC not a MAC", 7, Go::Code(999, CONF7), |c| {
            c.add().set("CNI_ARGS", "MAC=zz:zz")
        }),
        case(
            "runtimeConfig.mac not a MAC",
            7,
            Go::Code(999, CONF7),
            |c| c.add_with(|v| v["runtimeConfig"] = json!({"mac": "01:02:03"})),
        ),
        case("multicast MAC", 7, Go::Code(999, CONF7), |c| {
            c.add_with(|v| v["runtimeConfig"] = json!({"mac": "01:00:5e:00:00:01"}))
        }),
        case("dns not an object", 6, Go::Code(999, DECODE6), |c| {
            c.add_with(|v| v["dns"] = json!("8.8.8.8"))
        }),
        case("DEL of interface lo", 999, Go::Same, |c| {
            c.call("DEL", &c.conf).set("CNI_IFNAME", "lo")
        }),
    ]);
    v
}

#[test]
fn bridge_bad_input() {
    if !root() {
        return;
    }
    let go = go_plugins_available(&["bridge", "host-local"]);
    run_table(
        Table {
            plugin: "bridge",
            others: &["host-local"],
            base: br_base,
            prepare: hardening::nothing,
            warm: br_warm,
            cases: bridge_cases(),
        },
        go,
    );
}

// ---------------------------------------------------------------------------------------------
// portmap

fn pm_prev(pod: &str) -> Value {
    json!({"cniVersion": "1.0.0",
        "interfaces": [{"name": "cni0"}, {"name": "eth0", "sandbox": pod}],
        "ips": [{"address": "10.77.0.50/24", "gateway": "10.77.0.1", "interface": 1}]})
}

fn pm_base(_side: &Side) -> Value {
    json!({"cniVersion": "1.0.0", "name": "hardnet", "type": "portmap",
        "runtimeConfig": {"portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]},
        "prevResult": pm_prev("/run/netns/pod")})
}

/// The node's link towards the containers: a `cni0` bridge with 10.77.0.1/24, so
/// `route_localnet` has an interface to be set on.
fn pm_prepare(side: &Side) {
    side.node
        .exec_ok("ip", &["link", "add", "cni0", "type", "bridge"])
        .unwrap();
    side.node
        .exec_ok("ip", &["addr", "add", "10.77.0.1/24", "dev", "cni0"])
        .unwrap();
    side.node
        .exec_ok("ip", &["link", "set", "cni0", "up"])
        .unwrap();
}

fn pm_warm(side: &mut Side) {
    // Live mappings in both backends (v1.1.1 ignores `backend` and uses iptables).
    for (id, port, backend) in [
        ("live-ipt", 18081, "iptables"),
        ("live-nft", 18082, "nftables"),
    ] {
        let pod = cni_testkit::TempNetns::new("hlive").unwrap();
        let mut conf = pm_base(side);
        conf["backend"] = json!(backend);
        conf["runtimeConfig"]["portMappings"][0]["hostPort"] = json!(port);
        conf["prevResult"] = pm_prev(&pod.path().display().to_string());
        if side.which == hardening::Impl::Go {
            conf.as_object_mut().unwrap().remove("backend");
        }
        side.runner
            .add(&conf, &Attachment::new(id, pod.path(), "eth0"))
            .expect("warm-up ADD");
        side.live.push(pod);
    }
}

fn mapping_with(c: &Ctx<'_>, f: impl FnOnce(&mut Value)) -> Invocation {
    c.add_with(|v| f(&mut v["runtimeConfig"]["portMappings"][0]))
}

fn portmap_cases() -> Vec<hardening::Case> {
    let mut v = skel_cases();
    v.extend([
        case("no prevResult", 7, Go::Code(999, CONF7), |c| {
            c.add_with(|v| drop(v.as_object_mut().unwrap().remove("prevResult")))
        }),
        case("CHECK without prevResult", 7, Go::Code(999, CONF7), |c| {
            c.verb_with("CHECK", |v| {
                drop(v.as_object_mut().unwrap().remove("prevResult"))
            })
        }),
        case("prevResult not a result", 6, Go::Code(999, DECODE6), |c| {
            c.add_with(|v| v["prevResult"]["ips"] = json!("10.77.0.50"))
        }),
        case("hostPort 0", 7, Go::Code(999, CONF7), |c| {
            mapping_with(c, |m| m["hostPort"] = json!(0))
        }),
        case("hostPort 70000", 7, Go::Code(999, LATE7), |c| {
            mapping_with(c, |m| m["hostPort"] = json!(70000))
        }),
        case("hostPort -1", 7, Go::Code(999, CONF7), |c| {
            mapping_with(c, |m| m["hostPort"] = json!(-1))
        }),
        case("containerPort 0", 7, Go::Code(999, CONF7), |c| {
            mapping_with(c, |m| m["containerPort"] = json!(0))
        }),
        case("containerPort 70000", 7, Go::Code(999, LATE7), |c| {
            mapping_with(c, |m| m["containerPort"] = json!(70000))
        }),
        case("hostPort not a number", 7, Go::Code(999, CONF7), |c| {
            mapping_with(c, |m| m["hostPort"] = json!("80 -j ACCEPT"))
        }),
        case("protocol icmp", 7, Go::Code(999, LATE7), |c| {
            mapping_with(c, |m| m["protocol"] = json!("icmp"))
        }),
        case(
            "protocol with iptables options",
            7,
            Go::Code(999, LATE7),
            |c| mapping_with(c, |m| m["protocol"] = json!("tcp -j ACCEPT")),
        ),
        case(
            "hostIP not an address",
            7,
            Go::Succeeds("v1.1.1 ignores a hostIP it cannot parse and maps every address"),
            |c| mapping_with(c, |m| m["hostIP"] = json!("0.0.0.0 -j ACCEPT")),
        ),
        case("portMappings not a list", 7, Go::Code(999, CONF7), |c| {
            c.add_with(|v| v["runtimeConfig"]["portMappings"] = json!({"hostPort": 1}))
        }),
        case("markMasqBit 32", 7, Go::Code(999, CONF7), |c| {
            c.add_with(|v| v["markMasqBit"] = json!(32))
        }),
        case("markMasqBit -1", 7, Go::Code(999, CONF7), |c| {
            c.add_with(|v| v["markMasqBit"] = json!(-1))
        }),
        case(
            "externalSetMarkChain with markMasqBit",
            7,
            Go::Code(999, CONF7),
            |c| {
                c.add_with(|v| {
                    v["externalSetMarkChain"] = json!("KUBE-MARK-MASQ");
                    v["markMasqBit"] = json!(14);
                })
            },
        ),
        case(
            "externalSetMarkChain with iptables options",
            7,
            Go::Code(999, LATE7),
            |c| c.add_with(|v| v["externalSetMarkChain"] = json!("X -j ACCEPT")),
        ),
        case(
            "externalSetMarkChain with a newline",
            7,
            Go::Code(999, LATE7),
            |c| c.add_with(|v| v["externalSetMarkChain"] = json!("X\n-A INPUT -j ACCEPT")),
        ),
        case(
            "backend unknown",
            7,
            Go::Succeeds("v1.1.1 has no backend key"),
            |c| c.add_with(|v| v["backend"] = json!("pf")),
        ),
        case(
            "nftables conditions with the iptables backend",
            7,
            Go::Code(999, LATE7),
            |c| {
                c.add_with(|v| {
                    v["backend"] = json!("iptables");
                    v["conditionsV4"] = json!(["ip", "saddr", "1.2.3.4"]);
                })
            },
        ),
        case(
            "iptables conditions with a newline",
            7,
            Go::Code(999, LATE7),
            |c| c.add_with(|v| v["conditionsV4"] = json!(["-s", "1.2.3.4\n-A INPUT -j ACCEPT"])),
        ),
        case(
            "nftables conditions with a statement",
            7,
            Go::Code(
                999,
                "v1.1.1 has no nftables backend: iptables refuses the tokens",
            ),
            |c| {
                c.add_with(|v| {
                    v["backend"] = json!("nftables");
                    v["conditionsV4"] = json!(["ip", "saddr", "1.2.3.4", "accept"]);
                })
            },
        ),
    ]);
    v
}

#[test]
fn portmap_bad_input() {
    if !root() {
        return;
    }
    let go = go_plugins_available(&["portmap"]);
    run_table(
        Table {
            plugin: "portmap",
            others: &[],
            base: pm_base,
            prepare: pm_prepare,
            warm: pm_warm,
            cases: portmap_cases(),
        },
        go,
    );
}
