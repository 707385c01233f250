//! [`BridgePlugin`]: the verbs behind the skel.

use std::sync::Arc;

use cni_proto::exec::Exec;
use cni_proto::skel::{Plugin, Request};
use cni_types::{CniResult, Error};

use crate::config::BridgeConf;
use crate::deps::{Attachment, Deps, Hooks};

/// The bridge plugin for [`cni_proto::skel`]: parses the config once, builds the
/// [`Attachment`] from the request and runs the library verbs with the real [`Deps`].
#[derive(Clone, Default)]
pub struct BridgePlugin {
    /// Test hooks passed to every verb (empty in production).
    pub hooks: Hooks,
    /// How IPAM plugins run; `None`: as processes found in `CNI_PATH`, as a runtime expects.
    /// An [`cni_proto::exec::InProcessExec`] runs the whole chain in one process.
    pub ipam_exec: Option<Arc<dyn Exec>>,
}

impl std::fmt::Debug for BridgePlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgePlugin")
            .field("hooks", &self.hooks)
            .field("ipam_exec", &self.ipam_exec.is_some())
            .finish()
    }
}

impl BridgePlugin {
    /// Delegate IPAM through `exec` instead of running IPAM processes.
    pub fn with_ipam_exec(mut self, exec: Arc<dyn Exec>) -> Self {
        self.ipam_exec = Some(exec);
        self
    }

    fn deps(&self) -> Deps {
        let mut d = Deps::system();
        d.hooks = self.hooks.clone();
        if let Some(e) = &self.ipam_exec {
            d.exec = e.clone();
        }
        d
    }

    fn conf(req: &Request) -> Result<BridgeConf, Error> {
        BridgeConf::from_netconf(req.config.clone(), req.stdin.clone(), &req.args)
            .map_err(Error::from)
    }

    /// DEL and GC: keys only ADD uses do not stop a teardown (see
    /// [`BridgeConf::parse_for_teardown`]).
    fn teardown_conf(req: &Request) -> Result<BridgeConf, Error> {
        BridgeConf::from_netconf_for_teardown(req.config.clone(), req.stdin.clone(), &req.args)
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
        let conf = Self::teardown_conf(req)?;
        crate::del(&conf, &Self::attachment(req), &mut self.deps()).map_err(Error::from)
    }

    fn check(&self, req: &Request) -> Result<(), Error> {
        let conf = Self::conf(req)?;
        crate::check(&conf, &Self::attachment(req), &mut self.deps()).map_err(Error::from)
    }

    fn gc(&self, req: &Request) -> Result<(), Error> {
        let conf = Self::teardown_conf(req)?;
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
