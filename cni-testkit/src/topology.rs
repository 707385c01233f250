//! Topologies built from throw-away namespaces: nodes on an underlay, pods, and an "outside"
//! namespace standing for the internet.
//!
//! ```text
//!                 underlay namespace: bridge ulbr (192.168.200.0/24)
//!        ┌──────────────┬───────────────┬──────────────────┐
//!   node0 eth0 .10   node1 eth0 .11    ...            outside eth0 .1
//!   pods 10.244.0.0/24  10.244.1.0/24                 "internet" 203.0.113.1 on lo
//! ```
//!
//! Every node routes the other nodes' pod subnets via their underlay addresses, has a default
//! route via the outside namespace, and forwards (`net.ipv4.ip_forward=1` in the node
//! namespaces only). Pods are plain [`TempNetns`]es for a plugin to wire up.
//!
//! ```no_run
//! use cni_testkit::topology::Cluster;
//!
//! # fn main() -> cni_testkit::Result<()> {
//! let cluster = Cluster::new(2)?;
//! let node = &cluster.nodes[0];
//! let pod = node.new_pod()?;
//! // run plugins inside node.ns with CNI_NETNS = pod.path(), pod subnet node.pod_subnet
//! # let _ = pod;
//! # Ok(())
//! # }
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;

use cni_linux::netlink::{AddrFlags, BridgeOptions, Route, VethRequest};
use ipnet::{IpNet, Ipv4Net};

use crate::error::{Error, Result};
use crate::netns::TempNetns;

/// The "internet" address the outside namespace holds on its loopback.
pub const INTERNET_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

/// A node: a namespace on the underlay with a pod subnet.
#[derive(Debug)]
pub struct Node {
    /// The node's namespace: run plugins here.
    pub ns: TempNetns,
    /// Its index in the cluster.
    pub index: usize,
    /// Its address on the underlay (on `uplink`).
    pub underlay_ip: Ipv4Net,
    /// The subnet its pods get addresses from.
    pub pod_subnet: Ipv4Net,
    /// The name of its underlay interface (`eth0`).
    pub uplink: String,
}

impl Node {
    /// A new pod namespace (not wired: that is the plugin's job).
    pub fn new_pod(&self) -> Result<TempNetns> {
        TempNetns::new(&format!("pod{}", self.index))
    }

    /// The first address of the pod subnet (the conventional gateway, `.1`).
    pub fn pod_gateway(&self) -> Ipv4Addr {
        nth(self.pod_subnet, 1)
    }

    /// Create a bridge `name` in the node, up, with `address` (e.g. the pod gateway as
    /// `10.244.0.1/24`) if given.
    pub fn add_bridge(&self, name: &str, address: Option<IpNet>) -> Result<u32> {
        let mut nl = self.ns.netlink()?;
        let br = nl.add_bridge(
            name,
            &BridgeOptions {
                up: true,
                ..Default::default()
            },
        )?;
        if let Some(a) = address {
            nl.addr_add(br.index, a, AddrFlags::NONE)?;
        }
        Ok(br.index)
    }
}

/// The outside world: a namespace on the underlay holding [`INTERNET_IP`].
#[derive(Debug)]
pub struct Outside {
    /// Its namespace.
    pub ns: TempNetns,
    /// Its underlay address (the nodes' default gateway).
    pub underlay_ip: Ipv4Net,
    /// The "internet" address on its loopback.
    pub internet_ip: Ipv4Addr,
}

/// How to build a [`Cluster`].
#[derive(Clone, Debug)]
pub struct ClusterBuilder {
    nodes: usize,
    underlay: Ipv4Net,
    pod_cidr: Ipv4Net,
    pod_prefix: u8,
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        ClusterBuilder {
            nodes: 1,
            underlay: Ipv4Net::new(Ipv4Addr::new(192, 168, 200, 0), 24).unwrap_or_default(),
            pod_cidr: Ipv4Net::new(Ipv4Addr::new(10, 244, 0, 0), 16).unwrap_or_default(),
            pod_prefix: 24,
        }
    }
}

impl ClusterBuilder {
    /// One node, underlay `192.168.200.0/24`, pod subnets `/24`s of `10.244.0.0/16`.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many nodes.
    pub fn nodes(mut self, n: usize) -> Self {
        self.nodes = n;
        self
    }

    /// The underlay subnet (nodes get `.10`, `.11`, …; the outside `.1`).
    pub fn underlay(mut self, subnet: Ipv4Net) -> Self {
        self.underlay = subnet;
        self
    }

    /// The cluster's pod range and the prefix of each node's share of it.
    pub fn pod_cidr(mut self, cidr: Ipv4Net, per_node_prefix: u8) -> Self {
        self.pod_cidr = cidr;
        self.pod_prefix = per_node_prefix;
        self
    }

    /// Build it.
    pub fn build(self) -> Result<Cluster> {
        let pod_subnets: Vec<Ipv4Net> = self
            .pod_cidr
            .subnets(self.pod_prefix)
            .map_err(Error::Cluster)?
            .take(self.nodes)
            .collect();
        if pod_subnets.len() < self.nodes
            || u32::try_from(self.nodes).unwrap_or(u32::MAX) + 10
                >= (1 << (32 - u32::from(self.underlay.prefix_len())))
        {
            return Err(Error::Invalid {
                what: "cluster",
                reason: format!("{} nodes do not fit", self.nodes),
            });
        }
        let hub = TempNetns::new("underlay")?;
        let mut hub_nl = hub.netlink()?;
        let br = hub_nl.add_bridge(
            "ulbr",
            &BridgeOptions {
                up: true,
                ..Default::default()
            },
        )?;
        let plen = self.underlay.prefix_len();
        let outside_ip = Ipv4Net::new(nth(self.underlay, 1), plen).map_err(Error::Cluster)?;

        // Wire one namespace to the hub: veth `hub_name` (in the hub, on ulbr) <-> eth0.
        let wire = |ns: &TempNetns, hub_name: &str, ip: Ipv4Net| -> Result<()> {
            let mut req = VethRequest::new(hub_name, "eth0");
            req.peer_netns = Some(ns.netns().as_fd());
            req.master = Some(br.index);
            req.up = true;
            hub.netlink()?.add_veth(&req)?;
            let mut nl = ns.netlink()?;
            let eth0 = nl.require_link("eth0")?;
            nl.addr_add(eth0.index, IpNet::V4(ip), AddrFlags::NONE)?;
            nl.set_up(eth0.index)?;
            Ok(())
        };

        let outside_ns = TempNetns::new("outside")?;
        wire(&outside_ns, "ul-out", outside_ip)?;
        {
            let mut nl = outside_ns.netlink()?;
            let lo = nl.require_link("lo")?;
            nl.addr_add(
                lo.index,
                IpNet::V4(Ipv4Net::new(INTERNET_IP, 32).map_err(Error::Cluster)?),
                AddrFlags::NONE,
            )?;
        }

        let mut nodes = Vec::new();
        for (i, pod_subnet) in pod_subnets.into_iter().enumerate() {
            let ns = TempNetns::new(&format!("node{i}"))?;
            let host = u32::try_from(10 + i).unwrap_or(u32::MAX);
            let ip = Ipv4Net::new(nth(self.underlay, host), plen).map_err(Error::Cluster)?;
            wire(&ns, &format!("ul-n{i}"), ip)?;
            ns.sysctl_set("net.ipv4.ip_forward", "1")?;
            nodes.push(Node {
                ns,
                index: i,
                underlay_ip: ip,
                pod_subnet,
                uplink: "eth0".into(),
            });
        }
        for n in &nodes {
            let mut nl = n.ns.netlink()?;
            nl.route_add(&Route::default_via(IpAddr::V4(outside_ip.addr())))?;
            for other in nodes.iter().filter(|o| o.index != n.index) {
                nl.route_add(
                    &Route::new(IpNet::V4(other.pod_subnet))
                        .via(IpAddr::V4(other.underlay_ip.addr())),
                )?;
            }
        }
        Ok(Cluster {
            underlay: hub,
            underlay_subnet: self.underlay,
            outside: Outside {
                ns: outside_ns,
                underlay_ip: outside_ip,
                internet_ip: INTERNET_IP,
            },
            nodes,
        })
    }
}

/// Nodes and the outside on one underlay. See the [module docs](self).
#[derive(Debug)]
pub struct Cluster {
    /// The nodes.
    pub nodes: Vec<Node>,
    /// The outside world.
    pub outside: Outside,
    /// The namespace holding the underlay bridge `ulbr` (ports `ul-n<i>`, `ul-out`).
    pub underlay: TempNetns,
    /// The underlay subnet.
    pub underlay_subnet: Ipv4Net,
}

impl Cluster {
    /// `n` nodes with the defaults of [`ClusterBuilder`].
    pub fn new(n: usize) -> Result<Cluster> {
        ClusterBuilder::new().nodes(n).build()
    }

    /// One node and the outside: the smallest useful topology.
    pub fn single() -> Result<Cluster> {
        Self::new(1)
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }
}

/// The `n`-th address of `net` (saturating at its last address).
pub fn nth(net: Ipv4Net, n: u32) -> Ipv4Addr {
    let base = u32::from(net.network());
    let last = u32::from(net.broadcast());
    Ipv4Addr::from(base.saturating_add(n).min(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_address() {
        let n: Ipv4Net = "10.244.3.0/24".parse().unwrap();
        assert_eq!(nth(n, 1), Ipv4Addr::new(10, 244, 3, 1));
        assert_eq!(nth(n, 300), Ipv4Addr::new(10, 244, 3, 255));
    }
}
