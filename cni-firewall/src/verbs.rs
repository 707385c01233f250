//! The verbs, over the [`FirewallApplier`] and [`Host`] seams.

use std::net::IpAddr;

use cni_linux::firewall::nftables::{NftPlan, Value};
use cni_linux::firewall::{FirewallApplier, FirewallError as FwError, IpFamily};
use cni_types::{Attachment, CniResult};

use crate::config::{BackendChoice, FirewallConf, IngressPolicy, Pod, host_cidr};
use crate::error::CheckError;
use crate::error::FirewallError;
use crate::host::{Host, bridge_in_use};
use crate::store::{Record, Store};
use crate::{iptables, nftables};

/// The backend a verb works with, once `backend` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The reference's iptables chains.
    Iptables,
    /// Our nftables table.
    Nftables,
    /// Zone sources in firewalld, over D-Bus (isolation in iptables).
    Firewalld,
}

/// Why a rootless plugin does not use firewalld.
const ROOTLESS: &str = "the plugin runs in a user namespace (rootless runtime): the system \
     bus's firewalld filters the host's network namespace, not this one; use \"backend\": \
     \"iptables\" or \"nftables\"";

/// Resolves `backend`. `""` is firewalld when it owns its name on the system bus (the
/// reference), except in a rootless runtime, else iptables. An explicit `firewalld` that
/// cannot be used fails with the reason (rootless, or the bus's error).
pub fn resolve(conf: &FirewallConf, host: &mut dyn Host) -> Result<Backend, FirewallError> {
    match conf.backend {
        BackendChoice::Iptables => Ok(Backend::Iptables),
        BackendChoice::Nftables => Ok(Backend::Nftables),
        BackendChoice::Firewalld if host.rootless() => Err(FirewallError::Firewalld(ROOTLESS)),
        BackendChoice::Firewalld => match host.firewalld() {
            Ok(_) => Ok(Backend::Firewalld),
            Err(e) => Err(FirewallError::FirewalldUnreachable(Box::new(e))),
        },
        BackendChoice::Auto => Ok(if !host.rootless() && host.firewalld().is_ok() {
            Backend::Firewalld
        } else {
            Backend::Iptables
        }),
    }
}

/// [`resolve`] for DEL and GC: an explicit firewalld that does not answer has nothing of
/// ours left (its runtime sources went with it), so those verbs go on without it.
fn resolve_lenient(conf: &FirewallConf, host: &mut dyn Host) -> Result<Backend, FirewallError> {
    match resolve(conf, host) {
        Err(FirewallError::FirewalldUnreachable(_)) | Err(FirewallError::Firewalld(_)) => {
            Ok(Backend::Firewalld)
        }
        r => r,
    }
}

fn zone_err(
    op: &'static str,
    prep: &'static str,
    addr: &str,
    zone: &str,
) -> impl FnOnce(crate::dbus::DbusError) -> FirewallError {
    let (addr, zone) = (addr.to_owned(), zone.to_owned());
    move |source| FirewallError::Zone {
        op,
        prep,
        addr,
        zone,
        source: Box::new(source),
    }
}

/// Adds the pod's addresses to the zone.
fn fwd_add(conf: &FirewallConf, pod: &Pod, host: &mut dyn Host) -> Result<(), FirewallError> {
    let zones = host
        .firewalld()
        .map_err(|e| FirewallError::FirewalldUnreachable(Box::new(e)))?;
    for a in &pod.addrs {
        let cidr = host_cidr(*a);
        zones
            .add_source(&conf.zone, &cidr)
            .map_err(zone_err("add", "to", &cidr, &conf.zone))?;
    }
    Ok(())
}

/// Removes the pod's addresses from the zone; without firewalld there is nothing to remove.
fn fwd_remove(conf: &FirewallConf, pod: &Pod, host: &mut dyn Host) -> Result<(), FirewallError> {
    let Ok(zones) = host.firewalld() else {
        return Ok(());
    };
    let mut first = None;
    for a in &pod.addrs {
        let cidr = host_cidr(*a);
        if let Err(e) = zones.remove_source(&conf.zone, &cidr) {
            first.get_or_insert(zone_err("remove", "from", &cidr, &conf.zone)(e));
        }
    }
    first.map_or(Ok(()), Err)
}

fn owner(conf: &FirewallConf, att: &Attachment) -> String {
    nftables::owner_comment(&conf.name, &att.container_id, &att.ifname)
}

fn isolated_bridge(conf: &FirewallConf, pod: &Pod) -> Result<Option<String>, FirewallError> {
    if conf.ingress != IngressPolicy::SameBridge {
        return Ok(None);
    }
    pod.bridge.clone().map(Some).ok_or(FirewallError::NoBridge)
}

fn is_enoent(e: &FwError) -> bool {
    matches!(e, FwError::Nftables(n) if n.errno() == Some(libc_enoent()))
}

const fn libc_enoent() -> i32 {
    2
}

/// ADD: records the attachment, then allows the pod's addresses (and isolates its bridge
/// with `same-bridge`). Returns `prevResult`. A failure removes what was added.
pub fn add(
    conf: &FirewallConf,
    att: &Attachment,
    fw: &mut dyn FirewallApplier,
    host: &mut dyn Host,
    store: &Store,
) -> Result<CniResult, FirewallError> {
    let prev = conf
        .prev_result
        .clone()
        .ok_or(FirewallError::MissingPrevResult)?;
    let backend = resolve(conf, host)?;
    let pod = Pod::of(&prev);
    let bridge = isolated_bridge(conf, &pod)?;
    // Best effort: the record only serves GC and a DEL without prevResult; a runtime whose
    // plugins cannot write `dataDir` (rootless) must still get its rules, as with the
    // reference.
    let _ = store.save(&Record::new(att, &pod));
    let done = match backend {
        Backend::Iptables => fw
            .apply_iptables(&iptables::add_plans(conf, &pod, bridge.as_deref(), true))
            .map_err(FirewallError::firewall("adding iptables rules")),
        Backend::Nftables => nft_add(conf, att, &pod, bridge.as_deref(), fw),
        // As the reference: the zone first, then the isolation in iptables.
        Backend::Firewalld => fwd_add(conf, &pod, host).and_then(|()| match &bridge {
            Some(br) => fw
                .apply_iptables(&iptables::add_plans(conf, &pod, Some(br), false))
                .map_err(FirewallError::firewall("adding isolation rules")),
            None => Ok(()),
        }),
    };
    if let Err(e) = done {
        // Undo the pod's own entries (shared chains and isolation stay, as after a DEL).
        let _ = remove_pod(backend, conf, att, &pod, fw, host);
        let _ = store.remove(att);
        return Err(e);
    }
    Ok(prev)
}

fn nft_add(
    conf: &FirewallConf,
    att: &Attachment,
    pod: &Pod,
    bridge: Option<&str>,
    fw: &mut dyn FirewallApplier,
) -> Result<(), FirewallError> {
    let read = FirewallError::firewall("reading nftables table inet cni_firewall");
    let mut plan = NftPlan::new();
    nftables::add_elements(&mut plan, pod, &owner(conf, att));
    let mut new_bridge = None;
    if let Some(br) = bridge {
        let known = fw
            .nft_element(
                nftables::FAMILY,
                nftables::TABLE,
                nftables::ISOLATED,
                &nftables::ISOLATED_KEY,
                &[Value::Ifname(br.into())],
            )
            .map_err(&read)?;
        if known.is_none() {
            let others = fw
                .nft_table(nftables::FAMILY, nftables::TABLE)
                .map_err(&read)?
                .map(|t| nftables::isolated_bridges(&t))
                .unwrap_or_default();
            nftables::isolate(&mut plan, br, &conf.name, &others);
            new_bridge = Some(br);
        }
    }
    if plan.is_empty() {
        return Ok(());
    }
    let apply = FirewallError::firewall("adding to nftables table inet cni_firewall");
    match fw.apply_nft(&plan) {
        Ok(()) => {}
        Err(e) if is_enoent(&e) => {
            let mut full = NftPlan::new();
            nftables::skeleton(&mut full);
            full.ops.extend(plan.ops);
            fw.apply_nft(&full).map_err(&apply)?;
        }
        Err(e) => return Err(apply(e)),
    }
    match new_bridge {
        Some(br) => nft_complete_pairs(br, conf, fw),
        None => Ok(()),
    }
}

/// After isolating a new bridge: the pairs with bridges another ADD isolated at the same time
/// (each listed the set before the other committed), from a fresh listing. Adding a pair
/// that exists is a no-op.
fn nft_complete_pairs(
    bridge: &str,
    conf: &FirewallConf,
    fw: &mut dyn FirewallApplier,
) -> Result<(), FirewallError> {
    let Some(t) =
        fw.nft_table(nftables::FAMILY, nftables::TABLE)
            .map_err(FirewallError::firewall(
                "reading nftables table inet cni_firewall",
            ))?
    else {
        return Ok(());
    };
    let pairs = nftables::isolation_pairs(&t);
    let missing: Vec<String> = nftables::isolated_bridges(&t)
        .into_iter()
        .filter(|o| {
            o != bridge
                && !(pairs.contains(&(bridge.to_owned(), o.clone()))
                    && pairs.contains(&(o.clone(), bridge.to_owned())))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut plan = NftPlan::new();
    nftables::isolate(&mut plan, bridge, &conf.name, &missing);
    fw.apply_nft(&plan).map_err(FirewallError::firewall(
        "adding isolation to nftables table inet cni_firewall",
    ))
}

/// Removes the pod's own entries (not the isolation of its bridge).
fn remove_pod(
    backend: Backend,
    conf: &FirewallConf,
    att: &Attachment,
    pod: &Pod,
    fw: &mut dyn FirewallApplier,
    host: &mut dyn Host,
) -> Result<(), FirewallError> {
    match backend {
        Backend::Firewalld => fwd_remove(conf, pod, host),
        Backend::Iptables => {
            let plans = iptables::del_plans(pod);
            if plans.iter().all(|p| p.is_empty()) {
                return Ok(());
            }
            fw.apply_iptables(&plans)
                .map_err(FirewallError::firewall("deleting iptables rules"))
        }
        Backend::Nftables => nft_remove_pod(conf, att, pod, fw),
    }
}

fn nft_remove_pod(
    conf: &FirewallConf,
    att: &Attachment,
    pod: &Pod,
    fw: &mut dyn FirewallApplier,
) -> Result<(), FirewallError> {
    let read = FirewallError::firewall("reading nftables table inet cni_firewall");
    let me = owner(conf, att);
    let mut mine: Vec<IpAddr> = Vec::new();
    if pod.addrs.is_empty() {
        // No prevResult: every element with this attachment's comment.
        if let Some(t) = fw
            .nft_table(nftables::FAMILY, nftables::TABLE)
            .map_err(&read)?
        {
            mine = nftables::pod_elements(&t)
                .into_iter()
                .filter(|(_, c)| c.as_deref() == Some(me.as_str()))
                .map(|(a, _)| a)
                .collect();
        }
    } else {
        for a in &pod.addrs {
            let (set, key) = nftables::addr_key(*a);
            let e = fw
                .nft_element(
                    nftables::FAMILY,
                    nftables::TABLE,
                    set,
                    &key,
                    &[Value::Addr(*a)],
                )
                .map_err(&read)?;
            // Only an element this attachment added: another may hold the address now.
            if e.is_some_and(|e| e.comment.as_deref() == Some(me.as_str())) {
                mine.push(*a);
            }
        }
    }
    if mine.is_empty() {
        return Ok(());
    }
    let mut plan = NftPlan::new();
    nftables::delete_addrs(&mut plan, &mine);
    fw.apply_nft(&plan).map_err(FirewallError::firewall(
        "deleting from nftables table inet cni_firewall",
    ))
}

/// Removes `bridge`'s isolation when no port other than `own` is left on it.
fn teardown_isolation(
    backend: Backend,
    bridge: &str,
    own: &[String],
    families: &[IpFamily],
    fw: &mut dyn FirewallApplier,
    host: &mut dyn Host,
) -> Result<(), FirewallError> {
    if bridge_in_use(host, bridge, own)? {
        return Ok(());
    }
    match backend {
        Backend::Iptables | Backend::Firewalld => {
            let mut plans = Vec::new();
            for fam in families {
                let state = fw
                    .iptables_state(*fam, iptables::TABLE)
                    .map_err(FirewallError::firewall("reading iptables rules"))?;
                plans.extend(iptables::isolation_teardown_plans(&state, bridge));
            }
            if plans.is_empty() {
                return Ok(());
            }
            fw.apply_iptables(&plans)
                .map_err(FirewallError::firewall("deleting isolation rules"))
        }
        Backend::Nftables => {
            let Some(t) = fw.nft_table(nftables::FAMILY, nftables::TABLE).map_err(
                FirewallError::firewall("reading nftables table inet cni_firewall"),
            )?
            else {
                return Ok(());
            };
            let mut plan = NftPlan::new();
            nftables::unisolate(&mut plan, bridge, &t);
            if plan.is_empty() {
                return Ok(());
            }
            fw.apply_nft(&plan).map_err(FirewallError::firewall(
                "deleting isolation from nftables table inet cni_firewall",
            ))
        }
    }
}

fn pod_families(pod: &Pod) -> Vec<IpFamily> {
    let mut f: Vec<IpFamily> = Vec::new();
    for a in &pod.addrs {
        let x = IpFamily::of(a);
        if !f.contains(&x) {
            f.push(x);
        }
    }
    if f.is_empty() {
        f = vec![IpFamily::V4, IpFamily::V6];
    }
    f
}

/// DEL: removes the pod's entries (from `prevResult`, else from the attachment's record) and,
/// with `same-bridge`, the bridge's isolation once nothing else is on the bridge. Tries every
/// step; missing entries are no error.
pub fn del(
    conf: &FirewallConf,
    att: &Attachment,
    fw: &mut dyn FirewallApplier,
    host: &mut dyn Host,
    store: &Store,
) -> Result<(), FirewallError> {
    let backend = resolve_lenient(conf, host)?;
    let record = store
        .all()
        .ok()
        .and_then(|rs| rs.into_iter().find(|r| r.attachment() == *att));
    let pod = match &conf.prev_result {
        Some(r) => Pod::of(r),
        None => record.as_ref().map(Record::pod).unwrap_or_default(),
    };
    let mut errors = Vec::new();
    if let Err(e) = remove_pod(backend, conf, att, &pod, fw, host) {
        errors.push(e);
    }
    if conf.ingress == IngressPolicy::SameBridge
        && let Some(br) = &pod.bridge
        && let Err(e) =
            teardown_isolation(backend, br, &pod.host_ifs, &pod_families(&pod), fw, host)
    {
        errors.push(e);
    }
    if errors.is_empty() {
        store.remove(att)
    } else if errors.len() == 1 {
        Err(errors.remove(0))
    } else {
        Err(FirewallError::Many(errors))
    }
}

/// CHECK, as the reference: the chains and the pod's rules (or our table and its elements).
pub fn check(
    conf: &FirewallConf,
    att: &Attachment,
    fw: &mut dyn FirewallApplier,
    host: &mut dyn Host,
) -> Result<(), FirewallError> {
    let prev = conf
        .prev_result
        .as_ref()
        .ok_or(FirewallError::MissingPrevResult)?;
    let pod = Pod::of(prev);
    match resolve(conf, host)? {
        Backend::Firewalld => {
            let zones = host
                .firewalld()
                .map_err(|e| FirewallError::FirewalldUnreachable(Box::new(e)))?;
            for a in &pod.addrs {
                let cidr = host_cidr(*a);
                if !zones.query_source(&conf.zone, &cidr).unwrap_or(false) {
                    return Err(CheckError::Zone {
                        addr: cidr,
                        zone: conf.zone.clone(),
                    }
                    .into());
                }
            }
            Ok(())
        }
        Backend::Iptables => {
            for fam in iptables::check_families(&pod) {
                let state = fw
                    .iptables_state(fam, iptables::TABLE)
                    .map_err(FirewallError::firewall("reading iptables rules"))?;
                iptables::check(conf, &pod, &state)?;
            }
            Ok(())
        }
        Backend::Nftables => {
            let t = fw.nft_table(nftables::FAMILY, nftables::TABLE).map_err(
                FirewallError::firewall("reading nftables table inet cni_firewall"),
            )?;
            Ok(nftables::check(t.as_ref(), &pod, &owner(conf, att))?)
        }
    }
}

/// GC: removes the entries of this network's attachments that are not in `valid` (addresses
/// a valid attachment holds are kept), and with `same-bridge` the isolation of this network's
/// bridges that no longer have ports.
pub fn gc(
    conf: &FirewallConf,
    valid: &[Attachment],
    fw: &mut dyn FirewallApplier,
    host: &mut dyn Host,
    store: &Store,
) -> Result<(), FirewallError> {
    let backend = resolve_lenient(conf, host)?;
    let records = store.all()?;
    let (stale, live): (Vec<Record>, Vec<Record>) = records
        .into_iter()
        .partition(|r| !valid.contains(&r.attachment()));
    let live_addrs: Vec<IpAddr> = live.iter().flat_map(|r| r.addrs.clone()).collect();
    let mut errors = Vec::new();
    let mut bridges: Vec<String> = Vec::new();
    match backend {
        Backend::Iptables | Backend::Firewalld => {
            for r in &stale {
                let mut pod = r.pod();
                pod.addrs.retain(|a| !live_addrs.contains(a));
                if let Err(e) = remove_pod(backend, conf, &r.attachment(), &pod, fw, host) {
                    errors.push(e);
                }
                bridges.extend(r.bridge.clone());
            }
        }
        Backend::Nftables => match nft_gc(conf, valid, fw) {
            Ok(b) => bridges = b,
            Err(e) => errors.push(e),
        },
    }
    if conf.ingress == IngressPolicy::SameBridge {
        bridges.sort();
        bridges.dedup();
        for br in bridges {
            if let Err(e) =
                teardown_isolation(backend, &br, &[], &[IpFamily::V4, IpFamily::V6], fw, host)
            {
                errors.push(e);
            }
        }
    }
    for r in &stale {
        if let Err(e) = store.remove(&r.attachment()) {
            errors.push(e);
        }
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(FirewallError::Many(errors)),
    }
}

/// nftables GC: deletes this network's elements of invalid attachments; returns the
/// network's isolated bridges.
fn nft_gc(
    conf: &FirewallConf,
    valid: &[Attachment],
    fw: &mut dyn FirewallApplier,
) -> Result<Vec<String>, FirewallError> {
    let Some(t) =
        fw.nft_table(nftables::FAMILY, nftables::TABLE)
            .map_err(FirewallError::firewall(
                "reading nftables table inet cni_firewall",
            ))?
    else {
        return Ok(Vec::new());
    };
    let prefix = format!("{} ", nftables::network_tag(&conf.name));
    let keep: Vec<String> = valid.iter().map(|a| owner(conf, a)).collect();
    let stale: Vec<IpAddr> = nftables::pod_elements(&t)
        .into_iter()
        .filter(|(_, c)| {
            c.as_deref()
                .is_some_and(|c| c.starts_with(&prefix) && !keep.iter().any(|k| k == c))
        })
        .map(|(a, _)| a)
        .collect();
    if !stale.is_empty() {
        let mut plan = NftPlan::new();
        nftables::delete_addrs(&mut plan, &stale);
        fw.apply_nft(&plan).map_err(FirewallError::firewall(
            "deleting from nftables table inet cni_firewall",
        ))?;
    }
    Ok(nftables::isolated_bridges_of(&t, &conf.name))
}

/// STATUS: the backend can be used (its tools or the kernel's nf_tables are there).
pub fn status(conf: &FirewallConf, host: &mut dyn Host) -> Result<(), FirewallError> {
    let backend = resolve(conf, host)?;
    let ok = match backend {
        Backend::Iptables => cni_linux::firewall::iptables_available(),
        Backend::Nftables => cni_linux::firewall::nftables_available(),
        Backend::Firewalld => true,
    };
    if ok {
        Ok(())
    } else {
        Err(FirewallError::Unavailable(match backend {
            Backend::Iptables | Backend::Firewalld => {
                "iptables-save and iptables-restore are not in PATH"
            }
            Backend::Nftables => "the kernel does not answer nf_tables requests",
        }))
    }
}

#[cfg(test)]
mod tests;
