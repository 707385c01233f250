//! Masquerade set-up, teardown and GC in every layout, through the [`FirewallApplier`] seam,
//! in the calling thread's network namespace (the node's). The plans are the sibling
//! modules'.

use cni_linux::IpFamily;
use cni_linux::firewall::nftables::{Family, NftPlan, Value};
use cni_linux::firewall::{self, FirewallApplier, FirewallError};
use ipnet::IpNet;

use crate::config::{BridgeConf, MasqBackend};
use crate::container;
use crate::deps::Attachment;
use crate::error::BridgeError;
use crate::masq::{self, NftEntry, NftOwner};

const SETUP: &str = "failed to set up IP masquerade";
const TEARDOWN: &str = "failed to tear down IP masquerade";
const GC: &str = "failed to garbage-collect IP masquerade";

/// The errno of an nf_tables refusal.
fn nft_errno(e: &FirewallError) -> Option<i32> {
    match e {
        FirewallError::Nftables(n) => n.errno(),
        _ => None,
    }
}

fn errno_is(r: &Result<(), FirewallError>, codes: &[i32]) -> bool {
    matches!(r, Err(e) if nft_errno(e).is_some_and(|c| codes.contains(&c)))
}

fn owner<'a>(conf: &'a BridgeConf, att: &'a Attachment) -> NftOwner<'a> {
    NftOwner {
        network: &conf.name,
        ifname: &att.ifname,
        container_id: &att.container_id,
    }
}

/// Whether a backend's failure matters: the reference ignores teardown errors of a backend the
/// node does not have.
pub(crate) fn backend_available(backend: MasqBackend) -> bool {
    match backend {
        MasqBackend::Iptables => firewall::iptables_available(),
        MasqBackend::Nftables => firewall::nftables_available(),
    }
}

/// ADD: masquerades `ips` (container addresses with their prefix) with `backend`.
pub(crate) fn setup_masq(
    fw: &mut dyn FirewallApplier,
    backend: MasqBackend,
    conf: &BridgeConf,
    att: &Attachment,
    ips: &[IpNet],
) -> Result<(), BridgeError> {
    match backend {
        MasqBackend::Iptables => {
            let plans =
                masq::iptables_setup(&conf.name, &att.container_id, ips).map_err(|source| {
                    BridgeError::Rule {
                        context: SETUP,
                        source,
                    }
                })?;
            fw.apply_iptables(&plans)
                .map_err(|e| BridgeError::firewall(SETUP, e))
        }
        MasqBackend::Nftables => {
            nft_add(fw, &owner(conf, att), ips).map_err(|e| BridgeError::firewall(SETUP, e))
        }
    }
}

/// The nftables ADD: one transaction of element additions; per entry, when its map is missing
/// the skeleton is written with it, and when its address holds another attachment's (stale)
/// element that element is replaced. Each retried a few times, for racing ADDs.
fn nft_add(
    fw: &mut dyn FirewallApplier,
    who: &NftOwner<'_>,
    ips: &[IpNet],
) -> Result<(), FirewallError> {
    let entries = masq::nft_entries(ips);
    if entries.is_empty() {
        return Ok(());
    }
    let all = fw.apply_nft(&masq::nft_add_plan(who, &entries));
    if !errno_is(&all, &[libc::ENOENT, libc::EEXIST]) {
        return all;
    }
    // (A failed transaction costs an RCU grace period: with one entry, it is not repeated.)
    let mut all = (entries.len() == 1).then_some(all);
    for entry in &entries {
        let add = masq::nft_add_plan(who, std::slice::from_ref(entry));
        let mut result = match all.take() {
            Some(r) => r,
            None => fw.apply_nft(&add),
        };
        for _ in 0..3 {
            let fix = match &result {
                Err(e) if nft_errno(e) == Some(libc::ENOENT) => masq::nft_skeleton_plan(who, entry),
                Err(e) if nft_errno(e) == Some(libc::EEXIST) => masq::nft_replace_plan(who, entry),
                _ => break,
            };
            result = fw.apply_nft(&fix);
            // Another ADD created the map, or the stale element went, meanwhile: add again.
            if errno_is(&result, &[libc::ENOENT, libc::EEXIST]) {
                result = fw.apply_nft(&add);
            }
        }
        result?;
    }
    Ok(())
}

/// Undoes [`setup_masq`] for ADD's rollback (the backend and the addresses are known).
pub(crate) fn undo_masq(
    fw: &mut dyn FirewallApplier,
    backend: MasqBackend,
    conf: &BridgeConf,
    att: &Attachment,
    ips: &[IpNet],
) -> Result<(), BridgeError> {
    let r = match backend {
        MasqBackend::Iptables => fw.apply_iptables(&masq::iptables_teardown(
            &conf.name,
            &att.container_id,
            &container::families(ips.iter().copied()),
        )),
        MasqBackend::Nftables => nft_del(fw, &owner(conf, att), ips, true),
    };
    r.map_err(|e| BridgeError::firewall(TEARDOWN, e))
}

/// Deletes one attachment's elements from our nftables tables.
///
/// Each address of `ips` is read by key and its element deleted if it is this attachment's
/// (O(addresses), no dump). Then both tables are listed and every element left with this
/// attachment's value is deleted, unless `complete` says `ips` are all the addresses the
/// attachment was set up with (ADD's own, or `prevResult`'s) and each of them was found and
/// deleted here. Addresses read from the container's namespace may have been changed or
/// removed since ADD: then the listing is what finds the attachment's elements.
fn nft_del(
    fw: &mut dyn FirewallApplier,
    who: &NftOwner<'_>,
    ips: &[IpNet],
    complete: bool,
) -> Result<(), FirewallError> {
    let mut covered = complete && !ips.is_empty();
    if !ips.is_empty() {
        let mut mine: Vec<NftEntry> = Vec::new();
        for e in masq::nft_entries(ips) {
            let spec = masq::nft_map_spec(who.network, e.subnet);
            let found = fw.nft_element(
                masq::nft_family(e.family()),
                masq::NFT_TABLE,
                &spec.name,
                &spec.key,
                &[Value::Addr(e.addr)],
            )?;
            if found.is_some_and(|el| who.owns(&el)) {
                mine.push(e);
            } else {
                covered = false;
            }
        }
        if !mine.is_empty() {
            let r = fw.apply_nft(&masq::nft_del_plan(who, &mine));
            if !errno_is(&r, &[libc::ENOENT, libc::EEXIST]) {
                r?;
            } else {
                covered = false;
            }
        }
        if covered {
            return Ok(());
        }
    }
    for f in [IpFamily::V4, IpFamily::V6] {
        if let Some(listing) = fw.nft_table(masq::nft_family(f), masq::NFT_TABLE)? {
            apply_nonempty(fw, &masq::nft_del_listed(&listing, who))?;
        }
    }
    Ok(())
}

fn apply_nonempty(fw: &mut dyn FirewallApplier, plan: &NftPlan) -> Result<(), FirewallError> {
    if plan.is_empty() {
        return Ok(());
    }
    fw.apply_nft(plan)
}

/// DEL: removes the attachment's masquerade from every layout either implementation may have
/// written: the iptables chain (the reference's layout, also ours with that backend; only
/// looked at in the families where the chain may exist, see
/// [`FirewallApplier::iptables_chain_may_exist`]), our nftables elements, and the
/// reference's nftables rules. `ips` (from `prevResult` or the interface) may be empty;
/// `complete` when they are `prevResult`'s (see [`nft_del`]). Errors of a backend the node
/// does not have are ignored, as the reference does.
pub(crate) fn teardown_masq(
    fw: &mut dyn FirewallApplier,
    conf: &BridgeConf,
    att: &Attachment,
    ips: &[IpNet],
    complete: bool,
) -> Vec<BridgeError> {
    let mut errs = Vec::new();

    let chain = masq::iptables_chain(&conf.name, &att.container_id);
    let mut families = container::families(ips.iter().copied());
    if families.is_empty() {
        families = vec![IpFamily::V4, IpFamily::V6];
    }
    // Lookups first, the iptables commit last: once a process has deleted nf_tables objects,
    // the kernel makes its next close of a netfilter socket wait for an RCU grace period
    // (10-20 ms), so a lookup after that commit would wait for it mid-way. The nftables
    // layouts, usually absent on a node using iptables, cost a lookup each.
    families.retain(|f| {
        fw.iptables_chain_may_exist(*f, "nat", &chain)
            .unwrap_or(true)
    });
    let existing_ref = fw.nft_table(Family::Inet, masq::REF_NFT_TABLE);

    let who = owner(conf, att);
    let nft = nft_del(fw, &who, ips, complete).and_then(|()| {
        let existing = existing_ref?;
        apply_nonempty(
            fw,
            &masq::ref_nft_teardown(
                &conf.name,
                &att.ifname,
                &att.container_id,
                existing.as_ref(),
            ),
        )
    });
    if let Err(e) = nft
        && backend_available(MasqBackend::Nftables)
    {
        errs.push(BridgeError::firewall(TEARDOWN, e));
    }

    if !families.is_empty()
        && let Err(e) = fw.apply_iptables(&masq::iptables_teardown(
            &conf.name,
            &att.container_id,
            &families,
        ))
        && backend_available(MasqBackend::Iptables)
    {
        errs.push(BridgeError::firewall(TEARDOWN, e));
    }
    errs
}

/// GC of masquerade state in every layout: our nftables elements and the reference's
/// nftables rules of this network whose attachment is not valid, and the iptables chains of
/// containers that are not.
pub(crate) fn gc_masq(
    fw: &mut dyn FirewallApplier,
    conf: &BridgeConf,
    valid: &[cni_types::Attachment],
    errs: &mut Vec<BridgeError>,
) {
    let nft = (|| -> Result<(), FirewallError> {
        for f in [IpFamily::V4, IpFamily::V6] {
            if let Some(listing) = fw.nft_table(masq::nft_family(f), masq::NFT_TABLE)? {
                apply_nonempty(fw, &masq::nft_gc_plan(&listing, &conf.name, valid))?;
            }
        }
        let existing = fw.nft_table(Family::Inet, masq::REF_NFT_TABLE)?;
        apply_nonempty(fw, &masq::ref_nft_gc(&conf.name, valid, existing.as_ref()))
    })();
    if let Err(e) = nft
        && backend_available(MasqBackend::Nftables)
    {
        errs.push(BridgeError::firewall(GC, e));
    }

    if backend_available(MasqBackend::Iptables) {
        let valid_ids = valid.iter().map(|a| a.container_id.clone()).collect();
        for family in [IpFamily::V4, IpFamily::V6] {
            match fw.iptables_state(family, "nat") {
                Ok(state) => {
                    if let Some(plan) = masq::iptables_gc(&conf.name, &valid_ids, &state)
                        && let Err(e) = fw.apply_iptables(&[plan])
                    {
                        errs.push(BridgeError::firewall(GC, e));
                    }
                }
                Err(e) => errs.push(BridgeError::firewall(GC, e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni_linux::firewall::Recorder;
    use cni_linux::firewall::nftables::NftError;
    use cni_linux::firewall::nftables::{ElementData, ElementListing, SetListing, TableListing};

    /// A recorder that answers nftables transactions with scripted errnos, in order.
    #[derive(Default)]
    struct Scripted {
        rec: Recorder,
        errnos: Vec<Option<i32>>,
    }

    impl FirewallApplier for Scripted {
        fn apply_iptables(
            &mut self,
            plans: &[cni_linux::firewall::iptables::IptablesPlan],
        ) -> Result<(), FirewallError> {
            self.rec.apply_iptables(plans)
        }
        fn iptables_state(
            &mut self,
            family: IpFamily,
            table: &str,
        ) -> Result<cni_linux::firewall::iptables::IptablesState, FirewallError> {
            self.rec.iptables_state(family, table)
        }
        fn apply_nft(&mut self, plan: &NftPlan) -> Result<(), FirewallError> {
            self.rec.apply_nft(plan)?;
            match self.errnos.first().copied() {
                None => Ok(()),
                Some(e) => {
                    self.errnos.remove(0);
                    match e {
                        None => Ok(()),
                        Some(code) => Err(FirewallError::Nftables(NftError::Rejected {
                            index: None,
                            op: None,
                            message: None,
                            source: std::io::Error::from_raw_os_error(code),
                        })),
                    }
                }
            }
        }
        fn nft_table(
            &mut self,
            family: Family,
            table: &str,
        ) -> Result<Option<TableListing>, FirewallError> {
            self.rec.nft_table(family, table)
        }
        fn iptables_chain_may_exist(
            &mut self,
            family: IpFamily,
            _table: &str,
            _chain: &str,
        ) -> Result<bool, FirewallError> {
            Ok(family == IpFamily::V4)
        }
    }

    fn conf() -> BridgeConf {
        BridgeConf::parse(
            br#"{"cniVersion":"1.0.0","name":"podnet","type":"bridge","ipMasq":true}"#,
            "",
        )
        .unwrap()
    }

    fn att() -> Attachment {
        Attachment::new("c1", "eth0", None, "/nonexistent")
    }

    fn ips() -> Vec<IpNet> {
        vec!["10.88.0.5/16".parse().unwrap()]
    }

    fn kinds(fw: &Scripted) -> Vec<String> {
        fw.rec
            .nft
            .iter()
            .map(|p| {
                p.ops
                    .iter()
                    .map(|o| {
                        o.to_string()
                            .split_whitespace()
                            .take(2)
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect()
    }

    #[test]
    fn add_is_one_transaction_of_elements_when_the_map_exists() {
        let mut fw = Scripted::default();
        setup_masq(&mut fw, MasqBackend::Nftables, &conf(), &att(), &ips()).unwrap();
        assert_eq!(kinds(&fw), vec!["add element"]);
    }

    #[test]
    fn add_writes_the_skeleton_when_the_map_is_missing() {
        let mut fw = Scripted {
            errnos: vec![Some(libc::ENOENT), None],
            ..Default::default()
        };
        setup_masq(&mut fw, MasqBackend::Nftables, &conf(), &att(), &ips()).unwrap();
        assert_eq!(
            kinds(&fw),
            vec![
                "add element",
                "add table, add chain, create map, add rule, add element"
            ]
        );
        // Dual stack, only the IPv6 map missing: the IPv4 element is added on its own.
        let mut fw = Scripted {
            errnos: vec![Some(libc::ENOENT), None, Some(libc::ENOENT), None],
            ..Default::default()
        };
        let two = vec![ips()[0], "fd00::5/64".parse().unwrap()];
        setup_masq(&mut fw, MasqBackend::Nftables, &conf(), &att(), &two).unwrap();
        assert_eq!(
            kinds(&fw),
            vec![
                "add element, add element",
                "add element",
                "add element",
                "add table, add chain, create map, add rule, add element"
            ]
        );
    }

    #[test]
    fn add_retries_when_another_add_created_the_map_first() {
        // Missing map, then the skeleton loses the race (EEXIST on create): add again.
        let mut fw = Scripted {
            errnos: vec![Some(libc::ENOENT), Some(libc::EEXIST), None],
            ..Default::default()
        };
        setup_masq(&mut fw, MasqBackend::Nftables, &conf(), &att(), &ips()).unwrap();
        assert_eq!(kinds(&fw).len(), 3);
        assert_eq!(kinds(&fw)[2], "add element");
    }

    #[test]
    fn add_replaces_a_stale_element() {
        let mut fw = Scripted {
            errnos: vec![Some(libc::EEXIST), None],
            ..Default::default()
        };
        setup_masq(&mut fw, MasqBackend::Nftables, &conf(), &att(), &ips()).unwrap();
        assert_eq!(
            kinds(&fw),
            vec!["add element", "delete element, add element"]
        );
    }

    #[test]
    fn add_gives_up_on_other_errors() {
        let mut fw = Scripted {
            errnos: vec![Some(libc::EPERM)],
            ..Default::default()
        };
        let e = setup_masq(&mut fw, MasqBackend::Nftables, &conf(), &att(), &ips()).unwrap_err();
        assert!(
            e.to_string().contains("failed to set up IP masquerade"),
            "{e}"
        );
        assert_eq!(kinds(&fw).len(), 1);
    }

    fn listing_with(owner: &str) -> TableListing {
        let mut v = owner.as_bytes().to_vec();
        v.resize(16, 0);
        let spec = masq::nft_map_spec("podnet", "10.88.0.0/16".parse().unwrap());
        TableListing {
            family: Family::Ip,
            name: masq::NFT_TABLE.into(),
            handle: 1,
            comment: None,
            chains: vec![],
            sets: vec![SetListing {
                name: spec.name,
                handle: 2,
                flags: 8,
                key_type: 7,
                key_len: 4,
                data_type: Some(41),
                data_len: Some(16),
                comment: None,
                elements: vec![ElementListing {
                    key: vec![10, 88, 0, 5],
                    data: Some(ElementData::Value(v)),
                    comment: Some("podnet eth0 c1".into()),
                }],
            }],
        }
    }

    #[test]
    fn del_deletes_only_its_own_elements_and_probes_iptables() {
        let mut fw = Scripted::default();
        fw.rec.nft_tables = vec![listing_with(&masq::nft_owner("podnet", "eth0", "c1"))];
        let errs = teardown_masq(&mut fw, &conf(), &att(), &ips(), true);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(kinds(&fw), vec!["add element, delete element"]);
        // iptables: IPv4 only (the probe says no IPv6 chain can exist).
        let ipt: Vec<String> = fw.rec.iptables.iter().map(ToString::to_string).collect();
        assert_eq!(ipt.len(), 1);
        assert!(ipt[0].starts_with("table ipv4 nat"), "{ipt:?}");

        // The address now belongs to another attachment: nothing is deleted.
        let mut fw = Scripted::default();
        fw.rec.nft_tables = vec![listing_with(&masq::nft_owner("podnet", "eth0", "other"))];
        assert!(teardown_masq(&mut fw, &conf(), &att(), &ips(), true).is_empty());
        assert!(fw.rec.nft.is_empty());
    }

    #[test]
    fn del_with_changed_addresses_still_deletes_by_value() {
        // The namespace now holds a foreign address only (what was ours was removed).
        let mut fw = Scripted::default();
        fw.rec.nft_tables = vec![listing_with(&masq::nft_owner("podnet", "eth0", "c1"))];
        let foreign = vec!["10.88.0.77/16".parse().unwrap()];
        assert!(teardown_masq(&mut fw, &conf(), &att(), &foreign, false).is_empty());
        assert_eq!(kinds(&fw), vec!["delete element"]);
        // Even addresses from `prevResult` are not trusted once one of them is not ours.
        let mut fw = Scripted::default();
        fw.rec.nft_tables = vec![listing_with(&masq::nft_owner("podnet", "eth0", "c1"))];
        assert!(teardown_masq(&mut fw, &conf(), &att(), &foreign, true).is_empty());
        assert_eq!(kinds(&fw), vec!["delete element"]);
    }

    #[test]
    fn del_without_addresses_lists_and_deletes_by_value() {
        let mut fw = Scripted::default();
        fw.rec.nft_tables = vec![listing_with(&masq::nft_owner("podnet", "eth0", "c1"))];
        assert!(teardown_masq(&mut fw, &conf(), &att(), &[], false).is_empty());
        assert_eq!(kinds(&fw), vec!["delete element"]);
    }
}
