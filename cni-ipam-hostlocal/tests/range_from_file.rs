//! `ipam.rangeFromFile` through the binary, end to end (issue 19 item 5).
//!
//! The key comes from the reference's pull request #1179 ("support reading ranges from a
//! file", containernetworking/plugins), which is not merged: neither the reference's main
//! branch nor the Go 1.1.1 binary knows it (they ignore it and fail with "no IP ranges
//! specified"). As there, the file holds one range object (`subnet`, `rangeStart`, `rangeEnd`,
//! `gateway`), read at every invocation, and is used only when no other range is configured
//! (`runtimeConfig.ipRanges`, the legacy `subnet`, `ranges`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cni_types::{ErrorCode, Version};
use common::{Call, TempDir, ours, read, reservations};

const V: Version = Version::V1_0_0;

fn config(t: &TempDir, ipam_extra: &str, top_extra: &str) -> String {
    format!(
        r#"{{"cniVersion":"{V}","name":"rff","type":"bridge",{top_extra}
            "ipam":{{"type":"host-local","dataDir":"{}",
                     "rangeFromFile":"{}/range.json"{ipam_extra}}}}}"#,
        t.s(),
        t.s()
    )
}

fn write_range(t: &TempDir, json: &str) {
    std::fs::write(t.path().join("range.json"), json).unwrap();
}

#[test]
fn the_range_is_read_from_the_file() {
    let bin = ours();
    let t = TempDir::new("rff");
    // The pull request's own fixture.
    write_range(
        &t,
        r#"{"subnet": "10.128.0.0/11", "rangeStart": "10.128.12.100", "rangeEnd": "10.128.12.254"}"#,
    );
    let c = config(&t, "", "");
    let r = Call::new(&bin, "ADD", "a").run(&c).result();
    assert_eq!(r.ips.len(), 1);
    assert_eq!(r.ips[0].address.to_string(), "10.128.12.100/11");
    assert_eq!(r.ips[0].gateway.unwrap().to_string(), "10.128.0.1");
    let dir = t.path().join("rff");
    assert_eq!(read(dir.join("10.128.12.100")), "a\r\neth0");
    assert_eq!(read(dir.join("last_reserved_ip.0")), "10.128.12.100");
    Call::new(&bin, "CHECK", "a").run(&c).ok();

    // Read at every invocation: a new file gives the next ADD a new range (IPv6 here), and
    // its own gateway.
    write_range(
        &t,
        r#"{"subnet":"2001:db8:77::/64","rangeStart":"2001:db8:77::100","gateway":"2001:db8:77::fe"}"#,
    );
    let r = Call::new(&bin, "ADD", "b").run(&c).result();
    assert_eq!(r.ips[0].address.to_string(), "2001:db8:77::100/64");
    assert_eq!(r.ips[0].gateway.unwrap().to_string(), "2001:db8:77::fe");

    Call::new(&bin, "DEL", "a").run(&c).ok();
    Call::new(&bin, "DEL", "b").run(&c).ok();
    assert!(reservations(&dir).is_empty());
}

#[test]
fn the_file_is_ignored_when_another_range_is_configured() {
    let bin = ours();
    let t = TempDir::new("rff-ignored");
    write_range(&t, r#"{"subnet":"10.128.0.0/24"}"#);
    let cases = [
        (
            r#","ranges":[[{"subnet":"10.99.1.0/24"}]]"#,
            "",
            "10.99.1.2/24",
        ),
        (r#","subnet":"10.99.2.0/24""#, "", "10.99.2.2/24"),
        (
            "",
            r#""runtimeConfig":{"ipRanges":[[{"subnet":"10.99.3.0/24"}]]},"#,
            "10.99.3.2/24",
        ),
    ];
    for (i, (ipam, top, want)) in cases.iter().enumerate() {
        let c = config(&t, ipam, top);
        let id = format!("c{i}");
        let r = Call::new(&bin, "ADD", &id).run(&c).result();
        assert_eq!(r.ips.len(), 1, "{ipam}{top}");
        assert_eq!(r.ips[0].address.to_string(), *want, "{ipam}{top}");
        Call::new(&bin, "DEL", &id).run(&c).ok();
    }
    // Not even read then: a missing file does not matter.
    std::fs::remove_file(t.path().join("range.json")).unwrap();
    let c = config(&t, r#","ranges":[[{"subnet":"10.99.1.0/24"}]]"#, "");
    Call::new(&bin, "ADD", "d").run(&c).result();
}

#[test]
fn a_missing_unreadable_or_invalid_file_is_a_config_error_and_writes_nothing() {
    let bin = ours();
    let t = TempDir::new("rff-bad");
    let c = config(&t, "", "");
    let path = format!("{}/range.json", t.s());
    let e = Call::new(&bin, "ADD", "a").run(&c).err();
    assert_eq!(e.code, ErrorCode::InvalidNetworkConfig, "{e:?}");
    assert!(
        e.msg
            .starts_with(&format!("failed to read rangeFromFile {path:?}: ")),
        "{e:?}"
    );
    let cases = [
        ("not json", format!("failed to parse rangeFromFile {path:?} as a Range")),
        (
            r#"[{"subnet":"10.1.0.0/24"}]"#,
            format!("failed to parse rangeFromFile {path:?} as a Range"),
        ),
        (
            r#"{"gateway":"10.1.0.1"}"#,
            format!("failed to parse rangeFromFile {path:?} as a Range"),
        ),
        (
            r#"{"subnet":"10.1.0.0/24","rangeStart":"10.1.0.255"}"#,
            "invalid range set 0: RangeStart 10.1.0.255 is after RangeEnd 10.1.0.254: the range is empty"
                .to_string(),
        ),
        (
            r#"{"subnet":"10.1.0.0/24","gateway":"10.2.0.1"}"#,
            "invalid range set 0: gateway 10.2.0.1 not in network 10.1.0.0/24".to_string(),
        ),
    ];
    for (content, msg) in cases {
        write_range(&t, content);
        let e = Call::new(&bin, "ADD", "a").run(&c).err();
        assert_eq!(e.code, ErrorCode::InvalidNetworkConfig, "{content}");
        assert_eq!(e.msg, msg, "{content}");
    }
    assert!(!t.path().join("rff").exists(), "nothing was written");
    // DEL does not need the file.
    Call::new(&bin, "DEL", "a").run(&c).ok();
}
