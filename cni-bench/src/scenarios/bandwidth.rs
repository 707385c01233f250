//! `bandwidth` at the end of a bridge + host-local + portmap chain (k3s's and Calico's
//! conflists end with it), ours and the reference each in their own chain.

use super::*;

/// bandwidth's own process time in the chain, ingress and egress shaped (a token bucket on
/// the veth; an ifb device, its token bucket and the redirect).
pub(super) fn bandwidth(r: &mut Report, bins: &Bins, runs: usize) -> Result<()> {
    let conf = json!({"type": "bandwidth",
        "ingressRate": 8_000_000, "ingressBurst": 80_000,
        "egressRate": 20_000_000, "egressBurst": 160_000});
    let t = small::chain_tail(bins, runs, &conf, &conf, |_, _| Ok(()))?;
    small::own_cost_goal_under(
        r,
        "`bandwidth` (ingress and egress shaped) adds under 2 ms of its own to a chain ADD \
         (issue #15)"
            .into(),
        t.ours.median,
        t.floor,
        Duration::from_millis(2),
    );
    r.section(
        "bandwidth",
        "`bandwidth`'s own process time in the ADD of a bridge + host-local + portmap chain \
         through the runtime, shaping both directions (ours: nftables backends, netlink tc; \
         reference: the Go chain). Each call is one process; the goal counts what it costs \
         beyond a bare process spawned the same way by the same runtime.",
    )
    .rows = vec![Row {
        what: "`bandwidth` ADD in a chain, ingress and egress".into(),
        ours: Some(t.ours),
        reference: Some(t.reference),
        note: String::new(),
    }];
    Ok(())
}
