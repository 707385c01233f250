//! `bad-input/*`: malformed calls get the spec's error codes.

use cni_types::Version;
use serde_json::{Value, json};

use crate::conformance::ctx::Ctx;
use crate::conformance::fixture::{Fixture, NsMode};
use crate::conformance::judge::{R, expect_error, run_failure, skip};
use crate::runner::{Attachment, Invocation};

/// Run one malformed call of the plugin under test and judge its error code.
fn bad_call(
    ctx: &Ctx,
    v: Version,
    codes: &[u32],
    build: impl FnOnce(&Value, Attachment) -> Invocation,
) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let a = fx.attach(None, |_| Ok(()))?;
    let conf = fx.conf(ctx.idx, Some(&a), a.prev.as_ref())?;
    let inv = build(&conf, a.attachment(NsMode::Path));
    let out = fx
        .under_test()
        .invoke(&inv)
        .map_err(|e| run_failure(&inv.command, e))?;
    let ok = out.status.success();
    let verdict = expect_error(out, codes);
    if ok {
        fx.cleanup(&a);
    }
    verdict
}

pub(in crate::conformance) fn bad_unknown_command(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[4], |c, a| Invocation::new("FOO", c, Some(&a)))
}

pub(in crate::conformance) fn bad_add_missing_containerid(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[4], |c, a| {
        Invocation::new("ADD", c, Some(&a)).unset("CNI_CONTAINERID")
    })
}

pub(in crate::conformance) fn bad_add_missing_netns(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[4], |c, a| {
        Invocation::new("ADD", c, Some(&a)).unset("CNI_NETNS")
    })
}

pub(in crate::conformance) fn bad_add_missing_ifname(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[4], |c, a| {
        Invocation::new("ADD", c, Some(&a)).unset("CNI_IFNAME")
    })
}

pub(in crate::conformance) fn bad_del_missing_containerid(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[4], |c, a| {
        Invocation::new("DEL", c, Some(&a)).unset("CNI_CONTAINERID")
    })
}

pub(in crate::conformance) fn bad_invalid_container_id(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[4], |c, a| {
        Invocation::new("ADD", c, Some(&a)).set("CNI_CONTAINERID", "bad/id!")
    })
}

pub(in crate::conformance) fn bad_invalid_ifname(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[4], |c, a| {
        Invocation::new("ADD", c, Some(&a)).set("CNI_IFNAME", "name-longer-than-15")
    })
}

pub(in crate::conformance) fn bad_invalid_json(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[6], |_, a| {
        Invocation::new("ADD", "{\"cniVersion\": ", Some(&a))
    })
}

pub(in crate::conformance) fn bad_missing_name(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[7], |c, a| {
        let mut c = c.clone();
        if let Some(o) = c.as_object_mut() {
            o.remove("name");
        }
        Invocation::new("ADD", &c, Some(&a))
    })
}

pub(in crate::conformance) fn bad_incompatible_version(ctx: &Ctx, v: Version) -> R {
    bad_call(ctx, v, &[1], |c, a| {
        let mut c = c.clone();
        c["cniVersion"] = json!("99.0.0");
        Invocation::new("ADD", &c, Some(&a))
    })
}

/// The newest supported version older than `floor`, if the plugin supports any.
fn older_than(ctx: &Ctx, floor: Version) -> Option<Version> {
    ctx.supported
        .iter()
        .copied()
        .filter(|v| *v < floor && v.is_known())
        .max()
}

pub(in crate::conformance) fn bad_check_before_040(ctx: &Ctx, _v: Version) -> R {
    let Some(old) = older_than(ctx, Version::V0_4_0) else {
        return skip("the plugin supports no version older than 0.4.0");
    };
    if ctx.idx > 0 && !old.supports_chaining() {
        return skip("a chained plugin is not run with a version older than 0.3.0");
    }
    bad_call(ctx, old, &[1], |c, a| Invocation::new("CHECK", c, Some(&a)))
}

fn bad_before_110(ctx: &Ctx, verb: &str) -> R {
    if !ctx.supports(Version::V1_1_0) {
        return skip(format!(
            "not supported: the plugin does not support 1.1.0, where {verb} exists"
        ));
    }
    let Some(old) =
        older_than(ctx, Version::V1_1_0).filter(|v| ctx.idx == 0 || v.supports_chaining())
    else {
        return skip("the plugin supports no version older than 1.1.0");
    };
    bad_call(ctx, old, &[1], |c, _| Invocation::new(verb, c, None))
}

pub(in crate::conformance) fn bad_gc_before_110(ctx: &Ctx, _v: Version) -> R {
    bad_before_110(ctx, "GC")
}

pub(in crate::conformance) fn bad_status_before_110(ctx: &Ctx, _v: Version) -> R {
    bad_before_110(ctx, "STATUS")
}
