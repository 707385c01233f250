//! The [`Lo`] seam: what the verbs do to the container's `lo`, and [`KernelLo`], which does it
//! over rtnetlink inside the container's namespace.
//!
//! The verbs only see this trait, so their rules (undo on failure, which addresses make the
//! result, what CHECK demands) are unit-tested with a recording double; the integration tests
//! prove [`KernelLo`] against the kernel.

use std::path::Path;

use cni_linux::netlink::Handle;
use cni_linux::netns::NetNs;
use cni_types::ipnet::IpNet;

use crate::error::LoopbackError;

/// The name of the loopback interface in every network namespace.
pub const LO: &str = "lo";

/// `lo`'s link state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkState {
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// IPv6 is enabled on `lo` (`net.ipv6.conf.lo.disable_ipv6` is 0): the kernel gives it
    /// `::1/128` when it comes up.
    pub ipv6: bool,
}

/// The container's loopback interface.
pub trait Lo {
    /// The current link state.
    fn link(&mut self) -> Result<LinkState, LoopbackError>;
    /// The addresses on `lo`, IPv4 first, each family in the kernel's order.
    fn addrs(&mut self) -> Result<Vec<IpNet>, LoopbackError>;
    /// Set `lo` administratively up or down.
    fn set_up(&mut self, up: bool) -> Result<(), LoopbackError>;
    /// Remove `addr` from `lo` (nothing to do when it is not there).
    fn remove_addr(&mut self, addr: IpNet) -> Result<(), LoopbackError>;
}

/// [`Lo`] over one rtnetlink socket opened inside the container's namespace (one thread hop,
/// then every request runs from the calling thread).
#[derive(Debug)]
pub struct KernelLo {
    nl: Handle,
    index: u32,
}

impl KernelLo {
    /// Open the namespace at `netns` and find its `lo`. A namespace that does not exist is
    /// [`LoopbackError::Netns`] whose source `is_not_found()`.
    pub fn open(netns: &Path) -> Result<KernelLo, LoopbackError> {
        let ns = NetNs::open(netns).map_err(|source| LoopbackError::Netns {
            path: netns.to_path_buf(),
            source,
        })?;
        let mut nl = Handle::new_in(&ns)
            .map_err(|e| LoopbackError::netlink("failed to open netlink in the namespace", e))?;
        let lo = nl
            .require_link(LO)
            .map_err(|e| LoopbackError::netlink("failed to find lo", e))?;
        Ok(KernelLo {
            nl,
            index: lo.index,
        })
    }

    /// The interface index of `lo`.
    pub fn index(&self) -> u32 {
        self.index
    }
}

impl Lo for KernelLo {
    fn link(&mut self) -> Result<LinkState, LoopbackError> {
        let link = self
            .nl
            .link_by_index(self.index)
            .map_err(|e| LoopbackError::netlink("failed to read lo", e))?
            .ok_or_else(|| {
                LoopbackError::netlink(
                    "failed to read lo",
                    cni_linux::netlink::Error::NotFound {
                        what: "link",
                        name: LO.into(),
                    },
                )
            })?;
        Ok(LinkState {
            up: link.up,
            ipv6: link.conf.ipv6_disabled == Some(false),
        })
    }

    fn addrs(&mut self) -> Result<Vec<IpNet>, LoopbackError> {
        Ok(self
            .nl
            .addrs(Some(self.index), None)
            .map_err(|e| LoopbackError::netlink("failed to list the addresses of lo", e))?
            .into_iter()
            .map(|a| a.addr)
            .collect())
    }

    fn set_up(&mut self, up: bool) -> Result<(), LoopbackError> {
        if up {
            self.nl
                .set_up(self.index)
                .map_err(|e| LoopbackError::netlink("failed to set lo up", e))
        } else {
            self.nl
                .set_down(self.index)
                .map_err(|e| LoopbackError::netlink("failed to set lo down", e))
        }
    }

    fn remove_addr(&mut self, addr: IpNet) -> Result<(), LoopbackError> {
        if !self.addrs()?.contains(&addr) {
            return Ok(());
        }
        self.nl
            .addr_del(self.index, addr)
            .map_err(|e| LoopbackError::netlink("failed to remove an address of lo", e))
    }
}
