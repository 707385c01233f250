//! IP addresses on links.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use netlink_packet_core::NLM_F_REPLACE;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};

use super::{CREATE_EXCL, Handle, IpFamily, Result};

/// `IFA_F_*` address flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AddrFlags(pub u32);

impl AddrFlags {
    /// No flags.
    pub const NONE: AddrFlags = AddrFlags(0);
    /// `IFA_F_SECONDARY`.
    pub const SECONDARY: AddrFlags = AddrFlags(0x01);
    /// `IFA_F_NODAD`: skip IPv6 duplicate address detection.
    pub const NODAD: AddrFlags = AddrFlags(0x02);
    /// `IFA_F_OPTIMISTIC`.
    pub const OPTIMISTIC: AddrFlags = AddrFlags(0x04);
    /// `IFA_F_DADFAILED`.
    pub const DADFAILED: AddrFlags = AddrFlags(0x08);
    /// `IFA_F_DEPRECATED`.
    pub const DEPRECATED: AddrFlags = AddrFlags(0x20);
    /// `IFA_F_TENTATIVE`: IPv6 DAD still running.
    pub const TENTATIVE: AddrFlags = AddrFlags(0x40);
    /// `IFA_F_PERMANENT`.
    pub const PERMANENT: AddrFlags = AddrFlags(0x80);
    /// `IFA_F_NOPREFIXROUTE`: do not add the prefix route.
    pub const NOPREFIXROUTE: AddrFlags = AddrFlags(0x200);

    /// True if every flag of `other` is set.
    pub fn contains(self, other: AddrFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for AddrFlags {
    type Output = AddrFlags;
    fn bitor(self, rhs: AddrFlags) -> AddrFlags {
        AddrFlags(self.0 | rhs.0)
    }
}

/// An address as reported by `RTM_GETADDR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    /// Link index.
    pub index: u32,
    /// Address with its prefix length (host bits kept, e.g. `10.1.2.3/24`).
    pub addr: IpNet,
    /// `IFA_F_*` flags.
    pub flags: AddrFlags,
    /// Scope (`RT_SCOPE_*`: 0 universe, 253 link, 254 host).
    pub scope: u8,
    /// IPv4 label, if any.
    pub label: Option<String>,
}

impl Addr {
    /// IPv6 DAD still in progress.
    pub fn is_tentative(&self) -> bool {
        self.flags.contains(AddrFlags::TENTATIVE)
    }

    /// IPv6 DAD failed.
    pub fn is_dadfailed(&self) -> bool {
        self.flags.contains(AddrFlags::DADFAILED)
    }

    fn from_message(msg: AddressMessage) -> Option<Addr> {
        let mut address = None;
        let mut local = None;
        let mut label = None;
        let mut flags = u32::from(msg.header.flags.bits());
        for attr in msg.attributes {
            match attr {
                AddressAttribute::Address(ip) => address = Some(ip),
                AddressAttribute::Local(ip) => local = Some(ip),
                AddressAttribute::Label(l) => label = Some(l),
                AddressAttribute::Flags(f) => flags = f.bits(),
                _ => {}
            }
        }
        // IPv4: IFA_LOCAL is the interface address (IFA_ADDRESS is the peer on p2p links).
        let ip = local.or(address)?;
        let addr = IpNet::new(ip, msg.header.prefix_len).ok()?;
        Some(Addr {
            index: msg.header.index,
            addr,
            flags: AddrFlags(flags),
            scope: msg.header.scope.into(),
            label,
        })
    }
}

fn addr_message(index: u32, addr: IpNet, flags: AddrFlags) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = super::family_to_af(IpFamily::of(&addr.addr()));
    msg.header.prefix_len = addr.prefix_len();
    msg.header.index = index;
    msg.header.flags = AddressHeaderFlags::from_bits_retain((flags.0 & 0xff) as u8);
    let ip = addr.addr();
    msg.attributes.push(AddressAttribute::Local(ip));
    msg.attributes.push(AddressAttribute::Address(ip));
    if let IpAddr::V4(v4) = ip {
        // Like iproute2 `brd +` / Go netlink: set the broadcast for prefixes up to /30.
        if addr.prefix_len() < 31
            && let Ok(net) = Ipv4Net::new(v4, addr.prefix_len())
        {
            msg.attributes
                .push(AddressAttribute::Broadcast(broadcast(&net)));
        }
    }
    if flags.0 > 0xff {
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::from_bits_retain(
                flags.0,
            )));
    }
    msg
}

fn broadcast(net: &Ipv4Net) -> Ipv4Addr {
    net.broadcast()
}

impl Handle {
    /// Adds `addr` (host bits kept, e.g. `10.1.2.3/24`) to link `index`, with `IFA_F_*` flags
    /// such as [`AddrFlags::NODAD`]. IPv4 addresses get the subnet broadcast. An existing
    /// identical address fails with an error whose [`super::Error::is_exists`] is true.
    pub fn addr_add(&mut self, index: u32, addr: IpNet, flags: AddrFlags) -> Result<()> {
        let msg = addr_message(index, addr, flags);
        self.ack(
            "add address",
            &addr,
            RouteNetlinkMessage::NewAddress(msg),
            CREATE_EXCL,
        )
    }

    /// Adds `addr` or updates it if present (`NLM_F_REPLACE`).
    pub fn addr_replace(&mut self, index: u32, addr: IpNet, flags: AddrFlags) -> Result<()> {
        let msg = addr_message(index, addr, flags);
        self.ack(
            "replace address",
            &addr,
            RouteNetlinkMessage::NewAddress(msg),
            netlink_packet_core::NLM_F_CREATE | NLM_F_REPLACE,
        )
    }

    /// Removes `addr` from link `index`. A missing address fails with an error whose
    /// [`super::Error::is_not_found`] is true.
    pub fn addr_del(&mut self, index: u32, addr: IpNet) -> Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = super::family_to_af(IpFamily::of(&addr.addr()));
        msg.header.prefix_len = addr.prefix_len();
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(addr.addr()));
        self.ack(
            "delete address",
            &addr,
            RouteNetlinkMessage::DelAddress(msg),
            0,
        )
    }

    /// Addresses, optionally only those of link `index` and/or of one family.
    pub fn addrs(&mut self, index: Option<u32>, family: Option<IpFamily>) -> Result<Vec<Addr>> {
        let mut out = Vec::new();
        let families: &[IpFamily] = match family {
            Some(IpFamily::V4) => &[IpFamily::V4],
            Some(IpFamily::V6) => &[IpFamily::V6],
            None => &[IpFamily::V4, IpFamily::V6],
        };
        for fam in families {
            let mut msg = AddressMessage::default();
            msg.header.family = super::family_to_af(*fam);
            msg.header.index = index.unwrap_or(0);
            self.dump(
                "list addresses",
                RouteNetlinkMessage::GetAddress(msg),
                |m| {
                    if let RouteNetlinkMessage::NewAddress(m) = m
                        && index.is_none_or(|i| i == m.header.index)
                        && let Some(a) = Addr::from_message(m)
                    {
                        out.push(a);
                    }
                    Ok(())
                },
            )?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_address_gets_broadcast_and_keeps_host_bits() {
        let msg = addr_message(3, "10.1.2.3/24".parse().unwrap(), AddrFlags::NONE);
        assert_eq!(msg.header.prefix_len, 24);
        assert!(
            msg.attributes
                .contains(&AddressAttribute::Local("10.1.2.3".parse().unwrap()))
        );
        assert!(
            msg.attributes
                .contains(&AddressAttribute::Broadcast("10.1.2.255".parse().unwrap()))
        );
        let p2p = addr_message(3, "10.1.2.3/31".parse().unwrap(), AddrFlags::NONE);
        assert!(
            !p2p.attributes
                .iter()
                .any(|a| matches!(a, AddressAttribute::Broadcast(_)))
        );
    }

    #[test]
    fn large_flags_go_into_ifa_flags() {
        let msg = addr_message(
            1,
            "fd00::2/64".parse().unwrap(),
            AddrFlags::NODAD | AddrFlags::NOPREFIXROUTE,
        );
        assert_eq!(msg.header.flags.bits(), 0x02);
        assert!(
            msg.attributes
                .contains(&AddressAttribute::Flags(AddressFlags::from_bits_retain(
                    0x202
                )))
        );
    }
}
