#![allow(clippy::unwrap_used)]

use super::*;
use crate::config::FirewallConf;

fn conf(extra: &str) -> FirewallConf {
    FirewallConf::parse(
        format!(
            r#"{{"cniVersion":"1.0.0","name":"net1","type":"firewall"{extra},
            "prevResult":{{"cniVersion":"1.0.0",
              "interfaces":[{{"name":"cni0"}},{{"name":"veth1"}},{{"name":"eth0","sandbox":"/x"}}],
              "ips":[{{"address":"10.88.0.5/16","interface":2}},{{"address":"fd00::5/64","interface":2}}]}}}}"#
        )
        .as_bytes(),
    )
    .unwrap()
}

fn dump(plans: &[IptablesPlan]) -> String {
    plans.iter().map(ToString::to_string).collect()
}

#[track_caller]
fn golden(name: &str, got: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/iptables/golden");
    cni_testkit::golden::assert_golden(&dir.join(name), got);
}

#[test]
fn add_plan_matches_the_reference_layout() {
    let c = conf("");
    golden("add.txt", &dump(&add_plans(&c, &c.pod(), None, true)));
}

#[test]
fn add_plan_with_same_bridge_and_admin_chain() {
    let c = conf(r#","ingressPolicy":"same-bridge","iptablesAdminChainName":"MY-ADMIN""#);
    let pod = c.pod();
    golden(
        "add_same_bridge.txt",
        &dump(&add_plans(&c, &pod, pod.bridge.as_deref(), true)),
    );
}

#[test]
fn del_plan_removes_only_the_address_rules() {
    let c = conf("");
    golden("del.txt", &dump(&del_plans(&c.pod())));
}

/// The state the reference leaves with two bridges isolated (rules as iptables-save prints
/// the Go plugin's, recorded from v1.1.1).
const TWO_BRIDGES: &str = "*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:CNI-ISOLATION-STAGE-1 - [0:0]
:CNI-ISOLATION-STAGE-2 - [0:0]
-A FORWARD -m comment --comment \"CNI firewall plugin rules (ingressPolicy: same-bridge)\" -j CNI-ISOLATION-STAGE-1
-A CNI-ISOLATION-STAGE-1 -i br1 ! -o br1 -m comment --comment \"CNI firewall plugin rules (ingressPolicy: same-bridge)\" -j CNI-ISOLATION-STAGE-2
-A CNI-ISOLATION-STAGE-1 -i br0 ! -o br0 -m comment --comment \"CNI firewall plugin rules (ingressPolicy: same-bridge)\" -j CNI-ISOLATION-STAGE-2
-A CNI-ISOLATION-STAGE-1 -m comment --comment \"CNI firewall plugin rules (ingressPolicy: same-bridge)\" -j RETURN
-A CNI-ISOLATION-STAGE-2 -o br1 -m comment --comment \"CNI firewall plugin rules (ingressPolicy: same-bridge)\" -j DROP
-A CNI-ISOLATION-STAGE-2 -o br0 -m comment --comment \"CNI firewall plugin rules (ingressPolicy: same-bridge)\" -j DROP
-A CNI-ISOLATION-STAGE-2 -m comment --comment \"CNI firewall plugin rules (ingressPolicy: same-bridge)\" -j RETURN
COMMIT
";

#[test]
fn isolation_teardown_keeps_other_bridges_and_removes_the_chains_with_the_last() {
    let state = IptablesState::parse(IpFamily::V4, TWO_BRIDGES).unwrap();
    let p = isolation_teardown_plans(&state, "br0").unwrap();
    let script = cni_linux::firewall::iptables::restore_script(&[&p], &state).unwrap();
    assert!(
        script.contains("-D CNI-ISOLATION-STAGE-1 -i br0 ! -o br0"),
        "{script}"
    );
    assert!(
        script.contains("-D CNI-ISOLATION-STAGE-2 -o br0"),
        "{script}"
    );
    assert!(!script.contains("br1"), "{script}");
    assert!(!script.contains("-X"), "{script}");

    // Once br1 is the only one left, removing it removes the chains and the jump.
    let one = TWO_BRIDGES
        .lines()
        .filter(|l| !l.contains("br0"))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let state = IptablesState::parse(IpFamily::V4, &one).unwrap();
    let p = isolation_teardown_plans(&state, "br1").unwrap();
    let script = cni_linux::firewall::iptables::restore_script(&[&p], &state).unwrap();
    golden("isolation_teardown_last.txt", &script);
    // Nothing to do for a bridge that was never isolated.
    assert!(isolation_teardown_plans(&state, "br9").is_none());
}

#[test]
fn check_reports_the_reference_messages() {
    let c = conf("");
    let pod = c.pod();
    let empty =
        IptablesState::parse(IpFamily::V4, "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n").unwrap();
    assert_eq!(
        check(&c, &pod, &empty).unwrap_err().to_string(),
        "expected FORWARD rule [-m comment --comment CNI firewall plugin rules -j CNI-FORWARD] not found"
    );
    let partial = "*filter
:FORWARD ACCEPT [0:0]
:CNI-FORWARD - [0:0]
:CNI-ADMIN - [0:0]
-A FORWARD -m comment --comment \"CNI firewall plugin rules\" -j CNI-FORWARD
-A CNI-FORWARD -m comment --comment \"CNI firewall plugin admin overrides\" -j CNI-ADMIN
-A CNI-FORWARD -d 10.88.0.5/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
";
    let s = IptablesState::parse(IpFamily::V4, partial).unwrap();
    assert_eq!(
        check(&c, &pod, &s).unwrap_err().to_string(),
        "expected rule [-s 10.88.0.5/32 -j ACCEPT] not found"
    );
    let full = partial.replace("COMMIT", "-A CNI-FORWARD -s 10.88.0.5/32 -j ACCEPT\nCOMMIT");
    check(
        &c,
        &pod,
        &IptablesState::parse(IpFamily::V4, &full).unwrap(),
    )
    .unwrap();
}
