//! `run-conflist`: a conflist run from Rust through `cni-proto`'s runtime with every plugin
//! in-process: no plugin process, no shell. The runtime threads `prevResult`, injects the
//! `portMappings` capability and keeps the result cache exactly as it does for binaries; only
//! the [`Exec`] differs.
//!
//! ```sh
//! cargo run -p cni-examples --bin run-conflist
//! ```
//!
//! It makes a throw-away node and pod namespace, runs ADD, CHECK and DEL of the chain
//! bridge + host-local + portmap inside the node, pings the pod from the node in between, and
//! removes everything. Needs root; the machine's own namespace is never touched.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use cni_linux::netns::NetNs;
use cni_proto::exec::{Exec, InProcessExec};
use cni_proto::runtime::{CniConfig, RuntimeConf};
use cni_proto::{Command, Env};
use cni_testkit::{TempDir, TempNetns, traffic};
use cni_types::{Error, NetConfList};
use serde_json::json;

/// Runs an in-process plugin on a thread inside the node namespace, as if the plugin process
/// had been started there.
struct InNetns {
    ns: NetNs,
    inner: Arc<dyn Exec>,
}

impl Exec for InNetns {
    fn exec(&self, ty: &str, cmd: Command, stdin: &[u8], env: &Env) -> Result<Vec<u8>, Error> {
        self.ns
            .run(|| self.inner.exec(ty, cmd, stdin, env))
            .map_err(|e| Error::internal(e.to_string()))?
    }
}

fn run() -> Result<()> {
    let node = TempNetns::new("node")?;
    let pod = TempNetns::new("pod")?;
    let data = TempDir::new("ipam")?;
    let cache = TempDir::new("cache")?;
    let list = NetConfList::from_slice(&serde_json::to_vec(&json!({
        "cniVersion": "1.1.0",
        "name": "inproc",
        "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
             "ipam": {"type": "host-local", "subnet": "10.99.0.0/24", "dataDir": data.path()}},
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    }))?)?;

    // The plugins, as libraries. The bridge delegates IPAM in-process too.
    let host_local = Arc::new(cni_ipam_hostlocal::HostLocal);
    let ipam = Arc::new(InProcessExec::new().with_plugin("host-local", host_local.clone()));
    let plugins = InProcessExec::new()
        .with_plugin("bridge", Arc::new(cni_bridge::BridgePlugin::default().with_ipam_exec(ipam)))
        .with_plugin("host-local", host_local)
        .with_plugin("portmap", Arc::new(cni_portmap::PortmapPlugin));
    let exec = InNetns { ns: node.netns().try_clone()?, inner: Arc::new(plugins) };
    // CNI_PATH is required by the protocol even though nothing is looked up in it here.
    let cni = CniConfig::new(vec!["/opt/cni/bin".into()])
        .with_cache_dir(cache.path())
        .with_base_env(Env::new())
        .with_exec(Arc::new(exec));

    let rt = RuntimeConf::new("inproc-1", pod.path().display().to_string(), "eth0")
        .with_capability(
            "portMappings",
            json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
        );
    let result = cni.add_network_list(&list, &rt).context("ADD")?;
    println!("ADD: {}", result.to_json_pretty(list.effective_version())?);
    let ip = result.ips.first().context("no address")?.address.addr();
    traffic::ping(&node, ip, Duration::from_secs(2)).context("ping the pod from the node")?;
    println!("ping {ip} from the node: ok");
    cni.check_network_list(&list, &rt).context("CHECK")?;
    println!("CHECK: ok");
    println!("cached attachments: {}", cni.cached_attachments(None).len());
    cni.del_network_list(&list, &rt).context("DEL")?;
    println!("DEL: ok, cached attachments: {}", cni.cached_attachments(None).len());
    Ok(())
}

fn main() -> ExitCode {
    if !cni_testkit::require_root() {
        return ExitCode::from(2);
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("run-conflist: {e:#}");
            ExitCode::from(1)
        }
    }
}
