//! `gc`: GC releases a stale attachment and keeps the valid one.

use cni_types::Version;

use crate::conformance::ctx::Ctx;
use crate::conformance::fixture::{Fixture, NsMode};
use crate::conformance::judge::{R, describe, plugin_err, problems_to_result};

pub(in crate::conformance) fn check_gc(ctx: &Ctx, v: Version) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut a)?;
    let mut b = fx.attach(None, |_| Ok(()))?;
    fx.add_ok(&mut b)?;
    let vanished = fx.remove_pod(&mut b)?;
    let conf = crate::runner::with_valid_attachments(
        &fx.conf(ctx.idx, None, None)?,
        &[cni_types::Attachment {
            container_id: a.id.clone(),
            ifname: a.ifname.clone(),
        }],
    );
    fx.under_test()
        .gc(&conf)
        .map_err(|e| plugin_err("GC failed", &e))?;
    let mut problems: Vec<String> = fx
        .leftovers(&b, Some(&vanished))?
        .into_iter()
        .map(|p| format!("after GC with only the first attachment valid: {p}"))
        .collect();
    if let Err(e) = fx.check(&a) {
        problems.push(format!(
            "CHECK of the attachment kept valid fails after GC: {}",
            describe(&e)
        ));
    }
    let _ = fx.del_prefix(&b, NsMode::Empty);
    fx.cleanup(&a);
    problems_to_result(problems)
}
