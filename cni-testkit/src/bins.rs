//! Finding plugin binaries: the workspace's own (next to the running test executable) and the
//! Go reference plugins, and building a `CNI_PATH` directory that mixes them.
//!
//! The workspace's test command is `cargo build --workspace --bins && cargo test --workspace`,
//! so every plugin binary exists when the tests run.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::tempdir::TempDir;

/// Where Debian's `containernetworking-plugins` package installs the Go reference plugins.
pub const GO_PLUGINS_DIR: &str = "/usr/lib/cni";

/// Candidate directories holding the workspace's built binaries, best first: the profile
/// directory of the running executable (`target/debug` for `target/debug/deps/test-…`), then
/// `$CARGO_TARGET_DIR/{debug,release}`, then `<workspace>/target/{debug,release}`.
pub fn bin_dirs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        let mut dir = exe.parent().map(Path::to_path_buf);
        // target/<profile>/deps/x, target/<profile>/examples/x or target/<profile>/x
        if let Some(d) = &dir
            && d.file_name()
                .is_some_and(|n| n == "deps" || n == "examples")
        {
            dir = d.parent().map(Path::to_path_buf);
        }
        if let Some(d) = dir {
            out.push(d);
        }
    }
    let mut roots = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        roots.push(PathBuf::from(t));
    }
    roots.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    for root in roots {
        for profile in ["debug", "release"] {
            let d = root.join(profile);
            if !out.contains(&d) {
                out.push(d);
            }
        }
    }
    out
}

/// The first of [`bin_dirs`] that exists.
pub fn bin_dir() -> Option<PathBuf> {
    bin_dirs().into_iter().find(|d| d.is_dir())
}

/// The workspace's binary `name` (e.g. `"host-local"`), from the first of [`bin_dirs`]
/// that has it.
pub fn our_plugin(name: &str) -> Result<PathBuf> {
    find(name, &bin_dirs())
}

/// The Go reference plugin `name` in [`GO_PLUGINS_DIR`].
pub fn go_plugin(name: &str) -> Result<PathBuf> {
    find(name, &[PathBuf::from(GO_PLUGINS_DIR)])
}

/// An example binary of the workspace (`target/<profile>/examples/<name>`), built by
/// `cargo test`.
pub fn example_bin(name: &str) -> Result<PathBuf> {
    let dirs: Vec<PathBuf> = bin_dirs().into_iter().map(|d| d.join("examples")).collect();
    find(name, &dirs)
}

fn find(name: &str, dirs: &[PathBuf]) -> Result<PathBuf> {
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::BinaryNotFound {
            name: name.to_string(),
            searched: dirs.to_vec(),
        })
}

/// A temporary directory of symlinks to plugin binaries: a `CNI_PATH` entry that lets a test
/// choose, per plugin, ours or the Go reference one. Removed on drop.
///
/// ```no_run
/// use cni_testkit::bins::CniPathDir;
/// # fn main() -> cni_testkit::Result<()> {
/// // our bridge delegating to the Go host-local
/// let dir = CniPathDir::new()?.ours(&["bridge"])?.go(&["host-local"])?;
/// # let _ = dir.path();
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct CniPathDir {
    dir: TempDir,
}

impl CniPathDir {
    /// An empty directory.
    pub fn new() -> Result<Self> {
        Ok(CniPathDir {
            dir: TempDir::new("cnitk-bin")?,
        })
    }

    /// Link `name` to `target`.
    pub fn link(self, name: &str, target: &Path) -> Result<Self> {
        let at = self.dir.join(name);
        let _ = std::fs::remove_file(&at);
        // A relative target would be read relative to this directory, not to ours.
        let target = std::path::absolute(target)
            .map_err(Error::io(format!("absolute path of {}", target.display())))?;
        symlink(&target, &at).map_err(Error::io(format!("symlink {}", at.display())))?;
        Ok(self)
    }

    /// Link the workspace's binaries `names`.
    pub fn ours(mut self, names: &[&str]) -> Result<Self> {
        for n in names {
            self = self.link(n, &our_plugin(n)?)?;
        }
        Ok(self)
    }

    /// Link the Go reference binaries `names`.
    pub fn go(mut self, names: &[&str]) -> Result<Self> {
        for n in names {
            self = self.link(n, &go_plugin(n)?)?;
        }
        Ok(self)
    }

    /// The directory, for `CNI_PATH`.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The full path of plugin `name` in the directory.
    pub fn plugin(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// A `CNI_PATH` directory with the workspace's binaries `names`.
pub fn cni_path_with(names: &[&str]) -> Result<CniPathDir> {
    CniPathDir::new()?.ours(names)
}

/// A `CNI_PATH` directory with the Go reference binaries `names`.
pub fn go_cni_path_with(names: &[&str]) -> Result<CniPathDir> {
    CniPathDir::new()?.go(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_dirs_start_next_to_the_test_executable() {
        let dirs = bin_dirs();
        let exe = std::env::current_exe().unwrap();
        // target/debug/deps/cni_testkit-... -> target/debug
        assert_eq!(Some(dirs[0].as_path()), exe.parent().and_then(Path::parent));
        assert!(bin_dir().is_some());
    }

    #[test]
    fn missing_binary_names_the_places_searched() {
        let err = our_plugin("no-such-plugin-xyz").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("no-such-plugin-xyz"), "{text}");
        assert!(text.contains("debug"), "{text}");
    }

    #[test]
    fn links_are_made() {
        let dir = CniPathDir::new()
            .unwrap()
            .link("sh", Path::new("/bin/sh"))
            .unwrap();
        assert!(dir.plugin("sh").is_file());
    }
}
