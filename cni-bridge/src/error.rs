//! [`BridgeError`] and its mapping to the spec's error codes.

use std::path::PathBuf;

use cni_linux::firewall::FirewallError;
use cni_linux::netlink;
use cni_linux::netns::NetnsError;
use cni_linux::sysctl::SysctlError;
use cni_types::args::ArgsError;
use cni_types::{Error, ErrorCode};

/// Everything that can go wrong in a bridge verb. Messages read as the reference plugin's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// The config is invalid (code 7).
    #[error("{0}")]
    Config(String),
    /// `CNI_ARGS` could not be parsed (code 4).
    #[error(transparent)]
    Args(ArgsError),
    /// A spec-level error, e.g. an unparsable `prevResult` (its own code).
    #[error("{0}")]
    Cni(Error),
    /// The delegated IPAM plugin failed; its error is passed on unchanged (code and message).
    #[error("{0}")]
    Ipam(Error),
    /// The container's namespace could not be opened.
    #[error("failed to open netns {path:?}")]
    Netns {
        /// `CNI_NETNS`.
        path: PathBuf,
        /// Why.
        #[source]
        source: NetnsError,
    },
    /// A netlink operation failed.
    #[error("{context}")]
    Netlink {
        /// What was being done, in the reference's words.
        context: String,
        /// The kernel's answer.
        #[source]
        source: netlink::Error,
    },
    /// A sysctl could not be written.
    #[error("{context}")]
    Sysctl {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: SysctlError,
    },
    /// A firewall backend failed (masquerade or spoof check).
    #[error("{context}")]
    Firewall {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: FirewallError,
    },
    /// A condition the reference reports with a plain message (CHECK mismatches, missing IP
    /// config, port not up, ...).
    #[error("{0}")]
    Failed(String),
    /// A failure injected by [`crate::Hooks`] (tests of the ADD rollback).
    #[error("injected failure: {0}")]
    Injected(String),
    /// Several steps of DEL or GC failed; every step was tried.
    #[error("{}", .0.iter().map(|e| cni_types::error::chain_message(e)).collect::<Vec<_>>().join("; "))]
    Multiple(Vec<BridgeError>),
}

impl BridgeError {
    pub(crate) fn netlink(context: impl Into<String>, source: netlink::Error) -> Self {
        BridgeError::Netlink {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn firewall(context: impl Into<String>, source: FirewallError) -> Self {
        BridgeError::Firewall {
            context: context.into(),
            source,
        }
    }

    /// The spec error code: 7 for config errors, 4 for `CNI_ARGS`, IPAM's own code for IPAM
    /// failures, 999 for everything else (as the reference).
    pub fn code(&self) -> ErrorCode {
        match self {
            BridgeError::Config(_) => ErrorCode::InvalidNetworkConfig,
            BridgeError::Args(_) => ErrorCode::InvalidEnvironmentVariables,
            BridgeError::Cni(e) | BridgeError::Ipam(e) => e.code,
            BridgeError::Multiple(errs) => match errs.as_slice() {
                [one] => one.code(),
                _ => ErrorCode::Internal,
            },
            _ => ErrorCode::Internal,
        }
    }

    /// Collapses a list of teardown errors: `Ok` when empty, the error itself when alone.
    pub(crate) fn collect(mut errs: Vec<BridgeError>) -> Result<(), BridgeError> {
        match errs.len() {
            0 => Ok(()),
            1 => Err(errs.remove(0)),
            _ => Err(BridgeError::Multiple(errs)),
        }
    }
}

impl From<BridgeError> for Error {
    /// The spec's error: IPAM and spec errors unchanged, others with their cause chain joined
    /// by `": "` as Go's `%v` wrapping reads.
    fn from(e: BridgeError) -> Error {
        match e {
            BridgeError::Ipam(e) | BridgeError::Cni(e) => e,
            BridgeError::Multiple(mut errs) if errs.len() == 1 => Error::from(errs.remove(0)),
            other => Error::from_chain(other.code(), &other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages() {
        let e = BridgeError::Config("invalid VLAN ID 5000 (must be between 0 and 4094)".into());
        let ce = Error::from(e);
        assert_eq!(ce.code(), 7);
        let ipam = Error::new(ErrorCode::Other(101), "no IP addresses available", "");
        let ce = Error::from(BridgeError::Ipam(ipam.clone()));
        assert_eq!(ce, ipam);
        let nl = BridgeError::netlink(
            "failed to create bridge \"cni0\"",
            netlink::Error::NotFound {
                what: "link",
                name: "x".into(),
            },
        );
        let ce = Error::from(nl);
        assert_eq!(ce.code(), 999);
        assert_eq!(
            ce.msg,
            "failed to create bridge \"cni0\": link \"x\" not found"
        );
        let multi = BridgeError::Multiple(vec![
            BridgeError::Failed("a".into()),
            BridgeError::Failed("b".into()),
        ]);
        assert_eq!(multi.to_string(), "a; b");
    }
}
