//! The policy for privileged tests: never skipped silently.

/// The environment variable that turns a missing privilege into a failure.
pub const CI_VAR: &str = "CI";

/// True when the process can create namespaces and change their network state (root).
///
/// When it cannot, prints why on stderr and returns false so the test can return early; but
/// when the environment variable `CI` is set (to anything but `""`, `0` or `false`) it panics
/// instead, so CI never reports a skipped privileged test as green.
///
/// ```no_run
/// #[test]
/// fn creates_a_bridge() {
///     if !cni_testkit::require_root() {
///         return;
///     }
///     // ... privileged work in throw-away namespaces ...
/// }
/// ```
pub fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let msg = "this test needs root (network namespaces, links, firewall rules)";
    if in_ci() {
        panic!("{msg}, and {CI_VAR} is set: refusing to skip it");
    }
    eprintln!("SKIPPED: {msg}; run it as root (it only touches namespaces it creates)");
    false
}

/// Whether `CI` is set to a true-ish value (see [`ci_value_is_set`]). The one place the
/// workspace's tests decide "is this CI?"; `cni-linux`'s tests, which cannot depend on this
/// crate, keep an exact copy of [`ci_value_is_set`].
pub fn in_ci() -> bool {
    ci_value_is_set(std::env::var_os(CI_VAR).as_deref())
}

/// The rule for a value of `CI`: set unless unset, empty, `0` or `false` (any case, spaces
/// around ignored). Anything else (`true`, `1`, `yes`, a CI system's name) is set.
pub fn ci_value_is_set(value: Option<&std::ffi::OsStr>) -> bool {
    let Some(v) = value else {
        return false;
    };
    let v = v.to_string_lossy();
    let v = v.trim();
    !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
}

/// Whether a test that cannot run here must fail rather than skip: `CI` is set. Prints
/// `SKIPPED: <why>` on stderr and returns false otherwise, so the caller returns early.
///
/// # Panics
///
/// Under CI, with `why`.
pub fn skip_or_fail(why: &str) -> bool {
    if in_ci() {
        panic!("{why}, and {CI_VAR} is set: refusing to skip");
    }
    eprintln!("SKIPPED: {why}");
    false
}

/// The copy of the rule for the crates below this one (their tests cannot depend on it).
#[cfg(test)]
#[path = "../../cni-types/tests/common/ci.rs"]
mod copy;

#[cfg(test)]
mod tests {
    use super::ci_value_is_set;
    use std::ffi::OsStr;

    #[test]
    fn the_copy_for_the_lower_crates_decides_alike() {
        for v in [
            "", " ", "0", "false", "FaLsE", "true", "1", "yes", "no", "00", " false\n",
        ] {
            let v = Some(OsStr::new(v));
            assert_eq!(super::copy::ci_value_is_set(v), ci_value_is_set(v), "{v:?}");
        }
        assert_eq!(super::copy::ci_value_is_set(None), ci_value_is_set(None));
    }

    #[test]
    fn ci_is_set_unless_unset_empty_zero_or_false() {
        let set = |v: &str| ci_value_is_set(Some(OsStr::new(v)));
        assert!(!ci_value_is_set(None));
        for off in ["", " ", "0", "false", "False", "FALSE", "fAlSe", " false\n"] {
            assert!(!set(off), "{off:?} is not CI");
        }
        for on in ["true", "1", "yes", "TRUE", "github-actions", "00", "no"] {
            assert!(set(on), "{on:?} is CI");
        }
    }
}
