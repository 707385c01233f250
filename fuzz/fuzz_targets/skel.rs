#![no_main]
//! The skel with arbitrary stdin and a few verbs: always an exit code, error JSON on failure.
use cni_proto::skel::{self, Plugin, Request};
use cni_proto::Env;
use cni_types::{CniResult, Error};
use libfuzzer_sys::fuzz_target;

struct Echo;
impl Plugin for Echo {
    fn add(&self, req: &Request) -> Result<CniResult, Error> {
        Ok(req.config.prev_result()?.unwrap_or_default())
    }
    fn del(&self, _: &Request) -> Result<(), Error> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&verb, stdin)) = data.split_first() else {
        return;
    };
    let cmd = ["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION"][usize::from(verb) % 6];
    let env = Env::new()
        .with("CNI_COMMAND", cmd)
        .with("CNI_CONTAINERID", "fuzz")
        .with("CNI_NETNS", "/nonexistent")
        .with("CNI_IFNAME", "eth0")
        .with("CNI_PATH", "/nonexistent");
    let mut out = Vec::new();
    let code = skel::run(&Echo, &env, &mut &stdin[..], &mut out, &mut Vec::new());
    if code != 0 {
        let e: Error = serde_json::from_slice(&out).expect("failures print error JSON");
        assert!(e.code.code() > 0);
    }
});
