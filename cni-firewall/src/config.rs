//! The plugin's configuration: stdin parsed once into a [`FirewallConf`], and the pod's view
//! of `prevResult` ([`Pod`]) that every backend works from.
//!
//! Keys are looked up as Go's `encoding/json` does (exact match first, then ignoring ASCII
//! case): `backend`, `iptablesAdminChainName`, `firewalldZone`, `ingressPolicy`, and our
//! `dataDir`.

use std::net::IpAddr;
use std::path::PathBuf;

use cni_linux::firewall::iptables::is_chain_name;
use cni_types::capabilities::get_ci;
use cni_types::{CniResult, NetConf, Version};
use serde_json::Value;

use crate::error::ConfigError;

/// The reference's admin chain.
pub const DEFAULT_ADMIN_CHAIN: &str = "CNI-ADMIN";
/// The reference's default firewalld zone.
pub const DEFAULT_ZONE: &str = "trusted";
/// Where we record each attachment's addresses (for GC and for isolation teardown).
pub const DEFAULT_DATA_DIR: &str = "/run/cni/firewall";

/// `backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// `"iptables"`.
    Iptables,
    /// `"nftables"` (ours; the reference has none).
    Nftables,
    /// `"firewalld"`.
    Firewalld,
    /// `""` or absent: firewalld when it owns its name on the system bus, else iptables.
    Auto,
}

/// `ingressPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngressPolicy {
    /// `"open"` or `""` (default): nothing.
    Open,
    /// `"same-bridge"`: a pod's bridge is isolated from the other isolated bridges.
    SameBridge,
}

/// One invocation's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct FirewallConf {
    /// Network name.
    pub name: String,
    /// `cniVersion`.
    pub cni_version: Version,
    /// `backend`.
    pub backend: BackendChoice,
    /// `iptablesAdminChainName` (default [`DEFAULT_ADMIN_CHAIN`]).
    pub admin_chain: String,
    /// `firewalldZone` (default [`DEFAULT_ZONE`]).
    pub zone: String,
    /// `ingressPolicy`.
    pub ingress: IngressPolicy,
    /// `dataDir` (default [`DEFAULT_DATA_DIR`]).
    pub data_dir: PathBuf,
    /// The previous result, if any.
    pub prev_result: Option<CniResult>,
}

fn string_key(conf: &NetConf, key: &str) -> Result<Option<String>, ConfigError> {
    match get_ci(&conf.extra, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ConfigError::NotAString {
            key: key.to_owned(),
            value: other.to_string(),
        }),
    }
}

impl FirewallConf {
    /// Parses the generic config. `prevResult` is decoded when present; `lenient_prev` drops
    /// one that cannot be decoded instead of failing (DEL, where it is optional).
    pub fn from_netconf(conf: &NetConf, lenient_prev: bool) -> Result<FirewallConf, ConfigError> {
        let backend = match string_key(conf, "backend")?.as_deref() {
            None | Some("") => BackendChoice::Auto,
            Some("iptables") => BackendChoice::Iptables,
            Some("nftables") => BackendChoice::Nftables,
            Some("firewalld") => BackendChoice::Firewalld,
            Some(other) => return Err(ConfigError::Backend(other.to_owned())),
        };
        let ingress = match string_key(conf, "ingressPolicy")?.as_deref() {
            None | Some("") | Some("open") => IngressPolicy::Open,
            Some("same-bridge") => IngressPolicy::SameBridge,
            Some(other) => return Err(ConfigError::IngressPolicy(other.to_owned())),
        };
        let admin_chain = match string_key(conf, "iptablesAdminChainName")? {
            Some(s) if !s.is_empty() => s,
            _ => DEFAULT_ADMIN_CHAIN.to_owned(),
        };
        if !is_chain_name(&admin_chain) {
            return Err(ConfigError::AdminChain(admin_chain));
        }
        let zone = match string_key(conf, "firewalldZone")? {
            Some(s) if !s.is_empty() => s,
            _ => DEFAULT_ZONE.to_owned(),
        };
        let data_dir = match string_key(conf, "dataDir")? {
            Some(s) if !s.is_empty() => PathBuf::from(s),
            _ => PathBuf::from(DEFAULT_DATA_DIR),
        };
        let prev_result = match conf.prev_result() {
            Ok(p) => p,
            Err(_) if lenient_prev => None,
            Err(e) => return Err(ConfigError::PrevResult(e.msg)),
        };
        if conf.name.is_empty() || conf.name.contains(['/', '\0']) || conf.name == ".." {
            return Err(ConfigError::Name(conf.name.clone()));
        }
        Ok(FirewallConf {
            name: conf.name.clone(),
            cni_version: conf.version(),
            backend,
            admin_chain,
            zone,
            ingress,
            data_dir,
            prev_result,
        })
    }

    /// Parses stdin bytes (tests and in-process callers).
    pub fn parse(stdin: &[u8]) -> Result<FirewallConf, ConfigError> {
        let nc: NetConf = serde_json::from_slice(stdin)
            .map_err(|e| ConfigError::Json(format!("failed to load netconf: {e}")))?;
        FirewallConf::from_netconf(&nc, false)
    }

    /// The pod's view of `prevResult` (empty without one).
    pub fn pod(&self) -> Pod {
        self.prev_result.as_ref().map(Pod::of).unwrap_or_default()
    }
}

/// What the firewall needs of `prevResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pod {
    /// Every address of the result, in order (duplicates dropped).
    pub addrs: Vec<IpAddr>,
    /// The first interface's name: the bridge when chained after `bridge` (the reference
    /// isolates by it).
    pub bridge: Option<String>,
    /// The other host-side interfaces (no sandbox): the pod's veth on the bridge.
    pub host_ifs: Vec<String>,
}

impl Pod {
    /// Reads a result.
    pub fn of(r: &CniResult) -> Pod {
        let mut addrs: Vec<IpAddr> = Vec::new();
        for ip in &r.ips {
            let a = ip.address.addr();
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
        let bridge = r
            .interfaces
            .first()
            .map(|i| i.name.clone())
            .filter(|n| !n.is_empty());
        let host_ifs = r
            .interfaces
            .iter()
            .skip(1)
            .filter(|i| i.sandbox.is_empty() && !i.name.is_empty())
            .map(|i| i.name.clone())
            .collect();
        Pod {
            addrs,
            bridge,
            host_ifs,
        }
    }

    /// The addresses of one family.
    pub fn addrs_of(&self, v6: bool) -> impl Iterator<Item = IpAddr> + '_ {
        self.addrs
            .iter()
            .copied()
            .filter(move |a| a.is_ipv6() == v6)
    }
}

/// The reference's `ipString`: the address with a host prefix (`/32`, `/128`).
pub fn host_cidr(a: IpAddr) -> String {
    match a {
        IpAddr::V4(v4) => format!("{v4}/32"),
        IpAddr::V6(v6) => format!("{v6}/128"),
    }
}

#[cfg(test)]
mod tests;
