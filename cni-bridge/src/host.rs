//! Host-side plumbing: the bridge, its gateway addresses, the veth pair and its port settings.

use std::net::IpAddr;
use std::os::fd::AsFd;

use cni_linux::IpFamily;
use cni_linux::netlink::{
    AddrFlags, BridgeOptions, BridgePortOptions, Handle, Link, VethRequest, mac,
};
use cni_linux::netns::NetNs;
use cni_linux::sysctl;
use cni_types::go::quote as go_quote;
use ipnet::IpNet;

use crate::config::BridgeConf;
use crate::error::BridgeError;

/// The bridge, as ADD found or created it.
#[derive(Debug, Clone)]
pub(crate) struct BridgeLink {
    pub link: Link,
    /// Created by this call with a fixed MAC: its MAC cannot change as ports come and go.
    pub created: bool,
}

/// Creates the bridge if missing (up, with a fixed random MAC so it never follows its ports'
/// MACs, the configured MTU and VLAN filtering), or checks that the existing link is a
/// bridge; sets promiscuous mode if asked, `accept_ra=0` and up.
pub(crate) fn ensure_bridge(
    host: &mut Handle,
    conf: &BridgeConf,
) -> Result<BridgeLink, BridgeError> {
    ensure_bridge_inner(host, conf).map_err(|e| BridgeError::Bridge {
        name: conf.bridge.clone(),
        source: Box::new(e),
    })
}

fn ensure_bridge_inner(host: &mut Handle, conf: &BridgeConf) -> Result<BridgeLink, BridgeError> {
    let name = conf.bridge.as_str();
    let lookup_err = |e| BridgeError::netlink(format!("could not lookup {}", go_quote(name)), e);
    let mut created = false;
    let link = match host.link_by_name(name).map_err(lookup_err)? {
        Some(l) => l,
        None => {
            let opts = BridgeOptions {
                mtu: conf.mtu,
                vlan_filtering: conf.vlan_filtering().then_some(true),
                mac: Some(mac::random_local()),
                up: true,
            };
            match host.add_bridge(name, &opts) {
                Ok(l) => {
                    created = true;
                    l
                }
                // Created concurrently by another ADD: use it.
                Err(e) if e.is_exists() => host
                    .link_by_name(name)
                    .map_err(lookup_err)?
                    .ok_or_else(|| BridgeError::LinkVanished(name.to_owned()))?,
                Err(e) => {
                    return Err(BridgeError::netlink(
                        format!("could not add {}", go_quote(name)),
                        e,
                    ));
                }
            }
        }
    };
    if !link.is_kind("bridge") {
        return Err(BridgeError::NotABridge(name.to_owned()));
    }
    if conf.promisc_mode && !link.promisc {
        host.set_promisc(link.index, true).map_err(|e| {
            BridgeError::netlink(
                format!("could not set promiscuous mode on {}", go_quote(name)),
                e,
            )
        })?;
    }
    // We want to own the routes of this interface (best effort, as the reference). The link
    // reports the value, so `/proc/sys` (whose lookups slow down with every namespace on the
    // machine) is only written when it has to change: on the first ADD; not at all where the
    // bridge has no IPv6 (the write could only fail).
    if matches!(link.conf.ipv6_accept_ra, Some(v) if v != 0) {
        let _ = sysctl::write(&format!("net/ipv6/conf/{name}/accept_ra"), "0");
    }
    if !link.up {
        host.set_up(link.index)
            .map_err(|e| BridgeError::netlink(format!("failed to set {} up", go_quote(name)), e))?;
    }
    Ok(BridgeLink { link, created })
}

/// A random host-side veth name: `veth` and 8 hex digits, as the reference.
pub(crate) fn random_veth_name() -> String {
    let m = mac::random_local();
    format!("veth{:02x}{:02x}{:02x}{:02x}", m[2], m[3], m[4], m[5])
}

/// What [`create_veth`] made.
#[derive(Debug, Clone)]
pub(crate) struct Veth {
    /// The host end (already enslaved and up).
    pub host: Link,
    /// The container end's index in the container namespace.
    pub container_index: Option<u32>,
    /// The container end's MAC.
    pub container_mac: [u8; 6],
}

/// Creates the veth pair in one request: the host end `veth<hex>` enslaved to `master`, the
/// container end created directly inside `ns` as `ifname`, with `container_mac` (down: the
/// kernel cannot bring it up in the creating request). The host end then gets IPv6 disabled
/// before it is brought up: it is a bridge port, which never needs an address, and otherwise
/// each port adds a link-local address, its routes and multicast memberships to the node,
/// whose IPv6 routing table then grows with every pod and slows every later link change.
/// A host-name collision is retried (10 attempts, as the reference); an existing `ifname` in
/// the container is the reference's error.
#[allow(clippy::too_many_arguments)]
pub(crate) fn create_veth(
    host: &mut Handle,
    ns: &NetNs,
    ifname: &str,
    master: Option<u32>,
    mtu: Option<u32>,
    container_mac: [u8; 6],
) -> Result<Veth, BridgeError> {
    let mut last = None;
    for _ in 0..10 {
        let name = random_veth_name();
        let mut req = VethRequest::new(&name, ifname);
        req.mtu = mtu;
        req.peer_mac = Some(container_mac);
        req.peer_netns = Some(ns.as_fd());
        req.master = master;
        req.up = false;
        match host.add_veth(&req) {
            Ok(link) => {
                let container_index = link.link;
                host_port_up(host, &link)?;
                return Ok(Veth {
                    host: link,
                    container_index,
                    container_mac,
                });
            }
            Err(e) if e.is_exists() => {
                // Which name is taken? A host collision is retried with another name.
                let taken_here = host
                    .link_by_name(&name)
                    .map_err(|e| BridgeError::netlink("failed to make veth pair", e))?
                    .is_some();
                if taken_here {
                    last = Some(e);
                    continue;
                }
                return Err(BridgeError::VethNameTaken {
                    ifname: ifname.to_owned(),
                    peer: name,
                });
            }
            Err(e) => return Err(BridgeError::netlink("failed to make veth pair", e)),
        }
    }
    Err(match last {
        Some(e) => BridgeError::netlink("failed to find a unique veth name", e),
        None => BridgeError::NoVethName,
    })
}

/// Disables IPv6 on a new host veth (best effort: a kernel without IPv6 has no such sysctl)
/// and brings it up; if it cannot come up, the pair is deleted again.
fn host_port_up(host: &mut Handle, link: &Link) -> Result<(), BridgeError> {
    let _ = sysctl::write(&format!("net.ipv6.conf.{}.disable_ipv6", link.name), "1");
    host.set_up(link.index).map_err(|e| {
        let _ = host.delete_link(link.index);
        BridgeError::netlink(format!("failed to set {} up", go_quote(&link.name)), e)
    })
}

/// Hairpin, isolation and VLANs of the host port, as the reference's `setupVeth`.
pub(crate) fn configure_port(
    host: &mut Handle,
    port: &Link,
    hairpin: bool,
    isolated: bool,
    vlan: Option<u16>,
    trunk: &[u16],
    preserve_default_vlan: bool,
) -> Result<(), BridgeError> {
    let name = go_quote(&port.name);
    let opts = BridgePortOptions {
        hairpin: hairpin.then_some(true),
        isolated: isolated.then_some(true),
    };
    host.set_bridge_port(port.index, &opts).map_err(|e| {
        BridgeError::netlink(
            if hairpin {
                format!("failed to setup hairpin mode for {}", port.name)
            } else {
                format!("failed to set port isolation on {name}")
            },
            e,
        )
    })?;
    if (vlan.is_some() || !trunk.is_empty()) && !preserve_default_vlan {
        let err = |e| {
            BridgeError::netlink(
                format!("failed to remove default vlan on interface {name}"),
                e,
            )
        };
        for v in host.bridge_vlans(port.index).map_err(err)? {
            host.bridge_vlan_del(port.index, v.vid, false)
                .map_err(err)?;
        }
    }
    let err = |e| BridgeError::netlink(format!("failed to setup vlan tag on interface {name}"), e);
    if let Some(v) = vlan {
        host.bridge_vlan_add(port.index, v, true, true, false)
            .map_err(err)?;
    }
    for &v in trunk {
        host.bridge_vlan_add(port.index, v, false, false, false)
            .map_err(err)?;
    }
    Ok(())
}

/// The `<bridge>.<vlan>` gateway interface for a VLAN network: a veth pair in the host
/// namespace whose one end is a VLAN access port of the bridge and whose other end carries
/// the gateway address. Created when missing; returns the gateway end.
pub(crate) fn ensure_vlan_interface(
    host: &mut Handle,
    bridge: &Link,
    vlan: u16,
    preserve_default_vlan: bool,
) -> Result<Link, BridgeError> {
    let name = format!("{}.{vlan}", bridge.name);
    if let Some(l) = host.link_by_name(&name).map_err(|e| {
        BridgeError::netlink(format!("failed to find interface {}", go_quote(&name)), e)
    })? {
        return Ok(l);
    }
    let here = NetNs::current().map_err(|e| {
        BridgeError::netlink(
            "faild to find host namespace",
            cni_linux::netlink::Error::from(e),
        )
    })?;
    let veth = create_veth(
        host,
        &here,
        &name,
        Some(bridge.index),
        (bridge.mtu > 0).then_some(bridge.mtu),
        mac::random_local(),
    )
    .map_err(|e| BridgeError::Gateway {
        context: format!("faild to create vlan gateway {}", go_quote(&name)),
        source: Box::new(e),
    })?;
    configure_port(
        host,
        &veth.host,
        false,
        false,
        Some(vlan),
        &[],
        preserve_default_vlan,
    )?;
    let link = host
        .require_link(&name)
        .map_err(|e| BridgeError::netlink(format!("failed to lookup {}", go_quote(&name)), e))?;
    host.set_up(link.index)
        .map_err(|e| BridgeError::netlink(format!("failed to up {}", go_quote(&name)), e))?;
    Ok(link)
}

/// `ensureAddr`: puts `gw` on `link`. An identical address is fine; another IPv4 address,
/// or an overlapping IPv6 one, is replaced with `force` and an error otherwise. After adding,
/// the link's MAC is set to itself so that a bridge keeps it.
pub(crate) fn ensure_addr(
    host: &mut Handle,
    link: &Link,
    gw: IpNet,
    force: bool,
) -> Result<(), BridgeError> {
    let family = IpFamily::of(&gw.addr());
    let addrs = host
        .addrs(Some(link.index), Some(family))
        .map_err(|e| BridgeError::netlink("could not get list of IP addresses", e))?;
    for a in addrs {
        if a.addr == gw {
            return Ok(());
        }
        if family == IpFamily::V4 || a.addr.contains(&gw.addr()) || gw.contains(&a.addr.addr()) {
            if force {
                host.addr_del(link.index, a.addr).map_err(|e| {
                    BridgeError::netlink(
                        format!("could not remove IP address from {}", go_quote(&link.name)),
                        e,
                    )
                })?;
            } else {
                return Err(BridgeError::AddressConflict {
                    link: link.name.clone(),
                    gateway: gw,
                });
            }
        }
    }
    // An IPv6 gateway skips duplicate address detection: IPAM never hands it to a pod, and
    // with DAD the first pods on a new bridge could not reach it for one to two seconds.
    let flags = match family {
        IpFamily::V4 => AddrFlags::NONE,
        IpFamily::V6 => AddrFlags::NODAD,
    };
    match host.addr_add(link.index, gw, flags) {
        Ok(()) => {}
        Err(e) if e.is_exists() => {}
        Err(e) => {
            return Err(BridgeError::netlink(
                format!("could not add IP address to {}", go_quote(&link.name)),
                e,
            ));
        }
    }
    // Its MAC now (a bridge follows its lowest port MAC until one is set, and has none at all
    // without ports), made permanent.
    let current = host
        .link_by_index(link.index)
        .map_err(|e| BridgeError::netlink("could not set bridge's mac", e))?
        .and_then(|l| l.mac)
        .filter(|m| mac::is_unicast(m) && *m != [0; 6]);
    if let Some(m) = current {
        host.set_mac(link.index, m)
            .map_err(|e| BridgeError::netlink("could not set bridge's mac", e))?;
    }
    Ok(())
}

/// `network + 1`: the gateway the reference picks when IPAM gives none.
pub(crate) fn default_gateway(addr: &IpNet) -> IpAddr {
    match addr.trunc().addr() {
        IpAddr::V4(a) => IpAddr::V4(u32::from(a).wrapping_add(1).into()),
        IpAddr::V6(a) => IpAddr::V6(u128::from(a).wrapping_add(1).into()),
    }
}

/// Turns forwarding on for `family` in `host`'s namespace, which must be the calling thread's
/// (only writes when off). The value is read over netlink: `/proc/sys` lookups slow down with
/// every namespace on the machine.
pub(crate) fn enable_forwarding(host: &mut Handle, family: IpFamily) -> Result<(), BridgeError> {
    if let Ok(Some(true)) = host.forwarding(family) {
        return Ok(());
    }
    let key = match family {
        IpFamily::V4 => "net/ipv4/ip_forward",
        IpFamily::V6 => "net/ipv6/conf/all/forwarding",
    };
    sysctl::ensure(key, "1")
        .map(drop)
        .map_err(|source| BridgeError::Sysctl {
            context: "failed to enable forwarding".into(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_is_network_plus_one() {
        assert_eq!(
            default_gateway(&"10.1.2.77/24".parse().unwrap()),
            "10.1.2.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            default_gateway(&"2001:db8::42/64".parse().unwrap()),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn veth_names_look_like_the_reference() {
        let a = random_veth_name();
        assert_eq!(a.len(), 12);
        assert!(a.starts_with("veth"));
        assert!(a[4..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_veth_name());
    }
}
