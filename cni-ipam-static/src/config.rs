//! static's view of the network configuration it receives on stdin, as the reference's
//! `LoadIPAMConfig`.
//!
//! An IPAM plugin gets the *whole* configuration of the plugin that delegates to it and reads
//! `name`, `cniVersion`, `ipam.addresses` (`address` in CIDR notation, optional `gateway`),
//! `ipam.routes`, `ipam.dns`, `args.cni.ips`, `runtimeConfig.ips`, and `IP=` / `GATEWAY=`
//! from `CNI_ARGS`. Keys match case-insensitively (an exact match wins), as Go's
//! `encoding/json` does for the reference; unknown keys are ignored.
//!
//! The addresses, in the reference's order of precedence:
//! 1. `runtimeConfig.ips` (the `ips` capability), when not empty, replaces everything below;
//! 2. else `args.cni.ips`, when not empty, replaces everything below;
//! 3. else `ipam.addresses` followed by `CNI_ARGS` `IP=` (a comma-separated list). `GATEWAY=`
//!    (also a list) sets the gateway of each `IP=` address whose subnet contains it; it never
//!    applies to `ipam.addresses` (the reference matches it before those are parsed).
//!
//! Addresses from 1 and 2 have no gateway. Before 0.3.0 at most one address per family is
//! allowed.

use std::net::IpAddr;

use cni_types::args::ArgsError;
use cni_types::capabilities::get_ci;
use cni_types::ipnet::IpNet;
use cni_types::{CniArgs, Dns, Route, Version};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Why a configuration was refused. Messages are the reference's where it has one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// stdin is not a JSON object, or a key has the wrong type.
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
    /// An `IP=` item of `CNI_ARGS` is not in CIDR notation.
    #[error("the 'ip' field is expected to be in CIDR notation, got: '{0}'")]
    ArgsIp(String),
    /// A `GATEWAY=` item of `CNI_ARGS` is not an IP address.
    #[error("invalid gateway address: {0}")]
    ArgsGateway(String),
    /// An entry of `args.cni.ips` or `runtimeConfig.ips` is not in CIDR notation.
    #[error("an entry in the 'ips' field is NOT in CIDR notation, got: '{0}'")]
    Ips(String),
    /// An `address` of `ipam.addresses` is not in CIDR notation.
    #[error("the 'address' field is expected to be in CIDR notation, got: '{0}'")]
    Address(String),
    /// A `gateway` of `ipam.addresses` is not an IP address.
    #[error("invalid IP address: {0}")]
    Gateway(String),
    /// More than one address per family for a config older than 0.3.0.
    #[error("CNI version {0} does not support more than 1 address per family")]
    TooManyPerFamily(String),
}

/// One address of the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Address {
    /// The address with its prefix length, host bits kept (`10.10.0.1/24`).
    pub address: IpNet,
    /// The gateway, if any.
    pub gateway: Option<IpAddr>,
}

/// A validated static configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticConf {
    /// The network name.
    pub name: String,
    /// `cniVersion` exactly as given (empty when absent).
    pub cni_version: String,
    /// The addresses, after precedence (see the [module docs](self)).
    pub addresses: Vec<Address>,
    /// `ipam.routes`, returned verbatim.
    pub routes: Vec<Route>,
    /// `ipam.dns`, returned verbatim.
    pub dns: Dns,
}

/// What [`StaticConf::try_from`] reads: the config bytes and the raw `CNI_ARGS`.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// The config as received on stdin.
    pub stdin: &'a [u8],
    /// `CNI_ARGS`, raw.
    pub cni_args: &'a str,
}

impl TryFrom<Input<'_>> for StaticConf {
    type Error = ConfigError;

    fn try_from(input: Input<'_>) -> Result<Self, ConfigError> {
        StaticConf::parse(input.stdin, input.cni_args)
    }
}

/// `m[key]` (case-insensitive), `None` for absent or `null`.
fn key<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    get_ci(m, k).filter(|v| !v.is_null())
}

fn object<'a>(v: &'a Value, what: &'static str) -> Result<&'a Map<String, Value>, ConfigError> {
    v.as_object().ok_or_else(|| ConfigError::Decode {
        what,
        source: serde::de::Error::custom(format!("expected an object, got {v}")),
    })
}

fn decode<T: DeserializeOwned>(v: &Value, what: &'static str) -> Result<T, ConfigError> {
    serde_json::from_value(v.clone()).map_err(|source| ConfigError::Decode { what, source })
}

fn string(m: &Map<String, Value>, k: &str, what: &'static str) -> Result<String, ConfigError> {
    key(m, k).map_or(Ok(String::new()), |v| decode(v, what))
}

/// `v` with the keys of each object that match one of `names` ignoring ASCII case renamed to
/// that name (an exact key wins), so serde's case-sensitive derive reads what Go's decoder
/// reads.
fn fold_keys(v: &Value, names: &[&str]) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                let canon = names
                    .iter()
                    .find(|n| k.eq_ignore_ascii_case(n) && !m.contains_key(**n))
                    .map_or(k.as_str(), |n| n);
                out.insert(canon.to_string(), val.clone());
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|i| fold_keys(i, names)).collect()),
        other => other.clone(),
    }
}

/// Go's `net.ParseCIDR`: `addr/len`, host bits kept. An IPv4-mapped IPv6 address becomes
/// IPv4, as the reference's canonicalisation does.
pub fn parse_cidr(s: &str) -> Option<IpNet> {
    let (addr, len) = s.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    // Go's prefix length: decimal digits only, leading zeros allowed (`/016` is /16).
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len = len
        .bytes()
        .try_fold(0u32, |n, b| {
            n.checked_mul(10)?.checked_add(u32::from(b - b'0'))
        })
        .and_then(|n| u8::try_from(n).ok())?;
    let net = IpNet::new(addr, len).ok()?;
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => IpNet::new(v4.into(), v6.prefix_len() - 96).ok(),
            None => Some(net),
        },
        _ => Some(net),
    }
}

/// Go's `net.ParseIP`, printed as Go prints it: an IPv4-mapped IPv6 address is IPv4.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let ip: IpAddr = s.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

fn contains(net: &IpNet, ip: IpAddr) -> bool {
    net.trunc().contains(&ip)
}

/// A list of CIDR strings (`args.cni.ips`, `runtimeConfig.ips`) as gateway-less addresses.
fn ips(list: &[String]) -> Result<Vec<Address>, ConfigError> {
    list.iter()
        .map(|s| {
            parse_cidr(s)
                .map(|address| Address {
                    address,
                    gateway: None,
                })
                .ok_or_else(|| ConfigError::Ips(s.clone()))
        })
        .collect()
}

/// `ipam.addresses` as given: each entry's `address` text (checked later, as the reference
/// does) and its decoded `gateway`.
fn config_addresses(
    ipam: &Map<String, Value>,
) -> Result<Vec<(String, Option<IpAddr>)>, ConfigError> {
    let Some(list) = key(ipam, "addresses") else {
        return Ok(Vec::new());
    };
    let entries: Vec<Value> = decode(list, "ipam.addresses")?;
    let mut out = Vec::with_capacity(entries.len());
    for e in &entries {
        let e = object(e, "ipam.addresses")?;
        let text = string(e, "address", "ipam.addresses[].address")?;
        let gw = string(e, "gateway", "ipam.addresses[].gateway")?;
        let gateway = match gw.as_str() {
            "" => None,
            s => Some(parse_ip(s).ok_or_else(|| ConfigError::Gateway(gw.clone()))?),
        };
        out.push((text, gateway));
    }
    Ok(out)
}

/// `IP=` and `GATEWAY=` of `CNI_ARGS`.
fn env_addresses(cni_args: &str) -> Result<Vec<Address>, ConfigError> {
    let args = CniArgs::parse_known(cni_args, &["IP", "GATEWAY"])?;
    let mut out = Vec::new();
    if let Some(list) = args.get("IP").filter(|s| !s.is_empty()) {
        for item in list.split(',') {
            let item = item.trim();
            let address = parse_cidr(item).ok_or_else(|| ConfigError::ArgsIp(item.into()))?;
            out.push(Address {
                address,
                gateway: None,
            });
        }
    }
    if let Some(list) = args.get("GATEWAY").filter(|s| !s.is_empty()) {
        for item in list.split(',') {
            let gw = parse_ip(item.trim()).ok_or_else(|| ConfigError::ArgsGateway(item.into()))?;
            for a in out.iter_mut().filter(|a| contains(&a.address, gw)) {
                a.gateway = Some(gw);
            }
        }
    }
    Ok(out)
}

impl StaticConf {
    /// Parse and validate stdin plus the raw `CNI_ARGS`.
    pub fn parse(stdin: &[u8], cni_args: &str) -> Result<StaticConf, ConfigError> {
        let top: Value = serde_json::from_slice(stdin).map_err(|source| ConfigError::Decode {
            what: "network config",
            source,
        })?;
        let top = object(&top, "network config")?;
        let ipam = object(key(top, "ipam").ok_or(ConfigError::MissingIpam)?, "ipam")?;
        let name = string(top, "name", "name")?;
        let cni_version = string(top, "cniVersion", "cniVersion")?;

        // The reference decodes the whole config first, so JSON errors come before the
        // address checks.
        let routes: Vec<Route> = match key(ipam, "routes") {
            None => Vec::new(),
            Some(v) => decode(
                &fold_keys(
                    v,
                    &["dst", "gw", "mtu", "advmss", "priority", "table", "scope"],
                ),
                "ipam.routes",
            )?,
        };
        let dns: Dns = match key(ipam, "dns") {
            None => Dns::default(),
            Some(v) => decode(
                &fold_keys(v, &["nameservers", "domain", "search", "options"]),
                "ipam.dns",
            )?,
        };
        let args_ips: Vec<String> = match key(top, "args") {
            None => Vec::new(),
            Some(a) => match key(object(a, "args")?, "cni") {
                None => Vec::new(),
                Some(c) => match key(object(c, "args.cni")?, "ips") {
                    None => Vec::new(),
                    Some(v) => decode(v, "args.cni.ips")?,
                },
            },
        };
        let runtime_ips: Vec<String> = match key(top, "runtimeConfig") {
            None => Vec::new(),
            Some(r) => match key(object(r, "runtimeConfig")?, "ips") {
                None => Vec::new(),
                Some(v) => decode(v, "runtimeConfig.ips")?,
            },
        };
        let configured = config_addresses(ipam)?;

        // Then CNI_ARGS, args.cni.ips and runtimeConfig.ips, each checked even when a later
        // one replaces it.
        let from_env = env_addresses(cni_args)?;
        let from_args = ips(&args_ips)?;
        let from_runtime = ips(&runtime_ips)?;
        let addresses = if !from_runtime.is_empty() {
            from_runtime
        } else if !from_args.is_empty() {
            from_args
        } else {
            let mut all = Vec::with_capacity(configured.len() + from_env.len());
            for (text, gateway) in configured {
                let address = parse_cidr(&text).ok_or(ConfigError::Address(text))?;
                all.push(Address { address, gateway });
            }
            all.extend(from_env);
            all
        };

        let v4 = addresses
            .iter()
            .filter(|a| a.address.addr().is_ipv4())
            .count();
        let v6 = addresses.len() - v4;
        if (v4 > 1 || v6 > 1) && !Version::parse(&cni_version).is_ok_and(|v| v >= Version::V0_3_0) {
            return Err(ConfigError::TooManyPerFamily(cni_version));
        }
        Ok(StaticConf {
            name,
            cni_version,
            addresses,
            routes,
            dns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str, args: &str) -> Result<StaticConf, ConfigError> {
        StaticConf::parse(json.as_bytes(), args)
    }

    fn addrs(c: &StaticConf) -> Vec<String> {
        c.addresses
            .iter()
            .map(|a| match a.gateway {
                Some(g) => format!("{} gw {g}", a.address),
                None => a.address.to_string(),
            })
            .collect()
    }

    const FULL: &str = r#"{"cniVersion":"0.3.1","name":"mynet","type":"ipvlan","master":"foo0",
        "ipam":{"type":"static",
            "addresses":[{"address":"10.10.0.1/24","gateway":"10.10.0.254"},
                         {"address":"3ffe:ffff:0:01ff::1/64","gateway":"3ffe:ffff:0::1"}],
            "routes":[{"dst":"0.0.0.0/0"},{"dst":"192.168.0.0/16","gw":"10.10.5.1"},
                      {"dst":"3ffe:ffff:0:01ff::1/64"}],
            "dns":{"nameservers":["8.8.8.8"],"domain":"example.com","search":["example.com"]}}}"#;

    #[test]
    fn addresses_routes_and_dns() {
        let c = parse(FULL, "").unwrap();
        assert_eq!(c.name, "mynet");
        assert_eq!(c.cni_version, "0.3.1");
        assert_eq!(
            addrs(&c),
            [
                "10.10.0.1/24 gw 10.10.0.254",
                "3ffe:ffff:0:1ff::1/64 gw 3ffe:ffff::1"
            ]
        );
        assert_eq!(c.routes.len(), 3);
        assert_eq!(c.routes[1].gw, Some("10.10.5.1".parse().unwrap()));
        // Host bits of a route destination are kept, as the reference's types.IPNet does.
        assert_eq!(c.routes[2].dst.to_string(), "3ffe:ffff:0:1ff::1/64");
        assert_eq!(c.dns.nameservers, ["8.8.8.8"]);
        assert_eq!(c.dns.domain, "example.com");
    }

    #[test]
    fn keys_are_case_insensitive() {
        let c = parse(
            r#"{"cniVersion":"1.0.0","Name":"n","IPAM":{"Addresses":[{"ADDRESS":"10.1.0.5/24","Gateway":"10.1.0.1"}],
                "Routes":[{"Dst":"0.0.0.0/0","GW":"10.1.0.1"}],"DNS":{"Nameservers":["1.1.1.1"]}},
                "RuntimeConfig":{"IPs":[]}}"#,
            "",
        )
        .unwrap();
        assert_eq!(c.name, "n");
        assert_eq!(addrs(&c), ["10.1.0.5/24 gw 10.1.0.1"]);
        assert_eq!(c.routes[0].gw, Some("10.1.0.1".parse().unwrap()));
        assert_eq!(c.dns.nameservers, ["1.1.1.1"]);
    }

    #[test]
    fn cni_args_ip_list_is_appended_and_gateway_matches_by_subnet() {
        let c = parse(
            FULL,
            "IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.10.0.7/24, 10.20.0.7/16,2001:db8::7/64;GATEWAY=10.20.0.1,2001:db8::1",
        )
        .unwrap();
        assert_eq!(
            addrs(&c),
            [
                "10.10.0.1/24 gw 10.10.0.254",
                "3ffe:ffff:0:1ff::1/64 gw 3ffe:ffff::1",
                "10.10.0.7/24",
                "10.20.0.7/16 gw 10.20.0.1",
                "2001:db8::7/64 gw 2001:db8::1",
            ]
        );
        // GATEWAY never applies to ipam.addresses (the reference matches it before they are
        // parsed), and alone it adds nothing.
        let c = parse(FULL, "GATEWAY=10.10.0.9").unwrap();
        assert_eq!(addrs(&c)[0], "10.10.0.1/24 gw 10.10.0.254");
        assert_eq!(c.addresses.len(), 2);
        // An empty IP= adds nothing.
        assert_eq!(parse(FULL, "IP=").unwrap().addresses.len(), 2);
    }

    #[test]
    fn cni_args_errors() {
        let err = |args: &str| parse(FULL, args).unwrap_err().to_string();
        assert_eq!(
            err("K8S_POD_NAME=p"),
            "ARGS: unknown args [\"K8S_POD_NAME=p\"]"
        );
        assert_eq!(
            err("IP=10.10.0.7"),
            "the 'ip' field is expected to be in CIDR notation, got: '10.10.0.7'"
        );
        assert_eq!(
            err("IP=10.10.0.7/24,"),
            "the 'ip' field is expected to be in CIDR notation, got: ''"
        );
        assert_eq!(
            err("IP=10.10.0.7/24;GATEWAY=10.10.0.1, nope"),
            "invalid gateway address:  nope"
        );
        assert_eq!(
            err("ip=10.10.0.7/24"),
            "ARGS: unknown args [\"ip=10.10.0.7/24\"]"
        );
    }

    #[test]
    fn args_ips_replace_config_and_cni_args() {
        let mut v: Value = serde_json::from_str(FULL).unwrap();
        v["args"] = serde_json::json!({"cni": {"ips": ["10.99.0.2/24", "2001:db8::2/64"]}});
        let c = parse(&v.to_string(), "IP=10.10.0.7/24;GATEWAY=10.10.0.1").unwrap();
        assert_eq!(addrs(&c), ["10.99.0.2/24", "2001:db8::2/64"]);
        // ... but CNI_ARGS is still validated.
        assert!(matches!(
            parse(&v.to_string(), "IP=bad").unwrap_err(),
            ConfigError::ArgsIp(_)
        ));
    }

    #[test]
    fn runtime_config_ips_replace_everything() {
        let mut v: Value = serde_json::from_str(FULL).unwrap();
        v["args"] = serde_json::json!({"cni": {"ips": ["10.99.0.2/24"]}});
        v["runtimeConfig"] = serde_json::json!({"ips": ["10.88.0.2/16"]});
        let c = parse(&v.to_string(), "IP=10.10.0.7/24").unwrap();
        assert_eq!(addrs(&c), ["10.88.0.2/16"]);
        // An invalid args.cni.ips entry is refused even though runtimeConfig replaces it.
        v["args"] = serde_json::json!({"cni": {"ips": ["10.99.0.2"]}});
        assert_eq!(
            parse(&v.to_string(), "").unwrap_err().to_string(),
            "an entry in the 'ips' field is NOT in CIDR notation, got: '10.99.0.2'"
        );
        // An empty list replaces nothing.
        v["args"] = serde_json::json!({"cni": {"ips": []}});
        v["runtimeConfig"] = serde_json::json!({"ips": []});
        assert_eq!(parse(&v.to_string(), "").unwrap().addresses.len(), 2);
    }

    #[test]
    fn config_address_errors() {
        let with = |addresses: &str| {
            parse(
                &format!(
                    r#"{{"cniVersion":"1.0.0","name":"n","ipam":{{"type":"static","addresses":{addresses}}}}}"#
                ),
                "",
            )
        };
        assert_eq!(
            with(r#"[{"address":"10.10.0.1"}]"#)
                .unwrap_err()
                .to_string(),
            "the 'address' field is expected to be in CIDR notation, got: '10.10.0.1'"
        );
        assert_eq!(
            with(r#"[{"gateway":"10.10.0.1"}]"#)
                .unwrap_err()
                .to_string(),
            "the 'address' field is expected to be in CIDR notation, got: ''"
        );
        assert_eq!(
            with(r#"[{"address":"10.10.0.1/24","gateway":"10.10.0"}]"#)
                .unwrap_err()
                .to_string(),
            "invalid IP address: 10.10.0"
        );
        // An empty gateway is none; the gateway is not checked against the subnet.
        let c = with(r#"[{"address":"10.10.0.1/24","gateway":""},{"address":"10.20.0.1/24","gateway":"192.168.0.1"}]"#)
            .unwrap();
        assert_eq!(addrs(&c), ["10.10.0.1/24", "10.20.0.1/24 gw 192.168.0.1"]);
        // Zero addresses are allowed.
        assert!(with("[]").unwrap().addresses.is_empty());
        assert!(matches!(
            with(r#""10.0.0.1/24""#).unwrap_err(),
            ConfigError::Decode { .. }
        ));
    }

    #[test]
    fn cidr_parsing_as_go() {
        let p = |s: &str| parse_cidr(s).map(|n| n.to_string());
        assert_eq!(p("10.1.0.5/016").as_deref(), Some("10.1.0.5/16"));
        assert_eq!(p("10.1.0.5/0000000024").as_deref(), Some("10.1.0.5/24"));
        assert_eq!(p("2001:db8::5/64").as_deref(), Some("2001:db8::5/64"));
        for bad in [
            "10.1.0.5",
            "10.1.0.5/",
            "10.1.0.5/33",
            "10.1.0.5/+8",
            "10.1.0.5/24 ",
            " 10.1.0.5/24",
            "010.1.0.5/24",
            "10.1.0/24",
            "2001:db8::5/129",
            "fe80::1%eth0/64",
            "",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        let c = parse(
            r#"{"cniVersion":"1.0.0","name":"n","ipam":{"addresses":[{"address":"::ffff:10.1.0.5/120"}]}}"#,
            "",
        )
        .unwrap();
        assert_eq!(addrs(&c), ["10.1.0.5/24"]);
        let c = parse(
            r#"{"cniVersion":"1.0.0","name":"n","ipam":{"addresses":[{"address":"10.1.0.5/24","gateway":"::ffff:10.1.0.1"}]}}"#,
            "IP=10.2.0.5/24;GATEWAY=::ffff:10.2.0.1",
        )
        .unwrap();
        assert_eq!(
            addrs(&c),
            ["10.1.0.5/24 gw 10.1.0.1", "10.2.0.5/24 gw 10.2.0.1"]
        );
    }

    #[test]
    fn one_address_per_family_before_0_3_0() {
        let two = |v: &str| {
            format!(
                r#"{{{v}"name":"n","ipam":{{"addresses":[{{"address":"10.1.0.5/24"}},{{"address":"10.2.0.5/24"}}]}}}}"#
            )
        };
        for v in ["0.1.0", "0.2.0"] {
            assert_eq!(
                parse(&two(&format!(r#""cniVersion":"{v}","#)), "")
                    .unwrap_err()
                    .to_string(),
                format!("CNI version {v} does not support more than 1 address per family")
            );
        }
        assert_eq!(
            parse(&two(""), "").unwrap_err().to_string(),
            "CNI version  does not support more than 1 address per family"
        );
        for v in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
            assert!(
                parse(&two(&format!(r#""cniVersion":"{v}","#)), "").is_ok(),
                "{v}"
            );
        }
        // One per family is fine at 0.2.0, also when CNI_ARGS adds the second family.
        let c = parse(
            r#"{"cniVersion":"0.2.0","name":"n","ipam":{"addresses":[{"address":"10.1.0.5/24"}]}}"#,
            "IP=2001:db8::5/64",
        )
        .unwrap();
        assert_eq!(c.addresses.len(), 2);
    }

    #[test]
    fn missing_or_broken_pieces() {
        assert_eq!(
            parse(r#"{"cniVersion":"1.0.0","name":"n"}"#, "")
                .unwrap_err()
                .to_string(),
            "IPAM config missing 'ipam' key"
        );
        assert!(matches!(
            parse(r#"{"name":"n","ipam":null}"#, "").unwrap_err(),
            ConfigError::MissingIpam
        ));
        for bad in [
            r#"{"name":"n","ipam":{"routes":[{"dst":"nope"}]}}"#,
            r#"{"name":"n","ipam":{"dns":{"nameservers":"8.8.8.8"}}}"#,
            r#"{"name":"n","ipam":{},"args":{"cni":{"ips":"10.0.0.1/24"}}}"#,
            r#"{"name":"n","ipam":{},"runtimeConfig":{"ips":[1]}}"#,
            r#"{"name":"n","ipam":"static"}"#,
            "[]",
        ] {
            assert!(
                matches!(parse(bad, "").unwrap_err(), ConfigError::Decode { .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn built_with_try_from() {
        let c = StaticConf::try_from(Input {
            stdin: FULL.as_bytes(),
            cni_args: "IP=10.10.0.9/24",
        })
        .unwrap();
        assert_eq!(c.addresses.len(), 3);
    }
}
