//! The `bandwidth` CNI plugin binary.

fn main() -> std::process::ExitCode {
    cni_proto::skel::main(&cni_bandwidth::BandwidthPlugin)
}
