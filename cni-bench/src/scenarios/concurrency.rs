//! 32 chain ADDs at once on a fresh node: wall time, failures, distinct addresses.

use std::net::IpAddr;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cni_proto::runtime::RuntimeConf;
use cni_testkit::TempNetns;

use super::bins::{Bins, Impl};
use super::harness::{ChainNode, interleave};
use super::report::{Report, Row};
use crate::measure::Stats;

/// How many ADDs run at once.
const N: usize = 32;

pub(super) fn concurrency(r: &mut Report, bins: &Bins, rounds: usize) -> Result<()> {
    let mut rows = Vec::new();
    let mut per_impl: Vec<(Impl, Vec<Duration>)> = vec![
        (Impl::OursNft, Vec::new()),
        (Impl::OursIpt, Vec::new()),
        (Impl::Go, Vec::new()),
    ];
    let mut all_distinct = true;
    // Failed ADDs per implementation, with the first error.
    let mut failures: Vec<(usize, String)> = vec![(0, String::new()); per_impl.len()];
    let mut round = 0usize;
    interleave(&mut per_impl, rounds, |(imp, v), _| {
        round += 1;
        let slot = match imp {
            Impl::OursNft => 0,
            Impl::OursIpt => 1,
            Impl::Go => 2,
        };
        let (wall, results) = round_of_adds(*imp, bins)?;
        let mut ips = Vec::new();
        for res in results {
            match res {
                Ok(ip) => ips.push(ip),
                Err(e) => {
                    if failures[slot].0 == 0 {
                        failures[slot].1 = format!("{e:#}");
                    }
                    failures[slot].0 += 1;
                }
            }
        }
        let mut sorted = ips.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != ips.len() {
            all_distinct = false;
        }
        v.push(wall);
        Ok(())
    })?;
    let attempts = N * round / per_impl.len();
    let g = Stats::of(&per_impl[2].1);
    let failed = |i: usize| {
        if failures[i].0 == 0 {
            String::new()
        } else {
            format!(
                "{} of {attempts} ADDs failed, e.g. `{}`",
                failures[i].0,
                failures[i].1.replace('|', "/")
            )
        }
    };
    for (i, label) in [
        (0, "ours with nftables"),
        (1, "ours with iptables (default)"),
    ] {
        rows.push(Row {
            what: format!("{N} chain ADDs at once, {label}: wall time of all"),
            ours: Some(Stats::of(&per_impl[i].1)),
            reference: Some(g),
            note: String::new(),
        });
    }
    let ours_failed = failures[0].0 + failures[1].0;
    r.goal(
        format!("{N} concurrent ADDs all succeed with {N} distinct addresses (issue #7)"),
        format!(
            "{}{}",
            if all_distinct {
                "all distinct"
            } else {
                "DUPLICATES"
            },
            if ours_failed == 0 {
                String::new()
            } else {
                format!(", {ours_failed} of ours failed")
            }
        ),
        all_distinct && ours_failed == 0,
    );
    for (i, who) in [
        (0, "ours (nftables)"),
        (1, "ours (iptables)"),
        (2, "reference"),
    ] {
        if failures[i].0 > 0 {
            rows.push(Row {
                what: format!("failed ADDs, {who}"),
                ours: None,
                reference: None,
                note: failed(i),
            });
        }
    }
    r.section(
        "Concurrency",
        format!(
            "{N} chain ADDs started at once (a barrier releases {N} threads, each running the \
             whole chain through the runtime for its own pod), on a fresh node per round; wall \
             time until the last one finished. Every round checks that the {N} addresses are \
             distinct."
        ),
    )
    .rows = rows;
    Ok(())
}

/// One round on a fresh node of `imp`: [`N`] chain ADDs released at once by a barrier, each
/// for its own pod; the wall time until the last finished and each ADD's address or error.
/// Every pod is then DELeted, as a runtime does after a failed ADD too.
fn round_of_adds(imp: Impl, bins: &Bins) -> Result<(Duration, Vec<Result<IpAddr>>)> {
    let mut n = ChainNode::new(imp, bins)?;
    let pods: Vec<TempNetns> = (0..N)
        .map(|_| TempNetns::new("bench-pod"))
        .collect::<cni_testkit::Result<_>>()?;
    let rts: Vec<RuntimeConf> = pods.iter().map(|p| n.runtime_conf(p)).collect();
    let barrier = Barrier::new(N);
    let (cni, list, node) = (&n.cni, &n.list, &n.node);
    let t = Instant::now();
    let results: Vec<Result<IpAddr>> = std::thread::scope(|s| {
        let hs: Vec<_> = rts
            .iter()
            .map(|rt| {
                let barrier = &barrier;
                s.spawn(move || -> Result<IpAddr> {
                    node.run(|| {
                        barrier.wait();
                        let res = cni
                            .add_network_list(list, rt)
                            .map_err(|e| anyhow::anyhow!(cni_types::error::chain_message(&e)))?;
                        Ok(res.ips.first().context("no address")?.address.addr())
                    })?
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("thread panicked")))
            })
            .collect()
    });
    let wall = t.elapsed();
    // DEL every pod, as a runtime does after a failed ADD too.
    for rt in &rts {
        let _ = node.run(|| cni.del_network_list(list, rt));
    }
    Ok((wall, results))
}
