//! host-local ADD into a /16 with none and with many reservations already in the store.

use std::net::Ipv4Addr;

use anyhow::Result;
use cni_testkit::TempDir;
use serde_json::json;

use super::bins::{Bins, Impl};
use super::harness::interleave;
use super::report::{Report, Row};
use crate::measure::{self, Call, Stats};

pub(super) fn hostlocal(r: &mut Report, bins: &Bins, runs: usize, existing: usize) -> Result<()> {
    let mut rows = Vec::new();
    let mut medians = Vec::new();
    for n in [0, existing] {
        // Each implementation gets its own store with `n` reservations in a /16, in the
        // on-disk format both share.
        let mut stores = Vec::new();
        for imp in [Impl::OursIpt, Impl::Go] {
            let dir = TempDir::new("bench-hl")?;
            let net = dir.path().join("benchnet");
            std::fs::create_dir_all(&net)?;
            for i in 0..n {
                let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 100, 0, 2)) + i as u32);
                std::fs::write(net.join(ip.to_string()), format!("pre-{i}\r\neth0"))?;
            }
            if n > 0 {
                let last = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 100, 0, 1)) + n as u32);
                std::fs::write(net.join("last_reserved_ip.0"), last.to_string())?;
            }
            let conf = json!({"cniVersion": "1.0.0", "name": "benchnet", "type": "bridge",
                "ipam": {"type": "host-local", "dataDir": dir.path(),
                         "ranges": [[{"subnet": "10.100.0.0/16"}]]}})
            .to_string();
            stores.push((imp, dir, conf, Vec::new()));
        }
        interleave(&mut stores, runs, |(imp, _dir, conf, v), i| {
            let plugin = imp.dir(bins).join("host-local");
            let id = format!("hl-{i}");
            let mut c = Call {
                plugin: &plugin,
                command: "ADD",
                container_id: &id,
                netns: "/var/run/netns/cni-bench-none",
                ifname: "eth0",
                cni_path: "/nonexistent",
                stdin: conf.as_bytes(),
            };
            v.push(measure::run(&c)?);
            c.command = "DEL";
            measure::run(&c)?;
            Ok(())
        })?;
        let (o, g) = (Stats::of(&stores[0].3), Stats::of(&stores[1].3));
        medians.push((o.median, g.median));
        rows.push(Row {
            what: format!("ADD with {n} reservations"),
            ours: Some(o),
            reference: Some(g),
            note: String::new(),
        });
    }
    let (o0, g0) = medians[0];
    let (on, gn) = medians[1];
    r.goal(
        "host-local ADD at most a third of the reference's (issue #3)",
        format!(
            "{:.2}x at 0, {:.2}x at {existing}",
            o0.as_secs_f64() / g0.as_secs_f64(),
            on.as_secs_f64() / gn.as_secs_f64()
        ),
        o0 * 3 <= g0 && on * 3 <= gn,
    );
    r.goal(
        format!("host-local ADD at {existing} reservations at most 1.2x ADD at 0 (issue #3)"),
        format!("{:.2}x", on.as_secs_f64() / o0.as_secs_f64()),
        on.as_secs_f64() <= 1.2 * o0.as_secs_f64(),
    );
    r.section(
        "host-local",
        format!(
            "One ADD per process into a /16, each implementation on its own store, released \
             (untimed) after each run. The {existing} reservations are files in the format both \
             share."
        ),
    )
    .rows = rows;
    Ok(())
}
