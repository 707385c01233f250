//! Process cost: VERSION of every plugin, ours beside the reference, the floor of a process
//! (`/bin/true`), and the binaries' sizes.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use super::bins::{Bins, PLUGINS};
use super::harness::interleave;
use super::report::{Report, Row};
use crate::measure::{self, Call, Stats, ms};

pub(super) fn process(r: &mut Report, bins: &Bins, runs: usize) -> Result<()> {
    let stdin = br#"{"cniVersion":"1.0.0"}"#;
    let call = |p: &Path| -> Result<Duration> {
        let c = Call {
            plugin: p,
            command: "VERSION",
            container_id: "",
            netns: "",
            ifname: "",
            cni_path: "",
            stdin,
        };
        measure::run(&c)
    };
    let mut rows = Vec::new();
    let mut floor = Vec::new();
    for p in PLUGINS {
        let ours = bins.ours.plugin(p);
        let go = bins.go.join(p);
        let mut pair = [(ours.clone(), Vec::new()), (go.clone(), Vec::new())];
        interleave(&mut pair, runs, |(bin, v), _| {
            v.push(call(bin)?);
            Ok(())
        })?;
        for _ in 0..runs / 5 {
            floor.push(call(Path::new("/bin/true"))?);
        }
        let (o, g) = (Stats::of(&pair[0].1), Stats::of(&pair[1].1));
        r.goal(
            format!("`{p}` answers VERSION in at most 1.5 ms (issue #2)"),
            format!("{} ms median", ms(o.median)),
            o.median <= Duration::from_micros(1500),
        );
        rows.push(Row {
            what: format!("`{p}` VERSION"),
            ours: Some(o),
            reference: Some(g),
            note: String::new(),
        });
        let size = |q: &Path| std::fs::metadata(q).map(|m| m.len()).unwrap_or(0);
        r.sizes.push((p.to_string(), size(&ours), size(&go)));
    }
    rows.push(Row {
        what: "`/bin/true` (the floor of a process)".into(),
        ours: Some(Stats::of(&floor)),
        reference: None,
        note: String::new(),
    });
    r.section(
        "Process cost",
        "One `VERSION` call per process, as runtimes probe every plugin when they load networks.",
    )
    .rows = rows;
    Ok(())
}
