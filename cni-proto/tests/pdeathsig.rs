//! A plugin run through `ProcessExec` (a delegated IPAM, or any plugin of a runtime) dies
//! with the process that started it: a parent SIGKILLed while its child blocks leaves no
//! child behind (issue 12, item 8).
//!
//! The parent is this test executable run again in the role [`parent_role`], which delegates
//! to a script that records its pid and then blocks. The test kills the parent and waits,
//! with a deadline, for the child's process to be gone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use cni_proto::exec::ProcessExec;
use cni_proto::{Command, Env};

const ROLE: &str = "CNI_PROTO_TEST_PDEATHSIG_DIR";

/// Runs only in the re-executed parent: delegates to the blocking child and never returns
/// while the child lives.
#[test]
fn parent_role() {
    let Some(dir) = std::env::var_os(ROLE) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let env = Env::new()
        .with("PATH", "/usr/bin:/bin")
        .with("PIDFILE", dir.join("child.pid").display().to_string());
    let _ = ProcessExec.exec_path(&dir.join("ipam-blocks"), Command::Add, b"{}", &env);
}

/// `(state, start time)` of a process from `/proc/<pid>/stat`, `None` once it is gone.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    Some((fields[0].chars().next()?, fields[19].parse().ok()?))
}

fn wait_until(deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::yield_now();
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

struct Cleanup(PathBuf, Option<u32>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.1 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_delegated_child_dies_with_its_killed_parent() {
    let dir = std::env::temp_dir().join(format!("cni-proto-pdeath-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cleanup = Cleanup(dir.clone(), None);
    let script = dir.join("ipam-blocks");
    std::fs::write(
        &script,
        "#!/bin/sh\necho $$ > \"$PIDFILE.tmp\" && mv \"$PIDFILE.tmp\" \"$PIDFILE\"\nexec sleep 600\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut parent = Process::new(std::env::current_exe().unwrap())
        .args(["parent_role", "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, &dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pidfile: &Path = &dir.join("child.pid");
    let deadline = Instant::now() + Duration::from_secs(60);
    let started = wait_until(deadline, || {
        pidfile.exists() || parent.try_wait().ok().flatten().is_some()
    });
    assert!(started && pidfile.exists(), "the child never started");
    let child: u32 = std::fs::read_to_string(pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    cleanup.1 = Some(child);
    let (_, started_at) = proc_stat(child).expect("the child runs");

    parent.kill().unwrap();
    parent.wait().unwrap();

    // Gone, a zombie, or (pid reused) another process.
    let died = wait_until(
        Instant::now() + Duration::from_secs(60),
        || match proc_stat(child) {
            None => true,
            Some((state, start)) => state == 'Z' || state == 'X' || start != started_at,
        },
    );
    assert!(died, "the delegated child outlived its killed parent");
    cleanup.1 = None;
}
