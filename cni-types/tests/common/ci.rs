//! "Is CI set?" for the tests of the crates below cni-testkit (cni-types, cni-linux), which
//! cannot use `cni_testkit::privilege::in_ci` without a dependency cycle. The one copy of that
//! rule: included by path (`#[path = ...] mod ci;`) where needed, and compared with the
//! original by cni-testkit's unit tests.
#![allow(dead_code)]

use std::ffi::OsStr;

/// Whether `CI` is set: true unless unset, empty, `0` or `false` (any case, spaces ignored).
pub fn in_ci() -> bool {
    ci_value_is_set(std::env::var_os("CI").as_deref())
}

/// The rule of [`in_ci`] for one value of `CI`.
pub fn ci_value_is_set(value: Option<&OsStr>) -> bool {
    let Some(v) = value else {
        return false;
    };
    let v = v.to_string_lossy();
    let v = v.trim();
    !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
}
