//! Results for every spec version and the conversions between them.
//!
//! [`CniResult`] is the canonical, newest (1.x) shape; plugins build it and the skel prints it
//! converted to the config's version. [`v040::Result`] (0.3.0, 0.3.1, 0.4.0) and
//! [`v020::Result`] (0.1.0, 0.2.0) are the older wire shapes. Conversions follow the reference
//! library exactly:
//!
//! - down to 0.4.0: each IP gets `version` `"4"` or `"6"`;
//! - down to 0.2.0: only the **first** IPv4 and the **first** IPv6 survive; routes are split by
//!   destination family into `ip4.routes` / `ip6.routes` (dst and gw only) and dropped for a
//!   family without an address; no address at all is the error
//!   `cannot convert: no valid IP addresses`;
//! - up from 0.2.0: `ip4`/`ip6` become `ips`, their routes the top-level `routes`.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::dns::Dns;
use crate::error::{Error, ErrorCode};
use crate::version::{ResultFamily, Version};

/// Deserialize an optional IP where `""` and `null` mean none, as Go's `net.IP` does.
pub(crate) fn de_opt_ip<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    match s.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// An interface in a result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// Hardware address, if it has one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// MTU (1.1.0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: u32,
    /// The namespace path for container interfaces; empty on the host.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
    /// vhost-user socket path (1.1.0).
    #[serde(
        rename = "socketPath",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub socket_path: String,
    /// PCI ID of a passed-through device (1.1.0).
    #[serde(rename = "pciID", default, skip_serializing_if = "String::is_empty")]
    pub pci_id: String,
}

/// An address assigned by a plugin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// Index into `interfaces`; absent in IPAM results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
    /// The address with its prefix length, host bits kept (`10.1.2.2/24`).
    pub address: IpNet,
    /// The gateway, if any.
    #[serde(
        default,
        deserialize_with = "de_opt_ip",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway: Option<IpAddr>,
}

/// A route. The last five fields are spec 1.1.0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination network.
    pub dst: IpNet,
    /// Next hop; absent means "the family's gateway" to the bridge plugin.
    #[serde(
        default,
        deserialize_with = "de_opt_ip",
        skip_serializing_if = "Option::is_none"
    )]
    pub gw: Option<IpAddr>,
    /// Route MTU.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: u32,
    /// Advertised MSS.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub advmss: u32,
    /// Route priority (metric).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: u32,
    /// Routing table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// Route scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u8>,
}

impl Route {
    /// A route to `dst` via an optional gateway.
    pub fn new(dst: IpNet, gw: Option<IpAddr>) -> Self {
        Route {
            dst,
            gw,
            mtu: 0,
            advmss: 0,
            priority: 0,
            table: None,
            scope: None,
        }
    }
}

/// The canonical result (spec 1.x shape). `cni_version` is the version it was produced for or
/// parsed from; printing converts to any version with [`CniResult::to_value`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CniResult {
    /// The version this result claims.
    pub cni_version: Version,
    /// Interfaces created or used.
    pub interfaces: Vec<Interface>,
    /// Assigned addresses.
    pub ips: Vec<IpConfig>,
    /// Routes.
    pub routes: Vec<Route>,
    /// DNS settings.
    pub dns: Dns,
}

impl Default for CniResult {
    fn default() -> Self {
        CniResult {
            cni_version: Version::CURRENT,
            interfaces: Vec::new(),
            ips: Vec::new(),
            routes: Vec::new(),
            dns: Dns::default(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Wire100 {
    #[serde(rename = "cniVersion", default)]
    cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    dns: Dns,
}

impl Serialize for CniResult {
    /// The 1.x wire shape with this result's `cniVersion`; use [`CniResult::to_value`] to
    /// print for another version.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire100 {
            cni_version: self.cni_version.to_string(),
            interfaces: self.interfaces.clone(),
            ips: self.ips.clone(),
            routes: self.routes.clone(),
            dns: self.dns.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for CniResult {
    /// Any version's shape, chosen by its `cniVersion` (missing: 0.1.0).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        CniResult::from_value(v, None).map_err(serde::de::Error::custom)
    }
}

impl CniResult {
    /// Parse a result of any version. Its own `cniVersion` picks the shape; if it has none,
    /// `default_version` does (the reference injects the config's version into a prevResult
    /// that lacks one), else 0.1.0.
    pub fn from_value(value: Value, default_version: Option<Version>) -> Result<Self, Error> {
        let declared = value
            .get("cniVersion")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(Version::parse)
            .transpose()
            .map_err(|e| Error::msg(ErrorCode::DecodingFailure, e.to_string()))?;
        let version = declared.or(default_version).unwrap_or(Version::V0_1_0);
        let decode = |e: serde_json::Error| {
            Error::msg(
                ErrorCode::DecodingFailure,
                format!("failed to decode result for version {version}: {e}"),
            )
        };
        let mut res = match version.result_family() {
            ResultFamily::V020 => {
                let r: v020::Result = serde_json::from_value(value).map_err(decode)?;
                CniResult::from(v040::Result::from(r))
            }
            ResultFamily::V040 => {
                let r: v040::Result = serde_json::from_value(value).map_err(decode)?;
                CniResult::from(r)
            }
            ResultFamily::V100 => {
                let w: Wire100 = serde_json::from_value(value).map_err(decode)?;
                CniResult {
                    cni_version: version,
                    interfaces: w.interfaces,
                    ips: w.ips,
                    routes: w.routes,
                    dns: w.dns,
                }
            }
        };
        res.cni_version = version;
        Ok(res)
    }

    /// Parse JSON bytes of any version (see [`CniResult::from_value`]).
    pub fn from_slice(bytes: &[u8], default_version: Option<Version>) -> Result<Self, Error> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| {
            Error::msg(
                ErrorCode::DecodingFailure,
                format!("failed to decode result: {e}"),
            )
        })?;
        CniResult::from_value(v, default_version)
    }

    /// This result in the wire shape of `version`, with `cniVersion` set to it.
    pub fn to_versioned(&self, version: Version) -> Result<VersionedResult, Error> {
        let mut r = self.clone();
        r.cni_version = version;
        Ok(match version.result_family() {
            ResultFamily::V100 => VersionedResult::V100(r),
            ResultFamily::V040 => VersionedResult::V040(v040::Result::from(&r)),
            ResultFamily::V020 => {
                VersionedResult::V020(v020::Result::try_from(&v040::Result::from(&r))?)
            }
        })
    }

    /// This result as JSON in the shape of `version`.
    pub fn to_value(&self, version: Version) -> Result<Value, Error> {
        let v = self.to_versioned(version)?;
        serde_json::to_value(&v).map_err(|e| Error::internal(e.to_string()))
    }

    /// This result as the reference prints it for `version`: JSON indented by four spaces.
    pub fn to_json_pretty(&self, version: Version) -> Result<String, Error> {
        Ok(crate::to_json_pretty(&self.to_versioned(version)?))
    }

    /// The first address of each family, in order: what 0.2.0 keeps.
    pub fn first_ip_of_each_family(&self) -> (Option<&IpConfig>, Option<&IpConfig>) {
        let v4 = self.ips.iter().find(|ip| ip.address.addr().is_ipv4());
        let v6 = self.ips.iter().find(|ip| ip.address.addr().is_ipv6());
        (v4, v6)
    }
}

/// A result in one version's wire shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum VersionedResult {
    /// 0.1.0 / 0.2.0.
    V020(v020::Result),
    /// 0.3.0 / 0.3.1 / 0.4.0.
    V040(v040::Result),
    /// 1.0.0 / 1.1.0.
    V100(CniResult),
}

/// The 0.3.0 - 0.4.0 wire shape.
pub mod v040 {
    use super::*;

    /// `ips[]` with a `version` field.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct IpConfig {
        /// `"4"` or `"6"`.
        #[serde(default)]
        pub version: String,
        /// Index into `interfaces`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub interface: Option<usize>,
        /// Address with prefix length.
        pub address: IpNet,
        /// Gateway.
        #[serde(
            default,
            deserialize_with = "de_opt_ip",
            skip_serializing_if = "Option::is_none"
        )]
        pub gateway: Option<IpAddr>,
    }

    /// An interface: name, mac and sandbox.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Interface {
        /// Interface name.
        pub name: String,
        /// Hardware address.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub mac: String,
        /// Namespace path.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub sandbox: String,
    }

    /// A 0.3.x / 0.4.0 result.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Result {
        /// Version.
        #[serde(rename = "cniVersion", default)]
        pub cni_version: Version,
        /// Interfaces.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub interfaces: Vec<Interface>,
        /// Addresses.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub ips: Vec<IpConfig>,
        /// Routes.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub routes: Vec<Route>,
        /// DNS; always printed, as the reference's struct is.
        #[serde(default)]
        pub dns: Dns,
    }

    impl From<&CniResult> for Result {
        fn from(r: &CniResult) -> Self {
            Result {
                cni_version: r.cni_version,
                interfaces: r
                    .interfaces
                    .iter()
                    .map(|i| Interface {
                        name: i.name.clone(),
                        mac: i.mac.clone(),
                        sandbox: i.sandbox.clone(),
                    })
                    .collect(),
                ips: r
                    .ips
                    .iter()
                    .map(|ip| IpConfig {
                        version: if ip.address.addr().is_ipv4() {
                            "4"
                        } else {
                            "6"
                        }
                        .into(),
                        interface: ip.interface,
                        address: ip.address,
                        gateway: ip.gateway,
                    })
                    .collect(),
                routes: r.routes.clone(),
                dns: r.dns.clone(),
            }
        }
    }

    impl From<Result> for CniResult {
        fn from(r: Result) -> Self {
            CniResult {
                cni_version: r.cni_version,
                interfaces: r
                    .interfaces
                    .into_iter()
                    .map(|i| super::Interface {
                        name: i.name,
                        mac: i.mac,
                        sandbox: i.sandbox,
                        ..Default::default()
                    })
                    .collect(),
                ips: r
                    .ips
                    .into_iter()
                    .map(|ip| super::IpConfig {
                        interface: ip.interface,
                        address: ip.address,
                        gateway: ip.gateway,
                    })
                    .collect(),
                routes: r.routes,
                dns: r.dns,
            }
        }
    }
}

/// The 0.1.0 / 0.2.0 wire shape.
pub mod v020 {
    use super::*;

    /// A 0.2.0 route: destination and gateway only.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Route {
        /// Destination.
        pub dst: IpNet,
        /// Gateway.
        #[serde(
            default,
            deserialize_with = "de_opt_ip",
            skip_serializing_if = "Option::is_none"
        )]
        pub gw: Option<IpAddr>,
    }

    /// `ip4` / `ip6`.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct IpConfig {
        /// Address with prefix length.
        pub ip: IpNet,
        /// Gateway.
        #[serde(
            default,
            deserialize_with = "de_opt_ip",
            skip_serializing_if = "Option::is_none"
        )]
        pub gateway: Option<IpAddr>,
        /// Routes of this family.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub routes: Vec<Route>,
    }

    /// A 0.1.0 / 0.2.0 result.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Result {
        /// Version.
        #[serde(rename = "cniVersion", default)]
        pub cni_version: Version,
        /// The IPv4 configuration.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ip4: Option<IpConfig>,
        /// The IPv6 configuration.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ip6: Option<IpConfig>,
        /// DNS; always printed, as the reference's struct is.
        #[serde(default)]
        pub dns: Dns,
    }

    impl TryFrom<&v040::Result> for Result {
        type Error = Error;
        fn try_from(r: &v040::Result) -> std::result::Result<Self, Error> {
            let mut out = Result {
                cni_version: r.cni_version,
                ip4: None,
                ip6: None,
                dns: r.dns.clone(),
            };
            for ip in &r.ips {
                let slot = if ip.address.addr().is_ipv4() {
                    &mut out.ip4
                } else {
                    &mut out.ip6
                };
                if slot.is_none() {
                    *slot = Some(IpConfig {
                        ip: ip.address,
                        gateway: ip.gateway,
                        routes: Vec::new(),
                    });
                }
                if out.ip4.is_some() && out.ip6.is_some() {
                    break;
                }
            }
            for route in &r.routes {
                let slot = if route.dst.addr().is_ipv4() {
                    &mut out.ip4
                } else {
                    &mut out.ip6
                };
                if let Some(cfg) = slot {
                    cfg.routes.push(Route {
                        dst: route.dst,
                        gw: route.gw,
                    });
                }
            }
            if out.ip4.is_none() && out.ip6.is_none() {
                return Err(Error::internal("cannot convert: no valid IP addresses"));
            }
            Ok(out)
        }
    }

    impl From<Result> for v040::Result {
        fn from(r: Result) -> Self {
            let mut ips = Vec::new();
            let mut routes = Vec::new();
            for (cfg, ver) in [(r.ip4, "4"), (r.ip6, "6")] {
                if let Some(cfg) = cfg {
                    ips.push(v040::IpConfig {
                        version: ver.into(),
                        interface: None,
                        address: cfg.ip,
                        gateway: cfg.gateway,
                    });
                    routes.extend(
                        cfg.routes
                            .into_iter()
                            .map(|rt| super::Route::new(rt.dst, rt.gw)),
                    );
                }
            }
            v040::Result {
                cni_version: r.cni_version,
                interfaces: Vec::new(),
                ips,
                routes,
                dns: r.dns,
            }
        }
    }
}
