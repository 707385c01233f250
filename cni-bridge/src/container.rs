//! Container-side plumbing: sysctls, addresses, routes of the container interface (the
//! reference's `ipam.ConfigureIface`), and its removal on DEL.

use std::net::IpAddr;
use std::time::Duration;

use cni_linux::IpFamily;
use cni_linux::netlink::{self, Handle, Ipv4Conf, Route, Scope};
use cni_linux::netns::NetNs;
use cni_linux::sysctl;
use cni_types::CniResult;
use cni_types::go::quote as go_quote;
use ipnet::IpNet;

use crate::error::BridgeError;

/// How long IPv6 duplicate address detection may take (only with `enabledad`).
pub(crate) const DAD_TIMEOUT: Duration = Duration::from_secs(5);

/// The container interface's `arp_notify`, set over netlink before the link comes up (the
/// reference writes the sysctl; `/proc/sys` lookups slow down with every namespace on the
/// machine, and every pod has an `eth0`). Failures are ignored as in the reference.
pub(crate) fn interface_conf(inner: &mut Handle, index: u32) {
    let _ = inner.enable_ipv4_conf(index, Ipv4Conf::ArpNotify);
}

/// For IPv6 addresses (inside the container): DAD as configured, IPv6 enabled on `lo` and the
/// interface (an error if that fails), and addresses kept should the link ever go down.
pub(crate) fn ipv6_sysctls(ifname: &str, enable_dad: bool) -> Result<(), BridgeError> {
    // DAD as configured (failures ignored, as in the reference). Only IPv6 addresses are
    // affected, so IPv4-only pods skip these writes.
    let set = |k: String, v: &str| sysctl::write(&k, v);
    if enable_dad {
        let _ = set(format!("net/ipv6/conf/{ifname}/enhanced_dad"), "1");
        let _ = set(format!("net/ipv6/conf/{ifname}/accept_dad"), "1");
    } else {
        let _ = set(format!("net/ipv6/conf/{ifname}/accept_dad"), "0");
    }
    for iface in ["lo", ifname] {
        let key = format!("net/ipv6/conf/{iface}/disable_ipv6");
        match sysctl::read(&key) {
            Ok(v) if v == "0" => {}
            Ok(v) => sysctl::write(&key, "0").map_err(|source| BridgeError::Sysctl {
                context: format!(
                    "failed to enable IPv6 for interface {} ({key}={v})",
                    go_quote(iface)
                ),
                source,
            })?,
            // IPv6 compiled out or the key missing: the address add will say why.
            Err(_) => {}
        }
    }
    let _ = sysctl::write(&format!("net/ipv6/conf/{ifname}/keep_addr_on_down"), "1");
    Ok(())
}

/// Adds the result's addresses to the interface, brings it up (the kernel then sends the
/// gratuitous ARPs `arp_notify` asks for), waits for IPv6 DAD when it is enabled and there is
/// an IPv6 gateway (event-driven), then adds the routes; a route without gateway uses its
/// family's gateway. Route `mtu`, `advmss`, `priority`, `table` and `scope` are applied.
pub(crate) fn configure_iface(
    inner: &mut Handle,
    index: u32,
    ifname: &str,
    result: &CniResult,
    wait_dad: bool,
) -> Result<(), BridgeError> {
    let mut v4gw = None;
    let mut v6gw = None;
    for ip in &result.ips {
        inner
            .addr_add(index, ip.address, Default::default())
            .map_err(|e| {
                BridgeError::netlink(
                    format!(
                        "failed to add IP addr {} to {}",
                        ip.address,
                        go_quote(ifname)
                    ),
                    e,
                )
            })?;
        if let Some(gw) = ip.gateway {
            match gw {
                IpAddr::V4(_) if v4gw.is_none() => v4gw = Some(gw),
                IpAddr::V6(_) if v6gw.is_none() => v6gw = Some(gw),
                _ => {}
            }
        }
    }
    inner
        .set_up(index)
        .map_err(|e| BridgeError::netlink(format!("failed to set {} UP", go_quote(ifname)), e))?;
    if wait_dad && v6gw.is_some() {
        inner
            .wait_addrs_not_tentative(index, DAD_TIMEOUT)
            .map_err(|e| BridgeError::netlink("failed to settle addresses", e))?;
    }
    for r in &result.routes {
        let gw = r.gw.or(if r.dst.addr().is_ipv4() { v4gw } else { v6gw });
        let mut route = Route::new(r.dst.trunc()).dev(index);
        route.gw = gw;
        route.table = r.table;
        route.scope = r.scope.map(Scope::from);
        route.priority = (r.priority > 0).then_some(r.priority);
        route.mtu = (r.mtu > 0).then_some(r.mtu);
        route.advmss = (r.advmss > 0).then_some(r.advmss);
        match inner.route_add(&route) {
            Ok(()) => {}
            // The same route twice in a result is not an error.
            Err(e) if e.is_exists() => {}
            Err(e) => {
                let via = gw.map(|g| g.to_string()).unwrap_or_else(|| "<nil>".into());
                return Err(BridgeError::netlink(
                    format!("failed to add route '{} via {via} dev {ifname}'", r.dst),
                    e,
                ));
            }
        }
    }
    Ok(())
}

/// The container interface DEL removes: a netlink socket in the container's namespace and
/// the interface's index.
pub(crate) struct ContainerIface {
    inner: Handle,
    index: u32,
    ifname: String,
    /// `IFLA_LINK`: for a veth, the index of its peer (in the peer's namespace).
    peer: Option<u32>,
}

fn delete_err(ifname: &str) -> impl Fn(netlink::Error) -> BridgeError + '_ {
    move |e| BridgeError::netlink(format!("failed to delete {}", go_quote(ifname)), e)
}

/// DEL inside the container: finds `ifname` and, when `want_addrs`, its global addresses.
/// A missing namespace or link is `(None, [])`.
pub(crate) fn find_iface(
    netns: &std::path::Path,
    ifname: &str,
    want_addrs: bool,
) -> Result<(Option<ContainerIface>, Vec<IpNet>), BridgeError> {
    let ns = match NetNs::open(netns) {
        Ok(ns) => ns,
        Err(e) if e.is_not_found() => return Ok((None, Vec::new())),
        Err(source) => {
            return Err(BridgeError::Netns {
                path: netns.to_path_buf(),
                source,
            });
        }
    };
    let err = delete_err(ifname);
    let mut inner = Handle::new_in(&ns).map_err(&err)?;
    let Some(link) = inner.link_by_name(ifname).map_err(&err)? else {
        return Ok((None, Vec::new()));
    };
    let addrs = if want_addrs {
        inner
            .addrs(Some(link.index), None)
            .map_err(&err)?
            .into_iter()
            .filter(|a| a.scope == 0)
            .map(|a| a.addr)
            .collect()
    } else {
        Vec::new()
    };
    Ok((
        Some(ContainerIface {
            inner,
            index: link.index,
            ifname: ifname.to_owned(),
            peer: link.is_kind("veth").then_some(link.link).flatten(),
        }),
        addrs,
    ))
}

impl ContainerIface {
    /// The host end of this veth in `host`'s namespace (the node's): the link at the peer
    /// index, if it is a veth whose peer is this interface.
    pub(crate) fn host_peer(&self, host: &mut Handle) -> Option<u32> {
        let peer = self.peer?;
        let link = host.link_by_index(peer).ok()??;
        (link.is_kind("veth") && link.link == Some(self.index)).then_some(peer)
    }

    /// Deletes the interface, which removes the whole veth pair (the kernel takes a while:
    /// it waits for RCU grace periods); already gone is success.
    pub(crate) fn delete(mut self) -> Result<(), BridgeError> {
        match self.inner.delete_link(self.index) {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(delete_err(&self.ifname)(e)),
        }
    }
}

/// Waits for link `index` of `host`'s namespace to be gone (its `RTM_DELLINK` event), in
/// short slices, until `stop()` is true; returns whether it is gone.
///
/// The kernel unregisters a deleted veth (its addresses and routes removed, the bridge port
/// released, `RTM_DELLINK` sent) within a millisecond of the request, then spends 15-20 ms
/// in RCU waits before the request returns: what follows the unregistration need not wait
/// for the rest.
pub(crate) fn wait_gone(host: &mut Handle, index: u32, stop: impl Fn() -> bool) -> bool {
    const SLICE: Duration = Duration::from_millis(2);
    host.wait_links_gone_or(&[index], SLICE, stop)
        .unwrap_or(false)
}

/// The (firewall) families of a set of addresses.
pub(crate) fn families(ips: impl IntoIterator<Item = IpNet>) -> Vec<IpFamily> {
    let mut v4 = false;
    let mut v6 = false;
    for ip in ips {
        match ip.addr() {
            IpAddr::V4(_) => v4 = true,
            IpAddr::V6(_) => v6 = true,
        }
    }
    let mut out = Vec::new();
    if v4 {
        out.push(IpFamily::V4);
    }
    if v6 {
        out.push(IpFamily::V6);
    }
    out
}
