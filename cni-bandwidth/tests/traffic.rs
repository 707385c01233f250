//! Real traffic through our bandwidth plugin: TCP and UDP, to the pod and from it, measured
//! at the receiver. Ingress and egress get different rates (8 and 20 Mbit/s), so a swap of
//! the directions (upstream #202) would show; UDP from the pod (upstream #922) is measured
//! at the receiver. Unshaped before ADD and after DEL; bursts honoured.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::rate::{Proto, transfer};
use common::{NODE_IP, POD_IP, Pod, with_prev};
use serde_json::json;

const INGRESS: u64 = 8_000_000;
const EGRESS: u64 = 20_000_000;
const RUN: Duration = Duration::from_secs(3);
const UNTIL: Duration = Duration::from_millis(2750);

/// The four flows: (what, protocol, to the pod?, configured rate).
const FLOWS: [(&str, Proto, bool, u64); 4] = [
    ("tcp to the pod", Proto::Tcp, true, INGRESS),
    ("udp to the pod", Proto::Udp, true, INGRESS),
    ("tcp from the pod", Proto::Tcp, false, EGRESS),
    ("udp from the pod", Proto::Udp, false, EGRESS),
];

/// Measures one flow, the sender paced at four times `rate`; returns bits per second.
fn measure(p: &Pod, proto: Proto, to_pod: bool, rate: u64) -> f64 {
    let r = if to_pod {
        transfer(proto, &p.node, &p.pod, POD_IP, 4 * rate, RUN)
    } else {
        transfer(proto, &p.pod, &p.node, NODE_IP, 4 * rate, RUN)
    };
    r.steady(UNTIL)
}

fn assert_unshaped(p: &Pod, when: &str) {
    for (what, proto, to_pod, rate) in FLOWS {
        let got = measure(p, proto, to_pod, rate);
        println!("{when}: {what}: {:.2} Mbit/s", got / 1e6);
        assert!(
            got > 2.0 * rate as f64,
            "{when}: {what} at {:.2} Mbit/s: shaped to {} Mbit/s?",
            got / 1e6,
            rate / 1_000_000
        );
    }
}

#[test]
fn tcp_and_udp_are_shaped_both_ways_and_only_while_the_plugin_is_there() {
    let Some(p) = Pod::new() else { return };
    assert_unshaped(&p, "before ADD");

    let conf = p.conf(json!({"ingressRate": INGRESS, "ingressBurst": 80_000,
        "egressRate": EGRESS, "egressBurst": 160_000}));
    let r = p.ours().add(&conf, &p.att()).unwrap();
    for (what, proto, to_pod, rate) in FLOWS {
        let got = measure(&p, proto, to_pod, rate);
        let ratio = got / rate as f64;
        println!("shaped: {what}: {:.2} Mbit/s ({ratio:.2}x)", got / 1e6);
        assert!(
            (0.8..=1.2).contains(&ratio),
            "{what}: {:.2} Mbit/s is {ratio:.2}x the configured {} Mbit/s",
            got / 1e6,
            rate / 1_000_000
        );
    }

    p.ours().del(&with_prev(&conf, &r), &p.att()).unwrap();
    assert_unshaped(&p, "after DEL");
}

/// A bucket of 16 Mbit (2 MB) at 8 Mbit/s: in the first three seconds the pod receives the
/// bucket plus three seconds of the rate (about 5 MB), not just the rate's 3 MB.
#[test]
fn the_burst_passes_before_the_rate_holds() {
    let Some(p) = Pod::new() else { return };
    let burst_bits = 16_000_000u64;
    let conf = p.conf(json!({"ingressRate": INGRESS, "ingressBurst": burst_bits}));
    p.ours().add(&conf, &p.att()).unwrap();
    let r = transfer(
        Proto::Tcp,
        &p.node,
        &p.pod,
        POD_IP,
        4 * INGRESS,
        Duration::from_millis(3500),
    );
    let window = Duration::from_secs(3);
    let got = r.bytes_at(window) as f64;
    let want = (burst_bits / 8) as f64 + (INGRESS / 8) as f64 * window.as_secs_f64();
    let ratio = got / want;
    println!(
        "burst: {:.2} MB in 3 s, expected {:.2} MB ({ratio:.2}x)",
        got / 1e6,
        want / 1e6
    );
    assert!((0.8..=1.2).contains(&ratio), "{ratio:.2}x");
    // And the rate holds once the bucket is empty.
    let steady = r.bits_per_sec(Duration::from_millis(1500), window) / INGRESS as f64;
    assert!(
        (0.8..=1.2).contains(&steady),
        "after the burst: {steady:.2}x"
    );
    p.ours().del(&conf, &p.att()).unwrap();
}
