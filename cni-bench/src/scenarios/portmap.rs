//! portmap alone: ADD of one mapping on a node where more and more containers are mapped.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cni_testkit::TempNetns;
use serde_json::json;

use super::bins::Bins;
use super::harness::{interleave, settle};
use super::report::{Report, Row, growth_text, ratio};
use crate::measure::{self, Call, Stats};

/// A node for portmap alone: a bridge with a route towards the fake containers (for
/// `route_localnet`), and the containers mapped on it so far.
struct PortmapNode {
    node: TempNetns,
    mapped: usize,
}

impl PortmapNode {
    fn new() -> Result<PortmapNode> {
        let node = TempNetns::new("bench-node")?;
        let mut nl = node.netlink()?;
        let br = nl.add_bridge(
            "cni0",
            &cni_linux::netlink::BridgeOptions {
                up: true,
                ..Default::default()
            },
        )?;
        nl.addr_add(
            br.index,
            "10.33.0.1/16".parse()?,
            cni_linux::netlink::AddrFlags::NONE,
        )?;
        Ok(PortmapNode { node, mapped: 0 })
    }

    /// Run portmap `command` for one container with one TCP mapping, prevResult given as a
    /// chain would; the wall time of the process.
    fn call(
        &self,
        plugin: &Path,
        nftables: bool,
        command: &str,
        id: &str,
        ip: Ipv4Addr,
        host_port: u32,
    ) -> Result<Duration> {
        let conf = json!({"cniVersion": "1.0.0", "name": "benchnet", "type": "portmap",
            "backend": if nftables { "nftables" } else { "iptables" },
            "runtimeConfig": {"portMappings": [{"hostPort": host_port, "containerPort": 80, "protocol": "tcp"}]},
            "prevResult": {"cniVersion": "1.0.0",
                "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/x"}],
                "ips": [{"address": format!("{ip}/16"), "gateway": "10.33.0.1", "interface": 0}]}})
        .to_string();
        self.node.run(|| -> Result<Duration> {
            let c = Call {
                plugin,
                command,
                container_id: id,
                netns: "/var/run/netns/x",
                ifname: "eth0",
                cni_path: "/nonexistent",
                stdin: conf.as_bytes(),
            };
            measure::run(&c)
        })?
    }

    /// Map containers with our portmap until `count` are mapped (10.33.16.0 upwards, host
    /// ports from 30000).
    fn populate(&mut self, plugin: &Path, nftables: bool, count: usize) -> Result<()> {
        while self.mapped < count {
            let k = self.mapped as u32;
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 33, 16, 0)) + k);
            self.call(
                plugin,
                nftables,
                "ADD",
                &format!("mapped-{k}"),
                ip,
                30000 + k,
            )
            .context("populate")?;
            self.mapped += 1;
        }
        Ok(())
    }
}

pub(super) fn portmap(r: &mut Report, bins: &Bins, runs: usize, counts: &[usize]) -> Result<()> {
    // Two nodes. One runs ours with nftables. The other is populated by ours with the iptables
    // backend (the reference's chains and rules, byte for byte) and is measured with ours
    // (iptables) and with the Go portmap, taking turns.
    let mut nft = PortmapNode::new()?;
    let mut ipt = PortmapNode::new()?;
    let ours = bins.ours.plugin("portmap");
    let go = bins.go.join("portmap");
    // 0: ours nftables, 1: ours iptables, 2: reference; one row of samples per pod count.
    let mut medians: Vec<(usize, [Stats; 3])> = Vec::new();
    let mut first: Option<[Stats; 3]> = None;
    let mut seq = 0u32;
    for (level, &count) in counts.iter().enumerate() {
        nft.populate(&ours, true, count)?;
        ipt.populate(&ours, false, count)?;
        settle();
        // Every figure at 0 mappings gets the full sample count: it is also the one-mapping goal.
        let samples = if level == 0 { runs } else { (runs / 2).max(3) };
        let mut v: [Vec<Duration>; 3] = Default::default();
        interleave(&mut [0usize, 1, 2], samples, |&mut which, _| {
            seq += 1;
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 33, 1, 0)) + (seq % 3000));
            let port = 20000 + (seq % 9000);
            let id = format!("pm-{seq}");
            let (node, plugin, nftables) = match which {
                0 => (&nft, &ours, true),
                1 => (&ipt, &ours, false),
                _ => (&ipt, &go, false),
            };
            v[which].push(node.call(plugin, nftables, "ADD", &id, ip, port)?);
            node.call(plugin, nftables, "DEL", &id, ip, port)?;
            Ok(())
        })?;
        let stats = [Stats::of(&v[0]), Stats::of(&v[1]), Stats::of(&v[2])];
        if level == 0 {
            first = Some(stats);
        }
        medians.push((count, stats));
    }
    let Some([n, i, g]) = first else {
        bail!("no pod counts");
    };
    r.goal(
        "portmap ADD with one mapping at most a tenth of the reference's (issue #5)",
        format!(
            "nftables {:.3}x, iptables (default) {:.3}x",
            n.median.as_secs_f64() / g.median.as_secs_f64(),
            i.median.as_secs_f64() / g.median.as_secs_f64()
        ),
        n.median * 10 <= g.median,
    );
    if let Some((last, [ln, li, lg])) = medians.last().filter(|(c, _)| *c > 0) {
        let nft = ratio(ln.median, n.median);
        r.goal(
            format!(
                "portmap ADD with {last} containers mapped at most 1.3x ADD with none (issue #5)"
            ),
            growth_text(nft, ratio(li.median, i.median), ratio(lg.median, g.median)),
            nft <= 1.3,
        );
    }
    let mut rows = Vec::new();
    for (count, [sn, si, sg]) in &medians {
        let at = if *count == 0 {
            String::from("no other container mapped")
        } else {
            format!("{count} containers mapped")
        };
        rows.push(Row {
            what: format!("ADD, {at}, ours with nftables"),
            ours: Some(*sn),
            reference: Some(*sg),
            note: String::new(),
        });
        rows.push(Row {
            what: format!("ADD, {at}, ours with iptables (the default, as the reference)"),
            ours: Some(*si),
            reference: Some(*sg),
            note: String::new(),
        });
    }
    r.section(
        "portmap",
        "ADD of one container with one TCP mapping (prevResult given, as in a chain), then DEL \
         (untimed), on a node where N other containers are already mapped (each with its own \
         address and host port) and nothing else runs: portmap's own cost as mappings \
         accumulate, apart from the kernel's cost of pods. Ours with nftables has a node of \
         its own; the other node is populated by ours with the iptables backend (the \
         reference's chains and rules, byte for byte) and measured with ours and the Go \
         portmap taking turns.",
    )
    .rows = rows;
    Ok(())
}
