//! Capability arguments (`runtimeConfig`) and GC attachments.
//!
//! Runtimes disagree on key spelling: containerd's go-cni sends `{"HostPort":8080,...}` because
//! its structs have no JSON tags, and Go plugins accept it because `encoding/json` matches
//! field names case-insensitively. Every type here does the same: an exact key wins, otherwise
//! a key that matches ignoring ASCII case.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The `runtimeConfig` object, raw, with typed accessors for the well-known capabilities.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RuntimeConfig(pub Map<String, Value>);

fn typed<T: for<'de> Deserialize<'de>>(v: Option<&Value>) -> Result<Option<T>, serde_json::Error> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone()).map(Some),
    }
}

impl RuntimeConfig {
    /// The raw value of a capability: the exact key, else one that matches ignoring ASCII
    /// case (Go plugins decode `runtimeConfig` with `encoding/json`, which does the same).
    pub fn get(&self, key: &str) -> Option<&Value> {
        get_ci(&self.0, key)
    }

    /// `portMappings`, empty when absent.
    pub fn port_mappings(&self) -> Result<Vec<PortMapping>, serde_json::Error> {
        Ok(typed(self.get("portMappings"))?.unwrap_or_default())
    }

    /// `ipRanges`: range sets, as host-local's `ranges`. A flat list of ranges (what go-cni
    /// builds from its `[]IPRanges`) is read as a single range set.
    pub fn ip_ranges(&self) -> Result<Vec<Vec<IpRange>>, serde_json::Error> {
        match self.get("ipRanges") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) if a.iter().all(Value::is_object) && !a.is_empty() => {
                Ok(vec![serde_json::from_value(Value::Array(a.clone()))?])
            }
            Some(v) => serde_json::from_value(v.clone()),
        }
    }

    /// `ips`: requested addresses, with or without prefix.
    pub fn ips(&self) -> Result<Vec<RequestedIp>, serde_json::Error> {
        Ok(typed(self.get("ips"))?.unwrap_or_default())
    }

    /// `mac`.
    pub fn mac(&self) -> Result<Option<String>, serde_json::Error> {
        typed(self.get("mac"))
    }

    /// `bandwidth`.
    pub fn bandwidth(&self) -> Result<Option<Bandwidth>, serde_json::Error> {
        typed(self.get("bandwidth"))
    }

    /// `dns`.
    pub fn dns(&self) -> Result<Option<CapDns>, serde_json::Error> {
        typed(self.get("dns"))
    }
}

/// Look up `key` in `m`: exact match first, then ignoring ASCII case.
pub fn get_ci<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).or_else(|| {
        m.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn field<T: for<'de> Deserialize<'de>, E: serde::de::Error>(
    m: &Map<String, Value>,
    key: &str,
) -> Result<Option<T>, E> {
    match get_ci(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| E::custom(format!("{key}: {e}"))),
    }
}

fn opt_ip<E: serde::de::Error>(m: &Map<String, Value>, key: &str) -> Result<Option<IpAddr>, E> {
    match field::<String, E>(m, key)?.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|e| E::custom(format!("{key}: invalid IP address {s:?}: {e}"))),
    }
}

/// One entry of `portMappings`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PortMapping {
    /// Port on the host. Kept signed: validation (`Invalid host port number: 0`) belongs to
    /// the plugin.
    #[serde(rename = "hostPort")]
    pub host_port: i64,
    /// Port in the container.
    #[serde(rename = "containerPort")]
    pub container_port: i64,
    /// `tcp`, `udp` or `sctp`, verbatim.
    pub protocol: String,
    /// Host address to bind, empty for any.
    #[serde(rename = "hostIP", skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
}

impl<'de> Deserialize<'de> for PortMapping {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = Map::deserialize(d)?;
        Ok(PortMapping {
            host_port: field(&m, "hostPort")?.unwrap_or(0),
            container_port: field(&m, "containerPort")?.unwrap_or(0),
            protocol: field(&m, "protocol")?.unwrap_or_default(),
            host_ip: field(&m, "hostIP")?.unwrap_or_default(),
        })
    }
}

/// A range of host-local's `ranges` / the `ipRanges` capability.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IpRange {
    /// The subnet; host bits are kept so IPAM can reject them.
    pub subnet: IpNet,
    /// First address to hand out.
    #[serde(rename = "rangeStart", skip_serializing_if = "Option::is_none")]
    pub range_start: Option<IpAddr>,
    /// Last address to hand out.
    #[serde(rename = "rangeEnd", skip_serializing_if = "Option::is_none")]
    pub range_end: Option<IpAddr>,
    /// Gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
}

impl<'de> Deserialize<'de> for IpRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = Map::deserialize(d)?;
        let subnet: String = field(&m, "subnet")?.unwrap_or_default();
        let subnet = subnet.parse().map_err(|e| {
            serde::de::Error::custom(format!("invalid CIDR address: {subnet}: {e}"))
        })?;
        Ok(IpRange {
            subnet,
            range_start: opt_ip(&m, "rangeStart")?,
            range_end: opt_ip(&m, "rangeEnd")?,
            gateway: opt_ip(&m, "gateway")?,
        })
    }
}

/// The `bandwidth` capability (bits per second, bits).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Bandwidth {
    /// Ingress rate.
    #[serde(rename = "ingressRate")]
    pub ingress_rate: u64,
    /// Ingress burst.
    #[serde(rename = "ingressBurst")]
    pub ingress_burst: u64,
    /// Egress rate.
    #[serde(rename = "egressRate")]
    pub egress_rate: u64,
    /// Egress burst.
    #[serde(rename = "egressBurst")]
    pub egress_burst: u64,
}

impl<'de> Deserialize<'de> for Bandwidth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = Map::deserialize(d)?;
        Ok(Bandwidth {
            ingress_rate: field(&m, "ingressRate")?.unwrap_or(0),
            ingress_burst: field(&m, "ingressBurst")?.unwrap_or(0),
            egress_rate: field(&m, "egressRate")?.unwrap_or(0),
            egress_burst: field(&m, "egressBurst")?.unwrap_or(0),
        })
    }
}

/// The `dns` capability.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CapDns {
    /// Name servers.
    pub servers: Vec<String>,
    /// Search domains.
    pub searches: Vec<String>,
    /// Options.
    pub options: Vec<String>,
}

impl<'de> Deserialize<'de> for CapDns {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = Map::deserialize(d)?;
        Ok(CapDns {
            servers: field(&m, "servers")?.unwrap_or_default(),
            searches: field(&m, "searches")?.unwrap_or_default(),
            options: field(&m, "options")?.unwrap_or_default(),
        })
    }
}

/// One entry of GC's `cni.dev/valid-attachments`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Attachment {
    /// Container ID.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// Interface name.
    pub ifname: String,
}

impl<'de> Deserialize<'de> for Attachment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = Map::deserialize(d)?;
        Ok(Attachment {
            container_id: field(&m, "containerID")?.unwrap_or_default(),
            ifname: field(&m, "ifname")?.unwrap_or_default(),
        })
    }
}

/// A requested address: `10.1.2.3` or `10.1.2.3/24` (`runtimeConfig.ips`, `args.cni.ips`,
/// CNI_ARGS `IP=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestedIp {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length, if one was given.
    pub prefix: Option<u8>,
}

impl FromStr for RequestedIp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.contains('/') {
            let net: IpNet = s.parse().map_err(|_| format!("invalid IP address: {s}"))?;
            Ok(RequestedIp {
                addr: net.addr(),
                prefix: Some(net.prefix_len()),
            })
        } else {
            let addr: IpAddr = s.parse().map_err(|_| format!("invalid IP address: {s}"))?;
            Ok(RequestedIp { addr, prefix: None })
        }
    }
}

impl std::fmt::Display for RequestedIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.prefix {
            Some(p) => write!(f, "{}/{}", self.addr, p),
            None => write!(f, "{}", self.addr),
        }
    }
}

impl Serialize for RequestedIp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RequestedIp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_mappings_both_spellings() {
        let rc: RuntimeConfig = serde_json::from_str(
            r#"{"portMappings":[
                {"hostPort":8080,"containerPort":80,"protocol":"tcp"},
                {"HostPort":53,"ContainerPort":5353,"Protocol":"udp","HostIP":"127.0.0.1"}]}"#,
        )
        .unwrap();
        let pm = rc.port_mappings().unwrap();
        assert_eq!(pm.len(), 2);
        assert_eq!(pm[0].host_port, 8080);
        assert_eq!(pm[1].container_port, 5353);
        assert_eq!(pm[1].protocol, "udp");
        assert_eq!(pm[1].host_ip, "127.0.0.1");
        assert_eq!(
            serde_json::to_string(&pm[1]).unwrap(),
            r#"{"hostPort":53,"containerPort":5353,"protocol":"udp","hostIP":"127.0.0.1"}"#
        );
    }

    #[test]
    fn ip_ranges_nested_and_flat() {
        let rc: RuntimeConfig = serde_json::from_str(
            r#"{"ipRanges":[[{"subnet":"10.1.0.0/16","rangeStart":"10.1.0.10","gateway":""}]]}"#,
        )
        .unwrap();
        let r = rc.ip_ranges().unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0][0].range_start, Some("10.1.0.10".parse().unwrap()));
        assert_eq!(r[0][0].gateway, None);
        let rc: RuntimeConfig = serde_json::from_str(
            r#"{"ipRanges":[{"Subnet":"10.1.0.0/16"},{"Subnet":"10.2.0.0/16"}]}"#,
        )
        .unwrap();
        let r = rc.ip_ranges().unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].len(), 2);
    }

    #[test]
    fn requested_ips() {
        let a: RequestedIp = "10.1.2.3".parse().unwrap();
        assert_eq!(a.prefix, None);
        let b: RequestedIp = "10.1.2.3/24".parse().unwrap();
        assert_eq!(b.prefix, Some(24));
        assert_eq!(b.addr, a.addr);
        assert!("x".parse::<RequestedIp>().is_err());
        let c: RequestedIp = "2001:db8::5".parse().unwrap();
        assert!(c.addr.is_ipv6());
    }

    #[test]
    fn other_capabilities() {
        let rc: RuntimeConfig = serde_json::from_str(
            r#"{"mac":"c2:11:22:33:44:55","bandwidth":{"IngressRate":1000},
                "dns":{"Servers":["1.1.1.1"]},"ips":["10.0.0.9/24"]}"#,
        )
        .unwrap();
        assert_eq!(rc.mac().unwrap().as_deref(), Some("c2:11:22:33:44:55"));
        assert_eq!(rc.bandwidth().unwrap().unwrap().ingress_rate, 1000);
        assert_eq!(rc.dns().unwrap().unwrap().servers, vec!["1.1.1.1"]);
        assert_eq!(rc.ips().unwrap()[0].prefix, Some(24));
        assert!(RuntimeConfig::default().port_mappings().unwrap().is_empty());
    }

    #[test]
    fn capability_keys_match_ignoring_case() {
        let rc: RuntimeConfig =
            serde_json::from_str(r#"{"IPRanges":[[{"subnet":"10.1.0.0/16"}]],"IPs":["10.1.0.5"]}"#)
                .unwrap();
        assert_eq!(rc.ip_ranges().unwrap().len(), 1);
        assert_eq!(rc.ips().unwrap().len(), 1);
    }

    #[test]
    fn attachments() {
        let a: Vec<Attachment> = serde_json::from_str(
            r#"[{"containerID":"abc","ifname":"eth0"},{"ContainerID":"d","IfName":"eth1"}]"#,
        )
        .unwrap();
        assert_eq!(a[1].container_id, "d");
        assert_eq!(a[1].ifname, "eth1");
    }
}
