//! `host-local`: the CNI host-local IPAM plugin.

fn main() -> std::process::ExitCode {
    cni_proto::skel::main(&cni_ipam_hostlocal::HostLocal)
}
