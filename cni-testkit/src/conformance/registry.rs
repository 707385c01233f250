//! The registry: every check with its name, what it proves and the versions it runs for, and
//! the loop that runs them (per version where it applies) and turns their stops into outcomes.

use std::panic::{AssertUnwindSafe, catch_unwind};

use cni_types::Version;

use super::checks::*;
use super::ctx::Ctx;
use super::judge::{R, Stop};
use super::known::known_issue;
use super::report::{CheckResult, Outcome};

type CheckFn = fn(&Ctx, Version) -> R;

#[derive(Clone, Copy)]
enum Scope {
    /// Once, with the newest tested version.
    Once,
    /// For every tested version from this one.
    PerVersion(Version),
}

struct CheckDef {
    name: &'static str,
    about: &'static str,
    scope: Scope,
    run: CheckFn,
}

fn defs() -> Vec<CheckDef> {
    use Scope::{Once, PerVersion};
    let v010 = Version::V0_1_0;
    let mut d = vec![
        CheckDef {
            name: "version",
            about: "VERSION prints the versions the plugin supports",
            scope: Once,
            run: check_version,
        },
        CheckDef {
            name: "add",
            about: "ADD succeeds with a result in the version's shape that matches the kernel",
            scope: PerVersion(v010),
            run: check_add,
        },
        CheckDef {
            name: "del-cleans-up",
            about: "DEL removes everything its ADD created, and nothing else",
            scope: PerVersion(v010),
            run: check_del_cleans_up,
        },
        CheckDef {
            name: "del-idempotent",
            about: "a second DEL succeeds and changes nothing",
            scope: PerVersion(v010),
            run: check_del_idempotent,
        },
        CheckDef {
            name: "del-without-add",
            about: "DEL of an attachment never added succeeds and changes nothing",
            scope: PerVersion(v010),
            run: check_del_without_add,
        },
        CheckDef {
            name: "del-netns-gone",
            about: "DEL succeeds and cleans up after the netns was deleted (CNI_NETNS a stale path)",
            scope: PerVersion(v010),
            run: check_del_netns_gone,
        },
        CheckDef {
            name: "del-netns-empty",
            about: "DEL succeeds and cleans up after the netns was deleted (CNI_NETNS empty)",
            scope: PerVersion(v010),
            run: check_del_netns_empty,
        },
        CheckDef {
            name: "del-after-failed-add",
            about: "DEL after a failed ADD succeeds and leaves nothing",
            scope: PerVersion(v010),
            run: check_del_after_failed_add,
        },
        CheckDef {
            name: "add-existing-ifname",
            about: "ADD fails when CNI_IFNAME already exists in the pod",
            scope: Once,
            run: check_add_existing_ifname,
        },
        CheckDef {
            name: "check",
            about: "CHECK after ADD succeeds",
            scope: PerVersion(Version::V0_4_0),
            run: check_check,
        },
        CheckDef {
            name: "check-after-del",
            about: "CHECK after DEL reports the missing resources",
            scope: PerVersion(Version::V0_4_0),
            run: check_check_after_del,
        },
        CheckDef {
            name: "gc",
            about: "GC releases stale attachments and keeps valid ones",
            scope: PerVersion(Version::V1_1_0),
            run: check_gc,
        },
        CheckDef {
            name: "status",
            about: "STATUS succeeds in a fresh node",
            scope: PerVersion(Version::V1_1_0),
            run: check_status,
        },
    ];
    for (name, about, run) in BAD_INPUTS {
        d.push(CheckDef {
            name,
            about,
            scope: Once,
            run: *run,
        });
    }
    d
}

const BAD_INPUTS: &[(&str, &str, CheckFn)] = &[
    (
        "bad-input/unknown-command",
        "an unknown CNI_COMMAND is error 4",
        bad_unknown_command,
    ),
    (
        "bad-input/add-missing-CNI_CONTAINERID",
        "ADD without CNI_CONTAINERID is error 4",
        bad_add_missing_containerid,
    ),
    (
        "bad-input/add-missing-CNI_NETNS",
        "ADD without CNI_NETNS is error 4",
        bad_add_missing_netns,
    ),
    (
        "bad-input/add-missing-CNI_IFNAME",
        "ADD without CNI_IFNAME is error 4",
        bad_add_missing_ifname,
    ),
    (
        "bad-input/del-missing-CNI_CONTAINERID",
        "DEL without CNI_CONTAINERID is error 4",
        bad_del_missing_containerid,
    ),
    (
        "bad-input/invalid-container-id",
        "a container ID with characters outside [a-zA-Z0-9_.-] is error 4",
        bad_invalid_container_id,
    ),
    (
        "bad-input/invalid-ifname",
        "an interface name longer than 15 bytes is error 4",
        bad_invalid_ifname,
    ),
    (
        "bad-input/invalid-json",
        "a config that is not JSON is error 6",
        bad_invalid_json,
    ),
    (
        "bad-input/missing-name",
        "a config without a network name is error 7",
        bad_missing_name,
    ),
    (
        "bad-input/incompatible-version",
        "a cniVersion the plugin does not support is error 1",
        bad_incompatible_version,
    ),
    (
        "bad-input/check-before-0.4.0",
        "CHECK with a config older than 0.4.0 is error 1",
        bad_check_before_040,
    ),
    (
        "bad-input/gc-before-1.1.0",
        "GC with a config older than 1.1.0 is error 1",
        bad_gc_before_110,
    ),
    (
        "bad-input/status-before-1.1.0",
        "STATUS with a config older than 1.1.0 is error 1",
        bad_status_before_110,
    ),
];

/// Run every check (per version where it applies), calling `progress` after each.
pub(super) fn run_all(ctx: &Ctx, progress: &mut dyn FnMut(&CheckResult)) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let wanted = |name: &str| {
        ctx.options.only.is_empty()
            || ctx
                .options
                .only
                .iter()
                .any(|p| name.starts_with(p.as_str()))
    };
    let mut push = |r: CheckResult, out: &mut Vec<CheckResult>| {
        progress(&r);
        out.push(r);
    };
    if !ctx.pre_chaining.is_empty() && wanted("versions") {
        let vs: Vec<String> = ctx.pre_chaining.iter().map(ToString::to_string).collect();
        push(
            CheckResult {
                name: "versions-before-0.3.0".into(),
                about: "chained plugins need prevResult, which exists from 0.3.0",
                outcome: Outcome::Skip(format!(
                    "a chained plugin is not tested with {}",
                    vs.join(" ")
                )),
                known_issue: None,
            },
            &mut out,
        );
    }
    for def in defs() {
        match def.scope {
            Scope::Once => {
                if !wanted(def.name) {
                    continue;
                }
                let outcome = match ctx.newest() {
                    Some(v) => run_one(ctx, def.run, v),
                    None => Outcome::Skip("no version to test with".into()),
                };
                push(
                    result(ctx, def.name.to_string(), def.about, outcome),
                    &mut out,
                );
            }
            Scope::PerVersion(min) => {
                let vs: Vec<Version> = ctx.versions.iter().copied().filter(|v| *v >= min).collect();
                if vs.is_empty() {
                    if !wanted(def.name) {
                        continue;
                    }
                    let newest = ctx
                        .supported
                        .iter()
                        .max()
                        .map(|v| format!(" (VERSION lists up to {v})"))
                        .unwrap_or_default();
                    let reason = if ctx.supports(min) || ctx.supported.iter().any(|v| *v >= min) {
                        format!("not tested: no version from {min} was asked for")
                    } else {
                        format!("not supported: the plugin does not support {min} or later{newest}")
                    };
                    push(
                        result(ctx, def.name.to_string(), def.about, Outcome::Skip(reason)),
                        &mut out,
                    );
                    continue;
                }
                for v in vs {
                    let name = format!("{}/{v}", def.name);
                    if !wanted(&name) {
                        continue;
                    }
                    let outcome = run_one(ctx, def.run, v);
                    push(result(ctx, name, def.about, outcome), &mut out);
                }
            }
        }
    }
    out
}

fn result(ctx: &Ctx, name: String, about: &'static str, outcome: Outcome) -> CheckResult {
    let known_issue = match &outcome {
        Outcome::Fail(reason) => known_issue(&ctx.identity, &name, reason).copied(),
        _ => None,
    };
    CheckResult {
        name,
        about,
        outcome,
        known_issue,
    }
}

fn run_one(ctx: &Ctx, f: CheckFn, v: Version) -> Outcome {
    match catch_unwind(AssertUnwindSafe(|| f(ctx, v))) {
        Ok(Ok(())) => Outcome::Pass,
        Ok(Err(Stop::Fail(r))) => Outcome::Fail(r),
        Ok(Err(Stop::Skip(r))) => Outcome::Skip(r),
        Ok(Err(Stop::Error(r))) => Outcome::Error(r),
        Err(panic) => Outcome::Error(format!(
            "the check panicked: {}",
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_default()
        )),
    }
}
