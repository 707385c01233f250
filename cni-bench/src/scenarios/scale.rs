//! Chain ADD against the number of pods already on the node (the chart).

use std::time::Duration;

use anyhow::Result;
use cni_proto::Env;
use cni_proto::runtime::CniConfig;

use super::bins::{Bins, Impl};
use super::harness::{ChainNode, Cycles, interleave, settle, settle_node};
use super::report::{Report, ScalePoint, growth_text, ratio};
use crate::measure::Stats;

pub(super) fn scale(r: &mut Report, bins: &Bins, counts: &[usize], samples: usize) -> Result<()> {
    // Two nodes. One runs ours with nftables. The other is populated by our plugins with the
    // iptables backend, whose rules, reservation files and links are the reference's byte for
    // byte, and is measured with both ours (iptables) and the Go plugins, taking turns: the
    // same node switching plugins, as nodes may. (Running the Go chain a thousand times to
    // populate would take most of the time budget.)
    let mut nft = ChainNode::new(Impl::OursNft, bins)?;
    let mut ipt = ChainNode::new(Impl::OursIpt, bins)?;
    let env = Env::new().with("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    let cache = ipt.cni.cache_dir.clone();
    let go_cni = CniConfig::new(vec![bins.go.clone()])
        .with_base_env(env.clone())
        .with_exec(ipt.timed.clone())
        .with_cache_dir(&cache);
    let ours_cni = ipt.cni.clone();
    for &count in counts {
        while nft.pods.len() < count {
            nft.populate_one()?;
        }
        while ipt.pods.len() < count {
            ipt.populate_one()?;
        }
        eprintln!("cni-bench:   {count} pods");
        settle();
        settle_node(&nft.node);
        settle_node(&ipt.node);
        // 0: ours nftables, 1: ours iptables, 2: reference.
        let mut cycles: [Cycles; 3] = Default::default();
        nft.reserve(samples)?;
        ipt.reserve(2 * samples)?;
        interleave(&mut [0usize, 1, 2], samples, |&mut which, _| {
            let c = match which {
                0 => nft.cycle(false)?,
                1 => {
                    ipt.cni = ours_cni.clone();
                    ipt.cycle(false)?
                }
                _ => {
                    ipt.cni = go_cni.clone();
                    ipt.cycle(false)?
                }
            };
            cycles[which].push(c);
            Ok(())
        })?;
        ipt.cni = ours_cni.clone();
        nft.release();
        ipt.release();
        let med = |i: usize, f: &dyn Fn(&Cycles) -> &Vec<Duration>| Stats::of(f(&cycles[i])).median;
        r.scale.push(ScalePoint {
            pods: count,
            ours_nft: med(0, &|c| &c.add),
            ours_ipt: med(1, &|c| &c.add),
            go: med(2, &|c| &c.add),
            portmap_nft: med(0, &|c| &c.portmap),
            portmap_go: med(2, &|c| &c.portmap),
            bridge_nft: med(0, &|c| &c.bridge),
            bridge_go: med(2, &|c| &c.bridge),
        });
    }
    if let (Some(first), Some(last)) = (r.scale.first(), r.scale.last())
        && last.pods > first.pods
    {
        let (first, last) = (*first, *last);
        r.goal(
            format!(
                "chain ADD at {} pods at most 1.3x ADD at {} (issue #7)",
                last.pods, first.pods
            ),
            growth_text(
                ratio(last.ours_nft, first.ours_nft),
                ratio(last.ours_ipt, first.ours_ipt),
                ratio(last.go, first.go),
            ),
            ratio(last.ours_nft, first.ours_nft) <= 1.3,
        );
        r.goal(
            format!(
                "chain ADD with the default configuration (iptables) at {} pods at most 2x \
                 ADD at {} (issue #16)",
                last.pods, first.pods
            ),
            format!("{:.2}x", ratio(last.ours_ipt, first.ours_ipt)),
            ratio(last.ours_ipt, first.ours_ipt) <= 2.0,
        );
        if let Some(p200) = r.scale.iter().find(|p| p.pods >= 200).copied() {
            r.goal(
                format!(
                    "chain ADD with the default configuration (iptables) and {} pods on the \
                     node at least 8x faster than the reference (issue #16)",
                    p200.pods
                ),
                format!("{:.1}x", ratio(p200.go, p200.ours_ipt)),
                ratio(p200.go, p200.ours_ipt) >= 8.0,
            );
        }
        if let Some(mid) = r.scale.iter().find(|p| p.pods >= 500).copied() {
            r.goal(
                format!(
                    "bridge ADD with {} pods at most 1.2x ADD with none (issue #4)",
                    mid.pods
                ),
                format!("{:.2}x", ratio(mid.bridge_nft, first.bridge_nft)),
                ratio(mid.bridge_nft, first.bridge_nft) <= 1.2,
            );
        }
    }
    let intro = String::from(
        "Chain ADD (bridge with ipMasq + host-local + portmap with one mapping) with N pods \
         already on the node, each with its own namespace, veth, address, masquerade rules \
         and port mapping; the pods each measurement uses are made beforehand and deleted \
         afterwards. Ours with nftables has a node of its own. The other node is populated by \
         our plugins with the iptables backend (the reference's rules, reservation files and \
         links, byte for byte) and is measured with ours (iptables) and with the Go plugins, \
         taking turns, as a node switching plugins. The pods already on the node no longer \
         solicit routers, as pods that have been up for a while (the kernel repeats \
         solicitations with a backoff up to an hour, and the bridge floods each to every port: \
         a node whose thousand pods all came up within two minutes measures that storm). \
         Medians; the chart is `docs/bench-scale.svg`.",
    );
    r.section("Scale", intro).rows = Vec::new();
    Ok(())
}
