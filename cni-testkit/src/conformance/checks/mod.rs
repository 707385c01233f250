//! The checks, one module per verb (and one for malformed input). Each is a
//! `fn(&Ctx, Version) -> R` listed in the [registry](super::registry).

mod add;
mod bad_input;
mod check;
mod del;
mod gc;
mod status;
mod version;

pub(super) use add::{check_add, check_add_existing_ifname};
pub(super) use bad_input::{
    bad_add_missing_containerid, bad_add_missing_ifname, bad_add_missing_netns,
    bad_check_before_040, bad_del_missing_containerid, bad_gc_before_110, bad_incompatible_version,
    bad_invalid_container_id, bad_invalid_ifname, bad_invalid_json, bad_missing_name,
    bad_status_before_110, bad_unknown_command,
};
pub(super) use check::{check_check, check_check_after_del};
pub(super) use del::{
    check_del_after_failed_add, check_del_cleans_up, check_del_idempotent, check_del_netns_empty,
    check_del_netns_gone, check_del_without_add,
};
pub(super) use gc::check_gc;
pub(super) use status::check_status;
pub(super) use version::check_version;
