//! The original link attributes, saved on ADD and restored on DEL, in the reference's layout.
//!
//! One file per attachment, `<dataDir>/<containerID>_<ifname>.json`, mode 0600, holding only
//! the attributes ADD changes, indented by one space as Go's `json.MarshalIndent(v, "", " ")`
//! writes it:
//!
//! ```text
//! {
//!  "mac": "02:11:22:33:44:55",
//!  "promisc": false,
//!  "mtu": 1500,
//!  "allmulti": false,
//!  "txQLen": 1000
//! }
//! ```
//!
//! A Go tuning restores a file we wrote and the other way round (v1.1.1 ignores `txQLen`,
//! which it does not know). We create a missing `dataDir` with mode 0700 (the reference
//! asks for 0600, a directory nobody but root can enter either way).
//!
//! For GC (the reference has none) each file we write also gets an empty marker
//! `<dataDir>/.gc/<network>/<containerID>_<ifname>`: files in `dataDir` carry no network
//! name, and several networks share one `dataDir`, so without the marker GC of one network
//! could drop another network's originals. GC only ever touches attachments it has a marker
//! for; files a Go tuning wrote are left to their DEL.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use cni_types::Attachment;
use serde::{Deserialize, Serialize};

use crate::error::TuningError;

/// The reference's `configToRestore`: the original values of what ADD changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// Original MAC address (`aa:bb:cc:dd:ee:ff`), when ADD set one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// Original promiscuous mode, when ADD turned it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promisc: Option<bool>,
    /// Original MTU, when ADD set one (0: not saved).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: u32,
    /// Original all-multicast mode, when ADD set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allmulti: Option<bool>,
    /// Original transmit queue length, when ADD set it.
    #[serde(rename = "txQLen", default, skip_serializing_if = "Option::is_none")]
    pub txqlen: Option<u32>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Saved {
    /// The file's bytes, as the reference writes them.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        // Serializing plain fields into a Vec cannot fail.
        let _ = self.serialize(&mut ser);
        out
    }
}

/// The saved originals of one `dataDir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    dir: PathBuf,
}

/// Directory of the GC markers inside `dataDir`.
const GC_DIR: &str = ".gc";

fn stem(att: &Attachment) -> String {
    format!("{}_{}", att.container_id, att.ifname)
}

/// A network name usable as one path component (the skel has validated it already; an
/// in-process caller may not have).
fn safe_component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

impl Store {
    /// The store in `dir` (created on the first save).
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    /// The `dataDir`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `att`: `<dataDir>/<containerID>_<ifname>.json`.
    pub fn file(&self, att: &Attachment) -> PathBuf {
        self.dir.join(format!("{}.json", stem(att)))
    }

    fn marker_dir(&self, network: &str) -> Option<PathBuf> {
        safe_component(network).then(|| self.dir.join(GC_DIR).join(network))
    }

    fn err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> TuningError {
        let path = path.to_path_buf();
        move |source| TuningError::Backup { what, path, source }
    }

    /// Writes the originals of `att` (replacing an older file, as the reference does) and
    /// its GC marker for `network`.
    pub fn save(&self, network: &str, att: &Attachment, saved: &Saved) -> Result<(), TuningError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(Store::err("failed to create backup directory", &self.dir))?;
        let path = self.file(att);
        write_file(&path, &saved.to_bytes()).map_err(Store::err("failed to save file", &path))?;
        if let Some(dir) = self.marker_dir(network) {
            let marker = dir.join(stem(att));
            // A concurrent DEL may remove the (then empty) directory between the two steps.
            let mut tries = 0;
            loop {
                let r = fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&dir)
                    .and_then(|()| write_file(&marker, b""));
                match r {
                    Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 3 => tries += 1,
                    r => break r.map_err(Store::err("failed to save GC marker", &marker))?,
                }
            }
        }
        Ok(())
    }

    /// The saved originals of `att`: `Ok(None)` without a file, `Err` when the file cannot
    /// be read; an undecodable file is `Ok(Some(None))` (nothing can be restored from it).
    pub fn load(&self, att: &Attachment) -> Result<Option<Option<Saved>>, TuningError> {
        let path = self.file(att);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).ok())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Store::err("failed to open file", &path)(e)),
        }
    }

    /// Removes the file of `att` and its GC marker of `network`; missing ones are fine.
    pub fn remove(&self, network: &str, att: &Attachment) -> Result<(), TuningError> {
        let path = self.file(att);
        remove_file(&path).map_err(Store::err("failed to remove file", &path))?;
        if let Some(dir) = self.marker_dir(network) {
            let marker = dir.join(stem(att));
            remove_file(&marker).map_err(Store::err("failed to remove GC marker", &marker))?;
            // Empty directories go too (a directory still in use is not empty).
            if fs::remove_dir(&dir).is_ok() {
                let _ = fs::remove_dir(self.dir.join(GC_DIR));
            }
        }
        Ok(())
    }

    /// The attachments `network` saved originals for (by their marker), as file stems
    /// `<containerID>_<ifname>`.
    pub fn marked(&self, network: &str) -> Result<Vec<String>, TuningError> {
        let Some(dir) = self.marker_dir(network) else {
            return Ok(Vec::new());
        };
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Store::err("failed to list GC markers", &dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(Store::err("failed to list GC markers", &dir))?;
            if let Some(name) = entry.file_name().to_str() {
                out.push(name.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Drops the file and marker of the attachment whose stem is `stem` (GC).
    pub fn forget(&self, network: &str, stem: &str) -> Result<(), TuningError> {
        let path = self.dir.join(format!("{stem}.json"));
        remove_file(&path).map_err(Store::err("failed to remove file", &path))?;
        if let Some(dir) = self.marker_dir(network) {
            let marker = dir.join(stem);
            remove_file(&marker).map_err(Store::err("failed to remove GC marker", &marker))?;
        }
        Ok(())
    }

    /// The stem of `att`, as [`Store::marked`] lists it.
    pub fn stem(att: &Attachment) -> String {
        stem(att)
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

fn remove_file(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_the_references() {
        let s = Saved {
            mac: "c2:11:22:33:44:55".into(),
            promisc: Some(false),
            mtu: 1500,
            allmulti: Some(true),
            txqlen: Some(1000),
        };
        assert_eq!(
            String::from_utf8(s.to_bytes()).unwrap(),
            "{\n \"mac\": \"c2:11:22:33:44:55\",\n \"promisc\": false,\n \"mtu\": 1500,\n \"allmulti\": true,\n \"txQLen\": 1000\n}"
        );
        assert_eq!(
            String::from_utf8(Saved::default().to_bytes()).unwrap(),
            "{}"
        );
        let only_mtu = Saved {
            mtu: 9000,
            ..Default::default()
        };
        assert_eq!(
            String::from_utf8(only_mtu.to_bytes()).unwrap(),
            "{\n \"mtu\": 9000\n}"
        );
    }

    #[test]
    fn a_go_file_is_read_and_unknown_keys_ignored() {
        // As Go v1.1.1 writes it (no txQLen), plus a key of a future version.
        let go = b"{\n \"mac\": \"0a:58:0a:58:00:05\",\n \"promisc\": false,\n \"mtu\": 1500,\n \"future\": 1\n}";
        let s: Saved = serde_json::from_slice(go).unwrap();
        assert_eq!(s.mac, "0a:58:0a:58:00:05");
        assert_eq!(
            (s.promisc, s.mtu, s.allmulti, s.txqlen),
            (Some(false), 1500, None, None)
        );
    }

    #[test]
    fn save_load_remove_and_markers() {
        let dir = std::env::temp_dir().join(format!("cni-tuning-store-{}", std::process::id()));
        let store = Store::new(dir.join("data"));
        let a = Attachment {
            container_id: "c_1".into(),
            ifname: "eth0".into(),
        };
        assert!(store.load(&a).unwrap().is_none());
        let saved = Saved {
            mtu: 1500,
            ..Default::default()
        };
        store.save("net", &a, &saved).unwrap();
        assert_eq!(store.file(&a), dir.join("data/c_1_eth0.json"));
        assert_eq!(store.load(&a).unwrap(), Some(Some(saved)));
        assert_eq!(store.marked("net").unwrap(), ["c_1_eth0"]);
        assert!(store.marked("other").unwrap().is_empty());
        store.remove("net", &a).unwrap();
        assert!(store.load(&a).unwrap().is_none());
        assert!(store.marked("net").unwrap().is_empty());
        store.remove("net", &a).unwrap();
        fs::write(store.file(&a), b"not json").unwrap();
        assert_eq!(store.load(&a).unwrap(), Some(None));
        fs::remove_dir_all(&dir).unwrap();
    }
}
