#![no_main]
//! CNI_ARGS: parse, print, parse again.
use cni_types::CniArgs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(args) = CniArgs::parse(s) {
        let _ = args.ignore_unknown();
        let _ = args.check_known(&["IP", "MAC"]);
        let printed = args.to_string();
        assert_eq!(CniArgs::parse(&printed).expect("printed args parse"), args);
    }
});
