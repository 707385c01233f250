//! What libcni does for a container runtime: find a network's `.conflist`, run the chain for
//! ADD / CHECK / DEL / GC / STATUS, thread `prevResult`, inject capability arguments, and keep
//! the result cache.
//!
//! Behaviour matches the reference `libcni`:
//! - ADD runs plugins in order, each getting the previous result as `prevResult`, stops at the
//!   first error (the runtime must still call DEL), and caches the final result in
//!   `<cache_dir>/results/<network>-<container>-<ifname>` (`cniCacheV1` format, dir 0700,
//!   file 0600).
//! - DEL runs plugins in reverse with the cached result as `prevResult` (from 0.4.0). An
//!   unreadable or empty cache file never blocks DEL: it is removed and DEL goes on without
//!   `prevResult`. The cache entry is removed at the end.
//! - CHECK (from 0.4.0, skipped with `disableCheck`) runs in order with the cached result.
//! - GC (skipped with `disableGC`) first DELs every cached attachment of the network that is
//!   not in the valid list, then, from 1.1.0, sends GC with `cni.dev/valid-attachments` to
//!   every plugin, carrying on past errors.
//! - STATUS (from 1.1.0) asks every plugin in order and returns the first error.
//! - `runtimeConfig` carries only the capability arguments a plugin declares in its
//!   `capabilities`.
//!
//! Improvements over libcni:
//! - the cache file is written to a temporary file and renamed, so a crash never leaves a
//!   half-written (0-byte) cache behind (cni #1055); the temporary file a killed runtime leaves
//!   is removed with the attachment's cache on DEL;
//! - cache files are created, read, renamed and removed relative to the opened `results`
//!   directory, with unpredictable temporary names and `O_EXCL | O_NOFOLLOW`: a symlink
//!   planted in the cache directory is never followed, and a cache file is read only if it
//!   is a regular file of at most 16 MiB;
//! - the file name stays libcni's `<network>-<container>-<ifname>` (runtimes and Go tools read
//!   it), which two attachments can share (`a-b` + `c` and `a` + `b-c`); so the identity
//!   stored inside a `cniCacheV1` file must match the attachment asking, or it is not its
//!   cache: not used as `prevResult`, and not removed by its DEL.

mod cache;

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cni_types::config::ConfListError;
use cni_types::{Attachment, CniArgs, CniResult, Error, NetConf, NetConfList, Version, validate};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::command::Command;
use crate::env::Env;
use crate::exec::{Exec, ProcessExec};
use crate::limit;
use cache::CacheDir;

/// The default cache directory, `/var/lib/cni`.
pub const DEFAULT_CACHE_DIR: &str = "/var/lib/cni";
/// The kind of libcni's current cache format.
pub const CACHE_KIND_V1: &str = "cniCacheV1";

/// What the runtime knows about one attachment (libcni's `RuntimeConf`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuntimeConf {
    /// Container ID.
    pub container_id: String,
    /// Path of the container's network namespace (may be empty for DEL).
    pub netns: String,
    /// Interface name inside the container.
    pub ifname: String,
    /// `CNI_ARGS` pairs.
    pub args: Vec<(String, String)>,
    /// Capability arguments (`portMappings`, `ips`, `mac`, ...), injected into the
    /// `runtimeConfig` of plugins that declare them.
    pub capability_args: Map<String, Value>,
    /// Per-attachment cache directory override.
    pub cache_dir: Option<PathBuf>,
}

impl RuntimeConf {
    /// An attachment of `container_id` in `netns` as `ifname`.
    pub fn new(
        container_id: impl Into<String>,
        netns: impl Into<String>,
        ifname: impl Into<String>,
    ) -> Self {
        RuntimeConf {
            container_id: container_id.into(),
            netns: netns.into(),
            ifname: ifname.into(),
            ..Default::default()
        }
    }

    /// Add a `CNI_ARGS` pair.
    pub fn with_arg(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.args.push((k.into(), v.into()));
        self
    }

    /// Add a capability argument.
    pub fn with_capability(mut self, k: impl Into<String>, v: Value) -> Self {
        self.capability_args.insert(k.into(), v);
        self
    }
}

/// An attachment found in the result cache.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedAttachment {
    /// Container ID.
    pub container_id: String,
    /// Interface name.
    pub ifname: String,
    /// Network name.
    pub network: String,
    /// Netns path at ADD time.
    pub netns: String,
    /// `CNI_ARGS` at ADD time.
    pub cni_args: Vec<(String, String)>,
    /// Capability args at ADD time.
    pub capability_args: Map<String, Value>,
}

/// Errors of the runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// A plugin of the chain failed.
    #[error("plugin type={plugin_type:?} failed ({verb})")]
    Plugin {
        /// Its type.
        plugin_type: String,
        /// The verb, lower case as libcni prints it.
        verb: String,
        /// The plugin's error.
        #[source]
        source: Error,
    },
    /// A container ID, network name or interface name the reference rejects.
    #[error(transparent)]
    Invalid(Error),
    /// A conflist that does not parse.
    #[error("invalid network configuration {path}")]
    ConfList {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ConfListError,
    },
    /// No config for this network name.
    #[error("no net configuration with name {name:?} in {dir}")]
    NotFound {
        /// Network name.
        name: String,
        /// Directory searched.
        dir: PathBuf,
    },
    /// CHECK on a list older than 0.4.0.
    #[error("configuration version \"{0}\" does not support the CHECK command")]
    CheckNotSupported(Version),
    /// CHECK without a cached result.
    #[error("failed to get network {0:?} cached result: no cached result")]
    NoCachedResult(String),
    /// A plugin's result that cannot be read or converted.
    #[error(transparent)]
    Result(Error),
    /// A config, a list of attachments or a cache entry that cannot be encoded as JSON.
    #[error(transparent)]
    Encode(serde_json::Error),
    /// A cache entry that is not JSON.
    #[error("failed to read cached network {network:?} config")]
    CachedConfig {
        /// The network's name.
        network: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// File system trouble.
    #[error("cannot access {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Several errors (GC carries on past errors).
    #[error("{}", cni_types::error::join_chain_messages(.0, "\n"))]
    Multiple(Vec<RuntimeError>),
}

impl RuntimeError {
    /// The spec error behind this one, if a plugin produced it.
    pub fn plugin_error(&self) -> Option<&Error> {
        match self {
            RuntimeError::Plugin { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RuntimeError + '_ {
    move |source| RuntimeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The libcni result cache entry (`cniCacheV1`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CacheEntry {
    /// Always `cniCacheV1`.
    pub kind: String,
    /// Container ID.
    #[serde(rename = "containerId")]
    pub container_id: String,
    /// The conflist bytes, base64 (a Go `[]byte`).
    #[serde(default)]
    pub config: String,
    /// Interface name.
    #[serde(rename = "ifName")]
    pub if_name: String,
    /// Network name.
    #[serde(rename = "networkName")]
    pub network_name: String,
    /// Netns path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub netns: String,
    /// `CNI_ARGS` pairs.
    #[serde(rename = "cniArgs", default, skip_serializing_if = "Vec::is_empty")]
    pub cni_args: Vec<(String, String)>,
    /// Capability args.
    #[serde(
        rename = "capabilityArgs",
        default,
        skip_serializing_if = "Map::is_empty"
    )]
    pub capability_args: Map<String, Value>,
    /// The final ADD result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

impl CacheEntry {
    /// The conflist bytes of [`CacheEntry::config`]; `None` when it is not canonical base64.
    pub fn config_bytes(&self) -> Option<Vec<u8>> {
        crate::base64::decode(&self.config)
    }
}

/// A runtime's view of CNI: where plugins are, where the cache is, how plugins run.
#[derive(Clone)]
pub struct CniConfig {
    /// Directories to find plugin binaries in (`CNI_PATH`).
    pub path: Vec<PathBuf>,
    /// Cache directory (`/var/lib/cni` by default).
    pub cache_dir: PathBuf,
    exec: Arc<dyn Exec>,
    base_env: Env,
}

impl std::fmt::Debug for CniConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CniConfig")
            .field("path", &self.path)
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

impl CniConfig {
    /// Plugins in `path` run as processes. Like libcni, they inherit this process's
    /// environment plus the `CNI_*` variables; [`CniConfig::with_base_env`] replaces it.
    pub fn new(path: Vec<PathBuf>) -> Self {
        CniConfig {
            path,
            cache_dir: PathBuf::from(DEFAULT_CACHE_DIR),
            exec: Arc::new(ProcessExec),
            base_env: Env::from_os(),
        }
    }

    /// Run plugins through another [`Exec`], e.g. [`crate::exec::InProcessExec`].
    pub fn with_exec(mut self, exec: Arc<dyn Exec>) -> Self {
        self.exec = exec;
        self
    }

    /// Use another cache directory.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = dir.into();
        self
    }

    /// The environment plugins inherit besides `CNI_*` (by default this process's).
    pub fn with_base_env(mut self, env: Env) -> Self {
        self.base_env = env;
        self
    }

    fn env(&self, command: Command, rt: Option<&RuntimeConf>) -> Env {
        let mut env = self.base_env.clone();
        let joined: Vec<String> = self.path.iter().map(|p| p.display().to_string()).collect();
        env.set("CNI_COMMAND", command.as_str());
        env.set("CNI_PATH", joined.join(":"));
        let (cid, netns, ifname, args) = match rt {
            Some(rt) => (
                rt.container_id.as_str(),
                rt.netns.as_str(),
                rt.ifname.as_str(),
                CniArgs::from_pairs(rt.args.iter().cloned()).to_string(),
            ),
            None => ("", "", "", String::new()),
        };
        env.set("CNI_CONTAINERID", cid);
        env.set("CNI_NETNS", netns);
        env.set("CNI_IFNAME", ifname);
        env.set("CNI_ARGS", args);
        env
    }

    fn cache_root(&self, rt: Option<&RuntimeConf>) -> PathBuf {
        rt.and_then(|r| r.cache_dir.clone())
            .unwrap_or_else(|| self.cache_dir.clone())
            .join("results")
    }

    /// The cache file of an attachment.
    pub fn cache_path(&self, network: &str, rt: &RuntimeConf) -> PathBuf {
        self.cache_root(Some(rt)).join(cache_name(network, rt))
    }

    fn validate(network: &str, rt: &RuntimeConf) -> Result<(), RuntimeError> {
        validate::validate_container_id(&rt.container_id).map_err(RuntimeError::Invalid)?;
        validate::validate_network_name(network).map_err(RuntimeError::Invalid)?;
        validate::validate_interface_name(&rt.ifname).map_err(RuntimeError::Invalid)?;
        Ok(())
    }

    fn plugin_conf(
        list: &NetConfList,
        plugin: &Map<String, Value>,
        version: Version,
        prev: Option<&Value>,
        rt: Option<&RuntimeConf>,
    ) -> Result<Vec<u8>, RuntimeError> {
        let mut conf = plugin.clone();
        conf.insert("name".into(), Value::String(list.name.clone()));
        conf.insert("cniVersion".into(), Value::String(version.to_string()));
        if let Some(p) = prev {
            conf.insert("prevResult".into(), p.clone());
        }
        if let Some(rt) = rt {
            let mut rc = Map::new();
            if let Some(Value::Object(caps)) = plugin.get("capabilities") {
                for (cap, enabled) in caps {
                    if enabled.as_bool() == Some(true)
                        && let Some(v) = rt.capability_args.get(cap)
                    {
                        rc.insert(cap.clone(), v.clone());
                    }
                }
            }
            if !rc.is_empty() {
                conf.insert("runtimeConfig".into(), Value::Object(rc));
            }
        }
        serde_json::to_vec(&conf).map_err(RuntimeError::Encode)
    }

    fn plugin_type(plugin: &Map<String, Value>) -> String {
        plugin
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    fn run_plugin(
        &self,
        plugin: &Map<String, Value>,
        command: Command,
        stdin: &[u8],
        env: &Env,
    ) -> Result<Vec<u8>, RuntimeError> {
        let plugin_type = Self::plugin_type(plugin);
        self.exec
            .exec(&plugin_type, command, stdin, env)
            .map_err(|source| RuntimeError::Plugin {
                plugin_type,
                verb: command.as_str().to_ascii_lowercase(),
                source,
            })
    }

    /// ADD the attachment through the chain; the final result is cached and returned.
    pub fn add_network_list(
        &self,
        list: &NetConfList,
        rt: &RuntimeConf,
    ) -> Result<CniResult, RuntimeError> {
        Self::validate(&list.name, rt)?;
        let version = list.effective_version();
        let env = self.env(Command::Add, Some(rt));
        let mut prev: Option<CniResult> = None;
        for plugin in &list.plugins {
            let prev_value = prev
                .as_ref()
                .map(|r| r.to_value(version))
                .transpose()
                .map_err(RuntimeError::Result)?;
            let stdin = Self::plugin_conf(list, plugin, version, prev_value.as_ref(), Some(rt))?;
            let out = self.run_plugin(plugin, Command::Add, &stdin, &env)?;
            let res =
                CniResult::from_slice(&out, Some(version)).map_err(|e| RuntimeError::Plugin {
                    plugin_type: Self::plugin_type(plugin),
                    verb: "add".into(),
                    source: e,
                })?;
            prev = Some(res);
        }
        let mut result = prev.unwrap_or_default();
        result.cni_version = version;
        self.cache_add(list, rt, &result)?;
        Ok(result)
    }

    /// CHECK the attachment through the chain with the cached result.
    pub fn check_network_list(
        &self,
        list: &NetConfList,
        rt: &RuntimeConf,
    ) -> Result<(), RuntimeError> {
        let version = list.effective_version();
        if !version.supports_check() {
            return Err(RuntimeError::CheckNotSupported(version));
        }
        if list.disable_check {
            return Ok(());
        }
        Self::validate(&list.name, rt)?;
        let cached = self
            .cached_result(list, rt)?
            .ok_or_else(|| RuntimeError::NoCachedResult(list.name.clone()))?;
        let prev = cached.to_value(version).map_err(RuntimeError::Result)?;
        let env = self.env(Command::Check, Some(rt));
        for plugin in &list.plugins {
            let stdin = Self::plugin_conf(list, plugin, version, Some(&prev), Some(rt))?;
            self.run_plugin(plugin, Command::Check, &stdin, &env)?;
        }
        Ok(())
    }

    /// DEL the attachment through the chain in reverse; the cache entry is removed.
    pub fn del_network_list(
        &self,
        list: &NetConfList,
        rt: &RuntimeConf,
    ) -> Result<(), RuntimeError> {
        Self::validate(&list.name, rt)?;
        let version = list.effective_version();
        let mut prev = None;
        if version.passes_prev_result_on_del() {
            match self.cached_result(list, rt) {
                Ok(Some(r)) => prev = r.to_value(version).ok(),
                Ok(None) => {}
                Err(_) => self.cache_del(&list.name, rt),
            }
        }
        let env = self.env(Command::Del, Some(rt));
        for plugin in list.plugins.iter().rev() {
            let stdin = Self::plugin_conf(list, plugin, version, prev.as_ref(), Some(rt))?;
            self.run_plugin(plugin, Command::Del, &stdin, &env)?;
        }
        self.cache_del(&list.name, rt);
        Ok(())
    }

    /// GC: DEL stale cached attachments of this network, then (from 1.1.0) GC every plugin.
    pub fn gc_network_list(
        &self,
        list: &NetConfList,
        valid: &[Attachment],
    ) -> Result<(), RuntimeError> {
        if list.disable_gc {
            return Ok(());
        }
        let mut errors = Vec::new();
        for cached in self.cached_attachments(None) {
            if cached.network != list.name {
                continue;
            }
            let key = Attachment {
                container_id: cached.container_id.clone(),
                ifname: cached.ifname.clone(),
            };
            if valid.contains(&key) {
                continue;
            }
            let rt = RuntimeConf {
                container_id: cached.container_id,
                netns: cached.netns,
                ifname: cached.ifname,
                args: cached.cni_args,
                capability_args: cached.capability_args,
                cache_dir: None,
            };
            if let Err(e) = self.del_network_list(list, &rt) {
                errors.push(e);
            }
        }
        let version = list.effective_version();
        if version.supports_gc() {
            let valid_json = serde_json::to_value(valid).map_err(RuntimeError::Encode)?;
            let env = self.env(Command::Gc, None);
            for plugin in &list.plugins {
                let mut p = plugin.clone();
                p.insert("cni.dev/valid-attachments".into(), valid_json.clone());
                // libcni also sends the misspelled key of cni #1101.
                p.insert("cni.dev/attachments".into(), valid_json.clone());
                let stdin = Self::plugin_conf(list, &p, version, None, None)?;
                if let Err(e) = self.run_plugin(plugin, Command::Gc, &stdin, &env) {
                    errors.push(e);
                }
            }
        }
        cni_types::error::collect_errors(errors, RuntimeError::Multiple)
    }

    /// STATUS of every plugin, in order; the first error is returned. Lists older than 1.1.0
    /// have no STATUS and are reported ready.
    pub fn status_network_list(&self, list: &NetConfList) -> Result<(), RuntimeError> {
        let version = list.effective_version();
        if !version.supports_status() {
            return Ok(());
        }
        let env = self.env(Command::Status, None);
        for plugin in &list.plugins {
            let stdin = Self::plugin_conf(list, plugin, version, None, None)?;
            self.run_plugin(plugin, Command::Status, &stdin, &env)?;
        }
        Ok(())
    }

    fn cache_add(
        &self,
        list: &NetConfList,
        rt: &RuntimeConf,
        result: &CniResult,
    ) -> Result<(), RuntimeError> {
        let entry = CacheEntry {
            kind: CACHE_KIND_V1.into(),
            container_id: rt.container_id.clone(),
            config: crate::base64::encode(&serde_json::to_vec(list).map_err(RuntimeError::Encode)?),
            if_name: rt.ifname.clone(),
            network_name: list.name.clone(),
            netns: rt.netns.clone(),
            cni_args: rt.args.clone(),
            capability_args: rt.capability_args.clone(),
            result: Some(
                result
                    .to_value(list.effective_version())
                    .map_err(RuntimeError::Result)?,
            ),
        };
        let bytes = serde_json::to_vec(&entry).map_err(RuntimeError::Encode)?;
        let root = self.cache_root(Some(rt));
        let name = cache_name(&list.name, rt);
        CacheDir::open(&root, true)
            .and_then(|dir| match dir {
                Some(dir) => dir.write(OsStr::new(&name), &bytes),
                None => Err(io::ErrorKind::NotFound.into()),
            })
            .map_err(io_err(&root.join(&name)))
    }

    /// Removes the attachment's cache file, unless it holds another attachment's entry (one
    /// whose name collides), and the temporary files a killed writer left for it.
    fn cache_del(&self, network: &str, rt: &RuntimeConf) {
        let Ok(Some(dir)) = CacheDir::open(&self.cache_root(Some(rt)), false) else {
            return;
        };
        let name = cache_name(network, rt);
        let name = OsStr::new(&name);
        let others = match dir.read(name) {
            Ok(Some(bytes)) => serde_json::from_slice::<Value>(&bytes)
                .is_ok_and(|v| is_another_attachments(&v, network, rt)),
            _ => false,
        };
        if !others {
            let _ = dir.remove(name);
        }
        dir.remove_temporaries(name);
    }

    /// The cached ADD result of an attachment, converted to the list's version. `Ok(None)`
    /// when nothing is cached; an error when the cache is unreadable.
    pub fn cached_result(
        &self,
        list: &NetConfList,
        rt: &RuntimeConf,
    ) -> Result<Option<CniResult>, RuntimeError> {
        let path = self.cache_path(&list.name, rt);
        let read = CacheDir::open(&self.cache_root(Some(rt)), false).and_then(|dir| match dir {
            Some(dir) => dir.read(OsStr::new(&cache_name(&list.name, rt))),
            None => Ok(None),
        });
        let bytes = match read {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let version = list.effective_version();
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|source| RuntimeError::CachedConfig {
                network: list.name.clone(),
                source,
            })?;
        let raw = if is_v1(&value) {
            if !identity_matches(&value, &list.name, rt) {
                // Another attachment's entry under the same file name.
                return Ok(None);
            }
            match value.get("result") {
                Some(r) if !r.is_null() => r.clone(),
                _ => return Ok(None),
            }
        } else {
            value
        };
        let mut res = CniResult::from_value(raw, Some(version)).map_err(RuntimeError::Result)?;
        // A cached result must be convertible to the list's version (cni #701).
        res.to_versioned(version).map_err(RuntimeError::Result)?;
        res.cni_version = version;
        Ok(Some(res))
    }

    /// Every attachment in the cache, optionally only one container's.
    pub fn cached_attachments(&self, container_id: Option<&str>) -> Vec<CachedAttachment> {
        let Ok(Some(dir)) = CacheDir::open(&self.cache_root(None), false) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for name in dir.names() {
            let Ok(Some(bytes)) = dir.read(&name) else {
                continue;
            };
            let Ok(entry) = serde_json::from_slice::<CacheEntry>(&bytes) else {
                continue;
            };
            if entry.kind != CACHE_KIND_V1 {
                continue;
            }
            if container_id.is_some_and(|c| c != entry.container_id) {
                continue;
            }
            out.push(CachedAttachment {
                container_id: entry.container_id,
                ifname: entry.if_name,
                network: entry.network_name,
                netns: entry.netns,
                cni_args: entry.cni_args,
                capability_args: entry.capability_args,
            });
        }
        out.sort_by(|a, b| (&a.container_id, &a.ifname).cmp(&(&b.container_id, &b.ifname)));
        out
    }
}

/// libcni's cache file name of an attachment: `<network>-<container>-<ifname>`.
fn cache_name(network: &str, rt: &RuntimeConf) -> String {
    format!("{network}-{}-{}", rt.container_id, rt.ifname)
}

fn is_v1(entry: &Value) -> bool {
    entry.get("kind").and_then(Value::as_str) == Some(CACHE_KIND_V1)
}

/// Whether a `cniCacheV1` entry is the one of `network` / `rt` (its file name alone cannot
/// tell).
fn identity_matches(entry: &Value, network: &str, rt: &RuntimeConf) -> bool {
    let field = |k: &str| entry.get(k).and_then(Value::as_str);
    field("containerId") == Some(rt.container_id.as_str())
        && field("ifName") == Some(rt.ifname.as_str())
        && field("networkName") == Some(network)
}

/// Whether a cache file holds a complete `cniCacheV1` entry of *another* attachment. A
/// broken entry is nobody's: DEL removes it.
fn is_another_attachments(entry: &Value, network: &str, rt: &RuntimeConf) -> bool {
    let complete = ["containerId", "ifName", "networkName"]
        .iter()
        .all(|k| entry.get(*k).is_some_and(Value::is_string));
    is_v1(entry) && complete && !identity_matches(entry, network, rt)
}

/// Write `bytes` to `path` through a temporary file and a rename; parent directories are
/// created with mode 0700 and the file has mode 0600. The file is created relative to the
/// opened parent directory with an unpredictable name and `O_EXCL | O_NOFOLLOW`, so a symlink
/// planted in the directory is never followed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    match CacheDir::open(dir, true)? {
        Some(d) => d.write(name, bytes),
        None => Err(io::ErrorKind::NotFound.into()),
    }
}

/// Files in `dir` with one of `extensions` (without the dot), sorted by name.
pub fn conf_files(dir: &Path, extensions: &[&str]) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for ent in rd.flatten() {
        let p = ent.path();
        if !p.is_file() {
            continue;
        }
        if p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| extensions.contains(&e))
        {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Read one `.conflist` file.
pub fn load_conflist_file(path: &Path) -> Result<NetConfList, RuntimeError> {
    let bytes = limit::read_file(path).map_err(io_err(path))?;
    NetConfList::from_slice(&bytes).map_err(|source| RuntimeError::ConfList {
        path: path.to_path_buf(),
        source,
    })
}

/// Find network `name` in `dir`, as libcni's `LoadNetworkConf`: the first `.conflist` (by file
/// name) with that name; otherwise a single-plugin `.conf` / `.json` with that name, turned
/// into a list. Unless `loadOnlyInlinedPlugins` is set, plugin configs in `<dir>/<name>/*.conf`
/// are appended to the list.
pub fn load_network_list(dir: &Path, name: &str) -> Result<NetConfList, RuntimeError> {
    let mut found = None;
    for file in conf_files(dir, &["conflist"]).map_err(io_err(dir))? {
        // A broken file of another network does not hide the one asked for.
        let Ok(list) = load_conflist_file(&file) else {
            continue;
        };
        if list.name == name {
            found = Some(list);
            break;
        }
    }
    if found.is_none() {
        for file in conf_files(dir, &["conf", "json"]).map_err(io_err(dir))? {
            let Ok(bytes) = limit::read_file(&file) else {
                continue;
            };
            let Ok(conf) = NetConf::from_slice(&bytes) else {
                continue;
            };
            if conf.name == name && !conf.plugin_type.is_empty() {
                found = Some(NetConfList::from_conf(&conf).map_err(RuntimeError::Encode)?);
                break;
            }
        }
    }
    let mut list = found.ok_or_else(|| RuntimeError::NotFound {
        name: name.to_string(),
        dir: dir.to_path_buf(),
    })?;
    if !list.load_only_inlined_plugins {
        let sub = dir.join(name);
        for file in conf_files(&sub, &["conf"]).map_err(io_err(&sub))? {
            let bytes = limit::read_file(&file).map_err(io_err(&file))?;
            let plugin: Map<String, Value> =
                serde_json::from_slice(&bytes).map_err(|e| RuntimeError::ConfList {
                    path: file.clone(),
                    source: ConfListError::Parse(e.to_string()),
                })?;
            list.plugins.push(plugin);
        }
    }
    if list.plugins.is_empty() {
        return Err(RuntimeError::ConfList {
            path: dir.join(name),
            source: ConfListError::NoPlugins,
        });
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_writers_temporary_goes_with_the_cache() {
        let dir = std::env::temp_dir().join(format!("cni-proto-rt-{}", std::process::id()));
        let path = dir.join("results/net-c1-eth0");
        write_atomic(&path, b"{}").unwrap();
        let results = dir.join("results");
        // What a runtime killed between write and rename leaves, and neighbours to keep.
        for name in [
            ".net-c1-eth0.tmp4242",
            ".net-c1-eth0.tmp-00112233445566ff",
            ".net-c1-eth0.tmpx",
            ".net-c10-eth0.tmp7",
        ] {
            fs::write(results.join(name), "{").unwrap();
        }
        let cache = CacheDir::open(&results, false).unwrap().unwrap();
        cache.remove(OsStr::new("net-c1-eth0")).unwrap();
        cache.remove_temporaries(OsStr::new("net-c1-eth0"));
        let mut left: Vec<String> = fs::read_dir(&results)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".net-c1-eth0.tmpx", ".net-c10-eth0.tmp7"]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupt_cache_entry_is_a_typed_error_with_its_cause_once() {
        let dir = std::env::temp_dir().join(format!("cni-proto-rt-bad-{}", std::process::id()));
        let cni = CniConfig::new(Vec::new()).with_cache_dir(&dir);
        let list = NetConfList::from_slice(
            br#"{"cniVersion": "1.0.0", "name": "net", "plugins": [{"type": "x"}]}"#,
        )
        .unwrap();
        let rt = RuntimeConf::new("c1", "/var/run/netns/p", "eth0");
        write_atomic(&cni.cache_path("net", &rt), b"{not json").unwrap();
        let err = cni.cached_result(&list, &rt).unwrap_err();
        let _ = fs::remove_dir_all(&dir);
        let RuntimeError::CachedConfig { network, source } = &err else {
            panic!("want CachedConfig, got {err:?}");
        };
        assert_eq!(network, "net");
        let cause = source.to_string();
        assert!(!err.to_string().contains(&cause), "{err}");
        let full = cni_types::error::chain_message(&err);
        assert_eq!(
            full,
            format!("failed to read cached network \"net\" config: {cause}")
        );
    }

    #[test]
    fn many_errors_print_each_chain_on_its_own_line() {
        let io = |p: &str| RuntimeError::Io {
            path: PathBuf::from(p),
            source: io::Error::new(io::ErrorKind::PermissionDenied, "denied"),
        };
        let err = RuntimeError::Multiple(vec![io("/a"), io("/b")]);
        assert_eq!(
            cni_types::error::chain_message(&err),
            "cannot access /a: denied\ncannot access /b: denied"
        );
    }
}
