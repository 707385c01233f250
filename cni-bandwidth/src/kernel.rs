//! The side effects, behind [`Kernel`]: netlink in the namespace the plugin runs in (the
//! node's), and one look at the pod's interface. [`SystemKernel`] is the real one;
//! [`Recorder`] records requests for unit tests.

use std::collections::BTreeMap;
use std::path::Path;

use cni_linux::netlink::tc::{Filter, Ifb, IfbOptions, Qdisc, TcRequest};
use cni_linux::netlink::{Error, Handle, Link};
use cni_linux::netns::NetNs;

use crate::error::BandwidthError;

/// The pod interface's peer, as seen from the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The peer's index (`IFLA_LINK`), in the peer's namespace.
    pub index: u32,
}

/// What the verbs do to the kernel.
pub trait Kernel {
    /// The veth peer of `ifname` inside the namespace at `netns`: `Ok(None)` when the
    /// interface is missing or has no peer.
    fn pod_peer(&mut self, netns: &Path, ifname: &str) -> Result<Option<Peer>, BandwidthError>;
    /// A link by index in the plugin's namespace.
    fn link_by_index(&mut self, index: u32) -> Result<Option<Link>, Error>;
    /// A link by name in the plugin's namespace.
    fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, Error>;
    /// Creates an ifb device.
    fn add_ifb(&mut self, name: &str, opts: &IfbOptions) -> Result<Link, Error>;
    /// Deletes a link.
    fn delete_link(&mut self, index: u32) -> Result<(), Error>;
    /// Every ifb device, with its alias.
    fn ifbs(&mut self) -> Result<Vec<Ifb>, Error>;
    /// Adds a qdisc or filter.
    fn tc_add(&mut self, req: &TcRequest) -> Result<(), Error>;
    /// The qdiscs of a device.
    fn qdiscs(&mut self, ifindex: u32) -> Result<Vec<Qdisc>, Error>;
    /// The filters of a device under `parent`.
    fn filters(&mut self, ifindex: u32, parent: u32) -> Result<Vec<Filter>, Error>;
    /// Deletes a qdisc.
    fn delete_qdisc(&mut self, ifindex: u32, parent: u32, handle: u32) -> Result<(), Error>;
}

/// The real kernel: a netlink socket in the namespace the plugin runs in.
#[derive(Debug)]
pub struct SystemKernel {
    host: Handle,
}

impl SystemKernel {
    /// Opens a netlink socket in the calling thread's namespace.
    pub fn open() -> Result<SystemKernel, BandwidthError> {
        Ok(SystemKernel {
            host: Handle::new().map_err(BandwidthError::netlink("open netlink socket"))?,
        })
    }
}

impl Kernel for SystemKernel {
    fn pod_peer(&mut self, netns: &Path, ifname: &str) -> Result<Option<Peer>, BandwidthError> {
        let ns = NetNs::open(netns).map_err(|source| BandwidthError::Netns {
            path: netns.to_path_buf(),
            source,
        })?;
        let mut pod =
            Handle::new_in(&ns).map_err(BandwidthError::netlink("open netlink socket"))?;
        let link = pod
            .link_by_name(ifname)
            .map_err(BandwidthError::netlink("get container interface"))?;
        Ok(link
            .filter(|l| l.is_kind("veth"))
            .and_then(|l| l.link)
            .map(|index| Peer { index }))
    }

    fn link_by_index(&mut self, index: u32) -> Result<Option<Link>, Error> {
        self.host.link_by_index(index)
    }

    fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, Error> {
        self.host.link_by_name(name)
    }

    fn add_ifb(&mut self, name: &str, opts: &IfbOptions) -> Result<Link, Error> {
        self.host.add_ifb(name, opts)
    }

    fn delete_link(&mut self, index: u32) -> Result<(), Error> {
        self.host.delete_link(index)
    }

    fn ifbs(&mut self) -> Result<Vec<Ifb>, Error> {
        self.host.ifbs()
    }

    fn tc_add(&mut self, req: &TcRequest) -> Result<(), Error> {
        self.host.tc_add(req)
    }

    fn qdiscs(&mut self, ifindex: u32) -> Result<Vec<Qdisc>, Error> {
        self.host.qdiscs(ifindex)
    }

    fn filters(&mut self, ifindex: u32, parent: u32) -> Result<Vec<Filter>, Error> {
        self.host.filters(ifindex, parent)
    }

    fn delete_qdisc(&mut self, ifindex: u32, parent: u32, handle: u32) -> Result<(), Error> {
        self.host.delete_qdisc(ifindex, parent, handle)
    }
}

/// A recording double: links by name, requests in order, and an optional failure of the
/// n-th `tc_add`. Qdiscs and filters are not modelled beyond the record.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Links of the "host", by name.
    pub links: BTreeMap<String, Link>,
    /// The pod interface's peer index.
    pub peer: Option<u32>,
    /// What was done, one line per call.
    pub log: Vec<String>,
    /// Fail the `tc_add` with this (0-based) position.
    pub fail_tc_add: Option<usize>,
    tc_adds: usize,
}

impl Recorder {
    /// A host with one veth `name` at `index`, peer of the pod's interface.
    pub fn with_veth(name: &str, index: u32) -> Recorder {
        let mut r = Recorder::default();
        r.links.insert(
            name.into(),
            Link {
                index,
                name: name.into(),
                kind: Some("veth".into()),
                mtu: 1500,
                ..Default::default()
            },
        );
        r.peer = Some(index);
        r
    }
}

fn missing(what: &'static str, name: String) -> Error {
    Error::NotFound { what, name }
}

impl Kernel for Recorder {
    fn pod_peer(&mut self, _: &Path, _: &str) -> Result<Option<Peer>, BandwidthError> {
        Ok(self.peer.map(|index| Peer { index }))
    }

    fn link_by_index(&mut self, index: u32) -> Result<Option<Link>, Error> {
        Ok(self.links.values().find(|l| l.index == index).cloned())
    }

    fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, Error> {
        Ok(self.links.get(name).cloned())
    }

    fn add_ifb(&mut self, name: &str, opts: &IfbOptions) -> Result<Link, Error> {
        self.log.push(format!("add ifb {name} {opts:?}"));
        let index = 100 + self.links.len() as u32;
        let link = Link {
            index,
            name: name.into(),
            kind: Some("ifb".into()),
            mac: Some([2, 0, 0, 0, 0, 1]),
            ..Default::default()
        };
        self.links.insert(name.into(), link.clone());
        Ok(link)
    }

    fn delete_link(&mut self, index: u32) -> Result<(), Error> {
        self.log.push(format!("delete link {index}"));
        let name = self
            .links
            .values()
            .find(|l| l.index == index)
            .map(|l| l.name.clone())
            .ok_or_else(|| missing("link", index.to_string()))?;
        self.links.remove(&name);
        Ok(())
    }

    fn ifbs(&mut self) -> Result<Vec<Ifb>, Error> {
        Ok(Vec::new())
    }

    fn tc_add(&mut self, req: &TcRequest) -> Result<(), Error> {
        let n = self.tc_adds;
        self.tc_adds += 1;
        if self.fail_tc_add == Some(n) {
            self.log.push(format!("FAIL {req:?}"));
            return Err(Error::Invalid {
                what: "request",
                value: format!("{n}"),
                reason: "injected failure",
            });
        }
        self.log.push(format!("{req:?}"));
        Ok(())
    }

    fn qdiscs(&mut self, _: u32) -> Result<Vec<Qdisc>, Error> {
        Ok(Vec::new())
    }

    fn filters(&mut self, _: u32, _: u32) -> Result<Vec<Filter>, Error> {
        Ok(Vec::new())
    }

    fn delete_qdisc(&mut self, ifindex: u32, parent: u32, handle: u32) -> Result<(), Error> {
        self.log
            .push(format!("delete qdisc {ifindex} {parent:#x} {handle:#x}"));
        Ok(())
    }
}
