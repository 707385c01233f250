//! The plugin's configuration: stdin parsed once ([`TuningConf`]), then validated for ADD into
//! a [`Plan`].
//!
//! Keys are looked up like Go's `encoding/json` does (an exact match first, then one that
//! matches ignoring ASCII case). Precedence, as the reference's `parseConf`: the config's
//! keys, then for `mac` `CNI_ARGS` `MAC=`, then `runtimeConfig.mac`, then `args.cni.*`, which
//! overrides every key it names (`args.cni.sysctl` is merged into `sysctl`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use cni_types::capabilities::get_ci;
use cni_types::{CniArgs, CniResult, NetConf, Version};
use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::allowlist::Allowlist;
use crate::error::ConfigError;

/// The reference's default `dataDir`, where the original link attributes are saved.
pub const DEFAULT_DATA_DIR: &str = "/run/cni/tuning";

/// The configuration of one invocation, as the reference's `parseConf` reads it. DEL needs
/// nothing more; ADD and CHECK validate it further ([`TuningConf::plan`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TuningConf {
    /// Network name.
    pub name: String,
    /// `cniVersion`.
    pub cni_version: Version,
    /// `dataDir` (default [`DEFAULT_DATA_DIR`]).
    pub data_dir: PathBuf,
    /// `sysctl` merged with `args.cni.sysctl`, keys as given.
    pub sysctl: BTreeMap<String, String>,
    /// The MAC address as given by the winning source (empty: none).
    pub mac: Option<String>,
    /// `promisc`: only `true` changes anything (the reference never turns it off).
    pub promisc: bool,
    /// `mtu` (Go `int`; 0 means unset).
    pub mtu: i64,
    /// `allmulti`.
    pub allmulti: Option<bool>,
    /// `txQLen`.
    pub txqlen: Option<i64>,
    /// The previous result, if any.
    pub prev_result: Option<CniResult>,
}

/// One sysctl of a [`Plan`]: the key as configured and the file it resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    /// The key as configured (`net.ipv4.conf.IFNAME.arp_notify`).
    pub key: String,
    /// The file, `/proc/sys/net/...`.
    pub path: String,
    /// The value to write.
    pub value: String,
}

/// What ADD changes in the pod, validated: nothing here can be refused for its form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Sysctls, in key order.
    pub sysctls: Vec<Sysctl>,
    /// New MAC address: the bytes and the text as given (which the result reports).
    pub mac: Option<([u8; 6], String)>,
    /// Turn promiscuous mode on.
    pub promisc: bool,
    /// New MTU.
    pub mtu: Option<u32>,
    /// New all-multicast mode.
    pub allmulti: Option<bool>,
    /// New transmit queue length.
    pub txqlen: Option<u32>,
}

impl Plan {
    /// True when a link attribute changes (the reference saves the originals only then).
    pub fn changes_link(&self) -> bool {
        self.mac.is_some()
            || self.promisc
            || self.mtu.is_some()
            || self.allmulti.is_some()
            || self.txqlen.is_some()
    }
}

fn field<T: DeserializeOwned>(m: &Map<String, Value>, key: &str) -> Result<Option<T>, ConfigError> {
    match get_ci(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(ConfigError::Json),
    }
}

impl TuningConf {
    /// Parses stdin as the reference does for every verb: the duplicate-key check of
    /// `sysctl` (ADD and CHECK only, `dup_check`), the keys' types, and `CNI_ARGS`.
    pub fn parse(stdin: &[u8], cni_args: &str, dup_check: bool) -> Result<TuningConf, ConfigError> {
        if dup_check {
            check_duplicate_sysctls(stdin)?;
        }
        let conf = NetConf::from_slice(stdin).map_err(ConfigError::Json)?;
        TuningConf::from_netconf(&conf, cni_args)
    }

    /// As [`TuningConf::parse`] without the duplicate check, from the skel's generic parse.
    pub fn from_netconf(conf: &NetConf, cni_args: &str) -> Result<TuningConf, ConfigError> {
        let m = &conf.extra;
        let data_dir: Option<String> = field(m, "dataDir")?;
        let mut sysctl: BTreeMap<String, String> = field(m, "sysctl")?.unwrap_or_default();
        let mut mac: Option<String> = field(m, "mac")?;
        let mut promisc: bool = field(m, "promisc")?.unwrap_or(false);
        let mut mtu: i64 = field(m, "mtu")?.unwrap_or(0);
        let mut allmulti: Option<bool> = field(m, "allmulti")?;
        let mut txqlen: Option<i64> = field(m, "txQLen")?;

        if !cni_args.is_empty() {
            let args = CniArgs::parse_known(cni_args, &["MAC"])?;
            if let Some(v) = args.get("MAC").filter(|v| !v.is_empty()) {
                mac = Some(v.to_string());
            }
        }
        if let Some(v) = conf
            .runtime_config()
            .mac()
            .map_err(ConfigError::Json)?
            .filter(|v| !v.is_empty())
        {
            mac = Some(v);
        }
        if let Some(a) = args_cni(conf)? {
            if let Some(s) = field::<BTreeMap<String, String>>(&a, "sysctl")? {
                sysctl.extend(s);
            }
            if let Some(v) = field(&a, "mac")? {
                mac = Some(v);
            }
            if let Some(v) = field(&a, "promisc")? {
                promisc = v;
            }
            if let Some(v) = field(&a, "mtu")? {
                mtu = v;
            }
            if let Some(v) = field(&a, "allmulti")? {
                allmulti = Some(v);
            }
            if let Some(v) = field(&a, "txQLen")? {
                txqlen = Some(v);
            }
        }
        let prev_result = conf.prev_result().map_err(ConfigError::PrevResult)?;
        Ok(TuningConf {
            name: conf.name.clone(),
            cni_version: conf.version(),
            data_dir: PathBuf::from(
                data_dir
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
            ),
            sysctl,
            mac: mac.filter(|m| !m.is_empty()),
            promisc,
            mtu,
            allmulti,
            txqlen,
            prev_result,
        })
    }

    /// The reference's first checks of ADD: every sysctl key allowed by `allowlist` (when
    /// there is one), and `ifname` without `/`.
    pub fn check_allowed(
        &self,
        ifname: &str,
        allowlist: Option<&Allowlist>,
    ) -> Result<(), ConfigError> {
        if let Some(list) = allowlist {
            for key in self.sysctl.keys() {
                if !list.allows(key)? {
                    return Err(ConfigError::NotAllowed {
                        key: key.clone(),
                        allowed: list.patterns().to_vec(),
                    });
                }
            }
        }
        if ifname.contains('/') {
            return Err(ConfigError::IfName(ifname.to_string()));
        }
        Ok(())
    }

    /// Validates what ADD will do for `ifname`: [`TuningConf::check_allowed`], then every
    /// sysctl key resolving under `/proc/sys/net/`, the MAC address, the ranges.
    pub fn plan(&self, ifname: &str, allowlist: Option<&Allowlist>) -> Result<Plan, ConfigError> {
        self.check_allowed(ifname, allowlist)?;
        let sysctls = self
            .sysctl
            .iter()
            .map(|(k, v)| {
                Ok(Sysctl {
                    key: k.clone(),
                    path: sysctl_path(k, ifname)?,
                    value: v.clone(),
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let mac = match &self.mac {
            None => None,
            Some(s) => Some((
                parse_mac(s).ok_or_else(|| ConfigError::Mac(s.clone()))?,
                s.clone(),
            )),
        };
        let mtu = match self.mtu {
            0 => None,
            v => Some(u32::try_from(v).map_err(|_| ConfigError::Range {
                key: "mtu",
                value: v,
            })?),
        };
        let txqlen = match self.txqlen {
            None => None,
            Some(v) => Some(u32::try_from(v).map_err(|_| ConfigError::Range {
                key: "txQLen",
                value: v,
            })?),
        };
        Ok(Plan {
            sysctls,
            mac,
            promisc: self.promisc,
            mtu,
            allmulti: self.allmulti,
            txqlen,
        })
    }
}

/// `args.cni` as an object, `None` when absent or null.
fn args_cni(conf: &NetConf) -> Result<Option<Map<String, Value>>, ConfigError> {
    let Some(args) = conf.args.as_ref().filter(|a| !a.is_null()) else {
        return Ok(None);
    };
    let args: Map<String, Value> =
        serde_json::from_value(args.clone()).map_err(ConfigError::Json)?;
    field(&args, "cni")
}

/// The reference's `getSysctlFilename`: dots become slashes, the first `IFNAME` becomes the
/// interface name, the path is cleaned under `/proc/sys`, and it must lie under
/// `/proc/sys/net/`.
pub fn sysctl_path(key: &str, ifname: &str) -> Result<String, ConfigError> {
    let slashed = key.replace('.', "/").replacen("IFNAME", ifname, 1);
    let path = clean(&format!("/proc/sys/{slashed}"));
    if !path.starts_with("/proc/sys/net/") {
        return Err(ConfigError::SysctlKey(slashed));
    }
    Ok(path)
}

/// Go's `filepath.Clean` for an absolute path: no empty, `.` or `..` components.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Go's `net.ParseMAC` for 6-byte addresses: `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff` or
/// `aabb.ccdd.eeff`, hex digits in any case. (Go also accepts 8- and 20-byte addresses,
/// which no Ethernet link takes.)
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let b = s.as_bytes();
    let hex = |i: usize| -> Option<u8> {
        let pair = s.get(i..i + 2)?;
        u8::from_str_radix(pair, 16)
            .ok()
            .filter(|_| pair.bytes().all(|c| c.is_ascii_hexdigit()))
    };
    let mut out = [0u8; 6];
    match b.len() {
        17 => {
            let sep = b[2];
            if sep != b':' && sep != b'-' {
                return None;
            }
            for (i, byte) in out.iter_mut().enumerate() {
                if i > 0 && b[3 * i - 1] != sep {
                    return None;
                }
                *byte = hex(3 * i)?;
            }
        }
        14 => {
            for (i, byte) in out.iter_mut().enumerate() {
                let group = i / 2;
                let at = group * 5 + (i % 2) * 2;
                if group > 0 && b[group * 5 - 1] != b'.' {
                    return None;
                }
                *byte = hex(at)?;
            }
        }
        _ => return None,
    }
    Some(out)
}

/// The reference's `validateSysctlConflictingKeys`: the same key twice in the top-level
/// `sysctl` object is refused (serde would keep the last one silently).
fn check_duplicate_sysctls(stdin: &[u8]) -> Result<(), ConfigError> {
    /// Whether a `sysctl` object repeats a key (`Keys`), whether the config has such a
    /// `sysctl` (`Top`).
    struct Top;
    struct Keys(bool);

    impl<'de> Visitor<'de> for Keys {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sysctl object")
        }
        fn visit_unit<E>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut seen = BTreeSet::new();
            let mut dup = false;
            while let Some(key) = map.next_key::<String>()? {
                let _: serde::de::IgnoredAny = map.next_value()?;
                dup |= !seen.insert(key);
            }
            Ok(dup)
        }
    }
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Keys, D::Error> {
            d.deserialize_any(Keys(false)).map(Keys)
        }
    }
    impl<'de> Visitor<'de> for Top {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a network configuration")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut dup = false;
            while let Some(key) = map.next_key::<String>()? {
                if key.eq_ignore_ascii_case("sysctl") {
                    dup |= map.next_value::<Keys>()?.0;
                } else {
                    let _: serde::de::IgnoredAny = map.next_value()?;
                }
            }
            Ok(dup)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(stdin);
    match serde::Deserializer::deserialize_map(&mut de, Top) {
        Ok(true) => Err(ConfigError::DuplicateSysctl),
        // Other problems are reported by the full parse, with the reference's messages.
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
