use super::*;
use crate::shaping::TokenBucket;

const TICK: f64 = 15.625;

#[track_caller]
fn golden(name: &str, got: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/plan/golden");
    cni_testkit::golden::assert_golden(&dir.join(name), got);
}

fn shaping(ingress: Option<(u64, u64)>, egress: Option<(u64, u64)>) -> Shaping {
    let tb = |(rate, burst)| TokenBucket { rate, burst };
    Shaping {
        ingress: ingress.map(tb),
        egress: egress.map(tb),
    }
}

#[test]
fn ifb_names_are_the_references() {
    // Recorded from the Go bandwidth v1.1.1 (network "bwnet", container "ctr1").
    assert_eq!(ifb_name("bwnet", "ctr1"), "bwpea62040b30ca");
    assert_eq!(ifb_name("bwnet", "ctr1").len(), 15);
}

#[test]
fn both_directions() {
    let p = Plan::new(
        &shaping(Some((8_000_000, 80_000)), Some((20_000_000, 160_000))),
        "bwnet",
        "ctr1",
        1500,
        TICK,
    );
    golden("both.txt", &p.dump(7, 9));
}

#[test]
fn ingress_only_has_no_ifb() {
    let p = Plan::new(
        &shaping(Some((8_000_000, 80_000)), None),
        "bwnet",
        "ctr1",
        1500,
        TICK,
    );
    assert!(p.egress.is_none());
    golden("ingress.txt", &p.dump(7, 0));
}

#[test]
fn egress_only_with_containerds_burst_and_a_64_bit_rate() {
    let p = Plan::new(
        &shaping(None, Some((40_000_000_000, u64::from(u32::MAX)))),
        "k8s-pod-network",
        "0123456789abcdef",
        1450,
        TICK,
    );
    golden("egress_rate64.txt", &p.dump(3, 4));
}
