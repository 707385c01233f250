//! The bridge plugin's configuration: the raw JSON keys of the reference, parsed once into a
//! validated [`BridgeConf`].
//!
//! Keys are matched as Go's `encoding/json` matches them: the exact spelling first, otherwise
//! ignoring ASCII case (`isgateway` works as it does with the Go plugin). Unknown keys are
//! ignored (they belong to other plugins of a chain).
//!
//! What the reference only checks when it sets things up (`hairpinMode` with `promiscMode`,
//! `ipam` with `disableContainerInterface`, the `ipMasqBackend` name, the container MAC) is
//! kept raw here and checked by ADD, so that DEL of such a config still releases the IPAM
//! allocation, as with the reference. DEL and GC go further
//! ([`BridgeConf::parse_for_teardown`]): a key only ADD uses never fails them (the reference
//! fails DEL on a bad `vlan`, `vlanTrunk`, a key of the wrong type or unknown `CNI_ARGS`, and a
//! runtime then leaks the pod).

use cni_types::capabilities::get_ci;
use cni_types::{CniArgs, CniResult, Dns, NetConf, Version};
use serde_json::{Map, Value};

use crate::error::{BridgeError, ConfigError, MacProblem, VlanTrunkError};

/// The bridge name used when the config names none.
pub const DEFAULT_BRIDGE: &str = "cni0";

/// Which firewall backend programs `ipMasq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MasqBackend {
    /// One `iptables-restore --noflush` per family, chains `CNI-<hash>`: what every version of
    /// the Go plugin can tear down.
    Iptables,
    /// One nf_tables netlink transaction of map elements, tables `ip`/`ip6 cni_bridge_masq`
    /// (see [`crate::masq`]).
    Nftables,
}

impl MasqBackend {
    /// Parses `iptables` / `nftables` (exact, as the reference).
    pub fn parse(s: &str) -> Result<MasqBackend, BridgeError> {
        match s {
            "iptables" => Ok(MasqBackend::Iptables),
            "nftables" => Ok(MasqBackend::Nftables),
            other => Err(ConfigError::MasqBackend(other.to_owned()).into()),
        }
    }
}

/// The validated bridge configuration. Build it with [`BridgeConf::parse`].
#[derive(Debug, Clone, PartialEq)]
pub struct BridgeConf {
    /// Network name.
    pub name: String,
    /// The config's `cniVersion` (0.1.0 when absent).
    pub version: Version,
    /// `bridge`: the bridge device name (default `cni0`).
    pub bridge: String,
    /// `isGateway` (true when `isDefaultGateway` is).
    pub is_gateway: bool,
    /// `isDefaultGateway`.
    pub is_default_gateway: bool,
    /// `forceAddress`.
    pub force_address: bool,
    /// `ipMasq`.
    pub ip_masq: bool,
    /// `ipMasqBackend` as written (checked by ADD, see [`BridgeConf::masq_backend`]).
    pub ip_masq_backend: Option<String>,
    /// `mtu`; `None` for the kernel default.
    pub mtu: Option<u32>,
    /// `hairpinMode`.
    pub hairpin_mode: bool,
    /// `promiscMode`.
    pub promisc_mode: bool,
    /// `vlan`; `None` when 0 or absent.
    pub vlan: Option<u16>,
    /// `vlanTrunk`, expanded and sorted; `Some` (maybe empty) whenever the key is present,
    /// which turns VLAN filtering on as in the reference.
    pub vlan_trunk: Option<Vec<u16>>,
    /// `preserveDefaultVlan` (default true, as the reference).
    pub preserve_default_vlan: bool,
    /// `enabledad`.
    pub enable_dad: bool,
    /// `macspoofchk`.
    pub mac_spoof_check: bool,
    /// `disableContainerInterface`.
    pub disable_container_interface: bool,
    /// `portIsolation`.
    pub port_isolation: bool,
    /// `ipam.type`; `None` means L2 only.
    pub ipam_type: Option<String>,
    /// The container MAC as written: `runtimeConfig.mac`, else `args.cni.mac`, else CNI_ARGS
    /// `MAC` (parsed by ADD, see [`BridgeConf::container_mac`]).
    pub mac: Option<String>,
    /// `dns`, when set: replaces what IPAM returned.
    pub dns: Option<Dns>,
    /// `prevResult`, raw (parsed by CHECK).
    pub prev_result: Option<Value>,
    /// GC's valid attachments, when the config carries them (`null` is an empty list).
    pub valid_attachments: Option<Vec<cni_types::Attachment>>,
    /// The config bytes as received: what IPAM is given.
    pub raw: Vec<u8>,
}

fn bool_key(m: &Map<String, Value>, key: &str, default: bool) -> Result<bool, BridgeError> {
    match get_ci(m, key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(type_error(key, other, "bool")),
    }
}

fn int_key(m: &Map<String, Value>, key: &str) -> Result<i64, BridgeError> {
    match get_ci(m, key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
            ConfigError::NotAnInt {
                key: key.to_owned(),
                number: n.to_string(),
            }
            .into()
        }),
        Some(other) => Err(type_error(key, other, "int")),
    }
}

fn string_key(m: &Map<String, Value>, key: &str) -> Result<Option<String>, BridgeError> {
    match get_ci(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(type_error(key, other, "string")),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_error(key: &str, v: &Value, want: &'static str) -> BridgeError {
    ConfigError::Type {
        key: key.to_owned(),
        found: json_kind(v),
        want,
    }
    .into()
}

/// Expands `vlanTrunk` as the reference's `collectVlanTrunk`: ranges and single ids, each
/// 1..=4094, deduplicated and sorted. `None` when the list yields no VLAN.
pub fn collect_vlan_trunk(items: &[Value]) -> Result<Option<Vec<u16>>, BridgeError> {
    let err = |e: VlanTrunkError| BridgeError::from(ConfigError::VlanTrunk(e));
    let mut ids = std::collections::BTreeSet::new();
    for item in items {
        let Value::Object(m) = item else {
            return Err(type_error("vlanTrunk", item, "VlanTrunk"));
        };
        let get = |k: &str| -> Result<Option<i64>, BridgeError> {
            match get_ci(m, k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => Ok(n.as_i64()),
                Some(other) => Err(type_error(k, other, "int")),
            }
        };
        let (min, max, id) = (get("minID")?, get("maxID")?, get("id")?);
        match (min, max) {
            (Some(min), Some(max)) => {
                if !(1..=4094).contains(&min) {
                    return Err(err(VlanTrunkError::MinId));
                }
                if !(1..=4094).contains(&max) {
                    return Err(err(VlanTrunkError::MaxId));
                }
                if max < min {
                    return Err(err(VlanTrunkError::MinAboveMax));
                }
                for v in min..=max {
                    ids.insert(v as u16);
                }
            }
            (None, Some(_)) => {
                return Err(err(VlanTrunkError::MinMissing));
            }
            (Some(_), None) => {
                return Err(err(VlanTrunkError::MaxMissing));
            }
            (None, None) => {}
        }
        if let Some(id) = id {
            if !(1..=4094).contains(&id) {
                return Err(err(VlanTrunkError::Id));
            }
            ids.insert(id as u16);
        }
    }
    Ok((!ids.is_empty()).then(|| ids.into_iter().collect()))
}

/// GC's valid attachments: `cni.dev/valid-attachments` (or libcni's `cni.dev/attachments`).
/// `None` when absent; `null` is an empty list (libcni marshals an empty Go slice so).
fn valid_attachments(
    conf: &NetConf,
    raw: &[u8],
) -> Result<Option<Vec<cni_types::Attachment>>, BridgeError> {
    if let Some(v) = &conf.valid_attachments {
        return Ok(Some(v.clone()));
    }
    // The generic parse cannot tell `null` from absent: look at the bytes (only when the key
    // may be there at all).
    if !raw.windows(8).any(|w| w == b"cni.dev/") {
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(raw).map_err(ConfigError::Parse)?;
    let found = v
        .get("cni.dev/valid-attachments")
        .or_else(|| v.get("cni.dev/attachments"));
    match found {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(Vec::new())),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| ConfigError::Parse(e).into()),
    }
}

/// `vlan` and `vlanTrunk` (see the fields of [`BridgeConf`]).
type Vlans = (Option<u16>, Option<Vec<u16>>);

/// `vlan` and `vlanTrunk`, checked as the reference's `loadNetConf` does.
fn vlans(m: &Map<String, Value>) -> Result<Vlans, BridgeError> {
    let vlan = int_key(m, "vlan")?;
    if !(0..=4094).contains(&vlan) {
        return Err(ConfigError::Vlan(vlan).into());
    }
    let vlan_trunk = match get_ci(m, "vlanTrunk") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(collect_vlan_trunk(items)?.unwrap_or_default()),
        Some(other) => return Err(type_error("vlanTrunk", other, "[]*main.VlanTrunk")),
    };
    if vlan > 0 && vlan_trunk.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(ConfigError::VlanAndTrunk.into());
    }
    Ok(((vlan > 0).then_some(vlan as u16), vlan_trunk))
}

/// `mtu`; `None` for 0 or absent.
fn mtu(m: &Map<String, Value>) -> Result<Option<u32>, BridgeError> {
    match int_key(m, "mtu")? {
        0 => Ok(None),
        n => u32::try_from(n)
            .map(Some)
            .map_err(|_| ConfigError::Mtu(n).into()),
    }
}

/// The container MAC as written: CNI_ARGS `MAC`, overridden by `args.cni.mac`, overridden by
/// `runtimeConfig.mac`.
fn container_mac_text(conf: &NetConf, cni_args: &str) -> Result<Option<String>, BridgeError> {
    let mut mac = None;
    if !cni_args.is_empty() {
        let args = CniArgs::parse_known(cni_args, &["MAC"]).map_err(BridgeError::Args)?;
        if let Some(v) = args.get("MAC").filter(|v| !v.is_empty()) {
            mac = Some(v.to_string());
        }
    }
    if let Some(v) = conf
        .args
        .as_ref()
        .and_then(|a| match a {
            Value::Object(o) => get_ci(o, "cni"),
            _ => None,
        })
        .and_then(|c| match c {
            Value::Object(o) => get_ci(o, "mac"),
            _ => None,
        })
    {
        match v {
            Value::String(s) if !s.is_empty() => mac = Some(s.clone()),
            Value::String(_) | Value::Null => {}
            other => return Err(type_error("args.cni.mac", other, "string")),
        }
    }
    if let Some(rc) = &conf.runtime_config {
        match get_ci(&rc.0, "mac") {
            Some(Value::String(s)) if !s.is_empty() => mac = Some(s.clone()),
            None | Some(Value::String(_)) | Some(Value::Null) => {}
            Some(other) => return Err(type_error("runtimeConfig.mac", other, "string")),
        }
    }
    Ok(mac)
}

/// What a config is parsed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// ADD, CHECK, STATUS: every key is validated, as the reference's `loadNetConf`.
    Setup,
    /// DEL and GC: only the keys that say what to tear down are validated (see
    /// [`BridgeConf::parse_for_teardown`]).
    Teardown,
}

impl Purpose {
    /// A key that only setting up uses: for teardown, a bad value gives way to `default`.
    fn setup_key<T>(self, r: Result<T, BridgeError>, default: T) -> Result<T, BridgeError> {
        match r {
            Err(_) if self == Purpose::Teardown => Ok(default),
            r => r,
        }
    }

    /// A flag that decides what teardown looks at (`ipMasq`, `macspoofchk`): for teardown,
    /// a value of the wrong type counts as set, so whatever it may have set up is removed.
    fn teardown_flag(self, r: Result<bool, BridgeError>) -> Result<bool, BridgeError> {
        self.setup_key(r, true)
    }
}

impl BridgeConf {
    /// Parses and validates the config bytes a runtime sent, with the raw `CNI_ARGS`
    /// (for `MAC=`). Errors read as the reference's.
    pub fn parse(stdin: &[u8], cni_args: &str) -> Result<BridgeConf, BridgeError> {
        let conf = NetConf::from_slice(stdin).map_err(ConfigError::Parse)?;
        Self::build(conf, stdin.to_vec(), cni_args, Purpose::Setup)
    }

    /// Parses a config for DEL or GC: what ADD would refuse (a VLAN id out of range, a bad
    /// `vlanTrunk`, `mtu` or container MAC, unknown `CNI_ARGS`, a key of the wrong type) does
    /// not stop the teardown, so a runtime that repeats an ADD's bad input on DEL does not
    /// leak the pod (a DEL that fails stops the runtime's teardown of the other networks).
    /// Such keys take their default; `ipMasq` and `macspoofchk` of the wrong type count as
    /// set. What teardown needs is still checked: the JSON itself, `name`, `ipam`, GC's
    /// attachments.
    pub fn parse_for_teardown(stdin: &[u8], cni_args: &str) -> Result<BridgeConf, BridgeError> {
        let conf = NetConf::from_slice(stdin).map_err(ConfigError::Parse)?;
        Self::build(conf, stdin.to_vec(), cni_args, Purpose::Teardown)
    }

    /// Builds from an already parsed generic config (`raw` are its bytes, handed to IPAM).
    pub fn from_netconf(
        conf: NetConf,
        raw: Vec<u8>,
        cni_args: &str,
    ) -> Result<BridgeConf, BridgeError> {
        Self::build(conf, raw, cni_args, Purpose::Setup)
    }

    /// [`BridgeConf::from_netconf`] for DEL and GC (see [`BridgeConf::parse_for_teardown`]).
    pub fn from_netconf_for_teardown(
        conf: NetConf,
        raw: Vec<u8>,
        cni_args: &str,
    ) -> Result<BridgeConf, BridgeError> {
        Self::build(conf, raw, cni_args, Purpose::Teardown)
    }

    fn build(
        conf: NetConf,
        raw: Vec<u8>,
        cni_args: &str,
        purpose: Purpose,
    ) -> Result<BridgeConf, BridgeError> {
        let m = &conf.extra;
        let (vlan, vlan_trunk) = purpose.setup_key(vlans(m), (None, None))?;
        let mtu = purpose.setup_key(mtu(m), None)?;
        let mac = purpose.setup_key(container_mac_text(&conf, cni_args), None)?;
        let setup_bool =
            |key: &str, default: bool| purpose.setup_key(bool_key(m, key, default), default);
        let is_default_gateway = setup_bool("isDefaultGateway", false)?;
        let valid_attachments = valid_attachments(&conf, &raw)?;
        Ok(BridgeConf {
            version: conf.version(),
            bridge: purpose
                .setup_key(string_key(m, "bridge"), None)?
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| DEFAULT_BRIDGE.to_string()),
            is_gateway: setup_bool("isGateway", false)? || is_default_gateway,
            is_default_gateway,
            force_address: setup_bool("forceAddress", false)?,
            ip_masq: purpose.teardown_flag(bool_key(m, "ipMasq", false))?,
            ip_masq_backend: purpose.setup_key(string_key(m, "ipMasqBackend"), None)?,
            mtu,
            hairpin_mode: setup_bool("hairpinMode", false)?,
            promisc_mode: setup_bool("promiscMode", false)?,
            vlan,
            vlan_trunk,
            preserve_default_vlan: setup_bool("preserveDefaultVlan", true)?,
            enable_dad: setup_bool("enabledad", false)?,
            mac_spoof_check: purpose.teardown_flag(bool_key(m, "macspoofchk", false))?,
            disable_container_interface: setup_bool("disableContainerInterface", false)?,
            port_isolation: setup_bool("portIsolation", false)?,
            ipam_type: conf.ipam_type().map(str::to_string),
            mac,
            dns: conf.dns.clone().filter(|d| !d.is_empty()),
            prev_result: conf.prev_result.clone().filter(|v| !v.is_null()),
            valid_attachments,
            name: conf.name,
            raw,
        })
    }

    /// Whether IPAM is configured (layer 3).
    pub fn is_layer3(&self) -> bool {
        self.ipam_type.is_some()
    }

    /// Whether the bridge needs VLAN filtering.
    pub fn vlan_filtering(&self) -> bool {
        self.vlan.is_some() || self.vlan_trunk.is_some()
    }

    /// The trunk VLANs (empty when none).
    pub fn trunk_vlans(&self) -> &[u16] {
        self.vlan_trunk.as_deref().unwrap_or(&[])
    }

    /// The configured backend, `None` when unset; an unknown name is an error (at ADD, as the
    /// reference).
    pub fn masq_backend(&self) -> Result<Option<MasqBackend>, BridgeError> {
        self.ip_masq_backend
            .as_deref()
            .map(MasqBackend::parse)
            .transpose()
    }

    /// The container MAC, parsed; `None` when none was given (ADD then picks a random
    /// locally administered one).
    pub fn container_mac(&self) -> Result<Option<[u8; 6]>, BridgeError> {
        match &self.mac {
            None => Ok(None),
            Some(s) => {
                let bad = |problem| ConfigError::Mac {
                    mac: s.clone(),
                    problem,
                };
                let m = cni_linux::netlink::mac::parse(s).map_err(|_| bad(MacProblem::Invalid))?;
                // The kernel refuses these for an interface (EADDRNOTAVAIL), but only once
                // ADD is under way: refuse them with the config.
                if !cni_linux::netlink::mac::is_unicast(&m) || m == [0; 6] {
                    return Err(bad(MacProblem::NotUnicast).into());
                }
                Ok(Some(m))
            }
        }
    }

    /// The previous result (CHECK), parsed with the config's version when it names none.
    pub fn prev_result(&self) -> Result<Option<CniResult>, BridgeError> {
        match &self.prev_result {
            None => Ok(None),
            Some(v) => CniResult::from_value(v.clone(), Some(self.version))
                .map(Some)
                .map_err(BridgeError::Cni),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<BridgeConf, BridgeError> {
        BridgeConf::parse(json.as_bytes(), "")
    }

    #[test]
    fn defaults() {
        let c = parse(r#"{"cniVersion":"1.0.0","name":"n","type":"bridge"}"#).unwrap();
        assert_eq!(c.bridge, "cni0");
        assert!(!c.is_gateway && !c.ip_masq && !c.is_layer3());
        assert!(c.preserve_default_vlan);
        assert_eq!(c.vlan, None);
        assert_eq!(c.mtu, None);
        assert!(!c.vlan_filtering());
        assert_eq!(c.version, Version::V1_0_0);
    }

    #[test]
    fn keys_are_case_insensitive_like_go() {
        let c = parse(
            r#"{"name":"n","type":"bridge","bridge":"br9","isdefaultgateway":true,"IPMASQ":true,
                "mtu":1400,"ipam":{"type":"host-local"}}"#,
        )
        .unwrap();
        assert_eq!(c.bridge, "br9");
        assert!(c.is_gateway && c.is_default_gateway && c.ip_masq);
        assert_eq!(c.mtu, Some(1400));
        assert_eq!(c.ipam_type.as_deref(), Some("host-local"));
    }

    #[test]
    fn empty_ipam_type_is_layer2() {
        let c = parse(r#"{"name":"n","type":"bridge","ipam":{}}"#).unwrap();
        assert!(!c.is_layer3());
    }

    #[test]
    fn vlan_range() {
        assert!(parse(r#"{"name":"n","vlan":0}"#).is_ok());
        for (v, msg) in [
            (-100, "invalid VLAN ID -100 (must be between 0 and 4094)"),
            (5000, "invalid VLAN ID 5000 (must be between 0 and 4094)"),
        ] {
            let e = parse(&format!(r#"{{"name":"n","vlan":{v}}}"#)).unwrap_err();
            assert_eq!(e.to_string(), msg);
        }
        let c = parse(r#"{"name":"n","vlan":100}"#).unwrap();
        assert_eq!(c.vlan, Some(100));
        assert!(c.vlan_filtering());
    }

    #[test]
    fn vlan_trunk_parsing() {
        let c = parse(r#"{"name":"n","vlanTrunk":[]}"#).unwrap();
        assert_eq!(c.vlan_trunk, Some(vec![]));
        assert!(
            c.vlan_filtering(),
            "an empty trunk list still enables filtering"
        );
        let c = parse(r#"{"name":"n","vlanTrunk":[{"minID":101,"maxID":105}]}"#).unwrap();
        assert_eq!(c.trunk_vlans(), &[101, 102, 103, 104, 105]);
        let c = parse(r#"{"name":"n","vlanTrunk":[{"id":101}]}"#).unwrap();
        assert_eq!(c.trunk_vlans(), &[101]);
        let c =
            parse(r#"{"name":"n","vlanTrunk":[{"id":101},{"minID":200,"maxID":202},{"id":201}]}"#)
                .unwrap();
        assert_eq!(c.trunk_vlans(), &[101, 200, 201, 202]);
    }

    #[test]
    fn vlan_edges_and_preserve_default_vlan() {
        let c = parse(r#"{"name":"n","vlan":4094,"preserveDefaultVlan":false}"#).unwrap();
        assert_eq!(c.vlan, Some(4094));
        assert!(!c.preserve_default_vlan && c.vlan_filtering());
        let c = parse(r#"{"name":"n","vlanTrunk":[{"minID":1,"maxID":1},{"id":4094}]}"#).unwrap();
        assert_eq!(c.trunk_vlans(), &[1, 4094]);
        // `null` is no trunk (no filtering), as Go's nil slice; vlan 0 is no VLAN.
        let c = parse(r#"{"name":"n","vlan":0,"vlanTrunk":null}"#).unwrap();
        assert!(!c.vlan_filtering() && c.trunk_vlans().is_empty());
        // vlan with an empty trunk list is allowed (the trunk yields no VLAN).
        let c = parse(r#"{"name":"n","vlan":9,"vlanTrunk":[]}"#).unwrap();
        assert_eq!((c.vlan, c.trunk_vlans()), (Some(9), &[][..]));
        for bad in [
            r#""preserveDefaultVlan":"no""#,
            r#""vlan":1.5"#,
            r#""vlanTrunk":[{"id":"7"}]"#,
            r#""vlanTrunk":[7]"#,
            r#""vlanTrunk":{"id":7}"#,
        ] {
            let e = parse(&format!(r#"{{"name":"n",{bad}}}"#)).unwrap_err();
            assert_eq!(
                e.code(),
                cni_types::ErrorCode::InvalidNetworkConfig,
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn vlan_trunk_errors() {
        let cases = [
            (
                r#"[{"maxID":105}]"#,
                "minID and maxID should be configured simultaneously, minID is missing",
            ),
            (
                r#"[{"minID":101}]"#,
                "minID and maxID should be configured simultaneously, maxID is missing",
            ),
            (
                r#"[{"minID":-100,"maxID":105}]"#,
                "incorrect trunk minID parameter",
            ),
            (
                r#"[{"minID":100,"maxID":5000}]"#,
                "incorrect trunk maxID parameter",
            ),
            (
                r#"[{"minID":5000,"maxID":5005}]"#,
                "incorrect trunk minID parameter",
            ),
            (
                r#"[{"minID":105,"maxID":101}]"#,
                "minID is greater than maxID in trunk parameter",
            ),
            (r#"[{"id":-100}]"#, "incorrect trunk id parameter"),
            (r#"[{"id":4095}]"#, "incorrect trunk id parameter"),
        ];
        for (trunk, msg) in cases {
            let e = parse(&format!(r#"{{"name":"n","vlanTrunk":{trunk}}}"#)).unwrap_err();
            assert_eq!(e.to_string(), msg, "{trunk}");
        }
        let e = parse(r#"{"name":"n","vlan":100,"vlanTrunk":[{"id":101}]}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot set vlan and vlanTrunk at the same time"
        );
    }

    #[test]
    fn mac_precedence() {
        let base = r#""name":"n","type":"bridge""#;
        let c =
            BridgeConf::parse(format!("{{{base}}}").as_bytes(), "MAC=02:00:00:00:00:01").unwrap();
        assert_eq!(c.mac.as_deref(), Some("02:00:00:00:00:01"));
        let c = BridgeConf::parse(
            format!(r#"{{{base},"args":{{"cni":{{"mac":"02:00:00:00:00:02"}}}}}}"#).as_bytes(),
            "IgnoreUnknown=1;MAC=02:00:00:00:00:01;IP=10.0.0.2",
        )
        .unwrap();
        assert_eq!(c.mac.as_deref(), Some("02:00:00:00:00:02"));
        let c = BridgeConf::parse(
            format!(
                r#"{{{base},"args":{{"cni":{{"mac":"02:00:00:00:00:02"}}}},"runtimeConfig":{{"mac":"02:00:00:00:00:03"}}}}"#
            )
            .as_bytes(),
            "MAC=02:00:00:00:00:01",
        )
        .unwrap();
        assert_eq!(c.mac.as_deref(), Some("02:00:00:00:00:03"));
        assert_eq!(c.container_mac().unwrap(), Some([2, 0, 0, 0, 0, 3]));
        // Unknown CNI_ARGS without IgnoreUnknown fail, as LoadArgs does.
        let e = BridgeConf::parse(format!("{{{base}}}").as_bytes(), "K8S_POD_NAME=x").unwrap_err();
        assert_eq!(e.to_string(), "ARGS: unknown args [\"K8S_POD_NAME=x\"]");
        // A bad MAC is reported when it is used (ADD).
        let c = BridgeConf::parse(format!("{{{base}}}").as_bytes(), "MAC=zz").unwrap();
        assert!(c.container_mac().is_err());
        // Multicast and all-zero addresses cannot be an interface's (code 7, before ADD
        // touches anything).
        for bad in [
            "01:00:5e:00:00:01",
            "ff:ff:ff:ff:ff:ff",
            "00:00:00:00:00:00",
        ] {
            let c =
                BridgeConf::parse(format!("{{{base}}}").as_bytes(), &format!("MAC={bad}")).unwrap();
            let e = c.container_mac().unwrap_err();
            assert_eq!(
                e.code(),
                cni_types::ErrorCode::InvalidNetworkConfig,
                "{bad}"
            );
            assert!(e.to_string().contains("not a unicast address"), "{e}");
        }
    }

    #[test]
    fn masq_backend_is_checked_when_used() {
        let c = parse(r#"{"name":"n","ipMasq":true,"ipMasqBackend":"ebtables"}"#).unwrap();
        assert_eq!(
            c.masq_backend().unwrap_err().to_string(),
            "unknown ipmasq backend \"ebtables\""
        );
        let c = parse(r#"{"name":"n","ipMasqBackend":"nftables"}"#).unwrap();
        assert_eq!(c.masq_backend().unwrap(), Some(MasqBackend::Nftables));
    }

    #[test]
    fn wrong_types_are_errors() {
        let e = parse(r#"{"name":"n","isGateway":"yes"}"#).unwrap_err();
        assert!(e.to_string().contains("cannot unmarshal string"), "{e}");
        assert!(parse(r#"{"name":"n","mtu":-1}"#).is_err());
    }

    #[test]
    fn teardown_parse_ignores_what_only_add_uses() {
        let base =
            r#""cniVersion":"1.0.0","name":"n","type":"bridge","ipam":{"type":"host-local"}"#;
        // (extra keys, CNI_ARGS): each refused for ADD, each accepted for DEL and GC.
        let cases = [
            (r#""vlan":5000"#, ""),
            (r#""vlan":-1"#, ""),
            (r#""vlan":"100""#, ""),
            (r#""vlanTrunk":[{"minID":5,"maxID":1}]"#, ""),
            (r#""vlanTrunk":[{"id":4095}]"#, ""),
            (r#""vlanTrunk":{"id":3}"#, ""),
            (r#""vlan":3,"vlanTrunk":[{"id":4}]"#, ""),
            (r#""mtu":-1"#, ""),
            (r#""mtu":1e3"#, ""),
            (r#""mtu":"1500""#, ""),
            (r#""bridge":7"#, ""),
            (r#""isGateway":"yes""#, ""),
            (r#""isDefaultGateway":1"#, ""),
            (r#""hairpinMode":"on","promiscMode":[]"#, ""),
            (r#""preserveDefaultVlan":0,"enabledad":"no""#, ""),
            (
                r#""forceAddress":1,"portIsolation":1,"disableContainerInterface":1"#,
                "",
            ),
            (r#""ipMasqBackend":7"#, ""),
            (r#""args":{"cni":{"mac":7}}"#, ""),
            (r#""runtimeConfig":{"mac":false}"#, ""),
            ("", "K8S_POD_NAME=x"),
            ("", "MAC"),
        ];
        for (extra, args) in cases {
            let json = if extra.is_empty() {
                format!("{{{base}}}")
            } else {
                format!("{{{base},{extra}}}")
            };
            let e = BridgeConf::parse(json.as_bytes(), args)
                .expect_err(&format!("ADD accepts {extra} {args}"));
            let c = BridgeConf::parse_for_teardown(json.as_bytes(), args)
                .unwrap_or_else(|e| panic!("DEL refuses {extra} {args}: {e}"));
            assert_eq!(c.ipam_type.as_deref(), Some("host-local"), "{e}");
            assert!(!c.ip_masq && !c.mac_spoof_check, "{extra}");
        }
        // A teardown flag of the wrong type counts as set: whatever it set up goes.
        let c = BridgeConf::parse_for_teardown(
            format!(r#"{{{base},"ipMasq":"true","macspoofchk":1}}"#).as_bytes(),
            "",
        )
        .unwrap();
        assert!(c.ip_masq && c.mac_spoof_check);
        // Good values read the same for both purposes.
        let good = format!(
            r#"{{{base},"ipMasq":true,"macspoofchk":true,"vlan":7,"mtu":1400,"isGateway":true}}"#
        );
        assert_eq!(
            BridgeConf::parse(good.as_bytes(), "MAC=02:00:00:00:00:01").unwrap(),
            BridgeConf::parse_for_teardown(good.as_bytes(), "MAC=02:00:00:00:00:01").unwrap()
        );
        // What teardown needs is still checked.
        let bad_gc = format!(r#"{{{base},"cni.dev/valid-attachments":[{{"containerID":1}}]}}"#);
        assert!(BridgeConf::parse_for_teardown(bad_gc.as_bytes(), "").is_err());
        assert!(BridgeConf::parse_for_teardown(b"{", "").is_err());
    }

    #[test]
    fn gc_attachments_null_is_empty_absent_is_none() {
        let c = parse(r#"{"name":"n"}"#).unwrap();
        assert_eq!(c.valid_attachments, None);
        let c = parse(r#"{"name":"n","cni.dev/valid-attachments":null}"#).unwrap();
        assert_eq!(c.valid_attachments, Some(vec![]));
        let c =
            parse(r#"{"name":"n","cni.dev/attachments":[{"containerID":"a","ifname":"eth0"}]}"#)
                .unwrap();
        assert_eq!(c.valid_attachments.unwrap()[0].container_id, "a");
    }

    #[test]
    fn dns_and_prev_result() {
        let c = parse(
            r#"{"cniVersion":"0.4.0","name":"n","dns":{"nameservers":["1.1.1.1"]},
                "prevResult":{"ips":[{"version":"4","address":"10.0.0.2/24"}]}}"#,
        )
        .unwrap();
        assert_eq!(c.dns.as_ref().unwrap().nameservers, vec!["1.1.1.1"]);
        let pr = c.prev_result().unwrap().unwrap();
        assert_eq!(pr.ips[0].address.to_string(), "10.0.0.2/24");
        let c = parse(r#"{"name":"n","dns":{}}"#).unwrap();
        assert!(c.dns.is_none());
    }
}
