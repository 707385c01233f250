//! `status`: STATUS succeeds in a fresh node.

use cni_types::Version;

use crate::conformance::ctx::Ctx;
use crate::conformance::fixture::Fixture;
use crate::conformance::judge::{R, plugin_err};

pub(in crate::conformance) fn check_status(ctx: &Ctx, v: Version) -> R {
    let fx = Fixture::new(ctx, v)?;
    let conf = fx.conf(ctx.idx, None, None)?;
    fx.under_test()
        .status(&conf)
        .map_err(|e| plugin_err("STATUS failed", &e))
}
