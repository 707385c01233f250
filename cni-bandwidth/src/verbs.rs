//! The verbs, callable in-process with any [`Kernel`].

use std::path::Path;

use cni_linux::netlink::tc::{self, TcRequest};
use cni_linux::netlink::{Link, TbfParams, mac};
use cni_types::result::Interface;
use cni_types::{Attachment, CniResult};

use crate::config::BandwidthConf;
use crate::error::{BandwidthError, CheckError};
use crate::kernel::Kernel;
use crate::plan::{Plan, TBF_HANDLE, ifb_alias, ifb_name};

/// The host-side interface of the attachment (the reference's `getHostInterface`): the
/// veth peer of the pod's `ifname`, which `prev` must list without a sandbox.
pub fn host_interface(
    kernel: &mut dyn Kernel,
    prev: &CniResult,
    netns: &Path,
    ifname: &str,
) -> Result<Link, BandwidthError> {
    if prev.interfaces.is_empty() {
        return Err(BandwidthError::NoInterfaces);
    }
    let peer = kernel
        .pod_peer(netns, ifname)?
        .ok_or_else(|| BandwidthError::NoPeer(ifname.to_string()))?;
    let link = kernel
        .link_by_index(peer.index)
        .map_err(BandwidthError::netlink("get veth peer"))?
        .ok_or(BandwidthError::PeerNotInHost(peer.index))?;
    if prev
        .interfaces
        .iter()
        .any(|i| i.sandbox.is_empty() && i.name == link.name)
    {
        Ok(link)
    } else {
        Err(BandwidthError::PeerNotListed)
    }
}

/// What ADD created, undone in reverse on failure.
enum Undo {
    Qdisc {
        ifindex: u32,
        parent: u32,
        handle: u32,
    },
    Link(u32),
}

fn undo(kernel: &mut dyn Kernel, done: Vec<Undo>) {
    for step in done.into_iter().rev() {
        let _ = match step {
            Undo::Qdisc {
                ifindex,
                parent,
                handle,
            } => kernel.delete_qdisc(ifindex, parent, handle),
            Undo::Link(index) => kernel.delete_link(index),
        };
    }
}

/// The reference's wording of each step's failure.
fn describe(req: &TcRequest, host: u32) -> &'static str {
    match req {
        TcRequest::Tbf { ifindex, .. } if *ifindex == host => "create qdisc",
        TcRequest::Tbf { .. } => "create ifb qdisc",
        TcRequest::Ingress { .. } => "create ingress qdisc",
        _ => "add filter",
    }
}

/// Installs `plan` on `host`; returns the ifb device, if any. Either everything is installed
/// or nothing is left.
pub fn apply(
    kernel: &mut dyn Kernel,
    plan: &Plan,
    host: &Link,
) -> Result<Option<Link>, BandwidthError> {
    let mut done = Vec::new();
    let ifb = match &plan.egress {
        Some(e) => {
            let link = kernel
                .add_ifb(&e.ifb, &e.ifb_options)
                .map_err(BandwidthError::netlink("adding link"))?;
            done.push(Undo::Link(link.index));
            Some(link)
        }
        None => None,
    };
    let ifb_index = ifb.as_ref().map_or(0, |l| l.index);
    for req in plan.requests(host.index, ifb_index) {
        if let Err(e) = kernel.tc_add(&req) {
            undo(kernel, done);
            return Err(BandwidthError::netlink(describe(&req, host.index))(e));
        }
        match req {
            TcRequest::Tbf {
                ifindex, handle, ..
            } => done.push(Undo::Qdisc {
                ifindex,
                parent: tc::HANDLE_ROOT,
                handle,
            }),
            TcRequest::Ingress { ifindex } => done.push(Undo::Qdisc {
                ifindex,
                parent: tc::HANDLE_INGRESS,
                handle: tc::INGRESS_QDISC,
            }),
            // A filter goes with its qdisc.
            _ => {}
        }
    }
    Ok(ifb)
}

/// ADD: shapes the attachment and returns `prevResult` with the ifb device appended (when
/// egress is shaped). Nothing to shape returns `prevResult` unchanged.
pub fn add(
    conf: &BandwidthConf,
    att: &Attachment,
    netns: Option<&Path>,
    kernel: &mut dyn Kernel,
    tick_in_usec: f64,
) -> Result<CniResult, BandwidthError> {
    let mut result = conf.prev_result.clone().ok_or(BandwidthError::NotChained)?;
    if conf.shaping.is_none() {
        return Ok(result);
    }
    let netns = netns.ok_or(BandwidthError::NoNetns)?;
    let host = host_interface(kernel, &result, netns, &att.ifname)?;
    let plan = Plan::new(
        &conf.shaping,
        &conf.name,
        &att.container_id,
        host.mtu,
        tick_in_usec,
    );
    if let Some(ifb) = apply(kernel, &plan, &host)? {
        result.interfaces.push(Interface {
            name: ifb.name.clone(),
            mac: ifb.mac.map(|m| mac::format(&m)).unwrap_or_default(),
            ..Default::default()
        });
    }
    Ok(result)
}

/// True for a redirect our DEL may remove: to the attachment's ifb device, or to a device
/// that no longer exists (the reference's DEL deletes the ifb and leaves the redirect; the
/// kernel then reports its target as index 0).
fn stale_or_ours(kernel: &mut dyn Kernel, target: u32, ifb: Option<&Link>) -> bool {
    target == 0
        || ifb.is_some_and(|l| l.index == target)
        || matches!(kernel.link_by_index(target), Ok(None))
}

/// DEL: removes the attachment's ifb device and, when the host-side interface can still be
/// found, the qdiscs ADD put on it (the reference leaves those until the veth goes). Every
/// step is tried; what is already gone counts as removed.
pub fn del(
    conf: &BandwidthConf,
    att: &Attachment,
    netns: Option<&Path>,
    kernel: &mut dyn Kernel,
) -> Result<(), BandwidthError> {
    let mut errors = Vec::new();
    let name = ifb_name(&conf.name, &att.container_id);
    let ifb = match kernel.link_by_name(&name) {
        Ok(l) => l.filter(|l| l.is_kind("ifb")),
        Err(e) => {
            errors.push(BandwidthError::netlink("get ifb device")(e));
            None
        }
    };
    let host = match (&conf.prev_result, netns) {
        (Some(prev), Some(ns)) => host_interface(kernel, prev, ns, &att.ifname).ok(),
        _ => None,
    };
    if let Some(host) = host {
        let redirects: Vec<u32> = kernel
            .filters(host.index, tc::INGRESS_QDISC)
            .unwrap_or_default()
            .iter()
            .flat_map(|f| f.redirects.iter().map(|r| r.ifindex))
            .collect();
        if redirects
            .iter()
            .any(|&t| stale_or_ours(kernel, t, ifb.as_ref()))
        {
            gone_ok(
                &mut errors,
                "delete ingress qdisc",
                kernel.delete_qdisc(host.index, tc::HANDLE_INGRESS, tc::INGRESS_QDISC),
            );
        }
        if conf.shaping.ingress.is_some() {
            let ours = kernel
                .qdiscs(host.index)
                .unwrap_or_default()
                .iter()
                .any(|q| q.parent == tc::HANDLE_ROOT && q.handle == TBF_HANDLE && q.kind == "tbf");
            if ours {
                gone_ok(
                    &mut errors,
                    "delete qdisc",
                    kernel.delete_qdisc(host.index, tc::HANDLE_ROOT, TBF_HANDLE),
                );
            }
        }
    }
    if let Some(ifb) = ifb {
        gone_ok(&mut errors, "delete ifb", kernel.delete_link(ifb.index));
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(BandwidthError::Many(errors)),
    }
}

fn gone_ok(
    errors: &mut Vec<BandwidthError>,
    what: &'static str,
    r: Result<(), cni_linux::netlink::Error>,
) {
    if let Err(e) = r
        && !e.is_not_found()
    {
        errors.push(BandwidthError::netlink(what)(e));
    }
}

fn compare(got: Option<TbfParams>, want: TbfParams) -> Result<(), CheckError> {
    let got = got.ok_or(CheckError::NoQdisc)?;
    if got.rate != want.rate {
        return Err(CheckError::Rate);
    }
    if got.limit != want.limit {
        return Err(CheckError::Limit);
    }
    if got.buffer != want.buffer {
        return Err(CheckError::Buffer);
    }
    Ok(())
}

fn root_tbf(kernel: &mut dyn Kernel, ifindex: u32) -> Result<Option<TbfParams>, BandwidthError> {
    Ok(kernel
        .qdiscs(ifindex)
        .map_err(BandwidthError::netlink("list qdiscs"))?
        .into_iter()
        .find(|q| q.parent == tc::HANDLE_ROOT && q.kind == "tbf")
        .and_then(|q| q.tbf))
}

/// CHECK: the token buckets on the host interface and the ifb device have the configured
/// rate, limit and buffer (the reference's comparisons), and the host interface's ingress
/// redirects to the ifb device (which the reference does not check).
pub fn check(
    conf: &BandwidthConf,
    att: &Attachment,
    netns: Option<&Path>,
    kernel: &mut dyn Kernel,
    tick_in_usec: f64,
) -> Result<(), BandwidthError> {
    let prev = conf
        .prev_result
        .as_ref()
        .ok_or(BandwidthError::NotChainedCheck)?;
    let netns = netns.ok_or(BandwidthError::NoNetns)?;
    let host = host_interface(kernel, prev, netns, &att.ifname)?;
    if let Some(b) = conf.shaping.ingress {
        compare(root_tbf(kernel, host.index)?, b.tbf(tick_in_usec))?;
    }
    if let Some(b) = conf.shaping.egress {
        let name = ifb_name(&conf.name, &att.container_id);
        let ifb = kernel
            .link_by_name(&name)
            .map_err(BandwidthError::netlink("get ifb device"))?
            .ok_or(CheckError::NoIfb)?;
        compare(root_tbf(kernel, ifb.index)?, b.tbf(tick_in_usec))?;
        let redirected = kernel
            .filters(host.index, tc::INGRESS_QDISC)
            .map_err(BandwidthError::netlink("list filters"))?
            .iter()
            .any(|f| {
                f.redirects
                    .iter()
                    .any(|r| r.egress_redirect && r.ifindex == ifb.index)
            });
        if !redirected {
            return Err(CheckError::NoRedirect {
                host: host.name,
                ifb: name,
            }
            .into());
        }
    }
    Ok(())
}

/// GC (the reference has none): deletes the ifb devices this network created (they carry
/// its alias) for attachments not in `valid`. Devices without our alias (other networks',
/// the reference's) are left alone.
pub fn gc(
    network: &str,
    valid: &[Attachment],
    kernel: &mut dyn Kernel,
) -> Result<(), BandwidthError> {
    let keep: Vec<String> = valid
        .iter()
        .map(|a| ifb_name(network, &a.container_id))
        .collect();
    let alias = ifb_alias(network);
    let mut errors = Vec::new();
    for ifb in kernel
        .ifbs()
        .map_err(BandwidthError::netlink("list links"))?
    {
        if ifb.alias.as_deref() == Some(alias.as_str()) && !keep.contains(&ifb.name) {
            gone_ok(&mut errors, "delete ifb", kernel.delete_link(ifb.index));
        }
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(BandwidthError::Many(errors)),
    }
}

#[cfg(test)]
mod tests;
