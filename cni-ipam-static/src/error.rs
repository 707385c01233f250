//! [`StaticError`] and its mapping to the spec's error codes.

use std::net::IpAddr;

use cni_types::{Error, ErrorCode};

use crate::config::ConfigError;

/// Everything that can go wrong in a static verb. Messages are the reference's where it has
/// one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StaticError {
    /// The configuration or `CNI_ARGS` was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// CHECK without a `prevResult`.
    #[error("Required prevResult missing")]
    NoPrevResult,
    /// `prevResult` is not a result of the config's version.
    #[error("failed to parse prevResult")]
    PrevResult(#[source] Error),
    /// CHECK: the address is in `prevResult` with another gateway.
    #[error("static: Failed to match addr {ip} on interface {ifname}")]
    Mismatch {
        /// The configured address.
        ip: IpAddr,
        /// `CNI_IFNAME`.
        ifname: String,
    },
    /// CHECK: a configured address is not in `prevResult` at all (the reference does not
    /// check this).
    #[error("static: addr {ip} not found in prevResult for interface {ifname}")]
    Missing {
        /// The configured address.
        ip: IpAddr,
        /// `CNI_IFNAME`.
        ifname: String,
    },
}

impl StaticError {
    /// The spec error code: 6 for undecodable JSON, 4 for `CNI_ARGS`, 7 for other
    /// configuration errors (the reference reports 999 for all of them), 999 for CHECK
    /// mismatches.
    pub fn code(&self) -> ErrorCode {
        match self {
            StaticError::Config(ConfigError::Decode { .. }) | StaticError::PrevResult(_) => {
                ErrorCode::DecodingFailure
            }
            StaticError::Config(
                ConfigError::Args(_) | ConfigError::ArgsIp(_) | ConfigError::ArgsGateway(_),
            ) => ErrorCode::InvalidEnvironmentVariables,
            StaticError::Config(_) | StaticError::NoPrevResult => ErrorCode::InvalidNetworkConfig,
            StaticError::Mismatch { .. } | StaticError::Missing { .. } => ErrorCode::Internal,
        }
    }
}

impl From<StaticError> for Error {
    /// The spec's error, with the cause chain joined by `": "` as Go's `%v` wrapping reads.
    fn from(e: StaticError) -> Error {
        Error::from_chain(e.code(), &e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let e = Error::from(StaticError::Config(ConfigError::MissingIpam));
        assert_eq!(
            (e.code(), e.msg.as_str()),
            (7, "IPAM config missing 'ipam' key")
        );
        let e = Error::from(StaticError::Config(ConfigError::ArgsIp("x".into())));
        assert_eq!(e.code(), 4);
        let e = Error::from(StaticError::Mismatch {
            ip: "10.0.0.2".parse().unwrap(),
            ifname: "eth0".into(),
        });
        assert_eq!(
            (e.code(), e.msg.as_str()),
            (
                999,
                "static: Failed to match addr 10.0.0.2 on interface eth0"
            )
        );
        let e = Error::from(StaticError::PrevResult(Error::msg(
            ErrorCode::DecodingFailure,
            "boom",
        )));
        assert_eq!(
            (e.code(), e.msg.as_str()),
            (6, "failed to parse prevResult: boom")
        );
    }
}
