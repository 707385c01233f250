//! An orphaned `host-local` leaves the store alone (issue 12 item 8): run as the child of a
//! process that dies while it waits for the store's lock, it reserves nothing once it gets
//! the lock. The test holds the lock itself (the `flock` every host-local takes) so that the
//! plugin is known to be waiting, kills the plugin's parent, then lets the lock go.
//!
//! This test binary makes itself a child subreaper, so the orphaned plugin is re-parented to
//! it and its exit status can be collected.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use cni_types::Version;
use common::{TempDir, conf, ours, reservations};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

/// `sh` starts host-local ADD in the background with the config from a file, prints its
/// process ID and waits for it: the shell is the plugin's parent, as `bridge` is for its IPAM.
fn start_under_shell(t: &TempDir, config: &str, id: &str) -> (Child, BufReader<ChildStdout>, i32) {
    let conf_path = t.path().join(format!("{id}.json"));
    std::fs::write(&conf_path, config).unwrap();
    let mut sh = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#""$0" < "$1" & echo $!; wait"#)
        .arg(ours())
        .arg(&conf_path)
        .env_clear()
        .env("CNI_COMMAND", "ADD")
        .env("CNI_CONTAINERID", id)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_NETNS", "/var/run/netns/none")
        .env("CNI_PATH", "/usr/lib/cni")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let mut out = BufReader::new(sh.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let pid: i32 = line.trim().parse().expect("the plugin's pid");
    (sh, out, pid)
}

/// Wait until `pid` is blocked on the flock of the file with inode `ino` (a waiter line in
/// /proc/locks: `N: -> FLOCK ADVISORY WRITE <pid> <maj>:<min>:<ino> ...`).
fn wait_blocked_on(pid: i32, ino: u64) {
    let (pid_s, ino_s) = (pid.to_string(), format!(":{ino}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let locks = std::fs::read_to_string("/proc/locks").unwrap();
        let blocked = locks.lines().any(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            t.get(1) == Some(&"->")
                && t.get(5) == Some(&pid_s.as_str())
                && t.get(6).is_some_and(|d| d.ends_with(&ino_s))
        });
        if blocked {
            return;
        }
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "host-local {pid} exited before it waited for the lock"
        );
        assert!(
            Instant::now() < deadline,
            "host-local {pid} never waited for the lock:\n{locks}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

struct Store {
    t: TempDir,
    config: String,
    lock: File,
}

impl Store {
    /// An empty store whose lock this test holds.
    fn held(tag: &str) -> Store {
        let t = TempDir::new(tag);
        let config = conf(
            Version::V1_0_0,
            "orphan",
            &t.s(),
            r#""ranges":[[{"subnet":"10.99.2.0/24"}]]"#,
        );
        std::fs::create_dir_all(t.path().join("orphan")).unwrap();
        let lock = File::create(t.path().join("orphan/lock")).unwrap();
        lock.lock().unwrap();
        Store { t, config, lock }
    }

    fn dir(&self) -> std::path::PathBuf {
        self.t.path().join("orphan")
    }

    fn ino(&self) -> u64 {
        self.lock.metadata().unwrap().ino()
    }
}

#[test]
fn an_orphaned_add_reserves_nothing() {
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let s = Store::held("orphan");
    let (mut sh, mut out, pid) = start_under_shell(&s.t, &s.config, "orphaned");
    wait_blocked_on(pid, s.ino());
    // The parent dies while the plugin waits; the plugin is re-parented (to this process).
    sh.kill().unwrap();
    sh.wait().unwrap();
    s.lock.unlock().unwrap();
    let status = waitpid(Pid::from_raw(pid), None).expect("the orphan is our child now");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(
        matches!(status, WaitStatus::Exited(_, code) if code != 0),
        "{status:?}: {rest}"
    );
    let e: cni_types::Error = serde_json::from_str(&rest).expect("an error");
    assert!(e.msg.contains("is gone"), "{e:?}");
    assert!(
        reservations(s.dir()).is_empty(),
        "the orphan reserved {:?}",
        reservations(s.dir())
    );
    assert!(!s.dir().join("last_reserved_ip.0").exists());
}

#[test]
fn an_add_whose_parent_lives_proceeds_after_the_wait() {
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let s = Store::held("parented");
    let (mut sh, mut out, pid) = start_under_shell(&s.t, &s.config, "parented");
    wait_blocked_on(pid, s.ino());
    s.lock.unlock().unwrap();
    assert!(sh.wait().unwrap().success());
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let r = cni_types::CniResult::from_slice(rest.as_bytes(), None).expect("a result");
    assert_eq!(r.ips[0].address.to_string(), "10.99.2.2/24");
    assert_eq!(reservations(s.dir()), ["10.99.2.2"]);
}
