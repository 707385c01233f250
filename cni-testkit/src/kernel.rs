//! Kernel features a test needs, probed independently of the code under test, and the one
//! list of features a CI machine may lack.
//!
//! A feature is read from the kernel's build configuration (`/proc/config.gz`, else
//! `/boot/config-<release>`): `=y` is there, `=m` is there when the module is loaded
//! (`/proc/modules`, `/sys/module/<name>`) or installed (`/lib/modules/<release>`), anything
//! else is missing. Without a configuration, a loaded module still counts; otherwise the
//! answer is unknown. Nothing here creates a link with our own netlink code: a bug of ours
//! must never look like a missing feature.
//!
//! A test calls [`require`] (after its pure validation parts, which need no kernel feature):
//! a feature on [`MAY_BE_MISSING`] that is missing skips the test with a line in the test
//! output (also under CI); any other missing or unknown feature skips with a message, and
//! fails under CI.
//!
//! ```no_run
//! use cni_testkit::kernel::{Feature, require};
//!
//! #[test]
//! fn bridge_vlan_trunk() {
//!     // ... pure validation first ...
//!     if !cni_testkit::require_root() || !require(Feature::BridgeVlanFiltering) {
//!         return;
//!     }
//!     // ... the privileged part ...
//! }
//! ```

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

/// A kernel feature the tests use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Feature {
    /// Linux bridges (`CONFIG_BRIDGE`).
    Bridge,
    /// VLAN filtering on bridges (`CONFIG_BRIDGE_VLAN_FILTERING`).
    BridgeVlanFiltering,
    /// 802.1Q VLAN links (`CONFIG_VLAN_8021Q`).
    Vlan8021q,
    /// Dummy links (`CONFIG_DUMMY`).
    Dummy,
    /// veth pairs (`CONFIG_VETH`).
    Veth,
    /// nf_tables (`CONFIG_NF_TABLES`).
    NfTables,
    /// NAT in nf_tables (`CONFIG_NFT_NAT`).
    NftNat,
    /// Legacy iptables (x_tables) for IPv4 (`CONFIG_IP_NF_IPTABLES`).
    IptablesLegacy,
    /// IPv6 (`CONFIG_IPV6`).
    Ipv6,
}

impl Feature {
    /// Every feature.
    pub const ALL: [Feature; 9] = [
        Feature::Bridge,
        Feature::BridgeVlanFiltering,
        Feature::Vlan8021q,
        Feature::Dummy,
        Feature::Veth,
        Feature::NfTables,
        Feature::NftNat,
        Feature::IptablesLegacy,
        Feature::Ipv6,
    ];

    /// The kernel configuration option.
    pub fn config(self) -> &'static str {
        match self {
            Feature::Bridge => "CONFIG_BRIDGE",
            Feature::BridgeVlanFiltering => "CONFIG_BRIDGE_VLAN_FILTERING",
            Feature::Vlan8021q => "CONFIG_VLAN_8021Q",
            Feature::Dummy => "CONFIG_DUMMY",
            Feature::Veth => "CONFIG_VETH",
            Feature::NfTables => "CONFIG_NF_TABLES",
            Feature::NftNat => "CONFIG_NFT_NAT",
            Feature::IptablesLegacy => "CONFIG_IP_NF_IPTABLES",
            Feature::Ipv6 => "CONFIG_IPV6",
        }
    }

    /// The module that provides it when built as one (`=m`); for an option inside a
    /// module (VLAN filtering is part of `bridge`), that module.
    pub fn module(self) -> &'static str {
        match self {
            Feature::Bridge | Feature::BridgeVlanFiltering => "bridge",
            Feature::Vlan8021q => "8021q",
            Feature::Dummy => "dummy",
            Feature::Veth => "veth",
            Feature::NfTables => "nf_tables",
            Feature::NftNat => "nft_nat",
            Feature::IptablesLegacy => "ip_tables",
            Feature::Ipv6 => "ipv6",
        }
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Feature::Bridge => "bridges",
            Feature::BridgeVlanFiltering => "bridge VLAN filtering",
            Feature::Vlan8021q => "802.1Q VLAN links",
            Feature::Dummy => "dummy links",
            Feature::Veth => "veth pairs",
            Feature::NfTables => "nf_tables",
            Feature::NftNat => "nf_tables NAT",
            Feature::IptablesLegacy => "legacy iptables",
            Feature::Ipv6 => "IPv6",
        };
        write!(f, "{name} ({})", self.config())
    }
}

/// The features a CI machine may lack; a test needing one of them skips, with a line in the
/// test output, where the kernel does not have it. Every other feature is required under CI.
/// The README's promise about skips names exactly this list.
pub const MAY_BE_MISSING: &[Feature] = &[
    Feature::BridgeVlanFiltering,
    Feature::Vlan8021q,
    Feature::Dummy,
];

/// How a kernel configuration sets one option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// `=y`.
    BuiltIn,
    /// `=m`.
    Module,
    /// `is not set`, absent, or `=n`.
    Off,
}

/// The setting of `option` in a kernel configuration text.
pub fn setting(config: &str, option: &str) -> Setting {
    for line in config.lines() {
        let line = line.trim();
        if let Some(v) = line
            .strip_prefix(option)
            .and_then(|rest| rest.strip_prefix('='))
        {
            return match v.trim() {
                "y" => Setting::BuiltIn,
                "m" => Setting::Module,
                _ => Setting::Off,
            };
        }
    }
    Setting::Off
}

/// Where the facts come from, so the decision can be tested without this machine.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The kernel configuration text, if one could be read.
    pub config: Option<String>,
    /// Modules loaded or built in (`/proc/modules` names and `/sys/module` entries).
    pub loaded: Vec<String>,
    /// Module files installed for this kernel (names without `.ko*`).
    pub installed: Vec<String>,
}

impl Facts {
    /// Whether the kernel these facts describe has `f`; an error when they cannot tell.
    pub fn has(&self, f: Feature) -> Result<bool, String> {
        let module = f.module();
        let loaded = self.loaded.iter().any(|m| m == module);
        match &self.config {
            Some(config) => Ok(match setting(config, f.config()) {
                Setting::BuiltIn => true,
                Setting::Module => loaded || self.installed.iter().any(|m| m == module),
                Setting::Off => false,
            }),
            None if loaded && f.config() != "CONFIG_BRIDGE_VLAN_FILTERING" => Ok(true),
            None => Err(format!(
                "no kernel configuration (/proc/config.gz, /boot/config-<release>) says whether \
                 it has {}, and no module `{module}` is loaded",
                f.config()
            )),
        }
    }

    /// The facts of the running kernel.
    pub fn of_this_kernel() -> Facts {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let config = read_proc_config()
            .or_else(|| std::fs::read_to_string(format!("/boot/config-{release}")).ok());
        let mut loaded: Vec<String> = std::fs::read_to_string("/proc/modules")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect();
        if let Ok(rd) = std::fs::read_dir("/sys/module") {
            loaded.extend(
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned()),
            );
        }
        let mut installed = Vec::new();
        collect_modules(
            Path::new(&format!("/lib/modules/{release}")),
            &mut installed,
        );
        Facts {
            config,
            loaded,
            installed,
        }
    }
}

/// `/proc/config.gz`, decompressed by `gzip` (part of every Debian system).
fn read_proc_config() -> Option<String> {
    if !Path::new("/proc/config.gz").exists() {
        return None;
    }
    let out = std::process::Command::new("gzip")
        .args(["-dc", "/proc/config.gz"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn collect_modules(dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_modules(&p, out);
        } else if let Some(name) = p.file_name().and_then(|n| n.to_str())
            && let Some((stem, _)) = name.split_once(".ko")
        {
            // Module files use '-' or '_'; module names use '_'.
            out.push(stem.replace('-', "_"));
        }
    }
}

fn this_kernel() -> &'static Facts {
    static FACTS: OnceLock<Facts> = OnceLock::new();
    FACTS.get_or_init(Facts::of_this_kernel)
}

/// Whether the running kernel has `f` (see the [module docs](self)); an error when it cannot
/// be told.
pub fn has(f: Feature) -> Result<bool, String> {
    this_kernel().has(f)
}

/// What a test needing `f` does: true when the kernel has it. Otherwise false, after a line
/// in the test output saying why, when `f` is on [`MAY_BE_MISSING`]; for any other feature
/// (or when it cannot be told) it skips with a message, and panics under CI.
pub fn require(f: Feature) -> bool {
    decide(f, has(f), MAY_BE_MISSING)
}

fn decide(f: Feature, has: Result<bool, String>, allowed: &[Feature]) -> bool {
    match has {
        Ok(true) => true,
        Ok(false) if allowed.contains(&f) => {
            // Straight to stderr, past the test harness's capture: the skip must show in the
            // output of a passing run too.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (allowed): the kernel lacks {f}, which is on the list of features a CI \
                 machine may lack (cni_testkit::kernel::MAY_BE_MISSING)"
            );
            false
        }
        Ok(false) => crate::privilege::skip_or_fail(&format!(
            "the kernel lacks {f}, which is not on the list of features a CI machine may lack"
        )),
        Err(why) => crate::privilege::skip_or_fail(&format!(
            "cannot tell whether the kernel has {f}: {why}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "CONFIG_BRIDGE=y\n# CONFIG_VLAN_8021Q is not set\nCONFIG_DUMMY=m\n\
                          CONFIG_VETH=y\nCONFIG_BRIDGE_VLAN_FILTERING=y\n";

    #[test]
    fn settings_are_read_exactly() {
        assert_eq!(setting(CONFIG, "CONFIG_BRIDGE"), Setting::BuiltIn);
        assert_eq!(setting(CONFIG, "CONFIG_DUMMY"), Setting::Module);
        assert_eq!(setting(CONFIG, "CONFIG_VLAN_8021Q"), Setting::Off);
        assert_eq!(setting(CONFIG, "CONFIG_NF_TABLES"), Setting::Off, "absent");
        // A prefix of another option is not that option.
        assert_eq!(
            setting("CONFIG_BRIDGE_VLAN_FILTERING=y\n", "CONFIG_BRIDGE"),
            Setting::Off
        );
    }

    #[test]
    fn modules_count_when_loaded_or_installed() {
        let mut facts = Facts {
            config: Some(CONFIG.into()),
            ..Facts::default()
        };
        assert_eq!(facts.has(Feature::Bridge), Ok(true));
        assert_eq!(facts.has(Feature::BridgeVlanFiltering), Ok(true));
        assert_eq!(facts.has(Feature::Vlan8021q), Ok(false));
        assert_eq!(facts.has(Feature::Dummy), Ok(false), "=m, not installed");
        facts.installed.push("dummy".into());
        assert_eq!(facts.has(Feature::Dummy), Ok(true));
        facts.config = Some(format!("{CONFIG}CONFIG_NF_TABLES=m\n"));
        assert_eq!(facts.has(Feature::NfTables), Ok(false));
        facts.loaded.push("nf_tables".into());
        assert_eq!(facts.has(Feature::NfTables), Ok(true));
    }

    #[test]
    fn without_a_config_only_a_loaded_module_tells() {
        let facts = Facts {
            loaded: vec!["bridge".into()],
            ..Facts::default()
        };
        assert_eq!(facts.has(Feature::Bridge), Ok(true));
        assert!(facts.has(Feature::Dummy).is_err());
        // VLAN filtering is an option of the bridge module: a loaded bridge says nothing.
        assert!(facts.has(Feature::BridgeVlanFiltering).is_err());
    }

    #[test]
    fn only_the_allow_list_skips_under_ci() {
        // Present: runs. Missing and allowed: skips, also under CI.
        assert!(decide(Feature::Dummy, Ok(true), &[]));
        assert!(!decide(Feature::Dummy, Ok(false), &[Feature::Dummy]));
        if crate::privilege::in_ci() {
            for has in [Ok(false), Err("no config".to_string())] {
                let r = std::panic::catch_unwind(|| decide(Feature::Veth, has, MAY_BE_MISSING));
                assert!(r.is_err(), "a missing veth must fail under CI");
            }
        }
    }

    #[test]
    fn the_allow_list_is_the_documented_one() {
        assert_eq!(
            MAY_BE_MISSING,
            &[
                Feature::BridgeVlanFiltering,
                Feature::Vlan8021q,
                Feature::Dummy
            ]
        );
    }

    /// What the tests need beyond the allow-list is there (CI fails here otherwise), and the
    /// probe tells something for every feature on this machine.
    #[test]
    fn this_kernel_has_what_the_suite_requires() {
        for f in Feature::ALL {
            if MAY_BE_MISSING.contains(&f) {
                continue;
            }
            if !require(f) {
                return; // printed why (not under CI: there it panicked)
            }
        }
    }
}
