#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! - [`config`]: stdin parsed once into a [`FirewallConf`]; the pod's view of `prevResult`
//!   ([`Pod`]).
//! - [`iptables`]: the reference's chains (`CNI-FORWARD`, `CNI-ADMIN`,
//!   `CNI-ISOLATION-STAGE-1/2`) as pure plans, byte-compatible, plus our `DNAT` accept rule.
//! - [`nftables`]: our `inet cni_firewall` table of sets, as pure plans.
//! - [`store`]: the attachment records GC works from.
//! - [`firewalld`], [`dbus`]: the firewalld backend over a minimal synchronous D-Bus client
//!   (SASL `EXTERNAL`, string-argument method calls).
//! - [`host`]: the node besides the kernel firewall (bridge ports, rootless, firewalld):
//!   [`SystemHost`], [`FakeHost`].
//! - [`add()`], [`del()`], [`check()`], [`gc()`], [`status()`]: the verbs over
//!   [`cni_linux::firewall::FirewallApplier`]; [`FirewallPlugin`] runs them behind
//!   [`cni_proto::skel`].
//!
//! # Behaviour
//!
//! - Keys: `backend` (`iptables`, `nftables`, `firewalld`, or empty), `iptablesAdminChainName`
//!   (default `CNI-ADMIN`), `firewalldZone` (default `trusted`), `ingressPolicy` (`open`,
//!   `same-bridge`), `dataDir` (ours, default `/run/cni/firewall`).
//! - ADD needs `prevResult` (`missing prevResult from earlier plugin`) and returns it. With
//!   iptables: the reference's rules for every address of `prevResult`, in one
//!   `iptables-restore` per family. With nftables: one netlink transaction. With firewalld
//!   (`backend: "firewalld"`, or empty while firewalld owns its name on the system bus, as
//!   the reference): the addresses become sources of the zone, over D-Bus.
//! - DEL removes the pod's rules (from `prevResult`, or from the attachment's record when the
//!   runtime sends none) and, with `same-bridge`, the bridge's isolation rules once no other
//!   port is left on the bridge (the reference never removes them). A Go firewall's pods on
//!   the bridge are ports too, so its isolation is kept for them.
//! - CHECK as the reference (the `FORWARD` jump, the admin jump, both rules per address);
//!   with nftables, the table and the attachment's elements.
//! - GC (1.1.0) removes the rules of this network's attachments that are not valid; STATUS
//!   tells whether the backend's tools or the kernel's nf_tables are there.
//! - With the node's `FORWARD` policy at `DROP`, `CNI-FORWARD` also accepts connections whose
//!   destination was NATed (`--ctstate DNAT`), so host ports work (the reference's chain
//!   drops them).
//!
//! # Differences from the reference v1.1.1
//!
//! - Rootless (a user namespace other than the initial one): an empty `backend` never picks
//!   the system bus's firewalld, which filters the host's namespace, not the runtime's;
//!   an explicit `firewalld` fails saying so (the reference fails ADD with a bare bus error).
//!   An unreachable firewalld fails ADD with the bus's error (code 50); DEL goes on without
//!   it. CHECK also requires `querySource` to answer true (the reference ignores the answer).
//! - An unknown `backend` or `ingressPolicy` fails at parse time, before anything changes (the
//!   reference ignores an unknown backend and fails on the policy after adding rules).
//! - The isolation chains are removed once unused; the `DNAT` accept rule is ours.
//! - Newer references (v1.7.0+) add `ingressPolicy: "isolated"` and comment the shared
//!   isolation rules `(ingressPolicy: same-bridge|isolated)`; we follow v1.1.1 (what Debian
//!   ships and podman 4.3 drives), so `isolated` is refused as an unknown policy.

#![warn(missing_docs)]

pub mod config;
pub mod dbus;
pub mod error;
pub mod firewalld;
pub mod host;
pub mod iptables;
pub mod nftables;
pub mod store;
mod verbs;

pub use config::{BackendChoice, FirewallConf, IngressPolicy, Pod};
pub use error::{CheckError, ConfigError, FirewallError};
pub use host::{FakeHost, Host, SystemHost};
pub use store::{Record, Store};
pub use verbs::{Backend, add, check, del, gc, resolve, status};

use cni_linux::firewall::System;
use cni_proto::skel::{Plugin, Request};
use cni_types::{Attachment, CniResult, Error, Version};

/// The plugin behind [`cni_proto::skel`]: the real firewall, links and records.
#[derive(Debug, Default, Clone, Copy)]
pub struct FirewallPlugin;

fn attachment(req: &Request) -> Attachment {
    Attachment {
        container_id: req.container_id.clone(),
        ifname: req.ifname.clone(),
    }
}

fn conf(req: &Request, lenient_prev: bool) -> Result<FirewallConf, FirewallError> {
    Ok(FirewallConf::from_netconf(&req.config, lenient_prev)?)
}

fn store(c: &FirewallConf) -> Store {
    Store::new(&c.data_dir, &c.name)
}

impl Plugin for FirewallPlugin {
    fn add(&self, req: &Request) -> Result<CniResult, Error> {
        let c = conf(req, false)?;
        Ok(add(
            &c,
            &attachment(req),
            &mut System,
            &mut SystemHost::default(),
            &store(&c),
        )?)
    }

    fn del(&self, req: &Request) -> Result<(), Error> {
        let c = conf(req, true)?;
        Ok(del(
            &c,
            &attachment(req),
            &mut System,
            &mut SystemHost::default(),
            &store(&c),
        )?)
    }

    fn check(&self, req: &Request) -> Result<(), Error> {
        let c = conf(req, false)?;
        Ok(check(
            &c,
            &attachment(req),
            &mut System,
            &mut SystemHost::default(),
        )?)
    }

    fn gc(&self, req: &Request) -> Result<(), Error> {
        let c = conf(req, true)?;
        let valid = req
            .config
            .gc_valid_attachments()
            .map_err(FirewallError::Attachments)?;
        match valid {
            Some(v) => Ok(gc(
                &c,
                &v,
                &mut System,
                &mut SystemHost::default(),
                &store(&c),
            )?),
            None => Ok(()),
        }
    }

    fn status(&self, req: &Request) -> Result<(), Error> {
        let c = conf(req, true)?;
        Ok(status(&c, &mut SystemHost::default())?)
    }

    fn supported_versions(&self) -> Vec<Version> {
        // The reference: 0.4.0 and later.
        Version::ALL
            .iter()
            .copied()
            .filter(|v| *v >= Version::V0_4_0)
            .collect()
    }

    fn about(&self) -> String {
        format!(
            "CNI firewall plugin (cni-rs) v{}",
            env!("CARGO_PKG_VERSION")
        )
    }
}
