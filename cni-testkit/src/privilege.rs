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

/// Whether `CI` is set to a true-ish value.
pub fn in_ci() -> bool {
    std::env::var(CI_VAR)
        .map(|v| !matches!(v.trim(), "" | "0" | "false" | "False" | "FALSE"))
        .unwrap_or(false)
}
