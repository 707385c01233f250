//! The `firewall` plugin at the end of a bridge + host-local + portmap chain (podman's default
//! network ends with it), ours beside the Go reference: the firewall's own process time per
//! chain ADD, on an empty node and with many pods' entries already on it.

use super::*;

/// Fills `node`'s firewall with the entries of `pods` pods by running `bin` (ADD) with
/// `conf` and distinct addresses outside the chain's subnet.
fn prefill(node: &TempNetns, bin: &Path, conf: &serde_json::Value, pods: usize) -> Result<()> {
    let dir = bin.parent().unwrap_or(Path::new("/")).display().to_string();
    for i in 0..pods {
        let mut c = conf.clone();
        c["cniVersion"] = json!("1.0.0");
        c["name"] = json!("benchfill");
        c["prevResult"] = json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "fill0"}, {"name": "eth0", "sandbox": "/x"}],
            "ips": [{"address": format!("10.80.{}.{}/16", i / 250, i % 250 + 1),
                     "interface": 1}]});
        let stdin = serde_json::to_vec(&c)?;
        let id = format!("fill-{i}");
        let call = Call {
            plugin: bin,
            command: "ADD",
            container_id: &id,
            netns: "/x",
            ifname: "eth0",
            cni_path: &dir,
            stdin: &stdin,
        };
        node.run(|| measure::run(&call))??;
    }
    Ok(())
}

/// One comparison: ours with `ours_conf` beside the reference with `go_conf`, with `pods`
/// pods' entries on each node first.
fn compare(
    bins: &Bins,
    runs: usize,
    ours_conf: &serde_json::Value,
    go_conf: &serde_json::Value,
    pods: usize,
) -> Result<small::Tail> {
    small::chain_tail(bins, runs, ours_conf, go_conf, |node, imp| match imp {
        Impl::Go => prefill(&node.node, &bins.go.join("firewall"), go_conf, pods),
        _ => prefill(&node.node, &bins.ours.plugin("firewall"), ours_conf, pods),
    })
}

/// The section.
pub(super) fn firewall(r: &mut Report, bins: &Bins, runs: usize, quick: bool) -> Result<()> {
    let many = if quick { 100 } else { 1000 };
    let go_default = json!({"type": "firewall", "backend": ""});
    let mut rows = Vec::new();
    for (label, ours_conf) in [
        (
            "nftables",
            json!({"type": "firewall", "backend": "nftables"}),
        ),
        (
            "podman's default (`\"backend\":\"\"`: iptables)",
            go_default.clone(),
        ),
    ] {
        for pods in [0, many] {
            let t = compare(bins, runs, &ours_conf, &go_default, pods)?;
            if label == "nftables" {
                small::own_cost_goal(
                    r,
                    format!(
                        "`firewall` ADD (nftables) adds under 1 ms of its own to a chain ADD, \
                         {pods} pods on the node (issue #14)"
                    ),
                    t.ours.median,
                    t.floor,
                );
            }
            rows.push(Row {
                what: format!("`firewall` ADD in a chain, ours {label}, {pods} pods on the node"),
                ours: Some(t.ours),
                reference: Some(t.reference),
                note: String::new(),
            });
        }
    }
    r.section(
        "firewall",
        "`firewall`'s own process time in the ADD of a bridge + host-local + portmap chain \
         through the runtime (ours: nftables bridge and portmap; reference: the Go chain with \
         podman's default firewall config, iptables). \"pods on the node\": that many other \
         pods' firewall entries added before the measured ADDs. The goals count what it costs \
         beyond a bare process spawned the same way by the same runtime.",
    )
    .rows = rows;
    Ok(())
}
