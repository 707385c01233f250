//! The verbs: [`add`], [`check`], [`del`] on the container's namespace, and their rules over
//! any [`Lo`] ([`add_with`], [`check_with`], [`del_with`]).

use std::net::IpAddr;
use std::path::Path;

use cni_types::ipnet::IpNet;
use cni_types::{CniResult, Interface, IpConfig, Version};

use crate::config::LoopbackConf;
use crate::error::LoopbackError;
use crate::lo::{KernelLo, LO, Lo};

/// The MAC the reference reports for `lo`.
pub const LO_MAC: &str = "00:00:00:00:00:00";

/// Whether `ip` may sit on `lo`: 127.0.0.0/8, ::1, or an IPv4-mapped 127.0.0.0/8 (Go's
/// `net.IP.IsLoopback`, which the reference uses).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|m| m.is_loopback()),
    }
}

/// The result the reference builds when there is no `prevResult`: `lo` in `sandbox`, and the
/// first IPv4 and the first IPv6 address found on it.
pub fn lo_result(version: Version, sandbox: &str, addrs: &[IpNet]) -> CniResult {
    let first = |v4: bool| {
        addrs
            .iter()
            .find(|a| a.addr().is_ipv4() == v4)
            .map(|a| IpConfig {
                interface: Some(0),
                address: *a,
                gateway: None,
            })
    };
    CniResult {
        cni_version: version,
        interfaces: vec![Interface {
            name: LO.into(),
            mac: LO_MAC.into(),
            sandbox: sandbox.into(),
            ..Default::default()
        }],
        ips: first(true).into_iter().chain(first(false)).collect(),
        ..Default::default()
    }
}

/// ADD over any [`Lo`]: bring it up; refuse a non-loopback address on it; the result is
/// `prevResult` unchanged when there is one, else [`lo_result`]. The result must be printable
/// in `conf.version`. On failure `lo` is set down again if ADD brought it up.
pub fn add_with(
    lo: &mut dyn Lo,
    sandbox: &str,
    conf: &LoopbackConf,
) -> Result<CniResult, LoopbackError> {
    let was_up = lo.link()?.up;
    if !was_up {
        lo.set_up(true)?;
    }
    let outcome = report(lo, sandbox, conf);
    if outcome.is_err() && !was_up {
        let _ = lo.set_up(false);
        let _ = lo.remove_addr(kernel_v4());
    }
    outcome
}

/// The address the kernel gives `lo` when it first comes up (127.0.0.1/8); unlike ::1 it stays
/// when `lo` goes down.
fn kernel_v4() -> IpNet {
    IpNet::new(IpAddr::from([127, 0, 0, 1]), 8).unwrap_or_default()
}

/// ADD's second half, once `lo` is up: its addresses, and the result to print.
fn report(lo: &mut dyn Lo, sandbox: &str, conf: &LoopbackConf) -> Result<CniResult, LoopbackError> {
    let addrs = lo.addrs()?;
    if let Some(bad) = addrs.iter().find(|a| !is_loopback(a.addr())) {
        return Err(LoopbackError::NonLoopbackAddress(bad.addr()));
    }
    let result = match &conf.prev_result {
        Some(prev) => prev.clone(),
        None => lo_result(conf.version, sandbox, &addrs),
    };
    result
        .to_versioned(conf.version)
        .map_err(LoopbackError::Result)?;
    Ok(result)
}

/// The addresses CHECK demands on `lo`: those `prevResult` lists on an interface named `lo`,
/// else the kernel's own (127.0.0.1/8, and ::1/128 when IPv6 is enabled on `lo`).
pub fn expected_addrs(prev: Option<&CniResult>, ipv6: bool) -> Vec<IpNet> {
    let listed: Vec<IpNet> = prev
        .map(|r| {
            r.ips
                .iter()
                .filter(|ip| {
                    ip.interface
                        .and_then(|i| r.interfaces.get(i))
                        .is_some_and(|i| i.name == LO)
                })
                .map(|ip| ip.address)
                .collect()
        })
        .unwrap_or_default();
    if !listed.is_empty() {
        return listed;
    }
    let mut out = vec![kernel_v4()];
    if ipv6 {
        out.push(IpNet::new(std::net::Ipv6Addr::LOCALHOST.into(), 128).unwrap_or_default());
    }
    out
}

/// CHECK over any [`Lo`]: `lo` is up and carries every address of [`expected_addrs`].
pub fn check_with(lo: &mut dyn Lo, prev: Option<&CniResult>) -> Result<(), LoopbackError> {
    let link = lo.link()?;
    if !link.up {
        return Err(LoopbackError::Down);
    }
    let have = lo.addrs()?;
    match expected_addrs(prev, link.ipv6)
        .into_iter()
        .find(|want| !have.contains(want))
    {
        Some(missing) => Err(LoopbackError::MissingAddress(missing)),
        None => Ok(()),
    }
}

/// DEL over any [`Lo`]: put `lo` back as a new namespace has it: down (the kernel then drops
/// ::1) and without the 127.0.0.1/8 that coming up gave it (the kernel keeps that one on a down
/// `lo`; the reference leaves it). Nothing to do when it already is so.
pub fn del_with(lo: &mut dyn Lo) -> Result<(), LoopbackError> {
    if lo.link()?.up {
        lo.set_up(false)?;
    }
    lo.remove_addr(kernel_v4())
}

/// ADD: bring up `lo` in the namespace at `netns` (see [`add_with`]).
pub fn add(netns: &Path, conf: &LoopbackConf) -> Result<CniResult, LoopbackError> {
    add_with(
        &mut KernelLo::open(netns)?,
        &netns.display().to_string(),
        conf,
    )
}

/// CHECK: `lo` in `netns` is up with its addresses (see [`check_with`]).
pub fn check(netns: &Path, conf: &LoopbackConf) -> Result<(), LoopbackError> {
    check_with(&mut KernelLo::open(netns)?, conf.prev_result.as_ref())
}

/// DEL: set `lo` down in `netns`. Succeeds without a namespace (`None`: `CNI_NETNS` empty)
/// and when the namespace no longer exists.
pub fn del(netns: Option<&Path>) -> Result<(), LoopbackError> {
    let Some(netns) = netns else {
        return Ok(());
    };
    match KernelLo::open(netns) {
        Ok(mut lo) => del_with(&mut lo),
        Err(LoopbackError::Netns { source, .. }) if source.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lo::LinkState;

    /// A recording `lo` that behaves as the kernel's.
    #[derive(Default)]
    struct FakeLo {
        up: bool,
        ipv6: bool,
        /// Coming up adds 127.0.0.1/8 (the kernel does for a loopback device).
        adds_v4_when_up: bool,
        /// Addresses present whatever the state (IPv4 stays when `lo` goes down).
        v4: Vec<IpNet>,
        /// Addresses present only while up (the kernel drops ::1 on down).
        v6_when_up: Vec<IpNet>,
        calls: Vec<String>,
    }

    impl FakeLo {
        /// `lo` of a new namespace: down, no address.
        fn fresh() -> Self {
            FakeLo {
                ipv6: true,
                adds_v4_when_up: true,
                v6_when_up: vec![net("::1/128")],
                ..Default::default()
            }
        }

        /// `lo` of a namespace where something already brought it up.
        fn already_up() -> Self {
            let mut lo = FakeLo::fresh();
            lo.set_up(true).unwrap();
            lo.calls.clear();
            lo
        }
    }

    impl Lo for FakeLo {
        fn link(&mut self) -> Result<LinkState, LoopbackError> {
            Ok(LinkState {
                up: self.up,
                ipv6: self.ipv6,
            })
        }
        fn addrs(&mut self) -> Result<Vec<IpNet>, LoopbackError> {
            let mut a = self.v4.clone();
            if self.up && self.ipv6 {
                a.extend(self.v6_when_up.iter().copied());
            }
            Ok(a)
        }
        fn set_up(&mut self, up: bool) -> Result<(), LoopbackError> {
            self.calls.push(if up { "up" } else { "down" }.into());
            self.up = up;
            let v4 = net("127.0.0.1/8");
            if up && self.adds_v4_when_up && !self.v4.contains(&v4) {
                self.v4.insert(0, v4);
            }
            Ok(())
        }
        fn remove_addr(&mut self, addr: IpNet) -> Result<(), LoopbackError> {
            if self.v4.contains(&addr) {
                self.calls.push(format!("remove {addr}"));
                self.v4.retain(|a| *a != addr);
            }
            Ok(())
        }
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn conf(v: Version) -> LoopbackConf {
        LoopbackConf {
            version: v,
            prev_result: None,
        }
    }

    #[test]
    fn add_brings_lo_up_and_reports_its_addresses() {
        let mut lo = FakeLo::fresh();
        let r = add_with(&mut lo, "/run/netns/p", &conf(Version::V1_0_0)).unwrap();
        assert_eq!(lo.calls, ["up"]);
        assert_eq!(r.interfaces.len(), 1);
        assert_eq!(r.interfaces[0].name, "lo");
        assert_eq!(r.interfaces[0].mac, LO_MAC);
        assert_eq!(r.interfaces[0].sandbox, "/run/netns/p");
        let ips: Vec<String> = r.ips.iter().map(|i| i.address.to_string()).collect();
        assert_eq!(ips, ["127.0.0.1/8", "::1/128"]);
        assert!(r.ips.iter().all(|i| i.interface == Some(0)));
    }

    #[test]
    fn add_on_a_lo_already_up_changes_nothing() {
        let mut lo = FakeLo::already_up();
        add_with(&mut lo, "/p", &conf(Version::V0_3_1)).unwrap();
        assert!(lo.calls.is_empty());
    }

    #[test]
    fn only_the_first_address_of_each_family_is_reported() {
        let mut lo = FakeLo::fresh();
        lo.v4.push(net("127.0.0.2/8"));
        lo.ipv6 = false;
        let r = add_with(&mut lo, "/p", &conf(Version::V1_1_0)).unwrap();
        let ips: Vec<String> = r.ips.iter().map(|i| i.address.to_string()).collect();
        assert_eq!(ips, ["127.0.0.1/8"]);
    }

    #[test]
    fn a_non_loopback_address_fails_add_and_lo_goes_back_down() {
        let mut lo = FakeLo::fresh();
        lo.v4.push(net("10.1.2.3/24"));
        let e = add_with(&mut lo, "/p", &conf(Version::V1_0_0)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "loopback interface found with non-loopback address \"10.1.2.3\""
        );
        // lo goes back as it was: down, without the address coming up gave it.
        assert_eq!(lo.calls, ["up", "down", "remove 127.0.0.1/8"]);
        assert_eq!(lo.v4, [net("10.1.2.3/24")]);
        // If lo was up before, ADD leaves it up.
        let mut lo = FakeLo::already_up();
        lo.v6_when_up.push(net("2001:db8::1/64"));
        assert!(add_with(&mut lo, "/p", &conf(Version::V1_0_0)).is_err());
        assert!(lo.calls.is_empty());
    }

    #[test]
    fn a_result_that_cannot_be_printed_undoes_add() {
        // No address at all cannot be printed as a 0.2.0 result.
        let mut lo = FakeLo {
            v4: Vec::new(),
            ipv6: false,
            ..FakeLo::default()
        };
        let e = add_with(&mut lo, "/p", &conf(Version::V0_2_0)).unwrap_err();
        assert_eq!(e.to_string(), "cannot convert: no valid IP addresses");
        assert_eq!(lo.calls, ["up", "down"]);
    }

    #[test]
    fn prev_result_is_passed_on_unchanged() {
        let prev = CniResult::from_slice(
            br#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/p"}],
                "ips":[{"interface":0,"address":"10.1.0.2/24","gateway":"10.1.0.1"}]}"#,
            None,
        )
        .unwrap();
        let mut lo = FakeLo::fresh();
        let c = LoopbackConf {
            version: Version::V1_0_0,
            prev_result: Some(prev.clone()),
        };
        assert_eq!(add_with(&mut lo, "/p", &c).unwrap(), prev);
        assert!(lo.up);
    }

    #[test]
    fn check_wants_lo_up_with_its_addresses() {
        let mut lo = FakeLo::fresh();
        assert!(matches!(
            check_with(&mut lo, None).unwrap_err(),
            LoopbackError::Down
        ));
        lo.set_up(true).unwrap();
        check_with(&mut lo, None).unwrap();
        lo.v4.clear();
        assert_eq!(
            check_with(&mut lo, None).unwrap_err().to_string(),
            "loopback interface lacks address 127.0.0.1/8"
        );
        // Without IPv6 on lo, ::1 is not expected.
        let mut lo = FakeLo::fresh();
        lo.ipv6 = false;
        lo.set_up(true).unwrap();
        check_with(&mut lo, None).unwrap();
    }

    #[test]
    fn check_verifies_what_add_reported() {
        let mut lo = FakeLo::fresh();
        let reported = add_with(&mut lo, "/p", &conf(Version::V1_0_0)).unwrap();
        check_with(&mut lo, Some(&reported)).unwrap();
        // ::1 vanishes (IPv6 disabled on lo after ADD): the reported address is missing.
        lo.ipv6 = false;
        assert_eq!(
            check_with(&mut lo, Some(&reported))
                .unwrap_err()
                .to_string(),
            "loopback interface lacks address ::1/128"
        );
        // A prevResult without lo (loopback chained after another plugin): the defaults.
        let other = CniResult::from_slice(
            br#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/p"}],
                "ips":[{"interface":0,"address":"10.1.0.2/24"}]}"#,
            None,
        )
        .unwrap();
        assert_eq!(
            expected_addrs(Some(&other), false),
            vec![net("127.0.0.1/8")]
        );
        check_with(&mut lo, Some(&other)).unwrap();
    }

    #[test]
    fn del_puts_lo_back_as_a_new_namespace_has_it_once() {
        let mut lo = FakeLo::fresh();
        add_with(&mut lo, "/p", &conf(Version::V1_0_0)).unwrap();
        del_with(&mut lo).unwrap();
        del_with(&mut lo).unwrap();
        assert_eq!(lo.calls, ["up", "down", "remove 127.0.0.1/8"]);
        assert!(!lo.up);
        assert_eq!(lo.addrs().unwrap(), []);
    }

    #[test]
    fn del_without_a_namespace_succeeds() {
        del(None).unwrap();
        del(Some(Path::new(
            "/run/netns/cni-loopback-test-does-not-exist",
        )))
        .unwrap();
    }

    /// The ADD result of a fresh namespace, exactly as the skel prints it for each version.
    #[test]
    fn golden_results_per_version() {
        let addrs = [net("127.0.0.1/8"), net("::1/128")];
        let v020 = "{\n    \"cniVersion\": \"V\",\n    \"ip4\": {\n        \"ip\": \"127.0.0.1/8\"\n    },\n    \"ip6\": {\n        \"ip\": \"::1/128\"\n    },\n    \"dns\": {}\n}";
        let interfaces = "    \"interfaces\": [\n        {\n            \"name\": \"lo\",\n            \"mac\": \"00:00:00:00:00:00\",\n            \"sandbox\": \"/run/netns/p\"\n        }\n    ],\n";
        let v040 = format!(
            "{{\n    \"cniVersion\": \"V\",\n{interfaces}    \"ips\": [\n        {{\n            \"version\": \"4\",\n            \"interface\": 0,\n            \"address\": \"127.0.0.1/8\"\n        }},\n        {{\n            \"version\": \"6\",\n            \"interface\": 0,\n            \"address\": \"::1/128\"\n        }}\n    ],\n    \"dns\": {{}}\n}}"
        );
        let v100 = format!(
            "{{\n    \"cniVersion\": \"V\",\n{interfaces}    \"ips\": [\n        {{\n            \"interface\": 0,\n            \"address\": \"127.0.0.1/8\"\n        }},\n        {{\n            \"interface\": 0,\n            \"address\": \"::1/128\"\n        }}\n    ]\n}}"
        );
        for v in Version::ALL {
            let want = match v.result_family() {
                cni_types::version::ResultFamily::V020 => v020.to_string(),
                cni_types::version::ResultFamily::V040 => v040.clone(),
                _ => v100.clone(),
            }
            .replace("\"V\"", &format!("\"{v}\""));
            let got = lo_result(v, "/run/netns/p", &addrs)
                .to_json_pretty(v)
                .unwrap();
            assert_eq!(got, want, "{v}");
        }
    }

    #[test]
    fn loopback_addresses() {
        for ok in ["127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ok.parse().unwrap()), "{ok}");
        }
        for bad in ["10.0.0.1", "::2", "fe80::1", "::ffff:10.0.0.1"] {
            assert!(!is_loopback(bad.parse().unwrap()), "{bad}");
        }
    }
}
