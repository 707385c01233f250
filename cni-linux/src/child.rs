//! Helper processes that cannot outlive the plugin that started them.
//!
//! A plugin killed in the middle of ADD (a runtime's timeout, a crash) must not leave an
//! `iptables-restore` running: it would commit its rules after the runtime's DEL has already
//! looked for them, and they would leak. So every tool we start gets
//! `PR_SET_PDEATHSIG(SIGKILL)` before `execve(2)`, and checks that its parent is still the
//! process that forked it (a parent that died between `fork(2)` and `prctl(2)` would otherwise
//! go unnoticed). cni-proto does the same for the plugins it runs (it cannot use this crate).
//!
//! The signal is tied to the *thread* that forked: callers wait for the child on that thread.

#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the child started by `cmd` die (SIGKILL) with the calling thread's process, and exit
/// at once if that process is already gone when the child starts.
pub(crate) fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // Captured before fork: the child compares it with getppid(2).
    let parent = nix::unistd::getpid().as_raw();
    // SAFETY: the closure runs in the forked child before execve, where only
    // async-signal-safe calls are allowed. It calls prctl(2) and getppid(2) (plain system
    // calls, async-signal-safe), reads errno, and builds an `io::Error` from a raw OS error
    // code (no allocation). It takes no locks and touches no shared state.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                // Reparented: the parent died before the signal was armed.
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::die_with_parent;

    const ROLE: &str = "CNI_LINUX_TEST_CHILD_DIR";

    /// Runs only in the re-executed parent: starts a blocking child that records its pid, and
    /// waits for it (it never returns while the child lives).
    #[test]
    fn parent_role() {
        let Some(dir) = std::env::var_os(ROLE) else {
            return;
        };
        let pidfile = PathBuf::from(dir).join("child.pid");
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg("echo $$ > \"$1.tmp\" && mv \"$1.tmp\" \"$1\" && exec sleep 600")
            .arg("sh")
            .arg(&pidfile);
        let _ = die_with_parent(&mut cmd).stdin(Stdio::null()).status();
    }

    fn alive(pid: i32) -> bool {
        // A zombie is gone for our purpose: it runs no more code.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with(|c| c != 'Z')))
            .unwrap_or(false)
    }

    fn wait_until(deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
        while Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        cond()
    }

    #[test]
    fn a_tool_dies_with_its_killed_parent() {
        let dir = std::env::temp_dir().join(format!("cni-linux-child-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut parent = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child::tests::parent_role",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, &dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pidfile = dir.join("child.pid");
        let deadline = Instant::now() + Duration::from_secs(30);
        let started = wait_until(deadline, || pidfile.exists());
        let child: Option<i32> = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let _ = parent.kill();
        let _ = parent.wait();
        let gone =
            child.map(|pid| wait_until(Instant::now() + Duration::from_secs(30), || !alive(pid)));
        if let (Some(pid), Some(false)) = (child, gone) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            started && child.is_some(),
            "the parent never started its child"
        );
        assert_eq!(gone, Some(true), "the child outlived its killed parent");
    }
}
