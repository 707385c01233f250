//! The verbs over the disk store, and the [`HostLocal`] plugin the `host-local` binary runs.

use cni_proto::skel::{Plugin, Request};
use cni_types::{Attachment, CniResult, ErrorCode, Version};
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
            Error::Store(_) | Error::ResolvConf { .. } => ErrorCode::IoFailure,
            Error::Alloc(e) => alloc_code(e),
        }
    }
}

/// The code of an allocator failure (a range set's failure has the code of its cause).
fn alloc_code(e: &AllocError) -> ErrorCode {
    match e {
        AllocError::Range { source, .. } => alloc_code(source),
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

fn store(at: &Location) -> Result<DiskStore, Error> {
    Ok(DiskStore::new(&at.data_dir, &at.name)?)
}

/// ADD: allocate one address per range set for `owner` and build the IPAM result (addresses,
/// `routes`, and `dns` from `resolvConf`).
pub fn add(config: &Config, owner: &Attachment) -> Result<CniResult, Error> {
    let dns = match &config.resolv_conf {
        None => Default::default(),
        Some(p) => read_resolv_conf(p).map_err(|source| Error::ResolvConf {
            path: p.display().to_string(),
            source,
        })?,
    };
    let ips = Allocator::new(store(&config.location())?).allocate(
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

/// DEL: release `owner`'s addresses (idempotent). Only the store's location is needed; a
/// network name that cannot name a store (ADD refuses it) holds nothing, so there is nothing
/// to release.
pub fn del(at: &Location, owner: &Attachment) -> Result<(), Error> {
    let store = match DiskStore::new(&at.data_dir, &at.name) {
        Ok(s) => s,
        Err(StoreError::InvalidNetworkName(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    Allocator::new(store).release(owner)?;
    Ok(())
}

/// DEL from the raw request: what ADD refused cannot have been allocated, so a configuration
/// without a readable store location (no `ipam`, a `dataDir` or `name` of the wrong type)
/// releases nothing and succeeds. The spec asks DEL to succeed when its resources are
/// missing, and a runtime that stops at the first failing DEL (containerd's CRI does) would
/// otherwise leak everything else the pod holds.
fn del_request(stdin: &[u8], owner: &Attachment) -> Result<(), Error> {
    match Location::parse(stdin) {
        Ok(at) => del(&at, owner),
        Err(_) => Ok(()),
    }
}

/// CHECK: `owner` holds an address.
pub fn check(config: &Config, owner: &Attachment) -> Result<(), Error> {
    Ok(Allocator::new(store(&config.location())?).check(owner)?)
}

/// GC: release every reservation not held by a valid attachment. Only the store's location
/// is needed.
pub fn gc(at: &Location, valid: &[Attachment]) -> Result<Vec<Reservation>, Error> {
    Ok(Allocator::new(store(at)?).gc(valid)?)
}

/// STATUS: every range set has a free address.
pub fn status(config: &Config) -> Result<(), Error> {
    Ok(Allocator::new(store(&config.location())?).status(&config.ranges)?)
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

/// The host-local plugin for [`cni_proto::skel`].
#[derive(Clone, Copy, Debug, Default)]
pub struct HostLocal;

fn owner(req: &Request) -> Attachment {
    Attachment {
        container_id: req.container_id.clone(),
        ifname: req.ifname.clone(),
    }
}

fn config(req: &Request) -> Result<Config, Error> {
    Ok(Config::parse(&req.stdin, &req.args)?)
}

impl Plugin for HostLocal {
    fn add(&self, req: &Request) -> Result<CniResult, cni_types::Error> {
        Ok(add(&config(req)?, &owner(req))?)
    }

    fn del(&self, req: &Request) -> Result<(), cni_types::Error> {
        Ok(del_request(&req.stdin, &owner(req))?)
    }

    fn check(&self, req: &Request) -> Result<(), cni_types::Error> {
        Ok(check(&config(req)?, &owner(req))?)
    }

    fn gc(&self, req: &Request) -> Result<(), cni_types::Error> {
        let at = Location::parse(&req.stdin).map_err(Error::from)?;
        match valid_attachments(&req.stdin)? {
            // Without a list we cannot know what is in use: release nothing.
            None => Ok(()),
            Some(valid) => {
                gc(&at, &valid)?;
                Ok(())
            }
        }
    }

    fn status(&self, req: &Request) -> Result<(), cni_types::Error> {
        let config = config(req)?;
        status(&config).map_err(|e| {
            let code = e.code();
            cni_types::Error::msg(
                code,
                format!("host-local: network {} cannot allocate: {e}", config.name),
            )
        })
    }

    fn about(&self) -> String {
        format!(
            "CNI host-local plugin (cni-rs) v{}",
            env!("CARGO_PKG_VERSION")
        )
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
            del_request(stdin.as_bytes(), &att("c")).unwrap();
        }
        assert!(!dir.exists(), "DEL created nothing");
    }
}
