//! Ranges, range sets and the round-robin iterator, with the reference's defaults, validation
//! and messages.
//!
//! A [`Range`] is one subnet with the addresses handed out from it (`rangeStart` to `rangeEnd`,
//! both inclusive) and its gateway. A [`RangeSet`] is a pool of disjoint ranges of one family:
//! one address is allocated per set, so a dual-stack network has two sets.
//!
//! Defaults, as the reference's `Canonicalize`:
//! - `gateway`: the network address + 1;
//! - `rangeStart`: the network address + 1 (the iterator skips the gateway, so with the default
//!   gateway the first address handed out is `.2`);
//! - `rangeEnd`: the last address of the subnet, minus one for IPv4 (the broadcast). For IPv6
//!   it is the all-ones address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cni_types::capabilities::IpRange;
use ipnet::IpNet;

/// Why a range or range set is invalid. The messages are the reference's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RangeError {
    /// A /31 or /32 (IPv4), /127 or /128 (IPv6): nothing to hand out.
    #[error("Network {0} too small to allocate from")]
    TooSmall(IpNet),
    /// The subnet is not a network address, e.g. `10.1.2.3/24`.
    #[error(
        "Network has host bits set. For a subnet mask of length {prefix} the network address is {network}"
    )]
    HostBits {
        /// The prefix length.
        prefix: u8,
        /// The network address the subnet should have used.
        network: IpAddr,
    },
    /// An explicit gateway outside the subnet.
    #[error("gateway {gateway} not in network {subnet}")]
    GatewayNotInNetwork {
        /// The gateway.
        gateway: IpAddr,
        /// The subnet.
        subnet: IpNet,
    },
    /// `rangeStart` outside the subnet or after `rangeEnd`.
    #[error("RangeStart {start} not in network {subnet}")]
    StartNotInNetwork {
        /// `rangeStart`.
        start: IpAddr,
        /// The subnet.
        subnet: IpNet,
    },
    /// `rangeEnd` outside the subnet or before `rangeStart`.
    #[error("RangeEnd {end} not in network {subnet}")]
    EndNotInNetwork {
        /// `rangeEnd`.
        end: IpAddr,
        /// The subnet.
        subnet: IpNet,
    },
    /// `rangeStart` after `rangeEnd` once the defaults are filled in (e.g. `rangeStart` at the
    /// broadcast address with the default `rangeEnd`): nothing to hand out.
    #[error("RangeStart {start} is after RangeEnd {end}: the range is empty")]
    Empty {
        /// `rangeStart`.
        start: IpAddr,
        /// `rangeEnd`.
        end: IpAddr,
    },
    /// A range set without ranges.
    #[error("empty range set")]
    EmptySet,
    /// IPv4 and IPv6 ranges in one set.
    #[error("mixed address families")]
    MixedFamilies,
    /// Two ranges of one set overlap (named by their `start-end`).
    #[error("subnets {0} and {1} overlap")]
    Overlap(String, String),
}

/// An address as a number, IPv4 in the low 32 bits.
pub(crate) fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address of the same family as `like` with value `v` (truncated for IPv4).
pub(crate) fn from_u128(v: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from((v & 0xffff_ffff) as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// IPv4-mapped IPv6 addresses become IPv4, as Go's `To4()` canonicalisation.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// One validated range: every field is set and consistent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Range {
    /// The subnet (a network address; its prefix length is the one results carry).
    pub subnet: IpNet,
    /// First address handed out, inclusive.
    pub range_start: IpAddr,
    /// Last address handed out, inclusive.
    pub range_end: IpAddr,
    /// The gateway, never handed out.
    pub gateway: IpAddr,
}

impl Range {
    /// Validate a raw range and fill in the defaults (the reference's `Canonicalize`).
    pub fn new(raw: &IpRange) -> Result<Range, RangeError> {
        let subnet = raw.subnet;
        let prefix = subnet.prefix_len();
        let bits = subnet.max_prefix_len();
        if prefix > bits - 2 {
            return Err(RangeError::TooSmall(subnet));
        }
        let network = subnet.network();
        if subnet.addr() != network {
            return Err(RangeError::HostBits { prefix, network });
        }
        let in_subnet = |ip: IpAddr| same_family(ip, network) && subnet.contains(&ip);
        let first = from_u128(to_u128(network) + 1, network);

        let gateway = match raw.gateway.map(canonical) {
            None => first,
            Some(gw) if in_subnet(gw) => gw,
            Some(gw) => {
                return Err(RangeError::GatewayNotInNetwork {
                    gateway: gw,
                    subnet,
                });
            }
        };
        let raw_end = raw.range_end.map(canonical);
        let range_start = match raw.range_start.map(canonical) {
            None => first,
            Some(start) => {
                let before_end = raw_end.is_none_or(|end| to_u128(start) <= to_u128(end));
                if !in_subnet(start) || !before_end {
                    return Err(RangeError::StartNotInNetwork { start, subnet });
                }
                start
            }
        };
        let range_end = match raw_end {
            None => {
                let last = to_u128(subnet.broadcast());
                from_u128(if network.is_ipv4() { last - 1 } else { last }, network)
            }
            Some(end) => {
                if !in_subnet(end) || to_u128(end) < to_u128(range_start) {
                    return Err(RangeError::EndNotInNetwork { end, subnet });
                }
                end
            }
        };
        let range = Range {
            subnet,
            range_start,
            range_end,
            gateway,
        };
        range.validate()?;
        Ok(range)
    }

    /// Check the invariants every [`Range`] must hold (the fields are public, so a range can
    /// be built without [`Range::new`]): a subnet with room for addresses, `rangeStart`,
    /// `rangeEnd` and the gateway inside it, and `rangeStart` not after `rangeEnd`.
    pub fn validate(&self) -> Result<(), RangeError> {
        let subnet = self.subnet;
        if subnet.prefix_len() > subnet.max_prefix_len() - 2 {
            return Err(RangeError::TooSmall(subnet));
        }
        let in_subnet = |ip: IpAddr| same_family(ip, subnet.addr()) && subnet.contains(&ip);
        if !in_subnet(self.gateway) {
            return Err(RangeError::GatewayNotInNetwork {
                gateway: self.gateway,
                subnet,
            });
        }
        if !in_subnet(self.range_start) {
            return Err(RangeError::StartNotInNetwork {
                start: self.range_start,
                subnet,
            });
        }
        if !in_subnet(self.range_end) {
            return Err(RangeError::EndNotInNetwork {
                end: self.range_end,
                subnet,
            });
        }
        if to_u128(self.range_start) > to_u128(self.range_end) {
            return Err(RangeError::Empty {
                start: self.range_start,
                end: self.range_end,
            });
        }
        Ok(())
    }

    /// A range with the defaults for a subnet.
    pub fn from_subnet(subnet: IpNet) -> Result<Range, RangeError> {
        Range::new(&IpRange {
            subnet,
            range_start: None,
            range_end: None,
            gateway: None,
        })
    }

    /// Whether `ip` is an allocatable address of this range: same family, in the subnet,
    /// between `rangeStart` and `rangeEnd` (the gateway is *not* excluded, as in the reference).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        same_family(ip, self.range_start)
            && self.subnet.contains(&ip)
            && to_u128(ip) >= to_u128(self.range_start)
            && to_u128(ip) <= to_u128(self.range_end)
    }

    /// Whether two ranges share an address (never across families).
    pub fn overlaps(&self, other: &Range) -> bool {
        same_family(self.range_start, other.range_start)
            && (self.contains(other.range_start)
                || self.contains(other.range_end)
                || other.contains(self.range_start)
                || other.contains(self.range_end))
    }

    /// How many addresses can be handed out: the range minus the gateway if it lies inside.
    /// Zero for a range that is not valid (`rangeStart` after `rangeEnd`); saturating for the
    /// whole IPv6 space.
    pub fn capacity(&self) -> u128 {
        let (start, end) = (to_u128(self.range_start), to_u128(self.range_end));
        if start > end || !same_family(self.range_start, self.range_end) {
            return 0;
        }
        let n = (end - start).saturating_add(1);
        if self.contains(self.gateway) {
            n.saturating_sub(1)
        } else {
            n
        }
    }
}

impl fmt::Display for Range {
    /// `start-end`, as the reference prints a range.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.range_start, self.range_end)
    }
}

/// A validated, non-empty set of disjoint ranges of one family.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RangeSet(Vec<Range>);

impl RangeSet {
    /// Validate raw ranges as the reference's `RangeSet.Canonicalize`: non-empty, every range
    /// valid, one family, no overlaps.
    pub fn new(raw: &[IpRange]) -> Result<RangeSet, RangeError> {
        if raw.is_empty() {
            return Err(RangeError::EmptySet);
        }
        let mut ranges: Vec<Range> = Vec::with_capacity(raw.len());
        for r in raw {
            let r = Range::new(r)?;
            if let Some(first) = ranges.first()
                && !same_family(first.range_start, r.range_start)
            {
                return Err(RangeError::MixedFamilies);
            }
            ranges.push(r);
        }
        RangeSet::from_ranges(ranges)
    }

    /// A set from ranges built elsewhere: checks each range ([`Range::validate`]), the family
    /// and overlaps.
    pub fn from_ranges(ranges: Vec<Range>) -> Result<RangeSet, RangeError> {
        let Some(first) = ranges.first() else {
            return Err(RangeError::EmptySet);
        };
        for r in &ranges {
            r.validate()?;
        }
        if ranges
            .iter()
            .any(|r| !same_family(r.range_start, first.range_start))
        {
            return Err(RangeError::MixedFamilies);
        }
        for (i, a) in ranges.iter().enumerate() {
            for b in &ranges[i + 1..] {
                if a.overlaps(b) {
                    return Err(RangeError::Overlap(a.to_string(), b.to_string()));
                }
            }
        }
        Ok(RangeSet(ranges))
    }

    /// The ranges, in configuration order.
    pub fn ranges(&self) -> &[Range] {
        &self.0
    }

    /// Whether the set is IPv4.
    pub fn is_ipv4(&self) -> bool {
        self.0[0].range_start.is_ipv4()
    }

    /// The first range containing `ip`.
    pub fn range_for(&self, ip: IpAddr) -> Option<&Range> {
        self.0.iter().find(|r| r.contains(ip))
    }

    /// Whether any range contains `ip`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.range_for(ip).is_some()
    }

    /// Whether any range of `self` overlaps any range of `other`.
    pub fn overlaps(&self, other: &RangeSet) -> bool {
        self.0.iter().any(|a| other.0.iter().any(|b| a.overlaps(b)))
    }

    /// How many addresses the set can hand out (saturating).
    pub fn capacity(&self) -> u128 {
        self.0
            .iter()
            .fold(0u128, |acc, r| acc.saturating_add(r.capacity()))
    }

    /// Whether `ip` is an address the iterator can hand out (in a range, not its gateway).
    pub fn is_allocatable(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|r| r.contains(ip) && r.gateway != ip)
    }

    /// The round-robin iterator: it starts after `last_reserved` when that address is in the
    /// set, else at `rangeStart` of the first range; it skips gateways, wraps across ranges and
    /// stops after one full loop (so `last_reserved` itself comes last).
    pub fn iter_from(&self, last_reserved: Option<IpAddr>) -> RangeIter<'_> {
        let last = last_reserved.map(canonical);
        let found = last.and_then(|ip| {
            self.0
                .iter()
                .position(|r| r.contains(ip))
                .map(|idx| (idx, to_u128(ip)))
        });
        match found {
            Some((idx, cur)) => RangeIter {
                set: self,
                idx,
                cur: Some(cur),
                start: None,
            },
            None => RangeIter {
                set: self,
                idx: 0,
                cur: None,
                start: None,
            },
        }
    }
}

impl fmt::Display for RangeSet {
    /// Ranges joined with `,`, as the reference prints a range set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// Candidate addresses of a [`RangeSet`] in the reference's order. Yields each address with
/// the range it belongs to.
#[derive(Clone, Debug)]
pub struct RangeIter<'a> {
    set: &'a RangeSet,
    idx: usize,
    cur: Option<u128>,
    start: Option<u128>,
}

impl<'a> Iterator for RangeIter<'a> {
    type Item = (IpAddr, &'a Range);

    fn next(&mut self) -> Option<Self::Item> {
        let ranges = &self.set.0;
        loop {
            let r = &ranges[self.idx];
            let Some(cur) = self.cur else {
                // First call without a last reserved address: rangeStart is inclusive.
                let v = to_u128(r.range_start);
                self.cur = Some(v);
                self.start = Some(v);
                if r.range_start == r.gateway {
                    continue;
                }
                return Some((r.range_start, r));
            };
            // (`>=`: never walk past the end, even of a range built by hand.)
            let next = if cur >= to_u128(r.range_end) {
                self.idx = (self.idx + 1) % ranges.len();
                to_u128(ranges[self.idx].range_start)
            } else {
                cur + 1
            };
            self.cur = Some(next);
            match self.start {
                None => self.start = Some(next),
                Some(s) if s == next => return None,
                Some(_) => {}
            }
            let r = &ranges[self.idx];
            let ip = from_u128(next, r.range_start);
            if ip == r.gateway {
                continue;
            }
            return Some((ip, r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(subnet: &str) -> IpRange {
        IpRange {
            subnet: subnet.parse().unwrap(),
            range_start: None,
            range_end: None,
            gateway: None,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sane_defaults_v4() {
        let r = Range::new(&raw("192.0.2.0/24")).unwrap();
        assert_eq!(r.range_start, ip("192.0.2.1"));
        assert_eq!(r.range_end, ip("192.0.2.254"));
        assert_eq!(r.gateway, ip("192.0.2.1"));
        let r = Range::new(&raw("192.0.2.0/25")).unwrap();
        assert_eq!(r.range_end, ip("192.0.2.126"));
    }

    #[test]
    fn sane_defaults_v6() {
        let r = Range::new(&raw("2001:DB8:1::/64")).unwrap();
        assert_eq!(r.range_start, ip("2001:db8:1::1"));
        assert_eq!(r.range_end, ip("2001:db8:1::ffff:ffff:ffff:ffff"));
        assert_eq!(r.gateway, ip("2001:db8:1::1"));
    }

    #[test]
    fn rejects_host_bits_and_small_networks() {
        for (s, msg) in [
            (
                "192.0.2.12/24",
                "Network has host bits set. For a subnet mask of length 24 the network address is 192.0.2.0",
            ),
            (
                "2001:DB8:1::24:19ff:fee1:c44a/64",
                "Network has host bits set. For a subnet mask of length 64 the network address is 2001:db8:1::",
            ),
            (
                "2001:DB8:24:19ff::/63",
                "Network has host bits set. For a subnet mask of length 63 the network address is 2001:db8:24:19fe::",
            ),
            (
                "192.168.127.0/23",
                "Network has host bits set. For a subnet mask of length 23 the network address is 192.168.126.0",
            ),
            (
                "192.0.2.0/31",
                "Network 192.0.2.0/31 too small to allocate from",
            ),
            (
                "192.0.2.0/32",
                "Network 192.0.2.0/32 too small to allocate from",
            ),
            (
                "2001:db8::/127",
                "Network 2001:db8::/127 too small to allocate from",
            ),
        ] {
            assert_eq!(Range::new(&raw(s)).unwrap_err().to_string(), msg, "{s}");
        }
        assert!(Range::new(&raw("192.0.2.0/30")).is_ok());
        assert!(Range::new(&raw("2001:db8::/126")).is_ok());
    }

    #[test]
    fn gateway_must_be_in_subnet() {
        let mut r = raw("10.0.0.0/24");
        r.gateway = Some(ip("192.168.1.1"));
        assert_eq!(
            Range::new(&r).unwrap_err().to_string(),
            "gateway 192.168.1.1 not in network 10.0.0.0/24"
        );
        r.gateway = Some(ip("2001:db8::1"));
        assert_eq!(
            Range::new(&r).unwrap_err().to_string(),
            "gateway 2001:db8::1 not in network 10.0.0.0/24"
        );
        r.gateway = Some(ip("10.0.0.254"));
        assert_eq!(Range::new(&r).unwrap().gateway, ip("10.0.0.254"));
    }

    #[test]
    fn rejects_bad_start_and_end() {
        let mut r = raw("192.0.2.0/24");
        r.range_start = Some(ip("192.0.3.0"));
        assert_eq!(
            Range::new(&r).unwrap_err().to_string(),
            "RangeStart 192.0.3.0 not in network 192.0.2.0/24"
        );
        let mut r = raw("192.0.2.0/24");
        r.range_end = Some(ip("192.0.4.0"));
        assert_eq!(
            Range::new(&r).unwrap_err().to_string(),
            "RangeEnd 192.0.4.0 not in network 192.0.2.0/24"
        );
        let mut r = raw("192.0.2.0/24");
        r.range_start = Some(ip("192.0.2.50"));
        r.range_end = Some(ip("192.0.2.40"));
        assert_eq!(
            Range::new(&r).unwrap_err().to_string(),
            "RangeStart 192.0.2.50 not in network 192.0.2.0/24"
        );
    }

    #[test]
    fn a_range_empty_after_the_defaults_is_refused() {
        // rangeStart at the broadcast address: the default rangeEnd (.254) comes before it.
        let mut r = raw("10.99.8.0/24");
        r.range_start = Some(ip("10.99.8.255"));
        assert_eq!(
            Range::new(&r).unwrap_err(),
            RangeError::Empty {
                start: ip("10.99.8.255"),
                end: ip("10.99.8.254")
            }
        );
        assert_eq!(
            Range::new(&r).unwrap_err().to_string(),
            "RangeStart 10.99.8.255 is after RangeEnd 10.99.8.254: the range is empty"
        );
        // The last usable address alone is a range of one.
        r.range_start = Some(ip("10.99.8.254"));
        assert_eq!(Range::new(&r).unwrap().capacity(), 1);
        // rangeEnd before the default rangeStart (.1), with rangeStart left out.
        let mut r = raw("10.99.8.0/24");
        r.range_end = Some(ip("10.99.8.0"));
        assert!(matches!(
            Range::new(&r).unwrap_err(),
            RangeError::EndNotInNetwork { .. }
        ));
    }

    #[test]
    fn ranges_built_by_hand_are_checked_by_the_set() {
        let good = Range::new(&raw("10.0.0.0/24")).unwrap();
        let cases = [
            (
                Range {
                    range_start: ip("10.0.0.255"),
                    range_end: ip("10.0.0.254"),
                    ..good
                },
                "RangeStart 10.0.0.255 is after RangeEnd 10.0.0.254: the range is empty",
            ),
            (
                Range {
                    range_start: ip("10.0.1.1"),
                    ..good
                },
                "RangeStart 10.0.1.1 not in network 10.0.0.0/24",
            ),
            (
                Range {
                    range_end: ip("2001:db8::1"),
                    ..good
                },
                "RangeEnd 2001:db8::1 not in network 10.0.0.0/24",
            ),
            (
                Range {
                    gateway: ip("10.0.1.1"),
                    ..good
                },
                "gateway 10.0.1.1 not in network 10.0.0.0/24",
            ),
        ];
        for (r, msg) in cases {
            assert_eq!(RangeSet::from_ranges(vec![r]).unwrap_err().to_string(), msg);
        }
        assert!(RangeSet::from_ranges(vec![good]).is_ok());
    }

    #[test]
    fn capacity_never_underflows() {
        let hand = |subnet: &str, start: &str, end: &str, gw: &str| Range {
            subnet: subnet.parse().unwrap(),
            range_start: ip(start),
            range_end: ip(end),
            gateway: ip(gw),
        };
        // start past end (only buildable by hand): nothing to hand out.
        assert_eq!(
            hand("10.0.0.0/24", "10.0.0.255", "10.0.0.254", "10.0.0.1").capacity(),
            0
        );
        assert_eq!(
            hand("10.0.0.0/24", "10.0.0.200", "10.0.0.2", "10.0.0.100").capacity(),
            0
        );
        // /32 and /128: one address, which is also the gateway.
        assert_eq!(
            hand("10.0.0.7/32", "10.0.0.7", "10.0.0.7", "10.0.0.7").capacity(),
            0
        );
        assert_eq!(
            hand(
                "2001:db8::7/128",
                "2001:db8::7",
                "2001:db8::7",
                "2001:db8::7"
            )
            .capacity(),
            0
        );
        assert_eq!(
            hand(
                "2001:db8::7/128",
                "2001:db8::7",
                "2001:db8::7",
                "2001:db8::8"
            )
            .capacity(),
            1
        );
        // /31: two addresses, one of them the gateway.
        assert_eq!(
            hand("10.0.0.0/31", "10.0.0.0", "10.0.0.1", "10.0.0.1").capacity(),
            1
        );
        // The whole IPv6 space saturates.
        assert_eq!(
            hand(
                "::/0",
                "::",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                "::1"
            )
            .capacity(),
            u128::MAX - 1
        );
        // Mixed families (by hand): nothing.
        assert_eq!(
            hand("10.0.0.0/24", "10.0.0.2", "2001:db8::1", "10.0.0.1").capacity(),
            0
        );
    }

    #[test]
    fn parses_all_fields_and_contains() {
        let mut r = raw("192.0.2.0/24");
        r.range_start = Some(ip("192.0.2.40"));
        r.range_end = Some(ip("192.0.2.50"));
        r.gateway = Some(ip("192.0.2.254"));
        let r = Range::new(&r).unwrap();
        assert_eq!(r.to_string(), "192.0.2.40-192.0.2.50");
        assert!(!r.contains(ip("192.0.3.0")));
        assert!(!r.contains(ip("192.0.2.39")));
        assert!(r.contains(ip("192.0.2.40")));
        assert!(r.contains(ip("192.0.2.50")));
        assert!(!r.contains(ip("192.0.2.51")));
        assert!(r.contains(ip("::ffff:192.0.2.45")), "v4-mapped is v4");
        assert_eq!(r.capacity(), 11);

        let mut r6 = raw("2001:DB8:1::/64");
        r6.range_start = Some(ip("2001:db8:1::40"));
        r6.range_end = Some(ip("2001:db8:1::50"));
        let r6 = Range::new(&r6).unwrap();
        assert!(!r6.contains(ip("2001:db8:2::")));
        assert!(!r6.contains(ip("2001:db8:1::39")));
        assert!(r6.contains(ip("2001:db8:1::40")));
        assert!(r6.contains(ip("2001:db8:1::50")));
        assert!(!r6.contains(ip("2001:db8:1::51")));
        assert!(!r6.contains(ip("0.0.0.64")));
    }

    #[test]
    fn overlap_table() {
        let range = |s: &str, start: Option<&str>, end: Option<&str>| {
            let mut r = raw(s);
            r.range_start = start.map(ip);
            r.range_end = end.map(ip);
            Range::new(&r).unwrap()
        };
        let cases = [
            (
                range("10.0.0.0/24", None, None),
                range("10.0.1.0/24", None, None),
                false,
            ),
            (
                range("0.0.0.0/24", None, None),
                range("::/24", None, None),
                false,
            ),
            (
                range("10.0.0.0/24", None, None),
                range("10.0.0.0/24", None, None),
                true,
            ),
            (
                range("10.0.0.0/20", None, None),
                range("10.0.1.0/24", None, None),
                true,
            ),
            (
                range("10.0.0.0/24", None, Some("10.0.0.127")),
                range("10.0.0.0/24", Some("10.0.0.128"), None),
                false,
            ),
            (
                range("10.0.0.0/24", None, Some("10.0.0.127")),
                range("10.0.0.0/24", Some("10.0.0.127"), None),
                true,
            ),
        ];
        for (i, (a, b, want)) in cases.iter().enumerate() {
            assert_eq!(a.overlaps(b), *want, "case {i}");
            assert_eq!(b.overlaps(a), *want, "case {i} commuted");
        }
    }

    #[test]
    fn range_set_validation() {
        assert_eq!(RangeSet::new(&[]).unwrap_err(), RangeError::EmptySet);
        assert_eq!(
            RangeSet::new(&[raw("10.0.0.0/24"), raw("2001:db8::/64")]).unwrap_err(),
            RangeError::MixedFamilies
        );
        assert_eq!(
            RangeSet::new(&[raw("10.0.0.0/24"), raw("10.0.0.0/20")])
                .unwrap_err()
                .to_string(),
            "subnets 10.0.0.1-10.0.0.254 and 10.0.0.1-10.0.15.254 overlap"
        );
        let set = RangeSet::new(&[raw("192.168.0.0/24"), raw("172.16.1.0/24")]).unwrap();
        assert!(set.contains(ip("192.168.0.55")));
        assert!(set.contains(ip("172.16.1.2")));
        assert!(!set.contains(ip("192.168.0.0")));
        assert!(!set.contains(ip("192.168.0.255")));
        assert!(!set.contains(ip("2001:db8::1")));
        assert_eq!(
            set.to_string(),
            "192.168.0.1-192.168.0.254,172.16.1.1-172.16.1.254"
        );
        assert_eq!(set.capacity(), 2 * 253);
        let other = RangeSet::new(&[raw("172.16.0.0/16")]).unwrap();
        assert!(set.overlaps(&other));
    }

    fn collect(set: &RangeSet, last: Option<&str>) -> Vec<String> {
        set.iter_from(last.map(ip))
            .map(|(a, _)| a.to_string())
            .collect()
    }

    #[test]
    fn iterator_loops_from_beginning_middle_and_end() {
        let set = RangeSet::new(&[raw("192.168.1.0/29")]).unwrap();
        let all = [
            "192.168.1.2",
            "192.168.1.3",
            "192.168.1.4",
            "192.168.1.5",
            "192.168.1.6",
        ];
        assert_eq!(collect(&set, None), all);
        assert_eq!(collect(&set, Some("192.168.1.6")), all);
        assert_eq!(
            collect(&set, Some("192.168.1.3")),
            [
                "192.168.1.4",
                "192.168.1.5",
                "192.168.1.6",
                "192.168.1.2",
                "192.168.1.3"
            ]
        );
        // Outside the set: start from the beginning.
        assert_eq!(collect(&set, Some("10.0.0.128")), all);
        assert_eq!(collect(&set, Some("2001:db8::1")), all);
    }

    #[test]
    fn iterator_wraps_across_ranges() {
        let set =
            RangeSet::new(&[raw("10.0.0.0/30"), raw("10.0.1.0/30"), raw("10.0.2.0/30")]).unwrap();
        assert_eq!(collect(&set, None), ["10.0.0.2", "10.0.1.2", "10.0.2.2"]);
        assert_eq!(
            collect(&set, Some("10.0.0.2")),
            ["10.0.1.2", "10.0.2.2", "10.0.0.2"]
        );
        assert_eq!(
            collect(&set, Some("10.0.2.2")),
            ["10.0.0.2", "10.0.1.2", "10.0.2.2"]
        );
    }

    #[test]
    fn iterator_with_explicit_starts_and_gateway_at_start() {
        // The reference's multi-range allocator fixture: start .0, end .3 in /30s.
        let mk = |s: &str, a: &str, b: &str| {
            let mut r = raw(s);
            r.range_start = Some(ip(a));
            r.range_end = Some(ip(b));
            r
        };
        let set = RangeSet::new(&[
            mk("192.168.1.0/30", "192.168.1.0", "192.168.1.3"),
            mk("192.168.2.0/30", "192.168.2.0", "192.168.2.3"),
        ])
        .unwrap();
        let got = collect(&set, Some("192.168.1.3"));
        assert_eq!(got[0], "192.168.2.0", "starts at the next range");
        assert_eq!(got.len(), 6, "two gateways skipped");
        assert_eq!(got.last().unwrap(), "192.168.1.3");
        assert_eq!(collect(&set, None)[0], "192.168.1.0");
        // A range whose only address is its gateway yields nothing and terminates.
        let set = RangeSet::new(&[mk("10.0.0.0/30", "10.0.0.1", "10.0.0.1")]).unwrap();
        assert!(collect(&set, None).is_empty());
        assert_eq!(set.capacity(), 0);
    }
}
