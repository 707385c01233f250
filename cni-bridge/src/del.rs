//! DEL, GC and STATUS: best effort, every step tried, "already gone" is success.

use cni_linux::firewall::FirewallApplier;
use cni_linux::netlink::Handle;
use cni_proto::delegate;
use cni_proto::env::Env;
use ipnet::IpNet;

use crate::config::BridgeConf;
use crate::container;
use crate::deps::{Attachment, Deps};
use crate::error::BridgeError;
use crate::{masq, spoofchk};

/// DEL:
///
/// 1. the container interface is found in its namespace (with its addresses when masquerade
///    must be torn down and there is no `prevResult`), then deleted, which removes the veth
///    pair; a missing namespace or interface is fine;
/// 2. then IPAM DEL, so an address is never handed out again while a device still holds it
///    (plugins #666): it starts as soon as the kernel has unregistered the veth (the
///    `RTM_DELLINK` event of its host end), while the kernel finishes the deletion;
/// 3. meanwhile, on another thread (the kernel takes 15-20 ms to delete a veth; the firewall
///    does not depend on it): the spoof check (only with `macspoofchk`, as the reference) and
///    the masquerade (only with `ipMasq`, as the reference) in every layout either
///    implementation may have written: the iptables chain, found by network name and
///    container ID only (plugins #810), our nftables elements, the reference's nftables rules.
///
/// Every step runs even if an earlier one failed; the errors are returned together. GC
/// removes what a DEL with another config (say `ipMasq` switched off) left.
pub fn del(conf: &BridgeConf, att: &Attachment, deps: &mut Deps) -> Result<(), BridgeError> {
    let mut errs = Vec::new();
    let masq = conf.is_layer3() && conf.ip_masq;
    let spoof = conf.mac_spoof_check;
    let mut ips: Vec<IpNet> = Vec::new();
    if masq && let Ok(Some(prev)) = conf.prev_result() {
        ips.extend(prev.ips.iter().map(|ip| ip.address));
    }
    // `prevResult` names every address ADD masqueraded; the interface's may have changed.
    let complete = !ips.is_empty();
    let iface = match &att.netns {
        Some(netns) => match container::find_iface(netns, &att.ifname, masq && ips.is_empty()) {
            Ok((iface, addrs)) => {
                ips.extend(addrs);
                iface
            }
            Err(e) => {
                errs.push(e);
                None
            }
        },
        None => None,
    };
    // An attachment whose spoof-check id is hashed may have one the Go plugin set up under
    // the reference's name: it is told apart by its host port.
    let host_port = match &iface {
        Some(i) if spoof && spoofchk::legacy_ref_id(&att.container_id, &att.ifname).is_some() => {
            Handle::new().ok().and_then(|mut host| {
                let peer = i.host_peer(&mut host)?;
                Some(host.link_by_index(peer).ok()??.name)
            })
        }
        _ => None,
    };
    let host_port = host_port.as_deref();
    let Deps { exec, firewall, .. } = deps;
    let firewall: &mut (dyn FirewallApplier + Send) = &mut **firewall;
    let ips = &ips;
    std::thread::scope(|scope| {
        // The spawned thread inherits this thread's network namespace: the node's.
        let teardown = (masq || spoof).then(|| {
            scope.spawn(move || {
                let mut errs = Vec::new();
                if spoof && let Err(e) = spoofchk::apply::teardown(firewall, att, host_port) {
                    errs.push(e);
                }
                if masq {
                    errs.extend(masq::apply::teardown_masq(
                        firewall, conf, att, ips, complete,
                    ));
                }
                errs
            })
        });
        let mut deleting = None;
        if let Some(iface) = iface {
            // IPAM DEL must wait until no device holds the address (#666): until the kernel
            // has unregistered the veth, which it does long before the delete returns.
            let host_peer = conf.ipam_type.as_ref().and_then(|_| {
                let mut host = Handle::new().ok()?;
                let peer = iface.host_peer(&mut host)?;
                Some((host, peer))
            });
            let deleter = scope.spawn(move || iface.delete());
            let unregistered = host_peer.is_some_and(|(mut host, peer)| {
                container::wait_gone(&mut host, peer, || deleter.is_finished())
            });
            if unregistered {
                deleting = Some(deleter);
            } else {
                errs.extend(join(deleter));
            }
        }
        if let Some(ipam) = &conf.ipam_type
            && let Err(e) = delegate::del(&**exec, ipam, &conf.raw, &att.ipam_env())
        {
            errs.push(BridgeError::Ipam(e));
        }
        if let Some(d) = deleting {
            errs.extend(join(d));
        }
        if let Some(t) = teardown {
            match t.join() {
                Ok(e) => errs.extend(e),
                Err(_) => errs.push(BridgeError::Panicked("firewall teardown")),
            }
        }
    });
    BridgeError::collect(errs)
}

fn join(t: std::thread::ScopedJoinHandle<'_, Result<(), BridgeError>>) -> Option<BridgeError> {
    match t.join() {
        Ok(r) => r.err(),
        Err(_) => Some(BridgeError::Panicked("interface deletion")),
    }
}

/// GC (spec 1.1): removes the masquerade state (every layout) and spoof checks of
/// attachments of this network that are not in `cni.dev/valid-attachments`, then passes GC
/// on to IPAM. Without a `cni.dev/valid-attachments` key only IPAM is asked.
///
/// - iptables: chains whose comment `name: "<net>" id: "<cid>"` names this network and a
///   container that is not valid (and whose name is derived from that pair);
/// - nftables, ours: elements whose comment carries this network's tag and whose value is not
///   a valid attachment's; the reference's: rules of `masq_checks` with this network's hash
///   whose comment is not a valid attachment's;
/// - spoof check: the `bridge nat` table is shared by all networks and does not record the
///   network, so a check is removed only when its attachment is not valid **and** its host
///   port no longer exists.
///
/// GC looks at every layout whatever `ipMasq` and `macspoofchk` say now: it is where state
/// left by an older config goes.
pub fn gc(conf: &BridgeConf, env: &Env, deps: &mut Deps) -> Result<(), BridgeError> {
    let mut errs = Vec::new();
    if let Some(valid) = &conf.valid_attachments {
        masq::apply::gc_masq(&mut *deps.firewall, conf, valid, &mut errs);
        spoofchk::apply::gc(&mut *deps.firewall, valid, &mut errs);
    }
    if let Some(ipam) = &conf.ipam_type
        && let Err(e) = delegate::gc(&*deps.exec, ipam, &conf.raw, env)
    {
        errs.push(BridgeError::Ipam(e));
    }
    BridgeError::collect(errs)
}

/// STATUS (spec 1.1): IPAM's answer when IPAM is configured, ready otherwise.
pub fn status(conf: &BridgeConf, env: &Env, deps: &mut Deps) -> Result<(), BridgeError> {
    match &conf.ipam_type {
        Some(ipam) => {
            delegate::status(&*deps.exec, ipam, &conf.raw, env).map_err(BridgeError::Ipam)
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use cni_linux::firewall::Recorder;
    use cni_linux::firewall::nftables::{Family, NftPlan};
    use cni_proto::Command;
    use cni_proto::exec::Exec;

    use super::*;

    /// Records IPAM calls and answers them with success.
    #[derive(Default)]
    struct Ipam(Mutex<Vec<Command>>);

    impl Exec for Ipam {
        fn exec(
            &self,
            _plugin_type: &str,
            command: Command,
            _stdin: &[u8],
            _env: &Env,
        ) -> Result<Vec<u8>, cni_types::Error> {
            self.0.lock().unwrap().push(command);
            Ok(Vec::new())
        }
    }

    /// DEL without a namespace, with a recording firewall: what it tore down.
    fn del_with(extra: &str) -> (Recorder, Vec<Command>) {
        let conf = BridgeConf::parse(
            format!(
                r#"{{"cniVersion":"1.0.0","name":"n","type":"bridge",
                    "ipam":{{"type":"host-local","subnet":"10.1.0.0/24"}}{extra}}}"#
            )
            .as_bytes(),
            "",
        )
        .unwrap();
        let ipam = Arc::new(Ipam::default());
        let rec = Arc::new(Mutex::new(Recorder::default()));
        struct Shared(Arc<Mutex<Recorder>>);
        impl FirewallApplier for Shared {
            fn apply_iptables(
                &mut self,
                plans: &[cni_linux::firewall::iptables::IptablesPlan],
            ) -> Result<(), cni_linux::firewall::FirewallError> {
                self.0.lock().unwrap().apply_iptables(plans)
            }
            fn iptables_state(
                &mut self,
                family: cni_linux::IpFamily,
                table: &str,
            ) -> Result<
                cni_linux::firewall::iptables::IptablesState,
                cni_linux::firewall::FirewallError,
            > {
                self.0.lock().unwrap().iptables_state(family, table)
            }
            fn apply_nft(
                &mut self,
                plan: &NftPlan,
            ) -> Result<(), cni_linux::firewall::FirewallError> {
                self.0.lock().unwrap().apply_nft(plan)
            }
            fn nft_table(
                &mut self,
                family: Family,
                table: &str,
            ) -> Result<
                Option<cni_linux::firewall::nftables::TableListing>,
                cni_linux::firewall::FirewallError,
            > {
                self.0.lock().unwrap().nft_table(family, table)
            }
        }
        let mut deps = Deps {
            exec: ipam.clone(),
            firewall: Box::new(Shared(rec.clone())),
            hooks: Default::default(),
        };
        let att = Attachment::new("c1", "eth0", None, "/nonexistent");
        del(&conf, &att, &mut deps).unwrap();
        let calls = ipam.0.lock().unwrap().clone();
        let rec = rec.lock().unwrap().clone();
        (rec, calls)
    }

    #[test]
    fn del_tears_down_only_what_the_config_enables() {
        // Neither ipMasq nor macspoofchk: the firewall is not looked at (as the reference).
        let (rec, calls) = del_with("");
        assert!(
            rec.iptables.is_empty() && rec.nft.is_empty(),
            "{}",
            rec.dump()
        );
        assert_eq!(calls, vec![Command::Del]);

        // ipMasq: the iptables chain (the recorder cannot prove it absent, so both families).
        let (rec, calls) = del_with(r#","ipMasq":true"#);
        let dump = rec.dump();
        assert!(
            dump.contains("table ipv4 nat\n  delete-jumps-to CNI-"),
            "{dump}"
        );
        assert!(
            dump.contains("table ipv6 nat\n  delete-jumps-to CNI-"),
            "{dump}"
        );
        assert_eq!(calls, vec![Command::Del]);
    }
}
