//! The iptables backend, in the reference's layout (so the Go plugin and this one can each
//! remove what the other added):
//!
//! ```text
//! *filter
//! -A FORWARD -m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge)" -j CNI-ISOLATION-STAGE-1
//! -A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD
//! -A CNI-FORWARD -m comment --comment "CNI firewall plugin admin overrides" -j CNI-ADMIN
//! -A CNI-FORWARD -m conntrack --ctstate DNAT -m comment --comment "CNI firewall plugin rules (DNAT)" -j ACCEPT
//! -A CNI-FORWARD -d 10.88.0.5/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
//! -A CNI-FORWARD -s 10.88.0.5/32 -j ACCEPT
//! -A CNI-ISOLATION-STAGE-1 -i br0 ! -o br0 -m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge)" -j CNI-ISOLATION-STAGE-2
//! -A CNI-ISOLATION-STAGE-1 -m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge)" -j RETURN
//! -A CNI-ISOLATION-STAGE-2 -o br0 -m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge)" -j DROP
//! -A CNI-ISOLATION-STAGE-2 -m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge)" -j RETURN
//! ```
//!
//! Every rule but the `DNAT` one is the reference's. The `DNAT` rule (ours) accepts new
//! connections to host ports when the node's `FORWARD` policy is `DROP`; the reference
//! ignores it, so a Go DEL leaves it, like the chains themselves.
//!
//! Plans are pure values ([`add_plans`], [`del_plans`], [`isolation_teardown_plans`]); CHECK
//! compares the parsed `iptables-save` state ([`check`]).

use std::net::IpAddr;

use cni_linux::firewall::IpFamily;
use cni_linux::firewall::iptables::{IptablesPlan, IptablesState, Rule};

use crate::config::{FirewallConf, IngressPolicy, Pod, host_cidr};
use crate::error::CheckError;

/// The table everything lives in.
pub const TABLE: &str = "filter";
/// The reference's private chain.
pub const FORWARD_CHAIN: &str = "CNI-FORWARD";
/// Isolation stage 1 (jumped to from `FORWARD`).
pub const STAGE1: &str = "CNI-ISOLATION-STAGE-1";
/// Isolation stage 2.
pub const STAGE2: &str = "CNI-ISOLATION-STAGE-2";
/// Comment of the `FORWARD` jump.
pub const RULES_COMMENT: &str = "CNI firewall plugin rules";
/// Comment of the admin chain jump.
pub const ADMIN_COMMENT: &str = "CNI firewall plugin admin overrides";
/// Comment of the isolation rules.
pub const ISOLATION_COMMENT: &str = "CNI firewall plugin rules (ingressPolicy: same-bridge)";
/// Comment of our `DNAT` accept rule.
pub const DNAT_COMMENT: &str = "CNI firewall plugin rules (DNAT)";

/// A rule as argument words (what the reference passes to iptables).
type Args = Vec<String>;

fn words(ws: &[&str]) -> Args {
    ws.iter().map(|s| (*s).to_owned()).collect()
}

fn rule(args: &Args) -> Rule {
    // Every rule here is built from fixed words, addresses and validated names.
    #[allow(clippy::expect_used)]
    Rule::new(args.iter().map(String::as_str)).expect("a rule built from validated words")
}

/// Go's `%v` of a `[]string`, for the reference's CHECK messages.
fn go_list(args: &Args) -> String {
    format!("[{}]", args.join(" "))
}

fn forward_jump() -> Args {
    words(&[
        "-m",
        "comment",
        "--comment",
        RULES_COMMENT,
        "-j",
        FORWARD_CHAIN,
    ])
}

fn admin_jump(admin: &str) -> Args {
    words(&["-m", "comment", "--comment", ADMIN_COMMENT, "-j", admin])
}

fn dnat_accept() -> Args {
    words(&[
        "-m",
        "conntrack",
        "--ctstate",
        "DNAT",
        "-m",
        "comment",
        "--comment",
        DNAT_COMMENT,
        "-j",
        "ACCEPT",
    ])
}

/// The reference's two rules for one address.
pub fn addr_rules(a: IpAddr) -> [Args; 2] {
    let cidr = host_cidr(a);
    [
        words(&[
            "-d",
            &cidr,
            "-m",
            "conntrack",
            "--ctstate",
            "RELATED,ESTABLISHED",
            "-j",
            "ACCEPT",
        ]),
        words(&["-s", &cidr, "-j", "ACCEPT"]),
    ]
}

fn stage1_jump() -> Args {
    words(&[
        "-m",
        "comment",
        "--comment",
        ISOLATION_COMMENT,
        "-j",
        STAGE1,
    ])
}

fn stage1_bridge(br: &str) -> Args {
    words(&[
        "-i",
        br,
        "!",
        "-o",
        br,
        "-m",
        "comment",
        "--comment",
        ISOLATION_COMMENT,
        "-j",
        STAGE2,
    ])
}

fn stage2_bridge(br: &str) -> Args {
    words(&[
        "-o",
        br,
        "-m",
        "comment",
        "--comment",
        ISOLATION_COMMENT,
        "-j",
        "DROP",
    ])
}

fn stage_return() -> Args {
    words(&[
        "-m",
        "comment",
        "--comment",
        ISOLATION_COMMENT,
        "-j",
        "RETURN",
    ])
}

fn families(pod: &Pod) -> Vec<IpFamily> {
    let mut out = Vec::new();
    for a in &pod.addrs {
        let f = IpFamily::of(a);
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out.sort_by_key(|f| matches!(f, IpFamily::V6));
    out
}

/// ADD's plans: per family of the pod's addresses, the reference's chains and rules (in its
/// order: the `FORWARD` jump and the admin jump inserted first, then the address rules
/// appended), then, for `same-bridge`, the isolation chains of `bridge`. `forward` adds the
/// address rules (false with the firewalld backend, where only isolation is in iptables).
pub fn add_plans(
    conf: &FirewallConf,
    pod: &Pod,
    bridge: Option<&str>,
    forward: bool,
) -> Vec<IptablesPlan> {
    let mut plans = Vec::new();
    for fam in families(pod) {
        let mut p = IptablesPlan::new(fam, TABLE);
        if forward {
            p.ensure_chain(FORWARD_CHAIN)
                .ensure_chain(&conf.admin_chain);
            p.insert_unique("FORWARD", rule(&forward_jump()));
            p.insert_unique(FORWARD_CHAIN, rule(&admin_jump(&conf.admin_chain)));
            p.append_unique(FORWARD_CHAIN, rule(&dnat_accept()));
            for a in pod.addrs.iter().filter(|a| IpFamily::of(a) == fam) {
                for r in addr_rules(*a) {
                    p.append_unique(FORWARD_CHAIN, rule(&r));
                }
            }
        }
        if conf.ingress == IngressPolicy::SameBridge
            && let Some(br) = bridge
        {
            p.ensure_chain(STAGE1).ensure_chain(STAGE2);
            p.insert_unique("FORWARD", rule(&stage1_jump()));
            p.insert_unique(STAGE1, rule(&stage1_bridge(br)));
            p.append_unique(STAGE1, rule(&stage_return()));
            p.insert_unique(STAGE2, rule(&stage2_bridge(br)));
            p.append_unique(STAGE2, rule(&stage_return()));
        }
        plans.push(p);
    }
    plans
}

/// DEL's plans: the pod's address rules, per family (absent rules are no error). Shared
/// chains stay, as in the reference.
pub fn del_plans(pod: &Pod) -> Vec<IptablesPlan> {
    families(pod)
        .into_iter()
        .map(|fam| {
            let mut p = IptablesPlan::new(fam, TABLE);
            for a in pod.addrs.iter().filter(|a| IpFamily::of(a) == fam) {
                for r in addr_rules(*a) {
                    p.delete(FORWARD_CHAIN, rule(&r));
                }
            }
            p
        })
        .collect()
}

/// Removes `bridge`'s isolation rules from `state`'s family; when no bridge rule of any
/// plugin remains in stage 1, also the stage chains and the `FORWARD` jump (a later ADD, ours
/// or the Go plugin's, creates them again). `None` when there is nothing to remove.
pub fn isolation_teardown_plans(state: &IptablesState, bridge: &str) -> Option<IptablesPlan> {
    let table = state.table(TABLE)?;
    let s1 = rule(&stage1_bridge(bridge));
    let s2 = rule(&stage2_bridge(bridge));
    let ret = rule(&stage_return());
    let stage1 = table.chain(STAGE1);
    let stage2 = table.chain(STAGE2);
    let has = |c: Option<&cni_linux::firewall::iptables::ChainState>, r: &Rule| {
        c.is_some_and(|c| c.rules.contains(r))
    };
    if !has(stage1, &s1) && !has(stage2, &s2) {
        return None;
    }
    let mut p = IptablesPlan::new(state.family, TABLE);
    p.delete(STAGE1, s1.clone()).delete(STAGE2, s2.clone());
    let others = |c: Option<&cni_linux::firewall::iptables::ChainState>, own: &Rule| {
        c.is_some_and(|c| c.rules.iter().any(|r| r != own && r != &ret))
    };
    if !others(stage1, &s1) && !others(stage2, &s2) {
        p.delete("FORWARD", rule(&stage1_jump()));
        p.delete_chain(STAGE1).delete_chain(STAGE2);
    }
    Some(p)
}

/// The families whose state CHECK needs.
pub fn check_families(pod: &Pod) -> Vec<IpFamily> {
    families(pod)
}

/// CHECK, as the reference: for each family with addresses, the `FORWARD` jump, the admin
/// jump, and both rules of every address must be present.
pub fn check(conf: &FirewallConf, pod: &Pod, state: &IptablesState) -> Result<(), CheckError> {
    let fam = state.family;
    let addrs: Vec<IpAddr> = pod
        .addrs
        .iter()
        .copied()
        .filter(|a| IpFamily::of(a) == fam)
        .collect();
    if addrs.is_empty() {
        return Ok(());
    }
    let table = state.table(TABLE);
    let contains = |chain: &str, args: &Args| {
        table
            .and_then(|t| t.chain(chain))
            .is_some_and(|c| c.rules.contains(&rule(args)))
    };
    let fwd = forward_jump();
    if !contains("FORWARD", &fwd) {
        return Err(CheckError::ChainRule {
            chain: "FORWARD".into(),
            rule: go_list(&fwd),
        });
    }
    let admin = admin_jump(&conf.admin_chain);
    if !contains(FORWARD_CHAIN, &admin) {
        return Err(CheckError::ChainRule {
            chain: FORWARD_CHAIN.into(),
            rule: go_list(&admin),
        });
    }
    if table.and_then(|t| t.chain(&conf.admin_chain)).is_none() {
        return Err(CheckError::Chain(conf.admin_chain.clone()));
    }
    for a in addrs {
        for r in addr_rules(a) {
            if !contains(FORWARD_CHAIN, &r) {
                return Err(CheckError::Rule(go_list(&r)));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
