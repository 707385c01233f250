#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! - [`skel`]: a plugin's entry point. Environment, stdin and stdout are passed in; the verb is
//!   validated as the reference `pkg/skel` does and dispatched to a [`skel::Plugin`]; the result
//!   is printed converted to the config's version; an error becomes the spec's error JSON and an
//!   exit code in exactly one place.
//! - [`delegate`]: run another plugin (IPAM) found through `CNI_PATH`.
//! - [`exec`]: the [`exec::Exec`] seam: plugins as processes ([`exec::ProcessExec`]) or
//!   in-process ([`exec::InProcessExec`]).
//! - [`runtime`]: what libcni does for a container runtime: load `.conflist` files, run ADD /
//!   CHECK / DEL / GC / STATUS through a chain, thread `prevResult`, inject capability args,
//!   keep the result cache (its files in the private `runtime::cache`, always touched
//!   relative to an opened directory).
//! - `child` (private): plugin processes die with the process that started them
//!   (`PR_SET_PDEATHSIG`), so a killed plugin's IPAM child cannot outlive it.
//! - [`env`](mod@env), [`command`]: the environment map and the verbs.
//! - [`limit`]: bounded reads (16 MiB) of everything read to its end.
//! - [`cnitool`]: what the `cnitool` binary (`src/bin/cnitool.rs`) decides (default
//!   container ID, GC arguments).
//! - `base64` (private): the standard, padded encoding of the conflist in the result cache,
//!   decoded strictly; `sha512` (private): the digest behind cnitool's default container ID.

pub use cni_types;

mod base64;
mod child;
pub mod cnitool;
pub mod command;
pub mod delegate;
pub mod env;
pub mod exec;
pub mod limit;
pub mod runtime;
mod sha512;
pub mod skel;

pub use command::Command;
pub use env::Env;
