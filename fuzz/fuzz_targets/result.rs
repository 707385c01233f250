#![no_main]
//! A result of any version, converted to every version; whatever converts parses back.
use cni_types::{CniResult, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(res) = CniResult::from_slice(data, None) else {
        return;
    };
    for v in Version::ALL {
        if let Ok(text) = res.to_json_pretty(v) {
            let back = CniResult::from_slice(text.as_bytes(), None).expect("printed result parses");
            assert_eq!(back.cni_version, v);
            assert_eq!(back.to_json_pretty(v).expect("converts again"), text);
        }
    }
});
