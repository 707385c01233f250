//! Bridge ports (hairpin, isolation), VLAN filtering and per-port VLANs.

use netlink_packet_core::DefaultNla;
use netlink_packet_route::link::{
    AfSpecBridge, BridgeFlag, BridgeVlanInfo, BridgeVlanInfoFlags, InfoBridge, InfoData, InfoKind,
    LinkAttribute, LinkExtentMask, LinkInfo, LinkMessage, LinkProtoInfoBridge,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::link::BridgePortInfo;
use super::{Error, Handle, Result};

/// `IFLA_BRPORT_MODE` (hairpin).
const IFLA_BRPORT_MODE: u16 = 4;
/// `IFLA_BRPORT_ISOLATED`.
const IFLA_BRPORT_ISOLATED: u16 = 33;

/// Bridge-port settings for [`Handle::set_bridge_port`]; `None` leaves a setting unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgePortOptions {
    /// Hairpin mode: reflect frames back out of the port they came in on.
    pub hairpin: Option<bool>,
    /// Port isolation: isolated ports cannot talk to each other, only to non-isolated ones.
    pub isolated: Option<bool>,
}

/// One VLAN of a bridge port (or of the bridge itself), from [`Handle::bridge_vlans`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BridgeVlan {
    /// VLAN id, 1..=4094.
    pub vid: u16,
    /// Ingress untagged frames get this VLAN (PVID).
    pub pvid: bool,
    /// Egress frames of this VLAN leave untagged.
    pub untagged: bool,
}

impl Handle {
    /// Sets bridge-port flags of `index` (a bridge port) in one `RTM_SETLINK` with
    /// `AF_BRIDGE` and `IFLA_PROTINFO`.
    pub fn set_bridge_port(&mut self, index: u32, opts: &BridgePortOptions) -> Result<()> {
        let mut attrs = Vec::new();
        if let Some(on) = opts.hairpin {
            attrs.push(LinkProtoInfoBridge::Other(DefaultNla::new(
                IFLA_BRPORT_MODE,
                vec![u8::from(on)],
            )));
        }
        if let Some(on) = opts.isolated {
            attrs.push(LinkProtoInfoBridge::Other(DefaultNla::new(
                IFLA_BRPORT_ISOLATED,
                vec![u8::from(on)],
            )));
        }
        if attrs.is_empty() {
            return Ok(());
        }
        let mut msg = LinkMessage::default();
        msg.header.interface_family = AddressFamily::Bridge;
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::ProtoInfoBridge(attrs));
        self.ack(
            "set bridge port",
            &index,
            RouteNetlinkMessage::SetLink(msg),
            0,
        )
    }

    /// Turns hairpin mode of bridge port `index` on or off.
    pub fn set_hairpin(&mut self, index: u32, on: bool) -> Result<()> {
        self.set_bridge_port(
            index,
            &BridgePortOptions {
                hairpin: Some(on),
                ..Default::default()
            },
        )
    }

    /// Turns port isolation of bridge port `index` on or off.
    pub fn set_port_isolated(&mut self, index: u32, on: bool) -> Result<()> {
        self.set_bridge_port(
            index,
            &BridgePortOptions {
                isolated: Some(on),
                ..Default::default()
            },
        )
    }

    /// The bridge-port flags of `index`, or `None` if it is not a bridge port.
    pub fn bridge_port(&mut self, index: u32) -> Result<Option<BridgePortInfo>> {
        let link = self.link_by_index(index)?.ok_or_else(|| Error::NotFound {
            what: "link index",
            name: index.to_string(),
        })?;
        Ok(link.bridge_port)
    }

    /// Turns VLAN filtering of bridge `bridge` on or off (`IFLA_BR_VLAN_FILTERING`).
    pub fn set_vlan_filtering(&mut self, bridge: u32, on: bool) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = bridge;
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Bridge),
            LinkInfo::Data(InfoData::Bridge(vec![InfoBridge::VlanFiltering(on)])),
        ]));
        self.ack(
            "set bridge vlan_filtering",
            &bridge,
            RouteNetlinkMessage::NewLink(msg),
            0,
        )
    }

    /// Whether VLAN filtering is on for bridge `bridge` (`None` if it is not a bridge).
    pub fn vlan_filtering(&mut self, bridge: u32) -> Result<Option<bool>> {
        let link = self.link_by_index(bridge)?.ok_or_else(|| Error::NotFound {
            what: "link index",
            name: bridge.to_string(),
        })?;
        Ok(link.bridge.map(|b| b.vlan_filtering))
    }

    fn bridge_vlan_msg(
        index: u32,
        vid: u16,
        pvid: bool,
        untagged: bool,
        self_: bool,
    ) -> LinkMessage {
        let mut msg = LinkMessage::default();
        msg.header.interface_family = AddressFamily::Bridge;
        msg.header.index = index;
        let mut spec = Vec::new();
        if self_ {
            spec.push(AfSpecBridge::Flags(BridgeFlag::LowerDev));
        }
        let mut flags = BridgeVlanInfoFlags::empty();
        if pvid {
            flags |= BridgeVlanInfoFlags::Pvid;
        }
        if untagged {
            flags |= BridgeVlanInfoFlags::Untagged;
        }
        spec.push(AfSpecBridge::VlanInfo(BridgeVlanInfo { flags, vid }));
        msg.attributes.push(LinkAttribute::AfSpecBridge(spec));
        msg
    }

    /// Adds VLAN `vid` to bridge port `index` (`bridge vlan add`). With `self_` the VLAN is
    /// added to the bridge device itself (`index` is then the bridge). Re-adding an existing
    /// VLAN updates its flags.
    pub fn bridge_vlan_add(
        &mut self,
        index: u32,
        vid: u16,
        pvid: bool,
        untagged: bool,
        self_: bool,
    ) -> Result<()> {
        check_vid(vid)?;
        let msg = Self::bridge_vlan_msg(index, vid, pvid, untagged, self_);
        self.ack(
            "add bridge vlan",
            &format_args!("{vid} on link {index}"),
            RouteNetlinkMessage::SetLink(msg),
            0,
        )
    }

    /// Removes VLAN `vid` from bridge port `index` (or from the bridge itself with `self_`).
    pub fn bridge_vlan_del(&mut self, index: u32, vid: u16, self_: bool) -> Result<()> {
        check_vid(vid)?;
        let msg = Self::bridge_vlan_msg(index, vid, false, false, self_);
        self.ack(
            "delete bridge vlan",
            &format_args!("{vid} on link {index}"),
            RouteNetlinkMessage::DelLink(msg),
            0,
        )
    }

    /// The VLANs of bridge port (or bridge) `index`, sorted by id (an `AF_BRIDGE` link dump
    /// with `RTEXT_FILTER_BRVLAN`).
    pub fn bridge_vlans(&mut self, index: u32) -> Result<Vec<BridgeVlan>> {
        let mut msg = LinkMessage::default();
        msg.header.interface_family = AddressFamily::Bridge;
        msg.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::Brvlan]));
        let mut out: Vec<BridgeVlan> = Vec::new();
        self.dump(
            "list bridge vlans",
            RouteNetlinkMessage::GetLink(msg),
            |m| {
                let RouteNetlinkMessage::NewLink(m) = m else {
                    return Ok(());
                };
                if m.header.index != index {
                    return Ok(());
                }
                for attr in m.attributes {
                    if let LinkAttribute::AfSpecBridge(spec) = attr {
                        for s in spec {
                            if let AfSpecBridge::VlanInfo(info) = s {
                                let vlan = BridgeVlan {
                                    vid: info.vid,
                                    pvid: info.flags.contains(BridgeVlanInfoFlags::Pvid),
                                    untagged: info.flags.contains(BridgeVlanInfoFlags::Untagged),
                                };
                                if !out.contains(&vlan) {
                                    out.push(vlan);
                                }
                            }
                        }
                    }
                }
                Ok(())
            },
        )?;
        out.sort_by_key(|v| v.vid);
        Ok(out)
    }
}

fn check_vid(vid: u16) -> Result<()> {
    if (1..=4094).contains(&vid) {
        Ok(())
    } else {
        Err(Error::Invalid {
            what: "vlan id",
            value: vid.to_string(),
            reason: "must be between 1 and 4094",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, NlaBuffer, NlasIterator};

    fn nlas(buf: &[u8]) -> Vec<(u16, Vec<u8>)> {
        NlasIterator::new(buf)
            .map(|nla| {
                let nla: NlaBuffer<&[u8]> = nla.unwrap();
                (nla.kind() & 0x3fff, nla.value().to_vec())
            })
            .collect()
    }

    fn emit(msg: &LinkMessage) -> Vec<u8> {
        let mut bytes = vec![0u8; msg.buffer_len()];
        msg.emit(&mut bytes);
        bytes
    }

    #[test]
    fn bridge_vlan_request_layout() {
        // What `bridge vlan add dev X vid 100 pvid untagged self` sends: ifinfomsg with
        // AF_BRIDGE and the index, IFLA_AF_SPEC { IFLA_BRIDGE_FLAGS = SELF,
        // IFLA_BRIDGE_VLAN_INFO = { flags PVID|UNTAGGED, vid } }.
        let bytes = emit(&Handle::bridge_vlan_msg(5, 100, true, true, true));
        assert_eq!(bytes[0], libc::AF_BRIDGE as u8);
        assert_eq!(i32::from_ne_bytes(bytes[4..8].try_into().unwrap()), 5);
        let top = nlas(&bytes[16..]);
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].0, 26, "IFLA_AF_SPEC");
        let spec = nlas(&top[0].1);
        assert_eq!(
            spec[0],
            (0, 2u16.to_ne_bytes().to_vec()),
            "IFLA_BRIDGE_FLAGS self"
        );
        let mut info = Vec::new();
        info.extend_from_slice(&(0x2u16 | 0x4).to_ne_bytes());
        info.extend_from_slice(&100u16.to_ne_bytes());
        assert_eq!(spec[1], (2, info), "IFLA_BRIDGE_VLAN_INFO");

        // A port VLAN without flags carries no IFLA_BRIDGE_FLAGS.
        let bytes = emit(&Handle::bridge_vlan_msg(6, 200, false, false, false));
        let spec = nlas(&nlas(&bytes[16..])[0].1);
        assert_eq!(spec.len(), 1);
        assert_eq!(spec[0].0, 2);
        assert!(check_vid(0).is_err() && check_vid(4095).is_err() && check_vid(4094).is_ok());
    }
}
