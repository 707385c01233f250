//! [`LoopbackError`] and its mapping to the spec's error codes.

use std::net::IpAddr;
use std::path::PathBuf;

use cni_linux::netlink;
use cni_linux::netns::NetnsError;
use cni_types::ipnet::IpNet;
use cni_types::{Error, ErrorCode};

/// Everything that can go wrong in a loopback verb. Messages read as the reference plugin's
/// where it has one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoopbackError {
    /// `prevResult` is not a result of the config's version (code 6).
    #[error("failed to parse prevResult")]
    PrevResult(#[source] Error),
    /// `CNI_NETNS` is missing where the verb needs it (code 4; the skel normally refuses the
    /// call before).
    #[error("required env variables [CNI_NETNS] missing")]
    NoNetns,
    /// The container's namespace could not be opened.
    #[error("failed to open netns {path:?}")]
    Netns {
        /// `CNI_NETNS`.
        path: PathBuf,
        /// Why.
        #[source]
        source: NetnsError,
    },
    /// A netlink request inside the namespace failed.
    #[error("{context}")]
    Netlink {
        /// What was being done.
        context: &'static str,
        /// The kernel's answer.
        #[source]
        source: netlink::Error,
    },
    /// `lo` carries an address outside 127.0.0.0/8 and ::1 (ADD refuses it, as the reference).
    #[error("loopback interface found with non-loopback address \"{0}\"")]
    NonLoopbackAddress(IpAddr),
    /// CHECK: `lo` is administratively down.
    #[error("loopback interface is down")]
    Down,
    /// CHECK: an address ADD reported (or the kernel's default) is not on `lo`.
    #[error("loopback interface lacks address {0}")]
    MissingAddress(IpNet),
    /// The result cannot be printed in the config's version (its own code).
    #[error("{0}")]
    Result(Error),
}

impl LoopbackError {
    pub(crate) fn netlink(context: &'static str, source: netlink::Error) -> Self {
        LoopbackError::Netlink { context, source }
    }

    /// The spec error code: 6 for an undecodable `prevResult`, 4 without `CNI_NETNS`, 999 for
    /// everything else (as the reference).
    pub fn code(&self) -> ErrorCode {
        match self {
            LoopbackError::PrevResult(_) => ErrorCode::DecodingFailure,
            LoopbackError::NoNetns => ErrorCode::InvalidEnvironmentVariables,
            LoopbackError::Result(e) => e.code,
            _ => ErrorCode::Internal,
        }
    }
}

impl From<LoopbackError> for Error {
    /// The spec's error, with the cause chain joined by `": "` as Go's `%v` wrapping reads.
    fn from(e: LoopbackError) -> Error {
        match e {
            LoopbackError::Result(e) => e,
            other => Error::from_chain(other.code(), &other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages() {
        let e = Error::from(LoopbackError::NonLoopbackAddress(
            "10.1.2.3".parse().unwrap(),
        ));
        assert_eq!(e.code(), 999);
        assert_eq!(
            e.msg,
            "loopback interface found with non-loopback address \"10.1.2.3\""
        );
        let e = Error::from(LoopbackError::PrevResult(Error::msg(
            ErrorCode::DecodingFailure,
            "failed to decode result for version 1.0.0: missing field `address`",
        )));
        assert_eq!(e.code(), 6);
        assert_eq!(
            e.msg,
            "failed to parse prevResult: failed to decode result for version 1.0.0: missing field `address`"
        );
        let e = Error::from(LoopbackError::Netns {
            path: "/run/netns/x".into(),
            source: NetnsError::NotFound {
                path: "/run/netns/x".into(),
            },
        });
        assert_eq!(
            e.msg,
            "failed to open netns \"/run/netns/x\": network namespace \"/run/netns/x\" does not exist"
        );
        assert_eq!(Error::from(LoopbackError::Down).code(), 999);
        assert_eq!(Error::from(LoopbackError::NoNetns).code(), 4);
    }
}
