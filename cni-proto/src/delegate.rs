//! Delegation: a plugin running another plugin (its IPAM) found by type in `CNI_PATH`, with the
//! same config and environment and the verb overridden, as the reference's `pkg/ipam`.
//!
//! A delegated plugin's error is returned unchanged (its code and message), so the caller can
//! pass it on the way the reference does.

use cni_types::{CniResult, Error, Version};

use crate::command::Command;
use crate::env::Env;
pub use crate::exec::{Exec, ProcessExec};

fn conf_version(stdin: &[u8]) -> Option<Version> {
    crate::skel::decode_version(stdin)
        .ok()
        .and_then(|s| Version::parse(&s).ok())
}

/// ADD through a delegate; the result is parsed with the config's version.
pub fn add(
    exec: &dyn Exec,
    plugin_type: &str,
    stdin: &[u8],
    env: &Env,
) -> Result<CniResult, Error> {
    let out = exec.exec(plugin_type, Command::Add, stdin, env)?;
    CniResult::from_slice(&out, conf_version(stdin))
}

/// DEL through a delegate.
pub fn del(exec: &dyn Exec, plugin_type: &str, stdin: &[u8], env: &Env) -> Result<(), Error> {
    exec.exec(plugin_type, Command::Del, stdin, env).map(drop)
}

/// CHECK through a delegate.
pub fn check(exec: &dyn Exec, plugin_type: &str, stdin: &[u8], env: &Env) -> Result<(), Error> {
    exec.exec(plugin_type, Command::Check, stdin, env).map(drop)
}

/// GC through a delegate.
pub fn gc(exec: &dyn Exec, plugin_type: &str, stdin: &[u8], env: &Env) -> Result<(), Error> {
    exec.exec(plugin_type, Command::Gc, stdin, env).map(drop)
}

/// STATUS through a delegate.
pub fn status(exec: &dyn Exec, plugin_type: &str, stdin: &[u8], env: &Env) -> Result<(), Error> {
    exec.exec(plugin_type, Command::Status, stdin, env)
        .map(drop)
}
