//! [`StaticPlugin`]: the verbs behind the skel.

use cni_proto::skel::{Plugin, Request};
use cni_types::{CniResult, Error};

use crate::config::{Input, StaticConf};
use crate::error::StaticError;

/// The static IPAM plugin for [`cni_proto::skel`].
#[derive(Clone, Copy, Debug, Default)]
pub struct StaticPlugin;

fn conf(req: &Request) -> Result<StaticConf, StaticError> {
    Ok(StaticConf::try_from(Input {
        stdin: &req.stdin,
        cni_args: &req.args,
    })?)
}

impl Plugin for StaticPlugin {
    fn add(&self, req: &Request) -> Result<CniResult, Error> {
        Ok(crate::add(&conf(req)?))
    }

    fn del(&self, _req: &Request) -> Result<(), Error> {
        // Nothing was allocated; DEL reads nothing, so it succeeds whatever the config became.
        Ok(())
    }

    fn check(&self, req: &Request) -> Result<(), Error> {
        let conf = conf(req)?;
        let prev = req
            .config
            .prev_result
            .as_ref()
            .filter(|v| !v.is_null())
            .ok_or(StaticError::NoPrevResult)?;
        let prev = CniResult::from_value(prev.clone(), Some(req.version()))
            .map_err(StaticError::PrevResult)?;
        Ok(crate::check(&conf, &prev, &req.ifname)?)
    }

    // GC: nothing to release. STATUS: always ready. (The skel's default successes.)

    fn about(&self) -> String {
        format!("CNI static plugin v{}", env!("CARGO_PKG_VERSION"))
    }
}
