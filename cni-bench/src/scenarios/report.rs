//! The report: sections of rows (ours beside the reference), goals met or missed, the scale
//! points; as markdown and as a chart.

use std::fmt::Write as _;
use std::time::Duration;

use crate::measure::{Stats, ms};
use crate::svg::{Series, line_chart};

/// One line of a table: a figure for ours and for the reference, and reference / ours.
pub(super) struct Row {
    pub(super) what: String,
    pub(super) ours: Option<Stats>,
    pub(super) reference: Option<Stats>,
    pub(super) note: String,
}

pub(super) struct Section {
    pub(super) title: &'static str,
    pub(super) intro: String,
    pub(super) rows: Vec<Row>,
}

pub(super) struct Goal {
    pub(super) text: String,
    pub(super) measured: String,
    pub(super) met: bool,
}

/// Chain ADD medians at one pod count, for the chart.
#[derive(Clone, Copy)]
pub(super) struct ScalePoint {
    pub(super) pods: usize,
    pub(super) ours_nft: Duration,
    pub(super) ours_ipt: Duration,
    pub(super) go: Duration,
    pub(super) portmap_nft: Duration,
    pub(super) portmap_go: Duration,
    pub(super) bridge_nft: Duration,
    pub(super) bridge_go: Duration,
}

/// Everything measured in one run.
pub struct Report {
    quick: bool,
    header: String,
    sections: Vec<Section>,
    goals: Vec<Goal>,
    /// Chain ADD medians per pod count (the scale section).
    pub(super) scale: Vec<ScalePoint>,
    /// Binary sizes: name, ours, reference (bytes).
    pub(super) sizes: Vec<(String, u64, u64)>,
    /// The sections that failed, with why.
    pub(super) failed: Vec<String>,
}

/// `a` over `b`: how many times faster ours is (reference, ours), or how much a figure grew
/// (at N, at 0).
pub(super) fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

/// The growth of each implementation, as the goals report it.
pub(super) fn growth_text(nft: f64, ipt: f64, reference: f64) -> String {
    format!("nftables {nft:.2}x, iptables (default) {ipt:.2}x, reference {reference:.2}x")
}

fn stat_cell(s: &Option<Stats>) -> String {
    match s {
        Some(s) if s.n > 0 => format!("{} ({} / {})", ms(s.median), ms(s.p90), ms(s.max)),
        _ => "–".into(),
    }
}

impl Report {
    /// An empty report; `header` opens the markdown.
    pub(super) fn new(quick: bool, header: String) -> Report {
        Report {
            quick,
            header,
            sections: Vec::new(),
            goals: Vec::new(),
            scale: Vec::new(),
            sizes: Vec::new(),
            failed: Vec::new(),
        }
    }

    pub(super) fn section(
        &mut self,
        title: &'static str,
        intro: impl Into<String>,
    ) -> &mut Section {
        self.sections.push(Section {
            title,
            intro: intro.into(),
            rows: Vec::new(),
        });
        let last = self.sections.len() - 1;
        &mut self.sections[last]
    }

    pub(super) fn goal(&mut self, text: impl Into<String>, measured: impl Into<String>, met: bool) {
        self.goals.push(Goal {
            text: text.into(),
            measured: measured.into(),
            met,
        });
    }

    /// The markdown report.
    pub fn markdown(&self, took: Duration) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.header);
        let _ = writeln!(
            s,
            "Run took {:.0} s{}. Times are wall clock from spawn to exit, in ms: median \
             (p90 / max). \"ref / ours\" is the reference's median over ours: how many times \
             faster ours is.\n",
            took.as_secs_f64(),
            if self.quick { " (`--quick`)" } else { "" }
        );
        for f in &self.failed {
            let _ = writeln!(s, "**Section failed**: {f}\n");
        }
        let _ = writeln!(s, "## Goals\n");
        let _ = writeln!(s, "| goal | measured | |\n|---|---|---|");
        for g in &self.goals {
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                g.text,
                g.measured,
                if g.met { "met" } else { "**missed**" }
            );
        }
        for sec in &self.sections {
            let _ = writeln!(s, "\n## {}\n\n{}\n", sec.title, sec.intro);
            if sec.title == "Scale" {
                self.scale_table(&mut s);
            }
            if sec.rows.is_empty() {
                continue;
            }
            let _ = writeln!(s, "| | ours | reference | ref / ours |\n|---|---|---|---|");
            for r in &sec.rows {
                let rat = match (&r.ours, &r.reference) {
                    (Some(o), Some(g)) if o.n > 0 && g.n > 0 => {
                        format!("{:.1}x", ratio(g.median, o.median))
                    }
                    _ => r.note.clone(),
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    r.what,
                    stat_cell(&r.ours),
                    stat_cell(&r.reference),
                    rat
                );
            }
        }
        if !self.sizes.is_empty() {
            let _ = writeln!(
                s,
                "\n## Binary sizes\n\n| binary | ours (KiB) | reference (KiB) | ref / ours |\n|---|---|---|---|"
            );
            for (n, o, g) in &self.sizes {
                let _ = writeln!(
                    s,
                    "| {n} | {} | {} | {:.1}x |",
                    o / 1024,
                    g / 1024,
                    *g as f64 / (*o).max(1) as f64
                );
            }
        }
        s
    }

    fn scale_table(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "| pods on the node | chain ADD, ours with nftables | chain ADD, ours with iptables (default) | chain ADD, reference | ref / ours (nftables) | bridge + host-local alone: ours (nftables) / reference | portmap alone: ours (nftables) / reference |\n|---|---|---|---|---|---|---|"
        );
        for p in &self.scale {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.1}x | {} / {} | {} / {} |",
                p.pods,
                ms(p.ours_nft),
                ms(p.ours_ipt),
                ms(p.go),
                ratio(p.go, p.ours_nft),
                ms(p.bridge_nft),
                ms(p.bridge_go),
                ms(p.portmap_nft),
                ms(p.portmap_go)
            );
        }
    }

    /// The chart of chain ADD latency against pods on the node.
    pub fn chart(&self) -> String {
        let pts = |f: &dyn Fn(&ScalePoint) -> Duration| -> Vec<(f64, f64)> {
            self.scale
                .iter()
                .map(|p| (p.pods as f64, f(p).as_secs_f64() * 1000.0))
                .collect()
        };
        line_chart(
            "bridge + host-local + portmap ADD, median per pod count",
            "pods already on the node (each with a port mapping)",
            "ms",
            &[
                Series {
                    name: "reference (Go)".into(),
                    color: "#d95f02",
                    points: pts(&|p| p.go),
                },
                Series {
                    name: "ours, iptables".into(),
                    color: "#7570b3",
                    points: pts(&|p| p.ours_ipt),
                },
                Series {
                    name: "ours, nftables".into(),
                    color: "#1b9e77",
                    points: pts(&|p| p.ours_nft),
                },
            ],
        )
    }
}
