//! The verbs: [`add`] builds the result from the configuration, [`check`] compares it with
//! `prevResult`. DEL, GC and STATUS have nothing to do: static allocates nothing.

use cni_types::{CniResult, IpConfig, Version};

use crate::config::StaticConf;
use crate::error::StaticError;

/// ADD: the configured addresses (with their gateways), `routes` and `dns`, as an IPAM result
/// (no interfaces; the calling plugin assigns the addresses to its interface).
pub fn add(conf: &StaticConf) -> CniResult {
    CniResult {
        cni_version: Version::CURRENT,
        interfaces: Vec::new(),
        ips: conf
            .addresses
            .iter()
            .map(|a| IpConfig {
                interface: None,
                address: a.address,
                gateway: a.gateway,
            })
            .collect(),
        routes: conf.routes.clone(),
        dns: conf.dns.clone(),
    }
}

/// CHECK: every configured address is in `prev` (compared by IP), with the configured
/// gateway when one is configured.
pub fn check(conf: &StaticConf, prev: &CniResult, ifname: &str) -> Result<(), StaticError> {
    for a in &conf.addresses {
        let ip = a.address.addr();
        let Some(found) = prev.ips.iter().find(|p| p.address.addr() == ip) else {
            return Err(StaticError::Missing {
                ip,
                ifname: ifname.into(),
            });
        };
        if a.gateway.is_some() && a.gateway != found.gateway {
            return Err(StaticError::Mismatch {
                ip,
                ifname: ifname.into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(json: &str) -> StaticConf {
        StaticConf::parse(json.as_bytes(), "").unwrap()
    }

    const CONF: &str = r#"{"cniVersion":"1.0.0","name":"n","ipam":{"type":"static",
        "addresses":[{"address":"10.10.0.1/24","gateway":"10.10.0.254"},{"address":"3ffe:ffff:0:01ff::1/64"}]}}"#;

    #[test]
    fn check_accepts_the_add_result() {
        let c = conf(CONF);
        check(&c, &add(&c), "eth0").unwrap();
    }

    #[test]
    fn check_fails_on_another_gateway_or_a_missing_address() {
        let c = conf(CONF);
        let mut r = add(&c);
        r.ips[0].gateway = Some("10.10.0.1".parse().unwrap());
        assert_eq!(
            check(&c, &r, "eth0").unwrap_err().to_string(),
            "static: Failed to match addr 10.10.0.1 on interface eth0"
        );
        // No gateway configured for the IPv6 address: any gateway matches.
        let mut r = add(&c);
        r.ips[1].gateway = Some("3ffe:ffff:0:1ff::fe".parse().unwrap());
        check(&c, &r, "eth0").unwrap();
        let mut r = add(&c);
        r.ips.remove(1);
        assert_eq!(
            check(&c, &r, "net1").unwrap_err().to_string(),
            "static: addr 3ffe:ffff:0:1ff::1 not found in prevResult for interface net1"
        );
    }
}
