//! Judging: how a check stops (fail, skip, error), what counts as a leftover, and what a
//! failed call must print.

use std::net::IpAddr;

use crate::process::Output;
use crate::runner::{PluginError, parse_error};
use crate::snapshot::{Diff, Kind, Snapshot};

/// Why a check stopped early.
pub(super) enum Stop {
    Fail(String),
    Skip(String),
    Error(String),
}

pub(super) type R<T = ()> = Result<T, Stop>;

pub(super) fn fail<T>(msg: impl Into<String>) -> R<T> {
    Err(Stop::Fail(msg.into()))
}

pub(super) fn skip<T>(msg: impl Into<String>) -> R<T> {
    Err(Stop::Skip(msg.into()))
}

pub(super) trait OrError<T> {
    fn or_error(self, what: &str) -> R<T>;
}

impl<T, E: std::error::Error + 'static> OrError<T> for Result<T, E> {
    fn or_error(self, what: &str) -> R<T> {
        self.map_err(|e| Stop::Error(format!("{what}: {}", cni_types::error::chain_message(&e))))
    }
}

pub(super) fn plugin_err(what: &str, e: &PluginError) -> Stop {
    Stop::Fail(format!("{what}: {}", describe(e)))
}

/// A plugin error in one line, with stderr when there was no error JSON.
pub(super) fn describe(e: &PluginError) -> String {
    match e {
        PluginError::Failed { error, .. } => {
            format!("error code {}: {}", error.code(), error)
        }
        PluginError::Run(inner) => cni_types::error::chain_message(inner),
        other => other.to_string(),
    }
}

/// A call that did not complete: a plugin that hangs fails; anything else is the suite's
/// trouble.
pub(super) fn run_failure(verb: &str, e: crate::Error) -> Stop {
    match e {
        crate::Error::Timeout { after, .. } => {
            Stop::Fail(format!("{verb} did not finish within {after:?}"))
        }
        other => Stop::Error(format!(
            "run {verb}: {}",
            cni_types::error::chain_message(&other)
        )),
    }
}

pub(super) fn stop_to_plugin_error(s: Stop) -> PluginError {
    let msg = match s {
        Stop::Fail(m) | Stop::Skip(m) | Stop::Error(m) => m,
    };
    PluginError::Run(crate::Error::Invalid {
        what: "config",
        reason: msg,
    })
}

/// Something that identifies an attachment in a state item.
pub(super) enum Needle {
    Text(String),
    Ip(IpAddr),
    Ifname(String),
}

impl Needle {
    pub(super) fn found_in(&self, text: &str) -> bool {
        match self {
            Needle::Text(t) => text.contains(t.as_str()),
            Needle::Ip(ip) => mentions_ip(text, ip),
            Needle::Ifname(n) => contains_token(text, n),
        }
    }
}

/// `needle` in `text` where neither the character before nor the one after continues it.
pub(super) fn contains_token_with(
    text: &str,
    needle: &str,
    continues: impl Fn(char) -> bool,
) -> bool {
    text.match_indices(needle).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + needle.len()..].chars().next();
        before.is_none_or(|c| !continues(c)) && after.is_none_or(|c| !continues(c))
    })
}

/// An interface or other name in `text`, not as part of a longer name (`eth0` is not in
/// `eth0.100` or `veth0`).
pub(super) fn contains_token(text: &str, name: &str) -> bool {
    contains_token_with(text, name, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
    })
}

/// An address in `text`, not as part of a longer address (`10.1.0.2` is not in
/// `10.1.0.21`; it is in `10.1.0.2/32` and `10.1.0.2:80`).
pub(super) fn mentions_ip(text: &str, ip: &IpAddr) -> bool {
    let s = ip.to_string();
    match ip {
        IpAddr::V4(_) => contains_token_with(text, &s, |c| c.is_ascii_digit() || c == '.'),
        IpAddr::V6(_) => contains_token_with(text, &s, |c| c.is_ascii_hexdigit() || c == ':'),
    }
}

/// `base` (minus `vanished.removed`) against `now`: every non-file item must match; files
/// must not be new, removed, or changed to mention `id`.
pub(super) fn compare(
    base: &Snapshot,
    now: &Snapshot,
    id: &str,
    vanished: Option<&Diff>,
    place: &str,
) -> Vec<String> {
    let expected = match vanished {
        Some(d) => base.apply(&Diff {
            added: Vec::new(),
            removed: d.removed.clone(),
        }),
        None => base.clone(),
    };
    let non_file = |s: &Snapshot| -> Vec<crate::snapshot::Item> {
        s.items()
            .iter()
            .filter(|i| i.kind != Kind::File)
            .cloned()
            .collect()
    };
    let mut problems = Vec::new();
    let d = Diff::between(&non_file(&expected), &non_file(now));
    if !d.is_empty() {
        problems.push(format!("the {place} differs from before the ADD:\n{d}"));
    }
    for (path, content) in now.files() {
        match base.files().get(path) {
            None => problems.push(format!(
                "new file left in the {place}: {}{}",
                path.display(),
                content
                    .as_ref()
                    .map(|c| format!(" = {c:?}"))
                    .unwrap_or_else(|| "/".into())
            )),
            Some(old) if old != content && content.as_ref().is_some_and(|c| c.contains(id)) => {
                problems.push(format!(
                    "file {} still mentions {id}: {:?}",
                    path.display(),
                    content
                ))
            }
            _ => {}
        }
    }
    for path in base.files().keys() {
        if !now.files().contains_key(path) {
            problems.push(format!(
                "file {} (there before the ADD) was removed",
                path.display()
            ));
        }
    }
    problems
}

pub(super) fn problems_to_result(problems: Vec<String>) -> R {
    if problems.is_empty() {
        Ok(())
    } else {
        fail(problems.join("\n"))
    }
}

/// A failed call must exit non-zero with the spec's error JSON, with a code in `codes` (any
/// code when empty).
pub(super) fn expect_error(out: Output, codes: &[u32]) -> R {
    if out.status.success() {
        let want = if codes.is_empty() {
            "an error".to_string()
        } else {
            format!("error code {}", join_codes(codes))
        };
        return fail(format!(
            "exited 0 (stdout {:?}); want {want}",
            out.stdout_text()
        ));
    }
    match parse_error(out) {
        PluginError::Failed { error, .. } => {
            if codes.is_empty() || codes.contains(&error.code()) {
                Ok(())
            } else {
                fail(format!(
                    "error code {} ({}), want {}",
                    error.code(),
                    error,
                    join_codes(codes)
                ))
            }
        }
        other => fail(format!("not the spec's error result: {other}")),
    }
}

pub(super) fn join_codes(codes: &[u32]) -> String {
    codes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::snapshot::SnapshotOptions;

    #[test]
    fn tokens_do_not_match_longer_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(mentions_ip(
            "v4 nat -A POSTROUTING -s 10.1.0.2/32 -j X",
            &ip("10.1.0.2")
        ));
        assert!(mentions_ip("eth0 10.1.0.2", &ip("10.1.0.2")));
        assert!(!mentions_ip("eth0 10.1.0.21/24", &ip("10.1.0.2")));
        assert!(!mentions_ip("eth0 110.1.0.2/24", &ip("10.1.0.2")));
        assert!(mentions_ip("ip saddr 10.1.0.2 masquerade", &ip("10.1.0.2")));
        assert!(mentions_ip("dnat to 10.1.0.2:80", &ip("10.1.0.2")));
        assert!(mentions_ip("dnat to [fd00::2]:80", &ip("fd00::2")));
        assert!(!mentions_ip("eth0 fd00::2a/64", &ip("fd00::2")));
        assert!(!contains_token("veth1234abcd up", "veth1234"));
        assert!(contains_token("veth1234abcd kind=veth", "veth1234abcd"));
        assert!(!contains_token("eth0.100 up", "eth0"));
        assert!(contains_token("main 10.0.0.0/8 dev eth0 scope=253", "eth0"));
    }

    #[test]
    fn compare_reports_new_changed_and_removed_files() {
        let mk = |files: &[(&str, &str)]| {
            let mut items = Vec::new();
            let mut map = std::collections::BTreeMap::new();
            for (p, c) in files {
                items.push(crate::snapshot::Item::new(
                    Kind::File,
                    format!("{p} = {c:?}"),
                ));
                map.insert(PathBuf::from(p), Some(c.to_string()));
            }
            (items, map)
        };
        let base = snapshot_for_test(mk(&[("/d/lock", ""), ("/d/last", "10.0.0.2")]));
        let same = snapshot_for_test(mk(&[("/d/lock", ""), ("/d/last", "10.0.0.3")]));
        assert!(compare(&base, &same, "cid-b", None, "node").is_empty());
        let leak = snapshot_for_test(mk(&[
            ("/d/lock", ""),
            ("/d/last", "10.0.0.3"),
            ("/d/10.0.0.3", "cid-b\r\neth0"),
        ]));
        let p = compare(&base, &leak, "cid-b", None, "node");
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("new file left in the node: /d/10.0.0.3"),
            "{p:?}"
        );
        let gone = snapshot_for_test(mk(&[("/d/last", "x")]));
        assert!(compare(&base, &gone, "cid-b", None, "node")[0].contains("was removed"));
    }

    fn snapshot_for_test(
        (items, files): (
            Vec<crate::snapshot::Item>,
            std::collections::BTreeMap<PathBuf, Option<String>>,
        ),
    ) -> Snapshot {
        Snapshot::from_parts(SnapshotOptions::default(), items, files)
    }
}
