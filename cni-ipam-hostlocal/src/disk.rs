//! The disk store, byte-compatible with the reference plugin's `backend/disk`.
//!
//! Layout of `<dataDir>/<network>/` (directory mode 0755):
//! - `<ip>`: one file per reserved address, named by the address's text (`10.1.2.3`,
//!   `2001:db8::2`), holding `containerID\r\nifname`. Created exclusively with mode 0600, fully
//!   written before it appears under its name (an anonymous `O_TMPFILE` linked into place; a
//!   temporary file with an unpredictable name and `link(2)` where that is unsupported), so no
//!   reader and no crash ever sees a half-written reservation. Files holding only a container ID (written by
//!   host-local before interface names were recorded) are matched on DEL, CHECK and GC.
//! - `last_reserved_ip.<set index>`: the last address handed out from that range set, which
//!   drives round-robin allocation; replaced by writing a temporary file and swapping it in.
//! - `lock`: an exclusive `flock(2)` is held on it around every operation; it is the lock the
//!   reference takes through go-filemutex (created mode 0750 as there), so both plugins can run
//!   on one store at the same time.
//! - `.cni-rs-host-local.index`: our owner index (see below). The reference ignores it.
//!
//! Only files whose name is an address in canonical text form are reservations; the lock,
//! `last_reserved_ip.*`, the index and temporary files are never released or counted. The
//! temporary files a writer killed mid-way leaves (`.cni-rs-host-local.tmp.<random>`, and the
//! fixed names older versions used) are removed under the lock by the next operation that reads
//! the whole directory, which any operation after such a crash does (the crash left the
//! directory changed, see below).
//!
//! # Symlinks and other planted files
//!
//! Every file of the store is opened, created, replaced and removed relative to the store
//! directory's descriptor (`openat(2)` and friends), never by a path: new files are created
//! with `O_EXCL|O_NOFOLLOW` under unpredictable temporary names (from `/dev/urandom`) and moved
//! into place with `rename(2)`/`link(2)`, which replace or refuse a symlink but never follow
//! it; existing files are opened with `O_NOFOLLOW|O_NONBLOCK`. A symlink planted in the store
//! at the lock is refused with an error; one at the cursor or the index is replaced by a file;
//! one at a reservation name makes that address taken. Nothing is ever written through one.
//! The network's directory in `dataDir` is opened without following a symlink either (ADD
//! fails, DEL finds nothing); `dataDir` itself is followed, as the administrator configured it.
//!
//! # The index goes with the last reservation
//!
//! When a session leaves the store without any reservation file, it removes the index as well,
//! so a store whose containers are all gone holds only what the reference plugin leaves
//! (`lock`, `last_reserved_ip.*`).
//!
//! # The owner index
//!
//! The reference reads every reservation file on each ADD to refuse a duplicate
//! `(container, interface)`, so ADD slows down linearly with the number of reservations. We
//! keep the same check but answer it from an index of holder → addresses that is trusted only
//! while the directory is exactly as our last writer left it (see the `index` module): after
//! the reference plugin, an administrator or a crash touched the directory, or after a reboot,
//! the next operation rebuilds it from the files. Positive answers are always confirmed by
//! reading the reservation file.

mod index;

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use cni_types::Attachment;
use cni_types::validate::is_valid_name;

use crate::range::canonical;
use crate::store::{Holder, Reservation, Session, Store, StoreError, sort_by_name};
use index::{Index, Stamp};

/// The lock file's name.
pub const LOCK_NAME: &str = "lock";
/// Prefix of the round-robin bookkeeping files.
pub const LAST_RESERVED_PREFIX: &str = "last_reserved_ip.";
/// Prefix of our temporary files (then 32 random hex digits).
const TMP_PREFIX: &str = ".cni-rs-host-local.tmp.";
/// The fixed temporary names older versions used; removed when found.
const OLD_RESERVE_TMP: &str = ".cni-rs-host-local.reserve.tmp";

fn io_err(op: &'static str, path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        op,
        path: path.display().to_string(),
        source,
    }
}

/// The name of `ip`'s reservation file.
pub fn file_name(ip: IpAddr) -> String {
    canonical(ip).to_string()
}

/// The address a directory entry reserves, if it is a reservation file: its name must be an
/// address in canonical text form (so `lock`, `last_reserved_ip.*` and our own files never
/// are).
pub fn parse_file_name(name: &str) -> Option<IpAddr> {
    let ip: IpAddr = name.parse().ok()?;
    (canonical(ip) == ip && ip.to_string() == name).then_some(ip)
}

/// Whether `name` is a temporary file of ours (or of an older version, or the
/// `last_reserved_ip.<n>.tmp` older versions wrote a round-robin cursor through): any found
/// under the lock is a leftover of a killed writer.
fn is_leftover_tmp(name: &str) -> bool {
    let cursor_tmp = name
        .strip_prefix(LAST_RESERVED_PREFIX)
        .and_then(|rest| rest.strip_suffix(".tmp"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let ours = name
        .strip_prefix(TMP_PREFIX)
        .is_some_and(|r| r.len() == 32 && r.bytes().all(|b| b.is_ascii_hexdigit()));
    cursor_tmp || ours || name == OLD_RESERVE_TMP || name == index::OLD_INDEX_TMP
}

/// An unpredictable temporary name in the store: [`TMP_PREFIX`] and 128 random bits.
fn tmp_name() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().fold(String::from(TMP_PREFIX), |mut s, b| {
        s.push_str(&format!("{b:02x}"));
        s
    }))
}

/// Create a new file `name` in `dir` for reading and writing: exclusively, never through a
/// symlink.
fn create_new(dir: &File, name: &str, mode: u32) -> std::io::Result<File> {
    use nix::fcntl::OFlag;
    let fd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(mode),
    )?;
    Ok(File::from(fd))
}

/// Create a temporary file with an unpredictable name in `dir` (see [`create_new`]).
pub(crate) fn create_tmp(dir: &File, mode: u32) -> std::io::Result<(String, File)> {
    let mut last = None;
    for _ in 0..4 {
        let name = tmp_name()?;
        match create_new(dir, &name, mode) {
            Ok(f) => return Ok((name, f)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::from(ErrorKind::AlreadyExists)))
}

/// Open an existing file of the store, never through a symlink (`ELOOP`), never blocking on
/// a FIFO.
pub(crate) fn open_existing(dir: &File, name: &str, write: bool) -> std::io::Result<File> {
    use nix::fcntl::OFlag;
    let access = if write {
        OFlag::O_RDWR
    } else {
        OFlag::O_RDONLY
    };
    let fd = nix::fcntl::openat(
        dir,
        name,
        access | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// Remove `name` from `dir` (a symlink is removed itself, as `unlink(2)` does).
pub(crate) fn unlink(dir: &File, name: &str) -> std::io::Result<()> {
    Ok(nix::unistd::unlinkat(
        dir,
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    )?)
}

/// Read a small file of the store completely: opened relative to the store directory, never
/// through a symlink, and without the `stat` and end-of-file `read` a general-purpose read
/// costs (reservation files are a few dozen bytes; the full scan reads thousands of them).
fn read_small(dir: &File, name: &str) -> std::io::Result<Vec<u8>> {
    let fd = open_existing(dir, name, false)?;
    let mut f = fd;
    let mut buf = vec![0u8; 512];
    let mut len = 0;
    loop {
        let n = f.read(&mut buf[len..])?;
        len += n;
        if n == 0 || len < buf.len() {
            break;
        }
        buf.resize(buf.len() * 2, 0);
    }
    buf.truncate(len);
    Ok(buf)
}

/// The disk store of one network: `<data_dir>/<network>/`.
#[derive(Clone, Debug)]
pub struct DiskStore {
    root: PathBuf,
    network: String,
    dir: PathBuf,
    use_index: bool,
    parent: Option<nix::unistd::Pid>,
}

impl DiskStore {
    /// The store of `network` under `data_dir`. The network name is validated first (the
    /// reference's rule: `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`), so it can never name a path outside
    /// `data_dir`.
    pub fn new(data_dir: impl AsRef<Path>, network: &str) -> Result<DiskStore, StoreError> {
        if !is_valid_name(network) {
            return Err(StoreError::InvalidNetworkName(network.to_string()));
        }
        Ok(DiskStore {
            root: data_dir.as_ref().to_path_buf(),
            network: network.to_string(),
            dir: data_dir.as_ref().join(network),
            use_index: true,
            parent: None,
        })
    }

    /// Disable (or re-enable) the owner index: every lookup then reads all reservation files,
    /// as the reference does. For comparisons and as an escape hatch.
    pub fn with_index(mut self, enabled: bool) -> Self {
        self.use_index = enabled;
        self
    }

    /// Refuse every session once this process's parent is no longer `parent` (it died and
    /// the process was re-parented): checked before the store is opened and again after its
    /// lock is taken, so a plugin whose caller died while it waited for the lock (an IPAM
    /// child of a killed `bridge`, which the runtime's DEL may already have cleaned up after)
    /// neither reserves nor releases anything. [`StoreError::ParentGone`] then.
    pub fn with_parent(mut self, parent: nix::unistd::Pid) -> Self {
        self.parent = Some(parent);
        self
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Open the store directory (creating it and `dataDir` when `create`): `dataDir` as
    /// configured, the network's directory in it without following a symlink there. `None`
    /// when it does not exist and is not to be created (nothing was ever stored where there is
    /// no directory, or where ADD refuses to open one).
    fn open_dir(&self, create: bool) -> Result<Option<File>, StoreError> {
        use nix::errno::Errno;
        use nix::fcntl::OFlag;
        let root = &self.root;
        let open_root = || {
            OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_DIRECTORY)
                .open(root)
        };
        let root_file = match open_root() {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound && create => {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(root)
                    .map_err(|e| io_err("mkdir", root, e))?;
                open_root().map_err(|e| io_err("open", root, e))?
            }
            Err(e)
                if !create
                    && matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(io_err("open", root, e)),
        };
        let open_store = || {
            nix::fcntl::openat(
                &root_file,
                self.network.as_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
        };
        let dir = &self.dir;
        match open_store() {
            Ok(fd) => Ok(Some(File::from(fd))),
            Err(Errno::ENOENT) if create => {
                match nix::sys::stat::mkdirat(
                    &root_file,
                    self.network.as_str(),
                    nix::sys::stat::Mode::from_bits_truncate(0o755),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(io_err("mkdir", dir, e.into())),
                }
                let fd = open_store().map_err(|e| io_err("open", dir, e.into()))?;
                Ok(Some(File::from(fd)))
            }
            Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) if !create => Ok(None),
            Err(e) => Err(io_err("open", dir, e.into())),
        }
    }

    fn check_parent(&self) -> Result<(), StoreError> {
        match self.parent {
            Some(was) if nix::unistd::getppid() != was => {
                Err(StoreError::ParentGone { was: was.as_raw() })
            }
            _ => Ok(()),
        }
    }
}

impl Store for DiskStore {
    type Session<'a> = DiskSession;

    fn session(&self, create: bool) -> Result<Option<DiskSession>, StoreError> {
        self.check_parent()?;
        let dir = &self.dir;
        let Some(dir_file) = self.open_dir(create)? else {
            return Ok(None);
        };
        let lock = open_lock(&dir_file, dir)?;
        // Waiting for the lock can take long: whoever started us may have died meanwhile.
        self.check_parent()?;
        Ok(Some(DiskSession {
            dir: dir.clone(),
            _lock: lock,
            dir_file,
            index: if self.use_index {
                IndexState::Unchecked
            } else {
                IndexState::Off
            },
            modified: false,
            released: false,
            tmp: None,
            boot: None,
        }))
    }
}

/// Open (creating it) and lock the store's `lock` file. A symlink or anything but a regular
/// file there is refused: the lock is never created or opened through a link.
fn open_lock(dir_file: &File, dir: &Path) -> Result<File, StoreError> {
    use nix::fcntl::OFlag;
    let lock_path = dir.join(LOCK_NAME);
    let fd = nix::fcntl::openat(
        dir_file,
        LOCK_NAME,
        OFlag::O_RDONLY
            | OFlag::O_CREAT
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o750),
    )
    .map_err(|e| io_err("open", &lock_path, e.into()))?;
    let lock = File::from(fd);
    let meta = lock.metadata().map_err(|e| io_err("stat", &lock_path, e))?;
    if !meta.is_file() {
        let e = std::io::Error::new(ErrorKind::InvalidInput, "not a regular file");
        return Err(io_err("open", &lock_path, e));
    }
    lock.lock().map_err(|e| io_err("lock", &lock_path, e))?;
    Ok(lock)
}

#[derive(Debug)]
enum IndexState {
    /// Not looked at yet in this session.
    Unchecked,
    /// Trusted, and kept in step with this session's changes.
    Valid(Index),
    /// Not trusted; left alone (it stays untrusted, since the directory changed).
    Stale,
    /// Not used.
    Off,
}

/// A locked disk store. Dropping it seals the index (when this session kept it exact) and
/// releases the lock.
#[derive(Debug)]
pub struct DiskSession {
    dir: PathBuf,
    _lock: File,
    dir_file: File,
    index: IndexState,
    /// Whether this session changed the directory's entries.
    modified: bool,
    /// Whether this session removed a reservation file.
    released: bool,
    /// An anonymous file already holding `content`, ready to be linked under a name.
    tmp: Option<(String, File)>,
    /// This boot's ID, read once.
    boot: Option<Option<[u8; 16]>>,
}

impl DiskSession {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn boot_id(&mut self) -> Option<[u8; 16]> {
        *self.boot.get_or_insert_with(index::boot_id)
    }

    fn current_stamp(&mut self) -> Option<Stamp> {
        let boot = self.boot_id()?;
        let meta = self.dir_file.metadata().ok()?;
        Some(Stamp::of(&meta, boot))
    }

    /// Decide, before this session changes anything, whether the index can be trusted.
    fn check_index(&mut self) {
        if let IndexState::Unchecked = self.index {
            self.index = match self.current_stamp() {
                Some(stamp) => match Index::open_valid(&self.dir_file, &stamp) {
                    Some(idx) if !self.modified => IndexState::Valid(idx),
                    _ => IndexState::Stale,
                },
                None => IndexState::Stale,
            };
        }
    }

    /// Read every reservation file (the source of truth) and rebuild the index from them.
    fn scan(&mut self) -> Result<Vec<Reservation>, StoreError> {
        let mut out = Vec::new();
        let mut unreadable = false;
        let mut leftovers = Vec::new();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io_err("readdir", &self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_err("readdir", &self.dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if is_leftover_tmp(name) {
                leftovers.push(name.to_string());
                continue;
            }
            let Some(ip) = parse_file_name(name) else {
                continue;
            };
            // Only regular files are reservations: a planted symlink, FIFO or device node is
            // never opened.
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            match read_small(&self.dir_file, name) {
                Ok(bytes) => out.push(Reservation {
                    ip,
                    holder: Holder::parse(&String::from_utf8_lossy(&bytes)),
                }),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                // As the reference, an unreadable file is skipped; the index is then not
                // rebuilt, so the next operation tries again.
                Err(_) => unreadable = true,
            }
        }
        sort_by_name(&mut out);
        if !unreadable && !matches!(self.index, IndexState::Off) {
            let entries: Vec<(u64, IpAddr)> =
                out.iter().map(|r| (holder_hash(&r.holder), r.ip)).collect();
            // A failure to write the cache only costs speed.
            self.index = match Index::create(&self.dir_file, &entries) {
                Ok(idx) => IndexState::Valid(idx),
                Err(_) => IndexState::Stale,
            };
            self.modified = true;
            self.remove_leftovers(&leftovers);
        }
        Ok(out)
    }

    /// Remove temporary files a crashed writer may have left (`names`: those the scan found).
    /// Temporary files are only written under the lock, so any found under it is a leftover.
    fn remove_leftovers(&self, names: &[String]) {
        for name in names {
            let _ = unlink(&self.dir_file, name);
        }
    }

    /// The holder of `ip`, read from its file; `None` when it is not reserved.
    fn read_holder(&self, ip: IpAddr) -> Result<Option<Holder>, StoreError> {
        let name = file_name(ip);
        match read_small(&self.dir_file, &name) {
            Ok(b) => Ok(Some(Holder::parse(&String::from_utf8_lossy(&b)))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &self.path(&name), e)),
        }
    }

    /// Create `name` holding `content`, atomically and exclusively. `Ok(false)` if it exists
    /// (a symlink there counts as existing: `link(2)` never follows it).
    fn create_exclusive(&mut self, name: &str, content: &str) -> Result<bool, StoreError> {
        if !matches!(&self.tmp, Some((c, _)) if c == content) {
            self.tmp = None;
            if let Ok(fd) = nix::fcntl::openat(
                &self.dir_file,
                ".",
                nix::fcntl::OFlag::O_TMPFILE
                    | nix::fcntl::OFlag::O_WRONLY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::from_bits_truncate(0o600),
            ) {
                let mut f = File::from(fd);
                if f.write_all(content.as_bytes()).is_ok() {
                    self.tmp = Some((content.to_string(), f));
                }
            }
        }
        if let Some((_, f)) = &self.tmp {
            let src = format!("/proc/self/fd/{}", f.as_raw_fd());
            match nix::unistd::linkat(
                nix::fcntl::AT_FDCWD,
                src.as_str(),
                &self.dir_file,
                name,
                nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
            ) {
                Ok(()) => {
                    self.tmp = None;
                    self.modified = true;
                    return Ok(true);
                }
                Err(nix::errno::Errno::EEXIST) => return Ok(false),
                // No /proc, or linking anonymous files is not allowed: fall through.
                Err(_) => self.tmp = None,
            }
        }
        // Fallback: a new temporary file, hard-linked into place.
        let (tmp, mut f) =
            create_tmp(&self.dir_file, 0o600).map_err(|e| io_err("create", &self.dir, e))?;
        self.modified = true;
        let written = f.write_all(content.as_bytes());
        drop(f);
        let linked = match written {
            Err(e) => Err(io_err("write", &self.path(&tmp), e)),
            Ok(()) => match nix::unistd::linkat(
                &self.dir_file,
                tmp.as_str(),
                &self.dir_file,
                name,
                nix::fcntl::AtFlags::empty(),
            ) {
                Ok(()) => Ok(true),
                Err(nix::errno::Errno::EEXIST) => Ok(false),
                Err(e) => Err(io_err("link", &self.path(name), e.into())),
            },
        };
        let _ = unlink(&self.dir_file, &tmp);
        linked
    }

    /// Replace `name` with `content`: a new temporary file, then an exchange or a rename, so
    /// a symlink at `name` is replaced, never followed.
    fn replace(&mut self, name: &str, content: &str) -> Result<(), StoreError> {
        let (tmp, mut f) =
            create_tmp(&self.dir_file, 0o644).map_err(|e| io_err("create", &self.dir, e))?;
        self.modified = true;
        let written = f.write_all(content.as_bytes());
        drop(f);
        if let Err(e) = written {
            let _ = unlink(&self.dir_file, &tmp);
            return Err(io_err("write", &self.path(&tmp), e));
        }
        // Swap the new file in, then remove the old one: readers see the old or the new
        // content, never part of it, as with a rename. A rename over an existing file makes
        // ext4 write the new file's data out first (`auto_da_alloc`), a quarter of a
        // millisecond of every ADD; `last_reserved_ip` is only a hint of where round robin
        // resumes and needs no such flush. Only a regular file is exchanged (what the
        // exchange leaves under the temporary name is then removed); the first write, a
        // symlink, or a filesystem without exchange take the rename.
        let regular = nix::sys::stat::fstatat(
            &self.dir_file,
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .is_ok_and(|st| {
            nix::sys::stat::SFlag::from_bits_truncate(st.st_mode) & nix::sys::stat::SFlag::S_IFMT
                == nix::sys::stat::SFlag::S_IFREG
        });
        if regular
            && nix::fcntl::renameat2(
                &self.dir_file,
                tmp.as_str(),
                &self.dir_file,
                name,
                nix::fcntl::RenameFlags::RENAME_EXCHANGE,
            )
            .is_ok()
        {
            // Should this fail, the next scan removes the leftover.
            let _ = unlink(&self.dir_file, &tmp);
            return Ok(());
        }
        nix::fcntl::renameat(&self.dir_file, tmp.as_str(), &self.dir_file, name).map_err(|e| {
            let _ = unlink(&self.dir_file, &tmp);
            io_err("rename", &self.path(name), e.into())
        })
    }

    /// Make room in the index for one more entry (rewriting it larger if needed).
    fn index_room(&mut self) {
        let IndexState::Valid(idx) = &self.index else {
            return;
        };
        if idx.has_room() {
            return;
        }
        self.index = match idx
            .entries()
            .and_then(|e| Index::create(&self.dir_file, &e))
        {
            Ok(new) => {
                self.modified = true;
                IndexState::Valid(new)
            }
            Err(_) => IndexState::Stale,
        };
    }

    /// Seal the index with the directory's new state: set the directory's mtime to a value no
    /// later change can produce, then record it.
    fn seal(&mut self) {
        if !matches!(self.index, IndexState::Valid(_)) {
            return;
        }
        let Some(boot) = self.boot_id() else { return };
        let IndexState::Valid(idx) = &mut self.index else {
            return;
        };
        let Some(stamp_time) = SystemTime::now().checked_sub(Duration::from_secs(1)) else {
            return;
        };
        let times = std::fs::FileTimes::new().set_modified(stamp_time);
        if self.dir_file.set_times(times).is_err() {
            return;
        }
        if let Ok(meta) = self.dir_file.metadata() {
            let _ = idx.seal(Stamp::of(&meta, boot));
        }
    }
}

fn holder_hash(h: &Holder) -> u64 {
    match h {
        Holder::Attachment(a) => index::hash(&Holder::content(a)),
        Holder::Legacy(id) => index::hash(id),
    }
}

impl Session for DiskSession {
    fn last_reserved(&mut self, set: usize) -> Result<Option<IpAddr>, StoreError> {
        let name = format!("{LAST_RESERVED_PREFIX}{set}");
        match read_small(&self.dir_file, &name) {
            Ok(b) => Ok(String::from_utf8_lossy(&b)
                .trim()
                .parse::<IpAddr>()
                .ok()
                .map(canonical)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &self.path(&name), e)),
        }
    }

    fn reserve(&mut self, ip: IpAddr, owner: &Attachment, set: usize) -> Result<bool, StoreError> {
        self.check_index();
        let content = Holder::content(owner);
        let name = file_name(ip);
        if !self.create_exclusive(&name, &content)? {
            return Ok(false);
        }
        // A reservation whose cursor cannot be written is given back: a failed ADD leaves
        // nothing behind.
        if let Err(e) = self.replace(&format!("{LAST_RESERVED_PREFIX}{set}"), &name) {
            let _ = unlink(&self.dir_file, &name);
            return Err(e);
        }
        self.index_room();
        if let IndexState::Valid(idx) = &mut self.index
            && idx.insert(index::hash(&content), canonical(ip)).is_err()
        {
            self.index = IndexState::Stale;
        }
        Ok(true)
    }

    fn find(&mut self, owner: &Attachment) -> Result<Vec<Reservation>, StoreError> {
        self.check_index();
        let candidates = match &self.index {
            IndexState::Valid(idx) => {
                let mut ips = idx
                    .lookup(index::hash(&Holder::content(owner)))
                    .and_then(|mut a| {
                        a.extend(idx.lookup(index::hash(owner.container_id.trim()))?);
                        Ok(a)
                    });
                if let Ok(v) = &mut ips {
                    v.sort();
                    v.dedup();
                }
                ips.ok()
            }
            _ => None,
        };
        let Some(candidates) = candidates else {
            let mut all = self.scan()?;
            all.retain(|r| r.holder.matches(owner));
            return Ok(all);
        };
        let mut out = Vec::new();
        for ip in candidates {
            if let Some(holder) = self.read_holder(ip)?
                && holder.matches(owner)
            {
                out.push(Reservation { ip, holder });
            }
        }
        sort_by_name(&mut out);
        Ok(out)
    }

    fn release(&mut self, ip: IpAddr) -> Result<bool, StoreError> {
        self.check_index();
        let Some(holder) = self.read_holder(ip)? else {
            return Ok(false);
        };
        let name = file_name(ip);
        match unlink(&self.dir_file, &name) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err("remove", &self.path(&name), e)),
        }
        self.modified = true;
        self.released = true;
        if let IndexState::Valid(idx) = &mut self.index
            && idx.remove(holder_hash(&holder), canonical(ip)).is_err()
        {
            self.index = IndexState::Stale;
        }
        Ok(true)
    }

    fn reservations(&mut self) -> Result<Vec<Reservation>, StoreError> {
        self.check_index();
        self.scan()
    }

    fn addresses(&mut self) -> Result<Vec<IpAddr>, StoreError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io_err("readdir", &self.dir, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err("readdir", &self.dir, e))?;
            if let Some(ip) = entry.file_name().to_str().and_then(parse_file_name)
                && !entry.file_type().is_ok_and(|t| t.is_dir())
            {
                out.push(ip);
            }
        }
        Ok(out)
    }
}

impl DiskSession {
    /// Whether the store holds no reservation file: from the index when it is exact, else,
    /// after this session released one, from the directory. `false` when unknown.
    fn holds_nothing(&self) -> bool {
        match &self.index {
            IndexState::Valid(idx) => idx.is_empty(),
            _ if self.released => {
                let Ok(entries) = std::fs::read_dir(&self.dir) else {
                    return false;
                };
                let mut any = false;
                for entry in entries {
                    let Ok(entry) = entry else { return false };
                    if entry
                        .file_name()
                        .to_str()
                        .and_then(parse_file_name)
                        .is_some()
                    {
                        any = true;
                        break;
                    }
                }
                !any
            }
            _ => false,
        }
    }
}

impl Drop for DiskSession {
    /// Still under the lock (`_lock` is closed after this): a store left without any
    /// reservation loses its index, so nothing of ours outlives the last container (the
    /// reference leaves `lock` and `last_reserved_ip.*`, and so do we); otherwise the index is
    /// sealed with the directory's new state.
    fn drop(&mut self) {
        if self.modified && self.holds_nothing() {
            self.index = IndexState::Stale;
            let _ = unlink(&self.dir_file, index::INDEX_NAME);
        } else if self.modified {
            self.seal();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocator::Allocator;
    use crate::range::RangeSet;
    use cni_types::capabilities::IpRange;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static N: AtomicUsize = AtomicUsize::new(0);

    struct TempDir(PathBuf);
    impl TempDir {
        fn new() -> TempDir {
            let p = std::env::temp_dir().join(format!(
                "hl-disk-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn att(id: &str, ifname: &str) -> Attachment {
        Attachment {
            container_id: id.into(),
            ifname: ifname.into(),
        }
    }

    fn set(subnet: &str) -> RangeSet {
        RangeSet::new(&[IpRange {
            subnet: subnet.parse().unwrap(),
            range_start: None,
            range_end: None,
            gateway: None,
        }])
        .unwrap()
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn last_reserved_ip_is_replaced_whole_each_time() {
        let t = TempDir::new();
        let a = Allocator::new(DiskStore::new(&t.0, "rr").unwrap());
        let sets = [set("10.1.3.0/24")];
        let dir = t.0.join("rr");
        // The first write creates the file; later ones swap a new one in (shorter and longer
        // contents alike) and leave no temporary file behind.
        for (i, want) in ["10.1.3.2", "10.1.3.3"].iter().enumerate() {
            a.allocate(&sets, &[], &att(&format!("c{i}"), "eth0"))
                .unwrap();
            assert_eq!(
                std::fs::read_to_string(dir.join("last_reserved_ip.0")).unwrap(),
                *want
            );
            assert!(!dir.join("last_reserved_ip.0.tmp").exists());
        }
        std::fs::write(dir.join("last_reserved_ip.0"), "10.1.3.99").unwrap();
        let got = a.allocate(&sets, &[], &att("c9", "eth0")).unwrap();
        assert_eq!(got[0].address.to_string(), "10.1.3.100/24");
        assert_eq!(
            std::fs::read_to_string(dir.join("last_reserved_ip.0")).unwrap(),
            "10.1.3.100"
        );
        assert_eq!(mode(&dir.join("last_reserved_ip.0")), 0o644);
        assert!(!dir.join("last_reserved_ip.0.tmp").exists());
    }

    #[test]
    fn layout_is_the_reference_one() {
        let t = TempDir::new();
        let store = DiskStore::new(&t.0, "mynet").unwrap();
        let a = Allocator::new(store.clone());
        let sets = [set("10.1.2.0/24"), set("2001:db8:1::/64")];
        let got = a.allocate(&sets, &[], &att("dummy", "eth0")).unwrap();
        assert_eq!(got[0].address.to_string(), "10.1.2.2/24");
        assert_eq!(got[1].address.to_string(), "2001:db8:1::2/64");
        let dir = t.0.join("mynet");
        assert_eq!(
            std::fs::read(dir.join("10.1.2.2")).unwrap(),
            b"dummy\r\neth0"
        );
        assert_eq!(
            std::fs::read(dir.join("2001:db8:1::2")).unwrap(),
            b"dummy\r\neth0"
        );
        assert_eq!(
            std::fs::read(dir.join("last_reserved_ip.0")).unwrap(),
            b"10.1.2.2"
        );
        assert_eq!(
            std::fs::read(dir.join("last_reserved_ip.1")).unwrap(),
            b"2001:db8:1::2"
        );
        assert_eq!(
            mode(&dir.join("10.1.2.2")) & 0o077,
            0,
            "reservations are 0600"
        );
        assert_eq!(mode(&dir.join("10.1.2.2")) & 0o600, 0o600);
        assert_eq!(mode(&dir) & 0o700, 0o700);
        assert_eq!(
            mode(&dir.join(LOCK_NAME)) & 0o022,
            0,
            "lock is 0750 & umask"
        );
        assert!(
            !std::fs::read_dir(&dir).unwrap().any(|e| e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("tmp")),
            "no temporary file is left"
        );
        assert!(!dir.join("last_reserved_ip.0.tmp").exists());
        a.release(&att("dummy", "eth0")).unwrap();
        assert!(!dir.join("10.1.2.2").exists());
        assert!(!dir.join("2001:db8:1::2").exists());
        assert!(dir.join("last_reserved_ip.0").exists());
        assert!(dir.join(LOCK_NAME).exists());
    }

    #[test]
    fn legacy_and_whitespace_files_are_matched() {
        let t = TempDir::new();
        let a = Allocator::new(DiskStore::new(&t.0, "n").unwrap());
        let sets = [set("10.1.2.0/24")];
        a.allocate(&sets, &[], &att("dummy", "eth0")).unwrap();
        let dir = t.0.join("n");
        // Rewrite as an old version would have written it.
        std::fs::write(dir.join("10.1.2.2"), "dummy").unwrap();
        std::fs::write(dir.join("10.1.2.50"), "  spaced\r\neth0\n ").unwrap();
        assert!(
            a.check(&att("dummy", "eth9")).is_ok(),
            "legacy matches any ifname"
        );
        assert!(a.check(&att("spaced", "eth0")).is_ok());
        assert_eq!(a.release(&att("dummy", "eth0")).unwrap(), [ip("10.1.2.2")]);
        assert_eq!(
            a.release(&att("spaced", "eth0")).unwrap(),
            [ip("10.1.2.50")]
        );
        assert!(a.release(&att("unknown", "eth0")).unwrap().is_empty());
    }

    #[test]
    fn dels_and_checks_on_a_missing_network_create_nothing() {
        let t = TempDir::new();
        let a = Allocator::new(DiskStore::new(&t.0, "never").unwrap());
        assert!(a.release(&att("x", "eth0")).unwrap().is_empty());
        assert!(a.check(&att("x", "eth0")).is_err());
        assert!(a.gc(&[]).unwrap().is_empty());
        assert!(a.status(&[set("10.0.0.0/24")]).is_ok());
        assert!(!t.0.join("never").exists());
    }

    #[test]
    fn temporary_files_of_a_killed_writer_are_removed() {
        let t = TempDir::new();
        let a = Allocator::new(DiskStore::new(&t.0, "n").unwrap());
        let sets = [set("10.0.0.0/24")];
        a.allocate(&sets, &[], &att("live", "eth0")).unwrap();
        let dir = t.0.join("n");
        // What a writer killed between writing and renaming leaves (the directory changed,
        // so the index is not trusted and the next lookup reads the directory).
        let leftovers = [
            "last_reserved_ip.0.tmp",
            OLD_RESERVE_TMP,
            index::OLD_INDEX_TMP,
            ".cni-rs-host-local.tmp.0123456789abcdef0123456789abcdef",
        ];
        for tmp in leftovers {
            std::fs::write(dir.join(tmp), "10.0.0.9").unwrap();
        }
        std::fs::write(dir.join("last_reserved_ip.x.tmp"), "not ours").unwrap();
        assert!(a.release(&att("gone", "eth0")).unwrap().is_empty());
        for tmp in leftovers {
            assert!(!dir.join(tmp).exists(), "{tmp} left");
        }
        assert!(
            dir.join("last_reserved_ip.x.tmp").exists(),
            "only our names"
        );
        assert!(dir.join("last_reserved_ip.0").exists());
        a.check(&att("live", "eth0")).unwrap();
        assert!(is_leftover_tmp("last_reserved_ip.12.tmp"));
        assert!(!is_leftover_tmp("last_reserved_ip.0"));
        assert!(!is_leftover_tmp("last_reserved_ip..tmp"));
        assert!(!is_leftover_tmp(".cni-rs-host-local.tmp.0123"));
        assert!(!is_leftover_tmp(".cni-rs-host-local.index"));
        let name = tmp_name().unwrap();
        assert!(is_leftover_tmp(&name), "{name}");
        assert_ne!(name, tmp_name().unwrap());
    }

    #[test]
    fn the_index_goes_with_the_last_reservation() {
        let t = TempDir::new();
        let a = Allocator::new(DiskStore::new(&t.0, "n").unwrap());
        let sets = [set("10.0.0.0/24"), set("2001:db8::/64")];
        let dir = t.0.join("n");
        let index = dir.join(index::INDEX_NAME);
        a.allocate(&sets, &[], &att("a", "eth0")).unwrap();
        a.allocate(&sets, &[], &att("b", "eth0")).unwrap();
        assert!(index.exists());
        a.release(&att("a", "eth0")).unwrap();
        assert!(index.exists(), "b still holds addresses");
        a.release(&att("b", "eth0")).unwrap();
        assert!(!index.exists(), "the last release removes the index");
        // Nothing released, nothing held: no index appears either.
        a.release(&att("unknown", "eth0")).unwrap();
        a.check(&att("unknown", "eth0")).unwrap_err();
        assert!(!index.exists());

        // A reservation written by another plugin (the index is then stale) keeps it; once
        // that one is gone too, releasing the last of ours removes it.
        a.allocate(&sets, &[], &att("c", "eth0")).unwrap();
        std::fs::write(dir.join("10.0.0.77"), "go\r\neth0").unwrap();
        a.release(&att("c", "eth0")).unwrap();
        assert!(index.exists(), "10.0.0.77 is still reserved");
        a.allocate(&sets, &[], &att("d", "eth0")).unwrap();
        std::fs::remove_file(dir.join("10.0.0.77")).unwrap();
        a.release(&att("d", "eth0")).unwrap();
        assert!(!index.exists());

        // GC releasing everything.
        a.allocate(&sets, &[], &att("e", "eth0")).unwrap();
        assert!(index.exists());
        a.gc(&[]).unwrap();
        assert!(!index.exists());
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["last_reserved_ip.0", "last_reserved_ip.1", "lock"]);
    }

    #[test]
    fn a_request_no_range_set_takes_changes_nothing() {
        let t = TempDir::new();
        let a = Allocator::new(DiskStore::new(&t.0, "n").unwrap());
        let sets = [set("10.0.0.0/24")];
        let who = att("c", "eth0");
        // Before the store exists: it is not created.
        let e = a.allocate(&sets, &[ip("10.9.0.5")], &who).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to allocate all requested IPs: 10.9.0.5"
        );
        let e = a.allocate(&sets, &[ip("10.0.0.1")], &who).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to allocate for range 0: requested ip 10.0.0.1 is subnet's gateway"
        );
        assert!(!t.0.join("n").exists());
        // Once it exists: no file changes, the round-robin cursor stays.
        a.allocate(&sets, &[], &att("live", "eth0")).unwrap();
        let files = |d: &Path| {
            let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
                .collect();
            v.sort();
            v
        };
        let before = files(&t.0.join("n"));
        let two_in_one_set = [ip("10.0.0.7"), ip("10.0.0.8")];
        assert!(a.allocate(&sets, &two_in_one_set, &who).is_err());
        assert!(a.allocate(&sets, &[ip("10.9.0.5")], &who).is_err());
        assert!(a.allocate(&sets, &[ip("10.0.0.1")], &who).is_err());
        assert_eq!(files(&t.0.join("n")), before);
    }

    #[test]
    fn network_names_cannot_escape() {
        for bad in ["../x", "a/b", "", ".", "..", "-x", "a\0b"] {
            assert!(DiskStore::new("/tmp", bad).is_err(), "{bad:?}");
        }
        assert!(DiskStore::new("/tmp", "ok.net-1_2").is_ok());
    }

    #[test]
    fn gc_keeps_bookkeeping_and_unknown_files() {
        let t = TempDir::new();
        let a = Allocator::new(DiskStore::new(&t.0, "gcnet").unwrap());
        let s = [set("10.0.0.0/24")];
        a.allocate(&s, &[], &att("keep", "eth0")).unwrap();
        a.allocate(&s, &[], &att("gone", "eth0")).unwrap();
        let dir = t.0.join("gcnet");
        std::fs::write(dir.join("10.0.0.9"), "legacy-id").unwrap();
        std::fs::write(dir.join("notes.txt"), "gone\r\neth0").unwrap();
        std::fs::write(dir.join("::ffff:10.0.0.7"), "gone\r\neth0").unwrap();
        let released = a
            .gc(&[att("keep", "eth0"), att("legacy-id", "eth1")])
            .unwrap();
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].ip, ip("10.0.0.3"));
        for kept in [
            "10.0.0.2",
            "10.0.0.9",
            "lock",
            "last_reserved_ip.0",
            "notes.txt",
            "::ffff:10.0.0.7",
        ] {
            assert!(dir.join(kept).exists(), "{kept}");
        }
        assert_eq!(a.gc(&[]).unwrap().len(), 2);
        assert!(dir.join("lock").exists() && dir.join("last_reserved_ip.0").exists());
        // The freed address is allocatable again.
        let got = a
            .allocate(&s, &[ip("10.0.0.2")], &att("new", "eth0"))
            .unwrap();
        assert_eq!(got[0].address.addr(), ip("10.0.0.2"));
    }

    #[test]
    fn foreign_changes_invalidate_the_index() {
        let t = TempDir::new();
        let a = Allocator::new(DiskStore::new(&t.0, "n").unwrap());
        let s = [set("10.0.0.0/24")];
        a.allocate(&s, &[], &att("ours", "eth0")).unwrap();
        let dir = t.0.join("n");
        // Another writer (the reference plugin) reserves an address for "theirs".
        std::fs::write(dir.join("10.0.0.77"), "theirs\r\neth0").unwrap();
        let e = a.allocate(&s, &[], &att("theirs", "eth0")).unwrap_err();
        assert!(
            e.to_string()
                .contains("10.0.0.77 has been allocated to theirs"),
            "{e}"
        );
        // ... and releases ours behind our back: nothing stale is reported.
        std::fs::remove_file(dir.join("10.0.0.2")).unwrap();
        assert!(a.check(&att("ours", "eth0")).is_err());
        assert_eq!(
            a.release(&att("theirs", "eth0")).unwrap(),
            [ip("10.0.0.77")]
        );
    }

    #[test]
    fn a_valid_index_is_used() {
        let t = TempDir::new();
        let a = Allocator::new(DiskStore::new(&t.0, "n").unwrap());
        let s = [set("10.0.0.0/24")];
        a.allocate(&s, &[], &att("old", "eth0")).unwrap();
        // Rewriting a file in place changes no directory entry: the index still says "old".
        // (No plugin does this; it shows that lookups come from the index, not a scan.)
        let f = t.0.join("n").join("10.0.0.2");
        std::fs::write(&f, "new\r\neth0").unwrap();
        assert!(
            a.check(&att("new", "eth0")).is_err(),
            "answered by the index"
        );
        assert!(
            a.check(&att("old", "eth0")).is_err(),
            "positives are verified"
        );
        // Without the index every file is read.
        let plain = Allocator::new(DiskStore::new(&t.0, "n").unwrap().with_index(false));
        assert!(plain.check(&att("new", "eth0")).is_ok());
        // A full read (GC) rebuilds the index.
        a.gc(&[att("new", "eth0")]).unwrap();
        assert!(a.check(&att("new", "eth0")).is_ok());
    }

    #[test]
    fn index_and_plain_store_agree_over_many_operations() {
        let t = TempDir::new();
        let indexed = Allocator::new(DiskStore::new(&t.0, "a").unwrap());
        let plain = Allocator::new(DiskStore::new(&t.0, "b").unwrap().with_index(false));
        let s = [set("10.0.0.0/22"), set("2001:db8::/120")];
        for i in 0..300 {
            let who = att(
                &format!("c{}", i % 97),
                if i % 2 == 0 { "eth0" } else { "eth1" },
            );
            let x = indexed.allocate(&s, &[], &who).map_err(|e| e.to_string());
            let y = plain.allocate(&s, &[], &who).map_err(|e| e.to_string());
            assert_eq!(x, y, "allocate {i}");
            if i % 3 == 0 {
                let who = att(&format!("c{}", (i * 7) % 97), "eth0");
                assert_eq!(
                    indexed.release(&who).unwrap(),
                    plain.release(&who).unwrap(),
                    "release {i}"
                );
            }
        }
        let names = |d: &str| {
            let mut v: Vec<String> = std::fs::read_dir(t.0.join(d))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| parse_file_name(n).is_some())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names("a"), names("b"));
        assert!(names("a").len() > 100, "the index grew past its first size");
    }

    #[test]
    fn threads_with_their_own_stores_never_share_an_address() {
        let t = TempDir::new();
        let s = set("10.5.0.0/24");
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let dir = t.0.clone();
                let s = s.clone();
                std::thread::spawn(move || {
                    let a = Allocator::new(DiskStore::new(&dir, "n").unwrap());
                    (0..8)
                        .map(|j| {
                            a.allocate(
                                std::slice::from_ref(&s),
                                &[],
                                &att(&format!("t{i}-{j}"), "eth0"),
                            )
                            .unwrap()[0]
                                .address
                                .addr()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<IpAddr> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 128);
    }

    #[test]
    fn a_session_holds_the_flock_the_reference_takes() {
        let t = TempDir::new();
        let store = DiskStore::new(&t.0, "n").unwrap();
        let session = store.session(true).unwrap().unwrap();
        let lock = t.0.join("n").join(LOCK_NAME);
        // A second open file description, as another process (or go-filemutex) has.
        let other = File::open(&lock).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(session);
        other.try_lock().unwrap();
        other.unlock().unwrap();
    }

    #[test]
    fn file_names() {
        assert_eq!(parse_file_name("10.1.2.3"), Some(ip("10.1.2.3")));
        assert_eq!(parse_file_name("2001:db8::1"), Some(ip("2001:db8::1")));
        for not in [
            "lock",
            "last_reserved_ip.0",
            "2001:DB8::1",
            "2001:db8:0::1",
            "::ffff:1.2.3.4",
            ".cni-rs-host-local.index",
            "010.1.2.3",
        ] {
            assert_eq!(parse_file_name(not), None, "{not}");
        }
        assert_eq!(file_name(ip("::ffff:1.2.3.4")), "1.2.3.4");
    }
}
