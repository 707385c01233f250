//! Attachment records: what ADD allowed for each attachment, in
//! `<dataDir>/<network>/<container id>-<ifname>` (default `/run/cni/firewall`, on tmpfs like
//! the rules themselves), so that GC can remove the rules of attachments the runtime no longer
//! knows. The reference's iptables rules carry no owner, so this is the only place that ties a
//! rule to an attachment. A record is written before the rules and removed after them.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

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
    dir: PathBuf,
}

fn safe_component(s: &str) -> bool {
    !s.is_empty() && !s.contains(['/', '\0']) && s != "." && s != ".."
}

impl Store {
    /// The records of network `name` under `data_dir`.
    pub fn new(data_dir: &Path, name: &str) -> Store {
        Store {
            dir: data_dir.join(name),
        }
    }

    fn path(&self, att: &Attachment) -> Option<PathBuf> {
        let file = format!("{}-{}", att.container_id, att.ifname);
        (safe_component(&att.container_id) && safe_component(&att.ifname))
            .then(|| self.dir.join(file))
    }

    fn err(path: &Path) -> impl Fn(std::io::Error) -> FirewallError + '_ {
        move |source| FirewallError::Store {
            path: path.display().to_string(),
            source,
        }
    }

    /// Writes (replaces) the record of its attachment. An attachment whose ID or interface
    /// name cannot be a file name is not recorded.
    pub fn save(&self, rec: &Record) -> Result<(), FirewallError> {
        let Some(path) = self.path(&rec.attachment()) else {
            return Ok(());
        };
        std::fs::create_dir_all(&self.dir).map_err(Self::err(&self.dir))?;
        let tmp = self
            .dir
            .join(format!(".{}-{}.tmp", rec.container_id, rec.ifname));
        let body = serde_json::to_vec(rec).map_err(|e| Self::err(&path)(e.into()))?;
        std::fs::write(&tmp, body).map_err(Self::err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(Self::err(&path))
    }

    /// Removes the record of `att`; a missing one is fine.
    pub fn remove(&self, att: &Attachment) -> Result<(), FirewallError> {
        let Some(path) = self.path(att) else {
            return Ok(());
        };
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Self::err(&path)(e)),
        }
    }

    /// Every record of the network (unreadable files are skipped).
    pub fn all(&self) -> Result<Vec<Record>, FirewallError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Self::err(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if let Ok(bytes) = std::fs::read(&path)
                && let Ok(rec) = serde_json::from_slice::<Record>(&bytes)
            {
                out.push(rec);
            }
        }
        out.sort_by(|a, b| (&a.container_id, &a.ifname).cmp(&(&b.container_id, &b.ifname)));
        Ok(out)
    }
}
