//! firewall backends
