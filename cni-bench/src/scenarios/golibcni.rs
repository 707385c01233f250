//! Issue #16's own measure: the default chain (bridge with ipMasq + host-local + portmap, the
//! iptables backend) driven by Go's libcni, the library containerd, CRI-O and podman run
//! plugins with, ours against the reference, taking turns: chain ADD while 30 pods accumulate,
//! chain ADD with 200 pods on the node, chain DEL there, and the peak RSS of the ADD's plugins
//! and the tools they start. The runtime's own process is in both sides of each time ratio.
//! The driver is
//! `golibcni/main.go`, built here with Debian's golang-go and golang-github-appc-cni-dev.

use std::process::{Command, Output};

use anyhow::Context;
use cni_testkit::TempDir;

use super::*;

/// The Go driver, built into a temporary directory.
struct Driver {
    bin: PathBuf,
    _dir: TempDir,
}

fn build() -> Result<Driver> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("golibcni/main.go");
    let dir = TempDir::new("bench-golibcni")?;
    let bin = dir.path().join("golibcni");
    let out = Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", dir.path().join("cache"))
        .output()
        .context("running `go` (Debian package golang-go)")?;
    if !out.status.success() {
        bail!(
            "building the libcni driver failed (it needs Debian's golang-go and \
             golang-github-appc-cni-dev): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(Driver { bin, _dir: dir })
}

/// One implementation's node, its conflist on disk and the pods the driver added.
struct Side {
    node: ChainNode,
    conf: PathBuf,
    cache: TempDir,
    pods: Vec<(TempNetns, String)>,
    /// The namespaces of the pods deleted, kept until the section ends: deleting a namespace
    /// makes the kernel clean it up in the background (holding the rtnl lock, waiting for RCU),
    /// which must not overlap the next DEL measured.
    gone: Vec<(TempNetns, String)>,
    port: u16,
    add30: Vec<Duration>,
    add200: Vec<Duration>,
    del200: Vec<Duration>,
    rss: u64,
}

impl Side {
    fn new(imp: Impl, bins: &Bins) -> Result<Side> {
        let node = ChainNode::new(imp, bins)?;
        let cache = TempDir::new("bench-golibcni-cache")?;
        let conf = cache.path().join("chain.conflist");
        std::fs::write(&conf, serde_json::to_vec(&node.list)?)?;
        Ok(Side {
            node,
            conf,
            cache,
            pods: Vec::new(),
            gone: Vec::new(),
            port: 20000,
            add30: Vec::new(),
            add200: Vec::new(),
            del200: Vec::new(),
            rss: 0,
        })
    }

    /// Runs the driver for `verb` on `pod`, from the node, with the plugins of `cni_path` (this
    /// side's plugins when `None`): wall time from spawn to exit, and the output.
    fn call(
        &self,
        bins: &Bins,
        drv: &Driver,
        cni_path: Option<&Path>,
        verb: &str,
        pod: &(TempNetns, String),
    ) -> Result<(Duration, Output)> {
        let mut cmd = Command::new(&drv.bin);
        let caps = json!({"portMappings": [
            {"hostPort": self.port, "containerPort": 80, "protocol": "tcp"}]});
        cmd.arg(verb)
            .arg(&self.conf)
            .arg(pod.0.path())
            .arg(&pod.1)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env(
                "CNI_PATH",
                cni_path.unwrap_or_else(|| self.node.imp.dir(bins)),
            )
            .env("CNI_CACHE_DIR", self.cache.path())
            .env("CAP_ARGS", caps.to_string());
        let (took, out) = self.node.node.run(|| -> Result<_> {
            let t = Instant::now();
            let out = cmd.output()?;
            Ok((t.elapsed(), out))
        })??;
        if !out.status.success() {
            bail!(
                "libcni {verb} through {:?} failed: {}",
                self.node.imp,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok((took, out))
    }

    /// ADD of a new pod through the driver, timed, in a namespace made beforehand (see
    /// [`ChainNode::reserve`]); the pod stays.
    fn add(&mut self, bins: &Bins, drv: &Driver) -> Result<Duration> {
        self.port += 1;
        let netns = match self.node.spare.pop() {
            Some(n) => n,
            None => TempNetns::new("bench-pod")?,
        };
        let pod = (netns, format!("golibcni-{}", self.port));
        let (took, _) = self.call(bins, drv, None, "add", &pod)?;
        self.pods.push(pod);
        Ok(took)
    }

    /// The peak RSS of one ADD's plugins and the tools they start (the process tree,
    /// the runtime aside): every plugin runs under the `cni-bench-rss` launcher, through a
    /// directory of wrappers given as `CNI_PATH`, and reports its tree's peak on the stderr the
    /// runtime passes through. The largest figure wins; the pod is removed again.
    fn rss(&mut self, bins: &Bins, drv: &Driver) -> Result<u64> {
        let launcher = measure::launcher()?;
        let wrappers = TempDir::new("bench-golibcni-rss")?;
        for p in super::bins::PLUGINS {
            let real = self.node.imp.dir(bins).join(p);
            let w = wrappers.path().join(p);
            std::fs::write(
                &w,
                format!(
                    "#!/bin/sh\nexec '{}' '{}' \"$@\"\n",
                    launcher.display(),
                    real.display()
                ),
            )?;
            std::fs::set_permissions(&w, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        }
        self.port += 1;
        let pod = (
            TempNetns::new("bench-pod")?,
            format!("golibcni-{}", self.port),
        );
        let (_, out) = self.call(bins, drv, Some(wrappers.path()), "add", &pod)?;
        self.call(bins, drv, None, "del", &pod)?;
        let peaks = measure::launcher_reports(&out.stderr);
        // bridge, the host-local it runs, portmap.
        if peaks.len() < 3 {
            bail!(
                "expected a peak from every plugin of the chain, got: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(peaks
            .into_iter()
            .map(|(kib, _)| kib)
            .max()
            .unwrap_or_default())
    }
}

/// The section.
pub(super) fn golibcni(r: &mut Report, bins: &Bins, quick: bool) -> Result<()> {
    let (accumulate, present, samples) = if quick { (5, 20, 3) } else { (30, 200, 10) };
    let drv = build()?;
    let mut sides = [Side::new(Impl::OursIpt, bins)?, Side::new(Impl::Go, bins)?];
    for s in sides.iter_mut() {
        s.node.reserve(accumulate + samples)?;
    }
    // ADD while pods accumulate on the node.
    interleave(&mut sides, accumulate, |s, _| {
        let d = s.add(bins, &drv)?;
        s.add30.push(d);
        Ok(())
    })?;
    // More pods, added by our runtime in-process (what they are made with does not matter).
    for s in sides.iter_mut() {
        while s.pods.len() + s.node.pods.len() < present {
            s.node.populate_one()?;
        }
    }
    let first = sides[0].pods.len();
    interleave(&mut sides, samples, |s, _| {
        let d = s.add(bins, &drv)?;
        s.add200.push(d);
        Ok(())
    })?;
    // DEL of the pods just added, with the others still there.
    interleave(&mut sides, samples, |s, i| {
        let pod = s.pods.remove(first + samples - 1 - i);
        let (d, _) = s.call(bins, &drv, None, "del", &pod)?;
        s.gone.push(pod);
        s.del200.push(d);
        Ok(())
    })?;
    interleave(&mut sides, 3, |s, _| {
        let kib = s.rss(bins, &drv)?;
        s.rss = s.rss.max(kib);
        Ok(())
    })?;
    let [ours, go] = &sides;
    // (row, goal, least ratio, ours, reference)
    let figures = [
        (
            format!("chain ADD, {accumulate} pods accumulating"),
            format!("chain ADD with the default configuration, {accumulate} pods accumulating,"),
            6.0,
            &ours.add30,
            &go.add30,
        ),
        (
            format!("chain ADD, {present} pods on the node"),
            format!("chain ADD with the default configuration and {present} pods on the node"),
            8.0,
            &ours.add200,
            &go.add200,
        ),
        (
            format!("chain DEL, {present} pods on the node"),
            format!("chain DEL with the default configuration and {present} pods on the node"),
            4.0,
            &ours.del200,
            &go.del200,
        ),
    ];
    let mut rows = Vec::new();
    for (what, goal, least, o, g) in figures {
        let (o, g) = (Stats::of(o), Stats::of(g));
        let x = g.median.as_secs_f64() / o.median.as_secs_f64().max(1e-9);
        r.goal(
            format!(
                "Go libcni runtime: {goal} at least {least}x faster than the reference \
                 (issue #16)"
            ),
            format!("{x:.1}x"),
            x >= least,
        );
        rows.push(Row {
            what,
            ours: Some(o),
            reference: Some(g),
            note: String::new(),
        });
    }
    r.goal(
        "Go libcni runtime: peak RSS of the ADD process tree (the plugins and the tools they \
         start) with the default configuration at most half of the reference's (issue #16)",
        format!(
            "{} KiB against {} KiB ({:.2}x)",
            ours.rss,
            go.rss,
            ours.rss as f64 / go.rss.max(1) as f64
        ),
        ours.rss * 2 <= go.rss,
    );
    r.section(
        "Go libcni runtime: the default configuration",
        "The chain bridge (ipMasq) + host-local + portmap (one mapping) with the default \
         configuration (iptables; ours on iptables-nft writes over netlink), each ADD and DEL \
         one process of `golibcni/main.go`, a runtime on Go's libcni as containerd, CRI-O and \
         podman use it, timed from its spawn to its exit, ours and the reference taking turns; \
         peak RSS of the plugins and their tools, each plugin under the `cni-bench-rss` \
         launcher.",
    )
    .rows = rows;
    Ok(())
}
