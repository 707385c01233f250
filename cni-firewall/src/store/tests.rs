//! The record store against names planted in its directory, and identities that meet.

use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::sync::mpsc;
use std::time::Duration;

use super::*;

/// A fresh directory under the temp dir holding `data/net1` and a file `outside` that
/// planted symlinks point to; removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let mut r = [0u8; 8];
        fs::File::open("/dev/urandom")
            .unwrap()
            .read_exact(&mut r)
            .unwrap();
        let p = std::env::temp_dir().join(format!(
            "cni-firewall-store-{tag}-{}-{:x}",
            std::process::id(),
            u64::from_le_bytes(r)
        ));
        fs::create_dir_all(p.join("data/net1")).unwrap();
        fs::write(p.join("outside"), b"precious").unwrap();
        Scratch(p)
    }

    fn store(&self) -> Store {
        Store::new(&self.0.join("data"), "net1")
    }

    fn dir(&self) -> PathBuf {
        self.0.join("data/net1")
    }

    fn outside(&self) -> PathBuf {
        self.0.join("outside")
    }

    fn outside_unchanged(&self) {
        assert_eq!(fs::read(self.outside()).unwrap(), b"precious");
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn att(cid: &str, ifname: &str) -> Attachment {
    Attachment {
        container_id: cid.into(),
        ifname: ifname.into(),
    }
}

fn rec(cid: &str, ifname: &str, addr: &str) -> Record {
    Record {
        container_id: cid.into(),
        ifname: ifname.into(),
        addrs: vec![addr.parse().unwrap()],
        bridge: Some("cni0".into()),
        host_ifs: vec!["veth1".into()],
    }
}

fn ids(records: &[Record]) -> Vec<(String, String)> {
    records
        .iter()
        .map(|r| (r.container_id.clone(), r.ifname.clone()))
        .collect()
}

/// Runs `f` on another thread; a hang (an open or read that waits forever) fails the test
/// instead of blocking it.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the store blocked")
}

#[test]
fn attachments_whose_old_names_met_keep_two_records() {
    let s = Scratch::new("collide");
    let store = s.store();
    let one = rec("a-b", "c", "10.0.0.1");
    let two = rec("a", "b-c", "10.0.0.2");
    assert_ne!(
        record_name(&one.attachment()),
        record_name(&two.attachment())
    );
    store.save(&one).unwrap();
    store.save(&two).unwrap();
    assert_eq!(store.all().unwrap(), [two.clone(), one.clone()]);
    store.remove(&one.attachment()).unwrap();
    assert_eq!(store.all().unwrap(), [two]);
}

#[test]
fn planted_symlinks_are_never_followed() {
    let s = Scratch::new("symlink");
    let store = s.store();
    let r = rec("c1", "eth0", "10.0.0.1");
    let a = r.attachment();
    let plant = || {
        fs::create_dir_all(s.dir()).unwrap();
        // The record's name, the temporary name older versions used, the old record name.
        for name in [record_name(&a), ".c1-eth0.tmp".into(), "c1-eth0".into()] {
            let p = s.dir().join(name);
            let _ = fs::remove_file(&p);
            symlink(s.outside(), p).unwrap();
        }
    };
    plant();
    assert!(store.all().unwrap().is_empty());
    store.save(&r).unwrap();
    s.outside_unchanged();
    let file = s.dir().join(record_name(&a));
    assert!(fs::symlink_metadata(&file).unwrap().file_type().is_file());
    assert_eq!(store.all().unwrap(), std::slice::from_ref(&r));
    plant();
    store.remove(&a).unwrap();
    assert!(fs::symlink_metadata(&file).is_err());
    s.outside_unchanged();
    // No temporary file of ours is left.
    let mut left: Vec<_> = fs::read_dir(s.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, [".c1-eth0.tmp", "c1-eth0"]);
}

#[test]
fn a_symlinked_network_directory_is_never_followed() {
    let s = Scratch::new("dirlink");
    let elsewhere = s.0.join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::remove_dir(s.dir()).unwrap();
    symlink(&elsewhere, s.dir()).unwrap();
    let store = s.store();
    let r = rec("c1", "eth0", "10.0.0.1");
    assert!(store.save(&r).is_err());
    assert!(fs::read_dir(&elsewhere).unwrap().next().is_none());
    // A record placed there is not ours to read or remove.
    fs::write(
        elsewhere.join(record_name(&r.attachment())),
        serde_json::to_vec(&r).unwrap(),
    )
    .unwrap();
    assert!(store.all().unwrap().is_empty());
    store.remove(&r.attachment()).unwrap();
    assert!(elsewhere.join(record_name(&r.attachment())).exists());
}

#[test]
fn a_fifo_is_skipped_without_blocking() {
    let s = Scratch::new("fifo");
    let r = rec("c1", "eth0", "10.0.0.1");
    s.store().save(&r).unwrap();
    let fifo = s
        .dir()
        .join(record_name(&rec("c2", "eth0", "10.0.0.2").attachment()));
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let store = s.store();
    let all = bounded(move || store.all().map_err(|e| e.to_string()));
    assert_eq!(all.unwrap(), [r]);
    let store = s.store();
    bounded(move || store.remove(&att("c2", "eth0")).map_err(|e| e.to_string())).unwrap();
    assert!(fs::symlink_metadata(&fifo).is_err());
}

#[test]
fn a_record_past_the_limit_is_skipped() {
    let s = Scratch::new("big");
    let r = rec("c1", "eth0", "10.0.0.1");
    let file = s.dir().join(record_name(&r.attachment()));
    // A valid record, padded with spaces to `len` bytes.
    let padded = |len: u64| {
        let mut body = serde_json::to_vec(&r).unwrap();
        let close = body.pop().unwrap();
        body.resize(len as usize - 1, b' ');
        body.push(close);
        fs::write(&file, body).unwrap();
    };
    padded(READ_LIMIT + 1);
    assert!(s.store().all().unwrap().is_empty());
    padded(READ_LIMIT);
    assert_eq!(s.store().all().unwrap(), [r]);
}

#[test]
fn a_record_under_another_attachments_name_is_ignored() {
    let s = Scratch::new("identity");
    let mine = rec("c1", "eth0", "10.0.0.1");
    let other = rec("c2", "eth0", "10.0.0.2");
    fs::write(
        s.dir().join(record_name(&mine.attachment())),
        serde_json::to_vec(&other).unwrap(),
    )
    .unwrap();
    assert!(s.store().all().unwrap().is_empty());
}

#[test]
fn records_of_older_versions_are_read_and_removed_by_their_owner_only() {
    let s = Scratch::new("legacy");
    let one = rec("a-b", "c", "10.0.0.1");
    let two = rec("a", "b-c", "10.0.0.2");
    // An older version wrote `two` as `a-b-c`, a name `one` would have had too.
    fs::write(s.dir().join("a-b-c"), serde_json::to_vec(&two).unwrap()).unwrap();
    let store = s.store();
    assert_eq!(ids(&store.all().unwrap()), [("a".into(), "b-c".into())]);
    store.remove(&one.attachment()).unwrap();
    assert!(s.dir().join("a-b-c").exists());
    // Saved again by this version: one record, the current one.
    let newer = rec("a", "b-c", "10.0.0.3");
    store.save(&newer).unwrap();
    assert_eq!(store.all().unwrap(), [newer]);
    store.remove(&two.attachment()).unwrap();
    assert!(store.all().unwrap().is_empty());
    assert!(fs::read_dir(s.dir()).unwrap().next().is_none());
}

#[test]
fn names_that_cannot_be_a_directory_record_nothing() {
    let s = Scratch::new("badnet");
    for network in ["", ".", "..", "a/b"] {
        let store = Store::new(&s.0.join("data"), network);
        store.save(&rec("c1", "eth0", "10.0.0.1")).unwrap();
        assert!(store.all().unwrap().is_empty());
        store.remove(&att("c1", "eth0")).unwrap();
    }
    assert!(fs::read_dir(s.dir()).unwrap().next().is_none());
    s.outside_unchanged();
}
