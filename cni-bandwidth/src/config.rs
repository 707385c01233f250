//! The plugin's configuration: the generic [`NetConf`] validated once into a
//! [`BandwidthConf`] (`TryFrom`).
//!
//! Keys are looked up as Go's `encoding/json` does (an exact match first, then one that
//! matches ignoring ASCII case), so containerd's `IngressRate`, `EgressBurst`... work.
//! Precedence: the `bandwidth` capability (`runtimeConfig.bandwidth`, the pod's own values
//! from the runtime, e.g. containerd's `kubernetes.io/*-bandwidth` annotations) when present,
//! otherwise the config's own keys (a network-wide default). This differs from the reference
//! on purpose: its `getBandwidth` ignores the capability as soon as any of the four keys is in
//! the config (even as `null`), so a network default silently overrides every pod's
//! annotation. With only one of the two present (the usual case) both agree.

use cni_types::capabilities::{Bandwidth, get_ci};
use cni_types::{CniResult, NetConf, Version};
use serde_json::Value;

use crate::error::ConfigError;
use crate::shaping::TokenBucket;

/// The four keys of a bandwidth entry.
pub const KEYS: [&str; 4] = ["ingressRate", "ingressBurst", "egressRate", "egressBurst"];

/// Where the shaping came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The config's own keys.
    Config,
    /// `runtimeConfig.bandwidth` (the `bandwidth` capability).
    RuntimeConfig,
    /// Neither.
    None,
}

/// What to shape, validated: each direction has both a rate and a burst, or neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shaping {
    /// Traffic to the pod: a token bucket on the host-side interface.
    pub ingress: Option<TokenBucket>,
    /// Traffic from the pod: a token bucket on the ifb device.
    pub egress: Option<TokenBucket>,
}

impl Shaping {
    /// Nothing to shape (the reference's `isZero`).
    pub fn is_none(&self) -> bool {
        self.ingress.is_none() && self.egress.is_none()
    }

    /// Validates a raw entry (the reference's `validateRateAndBurst`, then a rate the kernel
    /// can express).
    pub fn try_from_entry(bw: &Bandwidth) -> Result<Shaping, ConfigError> {
        Ok(Shaping {
            ingress: direction(bw.ingress_rate, bw.ingress_burst)?,
            egress: direction(bw.egress_rate, bw.egress_burst)?,
        })
    }
}

fn direction(rate: u64, burst: u64) -> Result<Option<TokenBucket>, ConfigError> {
    match (rate, burst) {
        (0, 0) => Ok(None),
        (_, 0) => Err(ConfigError::RateWithoutBurst),
        (0, _) => Err(ConfigError::BurstWithoutRate),
        (_, b) if b / 8 >= u64::from(u32::MAX) => Err(ConfigError::BurstTooLarge),
        (r, _) if r < 8 => Err(ConfigError::RateTooSmall(r)),
        (rate, burst) => Ok(Some(TokenBucket { rate, burst })),
    }
}

/// One invocation's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct BandwidthConf {
    /// Network name (with the container ID, it names the ifb device).
    pub name: String,
    /// `cniVersion`.
    pub cni_version: Version,
    /// What to shape.
    pub shaping: Shaping,
    /// Where [`BandwidthConf::shaping`] came from.
    pub source: Source,
    /// The previous result, if any.
    pub prev_result: Option<CniResult>,
}

/// The entry at the top level of the config, when any of its keys is there (Go allocates
/// the embedded entry as soon as it meets one of its keys, even with a `null` value).
fn top_level(conf: &NetConf) -> Result<Option<Bandwidth>, ConfigError> {
    if !KEYS.iter().any(|k| get_ci(&conf.extra, k).is_some()) {
        return Ok(None);
    }
    let m: serde_json::Map<String, Value> = KEYS
        .iter()
        .filter_map(|k| get_ci(&conf.extra, k).map(|v| (k.to_string(), v.clone())))
        .collect();
    serde_json::from_value(Value::Object(m))
        .map(Some)
        .map_err(ConfigError::Json)
}

impl TryFrom<&NetConf> for BandwidthConf {
    type Error = ConfigError;

    /// The reference's `parseConfig`: the entry, validated; then `prevResult`.
    fn try_from(conf: &NetConf) -> Result<Self, ConfigError> {
        let capability = conf
            .runtime_config()
            .bandwidth()
            .map_err(ConfigError::Json)?;
        let (entry, source) = match capability {
            Some(bw) => (Some(bw), Source::RuntimeConfig),
            None => match top_level(conf)? {
                Some(bw) => (Some(bw), Source::Config),
                None => (None, Source::None),
            },
        };
        let shaping = match &entry {
            Some(bw) => Shaping::try_from_entry(bw)?,
            None => Shaping::default(),
        };
        let prev_result = conf.prev_result().map_err(ConfigError::PrevResult)?;
        Ok(BandwidthConf {
            name: conf.name.clone(),
            cni_version: conf.version(),
            shaping,
            source,
            prev_result,
        })
    }
}

impl BandwidthConf {
    /// DEL's reading: never fails. What cannot be parsed is left out (no shaping, no
    /// `prevResult`), since DEL only needs the network name to find the ifb device, and a
    /// DEL that fails on input ADD refused would stop the runtime's teardown of the chain.
    pub fn lenient(conf: &NetConf) -> BandwidthConf {
        let mut without_prev = conf.clone();
        without_prev.prev_result = None;
        let base = BandwidthConf::try_from(&without_prev).ok();
        BandwidthConf {
            name: conf.name.clone(),
            cni_version: conf.version(),
            shaping: base.as_ref().map(|b| b.shaping).unwrap_or_default(),
            source: base.as_ref().map(|b| b.source).unwrap_or(Source::None),
            prev_result: conf.prev_result().ok().flatten(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<BandwidthConf, ConfigError> {
        let nc: NetConf = serde_json::from_value(v).expect("netconf");
        BandwidthConf::try_from(&nc)
    }

    fn base() -> Value {
        json!({"cniVersion": "1.0.0", "name": "n", "type": "bandwidth"})
    }

    #[test]
    fn keys_from_config_and_capability_any_case() {
        let mut c = base();
        c["ingressRate"] = json!(8000);
        c["IngressBurst"] = json!(800);
        let b = parse(c).expect("valid");
        assert_eq!(b.source, Source::Config);
        assert_eq!(
            b.shaping.ingress,
            Some(TokenBucket {
                rate: 8000,
                burst: 800
            })
        );
        assert_eq!(b.shaping.egress, None);

        let mut c = base();
        c["runtimeConfig"] = json!({"bandwidth": {"IngressRate": 0, "IngressBurst": 0, "EgressRate": 16000, "EgressBurst": 4294967295u64}});
        let b = parse(c).expect("valid");
        assert_eq!(b.source, Source::RuntimeConfig);
        assert_eq!(
            b.shaping.egress,
            Some(TokenBucket {
                rate: 16000,
                burst: u64::from(u32::MAX)
            })
        );
    }

    #[test]
    fn the_capability_wins_over_the_configs_keys() {
        // Unlike the reference, a network-wide key (even `null`) does not hide the pod's own.
        let mut c = base();
        c["egressRate"] = json!(null);
        c["runtimeConfig"] = json!({"bandwidth": {"egressRate": 16000, "egressBurst": 16000}});
        let b = parse(c).expect("valid");
        assert_eq!(b.source, Source::RuntimeConfig);
        assert_eq!(
            b.shaping.egress,
            Some(TokenBucket {
                rate: 16000,
                burst: 16000
            })
        );
        // Without the capability, the config's keys are the shaping.
        let mut c = base();
        c["egressRate"] = json!(8000);
        c["egressBurst"] = json!(800);
        let b = parse(c).expect("valid");
        assert_eq!(b.source, Source::Config);
    }

    #[test]
    fn the_references_errors() {
        for (entry, msg) in [
            (
                json!({"ingressRate": 1000}),
                "if rate is set, burst must also be set",
            ),
            (
                json!({"egressBurst": 1000}),
                "if burst is set, rate must also be set",
            ),
            (
                json!({"egressRate": 1000, "egressBurst": 34359738360u64}),
                "burst cannot be more than 4GB",
            ),
            (
                json!({"egressRate": 7, "egressBurst": 100}),
                "rate must be at least 8 bits per second, got 7",
            ),
        ] {
            let mut c = base();
            for (k, v) in entry.as_object().expect("object") {
                c[k] = v.clone();
            }
            let e = parse(c.clone()).expect_err("invalid");
            assert_eq!(e.to_string(), msg);
            // The same through the capability.
            let mut r = base();
            r["runtimeConfig"] = json!({ "bandwidth": entry });
            assert_eq!(parse(r).expect_err("invalid").to_string(), msg);
        }
        let mut c = base();
        c["ingressRate"] = json!(-1);
        assert!(matches!(parse(c), Err(ConfigError::Json(_))));
    }

    #[test]
    fn del_reads_what_add_refuses() {
        let mut c = base();
        c["ingressRate"] = json!("fast");
        c["prevResult"] = json!({"ips": "not a list"});
        let nc: NetConf = serde_json::from_value(c).expect("netconf");
        let b = BandwidthConf::lenient(&nc);
        assert_eq!(b.name, "n");
        assert!(b.shaping.is_none());
        assert!(b.prev_result.is_none());
    }
}
