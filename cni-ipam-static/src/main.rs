//! The `static` CNI IPAM plugin binary.

fn main() -> std::process::ExitCode {
    cni_proto::skel::main(&cni_ipam_static::StaticPlugin)
}
