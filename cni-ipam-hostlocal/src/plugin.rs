//! The verbs over the disk store, and the [`HostLocal`] plugin the `host-local` binary runs.

use cni_proto::skel::{Plugin, Request};
use cni_types::{Attachment, CniResult, ErrorCode, Version};
use nix::unistd::Pid;
use serde_json::Value;

use crate::allocator::{AllocError, Allocator};
use crate::config::{Config, ConfigError, Location};
use crate::disk::DiskStore;
use crate::dns::read_resolv_conf;
use crate::store::{Reservation, StoreError};

/// Any host-local failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Allocation, release, check, GC or STATUS failed.
    #[error(transparent)]
    Alloc(#[from] AllocError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `resolvConf` could not be read.
    #[error("open {path}: {source}")]
    ResolvConf {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// GC's `cni.dev/valid-attachments` is not a list of attachments.
    #[error("failed to decode cni.dev/valid-attachments: {0}")]
    Attachments(#[source] serde_json::Error),
}

impl Error {
    /// The spec error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Config(ConfigError::Decode { .. }) | Error::Attachments(_) => {
                ErrorCode::DecodingFailure
            }
            Error::Config(ConfigError::Args(_)) => ErrorCode::InvalidEnvironmentVariables,
            Error::Config(_) => ErrorCode::InvalidNetworkConfig,
            Error::Store(StoreError::InvalidNetworkName(_)) => ErrorCode::InvalidNetworkConfig,
            Error::Store(StoreError::ParentGone { .. }) => ErrorCode::Internal,
            Error::Store(_) | Error::ResolvConf { .. } => ErrorCode::IoFailure,
            Error::Alloc(e) => alloc_code(e),
        }
    }
}

/// The code of an allocator failure (a range set's failure has the code of its cause).
fn alloc_code(e: &AllocError) -> ErrorCode {
    match e {
        AllocError::Range { source, .. } => alloc_code(source),
        AllocError::Store(StoreError::ParentGone { .. }) => ErrorCode::Internal,
        AllocError::InvalidAttachment(e) => e.code,
        AllocError::Unavailable(_) => ErrorCode::PluginNotAvailable,
        AllocError::Store(_) | AllocError::Release(_) => ErrorCode::IoFailure,
        _ => ErrorCode::Internal,
    }
}

impl From<Error> for cni_types::Error {
    fn from(e: Error) -> Self {
        cni_types::Error::from_chain(e.code(), &e)
    }
}

/// How the verbs open the store: in-process, or as a child process that must stop when the
/// process that started it is gone.
#[derive(Clone, Copy, Debug, Default)]
struct Verbs {
    parent: Option<Pid>,
}

impl Verbs {
    fn store(&self, at: &Location) -> Result<DiskStore, Error> {
        let s = DiskStore::new(&at.data_dir, &at.name)?;
        Ok(match self.parent {
            Some(p) => s.with_parent(p),
            None => s,
        })
    }

    fn add(&self, config: &Config, owner: &Attachment) -> Result<CniResult, Error> {
        let dns = match &config.resolv_conf {
            None => Default::default(),
            Some(p) => read_resolv_conf(p).map_err(|source| Error::ResolvConf {
                path: p.display().to_string(),
                source,
            })?,
        };
        let ips = Allocator::new(self.store(&config.location())?).allocate(
            &config.ranges,
            &config.requested,
            owner,
        )?;
        Ok(CniResult {
            cni_version: Version::CURRENT,
            interfaces: Vec::new(),
            ips,
            routes: config.routes.clone(),
            dns,
        })
    }

    fn del(&self, at: &Location, owner: &Attachment) -> Result<(), Error> {
        let store = match self.store(at) {
            Ok(s) => s,
            Err(Error::Store(StoreError::InvalidNetworkName(_))) => return Ok(()),
            Err(e) => return Err(e),
        };
        Allocator::new(store).release(owner)?;
        Ok(())
    }

    fn check(&self, config: &Config, owner: &Attachment) -> Result<(), Error> {
        Ok(Allocator::new(self.store(&config.location())?).check(owner)?)
    }

    fn gc(&self, at: &Location, valid: &[Attachment]) -> Result<Vec<Reservation>, Error> {
        Ok(Allocator::new(self.store(at)?).gc(valid)?)
    }

    fn status(&self, config: &Config) -> Result<(), Error> {
        Ok(Allocator::new(self.store(&config.location())?).status(&config.ranges)?)
    }
}

/// ADD: allocate one address per range set for `owner` and build the IPAM result (addresses,
/// `routes`, and `dns` from `resolvConf`).
pub fn add(config: &Config, owner: &Attachment) -> Result<CniResult, Error> {
    Verbs::default().add(config, owner)
}

/// DEL: release `owner`'s addresses (idempotent). Only the store's location is needed; a
/// network name that cannot name a store (ADD refuses it) holds nothing, so there is nothing
/// to release.
pub fn del(at: &Location, owner: &Attachment) -> Result<(), Error> {
    Verbs::default().del(at, owner)
}

/// DEL from the raw request: what ADD refused cannot have been allocated, so a configuration
/// without a readable store location (no `ipam`, a `dataDir` or `name` of the wrong type)
/// releases nothing and succeeds. The spec asks DEL to succeed when its resources are
/// missing, and a runtime that stops at the first failing DEL (containerd's CRI does) would
/// otherwise leak everything else the pod holds.
fn del_request(verbs: Verbs, stdin: &[u8], owner: &Attachment) -> Result<(), Error> {
    match Location::parse(stdin) {
        Ok(at) => verbs.del(&at, owner),
        Err(_) => Ok(()),
    }
}

/// CHECK: `owner` holds an address.
pub fn check(config: &Config, owner: &Attachment) -> Result<(), Error> {
    Verbs::default().check(config, owner)
}

/// GC: release every reservation not held by a valid attachment. Only the store's location
/// is needed.
pub fn gc(at: &Location, valid: &[Attachment]) -> Result<Vec<Reservation>, Error> {
    Verbs::default().gc(at, valid)
}

/// STATUS: every range set has a free address.
pub fn status(config: &Config) -> Result<(), Error> {
    Verbs::default().status(config)
}

/// GC's valid attachments from the raw config: `cni.dev/valid-attachments` (or libcni's
/// `cni.dev/attachments`). `None` when neither key is present; a `null` value is an empty list
/// (libcni marshals an empty Go slice as `null`).
pub fn valid_attachments(stdin: &[u8]) -> Result<Option<Vec<Attachment>>, Error> {
    let v: Value = serde_json::from_slice(stdin).map_err(Error::Attachments)?;
    let raw = v
        .get("cni.dev/valid-attachments")
        .or_else(|| v.get("cni.dev/attachments"));
    match raw {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(Vec::new())),
        Some(list) => serde_json::from_value(list.clone())
            .map(Some)
            .map_err(Error::Attachments),
    }
}

/// The host-local plugin for [`cni_proto::skel`], for running in-process.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostLocal;

/// The host-local plugin as the `host-local` binary runs it: a child process of a runtime or
/// of a plugin that delegates IPAM to it. It records its parent when created and leaves the
/// store alone once that parent has died (checked again after the store's lock is taken, see
/// [`DiskStore::with_parent`]): an IPAM child of a `bridge` killed mid-ADD must not reserve
/// after the runtime's DEL already ran.
#[derive(Clone, Copy, Debug)]
pub struct HostLocalChild {
    parent: Pid,
}

impl HostLocalChild {
    /// The plugin for this process, whose parent is recorded now: create it first thing in
    /// `main`.
    pub fn of_this_process() -> Self {
        HostLocalChild {
            parent: nix::unistd::getppid(),
        }
    }
}

fn owner(req: &Request) -> Attachment {
    Attachment {
        container_id: req.container_id.clone(),
        ifname: req.ifname.clone(),
    }
}

fn config(req: &Request) -> Result<Config, Error> {
    Ok(Config::parse(&req.stdin, &req.args)?)
}

impl Verbs {
    fn run_add(self, req: &Request) -> Result<CniResult, cni_types::Error> {
        Ok(self.add(&config(req)?, &owner(req))?)
    }

    fn run_del(self, req: &Request) -> Result<(), cni_types::Error> {
        Ok(del_request(self, &req.stdin, &owner(req))?)
    }

    fn run_check(self, req: &Request) -> Result<(), cni_types::Error> {
        Ok(self.check(&config(req)?, &owner(req))?)
    }

    fn run_gc(self, req: &Request) -> Result<(), cni_types::Error> {
        let at = Location::parse(&req.stdin).map_err(Error::from)?;
        match valid_attachments(&req.stdin)? {
            // Without a list we cannot know what is in use: release nothing.
            None => Ok(()),
            Some(valid) => {
                self.gc(&at, &valid)?;
                Ok(())
            }
        }
    }

    fn run_status(self, req: &Request) -> Result<(), cni_types::Error> {
        let config = config(req)?;
        self.status(&config).map_err(|e| {
            let code = e.code();
            cni_types::Error::msg(
                code,
                format!("host-local: network {} cannot allocate: {e}", config.name),
            )
        })
    }
}

fn about() -> String {
    format!(
        "CNI host-local plugin (cni-rs) v{}",
        env!("CARGO_PKG_VERSION")
    )
}

impl Plugin for HostLocal {
    fn add(&self, req: &Request) -> Result<CniResult, cni_types::Error> {
        Verbs::default().run_add(req)
    }

    fn del(&self, req: &Request) -> Result<(), cni_types::Error> {
        Verbs::default().run_del(req)
    }

    fn check(&self, req: &Request) -> Result<(), cni_types::Error> {
        Verbs::default().run_check(req)
    }

    fn gc(&self, req: &Request) -> Result<(), cni_types::Error> {
        Verbs::default().run_gc(req)
    }

    fn status(&self, req: &Request) -> Result<(), cni_types::Error> {
        Verbs::default().run_status(req)
    }

    fn about(&self) -> String {
        about()
    }
}

impl HostLocalChild {
    fn verbs(&self) -> Verbs {
        Verbs {
            parent: Some(self.parent),
        }
    }
}

impl Plugin for HostLocalChild {
    fn add(&self, req: &Request) -> Result<CniResult, cni_types::Error> {
        self.verbs().run_add(req)
    }

    fn del(&self, req: &Request) -> Result<(), cni_types::Error> {
        self.verbs().run_del(req)
    }

    fn check(&self, req: &Request) -> Result<(), cni_types::Error> {
        self.verbs().run_check(req)
    }

    fn gc(&self, req: &Request) -> Result<(), cni_types::Error> {
        self.verbs().run_gc(req)
    }

    fn status(&self, req: &Request) -> Result<(), cni_types::Error> {
        self.verbs().run_status(req)
    }

    fn about(&self) -> String {
        about()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn att(id: &str) -> Attachment {
        Attachment {
            container_id: id.into(),
            ifname: "eth0".into(),
        }
    }

    #[test]
    fn del_succeeds_where_nothing_can_have_been_allocated() {
        let dir = std::env::temp_dir().join(format!("hl-plugin-del-{}", std::process::id()));
        // A network name that cannot name a store.
        let at = Location {
            name: "../escape".into(),
            data_dir: dir.clone(),
        };
        del(&at, &att("c")).unwrap();
        // No `ipam`, or a store location of the wrong type: ADD refuses these configs.
        for stdin in [
            r#"{"cniVersion":"1.0.0","name":"n","type":"bridge"}"#,
            r#"{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local","dataDir":5}}"#,
            r#"{"cniVersion":"1.0.0","name":"n","ipam":"host-local"}"#,
        ] {
            assert!(Config::parse(stdin.as_bytes(), "").is_err(), "{stdin}");
            del_request(Verbs::default(), stdin.as_bytes(), &att("c")).unwrap();
        }
        assert!(!dir.exists(), "DEL created nothing");
    }
}
