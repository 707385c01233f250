//! Running programs with a timeout, optionally inside a network namespace.
//!
//! A process spawned from a thread that entered a namespace inherits that namespace, so
//! [`run`] spawns from inside [`NetNs::run`] and then waits from the calling thread.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use cni_linux::netns::NetNs;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// What a finished program produced.
#[derive(Clone, Debug)]
pub struct Output {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it wrote on stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote on stderr.
    pub stderr: Vec<u8>,
}

impl Output {
    /// stdout as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// `Ok(self)` if the program exited 0, else [`Error::Command`].
    pub fn success(self, program: &str) -> Result<Output> {
        if self.status.success() {
            return Ok(self);
        }
        let mut text = self.stderr_text();
        if text.trim().is_empty() {
            text = self.stdout_text();
        }
        Err(Error::Command {
            program: program.to_string(),
            status: self.status.to_string(),
            stderr: text.trim().to_string(),
        })
    }
}

/// A printable form of a command line.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Spawn `cmd` (inside `netns` if given) with piped stdio.
pub fn spawn(cmd: &mut Command, netns: Option<&NetNs>) -> Result<Child> {
    let program = describe(cmd);
    let res = match netns {
        Some(ns) => ns.run(|| cmd.spawn())?,
        None => cmd.spawn(),
    };
    res.map_err(|source| Error::Spawn { program, source })
}

/// Run `cmd` to completion with `stdin` as its input, inside `netns` if given, and capture
/// stdout and stderr. After `timeout` the program is killed and [`Error::Timeout`] returned.
pub fn run(
    cmd: &mut Command,
    stdin: &[u8],
    netns: Option<&NetNs>,
    timeout: Duration,
) -> Result<Output> {
    let program = describe(cmd);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(cmd, netns)?;
    let deadline = Instant::now() + timeout;

    let input = stdin.to_vec();
    let writer = child.stdin.take().map(|mut pipe| {
        thread::spawn(move || {
            // A program that does not read its input is not an error here.
            let _ = pipe.write_all(&input);
        })
    });
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        if let Some(mut pipe) = pipe {
            thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = pipe.read_to_end(&mut buf);
                let _ = tx.send(buf);
            });
        } else {
            let _ = tx.send(Vec::new());
        }
        rx
    };
    let out_rx = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err_rx = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );

    // Wait for the exit without reaping (WNOWAIT), so the pid stays ours to kill.
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let (exit_tx, exit_rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT);
        let _ = exit_tx.send(());
    });
    let timed_out = exit_rx
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .is_err();
    if timed_out {
        let _ = kill(pid, Signal::SIGKILL);
    }
    let status = child
        .wait()
        .map_err(Error::io(format!("wait for {program}")))?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    if timed_out {
        return Err(Error::Timeout {
            what: program,
            after: timeout,
        });
    }
    // The program has exited; a child it left behind could still hold the pipes open.
    let grace = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100));
    let stdout = out_rx.recv_timeout(grace).map_err(|_| Error::Timeout {
        what: format!("stdout of {program} to close"),
        after: timeout,
    })?;
    let stderr = err_rx.recv_timeout(grace).map_err(|_| Error::Timeout {
        what: format!("stderr of {program} to close"),
        after: timeout,
    })?;
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Run `program args...` (inside `netns` if given) with a timeout; error unless it exits 0.
pub fn run_ok(
    program: &str,
    args: &[&str],
    netns: Option<&NetNs>,
    timeout: Duration,
) -> Result<Output> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let desc = describe(&cmd);
    run(&mut cmd, b"", netns, timeout)?.success(&desc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_status() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "cat; echo err >&2; exit 3"]);
        let out = run(&mut cmd, b"hello", None, Duration::from_secs(10)).unwrap();
        assert_eq!(out.stdout, b"hello");
        assert_eq!(out.stderr_text(), "err\n");
        assert_eq!(out.status.code(), Some(3));
        let err = out.success("sh").unwrap_err();
        assert!(err.to_string().contains("err"), "{err}");
    }

    #[test]
    fn kills_on_timeout() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let err = run(&mut cmd, b"", None, Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let err = run_ok("/nonexistent/prog", &[], None, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, Error::Spawn { .. }), "{err:?}");
    }
}
