//! Namespace-wide forwarding over netlink (`RTM_GETNETCONF`), which netlink-packet-route does
//! not model: a few bytes built and parsed here.
//!
//! Reading `/proc/sys/net/ipv4/ip_forward` walks one directory entry per network namespace of
//! the same name, so on a node with a thousand pods every read costs a fraction of a
//! millisecond; the netlink question costs the same whatever the number of namespaces.

use super::{Error, Handle, Result};
use crate::IpFamily;
use crate::nl::{self, Flow};

const RTM_NEWNETCONF: u16 = 80;
const RTM_GETNETCONF: u16 = 82;
const NLM_F_REQUEST: u16 = netlink_packet_core::NLM_F_REQUEST;
/// `sizeof(struct netconfmsg)` padded: the family byte before the attributes.
const NETCONFMSG_LEN: usize = 4;
const NETCONFA_IFINDEX: u16 = 1;
const NETCONFA_FORWARDING: u16 = 2;
/// `NETCONFA_IFINDEX_ALL`: the namespace-wide settings (`net.ipv4.conf.all.*`).
const IFINDEX_ALL: i32 = -1;

/// The request: `nlmsghdr`, `netconfmsg` (one byte, padded to four), `NETCONFA_IFINDEX`.
fn request(family: IpFamily, seq: u32) -> [u8; 28] {
    let mut b = [0u8; 28];
    b[0..4].copy_from_slice(&28u32.to_ne_bytes());
    b[4..6].copy_from_slice(&RTM_GETNETCONF.to_ne_bytes());
    b[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    b[8..12].copy_from_slice(&seq.to_ne_bytes());
    b[16] = match family {
        IpFamily::V4 => libc::AF_INET as u8,
        IpFamily::V6 => libc::AF_INET6 as u8,
    };
    b[20..22].copy_from_slice(&8u16.to_ne_bytes());
    b[22..24].copy_from_slice(&NETCONFA_IFINDEX.to_ne_bytes());
    b[24..28].copy_from_slice(&IFINDEX_ALL.to_ne_bytes());
    b
}

/// `NETCONFA_FORWARDING` of an `RTM_NEWNETCONF` payload (after the `nlmsghdr`).
fn forwarding_attr(payload: &[u8]) -> Option<bool> {
    let v = nl::attr(payload.get(NETCONFMSG_LEN..)?, NETCONFA_FORWARDING)?;
    Some(i32::from_ne_bytes(v.get(..4)?.try_into().ok()?) != 0)
}

impl Handle {
    /// Whether forwarding is on for the whole namespace (`net.ipv4.ip_forward`, or
    /// `net.ipv6.conf.all.forwarding`); `None` if the kernel's answer does not say.
    pub fn forwarding(&mut self, family: IpFamily) -> Result<Option<bool>> {
        const OP: &str = "get netconf";
        self.seq = self.seq.wrapping_add(1).max(1);
        let seq = self.seq;
        let req = request(family, seq);
        nl::send(&self.socket, &req).map_err(|source| Error::Socket { op: "send", source })?;
        // The kernel answers with one RTM_NEWNETCONF, or an NLMSG_ERROR.
        let mut answer = None;
        let mut on_data = |m: nl::Msg<'_>| -> Result<Flow> {
            if m.msg_type == RTM_NEWNETCONF {
                answer = forwarding_attr(m.payload);
            }
            Ok(Flow::Stop)
        };
        nl::replies(&self.socket, &mut self.rbuf, seq, &mut on_data)
            .map_err(|e| Error::from_reply(OP, &"all", e))?;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes() {
        let b = request(IpFamily::V4, 7);
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()), 28);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), RTM_GETNETCONF);
        assert_eq!(u32::from_ne_bytes(b[8..12].try_into().unwrap()), 7);
        assert_eq!(b[16], libc::AF_INET as u8);
        assert_eq!(i32::from_ne_bytes(b[24..28].try_into().unwrap()), -1);
        assert_eq!(request(IpFamily::V6, 1)[16], libc::AF_INET6 as u8);
    }

    #[test]
    fn forwarding_attribute_is_found_among_others() {
        let mut p = vec![libc::AF_INET as u8, 0, 0, 0];
        for (kind, val) in [(NETCONFA_IFINDEX, -1i32), (3, 0), (NETCONFA_FORWARDING, 1)] {
            p.extend(8u16.to_ne_bytes());
            p.extend(kind.to_ne_bytes());
            p.extend(val.to_ne_bytes());
        }
        assert_eq!(forwarding_attr(&p), Some(true));
        let n = p.len();
        p[n - 4..].copy_from_slice(&0i32.to_ne_bytes());
        assert_eq!(forwarding_attr(&p), Some(false));
        assert_eq!(forwarding_attr(&p[..12]), None);
    }
}
