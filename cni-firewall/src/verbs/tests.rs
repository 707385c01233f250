#![allow(clippy::unwrap_used)]

use cni_linux::firewall::Recorder;
use cni_linux::firewall::iptables::IptablesState;

use super::*;
use crate::host::FakeHost;

const ISOLATED: &str = "*filter
:FORWARD ACCEPT [0:0]
:CNI-ISOLATION-STAGE-1 - [0:0]
:CNI-ISOLATION-STAGE-2 - [0:0]
-A FORWARD -m comment --comment \"CNI firewall plugin rules (ingressPolicy: same-bridge)\" -j CNI-ISOLATION-STAGE-1
-A CNI-ISOLATION-STAGE-1 -i cni0 ! -o cni0 -m comment --comment \"CNI firewall plugin rules (ingressPolicy: same-bridge)\" -j CNI-ISOLATION-STAGE-2
-A CNI-ISOLATION-STAGE-1 -m comment --comment \"CNI firewall plugin rules (ingressPolicy: same-bridge)\" -j RETURN
-A CNI-ISOLATION-STAGE-2 -o cni0 -m comment --comment \"CNI firewall plugin rules (ingressPolicy: same-bridge)\" -j DROP
-A CNI-ISOLATION-STAGE-2 -m comment --comment \"CNI firewall plugin rules (ingressPolicy: same-bridge)\" -j RETURN
COMMIT
";

struct Env {
    dir: std::path::PathBuf,
}

impl Env {
    fn new(tag: &str) -> Env {
        let dir = std::env::temp_dir().join(format!(
            "cni-firewall-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Env { dir }
    }

    fn conf(&self, extra: &str, prev: bool) -> FirewallConf {
        let prev = if prev {
            r#","prevResult":{"cniVersion":"1.0.0",
              "interfaces":[{"name":"cni0"},{"name":"veth1"},{"name":"eth0","sandbox":"/x"}],
              "ips":[{"address":"10.88.0.5/16","interface":2}]}"#
        } else {
            ""
        };
        FirewallConf::parse(
            format!(
                r#"{{"cniVersion":"1.0.0","name":"net1","type":"firewall","dataDir":"{}"{extra}{prev}}}"#,
                self.dir.display()
            )
            .as_bytes(),
        )
        .unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn att(id: &str) -> Attachment {
    Attachment {
        container_id: id.into(),
        ifname: "eth0".into(),
    }
}

fn host(ports: &[&str]) -> FakeHost {
    let mut h = FakeHost::default();
    h.bridges.insert(
        "cni0".into(),
        ports.iter().map(|p| (*p).to_owned()).collect(),
    );
    h
}

#[test]
fn add_without_prev_result_fails_with_the_reference_message() {
    let env = Env::new("noprev");
    let c = env.conf("", false);
    let e = add(
        &c,
        &att("c1"),
        &mut Recorder::default(),
        &mut host(&[]),
        &Store::new(&c.data_dir, &c.name),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "missing prevResult from earlier plugin");
}

#[test]
fn firewalld_is_refused_with_a_reason_before_anything_changes() {
    let env = Env::new("fwd");
    let c = env.conf(r#","backend":"firewalld""#, true);
    let mut rec = Recorder::default();
    let mut h = host(&[]);
    let e = add(
        &c,
        &att("c1"),
        &mut rec,
        &mut h,
        &Store::new(&c.data_dir, &c.name),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("not reachable on the system bus"),
        "{e}"
    );
    // Rootless: the reason is said, and no bus is tried.
    h.rootless = true;
    let e = add(
        &c,
        &att("c1"),
        &mut rec,
        &mut h,
        &Store::new(&c.data_dir, &c.name),
    )
    .unwrap_err();
    assert!(e.to_string().contains("rootless"), "{e}");
    // An empty backend falls back to iptables.
    let auto = env.conf("", true);
    add(
        &auto,
        &att("c1"),
        &mut Recorder::default(),
        &mut h,
        &Store::new(&c.data_dir, &c.name),
    )
    .unwrap();
    assert_eq!(e.code(), cni_types::ErrorCode::PluginNotAvailable);
    assert!(rec.dump().is_empty());
}

#[test]
fn del_keeps_isolation_while_another_port_is_on_the_bridge() {
    let env = Env::new("keep");
    let c = env.conf(r#","ingressPolicy":"same-bridge""#, true);
    let store = Store::new(&c.data_dir, &c.name);
    let mut rec = Recorder {
        iptables_states: vec![IptablesState::parse(IpFamily::V4, ISOLATED).unwrap()],
        ..Recorder::default()
    };
    // veth2 belongs to another pod (perhaps one of a Go firewall).
    del(
        &c,
        &att("c1"),
        &mut rec,
        &mut host(&["veth1", "veth2"]),
        &store,
    )
    .unwrap();
    let d = rec.dump();
    assert!(!d.contains("ISOLATION"), "{d}");
    assert!(
        d.contains("delete CNI-FORWARD -s 10.88.0.5/32 -j ACCEPT"),
        "{d}"
    );

    // Only our own veth left: the bridge's isolation goes.
    let mut rec2 = Recorder {
        iptables_states: rec.iptables_states.clone(),
        ..Recorder::default()
    };
    del(&c, &att("c1"), &mut rec2, &mut host(&["veth1"]), &store).unwrap();
    let d = rec2.dump();
    assert!(
        d.contains("delete CNI-ISOLATION-STAGE-1 -i cni0 ! -o cni0"),
        "{d}"
    );
    assert!(d.contains("delete-chain CNI-ISOLATION-STAGE-2"), "{d}");
}

#[test]
fn gc_removes_stale_records_rules_but_not_addresses_of_valid_ones() {
    let env = Env::new("gc");
    let c = env.conf("", true);
    let store = Store::new(&c.data_dir, &c.name);
    let mut rec = Recorder::default();
    add(&c, &att("stale"), &mut rec, &mut host(&[]), &store).unwrap();
    add(&c, &att("live"), &mut rec, &mut host(&[]), &store).unwrap();
    // Same address for both: the live one keeps it.
    let mut rec = Recorder::default();
    gc(&c, &[att("live")], &mut rec, &mut host(&[]), &store).unwrap();
    assert!(!rec.dump().contains("delete"), "{}", rec.dump());
    assert_eq!(store.all().unwrap().len(), 1);

    // A stale record with its own address: its rules go, and its record.
    let other = FirewallConf::parse(
        format!(
            r#"{{"cniVersion":"1.0.0","name":"net1","type":"firewall","dataDir":"{}",
            "prevResult":{{"cniVersion":"1.0.0","interfaces":[{{"name":"cni0"}}],
              "ips":[{{"address":"10.88.0.9/16"}}]}}}}"#,
            env.dir.display()
        )
        .as_bytes(),
    )
    .unwrap();
    add(
        &other,
        &att("stale2"),
        &mut Recorder::default(),
        &mut host(&[]),
        &store,
    )
    .unwrap();
    let mut rec = Recorder::default();
    gc(&c, &[att("live")], &mut rec, &mut host(&[]), &store).unwrap();
    assert!(
        rec.dump()
            .contains("delete CNI-FORWARD -s 10.88.0.9/32 -j ACCEPT"),
        "{}",
        rec.dump()
    );
    assert_eq!(
        store
            .all()
            .unwrap()
            .iter()
            .map(|r| r.container_id.as_str())
            .collect::<Vec<_>>(),
        ["live"]
    );
}

#[test]
fn del_without_prev_result_uses_the_record() {
    let env = Env::new("rec");
    let c = env.conf("", true);
    let store = Store::new(&c.data_dir, &c.name);
    add(
        &c,
        &att("c1"),
        &mut Recorder::default(),
        &mut host(&[]),
        &store,
    )
    .unwrap();
    let bare = env.conf("", false);
    let mut rec = Recorder::default();
    del(&bare, &att("c1"), &mut rec, &mut host(&[]), &store).unwrap();
    assert!(
        rec.dump().contains("delete CNI-FORWARD -s 10.88.0.5/32"),
        "{}",
        rec.dump()
    );
    assert!(store.all().unwrap().is_empty());
    // A DEL of an attachment never added does nothing.
    let mut rec = Recorder::default();
    del(&bare, &att("never"), &mut rec, &mut host(&[]), &store).unwrap();
    assert!(rec.dump().is_empty());
}
