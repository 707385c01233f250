#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! - [`version`]: [`Version`] and what each version allows (chaining, CHECK, GC, STATUS).
//! - [`config`]: one plugin's [`NetConf`] and a `.conflist`'s [`NetConfList`]; unknown keys
//!   survive a round trip.
//! - [`dns`]: the [`Dns`] settings shared by configs and results.
//! - [`result`]: the canonical [`CniResult`] and the 0.4.0 / 0.2.0 wire shapes, with the
//!   reference's conversion rules.
//! - [`error`]: the spec's [`Error`] `{code, msg, details}` and [`ErrorCode`].
//! - [`args`]: `CNI_ARGS` parsing with `IgnoreUnknown`.
//! - [`capabilities`]: `runtimeConfig` (port mappings, IP ranges, ...) accepting the
//!   capitalised keys containerd sends, and GC's valid attachments.
//! - [`validate`]: the reference's rules for container IDs, network and interface names.
//! - [`go`]: Go's `%q` and `%v` of strings and lists, for messages and names that must read
//!   exactly as the reference plugins'.

#![warn(missing_docs)]

pub use ipnet;

pub mod args;
pub mod capabilities;
pub mod config;
pub mod dns;
pub mod error;
pub mod go;
pub mod result;
pub mod validate;
pub mod version;

pub use args::CniArgs;
pub use capabilities::{Attachment, PortMapping, RuntimeConfig};
pub use config::{IpamConf, NetConf, NetConfList};
pub use dns::Dns;
pub use error::{Error, ErrorCode};
pub use result::{CniResult, Interface, IpConfig, Route};
pub use version::Version;

/// Serialise as the reference library prints results and errors: JSON indented by four
/// spaces, no trailing newline.
pub fn to_json_pretty<T: serde::Serialize + ?Sized>(value: &T) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    match value.serialize(&mut ser) {
        Ok(()) => String::from_utf8(buf).unwrap_or_default(),
        Err(e) => format!(
            "{{\n    \"code\": 999,\n    \"msg\": {}\n}}",
            serde_json::Value::String(format!("failed to serialize: {e}"))
        ),
    }
}

/// `{"cniVersion": ..., "supportedVersions": [...]}`: the answer to VERSION.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VersionInfo {
    /// The version the plugin speaks natively.
    #[serde(rename = "cniVersion")]
    pub cni_version: Version,
    /// Every version it supports.
    #[serde(rename = "supportedVersions")]
    pub supported_versions: Vec<Version>,
}
