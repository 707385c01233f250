//! Network configurations: one plugin's [`NetConf`] and the [`NetConfList`] of a `.conflist`.
//!
//! Unknown keys survive a round trip through `extra` (chained plugins and runtimes pass them
//! on). Capability arguments stay raw JSON in [`RuntimeConfig`] and are read with typed
//! accessors, so one plugin never fails on the shape of another plugin's capability.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::capabilities::{Attachment, RuntimeConfig};
use crate::dns::Dns;
use crate::error::{Error, ErrorCode};
use crate::result::CniResult;
use crate::validate::validate_network_name;
use crate::version::Version;

/// The `ipam` section: its `type` plus the IPAM plugin's own keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IpamConf {
    /// The IPAM plugin binary name, e.g. `host-local`. Empty means "no IPAM".
    #[serde(rename = "type", default)]
    pub plugin_type: String,
    /// Every other key, kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One plugin's network configuration, as a plugin receives it on stdin.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetConf {
    /// `cniVersion`; absent means 0.1.0 (see [`NetConf::version`]).
    #[serde(
        rename = "cniVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cni_version: Option<Version>,
    /// Network name.
    #[serde(default)]
    pub name: String,
    /// Plugin binary name.
    #[serde(rename = "type", default)]
    pub plugin_type: String,
    /// Capabilities the plugin declares (`portMappings: true` ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capabilities: BTreeMap<String, bool>,
    /// IPAM section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<IpamConf>,
    /// DNS section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// `args` (conventionally `{"cni": {...}}`), raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// Capability arguments injected by the runtime.
    #[serde(
        rename = "runtimeConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub runtime_config: Option<RuntimeConfig>,
    /// The previous plugin's result, raw (see [`NetConf::prev_result`]).
    #[serde(
        rename = "prevResult",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub prev_result: Option<Value>,
    /// GC's list of attachments that are still valid.
    #[serde(
        rename = "cni.dev/valid-attachments",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub valid_attachments: Option<Vec<Attachment>>,
    /// Every other key (plugin-specific ones), kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl NetConf {
    /// Parse a config from JSON bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The config's version, 0.1.0 when it names none.
    pub fn version(&self) -> Version {
        self.cni_version.unwrap_or_default()
    }

    /// The IPAM plugin type, `None` when `ipam` is absent or its type empty.
    pub fn ipam_type(&self) -> Option<&str> {
        self.ipam
            .as_ref()
            .map(|i| i.plugin_type.as_str())
            .filter(|t| !t.is_empty())
    }

    /// The capability arguments, empty when none were injected.
    pub fn runtime_config(&self) -> RuntimeConfig {
        self.runtime_config.clone().unwrap_or_default()
    }

    /// `args.cni.<key>`, if present.
    pub fn args_cni(&self, key: &str) -> Option<&Value> {
        self.args.as_ref()?.get("cni")?.get(key)
    }

    /// The previous result, parsed with the config's version when it names none (the
    /// reference's `ParsePrevResult`).
    pub fn prev_result(&self) -> Result<Option<CniResult>, Error> {
        match &self.prev_result {
            None | Some(Value::Null) => Ok(None),
            Some(v) => CniResult::from_value(v.clone(), Some(self.version()))
                .map(Some)
                .map_err(|e| {
                    Error::msg(
                        ErrorCode::DecodingFailure,
                        format!("could not parse prevResult: {}", e.msg),
                    )
                }),
        }
    }

    /// GC's valid attachments. libcni also sends them as `cni.dev/attachments` (cni #1101);
    /// that spelling is read when the spec's is absent.
    pub fn gc_valid_attachments(&self) -> Result<Option<Vec<Attachment>>, serde_json::Error> {
        if let Some(v) = &self.valid_attachments {
            return Ok(Some(v.clone()));
        }
        match self.extra.get("cni.dev/attachments") {
            Some(v) => serde_json::from_value(v.clone()).map(Some),
            None => Ok(None),
        }
    }
}

/// Errors in a `.conflist`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConfListError {
    /// Not JSON, or a key of the wrong type.
    Parse(String),
    /// No `name`.
    MissingName,
    /// A `name` the reference rejects.
    InvalidName(Error),
    /// No `plugins` and not `loadOnlyInlinedPlugins: false`.
    NoPlugins,
    /// A plugin without `type`.
    MissingType(usize),
}

impl std::fmt::Display for ConfListError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfListError::Parse(e) => write!(f, "error parsing configuration list: {e}"),
            ConfListError::MissingName => f.write_str("error parsing configuration list: no name"),
            ConfListError::InvalidName(e) => write!(f, "{e}"),
            ConfListError::NoPlugins => {
                f.write_str("error parsing configuration list: no plugins in list")
            }
            ConfListError::MissingType(i) => write!(
                f,
                "error parsing configuration list: plugin {i}: missing 'type'"
            ),
        }
    }
}

impl std::error::Error for ConfListError {}

/// A bool that libcni also accepts as the strings `"true"` / `"false"`.
fn de_loose_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        Value::Null => Ok(false),
        other => Err(serde::de::Error::custom(format!(
            "expected a boolean, got {other}"
        ))),
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A network configuration list (`.conflist`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetConfList {
    /// `cniVersion`.
    #[serde(
        rename = "cniVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cni_version: Option<Version>,
    /// `cniVersions` (1.1.0): every version the list is valid for.
    #[serde(rename = "cniVersions", default, skip_serializing_if = "Vec::is_empty")]
    pub cni_versions: Vec<Version>,
    /// Network name.
    #[serde(default)]
    pub name: String,
    /// The runtime must not call CHECK.
    #[serde(
        rename = "disableCheck",
        default,
        deserialize_with = "de_loose_bool",
        skip_serializing_if = "is_false"
    )]
    pub disable_check: bool,
    /// The runtime must not call GC.
    #[serde(
        rename = "disableGC",
        default,
        deserialize_with = "de_loose_bool",
        skip_serializing_if = "is_false"
    )]
    pub disable_gc: bool,
    /// Only the plugins inlined here, none from `<confdir>/<name>/`.
    #[serde(
        rename = "loadOnlyInlinedPlugins",
        default,
        deserialize_with = "de_loose_bool",
        skip_serializing_if = "is_false"
    )]
    pub load_only_inlined_plugins: bool,
    /// The plugin configs, raw, in chain order.
    #[serde(default)]
    pub plugins: Vec<Map<String, Value>>,
    /// Every other key.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl NetConfList {
    /// Parse and validate a conflist as libcni does: a valid `name`, plugins each with a
    /// `type`.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ConfListError> {
        let raw: Value =
            serde_json::from_slice(bytes).map_err(|e| ConfListError::Parse(e.to_string()))?;
        if raw.get("name").is_none() {
            return Err(ConfListError::MissingName);
        }
        let has_plugins = raw.get("plugins").is_some();
        let list: NetConfList =
            serde_json::from_value(raw).map_err(|e| ConfListError::Parse(e.to_string()))?;
        validate_network_name(&list.name).map_err(ConfListError::InvalidName)?;
        if !has_plugins && list.load_only_inlined_plugins {
            return Err(ConfListError::NoPlugins);
        }
        for (i, p) in list.plugins.iter().enumerate() {
            if p.get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(ConfListError::MissingType(i));
            }
        }
        Ok(list)
    }

    /// A single-plugin `.conf` turned into a list of one, as libcni's `ConfListFromConf`.
    pub fn from_conf(conf: &NetConf) -> Result<Self, serde_json::Error> {
        let mut plugin = match serde_json::to_value(conf)? {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        plugin.remove("name");
        plugin.remove("cniVersion");
        Ok(NetConfList {
            cni_version: conf.cni_version,
            name: conf.name.clone(),
            plugins: vec![plugin],
            ..Default::default()
        })
    }

    /// The version the runtime uses: the highest of `cniVersion` and `cniVersions` that is not
    /// newer than [`Version::CURRENT`]; 0.1.0 when none is named.
    pub fn effective_version(&self) -> Version {
        self.cni_versions
            .iter()
            .copied()
            .chain(self.cni_version)
            .filter(|v| *v <= Version::CURRENT)
            .max()
            .unwrap_or_default()
    }

    /// The plugin types, in order.
    pub fn plugin_types(&self) -> Vec<&str> {
        self.plugins
            .iter()
            .map(|p| p.get("type").and_then(Value::as_str).unwrap_or(""))
            .collect()
    }
}
