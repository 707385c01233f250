//! The sysctl allow-list: `/etc/cni/tuning/allowlist.conf`, as the reference reads it.
//!
//! One regular expression per line (surrounding whitespace and empty lines ignored). When the
//! file exists, every configured sysctl key (as written, before `IFNAME` is substituted) must
//! be matched by at least one line; a match anywhere in the key counts, as with Go's
//! `regexp.MatchString`, so anchor patterns (`^net\.ipv4\.conf\.IFNAME\.arp_notify$`) to mean
//! one key. Lines are compiled in order while matching, so a broken line after the one that
//! matches is not noticed, as in the reference. Without the file there is no restriction.
//!
//! Patterns use `regex-lite`'s syntax, which is Go's RE2 syntax for everything an
//! allow-list needs (classes, anchors, alternation, repetition).

use std::io;
use std::path::{Path, PathBuf};

use regex_lite::Regex;

use crate::error::ConfigError;

/// The reference's allow-list file.
pub const DEFAULT_ALLOWLIST: &str = "/etc/cni/tuning/allowlist.conf";

/// The lines of an allow-list file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowlist {
    patterns: Vec<String>,
}

impl Allowlist {
    /// Reads `path`; `Ok(None)` when the file does not exist.
    pub fn load(path: &Path) -> Result<Option<Allowlist>, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(Allowlist::parse(&text))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ConfigError::AllowlistRead {
                path: PathBuf::from(path),
                source,
            }),
        }
    }

    /// The patterns of a file's text: trimmed lines, empty ones dropped.
    pub fn parse(text: &str) -> Allowlist {
        Allowlist {
            patterns: text
                .split('\n')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
        }
    }

    /// The patterns, in file order.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether some pattern matches `key`; a pattern that does not compile before one
    /// matches is an error.
    pub fn allows(&self, key: &str) -> Result<bool, ConfigError> {
        for p in &self.patterns {
            let re = Regex::new(p).map_err(ConfigError::AllowlistPattern)?;
            if re.is_match(key) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_trimmed_and_empty_ones_dropped() {
        let l = Allowlist::parse(
            "  ^net\\.ipv4\\.conf\\.IFNAME\\.[a-z_]*$ \n\n\t\nnet.core.somaxconn\n",
        );
        assert_eq!(
            l.patterns(),
            [
                "^net\\.ipv4\\.conf\\.IFNAME\\.[a-z_]*$",
                "net.core.somaxconn"
            ]
        );
    }

    #[test]
    fn matching_is_unanchored_as_in_go() {
        let l = Allowlist::parse("^net\\.ipv4\\.conf\\.IFNAME\\.[a-z_]*$\nnet.core.somaxconn\n");
        assert!(l.allows("net.ipv4.conf.IFNAME.arp_notify").unwrap());
        // Not anchored: a key containing the pattern matches (and `.` is any character).
        assert!(l.allows("net.core.somaxconn.x").unwrap());
        assert!(l.allows("net/core/somaxconn").unwrap());
        assert!(!l.allows("net.ipv4.conf.eth0.arp_notify").unwrap());
        assert!(!l.allows("net.ipv4.ip_forward").unwrap());
    }

    #[test]
    fn a_broken_pattern_is_an_error_only_when_reached() {
        let l = Allowlist::parse("net.core.somaxconn\n(unclosed\n");
        assert!(l.allows("net.core.somaxconn").unwrap());
        assert!(matches!(
            l.allows("net.ipv4.ip_forward"),
            Err(ConfigError::AllowlistPattern(_))
        ));
    }

    #[test]
    fn a_missing_file_is_no_restriction() {
        assert_eq!(
            Allowlist::load(Path::new("/nonexistent/cni-tuning/allowlist.conf")).unwrap(),
            None
        );
    }
}
