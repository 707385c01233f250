//! `add`: the result's wire shape per version and what it says exists in the kernel;
//! `add-existing-ifname`: ADD into a pod that already has `CNI_IFNAME` fails.

use cni_types::version::ResultFamily;
use cni_types::{CniResult, Version};
use serde_json::Value;

use crate::conformance::ctx::Ctx;
use crate::conformance::fixture::{Att, Fixture, NsMode, occupy_ifname};
use crate::conformance::judge::{
    R, expect_error, plugin_err, problems_to_result, run_failure, skip,
};
use crate::runner::Invocation;
use crate::snapshot::{Kind, Snapshot};

pub(in crate::conformance) fn check_add(ctx: &Ctx, v: Version) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    let (res, raw) = fx.add(&mut a).map_err(|e| plugin_err("ADD failed", &e))?;
    let mut problems = shape_problems(&raw, v, a.prev.as_ref());
    problems.extend(kernel_problems(&fx, &a, &res)?);
    fx.cleanup(&a);
    problems_to_result(problems)
}

/// The result must be in the exact wire shape of `v`.
fn shape_problems(raw: &Value, v: Version, prev: Option<&CniResult>) -> Vec<String> {
    let mut p = Vec::new();
    let got = raw.get("cniVersion").and_then(Value::as_str).unwrap_or("");
    if got != v.to_string() {
        p.push(format!("result cniVersion is {got:?}, want \"{v}\""));
    }
    let ips = raw.get("ips").and_then(Value::as_array);
    match v.result_family() {
        ResultFamily::V020 => {
            if raw.get("ip4").is_none() && raw.get("ip6").is_none() {
                p.push(format!("a {v} result needs ip4 or ip6"));
            }
            if raw.get("ips").is_some() || raw.get("interfaces").is_some() {
                p.push(format!(
                    "a {v} result has no ips or interfaces (that is the 0.3.0 shape)"
                ));
            }
        }
        family => {
            if raw.get("ip4").is_some() || raw.get("ip6").is_some() {
                p.push(format!("a {v} result has ips, not ip4/ip6"));
            }
            let n_if = raw
                .get("interfaces")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            for (i, ip) in ips.into_iter().flatten().enumerate() {
                let addr = ip.get("address").and_then(Value::as_str).unwrap_or("");
                let ver = ip.get("version").and_then(Value::as_str);
                match family {
                    ResultFamily::V040 => {
                        let want = if addr.contains(':') { "6" } else { "4" };
                        if ver != Some(want) {
                            p.push(format!("ips[{i}] ({addr}) has version {ver:?}, want \"{want}\" in a {v} result"));
                        }
                    }
                    _ => {
                        if ver.is_some() {
                            p.push(format!("ips[{i}] has a version field, removed in 1.0.0"));
                        }
                    }
                }
                if let Some(idx) = ip.get("interface")
                    && idx.as_u64().is_none_or(|n| n >= n_if as u64)
                {
                    p.push(format!(
                        "ips[{i}].interface {idx} is not an index into {n_if} interfaces"
                    ));
                }
            }
        }
    }
    if let Some(prev) = prev
        && let Ok(res) = CniResult::from_value(raw.clone(), Some(v))
    {
        for ip in &prev.ips {
            if !res.ips.iter().any(|r| r.address == ip.address) {
                p.push(format!("prevResult address {} is missing from the result (a chained plugin passes it on)", ip.address));
            }
        }
    }
    p
}

/// What the result says must exist in the kernel.
fn kernel_problems(fx: &Fixture<'_>, a: &Att, res: &CniResult) -> R<Vec<String>> {
    let mut p = Vec::new();
    let node = fx.snap_node()?;
    let pod = fx.snap_pod(a)?;
    let pod_path = a.pod_path.display().to_string();
    let pod_links_added = match (&a.base_pod, &pod) {
        (Some(b), Some(n)) => b.diff(n).added.iter().any(|i| i.kind == Kind::Link),
        _ => false,
    };
    let has = |s: &Snapshot, kind: Kind, pred: &dyn Fn(&str) -> bool| {
        s.items().iter().any(|i| i.kind == kind && pred(&i.text))
    };
    for iface in &res.interfaces {
        let named = |t: &str| t.split_whitespace().next() == Some(iface.name.as_str());
        if iface.sandbox.is_empty() {
            if !has(&node, Kind::Link, &named) {
                p.push(format!(
                    "host interface {:?} from the result is not in the node",
                    iface.name
                ));
            }
        } else {
            if iface.sandbox != pod_path {
                p.push(format!(
                    "interface {:?} has sandbox {:?}, want CNI_NETNS {pod_path:?}",
                    iface.name, iface.sandbox
                ));
            }
            if let Some(pod) = &pod
                && !has(pod, Kind::Link, &named)
            {
                p.push(format!(
                    "interface {:?} from the result is not in the pod",
                    iface.name
                ));
            }
        }
    }
    if let Some(pod) = &pod {
        for ip in &res.ips {
            let on = ip.interface.and_then(|i| res.interfaces.get(i));
            let want = ip.address.to_string();
            match on {
                Some(iface) if !iface.sandbox.is_empty() => {
                    let text = format!("{} {want}", iface.name);
                    if !has(pod, Kind::Addr, &|t| t == text) {
                        p.push(format!(
                            "address {want} is not on {:?} in the pod",
                            iface.name
                        ));
                    }
                }
                None if pod_links_added
                    && !has(pod, Kind::Addr, &|t| t.ends_with(&format!(" {want}"))) =>
                {
                    p.push(format!("address {want} is not on any link of the pod"));
                }
                _ => {}
            }
        }
        if pod_links_added {
            for r in &res.routes {
                let dst = format!(" {} ", r.dst.trunc());
                if !has(pod, Kind::Route, &|t| format!("{t} ").contains(&dst)) {
                    p.push(format!(
                        "route to {} from the result is not in the pod",
                        r.dst
                    ));
                }
            }
        }
    }
    Ok(p)
}

pub(in crate::conformance) fn check_add_existing_ifname(ctx: &Ctx, v: Version) -> R {
    let mut fx = Fixture::new(ctx, v)?;
    let mut a = fx.attach(None, |_| Ok(()))?;
    let res = fx.add_ok(&mut a)?;
    let creates = |r: &CniResult| {
        r.interfaces
            .iter()
            .any(|i| i.name == a.ifname && !i.sandbox.is_empty())
    };
    let own = creates(&res) && !a.prev.as_ref().is_some_and(creates);
    fx.cleanup(&a);
    if !own {
        return skip("the plugin does not create CNI_IFNAME in the pod");
    }
    let mut b = fx.attach(None, |pod| occupy_ifname(pod, "eth0"))?;
    let conf = fx.conf(ctx.idx, Some(&b), b.prev.as_ref())?;
    let out = fx
        .under_test()
        .invoke(&Invocation::new(
            "ADD",
            &conf,
            Some(&b.attachment(NsMode::Path)),
        ))
        .map_err(|e| run_failure("ADD", e))?;
    let ok = out.status.success();
    let verdict = expect_error(out, &[]);
    if ok {
        b.result = None;
    }
    fx.cleanup(&b);
    verdict
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn shapes_are_checked_per_version() {
        let r040 = json!({"cniVersion":"0.4.0","interfaces":[{"name":"eth0"}],
            "ips":[{"version":"4","interface":0,"address":"10.0.0.2/24"}]});
        assert!(shape_problems(&r040, Version::V0_4_0, None).is_empty());
        let p = shape_problems(&r040, Version::V1_0_0, None);
        assert_eq!(p.len(), 2, "{p:?}"); // cniVersion and the version field
        let bad_idx = json!({"cniVersion":"1.0.0","ips":[{"interface":1,"address":"10.0.0.2/24"}]});
        assert!(shape_problems(&bad_idx, Version::V1_0_0, None)[0].contains("not an index"));
        let r020 = json!({"cniVersion":"0.2.0","ip4":{"ip":"10.0.0.2/24"}});
        assert!(shape_problems(&r020, Version::V0_2_0, None).is_empty());
        assert!(!shape_problems(&r020, Version::V0_3_1, None).is_empty());
        let prev = CniResult::from_value(
            json!({"cniVersion":"1.0.0","ips":[{"address":"10.0.0.9/24"}]}),
            None,
        )
        .unwrap();
        let r = json!({"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]});
        assert!(shape_problems(&r, Version::V1_0_0, Some(&prev))[0].contains("prevResult"));
    }
}
