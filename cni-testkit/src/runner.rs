//! Running a plugin binary as a runtime would: `CNI_*` variables, the config on stdin, and a
//! typed result or a typed error back.
//!
//! Plugins such as bridge change the namespace they run in (they create the bridge, firewall
//! rules and sysctls there), so a test runs them **inside a "node" namespace**
//! ([`PluginRunner::in_netns`]), with `CNI_NETNS` pointing at a "pod" namespace — never in the
//! machine's own namespace.
//!
//! ```no_run
//! use cni_testkit::{Attachment, PluginRunner, TempNetns, bins};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let node = TempNetns::new("node")?;
//! let pod = TempNetns::new("pod")?;
//! let data = cni_testkit::TempDir::new("ipam")?;
//! let runner = PluginRunner::new(bins::our_plugin("host-local")?).in_netns(&node)?;
//! let conf = json!({"cniVersion": "1.0.0", "name": "net", "type": "bridge",
//!     "ipam": {"type": "host-local", "subnet": "10.1.0.0/24", "dataDir": data.path()}});
//! let att = Attachment::new("c1", pod.path(), "eth0");
//! let res = runner.add(&conf, &att)?;
//! assert_eq!(res.ips[0].address.to_string(), "10.1.0.2/24");
//! runner.del(&conf, &att)?;
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cni_linux::netns::NetNs;
use cni_types::{CniResult, Version, VersionInfo};
use serde_json::Value;

use crate::error::Error;
use crate::netns::TempNetns;
use crate::process::{self, Output};

/// Default time a plugin may take for one verb.
pub const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// A config to send on stdin: JSON values, strings and bytes, or a parsed `NetConf`.
pub trait ConfInput {
    /// The bytes sent on stdin.
    fn conf_bytes(&self) -> Vec<u8>;
}

impl ConfInput for Value {
    fn conf_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl ConfInput for str {
    fn conf_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl ConfInput for String {
    fn conf_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl ConfInput for [u8] {
    fn conf_bytes(&self) -> Vec<u8> {
        self.to_vec()
    }
}

impl ConfInput for Vec<u8> {
    fn conf_bytes(&self) -> Vec<u8> {
        self.clone()
    }
}

impl ConfInput for cni_types::NetConf {
    fn conf_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl<T: ConfInput + ?Sized> ConfInput for &T {
    fn conf_bytes(&self) -> Vec<u8> {
        (**self).conf_bytes()
    }
}

/// What identifies one attachment: `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`, `CNI_ARGS`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attachment {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`; `None` sends it empty.
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// `CNI_ARGS`, raw (`K=V;K=V`).
    pub args: String,
}

impl Attachment {
    /// Container `container_id` in the namespace at `netns` as `ifname`.
    pub fn new(
        container_id: impl Into<String>,
        netns: impl AsRef<Path>,
        ifname: impl Into<String>,
    ) -> Self {
        Attachment {
            container_id: container_id.into(),
            netns: Some(netns.as_ref().to_path_buf()),
            ifname: ifname.into(),
            args: String::new(),
        }
    }

    /// Set `CNI_ARGS`.
    pub fn with_args(mut self, args: impl Into<String>) -> Self {
        self.args = args.into();
        self
    }

    /// The same attachment with an empty `CNI_NETNS` (a DEL after the namespace is gone).
    pub fn without_netns(&self) -> Self {
        Attachment {
            netns: None,
            ..self.clone()
        }
    }

    /// The `CNI_*` variables of this attachment.
    pub fn env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert("CNI_CONTAINERID".into(), self.container_id.clone());
        env.insert(
            "CNI_NETNS".into(),
            self.netns
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        );
        env.insert("CNI_IFNAME".into(), self.ifname.clone());
        env.insert("CNI_ARGS".into(), self.args.clone());
        env
    }
}

/// One raw call: the verb, the environment on top of the runner's, stdin.
#[derive(Clone, Debug, Default)]
pub struct Invocation {
    /// `CNI_COMMAND`; any string, so unknown verbs can be sent.
    pub command: String,
    /// Variables to set (they override the runner's).
    pub env: BTreeMap<String, String>,
    /// Variables to remove from what the runner would send.
    pub unset: Vec<String>,
    /// The bytes on stdin.
    pub stdin: Vec<u8>,
}

impl Invocation {
    /// `command` with `conf` on stdin and the attachment's variables, if any.
    pub fn new(command: &str, conf: &(impl ConfInput + ?Sized), att: Option<&Attachment>) -> Self {
        Invocation {
            command: command.to_string(),
            env: att.map(Attachment::env).unwrap_or_default(),
            unset: Vec::new(),
            stdin: conf.conf_bytes(),
        }
    }

    /// Set a variable.
    pub fn set(mut self, k: &str, v: &str) -> Self {
        self.env.insert(k.to_string(), v.to_string());
        self
    }

    /// Do not send a variable at all.
    pub fn unset(mut self, k: &str) -> Self {
        self.env.remove(k);
        self.unset.push(k.to_string());
        self
    }
}

/// A plugin call that did not succeed.
///
/// The `reason` of [`PluginError::Malformed`] and [`PluginError::BadOutput`] is a verdict on
/// what the plugin printed (a missing `code`, or why the JSON did not parse), followed in the
/// message by the output itself, the evidence; it is kept as text, not as a source, so the
/// verdict reads before the output rather than after it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The plugin exited non-zero and printed the spec's error JSON.
    #[error("plugin failed with code {}: {error}", error.code())]
    Failed {
        /// The parsed error.
        error: cni_types::Error,
        /// What it printed and its exit status.
        output: Output,
    },
    /// The plugin exited non-zero without a parseable error on stdout.
    #[error("plugin exited with {} without a valid error on stdout ({reason}); stdout: {:?}; stderr: {:?}", output.status, output.stdout_text(), output.stderr_text())]
    Malformed {
        /// What it printed and its exit status.
        output: Output,
        /// Why the error could not be read.
        reason: String,
    },
    /// The plugin exited 0 but what it printed is not what the verb must print.
    #[error("plugin succeeded but printed an invalid answer ({reason}); stdout: {:?}", output.stdout_text())]
    BadOutput {
        /// What it printed.
        output: Output,
        /// Why it is not acceptable.
        reason: String,
    },
    /// The plugin could not be run or did not finish in time.
    #[error("running the plugin")]
    Run(#[from] Error),
}

impl PluginError {
    /// The plugin's error, when it printed one.
    pub fn cni_error(&self) -> Option<&cni_types::Error> {
        match self {
            PluginError::Failed { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The plugin's error code, when it printed one.
    pub fn code(&self) -> Option<u32> {
        self.cni_error().map(cni_types::Error::code)
    }

    /// The plugin's raw output, when it ran to completion.
    pub fn output(&self) -> Option<&Output> {
        match self {
            PluginError::Failed { output, .. }
            | PluginError::Malformed { output, .. }
            | PluginError::BadOutput { output, .. } => Some(output),
            PluginError::Run(_) => None,
        }
    }
}

/// Parse a failed call's stdout as the spec's error: a JSON object with a numeric `code`
/// and a string `msg` (`details` optional).
pub fn parse_error(output: Output) -> PluginError {
    let reason = match serde_json::from_slice::<Value>(&output.stdout) {
        Err(e) => format!("stdout is not JSON: {e}"),
        Ok(v) => {
            let code_ok = v.get("code").is_some_and(Value::is_u64);
            let msg_ok = v.get("msg").is_some_and(Value::is_string);
            let details_ok = v.get("details").is_none_or(Value::is_string);
            if !code_ok {
                "no numeric \"code\"".to_string()
            } else if !msg_ok {
                "no string \"msg\"".to_string()
            } else if !details_ok {
                "\"details\" is not a string".to_string()
            } else {
                match serde_json::from_value::<cni_types::Error>(v) {
                    Ok(error) => return PluginError::Failed { error, output },
                    Err(e) => e.to_string(),
                }
            }
        }
    };
    PluginError::Malformed { output, reason }
}

/// Runs one plugin binary, optionally inside a namespace. Cheap to clone.
#[derive(Debug)]
pub struct PluginRunner {
    binary: PathBuf,
    netns: Option<NetNs>,
    cni_path: Vec<PathBuf>,
    env: BTreeMap<String, String>,
    timeout: Duration,
}

impl Clone for PluginRunner {
    fn clone(&self) -> Self {
        PluginRunner {
            binary: self.binary.clone(),
            netns: self.netns.as_ref().and_then(|n| n.try_clone().ok()),
            cni_path: self.cni_path.clone(),
            env: self.env.clone(),
            timeout: self.timeout,
        }
    }
}

impl PluginRunner {
    /// Run the binary at `binary`. By default it runs in the caller's namespace, with
    /// `CNI_PATH` set to the binary's own directory and `PATH` inherited.
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        let binary = binary.into();
        let cni_path = binary.parent().map(Path::to_path_buf).into_iter().collect();
        let mut env = BTreeMap::new();
        env.insert(
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
        );
        PluginRunner {
            binary,
            netns: None,
            cni_path,
            env,
            timeout: PLUGIN_TIMEOUT,
        }
    }

    /// Run the plugin inside `node` (as a node's runtime would run it).
    pub fn in_netns(self, node: &TempNetns) -> Result<Self, Error> {
        self.in_netns_handle(node.netns())
    }

    /// Run the plugin inside the namespace `ns`.
    pub fn in_netns_handle(mut self, ns: &NetNs) -> Result<Self, Error> {
        self.netns = Some(ns.try_clone()?);
        Ok(self)
    }

    /// Directories for `CNI_PATH` (where delegated plugins are found).
    pub fn cni_path<P: AsRef<Path>>(mut self, dirs: impl IntoIterator<Item = P>) -> Self {
        self.cni_path = dirs.into_iter().map(|p| p.as_ref().to_path_buf()).collect();
        self
    }

    /// An extra environment variable for every call.
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.insert(k.into(), v.into());
        self
    }

    /// How long one call may take (default [`PLUGIN_TIMEOUT`]).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// The binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The `CNI_PATH` value sent.
    pub fn cni_path_value(&self) -> String {
        let parts: Vec<String> = self
            .cni_path
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        parts.join(":")
    }

    /// Run one raw call and return what the plugin printed, whatever its exit status.
    pub fn invoke(&self, inv: &Invocation) -> Result<Output, Error> {
        let mut cmd = Command::new(&self.binary);
        cmd.env_clear();
        let mut env = self.env.clone();
        env.insert("CNI_COMMAND".into(), inv.command.clone());
        env.insert("CNI_PATH".into(), self.cni_path_value());
        env.extend(inv.env.clone());
        for k in &inv.unset {
            env.remove(k);
        }
        cmd.envs(&env);
        process::run(&mut cmd, &inv.stdin, self.netns.as_ref(), self.timeout)
    }

    /// Run a call that prints nothing on success.
    pub fn call(&self, inv: &Invocation) -> Result<Output, PluginError> {
        let out = self.invoke(inv)?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(parse_error(out))
        }
    }

    /// ADD: the result, parsed in the shape of the config's `cniVersion`.
    pub fn add(
        &self,
        conf: &(impl ConfInput + ?Sized),
        att: &Attachment,
    ) -> Result<CniResult, PluginError> {
        let inv = Invocation::new("ADD", conf, Some(att));
        let version = conf_version(&inv.stdin);
        let out = self.call(&inv)?;
        match CniResult::from_slice(&out.stdout, Some(version)) {
            Ok(r) => Ok(r),
            Err(e) => Err(PluginError::BadOutput {
                output: out,
                reason: e.msg,
            }),
        }
    }

    /// DEL.
    pub fn del(
        &self,
        conf: &(impl ConfInput + ?Sized),
        att: &Attachment,
    ) -> Result<(), PluginError> {
        self.call(&Invocation::new("DEL", conf, Some(att)))
            .map(drop)
    }

    /// CHECK (the config should carry the ADD result as `prevResult`, see [`with_prev_result`]).
    pub fn check(
        &self,
        conf: &(impl ConfInput + ?Sized),
        att: &Attachment,
    ) -> Result<(), PluginError> {
        self.call(&Invocation::new("CHECK", conf, Some(att)))
            .map(drop)
    }

    /// GC (the config should carry `cni.dev/valid-attachments`, see [`with_valid_attachments`]).
    pub fn gc(&self, conf: &(impl ConfInput + ?Sized)) -> Result<(), PluginError> {
        self.call(&Invocation::new("GC", conf, None)).map(drop)
    }

    /// STATUS.
    pub fn status(&self, conf: &(impl ConfInput + ?Sized)) -> Result<(), PluginError> {
        self.call(&Invocation::new("STATUS", conf, None)).map(drop)
    }

    /// VERSION, with `{"cniVersion": version}` on stdin.
    pub fn version(&self, version: Version) -> Result<VersionInfo, PluginError> {
        let conf = serde_json::json!({ "cniVersion": version });
        let out = self.call(&Invocation::new("VERSION", &conf, None))?;
        match serde_json::from_slice::<VersionInfo>(&out.stdout) {
            Ok(v) => Ok(v),
            Err(e) => Err(PluginError::BadOutput {
                output: out,
                reason: e.to_string(),
            }),
        }
    }

    /// The plugin's "about" text: what it prints on stderr when run without `CNI_COMMAND`.
    pub fn about(&self) -> Result<String, Error> {
        let inv = Invocation {
            unset: vec!["CNI_COMMAND".into(), "CNI_PATH".into()],
            ..Default::default()
        };
        let mut cmd = Command::new(&self.binary);
        cmd.env_clear()
            .envs(self.env.iter().filter(|(k, _)| !inv.unset.contains(k)));
        let out = process::run(&mut cmd, b"", self.netns.as_ref(), self.timeout)?;
        Ok(out.stderr_text().trim().to_string())
    }
}

/// The `cniVersion` of a config (0.1.0 when absent or unreadable).
pub fn conf_version(conf: &[u8]) -> Version {
    serde_json::from_slice::<Value>(conf)
        .ok()
        .and_then(|v| v.get("cniVersion")?.as_str().map(str::to_string))
        .and_then(|s| Version::parse(&s).ok())
        .unwrap_or_default()
}

/// `conf` with `cniVersion` set to `version`.
pub fn with_version(conf: &Value, version: Version) -> Value {
    let mut c = conf.clone();
    if let Some(o) = c.as_object_mut() {
        o.insert("cniVersion".into(), Value::String(version.to_string()));
    }
    c
}

/// `conf` with `prevResult` set to `result` converted to the config's version.
pub fn with_prev_result(conf: &Value, result: &CniResult) -> Result<Value, cni_types::Error> {
    let version = conf_version(&conf.conf_bytes());
    let mut c = conf.clone();
    if let Some(o) = c.as_object_mut() {
        o.insert("prevResult".into(), result.to_value(version)?);
    }
    Ok(c)
}

/// `conf` with GC's `cni.dev/valid-attachments` (and libcni's misspelled twin).
pub fn with_valid_attachments(conf: &Value, valid: &[cni_types::Attachment]) -> Value {
    let list = serde_json::to_value(valid).unwrap_or_default();
    let mut c = conf.clone();
    if let Some(o) = c.as_object_mut() {
        o.insert("cni.dev/valid-attachments".into(), list.clone());
        o.insert("cni.dev/attachments".into(), list);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn out(code: i32, stdout: &str) -> Output {
        Output {
            status: std::process::ExitStatus::from_raw(code << 8),
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
        }
    }

    #[test]
    fn errors_are_parsed_strictly() {
        let e = parse_error(out(1, r#"{"code":7,"msg":"bad","details":"d"}"#));
        assert_eq!(e.code(), Some(7));
        assert_eq!(e.cni_error().unwrap().details, "d");
        for bad in [
            "",
            "nope",
            r#"{"msg":"x"}"#,
            r#"{"code":"7","msg":"x"}"#,
            r#"{"code":7}"#,
        ] {
            let e = parse_error(out(1, bad));
            assert!(matches!(e, PluginError::Malformed { .. }), "{bad}: {e:?}");
            assert_eq!(e.code(), None);
        }
    }

    #[test]
    fn attachment_env_and_invocation() {
        let att = Attachment::new("c1", "/run/netns/x", "eth0").with_args("A=1");
        let inv = Invocation::new("ADD", "{}", Some(&att)).unset("CNI_IFNAME");
        assert_eq!(inv.env["CNI_NETNS"], "/run/netns/x");
        assert_eq!(inv.env["CNI_ARGS"], "A=1");
        assert!(!inv.env.contains_key("CNI_IFNAME"));
        assert_eq!(att.without_netns().env()["CNI_NETNS"], "");
    }

    #[test]
    fn config_helpers() {
        let c = serde_json::json!({"cniVersion":"0.3.1","name":"n"});
        assert_eq!(conf_version(&c.conf_bytes()), Version::V0_3_1);
        let c = with_version(&c, Version::V0_4_0);
        let r = CniResult::from_slice(
            br#"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]}"#,
            None,
        )
        .unwrap();
        let c = with_prev_result(&c, &r).unwrap();
        assert_eq!(c["prevResult"]["ips"][0]["version"], "4");
        let c = with_valid_attachments(&c, &[]);
        assert_eq!(c["cni.dev/valid-attachments"], serde_json::json!([]));
    }

    #[test]
    fn runs_a_fake_plugin_in_the_callers_namespace() {
        // A "plugin" made of sh: prints its CNI_COMMAND as an error for VERSION.
        let dir = crate::TempDir::new("tk-runner").unwrap();
        let bin = dir.join("fake");
        std::fs::write(
            &bin,
            "#!/bin/sh\ncat >/dev/null\nprintf '{\"code\":4,\"msg\":\"%s %s\"}' \"$CNI_COMMAND\" \"$CNI_IFNAME\"\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let r = PluginRunner::new(&bin);
        let att = Attachment::new("c", "/x", "eth9");
        let err = r.del(&serde_json::json!({}), &att).unwrap_err();
        assert_eq!(err.cni_error().unwrap().msg, "DEL eth9");
        let err = r.version(Version::V1_0_0).unwrap_err();
        assert_eq!(err.code(), Some(4));
    }
}
