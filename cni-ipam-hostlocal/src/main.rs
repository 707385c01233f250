//! `host-local`: the CNI host-local IPAM plugin.

fn main() -> std::process::ExitCode {
    // First thing: record who started us, so an orphaned run leaves the store alone.
    let plugin = cni_ipam_hostlocal::HostLocalChild::of_this_process();
    cni_proto::skel::main(&plugin)
}
