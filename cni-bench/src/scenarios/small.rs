//! The small plugins of a pod's set-up, each beside its Go twin: `loopback` as the network of
//! its own that containerd's go-cni adds to every pod, `static` as IPAM, and `tuning` at the
//! end of a bridge + portmap chain (podman's default network ends with it).

use super::*;

/// The loopback network go-cni injects (`cni-loopback`, 0.3.1).
const LOOPBACK: &[u8] = br#"{"cniVersion":"0.3.1","name":"cni-loopback","type":"loopback"}"#;

/// A bridge config whose IPAM is `static`: what the IPAM plugin reads.
const STATIC: &[u8] = br#"{"cniVersion":"1.0.0","name":"benchnet","type":"bridge",
"ipam":{"type":"static","addresses":[{"address":"10.10.0.2/24","gateway":"10.10.0.1"},
{"address":"fd10::2/64"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.10.0.53"]}}}"#;

/// One implementation's plugins and the samples taken of them.
struct Side {
    dir: PathBuf,
    spare: Vec<TempNetns>,
    used: Vec<TempNetns>,
    add: Vec<Duration>,
    del: Vec<Duration>,
}

impl Side {
    fn new(dir: &Path, pods: usize) -> Result<Side> {
        let spare = (0..pods)
            .map(|_| TempNetns::new("bench-pod").map_err(anyhow::Error::from))
            .collect::<Result<Vec<_>>>()?;
        Ok(Side {
            dir: dir.to_path_buf(),
            spare,
            used: Vec::new(),
            add: Vec::new(),
            del: Vec::new(),
        })
    }

    /// ADD then DEL of `plugin` with `stdin` on a fresh pod namespace, both timed.
    fn cycle(&mut self, node: &TempNetns, plugin: &str, ifname: &str, stdin: &[u8]) -> Result<()> {
        let pod = match self.spare.pop() {
            Some(p) => p,
            None => TempNetns::new("bench-pod")?,
        };
        let bin = self.dir.join(plugin);
        let netns = pod.path().display().to_string();
        let id = format!("bench-{}", self.add.len());
        let cni_path = self.dir.display().to_string();
        let call = |command| Call {
            plugin: &bin,
            command,
            container_id: &id,
            netns: &netns,
            ifname,
            cni_path: &cni_path,
            stdin,
        };
        let (add, del) = node.run(|| -> Result<_> {
            Ok((measure::run(&call("ADD"))?, measure::run(&call("DEL"))?))
        })??;
        self.add.push(add);
        self.del.push(del);
        self.used.push(pod);
        Ok(())
    }
}

/// The median of a process that does nothing (`/bin/true`), spawned as the plugins are: what a
/// plugin costs before it does anything of its own.
pub(super) fn process_floor(runs: usize) -> Result<Duration> {
    let mut v = Vec::new();
    for _ in 0..runs.max(5) {
        v.push(measure::run(&Call {
            plugin: Path::new("/bin/true"),
            command: "VERSION",
            container_id: "",
            netns: "",
            ifname: "",
            cni_path: "",
            stdin: b"",
        })?);
    }
    Ok(Stats::of(&v).median)
}

/// A goal on a plugin's own cost: its median over the floor of a bare process, under 1 ms.
pub(super) fn own_cost_goal(r: &mut Report, text: String, median: Duration, floor: Duration) {
    own_cost_goal_under(r, text, median, floor, Duration::from_millis(1));
}

/// A goal on a plugin's own cost: its median over the floor of a bare process, under `limit`.
pub(super) fn own_cost_goal_under(
    r: &mut Report,
    text: String,
    median: Duration,
    floor: Duration,
    limit: Duration,
) {
    let own = median.saturating_sub(floor);
    r.goal(
        text,
        format!(
            "{} ms median, {} ms over a bare process ({} ms)",
            ms(median),
            ms(own),
            ms(floor)
        ),
        own < limit,
    );
}

/// The own process time of the plugin that ends a bridge + host-local + portmap chain run
/// through the runtime: ours (nftables backends) with `ours` last, beside the reference's chain
/// with `go` last, interleaved, `runs` ADDs each; `prep` readies each node first (e.g. other
/// pods' state on it). The plugin's time is that of the ADD's process only (the chain's CHECK
/// and DEL run it again, untimed here).
pub(super) struct Tail {
    pub(super) ours: Stats,
    pub(super) reference: Stats,
    /// A bare process spawned through the same runtime path on ours' node, between the
    /// measured ADDs: the floor the plugin's own cost is counted from.
    pub(super) floor: Duration,
}

pub(super) fn chain_tail(
    bins: &Bins,
    runs: usize,
    ours: &serde_json::Value,
    go: &serde_json::Value,
    mut prep: impl FnMut(&ChainNode, Impl) -> Result<()>,
) -> Result<Tail> {
    let mut nodes = vec![
        (
            ChainNode::with_extra(Impl::OursNft, bins, std::slice::from_ref(ours))?,
            Cycles::default(),
        ),
        (
            ChainNode::with_extra(Impl::Go, bins, std::slice::from_ref(go))?,
            Cycles::default(),
        ),
    ];
    for (n, _) in nodes.iter_mut() {
        prep(n, n.imp)?;
        n.reserve(runs)?;
    }
    let mut floor = Vec::new();
    interleave(&mut nodes, runs, |(n, c), _| {
        c.push(n.cycle(false)?);
        if n.imp == Impl::OursNft {
            floor.push(n.bare_exec()?);
        }
        Ok(())
    })?;
    for (n, _) in nodes.iter_mut() {
        n.release();
    }
    let (o, g) = (Stats::of(&nodes[0].1.tail), Stats::of(&nodes[1].1.tail));
    if o.n == 0 || g.n == 0 {
        bail!("the chain ran no {}", ours["type"]);
    }
    Ok(Tail {
        ours: o,
        reference: g,
        floor: Stats::of(&floor).median,
    })
}

/// ADD and DEL of one plugin called alone, ours against the reference: two rows and a goal on
/// ours' ADD.
fn alone(
    r: &mut Report,
    bins: &Bins,
    runs: usize,
    floor: Duration,
    plugin: &str,
    ifname: &str,
    stdin: &[u8],
) -> Result<Vec<Row>> {
    let node = TempNetns::new("bench-node")?;
    let mut sides = [
        Side::new(bins.ours.path(), runs)?,
        Side::new(&bins.go, runs)?,
    ];
    interleave(&mut sides, runs, |s, _| {
        s.cycle(&node, plugin, ifname, stdin)
    })?;
    let [ours, go] = &sides;
    own_cost_goal(
        r,
        format!("`{plugin}` ADD costs under 1 ms beyond its process (issue #13)"),
        Stats::of(&ours.add).median,
        floor,
    );
    let row = |verb: &str, o: &[Duration], g: &[Duration]| Row {
        what: format!("`{plugin}` {verb}"),
        ours: Some(Stats::of(o)),
        reference: Some(Stats::of(g)),
        note: String::new(),
    };
    Ok(vec![
        row("ADD", &ours.add, &go.add),
        row("DEL", &ours.del, &go.del),
    ])
}

/// tuning's own process time at the end of a bridge + host-local + portmap chain, ours and the
/// reference each in their own chain.
fn tuning(r: &mut Report, bins: &Bins, runs: usize) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let configs = [
        (
            "podman's default (`{\"type\":\"tuning\"}`)",
            json!({"type": "tuning"}),
        ),
        (
            "an MTU and a sysctl",
            json!({"type": "tuning", "mtu": 1400,
                   "sysctl": {"net.ipv4.conf.eth0.arp_notify": "1"}}),
        ),
    ];
    for (label, conf) in configs {
        let t = chain_tail(bins, runs, &conf, &conf, |_, _| Ok(()))?;
        own_cost_goal(
            r,
            format!("`tuning` ({label}) adds under 1 ms of its own to a chain ADD (issue #13)"),
            t.ours.median,
            t.floor,
        );
        rows.push(Row {
            what: format!("`tuning` ADD in a chain, {label}"),
            ours: Some(t.ours),
            reference: Some(t.reference),
            note: String::new(),
        });
    }
    Ok(rows)
}

/// The section: loopback, static and tuning beside the reference's.
pub(super) fn small(r: &mut Report, bins: &Bins, runs: usize) -> Result<()> {
    let floor = process_floor(runs)?;
    let mut rows = alone(r, bins, runs, floor, "loopback", "lo", LOOPBACK)?;
    rows.extend(alone(r, bins, runs, floor, "static", "eth0", STATIC)?);
    rows.extend(tuning(r, bins, (runs / 2).max(3))?);
    r.section(
        "Small plugins: loopback, static, tuning",
        "`loopback` ADD and DEL as the network of its own that containerd adds to every pod; \
         `static` ADD and DEL as IPAM (called alone, as bridge calls it); `tuning`'s own process \
         time in the ADD of a bridge + host-local + portmap chain through the runtime (ours: \
         nftables backends; reference: the Go chain). Each call is one process; the goals \
         count what a plugin costs beyond a bare process (`/bin/true`) spawned the same way in \
         the same run: directly for loopback and static, through the chain's runtime for \
         tuning.",
    )
    .rows = rows;
    Ok(())
}
