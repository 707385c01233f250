//! Errors of the tuning plugin and their spec error codes.

use std::io;
use std::path::PathBuf;

use cni_linux::netns::NetnsError;
use cni_linux::sysctl::SysctlError;
use cni_types::args::ArgsError;
use cni_types::{Error, ErrorCode};

/// A configuration the reference refuses too (messages are the reference's).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not JSON, or a key of the wrong type.
    #[error("failed to load netconf")]
    Json(#[source] serde_json::Error),
    /// `CNI_ARGS` malformed, or a key other than `MAC` without `IgnoreUnknown`.
    #[error(transparent)]
    Args(#[from] ArgsError),
    /// The same key twice in `sysctl`.
    #[error("duplicated sysctl keys are not allowed")]
    DuplicateSysctl,
    /// A sysctl key whose file is not under `/proc/sys/net/`.
    #[error("invalid net sysctl key: {0:?}")]
    SysctlKey(String),
    /// A sysctl key that no line of the allow-list matches.
    #[error("Sysctl {key} is not allowed. Only the following sysctls are allowed: [{}]", .allowed.join(" "))]
    NotAllowed {
        /// The key as configured.
        key: String,
        /// The allow-list's patterns.
        allowed: Vec<String>,
    },
    /// The allow-list file exists but cannot be read.
    #[error("failed to read the sysctl allow-list {path:?}")]
    AllowlistRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A line of the allow-list is not a regular expression.
    #[error("error parsing regexp in the sysctl allow-list")]
    AllowlistPattern(#[source] regex_lite::Error),
    /// `mac` (from any source) is not a MAC address.
    #[error("invalid args {0} for MAC addr: address {0}: invalid MAC address")]
    Mac(String),
    /// `mtu` or `txQLen` out of range for the kernel.
    #[error("invalid {key} {value}")]
    Range {
        /// `mtu` or `txQLen`.
        key: &'static str,
        /// The value.
        value: i64,
    },
    /// `CNI_IFNAME` contains `/`.
    #[error("Interface name ({0}) contains an invalid character /")]
    IfName(String),
    /// `prevResult` is not a result of any version.
    #[error("{}", .0.msg)]
    PrevResult(Error),
}

/// Why CHECK failed: the namespace differs from the configuration (messages are the
/// reference's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// A sysctl has another value.
    #[error("Error: Tuning configured value of {path} is {want}, current value is {got}")]
    Sysctl {
        /// The file under `/proc/sys`.
        path: String,
        /// The configured value.
        want: String,
        /// The value in the pod.
        got: String,
    },
    /// The container interface is missing.
    #[error("Cannot find container link {0}")]
    NoLink(String),
    /// The MAC address differs.
    #[error("Error: Tuning configured Ethernet of {ifname} is {want}, current value is {got}")]
    Mac {
        /// `CNI_IFNAME`.
        ifname: String,
        /// The configured address, as given.
        want: String,
        /// The address on the link.
        got: String,
    },
    /// Promiscuous mode differs (also when it is on and the config does not ask for it).
    #[error("Error: Tuning link {ifname} configured promisc is {want}, current value is {got}")]
    Promisc {
        /// `CNI_IFNAME`.
        ifname: String,
        /// The configured mode.
        want: bool,
        /// `IFF_PROMISC` as 0 or 1.
        got: u8,
    },
    /// The MTU differs.
    #[error("Error: Tuning configured MTU of {ifname} is {want}, current value is {got}")]
    Mtu {
        /// `CNI_IFNAME`.
        ifname: String,
        /// The configured MTU.
        want: u32,
        /// The MTU of the link.
        got: u32,
    },
    /// All-multicast mode differs.
    #[error(
        "Error: Tuning configured all-multicast mode of {ifname} is {want}, current value is {got}"
    )]
    Allmulti {
        /// `CNI_IFNAME`.
        ifname: String,
        /// The configured mode.
        want: bool,
        /// The mode of the link.
        got: bool,
    },
    /// The transmit queue length differs.
    #[error(
        "Error: Tuning configured Transmit Queue Length of {ifname} is {want}, current value is {got}"
    )]
    TxQLen {
        /// `CNI_IFNAME`.
        ifname: String,
        /// The configured length.
        want: u32,
        /// The length of the link.
        got: u32,
    },
}

/// Errors of the tuning verbs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TuningError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// ADD or CHECK without `prevResult`.
    #[error("Required prevResult missing")]
    MissingPrevResult,
    /// The pod's namespace cannot be opened or entered.
    #[error("failed to open netns {path:?}")]
    Netns {
        /// `CNI_NETNS`.
        path: PathBuf,
        /// Why.
        #[source]
        source: NetnsError,
    },
    /// `CNI_NETNS` is empty for ADD or CHECK.
    #[error("CNI_NETNS is required")]
    NoNetns,
    /// The container interface does not exist.
    #[error("failed to get {0:?}: Link not found")]
    NoLink(String),
    /// A netlink request failed.
    #[error("{what}")]
    Netlink {
        /// What was being done, e.g. `failed to set MTU of "eth0"`.
        what: String,
        /// The kernel's answer.
        #[source]
        source: cni_linux::netlink::Error,
    },
    /// A sysctl could not be read or written.
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    /// The saved originals could not be written, read or removed.
    #[error("{what} {path:?}")]
    Backup {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// CHECK found a difference.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// GC's `cni.dev/valid-attachments` is malformed.
    #[error("invalid cni.dev/valid-attachments")]
    Attachments(#[source] serde_json::Error),
    /// Several steps failed, each listed: DEL could not restore some attributes (the saved
    /// file is kept for another DEL), or GC could not remove some files.
    #[error("{}", .0.iter().map(|e| cni_types::error::chain_message(e)).collect::<Vec<_>>().join("; "))]
    Many(Vec<TuningError>),
}

impl TuningError {
    /// The spec error code: 7 for configuration errors (the reference: 999), the decoding
    /// error's code for an undecodable `prevResult`, 999 otherwise.
    pub fn code(&self) -> ErrorCode {
        match self {
            TuningError::Config(ConfigError::PrevResult(e)) => e.code,
            TuningError::Config(_)
            | TuningError::MissingPrevResult
            | TuningError::Attachments(_) => ErrorCode::InvalidNetworkConfig,
            _ => ErrorCode::Internal,
        }
    }

    pub(crate) fn netlink(what: String) -> impl FnOnce(cni_linux::netlink::Error) -> TuningError {
        move |source| TuningError::Netlink { what, source }
    }
}

impl From<TuningError> for Error {
    fn from(e: TuningError) -> Error {
        Error::from_chain(e.code(), &e)
    }
}
