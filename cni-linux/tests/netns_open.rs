//! `NetNs::open` checks a path before it opens it: a FIFO, a device node or an ordinary file
//! given as `CNI_NETNS` is refused without ever being opened (inotify reports every open of a
//! watched file, so "never opened" is observed, not assumed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use cni_linux::netns::{NetNs, NetnsError};
use common::require_root;
use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};

/// A fresh directory under the target's temporary directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("netns-open-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Watches `path` for opens.
fn watch_opens(path: &Path) -> Inotify {
    let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).unwrap();
    ino.add_watch(path, AddWatchFlags::IN_OPEN).unwrap();
    ino
}

/// Opens of the watched file so far (events are queued by open(2) itself, before it returns).
fn opens(ino: &Inotify) -> usize {
    match ino.read_events() {
        Ok(events) => events
            .iter()
            .filter(|e| e.mask.contains(AddWatchFlags::IN_OPEN))
            .count(),
        Err(Errno::EAGAIN) => 0,
        Err(e) => panic!("read inotify events: {e}"),
    }
}

/// `NetNs::open(path)` on a helper thread, waited for with a bound. On timeout the FIFO at
/// `path` is opened for writing, which releases a reader blocked in open(2), and the test fails.
fn open_bounded(path: &Path) -> Result<NetNs, NetnsError> {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(NetNs::open(&p));
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(r) => {
            worker.join().unwrap();
            r
        }
        Err(_) => {
            let _writer = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(path);
            worker.join().unwrap();
            panic!("NetNs::open({path:?}) blocked");
        }
    }
}

fn assert_refused(err: &NetnsError, path: &Path) {
    assert!(matches!(err, NetnsError::NotNetns { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("unknown FS magic on {path:?}: ")),
        "{msg}"
    );
}

#[test]
fn a_fifo_is_refused_without_being_opened() {
    let dir = Dir::new("fifo");
    let fifo = dir.0.join("netns");
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
    let ino = watch_opens(&fifo);
    let err = open_bounded(&fifo).unwrap_err();
    assert_refused(&err, &fifo);
    assert_eq!(opens(&ino), 0, "the FIFO was opened");
}

#[test]
fn a_regular_file_is_refused_without_being_opened() {
    let dir = Dir::new("file");
    let file = dir.0.join("netns");
    fs::write(&file, b"").unwrap();
    let ino = watch_opens(&file);
    let err = NetNs::open(&file).unwrap_err();
    assert_refused(&err, &file);
    assert_eq!(opens(&ino), 0, "the file was opened");
}

#[test]
fn a_character_device_is_refused_without_being_opened() {
    if !require_root() {
        return;
    }
    // Our own node for /dev/null's device (1:3): nobody else opens it while we watch.
    let dir = Dir::new("chr");
    let dev = dir.0.join("netns");
    mknod(
        &dev,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o600),
        makedev(1, 3),
    )
    .unwrap();
    let ino = watch_opens(&dev);
    let err = NetNs::open(&dev).unwrap_err();
    assert_refused(&err, &dev);
    assert_eq!(opens(&ino), 0, "the device was opened");
    // The watch does see an open, so the zero above means something.
    drop(fs::File::open(&dev).unwrap());
    assert_eq!(opens(&ino), 1);
}

#[test]
fn a_network_namespace_still_opens() {
    let ns = NetNs::open("/proc/self/ns/net").unwrap();
    assert!(ns.is_same(&NetNs::current().unwrap()));
}
