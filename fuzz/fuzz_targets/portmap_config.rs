#![no_main]
//! portmap's config (CNI_IFNAME eth0): parsing never panics, and for the chosen container
//! addresses the iptables and nftables ADD plans build or fail cleanly, and print.
use cni_linux::firewall::Backend;
use cni_portmap::{PortmapConf, iptables, nftables};
use cni_types::Attachment;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for backend in [Backend::Iptables, Backend::Nftables] {
        let Ok(conf) = PortmapConf::parse(data, "eth0", &mut || backend) else {
            return;
        };
        let att = Attachment {
            container_id: "fuzz-container".into(),
            ifname: "eth0".into(),
        };
        for net in [conf.container_v4, conf.container_v6].into_iter().flatten() {
            if let Ok(p) = iptables::add_plan(&conf, &att.container_id, net) {
                let _ = p.to_string();
            }
            if let Ok(p) = nftables::add_plan_with_skeleton(&conf, &att, net, &[]) {
                let _ = p.to_string();
            }
        }
    }
});
