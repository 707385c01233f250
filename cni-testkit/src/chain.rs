//! Chain runs through the protocol crate's runtime ([`cni_proto::runtime::CniConfig`]): a
//! conflist, capability arguments, `prevResult` threading and the result cache (in a
//! temporary directory), with every plugin process started inside a node namespace.
//!
//! ```no_run
//! use cni_proto::runtime::RuntimeConf;
//! use cni_testkit::{ChainRunner, TempNetns, bins};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let node = TempNetns::new("node")?;
//! let pod = TempNetns::new("pod")?;
//! let plugins = bins::cni_path_with(&["bridge", "host-local", "portmap"])?;
//! let chain = ChainRunner::from_json(&json!({
//!     "cniVersion": "1.0.0", "name": "net",
//!     "plugins": [
//!         {"type": "bridge", "bridge": "cni0", "isGateway": true,
//!          "ipam": {"type": "host-local", "subnet": "10.88.0.0/16"}},
//!         {"type": "portmap", "capabilities": {"portMappings": true}}
//!     ]}), [plugins.path()])?
//!     .in_netns(&node)?;
//! let rt = RuntimeConf::new("c1", pod.path().display().to_string(), "eth0")
//!     .with_capability("portMappings", json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]));
//! let result = chain.add(&rt)?;
//! chain.check(&rt)?;
//! chain.del(&rt)?;
//! # let _ = result;
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use cni_linux::netns::NetNs;
use cni_proto::exec::{Exec, find_in_path};
use cni_proto::runtime::{CniConfig, RuntimeConf, RuntimeError};
use cni_proto::{Command as Verb, Env};
use cni_types::{Attachment, CniResult, NetConfList};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::netns::TempNetns;
use crate::process;
use crate::runner::{PLUGIN_TIMEOUT, PluginError, parse_error};
use crate::tempdir::TempDir;

/// An [`Exec`] that starts plugin processes inside a namespace (found in the env's
/// `CNI_PATH`, as [`cni_proto::exec::ProcessExec`] does).
#[derive(Debug)]
pub struct NetnsExec {
    ns: NetNs,
    timeout: Duration,
}

impl NetnsExec {
    /// Run plugins inside `ns`.
    pub fn new(ns: &NetNs) -> Result<Self> {
        Ok(NetnsExec {
            ns: ns.try_clone()?,
            timeout: PLUGIN_TIMEOUT,
        })
    }
}

impl Exec for NetnsExec {
    fn exec(
        &self,
        plugin_type: &str,
        command: Verb,
        stdin: &[u8],
        env: &Env,
    ) -> std::result::Result<Vec<u8>, cni_types::Error> {
        let path = find_in_path(plugin_type, &env.cni_path())?;
        let mut cmd = Command::new(&path);
        cmd.env_clear()
            .envs(env.iter())
            .env("CNI_COMMAND", command.as_str());
        let out = process::run(&mut cmd, stdin, Some(&self.ns), self.timeout).map_err(|e| {
            cni_types::Error::internal(format!(
                "failed to run plugin {}: {}",
                path.display(),
                cni_types::error::chain_message(&e)
            ))
        })?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        match parse_error(out) {
            PluginError::Failed { error, .. } => Err(error),
            other => Err(cni_types::Error::internal(other.to_string())),
        }
    }
}

/// A conflist run through the runtime, with its own result cache, plugins inside a node
/// namespace (see the [module docs](self)).
#[derive(Debug)]
pub struct ChainRunner {
    list: NetConfList,
    config: CniConfig,
    cache: TempDir,
}

impl ChainRunner {
    /// Run `list` with plugins from `cni_path`, in the caller's namespace until
    /// [`ChainRunner::in_netns`]. Plugins see only `PATH` besides the `CNI_*` variables.
    pub fn new<P: AsRef<Path>>(
        list: NetConfList,
        cni_path: impl IntoIterator<Item = P>,
    ) -> Result<Self> {
        let cache = TempDir::new("cnitk-cache")?;
        let path: Vec<PathBuf> = cni_path
            .into_iter()
            .map(|p| p.as_ref().to_path_buf())
            .collect();
        let mut env = Env::new();
        env.set(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
        );
        let config = CniConfig::new(path)
            .with_cache_dir(cache.path())
            .with_base_env(env);
        Ok(ChainRunner {
            list,
            config,
            cache,
        })
    }

    /// A conflist given as JSON.
    pub fn from_json<P: AsRef<Path>>(
        list: &Value,
        cni_path: impl IntoIterator<Item = P>,
    ) -> Result<Self> {
        let bytes = serde_json::to_vec(list).map_err(|source| Error::Json {
            what: "conflist",
            source,
        })?;
        let list = NetConfList::from_slice(&bytes).map_err(Error::Conflist)?;
        Self::new(list, cni_path)
    }

    /// Start the plugins inside `node`.
    pub fn in_netns(mut self, node: &TempNetns) -> Result<Self> {
        self.config = self
            .config
            .with_exec(Arc::new(NetnsExec::new(node.netns())?));
        Ok(self)
    }

    /// Use another [`Exec`] (for in-process plugins, say).
    pub fn with_exec(mut self, exec: Arc<dyn Exec>) -> Self {
        self.config = self.config.with_exec(exec);
        self
    }

    /// The conflist.
    pub fn list(&self) -> &NetConfList {
        &self.list
    }

    /// The runtime configuration (paths, cache).
    pub fn config(&self) -> &CniConfig {
        &self.config
    }

    /// The result cache directory (removed on drop).
    pub fn cache_dir(&self) -> &Path {
        self.cache.path()
    }

    /// ADD through the chain; the result is cached.
    pub fn add(&self, rt: &RuntimeConf) -> std::result::Result<CniResult, RuntimeError> {
        self.config.add_network_list(&self.list, rt)
    }

    /// CHECK through the chain with the cached result.
    pub fn check(&self, rt: &RuntimeConf) -> std::result::Result<(), RuntimeError> {
        self.config.check_network_list(&self.list, rt)
    }

    /// DEL through the chain in reverse.
    pub fn del(&self, rt: &RuntimeConf) -> std::result::Result<(), RuntimeError> {
        self.config.del_network_list(&self.list, rt)
    }

    /// GC with `valid` the attachments to keep.
    pub fn gc(&self, valid: &[Attachment]) -> std::result::Result<(), RuntimeError> {
        self.config.gc_network_list(&self.list, valid)
    }

    /// STATUS of every plugin.
    pub fn status(&self) -> std::result::Result<(), RuntimeError> {
        self.config.status_network_list(&self.list)
    }
}

/// Put `dataDir` into every `ipam` section of a config or conflist (so host-local keeps its
/// store in a test's own directory).
pub fn set_ipam_data_dir(conf: &mut Value, dir: &Path) {
    let dir = Value::String(dir.display().to_string());
    let mut set = |plugin: &mut Value| {
        if let Some(ipam) = plugin.get_mut("ipam").and_then(Value::as_object_mut) {
            ipam.insert("dataDir".into(), dir.clone());
        }
    };
    if let Some(plugins) = conf.get_mut("plugins").and_then(Value::as_array_mut) {
        plugins.iter_mut().for_each(&mut set);
    } else {
        set(conf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_dir_goes_into_every_ipam() {
        let mut list = json!({"name":"n","plugins":[
            {"type":"bridge","ipam":{"type":"host-local"}},{"type":"portmap"}]});
        set_ipam_data_dir(&mut list, Path::new("/tmp/x"));
        assert_eq!(list["plugins"][0]["ipam"]["dataDir"], "/tmp/x");
        assert!(list["plugins"][1].get("ipam").is_none());
        let mut conf = json!({"name":"n","type":"bridge","ipam":{"type":"host-local"}});
        set_ipam_data_dir(&mut conf, Path::new("/d"));
        assert_eq!(conf["ipam"]["dataDir"], "/d");
    }
}
