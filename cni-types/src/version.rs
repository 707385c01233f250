//! Spec versions and what each one allows.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A CNI spec version such as `1.1.0`.
///
/// Versions compare numerically. Any `major.minor.patch` parses, so a config written for a
/// future spec version is still readable; [`Version::is_known`] tells whether this crate knows
/// its rules. An empty string is `0.1.0`, as in the reference library (a config without
/// `cniVersion` is a 0.1.0 config).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    major: u32,
    minor: u32,
    patch: u32,
}

/// The shape a result takes on the wire for a given version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResultFamily {
    /// 0.1.0 and 0.2.0: `ip4` / `ip6` objects.
    V020,
    /// 0.3.0, 0.3.1 and 0.4.0: `interfaces`, `ips[]` with `version`, `routes`.
    V040,
    /// 1.0.0 and later: as 0.4.0 without `ips[].version`, with the 1.1.0 interface and route
    /// fields.
    V100,
}

/// A version string that is not `major[.minor[.patch]]` with numeric parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionError(String);

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for VersionError {}

impl Version {
    /// 0.1.0: the initial spec.
    pub const V0_1_0: Version = Version::new(0, 1, 0);
    /// 0.2.0: adds VERSION.
    pub const V0_2_0: Version = Version::new(0, 2, 0);
    /// 0.3.0: rich results and chaining.
    pub const V0_3_0: Version = Version::new(0, 3, 0);
    /// 0.3.1: a typo fix.
    pub const V0_3_1: Version = Version::new(0, 3, 1);
    /// 0.4.0: CHECK, prevResult on DEL.
    pub const V0_4_0: Version = Version::new(0, 4, 0);
    /// 1.0.0: no `.conf` files, no `ips[].version`.
    pub const V1_0_0: Version = Version::new(1, 0, 0);
    /// 1.1.0: GC and STATUS, `cniVersions`, new route and interface fields.
    pub const V1_1_0: Version = Version::new(1, 1, 0);

    /// Every spec version, oldest first.
    pub const ALL: [Version; 7] = [
        Version::V0_1_0,
        Version::V0_2_0,
        Version::V0_3_0,
        Version::V0_3_1,
        Version::V0_4_0,
        Version::V1_0_0,
        Version::V1_1_0,
    ];

    /// The newest spec version, the one this crate speaks natively.
    pub const CURRENT: Version = Version::V1_1_0;

    /// A version from its parts.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// Parse like the reference `version.ParseVersion`: up to three numeric parts, missing
    /// parts are zero, the empty string is 0.1.0.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        if s.is_empty() {
            return Ok(Version::V0_1_0);
        }
        let parts: Vec<&str> = s.split('.').collect();
        if parts.len() > 3 {
            return Err(VersionError(format!(
                "invalid version {}: too many parts",
                crate::go::quote(s)
            )));
        }
        let mut nums = [0u32; 3];
        for (i, (part, name)) in parts.iter().zip(["major", "minor", "micro"]).enumerate() {
            nums[i] = part.parse().map_err(|_| {
                VersionError(format!(
                    "failed to convert {name} version part {}: invalid syntax",
                    crate::go::quote(part)
                ))
            })?;
        }
        Ok(Version::new(nums[0], nums[1], nums[2]))
    }

    /// The major part.
    pub fn major(&self) -> u32 {
        self.major
    }

    /// The minor part.
    pub fn minor(&self) -> u32 {
        self.minor
    }

    /// The patch part.
    pub fn patch(&self) -> u32 {
        self.patch
    }

    /// Whether this is one of [`Version::ALL`].
    pub fn is_known(&self) -> bool {
        Version::ALL.contains(self)
    }

    /// Chaining (`prevResult`, `.conflist`) exists from 0.3.0.
    pub fn supports_chaining(&self) -> bool {
        *self >= Version::V0_3_0
    }

    /// CHECK exists from 0.4.0.
    pub fn supports_check(&self) -> bool {
        *self >= Version::V0_4_0
    }

    /// GC exists from 1.1.0.
    pub fn supports_gc(&self) -> bool {
        *self >= Version::V1_1_0
    }

    /// STATUS exists from 1.1.0.
    pub fn supports_status(&self) -> bool {
        *self >= Version::V1_1_0
    }

    /// DEL receives `prevResult` from 0.4.0.
    pub fn passes_prev_result_on_del(&self) -> bool {
        *self >= Version::V0_4_0
    }

    /// Results carry `ips[].version` in 0.3.0 to 0.4.0.
    pub fn has_ip_version(&self) -> bool {
        self.result_family() == ResultFamily::V040
    }

    /// Versions before 0.3.0 allow at most one address per family.
    pub fn supports_multiple_ips_per_family(&self) -> bool {
        *self >= Version::V0_3_0
    }

    /// Single-plugin `.conf` files exist before 1.0.0.
    pub fn supports_conf_files(&self) -> bool {
        *self < Version::V1_0_0
    }

    /// The wire shape of results for this version.
    pub fn result_family(&self) -> ResultFamily {
        if *self < Version::V0_3_0 {
            ResultFamily::V020
        } else if *self < Version::V1_0_0 {
            ResultFamily::V040
        } else {
            ResultFamily::V100
        }
    }
}

impl Default for Version {
    /// The version of a config that names none: 0.1.0.
    fn default() -> Self {
        Version::V0_1_0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({self})")
    }
}

impl FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Version::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_the_reference() {
        assert_eq!(Version::parse("").unwrap(), Version::V0_1_0);
        assert_eq!(Version::parse("1.1.0").unwrap(), Version::V1_1_0);
        assert_eq!(Version::parse("1.1").unwrap(), Version::V1_1_0);
        assert_eq!(Version::parse("2").unwrap(), Version::new(2, 0, 0));
        assert!(Version::parse("1.2.3.4").is_err());
        assert!(Version::parse("a.b.c").is_err());
        assert!(Version::parse("1..0").is_err());
    }

    #[test]
    fn ordering_and_rules() {
        assert!(Version::V0_3_1 > Version::V0_3_0);
        assert!(Version::new(0, 10, 0) > Version::V0_4_0);
        assert!(!Version::V0_2_0.supports_chaining());
        assert!(Version::V0_3_0.supports_chaining());
        assert!(!Version::V0_3_1.supports_check());
        assert!(Version::V0_4_0.supports_check());
        assert!(!Version::V1_0_0.supports_gc());
        assert!(Version::V1_1_0.supports_gc() && Version::V1_1_0.supports_status());
        assert!(Version::V0_4_0.has_ip_version());
        assert!(!Version::V1_0_0.has_ip_version());
        assert!(!Version::V0_2_0.has_ip_version());
        assert_eq!(Version::V0_1_0.result_family(), ResultFamily::V020);
        assert_eq!(Version::V0_3_1.result_family(), ResultFamily::V040);
        assert_eq!(Version::V1_1_0.result_family(), ResultFamily::V100);
        assert!(Version::new(1, 2, 0).result_family() == ResultFamily::V100);
        assert!(!Version::new(1, 2, 0).is_known());
    }

    #[test]
    fn serde_is_a_string() {
        let v: Version = serde_json::from_str("\"0.3.1\"").unwrap();
        assert_eq!(v, Version::V0_3_1);
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"0.3.1\"");
    }
}
