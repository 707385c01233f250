//! What `iptables::apply` reads from nf_tables (iptables-nft) for a pod's ADD on a node with
//! many pods: a shared chain that only gets a jump to a chain that does not exist yet (the
//! bridge's `POSTROUTING -j CNI-xxx`, portmap's `CNI-HOSTPORT-DNAT -j CNI-DN-xxx`) is not
//! dumped at all, and one that gets a jump to an existing chain (`POSTROUTING -j
//! CNI-HOSTPORT-MASQ`) has only its rules jumping there decoded; and the changes are the very
//! ones computed from the whole table as `iptables-save` prints it, committed by
//! `iptables-restore` in a twin namespace (same script, same `iptables-save` after), applied
//! twice or more without duplicates.

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use cni_linux::firewall::IpFamily;
use cni_linux::firewall::iptables::{self, ApplyReport, IptablesPlan, IptablesState, Rule};
use common::{TestNs, ipt_bin as bin, iptables_is_nft};

/// Pods already on the node.
const PODS: usize = 300;

/// Pod `i`'s address (as iptables-save prints it) and network.
fn addr(fam: IpFamily, i: usize) -> (String, &'static str) {
    match fam {
        IpFamily::V4 => (
            format!("10.1.{}.{}/32", i / 250, i % 250 + 1),
            "10.1.0.0/16",
        ),
        IpFamily::V6 => (format!("fd00::{:x}/128", i + 1), "fd00::/64"),
    }
}

fn dnat_to(fam: IpFamily, i: usize) -> String {
    let (a, _) = addr(fam, i);
    let host = a.split('/').next().unwrap().to_owned();
    match fam {
        IpFamily::V4 => format!("{host}:80"),
        IpFamily::V6 => format!("[{host}]:80"),
    }
}

fn multicast(fam: IpFamily) -> &'static str {
    match fam {
        IpFamily::V4 => "224.0.0.0/4",
        IpFamily::V6 => "ff00::/8",
    }
}

fn rule(tokens: &[&str]) -> Rule {
    Rule::new(tokens.iter().copied()).unwrap()
}

/// The bridge's masquerade rules of pod `i` (chain `CNI-<name>`).
fn bridge_rules(fam: IpFamily, name: &str, i: usize) -> Vec<(String, Rule)> {
    let (a, net) = addr(fam, i);
    let chain = format!("CNI-{name}");
    vec![
        (
            chain.clone(),
            rule(&[
                "-d",
                net,
                "-m",
                "comment",
                "--comment",
                name,
                "-j",
                "ACCEPT",
            ]),
        ),
        (
            chain.clone(),
            rule(&[
                "!",
                "-d",
                multicast(fam),
                "-m",
                "comment",
                "--comment",
                name,
                "-j",
                "MASQUERADE",
            ]),
        ),
        (
            "POSTROUTING".into(),
            rule(&["-s", &a, "-m", "comment", "--comment", name, "-j", &chain]),
        ),
    ]
}

/// Portmap's rules of pod `i` (chain `CNI-DN-<name>`), without the shared ones.
fn portmap_rules(fam: IpFamily, name: &str, i: usize) -> Vec<(String, Rule)> {
    let chain = format!("CNI-DN-{name}");
    let port = (8000 + i).to_string();
    vec![
        (
            chain.clone(),
            rule(&[
                "-p",
                "tcp",
                "-m",
                "tcp",
                "--dport",
                &port,
                "-j",
                "DNAT",
                "--to-destination",
                &dnat_to(fam, i),
            ]),
        ),
        (
            "CNI-HOSTPORT-DNAT".into(),
            rule(&[
                "-p",
                "tcp",
                "-m",
                "comment",
                "--comment",
                name,
                "-m",
                "multiport",
                "--dports",
                &port,
                "-j",
                &chain,
            ]),
        ),
    ]
}

fn masq_mark() -> Rule {
    rule(&["-m", "mark", "--mark", "0x2000/0x2000", "-j", "MASQUERADE"])
}

/// A node with `PODS` pods of both plugins, written by `iptables-restore`.
fn populate(ns: &TestNs, fam: IpFamily) {
    let mut chains = String::from(":CNI-HOSTPORT-MASQ - [0:0]\n:CNI-HOSTPORT-DNAT - [0:0]\n");
    let mut rules = format!(
        "-A POSTROUTING -j CNI-HOSTPORT-MASQ\n-A CNI-HOSTPORT-MASQ {}\n\
         -A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT\n",
        masq_mark()
    );
    for i in 0..PODS {
        let name = format!("p{i}");
        chains.push_str(&format!(":CNI-{name} - [0:0]\n:CNI-DN-{name} - [0:0]\n"));
        for (c, r) in bridge_rules(fam, &name, i)
            .into_iter()
            .chain(portmap_rules(fam, &name, i))
        {
            rules.push_str(&format!("-A {c} {r}\n"));
        }
    }
    restore(ns, fam, &format!("*nat\n{chains}{rules}COMMIT\n"));
}

/// Runs `script` with `iptables-restore --noflush` in `ns`.
fn restore(ns: &TestNs, fam: IpFamily, script: &str) {
    let path = std::env::temp_dir().join(format!("{}-{fam}.rules", ns.name));
    std::fs::write(&path, script).unwrap();
    let out = ns.cmd(&[&bin(fam, "-restore"), "--noflush", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{fam} restore failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `iptables-save -t nat` without its timestamp comments and counters.
fn save_text(ns: &TestNs, fam: IpFamily) -> String {
    ns.ok(&[&bin(fam, "-save"), "-t", "nat"])
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The restore path the reader is measured against: the script computed from the whole
/// table as `iptables-save` prints it, run by `iptables-restore` in `twin`.
fn reference_apply(twin: &TestNs, fam: IpFamily, plans: &[IptablesPlan]) -> String {
    let state = IptablesState::parse(fam, &twin.ok(&[&bin(fam, "-save"), "-t", "nat"])).unwrap();
    let refs: Vec<&IptablesPlan> = plans.iter().collect();
    let script = iptables::restore_script(&refs, &state).unwrap();
    if !script.is_empty() {
        restore(twin, fam, &script);
    }
    script
}

/// Applies `plans` with ours in `ns` and the reference way in `twin`: same script, same
/// tables after. Returns our report.
fn apply_both(ns: &TestNs, twin: &TestNs, fam: IpFamily, plans: &[IptablesPlan]) -> ApplyReport {
    let report = ns.run(|| iptables::apply(plans)).unwrap();
    let want = reference_apply(twin, fam, plans);
    let got: Vec<&str> = report.scripts.iter().map(String::as_str).collect();
    let want: Vec<&str> = if want.is_empty() {
        vec![]
    } else {
        vec![want.as_str()]
    };
    assert_eq!(got, want, "{fam} {report:?}");
    assert_eq!(save_text(ns, fam), save_text(twin, fam), "{fam}");
    report
}

fn bridge_plan(fam: IpFamily, name: &str, i: usize) -> IptablesPlan {
    let mut p = IptablesPlan::new(fam, "nat");
    p.ensure_chain(format!("CNI-{name}"));
    for (c, r) in bridge_rules(fam, name, i) {
        p.append_unique(c, r);
    }
    p
}

/// Portmap's ADD as `cni-portmap` plans it (shared chains, the container's chain replaced).
fn portmap_plan(fam: IpFamily, name: &str, i: usize) -> IptablesPlan {
    let dn = format!("CNI-DN-{name}");
    let mut p = IptablesPlan::new(fam, "nat");
    p.ensure_chain("CNI-HOSTPORT-MASQ")
        .ensure_chain("CNI-HOSTPORT-DNAT")
        .ensure_chain(dn.clone())
        .append_unique("CNI-HOSTPORT-MASQ", masq_mark())
        .insert_unique("POSTROUTING", rule(&["-j", "CNI-HOSTPORT-MASQ"]))
        .append_unique(
            "PREROUTING",
            rule(&[
                "-m",
                "addrtype",
                "--dst-type",
                "LOCAL",
                "-j",
                "CNI-HOSTPORT-DNAT",
            ]),
        )
        .flush(dn.clone())
        .delete_jumps_to(dn.clone());
    for (c, r) in portmap_rules(fam, name, i) {
        p.append_unique(c, r);
    }
    p
}

fn count(ns: &TestNs, fam: IpFamily, line: &str) -> usize {
    save_text(ns, fam).lines().filter(|l| *l == line).count()
}

fn twins(tag: &str) -> Option<(TestNs, TestNs)> {
    if !common::require_tool("iptables-restore") {
        return None;
    }
    let ns = TestNs::new(tag);
    if !iptables_is_nft(&ns) {
        return None;
    }
    let twin = TestNs::new(tag);
    Some((ns, twin))
}

#[test]
fn bridge_add_reads_no_rule_of_the_shared_chain() {
    let Some((ns, twin)) = twins("iprb") else {
        return;
    };
    for fam in [IpFamily::V4, IpFamily::V6] {
        populate(&ns, fam);
        populate(&twin, fam);
        let plans = [bridge_plan(fam, "new", PODS)];
        let jump = format!("-A POSTROUTING {}", bridge_rules(fam, "new", PODS)[2].1);

        // The new pod's chain is missing, so is the target of its POSTROUTING jump: no rule
        // dump at all, one batch.
        let report = apply_both(&ns, &twin, fam, &plans);
        assert_eq!(
            (
                report.rule_dumps,
                report.rules_decoded,
                report.netlink,
                report.processes
            ),
            (0, 0, 1, 0),
            "{fam} {report:?}"
        );
        assert_eq!(count(&ns, fam, &jump), 1, "{fam}");

        // Again: the target exists now, so the pod's chain (2 rules) and POSTROUTING are
        // read, but of POSTROUTING's PODS + 2 rules only the jump to it is decoded; the dump
        // stops at that jump, here the last rule.
        let report = apply_both(&ns, &twin, fam, &plans);
        assert!(report.scripts.is_empty(), "{fam} {report:?}");
        assert_eq!(
            (report.rule_dumps, report.rules_decoded, report.rules_read),
            (2, 3, 2 + PODS + 2),
            "{fam} {report:?}"
        );
        assert_eq!(count(&ns, fam, &jump), 1, "{fam}");

        // The jump deleted behind our back while its target stays: added back, once.
        for n in [&ns, &twin] {
            let mut argv = vec![bin(fam, ""), "-t".into(), "nat".into(), "-D".into()];
            argv.push("POSTROUTING".into());
            argv.extend(bridge_rules(fam, "new", PODS)[2].1.tokens().iter().cloned());
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            n.ok(&argv);
        }
        assert_eq!(count(&ns, fam, &jump), 0, "{fam}");
        let report = apply_both(&ns, &twin, fam, &plans);
        assert_eq!(report.scripts.len(), 1, "{fam} {report:?}");
        assert_eq!(count(&ns, fam, &jump), 1, "{fam}");
        let report = apply_both(&ns, &twin, fam, &plans);
        assert!(report.scripts.is_empty(), "{fam} {report:?}");
    }
}

#[test]
fn portmap_add_decodes_only_the_jumps_it_looks_for() {
    let Some((ns, twin)) = twins("iprp") else {
        return;
    };
    for fam in [IpFamily::V4, IpFamily::V6] {
        populate(&ns, fam);
        populate(&twin, fam);
        let plans = [portmap_plan(fam, "new", PODS)];
        let jump = format!(
            "-A CNI-HOSTPORT-DNAT {}",
            portmap_rules(fam, "new", PODS)[1].1
        );

        // CNI-HOSTPORT-DNAT (PODS jumps) is not dumped: its new jump's target is missing.
        // Dumped: CNI-HOSTPORT-MASQ (a rule to compare), POSTROUTING and PREROUTING (jumps to
        // existing chains), of which only the jumps to CNI-HOSTPORT-MASQ/-DNAT are decoded.
        // The kernel counts one jump to CNI-HOSTPORT-MASQ (its reference count less its one
        // rule): POSTROUTING's dump stops at its first rule, that jump, of PODS + 1.
        let report = apply_both(&ns, &twin, fam, &plans);
        assert_eq!(
            (
                report.rule_dumps,
                report.rules_decoded,
                report.rules_read,
                report.netlink,
                report.processes
            ),
            (3, 3, 3, 1, 0),
            "{fam} {report:?}"
        );
        assert_eq!(count(&ns, fam, &jump), 1, "{fam}");
        assert_eq!(
            count(&ns, fam, "-A POSTROUTING -j CNI-HOSTPORT-MASQ"),
            1,
            "{fam}"
        );

        // Again: the container's chain exists, so its jumps are looked for in the whole
        // table (and replaced, as portmap's ADD does); still one of each.
        let report = apply_both(&ns, &twin, fam, &plans);
        assert_eq!(report.rule_dumps, 1, "{fam} {report:?}");
        assert_eq!(count(&ns, fam, &jump), 1, "{fam}");
        let report = apply_both(&ns, &twin, fam, &plans);
        assert_eq!(report.rule_dumps, 1, "{fam} {report:?}");
        assert_eq!(count(&ns, fam, &jump), 1, "{fam}");
    }
}

/// Portmap's DEL as `cni-portmap` plans it: the jumps to the container's chain, expected in
/// CNI-HOSTPORT-DNAT, then the chain; the same for the old `CNI-SN-` chain.
fn portmap_del_plan(fam: IpFamily, name: &str) -> IptablesPlan {
    let mut p = IptablesPlan::new(fam, "nat");
    for (c, hint) in [
        (format!("CNI-DN-{name}"), "CNI-HOSTPORT-DNAT"),
        (format!("CNI-SN-{name}"), "CNI-HOSTPORT-SNAT"),
    ] {
        p.delete_jumps_to_expected_in(c.clone(), [hint])
            .delete_chain(c);
    }
    p
}

#[test]
fn portmap_del_reads_the_hinted_chain_while_the_kernel_count_agrees() {
    let Some((ns, twin)) = twins("iprd") else {
        return;
    };
    for fam in [IpFamily::V4, IpFamily::V6] {
        populate(&ns, fam);
        populate(&twin, fam);
        let jump = |i: usize| {
            format!(
                "-A CNI-HOSTPORT-DNAT {}",
                portmap_rules(fam, &format!("p{i}"), i)[1].1
            )
        };

        // The kernel counts CNI-DN-p7's one rule and one jump, both found: the container's
        // chain and CNI-HOSTPORT-DNAT are dumped (of its PODS rules only the jump to it is
        // decoded, and the dump stops there, at its 8th rule), not the table; one batch.
        let report = apply_both(&ns, &twin, fam, &[portmap_del_plan(fam, "p7")]);
        assert_eq!(
            (
                report.rule_dumps,
                report.rules_decoded,
                report.rules_read,
                report.netlink,
                report.processes
            ),
            (2, 2, 1 + 8, 1, 0),
            "{fam} {report:?}"
        );
        assert_eq!(count(&ns, fam, &jump(7)), 0, "{fam}");
        assert!(!save_text(&ns, fam).contains(":CNI-DN-p7 "), "{fam}");
        // Again: nothing left to read or do.
        let report = apply_both(&ns, &twin, fam, &[portmap_del_plan(fam, "p7")]);
        assert_eq!(
            (report.rule_dumps, report.scripts.len()),
            (0, 0),
            "{fam} {report:?}"
        );

        // A jump to CNI-DN-p8 where none is expected (an administrator's): the count is one
        // more than what the hinted chain holds, so the whole table is read and both jumps go.
        for n in [&ns, &twin] {
            n.ok(&[
                &bin(fam, ""),
                "-t",
                "nat",
                "-A",
                "OUTPUT",
                "-j",
                "CNI-DN-p8",
            ]);
        }
        let report = apply_both(&ns, &twin, fam, &[portmap_del_plan(fam, "p8")]);
        assert_eq!(
            (report.rule_dumps, report.netlink),
            (3, 1),
            "{fam} {report:?}"
        );
        assert_eq!(count(&ns, fam, &jump(8)), 0, "{fam}");
        assert_eq!(count(&ns, fam, "-A OUTPUT -j CNI-DN-p8"), 0, "{fam}");
        assert!(!save_text(&ns, fam).contains(":CNI-DN-p8 "), "{fam}");
    }
}

#[test]
fn restore_fallback_gets_the_same_script_from_the_short_read() {
    let Some((ns, twin)) = twins("iprf") else {
        return;
    };
    for fam in [IpFamily::V4, IpFamily::V6] {
        populate(&ns, fam);
        populate(&twin, fam);
        // A port range is not a form the netlink writer encodes: iptables-restore runs the
        // script computed from the short read.
        let mut plans = vec![bridge_plan(fam, "new", PODS)];
        plans[0].append_unique(
            "CNI-new",
            rule(&["-p", "tcp", "--dport", "80:90", "-j", "ACCEPT"]),
        );
        plans.push(portmap_plan(fam, "new", PODS));
        let report = apply_both(&ns, &twin, fam, &plans);
        assert_eq!(
            (report.rule_dumps, report.netlink, report.processes),
            (3, 0, 1),
            "{fam} {report:?}"
        );
        let report = apply_both(&ns, &twin, fam, &plans);
        // Portmap's plan replaces its container's chain each time; the bridge's adds nothing.
        assert!(
            report.scripts.iter().all(|s| !s.contains("CNI-new")),
            "{fam} {report:?}"
        );
    }
}
