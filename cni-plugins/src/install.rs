//! Putting the multicall binary and its symlinks into a CNI bin directory, and taking them out.
//!
//! Layout after [`install`] into `DEST`:
//!
//! ```text
//! DEST/cni-plugins                 the binary (mode 0755)
//! DEST/bridge -> cni-plugins       one relative symlink per plugin, so the directory can be
//! DEST/host-local -> cni-plugins   mounted anywhere (a container's /host/opt/cni/bin)
//! DEST/.cni-plugins-backup/bridge  what was there before (the Go binary), kept byte for byte
//! ```
//!
//! Every change is atomic for a runtime that execs a plugin meanwhile: files and symlinks are
//! created under a temporary name in the same directory and renamed over the old name, so a
//! plugin path is always either the old binary or the new symlink, never missing or half
//! written. A replaced file is first hard-linked (or, across file systems, copied) into the
//! backup directory. Running [`install`] again changes nothing; [`rollback`] puts every backup
//! back over its symlink, removes the symlinks with no backup and the binary, and is a no-op
//! the second time as well.

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The file name of the multicall binary in the bin directory; every symlink points at it.
pub const BINARY: &str = "cni-plugins";

/// The backup directory's name inside the bin directory when none is given.
pub const DEFAULT_BACKUP_DIR: &str = ".cni-plugins-backup";

/// What went wrong, with the path it happened at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// A file operation failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done (`rename`, `symlink`, ...).
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A plugin's name in the bin directory is a directory: left alone, nothing installed.
    #[error("{} is a directory, not a plugin", .0.display())]
    Directory(PathBuf),
    /// The conflist to write is not a valid network configuration list.
    #[error("{} is not a valid conflist", path.display())]
    InvalidConflist {
        /// The file read.
        path: PathBuf,
        /// Why libcni would refuse it.
        #[source]
        source: cni_proto::cni_types::config::ConfListError,
    },
    /// The conflist's file name cannot go into a net.d directory.
    #[error("conflist file name {0:?} must be a plain name ending in .conflist")]
    ConflistName(String),
    /// A different conflist of that name exists and `force` was not given.
    #[error("{} exists with other content (force replaces it)", .0.display())]
    ConflistExists(PathBuf),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> InstallError + 'a {
    move |source| InstallError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// One thing [`install`], [`rollback`] or [`crate::conflist::write()`] did (or found done).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Already as wanted.
    Unchanged(PathBuf),
    /// A file written (new or replacing an older version of ours).
    Wrote(PathBuf),
    /// A new symlink where nothing was.
    Linked(PathBuf),
    /// A symlink over another program, which was kept.
    Replaced {
        /// The plugin path.
        path: PathBuf,
        /// Where the program it replaced now is.
        backup: PathBuf,
    },
    /// A kept program put back over our symlink.
    Restored {
        /// The plugin path.
        path: PathBuf,
        /// The backup it came from (now gone).
        from: PathBuf,
    },
    /// Ours, removed (no backup to restore).
    Removed(PathBuf),
    /// A backup not restored: its name in the bin directory holds something not ours now.
    Kept(PathBuf),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Unchanged(p) => write!(f, "unchanged {}", p.display()),
            Action::Wrote(p) => write!(f, "wrote     {}", p.display()),
            Action::Linked(p) => write!(f, "linked    {} -> {BINARY}", p.display()),
            Action::Replaced { path, backup } => write!(
                f,
                "linked    {} -> {BINARY} (previous file kept as {})",
                path.display(),
                backup.display()
            ),
            Action::Restored { path, from } => {
                write!(f, "restored  {} from {}", path.display(), from.display())
            }
            Action::Removed(p) => write!(f, "removed   {}", p.display()),
            Action::Kept(p) => write!(
                f,
                "kept      {} (its name now holds a file that is not ours)",
                p.display()
            ),
        }
    }
}

/// What one run did, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Every step.
    pub actions: Vec<Action>,
}

impl Report {
    /// Whether anything changed on disk.
    pub fn changed(&self) -> bool {
        self.actions
            .iter()
            .any(|a| !matches!(a, Action::Unchanged(_) | Action::Kept(_)))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.actions {
            writeln!(f, "{a}")?;
        }
        if !self.changed() {
            writeln!(f, "nothing to do")?;
        }
        Ok(())
    }
}

/// Where to install: the bin directory and the backup directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The CNI bin directory (`/opt/cni/bin`).
    pub dest: PathBuf,
    /// Where replaced programs are kept ([`DEFAULT_BACKUP_DIR`] inside `dest` by default: the
    /// same file system, so keeping one is a hard link). Runtimes only exec plugins by name
    /// from the bin directory itself, never from a subdirectory. Created mode 0700: rollback
    /// puts what it holds back into the bin directory, so it must not be writable by others.
    pub backup: PathBuf,
}

impl Layout {
    /// `dest` with the default backup directory inside it.
    pub fn new(dest: impl Into<PathBuf>) -> Self {
        let dest = dest.into();
        let backup = dest.join(DEFAULT_BACKUP_DIR);
        Layout { dest, backup }
    }

    /// Another backup directory.
    pub fn with_backup(mut self, backup: impl Into<PathBuf>) -> Self {
        self.backup = backup.into();
        self
    }

    /// The installed binary's path.
    pub fn binary(&self) -> PathBuf {
        self.dest.join(BINARY)
    }
}

/// Install `source` (the multicall binary) as [`BINARY`] in `layout.dest` and a symlink to it
/// for each of `names`, keeping what each symlink replaces in `layout.backup`.
pub fn install(layout: &Layout, source: &Path, names: &[&str]) -> Result<Report, InstallError> {
    let dest = &layout.dest;
    fs::create_dir_all(dest).map_err(io_err("create directory", dest))?;
    let mut report = Report::default();

    let bin = layout.binary();
    match fs::symlink_metadata(&bin) {
        Ok(m) if m.is_dir() => return Err(InstallError::Directory(bin)),
        Ok(m) if m.is_file() && same_content(source, &bin)? => {
            report.actions.push(Action::Unchanged(bin));
        }
        Ok(_) => {
            copy_atomic(source, &bin, 0o755)?;
            report.actions.push(Action::Wrote(bin));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            copy_atomic(source, &bin, 0o755)?;
            report.actions.push(Action::Wrote(bin));
        }
        Err(e) => return Err(io_err("stat", &bin)(e)),
    }

    for name in names {
        let path = dest.join(name);
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                symlink_atomic(Path::new(BINARY), &path)?;
                report.actions.push(Action::Linked(path));
            }
            Err(e) => return Err(io_err("stat", &path)(e)),
            Ok(m) if m.is_dir() => return Err(InstallError::Directory(path)),
            Ok(_) if is_ours(&path) => report.actions.push(Action::Unchanged(path)),
            Ok(_) => {
                // Owner-only: what is in it goes back into the bin directory on rollback.
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&layout.backup)
                    .map_err(io_err("create directory", &layout.backup))?;
                let backup = layout.backup.join(name);
                keep(&path, &backup)?;
                symlink_atomic(Path::new(BINARY), &path)?;
                report.actions.push(Action::Replaced { path, backup });
            }
        }
    }
    if report.changed() {
        sync_dir(dest)?;
        if layout.backup.is_dir() {
            sync_dir(&layout.backup)?;
        }
    }
    Ok(report)
}

/// Undo [`install`]: every symlink to [`BINARY`] in `layout.dest` gets its backup back (or is
/// removed when it has none), then the binary is removed, then the backup directory when it is
/// empty. Files that are not ours are never touched.
pub fn rollback(layout: &Layout) -> Result<Report, InstallError> {
    let dest = &layout.dest;
    let mut report = Report::default();
    for path in sorted_entries(dest)? {
        if !is_ours(&path) {
            continue;
        }
        let Some(name) = path.file_name() else {
            continue;
        };
        let backup = layout.backup.join(name);
        match fs::symlink_metadata(&backup) {
            Ok(_) => {
                restore(&backup, &path)?;
                fs::remove_file(&backup).map_err(io_err("remove", &backup))?;
                report.actions.push(Action::Restored { path, from: backup });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
                report.actions.push(Action::Removed(path));
            }
            Err(e) => return Err(io_err("stat", &backup)(e)),
        }
    }
    let bin = layout.binary();
    if fs::symlink_metadata(&bin).is_ok_and(|m| m.is_file()) {
        fs::remove_file(&bin).map_err(io_err("remove", &bin))?;
        report.actions.push(Action::Removed(bin));
    }
    if layout.backup.is_dir() {
        let left = sorted_entries(&layout.backup)?;
        if left.is_empty() {
            fs::remove_dir(&layout.backup).map_err(io_err("remove", &layout.backup))?;
        }
        report.actions.extend(left.into_iter().map(Action::Kept));
    }
    if report.changed() {
        sync_dir(dest)?;
    }
    Ok(report)
}

/// Whether `path` is a symlink to [`BINARY`] (as [`install`] makes them).
pub fn is_ours(path: &Path) -> bool {
    fs::read_link(path).is_ok_and(|t| t == Path::new(BINARY))
}

/// The entries of `dir` (none when it does not exist), sorted, temp files of ours skipped.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, InstallError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read directory", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(io_err("read directory", dir))?;
        if !is_temp(&entry.file_name()) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

const TEMP_MARK: &str = ".cni-plugins-tmp.";

fn is_temp(name: &OsStr) -> bool {
    name.to_str().is_some_and(|n| n.contains(TEMP_MARK))
}

/// A fresh name next to `path` (same directory, so a rename replaces atomically).
pub(crate) fn temp_beside(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let base = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{base}{TEMP_MARK}{}.{n}", std::process::id()))
}

/// Rename `tmp` over `path`, removing `tmp` when that fails.
fn rename_over(tmp: &Path, path: &Path) -> Result<(), InstallError> {
    fs::rename(tmp, path).map_err(|e| {
        let _ = fs::remove_file(tmp);
        io_err("rename", path)(e)
    })
}

/// Write `bytes` to `path` atomically with `mode`, synced before the rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), InstallError> {
    use std::io::Write;
    let tmp = temp_beside(path);
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_err("write", &tmp)(e));
    }
    rename_over(&tmp, path)
}

/// Copy `source` to `path` atomically with `mode`.
fn copy_atomic(source: &Path, path: &Path, mode: u32) -> Result<(), InstallError> {
    let bytes = fs::read(source).map_err(io_err("read", source))?;
    write_atomic(path, &bytes, mode)
}

fn symlink_atomic(target: &Path, path: &Path) -> Result<(), InstallError> {
    let tmp = temp_beside(path);
    symlink(target, &tmp).map_err(io_err("symlink", &tmp))?;
    rename_over(&tmp, path)
}

/// Make `to` hold what `from` holds (a symlink stays a symlink, a file keeps its inode when
/// the two are on one file system, else is copied with its mode), atomically at `to`.
fn duplicate(from: &Path, to: &Path) -> Result<(), InstallError> {
    let meta = fs::symlink_metadata(from).map_err(io_err("stat", from))?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(from).map_err(io_err("read link", from))?;
        return symlink_atomic(&target, to);
    }
    let tmp = temp_beside(to);
    if fs::hard_link(from, &tmp).is_err() {
        let bytes = fs::read(from).map_err(io_err("read", from))?;
        return write_atomic(to, &bytes, meta.permissions().mode() & 0o7777);
    }
    rename_over(&tmp, to)
}

/// Keep the program at `path` as `backup` (replacing an older backup of that name).
fn keep(path: &Path, backup: &Path) -> Result<(), InstallError> {
    duplicate(path, backup)
}

/// Put `backup` back at `path`, over our symlink.
fn restore(backup: &Path, path: &Path) -> Result<(), InstallError> {
    duplicate(backup, path)
}

fn same_content(a: &Path, b: &Path) -> Result<bool, InstallError> {
    let ma = fs::metadata(a).map_err(io_err("stat", a))?;
    let mb = fs::metadata(b).map_err(io_err("stat", b))?;
    if ma.len() != mb.len() {
        return Ok(false);
    }
    let mut fa = File::open(a).map_err(io_err("open", a))?;
    let mut fb = File::open(b).map_err(io_err("open", b))?;
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut fa, &mut ba).map_err(io_err("read", a))?;
        let m = read_full(&mut fb, &mut bb).map_err(io_err("read", b))?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), InstallError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_hidden_unique_and_recognised() {
        let a = temp_beside(Path::new("/x/bridge"));
        let b = temp_beside(Path::new("/x/bridge"));
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("/x")));
        let name = a.file_name().unwrap_or_default();
        assert!(name.to_string_lossy().starts_with(".bridge"));
        assert!(is_temp(name));
        assert!(!is_temp(OsStr::new("bridge")));
    }

    #[test]
    fn an_unchanged_report_says_so() {
        let r = Report {
            actions: vec![Action::Unchanged("/x/bridge".into())],
        };
        assert!(!r.changed());
        assert!(r.to_string().contains("nothing to do"));
        let r = Report {
            actions: vec![Action::Linked("/x/bridge".into())],
        };
        assert!(r.changed());
    }
}
