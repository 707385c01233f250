//! Ours against the Go reference `static` (Debian v1.1.1 in /usr/lib/cni): the same input
//! (config, `CNI_ARGS`, `args`, `runtimeConfig`) gives the same JSON at every version both
//! support, and the same error message when the input is refused. Error codes differ on
//! purpose (the reference reports 999 for everything; ours 4, 6 or 7), and for JSON type
//! errors only the refusal is compared (Go's decoder words them its own way).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use cni_testkit::cni_types::Version;
use cni_testkit::runner::with_prev_result;
use cni_testkit::{Attachment, Invocation, PluginRunner, TempNetns, require_root};
use serde_json::{Value, json};

fn go() -> PathBuf {
    PathBuf::from("/usr/lib/cni/static")
}

fn ours() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_static"))
}

/// `v` without an empty `dns` object (Go always prints one; we omit it from 1.0.0 on).
fn normalize(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut()
        && o.get("dns") == Some(&json!({}))
    {
        o.remove("dns");
    }
    v
}

/// What one plugin made of one input.
#[derive(Debug, PartialEq)]
enum Outcome {
    Result(Value),
    Refused { code: u64, msg: String },
}

fn call(p: &PluginRunner, verb: &str, conf: &Value, att: &Attachment) -> Outcome {
    let out = p.invoke(&Invocation::new(verb, conf, Some(att))).unwrap();
    let text = if out.stdout.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: not JSON ({e}): {}",
                p.binary().display(),
                out.stdout_text()
            )
        })
    };
    if out.status.success() {
        Outcome::Result(normalize(text))
    } else {
        Outcome::Refused {
            code: text["code"].as_u64().unwrap(),
            msg: text["msg"].as_str().unwrap().to_string(),
        }
    }
}

struct Case {
    name: &'static str,
    ipam: Value,
    /// Extra top-level keys (`args`, `runtimeConfig`).
    top: Value,
    cni_args: &'static str,
    /// A JSON type error: only "both refuse" is compared.
    type_error: bool,
}

fn case(name: &'static str, ipam: Value) -> Case {
    Case {
        name,
        ipam,
        top: json!({}),
        cni_args: "",
        type_error: false,
    }
}

fn full_ipam() -> Value {
    json!({"type": "static",
        "addresses": [{"address": "10.10.0.1/24", "gateway": "10.10.0.254"},
                      {"address": "3ffe:ffff:0:01ff::1/64", "gateway": "3ffe:ffff:0::1"}],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.10.5.1"},
                   {"dst": "3ffe:ffff:0:01ff::1/64"}],
        "dns": {"nameservers": ["8.8.8.8"], "domain": "example.com", "search": ["example.com"]}})
}

fn cases() -> Vec<Case> {
    let one = |a: &str| json!({"type": "static", "addresses": [{"address": a}]});
    vec![
        case("full", full_ipam()),
        Case {
            cni_args: "IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.20.0.7/16, 2001:db8::7/64;GATEWAY=10.20.0.1,2001:db8::1",
            ..case("cni args ip list and gateways", json!({"type": "static"}))
        },
        Case {
            cni_args: "IP=10.10.0.7/24;GATEWAY=10.10.0.9",
            ..case("gateway never applies to ipam.addresses", full_ipam())
        },
        Case {
            top: json!({"args": {"cni": {"ips": ["10.99.0.2/24", "2001:db8::2/64"]}}}),
            cni_args: "IP=10.10.0.7/24",
            ..case("args.cni.ips replace", full_ipam())
        },
        Case {
            top: json!({"args": {"cni": {"ips": ["10.99.0.2/24"]}},
                        "runtimeConfig": {"ips": ["10.88.0.2/16"]}}),
            ..case("runtimeConfig.ips replace", full_ipam())
        },
        Case {
            top: json!({"args": {"cni": {"ips": []}}, "runtimeConfig": {"ips": []}}),
            ..case("empty lists replace nothing", full_ipam())
        },
        Case {
            top: json!({"Args": {"CNI": {"IPs": ["10.98.0.2/24"]}}}),
            ..case(
                "capitalised keys",
                json!({"Type": "static",
                    "Addresses": [{"ADDRESS": "10.1.0.5/24", "Gateway": "10.1.0.1"}],
                    "Routes": [{"Dst": "0.0.0.0/0", "GW": "10.1.0.1"}],
                    "DNS": {"Nameservers": ["1.1.1.1"]}}),
            )
        },
        Case {
            top: json!({"RuntimeConfig": {"IPS": ["10.97.0.2/24"]}}),
            ..case("capitalised runtimeConfig", full_ipam())
        },
        case(
            "routes and dns only",
            json!({"type": "static", "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}]}),
        ),
        case(
            "two addresses of a family",
            json!({"type": "static", "addresses": [{"address": "10.1.0.5/24"}, {"address": "10.2.0.5/24"}]}),
        ),
        case("ipv4-mapped", one("::ffff:10.1.0.5/120")),
        Case {
            cni_args: "IP=10.2.0.5/24;GATEWAY=::ffff:10.2.0.1",
            ..case(
                "ipv4-mapped gateways",
                json!({"type": "static",
                    "addresses": [{"address": "10.1.0.5/24", "gateway": "::ffff:10.1.0.1"}]}),
            )
        },
        case("host bits and a zero-padded prefix", one("10.1.0.5/016")),
        case("long zero-padded prefix", one("10.1.0.5/0000000024")),
        case("leading-zero octet", one("010.1.0.5/24")),
        case(
            "empty gateway",
            json!({"type": "static", "addresses": [{"address": "10.1.0.5/24", "gateway": ""}]}),
        ),
        case("no ipam", Value::Null),
        case("address without prefix", one("10.1.0.5")),
        case(
            "empty address",
            json!({"type": "static", "addresses": [{"gateway": "10.1.0.1"}]}),
        ),
        case("bad prefix", one("10.1.0.5/33")),
        case(
            "bad config gateway",
            json!({"type": "static", "addresses": [{"address": "10.1.0.5/24", "gateway": "10.1.0"}]}),
        ),
        Case {
            cni_args: "IP=10.1.0.5",
            ..case("cni args ip without prefix", full_ipam())
        },
        Case {
            cni_args: "IP=10.1.0.5/24,",
            ..case("cni args empty ip item", full_ipam())
        },
        Case {
            cni_args: "IP=10.1.0.5/24;GATEWAY=10.1.0.1, x",
            ..case("cni args bad gateway", full_ipam())
        },
        Case {
            cni_args: "K8S_POD_NAME=p",
            ..case("unknown cni args", full_ipam())
        },
        Case {
            cni_args: "IP",
            ..case("cni args without =", full_ipam())
        },
        Case {
            top: json!({"args": {"cni": {"ips": ["10.99.0.2"]}}, "runtimeConfig": {"ips": ["10.88.0.2/16"]}}),
            ..case("args.cni.ips checked although replaced", full_ipam())
        },
        Case {
            top: json!({"runtimeConfig": {"ips": ["nope"]}}),
            ..case("bad runtimeConfig.ips", full_ipam())
        },
        Case {
            top: json!({"args": {"cni": {"ips": "10.99.0.2/24"}}}),
            type_error: true,
            ..case("args.cni.ips not a list", full_ipam())
        },
        Case {
            type_error: true,
            ..case(
                "bad route",
                json!({"type": "static", "routes": [{"dst": "nope"}]}),
            )
        },
        Case {
            type_error: true,
            ..case(
                "addresses not a list",
                json!({"type": "static", "addresses": "10.1.0.5/24"}),
            )
        },
    ]
}

fn conf(v: Version, c: &Case) -> Value {
    let mut conf = json!({"cniVersion": v, "name": "staticnet", "type": "bridge", "ipam": c.ipam});
    if c.ipam.is_null() {
        conf.as_object_mut().unwrap().remove("ipam");
    }
    for (k, val) in c.top.as_object().unwrap() {
        conf[k] = val.clone();
    }
    conf
}

fn runners(node: &TempNetns) -> Option<(PluginRunner, PluginRunner)> {
    if !go().is_file() && !cni_testkit::privilege::skip_or_fail("no Go static in /usr/lib/cni") {
        return None;
    }
    let r = |b: PathBuf| PluginRunner::new(b).in_netns(node).unwrap();
    Some((r(go()), r(ours())))
}

#[test]
fn same_results_and_refusals_as_the_go_static() {
    if !require_root() {
        return;
    }
    let node = TempNetns::new("node").unwrap();
    let pod = TempNetns::new("pod").unwrap();
    let Some((theirs, mine)) = runners(&node) else {
        return;
    };
    let go_versions = theirs.version(Version::V1_0_0).unwrap().supported_versions;
    let mut compared = 0;
    for c in cases() {
        for v in Version::ALL.into_iter().filter(|v| go_versions.contains(v)) {
            let att = Attachment::new("ctr", pod.path(), "eth0").with_args(c.cni_args);
            let conf = conf(v, &c);
            let (g, o) = (
                call(&theirs, "ADD", &conf, &att),
                call(&mine, "ADD", &conf, &att),
            );
            match (&g, &o) {
                (Outcome::Result(_), Outcome::Result(_)) => assert_eq!(o, g, "{} at {v}", c.name),
                (Outcome::Refused { msg: gm, .. }, Outcome::Refused { code, msg: om }) => {
                    assert!(
                        matches!(code, 4 | 6 | 7 | 999),
                        "{} at {v}: code {code}",
                        c.name
                    );
                    if !c.type_error {
                        assert_eq!(om, gm, "{} at {v}", c.name);
                    }
                }
                _ => panic!("{} at {v}: Go {g:?}, ours {o:?}", c.name),
            }
            compared += 1;
        }
    }
    assert!(compared > 100);
}

#[test]
fn check_agrees_with_the_go_static_except_for_a_missing_address() {
    if !require_root() {
        return;
    }
    let node = TempNetns::new("node").unwrap();
    let pod = TempNetns::new("pod").unwrap();
    let Some((theirs, mine)) = runners(&node) else {
        return;
    };
    let base = conf(Version::V1_0_0, &case("full", full_ipam()));
    let att = Attachment::new("ctr", pod.path(), "eth0");
    let res = mine.add(&base, &att).unwrap();
    let good = with_prev_result(&base, &res).unwrap();
    for p in [&theirs, &mine] {
        assert_eq!(call(p, "CHECK", &good, &att), Outcome::Result(Value::Null));
        assert!(matches!(
            call(p, "CHECK", &base, &att),
            Outcome::Refused { msg, .. } if msg == "Required prevResult missing"
        ));
    }
    let mut other_gw = good.clone();
    other_gw["prevResult"]["ips"][0]["gateway"] = json!("10.10.0.1");
    let g = call(&theirs, "CHECK", &other_gw, &att);
    let o = call(&mine, "CHECK", &other_gw, &att);
    let Outcome::Refused { msg, .. } = &o else {
        panic!("{o:?}");
    };
    assert_eq!(
        msg,
        "static: Failed to match addr 10.10.0.1 on interface eth0"
    );
    assert!(
        matches!(&g, Outcome::Refused { msg: gm, .. } if gm == msg),
        "{g:?}"
    );
    // A configured address missing from prevResult: the reference passes, ours refuses.
    let mut missing = good.clone();
    missing["prevResult"]["ips"]
        .as_array_mut()
        .unwrap()
        .remove(1);
    assert_eq!(
        call(&theirs, "CHECK", &missing, &att),
        Outcome::Result(Value::Null)
    );
    assert!(matches!(
        call(&mine, "CHECK", &missing, &att),
        Outcome::Refused { msg, .. } if msg.contains("not found in prevResult")
    ));
}
