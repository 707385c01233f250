//! The in-process conflist example runs ADD, CHECK and DEL through the runtime with every
//! plugin as a library, and leaves nothing cached.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn run_conflist_in_process() {
    if !cni_testkit::require_root() {
        return;
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_run-conflist")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("\"interface\": 2"), "{stdout}");
    assert!(stdout.contains("CHECK: ok"), "{stdout}");
    assert!(stdout.contains("DEL: ok, cached attachments: 0"), "{stdout}");
}
