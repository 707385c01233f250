//! Looping a test over spec versions.
//!
//! ```
//! use cni_testkit::versions::{self, Versions};
//! use cni_types::Version;
//!
//! assert_eq!(Versions::with_check().first(), Some(&Version::V0_4_0));
//! versions::each(&Versions::with_chaining(), |v| {
//!     assert!(v.supports_chaining());
//! });
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};

use cni_types::Version;

/// Sets of spec versions, oldest first.
#[derive(Debug, Clone, Copy)]
pub struct Versions;

impl Versions {
    /// Every spec version.
    pub fn all() -> Vec<Version> {
        Version::ALL.to_vec()
    }

    /// Versions matching `pred`.
    pub fn matching(pred: impl Fn(&Version) -> bool) -> Vec<Version> {
        Version::ALL.iter().copied().filter(|v| pred(v)).collect()
    }

    /// Versions with chaining (`prevResult`): 0.3.0 and later.
    pub fn with_chaining() -> Vec<Version> {
        Self::matching(Version::supports_chaining)
    }

    /// Versions with CHECK: 0.4.0 and later.
    pub fn with_check() -> Vec<Version> {
        Self::matching(Version::supports_check)
    }

    /// Versions with GC: 1.1.0 and later.
    pub fn with_gc() -> Vec<Version> {
        Self::matching(Version::supports_gc)
    }

    /// Versions with STATUS: 1.1.0 and later.
    pub fn with_status() -> Vec<Version> {
        Self::matching(Version::supports_status)
    }

    /// Versions from `min` on.
    pub fn since(min: Version) -> Vec<Version> {
        Self::matching(|v| *v >= min)
    }
}

/// Run `f` for every version, even after one panics, then panic naming every version that
/// failed and why. A failing version does not hide the others.
pub fn each(versions: &[Version], f: impl Fn(Version)) {
    let mut failed = Vec::new();
    for v in versions {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| f(*v))) {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "panic".into());
            failed.push(format!("  {v}: {msg}"));
        }
    }
    if !failed.is_empty() {
        panic!(
            "{} of {} versions failed:\n{}",
            failed.len(),
            versions.len(),
            failed.join("\n")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets() {
        assert_eq!(Versions::all().len(), 7);
        assert_eq!(Versions::with_chaining().len(), 5);
        assert_eq!(
            Versions::with_check(),
            vec![Version::V0_4_0, Version::V1_0_0, Version::V1_1_0]
        );
        assert_eq!(Versions::with_gc(), vec![Version::V1_1_0]);
        assert_eq!(Versions::with_status(), vec![Version::V1_1_0]);
        assert_eq!(Versions::since(Version::V1_0_0).len(), 2);
    }

    #[test]
    fn each_reports_every_failing_version() {
        let r = catch_unwind(|| {
            each(&Versions::all(), |v| {
                assert!(v >= Version::V0_4_0, "too old")
            });
        });
        let msg = r.unwrap_err().downcast::<String>().unwrap();
        assert!(msg.starts_with("4 of 7 versions failed"), "{msg}");
        assert!(msg.contains("0.3.1: too old"), "{msg}");
    }
}
