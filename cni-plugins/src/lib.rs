#![doc = include_str!("../README.md")]
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
