//! A `CNI_NETNS` that is not a network namespace fails ADD at once with the spec's error JSON
//! (issue 12, item 1). A FIFO used to make the plugin block forever in open(2): the plugin runs
//! with a bounded wait, and a timeout fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cni_testkit::bins::our_plugin;
use cni_testkit::privilege::require_root;
use cni_testkit::runner::{Attachment, PluginError, PluginRunner};
use cni_testkit::{TempDir, TempNetns};
use serde_json::json;

#[test]
fn a_fifo_as_cni_netns_fails_add_at_once() {
    if !require_root() {
        return;
    }
    let node = TempNetns::new("fifo-node").unwrap();
    let dir = TempDir::new("fifo-netns").unwrap();
    let fifo = dir.path().join("netns");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let runner = PluginRunner::new(our_plugin("bridge").unwrap())
        .in_netns(&node)
        .unwrap()
        .timeout(Duration::from_secs(30));
    let conf = json!({
        "cniVersion": "1.0.0",
        "name": "fifo-net",
        "type": "bridge",
        "bridge": "cnififo0",
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": "10.97.0.0/24"}]],
            "dataDir": dir.path().join("ipam").display().to_string(),
        },
    });
    let err = runner
        .add(&conf, &Attachment::new("fifo-ctr", &fifo, "eth0"))
        .unwrap_err();
    let PluginError::Failed { error, output } = &err else {
        panic!("expected the spec's error JSON, got {err:?}");
    };
    assert!(!output.status.success());
    let text = format!("{} {}", error.msg, error.details);
    assert!(text.contains("unknown FS magic"), "{error:?}");
    // Nothing was made on the node.
    let mut nl = node.netlink().unwrap();
    assert!(nl.link_by_name("cnififo0").unwrap().is_none());
}
