//! The owner index: an on-disk hash table from a reservation's holder to its addresses, so ADD's
//! duplicate check, DEL and CHECK need not read every reservation file.
//!
//! It is a cache and never the source of truth. It is trusted only when its header matches the
//! store directory exactly: same device and inode, same boot (`boot_id`), and the directory's
//! mtime and ctime equal the stamp recorded when it was last written. Every writer changes the
//! directory when it creates or removes a reservation file (the reference plugin included), and
//! the stamp is an mtime that our last writer set explicitly to one second in the past, which no
//! later change can reproduce; any change by anyone else therefore invalidates the index and
//! the next operation rebuilds it from the files. A new boot invalidates it too, since page cache
//! writes may have been lost.
//!
//! Layout: a 128-byte header, then `capacity` (a power of two) slots of 32 bytes, linear
//! probing, load kept at or below one half. Slot: state (0 empty, 1 used, 2 deleted), family
//! (4 or 6), 6 bytes padding, the FNV-1a hash of the holder text (`id\r\nifname`, or `id` for
//! legacy files) little-endian, and the address in 16 bytes. The file starts with a magic and
//! holds no text a container ID could equal, so the reference plugin's directory walks, which
//! compare every file's content to an ID, never match it.

use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{FileExt, MetadataExt};

/// The index file's name in the store directory.
pub(crate) const INDEX_NAME: &str = ".cni-rs-host-local.index";
/// The fixed temporary name older versions wrote the index through (now an unpredictable one,
/// see `create_tmp`); removed when found.
pub(crate) const OLD_INDEX_TMP: &str = ".cni-rs-host-local.index.tmp";

const MAGIC: [u8; 8] = *b"CNIRSHL\0";
const VERSION: u32 = 1;
const HEADER: u64 = 128;
const SLOT: u64 = 32;
const MIN_CAPACITY: u64 = 64;
const EMPTY: u8 = 0;
const USED: u8 = 1;
const DELETED: u8 = 2;
/// Slots read per probe step.
const CHUNK: u64 = 64;

/// FNV-1a, 64 bits: stable across builds (the std hasher is not).
pub(crate) fn hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// What identifies the directory state an index describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub dev: u64,
    pub ino: u64,
    pub mtime_sec: i64,
    pub mtime_nsec: i64,
    pub ctime_sec: i64,
    pub ctime_nsec: i64,
    pub boot_id: [u8; 16],
}

impl Stamp {
    pub(crate) fn of(meta: &std::fs::Metadata, boot_id: [u8; 16]) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            mtime_sec: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            ctime_sec: meta.ctime(),
            ctime_nsec: meta.ctime_nsec(),
            boot_id,
        }
    }
}

/// This boot's ID, `None` when it cannot be read (then the index is not used: a reboot could
/// not be detected).
pub(crate) fn boot_id() -> Option<[u8; 16]> {
    let mut buf = [0u8; 64];
    let n = std::io::Read::read(
        &mut File::open("/proc/sys/kernel/random/boot_id").ok()?,
        &mut buf,
    )
    .ok()?;
    let hex: Vec<u8> = buf[..n]
        .iter()
        .copied()
        .filter(|b| b.is_ascii_hexdigit())
        .collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    (out != [0u8; 16]).then_some(out)
}

fn encode_ip(ip: IpAddr) -> (u8, [u8; 16]) {
    let mut a = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => {
            a[..4].copy_from_slice(&v4.octets());
            (4, a)
        }
        IpAddr::V6(v6) => (6, v6.octets()),
    }
}

fn decode_ip(family: u8, a: &[u8]) -> Option<IpAddr> {
    match family {
        4 => Some(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))),
        6 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&a[..16]);
            Some(IpAddr::V6(Ipv6Addr::from(o)))
        }
        _ => None,
    }
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(x)
}

fn i64_at(b: &[u8], off: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[off..off + 8]);
    i64::from_le_bytes(x)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(x)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    capacity: u64,
    used: u64,
    deleted: u64,
    stamp: Stamp,
}

impl Header {
    fn encode(&self) -> [u8; HEADER as usize] {
        let mut b = [0u8; HEADER as usize];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&(SLOT as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.capacity.to_le_bytes());
        b[24..32].copy_from_slice(&self.used.to_le_bytes());
        b[32..40].copy_from_slice(&self.deleted.to_le_bytes());
        let s = &self.stamp;
        b[40..48].copy_from_slice(&s.dev.to_le_bytes());
        b[48..56].copy_from_slice(&s.ino.to_le_bytes());
        b[56..64].copy_from_slice(&s.mtime_sec.to_le_bytes());
        b[64..72].copy_from_slice(&s.mtime_nsec.to_le_bytes());
        b[72..80].copy_from_slice(&s.ctime_sec.to_le_bytes());
        b[80..88].copy_from_slice(&s.ctime_nsec.to_le_bytes());
        b[88..104].copy_from_slice(&s.boot_id);
        let sum = hash_bytes(&b[..120]);
        b[120..128].copy_from_slice(&sum.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Header> {
        if b.len() < HEADER as usize
            || b[0..8] != MAGIC
            || u32_at(b, 8) != VERSION
            || u64::from(u32_at(b, 12)) != SLOT
            || hash_bytes(&b[..120]) != u64_at(b, 120)
        {
            return None;
        }
        let capacity = u64_at(b, 16);
        if capacity < MIN_CAPACITY || !capacity.is_power_of_two() {
            return None;
        }
        let mut boot_id = [0u8; 16];
        boot_id.copy_from_slice(&b[88..104]);
        Some(Header {
            capacity,
            used: u64_at(b, 24),
            deleted: u64_at(b, 32),
            stamp: Stamp {
                dev: u64_at(b, 40),
                ino: u64_at(b, 48),
                mtime_sec: i64_at(b, 56),
                mtime_nsec: i64_at(b, 64),
                ctime_sec: i64_at(b, 72),
                ctime_nsec: i64_at(b, 80),
                boot_id,
            },
        })
    }
}

fn hash_bytes(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in b {
        h ^= u64::from(*x);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn encode_slot(state: u8, h: u64, ip: IpAddr) -> [u8; SLOT as usize] {
    let (family, a) = encode_ip(ip);
    let mut s = [0u8; SLOT as usize];
    s[0] = state;
    s[1] = family;
    s[8..16].copy_from_slice(&h.to_le_bytes());
    s[16..32].copy_from_slice(&a);
    s
}

/// An open, trusted index.
#[derive(Debug)]
pub(crate) struct Index {
    file: File,
    header: Header,
}

impl Index {
    /// Open the index and return it if its header matches `current` exactly.
    pub(crate) fn open_valid(dir: &File, current: &Stamp) -> Option<Index> {
        let file = super::open_existing(dir, INDEX_NAME, true).ok()?;
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let mut b = [0u8; HEADER as usize];
        file.read_exact_at(&mut b, 0).ok()?;
        let header = Header::decode(&b)?;
        (header.stamp == *current).then_some(Index { file, header })
    }

    /// Write a fresh index holding `entries` (via a new temporary file and a rename, which
    /// replaces whatever is at the index's name, a symlink included, without following it),
    /// sized for them. The stamp is written later by [`Index::seal`].
    pub(crate) fn create(dir: &File, entries: &[(u64, IpAddr)]) -> std::io::Result<Index> {
        let n = entries.len() as u64;
        let capacity = (n * 2 + MIN_CAPACITY).next_power_of_two().max(MIN_CAPACITY);
        let mut buf = vec![0u8; (HEADER + capacity * SLOT) as usize];
        let mask = capacity - 1;
        for &(h, ip) in entries {
            let mut i = h & mask;
            loop {
                let off = (HEADER + i * SLOT) as usize;
                if buf[off] == EMPTY {
                    buf[off..off + SLOT as usize].copy_from_slice(&encode_slot(USED, h, ip));
                    break;
                }
                i = (i + 1) & mask;
            }
        }
        let header = Header {
            capacity,
            used: n,
            deleted: 0,
            stamp: Stamp {
                dev: 0,
                ino: 0,
                mtime_sec: 0,
                mtime_nsec: 0,
                ctime_sec: 0,
                ctime_nsec: 0,
                boot_id: [0; 16],
            },
        };
        buf[..HEADER as usize].copy_from_slice(&header.encode());
        let (tmp, mut file) = super::create_tmp(dir, 0o600)?;
        let placed = file
            .write_all(&buf)
            .and_then(|()| Ok(nix::fcntl::renameat(dir, tmp.as_str(), dir, INDEX_NAME)?));
        if let Err(e) = placed {
            let _ = super::unlink(dir, &tmp);
            return Err(e);
        }
        Ok(Index { file, header })
    }

    /// Every address recorded under holder hash `h` (candidates: the caller verifies them).
    pub(crate) fn lookup(&self, h: u64) -> std::io::Result<Vec<IpAddr>> {
        let mut out = Vec::new();
        self.probe(h, |_, slot| {
            if slot[0] == USED
                && u64_at(slot, 8) == h
                && let Some(ip) = decode_ip(slot[1], &slot[16..32])
            {
                out.push(ip);
            }
            slot[0] != EMPTY
        })?;
        Ok(out)
    }

    /// Visit slots from `h`'s home position until `f` returns false (or every slot was seen).
    fn probe(&self, h: u64, mut f: impl FnMut(u64, &[u8]) -> bool) -> std::io::Result<()> {
        let cap = self.header.capacity;
        let mut i = h & (cap - 1);
        let mut seen = 0u64;
        let mut buf = vec![0u8; (CHUNK * SLOT) as usize];
        while seen < cap {
            let n = CHUNK.min(cap - i).min(cap - seen);
            let bytes = &mut buf[..(n * SLOT) as usize];
            self.file.read_exact_at(bytes, HEADER + i * SLOT)?;
            for k in 0..n {
                let slot = &bytes[(k * SLOT) as usize..((k + 1) * SLOT) as usize];
                if !f(i + k, slot) {
                    return Ok(());
                }
            }
            seen += n;
            i = (i + n) & (cap - 1);
        }
        Ok(())
    }

    /// Whether no entry is recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.header.used == 0
    }

    /// Whether one more entry fits without exceeding the load factor.
    pub(crate) fn has_room(&self) -> bool {
        (self.header.used + self.header.deleted + 1) * 2 <= self.header.capacity
    }

    /// Record `ip` under holder hash `h`. The caller ensures [`Index::has_room`].
    pub(crate) fn insert(&mut self, h: u64, ip: IpAddr) -> std::io::Result<()> {
        let mut target = None;
        self.probe(h, |i, slot| {
            if slot[0] == USED {
                return true;
            }
            target = Some((i, slot[0] == DELETED));
            false
        })?;
        let Some((i, was_deleted)) = target else {
            return Err(std::io::Error::other("index full"));
        };
        self.file
            .write_all_at(&encode_slot(USED, h, ip), HEADER + i * SLOT)?;
        self.header.used += 1;
        if was_deleted {
            self.header.deleted -= 1;
        }
        Ok(())
    }

    /// Forget `ip` under holder hash `h`. Returns whether it was recorded.
    pub(crate) fn remove(&mut self, h: u64, ip: IpAddr) -> std::io::Result<bool> {
        let want = encode_slot(USED, h, ip);
        let mut found = None;
        self.probe(h, |i, slot| {
            if slot == want {
                found = Some(i);
                return false;
            }
            slot[0] != EMPTY
        })?;
        let Some(i) = found else { return Ok(false) };
        self.file.write_all_at(&[DELETED], HEADER + i * SLOT)?;
        self.header.used -= 1;
        self.header.deleted += 1;
        Ok(true)
    }

    /// Every recorded entry (for a resize).
    pub(crate) fn entries(&self) -> std::io::Result<Vec<(u64, IpAddr)>> {
        let cap = self.header.capacity;
        let mut buf = vec![0u8; (cap * SLOT) as usize];
        self.file.read_exact_at(&mut buf, HEADER)?;
        Ok(buf
            .chunks_exact(SLOT as usize)
            .filter(|s| s[0] == USED)
            .filter_map(|s| Some((u64_at(s, 8), decode_ip(s[1], &s[16..32])?)))
            .collect())
    }

    /// Record the directory state this index now describes.
    pub(crate) fn seal(&mut self, stamp: Stamp) -> std::io::Result<()> {
        self.header.stamp = stamp;
        self.file.write_all_at(&self.header.encode(), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("hl-index-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn stamp(n: i64) -> Stamp {
        Stamp {
            dev: 1,
            ino: 2,
            mtime_sec: n,
            mtime_nsec: 5,
            ctime_sec: n,
            ctime_nsec: 6,
            boot_id: [7; 16],
        }
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn insert_lookup_remove_and_validate() {
        let d = tmpdir("basic");
        let df = File::open(&d).unwrap();
        let a: IpAddr = "10.0.0.2".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        let mut idx = Index::create(&df, &[(hash("x\r\neth0"), a)]).unwrap();
        assert!(Index::open_valid(&df, &stamp(1)).is_none(), "unsealed");
        idx.insert(hash("y"), b).unwrap();
        idx.seal(stamp(1)).unwrap();
        let idx = Index::open_valid(&df, &stamp(1)).unwrap();
        assert!(Index::open_valid(&df, &stamp(2)).is_none(), "stamp differs");
        assert_eq!(idx.lookup(hash("x\r\neth0")).unwrap(), [a]);
        assert_eq!(idx.lookup(hash("y")).unwrap(), [b]);
        assert!(idx.lookup(hash("z")).unwrap().is_empty());
        let mut idx = idx;
        assert!(idx.remove(hash("y"), b).unwrap());
        assert!(!idx.remove(hash("y"), b).unwrap());
        assert!(idx.lookup(hash("y")).unwrap().is_empty());
        assert_eq!(idx.entries().unwrap(), [(hash("x\r\neth0"), a)]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn many_entries_and_collisions() {
        let d = tmpdir("many");
        let df = File::open(&d).unwrap();
        let entries: Vec<(u64, IpAddr)> = (0..1000u32)
            .map(|i| {
                let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
                // Every tenth shares a hash with its neighbour to exercise probing.
                (hash(&format!("c{}", i - i % 2)), ip)
            })
            .collect();
        let mut idx = Index::create(&df, &entries).unwrap();
        for (h, ip) in &entries {
            assert!(idx.lookup(*h).unwrap().contains(ip));
        }
        assert_eq!(idx.lookup(hash("c10")).unwrap().len(), 2);
        while idx.has_room() {
            idx.insert(hash("filler"), "10.9.9.9".parse().unwrap())
                .unwrap();
        }
        assert!(idx.header.used * 2 <= idx.header.capacity);
        let mut sorted = idx.entries().unwrap();
        sorted.sort();
        assert_eq!(sorted.len() as u64, idx.header.used);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn corrupt_header_is_rejected() {
        let d = tmpdir("corrupt");
        let df = File::open(&d).unwrap();
        let mut idx = Index::create(&df, &[]).unwrap();
        idx.seal(stamp(3)).unwrap();
        assert!(Index::open_valid(&df, &stamp(3)).is_some());
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(d.join(INDEX_NAME))
            .unwrap();
        f.write_all_at(&[9], 20).unwrap();
        assert!(Index::open_valid(&df, &stamp(3)).is_none());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
