//! Temporary directories removed on drop, and unique names.

use std::fs;
use std::io::Read;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Four random bytes as 8 hex digits (from `/dev/urandom`; falls back to a hash of the time).
pub fn random_hex() -> String {
    let mut buf = [0u8; 4];
    let ok = fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !ok {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        buf = nanos.to_le_bytes();
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A name unique in this process and across processes: `<prefix>-<pid>-<counter>-<random>`.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}-{}", std::process::id(), random_hex())
}

/// A directory that is removed with everything in it when dropped.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    /// A new empty directory (mode 0700) under the system temporary directory.
    pub fn new(prefix: &str) -> Result<Self> {
        Self::new_in(std::env::temp_dir(), prefix)
    }

    /// A new empty directory (mode 0700) under `parent`.
    pub fn new_in(parent: impl AsRef<Path>, prefix: &str) -> Result<Self> {
        let path = parent.as_ref().join(unique_name(prefix));
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
            .map_err(Error::io(format!("create directory {}", path.display())))?;
        Ok(TempDir { path, keep: false })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path/name`.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    /// Keep the directory when dropped (to look at it after a failure).
    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_dirs_go_away() {
        let a = unique_name("x");
        let b = unique_name("x");
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("x-{}-", std::process::id())));
        let path = {
            let d = TempDir::new("tk-test").unwrap();
            fs::write(d.join("f"), "1").unwrap();
            assert!(d.path().is_dir());
            d.path().to_path_buf()
        };
        assert!(!path.exists());
        assert_eq!(random_hex().len(), 8);
    }
}
