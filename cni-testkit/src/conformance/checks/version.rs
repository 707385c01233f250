//! `version`: VERSION lists the versions the plugin supports.

use cni_types::Version;

use crate::conformance::ctx::Ctx;
use crate::conformance::judge::{R, fail};

pub(in crate::conformance) fn check_version(ctx: &Ctx, _v: Version) -> R {
    if let Some(e) = &ctx.version_error {
        return fail(format!("VERSION failed: {e}"));
    }
    if ctx.supported.is_empty() {
        return fail("VERSION lists no supportedVersions");
    }
    Ok(())
}
