//! The guard that goes with `route_localnet` (the CVE-2020-8558 class).
//!
//! With `snat` (the default) portmap enables `net.ipv4.conf.<bridge>.route_localnet`, as the
//! reference does, so that `127.0.0.1:<hostPort>` on the node reaches the container (the
//! DNATed packet leaves through the bridge with source 127.0.0.1, masqueraded on the way).
//! The same setting also lets the kernel accept packets that a pod sends to 127.0.0.0/8
//! through its gateway, and so opens every service bound to 127.0.0.1 on the node to the
//! pods. Kubernetes answers this with a drop rule, and so does this plugin, in the filter
//! `INPUT` path of IPv4:
//!
//! ```text
//! iptables (table filter):
//!   INPUT:                -m comment --comment "..." -j CNI-PORTMAP-LOCALNET   (inserted first)
//!   CNI-PORTMAP-LOCALNET: ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "..."
//!                           -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
//! nftables:
//!   table ip cni_portmap_localnet {
//!     map stamp { type ifname : ifname; elements = { "stamp" : "g1-<hash>" } }
//!     chain input { type filter hook input priority filter;
//!       ct state established,related accept
//!       ct status dnat accept
//!       ip saddr != 127.0.0.0/8 ip daddr 127.0.0.0/8 drop }
//!   }
//! ```
//!
//! (`accept` only ends this base chain: the node's other input chains still judge the
//! packet.) DNATed packets (the host-port path, and any DNAT to a loopback address other
//! software installs) and replies are not dropped; neither is anything from 127.0.0.0/8, so
//! the node's own loopback traffic and `127.0.0.1:<hostPort>` work as before.
//!
//! **Lifetime.** ADD ensures the guard of its backend whenever it enables `route_localnet`
//! (iptables: in the same `iptables-restore` as the mappings; nftables: the fast ADD
//! transaction asserts the guard's stamp, so a missing guard is rewritten with no extra
//! cost when it is present). The plugin never turns `route_localnet` off again (the
//! reference does not either, and the Go plugin sharing a node relies on it), so the guard
//! is needed as long as any interface has `route_localnet` on: DEL and GC remove it (in both
//! backends) once no interface has it, and keep it otherwise. The Go plugin does not use
//! table `filter` or these names.

use cni_linux::firewall::IpFamily;
use cni_linux::firewall::iptables::{IptablesPlan, Rule};
use cni_linux::firewall::nftables::{
    ChainSpec, ChainType, CmpOp, CtState, DataType, ElemValue, Element, Family, Field, Hook,
    MapData, NftOp, NftPlan, RuleSpec, SetSpec, Stmt, Value, Verdict, priority,
};
use cni_linux::firewall::sha512::sha512_hex;

use crate::error::ConfigError;

/// The iptables table of the guard.
pub const IPT_TABLE: &str = "filter";
/// The iptables chain holding the drop rule.
pub const IPT_CHAIN: &str = "CNI-PORTMAP-LOCALNET";
/// The comment of the drop rule and of the `INPUT` jump.
pub const COMMENT: &str =
    "CNI portmap: drop traffic to 127.0.0.0/8 that is not from loopback (route_localnet)";
/// The nftables table of the guard (family `ip`).
pub const NFT_TABLE: &str = "cni_portmap_localnet";
/// The nftables base chain.
pub const NFT_CHAIN: &str = "input";
/// The map holding the guard's stamp.
pub const NFT_STAMP_MAP: &str = "stamp";
const STAMP_KEY: &str = "stamp";

fn toks(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// The drop rule, as iptables-save prints it.
pub fn drop_rule() -> Vec<String> {
    toks(&[
        "!",
        "-s",
        "127.0.0.0/8",
        "-d",
        "127.0.0.0/8",
        "-m",
        "comment",
        "--comment",
        COMMENT,
        "-m",
        "conntrack",
        "!",
        "--ctstate",
        "RELATED,ESTABLISHED,DNAT",
        "-j",
        "DROP",
    ])
}

/// The rule inserted at the top of `INPUT`.
pub fn jump_rule() -> Vec<String> {
    toks(&["-m", "comment", "--comment", COMMENT, "-j", IPT_CHAIN])
}

/// The iptables plan that ensures the guard (IPv4, table `filter`).
pub fn iptables_add_plan() -> Result<IptablesPlan, ConfigError> {
    let mut p = IptablesPlan::new(IpFamily::V4, IPT_TABLE);
    p.ensure_chain(IPT_CHAIN);
    p.append_unique(
        IPT_CHAIN,
        Rule::new(drop_rule()).map_err(ConfigError::Rule)?,
    );
    p.insert_unique("INPUT", Rule::new(jump_rule()).map_err(ConfigError::Rule)?);
    Ok(p)
}

/// The iptables plan that removes the guard.
pub fn iptables_del_plan() -> IptablesPlan {
    let mut p = IptablesPlan::new(IpFamily::V4, IPT_TABLE);
    p.delete_jumps_to_expected_in(IPT_CHAIN, ["INPUT"]);
    p.delete_chain(IPT_CHAIN);
    p
}

/// 127.0.0.0/8.
fn loopback_net() -> Value {
    Value::Net(ipnet::IpNet::V4(ipnet::Ipv4Net::new_assert(
        std::net::Ipv4Addr::new(127, 0, 0, 0),
        8,
    )))
}

fn body(plan: &mut NftPlan) {
    let f = Family::Ip;
    plan.add_table(f, NFT_TABLE, Some(COMMENT)).add_chain(
        f,
        NFT_TABLE,
        ChainSpec::base(NFT_CHAIN, ChainType::Filter, Hook::Input, priority::FILTER),
    );
    plan.flush_chain(f, NFT_TABLE, NFT_CHAIN);
    let rules = [
        vec![
            Stmt::CtState(vec![CtState::Established, CtState::Related]),
            Stmt::Verdict(Verdict::Accept),
        ],
        vec![Stmt::CtStatusDnat, Stmt::Verdict(Verdict::Accept)],
        vec![
            Stmt::Cmp {
                field: Field::IpSaddr,
                op: CmpOp::Neq,
                value: loopback_net(),
            },
            Stmt::Cmp {
                field: Field::IpDaddr,
                op: CmpOp::Eq,
                value: loopback_net(),
            },
            Stmt::Verdict(Verdict::Drop),
        ],
    ];
    for stmts in rules {
        plan.add_rule(f, NFT_TABLE, RuleSpec::new(NFT_CHAIN, stmts));
    }
}

fn stamp_map() -> SetSpec {
    let mut s = SetSpec::map(
        NFT_STAMP_MAP,
        vec![DataType::Ifname],
        MapData::Values(vec![DataType::Ifname]),
    );
    s.comment = Some("stamp: hash of the guard".into());
    s
}

/// The guard's stamp: `g1-` + 12 hex digits of the sha512 of its text.
pub fn stamp() -> String {
    let mut p = NftPlan::new();
    body(&mut p);
    format!("g1-{}", &sha512_hex(p.to_string().as_bytes())[..12])
}

fn stamp_element() -> Element {
    Element {
        key: vec![Value::Ifname(STAMP_KEY.into())],
        value: Some(ElemValue::Values(vec![Value::Ifname(stamp())])),
        comment: None,
    }
}

/// The op that asserts the guard is in place (part of the fast ADD transaction): re-adding
/// the identical stamp is a no-op, a missing table fails with `ENOENT`, another version's
/// guard with `EEXIST`.
pub fn nft_assert(plan: &mut NftPlan) {
    plan.add_elements(Family::Ip, NFT_TABLE, &stamp_map(), vec![stamp_element()]);
}

/// The ops that (re)write the guard whole.
pub fn nft_write(plan: &mut NftPlan) {
    body(plan);
    plan.add_set(Family::Ip, NFT_TABLE, stamp_map())
        .push(NftOp::FlushSet {
            family: Family::Ip,
            table: NFT_TABLE.into(),
            set: NFT_STAMP_MAP.into(),
        });
    nft_assert(plan);
}

/// Whether the nftables guard is in place (one element lookup, no listing).
pub fn nft_present(
    fw: &mut dyn cni_linux::firewall::FirewallApplier,
) -> Result<bool, cni_linux::firewall::FirewallError> {
    Ok(fw
        .nft_element(
            Family::Ip,
            NFT_TABLE,
            NFT_STAMP_MAP,
            &[DataType::Ifname],
            &[Value::Ifname(STAMP_KEY.into())],
        )?
        .is_some())
}

/// The plan that removes the nftables guard (nothing if it is absent).
pub fn nft_del_plan() -> NftPlan {
    let mut p = NftPlan::new();
    p.push(NftOp::DestroyTable {
        family: Family::Ip,
        name: NFT_TABLE.into(),
    });
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_read_as_designed() {
        let mut p = NftPlan::new();
        nft_write(&mut p);
        let text = p.to_string();
        assert!(
            text.contains("ct state established,related accept"),
            "{text}"
        );
        assert!(text.contains("ct status dnat accept"), "{text}");
        assert!(
            text.contains("ip saddr != 127.0.0.0/8 ip daddr 127.0.0.0/8 drop"),
            "{text}"
        );
        assert!(text.contains(&stamp()), "{text}");
        let ipt = iptables_add_plan().unwrap().to_string();
        assert!(ipt.contains("CNI-PORTMAP-LOCALNET"), "{ipt}");
        assert!(ipt.contains("RELATED,ESTABLISHED,DNAT"), "{ipt}");
    }
}
