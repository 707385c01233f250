//! A plugin's entry point: the reference skel's validation and dispatch, with the environment
//! and stdio passed in.
//!
//! [`run`] reads the verb and parameters from an [`Env`], the config from a reader, validates
//! them exactly as the reference `pkg/skel` does, calls the [`Plugin`] verb, prints the result
//! converted to the config's version and, on failure, prints the spec's error JSON on stdout and
//! returns exit code 1. It is the only place where an error becomes JSON and an exit code.
//!
//! Validation, in the reference's order:
//! 1. Required variables per verb (missing ones listed in one code-4 error `required env
//!    variables [A,B] missing`): `CNI_COMMAND` always; `CNI_CONTAINERID`, `CNI_IFNAME` for
//!    ADD/CHECK/DEL; `CNI_NETNS` for ADD/CHECK; `CNI_PATH` for ADD/CHECK/DEL/GC/STATUS. A
//!    present container ID or interface name is validated as it is read (code 3 or 4). With no
//!    `CNI_COMMAND` at all, the about text goes to stderr and the exit code is 0.
//! 2. stdin is read (code 5 on failure, or past 16 MiB) except for VERSION, and must be JSON
//!    with a valid `name` (code 6 undecodable, code 7 missing or invalid name).
//! 3. The config's `cniVersion` (absent: 0.1.0) must be one the plugin supports (code 1
//!    `incompatible CNI versions`); CHECK needs 0.4.0, GC and STATUS need 1.1.0 (code 1).
//! 4. An unknown verb is code 4 `unknown CNI_COMMAND: X`.
//!
//! One deliberate difference: the reference checks that `CNI_NETNS` is not the plugin's own
//! namespace (code 8) *after* ADD or DEL has already run; we check before, so a refused call has
//! no side effects. `CNI_NETNS_OVERRIDE=1` (or `true`) skips the check, as in the reference.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use cni_types::{
    CniArgs, CniResult, Error, ErrorCode, NetConf, Version, VersionInfo, args::ArgsError, validate,
};

use crate::command::Command;
use crate::env::{Env, split_path};
use crate::limit::{READ_LIMIT, read_capped};

/// What a plugin verb receives.
#[derive(Clone, Debug)]
pub struct Request {
    /// The verb.
    pub command: Command,
    /// `CNI_CONTAINERID` (empty for GC and STATUS).
    pub container_id: String,
    /// `CNI_NETNS`, `None` when unset or empty.
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME` (empty for GC and STATUS).
    pub ifname: String,
    /// Raw `CNI_ARGS`.
    pub args: String,
    /// `CNI_PATH` split on `:`.
    pub path: Vec<PathBuf>,
    /// The config bytes as received.
    pub stdin: Vec<u8>,
    /// The generic parse of `stdin`.
    pub config: NetConf,
    /// The whole environment, for delegation.
    pub env: Env,
}

impl Request {
    /// Parse `CNI_ARGS`.
    pub fn cni_args(&self) -> Result<CniArgs, ArgsError> {
        CniArgs::parse(&self.args)
    }

    /// The config's version (0.1.0 when it names none).
    pub fn version(&self) -> Version {
        self.config.version()
    }

    /// A request for tests and in-process callers: env and stdin as a runtime would send them.
    /// Runs the same validation as [`run`] but does not call a plugin.
    pub fn from_env(env: &Env, stdin: &[u8]) -> Result<Request, Error> {
        let mut reader = stdin;
        let mut req = read_request(env, &mut reader)?.ok_or_else(|| {
            Error::msg(
                ErrorCode::InvalidEnvironmentVariables,
                "required env variables [CNI_COMMAND] missing",
            )
        })?;
        if req.command != Command::Version {
            parse_config(&mut req)?;
        }
        Ok(req)
    }
}

/// A CNI plugin. Verbs return the spec's [`Error`]; the skel prints it.
pub trait Plugin {
    /// ADD: the result is printed converted to the config's version.
    fn add(&self, req: &Request) -> Result<CniResult, Error>;
    /// DEL: must be idempotent and best-effort.
    fn del(&self, req: &Request) -> Result<(), Error>;
    /// CHECK (0.4.0). Defaults to success.
    fn check(&self, _req: &Request) -> Result<(), Error> {
        Ok(())
    }
    /// GC (1.1.0). Defaults to success, as the reference skel does for plugins without GC.
    fn gc(&self, _req: &Request) -> Result<(), Error> {
        Ok(())
    }
    /// STATUS (1.1.0). Defaults to success (ready).
    fn status(&self, _req: &Request) -> Result<(), Error> {
        Ok(())
    }
    /// The spec versions this plugin accepts. Defaults to all of them.
    fn supported_versions(&self) -> Vec<Version> {
        Version::ALL.to_vec()
    }
    /// Printed on stderr when the plugin runs without `CNI_COMMAND`, e.g.
    /// `CNI bridge plugin v0.1.0`.
    fn about(&self) -> String {
        String::new()
    }
}

const VARS: [&str; 7] = [
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_ARGS",
    "CNI_PATH",
    "CNI_NETNS_OVERRIDE",
];

fn required(var: &str, cmd: &str) -> bool {
    match var {
        "CNI_COMMAND" => true,
        "CNI_CONTAINERID" | "CNI_IFNAME" => matches!(cmd, "ADD" | "CHECK" | "DEL"),
        "CNI_NETNS" => matches!(cmd, "ADD" | "CHECK"),
        "CNI_PATH" => matches!(cmd, "ADD" | "CHECK" | "DEL" | "GC" | "STATUS"),
        _ => false,
    }
}

/// The request, or `Ok(None)` when `CNI_COMMAND` is missing altogether (the about case).
fn read_request(env: &Env, stdin: &mut dyn Read) -> Result<Option<Request>, Error> {
    let cmd_str = env.get_or_empty("CNI_COMMAND").to_string();
    let mut missing = Vec::new();
    for var in VARS {
        let val = env.get_or_empty(var);
        if val.is_empty() {
            if required(var, &cmd_str) {
                missing.push(var);
            }
        } else if required(var, &cmd_str) {
            match var {
                "CNI_CONTAINERID" => validate::validate_container_id(val)?,
                "CNI_IFNAME" => validate::validate_interface_name(val)?,
                _ => {}
            }
        }
    }
    if !missing.is_empty() {
        let err = Error::msg(
            ErrorCode::InvalidEnvironmentVariables,
            format!("required env variables [{}] missing", missing.join(",")),
        );
        if cmd_str.is_empty() {
            return Ok(None);
        }
        return Err(err);
    }
    let mut data = Vec::new();
    if cmd_str != "VERSION" {
        data = read_capped(stdin, READ_LIMIT).map_err(|e| {
            Error::msg(
                ErrorCode::IoFailure,
                format!("error reading from stdin: {e}"),
            )
        })?;
        validate_config(&data)?;
    }
    let command = match cmd_str.parse::<Command>() {
        Ok(c) => c,
        Err(e) => {
            return Err(Error::msg(
                ErrorCode::InvalidEnvironmentVariables,
                e.to_string(),
            ));
        }
    };
    let netns = env.get_or_empty("CNI_NETNS");
    Ok(Some(Request {
        command,
        container_id: env.get_or_empty("CNI_CONTAINERID").to_string(),
        netns: (!netns.is_empty()).then(|| PathBuf::from(netns)),
        ifname: env.get_or_empty("CNI_IFNAME").to_string(),
        args: env.get_or_empty("CNI_ARGS").to_string(),
        path: split_path(env.get_or_empty("CNI_PATH")),
        stdin: data,
        config: NetConf::default(),
        env: env.clone(),
    }))
}

/// The generic parse of the config, once its version has been accepted.
fn parse_config(req: &mut Request) -> Result<(), Error> {
    req.config = NetConf::from_slice(&req.stdin).map_err(|e| {
        Error::msg(
            ErrorCode::DecodingFailure,
            format!("error unmarshall network config: {e}"),
        )
    })?;
    Ok(())
}

/// The config as a JSON object. Go's decoder refuses anything else for a struct; serde's
/// derived structs would also accept an array (`["net"]` read as `{"name": "net"}`).
fn config_object(
    data: &[u8],
    what: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    let value: serde_json::Value = serde_json::from_slice(data)
        .map_err(|e| Error::msg(ErrorCode::DecodingFailure, format!("{what}: {e}")))?;
    match value {
        serde_json::Value::Object(m) => Ok(m),
        // Go leaves a struct untouched when decoding `null` into it.
        serde_json::Value::Null => Ok(serde_json::Map::new()),
        other => Err(Error::msg(
            ErrorCode::DecodingFailure,
            format!(
                "{what}: json: cannot unmarshal {} into Go value of type struct",
                json_kind(&other)
            ),
        )),
    }
}

fn validate_config(data: &[u8]) -> Result<(), Error> {
    let mut conf = config_object(data, "error unmarshall network config")?;
    let name = match conf.remove("name").unwrap_or_default() {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s,
        other => {
            return Err(Error::msg(
                ErrorCode::DecodingFailure,
                format!(
                    "error unmarshall network config: json: cannot unmarshal {} into Go struct field .name of type string",
                    json_kind(&other)
                ),
            ));
        }
    };
    validate::validate_network_name(&name)
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Null => "null",
    }
}

/// The raw `cniVersion` string of a config, as the reference's `DecodeVersion` (absent or
/// empty: `0.1.0`).
pub fn decode_version(data: &[u8]) -> Result<String, Error> {
    let what = "decoding version from network config";
    let mut conf = config_object(data, what)?;
    match conf.remove("cniVersion") {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s),
        None | Some(serde_json::Value::Null) | Some(serde_json::Value::String(_)) => {
            Ok(Version::V0_1_0.to_string())
        }
        Some(other) => Err(Error::msg(
            ErrorCode::DecodingFailure,
            format!(
                "{what}: json: cannot unmarshal {} into Go struct field .cniVersion of type string",
                json_kind(&other)
            ),
        )),
    }
}

fn go_quote_versions(vs: &[Version]) -> String {
    let q: Vec<String> = vs.iter().map(|v| format!("\"{v}\"")).collect();
    format!("[{}]", q.join(" "))
}

/// The version reconciliation of the reference: the config's version string must be one the
/// plugin supports, compared as strings.
fn reconcile(raw: &str, supported: &[Version]) -> Result<(), Error> {
    if supported.iter().any(|v| v.to_string() == raw) {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::IncompatibleCniVersion,
        "incompatible CNI versions",
        format!(
            "config is \"{raw}\", plugin supports {}",
            go_quote_versions(supported)
        ),
    ))
}

/// The floor a verb needs (CHECK 0.4.0, GC and STATUS 1.1.0) and that the plugin supports a
/// version at least as new as the config's.
fn check_floor(raw: &str, floor: Version, verb: &str, supported: &[Version]) -> Result<(), Error> {
    let v =
        Version::parse(raw).map_err(|e| Error::msg(ErrorCode::DecodingFailure, e.to_string()))?;
    if v < floor {
        return Err(Error::msg(
            ErrorCode::IncompatibleCniVersion,
            format!("config version does not allow {verb}"),
        ));
    }
    if !supported.iter().any(|p| *p >= v) {
        return Err(Error::msg(
            ErrorCode::IncompatibleCniVersion,
            format!("plugin version does not allow {verb}"),
        ));
    }
    Ok(())
}

/// Whether `path` is the calling thread's own network namespace. A path that cannot be
/// opened is not (the plugin reports its own error for it).
fn is_own_netns(path: &Path) -> bool {
    let (Ok(target), Ok(own)) = (
        std::fs::metadata(path),
        std::fs::metadata("/proc/thread-self/ns/net"),
    ) else {
        return false;
    };
    target.dev() == own.dev() && target.ino() == own.ino()
}

fn netns_override(env: &Env) -> bool {
    let v = env.get_or_empty("CNI_NETNS_OVERRIDE");
    v == "1" || v.eq_ignore_ascii_case("true")
}

fn check_netns(req: &Request) -> Result<(), Error> {
    if netns_override(&req.env) {
        return Ok(());
    }
    if let Some(ns) = &req.netns
        && is_own_netns(ns)
    {
        return Err(Error::msg(
            ErrorCode::InvalidNetNs,
            "plugin's netns and netns from CNI_NETNS should not be the same",
        ));
    }
    Ok(())
}

/// Validate, dispatch and print. Returns `Ok(())` when nothing is to be printed as an error.
fn dispatch(
    plugin: &dyn Plugin,
    env: &Env,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<(), Error> {
    let supported = plugin.supported_versions();
    let mut req = match read_request(env, stdin)? {
        None => {
            let about = plugin.about();
            if about.is_empty() {
                return Err(Error::msg(
                    ErrorCode::InvalidEnvironmentVariables,
                    "required env variables [CNI_COMMAND] missing",
                ));
            }
            let versions: Vec<String> = supported.iter().map(ToString::to_string).collect();
            let _ = writeln!(stderr, "{about}");
            let _ = writeln!(
                stderr,
                "CNI protocol versions supported: {}",
                versions.join(", ")
            );
            return Ok(());
        }
        Some(r) => r,
    };
    let io_err = |e: std::io::Error| Error::msg(ErrorCode::IoFailure, e.to_string());
    match req.command {
        Command::Version => {
            let info = VersionInfo {
                cni_version: Version::CURRENT,
                supported_versions: supported,
            };
            let mut s = serde_json::to_string(&info).map_err(|e| Error::internal(e.to_string()))?;
            s.push('\n');
            stdout.write_all(s.as_bytes()).map_err(io_err)?;
        }
        Command::Add => {
            let raw = decode_version(&req.stdin)?;
            reconcile(&raw, &supported)?;
            parse_config(&mut req)?;
            check_netns(&req)?;
            let result = plugin.add(&req)?;
            let text = result.to_json_pretty(req.version())?;
            stdout.write_all(text.as_bytes()).map_err(io_err)?;
        }
        Command::Del => {
            let raw = decode_version(&req.stdin)?;
            reconcile(&raw, &supported)?;
            parse_config(&mut req)?;
            check_netns(&req)?;
            plugin.del(&req)?;
        }
        Command::Check => {
            let raw = decode_version(&req.stdin)?;
            check_floor(&raw, Version::V0_4_0, "CHECK", &supported)?;
            reconcile(&raw, &supported)?;
            parse_config(&mut req)?;
            plugin.check(&req)?;
        }
        Command::Gc => {
            let raw = decode_version(&req.stdin)?;
            check_floor(&raw, Version::V1_1_0, "GC", &supported)?;
            reconcile(&raw, &supported)?;
            parse_config(&mut req)?;
            plugin.gc(&req)?;
        }
        Command::Status => {
            let raw = decode_version(&req.stdin)?;
            check_floor(&raw, Version::V1_1_0, "STATUS", &supported)?;
            reconcile(&raw, &supported)?;
            parse_config(&mut req)?;
            plugin.status(&req)?;
        }
    }
    Ok(())
}

/// The one entry point. Environment, stdin, stdout and stderr are injected; returns the exit
/// code: 0 on success, 1 after printing the error JSON on stdout.
pub fn run(
    plugin: &dyn Plugin,
    env: &Env,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    match dispatch(plugin, env, stdin, stdout, stderr) {
        Ok(()) => {
            let _ = stdout.flush();
            0
        }
        Err(e) => {
            let _ = stdout.write_all(e.to_json_pretty().as_bytes());
            let _ = stdout.flush();
            1
        }
    }
}

/// For a binary's `main`: the real environment and stdio.
pub fn main(plugin: &dyn Plugin) -> std::process::ExitCode {
    let env = Env::from_os();
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let code = run(
        plugin,
        &env,
        &mut stdin.lock(),
        &mut stdout.lock(),
        &mut stderr.lock(),
    );
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_must_be_a_json_object() {
        // serde's derived structs read `["net"]` as `{"name":"net"}`; Go refuses it (code 6).
        for bad in [&br#"["hardnet"]"#[..], b"\"net\"", b"42", b"true"] {
            let e = validate_config(bad).unwrap_err();
            assert_eq!(e.code(), 6, "{}", String::from_utf8_lossy(bad));
            let e = decode_version(bad).unwrap_err();
            assert_eq!(e.code(), 6, "{}", String::from_utf8_lossy(bad));
        }
        // `null` decodes as an empty struct in Go: no name (7), version 0.1.0.
        assert_eq!(validate_config(b"null").unwrap_err().code(), 7);
        assert_eq!(decode_version(b"null").unwrap(), "0.1.0");
        assert_eq!(decode_version(br#"{"cniVersion":""}"#).unwrap(), "0.1.0");
        assert_eq!(
            decode_version(br#"{"cniVersion":1}"#).unwrap_err().code(),
            6
        );
        assert!(validate_config(br#"{"name":"net"}"#).is_ok());
        assert_eq!(validate_config(br#"{"name":5}"#).unwrap_err().code(), 6);
    }
}
