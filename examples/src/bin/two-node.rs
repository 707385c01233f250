//! `two-node`: the cluster of the "write your own CNI plugin in bash" walkthrough, built in
//! network namespaces and wired by our `bridge` + `host-local` + `portmap` through the runtime.
//!
//! ```text
//!              underlay 192.168.200.0/24 (a bridge in its own namespace)
//!       ┌───────────────────────┬───────────────────────┬─────────────────────┐
//!   node0 .10                node1 .11              outside .1 ("internet" 203.0.113.1)
//!   cni0 10.244.0.1/24       cni0 10.244.1.1/24
//!   pod-a .2  pod-b .3       pod-c .2
//! ```
//!
//! Each node runs the same conflist through `cni-proto`'s runtime, exactly as a container
//! runtime would (one plugin process per call, `prevResult` threaded, capability args
//! injected, results cached). The nodes route each other's pod subnets over the underlay; the
//! bridge's `ipMasq` masquerades traffic leaving the cluster; `portmap` publishes a pod's port
//! on its node. The demo prints the walkthrough's connectivity table, then deletes every pod
//! through the runtime and removes every namespace it made. It needs root and never touches
//! the machine's own network namespace.
//!
//! ```sh
//! cargo build --release --workspace --bins && cargo run --release -p cni-examples --bin two-node
//! cargo run --release -p cni-examples --bin two-node -- --backend nftables
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cni_proto::runtime::RuntimeConf;
use cni_testkit::topology::{Cluster, ClusterBuilder};
use cni_testkit::traffic::{self, TcpEchoServer};
use cni_testkit::{ChainRunner, TempDir, TempNetns, bins};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(2);
const HOST_PORT: u16 = 8080;
const POD_PORT: u16 = 80;

fn conflist(subnet: &str, data_dir: &str, backend: &str) -> Value {
    json!({
        "cniVersion": "1.1.0",
        "name": "k8s-pod-network",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                "ipMasq": true,
                "ipMasqBackend": backend,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": data_dir
                }
            },
            {
                "type": "portmap",
                "backend": backend,
                "capabilities": {"portMappings": true}
            }
        ]
    })
}

struct Pod {
    name: &'static str,
    node: usize,
    ns: TempNetns,
    rt: RuntimeConf,
    ip: IpAddr,
}

struct Row {
    what: String,
    ok: bool,
    detail: String,
}

fn check(rows: &mut Vec<Row>, what: String, r: Result<()>) {
    let (ok, detail) = match r {
        Ok(()) => (true, String::new()),
        Err(e) => (false, format!("{e:#}")),
    };
    rows.push(Row { what, ok, detail });
}

fn ping(from: &Pod, to: IpAddr) -> Result<()> {
    traffic::ping(&from.ns, to, TIMEOUT).map_err(Into::into)
}

fn plugin_dir() -> Result<PathBuf> {
    let missing: Vec<_> = ["bridge", "host-local", "portmap"]
        .into_iter()
        .filter(|p| bins::our_plugin(p).is_err())
        .collect();
    if !missing.is_empty() {
        bail!(
            "plugin binaries {missing:?} not built next to this program; run \
             `cargo build --release --workspace --bins` first"
        );
    }
    bins::bin_dir().context("no binary directory")
}

/// The demo, phase by phase: wire the cluster, ADD the pods, test connectivity, DEL them all
/// and prove nothing is left. `Ok(false)` when a connectivity row failed.
fn run(backend: &str) -> Result<bool> {
    let dir = plugin_dir()?;
    println!("plugins:  {}/{{bridge,host-local,portmap}}", dir.display());
    println!("backend:  {backend} (masquerade and port mappings)\n");

    let cluster: Cluster = ClusterBuilder::new().nodes(2).build()?;
    let data = TempDir::new("two-node-ipam")?;
    let runners = node_runners(&cluster, &data, &dir, backend)?;
    let pods = add_pods(&cluster, &runners)?;
    let rows = connectivity(&cluster, &pods)?;
    print_table(&rows);
    del_pods(&cluster, &runners, &pods, &data)?;

    let passed = rows.iter().filter(|r| r.ok).count();
    println!(
        "\n{passed}/{} connectivity checks passed; all namespaces are removed on exit",
        rows.len()
    );
    Ok(passed == rows.len())
}

/// One runtime per node: the same conflist (with the node's pod subnet and its own host-local
/// store), plugins started inside the node's namespace.
fn node_runners(
    cluster: &Cluster,
    data: &TempDir,
    dir: &Path,
    backend: &str,
) -> Result<Vec<ChainRunner>> {
    let runners = cluster
        .nodes
        .iter()
        .map(|n| {
            let store = data.path().join(format!("node{}", n.index));
            let list = conflist(&n.pod_subnet.to_string(), &store.display().to_string(), backend);
            ChainRunner::from_json(&list, [dir])?.in_netns(&n.ns)
        })
        .collect::<cni_testkit::Result<Vec<_>>>()?;
    Ok(runners)
}

/// Three pods: two on node0, one on node1. pod-a publishes port 80 as node0:8080.
fn add_pods(cluster: &Cluster, runners: &[ChainRunner]) -> Result<Vec<Pod>> {
    let mut pods = Vec::new();
    for (i, (name, node)) in [("pod-a", 0usize), ("pod-b", 0), ("pod-c", 1)].into_iter().enumerate()
    {
        let ns = cluster.nodes[node].new_pod()?;
        let mut rt =
            RuntimeConf::new(format!("ctr-{name}-{i}"), ns.path().display().to_string(), "eth0")
                .with_arg("IgnoreUnknown", "1")
                .with_arg("K8S_POD_NAME", name);
        if name == "pod-a" {
            rt = rt.with_capability(
                "portMappings",
                json!([{"hostPort": HOST_PORT, "containerPort": POD_PORT, "protocol": "tcp"}]),
            );
        }
        let res = runners[node].add(&rt).with_context(|| format!("ADD {name}"))?;
        let ip = res.ips.first().context("no address in the result")?.address.addr();
        println!("ADD {name:<6} on node{node}: {ip} via {}", res.interfaces[1].name);
        pods.push(Pod { name, node, ns, rt, ip });
    }
    Ok(pods)
}

/// The walkthrough's connectivity table: pods to nodes, to each other, to the outside, and
/// pod-a's published port from outside and from a pod.
fn connectivity(cluster: &Cluster, pods: &[Pod]) -> Result<Vec<Row>> {
    let server = TcpEchoServer::start(&pods[0].ns, SocketAddr::new(pods[0].ip, POD_PORT))?;
    let n0 = IpAddr::V4(cluster.nodes[0].underlay_ip.addr());
    let n1 = IpAddr::V4(cluster.nodes[1].underlay_ip.addr());
    let internet = IpAddr::V4(cluster.outside.internet_ip);
    let (a, b, c) = (&pods[0], &pods[1], &pods[2]);
    let mut rows = Vec::new();
    check(&mut rows, format!("pod to its own node        {} -> node0 {n0}", a.name), ping(a, n0));
    check(&mut rows, format!("pod to the other node      {} -> node1 {n1}", a.name), ping(a, n1));
    check(
        &mut rows,
        format!("pod to pod, same node      {} -> {} {}", a.name, b.name, b.ip),
        ping(a, b.ip),
    );
    check(
        &mut rows,
        format!("pod to pod, other node     {} -> {} {}", a.name, c.name, c.ip),
        ping(a, c.ip),
    );
    check(
        &mut rows,
        format!("pod to pod, other node     {} -> {} {}", c.name, b.name, b.ip),
        ping(c, b.ip),
    );
    check(
        &mut rows,
        format!("pod to the outside         {} -> {internet}", b.name),
        ping(b, internet),
    );
    check(
        &mut rows,
        format!("pod to the outside         {} -> {internet}", c.name),
        ping(c, internet),
    );
    check(
        &mut rows,
        format!(
            "host port from outside     outside -> node0 {n0}:{HOST_PORT} -> {}:{POD_PORT}",
            a.name
        ),
        traffic::tcp_echo(&cluster.outside.ns, SocketAddr::new(n0, HOST_PORT), b"hello", TIMEOUT)
            .map_err(Into::into)
            .and_then(|r| if r == b"hello" { Ok(()) } else { bail!("echo returned {r:?}") }),
    );
    check(
        &mut rows,
        format!(
            "host port from a pod       {} -> node0 {n0}:{HOST_PORT} -> {}:{POD_PORT}",
            c.name, a.name
        ),
        traffic::tcp_echo(&c.ns, SocketAddr::new(n0, HOST_PORT), b"hi", TIMEOUT)
            .map(drop)
            .map_err(Into::into),
    );
    drop(server);
    Ok(rows)
}

fn print_table(rows: &[Row]) {
    println!("\n{:<80} result", "connectivity");
    for r in rows {
        println!("{:<80} {}", r.what, if r.ok { "PASS" } else { "FAIL" });
        if !r.ok {
            println!("    {}", r.detail);
        }
    }
}

/// Tear down through the runtime, as a container runtime would, then prove it: no pod veth
/// and no address lease left on any node.
fn del_pods(
    cluster: &Cluster,
    runners: &[ChainRunner],
    pods: &[Pod],
    data: &TempDir,
) -> Result<()> {
    for p in pods {
        runners[p.node].del(&p.rt).with_context(|| format!("DEL {}", p.name))?;
    }
    for (i, n) in cluster.nodes.iter().enumerate() {
        let veths = n.ns.exec_ok("ip", &["-o", "link", "show", "type", "veth"])?;
        let left =
            String::from_utf8_lossy(&veths.stdout).lines().filter(|l| !l.contains("eth0@")).count();
        let store = data.path().join(format!("node{i}/k8s-pod-network"));
        let leases = std::fs::read_dir(&store)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().parse::<IpAddr>().is_ok())
                    .count()
            })
            .unwrap_or(0);
        println!("DEL all on node{i}: {left} pod veths and {leases} address leases left");
        if left != 0 || leases != 0 {
            bail!("node{i} kept state after DEL");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let backend = match args.iter().position(|a| a == "--backend") {
        Some(i) => args.get(i + 1).map(String::as_str).unwrap_or("iptables").to_string(),
        None => "iptables".to_string(),
    };
    if !matches!(backend.as_str(), "iptables" | "nftables") {
        eprintln!("--backend must be iptables or nftables");
        return ExitCode::from(2);
    }
    if !nix_is_root() {
        eprintln!("two-node needs root: it creates network namespaces, bridges and veth pairs");
        return ExitCode::from(2);
    }
    match run(&backend) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("two-node: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn nix_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}
