//! The runtime driving small in-process plugins through conflists in a temp directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cni_proto::exec::InProcessExec;
use cni_proto::runtime::{CniConfig, RuntimeConf, RuntimeError, load_network_list};
use cni_proto::skel::{Plugin, Request};
use cni_proto::{Command, Env};
use cni_types::{Attachment, CniResult, Error, ErrorCode, Interface, IpConfig, NetConfList};
use serde_json::{Value, json};

type Log = Arc<Mutex<Vec<(String, Command, Value, Env)>>>;

struct Rec {
    name: &'static str,
    log: Log,
    /// The first plugin creates an interface and an address; later ones pass prevResult on.
    first: bool,
    fail_on: Option<Command>,
}

impl Rec {
    fn note(&self, req: &Request) -> Result<(), Error> {
        let v: Value = serde_json::from_slice(&req.stdin).unwrap();
        self.log
            .lock()
            .unwrap()
            .push((self.name.to_string(), req.command, v, req.env.clone()));
        if self.fail_on == Some(req.command) {
            return Err(Error::new(
                ErrorCode::Other(142),
                "injected failure",
                self.name,
            ));
        }
        Ok(())
    }
}

impl Plugin for Rec {
    fn add(&self, req: &Request) -> Result<CniResult, Error> {
        self.note(req)?;
        if self.first {
            Ok(CniResult {
                interfaces: vec![Interface {
                    name: req.ifname.clone(),
                    sandbox: req.netns.as_ref().unwrap().display().to_string(),
                    ..Default::default()
                }],
                ips: vec![IpConfig {
                    interface: Some(0),
                    address: "10.9.0.2/24".parse().unwrap(),
                    gateway: Some("10.9.0.1".parse().unwrap()),
                }],
                ..Default::default()
            })
        } else {
            Ok(req
                .config
                .prev_result()?
                .expect("chained plugin needs prevResult"))
        }
    }
    fn del(&self, req: &Request) -> Result<(), Error> {
        self.note(req)
    }
    fn check(&self, req: &Request) -> Result<(), Error> {
        self.note(req)
    }
    fn gc(&self, req: &Request) -> Result<(), Error> {
        self.note(req)
    }
    fn status(&self, req: &Request) -> Result<(), Error> {
        self.note(req)
    }
}

struct Fixture {
    dir: PathBuf,
    log: Log,
    cni: CniConfig,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fixture(tag: &str, fail: Option<(&'static str, Command)>) -> Fixture {
    let dir = std::env::temp_dir().join(format!("cni-proto-rt-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("net.d")).unwrap();
    let log: Log = Arc::default();
    let mk = |name: &'static str, first: bool| {
        Arc::new(Rec {
            name,
            log: log.clone(),
            first,
            fail_on: fail.filter(|f| f.0 == name).map(|f| f.1),
        })
    };
    let exec = InProcessExec::new()
        .with_plugin("first", mk("first", true))
        .with_plugin("second", mk("second", false))
        .with_plugin("third", mk("third", false));
    let cni = CniConfig::new(vec![PathBuf::from("/nonexistent")])
        .with_exec(Arc::new(exec))
        .with_cache_dir(dir.join("cache"))
        .with_base_env(Env::new().with("PATH", "/usr/bin"));
    Fixture { dir, log, cni }
}

fn write_list(f: &Fixture, file: &str, body: Value) -> NetConfList {
    std::fs::write(f.dir.join("net.d").join(file), body.to_string()).unwrap();
    load_network_list(&f.dir.join("net.d"), body["name"].as_str().unwrap()).unwrap()
}

fn chain(version: &str) -> Value {
    json!({
        "cniVersion": version,
        "name": "testnet",
        "plugins": [
            {"type": "first", "capabilities": {"mac": true}, "keep": {"me": 1}},
            {"type": "second", "capabilities": {"portMappings": true, "bandwidth": false}},
            {"type": "third"}
        ]
    })
}

fn rt(cid: &str) -> RuntimeConf {
    RuntimeConf::new(cid, "/var/run/netns/test", "eth0")
        .with_arg("IgnoreUnknown", "1")
        .with_arg("K8S_POD_NAME", "p")
        .with_capability(
            "portMappings",
            json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
        )
        .with_capability("bandwidth", json!({"ingressRate": 1}))
        .with_capability("mac", json!("c2:11:22:33:44:55"))
}

#[test]
fn add_threads_prev_result_and_injects_capabilities() {
    let f = fixture("add", None);
    let list = write_list(&f, "10-test.conflist", chain("1.0.0"));
    let res = f.cni.add_network_list(&list, &rt("c1")).unwrap();
    assert_eq!(res.ips[0].address.to_string(), "10.9.0.2/24");
    let log = f.log.lock().unwrap();
    let names: Vec<_> = log.iter().map(|l| (l.0.as_str(), l.1)).collect();
    assert_eq!(
        names,
        vec![
            ("first", Command::Add),
            ("second", Command::Add),
            ("third", Command::Add)
        ]
    );
    let (first, second, third) = (&log[0].2, &log[1].2, &log[2].2);
    assert_eq!(first["name"], "testnet");
    assert_eq!(first["cniVersion"], "1.0.0");
    assert_eq!(first["keep"]["me"], 1, "unknown keys pass through");
    assert!(
        first.get("prevResult").is_none(),
        "first plugin gets no prevResult"
    );
    assert_eq!(first["runtimeConfig"], json!({"mac": "c2:11:22:33:44:55"}));
    assert_eq!(second["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
    assert!(
        second["runtimeConfig"].get("bandwidth").is_none(),
        "capability false: not injected"
    );
    assert!(third.get("runtimeConfig").is_none());
    assert_eq!(second["prevResult"]["ips"][0]["address"], "10.9.0.2/24");
    assert_eq!(third["prevResult"]["interfaces"][0]["name"], "eth0");
    let env = &log[0].3;
    assert_eq!(env.get("CNI_ARGS"), Some("IgnoreUnknown=1;K8S_POD_NAME=p"));
    assert_eq!(env.get("CNI_CONTAINERID"), Some("c1"));
    assert_eq!(env.get("CNI_IFNAME"), Some("eth0"));
    assert_eq!(env.get("CNI_NETNS"), Some("/var/run/netns/test"));
    assert_eq!(env.get("CNI_PATH"), Some("/nonexistent"));
    assert_eq!(env.get("PATH"), Some("/usr/bin"));
}

#[test]
fn cache_is_cni_cache_v1_and_feeds_check_and_del() {
    let f = fixture("cache", None);
    let list = write_list(&f, "10-test.conflist", chain("1.1.0"));
    let r = rt("c2");
    f.cni.add_network_list(&list, &r).unwrap();
    let path = f.cni.cache_path("testnet", &r);
    assert_eq!(path, f.dir.join("cache/results/testnet-c2-eth0"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let cached: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(cached["kind"], "cniCacheV1");
    assert_eq!(cached["containerId"], "c2");
    assert_eq!(cached["ifName"], "eth0");
    assert_eq!(cached["networkName"], "testnet");
    assert_eq!(cached["netns"], "/var/run/netns/test");
    assert_eq!(
        cached["cniArgs"],
        json!([["IgnoreUnknown", "1"], ["K8S_POD_NAME", "p"]])
    );
    assert_eq!(cached["capabilityArgs"]["mac"], "c2:11:22:33:44:55");
    assert_eq!(cached["result"]["ips"][0]["address"], "10.9.0.2/24");
    let entry: cni_proto::runtime::CacheEntry = serde_json::from_value(cached.clone()).unwrap();
    let conf = entry.config_bytes().unwrap();
    let conf: Value = serde_json::from_slice(&conf).unwrap();
    assert_eq!(conf["name"], "testnet");

    f.cni.check_network_list(&list, &r).unwrap();
    f.cni.del_network_list(&list, &r).unwrap();
    assert!(!path.exists(), "DEL removes the cache entry");
    let log = f.log.lock().unwrap();
    let seq: Vec<_> = log.iter().map(|l| (l.0.as_str(), l.1)).collect();
    assert_eq!(
        seq[3..],
        [
            ("first", Command::Check),
            ("second", Command::Check),
            ("third", Command::Check),
            ("third", Command::Del),
            ("second", Command::Del),
            ("first", Command::Del),
        ]
    );
    for entry in &log[3..] {
        assert_eq!(
            entry.2["prevResult"]["ips"][0]["address"], "10.9.0.2/24",
            "{:?}",
            entry.1
        );
    }
    drop(log);
    // DEL again: idempotent, no cache, no prevResult.
    f.cni.del_network_list(&list, &r).unwrap();
    assert!(
        f.log
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .2
            .get("prevResult")
            .is_none()
    );
}

#[test]
fn corrupt_or_empty_cache_never_blocks_del() {
    let f = fixture("corrupt", None);
    let list = write_list(&f, "10-test.conflist", chain("1.0.0"));
    let r = rt("c3");
    for junk in [&b""[..], b"{not json", b"{\"kind\":\"cniCacheV1\",\"result\":{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"bad\"}]}}"] {
        f.cni.add_network_list(&list, &r).unwrap();
        std::fs::write(f.cni.cache_path("testnet", &r), junk).unwrap();
        f.cni.del_network_list(&list, &r).unwrap();
        assert!(!f.cni.cache_path("testnet", &r).exists());
        let log = f.log.lock().unwrap();
        let last = log.last().unwrap();
        assert_eq!((last.0.as_str(), last.1), ("first", Command::Del));
        assert!(last.2.get("prevResult").is_none());
    }
}

#[test]
fn add_stops_at_first_error_and_del_after_it_works() {
    let f = fixture("fail", Some(("second", Command::Add)));
    let list = write_list(&f, "10-test.conflist", chain("1.0.0"));
    let r = rt("c4");
    let err = f.cni.add_network_list(&list, &r).unwrap_err();
    let pe = err.plugin_error().unwrap();
    assert_eq!(pe.code.code(), 142);
    assert_eq!(err.to_string(), "plugin type=\"second\" failed (add)");
    assert_eq!(
        cni_types::error::chain_message(&err),
        "plugin type=\"second\" failed (add): injected failure; second"
    );
    assert!(
        !f.cni.cache_path("testnet", &r).exists(),
        "no cache after a failed ADD"
    );
    assert_eq!(f.log.lock().unwrap().len(), 2, "third never ran");
    f.cni.del_network_list(&list, &r).unwrap();
    assert_eq!(f.log.lock().unwrap().len(), 5);
}

#[test]
fn check_rules() {
    let f = fixture("check", None);
    let list = write_list(&f, "10-test.conflist", chain("0.3.1"));
    assert!(matches!(
        f.cni.check_network_list(&list, &rt("c5")),
        Err(RuntimeError::CheckNotSupported(_))
    ));
    let mut body = chain("1.0.0");
    body["name"] = json!("testnet2");
    body["disableCheck"] = json!("true");
    let list2 = write_list(&f, "20-test.conflist", body);
    assert!(list2.disable_check);
    f.cni.check_network_list(&list2, &rt("c5")).unwrap();
    let mut body = chain("1.0.0");
    body["name"] = json!("testnet3");
    let list3 = write_list(&f, "30-test.conflist", body);
    assert!(matches!(
        f.cni.check_network_list(&list3, &rt("nocache")),
        Err(RuntimeError::NoCachedResult(_))
    ));
    assert!(f.log.lock().unwrap().is_empty());
}

#[test]
fn gc_deletes_stale_attachments_then_sends_gc() {
    let f = fixture("gc", None);
    let list = write_list(&f, "10-test.conflist", chain("1.1.0"));
    for cid in ["keep", "stale1", "stale2"] {
        f.cni.add_network_list(&list, &rt(cid)).unwrap();
    }
    assert_eq!(f.cni.cached_attachments(None).len(), 3);
    f.log.lock().unwrap().clear();
    let valid = vec![Attachment {
        container_id: "keep".into(),
        ifname: "eth0".into(),
    }];
    f.cni.gc_network_list(&list, &valid).unwrap();
    let log = f.log.lock().unwrap();
    let dels: Vec<_> = log
        .iter()
        .filter(|l| l.1 == Command::Del && l.0 == "first")
        .map(|l| l.3.get("CNI_CONTAINERID").unwrap().to_string())
        .collect();
    assert_eq!(dels, vec!["stale1", "stale2"]);
    let del = log.iter().find(|l| l.1 == Command::Del).unwrap();
    assert_eq!(
        del.2["prevResult"]["ips"][0]["address"], "10.9.0.2/24",
        "GC's DEL uses the cache"
    );
    assert_eq!(
        del.3.get("CNI_ARGS"),
        Some("IgnoreUnknown=1;K8S_POD_NAME=p")
    );
    let gcs: Vec<_> = log.iter().filter(|l| l.1 == Command::Gc).collect();
    assert_eq!(gcs.len(), 3);
    for g in &gcs {
        assert_eq!(
            g.2["cni.dev/valid-attachments"],
            json!([{"containerID": "keep", "ifname": "eth0"}])
        );
        assert_eq!(g.2["cni.dev/attachments"], g.2["cni.dev/valid-attachments"]);
        assert_eq!(g.3.get("CNI_CONTAINERID"), Some(""));
    }
    let left: Vec<_> = f
        .cni
        .cached_attachments(None)
        .into_iter()
        .map(|a| a.container_id)
        .collect();
    assert_eq!(left, vec!["keep"]);
}

#[test]
fn gc_before_1_1_only_deletes_and_disable_gc_does_nothing() {
    let f = fixture("gc-old", None);
    let list = write_list(&f, "10-test.conflist", chain("1.0.0"));
    f.cni.add_network_list(&list, &rt("old")).unwrap();
    f.log.lock().unwrap().clear();
    f.cni.gc_network_list(&list, &[]).unwrap();
    assert!(f.log.lock().unwrap().iter().all(|l| l.1 == Command::Del));
    assert_eq!(f.log.lock().unwrap().len(), 3);
    let mut body = chain("1.1.0");
    body["name"] = json!("nogc");
    body["disableGC"] = json!(true);
    let list = write_list(&f, "20-nogc.conflist", body);
    f.cni.add_network_list(&list, &rt("x")).unwrap();
    f.log.lock().unwrap().clear();
    f.cni.gc_network_list(&list, &[]).unwrap();
    assert!(f.log.lock().unwrap().is_empty());
}

#[test]
fn status_asks_every_plugin_from_1_1() {
    let f = fixture("status", Some(("third", Command::Status)));
    let list = write_list(&f, "10-test.conflist", chain("1.1.0"));
    let err = f.cni.status_network_list(&list).unwrap_err();
    assert_eq!(err.plugin_error().unwrap().code.code(), 142);
    assert_eq!(f.log.lock().unwrap().len(), 3);
    let old = write_list(&f, "20-old.conflist", {
        let mut b = chain("1.0.0");
        b["name"] = json!("old");
        b
    });
    f.cni.status_network_list(&old).unwrap();
    assert_eq!(f.log.lock().unwrap().len(), 3, "no STATUS before 1.1.0");
}

#[test]
fn loading_by_name() {
    let f = fixture("load", None);
    let d = f.dir.join("net.d");
    std::fs::write(d.join("00-broken.conflist"), "{").unwrap();
    std::fs::write(d.join("10-a.conflist"), chain("1.0.0").to_string()).unwrap();
    std::fs::write(
        d.join("20-single.conf"),
        json!({"cniVersion": "0.4.0", "name": "single", "type": "first"}).to_string(),
    )
    .unwrap();
    let l = load_network_list(&d, "testnet").unwrap();
    assert_eq!(l.plugin_types(), vec!["first", "second", "third"]);
    let s = load_network_list(&d, "single").unwrap();
    assert_eq!(s.plugin_types(), vec!["first"]);
    assert_eq!(s.effective_version().to_string(), "0.4.0");
    assert!(matches!(
        load_network_list(&d, "nope"),
        Err(RuntimeError::NotFound { .. })
    ));
    // Plugins from <dir>/<name>/*.conf are appended unless loadOnlyInlinedPlugins.
    std::fs::create_dir(d.join("testnet")).unwrap();
    std::fs::write(
        d.join("testnet/50-extra.conf"),
        json!({"type": "extra"}).to_string(),
    )
    .unwrap();
    let l = load_network_list(&d, "testnet").unwrap();
    assert_eq!(l.plugin_types(), vec!["first", "second", "third", "extra"]);
    let mut inl = chain("1.1.0");
    inl["loadOnlyInlinedPlugins"] = json!(true);
    std::fs::write(d.join("10-a.conflist"), inl.to_string()).unwrap();
    assert_eq!(load_network_list(&d, "testnet").unwrap().plugins.len(), 3);
}

#[test]
fn invalid_runtime_conf_is_refused_before_any_plugin() {
    let f = fixture("invalid", None);
    let list = write_list(&f, "10-test.conflist", chain("1.0.0"));
    let mut r = rt("../../etc");
    assert!(matches!(
        f.cni.add_network_list(&list, &r),
        Err(RuntimeError::Invalid(_))
    ));
    r.container_id = "ok".into();
    r.ifname = "this-name-is-too-long".into();
    assert!(matches!(
        f.cni.add_network_list(&list, &r),
        Err(RuntimeError::Invalid(_))
    ));
    assert!(f.log.lock().unwrap().is_empty());
}
