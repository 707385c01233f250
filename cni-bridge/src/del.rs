//! DEL, GC and STATUS: best effort, every step tried, "already gone" is success.

use std::collections::BTreeSet;

use cni_linux::IpFamily;
use cni_linux::firewall;
use cni_linux::firewall::nftables::Family;
use cni_linux::netlink::Handle;
use cni_proto::delegate;
use cni_proto::env::Env;
use ipnet::IpNet;

use crate::add::{teardown_masq, teardown_spoofcheck};
use crate::config::{BridgeConf, MasqBackend};
use crate::container;
use crate::deps::{Attachment, Deps};
use crate::error::BridgeError;
use crate::{masq, spoofchk};

/// DEL, in this order:
///
/// 1. the container interface is deleted inside its namespace (which removes the veth pair);
///    a missing namespace or interface is fine;
/// 2. then IPAM DEL, so an address is never handed out again while a device still holds it
///    (plugins #666);
/// 3. spoof-check teardown;
/// 4. masquerade teardown in **both** backends, found by network name and container ID only,
///    so it also works without a namespace and without `prevResult` (plugins #810).
///
/// Every step runs even if an earlier one failed; the errors are returned together.
pub fn del(conf: &BridgeConf, att: &Attachment, deps: &mut Deps) -> Result<(), BridgeError> {
    let mut errs = Vec::new();
    let masq = conf.is_layer3() && conf.ip_masq;
    let mut addrs: Vec<IpNet> = Vec::new();
    if let Some(netns) = &att.netns {
        match container::delete_iface(netns, &att.ifname, masq) {
            Ok(a) => addrs = a,
            Err(e) => errs.push(e),
        }
    }
    if let Some(ipam) = &conf.ipam_type
        && let Err(e) = delegate::del(&*deps.exec, ipam, &conf.raw, &att.ipam_env())
    {
        errs.push(BridgeError::Ipam(e));
    }
    if conf.mac_spoof_check
        && let Err(e) = teardown_spoofcheck(deps, att)
    {
        errs.push(e);
    }
    if masq {
        // Where to look for iptables chains: the families the interface had, or the previous
        // result's, or both.
        if let Ok(Some(prev)) = conf.prev_result() {
            addrs.extend(prev.ips.iter().map(|ip| ip.address));
        }
        let mut families = container::families(addrs);
        if families.is_empty() {
            families = vec![IpFamily::V4, IpFamily::V6];
        }
        for backend in [MasqBackend::Iptables, MasqBackend::Nftables] {
            if let Err(e) = teardown_masq(deps, backend, conf, att, &families)
                && backend_available(backend)
            {
                errs.push(e);
            }
        }
    }
    BridgeError::collect(errs)
}

/// Whether a backend's failure matters: the reference ignores teardown errors of a backend the
/// node does not have.
fn backend_available(backend: MasqBackend) -> bool {
    match backend {
        MasqBackend::Iptables => firewall::iptables_available(),
        MasqBackend::Nftables => firewall::nftables_available(),
    }
}

/// GC (spec 1.1): removes the masquerade rules (both backends) and spoof checks of
/// attachments of this network that are not in `cni.dev/valid-attachments`, then passes GC
/// on to IPAM. Without a `cni.dev/valid-attachments` key only IPAM is asked.
///
/// - iptables: chains whose comment `name: "<net>" id: "<cid>"` names this network and a
///   container that is not valid (and whose name is derived from that pair);
/// - nftables: rules of `masq_checks` with this network's hash whose comment is not a valid
///   attachment's;
/// - spoof check: the `bridge nat` table is shared by all networks and does not record the
///   network, so a check is removed only when its attachment is not valid **and** its host
///   port no longer exists.
pub fn gc(conf: &BridgeConf, env: &Env, deps: &mut Deps) -> Result<(), BridgeError> {
    let mut errs = Vec::new();
    if let Some(valid) = &conf.valid_attachments {
        gc_firewall(conf, valid, deps, &mut errs);
    }
    if let Some(ipam) = &conf.ipam_type
        && let Err(e) = delegate::gc(&*deps.exec, ipam, &conf.raw, env)
    {
        errs.push(BridgeError::Ipam(e));
    }
    BridgeError::collect(errs)
}

/// GC of our firewall state (see [`gc`]).
fn gc_firewall(
    conf: &BridgeConf,
    valid: &[cni_types::Attachment],
    deps: &mut Deps,
    errs: &mut Vec<BridgeError>,
) {
    // nftables masquerade.
    let ctx = "failed to garbage-collect IP masquerade";
    match deps.firewall.nft_table(Family::Inet, masq::NFT_TABLE) {
        Ok(existing) => {
            let plan = masq::nft_gc(&conf.name, valid, existing.as_ref());
            if !plan.is_empty()
                && let Err(e) = deps.firewall.apply_nft(&plan)
            {
                errs.push(BridgeError::firewall(ctx, e));
            }
        }
        Err(e) if backend_available(MasqBackend::Nftables) => {
            errs.push(BridgeError::firewall(ctx, e));
        }
        Err(_) => {}
    }

    // iptables masquerade.
    if backend_available(MasqBackend::Iptables) {
        let valid_ids: BTreeSet<String> = valid.iter().map(|a| a.container_id.clone()).collect();
        for family in [IpFamily::V4, IpFamily::V6] {
            match deps.firewall.iptables_state(family, "nat") {
                Ok(state) => {
                    if let Some(plan) = masq::iptables_gc(&conf.name, &valid_ids, &state)
                        && let Err(e) = deps.firewall.apply_iptables(&[plan])
                    {
                        errs.push(BridgeError::firewall(ctx, e));
                    }
                }
                Err(e) => errs.push(BridgeError::firewall(ctx, e)),
            }
        }
    }

    // Spoof checks.
    let ctx = "failed to garbage-collect spoof-check";
    match deps.firewall.nft_table(Family::Bridge, spoofchk::TABLE) {
        Ok(Some(existing)) => {
            let mut host = match Handle::new() {
                Ok(h) => h,
                Err(e) => {
                    errs.push(BridgeError::netlink("netlink", e));
                    return;
                }
            };
            let stale = spoofchk::stale(valid, Some(&existing), |name| {
                // When in doubt the port exists: never remove a live check by mistake.
                host.link_by_name(name).map(|l| l.is_some()).unwrap_or(true)
            });
            let mut plan = cni_linux::firewall::nftables::NftPlan::new();
            for rid in stale {
                plan.ops
                    .extend(spoofchk::teardown(&rid, Some(&existing)).ops);
            }
            if !plan.is_empty()
                && let Err(e) = deps.firewall.apply_nft(&plan)
            {
                errs.push(BridgeError::firewall(ctx, e));
            }
        }
        Ok(None) => {}
        Err(e) if backend_available(MasqBackend::Nftables) => {
            errs.push(BridgeError::firewall(ctx, e));
        }
        Err(_) => {}
    }
}

/// STATUS (spec 1.1): IPAM's answer when IPAM is configured, ready otherwise.
pub fn status(conf: &BridgeConf, env: &Env, deps: &mut Deps) -> Result<(), BridgeError> {
    match &conf.ipam_type {
        Some(ipam) => {
            delegate::status(&*deps.exec, ipam, &conf.raw, env).map_err(BridgeError::Ipam)
        }
        None => Ok(()),
    }
}
