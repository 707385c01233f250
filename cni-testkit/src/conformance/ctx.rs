//! What every check shares: the parsed chain, who the plugin is, the versions to test.

use std::path::PathBuf;

use cni_types::Version;
use serde_json::{Map, Value, json};

use super::judge::describe;
use super::known::PluginIdentity;
use super::{SuiteError, SuiteOptions};
use crate::netns::TempNetns;
use crate::runner::PluginRunner;

/// Everything the checks share: the parsed config, who the plugin is, what it supports.
#[derive(Debug)]
pub(super) struct Ctx {
    pub options: SuiteOptions,
    pub identity: PluginIdentity,
    pub supported: Vec<Version>,
    pub versions: Vec<Version>,
    pub type_under_test: String,
    pub(super) version_error: Option<String>,
    pub(super) list_name: String,
    /// The chain up to and including the plugin under test.
    pub(super) plugins: Vec<Map<String, Value>>,
    /// Index of the plugin under test in `plugins`.
    pub(super) idx: usize,
    pub(super) cni_path: Vec<PathBuf>,
    pub(super) pre_chaining: Vec<Version>,
}

impl Ctx {
    /// Read the config, ask the plugin who it is and what it supports, and pick the versions
    /// to test.
    pub fn new(options: SuiteOptions) -> Result<Ctx, SuiteError> {
        if !options.plugin.is_file() {
            return Err(SuiteError::NoPlugin(options.plugin.clone()));
        }
        let chain = Chain::parse(&options)?;
        let mut cni_path = options.cni_path.clone();
        if let Some(dir) = options.plugin.parent() {
            cni_path.push(dir.to_path_buf());
        }
        let probe = Probe::run(&options)?;
        let (versions, pre_chaining) = versions_to_test(&options, &probe, chain.idx > 0);
        Ok(Ctx {
            options,
            identity: probe.identity,
            supported: probe.supported,
            versions,
            type_under_test: chain.type_under_test,
            version_error: probe.version_error,
            list_name: chain.list_name,
            plugins: chain.plugins,
            idx: chain.idx,
            cni_path,
            pre_chaining,
        })
    }

    pub(super) fn newest(&self) -> Option<Version> {
        self.versions.last().copied()
    }

    pub(super) fn supports(&self, v: Version) -> bool {
        self.supported.contains(&v)
    }

    /// Capability arguments for the `n`-th attachment of a check.
    pub(super) fn caps_for(&self, n: usize) -> Map<String, Value> {
        let offset = i64::try_from(n).unwrap_or(0) * 100;
        let mut caps = self.options.capability_args.clone().unwrap_or_else(|| {
            let mut m = Map::new();
            m.insert(
                "portMappings".into(),
                json!([
                    {"hostPort": 30080, "containerPort": 80, "protocol": "tcp"},
                    {"hostPort": 30053, "containerPort": 53, "protocol": "udp"}
                ]),
            );
            m
        });
        if let Some(Value::Array(pms)) = caps.get_mut("portMappings") {
            for pm in pms {
                if let Some(hp) = pm.get("hostPort").and_then(Value::as_i64) {
                    pm["hostPort"] = json!(hp + offset);
                }
            }
        }
        caps
    }
}

/// The chain a runtime would run, up to and including the plugin under test.
struct Chain {
    list_name: String,
    plugins: Vec<Map<String, Value>>,
    idx: usize,
    type_under_test: String,
}

impl Chain {
    /// A conflist, or a single config taken as a chain of one.
    fn parse(options: &SuiteOptions) -> Result<Chain, SuiteError> {
        let cfg = options
            .config
            .as_object()
            .ok_or_else(|| SuiteError::Config("not a JSON object".into()))?;
        let list_name = cfg
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| SuiteError::Config("no \"name\"".into()))?
            .to_string();
        let file_name = options
            .plugin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (mut plugins, idx) = match cfg.get("plugins") {
            Some(Value::Array(list)) => {
                let maps: Vec<Map<String, Value>> = list
                    .iter()
                    .map(|p| {
                        p.as_object()
                            .cloned()
                            .ok_or_else(|| SuiteError::Config("a plugin is not an object".into()))
                    })
                    .collect::<Result<_, _>>()?;
                let want = options.plugin_type.clone().unwrap_or(file_name.clone());
                let idx = maps
                    .iter()
                    .position(|p| p.get("type").and_then(Value::as_str) == Some(want.as_str()))
                    .or_else(|| (maps.len() == 1).then_some(0))
                    .ok_or_else(|| {
                        SuiteError::Config(format!(
                            "no plugin of type {want:?} in the conflist (use --type)"
                        ))
                    })?;
                (maps, idx)
            }
            Some(_) => return Err(SuiteError::Config("\"plugins\" is not a list".into())),
            None => {
                let mut m = cfg.clone();
                m.remove("name");
                m.remove("cniVersion");
                (vec![m], 0)
            }
        };
        plugins.truncate(idx + 1);
        let type_under_test = plugins[idx]
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(&file_name)
            .to_string();
        Ok(Chain {
            list_name,
            plugins,
            idx,
            type_under_test,
        })
    }
}

/// What the plugin says about itself, asked in a throw-away namespace.
struct Probe {
    identity: PluginIdentity,
    supported: Vec<Version>,
    /// Why VERSION failed, if it did.
    version_error: Option<String>,
}

impl Probe {
    fn run(options: &SuiteOptions) -> Result<Probe, SuiteError> {
        let probe = TempNetns::new("conf-probe").map_err(SuiteError::Privilege)?;
        let runner = PluginRunner::new(&options.plugin)
            .in_netns(&probe)
            .map_err(SuiteError::Privilege)?
            .timeout(options.timeout);
        let about = runner.about().unwrap_or_default();
        let identity = PluginIdentity::detect(&options.plugin, &about);
        let (supported, version_error) = match runner.version(Version::CURRENT) {
            Ok(info) => (info.supported_versions, None),
            Err(e) => (Vec::new(), Some(describe(&e))),
        };
        Ok(Probe {
            identity,
            supported,
            version_error,
        })
    }
}

/// The versions asked for that the plugin supports (all asked for when VERSION failed), and,
/// for a `chained` plugin, apart those before chaining existed.
fn versions_to_test(
    options: &SuiteOptions,
    probe: &Probe,
    chained: bool,
) -> (Vec<Version>, Vec<Version>) {
    let wanted = options
        .versions
        .clone()
        .unwrap_or_else(|| Version::ALL.to_vec());
    let mut versions: Vec<Version> = wanted
        .into_iter()
        .filter(|v| v.is_known())
        .filter(|v| probe.version_error.is_some() || probe.supported.contains(v))
        .collect();
    versions.sort();
    versions.dedup();
    let mut pre_chaining = Vec::new();
    if chained {
        pre_chaining = versions
            .iter()
            .copied()
            .filter(|v| !v.supports_chaining())
            .collect();
        versions.retain(Version::supports_chaining);
    }
    (versions, pre_chaining)
}
