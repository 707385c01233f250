//! The reference's nftables layout (Go plugin v1.5 and later), which we never write: table
//! `inet cni_plugins_masquerade`; base chain `postrouting` (nat, srcnat priority) that
//! returns multicast and jumps (`goto`) to `masq_checks`; one rule per container address in
//! `masq_checks`:
//!
//! ```text
//! ip saddr 10.88.0.2 ip daddr != 10.88.0.0/16 masquerade comment "<h(net)>-<h(if:cid)>, net: …, if: …, id: …"
//! ```
//!
//! DEL and GC remove its rules by the hash prefix of their comment ([`ref_nft_teardown`],
//! [`ref_nft_gc`]), so pods set up by the Go plugin leak nothing.

use std::collections::BTreeSet;

use cni_linux::firewall::names::format_hash_with_prefix;
use cni_linux::firewall::nftables::{Family, NftPlan, TableListing};

use super::cut;

/// The reference's nftables table (family `inet`).
pub const REF_NFT_TABLE: &str = "cni_plugins_masquerade";
/// The reference's regular chain holding one rule per container address.
pub const REF_NFT_CHAIN: &str = "masq_checks";

/// `hex(sha512(network))[:16]`: the prefix of every reference comment of the network.
pub fn ref_nft_network_hash(network: &str) -> String {
    format_hash_with_prefix(16, "", network).unwrap_or_default()
}

/// `<network hash>-<hex(sha512(ifname + ":" + cid))[:16]>`: the prefix identifying one
/// attachment's rules in the reference's layout.
pub fn ref_nft_instance_hash(network: &str, ifname: &str, container_id: &str) -> String {
    let inst =
        format_hash_with_prefix(16, "", &format!("{ifname}:{container_id}")).unwrap_or_default();
    format!("{}-{inst}", ref_nft_network_hash(network))
}

/// The reference's comment of one attachment's rules: its hash, then a readable description
/// without double quotes, cut to nft's 128 bytes.
pub fn ref_nft_comment(network: &str, ifname: &str, container_id: &str) -> String {
    let strip = |s: &str| s.replace('"', "");
    cut(format!(
        "{}, net: {}, if: {}, id: {}",
        ref_nft_instance_hash(network, ifname, container_id),
        strip(network),
        strip(ifname),
        strip(container_id)
    ))
}

fn ref_rules<'a>(
    listing: Option<&'a TableListing>,
    prefix: &'a str,
) -> impl Iterator<Item = (u64, &'a str)> + 'a {
    listing
        .and_then(|t| t.chain(REF_NFT_CHAIN))
        .into_iter()
        .flat_map(|c| c.rules.iter())
        .filter_map(move |r| {
            r.comment
                .as_deref()
                .filter(|c| c.starts_with(prefix))
                .map(|c| (r.handle, c))
        })
}

/// Deletes one attachment's rules from the reference's table (found by their comment hash in
/// `existing`). Empty when there are none, or no table.
pub fn ref_nft_teardown(
    network: &str,
    ifname: &str,
    container_id: &str,
    existing: Option<&TableListing>,
) -> NftPlan {
    let mut plan = NftPlan::new();
    let prefix = ref_nft_instance_hash(network, ifname, container_id);
    for (handle, _) in ref_rules(existing, &prefix) {
        plan.delete_rule(Family::Inet, REF_NFT_TABLE, REF_NFT_CHAIN, handle);
    }
    plan
}

/// Deletes the reference's rules of `network` whose comment is not that of a valid
/// attachment.
pub fn ref_nft_gc(
    network: &str,
    valid: &[cni_types::Attachment],
    existing: Option<&TableListing>,
) -> NftPlan {
    let keep: BTreeSet<String> = valid
        .iter()
        .map(|a| ref_nft_comment(network, &a.ifname, &a.container_id))
        .collect();
    let mut plan = NftPlan::new();
    let prefix = ref_nft_network_hash(network);
    for (handle, comment) in ref_rules(existing, &prefix) {
        if !keep.contains(comment) {
            plan.delete_rule(Family::Inet, REF_NFT_TABLE, REF_NFT_CHAIN, handle);
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni_linux::firewall::nftables::{ChainListing, RuleListing};

    const CID: &str = "f9b1c8a3d2e4";

    #[test]
    fn ref_nft_names_match_the_reference_scheme() {
        let h = ref_nft_network_hash("podnet");
        assert_eq!(h.len(), 16);
        let inst = ref_nft_instance_hash("podnet", "eth0", CID);
        assert!(inst.starts_with(&format!("{h}-")));
        assert_eq!(inst.len(), 33);
        let c = ref_nft_comment("pod\"net", "eth0", CID);
        assert_eq!(
            c,
            format!(
                "{}, net: podnet, if: eth0, id: {CID}",
                ref_nft_instance_hash("pod\"net", "eth0", CID)
            )
        );
        let long = ref_nft_comment("n", "eth0", &"x".repeat(200));
        assert_eq!(long.len(), 128);
        // sha512("") starts with cf83e1357eefb8bd.
        assert_eq!(ref_nft_network_hash(""), "cf83e1357eefb8bd");
        // The comments the Go plugin (v1.5+) writes, from its own unit test
        // (pkg/ip/ipmasq_nftables_linux_test.go, Test_setupIPMasqNFTables).
        for (net, ifname, id, expected) in [
            (
                "unit-test",
                "eth0",
                "one",
                "6fd94d501e58f0aa-287fc69eff0574a2, net: unit-test, if: eth0, id: one",
            ),
            (
                "unit-test",
                "eth0",
                "two",
                "6fd94d501e58f0aa-d750b2c8f0f25d5f, net: unit-test, if: eth0, id: two",
            ),
            (
                "unit-test",
                "eth0",
                "three",
                "6fd94d501e58f0aa-a4d4adb82b669cfe, net: unit-test, if: eth0, id: three",
            ),
            (
                "alternate",
                "net1",
                "three",
                "82783ef24bdc7036-acb19d111858e348, net: alternate, if: net1, id: three",
            ),
        ] {
            assert_eq!(ref_nft_comment(net, ifname, id), expected);
        }
    }

    fn ref_listing(rules: Vec<(u64, String)>) -> TableListing {
        TableListing {
            family: Family::Inet,
            name: REF_NFT_TABLE.into(),
            handle: 1,
            comment: None,
            chains: vec![ChainListing {
                name: REF_NFT_CHAIN.into(),
                handle: 2,
                hook: None,
                chain_type: None,
                policy: None,
                comment: None,
                rules: rules
                    .into_iter()
                    .map(|(handle, c)| RuleListing {
                        handle,
                        comment: Some(c),
                        exprs: vec![],
                    })
                    .collect(),
            }],
            sets: vec![],
        }
    }

    #[test]
    fn ref_nft_teardown_and_gc_by_comment() {
        let mine = ref_nft_comment("podnet", "eth0", CID);
        let other_if = ref_nft_comment("podnet", "eth1", CID);
        let other_net = ref_nft_comment("othernet", "eth0", "zzz");
        let existing = ref_listing(vec![
            (10, mine.clone()),
            (11, mine.clone()),
            (12, other_if.clone()),
            (13, other_net.clone()),
        ]);
        assert_eq!(
            ref_nft_teardown("podnet", "eth0", CID, Some(&existing)).to_string(),
            "delete rule inet cni_plugins_masquerade masq_checks handle 10\n\
             delete rule inet cni_plugins_masquerade masq_checks handle 11\n"
        );
        assert!(ref_nft_teardown("podnet", "eth0", CID, None).is_empty());
        let valid = vec![cni_types::Attachment {
            container_id: CID.into(),
            ifname: "eth0".into(),
        }];
        assert_eq!(
            ref_nft_gc("podnet", &valid, Some(&existing)).to_string(),
            "delete rule inet cni_plugins_masquerade masq_checks handle 12\n"
        );
    }
}
