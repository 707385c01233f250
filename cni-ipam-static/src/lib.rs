//! The `static` CNI IPAM plugin (skeleton: being written).

use cni_proto::skel::{Plugin, Request};
use cni_types::{CniResult, Error};

/// The static IPAM plugin behind [`cni_proto::skel`].
pub struct StaticPlugin;

impl Plugin for StaticPlugin {
    fn add(&self, _req: &Request) -> Result<CniResult, Error> {
        Err(Error::internal("not implemented yet"))
    }
    fn del(&self, _req: &Request) -> Result<(), Error> {
        Err(Error::internal("not implemented yet"))
    }
}
