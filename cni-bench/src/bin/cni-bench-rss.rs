//! `cni-bench-rss PROGRAM [ARGS...]`: run one program with this process's stdio and
//! environment and print its peak resident set on stderr as the last line,
//! `cni-bench-rss <KiB> <exit code>`.
//!
//! Why a separate, tiny program: a child started from a big process reports the parent's peak
//! RSS in `wait4` (the kernel carries the parent's memory high-water mark over the `vfork` and
//! `exec`), so measuring a plugin from the benchmark itself would report the benchmark. From
//! this launcher, whose own resident set is a few hundred KiB, the figure is the plugin's.
#![allow(unsafe_code)]

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: cni-bench-rss PROGRAM [ARGS...]");
        return ExitCode::from(2);
    };
    let child = match Command::new(&program).args(args).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cni-bench-rss: {e}");
            return ExitCode::from(2);
        }
    };
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return ExitCode::from(2);
    };
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid out-parameters; `pid` is our own child, reaped only here.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return ExitCode::from(2);
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128
    };
    eprintln!("cni-bench-rss {} {code}", ru.ru_maxrss);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
