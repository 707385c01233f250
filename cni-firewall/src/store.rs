//! Attachment records: what ADD allowed for each attachment, in
//! `<dataDir>/<network>/<`[`record_name`]`>` (default `/run/cni/firewall`, on tmpfs like the
//! rules themselves), so that GC can remove the rules of attachments the runtime no longer
//! knows. The reference's iptables rules carry no owner, so this is the only place that ties a
//! rule to an attachment. A record is written before the rules and removed after them. These
//! files are ours only (the Go firewall keeps none).
//!
//! A record's file name is a digest of its attachment, and its content names the attachment
//! too: a file whose content is another attachment's is not a record. Records are touched
//! relative to the opened directory ([`cni_linux::fsutil::Dir`]): written to an unpredictable
//! temporary name with `O_EXCL | O_NOFOLLOW` and renamed over the record's name, read only if
//! they are regular files of at most [`READ_LIMIT`] bytes, without waiting on a FIFO; a
//! symlink planted in the directory (or as the directory) is never followed. Records older
//! versions wrote as `<container id>-<ifname>` are still read and removed when their content
//! is that attachment.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use cni_linux::firewall::sha512::sha512_hex;
use cni_linux::fsutil::{Dir, READ_LIMIT};
use cni_linux::netlink::Errno;
use cni_types::Attachment;
use serde::{Deserialize, Serialize};

use crate::config::Pod;
use crate::error::FirewallError;

/// One attachment's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Container ID.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// Interface name in the container.
    pub ifname: String,
    /// Addresses allowed.
    pub addrs: Vec<IpAddr>,
    /// The bridge (first interface of `prevResult`), if any.
    #[serde(default)]
    pub bridge: Option<String>,
    /// The host-side interfaces of the attachment.
    #[serde(default, rename = "hostInterfaces")]
    pub host_ifs: Vec<String>,
}

impl Record {
    /// The record of `att` with `pod`'s addresses.
    pub fn new(att: &Attachment, pod: &Pod) -> Record {
        Record {
            container_id: att.container_id.clone(),
            ifname: att.ifname.clone(),
            addrs: pod.addrs.clone(),
            bridge: pod.bridge.clone(),
            host_ifs: pod.host_ifs.clone(),
        }
    }

    /// The pod view of the record.
    pub fn pod(&self) -> Pod {
        Pod {
            addrs: self.addrs.clone(),
            bridge: self.bridge.clone(),
            host_ifs: self.host_ifs.clone(),
        }
    }

    /// The attachment.
    pub fn attachment(&self) -> Attachment {
        Attachment {
            container_id: self.container_id.clone(),
            ifname: self.ifname.clone(),
        }
    }
}

/// The records of one network.
#[derive(Debug, Clone)]
pub struct Store {
    data_dir: PathBuf,
    network: String,
}

fn safe_component(s: &str) -> bool {
    !s.is_empty() && !s.contains(['/', '\0']) && s != "." && s != ".."
}

/// The file name of the record of `att`: the first 32 bytes of the SHA-512 of
/// `<container id> NUL <ifname>`, in hex. Unlike `<container id>-<ifname>` (where `a-b`+`c`
/// and `a`+`b-c` meet) no two attachments share it.
pub fn record_name(att: &Attachment) -> String {
    let mut id = Vec::with_capacity(att.container_id.len() + att.ifname.len() + 1);
    id.extend_from_slice(att.container_id.as_bytes());
    id.push(0);
    id.extend_from_slice(att.ifname.as_bytes());
    let mut hex = sha512_hex(&id);
    hex.truncate(64);
    hex
}

/// The name older versions gave the record of `att` (ambiguous; read and removed only
/// when the record's content names `att`).
fn legacy_name(att: &Attachment) -> String {
    format!("{}-{}", att.container_id, att.ifname)
}

/// Whether `e` says a directory on the way is not a real directory (a symlink, a file).
fn not_a_directory(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(Errno::ELOOP as i32) || e.raw_os_error() == Some(Errno::ENOTDIR as i32)
}

impl Store {
    /// The records of network `name` under `data_dir`.
    pub fn new(data_dir: &Path, name: &str) -> Store {
        Store {
            data_dir: data_dir.to_path_buf(),
            network: name.to_string(),
        }
    }

    /// The directory of the network's records.
    pub fn dir(&self) -> PathBuf {
        self.data_dir.join(&self.network)
    }

    fn err(path: &Path) -> impl Fn(std::io::Error) -> FirewallError + '_ {
        move |source| FirewallError::Store {
            path: path.display().to_string(),
            source,
        }
    }

    /// The network's directory, opened (created with `create`); `Ok(None)` when it is
    /// missing, when the network name cannot be a directory name, or (without `create`)
    /// when it is not a real directory: no record of ours can be there then.
    fn open(&self, create: bool) -> std::io::Result<Option<Dir>> {
        if !safe_component(&self.network) {
            return Ok(None);
        }
        let opened = if create {
            Dir::create(&self.data_dir).map(Some)
        } else {
            Dir::open(&self.data_dir)
        }
        .and_then(|data| match data {
            Some(data) => data.subdir(&self.network, create),
            None => Ok(None),
        });
        match opened {
            Err(e) if !create && not_a_directory(&e) => Ok(None),
            r => r,
        }
    }

    /// The record in the file `name` of `dir`, if it is a readable record.
    fn read(dir: &Dir, name: &str) -> Option<Record> {
        let bytes = dir.read_capped(name, READ_LIMIT).ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes (replaces) the record of its attachment. An attachment whose ID or interface
    /// name cannot be a file name is not recorded.
    pub fn save(&self, rec: &Record) -> Result<(), FirewallError> {
        let att = rec.attachment();
        if !(safe_component(&att.container_id) && safe_component(&att.ifname)) {
            return Ok(());
        }
        let name = record_name(&att);
        let path = self.dir().join(&name);
        let body = serde_json::to_vec(rec).map_err(|e| Self::err(&path)(e.into()))?;
        let Some(dir) = self.open(true).map_err(Self::err(&self.dir()))? else {
            return Ok(());
        };
        dir.write_atomic(&name, &body, 0o600)
            .map_err(Self::err(&path))
    }

    /// Removes the record of `att` (and one an older version wrote for it); a missing one
    /// is fine.
    pub fn remove(&self, att: &Attachment) -> Result<(), FirewallError> {
        let Some(dir) = self.open(false).map_err(Self::err(&self.dir()))? else {
            return Ok(());
        };
        let name = record_name(att);
        dir.remove(&name)
            .map_err(Self::err(&self.dir().join(&name)))?;
        dir.remove_temporaries(&name);
        let legacy = legacy_name(att);
        if safe_component(&legacy)
            && Self::read(&dir, &legacy).is_some_and(|r| r.attachment() == *att)
        {
            dir.remove(&legacy)
                .map_err(Self::err(&self.dir().join(&legacy)))?;
        }
        Ok(())
    }

    /// Every record of the network, each once, sorted by attachment. Files that are not
    /// records are skipped: unreadable ones (a symlink, a FIFO, more than [`READ_LIMIT`]
    /// bytes) and records whose content is not the attachment their name stands for.
    pub fn all(&self) -> Result<Vec<Record>, FirewallError> {
        let names = self
            .open(false)
            .and_then(|dir| match dir {
                Some(dir) => dir.names().map(|names| Some((dir, names))),
                None => Ok(None),
            })
            .map_err(Self::err(&self.dir()))?;
        let Some((dir, names)) = names else {
            return Ok(Vec::new());
        };
        // (record, written by an older version).
        let mut found = Vec::new();
        for name in names.iter().filter_map(|n| n.to_str()) {
            if name.starts_with('.') {
                continue;
            }
            if let Some(rec) = Self::read(&dir, name) {
                let att = rec.attachment();
                if name == record_name(&att) {
                    found.push((rec, false));
                } else if name == legacy_name(&att) {
                    found.push((rec, true));
                }
            }
        }
        found.sort_by(|(a, a_old), (b, b_old)| {
            (&a.container_id, &a.ifname, a_old).cmp(&(&b.container_id, &b.ifname, b_old))
        });
        // An attachment with both: the current record wins.
        found.dedup_by(|(a, _), (b, _)| a.attachment() == b.attachment());
        Ok(found.into_iter().map(|(rec, _)| rec).collect())
    }
}

#[cfg(test)]
mod tests;
