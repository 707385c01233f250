//! [`BridgePlugin`]: the verbs behind the skel.

use cni_proto::skel::{Plugin, Request};
use cni_types::{CniResult, Error};

use crate::config::BridgeConf;
use crate::deps::{Attachment, Deps, Hooks};

/// The bridge plugin for [`cni_proto::skel`]: parses the config once, builds the
/// [`Attachment`] from the request and runs the library verbs with the real [`Deps`].
#[derive(Debug, Clone, Default)]
pub struct BridgePlugin {
    /// Test hooks passed to every verb (empty in production).
    pub hooks: Hooks,
}

impl BridgePlugin {
    fn deps(&self) -> Deps {
        let mut d = Deps::system();
        d.hooks = self.hooks.clone();
        d
    }

    fn conf(req: &Request) -> Result<BridgeConf, Error> {
        BridgeConf::from_netconf(req.config.clone(), req.stdin.clone(), &req.args)
            .map_err(Error::from)
    }

    fn attachment(req: &Request) -> Attachment {
        Attachment {
            container_id: req.container_id.clone(),
            ifname: req.ifname.clone(),
            netns: req.netns.clone(),
            env: req.env.clone(),
        }
    }
}

impl Plugin for BridgePlugin {
    fn add(&self, req: &Request) -> Result<CniResult, Error> {
        let conf = Self::conf(req)?;
        let att = Self::attachment(req);
        let mut deps = self.deps();
        let result = crate::add(&conf, &att, &mut deps)?;
        // The skel prints the result in the config's version; if it cannot (an L2 result for
        // 0.1.0/0.2.0 has no address), undo now rather than leave an attachment behind.
        if let Err(e) = result.to_versioned(req.version()) {
            let _ = crate::del(&conf, &att, &mut deps);
            return Err(e);
        }
        Ok(result)
    }

    fn del(&self, req: &Request) -> Result<(), Error> {
        let conf = Self::conf(req)?;
        crate::del(&conf, &Self::attachment(req), &mut self.deps()).map_err(Error::from)
    }

    fn check(&self, req: &Request) -> Result<(), Error> {
        let conf = Self::conf(req)?;
        crate::check(&conf, &Self::attachment(req), &mut self.deps()).map_err(Error::from)
    }

    fn gc(&self, req: &Request) -> Result<(), Error> {
        let conf = Self::conf(req)?;
        crate::gc(&conf, &req.env, &mut self.deps()).map_err(Error::from)
    }

    fn status(&self, req: &Request) -> Result<(), Error> {
        let conf = Self::conf(req)?;
        crate::status(&conf, &req.env, &mut self.deps()).map_err(Error::from)
    }

    fn about(&self) -> String {
        format!("CNI bridge plugin v{}", env!("CARGO_PKG_VERSION"))
    }
}
