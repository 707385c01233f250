//! loopback's view of its configuration: the version and the `prevResult`; every other key is
//! ignored, as by the reference (which reads a plain `types.NetConf`).

use cni_types::{CniResult, NetConf, Version};

use crate::error::LoopbackError;

/// A validated loopback configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopbackConf {
    /// `cniVersion` (0.1.0 when absent).
    pub version: Version,
    /// The previous plugin's result, parsed in the config's version when it names none. ADD
    /// passes it on unchanged; CHECK verifies the addresses it lists on `lo`.
    pub prev_result: Option<CniResult>,
}

impl TryFrom<&NetConf> for LoopbackConf {
    type Error = LoopbackError;

    fn try_from(conf: &NetConf) -> Result<Self, LoopbackError> {
        let version = conf.version();
        let prev_result = match &conf.prev_result {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(
                CniResult::from_value(v.clone(), Some(version))
                    .map_err(LoopbackError::PrevResult)?,
            ),
        };
        Ok(LoopbackConf {
            version,
            prev_result,
        })
    }
}

impl LoopbackConf {
    /// Parse a config from its bytes.
    pub fn parse(stdin: &[u8]) -> Result<Self, LoopbackError> {
        let conf = NetConf::from_slice(stdin).map_err(|e| {
            LoopbackError::Result(cni_types::Error::msg(
                cni_types::ErrorCode::DecodingFailure,
                format!("failed to parse network config: {e}"),
            ))
        })?;
        LoopbackConf::try_from(&conf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_and_prev_result() {
        let c = LoopbackConf::parse(br#"{"name":"cni-loopback","type":"loopback"}"#).unwrap();
        assert_eq!(c.version, Version::V0_1_0);
        assert!(c.prev_result.is_none());

        // A prevResult without cniVersion is read in the config's version (0.3.1 here, so
        // `ips[].version` is accepted).
        let c = LoopbackConf::parse(
            br#"{"cniVersion":"0.3.1","name":"n","type":"loopback","unknown":{"kept":1},
                "prevResult":{"ips":[{"version":"4","address":"10.1.0.2/24"}]}}"#,
        )
        .unwrap();
        assert_eq!(c.version, Version::V0_3_1);
        let prev = c.prev_result.unwrap();
        assert_eq!(prev.cni_version, Version::V0_3_1);
        assert_eq!(prev.ips[0].address.to_string(), "10.1.0.2/24");
    }

    #[test]
    fn a_broken_prev_result_is_a_decoding_failure() {
        let e = LoopbackConf::parse(
            br#"{"cniVersion":"1.0.0","name":"n","type":"loopback","prevResult":{"ips":[{}]}}"#,
        )
        .unwrap_err();
        assert!(matches!(e, LoopbackError::PrevResult(_)), "{e:?}");
        assert_eq!(e.code().code(), 6);
        let e = LoopbackConf::parse(b"[]").unwrap_err();
        assert_eq!(e.code().code(), 6);
    }
}
