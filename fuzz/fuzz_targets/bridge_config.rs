#![no_main]
//! The bridge's config: the first line is CNI_ARGS, the rest the network config. Parsing and
//! every accessor ADD uses never panic; the masquerade plans for the previous result's
//! addresses build or fail cleanly, and print.
use cni_bridge::{BridgeConf, calc_gateways, masq};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (args, stdin) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    let Ok(args) = std::str::from_utf8(args) else {
        return;
    };
    let Ok(conf) = BridgeConf::parse(stdin, args) else {
        return;
    };
    let _ = conf.container_mac();
    let _ = conf.masq_backend();
    let _ = conf.trunk_vlans();
    let _ = conf.vlan_filtering();
    if let Ok(Some(mut result)) = conf.prev_result() {
        let _ = calc_gateways(&mut result, &conf);
        let ips: Vec<_> = result.ips.iter().map(|ip| ip.address).collect();
        if let Ok(plans) = masq::iptables_setup(&conf.name, "fuzz-container", &ips) {
            for p in plans {
                assert!(!p.to_string().is_empty());
            }
        }
        let who = masq::NftOwner {
            network: &conf.name,
            ifname: "eth0",
            container_id: "fuzz-container",
        };
        let entries = masq::nft_entries(&ips);
        let _ = masq::nft_add_plan(&who, &entries).to_string();
        for e in &entries {
            let _ = masq::nft_skeleton_plan(&who, e).to_string();
        }
    }
});
