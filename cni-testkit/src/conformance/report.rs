//! The report: PASS / FAIL / SKIP / ERROR per check with the reason, as text or JSON.

use std::fmt;
use std::path::PathBuf;

use cni_types::Version;
use serde::Serialize;
use serde_json::{Value, json};

use super::known::{KnownIssue, PluginIdentity};

/// The verdict of one check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "lowercase")]
pub enum Outcome {
    /// The plugin behaved as the spec says.
    Pass,
    /// It did not; why.
    Fail(String),
    /// The check does not apply; why (e.g. the plugin does not support the version).
    Skip(String),
    /// The suite itself could not run the check (setup trouble); why. Counts as a failure.
    Error(String),
}

impl Outcome {
    /// `PASS`, `FAIL`, `SKIP` or `ERROR`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail(_) => "FAIL",
            Outcome::Skip(_) => "SKIP",
            Outcome::Error(_) => "ERROR",
        }
    }

    /// The reason, empty for a pass.
    pub fn reason(&self) -> &str {
        match self {
            Outcome::Pass => "",
            Outcome::Fail(r) | Outcome::Skip(r) | Outcome::Error(r) => r,
        }
    }

    /// FAIL or ERROR.
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Fail(_) | Outcome::Error(_))
    }
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// The check's name, with the version for per-version checks (`add/1.0.0`).
    pub name: String,
    /// What it verifies, in one line.
    pub about: &'static str,
    /// The verdict.
    pub outcome: Outcome,
    /// The upstream issue explaining a FAIL, when one is known for this plugin.
    pub known_issue: Option<KnownIssue>,
}

/// The whole run.
#[derive(Clone, Debug)]
pub struct Report {
    /// The binary judged.
    pub plugin: PathBuf,
    /// Who it is.
    pub identity: PluginIdentity,
    /// The `type` it had in the config.
    pub plugin_type: String,
    /// The versions its VERSION lists.
    pub supported: Vec<Version>,
    /// The versions the per-version checks ran for.
    pub versions: Vec<Version>,
    /// Every check, in order.
    pub results: Vec<CheckResult>,
}

impl Report {
    /// No FAIL and no ERROR.
    pub fn passed(&self) -> bool {
        !self.results.iter().any(|r| r.outcome.is_failure())
    }

    /// The process exit code for this report: 0 when passed, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.passed())
    }

    /// How many checks had each outcome: (pass, fail, skip, error).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let n = |l: &str| {
            self.results
                .iter()
                .filter(|r| r.outcome.label() == l)
                .count()
        };
        (n("PASS"), n("FAIL"), n("SKIP"), n("ERROR"))
    }

    /// The result of check `name`.
    pub fn get(&self, name: &str) -> Option<&CheckResult> {
        self.results.iter().find(|r| r.name == name)
    }

    /// The names of the checks that failed (FAIL or ERROR).
    pub fn failures(&self) -> Vec<&str> {
        self.results
            .iter()
            .filter(|r| r.outcome.is_failure())
            .map(|r| r.name.as_str())
            .collect()
    }

    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        let (pass, fail, skip, error) = self.counts();
        json!({
            "plugin": self.plugin,
            "identity": self.identity,
            "type": self.plugin_type,
            "supportedVersions": self.supported,
            "testedVersions": self.versions,
            "results": self.results.iter().map(|r| {
                let mut v = json!({
                    "check": r.name,
                    "about": r.about,
                    "outcome": r.outcome.label().to_lowercase(),
                });
                if !r.outcome.reason().is_empty() {
                    v["reason"] = Value::String(r.outcome.reason().to_string());
                }
                if let Some(k) = r.known_issue {
                    v["knownIssue"] = json!({"upstream": k.upstream, "summary": k.summary});
                }
                v
            }).collect::<Vec<_>>(),
            "summary": {"pass": pass, "fail": fail, "skip": skip, "error": error, "passed": self.passed()},
        })
    }
}

fn versions(vs: &[Version]) -> String {
    if vs.is_empty() {
        return "none".into();
    }
    vs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for Report {
    /// ```text
    /// cni-conformance: /usr/lib/cni/host-local (type host-local)
    ///   identity: go "CNI host-local plugin version unknown"
    ///   supports: 0.1.0 0.2.0 0.3.0 0.3.1 0.4.0 1.0.0
    ///   tested:   0.1.0 0.2.0 0.3.0 0.3.1 0.4.0 1.0.0
    ///
    /// PASS  version
    /// FAIL  del-netns-empty/1.0.0
    ///       leftovers in the node after DEL: ...
    ///       known upstream issue containernetworking/plugins#810: DEL with an empty ...
    /// SKIP  gc
    ///       the plugin does not support 1.1.0 (VERSION lists up to 1.0.0)
    ///
    /// 40 checks: 37 passed, 1 failed, 2 skipped, 0 errors
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "cni-conformance: {} (type {})",
            self.plugin.display(),
            self.plugin_type
        )?;
        let lang = match self.identity.implementation {
            super::Implementation::Go => "go",
            _ => "other",
        };
        writeln!(f, "  identity: {lang} {:?}", self.identity.about)?;
        writeln!(f, "  supports: {}", versions(&self.supported))?;
        writeln!(f, "  tested:   {}", versions(&self.versions))?;
        writeln!(f)?;
        for r in &self.results {
            writeln!(f, "{:<5} {}", r.outcome.label(), r.name)?;
            for line in r.outcome.reason().lines() {
                writeln!(f, "      {line}")?;
            }
            if r.outcome.is_failure()
                && let Some(k) = r.known_issue
            {
                writeln!(
                    f,
                    "      known upstream issue {}: {}",
                    k.upstream, k.summary
                )?;
            }
        }
        let (pass, fail, skip, error) = self.counts();
        writeln!(f)?;
        write!(
            f,
            "{} checks: {pass} passed, {fail} failed, {skip} skipped, {error} errors",
            self.results.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::known::Implementation;

    fn report() -> Report {
        Report {
            plugin: "/usr/lib/cni/bridge".into(),
            identity: PluginIdentity {
                name: "bridge".into(),
                implementation: Implementation::Go,
                about: "CNI bridge plugin version unknown".into(),
            },
            plugin_type: "bridge".into(),
            supported: vec![Version::V0_4_0, Version::V1_0_0],
            versions: vec![Version::V1_0_0],
            results: vec![
                CheckResult {
                    name: "version".into(),
                    about: "VERSION",
                    outcome: Outcome::Pass,
                    known_issue: None,
                },
                CheckResult {
                    name: "del-netns-empty/1.0.0".into(),
                    about: "DEL",
                    outcome: Outcome::Fail(
                        "the node differs from before the ADD:\n+ iptables v4 nat :CNI-x -".into(),
                    ),
                    known_issue: super::super::known::KNOWN_ISSUES
                        .iter()
                        .find(|k| k.upstream.ends_with("#810"))
                        .copied(),
                },
                CheckResult {
                    name: "gc".into(),
                    about: "GC",
                    outcome: Outcome::Skip("the plugin does not support 1.1.0".into()),
                    known_issue: None,
                },
            ],
        }
    }

    #[test]
    fn text_report_is_readable() {
        let text = report().to_string();
        assert_eq!(
            text,
            "cni-conformance: /usr/lib/cni/bridge (type bridge)\n  identity: go \"CNI bridge plugin version unknown\"\n  supports: 0.4.0 1.0.0\n  tested:   1.0.0\n\nPASS  version\nFAIL  del-netns-empty/1.0.0\n      the node differs from before the ADD:\n      + iptables v4 nat :CNI-x -\n      known upstream issue containernetworking/plugins#810: DEL with an empty CNI_NETNS only runs IPAM DEL, so the ipMasq rules of the attachment leak\nSKIP  gc\n      the plugin does not support 1.1.0\n\n3 checks: 1 passed, 1 failed, 1 skipped, 0 errors"
        );
    }

    #[test]
    fn json_report_and_exit_code() {
        let r = report();
        assert!(!r.passed());
        assert_eq!(r.exit_code(), 1);
        assert_eq!(r.failures(), vec!["del-netns-empty/1.0.0"]);
        let j = r.to_json();
        assert_eq!(j["results"][1]["outcome"], "fail");
        assert_eq!(
            j["results"][1]["knownIssue"]["upstream"],
            "containernetworking/plugins#810"
        );
        assert_eq!(j["summary"]["fail"], 1);
        assert_eq!(j["testedVersions"][0], "1.0.0");
    }
}
