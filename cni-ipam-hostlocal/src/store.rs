//! The reservation store seam: what the allocator needs from persistent state.
//!
//! [`Store::session`] takes the store's exclusive lock; everything done through the returned
//! [`Session`] happens under it, and dropping the session releases it. The disk store
//! ([`crate::disk::DiskStore`]) is the default; [`MemStore`] keeps everything in memory for
//! tests and for tools that manage addresses without a filesystem.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use cni_types::Attachment;

/// The reference's separator between container ID and interface name in a reservation.
pub const LINE_BREAK: &str = "\r\n";

/// A store failure (I/O on the disk store).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An I/O error on a path.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`open`, `write`, ...).
        op: &'static str,
        /// The path.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An invalid network name (it would be used as a directory name).
    #[error("invalid network name {0:?}")]
    InvalidNetworkName(String),
    /// The process that started this one died (see `DiskStore::with_parent`): the store is
    /// left alone.
    #[error("the parent process {was} is gone: leaving the store alone")]
    ParentGone {
        /// The parent's process ID when we started.
        was: i32,
    },
    /// A lock was poisoned (in-memory store only).
    #[error("store lock poisoned")]
    Poisoned,
}

/// Who holds a reservation, as recorded in its file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Holder {
    /// `containerID\r\nifname`: the current format.
    Attachment(Attachment),
    /// Only a container ID: files written by host-local before interface names were recorded.
    /// They match every interface of that container.
    Legacy(String),
}

impl Holder {
    /// Parse a reservation's content; surrounding whitespace is ignored, as in the reference.
    pub fn parse(content: &str) -> Holder {
        let t = content.trim();
        match t.split_once(LINE_BREAK) {
            Some((id, ifname)) => Holder::Attachment(Attachment {
                container_id: id.to_string(),
                ifname: ifname.to_string(),
            }),
            None => Holder::Legacy(t.to_string()),
        }
    }

    /// The content written for an attachment: `containerID\r\nifname` (the ID trimmed).
    pub fn content(owner: &Attachment) -> String {
        format!("{}{LINE_BREAK}{}", owner.container_id.trim(), owner.ifname)
    }

    /// Exactly this attachment (current format).
    pub fn is_exactly(&self, owner: &Attachment) -> bool {
        matches!(self, Holder::Attachment(a)
            if a.container_id == owner.container_id.trim() && a.ifname == owner.ifname)
    }

    /// A legacy reservation of this attachment's container.
    pub fn is_legacy_of(&self, owner: &Attachment) -> bool {
        matches!(self, Holder::Legacy(id) if id == owner.container_id.trim())
    }

    /// Either of the above: what the reference's `GetByID` and `FindByID` match.
    pub fn matches(&self, owner: &Attachment) -> bool {
        self.is_exactly(owner) || self.is_legacy_of(owner)
    }
}

/// One reserved address and who holds it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reservation {
    /// The address (the file name on disk).
    pub ip: IpAddr,
    /// The holder (the file content on disk).
    pub holder: Holder,
}

/// A reservation store.
pub trait Store {
    /// A locked view of the store.
    type Session<'a>: Session
    where
        Self: 'a;

    /// Lock the store and return a session. With `create` false, a store that does not exist
    /// yet gives `Ok(None)` and nothing is created (DEL, CHECK, GC and STATUS on a network
    /// that never allocated need not create its directory).
    fn session(&self, create: bool) -> Result<Option<Self::Session<'_>>, StoreError>;
}

/// Operations under the store's lock.
pub trait Session {
    /// The last address reserved from range set `set`, if recorded.
    fn last_reserved(&mut self, set: usize) -> Result<Option<IpAddr>, StoreError>;
    /// Reserve `ip` for `owner` if it is free, recording it as the last reserved address of
    /// range set `set`. `Ok(false)` when it is already taken.
    fn reserve(&mut self, ip: IpAddr, owner: &Attachment, set: usize) -> Result<bool, StoreError>;
    /// Reservations that [`Holder::matches`] `owner` (exact or legacy), sorted by the
    /// address's text as the reference's directory walk is.
    fn find(&mut self, owner: &Attachment) -> Result<Vec<Reservation>, StoreError>;
    /// Free `ip`. `Ok(false)` when it was not reserved.
    fn release(&mut self, ip: IpAddr) -> Result<bool, StoreError>;
    /// Every reservation, read from the source of truth.
    fn reservations(&mut self) -> Result<Vec<Reservation>, StoreError>;
    /// Every reserved address (without reading holders).
    fn addresses(&mut self) -> Result<Vec<IpAddr>, StoreError>;
}

/// Sort reservations as the reference's `filepath.Walk` visits files: by name.
pub(crate) fn sort_by_name(v: &mut [Reservation]) {
    v.sort_by_cached_key(|r| r.ip.to_string());
}

#[derive(Debug, Default)]
struct MemState {
    ips: BTreeMap<IpAddr, Holder>,
    last: BTreeMap<usize, IpAddr>,
}

/// An in-memory store with the disk store's semantics.
#[derive(Debug, Default)]
pub struct MemStore {
    state: Mutex<MemState>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        MemStore::default()
    }

    /// Insert a reservation directly (e.g. a legacy one), bypassing allocation.
    pub fn insert(&self, ip: IpAddr, holder: Holder) -> Result<(), StoreError> {
        self.lock()?.ips.insert(ip, holder);
        Ok(())
    }

    /// Set the last reserved address of a range set.
    pub fn set_last_reserved(&self, set: usize, ip: IpAddr) -> Result<(), StoreError> {
        self.lock()?.last.insert(set, ip);
        Ok(())
    }

    /// A copy of every reservation.
    pub fn snapshot(&self) -> Result<Vec<Reservation>, StoreError> {
        Ok(self
            .lock()?
            .ips
            .iter()
            .map(|(ip, h)| Reservation {
                ip: *ip,
                holder: h.clone(),
            })
            .collect())
    }

    fn lock(&self) -> Result<MutexGuard<'_, MemState>, StoreError> {
        self.state.lock().map_err(|_| StoreError::Poisoned)
    }
}

/// A [`MemStore`] session: holds its mutex.
#[derive(Debug)]
pub struct MemSession<'a>(MutexGuard<'a, MemState>);

impl Store for MemStore {
    type Session<'a> = MemSession<'a>;

    fn session(&self, _create: bool) -> Result<Option<MemSession<'_>>, StoreError> {
        Ok(Some(MemSession(self.lock()?)))
    }
}

impl Session for MemSession<'_> {
    fn last_reserved(&mut self, set: usize) -> Result<Option<IpAddr>, StoreError> {
        Ok(self.0.last.get(&set).copied())
    }

    fn reserve(&mut self, ip: IpAddr, owner: &Attachment, set: usize) -> Result<bool, StoreError> {
        if self.0.ips.contains_key(&ip) {
            return Ok(false);
        }
        self.0
            .ips
            .insert(ip, Holder::parse(&Holder::content(owner)));
        self.0.last.insert(set, ip);
        Ok(true)
    }

    fn find(&mut self, owner: &Attachment) -> Result<Vec<Reservation>, StoreError> {
        let mut v: Vec<Reservation> = self
            .0
            .ips
            .iter()
            .filter(|(_, h)| h.matches(owner))
            .map(|(ip, h)| Reservation {
                ip: *ip,
                holder: h.clone(),
            })
            .collect();
        sort_by_name(&mut v);
        Ok(v)
    }

    fn release(&mut self, ip: IpAddr) -> Result<bool, StoreError> {
        Ok(self.0.ips.remove(&ip).is_some())
    }

    fn reservations(&mut self) -> Result<Vec<Reservation>, StoreError> {
        let mut v: Vec<Reservation> = self
            .0
            .ips
            .iter()
            .map(|(ip, h)| Reservation {
                ip: *ip,
                holder: h.clone(),
            })
            .collect();
        sort_by_name(&mut v);
        Ok(v)
    }

    fn addresses(&mut self) -> Result<Vec<IpAddr>, StoreError> {
        Ok(self.0.ips.keys().copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn att(id: &str, ifname: &str) -> Attachment {
        Attachment {
            container_id: id.into(),
            ifname: ifname.into(),
        }
    }

    #[test]
    fn holder_parsing_and_matching() {
        let h = Holder::parse("  dummy\r\neth0\n ");
        assert_eq!(h, Holder::Attachment(att("dummy", "eth0")));
        assert!(h.is_exactly(&att("dummy", "eth0")));
        assert!(
            h.is_exactly(&att("  dummy\n ", "eth0")),
            "the ID is trimmed"
        );
        assert!(!h.matches(&att("dummy", "eth1")));
        let l = Holder::parse("dummy\n");
        assert_eq!(l, Holder::Legacy("dummy".into()));
        assert!(l.matches(&att("dummy", "eth7")));
        assert!(!l.is_exactly(&att("dummy", "eth7")));
        assert_eq!(Holder::content(&att(" a ", "eth0")), "a\r\neth0");
    }
}
