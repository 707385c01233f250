#![no_main]
//! host-local's config: the first line is CNI_ARGS, the rest the network config. Parsing never
//! panics; every range set hands out only addresses it contains, and the round robin starts
//! anywhere without panicking.
use cni_ipam_hostlocal::{Config, Location};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (args, stdin) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    let Ok(args) = std::str::from_utf8(args) else {
        return;
    };
    let _ = Location::parse(stdin);
    let Ok(conf) = Config::parse(stdin, args) else {
        return;
    };
    let _ = conf.location();
    for set in &conf.ranges {
        let _ = set.to_string();
        let first: Vec<_> = set.iter_from(None).take(3).map(|(ip, _)| ip).collect();
        for ip in &first {
            assert!(set.contains(*ip), "{ip} handed out by {set} it does not contain");
        }
        if let Some(last) = first.last() {
            for (ip, _) in set.iter_from(Some(*last)).take(3) {
                assert!(set.contains(ip));
            }
        }
    }
    for ip in &conf.requested {
        let _ = conf.ranges.iter().any(|s| s.contains(*ip));
    }
});
