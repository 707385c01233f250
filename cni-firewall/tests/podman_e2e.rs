//! podman 4.3 end to end, with only our plugins (bridge, host-local, portmap, firewall,
//! tuning) in its plugin directory, inside a throw-away node namespace: `podman network
//! create` (default and `-o isolate=true`), containers from a busybox root filesystem, a
//! host port reached from an "outside" namespace, isolation between two isolated networks
//! and not within one, then `podman rm` and `podman network rm` leave no pod rule, no
//! isolation rule, no bridge.
//!
//! podman runs in a private mount namespace (fresh sysfs, tmpfs over `/run` and `/var/lib`,
//! private config and storage), so the machine's own state is never touched. The script
//! removes every container and network on exit, also when the test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cni_testkit::{TempDir, TempNetns, bins};

const SCRIPT: &str = r#"
D=@DIR@
P="podman --log-level=error"
cleanup() {
  $P rm -af -t 0 >/dev/null 2>&1
  $P network rm -f fwnet fwiso1 fwiso2 >/dev/null 2>&1
  echo "== after"; iptables-save -t filter
  echo "== links"; ip -o link
  touch $D/finished
}
mount --rbind /sys/fs/cgroup $D/cgroup-save
mount -t sysfs sysfs /sys
mount --rbind $D/cgroup-save /sys/fs/cgroup
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/lib
export CONTAINERS_CONF=$D/containers.conf CONTAINERS_STORAGE_CONF=$D/storage.conf
trap cleanup EXIT
set -e
$P network create --subnet 10.90.0.0/24 fwnet >/dev/null
$P network create --subnet 10.91.0.0/24 -o isolate=true fwiso1 >/dev/null
$P network create --subnet 10.92.0.0/24 -o isolate=true fwiso2 >/dev/null
R="--rootfs $D/rootfs /bin/httpd -f -p 8080 -h /www"
$P run -d --name c1 --network fwnet -p 18080:8080 $R >/dev/null
$P run -d --name i1 --network fwiso1 $R >/dev/null
$P run -d --name i1b --network fwiso1 $R >/dev/null
$P run -d --name i2 --network fwiso2 $R >/dev/null
for c in c1 i1 i1b i2; do
  echo "$c $($P inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' $c) $($P inspect -f '{{.State.Pid}}' $c)"
done > $D/pods
echo "== during"; iptables-save -t filter
touch $D/ready
while [ -e $D/ready ]; do sleep 0.2; done
"#;

const CONTAINERS_CONF: &str = r#"[network]
network_backend = "cni"
cni_plugin_dirs = ["@DIR@/bin"]
network_config_dir = "@DIR@/net.d"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "@DIR@/events.log"

[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
"#;

const STORAGE_CONF: &str = r#"[storage]
driver = "vfs"
graphroot = "@DIR@/storage"
runroot = "@DIR@/runroot"
"#;

/// The podman script's process; on drop it is told to finish (remove everything) and waited
/// for.
struct Podman {
    child: Child,
    dir: TempDir,
}

impl Podman {
    fn wait_for(&self, file: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.dir.join(file).exists() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Tells the script to remove everything and waits for it.
    fn finish(&mut self) -> String {
        let _ = std::fs::remove_file(self.dir.join("ready"));
        let done = self.wait_for("finished", Duration::from_secs(120));
        let _ = self.child.wait();
        assert!(done, "podman cleanup did not finish:\n{}", self.log());
        self.log()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = std::fs::remove_file(self.dir.join("ready"));
            self.wait_for("finished", Duration::from_secs(120));
            let _ = self.child.wait();
        }
    }
}

fn installed(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn curl(ns_args: &[String], url: &str) -> Option<String> {
    let out = Command::new("nsenter")
        .args(ns_args)
        .args(["curl", "-s", "-m", "3", url])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn podman_networks_with_only_our_plugins() {
    if !cni_testkit::require_root() {
        return;
    }
    for bin in [
        "podman", "runc", "conmon", "busybox", "curl", "nsenter", "unshare",
    ] {
        if !installed(bin) {
            cni_testkit::privilege::skip_or_fail(&format!("{bin} is not installed"));
            return;
        }
    }
    let node = TempNetns::new("fwpm-node").unwrap();
    let outside = TempNetns::new("fwpm-out").unwrap();
    {
        let mut nl = node.netlink().unwrap();
        let mut req = cni_testkit::cni_linux::netlink::VethRequest::new("fwpm0", "fwpm1");
        use std::os::fd::AsFd;
        req.peer_netns = Some(outside.netns().as_fd());
        req.up = true;
        nl.add_veth(&req).unwrap();
    }
    node.exec_ok("ip", &["addr", "add", "192.168.77.2/24", "dev", "fwpm0"])
        .unwrap();
    outside
        .exec_ok("ip", &["addr", "add", "192.168.77.1/24", "dev", "fwpm1"])
        .unwrap();
    outside
        .exec_ok("ip", &["link", "set", "fwpm1", "up"])
        .unwrap();
    node.sysctl_set("net.ipv4.ip_forward", "1").unwrap();

    let dir = TempDir::new("fwpm").unwrap();
    let d = dir.path().display().to_string();
    for sub in [
        "bin",
        "net.d",
        "storage",
        "runroot",
        "rootfs/bin",
        "rootfs/www",
        "cgroup-save",
    ] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for p in ["bridge", "host-local", "portmap", "firewall", "tuning"] {
        std::os::unix::fs::symlink(bins::our_plugin(p).unwrap(), dir.join("bin").join(p)).unwrap();
    }
    let busybox = Command::new("sh")
        .args(["-c", "command -v busybox"])
        .output()
        .unwrap();
    let busybox = String::from_utf8_lossy(&busybox.stdout).trim().to_owned();
    std::fs::copy(&busybox, dir.join("rootfs/bin/busybox")).unwrap();
    for a in ["sh", "httpd"] {
        std::os::unix::fs::symlink("busybox", dir.join("rootfs/bin").join(a)).unwrap();
    }
    std::fs::write(dir.join("rootfs/www/index.html"), "hello-from-pod\n").unwrap();
    std::fs::write(
        dir.join("containers.conf"),
        CONTAINERS_CONF.replace("@DIR@", &d),
    )
    .unwrap();
    std::fs::write(dir.join("storage.conf"), STORAGE_CONF.replace("@DIR@", &d)).unwrap();
    std::fs::write(dir.join("inside.sh"), SCRIPT.replace("@DIR@", &d)).unwrap();
    let log = std::fs::File::create(dir.join("log")).unwrap();
    let child = Command::new("nsenter")
        .arg(format!("--net={}", node.path().display()))
        .args(["unshare", "--mount", "--propagation", "slave", "sh"])
        .arg(dir.join("inside.sh"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut pm = Podman { child, dir };
    assert!(
        pm.wait_for("ready", Duration::from_secs(180)),
        "podman did not start the containers:\n{}",
        pm.log()
    );

    // name -> (address, pid)
    let pods: std::collections::BTreeMap<String, (String, String)> =
        std::fs::read_to_string(pm.dir.join("pods"))
            .unwrap()
            .lines()
            .map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                (w[0].to_owned(), (w[1].to_owned(), w[2].to_owned()))
            })
            .collect();
    for (name, (ip, _)) in &pods {
        assert!(!ip.is_empty(), "{name} got no address:\n{}", pm.log());
    }
    let in_pod = |name: &str| vec!["-t".to_string(), pods[name].1.clone(), "-n".to_string()];
    let url = |name: &str| format!("http://{}:8080/", pods[name].0);
    let out_ns = vec![format!("--net={}", outside.path().display())];

    assert_eq!(
        curl(&out_ns, "http://192.168.77.2:18080/").as_deref(),
        Some("hello-from-pod\n"),
        "host port from outside:\n{}",
        pm.log()
    );
    assert!(
        curl(&in_pod("i1"), &url("i1b")).is_some(),
        "same isolated network"
    );
    assert!(
        curl(&in_pod("i1"), &url("i2")).is_none(),
        "i1 -> i2 must be isolated"
    );
    assert!(
        curl(&in_pod("i2"), &url("i1")).is_none(),
        "i2 -> i1 must be isolated"
    );
    let during = pm.log();
    assert!(
        during.contains("-A CNI-ISOLATION-STAGE-1 -i cni-podman"),
        "{during}"
    );

    let log = pm.finish();
    let after = log.split("== after").nth(1).unwrap_or_default().to_owned();
    for (name, (ip, _)) in &pods {
        assert!(
            !after.contains(&format!("{ip}/32")),
            "{name}'s rules left:\n{after}"
        );
    }
    assert!(!after.contains("ISOLATION"), "isolation left:\n{after}");
    assert!(
        !after.contains("cni-podman"),
        "a bridge or rule left:\n{after}"
    );
}
