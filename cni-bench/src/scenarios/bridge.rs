//! bridge + host-local ADD and DEL, the peak RSS of an ADD, and the floor: the same ADD
//! through our library in-process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cni_proto::exec::InProcessExec;
use cni_testkit::{TempDir, TempNetns};
use serde_json::json;

use super::bins::{Bins, Impl};
use super::harness::interleave;
use super::report::{Report, Row};
use crate::measure::{self, Call, Stats};

struct BridgeNode {
    imp: Impl,
    node: TempNetns,
    _data: TempDir,
    conf: String,
    add: Vec<Duration>,
    del: Vec<Duration>,
    rss: u64,
}

impl BridgeNode {
    /// A node namespace and a host-local store for `imp`'s bridge, with `isGateway`.
    fn new(imp: Impl) -> Result<BridgeNode> {
        let node = TempNetns::new("bench-node")?;
        let data = TempDir::new("bench-ipam")?;
        let conf = json!({"cniVersion": "1.0.0", "name": "benchnet", "type": "bridge",
            "bridge": "cni0", "isGateway": true,
            "ipam": {"type": "host-local", "dataDir": data.path(),
                     "ranges": [[{"subnet": "10.22.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}})
        .to_string();
        Ok(BridgeNode {
            imp,
            node,
            _data: data,
            conf,
            add: Vec::new(),
            del: Vec::new(),
            rss: 0,
        })
    }

    /// ADD of container `id` in `pod` from the node, through `add` (which runs the call and
    /// measures what it wants), then a DEL whose wall time is returned with it.
    fn add_then_del<T>(
        &self,
        bins: &Bins,
        id: &str,
        pod: &TempNetns,
        add: impl FnOnce(&Call<'_>) -> Result<T> + Send,
    ) -> Result<(T, Duration)>
    where
        T: Send,
    {
        let plugin = self.imp.dir(bins).join("bridge");
        let dir = self.imp.dir(bins).display().to_string();
        let netns = pod.path().display().to_string();
        self.node.run(|| -> Result<_> {
            let mut c = Call {
                plugin: &plugin,
                command: "ADD",
                container_id: id,
                netns: &netns,
                ifname: "eth0",
                cni_path: &dir,
                stdin: self.conf.as_bytes(),
            };
            let a = add(&c)?;
            c.command = "DEL";
            Ok((a, measure::run(&c)?))
        })?
    }
}

pub(super) fn bridge(r: &mut Report, bins: &Bins, runs: usize) -> Result<()> {
    let mut nodes = Vec::new();
    for imp in [Impl::OursIpt, Impl::Go] {
        nodes.push(BridgeNode::new(imp)?);
    }
    // Pods stay until the end: deleting a namespace makes the kernel clean it up in the
    // background, which must not overlap the next timed call.
    let mut keep = Vec::new();
    let mut used = Vec::new();
    for _ in 0..runs * 2 {
        keep.push(TempNetns::new("bench-pod")?);
    }
    interleave(&mut nodes, runs, |n, i| {
        let pod = keep.pop().context("pods")?;
        let (a, d) = n.add_then_del(bins, &format!("br-{i}"), &pod, measure::run)?;
        n.add.push(a);
        n.del.push(d);
        used.push(pod);
        Ok(())
    })?;
    drop(used);
    // Peak RSS, through the small launcher (a child of this big process would report ours).
    interleave(&mut nodes, 5, |n, i| {
        let pod = TempNetns::new("bench-pod")?;
        let (rss, _) = n.add_then_del(bins, &format!("rss-{i}"), &pod, measure::peak_rss)?;
        n.rss = n.rss.max(rss);
        Ok(())
    })?;
    let (oa, ga) = (Stats::of(&nodes[0].add), Stats::of(&nodes[1].add));
    let (od, gd) = (Stats::of(&nodes[0].del), Stats::of(&nodes[1].del));
    r.goal(
        "bridge + host-local ADD at most a fifth of the reference's (issue #4)",
        format!("{:.2}x", oa.median.as_secs_f64() / ga.median.as_secs_f64()),
        oa.median * 5 <= ga.median,
    );
    r.goal(
        "bridge + host-local DEL at most half of the reference's (issues #4, #7)",
        format!("{:.2}x", od.median.as_secs_f64() / gd.median.as_secs_f64()),
        od.median * 2 <= gd.median,
    );
    r.goal(
        "peak RSS of an ADD at most half of the reference's (issues #4, #7)",
        format!(
            "{} KiB against {} KiB ({:.2}x)",
            nodes[0].rss,
            nodes[1].rss,
            nodes[0].rss as f64 / nodes[1].rss.max(1) as f64
        ),
        nodes[0].rss * 2 <= nodes[1].rss,
    );

    let floor = in_process_floor(&nodes[0], runs)?;
    r.section(
        "bridge + host-local",
        "ADD then DEL of one pod per run (each in its own pod namespace) on one bridge, with \
         `isGateway` and host-local IPAM, no masquerade. Peak RSS is the largest resident set \
         `wait4` reported for an ADD (the bridge process and the host-local it ran), started \
         from a small launcher (`cni-bench-rss`) so that the benchmark's own memory does not \
         count. The last \
         row is the floor: the same ADD through our library in-process, no process started \
         at all.",
    )
    .rows = vec![
        Row {
            what: "ADD".into(),
            ours: Some(oa),
            reference: Some(ga),
            note: String::new(),
        },
        Row {
            what: "DEL".into(),
            ours: Some(od),
            reference: Some(gd),
            note: String::new(),
        },
        Row {
            what: format!(
                "peak RSS of ADD: ours {} KiB, reference {} KiB",
                nodes[0].rss, nodes[1].rss
            ),
            ours: None,
            reference: None,
            note: format!("{:.1}x", nodes[1].rss as f64 / nodes[0].rss.max(1) as f64),
        },
        Row {
            what: "ADD in-process through the library (the floor)".into(),
            ours: Some(floor),
            reference: None,
            note: String::new(),
        },
    ];
    Ok(())
}

/// The floor: the same ADD as `ours` (its config, another store) through our library
/// in-process, IPAM in-process too: no process started at all.
fn in_process_floor(ours: &BridgeNode, runs: usize) -> Result<Stats> {
    let node = TempNetns::new("bench-floor")?;
    let data = TempDir::new("bench-ipam")?;
    let conf = ours.conf.replace(
        &ours._data.path().display().to_string(),
        &data.path().display().to_string(),
    );
    let bconf = cni_bridge::BridgeConf::parse(conf.as_bytes(), "")?;
    let exec = Arc::new(InProcessExec::new().with_plugin(
        "host-local",
        Arc::new(cni_ipam_hostlocal_plugin()) as Arc<dyn cni_proto::skel::Plugin + Send + Sync>,
    ));
    let mut samples = Vec::new();
    for i in 0..runs {
        let pod = TempNetns::new("bench-pod")?;
        let att = cni_bridge::Attachment::new(
            format!("floor-{i}"),
            "eth0",
            Some(pod.path().to_path_buf()),
            "/nonexistent",
        );
        let d = node.run(|| -> Result<Duration> {
            let mut deps = cni_bridge::Deps::system();
            deps.exec = exec.clone();
            let t = Instant::now();
            cni_bridge::add(&bconf, &att, &mut deps)?;
            let d = t.elapsed();
            cni_bridge::del(&bconf, &att, &mut deps)?;
            Ok(d)
        })??;
        samples.push(d);
    }
    Ok(Stats::of(&samples))
}

fn cni_ipam_hostlocal_plugin() -> cni_ipam_hostlocal::HostLocal {
    cni_ipam_hostlocal::HostLocal
}
