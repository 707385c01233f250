//! Our nftables layout (tables `ip cni_bridge_masq` and `ip6 cni_bridge_masq`), chosen with
//! `"ipMasqBackend": "nftables"`:
//!
//! ```text
//! table ip cni_bridge_masq {
//!   map masq_<16 hex> {                       # one per (network, subnet)
//!     type ipv4_addr : ifname
//!     comment "<network> 10.88.0.0/16"
//!     elements = { 10.88.0.5 comment "<network> eth0 <container id>" : "<owner>" }
//!   }
//!   chain postrouting {
//!     type nat hook postrouting priority srcnat; policy accept;
//!     ip saddr @masq_<16 hex> ip daddr != 10.88.0.0/16 ip daddr != 224.0.0.0/4 masquerade comment "<network> 10.88.0.0/16"
//!   }
//! }
//! ```
//!
//! `ip6 cni_bridge_masq` is the same with IPv6 addresses and `ff00::/8`. The map's name is a
//! hash of the layout version, the network and the subnet ([`nft_map_name`]); its rule is
//! written in the same transaction that creates it, and both stay once created (an empty map
//! costs one hash lookup per packet), as the bridge and its addresses do. An element's value
//! ([`nft_owner`]) identifies the attachment (network, interface, container ID); its comment
//! ([`nft_element_comment`]) names it for people, and for GC by network.
//!
//! The packet path is one rule per (network, subnet), each a hash lookup, whatever the number
//! of pods; the reference's nftables layout (Go plugin v1.5 and later, table
//! `inet cni_plugins_masquerade`) walks one rule per container address instead. Same
//! semantics as the reference: traffic from a container address to anything outside its
//! subnet but multicast is masqueraded. The name differs from the reference's table, so a
//! node switching between the Go plugin and this one never sees a table laid out in a way it
//! does not understand. (The Go plugin does not remove our elements: switching back to it, GC
//! or DEL through this plugin cleans them.)
//!
//! # What each verb costs
//!
//! - **ADD**: one transaction that only adds the container's elements ([`nft_add_plan`]):
//!   the kernel commits it in constant time, with no RCU grace period to wait for. When a map
//!   is missing (`ENOENT`: the first container of a (network, subnet) on the node), the
//!   skeleton is written with the element ([`nft_skeleton_plan`]): the map is *created*
//!   (`create`, not `add`) in the same transaction as its rule, so racing ADDs write the rule
//!   exactly once (the losers get `EEXIST` and add their element again). When an address is
//!   still held by another attachment (`EEXIST`: a stale element), it is replaced
//!   ([`nft_replace_plan`]).
//! - **DEL** with the addresses (from `prevResult` or the interface): each element is read by
//!   key (one round trip each, no dump) and deleted when it is this attachment's, in a
//!   transaction that re-adds it first so that one changed meanwhile aborts it
//!   ([`nft_del_plan`]). Then both tables are listed and the attachment's elements left are
//!   deleted by value ([`nft_del_listed`]), unless the addresses were `prevResult`'s and every
//!   one was found and deleted: addresses read from the namespace may have changed since ADD,
//!   and without addresses (no namespace, no `prevResult`: plugins #810) the listing is all.
//! - **GC** lists both tables and deletes the elements of this network's maps (the map's name
//!   is a hash of network and subnet) whose attachment is not valid ([`nft_gc_plan`]).

use std::collections::BTreeSet;
use std::net::IpAddr;

use cni_linux::IpFamily;
use cni_linux::firewall::nftables::{
    ChainSpec, ChainType, CmpOp, DataType, ElemValue, Element, ElementData, ElementListing, Family,
    Field, Hook, MapData, NftOp, NftPlan, RuleSpec, SetListing, SetSpec, Stmt, TableListing, Value,
    priority,
};
use cni_linux::firewall::owner::{Owner, network_tag, tagged_comment};
use cni_linux::firewall::sha512::sha512_hex;
use ipnet::IpNet;

use super::multicast;

/// Our nftables table, in families `ip` and `ip6`.
pub const NFT_TABLE: &str = "cni_bridge_masq";
/// The base chain (nat, postrouting hook, srcnat priority) holding one rule per map.
pub const NFT_CHAIN: &str = "postrouting";
/// The prefix of the maps' names.
pub const NFT_MAP_PREFIX: &str = "masq_";
const NFT_TABLE_COMMENT: &str =
    "cni-rs bridge ipMasq: one map of container addresses and one rule per network and subnet";
const NFT_LAYOUT_VERSION: &str = "v1";

/// The nft family of an address family (`ip`, `ip6`).
pub fn nft_family(f: IpFamily) -> Family {
    Family::of(f)
}

fn addr_type(f: IpFamily) -> DataType {
    match f {
        IpFamily::V4 => DataType::Ipv4Addr,
        IpFamily::V6 => DataType::Ipv6Addr,
    }
}

/// The map of one (network, subnet): `masq_` + 16 hex digits of sha512 of the layout version,
/// the network and the subnet.
pub fn nft_map_name(network: &str, subnet: IpNet) -> String {
    let h = sha512_hex(format!("{NFT_LAYOUT_VERSION}\n{network}\n{}", subnet.trunc()).as_bytes());
    format!("{NFT_MAP_PREFIX}{}", &h[..16])
}

/// The specification of the map of one (network, subnet): container address : owner.
pub fn nft_map_spec(network: &str, subnet: IpNet) -> SetSpec {
    let f = IpFamily::of(&subnet.addr());
    let mut spec = SetSpec::map(
        nft_map_name(network, subnet),
        vec![addr_type(f)],
        MapData::Values(vec![DataType::Ifname]),
    );
    spec.comment = Some(nft_subnet_comment(network, subnet));
    spec
}

/// The comment of a map and of its rule: `<network tag> <subnet>`.
pub fn nft_subnet_comment(network: &str, subnet: IpNet) -> String {
    owner_comment(network, &subnet.trunc().to_string())
}

/// The value of an attachment's elements: 15 hex digits of sha512 of network, interface and
/// container ID (an `ifname`, 16 bytes with the NUL). DEL and GC tell attachments apart by it;
/// the kernel refuses (`EEXIST`) to add a key that holds another value.
pub fn nft_owner(network: &str, ifname: &str, container_id: &str) -> String {
    Owner::new(network, ifname, container_id).digest()[..15].to_owned()
}

/// The comment of an attachment's elements: `<network tag> <ifname> <container id>`, cut to
/// nft's 128 bytes.
pub fn nft_element_comment(network: &str, ifname: &str, container_id: &str) -> String {
    Owner::new(network, ifname, container_id).cut_comment()
}

// The owner tag and comments come from cni-linux's `firewall::owner`, shared with portmap.

/// How a network is named in comments: its name, or `#` + 24 hex digits of its sha512 when
/// longer than 48 bytes (as the portmap plugin's comments).
pub fn nft_network_tag(network: &str) -> String {
    network_tag(network)
}

/// `<network tag> <what>`, cut to nft's 128 bytes: how our comments name the network that owns
/// a map, a rule or an element.
fn owner_comment(network: &str, what: &str) -> String {
    tagged_comment(network, what)
}

/// The rule of one (network, subnet): `ip saddr @map ip daddr != <subnet> ip daddr !=
/// 224.0.0.0/4 masquerade` (`ip6 … ff00::/8`), the reference's semantics.
pub fn nft_rule(network: &str, subnet: IpNet) -> RuleSpec {
    let f = IpFamily::of(&subnet.addr());
    let (saddr, daddr) = match f {
        IpFamily::V4 => (Field::IpSaddr, Field::IpDaddr),
        IpFamily::V6 => (Field::Ip6Saddr, Field::Ip6Daddr),
    };
    let neq = |value| Stmt::Cmp {
        field: daddr,
        op: CmpOp::Neq,
        value,
    };
    RuleSpec::new(
        NFT_CHAIN,
        vec![
            Stmt::InSet {
                fields: vec![saddr],
                set: nft_map_name(network, subnet),
                negate: false,
            },
            neq(Value::Net(subnet.trunc())),
            neq(Value::Net(net(multicast(f)))),
            Stmt::Masquerade,
        ],
    )
    .with_comment(nft_subnet_comment(network, subnet))
}

/// One masqueraded container address and its subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NftEntry {
    /// The container address.
    pub addr: IpAddr,
    /// Its subnet (the address's prefix).
    pub subnet: IpNet,
}

impl NftEntry {
    /// The address family.
    pub fn family(&self) -> IpFamily {
        IpFamily::of(&self.addr)
    }

    fn map(&self, network: &str) -> SetSpec {
        nft_map_spec(network, self.subnet)
    }

    fn key(&self) -> Vec<Value> {
        vec![Value::Addr(self.addr)]
    }
}

/// The entries of container addresses (with their prefix), without duplicates, IPv4 first.
pub fn nft_entries(ips: &[IpNet]) -> Vec<NftEntry> {
    let mut out: Vec<NftEntry> = Vec::new();
    for ip in ips {
        let e = NftEntry {
            addr: ip.addr(),
            subnet: ip.trunc(),
        };
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out.sort_by_key(|e| e.family() == IpFamily::V6);
    out
}

/// Who an ADD/DEL is for: the network and the attachment.
#[derive(Debug, Clone, Copy)]
pub struct NftOwner<'a> {
    /// The network name.
    pub network: &'a str,
    /// `CNI_IFNAME`.
    pub ifname: &'a str,
    /// `CNI_CONTAINERID`.
    pub container_id: &'a str,
}

impl NftOwner<'_> {
    fn element(&self, e: &NftEntry) -> Element {
        Element {
            key: e.key(),
            value: Some(ElemValue::Values(vec![Value::Ifname(nft_owner(
                self.network,
                self.ifname,
                self.container_id,
            ))])),
            comment: Some(nft_element_comment(
                self.network,
                self.ifname,
                self.container_id,
            )),
        }
    }

    /// Whether a listed element holds this attachment's value.
    pub fn owns(&self, e: &ElementListing) -> bool {
        owner_of(e).as_deref()
            == Some(nft_owner(self.network, self.ifname, self.container_id).as_str())
    }
}

/// The owner value stored in a listed element.
fn owner_of(e: &ElementListing) -> Option<String> {
    match &e.data {
        Some(ElementData::Value(b)) => {
            let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
            Some(String::from_utf8_lossy(&b[..end]).into_owned())
        }
        _ => None,
    }
}

/// Adds the elements of `entries` to `plan`, one op per map.
fn add_elements(plan: &mut NftPlan, who: &NftOwner<'_>, entries: &[NftEntry]) {
    for e in entries {
        let spec = e.map(who.network);
        let f = nft_family(e.family());
        match plan.ops.last_mut() {
            Some(NftOp::AddElements {
                family,
                table,
                set,
                elements,
                ..
            }) if *family == f && table == NFT_TABLE && *set == spec.name => {
                elements.push(who.element(e));
            }
            _ => {
                plan.add_elements(f, NFT_TABLE, &spec, vec![who.element(e)]);
            }
        }
    }
}

/// ADD's transaction: only element additions (constant-time commit). Fails with `ENOENT`
/// when a map (or its table) is missing, `EEXIST` when an address holds another attachment's
/// value; re-adding this attachment's own elements is a no-op.
pub fn nft_add_plan(who: &NftOwner<'_>, entries: &[NftEntry]) -> NftPlan {
    let mut plan = NftPlan::new();
    add_elements(&mut plan, who, entries);
    plan
}

/// The transaction for the first container of a (network, subnet): the table and base chain
/// (if missing), the map, **created** (it fails with `EEXIST` if it exists, so the rule
/// written with it is never written twice), its rule, and the element.
pub fn nft_skeleton_plan(who: &NftOwner<'_>, entry: &NftEntry) -> NftPlan {
    let f = nft_family(entry.family());
    let mut plan = NftPlan::new();
    plan.add_table(f, NFT_TABLE, Some(NFT_TABLE_COMMENT))
        .add_chain(
            f,
            NFT_TABLE,
            ChainSpec::base(
                NFT_CHAIN,
                ChainType::Nat,
                Hook::Postrouting,
                priority::SRCNAT,
            ),
        )
        .create_set(f, NFT_TABLE, entry.map(who.network))
        .add_rule(f, NFT_TABLE, nft_rule(who.network, entry.subnet));
    add_elements(&mut plan, who, std::slice::from_ref(entry));
    plan
}

/// Replaces the element of an address held by another attachment (a stale element: its
/// container is gone without DEL) with this attachment's.
pub fn nft_replace_plan(who: &NftOwner<'_>, entry: &NftEntry) -> NftPlan {
    let mut plan = NftPlan::new();
    plan.delete_elements(
        nft_family(entry.family()),
        NFT_TABLE,
        &entry.map(who.network),
        vec![entry.key()],
    );
    add_elements(&mut plan, who, std::slice::from_ref(entry));
    plan
}

/// DEL's transaction for entries known to hold this attachment's elements: each is re-added
/// (a no-op while it is ours; `EEXIST` aborts everything if it changed hands meanwhile), then
/// deleted.
pub fn nft_del_plan(who: &NftOwner<'_>, entries: &[NftEntry]) -> NftPlan {
    let mut plan = nft_add_plan(who, entries);
    for e in entries {
        plan.delete_elements(
            nft_family(e.family()),
            NFT_TABLE,
            &e.map(who.network),
            vec![e.key()],
        );
    }
    plan
}

/// Decodes a listed key of one of our maps (4 or 16 address bytes).
fn listed_addr(key: &[u8]) -> Option<IpAddr> {
    if let Ok(b) = <[u8; 4]>::try_from(key) {
        return Some(IpAddr::from(b));
    }
    <[u8; 16]>::try_from(key).ok().map(IpAddr::from)
}

/// Deletes the listed elements that `pred` selects of our maps that `maps` selects.
fn delete_listed(
    listing: &TableListing,
    maps: impl Fn(&SetListing) -> bool,
    pred: impl Fn(&ElementListing) -> bool,
) -> NftPlan {
    let mut plan = NftPlan::new();
    for set in &listing.sets {
        if !set.name.starts_with(NFT_MAP_PREFIX) || !maps(set) {
            continue;
        }
        let keys: Vec<Vec<Value>> = set
            .elements
            .iter()
            .filter(|e| pred(e))
            .filter_map(|e| listed_addr(&e.key))
            .filter(|a| Family::of(IpFamily::of(a)) == listing.family)
            .map(|a| vec![Value::Addr(a)])
            .collect();
        if keys.is_empty() {
            continue;
        }
        let key = match listing.family {
            Family::Ip6 => DataType::Ipv6Addr,
            _ => DataType::Ipv4Addr,
        };
        plan.push(NftOp::DeleteElements {
            family: listing.family,
            table: listing.name.clone(),
            set: set.name.clone(),
            key: vec![key],
            keys,
        });
    }
    plan
}

/// DEL without addresses: this attachment's elements found in a listing of one of our tables.
pub fn nft_del_listed(listing: &TableListing, who: &NftOwner<'_>) -> NftPlan {
    delete_listed(listing, |_| true, |e| who.owns(e))
}

/// Whether a listed map is one of `network`'s: its comment names a subnet (`<tag> <subnet>`)
/// from which [`nft_map_name`] derives this map's name. Comments alone are ambiguous (the
/// network `a` is a prefix of the network `a b`'s comments); the name is a hash of the
/// network and the subnet.
fn map_of_network(set: &SetListing, network: &str) -> bool {
    set.comment
        .as_deref()
        .and_then(|c| c.rsplit(' ').next())
        .and_then(|s| s.parse::<IpNet>().ok())
        .is_some_and(|subnet| nft_map_name(network, subnet) == set.name)
}

/// GC of one of our tables: the elements of `network`'s maps whose value is not a valid
/// attachment's.
pub fn nft_gc_plan(
    listing: &TableListing,
    network: &str,
    valid: &[cni_types::Attachment],
) -> NftPlan {
    let keep: BTreeSet<String> = valid
        .iter()
        .map(|a| nft_owner(network, &a.ifname, &a.container_id))
        .collect();
    delete_listed(
        listing,
        |s| map_of_network(s, network),
        |e| !owner_of(e).is_some_and(|o| keep.contains(&o)),
    )
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "f9b1c8a3d2e4";

    fn ips() -> Vec<IpNet> {
        vec![
            "10.88.0.5/16".parse().unwrap(),
            "fd00:1::5/64".parse().unwrap(),
        ]
    }

    const WHO: NftOwner<'static> = NftOwner {
        network: "podnet",
        ifname: "eth0",
        container_id: CID,
    };

    #[test]
    fn nft_names_values_and_comments() {
        let v4: IpNet = "10.88.0.0/16".parse().unwrap();
        let name = nft_map_name("podnet", v4);
        assert!(name.starts_with("masq_"), "{name}");
        assert_eq!(name.len(), 5 + 16);
        assert!(name[5..].bytes().all(|b| b.is_ascii_hexdigit()));
        // The subnet, not the address, names the map; networks and subnets get their own.
        assert_eq!(
            nft_map_name("podnet", "10.88.7.7/16".parse().unwrap()),
            name
        );
        assert_ne!(
            nft_map_name("podnet", "10.88.0.0/24".parse().unwrap()),
            name
        );
        assert_ne!(nft_map_name("other", v4), name);
        // The owner fits an ifname value and tells attachments apart.
        let o = nft_owner("podnet", "eth0", CID);
        assert_eq!(o.len(), 15);
        assert_ne!(nft_owner("podnet", "eth1", CID), o);
        assert_ne!(nft_owner("podnet2", "eth0", CID), o);
        assert_eq!(
            nft_element_comment("podnet", "eth0", CID),
            format!("podnet eth0 {CID}")
        );
        let long_net = "n".repeat(60);
        let c = nft_element_comment(&long_net, "eth0", &"x".repeat(100));
        assert!(c.starts_with('#') && c.len() == 128, "{c}");
        assert_eq!(nft_network_tag(&long_net).len(), 25);
    }

    #[test]
    fn nft_add_plan_golden() {
        let plan = nft_add_plan(&WHO, &nft_entries(&ips()));
        let (m4, m6) = (
            nft_map_name("podnet", "10.88.0.0/16".parse().unwrap()),
            nft_map_name("podnet", "fd00:1::/64".parse().unwrap()),
        );
        let o = nft_owner("podnet", "eth0", CID);
        assert_eq!(
            plan.to_string(),
            format!(
                "add element ip cni_bridge_masq {m4} {{ 10.88.0.5 : \"{o}\" comment \"podnet eth0 {CID}\" }}\n\
                 add element ip6 cni_bridge_masq {m6} {{ fd00:1::5 : \"{o}\" comment \"podnet eth0 {CID}\" }}\n"
            )
        );
        // Two addresses of one subnet share one op.
        let two = nft_entries(&[
            "10.88.0.5/16".parse().unwrap(),
            "10.88.0.6/16".parse().unwrap(),
            "10.88.0.5/16".parse().unwrap(),
        ]);
        assert_eq!(two.len(), 2);
        assert_eq!(nft_add_plan(&WHO, &two).ops.len(), 1);
    }

    #[test]
    fn nft_skeleton_plan_golden() {
        let e = nft_entries(&ips());
        let m4 = nft_map_name("podnet", "10.88.0.0/16".parse().unwrap());
        let o = nft_owner("podnet", "eth0", CID);
        assert_eq!(
            nft_skeleton_plan(&WHO, &e[0]).to_string(),
            format!(
                "add table ip cni_bridge_masq {{ comment \"{NFT_TABLE_COMMENT}\" }}\n\
                 add chain ip cni_bridge_masq postrouting {{ type nat hook postrouting priority 100; }}\n\
                 create map ip cni_bridge_masq {m4} {{ type ipv4_addr : ifname; comment \"podnet 10.88.0.0/16\"; }}\n\
                 add rule ip cni_bridge_masq postrouting ip saddr @{m4} ip daddr != 10.88.0.0/16 ip daddr != 224.0.0.0/4 masquerade comment \"podnet 10.88.0.0/16\"\n\
                 add element ip cni_bridge_masq {m4} {{ 10.88.0.5 : \"{o}\" comment \"podnet eth0 {CID}\" }}\n"
            )
        );
        let m6 = nft_map_name("podnet", "fd00:1::/64".parse().unwrap());
        let text = nft_skeleton_plan(&WHO, &e[1]).to_string();
        assert!(
            text.contains(&format!(
                "add rule ip6 cni_bridge_masq postrouting ip6 saddr @{m6} ip6 daddr != fd00:1::/64 ip6 daddr != ff00::/8 masquerade"
            )),
            "{text}"
        );
        assert!(text.contains(&format!(
            "create map ip6 cni_bridge_masq {m6} {{ type ipv6_addr : ifname;"
        )));
    }

    #[test]
    fn nft_replace_and_del_plans_golden() {
        let e = nft_entries(&ips()[..1]);
        let m4 = nft_map_name("podnet", "10.88.0.0/16".parse().unwrap());
        let o = nft_owner("podnet", "eth0", CID);
        let add = format!(
            "add element ip cni_bridge_masq {m4} {{ 10.88.0.5 : \"{o}\" comment \"podnet eth0 {CID}\" }}\n"
        );
        let del = format!("delete element ip cni_bridge_masq {m4} {{ 10.88.0.5 }}\n");
        assert_eq!(
            nft_replace_plan(&WHO, &e[0]).to_string(),
            format!("{del}{add}")
        );
        assert_eq!(nft_del_plan(&WHO, &e).to_string(), format!("{add}{del}"));
    }

    /// A listing of our `ip` table: per `(network, subnet)` its map with the elements
    /// `(address, owner, comment)`, and a set that is not ours.
    /// `(network, subnet, elements)`, each element `(address, owner, comment)`.
    type MapOf<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str, &'a str)>);

    fn our_listing(maps: Vec<MapOf<'_>>) -> TableListing {
        let elem = |addr: &str, owner: &str, comment: &str| {
            let mut v = owner.as_bytes().to_vec();
            v.resize(16, 0);
            ElementListing {
                key: match addr.parse::<IpAddr>().unwrap() {
                    IpAddr::V4(a) => a.octets().to_vec(),
                    IpAddr::V6(a) => a.octets().to_vec(),
                },
                data: Some(ElementData::Value(v)),
                comment: Some(comment.to_owned()),
            }
        };
        let set = |name: String, comment: Option<String>, elements| SetListing {
            name,
            handle: 3,
            flags: 8,
            key_type: 7,
            key_len: 4,
            data_type: Some(41),
            data_len: Some(16),
            comment,
            elements,
        };
        let mut sets: Vec<SetListing> = maps
            .into_iter()
            .map(|(network, subnet, elements)| {
                let subnet: IpNet = subnet.parse().unwrap();
                set(
                    nft_map_name(network, subnet),
                    Some(nft_subnet_comment(network, subnet)),
                    elements
                        .into_iter()
                        .map(|(a, o, c)| elem(a, o, c))
                        .collect(),
                )
            })
            .collect();
        // Not one of ours: never touched.
        sets.push(set(
            "other".into(),
            None,
            vec![elem("10.88.0.9", &nft_owner("podnet", "eth0", CID), "x")],
        ));
        TableListing {
            family: Family::Ip,
            name: NFT_TABLE.into(),
            handle: 1,
            comment: None,
            chains: vec![],
            sets,
        }
    }

    #[test]
    fn nft_del_listed_and_gc_by_value() {
        let mine = nft_owner("podnet", "eth0", CID);
        let other_if = nft_owner("podnet", "eth1", CID);
        let stale = nft_owner("podnet", "eth0", "gone");
        let other_net = nft_owner("othernet", "eth0", "gone");
        // A network whose comments start with "podnet ": not podnet's.
        let prefixed = nft_owner("podnet x", "eth0", "gone");
        let c = |n: &str, i: &str, id: &str| nft_element_comment(n, i, id);
        let listing = our_listing(vec![
            (
                "podnet",
                "10.88.0.0/16",
                vec![
                    ("10.88.0.2", &mine, &c("podnet", "eth0", CID)),
                    ("10.88.0.3", &other_if, &c("podnet", "eth1", CID)),
                    ("10.88.0.4", &stale, &c("podnet", "eth0", "gone")),
                ],
            ),
            (
                "othernet",
                "10.89.0.0/16",
                vec![("10.89.0.5", &other_net, &c("othernet", "eth0", "gone"))],
            ),
            (
                "podnet x",
                "10.90.0.0/16",
                vec![("10.90.0.6", &prefixed, &c("podnet x", "eth0", "gone"))],
            ),
        ]);
        let map = nft_map_name("podnet", "10.88.0.0/16".parse().unwrap());
        assert_eq!(
            nft_del_listed(&listing, &WHO).to_string(),
            format!("delete element ip cni_bridge_masq {map} {{ 10.88.0.2 }}\n")
        );
        let valid = vec![
            cni_types::Attachment {
                container_id: CID.into(),
                ifname: "eth0".into(),
            },
            cni_types::Attachment {
                container_id: CID.into(),
                ifname: "eth1".into(),
            },
        ];
        assert_eq!(
            nft_gc_plan(&listing, "podnet", &valid).to_string(),
            format!("delete element ip cni_bridge_masq {map} {{ 10.88.0.4 }}\n")
        );
        let other = nft_gc_plan(&listing, "othernet", &[]).to_string();
        assert!(other.contains("{ 10.89.0.5 }"), "{other}");
        assert_eq!(other.lines().count(), 1, "{other}");
        let prefixed = nft_gc_plan(&listing, "podnet x", &[]).to_string();
        assert!(prefixed.contains("{ 10.90.0.6 }"), "{prefixed}");
        assert_eq!(prefixed.lines().count(), 1, "{prefixed}");
        assert!(WHO.owns(&listing.sets[0].elements[0]));
        assert!(!WHO.owns(&listing.sets[0].elements[1]));
    }
}
