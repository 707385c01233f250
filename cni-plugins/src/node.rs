//! `install-node`: what an init container or DaemonSet pod runs (flannel's install-cni
//! pattern): install the binaries into the host's bin directory and write a conflist into the
//! host's net.d, both mounted into the container, all settings from environment variables.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `CNI_BIN_DIR` | `/host/opt/cni/bin` | where the binary and symlinks go |
//! | `CNI_NET_DIR` | `/host/etc/cni/net.d` | where the conflist goes |
//! | `CNI_BACKUP_DIR` | `$CNI_BIN_DIR/.cni-plugins-backup` | where replaced plugins are kept |
//! | `CNI_CONF_NAME` | `10-cni-rs.conflist` | the conflist's file name |
//! | `CNI_CONFLIST` | | a conflist file to install as is (a mounted ConfigMap); `none`: binaries only |
//! | `POD_CIDR` | | the node's pod subnet(s), comma separated (dual stack): generates the conflist |
//! | `CNI_NETWORK` | `cni-rs` | the generated network's name |
//! | `CNI_BRIDGE` | `cni0` | the generated network's bridge |
//! | `CNI_BACKEND` | (detected) | `iptables` or `nftables`, for bridge's ipMasq and portmap |
//! | `CNI_MTU` | (the bridge's) | the MTU of the pods' interfaces |
//! | `CNI_FORCE` | `false` | replace a different conflist of the same name |
//! | `CNI_ROLLBACK` | `false` | undo the install instead (put the kept plugins back) |
//!
//! The generated conflist (cniVersion 1.0.0, which the Go plugins 1.x and containerd 1.6+
//! understand) is bridge (gateway, masquerade, hairpin, host-local IPAM over `POD_CIDR` with
//! default routes) followed by portmap.

use std::path::{Path, PathBuf};

use cni_proto::Env;
use cni_proto::cni_types::ipnet::IpNet;
use serde_json::{Value, json};

use crate::install::{self, Layout, Report};

/// The conflist file name when `CNI_CONF_NAME` is unset.
pub const DEFAULT_CONF_NAME: &str = "10-cni-rs.conflist";

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// Neither `POD_CIDR` nor `CNI_CONFLIST` is set.
    #[error(
        "set POD_CIDR (a conflist is generated), CNI_CONFLIST (a file to install) or CNI_CONFLIST=none (binaries only)"
    )]
    NoConflist,
    /// A variable's value is invalid.
    #[error("{var}={value:?}: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Reading `CNI_CONFLIST` failed.
    #[error("read CNI_CONFLIST {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Installing failed.
    #[error(transparent)]
    Install(#[from] install::InstallError),
}

/// The conflist [`Generated`] from `POD_CIDR` and friends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generated {
    /// The network's name.
    pub network: String,
    /// The bridge's name.
    pub bridge: String,
    /// The pod subnets (one per family at most).
    pub subnets: Vec<IpNet>,
    /// `iptables` or `nftables`; `None` lets the plugins detect it.
    pub backend: Option<String>,
    /// The pods' MTU.
    pub mtu: Option<u32>,
}

impl Generated {
    /// The conflist, pretty JSON with a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let ranges: Vec<Value> = self
            .subnets
            .iter()
            .map(|s| json!([{ "subnet": s.to_string() }]))
            .collect();
        let mut routes = Vec::new();
        if self.subnets.iter().any(|s| matches!(s, IpNet::V4(_))) {
            routes.push(json!({ "dst": "0.0.0.0/0" }));
        }
        if self.subnets.iter().any(|s| matches!(s, IpNet::V6(_))) {
            routes.push(json!({ "dst": "::/0" }));
        }
        let mut bridge = json!({
            "type": "bridge",
            "bridge": self.bridge,
            "isGateway": true,
            "ipMasq": true,
            "hairpinMode": true,
            "ipam": { "type": "host-local", "ranges": ranges, "routes": routes },
        });
        let mut portmap = json!({ "type": "portmap", "capabilities": { "portMappings": true } });
        if let Some(b) = &self.backend {
            bridge["ipMasqBackend"] = json!(b);
            portmap["backend"] = json!(b);
        }
        if let Some(mtu) = self.mtu {
            bridge["mtu"] = json!(mtu);
        }
        let list = json!({
            "cniVersion": "1.0.0",
            "name": self.network,
            "plugins": [bridge, portmap],
        });
        let mut out = serde_json::to_vec_pretty(&list).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// Where the conflist comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conflist {
    /// Binaries only (`CNI_CONFLIST=none`).
    None,
    /// A file installed as is.
    File(PathBuf),
    /// Generated from `POD_CIDR`.
    Generated(Generated),
}

/// Everything `install-node` does, read from the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// The bin and backup directories.
    pub layout: Layout,
    /// The net.d directory.
    pub net_dir: PathBuf,
    /// The conflist's file name.
    pub conf_name: String,
    /// The conflist.
    pub conflist: Conflist,
    /// Replace a different conflist.
    pub force: bool,
    /// Undo instead.
    pub rollback: bool,
}

fn flag(env: &Env, var: &'static str) -> Result<bool, NodeError> {
    match env.get(var).unwrap_or("") {
        "" | "0" | "false" | "no" => Ok(false),
        "1" | "true" | "yes" => Ok(true),
        other => Err(NodeError::Invalid {
            var,
            value: other.to_owned(),
            reason: "expected true or false",
        }),
    }
}

fn nonempty<'a>(env: &'a Env, var: &str) -> Option<&'a str> {
    env.get(var).map(str::trim).filter(|s| !s.is_empty())
}

impl NodeConfig {
    /// Read the settings (see the module docs for the variables).
    pub fn from_env(env: &Env) -> Result<Self, NodeError> {
        let dest = nonempty(env, "CNI_BIN_DIR").unwrap_or("/host/opt/cni/bin");
        let mut layout = Layout::new(dest);
        if let Some(b) = nonempty(env, "CNI_BACKUP_DIR") {
            layout = layout.with_backup(b);
        }
        let rollback = flag(env, "CNI_ROLLBACK")?;
        let conflist = match nonempty(env, "CNI_CONFLIST") {
            Some("none") => Conflist::None,
            Some(file) => Conflist::File(file.into()),
            None => match nonempty(env, "POD_CIDR") {
                Some(cidrs) => Conflist::Generated(generated(env, cidrs)?),
                None if rollback => Conflist::None,
                None => return Err(NodeError::NoConflist),
            },
        };
        Ok(NodeConfig {
            layout,
            net_dir: nonempty(env, "CNI_NET_DIR")
                .unwrap_or("/host/etc/cni/net.d")
                .into(),
            conf_name: nonempty(env, "CNI_CONF_NAME")
                .unwrap_or(DEFAULT_CONF_NAME)
                .to_owned(),
            conflist,
            force: flag(env, "CNI_FORCE")?,
            rollback,
        })
    }

    /// Install (or roll back) the binaries from `source`, then write the conflist. Returns the
    /// report and the config files that sort before ours (and so win over it).
    pub fn apply(&self, source: &Path) -> Result<(Report, Vec<PathBuf>), NodeError> {
        if self.rollback {
            return Ok((install::rollback(&self.layout)?, Vec::new()));
        }
        let names: Vec<&str> = crate::table::names().collect();
        let bytes = match &self.conflist {
            Conflist::None => {
                return Ok((install::install(&self.layout, source, &names)?, Vec::new()));
            }
            Conflist::File(path) => std::fs::read(path).map_err(|source| NodeError::Read {
                path: path.clone(),
                source,
            })?,
            Conflist::Generated(g) => g.to_bytes(),
        };
        // Checked first: a refused conflist changes nothing.
        crate::conflist::check(&self.net_dir, &self.conf_name, &bytes, self.force)?;
        let mut report = install::install(&self.layout, source, &names)?;
        let action = crate::conflist::write(&self.net_dir, &self.conf_name, &bytes, self.force)?;
        report.actions.push(action);
        Ok((
            report,
            crate::conflist::shadowing(&self.net_dir, &self.conf_name),
        ))
    }
}

fn generated(env: &Env, cidrs: &str) -> Result<Generated, NodeError> {
    let invalid = |var, value: &str, reason| NodeError::Invalid {
        var,
        value: value.to_owned(),
        reason,
    };
    let mut subnets: Vec<IpNet> = Vec::new();
    for part in cidrs.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let net: IpNet = part
            .parse()
            .map_err(|_| invalid("POD_CIDR", cidrs, "expected CIDRs like 10.244.1.0/24"))?;
        if subnets.iter().any(|s| {
            matches!(
                (s, net),
                (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))
            )
        }) {
            return Err(invalid("POD_CIDR", cidrs, "at most one subnet per family"));
        }
        subnets.push(net.trunc());
    }
    let backend = match nonempty(env, "CNI_BACKEND") {
        None => None,
        Some(b @ ("iptables" | "nftables")) => Some(b.to_owned()),
        Some(b) => return Err(invalid("CNI_BACKEND", b, "expected iptables or nftables")),
    };
    let mtu = match nonempty(env, "CNI_MTU") {
        None => None,
        Some(m) => Some(
            m.parse::<u32>()
                .ok()
                .filter(|m| (576..=65535).contains(m))
                .ok_or_else(|| invalid("CNI_MTU", m, "expected a number from 576 to 65535"))?,
        ),
    };
    Ok(Generated {
        network: nonempty(env, "CNI_NETWORK").unwrap_or("cni-rs").to_owned(),
        bridge: nonempty(env, "CNI_BRIDGE").unwrap_or("cni0").to_owned(),
        subnets,
        backend,
        mtu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni_proto::cni_types::NetConfList;

    fn env(pairs: &[(&str, &str)]) -> Env {
        let mut e = Env::new();
        for (k, v) in pairs {
            e.set(*k, *v);
        }
        e
    }

    #[test]
    fn defaults_are_the_host_mounts() -> anyhow::Result<()> {
        let c = NodeConfig::from_env(&env(&[("POD_CIDR", "10.244.1.0/24")]))?;
        assert_eq!(c.layout, Layout::new("/host/opt/cni/bin"));
        assert_eq!(c.net_dir, Path::new("/host/etc/cni/net.d"));
        assert_eq!(c.conf_name, DEFAULT_CONF_NAME);
        assert!(!c.force && !c.rollback);
        Ok(())
    }

    #[test]
    fn generated_conflist_parses_and_carries_the_settings() -> anyhow::Result<()> {
        let c = NodeConfig::from_env(&env(&[
            ("POD_CIDR", "10.244.1.7/24, fd00:10:244:1::/64"),
            ("CNI_BRIDGE", "br-pods"),
            ("CNI_BACKEND", "nftables"),
            ("CNI_MTU", "1450"),
            ("CNI_NETWORK", "pods"),
        ]))?;
        let Conflist::Generated(g) = &c.conflist else {
            anyhow::bail!("not generated: {:?}", c.conflist);
        };
        let bytes = g.to_bytes();
        let list = NetConfList::from_slice(&bytes)?;
        assert_eq!(list.name, "pods");
        let v: Value = serde_json::from_slice(&bytes)?;
        let bridge = &v["plugins"][0];
        assert_eq!(bridge["bridge"], "br-pods");
        assert_eq!(bridge["ipMasqBackend"], "nftables");
        assert_eq!(bridge["mtu"], 1450);
        assert_eq!(
            bridge["ipam"]["ranges"],
            json!([[{"subnet": "10.244.1.0/24"}], [{"subnet": "fd00:10:244:1::/64"}]])
        );
        assert_eq!(
            bridge["ipam"]["routes"],
            json!([{"dst": "0.0.0.0/0"}, {"dst": "::/0"}])
        );
        assert_eq!(v["plugins"][1]["type"], "portmap");
        assert_eq!(v["plugins"][1]["backend"], "nftables");
        Ok(())
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        for (pairs, var) in [
            (&[][..], ""),
            (&[("POD_CIDR", "10.244.1.0")][..], "POD_CIDR"),
            (&[("POD_CIDR", "10.1.0.0/24,10.2.0.0/24")][..], "POD_CIDR"),
            (
                &[("POD_CIDR", "10.1.0.0/24"), ("CNI_BACKEND", "ebpf")][..],
                "CNI_BACKEND",
            ),
            (
                &[("POD_CIDR", "10.1.0.0/24"), ("CNI_MTU", "9x")][..],
                "CNI_MTU",
            ),
            (
                &[("POD_CIDR", "10.1.0.0/24"), ("CNI_FORCE", "maybe")][..],
                "CNI_FORCE",
            ),
        ] {
            let e = NodeConfig::from_env(&env(pairs)).unwrap_err();
            match e {
                NodeError::NoConflist => assert_eq!(var, ""),
                NodeError::Invalid { var: v, .. } => assert_eq!(v, var),
                other => panic!("{other}"),
            }
        }
    }

    #[test]
    fn conflist_file_and_none_need_no_cidr() -> anyhow::Result<()> {
        let c = NodeConfig::from_env(&env(&[("CNI_CONFLIST", "/etc/cfg/x.conflist")]))?;
        assert_eq!(c.conflist, Conflist::File("/etc/cfg/x.conflist".into()));
        let c = NodeConfig::from_env(&env(&[("CNI_CONFLIST", "none")]))?;
        assert_eq!(c.conflist, Conflist::None);
        let c = NodeConfig::from_env(&env(&[("CNI_ROLLBACK", "true")]))?;
        assert!(c.rollback);
        Ok(())
    }
}
