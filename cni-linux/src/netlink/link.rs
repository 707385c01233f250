//! Links: listing, creating (bridge, veth, vlan, dummy), changing and deleting.

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    AfSpecInet, AfSpecInet6, AfSpecUnspec, InetDevConf, InfoBridge, InfoBridgePort, InfoData,
    InfoKind, InfoPortData, InfoPortKind, InfoVeth, InfoVlan, LinkAttribute, LinkExtentMask,
    LinkFlags, LinkInfo, LinkMessage, State,
};

use super::{CREATE_EXCL, Error, Handle, Result};

/// `IFNAMSIZ - 1`: the longest interface name the kernel accepts.
const IFNAME_MAX: usize = 15;

/// A network interface as reported by `RTM_GETLINK`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Link {
    /// Interface index (unique within its namespace).
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// `IFLA_INFO_KIND`: `"bridge"`, `"veth"`, `"vlan"`, `"dummy"`…; `None` for physical
    /// devices and loopback.
    pub kind: Option<String>,
    /// Hardware address, when it is a 6-byte Ethernet address.
    pub mac: Option<[u8; 6]>,
    /// MTU.
    pub mtu: u32,
    /// Raw `IFF_*` flags.
    pub flags: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Promiscuous mode requested by user space (`IFF_PROMISC`).
    pub promisc: bool,
    /// All-multicast mode requested by user space (`IFF_ALLMULTI`).
    pub allmulti: bool,
    /// Transmit queue length (`IFLA_TXQLEN`), when the kernel reported it.
    pub txqlen: Option<u32>,
    /// Operational state is `UP` (`IFLA_OPERSTATE`).
    pub oper_up: bool,
    /// Index of the master device (bridge), if enslaved.
    pub master: Option<u32>,
    /// `IFLA_LINK`: for a veth the peer's index (in the peer's namespace), for a vlan the
    /// parent's.
    pub link: Option<u32>,
    /// `IFLA_LINK_NETNSID`: set when the `link` device is in another namespace.
    pub link_netnsid: Option<i32>,
    /// Bridge attributes, when this link is a bridge.
    pub bridge: Option<BridgeInfo>,
    /// Bridge-port attributes, when this link is enslaved to a bridge.
    pub bridge_port: Option<BridgePortInfo>,
    /// Per-device IP settings the kernel reports with the link (`IFLA_AF_SPEC`): the same
    /// values as `net.ipv4.conf.<if>.*` and `net.ipv6.conf.<if>.*`, read without the
    /// `/proc/sys` lookup whose cost grows with the number of network namespaces.
    pub conf: DevConf,
}

/// Per-device IP settings of a [`Link`]; `None` where the kernel reported none (IPv6
/// disabled on the device or compiled out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DevConf {
    /// `net.ipv4.conf.<if>.arp_notify`.
    pub ipv4_arp_notify: Option<bool>,
    /// `net.ipv4.conf.<if>.route_localnet`.
    pub ipv4_route_localnet: Option<bool>,
    /// `net.ipv6.conf.<if>.accept_ra`.
    pub ipv6_accept_ra: Option<i32>,
    /// `net.ipv6.conf.<if>.disable_ipv6`.
    pub ipv6_disabled: Option<bool>,
}

/// An IPv4 per-device setting that can be switched on over netlink (`IFLA_INET_CONF`):
/// cheaper than writing `/proc/sys/net/ipv4/conf/<if>/...`, whose lookup walks every
/// namespace's entry of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ipv4Conf {
    /// `arp_notify`: announce the address with gratuitous ARP when the link comes up.
    ArpNotify,
    /// `route_localnet`: route 127.0.0.0/8 sources and destinations on this device.
    RouteLocalnet,
}

/// Attributes of a bridge device (`IFLA_INFO_DATA` of kind `bridge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BridgeInfo {
    /// `IFLA_BR_VLAN_FILTERING`.
    pub vlan_filtering: bool,
}

/// Attributes of a bridge port (`IFLA_INFO_SLAVE_DATA` of kind `bridge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BridgePortInfo {
    /// Hairpin mode (`IFLA_BRPORT_MODE`).
    pub hairpin: bool,
    /// Port isolation (`IFLA_BRPORT_ISOLATED`).
    pub isolated: bool,
}

impl Link {
    /// True if `IFLA_INFO_KIND` is `kind`.
    pub fn is_kind(&self, kind: &str) -> bool {
        self.kind.as_deref() == Some(kind)
    }

    pub(crate) fn from_message(msg: LinkMessage) -> Link {
        let flags = msg.header.flags;
        let mut link = Link {
            index: msg.header.index,
            flags: flags.bits(),
            up: flags.contains(LinkFlags::Up),
            promisc: flags.contains(LinkFlags::Promisc),
            allmulti: flags.contains(LinkFlags::Allmulti),
            ..Default::default()
        };
        for attr in msg.attributes {
            match attr {
                LinkAttribute::IfName(name) => link.name = name,
                LinkAttribute::Address(bytes) => link.mac = <[u8; 6]>::try_from(bytes).ok(),
                LinkAttribute::Mtu(mtu) => link.mtu = mtu,
                LinkAttribute::TxQueueLen(len) => link.txqlen = Some(len),
                LinkAttribute::OperState(state) => link.oper_up = state == State::Up,
                LinkAttribute::Controller(master) if master != 0 => link.master = Some(master),
                LinkAttribute::Link(index) if index != 0 => link.link = Some(index),
                LinkAttribute::LinkNetNsId(id) => link.link_netnsid = Some(id),
                LinkAttribute::LinkInfo(infos) => link.apply_info(infos),
                LinkAttribute::AfSpecUnspec(specs) => link.apply_af_spec(specs),
                _ => {}
            }
        }
        link
    }

    fn apply_af_spec(&mut self, specs: Vec<AfSpecUnspec>) {
        for spec in specs {
            match spec {
                AfSpecUnspec::Inet(v) => {
                    for a in v {
                        if let AfSpecInet::DevConf(c) = a {
                            self.conf.ipv4_arp_notify = Some(c.arp_notify != 0);
                            self.conf.ipv4_route_localnet = Some(c.route_localnet != 0);
                        }
                    }
                }
                AfSpecUnspec::Inet6(v) => {
                    for a in v {
                        if let AfSpecInet6::DevConf(c) = a {
                            self.conf.ipv6_accept_ra = Some(c.accept_ra);
                            self.conf.ipv6_disabled = Some(c.disable_ipv6 != 0);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn apply_info(&mut self, infos: Vec<LinkInfo>) {
        for info in infos {
            match info {
                LinkInfo::Kind(kind) => self.kind = Some(kind.to_string()),
                LinkInfo::Data(InfoData::Bridge(attrs)) => {
                    let mut br = BridgeInfo::default();
                    for a in attrs {
                        if let InfoBridge::VlanFiltering(on) = a {
                            br.vlan_filtering = on;
                        }
                    }
                    self.bridge = Some(br);
                }
                LinkInfo::PortKind(InfoPortKind::Bridge) => {
                    self.bridge_port.get_or_insert_with(BridgePortInfo::default);
                }
                LinkInfo::PortData(InfoPortData::BridgePort(attrs)) => {
                    let port = self.bridge_port.get_or_insert_with(BridgePortInfo::default);
                    for a in attrs {
                        match a {
                            InfoBridgePort::HairpinMode(on) => port.hairpin = on,
                            InfoBridgePort::Isolated(on) => port.isolated = on,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// Options for [`Handle::add_bridge`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeOptions {
    /// MTU of the bridge (kernel default when `None`).
    pub mtu: Option<u32>,
    /// Enable VLAN filtering at creation (`IFLA_BR_VLAN_FILTERING`).
    pub vlan_filtering: Option<bool>,
    /// A fixed MAC address. Without one the bridge takes the lowest port MAC and may change
    /// it as ports come and go.
    pub mac: Option<[u8; 6]>,
    /// Bring the bridge up in the same request.
    pub up: bool,
}

/// A veth pair to create with [`Handle::add_veth`].
///
/// The main end (`name`) is created in the handle's namespace. The peer end is created
/// directly in `peer_netns` (when set) under its final `peer_name`, with `peer_mac` and `mtu`:
/// no rename and no namespace move afterwards, which is the fast path.
#[derive(Debug, Clone, Default)]
pub struct VethRequest<'a> {
    /// Name of the end created in the handle's namespace.
    pub name: &'a str,
    /// Name of the peer end.
    pub peer_name: &'a str,
    /// MTU for both ends.
    pub mtu: Option<u32>,
    /// MAC of the main end (random when `None`).
    pub mac: Option<[u8; 6]>,
    /// MAC of the peer end (random when `None`).
    pub peer_mac: Option<[u8; 6]>,
    /// Namespace to create the peer in (`IFLA_NET_NS_FD`); `None` keeps it beside the main end.
    pub peer_netns: Option<BorrowedFd<'a>>,
    /// Enslave the main end to this bridge index in the same request (`IFLA_MASTER`).
    pub master: Option<u32>,
    /// Bring the main end up in the same request.
    ///
    /// (The peer end cannot be brought up in the creating request: the kernel opens it before
    /// the pair is linked and refuses with `ENOTCONN`. Set it up with a handle in its
    /// namespace, which the caller needs anyway to configure addresses.)
    pub up: bool,
}

impl<'a> VethRequest<'a> {
    /// A request for `name` ↔ `peer_name` with everything else default.
    pub fn new(name: &'a str, peer_name: &'a str) -> Self {
        VethRequest {
            name,
            peer_name,
            ..Default::default()
        }
    }

    /// The `RTM_NEWLINK` message for this request (exposed to the crate for tests).
    pub(crate) fn message(&self) -> LinkMessage {
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(self.peer_name.to_string()));
        if let Some(fd) = self.peer_netns {
            peer.attributes.push(LinkAttribute::NetNsFd(fd.as_raw_fd()));
        }
        if let Some(mac) = self.peer_mac {
            peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        if let Some(mtu) = self.mtu {
            peer.attributes.push(LinkAttribute::Mtu(mtu));
        }

        let mut msg = new_link_message(0, self.up);
        msg.attributes
            .push(LinkAttribute::IfName(self.name.to_string()));
        if let Some(mac) = self.mac {
            msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        if let Some(mtu) = self.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(master) = self.master {
            msg.attributes.push(LinkAttribute::Controller(master));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        msg
    }
}

fn new_link_message(index: u32, up: bool) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    if up {
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
    }
    msg
}

/// Checks an interface name: 1..=15 bytes, no `/`, whitespace, `:` or NUL, not `.`/`..`.
pub fn validate_ifname(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > IFNAME_MAX {
        Some("longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("is a relative directory name")
    } else if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
    {
        Some("contains '/', ':', whitespace or NUL")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::Invalid {
            what: "interface name",
            value: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Extension mask asking the kernel to leave statistics out of link replies.
fn skip_stats() -> LinkAttribute {
    LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats])
}

impl Handle {
    /// The link called `name`, or `None` if there is none.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>> {
        validate_ifname(name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(skip_stats());
        self.get_link("get link", &name, msg)
    }

    /// The link with index `index`, or `None` if there is none.
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<Link>> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(skip_stats());
        self.get_link("get link", &index, msg)
    }

    fn get_link(
        &mut self,
        op: &'static str,
        subject: &dyn std::fmt::Display,
        msg: LinkMessage,
    ) -> Result<Option<Link>> {
        match self.get_one(op, subject, RouteNetlinkMessage::GetLink(msg)) {
            Ok(RouteNetlinkMessage::NewLink(m)) => Ok(Some(Link::from_message(m))),
            Ok(_) => Ok(None),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Like [`Handle::link_by_name`] but a missing link is [`Error::NotFound`].
    pub fn require_link(&mut self, name: &str) -> Result<Link> {
        self.link_by_name(name)?.ok_or_else(|| Error::NotFound {
            what: "link",
            name: name.to_string(),
        })
    }

    /// All links of the namespace.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(skip_stats());
        let mut out = Vec::new();
        self.dump("list links", RouteNetlinkMessage::GetLink(msg), |m| {
            if let RouteNetlinkMessage::NewLink(m) = m {
                out.push(Link::from_message(m));
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Creates a link from a prepared message (`NLM_F_CREATE | NLM_F_EXCL`) and reads it back.
    ///
    /// (`NLM_F_ECHO` is not used: the kernel echoes the link before applying `IFLA_MASTER`.)
    fn create_link(&mut self, op: &'static str, name: &str, msg: LinkMessage) -> Result<Link> {
        self.ack(op, &name, RouteNetlinkMessage::NewLink(msg), CREATE_EXCL)?;
        self.require_link(name)
    }

    /// Creates a bridge. An existing link of that name fails with an error whose
    /// [`Error::is_exists`] is true, so callers can "create if missing".
    pub fn add_bridge(&mut self, name: &str, opts: &BridgeOptions) -> Result<Link> {
        validate_ifname(name)?;
        let mut msg = new_link_message(0, opts.up);
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        if let Some(mtu) = opts.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = opts.mac {
            msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        let mut info = vec![LinkInfo::Kind(InfoKind::Bridge)];
        if let Some(on) = opts.vlan_filtering {
            info.push(LinkInfo::Data(InfoData::Bridge(vec![
                InfoBridge::VlanFiltering(on),
            ])));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(info));
        self.create_link("add bridge", name, msg)
    }

    /// Creates a veth pair in one request (see [`VethRequest`]) and returns the main end.
    ///
    /// If either name exists (in its namespace) the error's [`Error::is_exists`] is true.
    pub fn add_veth(&mut self, req: &VethRequest<'_>) -> Result<Link> {
        validate_ifname(req.name)?;
        validate_ifname(req.peer_name)?;
        self.create_link("add veth", req.name, req.message())
    }

    /// Creates an 802.1Q VLAN device `name` on `parent` with VLAN id `vlan_id`.
    pub fn add_vlan(&mut self, name: &str, parent: u32, vlan_id: u16) -> Result<Link> {
        validate_ifname(name)?;
        let mut msg = new_link_message(0, false);
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::Link(parent));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vlan),
            LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(vlan_id)])),
        ]));
        self.create_link("add vlan", name, msg)
    }

    /// Creates a dummy device (handy in tests).
    pub fn add_dummy(&mut self, name: &str) -> Result<Link> {
        validate_ifname(name)?;
        let mut msg = new_link_message(0, false);
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Dummy,
            )]));
        self.create_link("add dummy", name, msg)
    }

    fn set_link(&mut self, op: &'static str, msg: LinkMessage) -> Result<()> {
        let index = msg.header.index;
        self.ack(op, &index, RouteNetlinkMessage::SetLink(msg), 0)
    }

    fn set_flag(&mut self, op: &'static str, index: u32, flag: LinkFlags, on: bool) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.change_mask = flag;
        if on {
            msg.header.flags = flag;
        }
        self.set_link(op, msg)
    }

    /// Sets the link administratively up.
    pub fn set_up(&mut self, index: u32) -> Result<()> {
        self.set_flag("set link up", index, LinkFlags::Up, true)
    }

    /// Sets the link administratively down.
    pub fn set_down(&mut self, index: u32) -> Result<()> {
        self.set_flag("set link down", index, LinkFlags::Up, false)
    }

    /// Turns promiscuous mode on or off.
    pub fn set_promisc(&mut self, index: u32, on: bool) -> Result<()> {
        self.set_flag("set link promisc", index, LinkFlags::Promisc, on)
    }

    /// Turns all-multicast mode on or off.
    pub fn set_allmulti(&mut self, index: u32, on: bool) -> Result<()> {
        self.set_flag("set link allmulticast", index, LinkFlags::Allmulti, on)
    }

    /// Sets the transmit queue length (`IFLA_TXQLEN`).
    pub fn set_txqlen(&mut self, index: u32, len: u32) -> Result<()> {
        let mut msg = new_link_message(index, false);
        msg.attributes.push(LinkAttribute::TxQueueLen(len));
        self.set_link("set link txqueuelen", msg)
    }

    /// Enslaves the link to `master` (a bridge index).
    pub fn set_master(&mut self, index: u32, master: u32) -> Result<()> {
        let mut msg = new_link_message(index, false);
        msg.attributes.push(LinkAttribute::Controller(master));
        self.set_link("set link master", msg)
    }

    /// Releases the link from its master.
    pub fn set_nomaster(&mut self, index: u32) -> Result<()> {
        let mut msg = new_link_message(index, false);
        msg.attributes.push(LinkAttribute::Controller(0));
        self.set_link("set link nomaster", msg)
    }

    /// Switches an IPv4 per-device setting on (see [`Ipv4Conf`]).
    pub fn enable_ipv4_conf(&mut self, index: u32, conf: Ipv4Conf) -> Result<()> {
        let mut c = InetDevConf::default();
        match conf {
            Ipv4Conf::ArpNotify => c.arp_notify = 1,
            Ipv4Conf::RouteLocalnet => c.route_localnet = 1,
        }
        let mut msg = new_link_message(index, false);
        msg.attributes
            .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet(vec![
                AfSpecInet::DevConfRequest(c),
            ])]));
        self.set_link("set link ipv4 conf", msg)
    }

    /// Sets the MTU.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<()> {
        let mut msg = new_link_message(index, false);
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.set_link("set link mtu", msg)
    }

    /// Sets the hardware address.
    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> Result<()> {
        let mut msg = new_link_message(index, false);
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        self.set_link("set link address", msg)
    }

    /// Renames the link (it must be down).
    pub fn set_name(&mut self, index: u32, name: &str) -> Result<()> {
        validate_ifname(name)?;
        let mut msg = new_link_message(index, false);
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.set_link("rename link", msg)
    }

    /// Moves the link into the namespace `netns` (slow: tens of ms of kernel time; prefer
    /// creating links in place, see [`VethRequest::peer_netns`]).
    pub fn set_netns(&mut self, index: u32, netns: BorrowedFd<'_>) -> Result<()> {
        let mut msg = new_link_message(index, false);
        msg.attributes
            .push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        self.set_link("move link to namespace", msg)
    }

    /// Deletes the link. A missing link fails with an error whose [`Error::is_not_found`]
    /// is true. Deleting one end of a veth pair deletes both.
    pub fn delete_link(&mut self, index: u32) -> Result<()> {
        let msg = new_link_message(index, false);
        self.ack("delete link", &index, RouteNetlinkMessage::DelLink(msg), 0)
    }

    /// Deletes the link called `name` (see [`Handle::delete_link`]).
    pub fn delete_link_by_name(&mut self, name: &str) -> Result<()> {
        validate_ifname(name)?;
        let mut msg = new_link_message(0, false);
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.ack("delete link", &name, RouteNetlinkMessage::DelLink(msg), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, NlaBuffer, NlasIterator, Parseable};
    use std::os::fd::AsFd;

    fn nla_kinds(buf: &[u8]) -> Vec<(u16, Vec<u8>)> {
        NlasIterator::new(buf)
            .map(|nla| {
                let nla: NlaBuffer<&[u8]> = nla.unwrap();
                (nla.kind(), nla.value().to_vec())
            })
            .collect()
    }

    #[test]
    fn veth_request_layout() {
        let ns = std::fs::File::open("/proc/self/ns/net").unwrap();
        let mut req = VethRequest::new("veth0abc", "eth0");
        req.mtu = Some(1400);
        req.peer_mac = Some([0x02, 0, 0, 0, 0, 1]);
        req.peer_netns = Some(ns.as_fd());
        req.master = Some(7);
        req.up = true;
        let msg = req.message();
        let mut bytes = vec![0u8; msg.buffer_len()];
        msg.emit(&mut bytes);

        // ifinfomsg: family 0, index 0, flags IFF_UP, change IFF_UP.
        assert_eq!(bytes[0], 0);
        assert_eq!(u32::from_ne_bytes(bytes[8..12].try_into().unwrap()), 1);
        assert_eq!(u32::from_ne_bytes(bytes[12..16].try_into().unwrap()), 1);

        let top = nla_kinds(&bytes[16..]);
        let kinds: Vec<u16> = top.iter().map(|(k, _)| *k).collect();
        // IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO
        assert_eq!(kinds, vec![3, 4, 10, 18]);
        assert_eq!(top[0].1, b"veth0abc\0");
        assert_eq!(u32::from_ne_bytes(top[2].1[..4].try_into().unwrap()), 7);

        let linkinfo = nla_kinds(&top[3].1);
        // IFLA_INFO_KIND "veth", IFLA_INFO_DATA
        assert_eq!(linkinfo[0], (1, b"veth\0".to_vec()));
        assert_eq!(linkinfo[1].0 & 0x3fff, 2);
        let data = nla_kinds(&linkinfo[1].1);
        // VETH_INFO_PEER carrying an ifinfomsg and the peer's attributes.
        assert_eq!(data.len(), 1);
        assert_eq!(data[0].0 & 0x3fff, 1);
        let peer = &data[0].1;
        assert_eq!(
            u32::from_ne_bytes(peer[8..12].try_into().unwrap()),
            0,
            "peer flags"
        );
        let peer_attrs = nla_kinds(&peer[16..]);
        let peer_kinds: Vec<u16> = peer_attrs.iter().map(|(k, _)| *k).collect();
        // IFLA_IFNAME, IFLA_NET_NS_FD, IFLA_ADDRESS, IFLA_MTU
        assert_eq!(peer_kinds, vec![3, 28, 1, 4]);
        assert_eq!(peer_attrs[0].1, b"eth0\0");
        assert_eq!(
            i32::from_ne_bytes(peer_attrs[1].1[..4].try_into().unwrap()),
            ns.as_raw_fd()
        );
        assert_eq!(peer_attrs[2].1, vec![0x02, 0, 0, 0, 0, 1]);
        assert_eq!(
            u32::from_ne_bytes(peer_attrs[3].1[..4].try_into().unwrap()),
            1400
        );

        // And the codec parses its own output back.
        let parsed = LinkMessage::parse(&bytes[..]).unwrap();
        assert_eq!(parsed.header.index, 0);
    }

    #[test]
    fn ifname_validation() {
        for bad in ["", ".", "..", "a/b", "a b", "a:b", "sixteen-chars-xx"] {
            assert!(validate_ifname(bad).is_err(), "{bad:?}");
        }
        for good in ["eth0", "veth1a2b3c4d", "cni0.100", "fifteen-chars-x"] {
            validate_ifname(good).unwrap();
        }
    }
}
