//! Finding plugin binaries: the ones under test, the Go reference plugins, and building a
//! `CNI_PATH` directory that mixes them.
//!
//! Our binary `name` is looked for, in this order:
//!
//! 1. in the explicit directory: [`set_bin_dir`], else the environment variable
//!    [`BIN_DIR_ENV`] (`CNI_TESTKIT_BIN_DIR`);
//! 2. at `CARGO_BIN_EXE_<name>`, which cargo sets for the integration tests of the package
//!    that has the binary (at compile time and, with recent cargo, at run time too);
//! 3. in the directory of built binaries of the running executable's target directory
//!    (`target/<profile>` for `target/<profile>/deps/test-…` or `…/examples/x`), then
//!    `$CARGO_TARGET_DIR/{debug,release}`.
//!
//! Nothing is looked for relative to where this crate's sources are, so the kit works the same
//! from crates.io, in another workspace, or here. In this workspace the test command is
//! `cargo build --workspace --bins && cargo test --workspace`, so step 3 finds every plugin.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use crate::error::{Error, Result};
use crate::tempdir::TempDir;

/// Where Debian's `containernetworking-plugins` package installs the Go reference plugins.
pub const GO_PLUGINS_DIR: &str = "/usr/lib/cni";

/// The environment variable naming the directory of the plugin binaries under test; searched
/// first (after [`set_bin_dir`]).
pub const BIN_DIR_ENV: &str = "CNI_TESTKIT_BIN_DIR";

static EXPLICIT_DIR: RwLock<Option<PathBuf>> = RwLock::new(None);

/// Search `dir` first for the plugin binaries under test, for the whole process (it wins over
/// [`BIN_DIR_ENV`]). For a test suite outside this workspace whose plugins are built elsewhere.
pub fn set_bin_dir(dir: impl Into<PathBuf>) {
    let mut slot = EXPLICIT_DIR.write().unwrap_or_else(|e| e.into_inner());
    *slot = Some(dir.into());
}

/// The explicit directory: [`set_bin_dir`]'s, else a non-empty [`BIN_DIR_ENV`].
pub fn explicit_bin_dir() -> Option<PathBuf> {
    let set = EXPLICIT_DIR
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    set.or_else(|| {
        std::env::var_os(BIN_DIR_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// Candidate directories holding the built binaries, best first: the explicit directory
/// ([`explicit_bin_dir`]), the profile directory of the running executable (`target/debug`
/// for `target/debug/deps/test-…`), then `$CARGO_TARGET_DIR/{debug,release}`.
pub fn bin_dirs() -> Vec<PathBuf> {
    let exe = std::env::current_exe().ok();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
    dirs_from(explicit_bin_dir(), exe.as_deref(), target_dir.as_deref())
}

fn dirs_from(
    explicit: Option<PathBuf>,
    exe: Option<&Path>,
    target_dir: Option<&Path>,
) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = explicit.into_iter().collect();
    let mut push = |d: PathBuf| {
        if !out.contains(&d) {
            out.push(d);
        }
    };
    if let Some(mut dir) = exe.and_then(Path::parent) {
        // target/<profile>/deps/x, target/<profile>/examples/x or target/<profile>/x
        if dir
            .file_name()
            .is_some_and(|n| n == "deps" || n == "examples")
            && let Some(up) = dir.parent()
        {
            dir = up;
        }
        push(dir.to_path_buf());
    }
    if let Some(root) = target_dir {
        for profile in ["debug", "release"] {
            push(root.join(profile));
        }
    }
    out
}

/// The first of [`bin_dirs`] that exists.
pub fn bin_dir() -> Option<PathBuf> {
    bin_dirs().into_iter().find(|d| d.is_dir())
}

/// Our binary `name` (e.g. `"host-local"`): from the explicit directory, else
/// `CARGO_BIN_EXE_<name>`, else the other [`bin_dirs`] (see the [module docs](self)).
pub fn our_plugin(name: &str) -> Result<PathBuf> {
    let bin_exe = std::env::var_os(format!("CARGO_BIN_EXE_{name}")).map(PathBuf::from);
    find_file(
        name,
        &candidates(name, explicit_bin_dir(), bin_exe, &bin_dirs()),
    )
}

/// The files that may be binary `name`, best first, without duplicates.
fn candidates(
    name: &str,
    explicit: Option<PathBuf>,
    bin_exe: Option<PathBuf>,
    dirs: &[PathBuf],
) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let all = explicit
        .map(|d| d.join(name))
        .into_iter()
        .chain(bin_exe)
        .chain(dirs.iter().map(|d| d.join(name)));
    for p in all {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
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
    let files: Vec<PathBuf> = dirs.iter().map(|d| d.join(name)).collect();
    find_file(name, &files)
}

/// The first of `files` that is a file; the error lists them all.
fn find_file(name: &str, files: &[PathBuf]) -> Result<PathBuf> {
    files
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| Error::BinaryNotFound {
            name: name.to_string(),
            searched: files.to_vec(),
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
    fn explicit_dir_then_cargo_bin_exe_then_target_dirs() {
        let dirs = dirs_from(
            Some("/opt/plugins".into()),
            Some(Path::new("/w/target/host/debug/deps/t-1")),
            Some(Path::new("/ct")),
        );
        assert_eq!(
            dirs,
            [
                "/opt/plugins",
                "/w/target/host/debug",
                "/ct/debug",
                "/ct/release"
            ]
            .map(PathBuf::from)
        );
        let files = candidates(
            "bridge",
            Some("/opt/plugins".into()),
            Some("/b/bridge".into()),
            &dirs,
        );
        assert_eq!(
            files,
            [
                "/opt/plugins/bridge",
                "/b/bridge",
                "/w/target/host/debug/bridge",
                "/ct/debug/bridge",
                "/ct/release/bridge"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn nothing_is_searched_relative_to_the_kit_sources() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"));
        for d in dirs_from(None, Some(Path::new("/w/t/debug/x")), None) {
            assert!(!d.starts_with(src), "{}", d.display());
            assert!(
                !d.components().any(|c| c.as_os_str() == ".."),
                "{}",
                d.display()
            );
        }
        assert_eq!(dirs_from(None, None, None), Vec::<PathBuf>::new());
    }

    #[test]
    fn the_explicit_dir_is_searched_first() {
        let dir = TempDir::new("cnitk-explicit").unwrap();
        std::fs::copy("/bin/true", dir.join("bridge")).unwrap();
        let files = candidates("bridge", Some(dir.path().to_path_buf()), None, &bin_dirs());
        assert_eq!(find_file("bridge", &files).unwrap(), dir.join("bridge"));
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
