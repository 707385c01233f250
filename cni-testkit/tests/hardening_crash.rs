//! Hardening (issue #8): crash consistency. ADD is killed with SIGKILL at many points, then
//! DEL runs as a runtime would run it after a plugin that never answered: same environment and
//! config, no `prevResult`. Afterwards nothing of the attachment may remain: no veth, no
//! address, no route, no masquerade, spoof-check or port-mapping rule (iptables and nftables),
//! no reservation, no temporary file; host-local's other files must still parse, and the
//! store must still work (an ADD after the sweep gets an address and reaches the node).
//!
//! Two kinds of kill points. Deterministic ones, independent of timing and load: under
//! `strace -f`, SIGKILL on entry to the Nth netlink request, file operation or process start
//! or wait of the ADD, for every N the ADD reaches (`bridge_add_killed_at_every_syscall_point`).
//! And timed ones, a fixed number per test, alternating between a fine sweep over the measured
//! duration of an ADD and random points in it; the seed is always printed, fixed under CI and
//! replayed with `HARDENING_SEED`. How many timed kills land mid-ADD depends on the machine's
//! load, so it is printed, never required. The plugin is started
//! in its own process group and the whole group is killed (the plugin and what it runs at that
//! moment: host-local, iptables-restore), as when a node's runtime, cgroup or the node itself
//! dies. A separate test kills only the plugin process, as a runtime's timeout does.
//!
//! Each sleep here is the point of the kill, a parameter of the experiment, never a wait for
//! something to happen.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod hardening;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cni_testkit::bins::{self, CniPathDir};
use cni_testkit::runner::Invocation;
use cni_testkit::snapshot::Kind;
use cni_testkit::{Attachment, PluginRunner, Snapshot, SnapshotOptions, TempDir, TempNetns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use hardening::root;

/// The seed used under CI unless `HARDENING_SEED` is given: CI runs the same kill points
/// every time.
const CI_SEED: u64 = 0x5eed_c0ff_ee15_c0de;

/// A small xorshift generator: the kill points must be reproducible from a printed seed.
struct Rng(u64);

impl Rng {
    /// From `HARDENING_SEED` when set; else [`CI_SEED`] under CI; else the clock. The seed is
    /// always printed.
    fn new(what: &str) -> Rng {
        let (seed, from) = seed(
            std::env::var("HARDENING_SEED").ok().as_deref(),
            cni_testkit::privilege::in_ci(),
        );
        println!("{what}: HARDENING_SEED={seed} ({from})");
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The seed and where it came from.
fn seed(env: Option<&str>, ci: bool) -> (u64, &'static str) {
    if let Some(s) = env {
        let s = s.trim();
        let parsed = match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => s.parse(),
        };
        return (
            parsed.unwrap_or_else(|e| panic!("HARDENING_SEED={s:?} is not a number: {e}")),
            "from HARDENING_SEED",
        );
    }
    if ci {
        return (CI_SEED, "fixed under CI");
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (
        t.as_nanos() as u64 ^ u64::from(std::process::id()),
        "from the clock",
    )
}

#[test]
fn the_seed_is_fixed_under_ci_and_can_be_given() {
    assert_eq!(seed(None, true), (CI_SEED, "fixed under CI"));
    assert_eq!(seed(Some("42"), true).0, 42);
    assert_eq!(seed(Some("0x2a"), false).0, 42);
    assert_eq!(seed(None, false).1, "from the clock");
    let r = std::panic::catch_unwind(|| seed(Some("soon"), true));
    assert!(r.is_err(), "a bad seed is refused, not replaced");
}

/// How much of the plugin's process tree is killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kill {
    /// The plugin's whole process group (it and what it runs).
    Group,
    /// The plugin process only (what a runtime's timeout does); its children run on.
    Leader,
}

/// Start `program args` inside `node` with `env` and `stdin`, SIGKILL it after `delay`.
/// Returns whether the kill hit a running plugin (false: it had already finished).
fn run_and_kill(
    node: &TempNetns,
    program: &Path,
    args: &[&str],
    env: &BTreeMap<String, String>,
    stdin: &[u8],
    delay: Duration,
    how: Kill,
) -> bool {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(env)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = node.spawn(&mut cmd).expect("spawn");
    if let Some(mut pipe) = child.stdin.take() {
        let _ = pipe.write_all(stdin);
    }
    std::thread::sleep(delay);
    let pid = i32::try_from(child.id()).unwrap();
    let finished = child.try_wait().expect("try_wait").is_some();
    match how {
        Kill::Group => {
            let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
        }
        Kill::Leader => {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    let status = child.wait().expect("wait");
    use std::os::unix::process::ExitStatusExt;
    !finished && status.signal() == Some(Signal::SIGKILL as i32)
}

/// How long `program args` takes from its start to its exit inside `node` (no kill).
fn run_to_end(
    node: &TempNetns,
    program: &Path,
    args: &[&str],
    env: &BTreeMap<String, String>,
    stdin: &[u8],
) -> Duration {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let t = Instant::now();
    let mut child = node.spawn(&mut cmd).expect("spawn");
    if let Some(mut pipe) = child.stdin.take() {
        let _ = pipe.write_all(stdin);
    }
    let status = child.wait().expect("wait");
    assert!(
        status.success(),
        "{} exited with {status}",
        program.display()
    );
    t.elapsed()
}

/// Checks host-local's store directory by itself: every reservation file (a file named by an
/// address) belongs to one of `live`; every `last_reserved_ip.*` holds an address; there is no
/// temporary file.
fn check_store(dir: &Path, live: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        // No store at all is only right when nothing may hold an address.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && live.is_empty() => {
            return problems;
        }
        Err(e) => return vec![format!("store {} unreadable: {e}", dir.display())],
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let content = std::fs::read_to_string(e.path()).unwrap_or_default();
        if name.parse::<std::net::IpAddr>().is_ok() {
            let id = content.split("\r\n").next().unwrap_or("");
            if !live.contains(&id) {
                problems.push(format!("reservation {name} held by {content:?}"));
            }
        } else if let Some(n) = name.strip_prefix("last_reserved_ip.") {
            if !n.bytes().all(|b| b.is_ascii_digit())
                || content.trim().parse::<std::net::IpAddr>().is_err()
            {
                problems.push(format!("{name} = {content:?}"));
            }
        } else if name != "lock" && name != ".cni-rs-host-local.index" {
            problems.push(format!("unexpected file {name} = {content:?}"));
        }
    }
    problems
}

/// A node with our plugins, a data directory and the state after a warm-up.
struct Rig {
    node: TempNetns,
    data: TempDir,
    bins: CniPathDir,
    bridge: PluginRunner,
    /// Pods of attachments that stay up during the sweep (their state must survive).
    live: Vec<(TempNetns, String)>,
}

impl Rig {
    fn new() -> Rig {
        let bins = bins::cni_path_with(&["bridge", "host-local", "portmap"])
            .expect("our plugins (cargo build --workspace --bins)");
        let node = TempNetns::new("crash").unwrap();
        let bridge = PluginRunner::new(bins.plugin("bridge"))
            .cni_path([bins.path()])
            .in_netns(&node)
            .unwrap();
        Rig {
            node,
            data: TempDir::new("crash-data").unwrap(),
            bins,
            bridge,
            live: Vec::new(),
        }
    }

    fn store(&self, net: &str) -> PathBuf {
        self.data.join(net)
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::with(
            &self.node,
            SnapshotOptions::default()
                .with_dir(self.data.path())
                .normalize_veth_names(),
        )
        .expect("snapshot")
    }

    fn env(&self, verb: &str, id: &str, pod: &Path) -> BTreeMap<String, String> {
        let mut env = Attachment::new(id, pod, "eth0").env();
        env.insert("CNI_COMMAND".into(), verb.into());
        env.insert("CNI_PATH".into(), self.bins.path().display().to_string());
        env.insert(
            "PATH".into(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
        );
        env
    }

    /// An attachment that stays up; returns its address.
    fn add_live(&mut self, conf: &Value, id: &str) -> std::net::IpAddr {
        let pod = TempNetns::new("crash-live").unwrap();
        let r = self
            .bridge
            .add(conf, &Attachment::new(id, pod.path(), "eth0"))
            .expect("live ADD");
        self.live.push((pod, id.to_string()));
        r.ips[0].address.addr()
    }

    fn live_ids(&self) -> Vec<&str> {
        self.live.iter().map(|(_, id)| id.as_str()).collect()
    }
}

/// The median duration of a few complete runs of `f`.
fn median_duration(f: impl FnMut(usize) -> Duration) -> Duration {
    let mut d: Vec<Duration> = (0..5).map(f).collect();
    d.sort();
    d[2]
}

/// Where the kills go: alternately a fine sweep over `[0, span)` (`steps` steps) and a random
/// point in it, `span` being 1.2 times the measured duration of a complete run, for a fixed
/// number of attempts. How many of them hit a running plugin depends on the machine's load
/// and is only printed: the kills that must land mid-ADD come from [`run_and_kill_at`]
/// (deterministic points, counted in syscalls), not from a quota here.
struct Sweep {
    span: Duration,
    steps: usize,
    n: usize,
    rng: Rng,
    /// Attempts to make.
    attempts: usize,
    tally: Tally,
}

impl Sweep {
    fn new(label: &str, measured: Duration, steps: usize, attempts: usize) -> Sweep {
        let rng = Rng::new(label);
        println!("{label}: a complete run takes {measured:?}; {attempts} timed kills");
        Sweep {
            span: measured.mul_f64(1.2),
            steps,
            n: 0,
            rng,
            attempts,
            tally: Tally::default(),
        }
    }

    /// The next kill point, or `None` after the set number of attempts.
    fn next(&mut self) -> Option<Duration> {
        if self.n >= self.attempts {
            return None;
        }
        let f = if self.n.is_multiple_of(2) {
            ((self.n / 2) % self.steps) as f64 / self.steps as f64
        } else {
            (self.rng.next() % 10_000) as f64 / 10_000.0
        };
        self.n += 1;
        Some(self.span.mul_f64(f))
    }

    /// Record whether the kill after `delay` hit a running plugin.
    fn record(&mut self, killed: bool) {
        if killed {
            self.tally.killed += 1;
        } else {
            self.tally.finished += 1;
        }
    }

    /// Print the tally.
    fn done(self, label: &str) -> Tally {
        println!(
            "{label}: {:?} (timed kills over {:?})",
            self.tally, self.span
        );
        self.tally
    }
}

/// What a sweep did.
#[derive(Default, Debug)]
struct Tally {
    killed: usize,
    finished: usize,
}

/// Where a sweep kills the plugin.
#[derive(Clone, Copy, Debug)]
enum Points {
    /// `attempts` kills at timed points (see [`Sweep`]).
    Timed { attempts: usize, how: Kill },
    /// Every deterministic kill point of [`SYSCALL_CLASSES`] (see [`run_and_kill_at`]).
    Syscalls,
}

/// Syscall classes for deterministic kill points: the Nth syscall of a class (counted per
/// thread and process, children included) gets SIGKILL on entry, for N = 1, 2, ... until an
/// ADD completes without reaching it. The classes cover the points where an ADD changes
/// state: every netlink request (links, addresses, routes, firewall batches), every file
/// operation of host-local's store and the result cache, and starting or waiting for the
/// IPAM plugin and the firewall tools.
const SYSCALL_CLASSES: [(&str, &str); 3] = [
    ("netlink", "sendto,sendmsg"),
    (
        "files",
        "openat,write,pwrite64,renameat2,linkat,unlinkat,flock,fsync,fdatasync",
    ),
    ("processes", "clone,clone3,execve,wait4"),
];

/// Upper bound of N per class (an ADD makes far fewer calls of a class).
const MAX_SYSCALL_POINT: usize = 400;

/// Run `program` inside `node` under `strace -f`, SIGKILL on entry to its `n`th syscall of
/// `set` (per thread or child process), then kill what is left of its process group.
/// Returns whether the kill happened (false: the ADD finished before its `n`th such call).
fn run_and_kill_at(
    node: &TempNetns,
    program: &Path,
    env: &BTreeMap<String, String>,
    stdin: &[u8],
    set: &str,
    n: usize,
    log: &Path,
) -> bool {
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-o"])
        .arg(log)
        .args(["-e", &format!("trace={set}")])
        .args(["-e", &format!("inject={set}:signal=SIGKILL:when={n}")])
        .arg("--")
        .arg(program)
        .env_clear()
        .envs(env)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = node.spawn(&mut cmd).expect("spawn strace");
    if let Some(mut pipe) = child.stdin.take() {
        let _ = pipe.write_all(stdin);
    }
    let pid = i32::try_from(child.id()).unwrap();
    child.wait().expect("wait for strace");
    // Children the kill orphaned (an IPAM plugin, iptables-restore) die too, as with a
    // runtime that kills the whole cgroup.
    let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let _ = std::fs::remove_file(log);
    text.contains("killed by SIGKILL")
}

/// Whether strace can be used; under CI it must be installed.
fn strace_available() -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("strace").is_file()));
    found
        || cni_testkit::privilege::skip_or_fail(
            "strace is not installed: the deterministic kill points cannot be reached",
        )
}

/// After an ADD that was killed (`ctx` says where): DEL as the runtime does after an ADD
/// that never answered, then nothing of the attachment may remain.
#[allow(clippy::too_many_arguments)]
fn del_and_check(
    rig: &Rig,
    pod: &TempNetns,
    pod_before: &Snapshot,
    before: &Snapshot,
    stdin: &[u8],
    id: &str,
    ctx: &str,
    failures: &mut Vec<String>,
) {
    let del = Invocation::new("DEL", stdin, Some(&Attachment::new(id, pod.path(), "eth0")));
    if let Err(e) = rig.bridge.call(&del) {
        failures.push(format!("{id} ({ctx}): DEL failed: {e}"));
    }
    let diff = before
        .diff(&rig.snapshot())
        .filter(|i| !cni_testkit::snapshot::host_local_bookkeeping(i));
    if !diff.is_empty() {
        failures.push(format!("{id} ({ctx}): node differs:\n{diff}"));
    }
    let pd = pod_before.diff(&Snapshot::with(pod, pod_before.options().clone()).unwrap());
    if !pd.is_empty() {
        failures.push(format!("{id} ({ctx}): pod differs:\n{pd}"));
    }
    for p in check_store(&rig.store("crashnet"), &rig.live_ids()) {
        failures.push(format!("{id} ({ctx}): store: {p}"));
    }
}

/// The bridge + host-local sweep for one config.
fn bridge_sweep(label: &str, conf_extra: Value, points: Points) -> Tally {
    let mut rig = Rig::new();
    let mut conf = json!({"cniVersion": "1.0.0", "name": "crashnet", "type": "bridge",
        "bridge": "cni0", "isGateway": true, "ipMasq": true,
        "ipam": {"type": "host-local", "subnet": "10.88.0.0/22", "dataDir": rig.data.path()}});
    if let (Some(c), Value::Object(extra)) = (conf.as_object_mut(), conf_extra) {
        c.extend(extra);
    }
    let stdin = serde_json::to_vec(&conf).unwrap();
    let gateway = "10.88.0.1".parse().unwrap();
    rig.add_live(&conf, "live-1");

    // Warm up: the bridge, its gateway address and the shared firewall skeleton exist, as on
    // a working node; time complete ADDs.
    let pod = TempNetns::new("crash-pod").unwrap();
    let pod_before = Snapshot::with(&pod, SnapshotOptions::default().without_firewall()).unwrap();
    let bridge = rig.bins.plugin("bridge");
    let span = median_duration(|i| {
        let id = format!("warm-{i}");
        let d = run_to_end(
            &rig.node,
            &bridge,
            &[],
            &rig.env("ADD", &id, pod.path()),
            &stdin,
        );
        rig.bridge
            .del(&conf, &Attachment::new(id, pod.path(), "eth0"))
            .expect("warm-up DEL");
        d
    });
    let before = rig.snapshot();
    let mut failures = Vec::new();
    let mut n = 0;
    let mut tally = Tally::default();
    match points {
        Points::Timed { attempts, how } => {
            let mut sweep = Sweep::new(label, span, 50, attempts);
            while let Some(delay) = sweep.next() {
                n += 1;
                // One pod for the whole sweep: after each DEL it must be as at the start.
                let id = format!("crash-{n}");
                let env = rig.env("ADD", &id, pod.path());
                let killed = run_and_kill(&rig.node, &bridge, &[], &env, &stdin, delay, how);
                sweep.record(killed);
                let ctx = format!("kill after {delay:?}");
                del_and_check(
                    &rig,
                    &pod,
                    &pod_before,
                    &before,
                    &stdin,
                    &id,
                    &ctx,
                    &mut failures,
                );
                if failures.len() > 10 {
                    break;
                }
            }
            tally = sweep.done(label);
        }
        Points::Syscalls => {
            let log = rig.data.path().with_extension("strace");
            'classes: for (class, set) in SYSCALL_CLASSES {
                let mut hits = 0;
                for k in 1..=MAX_SYSCALL_POINT {
                    n += 1;
                    let id = format!("crash-{n}");
                    let env = rig.env("ADD", &id, pod.path());
                    let killed = run_and_kill_at(&rig.node, &bridge, &env, &stdin, set, k, &log);
                    let ctx = format!("killed at its {class} syscall #{k} ({set})");
                    del_and_check(
                        &rig,
                        &pod,
                        &pod_before,
                        &before,
                        &stdin,
                        &id,
                        &ctx,
                        &mut failures,
                    );
                    if failures.len() > 10 {
                        break 'classes;
                    }
                    if !killed {
                        break;
                    }
                    hits += 1;
                    tally.killed += 1;
                }
                println!("{label}: {hits} kill points at {class} syscalls ({set})");
                // Deterministic: an ADD always makes such calls; none reached is a broken rig.
                assert!(hits > 0, "{label}: no {class} syscall was ever reached");
                assert!(
                    hits < MAX_SYSCALL_POINT,
                    "{label}: {class}: an ADD never finished"
                );
            }
        }
    }
    // The store and the bridge still work: a new pod gets an address and reaches the gateway.
    let pod = TempNetns::new("crash-after").unwrap();
    let a = Attachment::new("after", pod.path(), "eth0");
    match rig.bridge.add(&conf, &a) {
        Ok(r) => {
            assert!(r.ips[0].address.addr().is_ipv4());
            if let Err(e) = cni_testkit::traffic::ping(&pod, gateway, Duration::from_secs(5)) {
                failures.push(format!(
                    "after the sweep, the new pod cannot reach the gateway: {e}"
                ));
            }
            rig.bridge.del(&conf, &a).unwrap();
        }
        Err(e) => failures.push(format!("after the sweep, ADD failed: {e}")),
    }
    assert!(
        failures.is_empty(),
        "{label}: {} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    tally
}

#[test]
fn bridge_add_killed_iptables_masquerade() {
    if !root() {
        return;
    }
    bridge_sweep(
        "bridge+host-local, iptables ipMasq",
        json!({"ipMasqBackend": "iptables"}),
        Points::Timed {
            attempts: 150,
            how: Kill::Group,
        },
    );
}

#[test]
fn bridge_add_killed_nftables_masquerade_and_spoofchk() {
    if !root() {
        return;
    }
    bridge_sweep(
        "bridge+host-local, nftables ipMasq, macspoofchk",
        json!({"ipMasqBackend": "nftables", "macspoofchk": true}),
        Points::Timed {
            attempts: 150,
            how: Kill::Group,
        },
    );
}

/// Killing only the plugin process (a runtime's timeout): its IPAM child may still be running
/// when the runtime's DEL starts.
#[test]
fn bridge_add_killed_leader_only() {
    if !root() {
        return;
    }
    bridge_sweep(
        "bridge+host-local, plugin process only",
        json!({"ipMasqBackend": "iptables"}),
        Points::Timed {
            attempts: 60,
            how: Kill::Leader,
        },
    );
}

/// Deterministic kill points, independent of timing and load: ADD killed at every netlink
/// request, every file operation and every process start or wait it makes, in turn.
#[test]
fn bridge_add_killed_at_every_syscall_point() {
    if !root() || !strace_available() {
        return;
    }
    for (label, extra) in [
        (
            "bridge+host-local at syscalls, iptables ipMasq",
            json!({"ipMasqBackend": "iptables"}),
        ),
        (
            "bridge+host-local at syscalls, nftables ipMasq, macspoofchk",
            json!({"ipMasqBackend": "nftables", "macspoofchk": true}),
        ),
    ] {
        let t = bridge_sweep(label, extra, Points::Syscalls);
        println!("{label}: {} deterministic kills", t.killed);
    }
}

/// The first ADD on a node: the bridge, its gateway address, the forwarding sysctl and the
/// firewall skeletons are being created when the kill comes. Afterwards DEL leaves nothing of
/// the attachment, and a complete ADD repairs whatever shared state the kill cut short.
#[test]
fn first_add_on_a_node_killed() {
    if !root() {
        return;
    }
    let conf_for = |n: usize, data: &Path| {
        let backend = if n.is_multiple_of(2) {
            "iptables"
        } else {
            "nftables"
        };
        json!({"cniVersion": "1.0.0", "name": "crashnet", "type": "bridge",
            "bridge": "cni0", "isGateway": true, "ipMasq": true, "ipMasqBackend": backend,
            "macspoofchk": !n.is_multiple_of(2),
            "ipam": {"type": "host-local", "subnet": "10.88.0.0/22", "dataDir": data}})
    };
    // Time first ADDs, each on its own fresh node.
    let span = median_duration(|i| {
        let rig = Rig::new();
        let p = TempNetns::new("crash-pod").unwrap();
        run_to_end(
            &rig.node,
            &rig.bins.plugin("bridge"),
            &[],
            &rig.env("ADD", "first", p.path()),
            &serde_json::to_vec(&conf_for(i, rig.data.path())).unwrap(),
        )
    });
    let label = "first ADD on a node";
    let mut sweep = Sweep::new(label, span, 20, 30);
    let mut failures = Vec::new();
    let mut n = 0;
    while let Some(delay) = sweep.next() {
        n += 1;
        let rig = Rig::new();
        let conf = conf_for(n, rig.data.path());
        let stdin = serde_json::to_vec(&conf).unwrap();
        let pod = TempNetns::new("crash-pod").unwrap();
        let pod_before =
            Snapshot::with(&pod, SnapshotOptions::default().without_firewall()).unwrap();
        let bridge = rig.bins.plugin("bridge");
        let env = rig.env("ADD", "first", pod.path());
        let killed = run_and_kill(&rig.node, &bridge, &[], &env, &stdin, delay, Kill::Group);
        sweep.record(killed);
        let att = Attachment::new("first", pod.path(), "eth0");
        let ctx = format!(
            "first ADD killed after {delay:?} ({})",
            conf["ipMasqBackend"]
        );
        if let Err(e) = rig.bridge.del(&conf, &att) {
            failures.push(format!("{ctx}: DEL failed: {e}"));
        }
        // What stays may only be shared state (the bridge, its gateway, the per-network
        // masquerade rule, firewall skeletons): nothing naming the pod or its address.
        let after = rig.snapshot();
        for i in after.items() {
            let leaked = (i.kind == Kind::Link && i.text.starts_with("veth"))
                || (matches!(i.kind, Kind::Nft | Kind::Iptables)
                    && (hardening::mentions_pod_addr(
                        &i.text,
                        "10.88.",
                        &["10.88.0.0", "10.88.0.1"],
                    ) || i.text.contains("first")));
            if leaked {
                failures.push(format!("{ctx}: left {i}"));
            }
        }
        let pd = pod_before.diff(&Snapshot::with(&pod, pod_before.options().clone()).unwrap());
        if !pd.is_empty() {
            failures.push(format!("{ctx}: pod differs:\n{pd}"));
        }
        for p in check_store(&rig.store("crashnet"), &[]) {
            failures.push(format!("{ctx}: store: {p}"));
        }
        // A complete ADD on the same node works and the pod reaches its gateway.
        let p2 = TempNetns::new("crash-pod").unwrap();
        let a2 = Attachment::new("second", p2.path(), "eth0");
        match rig.bridge.add(&conf, &a2) {
            Ok(_) => {
                if let Err(e) = cni_testkit::traffic::ping(
                    &p2,
                    "10.88.0.1".parse().unwrap(),
                    Duration::from_secs(5),
                ) {
                    failures.push(format!("{ctx}: the next pod cannot reach the gateway: {e}"));
                }
                rig.bridge.del(&conf, &a2).unwrap();
            }
            Err(e) => failures.push(format!("{ctx}: the next ADD failed: {e}")),
        }
        if failures.len() > 10 {
            break;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    sweep.done(label);
}

/// portmap alone, both backends: ADD with a `prevResult` killed, DEL without one (the runtime
/// never got a result) but with the same port mappings.
#[test]
fn portmap_add_killed() {
    if !root() {
        return;
    }
    let rig = Rig::new();
    for args in [
        &["link", "add", "cni0", "type", "bridge"][..],
        &["addr", "add", "10.77.0.1/24", "dev", "cni0"],
        &["link", "set", "cni0", "up"],
    ] {
        rig.node.exec_ok("ip", args).unwrap();
    }
    let pod = TempNetns::new("crash-pod").unwrap();
    let conf = |backend: &str, port: u16, prev: bool| {
        let mut c = json!({"cniVersion": "1.0.0", "name": "crashnet", "type": "portmap",
            "backend": backend,
            "runtimeConfig": {"portMappings": [
                {"hostPort": port, "containerPort": 80, "protocol": "tcp"},
                {"hostPort": port + 1, "containerPort": 53, "protocol": "udp"}]}});
        if prev {
            c["prevResult"] = json!({"cniVersion": "1.0.0",
                "interfaces": [{"name": "eth0", "sandbox": pod.path()}],
                "ips": [{"address": "10.77.0.50/24", "interface": 0}]});
        }
        c
    };
    let portmap = PluginRunner::new(rig.bins.plugin("portmap"))
        .cni_path([rig.bins.path()])
        .in_netns(&rig.node)
        .unwrap();
    // Live mappings in both backends, and a timed warm-up.
    let lives: Vec<TempNetns> = (0..2)
        .map(|_| TempNetns::new("crash-live").unwrap())
        .collect();
    for (i, backend) in ["iptables", "nftables"].iter().enumerate() {
        let mut c = conf(backend, 19000 + 10 * i as u16, true);
        c["prevResult"]["interfaces"][0]["sandbox"] = json!(lives[i].path());
        c["prevResult"]["ips"][0]["address"] = json!(format!("10.77.0.{}/24", 10 + i));
        portmap
            .add(
                &c,
                &Attachment::new(format!("live-{i}"), lives[i].path(), "eth0"),
            )
            .unwrap();
    }
    let bin = rig.bins.plugin("portmap");
    let mut spans = Vec::new();
    for backend in ["iptables", "nftables"] {
        let env = rig.env("ADD", "warm", pod.path());
        spans.push(median_duration(|_| {
            let d = run_to_end(
                &rig.node,
                &bin,
                &[],
                &env,
                &serde_json::to_vec(&conf(backend, 18080, true)).unwrap(),
            );
            portmap
                .del(
                    &conf(backend, 18080, false),
                    &Attachment::new("warm", pod.path(), "eth0"),
                )
                .unwrap();
            d
        }));
    }
    let before = rig.snapshot();
    let backends = ["iptables", "nftables"];
    let mut sweeps = [
        Sweep::new("portmap iptables", spans[0], 25, 60),
        Sweep::new("portmap nftables", spans[1], 25, 60),
    ];
    let mut failures = Vec::new();
    let mut n = 0;
    // Alternate the backends until both sweeps are done.
    while let Some((b, delay)) = [n % 2, (n + 1) % 2]
        .into_iter()
        .find_map(|b| sweeps[b].next().map(|d| (b, d)))
    {
        n += 1;
        let backend = backends[b];
        let id = format!("crash-{n}");
        let env = rig.env("ADD", &id, pod.path());
        let stdin = serde_json::to_vec(&conf(backend, 18080, true)).unwrap();
        let killed = run_and_kill(&rig.node, &bin, &[], &env, &stdin, delay, Kill::Group);
        sweeps[b].record(killed);
        let ctx = format!("{id} ({backend}, kill after {delay:?})");
        let att = Attachment::new(&id, pod.path(), "eth0");
        if let Err(e) = portmap.del(&conf(backend, 18080, false), &att) {
            failures.push(format!("{ctx}: DEL failed: {e}"));
        }
        let diff = before.diff(&rig.snapshot());
        if !diff.is_empty() {
            failures.push(format!("{ctx}: node differs:\n{diff}"));
        }
        if failures.len() > 10 {
            break;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let [ipt, nft] = sweeps;
    ipt.done("portmap iptables");
    nft.done("portmap nftables");
}

/// The whole chain (bridge + host-local + portmap) run by a runtime process (our `cnitool`),
/// killed with everything it started; then the runtime's DEL.
#[test]
fn chain_add_killed() {
    if !root() {
        return;
    }
    let cnitool = match bins::our_plugin("cnitool") {
        Ok(p) => p,
        Err(e) => panic!("cnitool (cargo build --workspace --bins): {e}"),
    };
    let mut rig = Rig::new();
    let confdir = TempDir::new("crash-conf").unwrap();
    let cache = TempDir::new("crash-cache").unwrap();
    let list = json!({"cniVersion": "1.0.0", "name": "crashchain", "plugins": [
        {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
         "ipMasqBackend": "nftables",
         "ipam": {"type": "host-local", "subnet": "10.89.0.0/22", "dataDir": rig.data.path()}},
        {"type": "portmap", "backend": "iptables", "capabilities": {"portMappings": true}}]});
    std::fs::write(
        confdir.join("crashchain.conflist"),
        serde_json::to_vec(&list).unwrap(),
    )
    .unwrap();
    let env = |id: &str| {
        let mut e = BTreeMap::new();
        e.insert(
            "NETCONFPATH".to_string(),
            confdir.path().display().to_string(),
        );
        e.insert(
            "CNI_PATH".to_string(),
            rig.bins.path().display().to_string(),
        );
        e.insert(
            "CNI_CACHE_DIR".to_string(),
            cache.path().display().to_string(),
        );
        e.insert("CNI_CONTAINERID".to_string(), id.to_string());
        e.insert("CNI_IFNAME".to_string(), "eth0".to_string());
        e.insert(
            "CAP_ARGS".to_string(),
            json!({"portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]})
                .to_string(),
        );
        e.insert(
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
        );
        e
    };
    let run = |verb: &str, id: &str, pod: &Path| {
        let mut cmd = Command::new(&cnitool);
        cmd.args([verb, "crashchain", &pod.display().to_string()])
            .env_clear()
            .envs(env(id));
        rig.node.exec(&mut cmd).expect("cnitool")
    };
    // A live attachment, then timed complete ADD/DEL cycles.
    let live = TempNetns::new("crash-live").unwrap();
    let mut cmd = Command::new(&cnitool);
    cmd.args(["add", "crashchain", &live.path().display().to_string()])
        .env_clear()
        .envs(env("live"))
        .env(
            "CAP_ARGS",
            json!({"portMappings": [{"hostPort": 18090, "containerPort": 80, "protocol": "tcp"}]})
                .to_string(),
        );
    let out = rig.node.exec(&mut cmd).unwrap();
    assert!(out.status.success(), "{}", out.stderr_text());
    rig.live.push((live, "live".into()));
    let pod = TempNetns::new("crash-pod").unwrap();
    let pod_before = Snapshot::with(&pod, SnapshotOptions::default().without_firewall()).unwrap();
    let pod_s = pod.path().display().to_string();
    let span = median_duration(|i| {
        let id = format!("warm-{i}");
        let d = run_to_end(
            &rig.node,
            &cnitool,
            &["add", "crashchain", &pod_s],
            &env(&id),
            b"",
        );
        assert!(run("del", &id, pod.path()).status.success());
        d
    });
    let snap = || {
        Snapshot::with(
            &rig.node,
            SnapshotOptions::default()
                .with_dir(rig.data.path())
                .with_dir(cache.path())
                .normalize_veth_names(),
        )
        .unwrap()
    };
    let before = snap();
    let mut sweep = Sweep::new("chain", span, 25, 75);
    let mut failures = Vec::new();
    let mut n = 0;
    while let Some(delay) = sweep.next() {
        n += 1;
        let id = format!("crash-{n}");
        let args = ["add", "crashchain", pod_s.as_str()];
        let killed = run_and_kill(
            &rig.node,
            &cnitool,
            &args,
            &env(&id),
            b"",
            delay,
            Kill::Group,
        );
        sweep.record(killed);
        let ctx = format!("{id} (kill after {delay:?})");
        let out = run("del", &id, pod.path());
        if !out.status.success() {
            failures.push(format!("{ctx}: DEL failed: {}", out.stderr_text()));
        }
        let diff = before
            .diff(&snap())
            .filter(|i| !cni_testkit::snapshot::host_local_bookkeeping(i));
        if !diff.is_empty() {
            failures.push(format!("{ctx}: node differs:\n{diff}"));
        }
        let pd = pod_before.diff(&Snapshot::with(&pod, pod_before.options().clone()).unwrap());
        if !pd.is_empty() {
            failures.push(format!("{ctx}: pod differs:\n{pd}"));
        }
        for p in check_store(&rig.store("crashchain"), &rig.live_ids()) {
            failures.push(format!("{ctx}: store: {p}"));
        }
        if failures.len() > 10 {
            break;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    sweep.done("chain");
}
