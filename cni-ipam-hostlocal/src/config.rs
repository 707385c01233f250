//! host-local's view of the network configuration it receives on stdin.
//!
//! An IPAM plugin gets the *whole* network configuration of the plugin that delegates to it and
//! reads `name`, `cniVersion`, `ipam`, `runtimeConfig.ipRanges`, `runtimeConfig.ips` and
//! `args.cni.ips`, plus `IP=` from `CNI_ARGS`. Keys match case-insensitively (an exact match
//! wins), as Go's `encoding/json` does for the reference.
//!
//! Range sets, in order: `runtimeConfig.ipRanges`, then the legacy top-level
//! `subnet`/`rangeStart`/`rangeEnd`/`gateway` of `ipam`, then `ipam.ranges`; if none,
//! `ipam.rangeFromFile` (a file holding one range object, read at each invocation; from the
//! reference's pull request #1179, which is not merged). Requested addresses: `CNI_ARGS` `IP=` (ignored when `args.cni.ips`
//! is given, as the CNI conventions ask), then `args.cni.ips`, then `runtimeConfig.ips`;
//! duplicates are dropped and prefixes ignored.

use std::net::IpAddr;
use std::path::PathBuf;

use cni_types::args::ArgsError;
use cni_types::capabilities::{IpRange, RequestedIp, get_ci};
use cni_types::{CniArgs, Route, RuntimeConfig, Version};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::range::{RangeError, RangeSet, canonical};

/// The reference's default store location.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";

/// Why a configuration was refused. Messages are the reference's where it has one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// stdin is not a JSON object, or a known key has the wrong type.
    #[error("failed to decode {what}: {source}")]
    Decode {
        /// Which part.
        what: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// No `ipam` object.
    #[error("IPAM config missing 'ipam' key")]
    MissingIpam,
    /// `CNI_ARGS` could not be parsed.
    #[error(transparent)]
    Args(#[from] ArgsError),
    /// `rangeFromFile` could not be read.
    #[error("failed to read rangeFromFile {path:?}: {source}")]
    RangeFile {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `rangeFromFile` does not hold a range.
    #[error("failed to parse rangeFromFile {path:?} as a Range")]
    RangeFileFormat {
        /// The path.
        path: String,
    },
    /// No range at all.
    #[error("no IP ranges specified")]
    NoRanges,
    /// A range set is invalid.
    #[error("invalid range set {index}: {source}")]
    InvalidRangeSet {
        /// Index of the set (after prepending).
        index: usize,
        /// Why.
        #[source]
        source: RangeError,
    },
    /// More than one set per family for a config older than 0.3.0.
    #[error("CNI version {0} does not support more than 1 address per family")]
    TooManyPerFamily(String),
    /// Two range sets overlap.
    #[error("range set {0} overlaps with {1}")]
    SetsOverlap(usize, usize),
}

/// A validated host-local configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The network name (the store directory under `data_dir`).
    pub name: String,
    /// `cniVersion` exactly as given (empty when absent).
    pub cni_version: String,
    /// The range sets; one address is allocated from each.
    pub ranges: Vec<RangeSet>,
    /// Routes returned verbatim in the result.
    pub routes: Vec<Route>,
    /// The store root (`dataDir`, default [`DEFAULT_DATA_DIR`]).
    pub data_dir: PathBuf,
    /// `resolvConf`: a resolv.conf to turn into the result's `dns`.
    pub resolv_conf: Option<PathBuf>,
    /// Requested addresses, in the order they are matched to range sets.
    pub requested: Vec<IpAddr>,
}

/// Where a network's reservations live: all that DEL and GC need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The network name.
    pub name: String,
    /// The store root (`dataDir`).
    pub data_dir: PathBuf,
}

impl Location {
    /// Read only `name` and `ipam.dataDir` (the `ipam` key must be present). Unlike
    /// [`Config::parse`] this does not validate ranges or requested addresses, so a network
    /// whose configuration became invalid can still release its addresses.
    pub fn parse(stdin: &[u8]) -> Result<Location, ConfigError> {
        let top: Value = serde_json::from_slice(stdin).map_err(|source| ConfigError::Decode {
            what: "network config",
            source,
        })?;
        let top = object(&top, "network config")?;
        let ipam = match key(top, "ipam") {
            None => return Err(ConfigError::MissingIpam),
            Some(v) => object(v, "ipam")?,
        };
        let data_dir = string(ipam, "dataDir", "ipam.dataDir")?;
        Ok(Location {
            name: string(top, "name", "name")?,
            data_dir: PathBuf::from(if data_dir.is_empty() {
                DEFAULT_DATA_DIR
            } else {
                &data_dir
            }),
        })
    }
}

fn decode<T: DeserializeOwned>(v: &Value, what: &'static str) -> Result<T, ConfigError> {
    serde_json::from_value(v.clone()).map_err(|source| ConfigError::Decode { what, source })
}

/// `m[key]` (case-insensitive), `None` for absent or `null`.
fn key<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    get_ci(m, k).filter(|v| !v.is_null())
}

fn object<'a>(v: &'a Value, what: &'static str) -> Result<&'a Map<String, Value>, ConfigError> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(ConfigError::Decode {
            what,
            source: serde::de::Error::custom(format!("expected an object, got {other}")),
        }),
    }
}

fn string(m: &Map<String, Value>, k: &str, what: &'static str) -> Result<String, ConfigError> {
    Ok(match key(m, k) {
        None => String::new(),
        Some(v) => decode::<String>(v, what)?,
    })
}

impl Config {
    /// Where this network's reservations live.
    pub fn location(&self) -> Location {
        Location {
            name: self.name.clone(),
            data_dir: self.data_dir.clone(),
        }
    }

    /// Parse and validate stdin plus the raw `CNI_ARGS`, as the reference's
    /// `LoadIPAMConfig`.
    pub fn parse(stdin: &[u8], cni_args: &str) -> Result<Config, ConfigError> {
        let top: Value = serde_json::from_slice(stdin).map_err(|source| ConfigError::Decode {
            what: "network config",
            source,
        })?;
        let top = object(&top, "network config")?;
        let ipam = match key(top, "ipam") {
            None => return Err(ConfigError::MissingIpam),
            Some(v) => object(v, "ipam")?,
        };
        let name = string(top, "name", "name")?;
        let cni_version = string(top, "cniVersion", "cniVersion")?;

        // Requested addresses.
        let args = CniArgs::parse_known(cni_args, &["IP"])?;
        let env_ip = match args.get("IP").filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => {
                Some(
                    s.parse::<RequestedIp>()
                        .map_err(|reason| ArgsError::InvalidValue {
                            pair: format!("IP={s}"),
                            reason,
                        })?,
                )
            }
        };
        let args_ips: Vec<RequestedIp> = match key(top, "args")
            .and_then(Value::as_object)
            .and_then(|a| key(a, "cni"))
            .and_then(Value::as_object)
            .and_then(|c| key(c, "ips"))
        {
            None => Vec::new(),
            Some(v) => decode(v, "args.cni.ips")?,
        };
        let runtime = match key(top, "runtimeConfig") {
            None => RuntimeConfig::default(),
            Some(v) => RuntimeConfig(object(v, "runtimeConfig")?.clone()),
        };
        let rc_ips = runtime.ips().map_err(|source| ConfigError::Decode {
            what: "runtimeConfig.ips",
            source,
        })?;
        let mut requested: Vec<IpAddr> = Vec::new();
        let from_env = if args_ips.is_empty() { env_ip } else { None };
        for r in from_env.iter().chain(&args_ips).chain(&rc_ips) {
            let ip = canonical(r.addr);
            if !requested.contains(&ip) {
                requested.push(ip);
            }
        }

        // Range sets: runtime ipRanges, then the legacy single range, then `ranges`.
        let mut raw_sets: Vec<Vec<IpRange>> =
            runtime.ip_ranges().map_err(|source| ConfigError::Decode {
                what: "runtimeConfig.ipRanges",
                source,
            })?;
        if key(ipam, "subnet").is_some() {
            raw_sets.push(vec![decode::<IpRange>(
                &Value::Object(ipam.clone()),
                "ipam",
            )?]);
        }
        if let Some(v) = key(ipam, "ranges") {
            raw_sets.extend(decode::<Vec<Vec<IpRange>>>(v, "ipam.ranges")?);
        }
        let range_file = string(ipam, "rangeFromFile", "ipam.rangeFromFile")?;
        if raw_sets.is_empty() && !range_file.is_empty() {
            raw_sets.push(vec![read_range_file(&range_file)?]);
        }
        if raw_sets.is_empty() {
            return Err(ConfigError::NoRanges);
        }
        let mut ranges = Vec::with_capacity(raw_sets.len());
        for (index, raw) in raw_sets.iter().enumerate() {
            ranges.push(
                RangeSet::new(raw)
                    .map_err(|source| ConfigError::InvalidRangeSet { index, source })?,
            );
        }
        let v4 = ranges.iter().filter(|s| s.is_ipv4()).count();
        let v6 = ranges.len() - v4;
        if (v4 > 1 || v6 > 1)
            && !Version::parse(&cni_version)
                .is_ok_and(|v| v.supports_multiple_ips_per_family() && !cni_version.is_empty())
        {
            return Err(ConfigError::TooManyPerFamily(cni_version));
        }
        for (i, a) in ranges.iter().enumerate() {
            for (j, b) in ranges.iter().enumerate().skip(i + 1) {
                if a.overlaps(b) {
                    return Err(ConfigError::SetsOverlap(i, j));
                }
            }
        }

        let routes: Vec<Route> = match key(ipam, "routes") {
            None => Vec::new(),
            Some(v) => decode(v, "ipam.routes")?,
        };
        let data_dir = string(ipam, "dataDir", "ipam.dataDir")?;
        let resolv_conf = string(ipam, "resolvConf", "ipam.resolvConf")?;
        Ok(Config {
            name,
            cni_version,
            ranges,
            routes,
            data_dir: PathBuf::from(if data_dir.is_empty() {
                DEFAULT_DATA_DIR
            } else {
                &data_dir
            }),
            resolv_conf: (!resolv_conf.is_empty()).then(|| PathBuf::from(resolv_conf)),
            requested,
        })
    }
}

fn read_range_file(path: &str) -> Result<IpRange, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::RangeFile {
        path: path.to_string(),
        source,
    })?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| ConfigError::RangeFileFormat {
        path: path.to_string(),
    })?;
    match v.as_object() {
        Some(m) if key(m, "subnet").is_some() => {
            decode(&v, "rangeFromFile").map_err(|_| ConfigError::RangeFileFormat {
                path: path.to_string(),
            })
        }
        _ => Err(ConfigError::RangeFileFormat {
            path: path.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn parse(json: &str, args: &str) -> Result<Config, ConfigError> {
        Config::parse(json.as_bytes(), args)
    }

    #[test]
    fn old_style_config() {
        let c = parse(
            r#"{"cniVersion":"0.3.1","name":"mynet","type":"ipvlan","master":"foo0",
                "ipam":{"type":"host-local","subnet":"10.1.2.0/24","rangeStart":"10.1.2.9",
                        "rangeEnd":"10.1.2.20","gateway":"10.1.2.30"}}"#,
            "",
        )
        .unwrap();
        assert_eq!(c.name, "mynet");
        assert_eq!(c.ranges.len(), 1);
        let r = c.ranges[0].ranges()[0];
        assert_eq!(r.range_start, ip("10.1.2.9"));
        assert_eq!(r.range_end, ip("10.1.2.20"));
        assert_eq!(r.gateway, ip("10.1.2.30"));
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert!(c.requested.is_empty());
    }

    #[test]
    fn new_style_config_with_everything() {
        let c = parse(
            r#"{"cniVersion":"0.3.1","name":"mynet","ipam":{"type":"host-local",
                "dataDir":"/tmp/x","resolvConf":"/etc/resolv.conf",
                "ranges":[[{"subnet":"10.1.2.0/24","rangeStart":"10.1.2.9","rangeEnd":"10.1.2.20"},
                           {"subnet":"10.1.3.0/24"}],
                          [{"subnet":"2001:db8:1::/64"}]],
                "routes":[{"dst":"0.0.0.0/0"},{"dst":"192.168.0.0/16","gw":"1.1.1.1"}]}}"#,
            "",
        )
        .unwrap();
        assert_eq!(c.ranges.len(), 2);
        assert_eq!(c.ranges[0].ranges().len(), 2);
        assert!(!c.ranges[1].is_ipv4());
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.routes[1].gw, Some(ip("1.1.1.1")));
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.resolv_conf, Some(PathBuf::from("/etc/resolv.conf")));
    }

    #[test]
    fn mixed_config_with_runtime_ranges_prepended() {
        let c = parse(
            r#"{"cniVersion":"0.3.1","name":"mynet","runtimeConfig":{"ipRanges":[[{"subnet":"192.168.0.0/24"}]]},
                "ipam":{"type":"host-local","subnet":"10.1.2.0/24",
                        "ranges":[[{"subnet":"10.2.2.0/24"}],[{"subnet":"2001:db8:1::/64"}]]}}"#,
            "",
        )
        .unwrap();
        let firsts: Vec<String> = c
            .ranges
            .iter()
            .map(|s| s.ranges()[0].subnet.to_string())
            .collect();
        assert_eq!(
            firsts,
            [
                "192.168.0.0/24",
                "10.1.2.0/24",
                "10.2.2.0/24",
                "2001:db8:1::/64"
            ]
        );
    }

    #[test]
    fn keys_are_case_insensitive() {
        let c = parse(
            r#"{"cniVersion":"1.0.0","Name":"n","IPAM":{"Type":"host-local",
                "Ranges":[[{"Subnet":"10.9.0.0/24","Gateway":"10.9.0.254"}]],"DataDir":"/tmp/y"}}"#,
            "",
        )
        .unwrap();
        assert_eq!(c.name, "n");
        assert_eq!(c.ranges[0].ranges()[0].gateway, ip("10.9.0.254"));
        assert_eq!(c.data_dir, PathBuf::from("/tmp/y"));
    }

    const ONE_RANGE: &str = r#"{"cniVersion":"0.3.1","name":"mynet",
        "ipam":{"type":"host-local","subnet":"10.1.2.0/24"}}"#;

    #[test]
    fn cni_args_ip_with_and_without_prefix() {
        let c = parse(ONE_RANGE, "IP=10.1.2.10").unwrap();
        assert_eq!(c.requested, [ip("10.1.2.10")]);
        let c = parse(ONE_RANGE, "IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.1.2.11/24").unwrap();
        assert_eq!(c.requested, [ip("10.1.2.11")]);
        let c = parse(ONE_RANGE, "IP=").unwrap();
        assert!(c.requested.is_empty());
        assert_eq!(
            parse(ONE_RANGE, "K8S_POD_NAME=x").unwrap_err().to_string(),
            "ARGS: unknown args [\"K8S_POD_NAME=x\"]"
        );
        assert_eq!(
            parse(ONE_RANGE, "IP=nope").unwrap_err().to_string(),
            "ARGS: error parsing value of pair \"IP=nope\": invalid IP address: nope"
        );
    }

    #[test]
    fn config_args_with_and_without_prefix_and_precedence() {
        let conf = r#"{"cniVersion":"0.3.1","name":"mynet","ipam":{"type":"host-local",
            "ranges":[[{"subnet":"10.1.2.0/24"}],[{"subnet":"2001:db8:1::/64"}]]},
            "args":{"cni":{"ips":["10.1.2.88/24","2001:db8:1::999"]}}}"#;
        let c = parse(conf, "IP=10.1.2.77").unwrap();
        assert_eq!(c.requested, [ip("10.1.2.88"), ip("2001:db8:1::999")]);
    }

    #[test]
    fn runtime_config_ips_are_appended_and_deduplicated() {
        let conf = r#"{"cniVersion":"0.3.1","name":"mynet","ipam":{"type":"host-local",
            "subnet":"10.1.2.0/24"},"runtimeConfig":{"ips":["10.1.2.5/24","10.1.2.6"]}}"#;
        let c = parse(conf, "IP=10.1.2.5").unwrap();
        assert_eq!(c.requested, [ip("10.1.2.5"), ip("10.1.2.6")]);
    }

    #[test]
    fn overlap_between_and_within_sets() {
        let e = parse(
            r#"{"cniVersion":"0.3.1","name":"n","ipam":{"ranges":[
                [{"subnet":"10.1.2.0/24"}],[{"subnet":"10.1.2.0/24","rangeStart":"10.1.2.100"}]]}}"#,
            "",
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "range set 0 overlaps with 1");
        let e = parse(
            r#"{"cniVersion":"0.3.1","name":"n","ipam":{"ranges":[
                [{"subnet":"10.1.2.0/24"},{"subnet":"10.1.2.0/24","rangeStart":"10.1.2.100"}]]}}"#,
            "",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid range set 0: subnets 10.1.2.1-10.1.2.254 and 10.1.2.100-10.1.2.254 overlap"
        );
    }

    #[test]
    fn different_families_in_a_set() {
        let e = parse(
            r#"{"cniVersion":"0.3.1","name":"n","ipam":{"ranges":[
                [{"subnet":"10.1.2.0/24"},{"subnet":"2001:db8:1::/64"}]]}}"#,
            "",
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "invalid range set 0: mixed address families");
    }

    #[test]
    fn per_family_limit_before_0_3_0() {
        let two_v4 = |v: &str| {
            format!(
                r#"{{"cniVersion":"{v}","name":"n","ipam":{{"ranges":[
                [{{"subnet":"10.1.2.0/24"}}],[{{"subnet":"10.1.3.0/24"}}]]}}}}"#
            )
        };
        for v in ["0.1.0", "0.2.0"] {
            assert_eq!(
                parse(&two_v4(v), "").unwrap_err().to_string(),
                format!("CNI version {v} does not support more than 1 address per family")
            );
        }
        let e = parse(
            r#"{"name":"n","ipam":{"ranges":[[{"subnet":"10.1.2.0/24"}],[{"subnet":"10.1.3.0/24"}]]}}"#,
            "",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "CNI version  does not support more than 1 address per family"
        );
        for v in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
            assert!(parse(&two_v4(v), "").is_ok(), "{v}");
        }
        // One v4 and one v6 is fine for 0.2.0.
        assert!(
            parse(
                r#"{"cniVersion":"0.2.0","name":"n","ipam":{"ranges":[
                [{"subnet":"10.1.2.0/24"}],[{"subnet":"2001:db8:1::/64"}]]}}"#,
                ""
            )
            .is_ok()
        );
    }

    #[test]
    fn errors_for_missing_pieces() {
        assert_eq!(
            parse(r#"{"cniVersion":"0.3.1","name":"n"}"#, "")
                .unwrap_err()
                .to_string(),
            "IPAM config missing 'ipam' key"
        );
        assert_eq!(
            parse(
                r#"{"cniVersion":"0.3.1","name":"n","ipam":{"type":"host-local"}}"#,
                ""
            )
            .unwrap_err()
            .to_string(),
            "no IP ranges specified"
        );
        assert_eq!(
            parse(
                r#"{"cniVersion":"0.3.1","name":"n","ipam":{"subnet":"10.1.2.3/24"}}"#,
                ""
            )
            .unwrap_err()
            .to_string(),
            "invalid range set 0: Network has host bits set. For a subnet mask of length 24 the network address is 10.1.2.0"
        );
        assert!(matches!(
            parse("[]", "").unwrap_err(),
            ConfigError::Decode { .. }
        ));
        assert!(matches!(
            parse(r#"{"name":"n","ipam":{"ranges":"x"}}"#, "").unwrap_err(),
            ConfigError::Decode { .. }
        ));
    }

    #[test]
    fn location_ignores_invalid_ranges() {
        let conf =
            br#"{"cniVersion":"1.0.0","name":"n","ipam":{"dataDir":"/d","subnet":"10.1.2.3/24"}}"#;
        assert!(Config::parse(conf, "").is_err());
        let l = Location::parse(conf).unwrap();
        assert_eq!(l.name, "n");
        assert_eq!(l.data_dir, PathBuf::from("/d"));
        let l = Location::parse(br#"{"name":"n","ipam":{}}"#).unwrap();
        assert_eq!(l.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert!(matches!(
            Location::parse(br#"{"name":"n"}"#).unwrap_err(),
            ConfigError::MissingIpam
        ));
    }

    #[test]
    fn range_from_file() {
        let dir = std::env::temp_dir().join(format!("hl-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("range.json");
        std::fs::write(&f, r#"{"subnet":"10.7.0.0/24","rangeStart":"10.7.0.10"}"#).unwrap();
        let conf = format!(
            r#"{{"cniVersion":"1.0.0","name":"n","ipam":{{"rangeFromFile":"{}"}}}}"#,
            f.display()
        );
        let c = parse(&conf, "").unwrap();
        assert_eq!(c.ranges[0].ranges()[0].range_start, ip("10.7.0.10"));
        std::fs::write(&f, r#"{"gateway":"10.7.0.1"}"#).unwrap();
        assert!(matches!(
            parse(&conf, "").unwrap_err(),
            ConfigError::RangeFileFormat { .. }
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
