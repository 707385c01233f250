//! What the plugin uses on the node besides the kernel firewall, behind [`Host`]: the ports
//! of a bridge (isolation teardown), whether we are rootless, and firewalld on the system
//! bus. [`SystemHost`] is the real node; [`FakeHost`] answers bridge ports from a map and has
//! no firewalld (the firewalld backend is tested against a real daemon only).

use std::collections::BTreeMap;

use crate::dbus::DbusError;
use crate::error::FirewallError;
use crate::firewalld::{Firewalld, Zones};

/// The node, as the verbs need it.
pub trait Host {
    /// The names of the links enslaved to `bridge`; `None` when no link is called `bridge`.
    fn bridge_ports(&mut self, bridge: &str) -> Result<Option<Vec<String>>, FirewallError>;
    /// Whether the plugin runs in a user namespace other than the initial one (a rootless
    /// runtime): the host's firewalld then filters another network namespace than ours.
    fn rootless(&mut self) -> bool;
    /// firewalld, when it owns its name on the system bus (connected once, then reused).
    fn firewalld(&mut self) -> Result<&mut dyn Zones, DbusError>;
}

/// The real node: rtnetlink in the calling thread's namespace, `/proc/self/uid_map`, the
/// system bus.
#[derive(Debug, Default)]
pub struct SystemHost {
    firewalld: Option<Firewalld>,
}

/// Whether `/proc/self/uid_map` is anything but the initial namespace's identity map.
pub fn in_user_namespace() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => {
            let words: Vec<&str> = map.split_whitespace().collect();
            words != ["0", "0", "4294967295"]
        }
        Err(_) => false,
    }
}

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

    fn rootless(&mut self) -> bool {
        in_user_namespace()
    }

    fn firewalld(&mut self) -> Result<&mut dyn Zones, DbusError> {
        let fw = match self.firewalld.take() {
            Some(fw) => fw,
            None => Firewalld::connect()?,
        };
        Ok(self.firewalld.insert(fw))
    }
}

/// A node described by a map from bridge name to port names, without firewalld.
#[derive(Debug, Default, Clone)]
pub struct FakeHost {
    /// Bridges and their ports.
    pub bridges: BTreeMap<String, Vec<String>>,
    /// What [`Host::rootless`] answers.
    pub rootless: bool,
}

impl Host for FakeHost {
    fn bridge_ports(&mut self, bridge: &str) -> Result<Option<Vec<String>>, FirewallError> {
        Ok(self.bridges.get(bridge).cloned())
    }

    fn rootless(&mut self) -> bool {
        self.rootless
    }

    fn firewalld(&mut self) -> Result<&mut dyn Zones, DbusError> {
        Err(DbusError::Address("(no bus in FakeHost)".into()))
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
