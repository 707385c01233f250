//! iptables backend against the real kernel, inside throw-away namespaces.

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use cni_linux::firewall::IpFamily;
use cni_linux::firewall::iptables::{self, IptablesPlan, Rule};
use cni_linux::firewall::names::{
    format_chain_name, format_chain_name_with_prefix, format_comment,
};
use common::TestNs;

fn r(tokens: &[&str]) -> Rule {
    Rule::new(tokens.iter().copied()).unwrap()
}

/// The bridge plugin's ipMasq rules, in the Go plugin's argument order.
fn ipmasq_args(
    ip: &str,
    subnet: &str,
    multicast: &str,
    chain: &str,
    comment: &str,
) -> Vec<(String, Vec<String>)> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        (
            chain.to_owned(),
            v(&[
                "-d",
                subnet,
                "-j",
                "ACCEPT",
                "-m",
                "comment",
                "--comment",
                comment,
            ]),
        ),
        (
            chain.to_owned(),
            v(&[
                "!",
                "-d",
                multicast,
                "-j",
                "MASQUERADE",
                "-m",
                "comment",
                "--comment",
                comment,
            ]),
        ),
        (
            "POSTROUTING".to_owned(),
            v(&["-s", ip, "-j", chain, "-m", "comment", "--comment", comment]),
        ),
    ]
}

/// The portmap plugin's rules for one mapping, in the Go plugin's argument order.
fn portmap_args(fam: IpFamily, cip: &str, dn: &str, comment: &str) -> Vec<(String, Vec<String>)> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let dnat_to = match fam {
        IpFamily::V4 => format!("{cip}:80"),
        IpFamily::V6 => format!("[{cip}]:80"),
    };
    let mut rules = vec![
        (
            "PREROUTING".to_owned(),
            v(&[
                "-m",
                "addrtype",
                "--dst-type",
                "LOCAL",
                "-j",
                "CNI-HOSTPORT-DNAT",
            ]),
        ),
        (
            "OUTPUT".to_owned(),
            v(&[
                "-m",
                "addrtype",
                "--dst-type",
                "LOCAL",
                "-j",
                "CNI-HOSTPORT-DNAT",
            ]),
        ),
        (
            "CNI-HOSTPORT-DNAT".to_owned(),
            v(&[
                "-m",
                "comment",
                "--comment",
                comment,
                "-m",
                "multiport",
                "-p",
                "tcp",
                "--destination-ports",
                "8080,8081",
                "-j",
                dn,
            ]),
        ),
        (
            dn.to_owned(),
            v(&[
                "-p",
                "tcp",
                "--dport",
                "8080",
                "-s",
                &format!("{cip}/24"),
                "-j",
                "CNI-HOSTPORT-SETMARK",
            ]),
        ),
    ];
    if fam == IpFamily::V4 {
        rules.push((
            dn.to_owned(),
            v(&[
                "-p",
                "tcp",
                "--dport",
                "8080",
                "-s",
                "127.0.0.1",
                "-j",
                "CNI-HOSTPORT-SETMARK",
            ]),
        ));
    }
    rules.extend([
        (
            dn.to_owned(),
            v(&[
                "-p",
                "tcp",
                "--dport",
                "8080",
                "-j",
                "DNAT",
                "--to-destination",
                &dnat_to,
            ]),
        ),
        (
            dn.to_owned(),
            v(&[
                "-p",
                "tcp",
                "--dport",
                "8081",
                "-d",
                if fam == IpFamily::V4 {
                    "192.168.1.1"
                } else {
                    "fd01::1"
                },
                "-j",
                "DNAT",
                "--to-destination",
                &dnat_to,
            ]),
        ),
        (
            "CNI-HOSTPORT-SETMARK".to_owned(),
            v(&[
                "-m",
                "comment",
                "--comment",
                "CNI portfwd masquerade mark",
                "-j",
                "MARK",
                "--set-xmark",
                "0x2000/0x2000",
            ]),
        ),
        (
            "CNI-HOSTPORT-MASQ".to_owned(),
            v(&["-m", "mark", "--mark", "0x2000/0x2000", "-j", "MASQUERADE"]),
        ),
    ]);
    rules
}

fn plan_from(fam: IpFamily, chains: &[&str], rules: &[(String, Vec<String>)]) -> IptablesPlan {
    let mut plan = IptablesPlan::new(fam, "nat");
    for c in chains {
        plan.ensure_chain(*c);
    }
    for (chain, args) in rules {
        plan.append_unique(chain.clone(), Rule::new(args.clone()).unwrap());
    }
    plan
}

const CID: &str = "d5c4f1e0b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1";

#[test]
fn applies_reference_rules_idempotently_and_tears_down() {
    if !common::require_tool("iptables-restore") {
        return;
    }
    let ns = TestNs::new("ipt");
    let masq_chain = format_chain_name("mynet", CID);
    let dn = format_chain_name_with_prefix("DN-", "mynet", CID).unwrap();
    let comment = format_comment("mynet", CID);
    let dnat_comment = format!("dnat {comment}");

    let mut plans = Vec::new();
    for (fam, ip, subnet, mcast, cip) in [
        (
            IpFamily::V4,
            "10.88.0.2",
            "10.88.0.0/16",
            "224.0.0.0/4",
            "10.88.0.2",
        ),
        (IpFamily::V6, "fd00::2", "fd00::/64", "ff00::/8", "fd00::2"),
    ] {
        let mut rules = ipmasq_args(ip, subnet, mcast, &masq_chain, &comment);
        rules.extend(portmap_args(fam, cip, &dn, &dnat_comment));
        let mut plan = plan_from(
            fam,
            &[
                &masq_chain,
                "CNI-HOSTPORT-DNAT",
                "CNI-HOSTPORT-SETMARK",
                "CNI-HOSTPORT-MASQ",
                &dn,
            ],
            &rules,
        );
        plan.insert_unique(
            "POSTROUTING",
            r(&[
                "-m",
                "comment",
                "--comment",
                "CNI portfwd requiring masquerade",
                "-j",
                "CNI-HOSTPORT-MASQ",
            ]),
        );
        plans.push(plan);
    }

    // iptables-nft's state is read from nf_tables; iptables-legacy's with iptables-save.
    let saves = if ns.ok(&["iptables", "--version"]).contains("nf_tables") {
        0
    } else {
        1
    };
    let report = ns.run(|| iptables::apply(&plans)).unwrap();
    if saves == 0 {
        // The nat table does not exist yet: per family one restore creates it with the
        // built-in chains the plans use, and nothing else; the rules follow over netlink.
        assert_eq!(
            (report.processes, report.netlink, report.scripts.len()),
            (2, 2, 4),
            "{report:?}"
        );
        assert_eq!(
            report.scripts[0],
            "*nat\n:PREROUTING - [0:0]\n:OUTPUT - [0:0]\n:POSTROUTING - [0:0]\nCOMMIT\n"
        );
    } else {
        assert_eq!(report.processes, 4, "save + restore per family");
        assert_eq!(report.scripts.len(), 2);
    }

    // Every planned rule is now present exactly as planned (so canonical == iptables-save).
    for plan in &plans {
        let state = ns.run(|| iptables::save(plan.family, Some("nat"))).unwrap();
        let nat = state.table("nat").unwrap();
        for op in &plan.ops {
            if let iptables::IptablesOp::AppendUnique { chain, rule }
            | iptables::IptablesOp::InsertUnique { chain, rule } = op
            {
                let c = nat.chain(chain).unwrap();
                assert_eq!(
                    c.rules.iter().filter(|x| *x == rule).count(),
                    1,
                    "{} {chain}: {rule}\nhave:\n{:#?}",
                    plan.family,
                    c.rules
                );
            }
        }
        let post = nat.chain("POSTROUTING").unwrap();
        assert_eq!(
            post.rules[0].target(),
            Some("CNI-HOSTPORT-MASQ"),
            "inserted at the top"
        );
    }

    // Second run: nothing to change, at most one iptables-save per family.
    let report = ns.run(|| iptables::apply(&plans)).unwrap();
    assert!(report.scripts.is_empty(), "{:?}", report.scripts);
    assert_eq!(report.processes, 2 * saves);

    // Teardown like the plugins: entry rules, per-container chains.
    let mut down = Vec::new();
    for fam in [IpFamily::V4, IpFamily::V6] {
        let mut plan = IptablesPlan::new(fam, "nat");
        plan.delete_with_comment("POSTROUTING", comment.clone())
            .delete_chain(masq_chain.clone())
            .delete_jumps_to(dn.clone())
            .delete_chain(dn.clone());
        down.push(plan);
    }
    ns.run(|| iptables::apply(&down)).unwrap();
    for fam in [IpFamily::V4, IpFamily::V6] {
        let state = ns.run(|| iptables::save(fam, Some("nat"))).unwrap();
        let nat = state.table("nat").unwrap();
        assert!(!nat.has_chain(&masq_chain));
        assert!(!nat.has_chain(&dn));
        assert_eq!(nat.rules_with_comment(&comment).count(), 0);
        assert!(nat.has_chain("CNI-HOSTPORT-DNAT"), "shared chains stay");
    }
    // Teardown again: already gone is fine and changes nothing.
    let report = ns.run(|| iptables::apply(&down)).unwrap();
    assert!(report.scripts.is_empty());
}

#[test]
fn rules_are_identical_for_go_plugins_iptables_check() {
    if !common::require_tool("iptables") {
        return;
    }
    let ns = TestNs::new("iptc");
    let chain = format_chain_name("gonet", CID);
    let comment = format_comment("gonet", CID);
    let rules = ipmasq_args("10.1.0.5", "10.1.0.0/24", "224.0.0.0/4", &chain, &comment);

    // Ours -> checked with `iptables -C` using the Go plugin's exact arguments.
    let plan = plan_from(IpFamily::V4, &[&chain], &rules);
    ns.run(|| iptables::apply(std::slice::from_ref(&plan)))
        .unwrap();
    for (c, args) in &rules {
        let mut argv = vec!["iptables", "-t", "nat", "-C", c.as_str()];
        argv.extend(args.iter().map(String::as_str));
        ns.ok(&argv);
    }

    // Theirs -> our AppendUnique sees them and adds nothing.
    let ns2 = TestNs::new("iptg");
    ns2.ok(&["iptables", "-t", "nat", "-N", &chain]);
    for (c, args) in &rules {
        let mut argv = vec!["iptables", "-t", "nat", "-A", c.as_str()];
        argv.extend(args.iter().map(String::as_str));
        ns2.ok(&argv);
    }
    let state = ns2
        .run(|| iptables::save(IpFamily::V4, Some("nat")))
        .unwrap();
    let script = iptables::restore_script(&[&plan], &state).unwrap();
    assert_eq!(script, "", "Go-created rules must be recognised");
    let report = ns2
        .run(|| iptables::apply(std::slice::from_ref(&plan)))
        .unwrap();
    assert!(report.scripts.is_empty());
}

#[test]
fn hostile_comment_stays_inside_its_rule() {
    if !common::require_tool("iptables-restore") {
        return;
    }
    let ns = TestNs::new("ipth");
    let nasty = format_comment("net\" -j DROP #", "id' \\\" $(x) `y`");
    let mut plan = IptablesPlan::new(IpFamily::V4, "filter");
    plan.ensure_chain("CNI-TEST").append_unique(
        "CNI-TEST",
        r(&["-m", "comment", "--comment", &nasty, "-j", "RETURN"]),
    );
    ns.run(|| iptables::apply(std::slice::from_ref(&plan)))
        .unwrap();
    let state = ns
        .run(|| iptables::save(IpFamily::V4, Some("filter")))
        .unwrap();
    let rules = &state
        .table("filter")
        .unwrap()
        .chain("CNI-TEST")
        .unwrap()
        .rules;
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].comment(), Some(nasty.as_str()));
    assert_eq!(rules[0].target(), Some("RETURN"));
    // Idempotent with the hostile comment too.
    let report = ns
        .run(|| iptables::apply(std::slice::from_ref(&plan)))
        .unwrap();
    assert!(report.scripts.is_empty());
}

#[test]
fn restore_failure_is_reported_with_stderr_and_changes_nothing() {
    if !common::require_tool("iptables-restore") {
        return;
    }
    let ns = TestNs::new("iptf");
    let mut plan = IptablesPlan::new(IpFamily::V4, "nat");
    plan.ensure_chain("CNI-OK")
        .append_unique("CNI-OK", r(&["-j", "RETURN"]))
        // A jump to a chain that does not exist fails the whole commit.
        .append_unique("CNI-OK", r(&["-j", "CNI-NOPE"]));
    let err = ns
        .run(|| iptables::apply(std::slice::from_ref(&plan)))
        .unwrap_err();
    match &err {
        iptables::IptablesError::Failed { stderr, script, .. } => {
            assert!(!stderr.is_empty());
            assert!(script.contains("-A CNI-OK -j CNI-NOPE"));
        }
        other => panic!("unexpected error {other:?}"),
    }
    let state = ns
        .run(|| iptables::save(IpFamily::V4, Some("nat")))
        .unwrap();
    assert!(
        !state.table("nat").unwrap().has_chain("CNI-OK"),
        "all or nothing"
    );
}

/// Applies each of `plans` from a thread of its own, all started together, in `ns`; every
/// apply must succeed.
fn apply_at_once(ns: &TestNs, plans: Vec<IptablesPlan>) {
    std::thread::scope(|s| {
        let handles: Vec<_> = plans
            .into_iter()
            .map(|plan| s.spawn(move || ns.run(|| iptables::apply(std::slice::from_ref(&plan)))))
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
    });
}

/// `-p tcp --dport PORT -j RETURN`.
fn port_return(port: usize) -> Rule {
    r(&["-p", "tcp", "--dport", &port.to_string(), "-j", "RETURN"])
}

#[test]
fn concurrent_applies_creating_the_same_chain_all_succeed() {
    if !common::require_tool("iptables-restore") {
        return;
    }
    let ns = TestNs::new("iptcc");
    let n = 8;
    let plans = (0..n)
        .map(|i| {
            let mut plan = IptablesPlan::new(IpFamily::V4, "nat");
            plan.ensure_chain("CNI-HOSTPORT-DNAT")
                .append_unique("CNI-HOSTPORT-DNAT", port_return(9000 + i));
            plan
        })
        .collect();
    apply_at_once(&ns, plans);
    let state = ns
        .run(|| iptables::save(IpFamily::V4, Some("nat")))
        .unwrap();
    let chain = state
        .table("nat")
        .unwrap()
        .chain("CNI-HOSTPORT-DNAT")
        .unwrap();
    assert_eq!(chain.rules.len(), n, "{:#?}", chain.rules);
}

/// 32 portmap-like ADDs at once on a node whose nat table does not exist yet (as the
/// concurrency benchmark does): each creates the shared chains, its own chain and the jumps.
/// Restores computed from the same empty table used to race (one failing on a chain another
/// created, or two both writing the shared jump); every apply succeeds, and each shared jump
/// is there once.
#[test]
fn concurrent_applies_on_a_fresh_node_all_succeed() {
    if !common::require_tool("iptables-restore") {
        return;
    }
    let n = 32;
    for round in 0..2 {
        let ns = TestNs::new("iptcf");
        let plans = (0..n)
            .map(|i| {
                let own = format!("CNI-DN-{round}-{i}");
                let mut plan = IptablesPlan::new(IpFamily::V4, "nat");
                plan.ensure_chain("CNI-HOSTPORT-MASQ")
                    .ensure_chain("CNI-HOSTPORT-DNAT")
                    .ensure_chain(own.clone())
                    .insert_unique("POSTROUTING", r(&["-j", "CNI-HOSTPORT-MASQ"]))
                    .append_unique(
                        "PREROUTING",
                        Rule::new("-m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT".split(' '))
                            .unwrap(),
                    )
                    .append_unique(own.clone(), port_return(9000 + i))
                    .append_unique("CNI-HOSTPORT-DNAT", r(&["-j", &own]));
                plan
            })
            .collect();
        apply_at_once(&ns, plans);
        let state = ns
            .run(|| iptables::save(IpFamily::V4, Some("nat")))
            .unwrap();
        let nat = state.table("nat").unwrap();
        let rules = |c: &str| nat.chain(c).unwrap().rules.len();
        assert_eq!(rules("CNI-HOSTPORT-DNAT"), n, "round {round}");
        assert_eq!(
            rules("POSTROUTING"),
            1,
            "round {round}: {:#?}",
            nat.chain("POSTROUTING")
        );
        assert_eq!(rules("PREROUTING"), 1, "round {round}");
    }
}
