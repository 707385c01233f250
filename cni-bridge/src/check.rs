//! CHECK: the reference's checks of the bridge, the veth pair, the addresses and the routes.

use cni_linux::netlink::{Handle, IpFamily, Link, TABLE_MAIN, mac};
use cni_linux::netns::NetNs;
use cni_proto::delegate;
use cni_types::{CniResult, Interface};

use crate::config::BridgeConf;
use crate::deps::{Attachment, Deps};
use crate::error::BridgeError;

fn fail(msg: String) -> BridgeError {
    BridgeError::Check(msg)
}

fn mac_of(link: &Link) -> String {
    link.mac.map(|m| mac::format(&m)).unwrap_or_default()
}

/// CHECK: IPAM CHECK first, then `prevResult` against the kernel: the bridge exists, is a
/// bridge, has the recorded MAC and the configured promiscuous mode; the container interface
/// is a veth in `CNI_NETNS` with the recorded MAC; a host veth is its peer and a port of the
/// bridge; every address is on the interface with its subnet route; every route is there.
pub fn check(conf: &BridgeConf, att: &Attachment, deps: &mut Deps) -> Result<(), BridgeError> {
    let netns = att.netns.as_deref().unwrap_or(std::path::Path::new(""));
    let ns = NetNs::open(netns).map_err(|source| BridgeError::Netns {
        path: netns.to_path_buf(),
        source,
    })?;
    if let Some(ipam) = &conf.ipam_type {
        delegate::check(&*deps.exec, ipam, &conf.raw, &att.ipam_env())
            .map_err(BridgeError::Ipam)?;
    }
    let Some(result) = conf.prev_result()? else {
        return Err(fail("Required prevResult missing".into()));
    };
    let ns_str = att.netns_string();
    let br_if = result
        .interfaces
        .iter()
        .find(|i| i.name == conf.bridge)
        .cloned()
        .unwrap_or_default();
    let cont_if = result
        .interfaces
        .iter()
        .find(|i| i.name == att.ifname && i.sandbox == ns_str)
        .cloned()
        .unwrap_or_default();

    let nl = |e| BridgeError::netlink("netlink", e);
    let mut host = Handle::new().map_err(nl)?;
    let br = validate_interface(&mut host, &br_if, false)?;
    if !br.is_kind("bridge") {
        return Err(fail(format!(
            "Interface {} does not have link type of bridge",
            br_if.name
        )));
    }
    if !br_if.mac.is_empty() && br_if.mac != mac_of(&br) {
        return Err(fail(format!(
            "Bridge interface {} Mac doesn't match: {}",
            br_if.name, br_if.mac
        )));
    }
    if br.promisc != conf.promisc_mode {
        return Err(fail(format!(
            "Bridge interface {} configured Promisc Mode {} doesn't match current state: {} ",
            br_if.name, conf.promisc_mode, br.promisc
        )));
    }
    if cont_if.sandbox != ns_str {
        return Err(fail(format!(
            "Sandbox in prevResult {} doesn't match configured netns: {}",
            cont_if.sandbox, ns_str
        )));
    }

    let mut inner = Handle::new_in(&ns).map_err(nl)?;
    let cont = validate_interface(&mut inner, &cont_if, true)?;
    if !cont.is_kind("veth") {
        return Err(fail(format!(
            "Error: Container interface {} not of type veth",
            cont.name
        )));
    }
    if !cont_if.mac.is_empty() && cont_if.mac != mac_of(&cont) {
        return Err(fail(format!(
            "Interface {} Mac {} doesn't match container Mac: {}",
            cont_if.name,
            cont_if.mac,
            mac_of(&cont)
        )));
    }

    // The host veth whose peer is the container interface and whose master is the bridge.
    let mut veth_found = false;
    for intf in &result.interfaces {
        if intf.name == br_if.name || intf.name == cont_if.name {
            continue;
        }
        let link = validate_interface(&mut host, intf, false)?;
        if !link.is_kind("veth") {
            continue;
        }
        if Some(link.index) != cont.link
            || link.link != Some(cont.index)
            || link.master != Some(br.index)
        {
            continue;
        }
        if !intf.mac.is_empty() && intf.mac != mac_of(&link) {
            return Err(fail(format!(
                "Interface {} Mac doesn't match: {} not found",
                intf.name, intf.mac
            )));
        }
        veth_found = true;
        break;
    }
    if !veth_found {
        return Err(fail(format!(
            "CNI veth created for bridge {} was not found",
            conf.bridge
        )));
    }

    check_ips_and_routes(&mut inner, &cont, &att.ifname, &result)
}

/// The reference's `validateInterface`: a name, a link of that name, in a sandbox or not.
fn validate_interface(
    h: &mut Handle,
    intf: &Interface,
    in_sandbox: bool,
) -> Result<Link, BridgeError> {
    if intf.name.is_empty() {
        return Err(fail("Interface name missing ".into()));
    }
    let link = h
        .link_by_name(&intf.name)
        .ok()
        .flatten()
        .ok_or_else(|| fail(format!("Interface name {} not found", intf.name)))?;
    if in_sandbox && intf.sandbox.is_empty() {
        return Err(fail(format!(
            "Interface {} is expected to be in a sandbox",
            intf.name
        )));
    }
    if !in_sandbox && !intf.sandbox.is_empty() {
        return Err(fail(format!(
            "Interface {} should not be in sandbox",
            intf.name
        )));
    }
    Ok(link)
}

/// `ValidateExpectedInterfaceIPs` and `ValidateExpectedRoute`, inside the container.
fn check_ips_and_routes(
    inner: &mut Handle,
    cont: &Link,
    ifname: &str,
    result: &CniResult,
) -> Result<(), BridgeError> {
    let nl = |e| BridgeError::netlink("netlink", e);
    let addrs = inner
        .addrs(Some(cont.index), None)
        .map_err(|_| fail("Cannot obtain List of IP Addresses".into()))?;
    let mut routes = Vec::new();
    for fam in [IpFamily::V4, IpFamily::V6] {
        routes.extend(inner.routes(Some(fam), None).map_err(nl)?);
    }
    for ip in &result.ips {
        if !addrs.iter().any(|a| a.addr == ip.address) {
            return Err(fail(format!(
                "Failed to match addr {} on interface {ifname}",
                ip.address
            )));
        }
        let subnet = ip.address.trunc();
        if !routes.iter().any(|r| r.dst == subnet) {
            let gw = ip
                .gateway
                .map(|g| g.to_string())
                .unwrap_or_else(|| "<nil>".into());
            return Err(fail(format!(
                "Failed to find Gateway {gw} for interface {ifname}"
            )));
        }
    }
    for r in &result.routes {
        let dst = r.dst.trunc();
        let table = r.table.unwrap_or(TABLE_MAIN);
        let found = routes.iter().any(|k| {
            k.dst == dst
                && k.table == Some(table)
                // A default route matches whatever its gateway (as the reference).
                && (dst.prefix_len() == 0 || r.gw.is_none() || k.gw == r.gw)
        });
        if !found {
            let gw =
                r.gw.map(|g| g.to_string())
                    .unwrap_or_else(|| "<nil>".into());
            return Err(fail(format!(
                "Expected Route {{Dst:{} GW:{gw}}} not found in routing table",
                r.dst
            )));
        }
    }
    Ok(())
}
