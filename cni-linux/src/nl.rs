//! The netlink core every netlink user in this crate shares: rtnetlink ([`crate::netlink`]),
//! nf_tables ([`crate::firewall::nftables`]) and ctnetlink ([`crate::conntrack`]).
//!
//! What is here is what those protocols have in common and what the codec crates leave to
//! their users: opening a socket with the options we always want, sending, receiving into a
//! reusable buffer (a datagram larger than the buffer is an error, never silently cut), walking
//! the messages of a datagram, the kernel's answer in `NLMSG_ERROR` / `NLMSG_DONE` (errno and
//! extended-ACK message), the reply loop of one request (ack, single answer or dump, with
//! `NLM_F_DUMP_INTR` noted), and walking raw attributes for the few messages no codec models
//! (ctnetlink tuples, nftables expression dumps, `RTM_NEWNETCONF`).
//!
//! Each protocol turns a [`ReplyError`] into its own error type; the codecs (netlink-packet-
//! route, netlink-packet-netfilter) build and parse the messages themselves.

use std::io;

use netlink_packet_core::NLA_TYPE_MASK;
use netlink_sys::Socket;

/// `sizeof(struct nlmsghdr)`.
pub(crate) const NLMSG_HDRLEN: usize = 16;
/// `sizeof(struct nlattr)`.
const NLA_HDRLEN: usize = 4;
/// The kernel's answer to a request: an errno (0 for an ACK), the echoed request, ext-ACK TLVs.
pub(crate) const NLMSG_ERROR: u16 = 2;
/// The end of a dump (its payload, when present, is an errno).
pub(crate) const NLMSG_DONE: u16 = 3;
/// `NLM_F_DUMP_INTR`: the dumped table changed while it was read.
pub(crate) const NLM_F_DUMP_INTR: u16 = 0x10;
/// `NLM_F_CAPPED` on an error message: the echoed request was truncated to its header.
pub(crate) const NLM_F_CAPPED: u16 = 0x100;
/// `NLM_F_ACK_TLVS` on an error message: extended-ACK attributes follow.
pub(crate) const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG`: the human-readable extended-ACK message.
pub(crate) const NLMSGERR_ATTR_MSG: u16 = 1;

/// Netlink's 4-byte alignment of messages and attributes.
pub(crate) fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// Opens a socket of `protocol` and asks for extended ACK messages and capped ACKs (no copy
/// of our request in every ACK). Both are optional features: an old kernel refusing them is
/// not an error.
pub(crate) fn open(protocol: isize) -> io::Result<Socket> {
    let socket = Socket::new(protocol)?;
    let _ = socket.set_ext_ack(true);
    let _ = socket.set_cap_ack(true);
    Ok(socket)
}

/// Sends one datagram to the kernel (retrying `EINTR`); a short send is an error.
pub(crate) fn send(socket: &Socket, bytes: &[u8]) -> io::Result<()> {
    let kernel = netlink_sys::SocketAddr::new(0, 0);
    loop {
        match socket.send_to(bytes, &kernel, 0) {
            Ok(n) if n == bytes.len() => return Ok(()),
            Ok(_) => return Err(io::Error::other("short netlink send")),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Why a receive failed.
#[derive(Debug)]
pub(crate) enum RecvError {
    /// The socket failed.
    Io(io::Error),
    /// The datagram (this long) did not fit the buffer.
    Truncated(usize),
}

/// Receives one datagram into `buf` (cleared first; its capacity is the limit) with the extra
/// `flags` (e.g. `MSG_DONTWAIT`), retrying `EINTR`. Returns the datagram's length.
pub(crate) fn recv(socket: &Socket, buf: &mut Vec<u8>, flags: i32) -> Result<usize, RecvError> {
    loop {
        buf.clear();
        match socket.recv(buf, flags | libc::MSG_TRUNC) {
            Ok(n) if n > buf.capacity() => return Err(RecvError::Truncated(n)),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(RecvError::Io(e)),
        }
    }
}

/// One netlink message of a received datagram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Msg<'a> {
    /// `nlmsg_type`.
    pub(crate) msg_type: u16,
    /// `nlmsg_flags`.
    pub(crate) flags: u16,
    /// `nlmsg_seq`.
    pub(crate) seq: u32,
    /// The whole message, header included (what the codecs deserialize).
    pub(crate) bytes: &'a [u8],
    /// The payload after the header.
    pub(crate) payload: &'a [u8],
}

/// The kernel's verdict carried by an `NLMSG_ERROR` or `NLMSG_DONE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    /// The (positive) errno; 0 for an ACK or a clean end of dump.
    pub(crate) errno: i32,
    /// The extended-ACK message, when the kernel sent one.
    pub(crate) ext_ack: Option<String>,
}

impl<'a> Msg<'a> {
    /// The errno and extended-ACK message of an `NLMSG_ERROR` / `NLMSG_DONE`; `None` for
    /// other messages and for one too short to hold an errno.
    pub(crate) fn status(&self) -> Option<Status> {
        if self.msg_type != NLMSG_ERROR && self.msg_type != NLMSG_DONE {
            return None;
        }
        let code = i32::from_ne_bytes(self.payload.get(..4)?.try_into().ok()?);
        Some(Status {
            errno: code.saturating_abs(),
            ext_ack: if code == 0 {
                None
            } else {
                ext_ack_message(self.flags, &self.payload[4..])
            },
        })
    }
}

/// A message whose length field does not fit the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadLength(pub(crate) usize);

/// The messages of one datagram, in order; a bad length ends the walk with an error.
pub(crate) fn messages(buf: &[u8]) -> impl Iterator<Item = Result<Msg<'_>, BadLength>> {
    let mut off = 0;
    std::iter::from_fn(move || {
        if off + NLMSG_HDRLEN > buf.len() {
            return None;
        }
        let b = &buf[off..];
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            off = buf.len();
            return Some(Err(BadLength(len)));
        }
        off += align4(len);
        Some(Ok(Msg {
            msg_type: u16::from_ne_bytes([b[4], b[5]]),
            flags: u16::from_ne_bytes([b[6], b[7]]),
            seq: u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
            bytes: &b[..len],
            payload: &b[NLMSG_HDRLEN..len],
        }))
    })
}

/// Extracts `NLMSGERR_ATTR_MSG` from an error payload after the errno: the echoed request
/// (only its header when capped), then extended-ACK attributes.
pub(crate) fn ext_ack_message(flags: u16, after_errno: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || after_errno.len() < NLMSG_HDRLEN {
        return None;
    }
    let echoed = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        u32::from_ne_bytes(after_errno[..4].try_into().ok()?) as usize
    };
    let tlvs = after_errno.get(align4(echoed)..)?;
    attr(tlvs, NLMSGERR_ATTR_MSG).map(string)
}

/// The attributes (`nlattr`: kind without the nested / byte-order flags, value) of `buf`, in
/// order; a malformed attribute ends the walk.
pub(crate) fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut off = 0;
    std::iter::from_fn(move || {
        if off + NLA_HDRLEN > buf.len() {
            return None;
        }
        let len = u16::from_ne_bytes([buf[off], buf[off + 1]]) as usize;
        let kind = u16::from_ne_bytes([buf[off + 2], buf[off + 3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || off + len > buf.len() {
            off = buf.len();
            return None;
        }
        let value = &buf[off + NLA_HDRLEN..off + len];
        off += align4(len);
        Some((kind, value))
    })
}

/// The value of the first attribute of `kind` in `buf`.
pub(crate) fn attr(buf: &[u8], kind: u16) -> Option<&[u8]> {
    attrs(buf).find(|(k, _)| *k == kind).map(|(_, v)| v)
}

/// A NUL-terminated (or unterminated) string attribute.
pub(crate) fn string(v: &[u8]) -> String {
    let s = v.split(|b| *b == 0).next().unwrap_or(v);
    String::from_utf8_lossy(s).into_owned()
}

/// A big-endian `u16` attribute.
pub(crate) fn be16(v: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(v.get(..2)?.try_into().ok()?))
}

/// A big-endian `u32` attribute.
pub(crate) fn be32(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
}

/// A big-endian `u64` attribute.
pub(crate) fn be64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?))
}

/// What the reply loop's data callback wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Keep reading (a dump, or a request whose ACK follows).
    Continue,
    /// The answer is complete (a single reply without an ACK).
    Stop,
}

/// How a request's replies ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Some reply carried `NLM_F_DUMP_INTR`.
    pub(crate) interrupted: bool,
}

/// Why a request's replies ended in failure.
#[derive(Debug)]
pub(crate) enum ReplyError<E> {
    /// Receiving failed.
    Recv(RecvError),
    /// A datagram held a message with a bad length.
    BadLength(BadLength),
    /// An `NLMSG_ERROR` (of this length) too short to hold an errno.
    ShortError(usize),
    /// The kernel refused the request.
    Kernel(Status),
    /// The data callback failed.
    Data(E),
}

/// Reads the replies to request `seq` from `socket` (blocking) into `buf`, handing every data
/// message to `on_data`, until the ACK (`NLMSG_ERROR` 0), the end of a dump (`NLMSG_DONE`), a
/// kernel error (`NLMSG_ERROR` or `NLMSG_DONE` with an errno) or `on_data` saying
/// [`Flow::Stop`]. Replies to other sequence numbers (stale answers to abandoned requests) are
/// skipped.
pub(crate) fn replies<E>(
    socket: &Socket,
    buf: &mut Vec<u8>,
    seq: u32,
    on_data: &mut dyn FnMut(Msg<'_>) -> Result<Flow, E>,
) -> Result<Outcome, ReplyError<E>> {
    let mut outcome = Outcome { interrupted: false };
    loop {
        let len = recv(socket, buf, 0).map_err(ReplyError::Recv)?;
        for m in messages(&buf[..len]) {
            let m = m.map_err(ReplyError::BadLength)?;
            if m.seq != seq {
                continue;
            }
            outcome.interrupted |= m.flags & NLM_F_DUMP_INTR != 0;
            match m.msg_type {
                NLMSG_ERROR => {
                    let status = m.status().ok_or(ReplyError::ShortError(m.bytes.len()))?;
                    if status.errno == 0 {
                        return Ok(outcome);
                    }
                    return Err(ReplyError::Kernel(status));
                }
                NLMSG_DONE => match m.status() {
                    Some(status) if status.errno != 0 => {
                        return Err(ReplyError::Kernel(status));
                    }
                    _ => return Ok(outcome),
                },
                _ => {
                    if on_data(m).map_err(ReplyError::Data)? == Flow::Stop {
                        return Ok(outcome);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(((NLA_HDRLEN + value.len()) as u16).to_ne_bytes());
        v.extend(kind.to_ne_bytes());
        v.extend_from_slice(value);
        v.resize(align4(v.len()), 0);
        v
    }

    fn header(len: usize, msg_type: u16, flags: u16, seq: u32) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend((len as u32).to_ne_bytes());
        h.extend(msg_type.to_ne_bytes());
        h.extend(flags.to_ne_bytes());
        h.extend(seq.to_ne_bytes());
        h.extend(0u32.to_ne_bytes());
        h
    }

    #[test]
    fn ext_ack_message_is_parsed_from_capped_error() {
        // Capped echo (16-byte header) followed by NLMSGERR_ATTR_MSG "bad name\0".
        let mut payload = vec![0u8; 16];
        payload[0..4].copy_from_slice(&40u32.to_ne_bytes());
        payload.extend(nla(NLMSGERR_ATTR_MSG, b"bad name\0"));
        assert_eq!(
            ext_ack_message(NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload).as_deref(),
            Some("bad name")
        );
        assert_eq!(ext_ack_message(NLM_F_CAPPED, &payload), None);
    }

    #[test]
    fn ext_ack_message_skips_an_uncapped_echo() {
        // The whole 20-byte request echoed, then an unrelated TLV, then the message.
        let mut payload = header(20, 16, 5, 9);
        payload.extend([0u8; 4]);
        payload.extend(nla(3, &7u32.to_ne_bytes()));
        payload.extend(nla(NLMSGERR_ATTR_MSG, b"no such device"));
        assert_eq!(
            ext_ack_message(NLM_F_ACK_TLVS, &payload).as_deref(),
            Some("no such device")
        );
    }

    #[test]
    fn status_of_error_and_done() {
        let mut err = header(20, NLMSG_ERROR, 0, 1);
        err.extend((-libc::ENOENT).to_ne_bytes());
        let mut ack = header(20, NLMSG_ERROR, 0, 2);
        ack.extend(0i32.to_ne_bytes());
        let done = header(16, NLMSG_DONE, 0, 3);
        let mut buf = err.clone();
        buf.extend(&ack);
        buf.extend(&done);
        let msgs: Vec<_> = messages(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[0].status().unwrap().errno, libc::ENOENT);
        assert_eq!(msgs[1].status().unwrap().errno, 0);
        assert_eq!(msgs[1].seq, 2);
        assert_eq!(msgs[2].status(), None, "a DONE without an errno");
    }

    #[test]
    fn a_bad_length_ends_the_walk() {
        let mut buf = header(16, 20, 0, 1);
        buf.extend(header(64, 20, 0, 2));
        let got: Vec<_> = messages(&buf).collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok());
        assert_eq!(got[1].as_ref().unwrap_err(), &BadLength(64));
    }

    #[test]
    fn attributes_are_walked_with_flags_masked() {
        let mut buf = nla(1 | netlink_packet_core::NLA_F_NESTED, b"ab");
        buf.extend(nla(2, &42u32.to_be_bytes()));
        buf.extend([9, 0, 3]); // a truncated header ends the walk
        let got: Vec<_> = attrs(&buf).collect();
        assert_eq!(got, vec![(1, &b"ab"[..]), (2, &42u32.to_be_bytes()[..])]);
        assert_eq!(attr(&buf, 2).and_then(be32), Some(42));
        assert_eq!(string(b"cni\0junk"), "cni");
    }
}
