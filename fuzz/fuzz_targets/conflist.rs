#![no_main]
//! A conflist: parse, pick the version, round trip.
use cni_types::NetConfList;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = NetConfList::from_slice(data) {
        let _ = list.effective_version();
        let _ = list.plugin_types();
        let bytes = serde_json::to_vec(&list).expect("serialises");
        let again = NetConfList::from_slice(&bytes).expect("what we print parses");
        assert_eq!(again, list);
    }
});
