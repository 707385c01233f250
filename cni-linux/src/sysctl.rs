//! Kernel parameters under `/proc/sys`.
//!
//! Keys are written either dotted (`net.ipv4.ip_forward`) or with slashes
//! (`net/ipv4/conf/eth0.100/forwarding`, optionally prefixed by `/proc/sys/`). Use the slash
//! form when a component contains a dot, such as a VLAN interface name. `..` components and
//! empty components are refused.
//!
//! `/proc/sys/net` shows the network namespace of the thread that opens the file, so
//! [`read()`] and [`write()`] act in the calling thread's namespace. To act in another namespace
//! use [`get_in`] / [`set_in`] (or call them inside [`NetNs::run`]).
//!
//! ```no_run
//! use cni_linux::{netns::NetNs, sysctl};
//!
//! # fn main() -> Result<(), sysctl::SysctlError> {
//! let ns = NetNs::open("/run/netns/pod1")?;
//! sysctl::set_in(&ns, "net.ipv4.conf.all.arp_notify", "1")?;
//! assert_eq!(sysctl::get_in(&ns, "net.ipv4.conf.all.arp_notify")?, "1");
//! # Ok(())
//! # }
//! ```

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::netns::{NetNs, NetnsError};

/// Root of the sysctl tree.
pub const PROC_SYS: &str = "/proc/sys";

/// Errors of sysctl access.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SysctlError {
    /// The key cannot be turned into a path under `/proc/sys`.
    #[error("invalid sysctl key {key:?}: {reason}")]
    InvalidKey {
        /// The rejected key.
        key: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Reading the value failed.
    #[error("read sysctl {path:?}")]
    Read {
        /// The file under `/proc/sys`.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Writing the value failed.
    #[error("write {value:?} to sysctl {path:?}")]
    Write {
        /// The file under `/proc/sys`.
        path: PathBuf,
        /// The value that was written.
        value: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Entering the namespace failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

impl SysctlError {
    /// True when the sysctl does not exist (for example an interface that is gone or IPv6
    /// disabled).
    pub fn is_not_found(&self) -> bool {
        match self {
            SysctlError::Read { source, .. } | SysctlError::Write { source, .. } => {
                source.kind() == io::ErrorKind::NotFound
            }
            _ => false,
        }
    }
}

/// The file under `/proc/sys` for `key` (dotted or slash form, see the module docs).
pub fn path_for(key: &str) -> Result<PathBuf, SysctlError> {
    let invalid = |reason| SysctlError::InvalidKey {
        key: key.to_string(),
        reason,
    };
    let rel = if let Some(rest) = key.strip_prefix("/proc/sys/") {
        rest
    } else if key.starts_with('/') {
        return Err(invalid("absolute path outside /proc/sys"));
    } else {
        key
    };
    let sep = if rel.contains('/') { '/' } else { '.' };
    let mut path = PathBuf::from(PROC_SYS);
    for part in rel.split(sep) {
        if part.is_empty() {
            return Err(invalid("empty component"));
        }
        if part == ".." || part == "." {
            return Err(invalid("relative component"));
        }
        if part.contains('\0') {
            return Err(invalid("NUL byte"));
        }
        path.push(part);
    }
    Ok(path)
}

/// Reads `key` in the calling thread's namespace, without the trailing newline.
pub fn read(key: &str) -> Result<String, SysctlError> {
    let path = path_for(key)?;
    read_path(&path)
}

fn read_path(path: &Path) -> Result<String, SysctlError> {
    let mut value = fs::read_to_string(path).map_err(|source| SysctlError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let trimmed = value.trim_end_matches('\n').len();
    value.truncate(trimmed);
    Ok(value)
}

/// Writes `value` to `key` in the calling thread's namespace (one `write(2)`).
pub fn write(key: &str, value: &str) -> Result<(), SysctlError> {
    let path = path_for(key)?;
    write_path(&path, value)
}

fn write_path(path: &Path, value: &str) -> Result<(), SysctlError> {
    let err = |source| SysctlError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    };
    let mut file = OpenOptions::new().write(true).open(path).map_err(err)?;
    file.write_all(value.as_bytes()).map_err(err)
}

/// Writes `value` only if the current value differs; returns whether it wrote.
pub fn ensure(key: &str, value: &str) -> Result<bool, SysctlError> {
    let path = path_for(key)?;
    if read_path(&path)? == value {
        return Ok(false);
    }
    write_path(&path, value)?;
    Ok(true)
}

/// Reads `key` inside `ns` (the calling thread enters it and comes back, see [`NetNs::run`]).
pub fn get_in(ns: &NetNs, key: &str) -> Result<String, SysctlError> {
    let path = path_for(key)?;
    ns.run(|| read_path(&path))?
}

/// Writes `value` to `key` inside `ns` (the calling thread enters it and comes back, see
/// [`NetNs::run`]).
pub fn set_in(ns: &NetNs, key: &str, value: &str) -> Result<(), SysctlError> {
    let path = path_for(key)?;
    ns.run(|| write_path(&path, value))?
}

/// Writes several `(key, value)` pairs inside `ns`, entering it once, stopping at the first
/// error.
pub fn set_many_in(ns: &NetNs, pairs: &[(&str, &str)]) -> Result<(), SysctlError> {
    let paths = pairs
        .iter()
        .map(|(k, v)| Ok((path_for(k)?, *v)))
        .collect::<Result<Vec<_>, SysctlError>>()?;
    ns.run(|| {
        paths
            .iter()
            .try_for_each(|(path, value)| write_path(path, value))
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_and_slash_keys() {
        assert_eq!(
            path_for("net.ipv4.ip_forward").unwrap(),
            Path::new("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            path_for("net/ipv6/conf/eth0.100/accept_ra").unwrap(),
            Path::new("/proc/sys/net/ipv6/conf/eth0.100/accept_ra")
        );
        assert_eq!(
            path_for("/proc/sys/net/ipv4/ip_forward").unwrap(),
            Path::new("/proc/sys/net/ipv4/ip_forward")
        );
    }

    #[test]
    fn bad_keys_are_refused() {
        for bad in [
            "net/../../etc/passwd",
            "net.ipv4..ip_forward",
            "/etc/passwd",
            "",
            "net/ipv4/./x",
            "net/ipv4/",
        ] {
            assert!(
                matches!(path_for(bad), Err(SysctlError::InvalidKey { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn read_trims_newline() {
        // Readable without privileges and never changes during a test run.
        let v = read("kernel.ostype").unwrap();
        assert_eq!(v, "Linux");
        let missing = read("net.ipv4.conf.no-such-device-xyz.forwarding").unwrap_err();
        assert!(missing.is_not_found());
    }
}
