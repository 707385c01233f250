//! The result cache's files, always touched relative to an opened directory.
//!
//! The cache directory may hold names planted by someone else (a symlink at an entry's name
//! or at the name of a temporary file). So no path under it is resolved twice: the directory
//! is opened once (refusing a symlink as its last component) and every file is created,
//! read, renamed and removed relative to that descriptor:
//! - a new entry is written to a temporary file with an unpredictable name (random bytes from
//!   `/dev/urandom`) created with `O_CREAT | O_EXCL | O_NOFOLLOW`, then renamed over the
//!   entry's name (`renameat(2)` replaces a symlink there, it never follows it);
//! - an entry is read with `O_NOFOLLOW | O_NONBLOCK` and only if it is a regular file, at most
//!   [`READ_LIMIT`] bytes.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::limit::{READ_LIMIT, read_capped};

/// An opened cache directory.
#[derive(Debug)]
pub(crate) struct CacheDir {
    fd: OwnedFd,
    path: PathBuf,
}

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl CacheDir {
    /// Opens the directory at `path`; with `create`, it and its parents are created first
    /// (mode 0700). `Ok(None)` when it does not exist and `create` is false. A symlink as
    /// the last component is refused (`ELOOP`).
    pub(crate) fn open(path: &Path, create: bool) -> io::Result<Option<CacheDir>> {
        if create {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)?;
        }
        let dir = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path);
        match dir {
            Ok(f) => Ok(Some(CacheDir {
                fd: f.into(),
                path: path.to_path_buf(),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !create => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The entry `name`, or `Ok(None)` when there is none. A symlink, a FIFO or anything but
    /// a regular file is an error, as is a file larger than [`READ_LIMIT`].
    pub(crate) fn read(&self, name: &OsStr) -> io::Result<Option<Vec<u8>>> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = match openat(self.fd.as_fd(), name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(errno(e)),
        };
        let file = File::from(fd);
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a regular file",
            ));
        }
        read_capped(file, READ_LIMIT).map(Some)
    }

    /// Replaces the entry `name` with `bytes` (mode 0600) through a fresh temporary file and a
    /// rename, so a crash never leaves a half-written entry.
    pub(crate) fn write(&self, name: &OsStr, bytes: &[u8]) -> io::Result<()> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(0o600);
        let mut attempts = 0;
        let (tmp, fd) = loop {
            let tmp = temp_name(name)?;
            match openat(self.fd.as_fd(), tmp.as_os_str(), flags, mode) {
                Ok(fd) => break (tmp, fd),
                // Taken (planted or, astronomically unlikely, drawn twice): draw again.
                Err(Errno::EEXIST) if attempts < 8 => attempts += 1,
                Err(e) => return Err(errno(e)),
            }
        };
        let mut file = File::from(fd);
        let written = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| {
                renameat(self.fd.as_fd(), tmp.as_os_str(), self.fd.as_fd(), name).map_err(errno)
            });
        if written.is_err() {
            let _ = self.remove(&tmp);
        }
        written
    }

    /// Removes the entry `name` (a symlink there is removed, not followed). Gone is fine.
    pub(crate) fn remove(&self, name: &OsStr) -> io::Result<()> {
        match unlinkat(self.fd.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(errno(e)),
        }
    }

    /// Removes the temporary files that [`CacheDir::write`] (or an older version, which
    /// named them `.<name>.tmp<pid>`) leaves for `name` when the writer is killed between
    /// writing and renaming.
    pub(crate) fn remove_temporaries(&self, name: &OsStr) {
        let Ok(rd) = fs::read_dir(&self.path) else {
            return;
        };
        for ent in rd.flatten() {
            let n = ent.file_name();
            if is_temporary_of(n.as_bytes(), name.as_bytes()) {
                let _ = self.remove(&n);
            }
        }
    }

    /// The names of the entries (temporary files excluded), sorted.
    pub(crate) fn names(&self) -> Vec<OsString> {
        let Ok(rd) = fs::read_dir(&self.path) else {
            return Vec::new();
        };
        let mut names: Vec<OsString> = rd
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| !n.as_bytes().starts_with(b"."))
            .collect();
        names.sort();
        names
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

/// Whether `file` is a temporary file of the entry `name`: `.<name>.tmp-<16 hex digits>`, or
/// `.<name>.tmp<pid>` as older versions named them.
fn is_temporary_of(file: &[u8], name: &[u8]) -> bool {
    let Some(rest) = file
        .strip_prefix(b".")
        .and_then(|r| r.strip_prefix(name))
        .and_then(|r| r.strip_prefix(b".tmp"))
    else {
        return false;
    };
    match rest.strip_prefix(b"-") {
        Some(hex) => hex.len() == 16 && hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        None => !rest.is_empty() && rest.iter().all(u8::is_ascii_digit),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn temporaries_are_recognised() {
        let name = b"net-c1-eth0";
        assert!(is_temporary_of(b".net-c1-eth0.tmp-0123456789abcdef", name));
        assert!(is_temporary_of(b".net-c1-eth0.tmp4242", name));
        for other in [
            &b".net-c1-eth0.tmpx"[..],
            b".net-c1-eth0.tmp",
            b".net-c1-eth0.tmp-0123",
            b".net-c1-eth0.tmp-0123456789ABCDEF",
            b".net-c10-eth0.tmp7",
            b"net-c1-eth0",
        ] {
            assert!(!is_temporary_of(other, name), "{other:?}");
        }
    }

    #[test]
    fn temporary_names_are_unpredictable() {
        let a = temp_name(OsStr::new("n")).unwrap();
        let b = temp_name(OsStr::new("n")).unwrap();
        assert_ne!(a, b);
        assert!(is_temporary_of(a.as_bytes(), b"n"), "{a:?}");
    }
}
