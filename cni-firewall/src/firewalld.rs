//! The firewalld backend, as the reference: a pod's addresses are sources of a zone
//! (`firewalldZone`, default `trusted`), added and removed over D-Bus
//! (`org.fedoraproject.FirewallD1.zone` `addSource`, `removeSource`, `querySource`). The
//! isolation of `same-bridge` stays in iptables, as in the reference.

use crate::dbus::{Arg, Bus, DbusError};

/// firewalld's bus name.
pub const NAME: &str = "org.fedoraproject.FirewallD1";
/// firewalld's object.
pub const PATH: &str = "/org/fedoraproject/FirewallD1";
/// The zone interface.
pub const ZONE_IFACE: &str = "org.fedoraproject.FirewallD1.zone";

/// Zone sources, the part of firewalld the plugin uses.
pub trait Zones {
    /// Adds `source` to `zone`; a source already in the zone is fine.
    fn add_source(&mut self, zone: &str, source: &str) -> Result<(), DbusError>;
    /// Removes `source` from `zone`; a source not in the zone is fine.
    fn remove_source(&mut self, zone: &str, source: &str) -> Result<(), DbusError>;
    /// Whether `source` is in `zone`.
    fn query_source(&mut self, zone: &str, source: &str) -> Result<bool, DbusError>;
}

/// firewalld on a bus.
#[derive(Debug)]
pub struct Firewalld {
    bus: Bus,
}

fn remote_is(e: &DbusError, code: &str) -> bool {
    matches!(e, DbusError::Remote { message, .. } if message.contains(code))
}

impl Firewalld {
    /// Connects to the system bus and makes sure firewalld owns its name there (the
    /// reference's `isFirewalldRunning`: `GetNameOwner`).
    pub fn connect() -> Result<Firewalld, DbusError> {
        let mut bus = Bus::system()?;
        bus.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "GetNameOwner",
            &[NAME],
        )?;
        Ok(Firewalld { bus })
    }

    fn zone_call(&mut self, member: &str, args: &[&str]) -> Result<Vec<Arg>, DbusError> {
        self.bus.call(NAME, PATH, ZONE_IFACE, member, args)
    }

    /// The zone `source` is bound to (empty: none).
    pub fn zone_of_source(&mut self, source: &str) -> Result<String, DbusError> {
        match self.zone_call("getZoneOfSource", &[source])?.first() {
            Some(Arg::Str(s)) => Ok(s.clone()),
            _ => Ok(String::new()),
        }
    }
}

impl Zones for Firewalld {
    fn add_source(&mut self, zone: &str, source: &str) -> Result<(), DbusError> {
        match self.zone_call("addSource", &[zone, source]) {
            Err(e) if remote_is(&e, "ZONE_ALREADY_SET") => Ok(()),
            r => r.map(drop),
        }
    }

    fn remove_source(&mut self, zone: &str, source: &str) -> Result<(), DbusError> {
        match self.zone_call("removeSource", &[zone, source]) {
            Err(e) if remote_is(&e, "UNKNOWN_SOURCE") || remote_is(&e, "ZONE_CONFLICT") => Ok(()),
            r => r.map(drop),
        }
    }

    fn query_source(&mut self, zone: &str, source: &str) -> Result<bool, DbusError> {
        Ok(matches!(
            self.zone_call("querySource", &[zone, source])?.first(),
            Some(Arg::Bool(true))
        ))
    }
}
