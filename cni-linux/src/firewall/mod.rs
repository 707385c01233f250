//! Firewall backends: iptables (state read from nf_tables over netlink where iptables is
//! iptables-nft, else with `iptables-save`; changes through `iptables-restore`) and nftables
//! (nf_tables over netlink, no `nft` process).
//!
//! # Layout
//!
//! - [`iptables`]: [`IptablesPlan`](iptables::IptablesPlan) (pure, golden-testable text),
//!   the parsed [`IptablesState`](iptables::IptablesState), and
//!   [`iptables::apply`] (at most one `iptables-restore` per family; the state it needs is
//!   read from nf_tables on iptables-nft, with one `iptables-save` on iptables-legacy or for a
//!   rule it cannot decode exactly).
//! - [`nftables`]: [`NftPlan`](nftables::NftPlan) with an nft-like text dump,
//!   [`nftables::apply`] (one netlink transaction), and [`nftables::list_table`] to read tables,
//!   chains, rules (handles, comments) and set elements back.
//! - [`names`]: chain names, hashes and comments exactly as the reference Go plugins make them.
//! - [`owner`]: the owner tag and comments our plugins write into nftables objects (one
//!   helper for bridge, portmap and firewall, with the 128-byte limit).
//! - [`sha512`]: the SHA-512 digest behind those names and hashes (RustCrypto's `sha2`).
//! - [`FirewallApplier`]: the narrow seam plugins take, with the real [`System`]
//!   implementation and the [`Recorder`] test double.
//!
//! Everything acts in the network namespace of the calling thread: enter the target
//! namespace (for example with [`crate::netns::NetNs::run`]) before calling.

pub mod iptables;
pub mod names;
pub mod nftables;
pub mod owner;
pub mod sha512;

use std::ffi::OsStr;
use std::io::{self, Read};
use std::path::PathBuf;

pub use crate::IpFamily;

/// Which firewall backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// iptables / ip6tables (legacy or nf_tables flavour, whichever the binaries are).
    Iptables,
    /// nf_tables spoken directly over netlink.
    Nftables,
}

impl Backend {
    /// The reference plugins' default: iptables, unless only nftables is available.
    ///
    /// Costs a `PATH` lookup and, only when iptables is missing, one netlink round trip.
    pub fn detect_default() -> Option<Backend> {
        if iptables_available() {
            Some(Backend::Iptables)
        } else if nftables_available() {
            Some(Backend::Nftables)
        } else {
            None
        }
    }
}

/// Whether `iptables-save` and `iptables-restore` are executable files in `PATH`.
///
/// Cheap: no process is spawned. (The reference runs `iptables -t filter -L INPUT`; a broken
/// installation is reported later by [`iptables::apply`].)
pub fn iptables_available() -> bool {
    find_in_path("iptables-save").is_some() && find_in_path("iptables-restore").is_some()
}

/// Whether the kernel answers nf_tables requests in the calling thread's namespace: opens a
/// `NETLINK_NETFILTER` socket and asks for the ruleset generation (`NFT_MSG_GETGEN`).
pub fn nftables_available() -> bool {
    nftables::generation().is_ok()
}

/// Finds an executable called `name` in `PATH` (like a shell would), without spawning.
///
/// Only absolute entries of `PATH` are searched: an empty or relative entry names the
/// working directory (or a directory under it), so a root plugin started in a directory
/// someone else can write to would run their `./iptables-save`.
pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    find_in(name, &std::env::var_os("PATH")?)
}

/// [`find_in_path`] with `PATH` given.
fn find_in(name: &str, path: &OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    search_dirs(path).map(|dir| dir.join(name)).find(|p| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// The entries of a `PATH` value that are searched: the absolute ones, in order.
fn search_dirs(path: &OsStr) -> impl Iterator<Item = PathBuf> + '_ {
    std::env::split_paths(path).filter(|dir| dir.is_absolute())
}

/// The most we read of any one output or file whose size we do not control (the output of
/// `iptables-save`, a process's stderr): 16 MiB, far more than any real one.
pub(crate) const READ_LIMIT: u64 = 16 << 20;

/// Reads `reader` to its end, or fails with [`std::io::ErrorKind::FileTooLarge`] once more
/// than `limit` bytes arrive (it never holds more than `limit + 1` bytes).
pub(crate) fn read_capped(reader: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    reader.take(limit.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("more than {limit} bytes"),
        ));
    }
    Ok(buf)
}

/// Errors of either backend, for code that works with both through [`FirewallApplier`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FirewallError {
    /// iptables backend error.
    #[error(transparent)]
    Iptables(#[from] iptables::IptablesError),
    /// nftables backend error.
    #[error(transparent)]
    Nftables(#[from] nftables::NftError),
}

/// The seam between plugins and the kernel firewall.
///
/// Plugins build plans (pure values) and hand them to an applier. Production code uses
/// [`System`]; unit tests use [`Recorder`] to capture the plans and to feed canned state to
/// the plugin's DEL/CHECK logic. Every call acts in the calling thread's network namespace.
pub trait FirewallApplier {
    /// Applies iptables plans (see [`iptables::apply`]).
    fn apply_iptables(&mut self, plans: &[iptables::IptablesPlan]) -> Result<(), FirewallError>;
    /// Reads the iptables state of `table` for `family` (see [`iptables::save`]).
    fn iptables_state(
        &mut self,
        family: IpFamily,
        table: &str,
    ) -> Result<iptables::IptablesState, FirewallError>;
    /// Applies an nftables plan as one transaction (see [`nftables::apply`]).
    fn apply_nft(&mut self, plan: &nftables::NftPlan) -> Result<(), FirewallError>;
    /// Lists one nftables table with its chains, rules, sets and elements; `Ok(None)` when
    /// the table does not exist (see [`nftables::list_table`]).
    fn nft_table(
        &mut self,
        family: nftables::Family,
        table: &str,
    ) -> Result<Option<nftables::TableListing>, FirewallError>;

    /// Whether an nftables table exists, without listing it (see
    /// [`nftables::table_exists`]). The default asks [`FirewallApplier::nft_table`].
    fn nft_table_exists(
        &mut self,
        family: nftables::Family,
        table: &str,
    ) -> Result<bool, FirewallError> {
        Ok(self.nft_table(family, table)?.is_some())
    }

    /// Reads one element of a set or map by key; `Ok(None)` when the table, the set or the
    /// element does not exist (see [`nftables::get_element`]: one round trip, whatever the
    /// size of the set). The default looks it up in [`FirewallApplier::nft_table`]'s listing.
    fn nft_element(
        &mut self,
        family: nftables::Family,
        table: &str,
        set: &str,
        key: &[nftables::DataType],
        values: &[nftables::Value],
    ) -> Result<Option<nftables::ElementListing>, FirewallError> {
        Ok(self
            .nft_table(family, table)?
            .and_then(|t| t.set(set).and_then(|s| s.find(key, values)).cloned()))
    }

    /// Whether iptables chain `chain` of `table` may exist, answered without running an
    /// iptables process: `false` only when it provably does not, so that a caller can skip
    /// `iptables-save`. The default answers `true`.
    fn iptables_chain_may_exist(
        &mut self,
        family: IpFamily,
        table: &str,
        chain: &str,
    ) -> Result<bool, FirewallError> {
        let _ = (family, table, chain);
        Ok(true)
    }
}

/// Whether the legacy (x_tables) `table` of `family` is loaded in the calling thread's network
/// namespace (`/proc/thread-self/net/ip{,6}_tables_names`). When in doubt, `true`.
fn legacy_table_loaded(family: IpFamily, table: &str) -> bool {
    let file = match family {
        IpFamily::V4 => "/proc/thread-self/net/ip_tables_names",
        IpFamily::V6 => "/proc/thread-self/net/ip6_tables_names",
    };
    match std::fs::File::open(file).and_then(|f| read_capped(f, READ_LIMIT)) {
        Ok(names) => String::from_utf8_lossy(&names)
            .lines()
            .any(|l| l.trim() == table),
        // No x_tables module loaded at all: no legacy table anywhere.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(_) => true,
    }
}

/// The real firewall: runs the iptables binaries and talks nf_tables netlink.
#[derive(Debug, Clone, Copy, Default)]
pub struct System;

impl FirewallApplier for System {
    fn apply_iptables(&mut self, plans: &[iptables::IptablesPlan]) -> Result<(), FirewallError> {
        iptables::apply(plans)?;
        Ok(())
    }

    fn iptables_state(
        &mut self,
        family: IpFamily,
        table: &str,
    ) -> Result<iptables::IptablesState, FirewallError> {
        Ok(iptables::save(family, Some(table))?)
    }

    fn apply_nft(&mut self, plan: &nftables::NftPlan) -> Result<(), FirewallError> {
        nftables::apply(plan)?;
        Ok(())
    }

    fn nft_table(
        &mut self,
        family: nftables::Family,
        table: &str,
    ) -> Result<Option<nftables::TableListing>, FirewallError> {
        Ok(nftables::list_table(family, table)?)
    }

    fn nft_table_exists(
        &mut self,
        family: nftables::Family,
        table: &str,
    ) -> Result<bool, FirewallError> {
        Ok(nftables::table_exists(family, table)?)
    }

    fn nft_element(
        &mut self,
        family: nftables::Family,
        table: &str,
        set: &str,
        key: &[nftables::DataType],
        values: &[nftables::Value],
    ) -> Result<Option<nftables::ElementListing>, FirewallError> {
        Ok(nftables::get_element(family, table, set, key, values)?)
    }

    /// An iptables chain lives either in a legacy x_tables table, listed in
    /// `/proc/thread-self/net/ip{,6}_tables_names` once loaded in the namespace, or, with
    /// iptables-nft, in nftables table `ip <table>` (`ip6 <table>`) under its own name. Neither:
    /// it does not exist. Costs a file read and, without a legacy table, one nf_tables round
    /// trip.
    fn iptables_chain_may_exist(
        &mut self,
        family: IpFamily,
        table: &str,
        chain: &str,
    ) -> Result<bool, FirewallError> {
        if legacy_table_loaded(family, table) {
            return Ok(true);
        }
        match nftables::chain_exists(nftables::Family::of(family), table, chain) {
            Ok(exists) => Ok(exists),
            // No nf_tables in this kernel (and no legacy table): no chain either.
            Err(nftables::NftError::Socket(e))
                if e.raw_os_error() == Some(libc::EPROTONOSUPPORT) =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// A test double that records every plan and answers state queries from canned values.
///
/// ```
/// use cni_linux::firewall::{FirewallApplier, IpFamily, Recorder};
/// use cni_linux::firewall::iptables::{IptablesPlan, Rule};
///
/// let mut rec = Recorder::default();
/// let mut plan = IptablesPlan::new(IpFamily::V4, "nat");
/// plan.append_unique("POSTROUTING", Rule::new(["-j", "ACCEPT"]).unwrap());
/// rec.apply_iptables(&[plan]).unwrap();
/// assert_eq!(rec.dump(), "table ipv4 nat\n  append-unique POSTROUTING -j ACCEPT\n");
/// ```
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    /// Every iptables plan applied, in order.
    pub iptables: Vec<iptables::IptablesPlan>,
    /// Every nftables plan applied, in order.
    pub nft: Vec<nftables::NftPlan>,
    /// Answers for [`FirewallApplier::iptables_state`], keyed by family; a family without an
    /// entry answers an empty state.
    pub iptables_states: Vec<iptables::IptablesState>,
    /// Answers for [`FirewallApplier::nft_table`], matched by family and name.
    pub nft_tables: Vec<nftables::TableListing>,
}

impl Recorder {
    /// The text dump of everything applied so far (iptables plans, then nftables plans).
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for p in &self.iptables {
            s.push_str(&p.to_string());
        }
        for p in &self.nft {
            s.push_str(&p.to_string());
        }
        s
    }
}

impl FirewallApplier for Recorder {
    fn apply_iptables(&mut self, plans: &[iptables::IptablesPlan]) -> Result<(), FirewallError> {
        self.iptables.extend(plans.iter().cloned());
        Ok(())
    }

    fn iptables_state(
        &mut self,
        family: IpFamily,
        table: &str,
    ) -> Result<iptables::IptablesState, FirewallError> {
        let state = self
            .iptables_states
            .iter()
            .find(|s| s.family == family)
            .cloned()
            .unwrap_or(iptables::IptablesState {
                family,
                tables: Vec::new(),
            });
        Ok(iptables::IptablesState {
            family,
            tables: state
                .tables
                .into_iter()
                .filter(|t| t.name == table)
                .collect(),
        })
    }

    fn apply_nft(&mut self, plan: &nftables::NftPlan) -> Result<(), FirewallError> {
        self.nft.push(plan.clone());
        Ok(())
    }

    fn nft_table(
        &mut self,
        family: nftables::Family,
        table: &str,
    ) -> Result<Option<nftables::TableListing>, FirewallError> {
        Ok(self
            .nft_tables
            .iter()
            .find(|t| t.family == family && t.name == table)
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use super::*;

    #[test]
    fn path_search_skips_empty_and_relative_entries() {
        let dirs: Vec<PathBuf> =
            search_dirs(OsStr::new(":sbin:/usr/sbin::./bin:../x:/bin:")).collect();
        assert_eq!(dirs, [Path::new("/usr/sbin"), Path::new("/bin")]);
    }

    #[test]
    fn an_executable_under_a_relative_path_entry_is_not_found() {
        // An executable iptables-save in a directory that PATH names relatively (from the
        // working directory) and absolutely: only the absolute entry may find it.
        let dir = std::env::temp_dir().join(format!("cni-linux-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("iptables-save");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cwd = std::env::current_dir().unwrap();
        let up = "../".repeat(cwd.components().count());
        let relative = Path::new(&up).join(dir.strip_prefix("/").unwrap());
        assert!(relative.is_relative() && relative.join("iptables-save").is_file());

        let found = find_in("iptables-save", relative.as_os_str());
        let absolute = find_in("iptables-save", dir.as_os_str());
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(found, None);
        assert_eq!(absolute, Some(exe));
    }

    #[test]
    fn reads_are_capped() {
        let ok = read_capped(io::repeat(b'x').take(100), 100).unwrap();
        assert_eq!(ok.len(), 100);
        let err = read_capped(io::repeat(b'x').take(101), 100).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(err.to_string(), "more than 100 bytes");
        // An endless reader ends too.
        let err = read_capped(io::repeat(b'x'), READ_LIMIT).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
    }
}
