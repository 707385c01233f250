//! What the plugin reads from the node besides the firewall: the ports of a bridge, behind
//! [`Host`], so that the isolation teardown can be unit-tested with [`FakeHost`].

use std::collections::BTreeMap;

use crate::error::FirewallError;

/// The node's links, as the isolation teardown needs them.
pub trait Host {
    /// The names of the links enslaved to `bridge`; `None` when no link is called `bridge`.
    fn bridge_ports(&mut self, bridge: &str) -> Result<Option<Vec<String>>, FirewallError>;
}

/// The real node: one rtnetlink link dump in the calling thread's namespace.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemHost;

impl Host for SystemHost {
    fn bridge_ports(&mut self, bridge: &str) -> Result<Option<Vec<String>>, FirewallError> {
        let err = |source| FirewallError::Links {
            bridge: bridge.to_owned(),
            source,
        };
        let mut h = cni_linux::netlink::Handle::new().map_err(err)?;
        let links = h.links().map_err(err)?;
        let Some(br) = links.iter().find(|l| l.name == bridge) else {
            return Ok(None);
        };
        Ok(Some(
            links
                .iter()
                .filter(|l| l.master == Some(br.index))
                .map(|l| l.name.clone())
                .collect(),
        ))
    }
}

/// A node described by a map from bridge name to port names.
#[derive(Debug, Default, Clone)]
pub struct FakeHost {
    /// Bridges and their ports.
    pub bridges: BTreeMap<String, Vec<String>>,
}

impl Host for FakeHost {
    fn bridge_ports(&mut self, bridge: &str) -> Result<Option<Vec<String>>, FirewallError> {
        Ok(self.bridges.get(bridge).cloned())
    }
}

/// Whether `bridge` is still used by an attachment other than the one whose host-side
/// interfaces are `own`: it exists and has a port that is not one of `own`.
pub fn bridge_in_use(
    host: &mut dyn Host,
    bridge: &str,
    own: &[String],
) -> Result<bool, FirewallError> {
    Ok(match host.bridge_ports(bridge)? {
        None => false,
        Some(ports) => ports.iter().any(|p| !own.contains(p)),
    })
}
