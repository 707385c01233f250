//! Files in a directory where someone else may plant names: every file is created, read,
//! renamed and removed relative to the directory's opened descriptor, never by a path that
//! is resolved again.
//!
//! A plugin's `dataDir` may hold a symlink (or a FIFO) planted at the name of a file the
//! plugin is about to write or read. [`Dir`] never follows one:
//! - the directory itself is opened with `O_DIRECTORY | O_NOFOLLOW` (a symlink as its last
//!   component is refused), created with mode 0700 when missing;
//! - [`Dir::write_atomic`] writes a temporary file with an unpredictable name (random bytes
//!   from `/dev/urandom`) created with `O_CREAT | O_EXCL | O_NOFOLLOW`, then renames it over
//!   the name (`renameat(2)` replaces a symlink there, it never writes through it);
//! - [`Dir::read_capped`] opens with `O_NOFOLLOW | O_NONBLOCK`, reads regular files only (a
//!   FIFO is refused at once, not waited on) and at most the given limit ([`READ_LIMIT`]);
//! - [`Dir::remove`] unlinks the name itself.
//!
//! The same semantics as the runtime's result cache (`cni-proto`) and host-local's store.
//!
//! ```no_run
//! use cni_linux::fsutil::{Dir, READ_LIMIT};
//!
//! # fn main() -> std::io::Result<()> {
//! let dir = Dir::create("/run/cni/example".as_ref())?;
//! dir.write_atomic("c1_eth0.json", b"{}", 0o600)?;
//! assert_eq!(dir.read_capped("c1_eth0.json", READ_LIMIT)?.as_deref(), Some(&b"{}"[..]));
//! dir.remove("c1_eth0.json")?;
//! # Ok(())
//! # }
//! ```

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::{Mode, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

/// The most [`Dir::read_capped`] is usually asked to read: 16 MiB, far more than any state
/// file a plugin writes (they are bytes to kilobytes).
pub const READ_LIMIT: u64 = 16 << 20;

/// An opened directory; every file operation is relative to its descriptor.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// `name` as one path component, or `InvalidInput`: a name with a `/`, `.`, `..` or the
/// empty name would reach outside the directory (or be the directory).
fn component(name: &OsStr) -> io::Result<&OsStr> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a file name"),
        ));
    }
    Ok(name)
}

impl Dir {
    /// Opens the directory at `path`; `Ok(None)` when it does not exist. A symlink as the
    /// last component is refused (`ENOTDIR` or `ELOOP`), as is anything but a directory.
    pub fn open(path: &Path) -> io::Result<Option<Dir>> {
        let dir = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path);
        match dir {
            Ok(f) => Ok(Some(Dir {
                fd: f.into(),
                path: path.to_path_buf(),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens the directory at `path`, creating it and its missing parents first (mode 0700).
    pub fn create(path: &Path) -> io::Result<Dir> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)?;
        Dir::open(path)?.ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    /// Opens the subdirectory `name` relative to this one (never through a symlink); with
    /// `create` it is made first (mode 0700) when missing. `Ok(None)` when it does not exist
    /// and `create` is false.
    pub fn subdir(&self, name: impl AsRef<OsStr>, create: bool) -> io::Result<Option<Dir>> {
        let name = component(name.as_ref())?;
        if create {
            match mkdirat(self.fd.as_fd(), name, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(errno(e)),
            }
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(self.fd.as_fd(), name, flags, Mode::empty()) {
            Ok(fd) => Ok(Some(Dir {
                fd,
                path: self.path.join(name),
            })),
            Err(Errno::ENOENT) if !create => Ok(None),
            Err(e) => Err(errno(e)),
        }
    }

    /// The path the directory was opened at (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The contents of the file `name`, or `Ok(None)` when there is none. A symlink, a FIFO
    /// or anything but a regular file is an error (`ELOOP` or `InvalidData`), as is a file
    /// of more than `limit` bytes (`FileTooLarge`).
    pub fn read_capped(&self, name: impl AsRef<OsStr>, limit: u64) -> io::Result<Option<Vec<u8>>> {
        let name = component(name.as_ref())?;
        let flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        let file = match openat(self.fd.as_fd(), name, flags, Mode::empty()) {
            Ok(fd) => File::from(fd),
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(errno(e)),
        };
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a regular file",
            ));
        }
        let mut buf = Vec::new();
        file.take(limit.saturating_add(1)).read_to_end(&mut buf)?;
        if buf.len() as u64 > limit {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("more than {limit} bytes"),
            ));
        }
        Ok(Some(buf))
    }

    /// Replaces the file `name` with `bytes` (created with `mode`, less the umask) through a
    /// fresh temporary file and a rename: a crashed or killed writer never leaves a
    /// half-written file, and whatever was at `name` (a symlink included) is replaced, never
    /// written through. Not synced to disk: these are runtime state files (under `/run`, a
    /// tmpfs on most nodes, or rebuilt after a reboot), as the reference plugins and host-local
    /// keep them; an fsync costs about 10 ms on a disk, more than the whole plugin.
    pub fn write_atomic(&self, name: impl AsRef<OsStr>, bytes: &[u8], mode: u32) -> io::Result<()> {
        let name = component(name.as_ref())?;
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(mode);
        let mut attempts = 0;
        let (tmp, fd) = loop {
            let tmp = temp_name(name)?;
            match openat(self.fd.as_fd(), tmp.as_os_str(), flags, mode) {
                Ok(fd) => break (tmp, fd),
                // Taken (planted, or drawn twice): draw again.
                Err(Errno::EEXIST) if attempts < 8 => attempts += 1,
                Err(e) => return Err(errno(e)),
            }
        };
        let mut file = File::from(fd);
        let written = file.write_all(bytes).and_then(|()| {
            renameat(self.fd.as_fd(), tmp.as_os_str(), self.fd.as_fd(), name).map_err(errno)
        });
        if written.is_err() {
            let _ = self.remove(&tmp);
        }
        written
    }

    /// Removes the file `name` (a symlink there is removed, not followed). Gone is fine.
    pub fn remove(&self, name: impl AsRef<OsStr>) -> io::Result<()> {
        let name = component(name.as_ref())?;
        match unlinkat(self.fd.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(errno(e)),
        }
    }

    /// Removes the empty subdirectory `name`; whether it is gone now (`false` when it still
    /// holds something or is not a directory).
    pub fn remove_dir(&self, name: impl AsRef<OsStr>) -> io::Result<bool> {
        let name = component(name.as_ref())?;
        match unlinkat(self.fd.as_fd(), name, UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(true),
            Err(Errno::ENOTEMPTY | Errno::EEXIST | Errno::ENOTDIR) => Ok(false),
            Err(e) => Err(errno(e)),
        }
    }

    /// The names in the directory (of the opened directory, even if its path was replaced
    /// since), sorted; temporary files of [`Dir::write_atomic`] included (they start with
    /// `.`).
    pub fn names(&self) -> io::Result<Vec<OsString>> {
        let own = PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()));
        let rd = match fs::read_dir(&own) {
            Ok(rd) => rd,
            // No /proc: list by path.
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::read_dir(&self.path)?,
            Err(e) => return Err(e),
        };
        let mut names = rd
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<Vec<_>>>()?;
        names.sort();
        Ok(names)
    }

    /// Removes the temporary files [`Dir::write_atomic`] leaves for `name` when the writer
    /// is killed between creating and renaming them (best effort).
    pub fn remove_temporaries(&self, name: impl AsRef<OsStr>) {
        let name = name.as_ref().as_bytes();
        for n in self.names().unwrap_or_default() {
            if is_temporary_of(n.as_bytes(), name) {
                let _ = self.remove(&n);
            }
        }
    }
}

/// `.<name>.tmp-<16 random hex digits>`.
fn temp_name(name: &OsStr) -> io::Result<OsString> {
    let mut random = [0u8; 8];
    File::open("/dev/urandom")?.read_exact(&mut random)?;
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(".tmp-");
    for b in random {
        tmp.push(format!("{b:02x}"));
    }
    Ok(tmp)
}

/// Whether `file` is a temporary file of `name`: `.<name>.tmp-<16 hex digits>`.
fn is_temporary_of(file: &[u8], name: &[u8]) -> bool {
    file.strip_prefix(b".")
        .and_then(|r| r.strip_prefix(name))
        .and_then(|r| r.strip_prefix(b".tmp-"))
        .is_some_and(|hex| {
            hex.len() == 16 && hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A fresh directory under the temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let mut r = [0u8; 8];
            File::open("/dev/urandom")
                .unwrap()
                .read_exact(&mut r)
                .unwrap();
            let p = std::env::temp_dir().join(format!(
                "cni-linux-fsutil-{tag}-{}-{}",
                std::process::id(),
                u64::from_le_bytes(r)
            ));
            fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn planted_symlinks_are_replaced_not_followed() {
        let s = Scratch::new("symlink");
        let outside = s.0.join("outside");
        fs::write(&outside, b"precious").unwrap();
        let dir = Dir::create(&s.0.join("d")).unwrap();
        std::os::unix::fs::symlink(&outside, s.0.join("d/f")).unwrap();
        // Read: refused (ELOOP), not followed.
        let err = dir.read_capped("f", READ_LIMIT).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
        dir.write_atomic("f", b"new", 0o600).unwrap();
        assert_eq!(fs::read(&outside).unwrap(), b"precious");
        assert!(fs::symlink_metadata(s.0.join("d/f")).unwrap().is_file());
        assert_eq!(dir.read_capped("f", READ_LIMIT).unwrap().unwrap(), b"new");
        std::os::unix::fs::symlink(&outside, s.0.join("d/g")).unwrap();
        dir.remove("g").unwrap();
        assert!(fs::symlink_metadata(s.0.join("d/g")).is_err());
        assert_eq!(fs::read(&outside).unwrap(), b"precious");
        // Only the file itself is left: no temporary.
        assert_eq!(dir.names().unwrap(), [OsString::from("f")]);
    }

    #[test]
    fn symlinked_directories_are_refused() {
        let s = Scratch::new("dirlink");
        fs::create_dir(s.0.join("real")).unwrap();
        std::os::unix::fs::symlink(s.0.join("real"), s.0.join("link")).unwrap();
        let err = Dir::open(&s.0.join("link")).unwrap_err().raw_os_error();
        assert!(matches!(err, Some(libc::ELOOP | libc::ENOTDIR)), "{err:?}");
        assert!(Dir::create(&s.0.join("link")).is_err());
        let top = Dir::open(&s.0).unwrap().unwrap();
        assert!(top.subdir("link", true).is_err());
        assert!(top.subdir("link", false).is_err());
        assert!(top.subdir("missing", false).unwrap().is_none());
        let sub = top.subdir("new", true).unwrap().unwrap();
        sub.write_atomic("x", b"", 0o600).unwrap();
        assert!(!top.remove_dir("new").unwrap());
        sub.remove("x").unwrap();
        assert!(top.remove_dir("new").unwrap());
        assert!(fs::read_dir(s.0.join("real")).unwrap().next().is_none());
    }

    #[test]
    fn fifos_and_oversized_files_are_refused() {
        let s = Scratch::new("fifo");
        let dir = Dir::create(&s.0).unwrap();
        nix::unistd::mkfifo(&s.0.join("p"), Mode::from_bits_truncate(0o600)).unwrap();
        // O_NONBLOCK: refused at once (a blocking open would wait for a writer forever).
        let err = dir.read_capped("p", READ_LIMIT).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let big = File::create(s.0.join("big")).unwrap();
        big.set_len(READ_LIMIT + 1).unwrap();
        let err = dir.read_capped("big", READ_LIMIT).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        big.set_len(READ_LIMIT).unwrap();
        assert_eq!(
            dir.read_capped("big", READ_LIMIT).unwrap().unwrap().len() as u64,
            READ_LIMIT
        );
        assert!(dir.read_capped("none", READ_LIMIT).unwrap().is_none());
    }

    #[test]
    fn names_that_leave_the_directory_are_refused() {
        let s = Scratch::new("names");
        let dir = Dir::create(&s.0.join("d")).unwrap();
        for bad in ["", ".", "..", "../x", "a/b"] {
            let err = dir.write_atomic(bad, b"", 0o600).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            assert!(dir.read_capped(bad, 1).is_err(), "{bad:?}");
            assert!(dir.remove(bad).is_err(), "{bad:?}");
        }
        assert!(fs::symlink_metadata(s.0.join("x")).is_err());
    }

    #[test]
    fn temporaries_are_unpredictable_and_recognised() {
        let a = temp_name(OsStr::new("n")).unwrap();
        let b = temp_name(OsStr::new("n")).unwrap();
        assert_ne!(a, b);
        assert!(is_temporary_of(a.as_bytes(), b"n"), "{a:?}");
        assert!(!is_temporary_of(b".n.tmp", b"n"));
        assert!(!is_temporary_of(b".nn.tmp-0123456789abcdef", b"n"));
        let s = Scratch::new("temps");
        let dir = Dir::create(&s.0).unwrap();
        fs::write(s.0.join(a), b"").unwrap();
        fs::write(s.0.join(".m.tmp-0123456789abcdef"), b"").unwrap();
        dir.remove_temporaries("n");
        assert_eq!(
            dir.names().unwrap(),
            [OsString::from(".m.tmp-0123456789abcdef")]
        );
    }
}
