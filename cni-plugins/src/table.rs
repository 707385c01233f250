//! The plugins in this binary: the one place that names them.
//!
//! Adding a plugin is one line here (and its library in `Cargo.toml`). Each entry builds the
//! plugin exactly as that plugin's own `main.rs` does.

use cni_proto::skel::Plugin;

/// One plugin of the multicall binary.
pub struct Entry {
    /// The name it is run as: the `type` in a network config, the symlink's file name.
    pub name: &'static str,
    /// One line for `cni-plugins --help`.
    pub summary: &'static str,
    /// Builds the plugin, as its own binary's `main` does (host-local records its parent here,
    /// so call it first thing once the plugin is known).
    pub build: fn() -> Box<dyn Plugin>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry").field("name", &self.name).finish()
    }
}

/// Every plugin, in the order `--help` lists them.
pub static PLUGINS: &[Entry] = &[
    Entry {
        name: "bridge",
        summary: "a bridge on the node and a veth pair per container",
        build: || Box::new(cni_bridge::BridgePlugin::default()),
    },
    Entry {
        name: "host-local",
        summary: "IPAM: addresses from ranges, reserved in files on the node",
        build: || Box::new(cni_ipam_hostlocal::HostLocalChild::of_this_process()),
    },
    Entry {
        name: "static",
        summary: "IPAM: addresses, routes and DNS from the configuration or the runtime",
        build: || Box::new(cni_ipam_static::StaticPlugin),
    },
    Entry {
        name: "loopback",
        summary: "brings up lo in the container",
        build: || Box::new(cni_loopback::LoopbackPlugin),
    },
    Entry {
        name: "portmap",
        summary: "host ports forwarded to the container (iptables or nftables)",
        build: || Box::new(cni_portmap::PortmapPlugin),
    },
    Entry {
        name: "tuning",
        summary: "sysctls and link attributes of the container interface",
        build: || Box::new(cni_tuning::TuningPlugin::default()),
    },
    Entry {
        name: "firewall",
        summary: "accepts the container's traffic in the node's firewall (iptables or nftables)",
        build: || Box::new(cni_firewall::FirewallPlugin),
    },
    Entry {
        name: "bandwidth",
        summary: "ingress and egress rate limits (tbf, ifb)",
        build: || Box::new(cni_bandwidth::BandwidthPlugin),
    },
];

/// The plugin called `name`, if this binary has it.
pub fn find(name: &str) -> Option<&'static Entry> {
    PLUGINS.iter().find(|e| e.name == name)
}

/// The names of every plugin, in table order.
pub fn names() -> impl Iterator<Item = &'static str> {
    PLUGINS.iter().map(|e| e.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_never_a_subcommand() {
        let mut seen = std::collections::BTreeSet::new();
        for e in PLUGINS {
            assert!(seen.insert(e.name), "{} twice", e.name);
            assert!(
                !crate::cli::SUBCOMMANDS.contains(&e.name),
                "{} is also a subcommand",
                e.name
            );
            assert!(!e.name.is_empty() && !e.name.contains('/'));
        }
    }
}
