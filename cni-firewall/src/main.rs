//! The `firewall` CNI plugin binary.

fn main() -> std::process::ExitCode {
    cni_proto::skel::main(&cni_firewall::FirewallPlugin)
}
