//! Where the binaries are, and which implementation a measurement runs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cni_testkit::bins::CniPathDir;

use crate::Opts;

pub(super) const PLUGINS: [&str; 8] = [
    "bridge",
    "host-local",
    "portmap",
    "loopback",
    "static",
    "tuning",
    "bandwidth",
    "firewall",
];

/// Where the binaries are.
pub(super) struct Bins {
    pub(super) ours: CniPathDir,
    pub(super) go: PathBuf,
}

impl Bins {
    pub(super) fn find(opts: &Opts) -> Result<Bins> {
        let ours_dir = match &opts.ours_dir {
            Some(d) => d.clone(),
            None => cni_testkit::bins::bin_dir().context("no directory of built binaries")?,
        };
        let mut ours = CniPathDir::new()?;
        for p in PLUGINS {
            let bin = ours_dir.join(p);
            if !bin.is_file() {
                bail!(
                    "{} is missing: run `cargo build --release --workspace --bins` first",
                    bin.display()
                );
            }
            ours = ours.link(p, &bin)?;
        }
        for p in PLUGINS {
            if !opts.go_dir.join(p).is_file() {
                bail!(
                    "{}/{p} is missing: install Debian's containernetworking-plugins",
                    opts.go_dir.display()
                );
            }
        }
        Ok(Bins {
            ours,
            go: opts.go_dir.clone(),
        })
    }
}

/// Which implementation and firewall backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Impl {
    /// Ours with its default backend (iptables, as the reference).
    OursIpt,
    /// Ours with `ipMasqBackend`/`backend` = nftables.
    OursNft,
    /// The Go reference plugins.
    Go,
}

impl Impl {
    pub(super) fn dir(self, b: &Bins) -> &Path {
        match self {
            Impl::Go => &b.go,
            _ => b.ours.path(),
        }
    }
}
