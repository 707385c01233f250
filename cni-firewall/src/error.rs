//! Errors of the firewall plugin and their spec codes.

use cni_types::{Error, ErrorCode};

/// A configuration the plugin refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// stdin is not a network configuration.
    #[error("{0}")]
    Json(String),
    /// A key that must be a string is not.
    #[error("failed to load netconf: {key} must be a string, not {value}")]
    NotAString {
        /// The key.
        key: String,
        /// Its JSON value.
        value: String,
    },
    /// `backend` is none of `iptables`, `nftables`, `firewalld` or empty.
    #[error(
        "unknown firewall backend {0:?} (want \"iptables\", \"nftables\", \"firewalld\" or \"\")"
    )]
    Backend(String),
    /// `ingressPolicy` is unknown (the reference's message).
    #[error("unknown ingress policy: {0:?}")]
    IngressPolicy(String),
    /// `iptablesAdminChainName` is not a chain name iptables accepts.
    #[error("invalid iptablesAdminChainName {0:?}")]
    AdminChain(String),
    /// The network name cannot name a directory.
    #[error("invalid network name {0:?}")]
    Name(String),
    /// `prevResult` could not be decoded.
    #[error("{0}")]
    PrevResult(String),
}

/// What CHECK found missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// A rule the reference's CHECK looks for (its message).
    #[error("expected {chain} rule {rule} not found")]
    ChainRule {
        /// Chain.
        chain: String,
        /// Rule as iptables prints it.
        rule: String,
    },
    /// A per-address rule (the reference's message).
    #[error("expected rule {0} not found")]
    Rule(String),
    /// A chain is missing.
    #[error("chain {0} not found")]
    Chain(String),
    /// Something of our nftables table is missing.
    #[error("nftables: {0}")]
    Nft(String),
    /// An address is not in the firewalld zone (the reference's message).
    #[error("failed to find the address {addr} in {zone} zone")]
    Zone {
        /// Address with prefix.
        addr: String,
        /// Zone.
        zone: String,
    },
}

/// Errors of the verbs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FirewallError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// ADD or CHECK without `prevResult` (the reference's message).
    #[error("missing prevResult from earlier plugin")]
    MissingPrevResult,
    /// `ingressPolicy: same-bridge` without an interface in `prevResult` (the reference's
    /// message).
    #[error(
        "interface needs to be set for ingress policy \"same-bridge\", make sure to chain \"firewall\" plugin with \"bridge\""
    )]
    NoBridge,
    /// The kernel firewall refused or could not be read.
    #[error("{what}")]
    Firewall {
        /// What we were doing.
        what: &'static str,
        /// Cause.
        #[source]
        source: cni_linux::firewall::FirewallError,
    },
    /// firewalld was asked for but cannot be used here.
    #[error("firewalld backend: {0}")]
    Firewalld(&'static str),
    /// firewalld was asked for but does not answer on the system bus.
    #[error("firewalld backend: firewalld is not reachable on the system bus")]
    FirewalldUnreachable(#[source] Box<crate::dbus::DbusError>),
    /// firewalld refused a zone change (the reference's message).
    #[error("failed to {op} the address {addr} {prep} {zone} zone")]
    Zone {
        /// `add` or `remove`.
        op: &'static str,
        /// `to` or `from`.
        prep: &'static str,
        /// Address with prefix.
        addr: String,
        /// Zone.
        zone: String,
        /// Cause.
        #[source]
        source: Box<crate::dbus::DbusError>,
    },
    /// STATUS: the backend cannot be used.
    #[error("firewall backend not usable: {0}")]
    Unavailable(&'static str),
    /// The host's links could not be read (isolation teardown).
    #[error("reading the links of bridge {bridge}")]
    Links {
        /// Bridge.
        bridge: String,
        /// Cause.
        #[source]
        source: cni_linux::netlink::Error,
    },
    /// The attachment record could not be written or read.
    #[error("attachment record {path}")]
    Store {
        /// File.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// CHECK failed.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// GC's valid attachments could not be decoded.
    #[error("invalid cni.dev/valid-attachments")]
    Attachments(#[source] serde_json::Error),
    /// Several steps of DEL or GC failed.
    #[error("{}", .0.iter().map(|e| cni_types::error::chain_message(e)).collect::<Vec<_>>().join("; "))]
    Many(Vec<FirewallError>),
}

impl FirewallError {
    /// A closure wrapping a backend error with what was being done.
    pub fn firewall(
        what: &'static str,
    ) -> impl Fn(cni_linux::firewall::FirewallError) -> FirewallError {
        move |source| FirewallError::Firewall { what, source }
    }

    /// The spec's error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            FirewallError::Config(ConfigError::PrevResult(_)) => ErrorCode::DecodingFailure,
            FirewallError::Config(ConfigError::Json(_)) => ErrorCode::DecodingFailure,
            FirewallError::Config(_) | FirewallError::NoBridge => ErrorCode::InvalidNetworkConfig,
            FirewallError::Attachments(_) => ErrorCode::DecodingFailure,
            FirewallError::Firewalld(_)
            | FirewallError::FirewalldUnreachable(_)
            | FirewallError::Unavailable(_) => ErrorCode::PluginNotAvailable,
            FirewallError::Store { .. } => ErrorCode::IoFailure,
            _ => ErrorCode::Internal,
        }
    }
}

impl From<FirewallError> for Error {
    fn from(e: FirewallError) -> Error {
        Error::from_chain(e.code(), &e)
    }
}
