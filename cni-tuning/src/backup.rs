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
//!
//! The store never follows a name planted in `dataDir` (a symlink or a FIFO at a file's or a
//! marker's name, a symlink as `.gc` or as a network's marker directory): every file is
//! touched relative to an opened directory through [`cni_linux::fsutil::Dir`]. A file is
//! written to an unpredictable temporary name with `O_EXCL | O_NOFOLLOW` and renamed over
//! its name (a symlink there is replaced, its target untouched), and read only if it is a
//! regular file of at most [`READ_LIMIT`] bytes, without waiting on a FIFO. Anything else at
//! a file's name holds no originals: DEL removes it (the name, never a target) and succeeds.

use std::io;
use std::path::{Path, PathBuf};

use cni_linux::fsutil::{Dir, READ_LIMIT};
use cni_linux::netlink::Errno;
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
        self.dir.join(file_name(&stem(att)))
    }

    fn err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> TuningError {
        let path = path.to_path_buf();
        move |source| TuningError::Backup { what, path, source }
    }

    /// The marker directory of `network`, opened (created with `create`); `Ok(None)` when
    /// it is missing, or is not a real directory and `create` is false (nothing of ours
    /// can be there then).
    fn markers(&self, data: &Dir, network: &str, create: bool) -> io::Result<Option<Dir>> {
        if !safe_component(network) {
            return Ok(None);
        }
        let opened = data.subdir(GC_DIR, create).and_then(|gc| match gc {
            Some(gc) => gc.subdir(network, create),
            None => Ok(None),
        });
        match opened {
            Err(e) if !create && not_a_directory(&e) => Ok(None),
            r => r,
        }
    }

    /// Writes the originals of `att` (replacing an older file, as the reference does) and
    /// its GC marker for `network`.
    pub fn save(&self, network: &str, att: &Attachment, saved: &Saved) -> Result<(), TuningError> {
        let data = Dir::create(&self.dir)
            .map_err(Store::err("failed to create backup directory", &self.dir))?;
        let path = self.file(att);
        data.write_atomic(file_name(&stem(att)), &saved.to_bytes(), 0o600)
            .map_err(Store::err("failed to save file", &path))?;
        if safe_component(network) {
            let marker = self.dir.join(GC_DIR).join(network).join(stem(att));
            // A concurrent DEL may remove the (then empty) directories between the steps.
            let mut tries = 0;
            loop {
                let r = self
                    .markers(&data, network, true)
                    .and_then(|dir| match dir {
                        Some(dir) => dir.write_atomic(stem(att), b"", 0o600),
                        None => Err(io::ErrorKind::NotFound.into()),
                    });
                match r {
                    Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 3 => tries += 1,
                    r => break r.map_err(Store::err("failed to save GC marker", &marker))?,
                }
            }
        }
        Ok(())
    }

    /// The saved originals of `att`: `Ok(None)` without a file, `Err` when the file cannot
    /// be read; a file that holds no originals is `Ok(Some(None))` (nothing can be restored
    /// from it): undecodable, or refused unread (a symlink, a FIFO or anything but a regular
    /// file, more than [`READ_LIMIT`] bytes).
    pub fn load(&self, att: &Attachment) -> Result<Option<Option<Saved>>, TuningError> {
        let path = self.file(att);
        let Some(data) = self
            .open_data()
            .map_err(Store::err("failed to open file", &path))?
        else {
            return Ok(None);
        };
        match data.read_capped(file_name(&stem(att)), READ_LIMIT) {
            Ok(Some(bytes)) => Ok(Some(serde_json::from_slice(&bytes).ok())),
            Ok(None) => Ok(None),
            Err(e) if refused(&e) => Ok(Some(None)),
            Err(e) => Err(Store::err("failed to open file", &path)(e)),
        }
    }

    /// Removes the file of `att` and its GC marker of `network`; missing ones are fine.
    pub fn remove(&self, network: &str, att: &Attachment) -> Result<(), TuningError> {
        self.drop_stem(network, &stem(att))
    }

    /// The attachments `network` saved originals for (by their marker), as file stems
    /// `<containerID>_<ifname>`.
    pub fn marked(&self, network: &str) -> Result<Vec<String>, TuningError> {
        let dir = self.dir.join(GC_DIR).join(network);
        let names = self
            .open_data()
            .and_then(|data| match data {
                Some(data) => self.markers(&data, network, false),
                None => Ok(None),
            })
            .and_then(|markers| markers.map(|m| m.names()).transpose())
            .map_err(Store::err("failed to list GC markers", &dir))?;
        // Temporary files start with a dot, container IDs never do.
        Ok(names
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| n.into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect())
    }

    /// Drops the file and marker of the attachment whose stem is `stem` (GC).
    pub fn forget(&self, network: &str, stem: &str) -> Result<(), TuningError> {
        self.drop_stem(network, stem)
    }

    /// The `dataDir`, opened; `Ok(None)` when it is missing.
    fn open_data(&self) -> io::Result<Option<Dir>> {
        Dir::open(&self.dir)
    }

    fn drop_stem(&self, network: &str, stem: &str) -> Result<(), TuningError> {
        let path = self.dir.join(file_name(stem));
        let Some(data) = self
            .open_data()
            .map_err(Store::err("failed to remove file", &path))?
        else {
            return Ok(());
        };
        data.remove(file_name(stem))
            .map_err(Store::err("failed to remove file", &path))?;
        let marker = self.dir.join(GC_DIR).join(network).join(stem);
        let markers = self
            .markers(&data, network, false)
            .map_err(Store::err("failed to remove GC marker", &marker))?;
        if let Some(markers) = markers {
            markers
                .remove(stem)
                .map_err(Store::err("failed to remove GC marker", &marker))?;
            markers.remove_temporaries(stem);
            // Empty directories go too (a directory still in use is not empty).
            if let Ok(Some(gc)) = data.subdir(GC_DIR, false)
                && gc.remove_dir(network).unwrap_or(false)
            {
                let _ = data.remove_dir(GC_DIR);
            }
        }
        data.remove_temporaries(file_name(stem));
        Ok(())
    }

    /// The stem of `att`, as [`Store::marked`] lists it.
    pub fn stem(att: &Attachment) -> String {
        stem(att)
    }
}

/// `<stem>.json`, the reference's file name.
fn file_name(stem: &str) -> String {
    format!("{stem}.json")
}

/// Whether `e` says a directory on the way is not a real directory (a symlink, a file).
fn not_a_directory(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::ELOOP as i32) || e.raw_os_error() == Some(Errno::ENOTDIR as i32)
}

/// Whether `e` is [`Dir::read_capped`] refusing what is at a file's name (a symlink, a FIFO
/// or other non-regular file, a file too large), as opposed to failing to read a file.
fn refused(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::ELOOP as i32)
        || matches!(
            e.kind(),
            io::ErrorKind::InvalidData | io::ErrorKind::FileTooLarge
        )
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Read;
    use std::os::unix::fs::symlink;
    use std::sync::mpsc;
    use std::time::Duration;

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

    /// A fresh directory under the temp dir with `data/.gc/net` and a file `outside` that
    /// planted symlinks point to; removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let mut r = [0u8; 8];
            fs::File::open("/dev/urandom")
                .unwrap()
                .read_exact(&mut r)
                .unwrap();
            let p = std::env::temp_dir().join(format!(
                "cni-tuning-{tag}-{}-{:x}",
                std::process::id(),
                u64::from_le_bytes(r)
            ));
            fs::create_dir_all(p.join("data/.gc/net")).unwrap();
            fs::write(p.join("outside"), b"precious").unwrap();
            Scratch(p)
        }

        fn data(&self) -> PathBuf {
            self.0.join("data")
        }

        fn outside(&self) -> PathBuf {
            self.0.join("outside")
        }

        fn outside_unchanged(&self) {
            assert_eq!(fs::read(self.outside()).unwrap(), b"precious");
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn c1() -> Attachment {
        Attachment {
            container_id: "c1".into(),
            ifname: "eth0".into(),
        }
    }

    fn mtu(mtu: u32) -> Saved {
        Saved {
            mtu,
            ..Default::default()
        }
    }

    fn is_regular(p: &Path) -> bool {
        fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file())
    }

    /// Runs `f` on another thread; a hang (an open or read that waits forever) fails the
    /// test instead of blocking it.
    fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the store blocked")
    }

    #[test]
    fn symlinks_at_the_file_and_the_marker_are_never_followed() {
        let s = Scratch::new("symlink");
        let store = Store::new(s.data());
        let file = s.data().join("c1_eth0.json");
        let marker = s.data().join(".gc/net/c1_eth0");
        let plant = || {
            for p in [&file, &marker] {
                let _ = fs::remove_file(p);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                symlink(s.outside(), p).unwrap();
            }
        };
        plant();
        // Not followed on read: nothing to restore from it.
        assert_eq!(store.load(&c1()).unwrap(), Some(None));
        // Replaced (not written through) on save.
        store.save("net", &c1(), &mtu(1500)).unwrap();
        s.outside_unchanged();
        assert!(is_regular(&file) && is_regular(&marker));
        assert_eq!(fs::read(&file).unwrap(), b"{\n \"mtu\": 1500\n}");
        assert_eq!(store.load(&c1()).unwrap(), Some(Some(mtu(1500))));
        assert_eq!(store.marked("net").unwrap(), ["c1_eth0"]);
        // Unlinked themselves on DEL and on GC.
        plant();
        store.remove("net", &c1()).unwrap();
        assert!(fs::symlink_metadata(&file).is_err());
        assert!(fs::symlink_metadata(&marker).is_err());
        plant();
        store.forget("net", "c1_eth0").unwrap();
        assert!(fs::symlink_metadata(&file).is_err());
        assert!(fs::symlink_metadata(&marker).is_err());
        s.outside_unchanged();
        // Nothing else is left behind (no temporary files).
        assert!(fs::read_dir(s.data()).unwrap().next().is_none());
    }

    #[test]
    fn symlinked_marker_directories_are_never_followed() {
        let s = Scratch::new("gcdir");
        let elsewhere = s.0.join("elsewhere");
        fs::create_dir_all(elsewhere.join("net")).unwrap();
        fs::remove_dir_all(s.data().join(".gc")).unwrap();
        symlink(&elsewhere, s.data().join(".gc")).unwrap();
        let store = Store::new(s.data());
        // The marker cannot be written safely: refused, nothing written through the link.
        assert!(store.save("net", &c1(), &mtu(1500)).is_err());
        assert!(
            fs::read_dir(elsewhere.join("net"))
                .unwrap()
                .next()
                .is_none()
        );
        assert!(store.marked("net").unwrap().is_empty());
        store.remove("net", &c1()).unwrap();
        assert!(fs::symlink_metadata(s.data().join("c1_eth0.json")).is_err());
        // The same one level down.
        fs::remove_file(s.data().join(".gc")).unwrap();
        fs::create_dir(s.data().join(".gc")).unwrap();
        symlink(elsewhere.join("net"), s.data().join(".gc/net")).unwrap();
        assert!(store.save("net", &c1(), &mtu(1500)).is_err());
        assert!(
            fs::read_dir(elsewhere.join("net"))
                .unwrap()
                .next()
                .is_none()
        );
        store.remove("net", &c1()).unwrap();
    }

    #[test]
    fn a_fifo_at_the_file_is_refused_without_blocking() {
        let s = Scratch::new("fifo");
        let file = s.data().join("c1_eth0.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&file)
            .status()
            .unwrap();
        assert!(made.success());
        let data = s.data();
        let loaded = bounded(move || Store::new(data).load(&c1()).map_err(|e| e.to_string()));
        assert_eq!(loaded.unwrap(), Some(None));
        // DEL removes it (it holds no originals); the name only.
        let data = s.data();
        bounded(move || {
            Store::new(data)
                .remove("net", &c1())
                .map_err(|e| e.to_string())
        })
        .unwrap();
        assert!(fs::symlink_metadata(&file).is_err());
    }

    #[test]
    fn a_file_past_the_limit_is_refused() {
        let s = Scratch::new("big");
        let store = Store::new(s.data());
        let file = s.data().join("c1_eth0.json");
        // Valid JSON, padded with spaces to `len` bytes.
        let padded = |len: u64| {
            let mut body = b"{\"mtu\": 1500".to_vec();
            body.resize(len as usize - 1, b' ');
            body.push(b'}');
            fs::write(&file, body).unwrap();
        };
        padded(READ_LIMIT + 1);
        assert_eq!(store.load(&c1()).unwrap(), Some(None));
        padded(READ_LIMIT);
        assert_eq!(store.load(&c1()).unwrap(), Some(Some(mtu(1500))));
    }
}
