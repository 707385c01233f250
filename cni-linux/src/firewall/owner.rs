//! Who owns a firewall object: the owner tag and comments our plugins (bridge, portmap) write
//! into nftables tables, rules, maps and elements, in one place and with one argument order
//! (network, interface, container ID).
//!
//! nft stores at most [`MAX_COMMENT_LEN`] bytes of comment. Two ways to fit an identity:
//! - [`Owner::comment`] (portmap): the readable text when it fits, else a readable prefix and
//!   ` #` + 24 hex digits of the sha512 of the whole identity, so two identities that share
//!   their first 128 bytes still get different comments;
//! - [`Owner::cut_comment`] (bridge; portmap before it hashed): the text cut at 128 bytes.
//!
//! ```
//! use cni_linux::firewall::owner::{Owner, network_tag};
//! let who = Owner::new("net1", "eth0", "ctr1");
//! assert_eq!(who.comment(), "net1 eth0 ctr1");
//! assert_eq!(who.cut_comment(), "net1 eth0 ctr1");
//! assert_eq!(network_tag(&"n".repeat(49)).len(), 25); // `#` + 24 hex digits
//! ```

use super::nftables::MAX_COMMENT_LEN;
use super::sha512::sha512_hex;

/// Network names longer than this are replaced by a hash in comments ([`network_tag`]).
pub const MAX_NETWORK_TAG_LEN: usize = 48;

/// How a network is named in comments: its name, or `#` + 24 hex digits of its sha512 when
/// longer than [`MAX_NETWORK_TAG_LEN`] bytes.
pub fn network_tag(network: &str) -> String {
    if network.len() <= MAX_NETWORK_TAG_LEN {
        network.to_owned()
    } else {
        format!("#{}", &sha512_hex(network.as_bytes())[..24])
    }
}

/// `s` cut to [`MAX_COMMENT_LEN`] bytes (on a character boundary).
pub fn cut_comment(mut s: String) -> String {
    if s.len() > MAX_COMMENT_LEN {
        s.truncate(floor_char_boundary(&s, MAX_COMMENT_LEN));
    }
    s
}

/// `<network tag> <what>`, cut to [`MAX_COMMENT_LEN`] bytes: how a comment names the network
/// that owns a table, a map or a rule (`what` is, for example, a subnet).
pub fn tagged_comment(network: &str, what: &str) -> String {
    cut_comment(format!("{} {what}", network_tag(network)))
}

fn floor_char_boundary(s: &str, mut at: usize) -> usize {
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// One attachment: the network, `CNI_IFNAME` and `CNI_CONTAINERID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner<'a> {
    /// The network name.
    pub network: &'a str,
    /// `CNI_IFNAME`.
    pub ifname: &'a str,
    /// `CNI_CONTAINERID`.
    pub container_id: &'a str,
}

impl<'a> Owner<'a> {
    /// The attachment of `container_id`'s interface `ifname` to `network`.
    pub fn new(network: &'a str, ifname: &'a str, container_id: &'a str) -> Self {
        Owner {
            network,
            ifname,
            container_id,
        }
    }

    /// The hex sha512 of network, interface and container ID separated by NUL: what tells
    /// attachments apart when their text does not.
    pub fn digest(&self) -> String {
        sha512_hex(format!("{}\0{}\0{}", self.network, self.ifname, self.container_id).as_bytes())
    }

    /// The readable identity: `<network tag> <ifname> <container id>` (any length).
    pub fn text(&self) -> String {
        format!(
            "{} {} {}",
            network_tag(self.network),
            self.ifname,
            self.container_id
        )
    }

    /// The text when it fits [`MAX_COMMENT_LEN`]; otherwise a readable prefix of it ending in
    /// ` #` + 24 hex digits of [`Owner::digest`].
    pub fn comment(&self) -> String {
        let s = self.text();
        if s.len() <= MAX_COMMENT_LEN {
            return s;
        }
        let suffix = format!(" #{}", &self.digest()[..24]);
        let cut = floor_char_boundary(&s, MAX_COMMENT_LEN - suffix.len());
        format!("{}{suffix}", &s[..cut])
    }

    /// The text cut at [`MAX_COMMENT_LEN`] bytes (ambiguous for long identities; what bridge
    /// writes, and portmap wrote before [`Owner::comment`]).
    pub fn cut_comment(&self) -> String {
        cut_comment(self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_identities_are_their_text() {
        let o = Owner::new("net1", "eth0", "c1");
        assert_eq!(o.text(), "net1 eth0 c1");
        assert_eq!(o.comment(), "net1 eth0 c1");
        assert_eq!(o.cut_comment(), "net1 eth0 c1");
        assert_eq!(tagged_comment("net1", "10.0.0.0/24"), "net1 10.0.0.0/24");
    }

    #[test]
    fn long_identities_are_hashed_or_cut() {
        let long = "c".repeat(200);
        let a = Owner::new("net1", "eth0", &long);
        let b_id = format!("{long}x");
        let b = Owner::new("net1", "eth0", &b_id);
        assert_eq!(a.comment().len(), MAX_COMMENT_LEN);
        assert!(a.comment().starts_with("net1 eth0 ccc"));
        assert!(a.comment().contains(" #"));
        assert_ne!(a.comment(), b.comment(), "the hash tells them apart");
        assert_eq!(a.cut_comment(), b.cut_comment(), "the cut does not");
        assert_eq!(a.cut_comment(), a.text()[..MAX_COMMENT_LEN]);
    }

    #[test]
    fn cuts_respect_character_boundaries() {
        let id = "é".repeat(100);
        let o = Owner::new("n", "eth0", &id);
        assert!(o.cut_comment().len() <= MAX_COMMENT_LEN);
        assert!(o.comment().len() <= MAX_COMMENT_LEN);
        let tag = network_tag(&"n".repeat(49));
        assert!(tag.starts_with('#') && tag.len() == 25);
        assert_eq!(network_tag(&"n".repeat(48)), "n".repeat(48));
    }
}
