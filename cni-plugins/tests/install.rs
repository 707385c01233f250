//! `install` and `--rollback` against a bin directory holding copies of the Go reference
//! plugins: symlinks, backups, the installed plugins answering through their symlinks, a
//! byte-identical round trip, idempotence, and the conflist rules. No root needed.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, ensure};
use cni_plugins::install::{self, Action, BINARY, DEFAULT_BACKUP_DIR, Layout};
use cni_testkit::TempDir;

const EXE: &str = env!("CARGO_BIN_EXE_cni-plugins");

/// The Go plugins copied into the test's bin directory: four we replace, one we do not have.
const GO_COPIES: &[&str] = &["bridge", "host-local", "portmap", "loopback", "macvlan"];

fn names() -> Vec<&'static str> {
    cni_plugins::table::names().collect()
}

/// Copies of some Go plugins in `dir`, or `None` (skip, or fail under CI) without them.
fn go_bin_dir(dir: &Path) -> Result<Option<()>> {
    fs::create_dir_all(dir)?;
    for name in GO_COPIES {
        let Ok(go) = cni_testkit::bins::go_plugin(name) else {
            cni_testkit::privilege::skip_or_fail(&format!(
                "the Go reference plugin {name} is not installed (containernetworking-plugins)"
            ));
            return Ok(None);
        };
        fs::copy(&go, dir.join(name)).with_context(|| format!("copy {}", go.display()))?;
    }
    Ok(Some(()))
}

/// One directory entry: kind, bytes or link target, mode.
type Entry = (String, Vec<u8>, u32);

/// Every entry of `dir` (not recursing), by name.
fn listing(dir: &Path) -> Result<BTreeMap<String, Entry>> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let meta = fs::symlink_metadata(e.path())?;
        let name = e.file_name().to_string_lossy().into_owned();
        let entry = if meta.file_type().is_symlink() {
            let t = fs::read_link(e.path())?;
            ("link".into(), t.as_os_str().as_encoded_bytes().to_vec(), 0)
        } else if meta.is_dir() {
            ("dir".into(), Vec::new(), meta.mode() & 0o7777)
        } else {
            ("file".into(), fs::read(e.path())?, meta.mode() & 0o7777)
        };
        out.insert(name, entry);
    }
    Ok(out)
}

/// Run `path` as a runtime runs a plugin for VERSION.
fn version_of(path: &Path, env_extra: &[(&str, &str)]) -> Result<serde_json::Value> {
    let mut cmd = Command::new(path);
    cmd.env_clear().env("CNI_COMMAND", "VERSION");
    for (k, v) in env_extra {
        cmd.env(k, v);
    }
    let out = run_with_stdin(cmd, br#"{"cniVersion":"1.0.0"}"#)?;
    ensure!(out.status.success(), "{}: {out:?}", path.display());
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn run_with_stdin(mut cmd: Command, stdin: &[u8]) -> Result<Output> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut i) = child.stdin.take() {
        // A plugin may exit without reading stdin (VERSION does).
        let _ = i.write_all(stdin);
    }
    Ok(child.wait_with_output()?)
}

/// The plugin's own about line (no CNI_COMMAND), which names it: proves which one ran.
fn about_of(path: &Path) -> Result<String> {
    let mut cmd = Command::new(path);
    cmd.env_clear();
    let out = run_with_stdin(cmd, b"")?;
    ensure!(out.status.success(), "{}: {out:?}", path.display());
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Whether the answer is ours: the Go 1.1.1 plugins stop at CNI 1.0.0.
fn speaks_1_1_0(v: &serde_json::Value) -> bool {
    v["supportedVersions"]
        .as_array()
        .is_some_and(|a| a.iter().any(|s| s == "1.1.0"))
}

#[test]
fn install_over_go_plugins_and_rollback_round_trip() -> Result<()> {
    let tmp = TempDir::new("cnip-install")?;
    let bin = tmp.join("bin");
    if go_bin_dir(&bin)?.is_none() {
        return Ok(());
    }
    let before = listing(&bin)?;
    let layout = Layout::new(&bin);

    let report = install::install(&layout, Path::new(EXE), &names())?;
    // The binary, byte for byte, executable.
    let installed = bin.join(BINARY);
    assert_eq!(fs::read(&installed)?, fs::read(EXE)?);
    assert_eq!(fs::metadata(&installed)?.mode() & 0o777, 0o755);
    let backup_dir = bin.join(DEFAULT_BACKUP_DIR);
    for name in names() {
        let path = bin.join(name);
        assert_eq!(fs::read_link(&path)?, Path::new(BINARY), "{name}");
        let replaced_go = before.contains_key(name);
        let expected = if replaced_go {
            Action::Replaced {
                path: path.clone(),
                backup: backup_dir.join(name),
            }
        } else {
            Action::Linked(path.clone())
        };
        assert!(report.actions.contains(&expected), "{name}: {report}");
        if replaced_go {
            // Kept byte for byte with its mode.
            let kept = backup_dir.join(name);
            assert_eq!(fs::read(&kept)?, before[name].1, "{name}");
            assert_eq!(fs::metadata(&kept)?.mode() & 0o7777, before[name].2);
        }
        // The plugin behind the symlink is ours, and the one named.
        let v = version_of(&path, &[])?;
        assert!(speaks_1_1_0(&v), "{name}: {v}");
        let about = about_of(&path)?;
        assert!(
            about.contains(&format!("CNI {name} plugin")),
            "{name}: {about}"
        );
    }
    assert_eq!(fs::metadata(&backup_dir)?.mode() & 0o777, 0o700);
    // Not ours: untouched.
    assert_eq!(listing(&bin)?["macvlan"], before["macvlan"]);
    assert!(!backup_dir.join("macvlan").exists());

    // Twice is a no-op: same report of nothing, same inodes.
    let inode = |p: &Path| fs::symlink_metadata(p).map(|m| m.ino());
    let inodes: Vec<u64> = names()
        .iter()
        .map(|n| inode(&bin.join(n)))
        .chain([inode(&installed)])
        .collect::<std::io::Result<_>>()?;
    let during = listing(&bin)?;
    let again = install::install(&layout, Path::new(EXE), &names())?;
    assert!(!again.changed(), "{again}");
    assert_eq!(listing(&bin)?, during);
    let inodes_again: Vec<u64> = names()
        .iter()
        .map(|n| inode(&bin.join(n)))
        .chain([inode(&installed)])
        .collect::<std::io::Result<_>>()?;
    assert_eq!(inodes, inodes_again);

    // Rollback: exactly the directory we started with, Go plugins byte-identical and answering.
    let back = install::rollback(&layout)?;
    assert!(back.changed(), "{back}");
    assert_eq!(listing(&bin)?, before);
    for name in ["bridge", "host-local", "portmap", "loopback"] {
        let v = version_of(&bin.join(name), &[])?;
        assert!(
            !speaks_1_1_0(&v),
            "{name} is still ours after rollback: {v}"
        );
    }
    // And twice is a no-op too.
    let back_again = install::rollback(&layout)?;
    assert!(!back_again.changed(), "{back_again}");
    assert_eq!(listing(&bin)?, before);
    Ok(())
}

#[test]
fn a_replaced_symlink_is_kept_as_that_symlink() -> Result<()> {
    let tmp = TempDir::new("cnip-link")?;
    let bin = tmp.join("bin");
    let elsewhere = tmp.join("vendor");
    if go_bin_dir(&elsewhere)?.is_none() {
        return Ok(());
    }
    fs::create_dir_all(&bin)?;
    // A distribution that links its plugins in from another directory.
    symlink(elsewhere.join("bridge"), bin.join("bridge"))?;
    let before = listing(&bin)?;
    // A backup directory outside the bin directory (maybe another file system: then copied).
    let layout = Layout::new(&bin).with_backup(tmp.join("kept"));
    install::install(&layout, Path::new(EXE), &names())?;
    assert_eq!(
        fs::read_link(tmp.join("kept/bridge"))?,
        elsewhere.join("bridge")
    );
    assert!(!bin.join(DEFAULT_BACKUP_DIR).exists());
    install::rollback(&layout)?;
    assert_eq!(listing(&bin)?, before);
    assert!(
        !tmp.join("kept").exists(),
        "an empty backup directory stays"
    );
    Ok(())
}

#[test]
fn a_go_plugin_reinstalled_over_our_symlink_is_not_rolled_over() -> Result<()> {
    let tmp = TempDir::new("cnip-reinst")?;
    let bin = tmp.join("bin");
    if go_bin_dir(&bin)?.is_none() {
        return Ok(());
    }
    let layout = Layout::new(&bin);
    install::install(&layout, Path::new(EXE), &names())?;
    // A package upgrade puts a new Go bridge over our symlink.
    let newer = b"#!/bin/sh\necho newer go bridge\n";
    fs::remove_file(bin.join("bridge"))?;
    fs::write(bin.join("bridge"), newer)?;
    let report = install::rollback(&layout)?;
    assert_eq!(fs::read(bin.join("bridge"))?, newer);
    let kept = bin.join(DEFAULT_BACKUP_DIR).join("bridge");
    assert!(
        report.actions.contains(&Action::Kept(kept.clone())),
        "{report}"
    );
    assert!(kept.is_file());
    // Installing again keeps the newer one (the older backup is replaced by it).
    install::install(&layout, Path::new(EXE), &names())?;
    assert_eq!(fs::read(&kept)?, newer);
    Ok(())
}

fn cli(args: &[&str]) -> Result<Output> {
    let out = Command::new(EXE).args(args).stdin(Stdio::null()).output()?;
    Ok(out)
}

fn conflist(name: &str, subnet: &str) -> String {
    format!(
        r#"{{"cniVersion":"1.0.0","name":"{name}","plugins":[{{"type":"bridge","ipam":{{"type":"host-local","ranges":[[{{"subnet":"{subnet}"}}]]}}}}]}}"#
    )
}

#[test]
fn cli_install_writes_the_conflist_and_refuses_a_different_one_without_force() -> Result<()> {
    let tmp = TempDir::new("cnip-cli")?;
    let bin = tmp.join("bin");
    let net = tmp.join("net.d");
    let src = tmp.join("src");
    fs::create_dir_all(&src)?;
    let file = src.join("10-pods.conflist");
    fs::write(&file, conflist("pods", "10.1.0.0/24"))?;
    let d = bin.to_string_lossy().into_owned();
    let n = net.to_string_lossy().into_owned();
    let f = file.to_string_lossy().into_owned();
    let install = ["install", "--dest", &d, "--conflist", &f, "--net-dir", &n];

    let out = cli(&install)?;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        fs::read(net.join("10-pods.conflist"))?,
        conflist("pods", "10.1.0.0/24").as_bytes()
    );
    assert_eq!(fs::read(bin.join(BINARY))?, fs::read(EXE)?);
    // The installed binary answers as each plugin through its symlink.
    for name in names() {
        assert!(speaks_1_1_0(&version_of(&bin.join(name), &[])?), "{name}");
    }

    // The same again: nothing to do.
    let out = cli(&install)?;
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing to do"),
        "{out:?}"
    );

    // A different conflist of that name: refused, the old one stays.
    fs::write(&file, conflist("pods", "10.2.0.0/24"))?;
    let out = cli(&install)?;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists with other content"));
    assert_eq!(
        fs::read(net.join("10-pods.conflist"))?,
        conflist("pods", "10.1.0.0/24").as_bytes()
    );
    // With --force it is replaced; no temp file is left behind.
    let mut forced = install.to_vec();
    forced.push("--force");
    let out = cli(&forced)?;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        fs::read(net.join("10-pods.conflist"))?,
        conflist("pods", "10.2.0.0/24").as_bytes()
    );
    assert_eq!(fs::read_dir(&net)?.count(), 1);

    // Not a conflist at all: refused even with --force.
    fs::write(&file, br#"{"cniVersion":"1.0.0","plugins":[]}"#)?;
    let out = cli(&forced)?;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid conflist"));

    // Rollback through the command line: the directory is empty again.
    let out = cli(&["install", "--dest", &d, "--rollback"])?;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(fs::read_dir(&bin)?.count(), 0);
    Ok(())
}

#[test]
fn a_refused_conflist_installs_nothing() -> Result<()> {
    let tmp = TempDir::new("cnip-refuse")?;
    let bin = tmp.join("bin");
    let net = tmp.join("net.d");
    fs::create_dir_all(&net)?;
    fs::write(
        net.join("10-cni-rs.conflist"),
        conflist("theirs", "10.5.0.0/24"),
    )?;
    let file = tmp.join("10-cni-rs.conflist");
    fs::write(&file, conflist("ours", "10.6.0.0/24"))?;
    let d = bin.to_string_lossy().into_owned();
    let n = net.to_string_lossy().into_owned();
    let f = file.to_string_lossy().into_owned();
    let out = cli(&["install", "--dest", &d, "--conflist", &f, "--net-dir", &n])?;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        !bin.exists(),
        "binaries installed although the conflist was refused"
    );
    // install-node the same way.
    let out = Command::new(EXE)
        .arg("install-node")
        .env("CNI_BIN_DIR", &bin)
        .env("CNI_NET_DIR", &net)
        .env("POD_CIDR", "10.6.0.0/24")
        .env_remove("CNI_FORCE")
        .env_remove("CNI_CONFLIST")
        .stdin(Stdio::null())
        .output()?;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists with other content"));
    assert!(
        !bin.exists(),
        "binaries installed although the conflist was refused"
    );
    assert_eq!(
        fs::read(net.join("10-cni-rs.conflist"))?,
        conflist("theirs", "10.5.0.0/24").as_bytes()
    );
    Ok(())
}

#[test]
fn conflist_names_that_are_not_plain_conflists_are_refused() -> Result<()> {
    let tmp = TempDir::new("cnip-name")?;
    let bytes = conflist("pods", "10.1.0.0/24");
    for bad in [
        "",
        ".hidden.conflist",
        "a/b.conflist",
        "10-pods.conf",
        "x.json",
    ] {
        let e =
            cni_plugins::conflist::write(tmp.path(), bad, bytes.as_bytes(), true).expect_err(bad);
        assert!(
            matches!(e, install::InstallError::ConflistName(_)),
            "{bad}: {e}"
        );
    }
    assert_eq!(fs::read_dir(tmp.path())?.count(), 0);
    Ok(())
}

#[test]
fn install_node_from_the_environment() -> Result<()> {
    let tmp = TempDir::new("cnip-node")?;
    let bin = tmp.join("bin");
    let net = tmp.join("net.d");
    // Another config that sorts first: installed anyway, with a warning.
    fs::create_dir_all(&net)?;
    fs::write(
        net.join("05-other.conflist"),
        conflist("other", "10.9.0.0/24"),
    )?;
    let out = Command::new(EXE)
        .arg("install-node")
        .env("CNI_BIN_DIR", &bin)
        .env("CNI_NET_DIR", &net)
        .env("POD_CIDR", "10.244.3.0/24")
        .env("CNI_BRIDGE", "cnip0")
        .stdin(Stdio::null())
        .output()?;
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("05-other.conflist sorts first"), "{stdout}");
    let written = net.join(cni_plugins::node::DEFAULT_CONF_NAME);
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&written)?)?;
    assert_eq!(v["plugins"][0]["bridge"], "cnip0");
    assert_eq!(
        v["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
        "10.244.3.0/24"
    );
    for name in names() {
        assert!(speaks_1_1_0(&version_of(&bin.join(name), &[])?), "{name}");
    }
    // A missing setting is an error that names what to set, and changes nothing.
    let out = Command::new(EXE)
        .arg("install-node")
        .env("CNI_BIN_DIR", tmp.join("other-bin"))
        .env("CNI_NET_DIR", &net)
        .env_remove("POD_CIDR")
        .env_remove("CNI_CONFLIST")
        .stdin(Stdio::null())
        .output()?;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("POD_CIDR"));
    assert!(!tmp.join("other-bin").exists());
    Ok(())
}

#[test]
fn sleep_ends_on_sigterm() -> Result<()> {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use std::io::BufRead;
    let mut child = Command::new(EXE)
        .arg("sleep")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    // It says it waits once SIGTERM is blocked (before that, SIGTERM would just kill it).
    let mut err = std::io::BufReader::new(child.stderr.take().context("stderr")?);
    let mut line = String::new();
    err.read_line(&mut line)?;
    assert!(line.contains("waiting for SIGTERM"), "{line}");
    kill(Pid::from_raw(i32::try_from(child.id())?), Signal::SIGTERM)?;
    let status = child.wait()?;
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest)?;
    assert!(status.success(), "{status:?} {rest}");
    assert!(rest.contains("SIGTERM, exiting"), "{rest}");
    Ok(())
}
