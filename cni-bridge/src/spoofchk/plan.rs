//! The spoof-check rules as pure plans (golden tested): names, set-up, teardown, the Go
//! plugin's ambiguous names, and what GC finds stale.

use std::collections::BTreeSet;

use cni_linux::firewall::nftables::{
    BaseChain, ChainSpec, ChainType, CmpOp, Family, Field, Hook, NftPlan, Policy, RuleSpec, Stmt,
    TableListing, Value, Verdict,
};

/// The table (family `bridge`).
pub const TABLE: &str = "nat";
/// The base chain.
pub const PREROUTING: &str = "PREROUTING";
const IFACE_PREFIX: &str = "cni-br-iface-";

/// Identifies one attachment in the names and comments of its spoof check.
///
/// The reference's `<cid>-<ifname>` when neither part contains a `-` (container IDs of
/// containerd, CRI-O and podman are hex; interfaces are `eth0`, `net1`): those names are what
/// the Go plugin's DEL looks for, so either implementation removes the other's checks.
///
/// Otherwise the reference's form is ambiguous (`a-b` + `c` and `a` + `b-c` both give
/// `a-b-c`, and `cni-br-iface-a-b-mac` is both the `-mac` chain of `a` + `b` and the chain of
/// `a` + `b-mac`): a second attachment would overwrite the first one's MAC filter and its DEL
/// would remove both. Then the id is `-` and 32 hex digits of sha512 of the length-prefixed
/// pair. No two attachments share an id or a chain name: a reference-form id starts with a
/// character other than `-` and has exactly one `-` (its chains `cni-br-iface-X-Y` and
/// `cni-br-iface-X-Y-mac` have one and two after the prefix, the second one ending in `mac`),
/// while a hashed id starts with `-`.
pub fn ref_id(container_id: &str, ifname: &str) -> String {
    let plain = |s: &str| !s.is_empty() && !s.contains('-');
    if plain(container_id) && plain(ifname) {
        return format!("{container_id}-{ifname}");
    }
    let pair = format!("{}:{container_id}{ifname}", container_id.len());
    let hash = cni_linux::firewall::sha512::sha512_hex(pair.as_bytes());
    format!("-{}", &hash[..32])
}

/// `cni-br-iface-<ref>`.
pub fn iface_chain(ref_id: &str) -> String {
    format!("{IFACE_PREFIX}{ref_id}")
}

/// `cni-br-iface-<ref>-mac`.
pub fn mac_chain(ref_id: &str) -> String {
    format!("{IFACE_PREFIX}{ref_id}-mac")
}

/// `macspoofchk-<ref>`: the comment of every rule.
pub fn comment(ref_id: &str) -> String {
    format!("macspoofchk-{ref_id}")
}

/// The one-transaction setup for the attachment `ref_id` whose host port is `host_iface` and
/// whose container MAC is `mac`.
pub fn setup(ref_id: &str, host_iface: &str, mac: [u8; 6]) -> NftPlan {
    let f = Family::Bridge;
    let iface = iface_chain(ref_id);
    let macc = mac_chain(ref_id);
    let c = comment(ref_id);
    let mut plan = NftPlan::new();
    plan.add_table(f, TABLE, None);
    plan.add_chain(
        f,
        TABLE,
        ChainSpec {
            name: PREROUTING.into(),
            base: Some(BaseChain {
                kind: ChainType::Filter,
                hook: Hook::Prerouting,
                priority: -300,
                policy: Some(Policy::Accept),
            }),
            comment: None,
        },
    );
    plan.add_chain(f, TABLE, ChainSpec::regular(&iface));
    plan.add_chain(f, TABLE, ChainSpec::regular(&macc));
    plan.flush_chain(f, TABLE, &iface);
    plan.flush_chain(f, TABLE, &macc);
    plan.add_rule(
        f,
        TABLE,
        RuleSpec::new(
            PREROUTING,
            vec![
                Stmt::Cmp {
                    field: Field::Iifname,
                    op: CmpOp::Eq,
                    value: Value::Ifname(host_iface.to_string()),
                },
                Stmt::Verdict(Verdict::Jump(iface.clone())),
            ],
        )
        .with_comment(c.clone()),
    );
    plan.add_rule(
        f,
        TABLE,
        RuleSpec::new(&iface, vec![Stmt::Verdict(Verdict::Jump(macc.clone()))])
            .with_comment(c.clone()),
    );
    plan.add_rule(
        f,
        TABLE,
        RuleSpec::new(
            &macc,
            vec![
                Stmt::Cmp {
                    field: Field::EtherSaddr,
                    op: CmpOp::Eq,
                    value: Value::Ether(mac),
                },
                Stmt::Verdict(Verdict::Return),
            ],
        )
        .with_comment(c.clone()),
    );
    plan.add_rule(
        f,
        TABLE,
        RuleSpec::new(&macc, vec![Stmt::Verdict(Verdict::Drop)]).with_comment(c),
    );
    plan
}

/// Removes the attachment's jump rule(s) from `PREROUTING` and its two chains, as far as they
/// exist in `existing` (the listed `bridge nat` table). Empty when nothing is there.
pub fn teardown(ref_id: &str, existing: Option<&TableListing>) -> NftPlan {
    let mut plan = NftPlan::new();
    let Some(t) = existing else {
        return plan;
    };
    let f = Family::Bridge;
    let c = comment(ref_id);
    if let Some(pre) = t.chain(PREROUTING) {
        for r in pre
            .rules
            .iter()
            .filter(|r| r.comment.as_deref() == Some(&c))
        {
            plan.delete_rule(f, TABLE, PREROUTING, r.handle);
        }
    }
    let iface = iface_chain(ref_id);
    let macc = mac_chain(ref_id);
    let has_iface = t.chain(&iface).is_some();
    let has_mac = t.chain(&macc).is_some();
    // Empty the chains first so no jump is left when they are deleted.
    if has_iface {
        plan.flush_chain(f, TABLE, &iface);
    }
    if has_mac {
        plan.flush_chain(f, TABLE, &macc);
    }
    for (exists, chain) in [(has_iface, iface), (has_mac, macc)] {
        if exists {
            plan.push(cni_linux::firewall::nftables::NftOp::DeleteChain {
                family: f,
                table: TABLE.to_string(),
                chain,
            });
        }
    }
    plan
}

/// The reference's id `<cid>-<ifname>` of an attachment whose [`ref_id`] is hashed (a part
/// contains a `-`): the names the Go plugin gave its spoof check. `None` when [`ref_id`] is
/// already the reference's.
pub fn legacy_ref_id(container_id: &str, ifname: &str) -> Option<String> {
    let ours = ref_id(container_id, ifname);
    ours.starts_with('-')
        .then(|| format!("{container_id}-{ifname}"))
}

/// Whether a listed rule jumps (or goes) to `chain`.
fn jumps_to(exprs: &[String], chain: &str) -> bool {
    let (jump, goto) = (format!(" jump {chain}"), format!(" goto {chain}"));
    exprs
        .iter()
        .any(|e| e.ends_with(&jump) || e.ends_with(&goto))
}

/// Removes a spoof check the Go plugin set up under the reference's (ambiguous) name
/// `legacy` (see [`legacy_ref_id`]) for the attachment whose host port is `port`: only the
/// `PREROUTING` jumps with that name's comment **and** that port, then the two chains if
/// nothing jumps to them any more (another attachment may share the name).
pub fn teardown_legacy(legacy: &str, port: &str, existing: Option<&TableListing>) -> NftPlan {
    let mut plan = NftPlan::new();
    let Some(t) = existing else {
        return plan;
    };
    let Some(pre) = t.chain(PREROUTING) else {
        return plan;
    };
    let f = Family::Bridge;
    let c = comment(legacy);
    let (iface, macc) = (iface_chain(legacy), mac_chain(legacy));
    let mut removed = Vec::new();
    for r in pre.rules.iter().filter(|r| {
        r.comment.as_deref() == Some(&c) && rule_iifname(&r.exprs).as_deref() == Some(port)
    }) {
        plan.delete_rule(f, TABLE, PREROUTING, r.handle);
        removed.push(r.handle);
    }
    if removed.is_empty() {
        return plan;
    }
    // Still referenced from elsewhere (the iface chain's own jump to the mac chain aside)?
    let referenced = t.chains.iter().any(|ch| {
        ch.rules.iter().any(|r| {
            let own = (ch.name == PREROUTING && removed.contains(&r.handle)) || ch.name == iface;
            !own && (jumps_to(&r.exprs, &iface) || jumps_to(&r.exprs, &macc))
        })
    });
    if referenced {
        return plan;
    }
    for chain in [&iface, &macc] {
        if t.chain(chain).is_some() {
            plan.flush_chain(f, TABLE, chain);
        }
    }
    for chain in [iface, macc] {
        if t.chain(&chain).is_some() {
            plan.push(cni_linux::firewall::nftables::NftOp::DeleteChain {
                family: f,
                table: TABLE.to_string(),
                chain,
            });
        }
    }
    plan
}

/// The host interface name a `PREROUTING` rule of ours matches (`iifname "<name>"`), decoded
/// from the rule's expression dump.
fn rule_iifname(exprs: &[String]) -> Option<String> {
    let pos = exprs
        .iter()
        .position(|e| e.starts_with("meta load iifname"))?;
    let cmp = exprs.get(pos + 1)?;
    let hex = cmp.rsplit(' ').next()?.strip_prefix("0x")?;
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8(bytes[..end].to_vec()).ok()
}

/// The attachments (ref ids) of stale spoof checks: not in `valid` and whose host interface no
/// longer exists (`host_link_exists` answers for a name).
///
/// The `bridge nat` table is shared by every network, and its names do not say which network
/// an attachment belongs to; removing checks whose port is gone is safe for all of them (and
/// necessary: a reused interface name would inherit a stale MAC filter).
pub fn stale(
    valid: &[cni_types::Attachment],
    existing: Option<&TableListing>,
    mut host_link_exists: impl FnMut(&str) -> bool,
) -> Vec<String> {
    let Some(t) = existing else {
        return Vec::new();
    };
    let keep: BTreeSet<String> = valid
        .iter()
        .map(|a| ref_id(&a.container_id, &a.ifname))
        .collect();
    let mut out = BTreeSet::new();
    let pre = t.chain(PREROUTING);
    for chain in &t.chains {
        let Some(rid) = chain.name.strip_prefix(IFACE_PREFIX) else {
            continue;
        };
        // Every attachment has an iface chain and a `-mac` chain; look at iface chains only.
        if t.chain(&format!("{}-mac", chain.name)).is_none() && rid.ends_with("-mac") {
            continue;
        }
        if keep.contains(rid) {
            continue;
        }
        let c = comment(rid);
        let port = pre.and_then(|p| {
            p.rules
                .iter()
                .find(|r| r.comment.as_deref() == Some(&c))
                .and_then(|r| rule_iifname(&r.exprs))
        });
        let gone = match port {
            Some(name) => !host_link_exists(&name),
            // No jump rule left: the chains are unreachable leftovers.
            None => true,
        };
        if gone {
            out.insert(rid.to_string());
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni_linux::firewall::nftables::{ChainListing, RuleListing};

    #[test]
    fn setup_golden() {
        let plan = setup(
            "abc-eth0",
            "veth1234abcd",
            [0x02, 0x42, 0x0a, 0x58, 0x05, 0x32],
        );
        let expected = "\
add table bridge nat
add chain bridge nat PREROUTING { type filter hook prerouting priority -300; policy accept; }
add chain bridge nat cni-br-iface-abc-eth0
add chain bridge nat cni-br-iface-abc-eth0-mac
flush chain bridge nat cni-br-iface-abc-eth0
flush chain bridge nat cni-br-iface-abc-eth0-mac
add rule bridge nat PREROUTING iifname \"veth1234abcd\" jump cni-br-iface-abc-eth0 comment \"macspoofchk-abc-eth0\"
add rule bridge nat cni-br-iface-abc-eth0 jump cni-br-iface-abc-eth0-mac comment \"macspoofchk-abc-eth0\"
add rule bridge nat cni-br-iface-abc-eth0-mac ether saddr 02:42:0a:58:05:32 return comment \"macspoofchk-abc-eth0\"
add rule bridge nat cni-br-iface-abc-eth0-mac drop comment \"macspoofchk-abc-eth0\"
";
        assert_eq!(plan.to_string(), expected);
    }

    fn chain(name: &str, rules: Vec<RuleListing>) -> ChainListing {
        ChainListing {
            name: name.into(),
            handle: 1,
            hook: None,
            chain_type: None,
            policy: None,
            comment: None,
            rules,
        }
    }

    fn jump_rule(handle: u64, rid: &str, port: &str) -> RuleListing {
        let mut b = [0u8; 16];
        b[..port.len()].copy_from_slice(port.as_bytes());
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        RuleListing {
            handle,
            comment: Some(comment(rid)),
            exprs: vec![
                "meta load iifname => reg 1".into(),
                format!("cmp eq reg 1 0x{hex}"),
                format!("immediate reg 0 jump {}", iface_chain(rid)),
            ],
        }
    }

    fn table() -> TableListing {
        TableListing {
            family: Family::Bridge,
            name: TABLE.into(),
            handle: 1,
            comment: None,
            chains: vec![
                chain(
                    PREROUTING,
                    vec![
                        jump_rule(5, "a-eth0", "vethaaaa"),
                        jump_rule(6, "b-eth0", "vethbbbb"),
                        jump_rule(7, "c-eth0", "vethcccc"),
                    ],
                ),
                chain(&iface_chain("a-eth0"), vec![]),
                chain(&mac_chain("a-eth0"), vec![]),
                chain(&iface_chain("b-eth0"), vec![]),
                chain(&mac_chain("b-eth0"), vec![]),
                chain(&iface_chain("c-eth0"), vec![]),
                chain(&mac_chain("c-eth0"), vec![]),
            ],
            sets: vec![],
        }
    }

    #[test]
    fn teardown_golden() {
        let t = table();
        let expected = "\
delete rule bridge nat PREROUTING handle 6
flush chain bridge nat cni-br-iface-b-eth0
flush chain bridge nat cni-br-iface-b-eth0-mac
delete chain bridge nat cni-br-iface-b-eth0
delete chain bridge nat cni-br-iface-b-eth0-mac
";
        assert_eq!(teardown("b-eth0", Some(&t)).to_string(), expected);
        assert!(teardown("zzz-eth0", Some(&t)).is_empty());
        assert!(teardown("b-eth0", None).is_empty());
    }

    #[test]
    fn ref_ids_are_the_reference_s_when_unambiguous_and_distinct_otherwise() {
        assert_eq!(ref_id("f9b1c8a3d2e4", "eth0"), "f9b1c8a3d2e4-eth0");
        // Pairs whose reference names collide, as ids or as iface chain against `-mac` chain.
        let pairs = [
            ("a-b", "c"),
            ("a", "b-c"),
            ("a", "b"),
            ("a", "b-mac"),
            ("a-b", "mac"),
            ("a-b-mac", "x"),
            ("a", "b-mac-x"),
            ("ab", "c"),
            ("a", "bc"),
        ];
        let mut names = BTreeSet::new();
        for (cid, ifname) in pairs {
            let rid = ref_id(cid, ifname);
            assert_eq!(
                rid.starts_with('-'),
                cid.contains('-') || ifname.contains('-'),
                "{rid}"
            );
            for name in [iface_chain(&rid), mac_chain(&rid)] {
                assert!(
                    names.insert(name.clone()),
                    "{cid} + {ifname}: {name} is taken"
                );
            }
            assert!(comment(&rid).len() < 128);
        }
        // Hashing is length-prefixed: moving characters between the parts changes the id.
        assert_ne!(ref_id("a-", "bc"), ref_id("a-b", "c"));
        assert_eq!(ref_id("a-b", "c").len(), 33);
    }

    #[test]
    fn legacy_teardown_takes_only_the_attachment_s_port() {
        assert_eq!(legacy_ref_id("abc", "eth0"), None);
        assert_eq!(legacy_ref_id("a-b", "c").as_deref(), Some("a-b-c"));
        // The Go plugin gave `a-b` + `c` (port vethone) and `a` + `b-c` (port vethtwo) the
        // same chains, and `a` + `b` (ours, plain) has `cni-br-iface-a-b-mac`, which is also
        // the chain name of the Go plugin's `a` + `b-mac` (port vethmac).
        let jump_to = |handle: u64, chain: &str| RuleListing {
            handle,
            comment: None,
            exprs: vec![format!("immediate reg 0 jump {chain}")],
        };
        let t = TableListing {
            family: Family::Bridge,
            name: TABLE.into(),
            handle: 1,
            comment: None,
            chains: vec![
                chain(
                    PREROUTING,
                    vec![
                        jump_rule(5, "a-b-c", "vethone"),
                        jump_rule(6, "a-b-c", "vethtwo"),
                        jump_rule(7, "a-b", "vethplain"),
                        jump_rule(8, "a-b-mac", "vethmac"),
                    ],
                ),
                chain(
                    &iface_chain("a-b-c"),
                    vec![jump_to(20, &mac_chain("a-b-c"))],
                ),
                chain(&mac_chain("a-b-c"), vec![]),
                chain(&iface_chain("a-b"), vec![jump_to(21, &mac_chain("a-b"))]),
                chain(&mac_chain("a-b"), vec![]),
            ],
            sets: vec![],
        };
        // vethone's jump goes; the chains stay while vethtwo's jump uses them.
        assert_eq!(
            teardown_legacy("a-b-c", "vethone", Some(&t)).to_string(),
            "delete rule bridge nat PREROUTING handle 5\n"
        );
        // Without the other jump, the chains go too.
        let mut alone = t.clone();
        alone.chains[0].rules.retain(|r| r.handle != 6);
        assert_eq!(
            teardown_legacy("a-b-c", "vethone", Some(&alone)).to_string(),
            "delete rule bridge nat PREROUTING handle 5\n\
             flush chain bridge nat cni-br-iface-a-b-c\n\
             flush chain bridge nat cni-br-iface-a-b-c-mac\n\
             delete chain bridge nat cni-br-iface-a-b-c\n\
             delete chain bridge nat cni-br-iface-a-b-c-mac\n"
        );
        // `a` + `b-mac`: its jump goes, but its chain is our `a` + `b`'s mac chain: kept.
        assert_eq!(
            teardown_legacy("a-b-mac", "vethmac", Some(&t)).to_string(),
            "delete rule bridge nat PREROUTING handle 8\n"
        );
        // Another port, or nothing listed: nothing.
        assert!(teardown_legacy("a-b-c", "vethzzz", Some(&t)).is_empty());
        assert!(teardown_legacy("a-b-c", "vethone", None).is_empty());
    }

    #[test]
    fn stale_needs_invalid_and_gone() {
        let t = table();
        let valid = vec![cni_types::Attachment {
            container_id: "a".into(),
            ifname: "eth0".into(),
        }];
        // a: valid; b: invalid but its port exists (maybe another network's); c: invalid, gone.
        let st = stale(&valid, Some(&t), |name| name != "vethcccc");
        assert_eq!(st, vec!["c-eth0".to_string()]);
        assert_eq!(
            rule_iifname(&jump_rule(1, "x", "veth0").exprs).as_deref(),
            Some("veth0")
        );
    }
}
