//! Errors of the portmap plugin and their spec error codes.

use cni_linux::firewall::FirewallError;
use cni_types::{Error, ErrorCode};

/// A configuration the reference would refuse too (messages are the reference's).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not JSON, or a key of the wrong type.
    #[error("failed to parse network configuration")]
    Json(#[source] serde_json::Error),
    /// `prevResult` is not a result of any version.
    #[error("{}", .0.msg)]
    PrevResult(Error),
    /// Both `externalSetMarkChain` and `markMasqBit`.
    #[error("Cannot specify externalSetMarkChain and markMasqBit")]
    MarkBitWithExternalChain,
    /// `externalSetMarkChain` is not a chain name iptables accepts.
    #[error("invalid externalSetMarkChain {0:?}: not an iptables chain name")]
    ExternalChain(String),
    /// `markMasqBit` outside 0..=31.
    #[error("MasqMarkBit must be between 0 and 31")]
    MarkBitRange,
    /// Options of the other backend (`externalSetMarkChain`, iptables- or nft-style
    /// conditions).
    #[error("{backend} backend was requested but configuration contains {other}-specific options [{}]", .options.join(" "))]
    WrongBackendOptions {
        /// The backend in use (as requested, or detected).
        backend: String,
        /// The backend the options belong to.
        other: &'static str,
        /// The offending keys.
        options: Vec<&'static str>,
    },
    /// `backend` is neither `iptables` nor `nftables`.
    #[error("unrecognized backend {0:?}")]
    UnknownBackend(String),
    /// `containerPort` not in 1..=65535.
    #[error("Invalid container port number: {0}")]
    ContainerPort(i64),
    /// `hostPort` not in 1..=65535.
    #[error("Invalid host port number: {0}")]
    HostPort(i64),
    /// `protocol` other than tcp, udp, sctp.
    #[error("invalid protocol {0:?} in port mapping (expected tcp, udp or sctp)")]
    Protocol(String),
    /// `hostIP` that is not an IP address.
    #[error("invalid hostIP {0:?} in port mapping")]
    HostIp(String),
    /// An nftables condition we cannot express.
    #[error("invalid {key}")]
    Condition {
        /// `conditionsV4` or `conditionsV6`.
        key: &'static str,
        /// What is wrong.
        #[source]
        source: crate::conditions::ConditionError,
    },
    /// An iptables condition or chain name iptables-restore cannot take.
    #[error("invalid iptables rule")]
    Rule(#[source] cni_linux::firewall::iptables::RuleError),
}

/// Why CHECK failed: something ADD installs is missing or different.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// An iptables chain is missing.
    #[error("chain {chain} not found in iptables table {table}")]
    MissingChain {
        /// Chain name.
        chain: String,
        /// Table name.
        table: String,
    },
    /// An iptables rule is missing.
    #[error("rule {rule} in chain {chain} not found in table {table}")]
    MissingRule {
        /// Chain name.
        chain: String,
        /// The rule, as iptables-save prints it.
        rule: String,
        /// Table name.
        table: String,
    },
    /// The nftables table, a chain of its skeleton or a map is missing.
    #[error("nftables {what} {name} not found in table {family} {table}")]
    MissingNft {
        /// `chain`, `map`, `table`.
        what: &'static str,
        /// Its name.
        name: String,
        /// Table family.
        family: String,
        /// Table name.
        table: String,
    },
    /// The container's chain does not hold the rules ADD would install.
    #[error("nftables chain {chain} has {found} rules, expected {expected}")]
    RuleCount {
        /// Chain name.
        chain: String,
        /// Rules found.
        found: usize,
        /// Rules expected.
        expected: usize,
    },
    /// The skeleton (base chain rules) was written for another configuration (other
    /// conditions or mark), or the stamp is missing.
    #[error(
        "nftables skeleton stamp is {found:?}, expected {expected:?} (conditions or markMasqBit of another configuration are in effect)"
    )]
    Skeleton {
        /// The stamp in the table.
        found: String,
        /// The stamp this configuration writes.
        expected: String,
    },
    /// A host port is not mapped, or mapped to another container.
    #[error("host port {key} is {state}")]
    Element {
        /// The map key, e.g. `tcp . 8080`.
        key: String,
        /// `not mapped` or `mapped to <verdict>`.
        state: String,
    },
}

/// Errors of the portmap verbs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PortmapError {
    /// The configuration is invalid.
    #[error("failed to parse config")]
    Config(#[from] ConfigError),
    /// ADD without `prevResult`.
    #[error("must be called as chained plugin")]
    NotChained,
    /// CHECK without `prevResult`.
    #[error("Required prevResult missing")]
    MissingPrevResult,
    /// The firewall refused or could not be reached.
    #[error("{what}")]
    Firewall {
        /// What was being done.
        what: &'static str,
        /// The backend's error.
        #[source]
        source: FirewallError,
    },
    /// `route_localnet` could not be enabled on the host interface.
    #[error("unable to enable route_localnet on {ifname}")]
    RouteLocalnet {
        /// The host interface towards the container.
        ifname: String,
        /// The sysctl error.
        #[source]
        source: cni_linux::sysctl::SysctlError,
    },
    /// The stale UDP conntrack entries of the mapped host ports could not be deleted (ADD:
    /// the new container would not get traffic that a stale entry still points elsewhere).
    #[error("could not delete stale UDP conntrack entries")]
    Conntrack(#[source] cni_linux::conntrack::ConntrackError),
    /// A host port is held by another attachment (nftables backend): ADD refuses instead of
    /// taking it over.
    #[error(
        "host port {key} is already mapped by {owner:?} (to {target}); refusing to take it over"
    )]
    HostPortTaken {
        /// The map key, e.g. `tcp . 8080`.
        key: String,
        /// The holder's owner comment (`<network> <ifname> <container id>`).
        owner: String,
        /// Where the host port leads now.
        target: String,
    },
    /// The shared nftables skeleton carries another network's conditions or mark while that
    /// network has mappings: rewriting it would drop that network's conditions.
    #[error(
        "nftables table {table} holds the skeleton of another configuration (conditions or markMasqBit) in use by {networks}; refusing to replace it"
    )]
    SkeletonInUse {
        /// `ip cni_portmap` or `ip6 cni_portmap`.
        table: String,
        /// The network tags with live mappings.
        networks: String,
    },
    /// CHECK found a difference.
    #[error("portmap check failed")]
    Check(#[from] CheckError),
    /// STATUS: the configured backend is not usable.
    #[error("{0} backend is not available")]
    Unavailable(&'static str),
    /// GC's `cni.dev/valid-attachments` is malformed.
    #[error("invalid cni.dev/valid-attachments")]
    Attachments(#[source] serde_json::Error),
    /// Several steps of DEL or GC failed; each is listed.
    #[error("{}", cni_types::error::join_chain_messages(.0, "; "))]
    Many(Vec<PortmapError>),
}

impl PortmapError {
    /// The spec error code: 7 for configuration errors, 50 when STATUS finds the backend
    /// unusable, 999 otherwise.
    pub fn code(&self) -> ErrorCode {
        match self {
            PortmapError::Config(ConfigError::PrevResult(e)) => e.code,
            PortmapError::Config(_) | PortmapError::Attachments(_) => {
                ErrorCode::InvalidNetworkConfig
            }
            PortmapError::NotChained | PortmapError::MissingPrevResult => {
                ErrorCode::InvalidNetworkConfig
            }
            PortmapError::Unavailable(_) => ErrorCode::PluginNotAvailable,
            _ => ErrorCode::Internal,
        }
    }

    pub(crate) fn firewall(what: &'static str) -> impl FnOnce(FirewallError) -> PortmapError {
        move |source| PortmapError::Firewall { what, source }
    }
}

impl From<PortmapError> for Error {
    fn from(e: PortmapError) -> Error {
        Error::from_chain(e.code(), &e)
    }
}
