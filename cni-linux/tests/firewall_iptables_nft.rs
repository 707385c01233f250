//! iptables-nft's rules read straight from nf_tables must equal what `iptables-save` prints,
//! rule for rule, for every form the plugins (ours and the reference's) write; a form that is
//! not decoded exactly must make the reader give up (and `apply` fall back to `iptables-save`).

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use cni_linux::firewall::IpFamily;
use cni_linux::firewall::iptables::{self, IptablesPlan, IptablesState, Rule};
use common::{TestNs, iptables_is_nft};

fn saved(ns: &TestNs, fam: IpFamily, table: &str) -> IptablesState {
    let bin = match fam {
        IpFamily::V4 => "iptables-save",
        IpFamily::V6 => "ip6tables-save",
    };
    IptablesState::parse(fam, &ns.ok(&[bin, "-t", table])).unwrap()
}

/// Runs `iptables`/`ip6tables` with shell-like words (double quotes group words).
fn ipt(ns: &TestNs, fam: IpFamily, line: &str) {
    let bin = match fam {
        IpFamily::V4 => "iptables",
        IpFamily::V6 => "ip6tables",
    };
    let mut argv = vec![bin.to_owned()];
    let mut cur = String::new();
    let mut quoted = false;
    for ch in line.chars() {
        match ch {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    argv.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        argv.push(cur);
    }
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    ns.ok(&argv);
}

/// The rules the bridge (ipMasq), portmap (incl. the route_localnet guard) and firewall
/// plugins write, in the reference plugins' argument order, plus header forms around them.
fn write_reference_rules(ns: &TestNs, fam: IpFamily) {
    let (ip, net, mcast, other, cip, dnat_to, lo) = match fam {
        IpFamily::V4 => (
            "10.88.0.2",
            "10.88.0.0/16",
            "224.0.0.0/4",
            "192.168.1.1",
            "10.88.0.2/24",
            "10.88.0.2:80",
            "127.0.0.1",
        ),
        IpFamily::V6 => (
            "fd00::2",
            "fd00::/64",
            "ff00::/8",
            "fd01::1",
            "fd00::2/64",
            "[fd00::2]:80",
            "::1",
        ),
    };
    let c = "\"name: \\\"mynet\\\" id: \\\"abc\\\"\"";
    let lines = [
        "-t nat -N CNI-abc".to_owned(),
        format!("-t nat -A CNI-abc -d {net} -j ACCEPT -m comment --comment {c}"),
        format!("-t nat -A CNI-abc ! -d {mcast} -j MASQUERADE -m comment --comment {c}"),
        format!("-t nat -A POSTROUTING -s {ip} -j CNI-abc -m comment --comment {c}"),
        "-t nat -N CNI-HOSTPORT-DNAT".to_owned(),
        "-t nat -N CNI-HOSTPORT-SETMARK".to_owned(),
        "-t nat -N CNI-HOSTPORT-MASQ".to_owned(),
        "-t nat -N CNI-DN-x".to_owned(),
        "-t nat -A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT".to_owned(),
        "-t nat -A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT".to_owned(),
        "-t nat -A CNI-HOSTPORT-DNAT -m comment --comment \"dnat x\" -m multiport -p tcp \
         --destination-ports 8080,8081 -j CNI-DN-x"
            .to_owned(),
        "-t nat -A CNI-HOSTPORT-DNAT -p udp -m multiport --sports 53,1000:2000 -j RETURN"
            .to_owned(),
        format!("-t nat -A CNI-DN-x -p tcp --dport 8080 -s {cip} -j CNI-HOSTPORT-SETMARK"),
        format!("-t nat -A CNI-DN-x -p tcp --dport 8080 -s {lo} -j CNI-HOSTPORT-SETMARK"),
        format!("-t nat -A CNI-DN-x -p tcp --dport 8080 -j DNAT --to-destination {dnat_to}"),
        format!(
            "-t nat -A CNI-DN-x -p tcp --dport 8081 -d {other} -j DNAT --to-destination {dnat_to}"
        ),
        "-t nat -A CNI-HOSTPORT-SETMARK -m comment --comment \"CNI portfwd masquerade mark\" \
         -j MARK --set-xmark 0x2000/0x2000"
            .to_owned(),
        "-t nat -A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE".to_owned(),
        "-t nat -I POSTROUTING 1 -m comment --comment \"CNI portfwd requiring masquerade\" \
         -j CNI-HOSTPORT-MASQ"
            .to_owned(),
        "-t nat -A CNI-HOSTPORT-MASQ -p udp ! --dport 53 -m mark ! --mark 0x1 -g CNI-abc"
            .to_owned(),
        "-t filter -N CNI-FORWARD".to_owned(),
        "-t filter -A FORWARD -m comment --comment \"CNI firewall plugin rules\" -j CNI-FORWARD"
            .to_owned(),
        format!(
            "-t filter -A CNI-FORWARD -d {ip} -m conntrack --ctstate RELATED,ESTABLISHED \
             -j ACCEPT"
        ),
        format!("-t filter -A CNI-FORWARD -s {ip} -j ACCEPT"),
        "-t filter -A CNI-FORWARD -i cni0 ! -o cni0 -j ACCEPT".to_owned(),
        "-t filter -A CNI-FORWARD ! -i br+ -o eth0 ! -p tcp -j DROP".to_owned(),
        "-t filter -A CNI-FORWARD -d 10.0.0.0/9 -j RETURN".to_owned(),
    ];
    for line in &lines {
        // 10.0.0.0/9 has no IPv6 meaning.
        if fam == IpFamily::V6 && line.contains("10.0.0.0/9") {
            ipt(
                ns,
                fam,
                "-t filter -A CNI-FORWARD -d fd00:8000::/33 -j RETURN",
            );
            continue;
        }
        ipt(ns, fam, line);
    }
    if fam == IpFamily::V4 {
        ipt(ns, fam, "-t filter -N CNI-PORTMAP-LOCALNET");
        ipt(
            ns,
            fam,
            "-t filter -A CNI-PORTMAP-LOCALNET ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment \
             --comment \"CNI portmap: drop\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT \
             -j DROP",
        );
        ipt(
            ns,
            fam,
            "-t filter -I INPUT 1 -m comment --comment \"CNI portmap: drop\" \
             -j CNI-PORTMAP-LOCALNET",
        );
    }
}

#[test]
fn nftables_reader_equals_iptables_save_for_every_plugin_form() {
    if !common::require_tool("iptables-save") {
        return;
    }
    let ns = TestNs::new("iptn");
    if !iptables_is_nft(&ns) {
        return;
    }
    for fam in [IpFamily::V4, IpFamily::V6] {
        // Before anything: the table does not exist, which iptables-save prints as the
        // built-in chains alone.
        let empty = ns.run(|| iptables::read_nftables(fam, "nat")).unwrap();
        assert_eq!(empty, Some(saved(&ns, fam, "nat")));

        write_reference_rules(&ns, fam);
        for table in ["nat", "filter"] {
            let from_save = saved(&ns, fam, table);
            let from_nft = ns
                .run(|| iptables::read_nftables(fam, table))
                .unwrap()
                .unwrap_or_else(|| panic!("{fam} {table}: some rule not decoded"));
            let want = from_save.table(table).unwrap();
            let have = from_nft.table(table).unwrap();
            let mut want_chains: Vec<_> = want.chains.iter().map(|c| &c.name).collect();
            let mut have_chains: Vec<_> = have.chains.iter().map(|c| &c.name).collect();
            want_chains.sort();
            have_chains.sort();
            assert_eq!(have_chains, want_chains, "{fam} {table}");
            for c in &want.chains {
                let h = have.chain(&c.name).unwrap();
                assert_eq!(h.rules, c.rules, "{fam} {table} {}", c.name);
                assert_eq!(h.policy, c.policy, "{fam} {table} {}", c.name);
                assert!(
                    table != "nat" || c.name != "CNI-DN-x" || c.rules.len() >= 3,
                    "the rules were written"
                );
            }
        }
    }
}

#[test]
fn undecodable_rule_falls_back_to_iptables_save() {
    if !common::require_tool("iptables-restore") {
        return;
    }
    let ns = TestNs::new("iptf");
    if !iptables_is_nft(&ns) {
        return;
    }
    // A tcp source port range is not a form the reader decodes.
    ns.ok(&["iptables", "-t", "nat", "-N", "CNI-T"]);
    ns.ok(&[
        "iptables",
        "-t",
        "nat",
        "-A",
        "CNI-T",
        "-p",
        "tcp",
        "--sport",
        "1000:2000",
        "-j",
        "RETURN",
    ]);
    let read = ns
        .run(|| iptables::read_nftables(IpFamily::V4, "nat"))
        .unwrap();
    assert!(read.is_none(), "must give up, not guess: {read:?}");

    // A rule with userdata (here nft's own comment, as another tool may add) is not read as
    // the bare rule its expressions alone would make.
    if common::require_tool("nft") {
        let other = TestNs::new("iptu");
        other.ok(&["iptables", "-t", "nat", "-N", "CNI-U"]);
        other.ok(&[
            "nft", "add", "rule", "ip", "nat", "CNI-U", "counter", "accept", "comment", "admin",
        ]);
        let read = other
            .run(|| iptables::read_nftables(IpFamily::V4, "nat"))
            .unwrap();
        assert!(read.is_none(), "must give up, not guess: {read:?}");
    }

    let rule = Rule::new(["-s", "10.1.0.0/16", "-j", "ACCEPT"]).unwrap();
    let mut plan = IptablesPlan::new(IpFamily::V4, "nat");
    plan.append_unique("CNI-T", rule.clone());
    // Through the fallback: one save, one restore; then the save alone.
    let report = ns
        .run(|| iptables::apply(std::slice::from_ref(&plan)))
        .unwrap();
    assert_eq!(report.processes, 2, "{report:?}");
    let report = ns
        .run(|| iptables::apply(std::slice::from_ref(&plan)))
        .unwrap();
    assert_eq!(report.processes, 1, "{report:?}");
    assert!(report.scripts.is_empty());
    let state = ns
        .run(|| iptables::save(IpFamily::V4, Some("nat")))
        .unwrap();
    assert_eq!(
        state
            .table("nat")
            .unwrap()
            .chain("CNI-T")
            .unwrap()
            .rules
            .len(),
        2
    );
}

#[test]
fn apply_on_iptables_nft_starts_no_save_and_writes_over_netlink_once_the_chains_exist() {
    if !common::require_tool("iptables-restore") {
        return;
    }
    let ns = TestNs::new("iptp");
    if !iptables_is_nft(&ns) {
        return;
    }
    let comment = "name: \"n\" id: \"c1\"";
    let rule = |ip: &str| {
        Rule::new([
            "-s",
            ip,
            "-m",
            "comment",
            "--comment",
            comment,
            "-j",
            "CNI-X",
        ])
        .unwrap()
    };
    let mut plan = IptablesPlan::new(IpFamily::V4, "nat");
    plan.ensure_chain("CNI-X")
        .append_unique("CNI-X", Rule::new(["-j", "ACCEPT"]).unwrap())
        .append_unique("POSTROUTING", rule("10.9.0.2"));
    let report = ns
        .run(|| iptables::apply(std::slice::from_ref(&plan)))
        .unwrap();
    // The nat table and POSTROUTING do not exist yet: iptables-restore creates them, and
    // nothing else; the rest goes over netlink.
    assert_eq!(
        (report.processes, report.netlink),
        (1, 1),
        "a skeleton restore, then netlink: {report:?}"
    );
    assert_eq!(report.scripts[0], "*nat\n:POSTROUTING - [0:0]\nCOMMIT\n");
    // Again: nothing to do, no process at all.
    let report = ns
        .run(|| iptables::apply(std::slice::from_ref(&plan)))
        .unwrap();
    assert_eq!(report.processes, 0, "{report:?}");

    // A second pod: the existing non-empty chain is not declared (which would flush it).
    let mut plan2 = IptablesPlan::new(IpFamily::V4, "nat");
    plan2
        .ensure_chain("CNI-X")
        .append_unique("CNI-X", Rule::new(["-j", "ACCEPT"]).unwrap())
        .append_unique("POSTROUTING", rule("10.9.0.3"));
    let report = ns
        .run(|| iptables::apply(std::slice::from_ref(&plan2)))
        .unwrap();
    // Now they do: the rule is written over netlink, no process at all.
    assert_eq!(report.processes, 0, "{report:?}");
    assert_eq!(report.netlink, 1, "{report:?}");
    assert_eq!(
        report.scripts,
        vec![format!(
            "*nat\n-A POSTROUTING {}\nCOMMIT\n",
            rule("10.9.0.3")
        )]
    );
    let state = saved(&ns, IpFamily::V4, "nat");
    let nat = state.table("nat").unwrap();
    assert_eq!(nat.chain("CNI-X").unwrap().rules.len(), 1);
    assert_eq!(nat.chain("POSTROUTING").unwrap().rules.len(), 2);

    // Teardown without a save or a restore either.
    let mut down = IptablesPlan::new(IpFamily::V4, "nat");
    down.delete_jumps_to("CNI-X").delete_chain("CNI-X");
    let report = ns
        .run(|| iptables::apply(std::slice::from_ref(&down)))
        .unwrap();
    assert_eq!((report.processes, report.netlink), (0, 1), "{report:?}");
    let state = saved(&ns, IpFamily::V4, "nat");
    let nat = state.table("nat").unwrap();
    assert!(!nat.has_chain("CNI-X"));
    assert!(nat.chain("POSTROUTING").unwrap().rules.is_empty());
}
