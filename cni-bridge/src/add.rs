//! ADD: everything or nothing.

use std::net::IpAddr;

use cni_linux::IpFamily;
use cni_linux::firewall;
use cni_linux::netlink::{Handle, Link, mac};
use cni_linux::netns::NetNs;
use cni_proto::delegate;
use cni_types::{CniResult, Interface, Route, go};
use ipnet::IpNet;

use crate::config::{BridgeConf, MasqBackend};
use crate::container;
use crate::deps::{Attachment, Deps, FailPoint};
use crate::error::{BridgeError, ConfigError};
use crate::host::{self, BridgeLink};
use crate::{masq, spoofchk};

/// How long the host port may take to become operationally up (the reference polls for up to
/// 2.55 s; we wait for the kernel's event).
const PORT_UP_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(2550);

/// What ADD did so far, undone in reverse order when a later step fails.
#[derive(Debug)]
enum Step {
    /// The veth pair (deleting the host end removes both).
    Veth { index: u32 },
    /// Spoof-check chains of this attachment.
    SpoofCheck,
    /// The IPAM allocation.
    Ipam,
    /// Masquerade rules.
    Masq {
        backend: MasqBackend,
        ips: Vec<IpNet>,
    },
}

/// The backend the reference would pick when `ipMasqBackend` is unset: iptables, unless only
/// nftables is available.
pub fn default_masq_backend() -> MasqBackend {
    match firewall::Backend::detect_default() {
        Some(firewall::Backend::Nftables) => MasqBackend::Nftables,
        _ => MasqBackend::Iptables,
    }
}

/// ADD: attaches the container to the bridge and returns the result (`interfaces` =
/// `[bridge, host veth, container interface]`, `ips[].interface` = 2). If any step fails,
/// everything done so far is undone (veth, spoof check, IPAM allocation, masquerade rules)
/// before the error is returned; the bridge, its gateway addresses and the sysctls are shared
/// and stay, as with the reference.
pub fn add(conf: &BridgeConf, att: &Attachment, deps: &mut Deps) -> Result<CniResult, BridgeError> {
    if conf.is_layer3() && conf.disable_container_interface {
        return Err(ConfigError::IpamWithoutInterface.into());
    }
    if conf.hairpin_mode && conf.promisc_mode {
        return Err(ConfigError::HairpinAndPromisc.into());
    }
    let container_mac = conf.container_mac()?.unwrap_or_else(mac::random_local);
    let backend = if conf.ip_masq && conf.is_layer3() {
        Some(conf.masq_backend()?.unwrap_or_else(default_masq_backend))
    } else {
        None
    };
    let netns_path = att.netns.as_deref().ok_or(BridgeError::NoNetns)?;

    // The namespace first: a wrong CNI_NETNS must not leave a new bridge behind (the
    // reference creates the bridge before it looks at the namespace).
    let ns = NetNs::open(netns_path).map_err(|source| BridgeError::Netns {
        path: netns_path.to_path_buf(),
        source,
    })?;
    let mut host = Handle::new().map_err(|e| BridgeError::netlink("netlink", e))?;
    let bridge = host::ensure_bridge(&mut host, conf)?;

    let mut steps = Vec::new();
    let mut ctx = Ctx {
        conf,
        att,
        host: &mut host,
        ns: &ns,
        bridge,
        container_mac,
        backend,
    };
    match ctx.run(deps, &mut steps) {
        Ok(result) => Ok(result),
        Err(e) => {
            let undo_errors = undo(conf, att, deps, &mut host, steps);
            if undo_errors.is_empty() {
                Err(e)
            } else {
                let mut all = vec![e];
                all.extend(undo_errors);
                Err(BridgeError::Multiple(all))
            }
        }
    }
}

struct Ctx<'a> {
    conf: &'a BridgeConf,
    att: &'a Attachment,
    host: &'a mut Handle,
    ns: &'a NetNs,
    bridge: BridgeLink,
    container_mac: [u8; 6],
    backend: Option<MasqBackend>,
}

/// IPAM types that never look at the container interface, so they can run while the veth is
/// being created. (A `dhcp` IPAM needs the interface to exist: it runs after, as in the
/// reference.)
const INTERFACE_BLIND_IPAM: &[&str] = &["host-local", "static"];

/// What the first phase of ADD made on the host and in the container.
struct Plumbed {
    veth: host::Veth,
    /// The container's netlink socket (none for an L2 interface left down).
    inner: Option<Handle>,
    /// The container interface's index.
    index: u32,
}

impl Ctx<'_> {
    /// ADD's phases in order: plumbing with IPAM ([`Ctx::plumb_and_allocate`]), the result's
    /// interfaces, the L3 configuration ([`Ctx::configure_l3`]), then the port's readiness
    /// ([`Ctx::await_port`]).
    fn run(&mut self, deps: &mut Deps, steps: &mut Vec<Step>) -> Result<CniResult, BridgeError> {
        let (Plumbed { veth, inner, index }, ipam_result) = self.plumb_and_allocate(deps, steps)?;
        let mut result = self.result_interfaces(&veth);
        if let (Some(ipam_result), Some(inner)) = (ipam_result, inner) {
            self.configure_l3(deps, steps, ipam_result, inner, index, &mut result)?;
        }
        self.await_port(&veth, &mut result)?;
        deps.fail(FailPoint::BeforeResult)?;
        if let Some(dns) = &self.conf.dns {
            result.dns = dns.clone();
        }
        Ok(result)
    }

    /// Phase 1: the veth and its port, the spoof check and the container's socket
    /// ([`Ctx::plumb`]); IPAM at the same time when it does not need the interface, after
    /// otherwise. Returns IPAM's result (`None` without IPAM).
    fn plumb_and_allocate(
        &mut self,
        deps: &mut Deps,
        steps: &mut Vec<Step>,
    ) -> Result<(Plumbed, Option<CniResult>), BridgeError> {
        let conf = self.conf;
        let att = self.att;
        let concurrent = conf
            .ipam_type
            .as_deref()
            .is_some_and(|t| INTERFACE_BLIND_IPAM.contains(&t));
        let (plumbed, ipam_result) = std::thread::scope(|scope| {
            let ipam_thread = match (&conf.ipam_type, concurrent) {
                (Some(ipam), true) => {
                    let exec = deps.exec.clone();
                    let env = att.ipam_env();
                    let raw = &conf.raw;
                    Some(scope.spawn(move || delegate::add(&*exec, ipam, raw, &env)))
                }
                _ => None,
            };
            let plumbed = self.plumb(deps, steps);
            let ipam_result = ipam_thread.map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(cni_types::Error::internal("IPAM thread panicked")))
            });
            (plumbed, ipam_result)
        });
        // IPAM is released on rollback only if it allocated: a failed IPAM ADD (say a
        // duplicate ADD of a live attachment) must not release that attachment's address.
        if matches!(ipam_result, Some(Ok(_))) {
            steps.push(Step::Ipam);
        }
        let plumbed = plumbed?;
        let ipam_result = match (ipam_result, &conf.ipam_type) {
            (Some(r), _) => Some(r.map_err(BridgeError::Ipam)?),
            (None, Some(ipam)) => {
                let r = delegate::add(&*deps.exec, ipam, &conf.raw, &att.ipam_env())
                    .map_err(BridgeError::Ipam)?;
                steps.push(Step::Ipam);
                Some(r)
            }
            (None, None) => None,
        };
        Ok((plumbed, ipam_result))
    }

    /// The result's interfaces: the bridge, the host veth, the container interface.
    fn result_interfaces(&self, veth: &host::Veth) -> CniResult {
        CniResult {
            cni_version: self.conf.version,
            interfaces: vec![
                Interface {
                    name: self.bridge.link.name.clone(),
                    mac: self
                        .bridge
                        .link
                        .mac
                        .map(|m| mac::format(&m))
                        .unwrap_or_default(),
                    ..Default::default()
                },
                Interface {
                    name: veth.host.name.clone(),
                    mac: veth.host.mac.map(|m| mac::format(&m)).unwrap_or_default(),
                    ..Default::default()
                },
                Interface {
                    name: self.att.ifname.clone(),
                    mac: mac::format(&veth.container_mac),
                    sandbox: self.att.netns_string(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    /// Phase 2 (L3): IPAM's addresses, routes and DNS into the result, the addresses and
    /// routes in the container, gateways on the bridge, masquerade.
    fn configure_l3(
        &mut self,
        deps: &mut Deps,
        steps: &mut Vec<Step>,
        ipam_result: CniResult,
        mut inner: Handle,
        index: u32,
        result: &mut CniResult,
    ) -> Result<(), BridgeError> {
        let conf = self.conf;
        let att = self.att;
        if ipam_result.ips.is_empty() {
            return Err(BridgeError::NoIpConfig);
        }
        result.ips = ipam_result.ips;
        result.routes = ipam_result.routes;
        result.dns = ipam_result.dns;
        let gateways = calc_gateways(result, conf);
        deps.fail(FailPoint::AfterIpam)?;

        container::interface_conf(&mut inner, index);
        if result.ips.iter().any(|ip| ip.address.addr().is_ipv6()) {
            let ifname = att.ifname.as_str();
            let enable_dad = conf.enable_dad;
            self.ns
                .run(|| container::ipv6_sysctls(ifname, enable_dad))
                .map_err(|source| BridgeError::Netns {
                    path: self.ns.path().to_path_buf(),
                    source,
                })??;
        }
        container::configure_iface(&mut inner, index, &att.ifname, result, conf.enable_dad)?;

        if conf.is_gateway {
            self.set_gateways(&gateways, result)?;
        }

        if let Some(backend) = self.backend {
            let ips: Vec<IpNet> = result.ips.iter().map(|ip| ip.address).collect();
            steps.push(Step::Masq {
                backend,
                ips: ips.clone(),
            });
            masq::apply::setup_masq(&mut *deps.firewall, backend, conf, att, &ips)?;
        }
        Ok(())
    }

    /// The port forwards once it is operationally up: waits for the kernel's event, then
    /// reads the MACs of the host veth and (unless created with a fixed MAC) of the bridge
    /// into the result.
    fn await_port(&mut self, veth: &host::Veth, result: &mut CniResult) -> Result<(), BridgeError> {
        let conf = self.conf;
        let port = if conf.disable_container_interface {
            veth.host.clone()
        } else {
            self.host
                .wait_oper_up(veth.host.index, PORT_UP_TIMEOUT)
                .map_err(|e| match e {
                    cni_linux::netlink::Error::Timeout { .. } => BridgeError::PortDown,
                    e => BridgeError::netlink("failed to read the bridge port state", e),
                })?
        };
        if let Some(m) = port.mac {
            result.interfaces[1].mac = mac::format(&m);
        }
        // A bridge without a fixed MAC may have taken a port's MAC: read it again.
        if !self.bridge.created
            && let Some(br) = self
                .host
                .link_by_index(self.bridge.link.index)
                .map_err(|e| {
                    BridgeError::netlink(format!("could not lookup {}", go::quote(&conf.bridge)), e)
                })?
            && let Some(m) = br.mac
        {
            result.interfaces[0].mac = mac::format(&m);
        }
        Ok(())
    }

    /// Phase 1 of ADD: the veth (its container end created in place under its final name),
    /// the host port's settings, the spoof check, and the container's netlink socket (for L2
    /// used here to bring the interface up).
    fn plumb(&mut self, deps: &mut Deps, steps: &mut Vec<Step>) -> Result<Plumbed, BridgeError> {
        let conf = self.conf;
        let att = self.att;
        let veth = host::create_veth(
            self.host,
            self.ns,
            &att.ifname,
            Some(self.bridge.link.index),
            conf.mtu,
            self.container_mac,
        )?;
        steps.push(Step::Veth {
            index: veth.host.index,
        });
        host::configure_port(
            self.host,
            &veth.host,
            conf.hairpin_mode,
            conf.port_isolation,
            conf.vlan,
            conf.trunk_vlans(),
            conf.preserve_default_vlan,
        )?;
        if conf.mac_spoof_check {
            steps.push(Step::SpoofCheck);
            spoofchk::apply::setup(
                &mut *deps.firewall,
                att,
                &veth.host.name,
                veth.container_mac,
            )?;
        }
        deps.fail(FailPoint::AfterVeth)?;

        let socket_err =
            |e| BridgeError::netlink("failed to open a netlink socket in the container", e);
        // (L3 with the container interface disabled was refused at the start of ADD.)
        let mut inner = if !conf.disable_container_interface {
            Some(Handle::new_in(self.ns).map_err(socket_err)?)
        } else {
            None
        };
        let index = match (veth.container_index, inner.as_mut()) {
            (Some(i), _) => i,
            (None, Some(h)) => {
                h.require_link(&att.ifname)
                    .map_err(|e| BridgeError::netlink("failed to retrieve link", e))?
                    .index
            }
            (None, None) => 0,
        };
        if !conf.is_layer3()
            && let Some(h) = inner.as_mut()
        {
            // L2: the container end only needs to be up.
            h.set_up(index).map_err(|e| {
                BridgeError::netlink(format!("failed to set {} up", go::quote(&att.ifname)), e)
            })?;
        }
        Ok(Plumbed { veth, inner, index })
    }

    /// Gateway addresses on the bridge (or on `<bridge>.<vlan>`), then forwarding.
    fn set_gateways(
        &mut self,
        gateways: &[(IpFamily, Vec<IpNet>)],
        result: &mut CniResult,
    ) -> Result<(), BridgeError> {
        let conf = self.conf;
        let mut vlan_iface: Option<Link> = None;
        for (family, gws) in gateways {
            for gw in gws {
                match conf.vlan {
                    Some(vlan) => {
                        let link = match &vlan_iface {
                            Some(l) => l.clone(),
                            None => {
                                let l = host::ensure_vlan_interface(
                                    self.host,
                                    &self.bridge.link,
                                    vlan,
                                    conf.preserve_default_vlan,
                                )
                                .map_err(|e| gateway_error("failed to create vlan interface", e))?;
                                result.interfaces.push(Interface {
                                    name: l.name.clone(),
                                    mac: l.mac.map(|m| mac::format(&m)).unwrap_or_default(),
                                    ..Default::default()
                                });
                                vlan_iface = Some(l.clone());
                                l
                            }
                        };
                        host::ensure_addr(self.host, &link, *gw, conf.force_address).map_err(
                            |e| {
                                gateway_error(
                                    "failed to set vlan interface for bridge with addr",
                                    e,
                                )
                            },
                        )?;
                    }
                    None => {
                        let link = self.bridge.link.clone();
                        host::ensure_addr(self.host, &link, *gw, conf.force_address)
                            .map_err(|e| gateway_error("failed to set bridge addr", e))?;
                    }
                }
            }
            if !gws.is_empty() {
                host::enable_forwarding(self.host, *family)?;
            }
        }
        Ok(())
    }
}

fn gateway_error(context: &str, source: BridgeError) -> BridgeError {
    BridgeError::Gateway {
        context: context.to_owned(),
        source: Box::new(source),
    }
}

/// The reference's `calcGateways`: every IP refers to interface 2; with `isGateway` a missing
/// gateway becomes the subnet's first address; with `isDefaultGateway` a default route via the
/// gateway is added per family unless IPAM returned one with a gateway. Returns the gateway
/// addresses (with the IP's prefix) per family.
pub fn calc_gateways(result: &mut CniResult, conf: &BridgeConf) -> Vec<(IpFamily, Vec<IpNet>)> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    let mut default_found = [false, false];
    for i in 0..result.ips.len() {
        let ip = &mut result.ips[i];
        let (family, slot) = match ip.address.addr() {
            IpAddr::V4(_) => (IpFamily::V4, 0),
            IpAddr::V6(_) => (IpFamily::V6, 1),
        };
        ip.interface = Some(2);
        if ip.gateway.is_none() && conf.is_gateway {
            ip.gateway = Some(host::default_gateway(&ip.address));
        }
        let gateway = ip.gateway;
        let prefix = ip.address.prefix_len();
        if conf.is_default_gateway && !default_found[slot] {
            let default = match family {
                IpFamily::V4 => IpNet::new(IpAddr::V4(0.into()), 0),
                IpFamily::V6 => IpNet::new(IpAddr::V6(0.into()), 0),
            }
            .unwrap_or_default();
            let exists = result
                .routes
                .iter()
                .any(|r| r.gw.is_some() && r.dst == default);
            if !exists {
                result.routes.push(Route::new(default, gateway));
            }
            default_found[slot] = true;
        }
        if conf.is_gateway
            && let Some(gw) = gateway
            && let Ok(net) = IpNet::new(gw, prefix)
        {
            match family {
                IpFamily::V4 => v4.push(net),
                IpFamily::V6 => v6.push(net),
            }
        }
    }
    vec![(IpFamily::V4, v4), (IpFamily::V6, v6)]
}

/// Undoes `steps` in reverse; returns what could not be undone.
fn undo(
    conf: &BridgeConf,
    att: &Attachment,
    deps: &mut Deps,
    host: &mut Handle,
    steps: Vec<Step>,
) -> Vec<BridgeError> {
    let mut errs = Vec::new();
    // Reverse order, but IPAM last: an address is released only once no device holds it.
    let (ipam, others): (Vec<Step>, Vec<Step>) =
        steps.into_iter().partition(|s| matches!(s, Step::Ipam));
    for step in others.into_iter().rev().chain(ipam) {
        let r = match step {
            Step::Masq { backend, ips } => {
                masq::apply::undo_masq(&mut *deps.firewall, backend, conf, att, &ips)
            }
            Step::Ipam => match &conf.ipam_type {
                Some(ipam) => delegate::del(&*deps.exec, ipam, &conf.raw, &att.ipam_env())
                    .map_err(BridgeError::Ipam),
                None => Ok(()),
            },
            Step::SpoofCheck => spoofchk::apply::teardown(&mut *deps.firewall, att, None),
            Step::Veth { index } => match host.delete_link(index) {
                Ok(()) => Ok(()),
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => Err(BridgeError::netlink("failed to delete the veth pair", e)),
            },
        };
        if let Err(e) = r {
            errs.push(e);
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni_types::IpConfig;

    fn conf(extra: &str) -> BridgeConf {
        BridgeConf::parse(
            format!(r#"{{"cniVersion":"1.0.0","name":"n","type":"bridge"{extra}}}"#).as_bytes(),
            "",
        )
        .unwrap()
    }

    fn result(ips: &[(&str, Option<&str>)], routes: &[(&str, Option<&str>)]) -> CniResult {
        CniResult {
            ips: ips
                .iter()
                .map(|(a, g)| IpConfig {
                    interface: None,
                    address: a.parse().unwrap(),
                    gateway: g.map(|g| g.parse().unwrap()),
                })
                .collect(),
            routes: routes
                .iter()
                .map(|(d, g)| Route::new(d.parse().unwrap(), g.map(|g| g.parse().unwrap())))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn gateways_default_to_network_plus_one() {
        let mut r = result(
            &[
                ("10.1.2.5/24", None),
                ("2001:db8::5/64", Some("2001:db8::fe")),
            ],
            &[],
        );
        let gws = calc_gateways(&mut r, &conf(r#","isGateway":true"#));
        assert_eq!(r.ips[0].gateway, Some("10.1.2.1".parse().unwrap()));
        assert!(r.ips.iter().all(|ip| ip.interface == Some(2)));
        assert_eq!(gws[0].1, vec!["10.1.2.1/24".parse::<IpNet>().unwrap()]);
        assert_eq!(gws[1].1, vec!["2001:db8::fe/64".parse::<IpNet>().unwrap()]);
        assert!(r.routes.is_empty());
    }

    #[test]
    fn no_gateway_without_is_gateway() {
        let mut r = result(&[("10.1.2.5/24", None)], &[]);
        let gws = calc_gateways(&mut r, &conf(""));
        assert_eq!(r.ips[0].gateway, None);
        assert!(gws.iter().all(|(_, g)| g.is_empty()));
    }

    #[test]
    fn default_routes_per_family() {
        let mut r = result(
            &[
                ("10.1.2.5/24", None),
                ("10.1.3.5/24", None),
                ("fd00::5/64", None),
            ],
            &[("0.0.0.0/0", None)],
        );
        calc_gateways(&mut r, &conf(r#","isDefaultGateway":true"#));
        let routes: Vec<String> = r
            .routes
            .iter()
            .map(|r| format!("{} {:?}", r.dst, r.gw))
            .collect();
        // IPAM's default route has no gateway, so ours is added (once per family).
        assert_eq!(
            routes,
            vec![
                "0.0.0.0/0 None".to_string(),
                "0.0.0.0/0 Some(10.1.2.1)".to_string(),
                "::/0 Some(fd00::1)".to_string()
            ]
        );
        let mut r = result(
            &[("10.1.2.5/24", None)],
            &[("0.0.0.0/0", Some("10.1.2.254"))],
        );
        calc_gateways(&mut r, &conf(r#","isDefaultGateway":true"#));
        assert_eq!(
            r.routes.len(),
            1,
            "IPAM's default route with a gateway wins"
        );
    }
}
