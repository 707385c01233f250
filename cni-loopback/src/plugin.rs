//! [`LoopbackPlugin`]: the verbs behind the skel.

use cni_proto::skel::{Plugin, Request};
use cni_types::{CniResult, Error};

use crate::config::LoopbackConf;
use crate::error::LoopbackError;

/// The loopback plugin for [`cni_proto::skel`]. `CNI_IFNAME` is ignored: it always works on
/// `lo`, as the reference.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoopbackPlugin;

fn conf(req: &Request) -> Result<LoopbackConf, LoopbackError> {
    LoopbackConf::try_from(&req.config)
}

impl Plugin for LoopbackPlugin {
    fn add(&self, req: &Request) -> Result<CniResult, Error> {
        let conf = conf(req)?;
        let netns = req.netns.as_deref().ok_or(LoopbackError::NoNetns)?;
        Ok(crate::add(netns, &conf)?)
    }

    fn del(&self, req: &Request) -> Result<(), Error> {
        // DEL reads nothing from the config, so it works whatever the config became.
        Ok(crate::del(req.netns.as_deref())?)
    }

    fn check(&self, req: &Request) -> Result<(), Error> {
        let conf = conf(req)?;
        let netns = req.netns.as_deref().ok_or(LoopbackError::NoNetns)?;
        Ok(crate::check(netns, &conf)?)
    }

    // GC: nothing outlives the container's namespace (the skel's default success).
    // STATUS: always ready (the skel's default success).

    fn about(&self) -> String {
        format!("CNI loopback plugin v{}", env!("CARGO_PKG_VERSION"))
    }
}
