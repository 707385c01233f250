//! Throw-away network namespaces.
//!
//! A [`TempNetns`] is a named namespace (bind-mounted under `/run/netns`, so `ip netns exec`
//! and plugins given its path can use it) with a unique name, loopback up, deleted when the
//! guard is dropped, also while a test panics. Dropping it first kills every process still
//! running inside it.
//!
//! Namespaces left behind by a test process that was killed (so its `Drop`s never ran) are
//! swept the next time a test kit process creates one: their names carry the creator's pid.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Once;
use std::time::Duration;

use cni_linux::netlink::Handle;
use cni_linux::netns::{NetNs, RUN_DIR};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::process::{self, Output};
use crate::tempdir::unique_name;

/// Every name this kit creates starts with this.
pub const NAME_PREFIX: &str = "cnitk";

/// Default timeout of [`TempNetns::exec`].
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// A named network namespace that is deleted on drop. See the [module docs](self).
#[derive(Debug)]
pub struct TempNetns {
    ns: NetNs,
    name: String,
    path: PathBuf,
    keep: bool,
}

impl TempNetns {
    /// A new namespace named `cnitk-<hint>-<pid>-<counter>-<random>` with `lo` up.
    pub fn new(hint: &str) -> Result<Self> {
        let me = Self::sandbox(hint)?;
        let mut nl = Handle::new_in(&me.ns)?;
        let lo = nl.require_link("lo")?;
        nl.set_up(lo.index)?;
        Ok(me)
    }

    /// A new namespace as a runtime creates a pod sandbox: `lo` as the kernel makes it (down,
    /// no addresses), for plugins such as `loopback` whose job is to change that.
    pub fn sandbox(hint: &str) -> Result<Self> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(sweep_stale);
        let name = unique_name(&format!("{NAME_PREFIX}-{hint}"));
        let ns = NetNs::create_named(&name)?;
        let path = ns.path().to_path_buf();
        Ok(TempNetns {
            ns,
            name,
            path,
            keep: false,
        })
    }

    /// The namespace's name under `/run/netns` (for `ip netns exec NAME`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace file, `/run/netns/<name>`: what `CNI_NETNS` is set to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open namespace handle.
    pub fn netns(&self) -> &NetNs {
        &self.ns
    }

    /// Run `f` inside the namespace: the calling thread enters it and comes back (see
    /// [`NetNs::run`]).
    pub fn run<F, T>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        Ok(self.ns.run(f)?)
    }

    /// A netlink handle operating in this namespace.
    pub fn netlink(&self) -> Result<Handle> {
        Ok(Handle::new_in(&self.ns)?)
    }

    /// Run `cmd` inside the namespace to completion with a timeout of [`EXEC_TIMEOUT`].
    pub fn exec(&self, cmd: &mut Command) -> Result<Output> {
        process::run(cmd, b"", Some(&self.ns), EXEC_TIMEOUT)
    }

    /// Run `program args...` inside the namespace; an error unless it exits 0.
    pub fn exec_ok(&self, program: &str, args: &[&str]) -> Result<Output> {
        process::run_ok(program, args, Some(&self.ns), EXEC_TIMEOUT)
    }

    /// Start `cmd` inside the namespace and return it running. It is killed when this
    /// namespace is dropped if it has not exited by then.
    pub fn spawn(&self, cmd: &mut Command) -> Result<Child> {
        process::spawn(cmd, Some(&self.ns))
    }

    /// Set a sysctl inside the namespace.
    pub fn sysctl_set(&self, key: &str, value: &str) -> Result<()> {
        Ok(cni_linux::sysctl::set_in(&self.ns, key, value)?)
    }

    /// Read a sysctl inside the namespace.
    pub fn sysctl_get(&self, key: &str) -> Result<String> {
        Ok(cni_linux::sysctl::get_in(&self.ns, key)?)
    }

    /// Pids of the processes whose network namespace is this one.
    pub fn pids(&self) -> Vec<i32> {
        pids_in(self.ns.dev(), self.ns.inode())
    }

    /// Do not delete the namespace on drop (to inspect it after a failure).
    pub fn keep(mut self) -> String {
        self.keep = true;
        self.name.clone()
    }

    /// Delete now, reporting errors (dropping does the same, ignoring them).
    pub fn delete(mut self) -> Result<()> {
        self.keep = true;
        kill_all(&self.ns);
        NetNs::delete_at(&self.path).map_err(Error::from)
    }
}

impl Drop for TempNetns {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        kill_all(&self.ns);
        let _ = NetNs::delete_at(&self.path);
    }
}

/// Processes (other than ours) in the namespace with device `dev` and inode `ino`.
fn pids_in(dev: u64, ino: u64) -> Vec<i32> {
    let me = std::process::id();
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
        })
        .filter_map(|pid| i32::try_from(pid).ok())
        .collect()
}

fn kill_all(ns: &NetNs) {
    for pid in pids_in(ns.dev(), ns.inode()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Delete `/run/netns/cnitk-*` namespaces whose creating process no longer exists.
fn sweep_stale() {
    let Ok(rd) = fs::read_dir(RUN_DIR) else {
        return;
    };
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = creator_pid(&name)
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            if let Ok(ns) = NetNs::open(entry.path()) {
                kill_all(&ns);
            }
            let _ = NetNs::delete_at(entry.path());
        }
    }
}

/// The pid in `cnitk-<hint>-<pid>-<counter>-<random>`; the hint may contain dashes.
fn creator_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(NAME_PREFIX)?.strip_prefix('-')?;
    let parts: Vec<&str> = rest.rsplitn(4, '-').collect();
    // parts = [random, counter, pid, hint]
    if parts.len() != 4 || parts[0].len() != 8 || parts[1].parse::<u64>().is_err() {
        return None;
    }
    parts[2].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creator_pid_is_parsed_from_names() {
        assert_eq!(creator_pid("cnitk-node-1234-0-deadbeef"), Some(1234));
        assert_eq!(creator_pid("cnitk-pod-a-b-77-12-0011aabb"), Some(77));
        assert_eq!(creator_pid("cnitk-x-77-12-short"), None);
        assert_eq!(creator_pid("other-node-1234-0-deadbeef"), None);
        let name = unique_name(&format!("{NAME_PREFIX}-pod"));
        assert_eq!(creator_pid(&name), Some(std::process::id()));
    }
}
