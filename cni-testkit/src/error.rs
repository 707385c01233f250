//! The test kit's error type.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Errors of the test kit's helpers (namespaces, processes, topologies, snapshots, traffic).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A namespace operation failed.
    #[error("network namespace")]
    Netns(#[from] cni_linux::netns::NetnsError),
    /// A netlink request failed.
    #[error("netlink")]
    Netlink(#[from] cni_linux::netlink::Error),
    /// A sysctl could not be read or written.
    #[error("sysctl")]
    Sysctl(#[from] cni_linux::sysctl::SysctlError),
    /// A file system or socket operation failed.
    #[error("{op}")]
    Io {
        /// What was being done.
        op: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A program could not be started.
    #[error("run {program}")]
    Spawn {
        /// The program.
        program: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A program ran but exited with a failure.
    #[error("{program} exited with {status}: {stderr}")]
    Command {
        /// The program and its arguments.
        program: String,
        /// Its exit status.
        status: String,
        /// What it wrote on stderr (and stdout, if stderr was empty).
        stderr: String,
    },
    /// Something did not happen in time.
    #[error("timed out after {after:?}: {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long we waited.
        after: Duration,
    },
    /// A plugin binary was not found.
    #[error("plugin binary {name:?} not found (looked in {})", .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    BinaryNotFound {
        /// The plugin's name.
        name: String,
        /// Where we looked.
        searched: Vec<PathBuf>,
    },
    /// A conflist the runtime would refuse.
    #[error("invalid conflist")]
    Conflist(#[source] cni_types::config::ConfListError),
    /// A value that could not be encoded as JSON.
    #[error("encode {what} as JSON")]
    Json {
        /// What was being encoded.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// The nf_tables ruleset could not be read over netlink.
    #[error("invalid nf_tables listing")]
    Nftables(#[source] cni_linux::firewall::nftables::NftError),
    /// A cluster whose addresses do not work out (a prefix length out of range).
    #[error("invalid cluster")]
    Cluster(#[source] ipnet::PrefixLenError),
    /// An argument was not acceptable.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The argument.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(op: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let op = op.into();
        move |source| Error::Io { op, source }
    }
}

/// Short alias for results of the kit's helpers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_refused_conflist_keeps_its_typed_cause_once() {
        let list = serde_json::json!({"cniVersion": "1.0.0", "name": "net", "plugins": [{}]});
        let err = crate::ChainRunner::from_json(&list, ["/nonexistent"]).unwrap_err();
        let Error::Conflist(cause) = &err else {
            panic!("want Conflist, got {err:?}");
        };
        assert_eq!(*cause, cni_types::config::ConfListError::MissingType(0));
        assert!(err.source().is_some());
        assert_eq!(
            cni_types::error::chain_message(&err),
            "invalid conflist: error parsing configuration list: plugin 0: missing 'type'"
        );
    }

    #[test]
    fn a_prefix_out_of_range_is_a_typed_cluster_error() {
        let err = crate::topology::ClusterBuilder::new()
            .nodes(2)
            .pod_cidr("10.244.0.0/16".parse().unwrap(), 33)
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Cluster(_)), "{err:?}");
        assert_eq!(
            cni_types::error::chain_message(&err),
            "invalid cluster: invalid IP prefix length"
        );
    }
}
