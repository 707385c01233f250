#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! - [`config`]: stdin parsed once into a [`TuningConf`] (what every verb needs), validated
//!   for ADD into a [`Plan`] (sysctl files, MAC address, ranges, allow-list).
//! - [`allowlist`]: the sysctl allow-list file, `/etc/cni/tuning/allowlist.conf`.
//! - [`backup`]: the saved original attributes ([`Saved`]) in `dataDir` ([`Store`]), in the
//!   reference's layout, plus the markers our GC uses.
//! - [`pod`]: the side effects inside the pod's namespace behind [`Pod`]: [`SystemPod`]
//!   (netlink socket opened inside once, sysctls written with the namespace entered once)
//!   and the [`FakePod`] double.
//! - [`add()`], [`del()`], [`check()`], [`gc()`]: the verbs, callable in-process;
//!   [`TuningPlugin`] runs them behind [`cni_proto::skel`].
//! - [`error`]: [`TuningError`], [`ConfigError`], [`CheckError`] and their spec codes.
//!
//! # Behaviour
//!
//! - Keys: `sysctl` (a map; only keys whose file is under `/proc/sys/net/`; the first
//!   `IFNAME` in a key becomes `CNI_IFNAME`, so `net.ipv4.conf.IFNAME.arp_notify` works for
//!   VLAN names with dots too; the same key twice is refused), `mac`, `mtu`, `promisc`
//!   (only `true` does anything), `allmulti`, `txQLen`, `dataDir` (default
//!   `/run/cni/tuning`). `mac` also comes from `CNI_ARGS` `MAC=` and
//!   `runtimeConfig.mac` (capability `mac`); `args.cni.{sysctl,mac,mtu,promisc,allmulti,txQLen}`
//!   override everything (the reference's precedence).
//! - Allow-list: when `/etc/cni/tuning/allowlist.conf` exists, each sysctl key must match one
//!   of its lines (regular expressions, unanchored as in the reference), else ADD fails with
//!   `Sysctl K is not allowed. Only the following sysctls are allowed: [...]`.
//!   [`TuningPlugin::with_allowlist`] points at another file.
//! - ADD needs `prevResult` (`Required prevResult missing`) and returns it, with the new MAC
//!   (as written in the config) on the interface named `CNI_IFNAME`. Everything is validated
//!   before anything changes, and a failing step undoes the earlier ones (sysctls included;
//!   the reference leaves them half done).
//! - DEL restores MTU, MAC, promiscuous mode, all-multicast mode and queue length from the
//!   saved file and removes it; a failed restore keeps the file and DEL still succeeds, as in
//!   the reference. Sysctls are not restored (the namespace goes away with them).
//! - CHECK compares each configured sysctl and attribute with the namespace, with the
//!   reference's messages; promiscuous mode on without `promisc: true` fails as well.
//! - GC (1.1.0; the reference has none) drops saved files of this network's attachments
//!   that are no longer valid. STATUS always succeeds.
//! - Errors: configuration errors carry code 7 (the reference: 999).
//!
//! # Differences from the reference v1.1.1 (Debian's Go binary)
//!
//! v1.1.1 has no `txQLen`, no allow-list and no duplicate-key check; its CHECK does not
//! substitute `IFNAME` (fixed upstream in v1.3.0). We follow the newest reference there. We
//! also remove the saved file when DEL finds the namespace or the interface gone (nothing
//! can be restored; the reference leaks the file), compare MAC addresses in CHECK as
//! addresses rather than strings, print CHECK's expected all-multicast mode and queue length
//! as values (the reference prints a pointer), and accept only 6-byte MAC addresses.
//! `ifname` renaming does not exist in any reference version, so it is not offered here.

#![warn(missing_docs)]

pub mod allowlist;
pub mod backup;
pub mod config;
pub mod error;
pub mod pod;
mod verbs;

use std::path::PathBuf;

pub use allowlist::{Allowlist, DEFAULT_ALLOWLIST};
pub use backup::{Saved, Store};
pub use config::{Plan, Sysctl, TuningConf};
pub use error::{CheckError, ConfigError, TuningError};
pub use pod::{Attr, FakePod, LinkState, Pod, SystemPod};
pub use verbs::{add, check, del, gc};

use cni_proto::skel::{Plugin, Request};
use cni_types::{Attachment, CniResult, Error};

/// The plugin behind [`cni_proto::skel`]: the real namespace and `dataDir`.
#[derive(Debug, Clone)]
pub struct TuningPlugin {
    allowlist: PathBuf,
}

impl Default for TuningPlugin {
    fn default() -> Self {
        TuningPlugin {
            allowlist: PathBuf::from(DEFAULT_ALLOWLIST),
        }
    }
}

impl TuningPlugin {
    /// The plugin reading its sysctl allow-list from `path` instead of
    /// [`DEFAULT_ALLOWLIST`] (for tests and embedders).
    pub fn with_allowlist(path: impl Into<PathBuf>) -> Self {
        TuningPlugin {
            allowlist: path.into(),
        }
    }
}

fn attachment(req: &Request) -> Attachment {
    Attachment {
        container_id: req.container_id.clone(),
        ifname: req.ifname.clone(),
    }
}

fn conf(req: &Request, dup_check: bool) -> Result<TuningConf, TuningError> {
    if dup_check {
        Ok(TuningConf::parse(&req.stdin, &req.args, true)?)
    } else {
        Ok(TuningConf::from_netconf(&req.config, &req.args)?)
    }
}

fn open_pod(req: &Request) -> Result<SystemPod, TuningError> {
    let path = req.netns.as_ref().ok_or(TuningError::NoNetns)?;
    SystemPod::open(path)
}

impl Plugin for TuningPlugin {
    fn add(&self, req: &Request) -> Result<CniResult, Error> {
        let c = conf(req, true)?;
        let allowlist = Allowlist::load(&self.allowlist).map_err(TuningError::from)?;
        // The reference's order: allow-list and interface name, then prevResult, then the
        // values.
        c.check_allowed(&req.ifname, allowlist.as_ref())
            .map_err(TuningError::from)?;
        if c.prev_result.is_none() {
            return Err(TuningError::MissingPrevResult.into());
        }
        let plan = c
            .plan(&req.ifname, allowlist.as_ref())
            .map_err(TuningError::from)?;
        let mut pod = open_pod(req)?;
        let store = Store::new(&c.data_dir);
        Ok(add(&c, &plan, &attachment(req), &mut pod, &store)?)
    }

    fn del(&self, req: &Request) -> Result<(), Error> {
        // DEL does not use prevResult; as the reference, one it cannot decode is no error.
        let mut netconf = req.config.clone();
        netconf.prev_result = None;
        let c = TuningConf::from_netconf(&netconf, &req.args).map_err(TuningError::from)?;
        let store = Store::new(&c.data_dir);
        let mut pod = match req.netns.as_deref().map(SystemPod::open) {
            Some(Ok(p)) => Some(p),
            Some(Err(TuningError::Netns { source, .. })) if source.is_not_found() => None,
            None => None,
            // The namespace exists but cannot be entered: keep the file, as the reference.
            Some(Err(_)) => return Ok(()),
        };
        match del(
            &c,
            &attachment(req),
            pod.as_mut().map(|p| p as &mut dyn Pod),
            &store,
        ) {
            // As the reference: a restore that fails does not fail DEL (the chain's other
            // plugins must still run); the file stays for another DEL.
            Ok(()) | Err(TuningError::Many(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn check(&self, req: &Request) -> Result<(), Error> {
        let c = conf(req, true)?;
        if c.prev_result.is_none() {
            return Err(TuningError::MissingPrevResult.into());
        }
        let mut pod = open_pod(req)?;
        Ok(check(&c, &attachment(req), &mut pod)?)
    }

    fn gc(&self, req: &Request) -> Result<(), Error> {
        let c = conf(req, false)?;
        let valid = req
            .config
            .gc_valid_attachments()
            .map_err(TuningError::Attachments)?;
        match valid {
            Some(v) => Ok(gc(&c, &v, &Store::new(&c.data_dir))?),
            None => Ok(()),
        }
    }

    fn about(&self) -> String {
        format!("CNI tuning plugin (cni-rs) v{}", env!("CARGO_PKG_VERSION"))
    }
}
