//! `bandwidth` at the end of a bridge + host-local + portmap chain (k3s's and Calico's
//! conflists end with it), ours and the reference each in their own chain.

use super::*;

/// bandwidth's own process time in the chain, ingress and egress shaped (a token bucket on
/// the veth; an ifb device, its token bucket and the redirect).
pub(super) fn bandwidth(r: &mut Report, bins: &Bins, runs: usize) -> Result<()> {
    let extra = [json!({"type": "bandwidth",
        "ingressRate": 8_000_000, "ingressBurst": 80_000,
        "egressRate": 20_000_000, "egressBurst": 160_000})];
    let mut nodes = vec![
        (
            ChainNode::with_extra(Impl::OursNft, bins, &extra)?,
            Cycles::default(),
        ),
        (
            ChainNode::with_extra(Impl::Go, bins, &extra)?,
            Cycles::default(),
        ),
    ];
    for (n, _) in nodes.iter_mut() {
        n.reserve(runs)?;
    }
    interleave(&mut nodes, runs, |(n, c), _| {
        c.push(n.cycle(false)?);
        Ok(())
    })?;
    for (n, _) in nodes.iter_mut() {
        n.release();
    }
    let (o, g) = (
        Stats::of(&nodes[0].1.bandwidth),
        Stats::of(&nodes[1].1.bandwidth),
    );
    if o.n == 0 {
        bail!("the chain ran no bandwidth");
    }
    r.goal(
        "`bandwidth` (ingress and egress shaped) adds under 2 ms of its own to a chain ADD \
         (issue #15)",
        format!("{} ms median", ms(o.median)),
        o.median < Duration::from_millis(2),
    );
    r.section(
        "bandwidth",
        "`bandwidth`'s own process time at the end of a bridge + host-local + portmap chain \
         through the runtime, shaping both directions (ours: nftables backends, netlink tc; \
         reference: the Go chain). Each call is one process.",
    )
    .rows = vec![Row {
        what: "`bandwidth` ADD in a chain, ingress and egress".into(),
        ours: Some(o),
        reference: Some(g),
        note: String::new(),
    }];
    Ok(())
}
