//! Hardening of the `host-local` binary, run as a runtime runs it (issue 12): configurations
//! that can hand nothing out are refused before the store is touched, a failed ADD leaves no
//! reservation, the store never writes through a symlink planted in it, DEL succeeds on what
//! ADD refused, and nothing of ours outlives the last reservation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use cni_types::{ErrorCode, Version};
use common::{Call, TempDir, conf, ours, read, reservations};

const V: Version = Version::V1_0_0;

/// Every entry of a directory with its kind and content (for symlinks: the link text), sorted.
fn listing(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = match std::fs::read_dir(dir) {
        Err(_) => Vec::new(),
        Ok(rd) => rd
            .map(|e| {
                let e = e.unwrap();
                let p = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                let t = e.file_type().unwrap();
                let what = if t.is_symlink() {
                    format!("-> {}", std::fs::read_link(&p).unwrap().display())
                } else if t.is_file() {
                    String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned()
                } else {
                    "(other)".into()
                };
                (name, what)
            })
            .collect(),
    };
    v.sort();
    v
}

#[test]
fn ranges_that_can_hand_nothing_out_are_refused_before_the_store_is_touched() {
    let bin = ours();
    let t = TempDir::new("refuse");
    let cases = [
        // The issue's probe: the broadcast address as rangeStart leaves nothing before the
        // default rangeEnd (.254).
        (
            r#"{"subnet":"10.99.8.0/24","rangeStart":"10.99.8.255"}"#,
            "invalid range set 0: RangeStart 10.99.8.255 is after RangeEnd 10.99.8.254: the range is empty",
        ),
        (
            r#"{"subnet":"10.99.8.0/24","rangeStart":"10.99.8.50","rangeEnd":"10.99.8.40"}"#,
            "invalid range set 0: RangeStart 10.99.8.50 not in network 10.99.8.0/24",
        ),
        (
            r#"{"subnet":"10.99.8.0/24","rangeStart":"10.99.9.1"}"#,
            "invalid range set 0: RangeStart 10.99.9.1 not in network 10.99.8.0/24",
        ),
        (
            r#"{"subnet":"10.99.8.0/24","rangeEnd":"10.99.9.1"}"#,
            "invalid range set 0: RangeEnd 10.99.9.1 not in network 10.99.8.0/24",
        ),
        (
            r#"{"subnet":"10.99.8.0/24","gateway":"10.99.9.1"}"#,
            "invalid range set 0: gateway 10.99.9.1 not in network 10.99.8.0/24",
        ),
        (
            r#"{"subnet":"2001:db8:8::/64","rangeStart":"2001:db8:8::ffff:ffff:ffff:fff0","rangeEnd":"2001:db8:8::10"}"#,
            "invalid range set 0: RangeStart 2001:db8:8:0:ffff:ffff:ffff:fff0 not in network 2001:db8:8::/64",
        ),
    ];
    for (range, msg) in cases {
        let c = conf(V, "refused", &t.s(), &format!(r#""ranges":[[{range}]]"#));
        // Twice: the first failure must not leave anything the second trips over.
        for _ in 0..2 {
            let e = Call::new(&bin, "ADD", "c1").run(&c).err();
            assert_eq!(e.code, ErrorCode::InvalidNetworkConfig, "{range}");
            assert_eq!(e.msg, msg, "{range}");
        }
        assert!(
            !t.path().join("refused").exists(),
            "{range}: the store was touched: {:?}",
            listing(&t.path().join("refused"))
        );
    }

    // Also when the store exists: not a byte changes.
    let good = conf(
        V,
        "refused",
        &t.s(),
        r#""ranges":[[{"subnet":"10.99.8.0/24"}]]"#,
    );
    Call::new(&bin, "ADD", "live").run(&good).result();
    let dir = t.path().join("refused");
    let before = listing(&dir);
    let bad = conf(
        V,
        "refused",
        &t.s(),
        r#""ranges":[[{"subnet":"10.99.8.0/24","rangeStart":"10.99.8.255"}]]"#,
    );
    Call::new(&bin, "ADD", "c2").run(&bad).err();
    assert_eq!(listing(&dir), before);
}

#[test]
fn a_reservation_whose_cursor_cannot_be_written_is_given_back() {
    let bin = ours();
    let t = TempDir::new("rollback");
    let c = conf(V, "rb", &t.s(), r#""ranges":[[{"subnet":"10.99.7.0/24"}]]"#);
    Call::new(&bin, "ADD", "first").run(&c).result();
    let dir = t.path().join("rb");
    // The round-robin cursor cannot be replaced: a (non-empty) directory holds its name.
    std::fs::remove_file(dir.join("last_reserved_ip.0")).unwrap();
    std::fs::create_dir_all(dir.join("last_reserved_ip.0").join("x")).unwrap();
    let before = reservations(&dir);
    assert_eq!(before, ["10.99.7.2"]);
    let e = Call::new(&bin, "ADD", "second").run(&c).err();
    assert_eq!(e.code, ErrorCode::IoFailure, "{e:?}");
    assert_eq!(
        reservations(&dir),
        before,
        "the failed ADD left a reservation"
    );
    assert!(
        dir.join("last_reserved_ip.0").join("x").is_dir(),
        "the directory stays where it was"
    );
    let leftovers: Vec<_> = listing(&dir)
        .into_iter()
        .filter(|(n, _)| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A directory outside the store holding the files planted symlinks point to.
struct Outside {
    _t: TempDir,
    dir: PathBuf,
}

impl Outside {
    fn new() -> Outside {
        let t = TempDir::new("outside");
        let dir = t.path().to_path_buf();
        Outside { _t: t, dir }
    }

    /// A file with known content, and the path a symlink to it uses.
    fn file(&self, name: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, "original").unwrap();
        p
    }

    fn assert_untouched(&self, names: &[&str]) {
        for n in names {
            assert_eq!(read(self.dir.join(n)), "original", "{n} was written");
        }
    }
}

fn plant(store: &Path, name: &str, target: &Path) {
    std::os::unix::fs::symlink(target, store.join(name)).unwrap();
}

#[test]
fn a_symlink_at_the_lock_is_refused_and_never_followed() {
    let bin = ours();
    let t = TempDir::new("symlock");
    let out = Outside::new();
    let c = conf(V, "sl", &t.s(), r#""ranges":[[{"subnet":"10.99.6.0/24"}]]"#);
    let dir = t.path().join("sl");
    std::fs::create_dir_all(&dir).unwrap();
    // A link to a file that does not exist: opening it with O_CREAT would create it.
    let absent = out.dir.join("created-through-the-lock");
    plant(&dir, "lock", &absent);
    let e = Call::new(&bin, "ADD", "c1").run(&c).err();
    assert_eq!(e.code, ErrorCode::IoFailure, "{e:?}");
    assert!(!absent.exists(), "the lock was created through a symlink");
    assert!(reservations(&dir).is_empty());
    // An existing target: refused as well (nothing locks or writes a file outside).
    std::fs::remove_file(dir.join("lock")).unwrap();
    plant(&dir, "lock", &out.file("lock-target"));
    Call::new(&bin, "ADD", "c1").run(&c).err();
    Call::new(&bin, "DEL", "c1").run(&c).err();
    out.assert_untouched(&["lock-target"]);
    assert!(reservations(&dir).is_empty());
    // A FIFO there is refused at once (it would block an open for reading).
    std::fs::remove_file(dir.join("lock")).unwrap();
    nix::unistd::mkfifo(
        &dir.join("lock"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let e = Call::new(&bin, "ADD", "c1").run(&c).err();
    assert!(e.msg.contains("not a regular file"), "{e:?}");
}

#[test]
fn a_symlink_at_the_store_directory_is_never_followed() {
    let bin = ours();
    let t = TempDir::new("symdir");
    let out = Outside::new();
    let c = conf(V, "sd", &t.s(), r#""ranges":[[{"subnet":"10.99.6.0/24"}]]"#);
    // The network's directory under dataDir is a link to a directory elsewhere.
    plant(t.path(), "sd", &out.dir);
    let e = Call::new(&bin, "ADD", "c1").run(&c).err();
    assert_eq!(e.code, ErrorCode::IoFailure, "{e:?}");
    // DEL: nothing can have been stored there by us; it succeeds and touches nothing.
    Call::new(&bin, "DEL", "c1").run(&c).ok();
    assert!(listing(&out.dir).is_empty(), "{:?}", listing(&out.dir));
    // dataDir itself may be a link (an administrator's choice), as in the reference.
    let real = TempDir::new("realdata");
    let linked = t.path().join("data-link");
    std::os::unix::fs::symlink(real.path(), &linked).unwrap();
    let c = conf(
        V,
        "sd",
        &linked.display().to_string(),
        r#""ranges":[[{"subnet":"10.99.6.0/24"}]]"#,
    );
    Call::new(&bin, "ADD", "c1").run(&c).result();
    assert_eq!(reservations(real.path().join("sd")), ["10.99.6.2"]);
}

#[test]
fn symlinks_planted_in_the_store_are_never_written_through() {
    let bin = ours();
    let t = TempDir::new("symstore");
    let out = Outside::new();
    let c = conf(
        V,
        "ss",
        &t.s(),
        r#""ranges":[[{"subnet":"10.99.5.0/24"}],[{"subnet":"2001:db8:5::/64"}]]"#,
    );
    let dir = t.path().join("ss");
    std::fs::create_dir_all(&dir).unwrap();
    // At the temporary names older versions used (fixed, so predictable), at the cursor, at
    // the index and at the first address round robin hands out.
    let planted = [
        ("last_reserved_ip.0.tmp", "t0"),
        ("last_reserved_ip.1.tmp", "t1"),
        (".cni-rs-host-local.index.tmp", "t2"),
        (".cni-rs-host-local.reserve.tmp", "t3"),
        ("last_reserved_ip.1", "cursor"),
        (".cni-rs-host-local.index", "index"),
        ("10.99.5.2", "reservation"),
    ];
    for (name, target) in planted {
        plant(&dir, name, &out.file(target));
    }
    // A FIFO named like an address: never opened (a read would block), never released.
    nix::unistd::mkfifo(
        &dir.join("10.99.5.9"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let targets: Vec<&str> = planted.iter().map(|(_, t)| *t).collect();

    let r = Call::new(&bin, "ADD", "c1").run(&c).result();
    // The planted reservation makes its address taken.
    assert_eq!(r.ips[0].address.to_string(), "10.99.5.3/24");
    assert_eq!(r.ips[1].address.to_string(), "2001:db8:5::2/64");
    out.assert_untouched(&targets);
    // The cursor link was replaced by a file of ours, not written through.
    assert!(dir.join("last_reserved_ip.1").is_file());
    assert!(!dir.join("last_reserved_ip.1").is_symlink());
    assert_eq!(read(dir.join("last_reserved_ip.1")), "2001:db8:5::2");

    // Plant the old temporary names again (the first full read removed them as leftovers)
    // and go through every verb that writes.
    for (name, target) in &planted[..4] {
        if dir.join(name).symlink_metadata().is_err() {
            plant(&dir, name, &out.dir.join(target));
        }
    }
    Call::new(&bin, "ADD", "c2").run(&c).result();
    Call::new(&bin, "DEL", "c1").run(&c).ok();
    Call::new(&bin, "CHECK", "c2").run(&c).ok();
    let gc = format!(
        r#"{{"cniVersion":"1.1.0","name":"ss","type":"ipvlan",
            "ipam":{{"type":"host-local","dataDir":"{}"}},
            "cni.dev/valid-attachments":[]}}"#,
        t.s()
    );
    Call::new(&bin, "GC", "").run(&gc).ok();
    Call::new(&bin, "DEL", "c2").run(&c).ok();
    out.assert_untouched(&targets);
    // The planted reservation link is not ours to release, and still points where it did.
    assert_eq!(
        std::fs::read_link(dir.join("10.99.5.2")).unwrap(),
        out.dir.join("reservation")
    );
    assert!(
        std::os::unix::fs::FileTypeExt::is_fifo(
            &std::fs::symlink_metadata(dir.join("10.99.5.9"))
                .unwrap()
                .file_type()
        ),
        "the FIFO stays"
    );
}

#[test]
fn del_succeeds_on_what_add_refuses_and_still_releases() {
    let bin = ours();
    let t = TempDir::new("delbad");
    let good = conf(V, "db", &t.s(), r#""ranges":[[{"subnet":"10.99.3.0/24"}]]"#);
    let dir = t.path().join("db");
    // The network's configuration became one that ADD refuses: DEL still releases by
    // container ID and interface name.
    let refused = [
        r#""ranges":[[{"subnet":"10.99.3.0/24","gateway":"10.99.9.1"}]]"#,
        r#""ranges":[[{"subnet":"10.99.3.0/24","rangeStart":"10.99.3.255"}]]"#,
        r#""ranges":[[{"subnet":"10.99.3.0/24","rangeStart":"10.99.3.9","rangeEnd":"10.99.3.2"}]]"#,
        r#""ranges":[[{"subnet":"10.99.3.7/24"}]]"#,
        r#""ranges":[]"#,
        r#""rangeFromFile":"/nonexistent/range.json""#,
    ];
    for (i, ipam) in refused.iter().enumerate() {
        let bad = conf(V, "db", &t.s(), ipam);
        let id = format!("pod{i}");
        Call::new(&bin, "ADD", &id).run(&bad).err();
        Call::new(&bin, "ADD", &id).run(&good).result();
        assert_eq!(reservations(&dir).len(), 1, "{ipam}");
        Call::new(&bin, "DEL", &id).run(&bad).ok();
        assert!(
            reservations(&dir).is_empty(),
            "{ipam}: DEL released nothing"
        );
        // And of something never added.
        Call::new(&bin, "DEL", "never-added").run(&bad).ok();
    }
    // Environment ADD refuses (CNI_ARGS, runtimeConfig.ips) is not read by DEL.
    Call::new(&bin, "ADD", "args").run(&good).result();
    Call::new(&bin, "ADD", "args")
        .args("IP=not-an-address")
        .run(&good)
        .err();
    Call::new(&bin, "DEL", "args")
        .args("IP=not-an-address")
        .run(&good)
        .ok();
    let bad_rc = format!(
        r#"{{"cniVersion":"1.0.0","name":"db","type":"bridge","runtimeConfig":{{"ips":"x"}},
            "ipam":{{"type":"host-local","dataDir":"{}","ranges":[[{{"subnet":"10.99.3.0/24"}}]]}}}}"#,
        t.s()
    );
    Call::new(&bin, "DEL", "args").run(&bad_rc).ok();
    assert!(reservations(&dir).is_empty());

    // A configuration that names no store at all: nothing can have been allocated with it.
    let no_ipam = r#"{"cniVersion":"1.0.0","name":"db","type":"bridge"}"#;
    Call::new(&bin, "ADD", "x").run(no_ipam).err();
    Call::new(&bin, "DEL", "x").run(no_ipam).ok();
    // A dataDir that is a file, or under one.
    let file = t.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    for data_dir in [file.clone(), file.join("below")] {
        let c = conf(
            V,
            "db",
            &data_dir.display().to_string(),
            r#""ranges":[[{"subnet":"10.99.3.0/24"}]]"#,
        );
        Call::new(&bin, "ADD", "x").run(&c).err();
        Call::new(&bin, "DEL", "x").run(&c).ok();
    }
}

#[test]
fn after_the_last_del_the_store_holds_what_the_go_plugin_leaves() {
    let Some(go) = common::go() else { return };
    let rust = ours();
    let t = TempDir::new("leftovers");
    let ranges = r#""ranges":[[{"subnet":"10.99.4.0/24"}],[{"subnet":"2001:db8:4::/64"}]]"#;
    let mut listings = Vec::new();
    for (bin, name) in [(&go, "go"), (&rust, "rs")] {
        let c = conf(V, name, &t.s(), ranges);
        // Two pods come and go, one DEL is repeated, one is of a pod never added.
        Call::new(bin, "ADD", "a").run(&c).result();
        Call::new(bin, "ADD", "b").ifname("net1").run(&c).result();
        Call::new(bin, "DEL", "a").run(&c).ok();
        Call::new(bin, "DEL", "a").run(&c).ok();
        Call::new(bin, "ADD", "c").run(&c).result();
        Call::new(bin, "DEL", "b").ifname("net1").run(&c).ok();
        Call::new(bin, "DEL", "c").run(&c).ok();
        Call::new(bin, "DEL", "never-added").run(&c).ok();
        listings.push(listing(&t.path().join(name)));
    }
    assert_eq!(
        listings[1], listings[0],
        "ours (left) and the Go plugin's (right) after the same sequence"
    );
    let names: Vec<&str> = listings[1].iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["last_reserved_ip.0", "last_reserved_ip.1", "lock"]);
}
