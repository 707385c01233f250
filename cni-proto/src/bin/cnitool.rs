//! `cnitool`: run a network's conflist against a namespace, like the reference cnitool.
//!
//! ```text
//! cnitool add|check|del NETNAME NETNS_PATH
//! cnitool gc NETNAME [CONTAINERID:IFNAME ...]   (the valid attachments)
//! cnitool status NETNAME
//! ```
//!
//! Environment: `NETCONFPATH` (default `/etc/cni/net.d`), `CNI_PATH` (default `/opt/cni/bin`),
//! `CAP_ARGS` (JSON object of capability args), `CNI_ARGS` (`K=V;K=V`), `CNI_IFNAME` (default
//! `eth0`), `CNI_CONTAINERID` (default: the reference cnitool's, `cnitool-` and 20 hex digits
//! of the sha512 of the absolute netns path), `CNI_CACHE_DIR` (default `/var/lib/cni`). ADD
//! prints the result as JSON. A GC argument that is not `<containerID>:<ifname>` is a usage
//! error.

use std::path::PathBuf;
use std::process::ExitCode;

use cni_proto::cnitool;
use cni_proto::env::split_path;
use cni_proto::runtime::{CniConfig, RuntimeConf, load_network_list};
use cni_types::CniArgs;

fn usage() -> ExitCode {
    eprintln!(
        "cnitool: add, check, or remove network interfaces from a network namespace\n  \
         cnitool add|check|del <net> <netns>\n  \
         cnitool gc <net> [<containerID>:<ifname> ...]\n  \
         cnitool status <net>"
    );
    ExitCode::from(1)
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("{msg}");
    ExitCode::from(1)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        return usage();
    }
    let (cmd, net) = (args[1].as_str(), args[2].as_str());
    let confdir = PathBuf::from(var("NETCONFPATH", "/etc/cni/net.d"));
    let list = match load_network_list(&confdir, net) {
        Ok(l) => l,
        Err(e) => return fail(cni_types::error::chain_message(&e)),
    };
    let cni = CniConfig::new(split_path(&var("CNI_PATH", "/opt/cni/bin")))
        .with_cache_dir(var("CNI_CACHE_DIR", cni_proto::runtime::DEFAULT_CACHE_DIR));
    let result = match cmd {
        "add" | "check" | "del" => {
            let Some(netns) = args.get(3) else {
                return usage();
            };
            let netns = match std::env::current_dir() {
                Ok(cwd) => cnitool::absolute_path(netns, &cwd.to_string_lossy()),
                Err(e) => return fail(format!("cannot resolve {netns:?}: {e}")),
            };
            let mut rt = RuntimeConf::new(
                var("CNI_CONTAINERID", &cnitool::default_container_id(&netns)),
                netns,
                var("CNI_IFNAME", "eth0"),
            );
            match CniArgs::parse(&var("CNI_ARGS", "")) {
                Ok(a) => rt.args = a.pairs().to_vec(),
                Err(e) => return fail(e),
            }
            let caps = var("CAP_ARGS", "");
            if !caps.is_empty() {
                match serde_json::from_str(&caps) {
                    Ok(m) => rt.capability_args = m,
                    Err(e) => return fail(format!("CAP_ARGS: {e}")),
                }
            }
            match cmd {
                "add" => cni.add_network_list(&list, &rt).and_then(|r| {
                    match r.to_json_pretty(list.effective_version()) {
                        Ok(s) => {
                            println!("{s}");
                            Ok(())
                        }
                        Err(e) => Err(cni_proto::runtime::RuntimeError::Result(e)),
                    }
                }),
                "check" => cni.check_network_list(&list, &rt),
                _ => cni.del_network_list(&list, &rt),
            }
        }
        "gc" => {
            let valid = match cnitool::parse_attachments(&args[3..]) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("cnitool: {e}");
                    return usage();
                }
            };
            cni.gc_network_list(&list, &valid)
        }
        "status" => cni.status_network_list(&list),
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(cni_types::error::chain_message(&e)),
    }
}
