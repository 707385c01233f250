//! The reference plugin's host-local scenarios (`host_local_test.go`), run against our binary
//! exactly as a runtime runs it, for every spec version where they apply.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;

use cni_types::{ErrorCode, Version};
use common::{Call, TempDir, conf, ours, read, reservations};

const CR_LF: &str = "\r\n";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn allocates_and_releases_addresses_with_add_del() {
    let bin = ours();
    for ver in Version::ALL {
        let t = TempDir::new("adddel");
        std::fs::write(t.path().join("resolv.conf"), "nameserver 192.0.2.3").unwrap();
        let c = conf(
            ver,
            "mynet",
            &t.s(),
            &format!(
                r#""resolvConf":"{}/resolv.conf",
                "ranges":[[{{"subnet":"10.1.2.0/24"}},{{"subnet":"10.2.2.0/24"}}],
                          [{{"subnet":"2001:db8:1::0/64"}}]],
                "routes":[{{"dst":"0.0.0.0/0"}},{{"dst":"::/0"}},
                          {{"dst":"192.168.0.0/16","gw":"1.1.1.1"}},
                          {{"dst":"2001:db8:2::0/64","gw":"2001:db8:3::1"}}]"#,
                t.s()
            ),
        );
        let out = Call::new(&bin, "ADD", "dummy").run(&c);
        let res = out.result();
        assert_eq!(
            res.cni_version, ver,
            "{ver}: printed for the config's version"
        );
        assert_eq!(
            out.stdout.contains("\"version\":"),
            ver.has_ip_version(),
            "{ver}: ips[].version"
        );
        assert_eq!(res.ips.len(), 2, "{ver}");
        assert_eq!(res.ips[0].address.to_string(), "10.1.2.2/24", "{ver}");
        assert_eq!(res.ips[0].gateway, Some(ip("10.1.2.1")), "{ver}");
        assert_eq!(res.ips[1].address.to_string(), "2001:db8:1::2/64", "{ver}");
        assert_eq!(res.ips[1].gateway, Some(ip("2001:db8:1::1")), "{ver}");
        let routes: Vec<String> = res
            .routes
            .iter()
            .map(|r| format!("{}|{:?}", r.dst, r.gw))
            .collect();
        for want in [
            "0.0.0.0/0|None",
            "::/0|None",
            "192.168.0.0/16|Some(1.1.1.1)",
            "2001:db8:2::/64|Some(2001:db8:3::1)",
        ] {
            assert!(
                routes.iter().any(|r| r == want),
                "{ver}: {want} in {routes:?}"
            );
        }
        assert_eq!(res.dns.nameservers, ["192.0.2.3"], "{ver}");

        let dir = t.path().join("mynet");
        assert_eq!(
            read(dir.join("10.1.2.2")),
            format!("dummy{CR_LF}eth0"),
            "{ver}"
        );
        assert_eq!(
            read(dir.join("2001:db8:1::2")),
            format!("dummy{CR_LF}eth0"),
            "{ver}"
        );
        assert_eq!(read(dir.join("last_reserved_ip.0")), "10.1.2.2", "{ver}");
        assert_eq!(
            read(dir.join("last_reserved_ip.1")),
            "2001:db8:1::2",
            "{ver}"
        );

        let out = Call::new(&bin, "DEL", "dummy").run(&c);
        out.ok();
        assert!(out.stdout.is_empty(), "{ver}: DEL prints nothing");
        assert!(!dir.join("10.1.2.2").exists(), "{ver}");
        assert!(!dir.join("2001:db8:1::2").exists(), "{ver}");
    }
}

#[test]
fn allocates_and_releases_addresses_on_specific_interface() {
    let bin = ours();
    for ver in Version::ALL {
        let t = TempDir::new("ifname");
        let c0 = conf(
            ver,
            "mynet0",
            &t.s(),
            r#""ranges":[[{"subnet":"10.1.2.0/24"}]]"#,
        );
        let c1 = conf(
            ver,
            "mynet1",
            &t.s(),
            r#""ranges":[[{"subnet":"10.2.2.0/24"}]]"#,
        );
        Call::new(&bin, "ADD", "dummy").run(&c0).result();
        Call::new(&bin, "ADD", "dummy")
            .ifname("eth1")
            .run(&c1)
            .result();
        let f0 = t.path().join("mynet0/10.1.2.2");
        let f1 = t.path().join("mynet1/10.2.2.2");
        assert_eq!(read(&f0), format!("dummy{CR_LF}eth0"), "{ver}");
        assert_eq!(read(&f1), format!("dummy{CR_LF}eth1"), "{ver}");
        Call::new(&bin, "DEL", "dummy").run(&c0).ok();
        assert!(!f0.exists(), "{ver}");
        assert_eq!(read(&f1), format!("dummy{CR_LF}eth1"), "{ver}: eth1 kept");
        Call::new(&bin, "DEL", "dummy").ifname("eth1").run(&c1).ok();
        assert!(!f1.exists(), "{ver}");
    }
}

#[test]
fn repeat_allocation_for_same_container_and_interface_is_an_error() {
    let bin = ours();
    for ver in Version::ALL {
        let t = TempDir::new("repeat");
        let c = conf(
            ver,
            "mynet0",
            &t.s(),
            r#""ranges":[[{"subnet":"10.1.2.0/24"}]]"#,
        );
        let r0 = Call::new(&bin, "ADD", "dummy").run(&c).result();
        assert_eq!(r0.ips[0].address.to_string(), "10.1.2.2/24", "{ver}");
        let e = Call::new(&bin, "ADD", "dummy").run(&c).err();
        assert_eq!(
            e.msg,
            "failed to allocate for range 0: 10.1.2.2 has been allocated to dummy, duplicate allocation is not allowed",
            "{ver}"
        );
        let r1 = Call::new(&bin, "ADD", "dummy1").run(&c).result();
        assert_eq!(r1.ips[0].address.to_string(), "10.1.2.3/24", "{ver}");
        Call::new(&bin, "ADD", "dummy").run(&c).err();
        Call::new(&bin, "DEL", "dummy").run(&c).ok();
        assert!(!t.path().join("mynet0/10.1.2.2").exists(), "{ver}");
        Call::new(&bin, "DEL", "dummy1").run(&c).ok();
        assert!(reservations(t.path().join("mynet0")).is_empty(), "{ver}");
    }
}

#[test]
fn del_works_on_backwards_compatible_allocation() {
    let bin = ours();
    for ver in Version::ALL {
        let t = TempDir::new("legacy");
        let c = conf(
            ver,
            "mynet",
            &t.s(),
            r#""ranges":[[{"subnet":"10.1.2.0/24"}]]"#,
        );
        Call::new(&bin, "ADD", "dummy").run(&c).result();
        let f = t.path().join("mynet/10.1.2.2");
        assert_eq!(read(&f), format!("dummy{CR_LF}eth0"));
        std::fs::write(&f, "dummy").unwrap();
        if ver.supports_check() {
            Call::new(&bin, "CHECK", "dummy").run(&c).ok();
        }
        Call::new(&bin, "DEL", "dummy").run(&c).ok();
        assert!(!f.exists(), "{ver}");
    }
}

#[test]
fn unknown_id_on_del_is_not_an_error() {
    let bin = ours();
    for ver in Version::ALL {
        let t = TempDir::new("unknown");
        let c = conf(ver, "mynet", &t.s(), r#""subnet":"10.1.2.0/24""#);
        let out = Call::new(&bin, "DEL", "dummy").run(&c);
        out.ok();
        assert!(out.stdout.is_empty(), "{ver}");
    }
}

#[test]
fn ignores_whitespace_in_disk_files() {
    // The skel refuses container IDs with whitespace, so the whitespace is in the file.
    let bin = ours();
    for ver in Version::ALL {
        let t = TempDir::new("ws");
        let c = conf(ver, "mynet", &t.s(), r#""subnet":"10.1.2.0/24""#);
        let dir = t.path().join("mynet");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("10.1.2.7"), format!("   dummy{CR_LF}eth0\n ")).unwrap();
        if ver.supports_check() {
            Call::new(&bin, "CHECK", "dummy").run(&c).ok();
        }
        let e = Call::new(&bin, "ADD", "dummy").run(&c).err();
        assert!(
            e.msg.contains("10.1.2.7 has been allocated to dummy"),
            "{ver}: {e:?}"
        );
        Call::new(&bin, "DEL", "dummy").run(&c).ok();
        assert!(!dir.join("10.1.2.7").exists(), "{ver}");
    }
}

#[test]
fn no_error_output_on_initial_subnet_creation() {
    let bin = ours();
    for ver in Version::ALL {
        let t = TempDir::new("initial");
        let c = conf(ver, "mynet", &t.s(), r#""subnet":"10.1.2.0/24""#);
        let out = Call::new(&bin, "ADD", "testing").run(&c);
        out.ok();
        assert!(!out.stdout.contains("Error retriving"), "{ver}");
        assert!(out.stderr.is_empty(), "{ver}: {}", out.stderr);
    }
}

#[test]
fn allocates_a_custom_ip_requested_by_config_args() {
    let bin = ours();
    for ver in Version::ALL {
        let t = TempDir::new("custom");
        let c = format!(
            r#"{{"cniVersion":"{ver}","name":"mynet","type":"ipvlan",
                "ipam":{{"type":"host-local","dataDir":"{}","ranges":[[{{"subnet":"10.1.2.0/24"}}]]}},
                "args":{{"cni":{{"ips":["10.1.2.88"]}}}}}}"#,
            t.s()
        );
        let r = Call::new(&bin, "ADD", "dummy").run(&c).result();
        assert_eq!(r.ips.len(), 1, "{ver}");
        assert_eq!(r.ips[0].address.addr(), ip("10.1.2.88"), "{ver}");
    }
}

fn two_set_conf(ver: Version, dir: &str, sets: &str, ips: &str) -> String {
    format!(
        r#"{{"cniVersion":"{ver}","name":"mynet","type":"ipvlan",
            "ipam":{{"type":"host-local","dataDir":"{dir}","ranges":{sets}}},
            "args":{{"cni":{{"ips":{ips}}}}}}}"#
    )
}

#[test]
fn allocates_custom_ips_from_multiple_ranges() {
    let bin = ours();
    for ver in Version::ALL {
        let t = TempDir::new("multi");
        let c = two_set_conf(
            ver,
            &t.s(),
            r#"[[{"subnet":"10.1.2.0/24"}],[{"subnet":"10.1.3.0/24"}]]"#,
            r#"["10.1.2.88","10.1.3.77"]"#,
        );
        let out = Call::new(&bin, "ADD", "dummy").run(&c);
        if ver.supports_multiple_ips_per_family() {
            let r = out.result();
            assert_eq!(r.ips.len(), 2, "{ver}");
            assert_eq!(r.ips[0].address.addr(), ip("10.1.2.88"), "{ver}");
            assert_eq!(r.ips[1].address.addr(), ip("10.1.3.77"), "{ver}");
        } else {
            let e = out.err();
            assert_eq!(
                e.msg,
                format!("CNI version {ver} does not support more than 1 address per family")
            );
            assert_eq!(e.code, ErrorCode::InvalidNetworkConfig);
        }
    }
}

#[test]
fn allocates_custom_ips_from_multiple_protocols() {
    let bin = ours();
    for ver in Version::ALL {
        let t = TempDir::new("proto");
        let c = two_set_conf(
            ver,
            &t.s(),
            r#"[[{"subnet":"172.16.1.0/24"},{"subnet":"10.1.2.0/24"}],[{"subnet":"2001:db8:1::/48"}]]"#,
            r#"["10.1.2.88","2001:db8:1::999"]"#,
        );
        let r = Call::new(&bin, "ADD", "dummy").run(&c).result();
        assert_eq!(r.ips.len(), 2, "{ver}");
        assert_eq!(r.ips[0].address.to_string(), "10.1.2.88/24", "{ver}");
        assert_eq!(r.ips[1].address.to_string(), "2001:db8:1::999/48", "{ver}");
    }
}

#[test]
fn fails_if_a_requested_custom_ip_is_not_used() {
    let bin = ours();
    for ver in Version::ALL {
        let t = TempDir::new("unused");
        let c = two_set_conf(
            ver,
            &t.s(),
            r#"[[{"subnet":"10.1.2.0/24"}],[{"subnet":"10.1.3.0/24"}]]"#,
            r#"["10.1.2.88","10.1.2.77"]"#,
        );
        let e = Call::new(&bin, "ADD", "dummy").run(&c).err();
        if ver.supports_multiple_ips_per_family() {
            assert!(
                e.msg
                    .starts_with("failed to allocate all requested IPs: 10.1.2."),
                "{ver}: {}",
                e.msg
            );
            assert!(
                reservations(t.path().join("mynet")).is_empty(),
                "{ver}: everything released"
            );
        } else {
            assert_eq!(
                e.msg,
                format!("CNI version {ver} does not support more than 1 address per family")
            );
        }
    }
}

#[test]
fn check_after_add_and_after_del() {
    let bin = ours();
    for ver in Version::ALL {
        let t = TempDir::new("check");
        let c = conf(ver, "mynet", &t.s(), r#""subnet":"10.1.2.0/24""#);
        Call::new(&bin, "ADD", "c1").run(&c).result();
        let out = Call::new(&bin, "CHECK", "c1").run(&c);
        if !ver.supports_check() {
            assert_eq!(out.err().code, ErrorCode::IncompatibleCniVersion, "{ver}");
            continue;
        }
        out.ok();
        Call::new(&bin, "DEL", "c1").run(&c).ok();
        let e = Call::new(&bin, "CHECK", "c1").run(&c).err();
        assert_eq!(
            e.msg,
            "host-local: Failed to find address added by container c1"
        );
    }
}

#[test]
fn requested_ip_via_cni_args_with_and_without_prefix() {
    let bin = ours();
    for ver in Version::ALL {
        let t = TempDir::new("cniargs");
        let c = conf(ver, "mynet", &t.s(), r#""subnet":"10.1.2.0/24""#);
        let r = Call::new(&bin, "ADD", "a")
            .args("IP=10.1.2.10")
            .run(&c)
            .result();
        assert_eq!(r.ips[0].address.to_string(), "10.1.2.10/24", "{ver}");
        let r = Call::new(&bin, "ADD", "b")
            .args("IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.1.2.11/24")
            .run(&c)
            .result();
        assert_eq!(r.ips[0].address.to_string(), "10.1.2.11/24", "{ver}");
        let e = Call::new(&bin, "ADD", "c")
            .args("K8S_POD_NAME=x")
            .run(&c)
            .err();
        assert_eq!(e.msg, "ARGS: unknown args [\"K8S_POD_NAME=x\"]", "{ver}");
        let e = Call::new(&bin, "ADD", "d")
            .args("IP=10.1.2.10")
            .run(&c)
            .err();
        assert!(
            e.msg
                .contains("requested IP address 10.1.2.10 is not available"),
            "{ver}: {}",
            e.msg
        );
    }
}

#[test]
fn config_args_win_over_cni_args() {
    let bin = ours();
    let t = TempDir::new("precedence");
    let c = format!(
        r#"{{"cniVersion":"1.0.0","name":"mynet","ipam":{{"type":"host-local","dataDir":"{}",
            "subnet":"10.1.2.0/24"}},"args":{{"cni":{{"ips":["10.1.2.88"]}}}}}}"#,
        t.s()
    );
    let r = Call::new(&bin, "ADD", "a")
        .args("IP=10.1.2.77")
        .run(&c)
        .result();
    assert_eq!(r.ips.len(), 1);
    assert_eq!(r.ips[0].address.addr(), ip("10.1.2.88"));
}

#[test]
fn runtime_config_ranges_are_prepended_and_ips_requested() {
    let bin = ours();
    let t = TempDir::new("runtime");
    let c = format!(
        r#"{{"cniVersion":"1.0.0","name":"mynet","ipam":{{"type":"host-local","dataDir":"{}",
            "ranges":[[{{"subnet":"10.1.2.0/24"}}]]}},
            "runtimeConfig":{{"ipRanges":[[{{"subnet":"192.168.7.0/24","rangeStart":"192.168.7.100"}}]],
                              "ips":["10.1.2.42/24"]}}}}"#,
        t.s()
    );
    let r = Call::new(&bin, "ADD", "a").run(&c).result();
    assert_eq!(r.ips[0].address.to_string(), "192.168.7.100/24");
    assert_eq!(r.ips[1].address.to_string(), "10.1.2.42/24");
}

#[test]
fn configuration_errors_use_the_reference_messages() {
    let bin = ours();
    let t = TempDir::new("errors");
    let cases = [
        (
            r#"{"cniVersion":"1.0.0","name":"n"}"#.to_string(),
            "IPAM config missing 'ipam' key",
        ),
        (
            conf(Version::V1_0_0, "n", &t.s(), r#""routes":[]"#),
            "no IP ranges specified",
        ),
        (
            conf(Version::V1_0_0, "n", &t.s(), r#""subnet":"10.1.2.3/24""#),
            "invalid range set 0: Network has host bits set. For a subnet mask of length 24 the network address is 10.1.2.0",
        ),
        (
            conf(Version::V1_0_0, "n", &t.s(), r#""subnet":"10.1.2.0/31""#),
            "invalid range set 0: Network 10.1.2.0/31 too small to allocate from",
        ),
        (
            conf(
                Version::V1_0_0,
                "n",
                &t.s(),
                r#""ranges":[[{"subnet":"10.1.2.0/24"}],[{"subnet":"10.1.2.0/25"}]]"#,
            ),
            "range set 0 overlaps with 1",
        ),
        (
            conf(
                Version::V1_0_0,
                "n",
                &t.s(),
                r#""subnet":"10.1.2.0/24","rangeStart":"10.1.3.1""#,
            ),
            "invalid range set 0: RangeStart 10.1.3.1 not in network 10.1.2.0/24",
        ),
    ];
    for (c, msg) in cases {
        let e = Call::new(&bin, "ADD", "x").run(&c).err();
        assert_eq!(e.msg, msg);
        assert_eq!(e.code, ErrorCode::InvalidNetworkConfig, "{msg}");
    }
    assert!(reservations(t.path().join("n")).is_empty());
    // The network name is validated (by the skel) before any path is built.
    let e = Call::new(&bin, "ADD", "x").run(&conf(
        Version::V1_0_0,
        "../escape",
        &t.s(),
        r#""subnet":"10.1.2.0/24""#,
    ));
    assert_eq!(e.err().code, ErrorCode::InvalidNetworkConfig);
    assert!(!t.path().parent().unwrap().join("escape").exists());
    let e = Call::new(&bin, "ADD", "../x")
        .run(&conf(
            Version::V1_0_0,
            "n",
            &t.s(),
            r#""subnet":"10.1.2.0/24""#,
        ))
        .err();
    assert_eq!(e.code, ErrorCode::InvalidEnvironmentVariables);
}

#[test]
fn exhaustion_is_a_clear_error_and_status_reports_it() {
    let bin = ours();
    let t = TempDir::new("status");
    let c = |v: Version| {
        conf(
            v,
            "small",
            &t.s(),
            r#""ranges":[[{"subnet":"10.9.0.0/30"}],[{"subnet":"10.8.0.0/24"}]]"#,
        )
    };
    // A network that never allocated is available.
    Call::new(&bin, "STATUS", "").run(&c(Version::V1_1_0)).ok();
    Call::new(&bin, "ADD", "a")
        .run(&c(Version::V1_1_0))
        .result();
    let e = Call::new(&bin, "STATUS", "").run(&c(Version::V1_1_0)).err();
    assert_eq!(e.code, ErrorCode::PluginNotAvailable);
    assert_eq!(
        e.msg,
        "host-local: network small cannot allocate: range set 0: no IP addresses available in range set: 10.9.0.1-10.9.0.2"
    );
    let e = Call::new(&bin, "ADD", "b").run(&c(Version::V1_1_0)).err();
    assert_eq!(
        e.msg,
        "failed to allocate for range 0: no IP addresses available in range set: 10.9.0.1-10.9.0.2"
    );
    assert_eq!(
        reservations(t.path().join("small")).len(),
        2,
        "set 1 was released"
    );
    // STATUS before 1.1.0 is refused by the skel.
    for v in Version::ALL.into_iter().filter(|v| !v.supports_status()) {
        assert_eq!(
            Call::new(&bin, "STATUS", "").run(&c(v)).err().code,
            ErrorCode::IncompatibleCniVersion
        );
    }
    Call::new(&bin, "DEL", "a").run(&c(Version::V1_1_0)).ok();
    Call::new(&bin, "STATUS", "").run(&c(Version::V1_1_0)).ok();
}

#[test]
fn gc_releases_everything_not_valid() {
    let bin = ours();
    let t = TempDir::new("gc");
    let c = conf(
        Version::V1_1_0,
        "gcnet",
        &t.s(),
        r#""subnet":"10.1.2.0/24""#,
    );
    for id in ["keep", "gone1", "gone2"] {
        Call::new(&bin, "ADD", id).run(&c).result();
    }
    Call::new(&bin, "ADD", "keep")
        .ifname("eth1")
        .run(&c)
        .result();
    let dir = t.path().join("gcnet");
    std::fs::write(dir.join("10.1.2.200"), "legacy-keep").unwrap();
    std::fs::write(dir.join("10.1.2.201"), "legacy-gone").unwrap();
    let gc_conf = |valid: &str| {
        format!(
            r#"{{"cniVersion":"1.1.0","name":"gcnet","ipam":{{"type":"host-local","dataDir":"{}",
                "subnet":"10.1.2.0/24"}},"cni.dev/valid-attachments":{valid}}}"#,
            t.s()
        )
    };
    let out = Call::new(&bin, "GC", "").run(&gc_conf(
        r#"[{"containerID":"keep","ifname":"eth0"},{"containerID":"legacy-keep","ifname":"eth0"}]"#,
    ));
    out.ok();
    assert!(out.stdout.is_empty());
    assert_eq!(reservations(&dir), ["10.1.2.2", "10.1.2.200"]);
    for f in ["lock", "last_reserved_ip.0"] {
        assert!(dir.join(f).exists(), "{f} kept");
    }
    // Without the key nothing is released.
    Call::new(&bin, "GC", "").run(&c).ok();
    assert_eq!(reservations(&dir).len(), 2);
    // An empty list (or null) releases everything.
    Call::new(&bin, "GC", "").run(&gc_conf("null")).ok();
    assert!(reservations(&dir).is_empty());
    assert!(dir.join("lock").exists() && dir.join("last_reserved_ip.0").exists());
    // GC before 1.1.0 is refused by the skel.
    let old = conf(
        Version::V1_0_0,
        "gcnet",
        &t.s(),
        r#""subnet":"10.1.2.0/24""#,
    );
    assert_eq!(
        Call::new(&bin, "GC", "").run(&old).err().code,
        ErrorCode::IncompatibleCniVersion
    );
}

#[test]
fn version_and_about() {
    let bin = ours();
    let out = Call::new(&bin, "VERSION", "").run(r#"{"cniVersion":"1.1.0"}"#);
    let v = out.json();
    assert_eq!(v["cniVersion"], "1.1.0");
    assert_eq!(v["supportedVersions"].as_array().unwrap().len(), 7);
    let mut c = Call::new(&bin, "VERSION", "").command();
    c.env_remove("CNI_COMMAND");
    let o = c.output().unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("CNI host-local plugin"));
}

#[test]
fn del_releases_even_when_the_ranges_became_invalid() {
    // Deliberate difference: the reference refuses DEL until the config is valid again.
    let bin = ours();
    let t = TempDir::new("del-invalid");
    let good = conf(Version::V1_0_0, "n", &t.s(), r#""subnet":"10.1.2.0/24""#);
    let bad = conf(Version::V1_0_0, "n", &t.s(), r#""subnet":"10.1.2.3/24""#);
    Call::new(&bin, "ADD", "c").run(&good).result();
    assert_eq!(
        Call::new(&bin, "ADD", "d").run(&bad).err().code,
        ErrorCode::InvalidNetworkConfig
    );
    Call::new(&bin, "DEL", "c").run(&bad).ok();
    assert!(reservations(t.path().join("n")).is_empty());
    // Without `ipam` ADD fails ("IPAM config missing 'ipam' key"), so nothing can have been
    // allocated with this config: DEL succeeds (the reference fails it too, which makes a
    // runtime that stops at the first failing DEL leak the rest of the pod).
    let no_ipam = r#"{"cniVersion":"1.0.0","name":"n"}"#;
    let e = Call::new(&bin, "ADD", "c").run(no_ipam).err();
    assert_eq!(e.msg, "IPAM config missing 'ipam' key");
    let out = Call::new(&bin, "DEL", "c").run(no_ipam);
    out.ok();
    assert!(out.stdout.is_empty());
}
