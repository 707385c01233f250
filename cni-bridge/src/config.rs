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
//! allocation, as with the reference.

use cni_types::capabilities::get_ci;
use cni_types::{CniArgs, CniResult, Dns, NetConf, Version};
use serde_json::{Map, Value};

use crate::error::BridgeError;

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
            other => Err(BridgeError::Config(format!(
                "unknown ipmasq backend {}",
                cni_linux::firewall::names::go_quote(other)
            ))),
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
            BridgeError::Config(format!(
                "failed to load netconf: json: cannot unmarshal number {n} into Go struct field NetConf.{key} of type int"
            ))
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

fn type_error(key: &str, v: &Value, want: &str) -> BridgeError {
    BridgeError::Config(format!(
        "failed to load netconf: json: cannot unmarshal {} into Go struct field NetConf.{key} of type {want}",
        json_kind(v)
    ))
}

/// Expands `vlanTrunk` as the reference's `collectVlanTrunk`: ranges and single ids, each
/// 1..=4094, deduplicated and sorted. `None` when the list yields no VLAN.
pub fn collect_vlan_trunk(items: &[Value]) -> Result<Option<Vec<u16>>, BridgeError> {
    let err = |m: &str| BridgeError::Config(m.to_string());
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
                    return Err(err("incorrect trunk minID parameter"));
                }
                if !(1..=4094).contains(&max) {
                    return Err(err("incorrect trunk maxID parameter"));
                }
                if max < min {
                    return Err(err("minID is greater than maxID in trunk parameter"));
                }
                for v in min..=max {
                    ids.insert(v as u16);
                }
            }
            (None, Some(_)) => {
                return Err(err(
                    "minID and maxID should be configured simultaneously, minID is missing",
                ));
            }
            (Some(_), None) => {
                return Err(err(
                    "minID and maxID should be configured simultaneously, maxID is missing",
                ));
            }
            (None, None) => {}
        }
        if let Some(id) = id {
            if !(1..=4094).contains(&id) {
                return Err(err("incorrect trunk id parameter"));
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
    let v: Value = serde_json::from_slice(raw)
        .map_err(|e| BridgeError::Config(format!("failed to load netconf: {e}")))?;
    let found = v
        .get("cni.dev/valid-attachments")
        .or_else(|| v.get("cni.dev/attachments"));
    match found {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(Vec::new())),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| BridgeError::Config(format!("failed to load netconf: {e}"))),
    }
}

impl BridgeConf {
    /// Parses and validates the config bytes a runtime sent, with the raw `CNI_ARGS`
    /// (for `MAC=`). Errors read as the reference's.
    pub fn parse(stdin: &[u8], cni_args: &str) -> Result<BridgeConf, BridgeError> {
        let conf = NetConf::from_slice(stdin)
            .map_err(|e| BridgeError::Config(format!("failed to load netconf: {e}")))?;
        Self::from_netconf(conf, stdin.to_vec(), cni_args)
    }

    /// Builds from an already parsed generic config (`raw` are its bytes, handed to IPAM).
    pub fn from_netconf(
        conf: NetConf,
        raw: Vec<u8>,
        cni_args: &str,
    ) -> Result<BridgeConf, BridgeError> {
        let m = &conf.extra;
        let vlan = int_key(m, "vlan")?;
        if !(0..=4094).contains(&vlan) {
            return Err(BridgeError::Config(format!(
                "invalid VLAN ID {vlan} (must be between 0 and 4094)"
            )));
        }
        let vlan_trunk = match get_ci(m, "vlanTrunk") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(collect_vlan_trunk(items)?.unwrap_or_default()),
            Some(other) => return Err(type_error("vlanTrunk", other, "[]*main.VlanTrunk")),
        };
        if vlan > 0 && vlan_trunk.as_ref().is_some_and(|v| !v.is_empty()) {
            return Err(BridgeError::Config(
                "cannot set vlan and vlanTrunk at the same time".into(),
            ));
        }
        let mtu = int_key(m, "mtu")?;
        let mtu = match mtu {
            0 => None,
            n => Some(u32::try_from(n).map_err(|_| {
                BridgeError::Config(format!(
                    "invalid MTU {n} (must be between 0 and 4294967295)"
                ))
            })?),
        };

        // MAC: CNI_ARGS, overridden by args.cni.mac, overridden by runtimeConfig.mac.
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

        let is_default_gateway = bool_key(m, "isDefaultGateway", false)?;
        let valid_attachments = valid_attachments(&conf, &raw)?;
        Ok(BridgeConf {
            version: conf.version(),
            bridge: string_key(m, "bridge")?
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| DEFAULT_BRIDGE.to_string()),
            is_gateway: bool_key(m, "isGateway", false)? || is_default_gateway,
            is_default_gateway,
            force_address: bool_key(m, "forceAddress", false)?,
            ip_masq: bool_key(m, "ipMasq", false)?,
            ip_masq_backend: string_key(m, "ipMasqBackend")?,
            mtu,
            hairpin_mode: bool_key(m, "hairpinMode", false)?,
            promisc_mode: bool_key(m, "promiscMode", false)?,
            vlan: (vlan > 0).then_some(vlan as u16),
            vlan_trunk,
            preserve_default_vlan: bool_key(m, "preserveDefaultVlan", true)?,
            enable_dad: bool_key(m, "enabledad", false)?,
            mac_spoof_check: bool_key(m, "macspoofchk", false)?,
            disable_container_interface: bool_key(m, "disableContainerInterface", false)?,
            port_isolation: bool_key(m, "portIsolation", false)?,
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
                let m = cni_linux::netlink::mac::parse(s).map_err(|_| {
                    BridgeError::Config(format!(
                        "failed to parse MAC address {s:?}: invalid MAC address"
                    ))
                })?;
                // The kernel refuses these for an interface (EADDRNOTAVAIL), but only once
                // ADD is under way: refuse them with the config.
                if !cni_linux::netlink::mac::is_unicast(&m) || m == [0; 6] {
                    return Err(BridgeError::Config(format!(
                        "failed to parse MAC address {s:?}: not a unicast address"
                    )));
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
