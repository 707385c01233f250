//! iptables rules written over netlink by `iptables::apply` (iptables-nft) must be the very
//! rules iptables-nft 1.8.9 writes: for every form the plugins (ours and the reference's)
//! write, the rule attributes the kernel dumps (expressions with every byte of their xtables
//! info structs, userdata) are equal byte for byte to those of the same rule written by
//! `iptables`, and `iptables-save` prints the same text. Rules written one way are deleted
//! the other way, and concurrent applies lose nothing.

// Test helpers outside #[test] functions unwrap too.
#![allow(clippy::unwrap_used)]

mod common;

use cni_linux::firewall::IpFamily;
use cni_linux::firewall::iptables::{self, IptablesPlan, Rule};
use common::{TestNs, ipt_bin as bin, iptables_is_nft};

/// Shell-like words: blanks separate, double quotes group (`\"` inside is a quote).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    let mut any = false;
    for ch in line.chars() {
        if escaped {
            cur.push(ch);
            escaped = false;
            continue;
        }
        match ch {
            '\\' if quoted => escaped = true,
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// One rule form: table, chain, whether it is inserted (`-I chain 1`), and the arguments in
/// the reference plugins' order.
struct Form {
    table: &'static str,
    chain: String,
    insert: bool,
    args: String,
}

fn form(table: &'static str, chain: &str, args: String) -> Form {
    Form {
        table,
        chain: chain.to_owned(),
        insert: false,
        args,
    }
}

/// The user chains the forms use, per table.
const NAT_CHAINS: &[&str] = &[
    "CNI-abc",
    "CNI-HOSTPORT-DNAT",
    "CNI-HOSTPORT-SETMARK",
    "CNI-HOSTPORT-MASQ",
    "CNI-DN-x",
];
const FILTER_CHAINS: &[&str] = &["CNI-FORWARD", "CNI-PORTMAP-LOCALNET", "CNI-ISOLATION"];

/// Every form the bridge (ipMasq), portmap (incl. the route_localnet guard) and firewall
/// plugins write, ours and the reference's, plus the header forms around them.
fn forms(fam: IpFamily) -> Vec<Form> {
    let (ip, net, mcast, other, cip, dnat_to, lo, net9) = match fam {
        IpFamily::V4 => (
            "10.88.0.2",
            "10.88.0.0/16",
            "224.0.0.0/4",
            "192.168.1.1",
            "10.88.0.2/24",
            "10.88.0.2:80",
            "127.0.0.1",
            "10.0.0.0/9",
        ),
        IpFamily::V6 => (
            "fd00::2",
            "fd00::/64",
            "ff00::/8",
            "fd01::1",
            "fd00::2/64",
            "[fd00::2]:80",
            "::1",
            "fd00:8000::/33",
        ),
    };
    let c = "\"name: \\\"mynet\\\" id: \\\"abc\\\"\"";
    // The reference bridge's untrimmed comment: iptables keeps its first 255 bytes.
    let long = format!(
        "\"name: \\\"{}\\\" id: \\\"{}\\\"\"",
        "n".repeat(200),
        "c".repeat(64)
    );
    let mut v =
        vec![
        form("nat", "CNI-abc", format!("-d {net} -j ACCEPT -m comment --comment {c}")),
        form(
            "nat",
            "CNI-abc",
            format!("! -d {mcast} -j MASQUERADE -m comment --comment {c}"),
        ),
        form(
            "nat",
            "POSTROUTING",
            format!("-s {ip} -j CNI-abc -m comment --comment {c}"),
        ),
        form(
            "nat",
            "POSTROUTING",
            format!("-s {ip} -j CNI-abc -m comment --comment {long}"),
        ),
        form(
            "nat",
            "PREROUTING",
            "-m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT".to_owned(),
        ),
        form(
            "nat",
            "OUTPUT",
            "-m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT".to_owned(),
        ),
        form(
            "nat",
            "CNI-HOSTPORT-DNAT",
            "-m comment --comment \"dnat x\" -m multiport -p tcp --destination-ports 8080,8081 \
             -j CNI-DN-x"
                .to_owned(),
        ),
        form(
            "nat",
            "CNI-HOSTPORT-DNAT",
            "-p udp -m multiport --sports 53,1000:2000 -j RETURN".to_owned(),
        ),
        form(
            "nat",
            "CNI-HOSTPORT-DNAT",
            "-p tcp -m multiport ! --dports 1:2,3,4:5,6,7,8,9,10,11,12,13 -j RETURN".to_owned(),
        ),
        form(
            "nat",
            "CNI-DN-x",
            format!("-p tcp --dport 8080 -s {cip} -j CNI-HOSTPORT-SETMARK"),
        ),
        form(
            "nat",
            "CNI-DN-x",
            format!("-p tcp --dport 8080 -s {lo} -j CNI-HOSTPORT-SETMARK"),
        ),
        form(
            "nat",
            "CNI-DN-x",
            format!("-p tcp --dport 8080 -j DNAT --to-destination {dnat_to}"),
        ),
        form(
            "nat",
            "CNI-DN-x",
            format!("-p udp --dport 8081 -d {other} -j DNAT --to-destination {dnat_to}"),
        ),
        form(
            "nat",
            "CNI-DN-x",
            format!(
                "-p tcp --dport 9 -j DNAT --to-destination {}",
                dnat_to.rsplit_once(':').unwrap().0.trim_matches(['[', ']'])
            ),
        ),
        form(
            "nat",
            "CNI-HOSTPORT-SETMARK",
            "-m comment --comment \"CNI portfwd masquerade mark\" -j MARK --set-xmark \
             0x2000/0x2000"
                .to_owned(),
        ),
        form(
            "nat",
            "CNI-HOSTPORT-MASQ",
            "-m mark --mark 0x2000/0x2000 -j MASQUERADE".to_owned(),
        ),
        form(
            "nat",
            "CNI-HOSTPORT-MASQ",
            "-p udp ! --dport 53 -m mark ! --mark 0x1 -g CNI-abc".to_owned(),
        ),
        Form {
            table: "nat",
            chain: "POSTROUTING".to_owned(),
            insert: true,
            args: "-m comment --comment \"CNI portfwd requiring masquerade\" -j CNI-HOSTPORT-MASQ"
                .to_owned(),
        },
        form(
            "filter",
            "FORWARD",
            "-m comment --comment \"CNI firewall plugin rules\" -j CNI-FORWARD".to_owned(),
        ),
        form(
            "filter",
            "CNI-FORWARD",
            format!("-d {ip} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
        ),
        form("filter", "CNI-FORWARD", format!("-s {ip} -j ACCEPT")),
        form("filter", "CNI-FORWARD", "-i cni0 ! -o cni0 -j ACCEPT".to_owned()),
        form(
            "filter",
            "CNI-FORWARD",
            "! -i br+ -o eth0 ! -p tcp -j DROP".to_owned(),
        ),
        form("filter", "CNI-FORWARD", format!("-d {net9} -j RETURN")),
        form(
            "filter",
            "CNI-ISOLATION",
            "-i cni0 -o cni0 -m comment --comment \"hostile \\\" -j DROP '$(x)\" -j DROP"
                .to_owned(),
        ),
        form("filter", "CNI-ISOLATION", "-j RETURN".to_owned()),
        form("filter", "CNI-ISOLATION", "-m comment --comment x".to_owned()),
    ];
    if fam == IpFamily::V4 {
        v.push(form(
            "filter",
            "CNI-PORTMAP-LOCALNET",
            "! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"CNI portmap: drop\" \
             -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"
                .to_owned(),
        ));
        v.push(Form {
            table: "filter",
            chain: "INPUT".to_owned(),
            insert: true,
            args: "-m comment --comment \"CNI portmap: drop\" -j CNI-PORTMAP-LOCALNET".to_owned(),
        });
        v.push(form(
            "filter",
            "CNI-FORWARD",
            "-p icmp -s 10.1.2.0/23 -d 10.1.2.3/32 -j ACCEPT".to_owned(),
        ));
    } else {
        v.push(form(
            "filter",
            "CNI-FORWARD",
            "-p ipv6-icmp -s fd00::/63 -j ACCEPT".to_owned(),
        ));
    }
    v
}

/// The user chains and the base chains the forms use, created by iptables-nft itself in both
/// namespaces (the netlink writer leaves creating tables and base chains to iptables).
fn prepare(ns: &TestNs, fam: IpFamily) {
    let ipt = bin(fam, "");
    for (table, base) in [
        ("nat", &["PREROUTING", "OUTPUT", "POSTROUTING"][..]),
        ("filter", &["INPUT", "FORWARD"][..]),
    ] {
        for chain in base {
            // Appending creates the base chain; the rule is removed again.
            ns.ok(&[&ipt, "-t", table, "-A", chain, "-j", "ACCEPT"]);
            ns.ok(&[&ipt, "-t", table, "-D", chain, "-j", "ACCEPT"]);
        }
    }
}

/// A rule's attributes as the kernel dumps them, without the handle and position (which
/// differ between namespaces): `(kind, bytes)`.
type Attrs = Vec<(u16, Vec<u8>)>;

/// The rules of `table` of `family`, per chain in kernel order, dumped with a plain netlink
/// socket (not this crate's reader): `(chain, attributes)`.
fn dump_rules(fam: IpFamily, table: &str) -> Vec<(String, Attrs)> {
    dump(fam, 7, table)
        .into_iter()
        .map(|attrs| {
            let chain = attrs
                .iter()
                .find(|(k, _)| *k == 2)
                .map(|(_, v)| String::from_utf8_lossy(v).trim_end_matches('\0').to_owned())
                .unwrap();
            // NFTA_RULE_HANDLE (3), NFTA_RULE_POSITION (6).
            let kept = attrs
                .into_iter()
                .filter(|(k, _)| *k != 3 && *k != 6)
                .collect();
            (chain, kept)
        })
        .collect()
}

/// The chains of `table`, without their handles: `(name, attributes)`, sorted by name.
fn dump_chains(fam: IpFamily, table: &str) -> Vec<(String, Attrs)> {
    let mut v: Vec<(String, Attrs)> = dump(fam, 4, table)
        .into_iter()
        .map(|attrs| {
            let name = attrs
                .iter()
                .find(|(k, _)| *k == 3)
                .map(|(_, v)| String::from_utf8_lossy(v).trim_end_matches('\0').to_owned())
                .unwrap();
            // NFTA_CHAIN_HANDLE (2).
            (name, attrs.into_iter().filter(|(k, _)| *k != 2).collect())
        })
        .collect();
    v.sort();
    v
}

/// An `NFT_MSG_GET*` (`get`: 4 chains, 7 rules) dump of `table`: each answer's attributes.
fn dump(fam: IpFamily, get: u16, table: &str) -> Vec<Attrs> {
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
    let mut sock = Socket::new(NETLINK_NETFILTER).unwrap();
    sock.bind_auto().unwrap();
    sock.connect(&SocketAddr::new(0, 0)).unwrap();
    let family: u8 = match fam {
        IpFamily::V4 => 2,
        IpFamily::V6 => 10,
    };
    let mut name = table.as_bytes().to_vec();
    name.push(0);
    let attr_len = 4 + name.len();
    let mut attr = Vec::new();
    attr.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    attr.extend_from_slice(&1u16.to_ne_bytes()); // NFTA_{CHAIN,RULE}_TABLE
    attr.extend_from_slice(&name);
    attr.resize((attr_len + 3) & !3, 0);
    let len = 16 + 4 + attr.len();
    let mut msg = Vec::new();
    msg.extend_from_slice(&(len as u32).to_ne_bytes());
    msg.extend_from_slice(&((10u16 << 8) | get).to_ne_bytes());
    msg.extend_from_slice(&(0x1u16 | 0x300).to_ne_bytes()); // NLM_F_REQUEST | NLM_F_DUMP
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&[family, 0, 0, 0]);
    msg.extend_from_slice(&attr);
    sock.send(&msg, 0).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = sock.recv(&mut &mut buf[..], 0).unwrap();
        let mut off = 0;
        while off + 16 <= n {
            let mlen = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
            let mtype = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().unwrap());
            assert!(mlen >= 16 && off + mlen <= n, "bad message");
            match mtype {
                3 => return out, // NLMSG_DONE
                2 => {
                    let errno = i32::from_ne_bytes(buf[off + 16..off + 20].try_into().unwrap());
                    assert_eq!(errno, 0, "dump failed");
                }
                _ => {
                    let body = &buf[off + 20..off + mlen];
                    let mut attrs = Vec::new();
                    let mut a = 0;
                    while a + 4 <= body.len() {
                        let alen = u16::from_ne_bytes([body[a], body[a + 1]]) as usize;
                        let kind = u16::from_ne_bytes([body[a + 2], body[a + 3]]) & 0x3fff;
                        attrs.push((kind, body[a + 4..a + alen].to_vec()));
                        a += (alen + 3) & !3;
                    }
                    out.push(attrs);
                }
            }
            off += (mlen + 3) & !3;
        }
    }
}

/// `iptables-save` of `table` without its timestamp comments.
fn save_text(ns: &TestNs, fam: IpFamily, table: &str) -> String {
    ns.ok(&[&bin(fam, "-save"), "-t", table])
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

fn chains_of(table: &str) -> &'static [&'static str] {
    if table == "nat" {
        NAT_CHAINS
    } else {
        FILTER_CHAINS
    }
}

#[test]
fn every_plugin_form_is_written_byte_for_byte_as_iptables_nft_writes_it() {
    if !common::require_tool("iptables-restore") {
        return;
    }
    let theirs = TestNs::new("ipwa");
    let ours = TestNs::new("ipwb");
    if !iptables_is_nft(&theirs) {
        return;
    }
    for fam in [IpFamily::V4, IpFamily::V6] {
        prepare(&theirs, fam);
        prepare(&ours, fam);
        let forms = forms(fam);
        // Theirs: the reference plugins' way, one iptables command per rule.
        for table in ["nat", "filter"] {
            for chain in chains_of(table) {
                theirs.ok(&[&bin(fam, ""), "-t", table, "-N", chain]);
            }
        }
        for f in &forms {
            let mut argv = vec![bin(fam, ""), "-t".into(), f.table.into()];
            if f.insert {
                argv.extend(["-I".into(), f.chain.clone(), "1".into()]);
            } else {
                argv.extend(["-A".into(), f.chain.clone()]);
            }
            argv.extend(words(&f.args));
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            theirs.ok(&argv);
        }
        // Ours: the same rules as plans, committed over netlink (chains included).
        let mut plans = Vec::new();
        for table in ["nat", "filter"] {
            let mut p = IptablesPlan::new(fam, table);
            for chain in chains_of(table) {
                p.ensure_chain(*chain);
            }
            for f in forms.iter().filter(|f| f.table == table) {
                let rule = Rule::new(words(&f.args)).unwrap();
                if f.insert {
                    p.insert_unique(f.chain.clone(), rule);
                } else {
                    p.append_unique(f.chain.clone(), rule);
                }
            }
            plans.push(p);
        }
        let report = ours.run(|| iptables::apply(&plans)).unwrap();
        assert_eq!(report.processes, 0, "{fam}: no process: {report:?}");
        assert_eq!(report.netlink, 1, "{fam}: one batch: {report:?}");

        for table in ["nat", "filter"] {
            let want = theirs.run(|| dump_rules(fam, table));
            let have = ours.run(|| dump_rules(fam, table));
            assert_eq!(
                want.len(),
                forms.iter().filter(|f| f.table == table).count()
            );
            assert_eq!(have.len(), want.len(), "{fam} {table}: rule count");
            for (i, (w, h)) in want.iter().zip(&have).enumerate() {
                // NFTA_RULE_EXPRESSIONS is there to compare.
                assert!(w.1.iter().any(|(k, v)| *k == 4 && v.len() > 40), "{w:?}");
                assert_eq!(h, w, "{fam} {table}: rule #{i} in {}", w.0);
            }
            let want = theirs.run(|| dump_chains(fam, table));
            let have = ours.run(|| dump_chains(fam, table));
            assert_eq!(have, want, "{fam} {table}: chains");
            assert_eq!(
                save_text(&ours, fam, table),
                save_text(&theirs, fam, table),
                "{fam} {table}: iptables-save"
            );
        }
        // And nothing left to do for either namespace's rules.
        for ns in [&theirs, &ours] {
            let report = ns.run(|| iptables::apply(&plans)).unwrap();
            assert_eq!((report.processes, report.scripts.len()), (0, 0), "{fam}");
        }
    }
}

/// A bridge (ipMasq) and portmap setup for one pod, as `(table, chain, insert, Go-order
/// arguments)`, with the user chains it creates.
fn pod_rules(fam: IpFamily) -> (Vec<&'static str>, Vec<Form>) {
    let (ip, net, mcast, dnat_to) = match fam {
        IpFamily::V4 => ("10.88.0.7", "10.88.0.0/16", "224.0.0.0/4", "10.88.0.7:80"),
        IpFamily::V6 => ("fd00::7", "fd00::/64", "ff00::/8", "[fd00::7]:80"),
    };
    let c = "\"name: \\\"mynet\\\" id: \\\"pod7\\\"\"";
    let chains = vec![
        "CNI-abc",
        "CNI-HOSTPORT-DNAT",
        "CNI-HOSTPORT-SETMARK",
        "CNI-HOSTPORT-MASQ",
        "CNI-DN-x",
    ];
    let forms = vec![
        form(
            "nat",
            "CNI-abc",
            format!("-d {net} -j ACCEPT -m comment --comment {c}"),
        ),
        form(
            "nat",
            "CNI-abc",
            format!("! -d {mcast} -j MASQUERADE -m comment --comment {c}"),
        ),
        form(
            "nat",
            "POSTROUTING",
            format!("-s {ip} -j CNI-abc -m comment --comment {c}"),
        ),
        form(
            "nat",
            "CNI-HOSTPORT-SETMARK",
            "-m comment --comment \"CNI portfwd masquerade mark\" -j MARK --set-xmark \
             0x2000/0x2000"
                .to_owned(),
        ),
        form(
            "nat",
            "CNI-HOSTPORT-MASQ",
            "-m mark --mark 0x2000/0x2000 -j MASQUERADE".to_owned(),
        ),
        Form {
            table: "nat",
            chain: "POSTROUTING".to_owned(),
            insert: true,
            args: "-m comment --comment \"CNI portfwd requiring masquerade\" -j CNI-HOSTPORT-MASQ"
                .to_owned(),
        },
        form(
            "nat",
            "PREROUTING",
            "-m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT".to_owned(),
        ),
        form(
            "nat",
            "OUTPUT",
            "-m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT".to_owned(),
        ),
        form(
            "nat",
            "CNI-HOSTPORT-DNAT",
            "-m comment --comment \"dnat name: \\\"mynet\\\" id: \\\"pod7\\\"\" -m multiport \
             -p tcp --destination-ports 8080 -j CNI-DN-x"
                .to_owned(),
        ),
        form(
            "nat",
            "CNI-DN-x",
            format!("-p tcp --dport 8080 -s {ip} -j CNI-HOSTPORT-SETMARK"),
        ),
        form(
            "nat",
            "CNI-DN-x",
            format!("-p tcp --dport 8080 -j DNAT --to-destination {dnat_to}"),
        ),
    ];
    (chains, forms)
}

/// Our plan for the pod's rules.
fn pod_plan(fam: IpFamily) -> IptablesPlan {
    let (chains, forms) = pod_rules(fam);
    let mut p = IptablesPlan::new(fam, "nat");
    for c in chains {
        p.ensure_chain(c);
    }
    for f in forms {
        let rule = Rule::new(words(&f.args)).unwrap();
        if f.insert {
            p.insert_unique(f.chain, rule);
        } else {
            p.append_unique(f.chain, rule);
        }
    }
    p
}

/// Our teardown of the pod, as the plugins plan it.
fn pod_teardown(fam: IpFamily) -> IptablesPlan {
    let mut p = IptablesPlan::new(fam, "nat");
    p.delete_with_comment("POSTROUTING", "name: \"mynet\" id: \"pod7\"")
        .delete_chain("CNI-abc")
        .delete_jumps_to("CNI-DN-x")
        .delete_chain("CNI-DN-x");
    p
}

/// The pod's rules gone (the shared chains stay), as iptables-save sees it.
fn assert_pod_gone(ns: &TestNs, fam: IpFamily) {
    let save = save_text(ns, fam, "nat");
    assert!(!save.contains("pod7\\\" -j CNI-abc"), "{fam}:\n{save}");
    assert!(!save.contains(":CNI-abc"), "{fam}:\n{save}");
    assert!(!save.contains("CNI-DN-x"), "{fam}:\n{save}");
    assert!(save.contains(":CNI-HOSTPORT-DNAT"), "{fam}:\n{save}");
}

#[test]
fn written_over_netlink_deleted_by_iptables_and_the_other_way_round() {
    if !common::require_tool("iptables-restore") {
        return;
    }
    let ns = TestNs::new("ipwd");
    if !iptables_is_nft(&ns) {
        return;
    }
    for fam in [IpFamily::V4, IpFamily::V6] {
        prepare(&ns, fam);
        let ipt = bin(fam, "");
        let (chains, forms) = pod_rules(fam);

        // Ours over netlink, then the reference bridge's teardown (`iptables -D`, `-F`, `-X`)
        // and the reference portmap's (one `iptables-restore --noflush`).
        let report = ns.run(|| iptables::apply(&[pod_plan(fam)])).unwrap();
        assert_eq!(
            (report.processes, report.netlink),
            (0, 1),
            "{fam} {report:?}"
        );
        for f in forms
            .iter()
            .filter(|f| f.chain == "POSTROUTING" && !f.insert)
        {
            let mut argv = vec![ipt.clone(), "-t".into(), "nat".into(), "-D".into()];
            argv.push(f.chain.clone());
            argv.extend(words(&f.args));
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            ns.ok(&argv);
        }
        ns.ok(&[&ipt, "-t", "nat", "-F", "CNI-abc"]);
        ns.ok(&[&ipt, "-t", "nat", "-X", "CNI-abc"]);
        let dnat_jump = forms
            .iter()
            .find(|f| f.chain == "CNI-HOSTPORT-DNAT")
            .unwrap();
        let script = format!(
            "*nat\n-D CNI-HOSTPORT-DNAT {}\n-F CNI-DN-x\n-X CNI-DN-x\nCOMMIT\n",
            dnat_jump.args
        );
        ns.ok(&[
            "sh",
            "-c",
            &format!(
                "printf '%s' '{script}' | {} --noflush",
                bin(fam, "-restore")
            ),
        ]);
        assert_pod_gone(&ns, fam);

        // The reference's rules (iptables, Go argument order), deleted by ours over netlink.
        for c in &chains {
            if !save_text(&ns, fam, "nat").contains(&format!(":{c} ")) {
                ns.ok(&[&ipt, "-t", "nat", "-N", c]);
            }
        }
        for f in &forms {
            // As the reference's AppendUnique / InsertUnique: `-C` first (the shared rules
            // ours left in place are found).
            let mut check = vec![ipt.clone(), "-t".into(), "nat".into(), "-C".into()];
            check.push(f.chain.clone());
            check.extend(words(&f.args));
            let check: Vec<&str> = check.iter().map(String::as_str).collect();
            if ns.cmd(&check).status.success() {
                continue;
            }
            let mut argv = vec![ipt.clone(), "-t".into(), "nat".into()];
            if f.insert {
                argv.extend(["-I".into(), f.chain.clone(), "1".into()]);
            } else {
                argv.extend(["-A".into(), f.chain.clone()]);
            }
            argv.extend(words(&f.args));
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            ns.ok(&argv);
        }
        // Ours sees them as its own: nothing to add.
        let report = ns.run(|| iptables::apply(&[pod_plan(fam)])).unwrap();
        assert!(report.scripts.is_empty(), "{fam} {report:?}");
        let report = ns.run(|| iptables::apply(&[pod_teardown(fam)])).unwrap();
        assert_eq!(
            (report.processes, report.netlink),
            (0, 1),
            "{fam} {report:?}"
        );
        assert_pod_gone(&ns, fam);
        // The shared rules left are what both wrote alike: one copy each.
        let save = save_text(&ns, fam, "nat");
        assert_eq!(
            save.matches("-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT")
                .count(),
            1,
            "{fam}:\n{save}"
        );
    }
}

#[test]
fn concurrent_netlink_applies_lose_no_rule() {
    if !common::require_tool("iptables-restore") {
        return;
    }
    let ns = TestNs::new("ipwc");
    if !iptables_is_nft(&ns) {
        return;
    }
    prepare(&ns, IpFamily::V4);
    ns.ok(&["iptables", "-t", "nat", "-N", "CNI-HOSTPORT-DNAT"]);
    let (threads, per_thread) = (8, 6);
    let netlink: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let ns = &ns;
                s.spawn(move || {
                    let mut commits = 0;
                    for j in 0..per_thread {
                        let port = (10000 + i * 100 + j).to_string();
                        let mut plan = IptablesPlan::new(IpFamily::V4, "nat");
                        // Every thread also creates a chain of its own and jumps to it: each
                        // batch changes the ruleset generation the others read.
                        let own = format!("CNI-T{i}-{j}");
                        plan.ensure_chain(own.clone())
                            .append_unique(own.clone(), Rule::new(["-j", "RETURN"]).unwrap())
                            .append_unique(
                                "CNI-HOSTPORT-DNAT",
                                Rule::new(["-p", "tcp", "--dport", &port, "-j", &own]).unwrap(),
                            );
                        let report = ns
                            .run(|| iptables::apply(std::slice::from_ref(&plan)))
                            .unwrap();
                        assert_eq!(report.scripts.len(), 1, "{report:?}");
                        commits += report.netlink;
                    }
                    commits
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert!(netlink > 0, "some batches went over netlink");
    let state = ns
        .run(|| iptables::save(IpFamily::V4, Some("nat")))
        .unwrap();
    let nat = state.table("nat").unwrap();
    let dnat = nat.chain("CNI-HOSTPORT-DNAT").unwrap();
    assert_eq!(dnat.rules.len(), threads * per_thread, "{:#?}", dnat.rules);
    for i in 0..threads {
        for j in 0..per_thread {
            let own = nat.chain(&format!("CNI-T{i}-{j}")).unwrap();
            assert_eq!(own.rules.len(), 1);
        }
    }
}
