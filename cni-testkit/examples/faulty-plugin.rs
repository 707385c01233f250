//! A tiny file-backed IPAM-like plugin used to test the conformance suite itself.
//!
//! It allocates addresses from `subnet` (default `10.99.0.0/24`) as files
//! `<ipam.dataDir>/<name>/<ip>` holding `"<container id>\r\n<ifname>"`, like host-local.
//! Invoked under another file name (a symlink), it misbehaves on purpose:
//!
//! | name | fault |
//! |---|---|
//! | `leaky` | DEL keeps the address file |
//! | `bad-codes` | every error is printed with code 999 |
//! | `no-gc` | GC releases nothing |
//! | `check-ok` | CHECK always succeeds, also after DEL |
//! | anything else | none: it should pass every check that applies |

use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;

use cni_proto::Env;
use cni_proto::skel::{self, Plugin, Request};
use cni_types::ipnet::{IpNet, Ipv4Net};
use cni_types::{CniResult, Error, IpConfig};

struct Faulty {
    fault: String,
}

fn store(req: &Request) -> PathBuf {
    let data = req
        .config
        .ipam
        .as_ref()
        .and_then(|i| i.extra.get("dataDir"))
        .and_then(|d| d.as_str())
        .unwrap_or("/tmp/faulty-plugin");
    PathBuf::from(data).join(&req.config.name)
}

fn subnet(req: &Request) -> Result<Ipv4Net, Error> {
    req.config
        .extra
        .get("subnet")
        .and_then(|s| s.as_str())
        .unwrap_or("10.99.0.0/24")
        .parse()
        .map_err(|e| {
            Error::msg(
                cni_types::ErrorCode::InvalidNetworkConfig,
                format!("bad subnet: {e}"),
            )
        })
}

fn owner(req: &Request) -> String {
    format!("{}\r\n{}", req.container_id, req.ifname)
}

/// Files of `dir` holding an owner: (path, content).
fn entries(dir: &std::path::Path) -> Vec<(PathBuf, String)> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| Some((e.path(), fs::read_to_string(e.path()).ok()?)))
        .collect()
}

impl Plugin for Faulty {
    fn add(&self, req: &Request) -> Result<CniResult, Error> {
        let net = subnet(req)?;
        let dir = store(req);
        fs::create_dir_all(&dir).map_err(|e| Error::internal(e.to_string()))?;
        let requested: Vec<IpAddr> = req
            .config
            .args_cni("ips")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.as_str()?.split('/').next()?.parse().ok())
            .collect();
        let candidates: Vec<Ipv4Addr> = match requested.first() {
            Some(IpAddr::V4(ip)) if net.contains(ip) => vec![*ip],
            Some(ip) => {
                return Err(Error::internal(format!(
                    "requested address {ip} is not in {net}"
                )));
            }
            None => net.hosts().skip(1).collect(),
        };
        for ip in candidates {
            let file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dir.join(ip.to_string()));
            if let Ok(mut f) = file {
                f.write_all(owner(req).as_bytes())
                    .map_err(|e| Error::internal(e.to_string()))?;
                let address = IpNet::V4(
                    Ipv4Net::new(ip, net.prefix_len())
                        .map_err(|e| Error::internal(e.to_string()))?,
                );
                return Ok(CniResult {
                    ips: vec![IpConfig {
                        interface: None,
                        address,
                        gateway: net.hosts().next().map(IpAddr::V4),
                    }],
                    ..Default::default()
                });
            }
        }
        Err(Error::internal(format!("no address available in {net}")))
    }

    fn del(&self, req: &Request) -> Result<(), Error> {
        if self.fault == "leaky" {
            return Ok(());
        }
        for (path, content) in entries(&store(req)) {
            if content == owner(req) {
                fs::remove_file(path).map_err(|e| Error::internal(e.to_string()))?;
            }
        }
        Ok(())
    }

    fn check(&self, req: &Request) -> Result<(), Error> {
        if self.fault == "check-ok" || entries(&store(req)).iter().any(|(_, c)| *c == owner(req)) {
            return Ok(());
        }
        Err(Error::internal(format!(
            "no address held by {}",
            req.container_id
        )))
    }

    fn gc(&self, req: &Request) -> Result<(), Error> {
        if self.fault == "no-gc" {
            return Ok(());
        }
        let valid = req
            .config
            .gc_valid_attachments()
            .map_err(|e| Error::internal(e.to_string()))?
            .unwrap_or_default();
        for (path, content) in entries(&store(req)) {
            let keep = valid
                .iter()
                .any(|a| content == format!("{}\r\n{}", a.container_id, a.ifname));
            if !keep {
                fs::remove_file(path).map_err(|e| Error::internal(e.to_string()))?;
            }
        }
        Ok(())
    }

    fn about(&self) -> String {
        format!("CNI faulty-plugin ({})", self.fault)
    }
}

fn main() -> ExitCode {
    let fault = std::env::args()
        .next()
        .and_then(|a| {
            PathBuf::from(a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let plugin = Faulty { fault };
    let env = Env::from_os();
    let mut out = Vec::new();
    let code = skel::run(
        &plugin,
        &env,
        &mut std::io::stdin().lock(),
        &mut out,
        &mut std::io::stderr().lock(),
    );
    if code != 0
        && plugin.fault == "bad-codes"
        && let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&out)
    {
        v["code"] = 999.into();
        out = serde_json::to_vec(&v).unwrap_or(out);
    }
    let _ = std::io::stdout().write_all(&out);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
