//! Bounded reads: everything this crate reads to its end (a plugin's stdin, a delegated
//! plugin's stdout, cache and config files) stops past [`READ_LIMIT`] with a clear error
//! instead of growing without bound.

use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
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

/// Reads the regular file at `path` with [`read_capped`] and [`READ_LIMIT`]. It is opened
/// with `O_NONBLOCK`, so a FIFO or device in its place is refused (`InvalidData`), not waited
/// on.
pub fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    read_capped(file, READ_LIMIT)
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

    #[test]
    fn files_past_the_limit_and_fifos_are_refused() {
        let dir = std::env::temp_dir().join(format!("cni-proto-limit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.conflist");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(READ_LIMIT + 1).unwrap();
        let too_big = read_file(&big).unwrap_err();
        file.set_len(READ_LIMIT).unwrap();
        let at_limit = read_file(&big).map(|b| b.len());
        let fifo = dir.join("fifo.conflist");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let fifo_err = read_file(&fifo).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(too_big.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(at_limit.unwrap() as u64, READ_LIMIT);
        assert_eq!(fifo_err.kind(), io::ErrorKind::InvalidData);
    }
}
