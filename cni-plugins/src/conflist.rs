//! Writing a network configuration list into a runtime's net.d directory.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use cni_proto::cni_types::NetConfList;

use crate::install::{Action, InstallError, sync_dir, write_atomic};

/// Write `bytes` as `net_dir/file_name` atomically (temp file, sync, rename). The bytes must be
/// a conflist libcni accepts. An existing file with the same bytes is left as is; one with
/// other bytes is an error unless `force` is set. `net_dir` is created when missing.
pub fn write(
    net_dir: &Path,
    file_name: &str,
    bytes: &[u8],
    force: bool,
) -> Result<Action, InstallError> {
    let path = net_dir.join(file_name);
    if !check(net_dir, file_name, bytes, force)? {
        return Ok(Action::Unchanged(path));
    }
    fs::create_dir_all(net_dir).map_err(|source| InstallError::Io {
        op: "create directory",
        path: net_dir.to_owned(),
        source,
    })?;
    write_atomic(&path, bytes, 0o644)?;
    sync_dir(net_dir)?;
    Ok(Action::Wrote(path))
}

/// What [`write()`] checks before writing anything: the file name, the content, and an existing
/// file of that name. `Ok(false)` when the same bytes are already there (nothing to write).
/// Callers that install binaries too check first, so a refused conflist changes nothing.
pub fn check(
    net_dir: &Path,
    file_name: &str,
    bytes: &[u8],
    force: bool,
) -> Result<bool, InstallError> {
    if file_name.is_empty()
        || file_name.starts_with('.')
        || file_name.contains('/')
        || !file_name.ends_with(".conflist")
    {
        return Err(InstallError::ConflistName(file_name.to_owned()));
    }
    let path = net_dir.join(file_name);
    NetConfList::from_slice(bytes).map_err(|source| InstallError::InvalidConflist {
        path: path.clone(),
        source,
    })?;
    match fs::read(&path) {
        Ok(old) if old == bytes => Ok(false),
        Ok(_) if !force => Err(InstallError::ConflistExists(path)),
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        // A directory, a dangling symlink, unreadable: only replaced when forced.
        Err(_) if force => Ok(true),
        Err(source) => Err(InstallError::Io {
            op: "read",
            path,
            source,
        }),
    }
}

/// The network configuration files in `net_dir` that sort before `file_name`: containerd,
/// CRI-O and kubelet use the first one, so any of these wins over ours.
pub fn shadowing(net_dir: &Path, file_name: &str) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(net_dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let is_conf = [".conflist", ".conf", ".json"]
                .iter()
                .any(|s| name.ends_with(s));
            (is_conf && !name.starts_with('.') && name.as_str() < file_name).then(|| e.path())
        })
        .collect();
    out.sort();
    out
}
