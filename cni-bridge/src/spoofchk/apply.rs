//! Spoof-check set-up, teardown and GC through the [`FirewallApplier`] seam, in the calling
//! thread's network namespace (the node's). The plans are in the sibling `plan` module.

use cni_linux::firewall::nftables::{Family, NftPlan};
use cni_linux::firewall::{self, FirewallApplier};
use cni_linux::netlink::Handle;

use crate::deps::Attachment;
use crate::error::BridgeError;
use crate::spoofchk;

/// ADD: the check of the attachment whose host port is `host_iface` and whose container MAC
/// is `mac`, in one transaction.
pub(crate) fn setup(
    fw: &mut dyn FirewallApplier,
    att: &Attachment,
    host_iface: &str,
    mac: [u8; 6],
) -> Result<(), BridgeError> {
    let plan = spoofchk::setup(
        &spoofchk::ref_id(&att.container_id, &att.ifname),
        host_iface,
        mac,
    );
    fw.apply_nft(&plan)
        .map_err(|e| BridgeError::firewall("failed to setup spoof-check", e))
}

/// Removes this attachment's spoof-check chains and jump rule; with `host_port` (known when
/// the attachment's id is hashed and its veth still exists), also a check the Go plugin set
/// up for it under the reference's name ([`spoofchk::teardown_legacy`]).
pub(crate) fn teardown(
    fw: &mut dyn FirewallApplier,
    att: &Attachment,
    host_port: Option<&str>,
) -> Result<(), BridgeError> {
    let ctx = "failed to teardown spoof-check";
    let existing = fw
        .nft_table(Family::Bridge, spoofchk::TABLE)
        .map_err(|e| BridgeError::firewall(ctx, e))?;
    let mut plan = spoofchk::teardown(
        &spoofchk::ref_id(&att.container_id, &att.ifname),
        existing.as_ref(),
    );
    if let (Some(port), Some(legacy)) = (
        host_port,
        spoofchk::legacy_ref_id(&att.container_id, &att.ifname),
    ) {
        plan.ops
            .extend(spoofchk::teardown_legacy(&legacy, port, existing.as_ref()).ops);
    }
    if plan.is_empty() {
        return Ok(());
    }
    fw.apply_nft(&plan)
        .map_err(|e| BridgeError::firewall(ctx, e))
}

/// GC of spoof checks (see [`crate::gc`]): the checks of attachments that are not valid and
/// whose host port is gone. A node without nf_tables has no spoof checks: failing to read the
/// table there is not an error.
pub(crate) fn gc(
    fw: &mut dyn FirewallApplier,
    valid: &[cni_types::Attachment],
    errs: &mut Vec<BridgeError>,
) {
    let ctx = "failed to garbage-collect spoof-check";
    match fw.nft_table(Family::Bridge, spoofchk::TABLE) {
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
            let mut plan = NftPlan::new();
            for rid in stale {
                plan.ops
                    .extend(spoofchk::teardown(&rid, Some(&existing)).ops);
            }
            if !plan.is_empty()
                && let Err(e) = fw.apply_nft(&plan)
            {
                errs.push(BridgeError::firewall(ctx, e));
            }
        }
        Ok(None) => {}
        Err(e) if firewall::nftables_available() => {
            errs.push(BridgeError::firewall(ctx, e));
        }
        Err(_) => {}
    }
}
