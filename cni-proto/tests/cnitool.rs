//! The `cnitool` binary: the reference cnitool's default container ID, and GC arguments that
//! are not attachments refused before anything runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A conflist `net` with one plugin `rec` that logs `<verb> <container ID>` and succeeds.
fn setup(tag: &str) -> Dir {
    let dir = std::env::temp_dir().join(format!("cni-proto-cnitool-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["net.d", "bin", "cache"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::write(
        dir.join("net.d/10-net.conflist"),
        r#"{"cniVersion":"1.1.0","name":"net","plugins":[{"type":"rec"}]}"#,
    )
    .unwrap();
    let rec = dir.join("bin/rec");
    std::fs::write(
        &rec,
        format!(
            "#!/bin/sh\ncat >/dev/null\necho \"$CNI_COMMAND $CNI_CONTAINERID\" >> {}\n\
             echo '{{\"cniVersion\":\"1.1.0\"}}'\n",
            dir.join("log").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rec, std::fs::Permissions::from_mode(0o755)).unwrap();
    Dir(dir)
}

fn cnitool(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnitool"))
        .args(args)
        .current_dir(dir)
        .env_remove("CNI_CONTAINERID")
        .env_remove("CNI_IFNAME")
        .env_remove("CNI_ARGS")
        .env_remove("CAP_ARGS")
        .env("NETCONFPATH", dir.join("net.d"))
        .env("CNI_PATH", dir.join("bin"))
        .env("CNI_CACHE_DIR", dir.join("cache"))
        .output()
        .unwrap()
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("log")).unwrap_or_default()
}

#[test]
fn default_container_id_is_the_reference_cnitools() {
    let d = setup("id");
    // A relative, unclean path: the reference hashes filepath.Abs of it.
    let out = cnitool(&d.0, &["add", "net", "./sub/../ns"]);
    assert!(out.status.success(), "{out:?}");
    let abs = format!("{}/ns", d.0.display());
    let sum = Command::new("sh")
        .args(["-c", "printf %s \"$1\" | sha512sum", "sh", &abs])
        .output()
        .unwrap();
    assert!(sum.status.success(), "sha512sum is needed: {sum:?}");
    let hex = String::from_utf8(sum.stdout).unwrap()[..20].to_string();
    assert_eq!(log(&d.0), format!("ADD cnitool-{hex}\n"));
}

#[test]
fn gc_refuses_arguments_that_are_not_attachments() {
    let d = setup("gc");
    for bad in ["c1eth0", "c1:", "/run/netns/x"] {
        let out = cnitool(&d.0, &["gc", "net", "c0:eth0", bad]);
        assert_eq!(out.status.code(), Some(1), "{bad}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("invalid attachment {bad:?}")),
            "{stderr}"
        );
        assert!(stderr.contains("cnitool gc <net>"), "usage: {stderr}");
        assert_eq!(log(&d.0), "", "nothing ran for {bad}");
    }
    let out = cnitool(&d.0, &["gc", "net", "c0:eth0"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(log(&d.0), "GC \n");
}
