//! Running a plugin: as a process found in `CNI_PATH`, or in-process through the skel.
//!
//! [`Exec`] is the seam both the delegate (bridge → IPAM) and the runtime (conflists) run
//! plugins through, so tests and in-process users can substitute it.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::Arc;

use cni_types::{Error, ErrorCode};

use crate::command::Command;
use crate::env::Env;
use crate::limit::{READ_LIMIT, read_capped};
use crate::skel::{self, Plugin};

/// Runs one plugin verb and returns its stdout, or the plugin's error.
///
/// The error is the spec's error (`code`, `msg`, `details`), what a plugin prints and a runtime
/// reads: it has no source chain, so a cause met on the way (a failed spawn, an unreadable
/// pipe) is written into its message, as libcni does.
pub trait Exec: Send + Sync {
    /// Run plugin `plugin_type` with `command`, the config `stdin` and the environment `env`
    /// (`CNI_COMMAND` is overridden by `command`; `CNI_PATH` in `env` is where to look).
    fn exec(
        &self,
        plugin_type: &str,
        command: Command,
        stdin: &[u8],
        env: &Env,
    ) -> Result<Vec<u8>, Error>;
}

/// Find a plugin binary by name in a list of directories, as the reference's `FindInPath`.
pub fn find_in_path(plugin: &str, paths: &[PathBuf]) -> Result<PathBuf, Error> {
    if plugin.is_empty() || plugin.contains('/') || plugin == "." || plugin == ".." {
        return Err(Error::internal(format!("invalid plugin name: {plugin}")));
    }
    if paths.is_empty() {
        return Err(Error::internal(format!(
            "no paths provided to find plugin {plugin:?}"
        )));
    }
    for dir in paths {
        let full = dir.join(plugin);
        if let Ok(m) = std::fs::metadata(&full)
            && m.is_file()
        {
            return Ok(full);
        }
    }
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    Err(Error::internal(format!(
        "failed to find plugin {plugin:?} in path [{}]",
        shown.join(" ")
    )))
}

/// Runs plugins as processes, as a runtime does. stderr of the plugin is passed through to
/// ours.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessExec;

impl ProcessExec {
    /// Run the binary at `path`.
    pub fn exec_path(
        &self,
        path: &Path,
        command: Command,
        stdin: &[u8],
        env: &Env,
    ) -> Result<Vec<u8>, Error> {
        let mut cmd = Process::new(path);
        cmd.env_clear()
            .envs(env.iter())
            .env("CNI_COMMAND", command.as_str())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        crate::child::die_with_parent(&mut cmd);
        // Retry "text file busy" (a binary being replaced), as libcni does.
        let mut attempts = 0;
        let mut child = loop {
            match cmd.spawn() {
                Ok(c) => break c,
                Err(e) if e.raw_os_error() == Some(libc_etxtbsy()) && attempts < 5 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => {
                    return Err(Error::internal(format!(
                        "failed to run plugin {}: {e}",
                        path.display()
                    )));
                }
            }
        };
        let (sin, sout) = (child.stdin.take(), child.stdout.take());
        // A config that fits into the pipe (nearly all of them) is written at once; only the
        // rest of a bigger one is written on a helper thread while stdout is read here, so a
        // plugin that prints before it has read all its input cannot deadlock us.
        let pending = match sin {
            Some(sin) => write_what_fits(sin, stdin),
            None => Ok(None),
        };
        let read_out = || {
            let out = sout.map_or(Ok(Vec::new()), |p| read_capped(p, READ_LIMIT));
            if out.is_err() {
                // Too much (or unreadable): the plugin may be blocked writing the rest.
                let _ = child.kill();
            }
            out
        };
        let (written, out) = match pending {
            Ok(Some((mut sin, at))) => std::thread::scope(|s| {
                let writer = s.spawn(move || match sin.write_all(&stdin[at..]) {
                    Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(e),
                    _ => Ok(()),
                });
                let out = read_out();
                (writer.join().unwrap_or(Ok(())), out)
            }),
            Ok(None) => (Ok(()), read_out()),
            Err(e) => (Err(e), read_out()),
        };
        let status = child
            .wait()
            .map_err(|e| Error::msg(ErrorCode::IoFailure, e.to_string()))?;
        let out = out.map_err(|e| {
            Error::msg(
                ErrorCode::IoFailure,
                format!("reading the output of plugin {}: {e}", path.display()),
            )
        })?;
        written.map_err(|e| Error::msg(ErrorCode::IoFailure, e.to_string()))?;
        if status.success() {
            return Ok(out);
        }
        Err(plugin_error(&out, &status.to_string()))
    }
}

/// Writes as much of `data` into the plugin's stdin as the pipe takes without blocking. All of
/// it: the pipe is closed (`Ok(None)`, the plugin sees the end of its input). Not all: the
/// pipe, back in blocking mode, and where the rest starts. A plugin that exits without reading
/// its input counts as all written (as the reference's runtime ignores `EPIPE`).
fn write_what_fits(
    mut sin: std::process::ChildStdin,
    data: &[u8],
) -> std::io::Result<Option<(std::process::ChildStdin, usize)>> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let set = |sin: &std::process::ChildStdin, on: bool| -> std::io::Result<()> {
        let flags = OFlag::from_bits_retain(fcntl(sin, FcntlArg::F_GETFL)?);
        let flags = if on {
            flags | OFlag::O_NONBLOCK
        } else {
            flags - OFlag::O_NONBLOCK
        };
        fcntl(sin, FcntlArg::F_SETFL(flags))?;
        Ok(())
    };
    set(&sin, true)?;
    let mut at = 0;
    while at < data.len() {
        match sin.write(&data[at..]) {
            Ok(0) => break,
            Ok(n) => at += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::BrokenPipe => return Ok(None),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                set(&sin, false)?;
                return Ok(Some((sin, at)));
            }
            Err(e) => return Err(e),
        }
    }
    if at < data.len() {
        set(&sin, false)?;
        return Ok(Some((sin, at)));
    }
    Ok(None)
}

const fn libc_etxtbsy() -> i32 {
    26
}

/// The error a failed plugin reported, as libcni's `pluginErr`.
fn plugin_error(stdout: &[u8], status: &str) -> Error {
    if stdout.iter().all(u8::is_ascii_whitespace) {
        return Error::internal(format!("netplugin failed with no error message: {status}"));
    }
    match serde_json::from_slice::<Error>(stdout) {
        Ok(e) => e,
        Err(perr) => Error::internal(format!(
            "netplugin failed but error parsing its diagnostic message {:?}: {perr}",
            String::from_utf8_lossy(stdout)
        )),
    }
}

impl Exec for ProcessExec {
    fn exec(
        &self,
        plugin_type: &str,
        command: Command,
        stdin: &[u8],
        env: &Env,
    ) -> Result<Vec<u8>, Error> {
        let path = find_in_path(plugin_type, &env.cni_path())?;
        self.exec_path(&path, command, stdin, env)
    }
}

/// Runs registered plugins in-process through [`skel::run`], with no process or shell, and
/// falls back to another [`Exec`] for types it does not know.
#[derive(Clone, Default)]
pub struct InProcessExec {
    plugins: BTreeMap<String, Arc<dyn Plugin + Send + Sync>>,
    fallback: Option<Arc<dyn Exec>>,
}

impl std::fmt::Debug for InProcessExec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessExec")
            .field("plugins", &self.plugins.keys().collect::<Vec<_>>())
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl InProcessExec {
    /// No plugins, no fallback.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a plugin under its type name.
    pub fn with_plugin(
        mut self,
        plugin_type: impl Into<String>,
        plugin: Arc<dyn Plugin + Send + Sync>,
    ) -> Self {
        self.plugins.insert(plugin_type.into(), plugin);
        self
    }

    /// Use `exec` for plugin types not registered here.
    pub fn with_fallback(mut self, exec: Arc<dyn Exec>) -> Self {
        self.fallback = Some(exec);
        self
    }
}

impl Exec for InProcessExec {
    fn exec(
        &self,
        plugin_type: &str,
        command: Command,
        stdin: &[u8],
        env: &Env,
    ) -> Result<Vec<u8>, Error> {
        let Some(plugin) = self.plugins.get(plugin_type) else {
            return match &self.fallback {
                Some(f) => f.exec(plugin_type, command, stdin, env),
                None => Err(Error::internal(format!(
                    "failed to find plugin {plugin_type:?} in process"
                ))),
            };
        };
        let mut env = env.clone();
        env.set("CNI_COMMAND", command.as_str());
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = skel::run(plugin.as_ref(), &env, &mut &stdin[..], &mut out, &mut err);
        if code == 0 {
            Ok(out)
        } else {
            Err(plugin_error(&out, &format!("exit status {code}")))
        }
    }
}
