#![allow(clippy::unwrap_used)]

use super::*;
use cni_linux::firewall::nftables::MAX_COMMENT_LEN;

#[track_caller]
fn golden(name: &str, got: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/nftables/golden");
    cni_testkit::golden::assert_golden(&dir.join(name), got);
}

fn pod() -> Pod {
    Pod {
        addrs: vec!["10.88.0.5".parse().unwrap(), "fd00::5".parse().unwrap()],
        bridge: Some("cni0".into()),
        host_ifs: vec!["veth1".into()],
    }
}

#[test]
fn first_add_writes_the_skeleton_and_the_elements() {
    let mut plan = NftPlan::new();
    skeleton(&mut plan);
    add_elements(&mut plan, &pod(), &owner_comment("net1", "ctr1", "eth0"));
    golden("add_first.nft", &plan.to_string());
}

#[test]
fn add_is_only_elements() {
    let mut plan = NftPlan::new();
    add_elements(&mut plan, &pod(), &owner_comment("net1", "ctr1", "eth0"));
    golden("add.nft", &plan.to_string());
    assert!(
        plan.ops
            .iter()
            .all(|op| matches!(op, cni_linux::firewall::nftables::NftOp::AddElements { .. }))
    );
}

#[test]
fn isolating_a_bridge_adds_the_pairs_with_the_others() {
    let mut plan = NftPlan::new();
    isolate(
        &mut plan,
        "cni0",
        "net1",
        &["br1".into(), "cni0".into(), "br2".into()],
    );
    golden("isolate.nft", &plan.to_string());
}

#[test]
fn del_deletes_the_addresses() {
    let mut plan = NftPlan::new();
    delete_addrs(&mut plan, &pod().addrs);
    golden("del.nft", &plan.to_string());
}

#[test]
fn long_identities_get_a_hashed_comment_within_128_bytes() {
    let long = "c".repeat(200);
    let a = owner_comment("net1", &long, "eth0");
    let b = owner_comment("net1", &format!("{long}x"), "eth0");
    assert!(a.len() <= MAX_COMMENT_LEN && b.len() <= MAX_COMMENT_LEN);
    assert_ne!(a, b);
    assert!(a.starts_with("net1 eth0 ccc"));
    assert_eq!(owner_comment("net1", "ctr1", "eth0"), "net1 eth0 ctr1");
}
