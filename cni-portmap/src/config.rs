//! The plugin's configuration, parsed once into validated types.
//!
//! Keys are looked up like Go's `encoding/json` does (an exact match first, then one that
//! matches ignoring ASCII case), so a config the reference accepts is accepted here, including
//! the capitalised `runtimeConfig.portMappings` keys containerd sends (`HostPort`, ...).

use std::net::IpAddr;

pub use cni_linux::firewall::iptables::is_chain_name;
use cni_linux::firewall::{Backend, IpFamily};
use cni_types::capabilities::get_ci;
use cni_types::{CniResult, NetConf, Version};
use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ConfigError;

/// The reference's default mark bit for "needs masquerading" (`DefaultMarkBit`; Kubernetes
/// uses 14 and 15, Calico 20-31).
pub const DEFAULT_MARK_BIT: u8 = 13;

/// A transport protocol of a port mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// `tcp`.
    Tcp,
    /// `udp`.
    Udp,
    /// `sctp`.
    Sctp,
}

impl Protocol {
    /// Parses `tcp`, `udp` or `sctp` in any case (containerd lower-cases, Kubernetes writes
    /// `TCP`).
    pub fn parse(s: &str) -> Option<Protocol> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "sctp" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The lower-case name, as iptables and nft print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }

    /// The nftables protocol.
    pub fn l4(self) -> cni_linux::firewall::nftables::L4Proto {
        use cni_linux::firewall::nftables::L4Proto;
        match self {
            Protocol::Tcp => L4Proto::Tcp,
            Protocol::Udp => L4Proto::Udp,
            Protocol::Sctp => L4Proto::Sctp,
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validated entry of `runtimeConfig.portMappings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mapping {
    /// Port on the host.
    pub host_port: u16,
    /// Port in the container.
    pub container_port: u16,
    /// Transport protocol.
    pub protocol: Protocol,
    /// `hostIP` as given; `None` when empty. `0.0.0.0` and `::` mean "any address of that
    /// family" (see [`Mapping::applies_to`] and [`Mapping::dst`]).
    pub host_ip: Option<IpAddr>,
}

impl Mapping {
    /// Whether the mapping is installed for containers addresses of `family`: a `hostIP` of
    /// the other family skips it (as does `0.0.0.0` for IPv6 and `::` for IPv4).
    pub fn applies_to(&self, family: IpFamily) -> bool {
        self.host_ip.is_none_or(|ip| IpFamily::of(&ip) == family)
    }

    /// The host address traffic must be sent to, `None` for any (no `hostIP`, `0.0.0.0`,
    /// `::`).
    pub fn dst(&self) -> Option<IpAddr> {
        self.host_ip.filter(|ip| !ip.is_unspecified())
    }
}

/// The backend as requested by `backend` (before detection).
fn parse_backend(s: &str) -> Result<Backend, ConfigError> {
    match s {
        "iptables" => Ok(Backend::Iptables),
        "nftables" => Ok(Backend::Nftables),
        other => Err(ConfigError::UnknownBackend(other.to_owned())),
    }
}

/// The name the reference uses for a backend.
pub fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Iptables => "iptables",
        Backend::Nftables => "nftables",
    }
}

/// Which backend a list of conditions is written for: iptables when the first token starts
/// with `-` or `!`, nftables otherwise; `None` when empty (the reference's
/// `detectBackendOfConditions`, extended with `!` which starts negated iptables matches and
/// never an nft expression).
pub fn conditions_backend(conds: &[String]) -> Option<Backend> {
    let first = conds.first()?;
    match first.as_bytes().first() {
        None => None,
        Some(b'-' | b'!') => Some(Backend::Iptables),
        Some(_) => Some(Backend::Nftables),
    }
}

/// The validated configuration of one invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct PortmapConf {
    /// Network name (part of chain names and comments).
    pub name: String,
    /// `cniVersion`.
    pub cni_version: Version,
    /// The firewall backend, after detection when `backend` was not given.
    pub backend: Backend,
    /// `snat` (default true): masquerade hairpin and localhost traffic.
    pub snat: bool,
    /// `masqAll`: masquerade mapped traffic from any source.
    pub masq_all: bool,
    /// `markMasqBit` (default 13).
    pub mark_masq_bit: u8,
    /// `externalSetMarkChain` (iptables only).
    pub external_set_mark_chain: Option<String>,
    /// `conditionsV4`, as given.
    pub conditions_v4: Vec<String>,
    /// `conditionsV6`, as given.
    pub conditions_v6: Vec<String>,
    /// `runtimeConfig.portMappings`, validated, in order.
    pub mappings: Vec<Mapping>,
    /// DEL only ([`PortmapConf::from_netconf_for_del`]): `portMappings` held entries that do
    /// not validate (left out of `mappings`). Always false for the other verbs, which refuse
    /// such a config.
    pub unvalidated_mappings: bool,
    /// The previous result, if any.
    pub prev_result: Option<CniResult>,
    /// The container's IPv4 address (with prefix) chosen from `prevResult`.
    pub container_v4: Option<IpNet>,
    /// The container's IPv6 address (with prefix) chosen from `prevResult`.
    pub container_v6: Option<IpNet>,
}

fn field<T: DeserializeOwned>(m: &Map<String, Value>, key: &str) -> Result<Option<T>, ConfigError> {
    match get_ci(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(ConfigError::Json),
    }
}

impl PortmapConf {
    /// Parses and validates stdin as the reference's `parseConfig` does, in its order.
    /// `ifname` is `CNI_IFNAME` (to pick the container address); `detect` is asked for the
    /// default backend only when `backend` is absent.
    pub fn parse(
        stdin: &[u8],
        ifname: &str,
        detect: &mut dyn FnMut() -> Backend,
    ) -> Result<PortmapConf, ConfigError> {
        let conf = NetConf::from_slice(stdin).map_err(ConfigError::Json)?;
        PortmapConf::from_netconf(&conf, ifname, detect)
    }

    /// As [`PortmapConf::parse`], from the generic parse the skel already made.
    pub fn from_netconf(
        conf: &NetConf,
        ifname: &str,
        detect: &mut dyn FnMut() -> Backend,
    ) -> Result<PortmapConf, ConfigError> {
        PortmapConf::build(conf, ifname, detect, false)
    }

    /// The configuration DEL works from: what ADD would refuse does not make DEL fail (the
    /// spec: DEL must clean up what it can, and a runtime stops at the first failing DEL).
    /// Mappings that do not validate are left out and
    /// [`unvalidated_mappings`](PortmapConf::unvalidated_mappings) is set, so DEL finds the
    /// attachment's state by its owner instead of computing it from the mappings; an invalid
    /// `markMasqBit`, `externalSetMarkChain`, `backend`, options of the other backend, keys
    /// of the wrong type and an unreadable `prevResult` fall back to the defaults (DEL
    /// cleans both backends anyway). Only stdin that is not a JSON object is an error (the
    /// skel refused it before).
    pub fn from_netconf_for_del(
        conf: &NetConf,
        ifname: &str,
        detect: &mut dyn FnMut() -> Backend,
    ) -> Result<PortmapConf, ConfigError> {
        PortmapConf::build(conf, ifname, detect, true)
    }

    fn build(
        conf: &NetConf,
        ifname: &str,
        detect: &mut dyn FnMut() -> Backend,
        lenient: bool,
    ) -> Result<PortmapConf, ConfigError> {
        // In lenient mode (DEL) a value that does not validate counts as absent.
        fn soft<T>(
            r: Result<Option<T>, ConfigError>,
            lenient: bool,
        ) -> Result<Option<T>, ConfigError> {
            match r {
                Err(_) if lenient => Ok(None),
                other => other,
            }
        }
        let m = &conf.extra;
        let backend: Option<String> = soft(field(m, "backend"), lenient)?;
        let snat: Option<bool> = soft(field(m, "snat"), lenient)?;
        let conditions_v4: Option<Vec<String>> = soft(field(m, "conditionsV4"), lenient)?;
        let conditions_v6: Option<Vec<String>> = soft(field(m, "conditionsV6"), lenient)?;
        let masq_all: Option<bool> = soft(field(m, "masqAll"), lenient)?;
        let mut mark_bit: Option<i64> = soft(field(m, "markMasqBit"), lenient)?;
        let mut external: Option<String> = soft(field(m, "externalSetMarkChain"), lenient)?;
        let mut unvalidated_mappings = false;
        let raw_maps = match conf.runtime_config().port_mappings() {
            Ok(v) => v,
            Err(_) if lenient => {
                unvalidated_mappings = true;
                Vec::new()
            }
            Err(e) => return Err(ConfigError::Json(e)),
        };
        let prev_result = match conf.prev_result() {
            Ok(r) => r,
            Err(_) if lenient => None,
            Err(e) => return Err(ConfigError::PrevResult(e)),
        };

        if mark_bit.is_some() && external.is_some() {
            if !lenient {
                return Err(ConfigError::MarkBitWithExternalChain);
            }
            mark_bit = None;
        }
        if let Some(chain) = &external
            && !is_chain_name(chain)
        {
            if !lenient {
                return Err(ConfigError::ExternalChain(chain.clone()));
            }
            external = None;
        }
        let mark_bit = mark_bit.unwrap_or(i64::from(DEFAULT_MARK_BIT));
        let mark_masq_bit = match u8::try_from(mark_bit).ok().filter(|b| *b <= 31) {
            Some(b) => b,
            None if lenient => DEFAULT_MARK_BIT,
            None => return Err(ConfigError::MarkBitRange),
        };

        let conditions_v4 = conditions_v4.unwrap_or_default();
        let conditions_v6 = conditions_v6.unwrap_or_default();
        let backend = match resolve_backend(
            backend.as_deref(),
            external.is_some(),
            &conditions_v4,
            &conditions_v6,
            detect,
        ) {
            Ok(b) => b,
            Err(_) if lenient => match backend.as_deref().map(parse_backend) {
                Some(Ok(b)) => b,
                _ => detect(),
            },
            Err(e) => return Err(e),
        };

        let mut mappings = Vec::with_capacity(raw_maps.len());
        for pm in &raw_maps {
            match validate_mapping(pm) {
                Ok(m) => mappings.push(m),
                Err(_) if lenient => unvalidated_mappings = true,
                Err(e) => return Err(e),
            }
        }

        let (container_v4, container_v6) = match &prev_result {
            Some(r) => container_addresses(r, ifname),
            None => (None, None),
        };

        Ok(PortmapConf {
            name: conf.name.clone(),
            cni_version: conf.version(),
            backend,
            snat: snat.unwrap_or(true),
            masq_all: masq_all.unwrap_or(false),
            mark_masq_bit,
            external_set_mark_chain: external,
            conditions_v4,
            conditions_v6,
            mappings,
            unvalidated_mappings,
            prev_result,
            container_v4,
            container_v6,
        })
    }

    /// Whether the config asks for any port mapping (valid or, for DEL, not).
    pub fn has_mappings(&self) -> bool {
        !self.mappings.is_empty() || self.unvalidated_mappings
    }

    /// The container address of `family`, if it has one.
    pub fn container(&self, family: IpFamily) -> Option<IpNet> {
        match family {
            IpFamily::V4 => self.container_v4,
            IpFamily::V6 => self.container_v6,
        }
    }

    /// The conditions for `family`.
    pub fn conditions(&self, family: IpFamily) -> &[String] {
        match family {
            IpFamily::V4 => &self.conditions_v4,
            IpFamily::V6 => &self.conditions_v6,
        }
    }

    /// The mark value `1 << markMasqBit`.
    pub fn mark(&self) -> u32 {
        1u32 << self.mark_masq_bit
    }

    /// The mappings installed for a container address of `family`, in order.
    pub fn mappings_for(&self, family: IpFamily) -> impl Iterator<Item = &Mapping> + '_ {
        self.mappings.iter().filter(move |m| m.applies_to(family))
    }

    /// The UDP host ports, without duplicates, in order of appearance.
    pub fn udp_host_ports(&self) -> Vec<u16> {
        let mut out = Vec::new();
        for m in &self.mappings {
            if m.protocol == Protocol::Udp && !out.contains(&m.host_port) {
                out.push(m.host_port);
            }
        }
        out
    }
}

/// One entry of `runtimeConfig.portMappings`, validated as the reference does, in its order.
fn validate_mapping(pm: &cni_types::capabilities::PortMapping) -> Result<Mapping, ConfigError> {
    if !(1..=65535).contains(&pm.container_port) {
        return Err(ConfigError::ContainerPort(pm.container_port));
    }
    if !(1..=65535).contains(&pm.host_port) {
        return Err(ConfigError::HostPort(pm.host_port));
    }
    let protocol =
        Protocol::parse(&pm.protocol).ok_or_else(|| ConfigError::Protocol(pm.protocol.clone()))?;
    let host_ip = match pm.host_ip.trim() {
        "" => None,
        s => Some(
            s.parse::<IpAddr>()
                .map_err(|_| ConfigError::HostIp(pm.host_ip.clone()))?,
        ),
    };
    Ok(Mapping {
        host_port: u16::try_from(pm.host_port).unwrap_or_default(),
        container_port: u16::try_from(pm.container_port).unwrap_or_default(),
        protocol,
        host_ip,
    })
}

/// The reference's `validateBackend`: options of the wrong backend are an error; without
/// `backend`, `detect` decides.
fn resolve_backend(
    requested: Option<&str>,
    has_external_chain: bool,
    conditions_v4: &[String],
    conditions_v6: &[String],
    detect: &mut dyn FnMut() -> Backend,
) -> Result<Backend, ConfigError> {
    let mut ipt_opts = Vec::new();
    let mut nft_opts = Vec::new();
    if has_external_chain {
        ipt_opts.push("externalSetMarkChain");
    }
    for (key, conds) in [
        ("conditionsV4", conditions_v4),
        ("conditionsV6", conditions_v6),
    ] {
        match conditions_backend(conds) {
            Some(Backend::Iptables) => ipt_opts.push(key),
            Some(Backend::Nftables) => nft_opts.push(key),
            None => {}
        }
    }
    let (name, backend) = match requested {
        Some(s) => (s.to_owned(), parse_backend(s).ok()),
        None => {
            let b = detect();
            (backend_name(b).to_owned(), Some(b))
        }
    };
    // As the reference: anything that is not "iptables" counts as nftables here.
    let (wrong, other) = if backend == Some(Backend::Iptables) {
        (nft_opts, "nftables")
    } else {
        (ipt_opts, "iptables")
    };
    if !wrong.is_empty() {
        return Err(ConfigError::WrongBackendOptions {
            backend: name,
            other,
            options: wrong,
        });
    }
    backend.ok_or(ConfigError::UnknownBackend(name))
}

/// The reference's choice of container addresses: per family the first address of
/// `prevResult.ips` whose interface (when its index is valid) is `ifname` inside a sandbox.
pub fn container_addresses(result: &CniResult, ifname: &str) -> (Option<IpNet>, Option<IpNet>) {
    let mut v4 = None;
    let mut v6 = None;
    for ip in &result.ips {
        let is_v4 = ip.address.addr().is_ipv4();
        if (is_v4 && v4.is_some()) || (!is_v4 && v6.is_some()) {
            continue;
        }
        if let Some(idx) = ip.interface
            && let Some(iface) = result.interfaces.get(idx)
            && (iface.name != ifname || iface.sandbox.is_empty())
        {
            continue;
        }
        if is_v4 {
            v4 = Some(ip.address);
        } else {
            v6 = Some(ip.address);
        }
    }
    (v4, v6)
}

#[cfg(test)]
mod tests;
