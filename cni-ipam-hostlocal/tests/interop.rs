//! Interoperability with the reference Go binary (/usr/lib/cni/host-local, v1.1.1) on one
//! store: allocations, releases, duplicate detection and CHECK across implementations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cni_types::Version;
use common::{Call, TempDir, conf, go, ours, read, reservations};

// The Go v1.1.1 binary speaks up to 1.0.0.
const V: Version = Version::V1_0_0;

#[test]
fn go_and_rust_share_a_store() {
    let Some(go) = go() else { return };
    let rust = ours();
    let t = TempDir::new("interop");
    let c = conf(
        V,
        "shared",
        &t.s(),
        r#""ranges":[[{"subnet":"10.44.0.0/24"}],[{"subnet":"2001:db8:44::/64"}]]"#,
    );
    let dir = t.path().join("shared");
    let mut seen = Vec::new();
    for i in 0..3 {
        let r = Call::new(&go, "ADD", &format!("go{i}")).run(&c).result();
        seen.extend(r.ips.iter().map(|ip| ip.address.addr()));
    }
    for i in 0..3 {
        let r = Call::new(&rust, "ADD", &format!("rs{i}")).run(&c).result();
        seen.extend(r.ips.iter().map(|ip| ip.address.addr()));
    }
    let mut uniq = seen.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), 12, "no duplicate among {seen:?}");
    assert_eq!(reservations(&dir).len(), 12);
    // Round robin continued where the Go plugin stopped.
    assert_eq!(seen[6].to_string(), "10.44.0.5");
    assert_eq!(read(dir.join("10.44.0.5")), "rs0\r\neth0");

    // Each implementation sees the other's reservations as duplicates.
    let e = Call::new(&rust, "ADD", "go1").run(&c).err();
    assert_eq!(
        e.msg,
        "failed to allocate for range 0: 10.44.0.3 has been allocated to go1, duplicate allocation is not allowed"
    );
    let e = Call::new(&go, "ADD", "rs1").run(&c).err();
    assert!(
        e.msg.contains("10.44.0.6 has been allocated to rs1"),
        "{}",
        e.msg
    );

    // Ours releases one the Go plugin allocated; the Go plugin releases one of ours.
    Call::new(&rust, "DEL", "go0").run(&c).ok();
    assert!(!dir.join("10.44.0.2").exists());
    assert!(!dir.join("2001:db8:44::2").exists());
    Call::new(&go, "DEL", "rs2").run(&c).ok();
    assert!(!dir.join("10.44.0.7").exists());
    assert!(!dir.join("2001:db8:44::7").exists());
    assert_eq!(reservations(&dir).len(), 8);

    // CHECK across implementations.
    Call::new(&go, "CHECK", "rs0").run(&c).ok();
    Call::new(&rust, "CHECK", "go1").run(&c).ok();
    assert!(Call::new(&rust, "CHECK", "go0").run(&c).code != 0);
    assert!(Call::new(&go, "CHECK", "rs2").run(&c).code != 0);

    // After a Go write, our lookups still see it (the index was invalidated and rebuilt).
    Call::new(&go, "ADD", "late").run(&c).result();
    assert!(Call::new(&rust, "ADD", "late").run(&c).code != 0);
    Call::new(&rust, "DEL", "late").run(&c).ok();
    Call::new(&go, "CHECK", "late").run(&c).err();

    // GC (ours; the Go plugin has none) over a mixed store.
    let gc = format!(
        r#"{{"cniVersion":"1.1.0","name":"shared","ipam":{{"type":"host-local","dataDir":"{}",
            "ranges":[[{{"subnet":"10.44.0.0/24"}}],[{{"subnet":"2001:db8:44::/64"}}]]}},
            "cni.dev/valid-attachments":[{{"containerID":"go1","ifname":"eth0"}},
                                         {{"containerID":"rs1","ifname":"eth0"}}]}}"#,
        t.s()
    );
    Call::new(&rust, "GC", "").run(&gc).ok();
    assert_eq!(
        reservations(&dir),
        ["10.44.0.3", "10.44.0.6", "2001:db8:44::3", "2001:db8:44::6"]
    );
    // The Go plugin keeps working on the store afterwards.
    let r = Call::new(&go, "ADD", "after").run(&c).result();
    assert_eq!(r.ips.len(), 2);
    Call::new(&go, "DEL", "after").run(&c).ok();
    Call::new(&go, "DEL", "go1").run(&c).ok();
    Call::new(&rust, "DEL", "rs1").run(&c).ok();
    assert!(reservations(&dir).is_empty());
}

#[test]
fn legacy_files_are_understood_by_both() {
    let Some(go) = go() else { return };
    let rust = ours();
    let t = TempDir::new("interop-legacy");
    let c = conf(V, "legacy", &t.s(), r#""subnet":"10.45.0.0/24""#);
    let dir = t.path().join("legacy");
    Call::new(&rust, "ADD", "old1").run(&c).result();
    Call::new(&go, "ADD", "old2").run(&c).result();
    // Downgrade both to the pre-ifname format.
    std::fs::write(dir.join("10.45.0.2"), "old1").unwrap();
    std::fs::write(dir.join("10.45.0.3"), "old2").unwrap();
    Call::new(&go, "DEL", "old1").run(&c).ok();
    Call::new(&rust, "DEL", "old2").run(&c).ok();
    assert!(reservations(&dir).is_empty());
}
