//! Every rule of the skel, with injected environment and stdio.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;

use cni_proto::skel::{self, Plugin, Request};
use cni_proto::{Command, Env};
use cni_types::{CniResult, Error, ErrorCode, IpConfig, Version};

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(Command, String, String)>>,
    fail: Option<Error>,
    versions: Option<Vec<Version>>,
    about: String,
}

impl Recorder {
    fn record(&self, req: &Request) -> Result<(), Error> {
        self.calls.lock().unwrap().push((
            req.command,
            req.container_id.clone(),
            req.ifname.clone(),
        ));
        match &self.fail {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
    fn calls(&self) -> Vec<Command> {
        self.calls.lock().unwrap().iter().map(|c| c.0).collect()
    }
}

impl Plugin for Recorder {
    fn add(&self, req: &Request) -> Result<CniResult, Error> {
        self.record(req)?;
        Ok(CniResult {
            ips: vec![IpConfig {
                interface: None,
                address: "10.1.2.3/24".parse().unwrap(),
                gateway: Some("10.1.2.1".parse().unwrap()),
            }],
            ..Default::default()
        })
    }
    fn del(&self, req: &Request) -> Result<(), Error> {
        self.record(req)
    }
    fn check(&self, req: &Request) -> Result<(), Error> {
        self.record(req)
    }
    fn gc(&self, req: &Request) -> Result<(), Error> {
        self.record(req)
    }
    fn status(&self, req: &Request) -> Result<(), Error> {
        self.record(req)
    }
    fn supported_versions(&self) -> Vec<Version> {
        self.versions
            .clone()
            .unwrap_or_else(|| Version::ALL.to_vec())
    }
    fn about(&self) -> String {
        self.about.clone()
    }
}

fn env_for(cmd: &str) -> Env {
    Env::new()
        .with("CNI_COMMAND", cmd)
        .with("CNI_CONTAINERID", "abc123")
        .with("CNI_NETNS", "/var/run/netns/does-not-exist")
        .with("CNI_IFNAME", "eth0")
        .with("CNI_PATH", "/opt/cni/bin")
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn error(&self) -> Error {
        assert_ne!(self.code, 0, "expected failure, stdout: {}", self.stdout);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

fn run(p: &Recorder, env: &Env, stdin: &str) -> Out {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = skel::run(p, env, &mut stdin.as_bytes(), &mut out, &mut err);
    Out {
        code,
        stdout: String::from_utf8(out).unwrap(),
        stderr: String::from_utf8(err).unwrap(),
    }
}

fn conf(v: &str) -> String {
    format!(r#"{{"cniVersion":"{v}","name":"mynet","type":"rec"}}"#)
}

#[test]
fn add_prints_result_in_config_version() {
    for v in Version::ALL {
        let p = Recorder::default();
        let out = run(&p, &env_for("ADD"), &conf(&v.to_string()));
        assert_eq!(out.code, 0, "{v}: {}", out.stdout);
        let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(json["cniVersion"], v.to_string());
        match v.result_family() {
            cni_types::version::ResultFamily::V020 => {
                assert_eq!(json["ip4"]["ip"], "10.1.2.3/24")
            }
            cni_types::version::ResultFamily::V040 => {
                assert_eq!(json["ips"][0]["version"], "4")
            }
            _ => {
                assert_eq!(json["ips"][0]["address"], "10.1.2.3/24");
                assert!(json["ips"][0].get("version").is_none());
            }
        }
        assert!(out.stdout.starts_with("{\n    \""), "four-space indent");
        assert_eq!(p.calls(), vec![Command::Add]);
    }
}

#[test]
fn missing_variables_are_listed_per_verb() {
    let p = Recorder::default();
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "ADD",
            &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
            "[CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH]",
        ),
        (
            "DEL",
            &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
            "[CNI_CONTAINERID,CNI_IFNAME,CNI_PATH]",
        ),
        ("CHECK", &["CNI_NETNS"], "[CNI_NETNS]"),
        (
            "GC",
            &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
            "[CNI_PATH]",
        ),
        ("STATUS", &["CNI_PATH"], "[CNI_PATH]"),
    ];
    for (cmd, remove, listed) in cases {
        let mut env = env_for(cmd);
        for r in *remove {
            env.remove(r);
        }
        let out = run(&p, &env, &conf("1.1.0"));
        let e = out.error();
        assert_eq!(e.code, ErrorCode::InvalidEnvironmentVariables, "{cmd}");
        assert_eq!(
            e.msg,
            format!("required env variables {listed} missing"),
            "{cmd}"
        );
    }
    assert!(p.calls().is_empty(), "no verb may run");
}

#[test]
fn del_and_gc_run_without_netns_and_ids() {
    let p = Recorder::default();
    let mut env = env_for("DEL");
    env.remove("CNI_NETNS");
    assert_eq!(run(&p, &env, &conf("1.0.0")).code, 0);
    let env = Env::new()
        .with("CNI_COMMAND", "GC")
        .with("CNI_PATH", "/opt/cni/bin");
    assert_eq!(run(&p, &env, &conf("1.1.0")).code, 0);
    let env = Env::new()
        .with("CNI_COMMAND", "STATUS")
        .with("CNI_PATH", "/opt/cni/bin");
    assert_eq!(run(&p, &env, &conf("1.1.0")).code, 0);
    assert_eq!(p.calls(), vec![Command::Del, Command::Gc, Command::Status]);
}

#[test]
fn empty_value_counts_as_missing() {
    let p = Recorder::default();
    let env = env_for("ADD").with("CNI_IFNAME", "");
    assert_eq!(
        run(&p, &env, &conf("1.0.0")).error().msg,
        "required env variables [CNI_IFNAME] missing"
    );
}

#[test]
fn container_id_and_ifname_rules() {
    let p = Recorder::default();
    let e = run(
        &p,
        &env_for("ADD").with("CNI_CONTAINERID", "../etc"),
        &conf("1.0.0"),
    )
    .error();
    assert_eq!(e.code.code(), 4);
    assert_eq!(e.msg, "invalid characters in containerID");
    for bad in ["eth0/x", "a234567890123456", "..", "a b", "a:b"] {
        let e = run(&p, &env_for("ADD").with("CNI_IFNAME", bad), &conf("1.0.0")).error();
        assert_eq!(e.code.code(), 4, "{bad}");
    }
    assert!(p.calls().is_empty());
}

#[test]
fn stdin_must_be_json_with_a_valid_name() {
    let p = Recorder::default();
    let e = run(&p, &env_for("ADD"), "not json").error();
    assert_eq!(e.code.code(), 6);
    assert!(
        e.msg.starts_with("error unmarshall network config"),
        "{}",
        e.msg
    );
    let e = run(&p, &env_for("ADD"), "").error();
    assert_eq!(e.code.code(), 6);
    let e = run(&p, &env_for("ADD"), r#"{"cniVersion":"1.0.0"}"#).error();
    assert_eq!(e.code.code(), 7);
    assert_eq!(e.msg, "missing network name");
    let e = run(
        &p,
        &env_for("ADD"),
        r#"{"cniVersion":"1.0.0","name":"a/b"}"#,
    )
    .error();
    assert_eq!(e.code.code(), 7);
    assert_eq!(e.details, "a/b");
    let e = run(&p, &env_for("DEL"), r#"{"cniVersion":"1.0.0","name":1}"#).error();
    assert_eq!(e.code.code(), 6);
    assert!(p.calls().is_empty());
}

#[test]
fn unsupported_version_is_code_1_with_reference_details() {
    let p = Recorder {
        versions: Some(vec![Version::V0_4_0, Version::V1_0_0]),
        ..Default::default()
    };
    let e = run(&p, &env_for("ADD"), &conf("0.3.1")).error();
    assert_eq!(e.code, ErrorCode::IncompatibleCniVersion);
    assert_eq!(e.msg, "incompatible CNI versions");
    assert_eq!(
        e.details,
        r#"config is "0.3.1", plugin supports ["0.4.0" "1.0.0"]"#
    );
    let e = run(&p, &env_for("DEL"), &conf("9.9.9")).error();
    assert_eq!(e.code.code(), 1);
    let e = run(&p, &env_for("ADD"), &conf("banana")).error();
    assert_eq!(
        e.code.code(),
        1,
        "ADD compares version strings like the reference"
    );
    let e = run(&p, &env_for("ADD"), r#"{"name":"mynet"}"#).error();
    assert_eq!(
        e.details,
        r#"config is "0.1.0", plugin supports ["0.4.0" "1.0.0"]"#
    );
    assert!(p.calls().is_empty());
}

#[test]
fn verbs_need_their_spec_version() {
    let p = Recorder::default();
    for (cmd, too_old, ok) in [
        ("CHECK", "0.3.1", "0.4.0"),
        ("GC", "1.0.0", "1.1.0"),
        ("STATUS", "1.0.0", "1.1.0"),
    ] {
        let e = run(&p, &env_for(cmd), &conf(too_old)).error();
        assert_eq!(e.code.code(), 1, "{cmd}");
        assert_eq!(e.msg, format!("config version does not allow {cmd}"));
        assert_eq!(run(&p, &env_for(cmd), &conf(ok)).code, 0, "{cmd}");
    }
    let old_plugin = Recorder {
        versions: Some(vec![Version::V0_4_0]),
        ..Default::default()
    };
    let e = run(&old_plugin, &env_for("CHECK"), &conf("1.0.0")).error();
    assert_eq!(e.msg, "plugin version does not allow CHECK");
    let e = run(&p, &env_for("CHECK"), &conf("x.y")).error();
    assert_eq!(
        e.code.code(),
        6,
        "an unparsable version on CHECK is a decoding failure"
    );
}

#[test]
fn version_ignores_stdin() {
    let p = Recorder::default();
    let env = Env::new().with("CNI_COMMAND", "VERSION");
    let out = run(&p, &env, "garbage");
    assert_eq!(out.code, 0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["cniVersion"], "1.1.0");
    assert_eq!(
        v["supportedVersions"],
        serde_json::json!([
            "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"
        ])
    );
}

#[test]
fn unknown_verb_is_code_4() {
    let p = Recorder::default();
    let e = run(&p, &env_for("FROB"), &conf("1.0.0")).error();
    assert_eq!(e.code.code(), 4);
    assert_eq!(e.msg, "unknown CNI_COMMAND: FROB");
    let e = run(&p, &env_for("add"), &conf("1.0.0")).error();
    assert_eq!(
        e.msg, "unknown CNI_COMMAND: add",
        "verbs are case-sensitive"
    );
}

#[test]
fn about_goes_to_stderr_without_a_command() {
    let p = Recorder {
        about: "CNI rec plugin v1".into(),
        ..Default::default()
    };
    let out = run(&p, &Env::new(), "");
    assert_eq!(out.code, 0);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr
            .starts_with("CNI rec plugin v1\nCNI protocol versions supported: 0.1.0, 0.2.0")
    );
    let silent = Recorder::default();
    let e = run(&silent, &Env::new(), "").error();
    assert_eq!(e.msg, "required env variables [CNI_COMMAND] missing");
}

#[test]
fn plugin_errors_pass_through_unchanged() {
    let p = Recorder {
        fail: Some(Error::new(ErrorCode::Other(123), "nope", "why")),
        ..Default::default()
    };
    let out = run(&p, &env_for("ADD"), &conf("1.0.0"));
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stdout,
        "{\n    \"code\": 123,\n    \"msg\": \"nope\",\n    \"details\": \"why\"\n}"
    );
}

#[test]
fn own_netns_is_refused_before_the_verb_runs() {
    let p = Recorder::default();
    let env = env_for("ADD").with("CNI_NETNS", "/proc/self/ns/net");
    let e = run(&p, &env, &conf("1.0.0")).error();
    assert_eq!(e.code, ErrorCode::InvalidNetNs);
    assert!(p.calls().is_empty());
    for ovr in ["1", "true", "TRUE"] {
        let env = env.clone().with("CNI_NETNS_OVERRIDE", ovr);
        assert_eq!(run(&p, &env, &conf("1.0.0")).code, 0, "{ovr}");
    }
}

#[test]
fn request_carries_everything() {
    let env = env_for("ADD")
        .with("CNI_ARGS", "IgnoreUnknown=1;IP=10.0.0.5")
        .with("CNI_PATH", "/a:/b::/c");
    let req = Request::from_env(&env, conf("0.4.0").as_bytes()).unwrap();
    assert_eq!(req.command, Command::Add);
    assert_eq!(req.path.len(), 3);
    assert_eq!(req.cni_args().unwrap().get("IP"), Some("10.0.0.5"));
    assert_eq!(req.version(), Version::V0_4_0);
    assert_eq!(req.config.name, "mynet");
    assert_eq!(
        req.netns.as_deref(),
        Some(std::path::Path::new("/var/run/netns/does-not-exist"))
    );
}

#[test]
fn conversion_failure_is_an_error_not_a_result() {
    struct NoIp;
    impl Plugin for NoIp {
        fn add(&self, _: &Request) -> Result<CniResult, Error> {
            Ok(CniResult::default())
        }
        fn del(&self, _: &Request) -> Result<(), Error> {
            Ok(())
        }
    }
    let mut out = Vec::new();
    let code = skel::run(
        &NoIp,
        &env_for("ADD"),
        &mut conf("0.2.0").as_bytes(),
        &mut out,
        &mut Vec::new(),
    );
    assert_eq!(code, 1);
    let e: Error = serde_json::from_slice(&out).unwrap();
    assert_eq!(e.msg, "cannot convert: no valid IP addresses");
    assert_eq!(e.code.code(), 999);
}
