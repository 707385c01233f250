//! Network namespaces: owned handles, running code inside one, and named (bind-mounted)
//! namespaces like `ip netns add`.
//!
//! A [`NetNs`] owns an open file descriptor of a network namespace (for example
//! `/run/netns/<name>`, `/proc/<pid>/ns/net` or a runtime's `CNI_NETNS`). Holding the descriptor
//! keeps the namespace alive.
//!
//! Code that must act *inside* a namespace (sysctls, opening sockets) goes through
//! [`NetNs::run`]: the calling thread enters the namespace with `setns(2)`, runs the closure
//! and goes back (also when the closure panics), so no thread of the process is ever left in
//! the wrong namespace. Netlink work does not even need that:
//! [`crate::netlink::Handle::new_in`] opens a socket inside the namespace once and then uses
//! it from any thread.
//!
//! ```no_run
//! use cni_linux::netns::NetNs;
//!
//! # fn main() -> Result<(), cni_linux::netns::NetnsError> {
//! let ns = NetNs::create_named("demo")?;
//! let inode = ns.run(|| std::fs::metadata("/proc/thread-self/ns/net").map(|m| {
//!     use std::os::unix::fs::MetadataExt;
//!     m.ino()
//! }))?;
//! assert_eq!(inode.ok(), Some(ns.inode()));
//! drop(ns);
//! NetNs::delete_named("demo")?;
//! # Ok(())
//! # }
//! ```

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::statfs::{self, NSFS_MAGIC, PROC_SUPER_MAGIC};

/// Directory holding named namespaces, as used by `ip netns`.
pub const RUN_DIR: &str = "/run/netns";

/// The calling thread's own network namespace.
const THREAD_SELF_NET: &str = "/proc/thread-self/ns/net";

/// Errors of namespace operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetnsError {
    /// The path does not exist (`ENOENT`). DEL treats a gone namespace as success.
    #[error("network namespace {path:?} does not exist")]
    NotFound {
        /// The path that was looked up.
        path: PathBuf,
    },
    /// The path exists but is not a namespace file (wrong filesystem magic). The message is
    /// the reference plugins' (`unknown FS magic on "/path": 1021994`).
    #[error("unknown FS magic on {path:?}: {fs_type:x}")]
    NotNetns {
        /// The path that was checked.
        path: PathBuf,
        /// The filesystem magic number found.
        fs_type: i64,
    },
    /// The path is a namespace file of another kind (`mnt`, `pid`, ...).
    #[error("{path:?} is a {kind} namespace, not a network namespace")]
    WrongKind {
        /// The path that was checked.
        path: PathBuf,
        /// The kind the kernel reports (`mnt`, `uts`, ...).
        kind: String,
    },
    /// A named namespace (or its mount point file) already exists.
    #[error("network namespace {path:?} already exists")]
    AlreadyExists {
        /// The path that exists.
        path: PathBuf,
    },
    /// A namespace name is not usable as a file name under [`RUN_DIR`].
    #[error("invalid network namespace name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Opening, creating, inspecting or removing a file failed.
    #[error("{op} {path:?}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A system call (setns, unshare, mount, umount) failed.
    #[error("{op} {path:?}")]
    Sys {
        /// Which call, in words.
        op: &'static str,
        /// The namespace path involved.
        path: PathBuf,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// The dedicated namespace thread could not be spawned.
    #[error("spawn network namespace thread")]
    Spawn(#[source] io::Error),
}

impl NetnsError {
    /// True when the namespace (path) does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            NetnsError::NotFound { .. } => true,
            NetnsError::Io { source, .. } => source.kind() == io::ErrorKind::NotFound,
            NetnsError::Sys { source, .. } => *source == Errno::ENOENT,
            _ => false,
        }
    }

    fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::NotFound {
            NetnsError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            NetnsError::Io {
                op,
                path: path.to_path_buf(),
                source,
            }
        }
    }

    fn sys(op: &'static str, path: &Path, source: Errno) -> Self {
        NetnsError::Sys {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// An open network namespace: an owned file descriptor plus the path it was opened from.
///
/// Dropping the handle closes the descriptor; a named namespace stays alive through its bind
/// mount until [`NetNs::delete_named`] / [`NetNs::delete_at`].
#[derive(Debug)]
pub struct NetNs {
    file: File,
    path: PathBuf,
    dev: u64,
    ino: u64,
}

/// The kind of namespace an nsfs file is (`net`, `mnt`, ...), as `/proc/self/fd` names it
/// (`net:[4026531840]`); `None` when that cannot be read.
fn ns_kind(file: &File) -> Option<String> {
    use std::os::fd::AsRawFd;
    let link = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
    let (kind, rest) = link.to_str()?.split_once(":[")?;
    rest.ends_with(']').then(|| kind.to_string())
}

/// Puts the calling thread back into the namespace it left (see [`NetNs::run`]) when dropped,
/// on the normal path and while unwinding alike.
struct GoBack(File);

impl Drop for GoBack {
    fn drop(&mut self) {
        if let Err(e) = nix::sched::setns(self.0.as_fd(), CloneFlags::CLONE_NEWNET) {
            // Nothing this thread did next could be trusted to act on the right host.
            eprintln!("cni-linux: cannot return to the original network namespace: {e}");
            std::process::abort();
        }
    }
}

impl NetNs {
    /// Opens the network namespace file at `path` (e.g. `/run/netns/x`, `/proc/1/ns/net`).
    ///
    /// This is the one way a namespace path given by a caller (`CNI_NETNS`) is opened:
    /// 1. `statfs(2)` on the path, before anything is opened: it must live on nsfs (or procfs,
    ///    for `/proc/<pid>/ns/net` on old kernels), as the reference's `ns.GetNS` checks. A
    ///    FIFO, a device node or an ordinary file is refused here without being opened, so a
    ///    FIFO cannot block the plugin and a device's `open` handler never runs.
    /// 2. `open(2)` with `O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC`, so even a file swapped
    ///    in between the two steps cannot block or become a controlling terminal.
    /// 3. `fstatfs(2)` on the descriptor: it must be an nsfs inode (this also rejects
    ///    ordinary files under `/proc`), and a network namespace, not another kind.
    ///
    /// Fails with [`NetnsError::NotFound`] if the path does not exist, with
    /// [`NetnsError::NotNetns`] if the path or the opened file is not a namespace inode, and
    /// with [`NetnsError::WrongKind`] for a namespace of another kind (`/proc/<pid>/ns/mnt`).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, NetnsError> {
        let path = path.as_ref();
        let not_netns = |fs_type: statfs::FsType| NetnsError::NotNetns {
            path: path.to_path_buf(),
            fs_type: fs_type.0,
        };
        let fs = match statfs::statfs(path) {
            Ok(fs) => fs,
            Err(Errno::ENOENT) => {
                return Err(NetnsError::NotFound {
                    path: path.to_path_buf(),
                });
            }
            Err(e) => return Err(NetnsError::sys("statfs", path, e)),
        };
        let fs_type = fs.filesystem_type();
        if fs_type != NSFS_MAGIC && fs_type != PROC_SUPER_MAGIC {
            return Err(not_netns(fs_type));
        }
        let file = OpenOptions::new()
            .read(true)
            // std adds O_CLOEXEC itself.
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| NetnsError::io("open", path, e))?;
        let fs = statfs::fstatfs(&file).map_err(|e| NetnsError::sys("statfs", path, e))?;
        let fs_type = fs.filesystem_type();
        if fs_type != NSFS_MAGIC {
            return Err(not_netns(fs_type));
        }
        // Every kind of namespace lives on nsfs; a mount namespace given as CNI_NETNS would
        // only be refused by the kernel once it is used, in the middle of an ADD.
        if let Some(kind) = ns_kind(&file)
            && kind != "net"
        {
            return Err(NetnsError::WrongKind {
                path: path.to_path_buf(),
                kind,
            });
        }
        Self::from_file(file, path)
    }

    fn from_file(file: File, path: &Path) -> Result<Self, NetnsError> {
        let meta = file
            .metadata()
            .map_err(|e| NetnsError::io("stat", path, e))?;
        Ok(NetNs {
            file,
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// Opens the calling thread's current network namespace (`/proc/thread-self/ns/net`).
    pub fn current() -> Result<Self, NetnsError> {
        Self::open(THREAD_SELF_NET)
    }

    /// The path this handle was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The namespace inode number (identity together with [`NetNs::dev`]).
    pub fn inode(&self) -> u64 {
        self.ino
    }

    /// The device number of the nsfs filesystem holding the namespace inode.
    pub fn dev(&self) -> u64 {
        self.dev
    }

    /// True if both handles refer to the same namespace (same device and inode).
    pub fn is_same(&self, other: &NetNs) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }

    /// Duplicates the handle (a new descriptor for the same namespace).
    pub fn try_clone(&self) -> Result<Self, NetnsError> {
        let file = self
            .file
            .try_clone()
            .map_err(|e| NetnsError::io("duplicate descriptor of", &self.path, e))?;
        Ok(NetNs {
            file,
            path: self.path.clone(),
            dev: self.dev,
            ino: self.ino,
        })
    }

    /// Runs `f` inside this namespace on the calling thread and returns its value.
    ///
    /// The thread enters the namespace with `setns(2)`, runs `f`, and goes back to the
    /// namespace it was in, also when `f` panics (the way back is taken while unwinding). Only
    /// the network namespace of this one thread changes: other threads are not affected, and
    /// the mount namespace stays, so `/proc/sys/net` and sockets opened in `f` belong to this
    /// namespace. A thread already in this namespace runs `f` without any `setns`.
    ///
    /// Earlier versions ran `f` on a freshly spawned thread. On a small virtual machine a new
    /// thread often waits milliseconds for an idle vCPU to wake up, more than a short-lived
    /// plugin's whole work; entering on the calling thread costs two system calls.
    ///
    /// # Panics
    /// A panic inside `f` propagates to the caller after the thread is back in its namespace.
    /// If the thread cannot go back (`setns(2)` to a namespace it holds open failing, which the
    /// kernel only does when out of memory), the process aborts: code running afterwards in
    /// the wrong namespace could change the wrong host.
    pub fn run<F, T>(&self, f: F) -> Result<T, NetnsError>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let here = Path::new(THREAD_SELF_NET);
        let home = File::open(here).map_err(|e| NetnsError::io("open", here, e))?;
        let meta = home
            .metadata()
            .map_err(|e| NetnsError::io("stat", here, e))?;
        if meta.dev() == self.dev && meta.ino() == self.ino {
            return Ok(f());
        }
        nix::sched::setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| NetnsError::sys("setns into", &self.path, e))?;
        let _back = GoBack(home);
        Ok(f())
    }

    /// The path of the named namespace `name`: `/run/netns/<name>`, after validating `name`.
    pub fn named_path(name: &str) -> Result<PathBuf, NetnsError> {
        validate_name(name)?;
        Ok(Path::new(RUN_DIR).join(name))
    }

    /// Creates a named namespace `/run/netns/<name>` like `ip netns add <name>`.
    ///
    /// `/run/netns` is created if needed and made a shared mount point (bind-mounted onto
    /// itself first when it is not a mount point yet), so the namespace mount propagates to
    /// mount namespaces created later, as iproute2 does. Fails with
    /// [`NetnsError::AlreadyExists`] if the name is taken. The new namespace has only a
    /// loopback device, which is down.
    pub fn create_named(name: &str) -> Result<Self, NetnsError> {
        let path = Self::named_path(name)?;
        prepare_run_dir()?;
        Self::create_at(path)
    }

    /// Creates a new network namespace and bind-mounts it onto `path` (which must not exist;
    /// its parent directory is created). Mount propagation of the parent is left as it is.
    ///
    /// On failure nothing is left behind.
    pub fn create_at(path: impl AsRef<Path>) -> Result<Self, NetnsError> {
        let path = path.as_ref();
        if let Some(parent) = path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(|e| NetnsError::io("create directory", parent, e))?;
        }
        // The mount point: an empty file, exclusive so two creators cannot share a name.
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o000)
            .open(path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => NetnsError::AlreadyExists {
                    path: path.to_path_buf(),
                },
                _ => NetnsError::io("create mount point", path, e),
            })?;

        let made = std::thread::scope(|scope| {
            let handle = std::thread::Builder::new()
                .name("cni-netns-new".into())
                .spawn_scoped(scope, || -> Result<(), NetnsError> {
                    // This thread alone moves to a fresh namespace and dies afterwards.
                    nix::sched::unshare(CloneFlags::CLONE_NEWNET)
                        .map_err(|e| NetnsError::sys("unshare network namespace for", path, e))?;
                    nix::mount::mount(
                        Some(THREAD_SELF_NET),
                        path,
                        Some("none"),
                        MsFlags::MS_BIND,
                        None::<&str>,
                    )
                    .map_err(|e| NetnsError::sys("bind-mount network namespace onto", path, e))
                })
                .map_err(NetnsError::Spawn)?;
            match handle.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        });
        let opened = made.and_then(|()| Self::open(path));
        if opened.is_err() {
            let _ = Self::delete_at(path);
        }
        opened
    }

    /// Deletes the named namespace `/run/netns/<name>` like `ip netns delete`: lazy unmount
    /// and removal of the file. A missing namespace is not an error.
    pub fn delete_named(name: &str) -> Result<(), NetnsError> {
        let path = Self::named_path(name)?;
        Self::delete_at(path)
    }

    /// Unmounts (`MNT_DETACH`) and removes a namespace mount point at `path`.
    /// A missing path or a path that is not mounted is not an error. The namespace itself lives
    /// on while any process, thread, socket or [`NetNs`] still refers to it.
    pub fn delete_at(path: impl AsRef<Path>) -> Result<(), NetnsError> {
        let path = path.as_ref();
        match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(NetnsError::sys("unmount", path, e)),
        }
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(NetnsError::io("remove", path, e)),
        }
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// True if `path` is a namespace file: it lives on nsfs (or procfs, for `/proc/<pid>/ns/net`
/// on old kernels). This is the reference plugins' `ns.GetNS` check; it does not tell a
/// network namespace from another namespace type.
///
/// A missing path is [`NetnsError::NotFound`].
pub fn is_netns(path: impl AsRef<Path>) -> Result<bool, NetnsError> {
    let path = path.as_ref();
    match statfs::statfs(path) {
        Ok(fs) => {
            let t = fs.filesystem_type();
            Ok(t == NSFS_MAGIC || t == PROC_SUPER_MAGIC)
        }
        Err(Errno::ENOENT) => Err(NetnsError::NotFound {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(NetnsError::sys("statfs", path, e)),
    }
}

fn validate_name(name: &str) -> Result<(), NetnsError> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name == "." || name == ".." {
        Some("is a relative directory name")
    } else if name.contains('/') {
        Some("contains '/'")
    } else if name.contains('\0') {
        Some("contains a NUL byte")
    } else if name.len() > 255 {
        Some("longer than 255 bytes")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(NetnsError::InvalidName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Makes sure `/run/netns` exists and is a shared mount point (once per process).
fn prepare_run_dir() -> Result<(), NetnsError> {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if *done {
        return Ok(());
    }
    let dir = Path::new(RUN_DIR);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| NetnsError::io("create directory", dir, e))?;
    let make_shared = || {
        nix::mount::mount(
            Some("none"),
            dir,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match make_shared() {
        Ok(()) => {}
        Err(Errno::EINVAL) => {
            // Not a mount point yet: bind it onto itself, then make it shared.
            nix::mount::mount(
                Some(dir),
                dir,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| NetnsError::sys("bind-mount onto itself", dir, e))?;
            make_shared().map_err(|e| NetnsError::sys("make shared mount", dir, e))?;
        }
        Err(e) => return Err(NetnsError::sys("make shared mount", dir, e)),
    }
    *done = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        for bad in ["", ".", "..", "a/b", "/x", "a\0b"] {
            let err = NetNs::named_path(bad).unwrap_err();
            assert!(matches!(err, NetnsError::InvalidName { .. }), "{bad:?}");
        }
        assert_eq!(
            NetNs::named_path("pod-1.x").unwrap(),
            Path::new("/run/netns/pod-1.x")
        );
        assert!(NetNs::named_path(&"a".repeat(256)).is_err());
    }

    #[test]
    fn open_missing_is_not_found() {
        let err = NetNs::open("/nonexistent/netns/x").unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
        let err = is_netns("/nonexistent/netns/x").unwrap_err();
        assert!(err.is_not_found());
    }

    #[test]
    fn regular_file_is_not_a_netns() {
        // /etc/passwd is on a regular filesystem, never nsfs/procfs.
        let err = NetNs::open("/etc/passwd").unwrap_err();
        assert!(matches!(err, NetnsError::NotNetns { .. }), "{err:?}");
        assert!(!is_netns("/etc/passwd").unwrap());
    }

    #[test]
    fn proc_files_are_not_opened_as_netns() {
        let err = NetNs::open("/proc/self/status").unwrap_err();
        assert!(matches!(err, NetnsError::NotNetns { .. }), "{err:?}");
    }

    #[test]
    fn other_kinds_of_namespace_are_not_opened_as_netns() {
        for kind in ["mnt", "uts", "ipc"] {
            let err = NetNs::open(format!("/proc/self/ns/{kind}")).unwrap_err();
            assert!(
                matches!(&err, NetnsError::WrongKind { kind: k, .. } if k == kind),
                "{err:?}"
            );
        }
        assert!(NetNs::open("/proc/self/ns/net").is_ok());
    }

    #[test]
    fn current_namespace_identity() {
        let a = NetNs::current().unwrap();
        let b = NetNs::open("/proc/self/ns/net").unwrap();
        let c = a.try_clone().unwrap();
        assert!(a.is_same(&c));
        // The main test thread may not be the process leader's thread, but tests never
        // change namespaces of their own threads, so both are the same namespace.
        assert!(a.is_same(&b));
        assert_ne!(a.inode(), 0);
    }
}
