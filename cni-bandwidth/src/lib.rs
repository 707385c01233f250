#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! - [`config`]: the generic config validated once into a [`BandwidthConf`] (`TryFrom`):
//!   rates and bursts from the config or the `bandwidth` capability, as [`Shaping`].
//! - [`shaping`]: a [`TokenBucket`] (bits) turned into the kernel's tbf parameters with the
//!   reference's arithmetic.
//! - [`plan`]: what ADD installs as a value ([`Plan`]), the ifb device's name, the golden
//!   rendering of the netlink messages.
//! - [`kernel`]: the side effects behind [`Kernel`]: [`SystemKernel`] (netlink in the
//!   node's namespace, one look into the pod's) and the [`Recorder`] double.
//! - [`add()`], [`del()`], [`check()`], [`gc()`]: the verbs, callable in-process;
//!   [`BandwidthPlugin`] runs them behind [`cni_proto::skel`].
//! - [`error`]: [`BandwidthError`], [`ConfigError`], [`CheckError`] and their spec codes.
//!
//! # Behaviour
//!
//! - Keys: `ingressRate`, `ingressBurst`, `egressRate`, `egressBurst`, in bits per second and
//!   bits, at the top level of the config or in `runtimeConfig.bandwidth` (capability
//!   `bandwidth`), matched ignoring ASCII case as Go's JSON decoding does (containerd sends
//!   `IngressRate`, `EgressBurst`...). Precedence: the capability (the pod's own values)
//!   when present, else the config's keys (a network default). The reference does the
//!   opposite (any of the four keys in the config, even `null`, hides the capability); with
//!   only one of the two present, as in the usual configs, both agree.
//! - Validation, with the reference's messages: a rate without a burst, a burst without a
//!   rate, a burst of 2^35 bits (4 GiB) or more. Ingress is traffic to the pod, egress
//!   traffic from it; a direction with rate and burst 0 is not shaped; nothing to shape
//!   returns `prevResult` unchanged.
//! - ADD needs `prevResult` and finds the host-side interface as the reference does: the
//!   veth peer of `CNI_IFNAME`, which `prevResult` must list without a sandbox. Ingress: a
//!   tbf qdisc `1:` at the root of that interface. Egress: an ifb device `bwp` + the first
//!   12 hex digits of SHA-512(network name + container ID), up, with the interface's MTU,
//!   a tbf `1:` at its root, the ingress qdisc `ffff:` on the host interface and a u32
//!   match-all filter (priority 1, every protocol, flowid `1:1`) whose mirred action
//!   redirects every packet to the ifb's egress. The ifb device is appended to the result.
//!   Token buckets: rate/8 bytes per second, a bucket of burst/8 bytes, a queue of 25 ms
//!   at the rate plus the bucket, with the reference's arithmetic to the bit, including
//!   its 32-bit wrap-around: containerd's burst of `math.MaxUint32` bits gives the same
//!   bucket of minutes of the rate as with the reference (see [`TokenBucket::tbf`]).
//! - DEL deletes the ifb device; it also removes the qdiscs from the host interface while
//!   that still exists. CHECK compares each token bucket's rate, limit and bucket with the
//!   configuration (the reference's messages) and that the redirect to the ifb is in place.
//! - GC (1.1.0; the reference has none) deletes this network's ifb devices of attachments
//!   not in `cni.dev/valid-attachments`. STATUS always succeeds.
//! - Errors: configuration errors carry code 7 (the reference: 999).
//!
//! # Upstream reports, checked here with traffic
//!
//! - *UDP egress is not limited* (containernetworking/plugins #922): measured at the
//!   receiver, UDP from the pod is held to the egress rate, with the reference 1.1.1 as with
//!   this plugin; the report measured at the sender, which the layout cannot slow down:
//!   excess datagrams are dropped on the ifb device after they left the pod. Not a bug of
//!   the layout; `tests/traffic.rs` proves the receiver's rate for TCP and UDP both ways.
//! - *Ingress and egress are swapped* (#202): only the reference's function names are
//!   (its `CreateIngressQdisc` shapes the host interface's egress, which is the pod's
//!   ingress). The behaviour is right: `ingressRate` limits traffic to the pod and
//!   `egressRate` traffic from it, which the traffic tests check direction by direction.
//!   Our names say which side they mean.
//!
//! # Differences from the reference
//!
//! - ADD undoes what it did when a step fails (the reference leaves half a setup), and
//!   installs the redirect last, so redirected traffic always meets its token bucket.
//! - The redirect filter carries one mirred action; the reference's carries a second,
//!   unreachable one (its netlink library adds a redirect for `RedirIndex` before the
//!   explicit action).
//! - DEL also removes the qdiscs from the host interface, including a redirect to an ifb
//!   device that no longer exists (after the reference's DEL, which deletes only the ifb,
//!   such a redirect drops every packet from the pod while the veth lives). DEL never fails
//!   on a config ADD would refuse, since it needs only the network name.
//! - CHECK also requires the redirect, and a token bucket to exist at all (the reference's
//!   loop passes when the first qdisc is not a tbf).
//! - Our ifb devices carry an alias naming the network (hashed), which GC needs.
//! - A rate under 8 bits per second is refused (the reference sends a rate of 0 bytes per
//!   second and the kernel refuses it).
//! - `shapedSubnets` / `unshapedSubnets` are not offered: they existed only in the
//!   reference's v1.5.0 and v1.5.1 (an HTB layout) and were reverted in v1.6.0; the current
//!   reference has the token-bucket layout implemented here.

#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod kernel;
pub mod plan;
pub mod shaping;
mod verbs;

pub use config::{BandwidthConf, Shaping, Source};
pub use error::{BandwidthError, CheckError, ConfigError};
pub use kernel::{Kernel, Recorder, SystemKernel};
pub use plan::{Plan, ifb_name};
pub use shaping::TokenBucket;
pub use verbs::{add, apply, check, del, gc, host_interface};

use cni_linux::netlink::tc::tick_in_usec;
use cni_proto::skel::{Plugin, Request};
use cni_types::{Attachment, CniResult, Error, Version};

/// The plugin behind [`cni_proto::skel`]: the real kernel, in the namespace it runs in.
#[derive(Debug, Clone, Copy, Default)]
pub struct BandwidthPlugin;

fn attachment(req: &Request) -> Attachment {
    Attachment {
        container_id: req.container_id.clone(),
        ifname: req.ifname.clone(),
    }
}

fn conf(req: &Request) -> Result<BandwidthConf, BandwidthError> {
    Ok(BandwidthConf::try_from(&req.config)?)
}

impl Plugin for BandwidthPlugin {
    fn add(&self, req: &Request) -> Result<CniResult, Error> {
        let c = conf(req)?;
        let mut kernel = SystemKernel::open()?;
        Ok(add(
            &c,
            &attachment(req),
            req.netns.as_deref(),
            &mut kernel,
            tick_in_usec(),
        )?)
    }

    fn del(&self, req: &Request) -> Result<(), Error> {
        let c = BandwidthConf::lenient(&req.config);
        let mut kernel = SystemKernel::open()?;
        Ok(del(
            &c,
            &attachment(req),
            req.netns.as_deref(),
            &mut kernel,
        )?)
    }

    fn check(&self, req: &Request) -> Result<(), Error> {
        let c = conf(req)?;
        let mut kernel = SystemKernel::open()?;
        Ok(check(
            &c,
            &attachment(req),
            req.netns.as_deref(),
            &mut kernel,
            tick_in_usec(),
        )?)
    }

    fn gc(&self, req: &Request) -> Result<(), Error> {
        let valid = req
            .config
            .gc_valid_attachments()
            .map_err(BandwidthError::Attachments)?;
        match valid {
            Some(v) => {
                let mut kernel = SystemKernel::open()?;
                Ok(gc(&req.config.name, &v, &mut kernel)?)
            }
            None => Ok(()),
        }
    }

    fn supported_versions(&self) -> Vec<Version> {
        Version::ALL
            .into_iter()
            .filter(|v| v.supports_chaining())
            .collect()
    }

    fn about(&self) -> String {
        format!(
            "CNI bandwidth plugin (cni-rs) v{}",
            env!("CARGO_PKG_VERSION")
        )
    }
}
