//! `check` and `check-after-del`: CHECK passes after ADD and reports what DEL removed.

use cni_types::Version;

use crate::conformance::ctx::Ctx;
use crate::conformance::fixture::{Fixture, NsMode};
use crate::conformance::judge::{R, Stop, expect_error, plugin_err, run_failure, skip};
use crate::runner::Invocation;

pub(in crate::conformance) fn check_check(ctx: &Ctx, v: Version) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut a)?;
    let r = fx
        .check(&a)
        .map_err(|e| plugin_err("CHECK after ADD failed", &e));
    fx.cleanup(&a);
    r
}

pub(in crate::conformance) fn check_check_after_del(ctx: &Ctx, v: Version) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut a)?;
    if fx.add_changed_nothing(&a)? {
        fx.del(&a, NsMode::Path)
            .map_err(|e| plugin_err("DEL failed", &e))?;
        fx.del_prefix(&a, NsMode::Path)?;
        return skip(
            "ADD changed no state of the node, the pod or the plugin's files (a stateless \
             plugin such as static IPAM): nothing can be missing after DEL",
        );
    }
    fx.del(&a, NsMode::Path)
        .map_err(|e| plugin_err("DEL failed", &e))?;
    let conf = fx.conf(ctx.idx, Some(&a), a.final_result())?;
    let out = fx
        .under_test()
        .invoke(&Invocation::new(
            "CHECK",
            &conf,
            Some(&a.attachment(NsMode::Path)),
        ))
        .map_err(|e| run_failure("CHECK", e))?;
    fx.del_prefix(&a, NsMode::Path)?;
    expect_error(out, &[]).map_err(|s| match s {
        Stop::Fail(m) if m.starts_with("exited 0") => Stop::Fail(
            "CHECK succeeded after DEL, although the attachment's resources are gone".into(),
        ),
        other => other,
    })
}
