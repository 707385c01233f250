//! Every cni-rs CNI plugin in one static binary, `cni-plugins`, and an installer for a node.
//!
//! The binary runs the plugin it is named as: `/opt/cni/bin/bridge`, a symlink to
//! `cni-plugins`, is the bridge plugin (the file name of `argv[0]` decides, as in k3s's
//! multicall binary). `cni-plugins bridge` runs it too, with the environment and stdin as they
//! are. Otherwise it has a few subcommands:
//!
//! ```text
//! cni-plugins install --dest /opt/cni/bin [--backup-dir DIR]
//!                     [--conflist FILE --net-dir /etc/cni/net.d [--force]]
//! cni-plugins install --dest /opt/cni/bin --rollback
//! cni-plugins install-node     # settings from the environment (an init container)
//! cni-plugins sleep            # wait for SIGTERM (a DaemonSet's main container)
//! cni-plugins version | help
//! ```
//!
//! # Layout
//! - [`table`]: the plugins of the binary, one line each.
//! - [`cli`]: what a command line means ([`cli::parse`]) and running it ([`cli::run`], with
//!   the environment and stdio passed in).
//! - [`install`]: the binary and its symlinks into a bin directory, atomically, keeping what
//!   they replace; and the rollback.
//! - [`conflist`]: a conflist into a net.d directory, atomically, never over a different one
//!   unless forced.
//! - [`node`]: `install-node`, the flannel install-cni pattern: all of the above from
//!   environment variables, for `deploy/Containerfile`.
//!
//! # Quick start (in-process)
//!
//! ```no_run
//! use cni_plugins::install::{Layout, install, rollback};
//!
//! let layout = Layout::new("/opt/cni/bin");
//! let names: Vec<&str> = cni_plugins::table::names().collect();
//! let report = install(&layout, "/usr/local/bin/cni-plugins".as_ref(), &names)?;
//! print!("{report}"); // Go binaries it replaced are in /opt/cni/bin/.cni-plugins-backup
//! print!("{}", rollback(&layout)?); // and back
//! # Ok::<(), cni_plugins::install::InstallError>(())
//! ```

pub mod cli;
pub mod conflist;
pub mod install;
pub mod node;
pub mod table;

pub use cli::run;

/// The signals that end `sleep`, blocked from now on in this thread; wait for one with
/// [`nix::sys::signal::SigSet::wait`]. Blocked signals are waited for, not dropped, so this
/// works as PID 1 of a container too (where a signal with the default action is ignored).
pub fn block_termination() -> nix::Result<nix::sys::signal::SigSet> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block()?;
    Ok(set)
}
