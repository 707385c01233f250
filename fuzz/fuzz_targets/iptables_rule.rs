#![no_main]
//! Injection safety of iptables rules: tokens (separated by 0x1f) that `Rule::new` accepts
//! print as one line that iptables-save's parser reads back as exactly one rule with the same
//! tokens. Whatever a token holds (quotes, blanks, backslashes, `-A`, `COMMIT`), it cannot end
//! its argument, add an option or start another rule.
use cni_linux::firewall::IpFamily;
use cni_linux::firewall::iptables::{IptablesState, Rule};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(rule) = Rule::new(s.split('\u{1f}')) else {
        return;
    };
    let line = rule.to_string();
    assert!(!line.contains(['\n', '\r', '\0']), "{line:?}");
    let text = format!("*nat\n:FUZZ - [0:0]\n-A FUZZ {line}\nCOMMIT\n");
    let state = IptablesState::parse(IpFamily::V4, &text)
        .unwrap_or_else(|e| panic!("a printed rule parses: {e:?}\n{text}"));
    let chain = state
        .table("nat")
        .and_then(|t| t.chain("FUZZ"))
        .expect("the chain");
    assert_eq!(chain.rules.len(), 1, "{text}");
    assert_eq!(chain.rules[0].tokens(), rule.tokens(), "{text}");
});
