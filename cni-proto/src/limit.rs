//! Bounded reads: everything this crate reads to its end (a plugin's stdin, a delegated
//! plugin's stdout, cache and config files) stops past [`READ_LIMIT`] with a clear error
//! instead of growing without bound.

use std::io::{self, Read};
use std::path::Path;

/// The most we read of one input: 16 MiB, far more than any real config, result or cache
/// file (they are kilobytes).
pub const READ_LIMIT: u64 = 16 << 20;

/// Reads `reader` to its end, or fails with [`io::ErrorKind::FileTooLarge`] ("more than N
/// bytes") once more than `limit` bytes arrive. Never holds more than `limit + 1` bytes.
pub fn read_capped(reader: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    reader.take(limit.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("more than {limit} bytes"),
        ));
    }
    Ok(buf)
}

/// Reads the file at `path` with [`read_capped`] and [`READ_LIMIT`].
pub fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    read_capped(std::fs::File::open(path)?, READ_LIMIT)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn one_byte_past_the_limit_is_refused() {
        assert_eq!(read_capped(io::repeat(7).take(10), 10).unwrap().len(), 10);
        let err = read_capped(io::repeat(7).take(11), 10).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(err.to_string(), "more than 10 bytes");
        let err = read_capped(io::repeat(7), READ_LIMIT).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
    }
}
