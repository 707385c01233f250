//! [`BridgeError`] and its mapping to the spec's error codes.

use std::path::PathBuf;

use cni_linux::firewall::FirewallError;
use cni_linux::firewall::iptables::RuleError;
use cni_linux::netlink;
use cni_linux::netns::NetnsError;
use cni_linux::sysctl::SysctlError;
use cni_types::args::ArgsError;
use cni_types::go::quote as go_quote;
use cni_types::{Error, ErrorCode};
use ipnet::IpNet;

/// Everything that can go wrong in a bridge verb. Messages read as the reference plugin's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// The config is invalid (code 7).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `CNI_ARGS` could not be parsed (code 4).
    #[error(transparent)]
    Args(ArgsError),
    /// A spec-level error, e.g. an unparsable `prevResult` (its own code).
    #[error("{0}")]
    Cni(Error),
    /// The delegated IPAM plugin failed; its error is passed on unchanged (code and message).
    #[error("{0}")]
    Ipam(Error),
    /// ADD without `CNI_NETNS`.
    #[error("failed to open netns \"\": no CNI_NETNS")]
    NoNetns,
    /// The container's namespace could not be opened.
    #[error("failed to open netns {}", go_quote(&.path.to_string_lossy()))]
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
    /// A masquerade rule could not be built.
    #[error("{context}")]
    Rule {
        /// What was being done.
        context: &'static str,
        /// What is wrong with the rule.
        #[source]
        source: RuleError,
    },
    /// The bridge could not be found, created or set up.
    #[error("failed to create bridge {}", go_quote(.name))]
    Bridge {
        /// `bridge`.
        name: String,
        /// The step that failed.
        #[source]
        source: Box<BridgeError>,
    },
    /// The bridge's name is taken by another kind of link.
    #[error("{} already exists but is not a bridge", go_quote(.0))]
    NotABridge(String),
    /// A link that another ADD created concurrently was gone when read.
    #[error("could not lookup {}", go_quote(.0))]
    LinkVanished(String),
    /// The container interface's name is taken in the container.
    #[error(
        "container veth name ({}) peer provided ({}) already exists",
        go_quote(.ifname),
        go_quote(.peer)
    )]
    VethNameTaken {
        /// `CNI_IFNAME`.
        ifname: String,
        /// The host end's name.
        peer: String,
    },
    /// No free random name for the host end of the veth.
    #[error("failed to find a unique veth name")]
    NoVethName,
    /// A gateway address (or the VLAN interface holding it) could not be set up.
    #[error("{context}")]
    Gateway {
        /// What was being done, in the reference's words.
        context: String,
        /// The step that failed.
        #[source]
        source: Box<BridgeError>,
    },
    /// The link holds another address of the gateway's family and `forceAddress` is off.
    #[error("{} already has an IP address different from {gateway}", go_quote(.link))]
    AddressConflict {
        /// The bridge or VLAN interface.
        link: String,
        /// The gateway address that was to be added.
        gateway: IpNet,
    },
    /// IPAM succeeded without any address for an L3 network.
    #[error("IPAM plugin returned missing IP config")]
    NoIpConfig,
    /// The host port did not come up in time.
    #[error("bridge port in error state: down")]
    PortDown,
    /// CHECK found the kernel's state differing from `prevResult` (the reference's message).
    #[error("{0}")]
    Check(String),
    /// A failure injected by [`crate::Hooks`] (tests of the ADD rollback).
    #[error("injected failure: {0}")]
    Injected(String),
    /// A step running on its own thread (named here) panicked.
    #[error("{0} panicked")]
    Panicked(&'static str),
    /// Several steps of DEL or GC failed; every step was tried.
    #[error("{}", cni_types::error::join_chain_messages(.0, "; "))]
    Multiple(Vec<BridgeError>),
}

/// Why a config is invalid (code 7). Messages read as the reference plugin's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not JSON, or not a network config.
    #[error("failed to load netconf")]
    Parse(#[source] serde_json::Error),
    /// A key of the wrong JSON type.
    #[error(
        "failed to load netconf: json: cannot unmarshal {found} into Go struct field NetConf.{key} of type {want}"
    )]
    Type {
        /// The key.
        key: String,
        /// The JSON type found (`string`, `number`, ...).
        found: &'static str,
        /// The Go type expected.
        want: &'static str,
    },
    /// A number that is not an integer of Go's `int`.
    #[error(
        "failed to load netconf: json: cannot unmarshal number {number} into Go struct field NetConf.{key} of type int"
    )]
    NotAnInt {
        /// The key.
        key: String,
        /// The number as written.
        number: String,
    },
    /// `vlan` out of range.
    #[error("invalid VLAN ID {0} (must be between 0 and 4094)")]
    Vlan(i64),
    /// A `vlanTrunk` entry is invalid.
    #[error("{0}")]
    VlanTrunk(VlanTrunkError),
    /// `vlan` and `vlanTrunk` together.
    #[error("cannot set vlan and vlanTrunk at the same time")]
    VlanAndTrunk,
    /// `mtu` out of range.
    #[error("invalid MTU {0} (must be between 0 and 4294967295)")]
    Mtu(i64),
    /// The container MAC (`runtimeConfig.mac`, `args.cni.mac`, `CNI_ARGS` `MAC`).
    #[error("failed to parse MAC address {}: {problem}", go_quote(.mac))]
    Mac {
        /// The MAC as written.
        mac: String,
        /// What is wrong with it.
        problem: MacProblem,
    },
    /// `ipMasqBackend` is neither `iptables` nor `nftables`.
    #[error("unknown ipmasq backend {}", go_quote(.0))]
    MasqBackend(String),
    /// `ipam` with `disableContainerInterface`.
    #[error("cannot use IPAM when DisableContainerInterface flag is set")]
    IpamWithoutInterface,
    /// `hairpinMode` with `promiscMode`.
    #[error("cannot set hairpin mode and promiscuous mode at the same time")]
    HairpinAndPromisc,
}

/// What is wrong with a `vlanTrunk` entry (the reference's `collectVlanTrunk` messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VlanTrunkError {
    /// `minID` out of 1..=4094.
    #[error("incorrect trunk minID parameter")]
    MinId,
    /// `maxID` out of 1..=4094.
    #[error("incorrect trunk maxID parameter")]
    MaxId,
    /// `minID` > `maxID`.
    #[error("minID is greater than maxID in trunk parameter")]
    MinAboveMax,
    /// `maxID` without `minID`.
    #[error("minID and maxID should be configured simultaneously, minID is missing")]
    MinMissing,
    /// `minID` without `maxID`.
    #[error("minID and maxID should be configured simultaneously, maxID is missing")]
    MaxMissing,
    /// `id` out of 1..=4094.
    #[error("incorrect trunk id parameter")]
    Id,
}

/// What is wrong with a container MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MacProblem {
    /// Not six hex octets.
    #[error("invalid MAC address")]
    Invalid,
    /// Multicast or all zeroes: the kernel refuses it for an interface.
    #[error("not a unicast address")]
    NotUnicast,
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
    pub(crate) fn collect(errs: Vec<BridgeError>) -> Result<(), BridgeError> {
        cni_types::error::collect_errors(errs, BridgeError::Multiple)
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
        let e = BridgeError::from(ConfigError::Vlan(5000));
        let ce = Error::from(e);
        assert_eq!(ce.code(), 7);
        assert_eq!(ce.msg, "invalid VLAN ID 5000 (must be between 0 and 4094)");
        // A cause is a source, printed once.
        let json = serde_json::from_slice::<serde_json::Value>(b"{").unwrap_err();
        let text = json.to_string();
        let e = BridgeError::from(ConfigError::Parse(json));
        assert_eq!(e.to_string(), "failed to load netconf");
        let ce = Error::from(e);
        assert_eq!(ce.code(), 7);
        assert_eq!(ce.msg, format!("failed to load netconf: {text}"));
        let wrapped = BridgeError::Bridge {
            name: "cni0".into(),
            source: Box::new(BridgeError::NotABridge("cni0".into())),
        };
        assert_eq!(
            Error::from(wrapped).msg,
            "failed to create bridge \"cni0\": \"cni0\" already exists but is not a bridge"
        );
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
            BridgeError::Check("a".into()),
            BridgeError::Check("b".into()),
        ]);
        assert_eq!(multi.to_string(), "a; b");
    }
}
