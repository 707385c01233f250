//! The side effects inside the pod's namespace, behind [`Pod`]: sysctls and the container
//! link's attributes. [`SystemPod`] does them for real (a netlink socket opened inside the
//! namespace once; all sysctls of a call written on one thread that entered it once);
//! [`FakePod`] records them for unit tests.

use std::collections::BTreeMap;
use std::path::Path;

use cni_linux::netlink::Handle;
use cni_linux::netns::NetNs;
use cni_linux::sysctl::{self, SysctlError};

use crate::error::TuningError;

/// The attributes of the container link tuning reads and changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkState {
    /// Interface index.
    pub index: u32,
    /// Hardware address (`None` when not a 6-byte address).
    pub mac: Option<[u8; 6]>,
    /// MTU.
    pub mtu: u32,
    /// `IFF_PROMISC`.
    pub promisc: bool,
    /// `IFF_ALLMULTI`.
    pub allmulti: bool,
    /// Transmit queue length.
    pub txqlen: u32,
}

/// One attribute change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    /// Hardware address.
    Mac([u8; 6]),
    /// Promiscuous mode.
    Promisc(bool),
    /// MTU.
    Mtu(u32),
    /// All-multicast mode.
    Allmulti(bool),
    /// Transmit queue length.
    TxQLen(u32),
}

impl Attr {
    /// How the reference names a failure to set it (`failed to restore <this>` on DEL).
    pub fn describe(self) -> &'static str {
        match self {
            Attr::Mac(_) => "MAC address",
            Attr::Promisc(_) => "promiscuous mode",
            Attr::Mtu(_) => "MTU",
            Attr::Allmulti(_) => "all-multicast mode",
            Attr::TxQLen(_) => "transmit queue length",
        }
    }
}

/// `(file, value)` pairs of sysctls, in order.
pub type SysctlValues = Vec<(String, String)>;

/// A batch of sysctl writes that failed: the previous values of those written before the
/// failure, and the failure.
pub type SysctlFailure = (SysctlValues, SysctlError);

/// What tuning does inside the pod.
pub trait Pod {
    /// Writes each `(path, value)` in order and returns the previous values of those written
    /// (write-only keys, which cannot be read, are written without one).
    /// On a failure, the previous values of the ones already written come with the error, so
    /// the caller can put them back.
    fn write_sysctls(&mut self, writes: &[(String, String)])
    -> Result<SysctlValues, SysctlFailure>;
    /// Reads each path (without the trailing newline).
    fn read_sysctls(&mut self, paths: &[String]) -> Vec<Result<String, SysctlError>>;
    /// The link called `name`, `None` when there is none.
    fn link(&mut self, name: &str) -> Result<Option<LinkState>, TuningError>;
    /// Changes one attribute of the link `index`.
    fn set(&mut self, index: u32, attr: Attr) -> Result<(), cni_linux::netlink::Error>;
}

/// The pod's namespace for real.
#[derive(Debug)]
pub struct SystemPod {
    ns: NetNs,
    handle: Handle,
}

impl SystemPod {
    /// Opens the namespace at `path` and a netlink socket inside it.
    pub fn open(path: &Path) -> Result<SystemPod, TuningError> {
        let netns_err = |source| TuningError::Netns {
            path: path.to_path_buf(),
            source,
        };
        let ns = NetNs::open(path).map_err(netns_err)?;
        let handle = Handle::new_in(&ns).map_err(|e| match e {
            cni_linux::netlink::Error::Netns(n) => netns_err(n),
            other => TuningError::netlink(format!("failed to open netlink in {path:?}"))(other),
        })?;
        Ok(SystemPod { ns, handle })
    }
}

fn entered<T>(ns: &NetNs, f: impl FnOnce() -> T + Send) -> Result<T, SysctlError>
where
    T: Send,
{
    ns.run(f).map_err(SysctlError::Netns)
}

impl Pod for SystemPod {
    fn write_sysctls(
        &mut self,
        writes: &[(String, String)],
    ) -> Result<SysctlValues, SysctlFailure> {
        let run = entered(&self.ns, || {
            let mut old = Vec::new();
            for (path, value) in writes {
                // Write-only keys (`net.ipv4.route.flush`) cannot be read, nor put back.
                let prev = sysctl::read(path).ok();
                if let Err(e) = sysctl::write(path, value) {
                    return Err((old, e));
                }
                if let Some(prev) = prev {
                    old.push((path.clone(), prev));
                }
            }
            Ok(old)
        });
        match run {
            Ok(r) => r,
            Err(e) => Err((Vec::new(), e)),
        }
    }

    fn read_sysctls(&mut self, paths: &[String]) -> Vec<Result<String, SysctlError>> {
        match entered(&self.ns, || {
            paths.iter().map(|p| sysctl::read(p)).collect::<Vec<_>>()
        }) {
            Ok(v) => v,
            Err(e) => {
                let msg = e.to_string();
                paths
                    .iter()
                    .map(|p| {
                        Err(SysctlError::Read {
                            path: p.into(),
                            source: std::io::Error::other(msg.clone()),
                        })
                    })
                    .collect()
            }
        }
    }

    fn link(&mut self, name: &str) -> Result<Option<LinkState>, TuningError> {
        let link = self
            .handle
            .link_by_name(name)
            .map_err(TuningError::netlink(format!("failed to get {name:?}")))?;
        Ok(link.map(|l| LinkState {
            index: l.index,
            mac: l.mac,
            mtu: l.mtu,
            promisc: l.promisc,
            allmulti: l.allmulti,
            txqlen: l.txqlen.unwrap_or(0),
        }))
    }

    fn set(&mut self, index: u32, attr: Attr) -> Result<(), cni_linux::netlink::Error> {
        let h = &mut self.handle;
        match attr {
            Attr::Mac(m) => h.set_mac(index, m),
            Attr::Promisc(on) => h.set_promisc(index, on),
            Attr::Mtu(m) => h.set_mtu(index, m),
            Attr::Allmulti(on) => h.set_allmulti(index, on),
            Attr::TxQLen(q) => h.set_txqlen(index, q),
        }
    }
}

/// A recording double: one link, a map of sysctls, and failures on demand.
#[derive(Debug, Clone, Default)]
pub struct FakePod {
    /// The container link, `None` for a pod without it.
    pub link: Option<(String, LinkState)>,
    /// The sysctl files and their values; writing a missing one fails like the kernel.
    pub sysctls: BTreeMap<String, String>,
    /// Every change, in order.
    pub log: Vec<String>,
    /// Refuse this attribute kind (by [`Attr::describe`]).
    pub fail_attr: Option<&'static str>,
}

impl Pod for FakePod {
    fn write_sysctls(
        &mut self,
        writes: &[(String, String)],
    ) -> Result<SysctlValues, SysctlFailure> {
        let mut old = Vec::new();
        for (path, value) in writes {
            let Some(cur) = self.sysctls.get_mut(path) else {
                return Err((
                    old,
                    SysctlError::Write {
                        path: path.into(),
                        value: value.clone(),
                        source: std::io::ErrorKind::NotFound.into(),
                    },
                ));
            };
            old.push((path.clone(), std::mem::replace(cur, value.clone())));
            self.log.push(format!("sysctl {path}={value}"));
        }
        Ok(old)
    }

    fn read_sysctls(&mut self, paths: &[String]) -> Vec<Result<String, SysctlError>> {
        paths
            .iter()
            .map(|p| {
                self.sysctls
                    .get(p)
                    .cloned()
                    .ok_or_else(|| SysctlError::Read {
                        path: p.into(),
                        source: std::io::ErrorKind::NotFound.into(),
                    })
            })
            .collect()
    }

    fn link(&mut self, name: &str) -> Result<Option<LinkState>, TuningError> {
        Ok(self
            .link
            .as_ref()
            .filter(|(n, _)| n == name)
            .map(|(_, l)| *l))
    }

    fn set(&mut self, index: u32, attr: Attr) -> Result<(), cni_linux::netlink::Error> {
        if self.fail_attr == Some(attr.describe()) {
            return Err(cni_linux::netlink::Error::Invalid {
                what: "attribute",
                value: format!("{attr:?}"),
                reason: "refused by the fake",
            });
        }
        let Some((_, l)) = self.link.as_mut().filter(|(_, l)| l.index == index) else {
            return Err(cni_linux::netlink::Error::NotFound {
                what: "link",
                name: index.to_string(),
            });
        };
        match attr {
            Attr::Mac(m) => l.mac = Some(m),
            Attr::Promisc(on) => l.promisc = on,
            Attr::Mtu(m) => l.mtu = m,
            Attr::Allmulti(on) => l.allmulti = on,
            Attr::TxQLen(q) => l.txqlen = q,
        }
        self.log.push(format!("set {attr:?}"));
        Ok(())
    }
}
