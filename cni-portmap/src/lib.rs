#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! - [`config`]: stdin parsed once into a validated [`PortmapConf`] (the reference's keys,
//!   defaults, errors and container address choice).
//! - [`add()`], [`del()`], [`check()`], [`gc()`], [`status()`]: the verbs, callable in-process
//!   with any [`FirewallApplier`](cni_linux::firewall::FirewallApplier) and [`Host`];
//!   [`PortmapPlugin`] runs them behind [`cni_proto::skel`].
//! - [`iptables`], [`nftables`]: pure plan builders (golden-tested without root); the thin
//!   apply layer is `cni_linux::firewall`.
//! - [`conditions`]: `conditionsV4`/`conditionsV6` for nftables, parsed into statements.
//! - [`localnet`]: the drop rule that goes with `route_localnet`, for both backends.
//! - [`host`]: [`Host`], the non-firewall side effects (backend detection,
//!   `route_localnet`, conntrack), with [`SystemHost`] and the [`FakeHost`] test double.
//! - [`error`]: [`PortmapError`] and its spec error codes.
//!
//! # Behaviour
//!
//! - Chained only: ADD without `prevResult` fails with `must be called as chained plugin`.
//!   ADD without mappings prints `prevResult` and touches nothing; so does DEL.
//! - Keys: `runtimeConfig.portMappings` (also containerd's `HostPort`, `ContainerPort`,
//!   `Protocol`, `HostIP`), `snat` (default true), `masqAll`, `markMasqBit` (default 13),
//!   `externalSetMarkChain` (iptables only), `conditionsV4`/`conditionsV6`, `backend`, with
//!   the reference's errors (`Cannot specify externalSetMarkChain and markMasqBit`,
//!   `MasqMarkBit must be between 0 and 31`, `Invalid host port number: 0`, `iptables backend
//!   was requested but configuration contains nftables-specific options [conditionsV4]`, ...).
//! - Container address: per family the first of `prevResult.ips` whose interface is
//!   `CNI_IFNAME` inside a sandbox (an IP without interface index is accepted).
//! - `hostIP`: a mapping whose `hostIP` is of the other family is skipped for that family;
//!   `0.0.0.0` and `::` mean any address of their family.
//! - `snat`: hairpin and IPv4 `127.0.0.1` traffic to a mapped port is masqueraded (any
//!   source with `masqAll`), and `route_localnet` is enabled on the host interface that routes
//!   to the container's IPv4 address. "Hairpin" is the container's whole subnet with iptables
//!   (as the reference's iptables backend) and the container itself with nftables (as the
//!   reference's nftables backend).
//! - **route_localnet guard** ([`localnet`]; the reference has none: CVE-2020-8558 class):
//!   `route_localnet` would also let pods reach services bound to 127.0.0.1 on the node, so
//!   ADD installs, in the same transaction as the mappings, a drop of packets to
//!   127.0.0.0/8 that do not come from 127.0.0.0/8 and are neither DNATed nor replies
//!   (kube-proxy's rule; iptables chain `CNI-PORTMAP-LOCALNET` in table `filter`, or table
//!   `ip cni_portmap_localnet`). DEL and GC remove it once no interface has
//!   `route_localnet` on any more (the plugin, like the reference, never turns it off).
//! - UDP: stale conntrack entries of the mapped UDP host ports are deleted after ADD **and
//!   after DEL** (the reference only does it on ADD: plugins #1190), over netlink, in one
//!   streamed pass over the table per family whatever the number of ports. If that fails
//!   (e.g. every dump was interrupted by a changing table), ADD fails and undoes its rules
//!   (the reference only logs it); DEL goes on.
//! - DEL is idempotent and also cleans the other backend (best effort), so a node can switch
//!   backends between ADD and DEL. DEL succeeds on input ADD refuses (protocol `bogus`,
//!   host port 0, a bad `markMasqBit`, ...): what can be identified (the container's
//!   chains, the elements carrying its owner comment) is removed, so a runtime that stops
//!   at the first failing DEL (containerd's go-cni) still runs bridge's and IPAM's DEL. CHECK only checks the family of each container address
//!   (v1.1.1 also checks IPv4 rules in ip6tables and fails IPv4-only pods).
//! - **GC** (the reference has none): removes this network's mappings of attachments not in
//!   `cni.dev/valid-attachments` (absent list: nothing is removed), in both backends.
//!   iptables chains are found by their entry rule's comment
//!   (`dnat name: "<net>" id: "<cid>"`, so Go-created leftovers too), nftables chains by their
//!   comment and hashed name.
//! - **STATUS** (the reference has none): succeeds when the configured backend is usable,
//!   else error 50 (`iptables backend is not available`).
//! - Errors: configuration errors carry code 7 (the reference: 999) with the reference's
//!   messages; firewall failures 999.
//!
//! # Default backend
//!
//! As the reference: **iptables, unless only nftables is available** (no
//! `iptables-save`/`iptables-restore` in `PATH` and the kernel answers nf_tables requests).
//! A node may run the Go portmap v1.1.1, which only knows iptables, and a backend switch
//! leaves the other implementation's state behind it; so the default stays the compatible one,
//! and `"backend": "nftables"` opts into the flat-cost layout.
//!
//! # nftables: what differs from the reference's nftables backend
//!
//! Table `cni_portmap` instead of `cni_hostport` (a different layout under the same name
//! would confuse the Go plugin); maps instead of a rule per mapping; **a host port held by
//! another attachment is refused**: ADD fails with `host port dnat tcp . 8080 is already
//! mapped by "<network> <ifname> <container id>" ...; refusing to take it over` and writes
//! nothing, so the first holder keeps the port (as the reference's rule order effectively
//! does, but said out loud instead of leaving the second container silently unreachable),
//! and the runtime's DEL of the refused attachment leaves the holder alone. The same
//! attachment ADDed again (e.g. with a new address) replaces its own elements.
//! `conditionsV4`/`conditionsV6` are parsed (a
//! documented subset of nft syntax, see [`conditions`]) instead of pasted into the rules;
//! `markMasqBit` is honoured. Masquerading uses a packet mark that is only set when the packet
//! carries none yet: a hairpin or localhost packet that already carries another mark when it
//! is DNATed is not masqueraded (`cni_linux` has no `meta mark set meta mark | X` statement
//! yet, and overwriting other marks would be worse). Conditions and the mark live in the
//! shared skeleton: an ADD whose conditions or mark differ from the skeleton in place is
//! refused while another network has mappings in the table (rewriting it would drop that
//! network's conditions), with `nftables table ip cni_portmap holds the skeleton of another
//! configuration ... in use by <network>`; once no other network has mappings, the
//! skeleton is rewritten for the new configuration.

#![warn(missing_docs)]

pub mod conditions;
pub mod config;
pub mod error;
pub mod host;
pub mod iptables;
pub mod localnet;
pub mod nftables;
mod verbs;

pub use config::{Mapping, PortmapConf, Protocol};
pub use error::{CheckError, ConfigError, PortmapError};
pub use host::{FakeHost, Host, SystemHost};
pub use verbs::{add, check, del, gc, status};

use cni_linux::firewall::System;
use cni_proto::skel::{Plugin, Request};
use cni_types::{Attachment, CniResult, Error};

/// The plugin behind [`cni_proto::skel`]: the real firewall and host.
#[derive(Debug, Default, Clone, Copy)]
pub struct PortmapPlugin;

fn attachment(req: &Request) -> Attachment {
    Attachment {
        container_id: req.container_id.clone(),
        ifname: req.ifname.clone(),
    }
}

fn conf(req: &Request, host: &mut SystemHost) -> Result<PortmapConf, Error> {
    PortmapConf::from_netconf(&req.config, &req.ifname, &mut || host.default_backend())
        .map_err(|e| PortmapError::Config(e).into())
}

impl Plugin for PortmapPlugin {
    fn add(&self, req: &Request) -> Result<CniResult, Error> {
        let mut host = SystemHost;
        let c = conf(req, &mut host)?;
        Ok(add(&c, &attachment(req), &mut System, &mut host)?)
    }

    fn del(&self, req: &Request) -> Result<(), Error> {
        let mut host = SystemHost;
        let c = PortmapConf::from_netconf_for_del(&req.config, &req.ifname, &mut || {
            host.default_backend()
        })
        .map_err(PortmapError::Config)?;
        Ok(del(&c, &attachment(req), &mut System, &mut host)?)
    }

    fn check(&self, req: &Request) -> Result<(), Error> {
        let mut host = SystemHost;
        let c = conf(req, &mut host)?;
        Ok(check(&c, &attachment(req), &mut System, &mut host)?)
    }

    fn gc(&self, req: &Request) -> Result<(), Error> {
        let mut host = SystemHost;
        let c = conf(req, &mut host)?;
        let valid = req
            .config
            .gc_valid_attachments()
            .map_err(PortmapError::Attachments)?;
        match valid {
            Some(v) => Ok(gc(&c, &v, &mut System, &mut host)?),
            None => Ok(()),
        }
    }

    fn status(&self, req: &Request) -> Result<(), Error> {
        let mut host = SystemHost;
        let c = conf(req, &mut host)?;
        Ok(status(&c, &mut host)?)
    }

    fn about(&self) -> String {
        format!("CNI portmap plugin (cni-rs) v{}", env!("CARGO_PKG_VERSION"))
    }
}
