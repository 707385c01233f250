//! The allocator: ADD, DEL, CHECK, GC and STATUS over any [`Store`], in-process.
//!
//! Semantics follow the reference where it has them:
//! - **allocate** (ADD) takes the store's lock once for the whole request and, for each range
//!   set in order, reserves the requested address that falls in the set (refusing the set's
//!   gateway or a taken address) or, when none was requested, refuses a duplicate
//!   `(container, interface)` already holding an address in the set and walks the set round
//!   robin from its last reserved address. If any set fails, or a requested address fits no
//!   set, the addresses reserved by this call are released again.
//! - **release** (DEL) frees every address held by exactly `(container, interface)`, or, when
//!   there is none, every legacy reservation of the container. Unknown containers are fine.
//! - **check** (CHECK) succeeds when the attachment (or, legacy, its container) holds any
//!   address.
//! - **gc** (GC, new) frees every reservation whose holder is not a valid attachment; a legacy
//!   reservation stays when its container has any valid attachment. An empty list frees all.
//! - **status** (STATUS, new) fails when a range set has no free address left.

use std::collections::HashSet;
use std::net::IpAddr;

use cni_types::{Attachment, IpConfig};
use ipnet::IpNet;

use crate::range::{RangeSet, canonical};
use crate::store::{Holder, Reservation, Session, Store, StoreError};

/// Why an allocator operation failed. Messages are the reference's where it has one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AllocError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The container ID or interface name breaks the reference's rules.
    #[error("{0}")]
    InvalidAttachment(cni_types::Error),
    /// A requested address is its range's gateway.
    #[error("requested ip {0} is subnet's gateway")]
    RequestedIsGateway(IpAddr),
    /// A requested address is already reserved.
    #[error("requested IP address {ip} is not available in range set {set}")]
    RequestedUnavailable {
        /// The address.
        ip: IpAddr,
        /// The range set, as `start-end,...`.
        set: String,
    },
    /// The attachment already holds an address in this set.
    #[error("{ip} has been allocated to {id}, duplicate allocation is not allowed")]
    Duplicate {
        /// The address it holds.
        ip: IpAddr,
        /// The container ID.
        id: String,
    },
    /// No free address in the set.
    #[error("no IP addresses available in range set: {0}")]
    Exhausted(String),
    /// Allocation from one range set failed.
    #[error("failed to allocate for range {index}: {source}")]
    Range {
        /// Index of the range set.
        index: usize,
        /// Why.
        #[source]
        source: Box<AllocError>,
    },
    /// Requested addresses that fit no range set.
    #[error("failed to allocate all requested IPs:{}", join_ips(.0))]
    RequestedUnused(Vec<IpAddr>),
    /// CHECK found nothing for the container.
    #[error("host-local: Failed to find address added by container {0}")]
    NotFound(String),
    /// Some releases failed (every one was tried).
    #[error("{}", join_errors(.0))]
    Release(Vec<StoreError>),
    /// STATUS: range sets without a free address.
    #[error("{}", join_exhausted(.0))]
    Unavailable(Vec<(usize, String)>),
}

fn join_ips(ips: &[IpAddr]) -> String {
    ips.iter().map(|ip| format!(" {ip}")).collect()
}

fn join_errors(errs: &[StoreError]) -> String {
    let v: Vec<String> = errs
        .iter()
        .map(|e| cni_types::error::chain_message(e))
        .collect();
    v.join(";")
}

fn join_exhausted(sets: &[(usize, String)]) -> String {
    let v: Vec<String> = sets
        .iter()
        .map(|(i, s)| format!("range set {i}: no IP addresses available in range set: {s}"))
        .collect();
    v.join("; ")
}

fn validate(owner: &Attachment) -> Result<(), AllocError> {
    cni_types::validate::validate_container_id(owner.container_id.trim())
        .and_then(|()| cni_types::validate::validate_interface_name(&owner.ifname))
        .map_err(AllocError::InvalidAttachment)
}

fn ip_config(ip: IpAddr, set: &RangeSet) -> Result<IpConfig, AllocError> {
    let r = set
        .range_for(ip)
        .ok_or_else(|| AllocError::Exhausted(set.to_string()))?;
    // The prefix comes from a valid subnet of the same family, so this cannot fail.
    let address = IpNet::new(ip, r.subnet.prefix_len()).unwrap_or(r.subnet);
    Ok(IpConfig {
        interface: None,
        address,
        gateway: Some(r.gateway),
    })
}

/// The allocator over a store (the disk store by default in the plugin).
#[derive(Debug)]
pub struct Allocator<S> {
    store: S,
}

impl<S: Store> Allocator<S> {
    /// An allocator over `store`.
    pub fn new(store: S) -> Self {
        Allocator { store }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// ADD: one address from each range set, for `owner`. `requested` addresses are matched to
    /// the first set containing them; each set takes at most one.
    pub fn allocate(
        &self,
        ranges: &[RangeSet],
        requested: &[IpAddr],
        owner: &Attachment,
    ) -> Result<Vec<IpConfig>, AllocError> {
        validate(owner)?;
        let mut pending: Vec<IpAddr> = Vec::new();
        for ip in requested.iter().map(|ip| canonical(*ip)) {
            if !pending.contains(&ip) {
                pending.push(ip);
            }
        }
        // Which requested address each range set takes (the first pending one it contains)
        // depends on the config alone: a request that no set takes, or a set's gateway, is
        // refused before the store is created, locked or its round-robin cursor moved.
        let wanted: Vec<Option<IpAddr>> = ranges
            .iter()
            .map(|set| {
                pending
                    .iter()
                    .position(|ip| set.contains(*ip))
                    .map(|i| pending.remove(i))
            })
            .collect();
        if !pending.is_empty() {
            return Err(AllocError::RequestedUnused(pending));
        }
        for (index, (set, want)) in ranges.iter().zip(&wanted).enumerate() {
            if let Some(ip) = *want
                && set.range_for(ip).is_some_and(|r| r.gateway == ip)
            {
                return Err(AllocError::Range {
                    index,
                    source: Box::new(AllocError::RequestedIsGateway(ip)),
                });
            }
        }
        let Some(mut s) = self.store.session(true)? else {
            return Err(AllocError::Exhausted(String::new()));
        };
        let mut held: Option<Vec<Reservation>> = None;
        let mut reserved: Vec<IpAddr> = Vec::new();
        let mut out = Vec::with_capacity(ranges.len());
        for (index, (set, want)) in ranges.iter().zip(wanted).enumerate() {
            match allocate_one(&mut s, set, index, owner, want, &mut held) {
                Ok(cfg) => {
                    reserved.push(cfg.address.addr());
                    out.push(cfg);
                }
                Err(e) => {
                    for ip in &reserved {
                        let _ = s.release(*ip);
                    }
                    return Err(AllocError::Range {
                        index,
                        source: Box::new(e),
                    });
                }
            }
        }
        Ok(out)
    }

    /// DEL: release `owner`'s addresses; returns them. Nothing held is not an error, and an
    /// attachment ADD would refuse (an invalid container ID or interface name) holds nothing.
    pub fn release(&self, owner: &Attachment) -> Result<Vec<IpAddr>, AllocError> {
        if validate(owner).is_err() {
            return Ok(Vec::new());
        }
        let Some(mut s) = self.store.session(false)? else {
            return Ok(Vec::new());
        };
        let found = s.find(owner)?;
        let exact: Vec<&Reservation> = found
            .iter()
            .filter(|r| r.holder.is_exactly(owner))
            .collect();
        let targets: Vec<&Reservation> = if exact.is_empty() {
            found
                .iter()
                .filter(|r| r.holder.is_legacy_of(owner))
                .collect()
        } else {
            exact
        };
        let mut released = Vec::new();
        let mut errors = Vec::new();
        for r in targets {
            match s.release(r.ip) {
                Ok(true) => released.push(r.ip),
                Ok(false) => {}
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(released)
        } else {
            Err(AllocError::Release(errors))
        }
    }

    /// CHECK: `owner` (or, for legacy reservations, its container) holds an address.
    pub fn check(&self, owner: &Attachment) -> Result<(), AllocError> {
        validate(owner)?;
        let found = match self.store.session(false)? {
            None => Vec::new(),
            Some(mut s) => s.find(owner)?,
        };
        if found.is_empty() {
            return Err(AllocError::NotFound(owner.container_id.clone()));
        }
        Ok(())
    }

    /// GC: release every reservation not held by one of `valid`; returns what was released.
    /// Every release is tried; failures are reported together.
    pub fn gc(&self, valid: &[Attachment]) -> Result<Vec<Reservation>, AllocError> {
        let Some(mut s) = self.store.session(false)? else {
            return Ok(Vec::new());
        };
        let exact: HashSet<(&str, &str)> = valid
            .iter()
            .map(|a| (a.container_id.trim(), a.ifname.as_str()))
            .collect();
        let ids: HashSet<&str> = valid.iter().map(|a| a.container_id.trim()).collect();
        let mut released = Vec::new();
        let mut errors = Vec::new();
        for r in s.reservations()? {
            let keep = match &r.holder {
                Holder::Attachment(a) => {
                    exact.contains(&(a.container_id.as_str(), a.ifname.as_str()))
                }
                Holder::Legacy(id) => !id.is_empty() && ids.contains(id.as_str()),
            };
            if keep {
                continue;
            }
            match s.release(r.ip) {
                Ok(_) => released.push(r),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(released)
        } else {
            Err(AllocError::Release(errors))
        }
    }

    /// STATUS: every range set has at least one free address.
    pub fn status(&self, ranges: &[RangeSet]) -> Result<(), AllocError> {
        let addrs: HashSet<IpAddr> = match self.store.session(false)? {
            None => HashSet::new(),
            Some(mut s) => s.addresses()?.into_iter().collect(),
        };
        let mut full = Vec::new();
        for (i, set) in ranges.iter().enumerate() {
            let used = addrs.iter().filter(|ip| set.is_allocatable(**ip)).count() as u128;
            if used >= set.capacity() {
                full.push((i, set.to_string()));
            }
        }
        if full.is_empty() {
            Ok(())
        } else {
            Err(AllocError::Unavailable(full))
        }
    }
}

/// The result entry for `ip`, just reserved; if it cannot be built, the reservation is given
/// back so that a failed ADD leaves nothing behind.
fn reserved_config<T: Session>(
    s: &mut T,
    ip: IpAddr,
    set: &RangeSet,
) -> Result<IpConfig, AllocError> {
    ip_config(ip, set).inspect_err(|_| {
        let _ = s.release(ip);
    })
}

fn allocate_one<T: Session>(
    s: &mut T,
    set: &RangeSet,
    index: usize,
    owner: &Attachment,
    requested: Option<IpAddr>,
    held: &mut Option<Vec<Reservation>>,
) -> Result<IpConfig, AllocError> {
    if let Some(ip) = requested {
        // (A requested gateway was refused before the store was opened.)
        if !s.reserve(ip, owner, index)? {
            return Err(AllocError::RequestedUnavailable {
                ip,
                set: set.to_string(),
            });
        }
        return reserved_config(s, ip, set);
    }
    let held = match held {
        Some(h) => h,
        None => held.insert(s.find(owner)?),
    };
    if let Some(r) = held.iter().find(|r| set.contains(r.ip)) {
        return Err(AllocError::Duplicate {
            ip: r.ip,
            id: owner.container_id.clone(),
        });
    }
    // As the reference: an unreadable last reserved address only costs round robin.
    let last = s.last_reserved(index).unwrap_or(None);
    for (ip, _) in set.iter_from(last) {
        if s.reserve(ip, owner, index)? {
            return reserved_config(s, ip, set);
        }
    }
    Err(AllocError::Exhausted(set.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;
    use cni_types::capabilities::IpRange;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn set(subnets: &[&str]) -> RangeSet {
        let raw: Vec<IpRange> = subnets
            .iter()
            .map(|s| IpRange {
                subnet: s.parse().unwrap(),
                range_start: None,
                range_end: None,
                gateway: None,
            })
            .collect();
        RangeSet::new(&raw).unwrap()
    }

    fn att(id: &str) -> Attachment {
        Attachment {
            container_id: id.into(),
            ifname: "eth0".into(),
        }
    }

    fn alloc_with(
        subnets: &[&str],
        taken: &[&str],
        last: Option<&str>,
    ) -> Result<Vec<IpConfig>, AllocError> {
        let store = MemStore::new();
        for t in taken {
            store.insert(ip(t), Holder::Legacy("id".into())).unwrap();
        }
        if let Some(l) = last {
            store.set_last_reserved(0, ip(l)).unwrap();
        }
        Allocator::new(store).allocate(&[set(subnets)], &[], &att("ID"))
    }

    #[test]
    fn round_robin_table() {
        type Case<'a> = (&'a [&'a str], &'a [&'a str], Option<&'a str>, &'a str);
        let cases: &[Case] = &[
            (&["10.0.0.0/29"], &[], None, "10.0.0.2"),
            (&["2001:db8:1::0/64"], &[], None, "2001:db8:1::2"),
            (&["10.0.0.0/30"], &[], None, "10.0.0.2"),
            (&["10.0.0.0/29"], &["10.0.0.2"], None, "10.0.0.3"),
            (&["10.0.0.0/29"], &[], Some("10.0.0.5"), "10.0.0.6"),
            (
                &["10.0.0.0/29"],
                &["10.0.0.4", "10.0.0.5"],
                Some("10.0.0.3"),
                "10.0.0.6",
            ),
            (
                &["10.0.0.0/29"],
                &["10.0.0.6"],
                Some("10.0.0.5"),
                "10.0.0.2",
            ),
            (
                &["10.0.0.0/29"],
                &["10.0.0.2"],
                Some("10.0.0.128"),
                "10.0.0.3",
            ),
            (
                &["10.0.0.0/29"],
                &["10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"],
                Some("10.0.0.3"),
                "10.0.0.3",
            ),
            (&["10.0.0.0/30", "10.0.1.0/30"], &[], None, "10.0.0.2"),
            (
                &["10.0.0.0/30", "10.0.1.0/30"],
                &[],
                Some("10.0.0.2"),
                "10.0.1.2",
            ),
            (
                &["10.0.0.0/30", "10.0.1.0/30", "10.0.2.0/30"],
                &[],
                Some("10.0.2.2"),
                "10.0.0.2",
            ),
        ];
        for (i, (subnets, taken, last, want)) in cases.iter().enumerate() {
            let got = alloc_with(subnets, taken, *last).unwrap();
            assert_eq!(got[0].address.addr().to_string(), *want, "case {i}");
        }
    }

    #[test]
    fn out_of_addresses_is_a_meaningful_error() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["10.0.0.0/30"], &["10.0.0.2"]),
            (
                &["10.0.0.0/29"],
                &["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"],
            ),
            (&["10.0.0.0/30", "10.0.1.0/30"], &["10.0.0.2", "10.0.1.2"]),
        ];
        for (subnets, taken) in cases {
            let e = alloc_with(subnets, taken, None).unwrap_err();
            assert!(
                e.to_string().starts_with(
                    "failed to allocate for range 0: no IP addresses available in range set: "
                ),
                "{e}"
            );
        }
        let e = alloc_with(
            &["10.0.0.0/30", "10.0.1.0/30"],
            &["10.0.0.2", "10.0.1.2"],
            None,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to allocate for range 0: no IP addresses available in range set: 10.0.0.1-10.0.0.2,10.0.1.1-10.0.1.2"
        );
    }

    #[test]
    fn never_the_broadcast_and_round_robin_after_release() {
        let a = Allocator::new(MemStore::new());
        let s = [set(&["192.168.1.0/29"])];
        for i in 2..7 {
            let got = a.allocate(&s, &[], &att(&format!("ID{i}"))).unwrap();
            assert_eq!(got[0].address.to_string(), format!("192.168.1.{i}/29"));
            assert_eq!(got[0].gateway, Some(ip("192.168.1.1")));
        }
        assert!(a.allocate(&s, &[], &att("ID8")).is_err());

        let a = Allocator::new(MemStore::new());
        let got = a.allocate(&s, &[], &att("ID")).unwrap();
        assert_eq!(got[0].address.to_string(), "192.168.1.2/29");
        assert_eq!(a.release(&att("ID")).unwrap(), [ip("192.168.1.2")]);
        let got = a.allocate(&s, &[], &att("ID")).unwrap();
        assert_eq!(got[0].address.to_string(), "192.168.1.3/29");
    }

    #[test]
    fn requested_addresses() {
        let s = [set(&["192.168.1.0/29"])];
        let a = Allocator::new(MemStore::new());
        let got = a.allocate(&s, &[ip("192.168.1.5")], &att("ID")).unwrap();
        assert_eq!(got[0].address.to_string(), "192.168.1.5/29");
        let e = a
            .allocate(&s, &[ip("192.168.1.5")], &att("ID"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to allocate for range 0: requested IP address 192.168.1.5 is not available in range set 192.168.1.1-192.168.1.6"
        );
        let e = a.allocate(&s, &[ip("192.168.1.1")], &att("X")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to allocate for range 0: requested ip 192.168.1.1 is subnet's gateway"
        );
        // Outside the range (after RangeEnd, before RangeStart): fits no set.
        for outside in ["192.168.1.7", "192.168.1.0", "10.0.0.1"] {
            let e = a.allocate(&s, &[ip(outside)], &att("Y")).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("failed to allocate all requested IPs: {outside}")
            );
        }
        assert_eq!(a.store().snapshot().unwrap().len(), 1, "nothing leaked");
    }

    #[test]
    fn duplicate_attachment_is_refused_and_legacy_counts() {
        let s = [set(&["10.1.2.0/24"])];
        let a = Allocator::new(MemStore::new());
        a.allocate(&s, &[], &att("dummy")).unwrap();
        let e = a.allocate(&s, &[], &att("dummy")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to allocate for range 0: 10.1.2.2 has been allocated to dummy, duplicate allocation is not allowed"
        );
        let other_if = Attachment {
            container_id: "dummy".into(),
            ifname: "eth1".into(),
        };
        assert!(
            a.allocate(&s, &[], &other_if).is_ok(),
            "another interface is fine"
        );
        let store = MemStore::new();
        store
            .insert(ip("10.1.2.9"), Holder::Legacy("old".into()))
            .unwrap();
        let a = Allocator::new(store);
        let e = a.allocate(&s, &[], &att("old")).unwrap_err();
        assert!(
            e.to_string().contains("10.1.2.9 has been allocated to old"),
            "{e}"
        );
    }

    #[test]
    fn later_set_failure_releases_earlier_sets() {
        let store = MemStore::new();
        store
            .insert(ip("10.0.1.2"), Holder::Legacy("x".into()))
            .unwrap();
        let a = Allocator::new(store);
        let sets = [set(&["10.0.0.0/24"]), set(&["10.0.1.0/30"])];
        let e = a.allocate(&sets, &[], &att("ID")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("failed to allocate for range 1: no IP addresses")
        );
        assert_eq!(a.store().snapshot().unwrap().len(), 1, "set 0 was released");
        // An unused requested address releases everything too.
        let sets = [set(&["10.1.2.0/24"]), set(&["10.1.3.0/24"])];
        let e = a
            .allocate(&sets, &[ip("10.1.2.88"), ip("10.1.2.77")], &att("ID"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to allocate all requested IPs: 10.1.2.77"
        );
        assert_eq!(a.store().snapshot().unwrap().len(), 1);
    }

    #[test]
    fn release_prefers_exact_then_legacy() {
        let store = MemStore::new();
        store
            .insert(ip("10.0.0.5"), Holder::Legacy("c".into()))
            .unwrap();
        let a = Allocator::new(store);
        let s = [set(&["10.0.0.0/24"])];
        a.allocate(
            &s,
            &[],
            &Attachment {
                container_id: "c".into(),
                ifname: "eth1".into(),
            },
        )
        .unwrap_err(); // legacy counts as a duplicate in the same set
        assert_eq!(a.release(&att("c")).unwrap(), [ip("10.0.0.5")]);
        assert!(a.release(&att("c")).unwrap().is_empty(), "idempotent");
        assert!(a.release(&att("unknown")).unwrap().is_empty());
    }

    #[test]
    fn check_rule() {
        let store = MemStore::new();
        store
            .insert(ip("10.0.0.5"), Holder::Legacy("legacy".into()))
            .unwrap();
        let a = Allocator::new(store);
        a.allocate(&[set(&["10.0.0.0/24"])], &[], &att("c"))
            .unwrap();
        assert!(a.check(&att("c")).is_ok());
        assert!(a.check(&att("legacy")).is_ok());
        assert_eq!(
            a.check(&att("nope")).unwrap_err().to_string(),
            "host-local: Failed to find address added by container nope"
        );
    }

    #[test]
    fn gc_rules() {
        let store = MemStore::new();
        let r = |s: &str| ip(s);
        let h = |id: &str, ifname: &str| {
            Holder::Attachment(Attachment {
                container_id: id.into(),
                ifname: ifname.into(),
            })
        };
        store.insert(r("10.0.0.1"), h("keep", "eth0")).unwrap();
        store.insert(r("10.0.0.2"), h("gone", "eth0")).unwrap();
        store.insert(r("10.0.0.3"), h("twoif", "eth0")).unwrap();
        store.insert(r("10.0.0.4"), h("twoif", "eth1")).unwrap();
        store
            .insert(r("10.0.0.9"), Holder::Legacy("legacy-id".into()))
            .unwrap();
        store
            .insert(r("10.0.0.10"), Holder::Legacy("stale-legacy".into()))
            .unwrap();
        store
            .insert(r("10.0.0.11"), Holder::Legacy(String::new()))
            .unwrap();
        let a = Allocator::new(store);
        let valid = [
            Attachment {
                container_id: "keep".into(),
                ifname: "eth0".into(),
            },
            Attachment {
                container_id: "twoif".into(),
                ifname: "eth0".into(),
            },
            Attachment {
                container_id: "legacy-id".into(),
                ifname: "eth0".into(),
            },
        ];
        let mut released: Vec<String> = a
            .gc(&valid)
            .unwrap()
            .iter()
            .map(|r| r.ip.to_string())
            .collect();
        released.sort();
        assert_eq!(released, ["10.0.0.10", "10.0.0.11", "10.0.0.2", "10.0.0.4"]);
        assert_eq!(a.store().snapshot().unwrap().len(), 3);
        assert_eq!(
            a.gc(&[]).unwrap().len(),
            3,
            "an empty list releases everything"
        );
        assert!(a.store().snapshot().unwrap().is_empty());
    }

    #[test]
    fn status_reports_exhausted_sets() {
        let store = MemStore::new();
        store
            .insert(ip("10.0.0.2"), Holder::Legacy("x".into()))
            .unwrap();
        let a = Allocator::new(store);
        let free = set(&["10.0.1.0/24"]);
        let full = set(&["10.0.0.0/30"]);
        assert!(a.status(std::slice::from_ref(&free)).is_ok());
        let e = a.status(&[free, full]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "range set 1: no IP addresses available in range set: 10.0.0.1-10.0.0.2"
        );
        // A reservation of the gateway or outside the ranges does not count.
        let store = MemStore::new();
        store
            .insert(ip("10.0.0.1"), Holder::Legacy("x".into()))
            .unwrap();
        store
            .insert(ip("10.0.0.3"), Holder::Legacy("x".into()))
            .unwrap();
        assert!(
            Allocator::new(store)
                .status(&[set(&["10.0.0.0/30"])])
                .is_ok()
        );
    }

    #[test]
    fn invalid_attachments_are_refused_before_touching_the_store() {
        let a = Allocator::new(MemStore::new());
        let bad = Attachment {
            container_id: "../x".into(),
            ifname: "eth0".into(),
        };
        assert!(matches!(
            a.allocate(&[set(&["10.0.0.0/24"])], &[], &bad),
            Err(AllocError::InvalidAttachment(_))
        ));
        let bad_if = Attachment {
            container_id: "x".into(),
            ifname: "a\r\nb".into(),
        };
        assert!(a.check(&bad_if).is_err());
        assert!(a.store().snapshot().unwrap().is_empty());
    }

    #[test]
    fn releasing_an_attachment_add_refuses_succeeds_and_frees_nothing() {
        let store = MemStore::new();
        // A reservation whose holder text an invalid interface name could be made to match.
        store
            .insert(ip("10.0.0.9"), Holder::parse("x\r\na"))
            .unwrap();
        let a = Allocator::new(store);
        let bad_if = Attachment {
            container_id: "x".into(),
            ifname: "a\r\nb".into(),
        };
        assert!(a.release(&bad_if).unwrap().is_empty());
        let bad_id = Attachment {
            container_id: "../x".into(),
            ifname: "eth0".into(),
        };
        assert!(a.release(&bad_id).unwrap().is_empty());
        assert_eq!(a.store().snapshot().unwrap().len(), 1);
    }
}
