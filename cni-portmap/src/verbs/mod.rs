//! The verbs, callable in-process with any firewall applier and host.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::net::IpAddr;

use cni_linux::conntrack::ConntrackError;
use cni_linux::firewall::iptables::IptablesError;
use cni_linux::firewall::{Backend, FirewallApplier, FirewallError, IpFamily};
use cni_types::error::collect_errors;
use cni_types::{Attachment, CniResult};
use ipnet::IpNet;

use crate::config::{PortmapConf, backend_name};
use crate::error::PortmapError;
use crate::host::Host;
use crate::{iptables, localnet, nftables};

fn other(b: Backend) -> Backend {
    match b {
        Backend::Iptables => Backend::Nftables,
        Backend::Nftables => Backend::Iptables,
    }
}

fn nft_errno_kind(e: &FirewallError) -> Option<ErrorKind> {
    match e {
        FirewallError::Nftables(n) => n
            .errno()
            .map(|n| std::io::Error::from_raw_os_error(n).kind()),
        _ => None,
    }
}

/// Whether an iptables failure means "this family's iptables is not usable here" (binary
/// missing, table not readable) rather than "our change was refused".
fn iptables_unusable(e: &FirewallError) -> bool {
    match e {
        FirewallError::Iptables(i) => match i {
            IptablesError::NotFound { .. } | IptablesError::Spawn { .. } => true,
            IptablesError::Failed { script, .. } => script.is_empty(),
            _ => false,
        },
        _ => false,
    }
}

/// Whether a conntrack failure means there is no conntrack table to clean here.
fn conntrack_unsupported(e: &ConntrackError) -> bool {
    let errno = match e {
        ConntrackError::Socket(s) => s.raw_os_error(),
        ConntrackError::Request { source, .. } => source.raw_os_error(),
        _ => None,
    };
    matches!(
        errno,
        Some(libc::EPROTONOSUPPORT | libc::EOPNOTSUPP | libc::EAFNOSUPPORT)
    )
}

fn container_nets(conf: &PortmapConf) -> Vec<IpNet> {
    [conf.container_v4, conf.container_v6]
        .into_iter()
        .flatten()
        .collect()
}

fn fam(net: &IpNet) -> IpFamily {
    IpFamily::of(&net.addr())
}

/// ADD: installs the mappings for the container's addresses, deletes stale UDP conntrack
/// entries of the mapped host ports and (with `snat`) enables `route_localnet` on the host
/// interface towards the container's IPv4 address. Returns `prevResult`. With no mappings,
/// nothing is touched. On failure, what was installed is removed again.
pub fn add(
    conf: &PortmapConf,
    att: &Attachment,
    fw: &mut dyn FirewallApplier,
    host: &mut dyn Host,
) -> Result<CniResult, PortmapError> {
    let prev = conf.prev_result.clone().ok_or(PortmapError::NotChained)?;
    if conf.mappings.is_empty() {
        return Ok(prev);
    }
    let nets = container_nets(conf);
    let undo = |fw: &mut dyn FirewallApplier, e: PortmapError| {
        let _ = remove(conf.backend, conf, att, fw);
        e
    };
    if let Err(e) = install(conf, att, &nets, fw) {
        return Err(undo(fw, e));
    }
    // After the rules exist, so new packets use them. A stale entry would send the port's
    // traffic elsewhere, so a failure fails ADD (the reference only logs it), unless the
    // kernel has no conntrack to clean.
    let udp = conf.udp_host_ports();
    if !udp.is_empty() {
        for n in &nets {
            match host.delete_udp_conntrack(fam(n), &udp) {
                Ok(_) => {}
                Err(e) if conntrack_unsupported(&e) => {}
                Err(e) => return Err(undo(fw, PortmapError::Conntrack(e))),
            }
        }
    }
    if conf.snat
        && let Some(v4) = conf.container_v4
        && let Err(e) = host.enable_route_localnet(v4.addr())
    {
        return Err(undo(fw, e));
    }
    Ok(prev)
}

fn install(
    conf: &PortmapConf,
    att: &Attachment,
    nets: &[IpNet],
    fw: &mut dyn FirewallApplier,
) -> Result<(), PortmapError> {
    match conf.backend {
        Backend::Iptables => {
            let mut plans = nets
                .iter()
                .map(|n| iptables::add_plan(conf, &att.container_id, *n))
                .collect::<Result<Vec<_>, _>>()?;
            // The route_localnet guard, in the same iptables-restore as the mappings.
            if conf.snat && conf.container_v4.is_some() {
                plans.push(localnet::iptables_add_plan()?);
            }
            fw.apply_iptables(&plans).map_err(PortmapError::firewall(
                "unable to set up iptables rules for port mappings",
            ))
        }
        Backend::Nftables => {
            for n in nets {
                nft_add(conf, att, *n, fw)?;
            }
            Ok(())
        }
    }
}

fn nft_add(
    conf: &PortmapConf,
    att: &Attachment,
    net: IpNet,
    fw: &mut dyn FirewallApplier,
) -> Result<(), PortmapError> {
    const WHAT: &str = "unable to set up nftables rules for port mappings";
    let f = fam(&net);
    // Fast path: the skeleton is in place and the host ports are free.
    let mut result = fw.apply_nft(&nftables::add_plan(conf, att, net, &[])?);
    // ENOENT: no table yet. EEXIST: the skeleton has another stamp (conditions or mark of
    // another configuration), or a host port is held by another container. Look at the
    // table once: a port held by another attachment is refused (never taken over: the first
    // holder keeps it), as is a skeleton whose conditions or mark another network with live
    // mappings relies on; otherwise write what is missing. Retried in case another ADD
    // raced us.
    for _ in 0..3 {
        match &result {
            Err(e)
                if matches!(
                    nft_errno_kind(e),
                    Some(ErrorKind::AlreadyExists | ErrorKind::NotFound)
                ) => {}
            _ => break,
        }
        let listing = fw
            .nft_table(nftables::family(f), nftables::TABLE)
            .map_err(PortmapError::firewall(WHAT))?;
        let stamp = nftables::skeleton_stamp(conf, f)?;
        let (skeleton_ok, taken) = match &listing {
            None => (false, Vec::new()),
            Some(t) => (
                nftables::listed_stamp(t).as_deref() == Some(stamp.as_str()),
                nftables::holders(t, f, &nftables::entries(conf, net)),
            ),
        };
        if let Some(h) = taken.iter().find(|h| {
            !h.owner
                .as_deref()
                .is_some_and(|o| nftables::is_owner(o, &conf.name, att))
        }) {
            return Err(PortmapError::HostPortTaken {
                key: format!("{} {}", h.entry.map, nftables::join(&h.entry.key)),
                owner: h.owner.clone().unwrap_or_default(),
                target: h.target.clone().unwrap_or_else(|| "?".to_owned()),
            });
        }
        // Only this attachment's own elements (an earlier ADD with another address) remain.
        let replace: Vec<nftables::Entry> = taken.into_iter().map(|h| h.entry).collect();
        if !skeleton_ok && let Some(t) = &listing {
            let others = nftables::other_networks(t, &conf.name);
            if !others.is_empty() {
                return Err(PortmapError::SkeletonInUse {
                    table: format!("{} {}", nftables::family(f), nftables::TABLE),
                    networks: others.join(", "),
                });
            }
        }
        let plan = if skeleton_ok {
            nftables::add_plan_with_guard(conf, att, net, &replace)?
        } else {
            nftables::add_plan_with_skeleton(conf, att, net, &replace)?
        };
        result = fw.apply_nft(&plan);
    }
    result.map_err(PortmapError::firewall(WHAT))
}

/// Removes the container's state from one backend, in both families.
fn remove(
    backend: Backend,
    conf: &PortmapConf,
    att: &Attachment,
    fw: &mut dyn FirewallApplier,
) -> Result<(), PortmapError> {
    let mut errors = Vec::new();
    match backend {
        Backend::Iptables => {
            let mut unusable = 0;
            for f in [IpFamily::V4, IpFamily::V6] {
                // Without the container's chains there is nothing to remove (a jump needs its
                // chain), and no iptables process needs to start: the usual case for the
                // backend the container does not use.
                let chains = [
                    iptables::dnat_chain(&conf.name, &att.container_id),
                    iptables::old_snat_chain(&conf.name, &att.container_id),
                ];
                if !chains.iter().any(|c| {
                    fw.iptables_chain_may_exist(f, iptables::TABLE, c)
                        .unwrap_or(true)
                }) {
                    continue;
                }
                let plan = iptables::del_plan(f, &conf.name, &att.container_id);
                match fw.apply_iptables(&[plan]) {
                    Ok(()) => {}
                    Err(e) if iptables_unusable(&e) => {
                        unusable += 1;
                        if unusable == 2 {
                            errors.push(PortmapError::firewall(
                                "neither iptables nor ip6tables is usable",
                            )(e));
                        }
                    }
                    Err(e) => errors.push(PortmapError::firewall(match f {
                        IpFamily::V4 => "could not teardown ipv4 dnat",
                        IpFamily::V6 => "could not teardown ipv6 dnat",
                    })(e)),
                }
            }
        }
        Backend::Nftables => {
            for f in [IpFamily::V4, IpFamily::V6] {
                if let Err(e) = nft_del(conf, att, f, fw) {
                    errors.push(PortmapError::firewall("error deleting nftables rules")(e));
                }
            }
        }
    }
    collect_errors(errors, PortmapError::Many)
}

fn nft_del(
    conf: &PortmapConf,
    att: &Attachment,
    f: IpFamily,
    fw: &mut dyn FirewallApplier,
) -> Result<(), FirewallError> {
    // Without the table there is nothing to delete. Asking first (one lookup) spares the
    // usual DEL of the backend the container did not use a batch the kernel would refuse,
    // and a refused batch waits for an RCU grace period (~10 ms here) before it answers.
    if !fw.nft_table_exists(nftables::family(f), nftables::TABLE)? {
        return Ok(());
    }
    let comment = nftables::owner(&conf.name, att).comment();
    match conf.container(f) {
        // Some mappings did not validate (DEL of a config ADD refused): what ADD may have
        // written cannot be computed; find it by owner.
        Some(_) if conf.unvalidated_mappings => {}
        Some(net) => {
            let plan = nftables::del_plan(f, &comment, &nftables::entries(conf, net));
            if plan.is_empty() {
                return Ok(());
            }
            match fw.apply_nft(&plan) {
                Ok(()) => return Ok(()),
                Err(e)
                    if matches!(
                        nft_errno_kind(&e),
                        Some(ErrorKind::AlreadyExists | ErrorKind::NotFound)
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        // With prevResult, the container had no address of this family: ADD wrote nothing.
        None if conf.prev_result.is_some() && !conf.unvalidated_mappings => return Ok(()),
        None => {}
    }
    // A key holds another value (our own earlier address, or a refused ADD), there is no
    // table, or no address (or no valid mappings) to compute the elements from: delete
    // exactly the elements carrying this attachment's comment.
    let Some(listing) = fw.nft_table(nftables::family(f), nftables::TABLE)? else {
        return Ok(());
    };
    let plan = nftables::del_plan_owned(&listing, f, &conf.name, att);
    if plan.is_empty() {
        return Ok(());
    }
    fw.apply_nft(&plan)
}

/// Removes the [`localnet`] guard from both backends when no interface has
/// `route_localnet` on any more (the plugin never turns it off itself; see [`localnet`]).
/// Cheap when there is nothing to do: one element lookup (nftables) and a chain lookup
/// (iptables) before the interfaces are looked at.
fn drop_unneeded_guard(
    fw: &mut dyn FirewallApplier,
    host: &mut dyn Host,
    toward: &[IpAddr],
) -> Result<(), PortmapError> {
    let (nft, ipt) = unneeded_guard(fw, host, toward);
    drop_guard(fw, nft, ipt)
}

/// Which backends hold a [`localnet`] guard that no interface needs any more: lookups only
/// (see [`drop_unneeded_guard`]).
fn unneeded_guard(
    fw: &mut dyn FirewallApplier,
    host: &mut dyn Host,
    toward: &[IpAddr],
) -> (bool, bool) {
    // A lookup that fails counts as "absent": the guard then stays, the safe side.
    let nft = localnet::nft_present(fw).unwrap_or(false);
    let ipt = fw
        .iptables_chain_may_exist(IpFamily::V4, localnet::IPT_TABLE, localnet::IPT_CHAIN)
        .unwrap_or(false);
    if !(nft || ipt) || host.route_localnet_in_use(toward) {
        return (false, false);
    }
    (nft, ipt)
}

/// Removes the [`localnet`] guard from the backends named.
fn drop_guard(fw: &mut dyn FirewallApplier, nft: bool, ipt: bool) -> Result<(), PortmapError> {
    let mut errors = Vec::new();
    if nft && let Err(e) = fw.apply_nft(&localnet::nft_del_plan()) {
        errors.push(PortmapError::firewall(
            "could not remove the route_localnet guard",
        )(e));
    }
    if ipt
        && let Err(e) = fw.apply_iptables(&[localnet::iptables_del_plan()])
        && !iptables_unusable(&e)
    {
        errors.push(PortmapError::firewall(
            "could not remove the route_localnet guard",
        )(e));
    }
    collect_errors(errors, PortmapError::Many)
}

/// DEL: removes the container's mappings in both families, from the configured backend and,
/// best effort, from the other one (a node may have switched backends between ADD and DEL),
/// then deletes UDP conntrack entries of the mapped host ports (the reference only does this
/// on ADD: plugins #1190). Idempotent. With no mappings (the reference's condition), nothing
/// is touched. Takes the config of [`PortmapConf::from_netconf_for_del`]: mappings that ADD
/// would refuse do not make it fail, the attachment's state is then found by its owner.
/// Last, the [`localnet`] guard is removed if no interface has `route_localnet` on any more.
pub fn del(
    conf: &PortmapConf,
    att: &Attachment,
    fw: &mut dyn FirewallApplier,
    host: &mut dyn Host,
) -> Result<(), PortmapError> {
    if !conf.has_mappings() {
        return Ok(());
    }
    // The lookups come before the commit that deletes the container's rules: once a process
    // has deleted nf_tables objects, the kernel makes its next close of a netfilter socket
    // wait for an RCU grace period (10-20 ms), so the first lookup after it would wait there,
    // where before it they cost their round trips and the wait comes once, at the exit (or at
    // the conntrack cleanup below, which must follow the commit).
    // The guard is looked at first (best effort too: a guard left in place only drops what
    // route_localnet would let in), then the backend the container did not use, usually
    // without its table or chains, which costs a lookup.
    let toward: Vec<IpAddr> = container_nets(conf).iter().map(IpNet::addr).collect();
    let (guard_nft, guard_ipt) = unneeded_guard(fw, host, &toward);
    let _ = remove(other(conf.backend), conf, att, fw);
    let result = remove(conf.backend, conf, att, fw);
    let udp = conf.udp_host_ports();
    if !udp.is_empty() {
        let nets = container_nets(conf);
        let families: Vec<IpFamily> = if nets.is_empty() {
            vec![IpFamily::V4, IpFamily::V6]
        } else {
            nets.iter().map(fam).collect()
        };
        // Best effort: the entries point at a container that is gone, and the next ADD of
        // the port deletes them too; failing here would stop the runtime's DEL of the rest
        // of the chain.
        for f in families {
            let _ = host.delete_udp_conntrack(f, &udp);
        }
    }
    let _ = drop_guard(fw, guard_nft, guard_ipt);
    result
}

/// CHECK: verifies what ADD installs, for each container address (only in its own family).
pub fn check(
    conf: &PortmapConf,
    att: &Attachment,
    fw: &mut dyn FirewallApplier,
    _host: &mut dyn Host,
) -> Result<(), PortmapError> {
    if conf.prev_result.is_none() {
        return Err(PortmapError::MissingPrevResult);
    }
    if conf.mappings.is_empty() {
        return Ok(());
    }
    for net in container_nets(conf) {
        let f = fam(&net);
        match conf.backend {
            Backend::Iptables => {
                let state = fw
                    .iptables_state(f, iptables::TABLE)
                    .map_err(PortmapError::firewall("could not read iptables rules"))?;
                iptables::check(&state, conf, &att.container_id, net)?;
            }
            Backend::Nftables => {
                let listing = fw
                    .nft_table(nftables::family(f), nftables::TABLE)
                    .map_err(PortmapError::firewall("could not list nftables rules"))?;
                nftables::check(listing.as_ref(), conf, net)?;
            }
        }
    }
    Ok(())
}

fn gc_backend(
    backend: Backend,
    conf: &PortmapConf,
    valid: &[Attachment],
    fw: &mut dyn FirewallApplier,
) -> Result<(), PortmapError> {
    let mut errors = Vec::new();
    for f in [IpFamily::V4, IpFamily::V6] {
        match backend {
            Backend::Iptables => {
                let ids: BTreeSet<String> = valid.iter().map(|a| a.container_id.clone()).collect();
                let state = match fw.iptables_state(f, iptables::TABLE) {
                    Ok(s) => s,
                    Err(e) if iptables_unusable(&e) => continue,
                    Err(e) => {
                        errors.push(PortmapError::firewall("could not read iptables rules")(e));
                        continue;
                    }
                };
                let plan = iptables::gc_plan(&state, &conf.name, &ids);
                if !plan.is_empty()
                    && let Err(e) = fw.apply_iptables(&[plan])
                {
                    errors.push(PortmapError::firewall(
                        "could not remove stale iptables rules",
                    )(e));
                }
            }
            Backend::Nftables => {
                let listing = match fw.nft_table(nftables::family(f), nftables::TABLE) {
                    Ok(Some(l)) => l,
                    Ok(None) => continue,
                    Err(e) => {
                        errors.push(PortmapError::firewall("could not list nftables rules")(e));
                        continue;
                    }
                };
                let plan = nftables::gc_plan(&listing, f, &conf.name, valid);
                if !plan.is_empty()
                    && let Err(e) = fw.apply_nft(&plan)
                {
                    errors.push(PortmapError::firewall(
                        "could not remove stale nftables rules",
                    )(e));
                }
            }
        }
    }
    collect_errors(errors, PortmapError::Many)
}

/// GC (not in the reference): removes the mappings of this network's attachments that are
/// not in `valid`, in both families, from the configured backend and, best effort, the other.
/// iptables chains are attributed by the comment of their entry rules (container ID only, as
/// the reference's chain names are); nftables chains by their comment and name (container ID
/// and interface). Then the [`localnet`] guard goes if no interface has `route_localnet` on.
pub fn gc(
    conf: &PortmapConf,
    valid: &[Attachment],
    fw: &mut dyn FirewallApplier,
    host: &mut dyn Host,
) -> Result<(), PortmapError> {
    let result = gc_backend(conf.backend, conf, valid, fw);
    let _ = gc_backend(other(conf.backend), conf, valid, fw);
    let guard = drop_unneeded_guard(fw, host, &[]);
    result.and(guard)
}

/// STATUS (not in the reference): ready when the configured backend is usable (iptables:
/// `iptables-save`/`iptables-restore` in `PATH`; nftables: the kernel answers nf_tables
/// requests); otherwise error 50.
pub fn status(conf: &PortmapConf, host: &mut dyn Host) -> Result<(), PortmapError> {
    if host.backend_available(conf.backend) {
        Ok(())
    } else {
        Err(PortmapError::Unavailable(backend_name(conf.backend)))
    }
}

#[cfg(test)]
mod tests;
