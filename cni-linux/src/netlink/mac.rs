//! MAC address helpers: parse and format `aa:bb:cc:dd:ee:ff`, random locally administered
//! unicast addresses.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// A MAC string that is not six `:`- or `-`-separated hex octets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}")]
pub struct MacParseError(pub String);

/// Parses `aa:bb:cc:dd:ee:ff` (also `-`-separated, any case).
pub fn parse(s: &str) -> Result<[u8; 6], MacParseError> {
    let err = || MacParseError(s.to_string());
    let sep = if s.contains('-') { '-' } else { ':' };
    let mut out = [0u8; 6];
    let mut parts = s.split(sep);
    for byte in &mut out {
        let part = parts.next().ok_or_else(err)?;
        if part.len() != 2 {
            return Err(err());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| err())?;
    }
    if parts.next().is_some() {
        return Err(err());
    }
    Ok(out)
}

/// Formats as lowercase `aa:bb:cc:dd:ee:ff` (the form CNI results use).
pub fn format(mac: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
    )
}

/// A random locally administered unicast MAC (`x2:`, `x6:`, `xa:` or `xe:` first octet).
///
/// Randomness comes from the standard library's per-process random hash keys mixed with a
/// counter and the clock, so no system call is needed; good for MACs, not for secrets.
pub fn random_local() -> [u8; 6] {
    let bits = random_u64();
    let b = bits.to_le_bytes();
    let mut mac = [b[0], b[1], b[2], b[3], b[4], b[5]];
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

/// True if the locally administered bit is set.
pub fn is_local(mac: &[u8; 6]) -> bool {
    mac[0] & 0x02 != 0
}

/// True if the multicast (group) bit is clear.
pub fn is_unicast(mac: &[u8; 6]) -> bool {
    mac[0] & 0x01 == 0
}

fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::hash::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(d.as_nanos());
    }
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        let mac = parse("0A:58:0a:f4:00:0B").unwrap();
        assert_eq!(mac, [0x0a, 0x58, 0x0a, 0xf4, 0x00, 0x0b]);
        assert_eq!(format(&mac), "0a:58:0a:f4:00:0b");
        assert_eq!(parse("02-00-00-00-00-01").unwrap(), [2, 0, 0, 0, 0, 1]);
        for bad in [
            "",
            "0a:58:0a:f4:00",
            "0a:58:0a:f4:00:0b:0c",
            "0a:58:0a:f4:00:0",
            "zz:58:0a:f4:00:0b",
            "0a:58:0a:f4:000b",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn random_macs_are_local_unicast_and_differ() {
        let a = random_local();
        let b = random_local();
        for m in [a, b] {
            assert!(is_local(&m) && is_unicast(&m), "{}", format(&m));
        }
        assert_ne!(a, b);
    }
}
