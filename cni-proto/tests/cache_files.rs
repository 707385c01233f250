//! The result cache against a hostile or colliding cache directory: symlinks planted at the
//! names the runtime writes are never followed, an entry whose stored identity is another
//! attachment's is not used (or removed) by this one, and oversized entries are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::sync::Arc;

use cni_proto::exec::InProcessExec;
use cni_proto::runtime::{CniConfig, RuntimeConf};
use cni_proto::skel::{Plugin, Request};
use cni_types::{CniResult, Error, Interface, NetConfList};
use serde_json::json;

/// Answers ADD with one interface named after the request, so results tell attachments apart.
struct Echo;

impl Plugin for Echo {
    fn add(&self, req: &Request) -> Result<CniResult, Error> {
        Ok(CniResult {
            interfaces: vec![Interface {
                name: format!("{}/{}", req.container_id, req.ifname),
                ..Default::default()
            }],
            ..Default::default()
        })
    }
    fn del(&self, _req: &Request) -> Result<(), Error> {
        Ok(())
    }
}

struct Fixture {
    dir: PathBuf,
    cni: CniConfig,
    list: NetConfList,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn fixture(tag: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("cni-proto-cache-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("cache/results")).unwrap();
    let exec = InProcessExec::new().with_plugin("echo", Arc::new(Echo));
    let cni = CniConfig::new(vec![PathBuf::from("/nonexistent")])
        .with_exec(Arc::new(exec))
        .with_cache_dir(dir.join("cache"));
    let list = NetConfList::from_slice(
        json!({"cniVersion": "1.0.0", "name": "net", "plugins": [{"type": "echo"}]})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    Fixture { dir, cni, list }
}

fn rt(cid: &str, ifname: &str) -> RuntimeConf {
    RuntimeConf::new(cid, "/var/run/netns/x", ifname)
}

#[test]
fn symlinks_planted_in_the_cache_directory_are_not_followed() {
    let f = fixture("symlink");
    let results = f.dir.join("cache/results");
    let outside_tmp = f.dir.join("outside-tmp");
    let outside_final = f.dir.join("outside-final");
    fs::write(&outside_tmp, "keep me").unwrap();
    fs::write(&outside_final, "keep me too").unwrap();
    let r = rt("c1", "eth0");
    // The temporary name older versions used (predictable: our pid) and the entry's own name.
    symlink(
        &outside_tmp,
        results.join(format!(".net-c1-eth0.tmp{}", std::process::id())),
    )
    .unwrap();
    symlink(&outside_final, results.join("net-c1-eth0")).unwrap();

    f.cni.add_network_list(&f.list, &r).unwrap();

    assert_eq!(fs::read_to_string(&outside_tmp).unwrap(), "keep me");
    assert_eq!(fs::read_to_string(&outside_final).unwrap(), "keep me too");
    let entry = results.join("net-c1-eth0");
    assert!(fs::symlink_metadata(&entry).unwrap().is_file());
    let cached = f.cni.cached_result(&f.list, &r).unwrap().unwrap();
    assert_eq!(cached.interfaces[0].name, "c1/eth0");

    // A symlink at the entry's name is not read through either (and DEL removes the link).
    fs::remove_file(&entry).unwrap();
    symlink(&outside_final, &entry).unwrap();
    assert!(f.cni.cached_result(&f.list, &r).is_err());
    f.cni.del_network_list(&f.list, &r).unwrap();
    assert!(fs::symlink_metadata(&entry).is_err());
    assert_eq!(fs::read_to_string(&outside_final).unwrap(), "keep me too");
}

#[test]
fn colliding_file_names_do_not_mix_attachments() {
    let f = fixture("collide");
    let (a, b) = (rt("a-b", "c"), rt("a", "b-c"));
    assert_eq!(f.cni.cache_path("net", &a), f.cni.cache_path("net", &b));

    f.cni.add_network_list(&f.list, &a).unwrap();
    f.cni.add_network_list(&f.list, &b).unwrap();
    // The file holds b's entry now: it is b's cache, and nothing of a's.
    let got = f.cni.cached_result(&f.list, &b).unwrap().unwrap();
    assert_eq!(got.interfaces[0].name, "a/b-c");
    assert!(f.cni.cached_result(&f.list, &a).unwrap().is_none());
    // a's DEL leaves b's entry alone; b's DEL removes it.
    f.cni.del_network_list(&f.list, &a).unwrap();
    assert!(f.cni.cached_result(&f.list, &b).unwrap().is_some());
    f.cni.del_network_list(&f.list, &b).unwrap();
    assert!(!f.cni.cache_path("net", &b).exists());

    // The same across the network name: `net-x` + `a` and `net` + `x-a`.
    let mut other = f.list.clone();
    other.name = "net-x".into();
    let (n1, n2) = (rt("a", "eth0"), rt("x-a", "eth0"));
    assert_eq!(f.cni.cache_path("net-x", &n1), f.cni.cache_path("net", &n2));
    f.cni.add_network_list(&other, &n1).unwrap();
    assert!(f.cni.cached_result(&f.list, &n2).unwrap().is_none());
    assert!(f.cni.cached_result(&other, &n1).unwrap().is_some());
}

#[test]
fn an_oversized_cache_file_is_refused() {
    let f = fixture("big");
    let r = rt("c1", "eth0");
    f.cni.add_network_list(&f.list, &r).unwrap();
    let path = f.cni.cache_path("net", &r);
    // The real entry padded with whitespace to one byte past 16 MiB: still valid JSON.
    let mut bytes = fs::read(&path).unwrap();
    bytes.resize(16 * 1024 * 1024 + 1, b' ');
    fs::write(&path, &bytes).unwrap();
    let err = f.cni.cached_result(&f.list, &r).unwrap_err();
    let msg = cni_types::error::chain_message(&err);
    assert!(msg.contains("more than 16777216 bytes"), "{msg}");
    // At the limit it is read.
    bytes.truncate(16 * 1024 * 1024);
    fs::write(&path, &bytes).unwrap();
    assert!(f.cni.cached_result(&f.list, &r).unwrap().is_some());
    // DEL is not blocked by an oversized entry, and removes it.
    bytes.push(b' ');
    fs::write(&path, &bytes).unwrap();
    f.cni.del_network_list(&f.list, &r).unwrap();
    assert!(!path.exists());
}
