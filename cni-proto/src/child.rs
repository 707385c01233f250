//! Plugin processes that cannot outlive the process that started them.
//!
//! A plugin killed in the middle of ADD (say bridge, by a runtime's timeout) must not leave
//! its IPAM child running: that child could reserve an address after the runtime's DEL has
//! already released everything. So every plugin we execute gets `PR_SET_PDEATHSIG(SIGKILL)`
//! before `execve(2)`, and then checks that its parent is still the process that forked it:
//! a parent that died between `fork(2)` and `prctl(2)` would otherwise go unnoticed.
//!
//! The signal is tied to the *thread* that forked; [`crate::exec::ProcessExec`] waits for
//! the child on that same thread, so the thread outlives the child.

#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the child started by `cmd` die (SIGKILL) with its parent, and exit at once if the
/// parent is already gone when the child starts.
pub(crate) fn die_with_parent(cmd: &mut Command) {
    // Captured before fork: the child compares it with getppid(2).
    let parent = nix::unistd::getpid().as_raw();
    // SAFETY: the closure runs in the forked child before execve, where only
    // async-signal-safe calls are allowed. It calls prctl(2) and getppid(2) (both plain
    // system calls, async-signal-safe), reads errno, and builds an `io::Error` from a raw
    // OS error code (no allocation). It takes no locks and touches no shared state.
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
        });
    }
}
