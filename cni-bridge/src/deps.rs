//! The side effects a verb needs besides netlink, passed in explicitly.

use std::sync::Arc;

use cni_linux::firewall::{FirewallApplier, System};
use cni_proto::env::Env;
use cni_proto::exec::{Exec, ProcessExec};

/// Where ADD may be told to fail, to prove that it undoes what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailPoint {
    /// After the veth exists (IPAM may be running concurrently: host-local and static run
    /// while the veth is made).
    AfterVeth,
    /// After IPAM allocated, before the container interface is configured.
    AfterIpam,
    /// At the very end, after masquerade rules exist (the reference's `debugPostIPAMError`).
    BeforeResult,
}

/// Test hooks. Empty by default; production code never sets them.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// Make ADD fail at this point (with [`crate::BridgeError::Injected`]).
    pub fail_at: Option<FailPoint>,
}

/// The seams of the plugin: IPAM delegation, the firewall, test hooks.
pub struct Deps {
    /// Runs the IPAM plugin (found by type in `CNI_PATH` with [`ProcessExec`]).
    pub exec: Arc<dyn Exec>,
    /// Applies and reads firewall state (masquerade, spoof check), in the calling thread's
    /// namespace.
    pub firewall: Box<dyn FirewallApplier + Send>,
    /// Test hooks.
    pub hooks: Hooks,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("hooks", &self.hooks)
            .finish_non_exhaustive()
    }
}

impl Default for Deps {
    fn default() -> Self {
        Deps::system()
    }
}

impl Deps {
    /// The real thing: plugin processes and the kernel firewall.
    pub fn system() -> Deps {
        Deps {
            exec: Arc::new(ProcessExec),
            firewall: Box::new(System),
            hooks: Hooks::default(),
        }
    }

    pub(crate) fn fail(&self, at: FailPoint) -> Result<(), crate::BridgeError> {
        if self.hooks.fail_at == Some(at) {
            return Err(crate::BridgeError::Injected(format!("{at:?}")));
        }
        Ok(())
    }
}

/// One attachment of a container to the network: what a verb is applied to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attachment {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_IFNAME`: the interface name inside the container.
    pub ifname: String,
    /// `CNI_NETNS`; `None` (DEL only) when the runtime no longer knows it.
    pub netns: Option<std::path::PathBuf>,
    /// The environment handed to IPAM (`CNI_PATH`, `CNI_ARGS`, ...; `CNI_COMMAND` is set per
    /// call).
    pub env: Env,
}

impl Attachment {
    /// An attachment with an environment holding only `CNI_PATH` (where IPAM is found).
    pub fn new(
        container_id: impl Into<String>,
        ifname: impl Into<String>,
        netns: Option<std::path::PathBuf>,
        cni_path: &str,
    ) -> Attachment {
        Attachment {
            container_id: container_id.into(),
            ifname: ifname.into(),
            netns,
            env: Env::new().with("CNI_PATH", cni_path),
        }
    }

    /// `CNI_NETNS` as a string (empty when unknown): the container interface's `sandbox`.
    pub fn netns_string(&self) -> String {
        self.netns
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The environment IPAM runs with: [`Attachment::env`] with `CNI_CONTAINERID`,
    /// `CNI_IFNAME` and `CNI_NETNS` set from this attachment.
    pub fn ipam_env(&self) -> Env {
        let mut env = self.env.clone();
        env.set("CNI_CONTAINERID", self.container_id.as_str());
        env.set("CNI_IFNAME", self.ifname.as_str());
        env.set("CNI_NETNS", self.netns_string());
        env
    }
}
