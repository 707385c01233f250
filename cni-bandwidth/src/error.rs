//! Errors of the bandwidth plugin and their spec error codes.

use std::path::PathBuf;

use cni_linux::netns::NetnsError;
use cni_types::{Error, ErrorCode};

/// A configuration the reference refuses too (messages are the reference's).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A rate or burst is not a non-negative integer.
    #[error("failed to parse network configuration")]
    Json(#[source] serde_json::Error),
    /// A rate without its burst.
    #[error("if rate is set, burst must also be set")]
    RateWithoutBurst,
    /// A burst without its rate.
    #[error("if burst is set, rate must also be set")]
    BurstWithoutRate,
    /// A burst of 4 GiB (2^32 bytes) or more.
    #[error("burst cannot be more than 4GB")]
    BurstTooLarge,
    /// A rate under 8 bits per second: under one byte per second, which a token bucket
    /// cannot express (the reference sends it and the kernel refuses it).
    #[error("rate must be at least 8 bits per second, got {0}")]
    RateTooSmall(u64),
    /// `prevResult` is not a result of any version.
    #[error("{}", .0.msg)]
    PrevResult(Error),
}

/// Why CHECK failed (messages are the reference's where it has one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// No token bucket on the device.
    #[error("Failed to find qdisc")]
    NoQdisc,
    /// The rate differs.
    #[error("Rate doesn't match")]
    Rate,
    /// The queue limit differs.
    #[error("Limit doesn't match")]
    Limit,
    /// The bucket size differs.
    #[error("Buffer doesn't match")]
    Buffer,
    /// The ifb device is missing.
    #[error("get ifb device: Link not found")]
    NoIfb,
    /// Nothing redirects the pod's traffic to the ifb device (the reference does not check).
    #[error("no filter on {host} redirects to {ifb}")]
    NoRedirect {
        /// The host-side interface.
        host: String,
        /// The ifb device.
        ifb: String,
    },
}

/// Errors of the bandwidth verbs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BandwidthError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// ADD without `prevResult`.
    #[error("must be called as chained plugin")]
    NotChained,
    /// CHECK without `prevResult`.
    #[error("must be called as a chained plugin")]
    NotChainedCheck,
    /// `CNI_NETNS` is empty for ADD or CHECK.
    #[error("CNI_NETNS is required")]
    NoNetns,
    /// The pod's namespace cannot be opened.
    #[error("failed to open netns {path:?}")]
    Netns {
        /// `CNI_NETNS`.
        path: PathBuf,
        /// Why.
        #[source]
        source: NetnsError,
    },
    /// `prevResult` lists no interfaces.
    #[error("no interfaces provided")]
    NoInterfaces,
    /// The container interface is not a veth (or is missing).
    #[error("container interface {0} has no veth peer")]
    NoPeer(String),
    /// The veth peer is not in the namespace the plugin runs in.
    #[error("veth peer with index {0} is not in host ns")]
    PeerNotInHost(u32),
    /// `prevResult` does not list the peer as a host-side interface.
    #[error("no veth peer of container interface found in host ns")]
    PeerNotListed,
    /// A netlink request failed.
    #[error("{what}")]
    Netlink {
        /// What was being done, e.g. `create ingress qdisc`.
        what: &'static str,
        /// The kernel's answer.
        #[source]
        source: cni_linux::netlink::Error,
    },
    /// CHECK found a difference.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// GC's `cni.dev/valid-attachments` is malformed.
    #[error("invalid cni.dev/valid-attachments")]
    Attachments(#[source] serde_json::Error),
    /// Several teardown steps failed, each listed.
    #[error("{}", .0.iter().map(|e| cni_types::error::chain_message(e)).collect::<Vec<_>>().join("; "))]
    Many(Vec<BandwidthError>),
}

impl BandwidthError {
    /// The spec error code: 7 for configuration errors (the reference: 999), the decoding
    /// error's code for an undecodable `prevResult`, 999 otherwise.
    pub fn code(&self) -> ErrorCode {
        match self {
            BandwidthError::Config(ConfigError::PrevResult(e)) => e.code,
            BandwidthError::Config(_)
            | BandwidthError::NotChained
            | BandwidthError::NotChainedCheck
            | BandwidthError::Attachments(_) => ErrorCode::InvalidNetworkConfig,
            _ => ErrorCode::Internal,
        }
    }

    pub(crate) fn netlink(what: &'static str) -> impl FnOnce(cni_linux::netlink::Error) -> Self {
        move |source| BandwidthError::Netlink { what, source }
    }
}

impl From<BandwidthError> for Error {
    fn from(e: BandwidthError) -> Error {
        Error::from_chain(e.code(), &e)
    }
}
