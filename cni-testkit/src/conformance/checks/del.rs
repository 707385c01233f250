//! The DEL checks: it cleans up, is idempotent, works without ADD, after the pod's namespace
//! is gone, and after a failed ADD.

use cni_types::Version;
use serde_json::json;

use crate::conformance::ctx::Ctx;
use crate::conformance::fixture::{Att, Fixture, NsMode, occupy_ifname};
use crate::conformance::judge::{
    R, Stop, expect_error, fail, plugin_err, problems_to_result, skip,
};
use crate::runner::PluginError;

/// An address outside any sane range, requested to make an IPAM fail (TEST-NET-2).
const UNAVAILABLE_IP: &str = "198.51.100.77/24";

pub(in crate::conformance) fn check_del_cleans_up(ctx: &Ctx, v: Version) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut a)?;
    let mut b = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut b)?;
    fx.del(&b, NsMode::Path)
        .map_err(|e| plugin_err("DEL failed", &e))?;
    let mut problems: Vec<String> = fx
        .leftovers(&b, None)?
        .into_iter()
        .map(|s| format!("after DEL of the second attachment: {s}"))
        .collect();
    fx.del_prefix(&b, NsMode::Path)?;
    fx.del(&a, NsMode::Path)
        .map_err(|e| plugin_err("DEL of the first attachment failed", &e))?;
    problems.extend(
        fx.last_leftovers(&a, &[&b])?
            .into_iter()
            .map(|s| format!("after DEL of the last attachment: {s}")),
    );
    fx.del_prefix(&a, NsMode::Path)?;
    problems_to_result(problems)
}

pub(in crate::conformance) fn check_del_idempotent(ctx: &Ctx, v: Version) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut a)?;
    fx.del(&a, NsMode::Path)
        .map_err(|e| plugin_err("first DEL failed", &e))?;
    let once = fx.snap_node()?;
    let pod_once = fx.snap_pod(&a)?;
    fx.del(&a, NsMode::Path)
        .map_err(|e| plugin_err("second DEL failed", &e))?;
    let twice = fx.snap_node()?;
    let mut problems = Vec::new();
    let d = once.diff(&twice);
    if !d.is_empty() {
        problems.push(format!("the second DEL changed the node:\n{d}"));
    }
    if let (Some(p1), Some(p2)) = (pod_once, fx.snap_pod(&a)?) {
        let d = p1.diff(&p2);
        if !d.is_empty() {
            problems.push(format!("the second DEL changed the pod:\n{d}"));
        }
    }
    fx.del_prefix(&a, NsMode::Path)?;
    problems_to_result(problems)
}

pub(in crate::conformance) fn check_del_without_add(ctx: &Ctx, v: Version) -> R {
    // On a node already in use (state shared by attachments, such as a store's lock file,
    // exists), DEL of an attachment the plugin never saw must change nothing.
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut a)?;
    let b = fx.attach(None, |_| Ok(()))?;
    fx.del(&b, NsMode::Path)
        .map_err(|e| plugin_err("DEL failed", &e))?;
    let problems = fx.leftovers(&b, None)?;
    fx.del_prefix(&b, NsMode::Path)?;
    fx.cleanup(&a);
    problems_to_result(problems)
}

fn del_netns_gone(ctx: &Ctx, v: Version, mode: NsMode) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut a)?;
    let mut b = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut b)?;
    let vanished = fx.remove_pod(&mut b)?;
    fx.del(&b, mode).map_err(|e| plugin_err("DEL failed", &e))?;
    let problems = fx.leftovers(&b, Some(&vanished))?;
    let _ = fx.del_prefix(&b, mode);
    fx.cleanup(&a);
    problems_to_result(problems)
}

pub(in crate::conformance) fn check_del_netns_gone(ctx: &Ctx, v: Version) -> R {
    del_netns_gone(ctx, v, NsMode::Path)
}

pub(in crate::conformance) fn check_del_netns_empty(ctx: &Ctx, v: Version) -> R {
    del_netns_gone(ctx, v, NsMode::Empty)
}

pub(in crate::conformance) fn check_del_after_failed_add(ctx: &Ctx, v: Version) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut a)?;
    let mut tried = Vec::new();
    // 1: the interface name is taken in the pod (not for chained plugins: the earlier plugins
    //    would fail first).
    if ctx.idx == 0 {
        let mut b = fx.attach(None, |pod| occupy_ifname(pod, "eth0"))?;
        match fx.add(&mut b) {
            Err(PluginError::Run(e)) => {
                return fail(format!(
                    "ADD did not complete: {}",
                    cni_types::error::chain_message(&e)
                ));
            }
            Err(e) => {
                if let Some(out) = e.output() {
                    expect_error(out.clone(), &[]).map_err(|s| match s {
                        Stop::Fail(m) => Stop::Fail(format!("the failed ADD: {m}")),
                        other => other,
                    })?;
                }
                return del_failed(
                    &fx,
                    &b,
                    &a,
                    "CNI_IFNAME already existed in the pod",
                    &["eth0", "cnitk-peer"],
                );
            }
            Ok(_) => {
                fx.cleanup(&b);
                tried.push("an existing CNI_IFNAME in the pod");
            }
        }
    }
    // 2: an address outside every range requested through args.cni.ips.
    let args = json!({"cni": {"ips": [UNAVAILABLE_IP]}});
    let mut c = fx.attach(Some(args), |_| Ok(()))?;
    match fx.add(&mut c) {
        Err(PluginError::Run(e)) => fail(format!(
            "ADD did not complete: {}",
            cni_types::error::chain_message(&e)
        )),
        Err(e) => {
            if let Some(out) = e.output() {
                expect_error(out.clone(), &[])?;
            }
            del_failed(
                &fx,
                &c,
                &a,
                &format!("args.cni.ips requested {UNAVAILABLE_IP}"),
                &[],
            )
        }
        Ok(_) => {
            fx.cleanup(&c);
            fx.cleanup(&a);
            tried.push("args.cni.ips with an unavailable address");
            skip(format!(
                "could not make ADD fail (tried: {})",
                tried.join(", ")
            ))
        }
    }
}

/// DEL after a failed ADD must succeed and leave nothing. The links in `pod_ignore` were put
/// there by the check; DEL (of `CNI_IFNAME`) may remove them.
fn del_failed(fx: &Fixture<'_>, b: &Att, a: &Att, how: &str, pod_ignore: &[&str]) -> R {
    fx.del(b, NsMode::Path)
        .map_err(|e| plugin_err(&format!("DEL after the failed ADD ({how}) failed"), &e))?;
    let problems = fx.leftovers_ignoring(b, None, pod_ignore)?;
    let _ = fx.del_prefix(b, NsMode::Path);
    fx.cleanup(a);
    problems_to_result(
        problems
            .into_iter()
            .map(|p| format!("after the failed ADD ({how}) and DEL: {p}"))
            .collect(),
    )
}
