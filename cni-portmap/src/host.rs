//! The host side effects of the verbs other than the firewall (which goes through
//! [`cni_linux::firewall::FirewallApplier`]): backend detection, `route_localnet`, conntrack.

use std::net::IpAddr;

use cni_linux::conntrack::{self, ConntrackError};
use cni_linux::firewall::{Backend, IpFamily};
use cni_linux::netlink::{Handle, Ipv4Conf};
use cni_linux::sysctl;

use crate::error::PortmapError;

/// What the verbs need from the host besides the firewall. Everything acts in the calling
/// thread's network namespace (the node's).
pub trait Host {
    /// The backend to use when the config names none.
    fn default_backend(&mut self) -> Backend;
    /// Whether `backend` is usable (STATUS).
    fn backend_available(&mut self, backend: Backend) -> bool;
    /// Sets `net.ipv4.conf.<if>.route_localnet=1` on the interface that routes to
    /// `container`; returns the interface, `None` when no route was found (as the
    /// reference, that is not an error).
    fn enable_route_localnet(&mut self, container: IpAddr) -> Result<Option<String>, PortmapError>;
    /// Whether `route_localnet` is on for any interface but `lo` (or for `all`): the
    /// [`localnet`](crate::localnet) guard is needed. When unsure, true. The interfaces that
    /// route to `toward` (the container's addresses: their bridge is where ADD turned it on)
    /// are asked first, so the usual answer costs a route lookup, not a list of every link.
    fn route_localnet_in_use(&mut self, toward: &[IpAddr]) -> bool;
    /// Deletes the UDP conntrack entries of `family` whose original destination port is one
    /// of `ports`, in one pass over the table; returns how many were deleted.
    fn delete_udp_conntrack(
        &mut self,
        family: IpFamily,
        ports: &[u16],
    ) -> Result<usize, ConntrackError>;
}

/// The real host.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemHost;

impl Host for SystemHost {
    fn default_backend(&mut self) -> Backend {
        Backend::detect_default().unwrap_or(Backend::Iptables)
    }

    fn backend_available(&mut self, backend: Backend) -> bool {
        match backend {
            Backend::Iptables => cni_linux::firewall::iptables_available(),
            Backend::Nftables => cni_linux::firewall::nftables_available(),
        }
    }

    fn enable_route_localnet(&mut self, container: IpAddr) -> Result<Option<String>, PortmapError> {
        // As the reference's getRoutableHostIF: any failure to find the interface skips it.
        let Ok(mut h) = Handle::new() else {
            return Ok(None);
        };
        let Some(oif) = h.route_get(container).ok().and_then(|r| r.oif) else {
            return Ok(None);
        };
        let Some(link) = h.link_by_index(oif).ok().flatten() else {
            return Ok(None);
        };
        // The link reports the setting: nothing to do on every ADD after the first. It is set
        // over netlink; `/proc/sys` (whose lookups slow down with every namespace on the
        // machine) is the fallback and gives the error.
        if link.conf.ipv4_route_localnet == Some(true)
            || h.enable_ipv4_conf(oif, Ipv4Conf::RouteLocalnet).is_ok()
        {
            return Ok(Some(link.name));
        }
        let key = format!("net/ipv4/conf/{}/route_localnet", link.name);
        sysctl::ensure(&key, "1").map_err(|source| PortmapError::RouteLocalnet {
            ifname: link.name.clone(),
            source,
        })?;
        Ok(Some(link.name))
    }

    fn route_localnet_in_use(&mut self, toward: &[IpAddr]) -> bool {
        if sysctl::read("net/ipv4/conf/all/route_localnet").map_or(true, |v| v.trim() != "0") {
            return true;
        }
        let Ok(mut h) = Handle::new() else {
            return true;
        };
        for dst in toward {
            let on = h
                .route_get(*dst)
                .ok()
                .and_then(|r| r.oif)
                .and_then(|oif| h.link_by_index(oif).ok().flatten())
                .is_some_and(|l| l.name != "lo" && l.conf.ipv4_route_localnet == Some(true));
            if on {
                return true;
            }
        }
        match h.links() {
            Ok(links) => links
                .iter()
                .any(|l| l.name != "lo" && l.conf.ipv4_route_localnet == Some(true)),
            Err(_) => true,
        }
    }

    fn delete_udp_conntrack(
        &mut self,
        family: IpFamily,
        ports: &[u16],
    ) -> Result<usize, ConntrackError> {
        // One pass over the table for all ports, streamed (issue: a dump per port).
        conntrack::delete_udp_by_dports(family, ports)
    }
}

/// A host double for tests: answers from fields and records calls.
#[derive(Debug, Clone, Default)]
pub struct FakeHost {
    /// What [`Host::default_backend`] answers (iptables when `None`).
    pub backend: Option<Backend>,
    /// What [`Host::backend_available`] answers.
    pub unavailable: bool,
    /// The interface [`Host::enable_route_localnet`] reports.
    pub route_localnet_if: Option<String>,
    /// What [`Host::route_localnet_in_use`] answers.
    pub route_localnet_in_use: bool,
    /// Whether [`Host::delete_udp_conntrack`] fails as when every dump was interrupted.
    pub conntrack_interrupted: bool,
    /// Every call, as text, in order.
    pub calls: Vec<String>,
}

impl Host for FakeHost {
    fn default_backend(&mut self) -> Backend {
        self.backend.unwrap_or(Backend::Iptables)
    }

    fn backend_available(&mut self, backend: Backend) -> bool {
        self.calls.push(format!(
            "available {}",
            crate::config::backend_name(backend)
        ));
        !self.unavailable
    }

    fn enable_route_localnet(&mut self, container: IpAddr) -> Result<Option<String>, PortmapError> {
        self.calls.push(format!("route_localnet {container}"));
        Ok(self.route_localnet_if.clone())
    }

    fn route_localnet_in_use(&mut self, toward: &[IpAddr]) -> bool {
        self.calls
            .push(format!("route_localnet in use? {toward:?}"));
        self.route_localnet_in_use
    }

    fn delete_udp_conntrack(
        &mut self,
        family: IpFamily,
        ports: &[u16],
    ) -> Result<usize, ConntrackError> {
        self.calls.push(format!("conntrack {family} udp {ports:?}"));
        if self.conntrack_interrupted {
            return Err(ConntrackError::Interrupted {
                attempts: conntrack::SWEEP_ATTEMPTS,
                deleted: 0,
            });
        }
        Ok(0)
    }
}
