#![no_main]
//! A plugin config: parse, re-serialise, parse again; the typed accessors never panic.
use cni_types::NetConf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(conf) = NetConf::from_slice(data) {
        let _ = conf.prev_result();
        let rc = conf.runtime_config();
        let _ = rc.port_mappings();
        let _ = rc.ip_ranges();
        let _ = rc.ips();
        let _ = rc.mac();
        let _ = conf.gc_valid_attachments();
        let bytes = serde_json::to_vec(&conf).expect("a parsed config serialises");
        let again = NetConf::from_slice(&bytes).expect("what we print parses");
        assert_eq!(again, conf);
    }
});
