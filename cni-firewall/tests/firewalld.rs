//! The firewalld backend against a real firewalld (Debian's 1.3), started for the test in a
//! throw-away network namespace (the node) and a private mount namespace with its own system
//! bus: `dbus-daemon` listens on a socket in a temporary directory, `/run` and `/var/log` are
//! fresh tmpfs mounts, firewalld's system configuration is an empty temporary directory. The
//! plugins reach the bus through `DBUS_SYSTEM_BUS_ADDRESS`. Both daemons are one process
//! group, killed when the test ends (also on failure); the machine's own namespace is
//! compared before and after.
//!
//! Checked: ADD puts every pod address in the zone (firewalld reports it, and its nftables
//! ruleset in the node carries it), CHECK, DEL removes it, CHECK then fails; an empty
//! `backend` picks firewalld as the reference does; interop with the Go firewall both ways;
//! an unreachable firewalld fails ADD with the reason and lets DEL succeed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cni_firewall::dbus::Bus;
use cni_testkit::{Attachment, PluginRunner, TempDir, TempNetns, bins};
use serde_json::{Value, json};

/// firewalld and its bus, running in `node`; killed on drop.
struct Daemon {
    child: Child,
    dir: TempDir,
}

impl Daemon {
    fn socket(&self) -> PathBuf {
        self.dir.join("bus.sock")
    }

    fn address(&self) -> String {
        format!("unix:path={}", self.socket().display())
    }

    fn start(node: &TempNetns) -> Daemon {
        let dir = TempDir::new("fwd").unwrap();
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        let sock = dir.join("bus.sock");
        let conf = format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow own="*"/>
    <allow send_destination="*"/><allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
            sock.display()
        );
        std::fs::write(dir.join("bus.conf"), conf).unwrap();
        let script = format!(
            "mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/log || exit 1
dbus-daemon --config-file={conf} --nofork --nopidfile &
until [ -S {sock} ]; do sleep 0.05; done
export DBUS_SYSTEM_BUS_ADDRESS=unix:path={sock}
exec firewalld --nofork --nopid --system-config {etc} --log-target console",
            conf = dir.join("bus.conf").display(),
            sock = sock.display(),
            etc = dir.join("etc").display(),
        );
        let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
        use std::os::unix::process::CommandExt;
        let child = Command::new("nsenter")
            .arg(format!("--net={}", node.path().display()))
            .args(["unshare", "--mount", "--propagation", "private", "sh", "-c"])
            .arg(script)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap();
        let d = Daemon { child, dir };
        d.wait_ready();
        d
    }

    /// Until firewalld answers on its bus (it takes a few seconds to start).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let ready = Bus::connect(&self.address()).and_then(|mut b| {
                b.call(
                    "org.fedoraproject.FirewallD1",
                    "/org/fedoraproject/FirewallD1",
                    "org.fedoraproject.FirewallD1",
                    "getDefaultZone",
                    &[],
                )
            });
            if ready.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "firewalld did not come up: {ready:?}\n{}",
                std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn zone_of(&self, source: &str) -> String {
        let mut b = Bus::connect(&self.address()).unwrap();
        match b
            .call(
                "org.fedoraproject.FirewallD1",
                "/org/fedoraproject/FirewallD1",
                "org.fedoraproject.FirewallD1.zone",
                "getZoneOfSource",
                &[source],
            )
            .unwrap()
            .first()
        {
            Some(cni_firewall::dbus::Arg::Str(s)) => s.clone(),
            other => panic!("getZoneOfSource answered {other:?}"),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // The process group we started: sh (now firewalld) and dbus-daemon.
        let pgid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status();
        let _ = self.child.wait();
    }
}

fn conf(backend: &str, data: &TempDir, net: u8) -> Value {
    json!({"cniVersion": "1.0.0", "name": "fwdnet", "type": "firewall",
        "backend": backend, "dataDir": data.path(),
        "prevResult": {"cniVersion": "1.0.0",
            "interfaces": [{"name": "fwd0"}, {"name": "vethfwd"}, {"name": "eth0", "sandbox": "/x"}],
            "ips": [{"address": format!("10.99.{net}.5/24"), "interface": 2},
                    {"address": format!("fd00:99:{net}::5/64"), "interface": 2}]}})
}

/// The machine's own firewall, as text (read only).
fn root_firewall() -> String {
    let run = |p: &str, a: &[&str]| {
        Command::new(p)
            .args(a)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let strip = |s: String| {
        s.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    format!(
        "{}{}{}",
        run("nft", &["list", "ruleset"]),
        strip(run("iptables-save", &[])),
        strip(run("ip6tables-save", &[]))
    )
}

#[test]
fn firewalld_backend_against_a_real_firewalld() {
    if !cni_testkit::require_root() {
        return;
    }
    for bin in ["firewalld", "dbus-daemon", "nsenter", "unshare"] {
        if !Command::new("sh")
            .args(["-c", &format!("command -v {bin}")])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
        {
            cni_testkit::privilege::skip_or_fail(&format!("{bin} is not installed"));
            return;
        }
    }
    let root_before = root_firewall();
    let node = TempNetns::new("fwd-node").unwrap();
    let pod = TempNetns::new("fwd-pod").unwrap();
    let data = TempDir::new("fwd-data").unwrap();
    let fwd = Daemon::start(&node);
    let att = Attachment::new("ctr-fwd", pod.path(), "eth0");
    let runner = |bin: PathBuf| {
        PluginRunner::new(bin)
            .in_netns(&node)
            .unwrap()
            .env("DBUS_SYSTEM_BUS_ADDRESS", fwd.address())
    };
    let ours = runner(bins::our_plugin("firewall").unwrap());
    let go = runner(bins::go_plugin("firewall").unwrap());

    // Ours: ADD, CHECK, DEL, CHECK.
    let c = conf("firewalld", &data, 1);
    ours.add(&c, &att).unwrap();
    assert_eq!(fwd.zone_of("10.99.1.5/32"), "trusted");
    assert_eq!(fwd.zone_of("fd00:99:1::5/128"), "trusted");
    let ruleset = node
        .exec_ok("nft", &["list", "ruleset"])
        .unwrap()
        .stdout_text();
    assert!(ruleset.contains("10.99.1.5"), "{ruleset}");
    ours.check(&c, &att).unwrap();
    ours.del(&c, &att).unwrap();
    assert_eq!(fwd.zone_of("10.99.1.5/32"), "");
    assert_eq!(fwd.zone_of("fd00:99:1::5/128"), "");
    let e = ours.check(&c, &att).unwrap_err();
    assert!(
        format!("{e:?}").contains("failed to find the address"),
        "{e:?}"
    );
    ours.del(&c, &att).unwrap();

    // Another zone, from the config.
    let mut cz = conf("firewalld", &data, 2);
    cz["firewalldZone"] = "internal".into();
    ours.add(&cz, &att).unwrap();
    assert_eq!(fwd.zone_of("10.99.2.5/32"), "internal");
    ours.del(&cz, &att).unwrap();
    assert_eq!(fwd.zone_of("10.99.2.5/32"), "");

    // An empty backend picks firewalld while it runs (no iptables rule is written).
    let ca = conf("", &data, 3);
    ours.add(&ca, &att).unwrap();
    assert_eq!(fwd.zone_of("10.99.3.5/32"), "trusted");
    let filter = node.exec_ok("iptables-save", &[]).unwrap().stdout_text();
    assert!(!filter.contains("10.99.3.5"), "{filter}");
    ours.del(&ca, &att).unwrap();
    assert_eq!(fwd.zone_of("10.99.3.5/32"), "");

    // Interop with the Go firewall, both ways.
    let c4 = conf("firewalld", &data, 4);
    go.add(&c4, &att).unwrap();
    ours.check(&c4, &att).unwrap();
    ours.del(&c4, &att).unwrap();
    assert_eq!(fwd.zone_of("10.99.4.5/32"), "");
    ours.add(&c4, &att).unwrap();
    go.check(&c4, &att).unwrap();
    go.del(&c4, &att).unwrap();
    assert_eq!(fwd.zone_of("10.99.4.5/32"), "");

    // GC: an attachment not in the valid list loses its sources.
    let c5 = conf("firewalld", &data, 5);
    ours.add(&c5, &att).unwrap();
    let mut gc = c5.clone();
    gc.as_object_mut().unwrap().remove("prevResult");
    gc["cniVersion"] = "1.1.0".into();
    gc["cni.dev/valid-attachments"] = json!([]);
    ours.gc(&gc).unwrap();
    assert_eq!(fwd.zone_of("10.99.5.5/32"), "");

    // Unreachable firewalld: ADD says why (code 50), DEL succeeds.
    let gone = PluginRunner::new(bins::our_plugin("firewall").unwrap())
        .in_netns(&node)
        .unwrap()
        .env(
            "DBUS_SYSTEM_BUS_ADDRESS",
            format!("unix:path={}", data.join("no-bus.sock").display()),
        );
    let e = gone.add(&c, &att).unwrap_err();
    assert_eq!(e.code(), Some(50), "{e:?}");
    assert!(format!("{e:?}").contains("not reachable"), "{e:?}");
    gone.del(&c, &att).unwrap();

    drop(fwd);
    assert_eq!(
        root_firewall(),
        root_before,
        "the machine's firewall changed"
    );
}
