//! The chain bridge (ipMasq) + host-local + portmap through the runtime: ADD, CHECK, DEL.

use std::time::Duration;

use anyhow::Result;

use super::bins::{Bins, Impl};
use super::harness::{ChainNode, Cycles, interleave};
use super::report::{Report, Row, ratio};
use crate::measure::{Stats, ms};

pub(super) fn chain(r: &mut Report, bins: &Bins, runs: usize) -> Result<()> {
    let mut nodes = vec![
        (ChainNode::new(Impl::OursNft, bins)?, Cycles::default()),
        (ChainNode::new(Impl::OursIpt, bins)?, Cycles::default()),
        (ChainNode::new(Impl::Go, bins)?, Cycles::default()),
    ];
    for (n, _) in nodes.iter_mut() {
        n.reserve(runs)?;
    }
    interleave(&mut nodes, runs, |(n, c), _| {
        c.push(n.cycle(true)?);
        Ok(())
    })?;
    for (n, _) in nodes.iter_mut() {
        n.release();
    }
    let st = |i: usize, f: &dyn Fn(&Cycles) -> &Vec<Duration>| Stats::of(f(&nodes[i].1));
    let go_check_failed = nodes[2].1.check_failed;
    let row = |what: &str, i: usize, f: &dyn Fn(&Cycles) -> &Vec<Duration>| Row {
        what: what.into(),
        ours: Some(st(i, f)),
        reference: Some(st(2, f)),
        note: String::new(),
    };
    let mut rows = vec![
        row("ADD, ours with nftables", 0, &|c| &c.add),
        row("ADD, ours with iptables (default)", 1, &|c| &c.add),
        row("DEL, ours with nftables", 0, &|c| &c.del),
        row("DEL, ours with iptables (default)", 1, &|c| &c.del),
    ];
    for (i, label) in [(0, "nftables"), (1, "iptables (default)")] {
        rows.push(Row {
            what: format!("CHECK, ours with {label}"),
            ours: Some(st(i, &|c| &c.check)),
            reference: (go_check_failed == 0).then(|| st(2, &|c| &c.check)),
            note: if go_check_failed > 0 {
                format!(
                    "reference CHECK fails ({go_check_failed}/{runs}: portmap v1.1.1 looks for \
                     IPv6 rules of an IPv4 pod, plugins #819)"
                )
            } else {
                String::new()
            },
        });
    }
    let (on, oi, g) = (st(0, &|c| &c.add), st(1, &|c| &c.add), st(2, &|c| &c.add));
    r.goal(
        "chain ADD at least 10x faster than the reference (issue #7)",
        format!(
            "nftables {:.1}x, iptables (default) {:.1}x",
            ratio(g.median, on.median),
            ratio(g.median, oi.median)
        ),
        ratio(g.median, on.median) >= 10.0,
    );
    r.goal(
        "chain bridge + host-local + portmap ADD at most 12 ms median (issue #5)",
        format!(
            "nftables {} ms, iptables (default) {} ms",
            ms(on.median),
            ms(oi.median)
        ),
        on.median <= Duration::from_millis(12),
    );
    let (di, dg) = (st(1, &|c| &c.del), st(2, &|c| &c.del));
    r.goal(
        "chain ADD with the default configuration (iptables) at least 8x faster than the \
         reference in cni-bench (issue #16)",
        format!("{:.1}x", ratio(g.median, oi.median)),
        ratio(g.median, oi.median) >= 8.0,
    );
    r.goal(
        "chain DEL with the default configuration (iptables) at least 4x faster than the \
         reference (issue #16)",
        format!("{:.1}x", ratio(dg.median, di.median)),
        ratio(dg.median, di.median) >= 4.0,
    );
    // Peak RSS of the whole ADD process tree, the default configuration against the
    // reference, both driven by the same runtime process (cnitool), taking turns.
    let (mut rss_ours, mut rss_go) = (Vec::<u64>::new(), Vec::<u64>::new());
    for i in 0..(runs / 4).max(3) {
        for k in [1, 2] {
            let k = if i % 2 == 0 { k } else { 3 - k };
            let kib = nodes[k].0.tree_peak_rss(bins)?;
            if k == 1 { &mut rss_ours } else { &mut rss_go }.push(kib);
        }
    }
    for (n, _) in nodes.iter_mut() {
        n.release();
    }
    let peak = |v: &[u64]| v.iter().copied().max().unwrap_or_default();
    let (ro, rg) = (peak(&rss_ours), peak(&rss_go));
    r.goal(
        "peak RSS of the chain ADD's process tree (runtime, plugins and the tools they start) \
         with the default configuration at most half of the reference's (issue #16)",
        format!(
            "{ro} KiB against {rg} KiB ({:.2}x)",
            ro as f64 / rg.max(1) as f64
        ),
        ro * 2 <= rg,
    );
    r.section(
        "Chain: bridge (ipMasq) + host-local + portmap through a conflist",
        "ADD, CHECK and DEL of one pod with one port mapping through `cni-proto`'s runtime, \
         which runs each plugin as a process (as libcni does); each figure is the whole chain.",
    )
    .rows = rows;
    Ok(())
}
