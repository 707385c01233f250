//! Examples for the cni-rs workspace
