//! `mini-bridge`: the plugin of the well-known "write your own CNI plugin in bash" walkthrough,
//! on our skel and netlink. The node already has a bridge (`cni0`) holding the subnet's first
//! address; each container gets a veth pair (the host end on the bridge), the next free address
//! of `subnet`, and a default route via that first address.
//!
//! ```json
//! {"cniVersion": "1.0.0", "name": "mynet", "type": "mini-bridge",
//!  "bridge": "cni0", "subnet": "10.244.1.0/24", "dataDir": "/var/lib/cni/mini-bridge"}
//! ```
//!
//! Addresses are files `<dataDir>/<name>/<ip>` holding the container ID, created exclusively.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use cni_linux::netlink::{Handle, Route, VethRequest, mac};
use cni_linux::netns::NetNs;
use cni_proto::skel::{self, Plugin, Request};
use cni_types::ipnet::{IpNet, Ipv4Net};
use cni_types::{CniResult, Error, ErrorCode, Interface, IpConfig, Version};

#[derive(serde::Deserialize)]
struct Conf {
    name: String,
    subnet: Ipv4Net,
    bridge: Option<String>,
    #[serde(rename = "dataDir")]
    data_dir: Option<PathBuf>,
}

/// Any failure is the spec's "internal" error, with its cause chain as the message.
trait OrInternal<T> {
    fn or_internal(self) -> Result<T, Error>;
}

impl<T, E: std::error::Error + 'static> OrInternal<T> for Result<T, E> {
    fn or_internal(self) -> Result<T, Error> {
        self.map_err(|e| Error::from_chain(ErrorCode::Internal, &e))
    }
}

/// The config and the directory of this network's addresses.
fn conf(req: &Request) -> Result<(Conf, PathBuf), Error> {
    let conf: Conf = serde_json::from_slice(&req.stdin)
        .map_err(|e| Error::msg(ErrorCode::InvalidNetworkConfig, e.to_string()))?;
    let dir = conf.data_dir.clone().unwrap_or("/var/lib/cni/mini-bridge".into());
    let store = dir.join(&conf.name);
    Ok((conf, store))
}

/// The address files held by container `id`.
fn held(store: &Path, id: &str) -> Vec<PathBuf> {
    let files = fs::read_dir(store).into_iter().flatten().flatten();
    files
        .map(|e| e.path())
        .filter(|p| fs::read_to_string(p).is_ok_and(|owner| owner == id))
        .collect()
}

fn release(store: &Path, id: &str) -> Result<(), Error> {
    held(store, id).iter().try_for_each(fs::remove_file).or_internal()
}

fn add(conf: &Conf, store: &Path, req: &Request, host_if: &str) -> Result<CniResult, Error> {
    let gateway = conf.subnet.hosts().next().ok_or(Error::internal("subnet too small"))?;
    let pod = NetNs::open(req.netns.clone().unwrap_or_default()).or_internal()?;
    let mut node = Handle::new().or_internal()?;
    let bridge = node.require_link(conf.bridge.as_deref().unwrap_or("cni0")).or_internal()?;
    // Reserve the first free address after the gateway.
    fs::create_dir_all(store).or_internal()?;
    let mut files = OpenOptions::new();
    files.write(true).create_new(true);
    let (ip, mut file) = (conf.subnet.hosts().skip(1))
        .find_map(|ip| Some((ip, files.open(store.join(ip.to_string())).ok()?)))
        .ok_or(Error::internal("no free address"))?;
    file.write_all(req.container_id.as_bytes()).or_internal()?;
    // The veth pair: the host end on the bridge, the other end created inside the pod.
    let mut veth = VethRequest::new(host_if, &req.ifname);
    (veth.peer_netns, veth.master, veth.up) = (Some(pod.as_fd()), Some(bridge.index), true);
    let host = node.add_veth(&veth).or_internal()?;
    // Inside the pod: the address, up, the default route via the bridge.
    let mut inside = Handle::new_in(&pod).or_internal()?;
    let eth = inside.require_link(&req.ifname).or_internal()?;
    let address = IpNet::V4(Ipv4Net::new(ip, conf.subnet.prefix_len()).or_internal()?);
    inside.addr_add(eth.index, address, Default::default()).or_internal()?;
    inside.set_up(eth.index).or_internal()?;
    inside.route_add(&Route::default_via(IpAddr::V4(gateway))).or_internal()?;
    let mac_of = |m: Option<[u8; 6]>| m.map(|m| mac::format(&m)).unwrap_or_default();
    let sandbox = pod.path().display().to_string();
    Ok(CniResult {
        interfaces: vec![
            Interface { name: host.name, mac: mac_of(host.mac), ..Default::default() },
            Interface { name: eth.name, mac: mac_of(eth.mac), sandbox, ..Default::default() },
        ],
        ips: vec![IpConfig { interface: Some(1), address, gateway: Some(gateway.into()) }],
        ..Default::default()
    })
}

struct MiniBridge;

impl Plugin for MiniBridge {
    fn add(&self, req: &Request) -> Result<CniResult, Error> {
        let (conf, store) = conf(req)?;
        // bash takes 4 random hex digits; a hash of the attachment is as good and stable.
        let key = format!("{}/{}", req.container_id, req.ifname);
        let hash =
            key.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
        let host_if = format!("veth{hash:08x}");
        add(&conf, &store, req, &host_if).inspect_err(|_| {
            // Undo: deleting the host end takes its peer; the address goes back.
            let _ = Handle::new().and_then(|mut h| h.delete_link_by_name(&host_if));
            let _ = release(&store, &req.container_id);
        })
    }

    fn del(&self, req: &Request) -> Result<(), Error> {
        let (_, store) = conf(req)?;
        // When the namespace is gone, so is the veth pair.
        if let Some(pod) = req.netns.as_ref().and_then(|p| NetNs::open(p).ok()) {
            match Handle::new_in(&pod).and_then(|mut h| h.delete_link_by_name(&req.ifname)) {
                Err(e) if !e.is_not_found() => return Err(e).or_internal(),
                _ => {}
            }
        }
        release(&store, &req.container_id)
    }

    fn check(&self, req: &Request) -> Result<(), Error> {
        let (_, store) = conf(req)?;
        let pod = NetNs::open(req.netns.clone().unwrap_or_default()).or_internal()?;
        let link = Handle::new_in(&pod).and_then(|mut h| h.link_by_name(&req.ifname));
        match (held(&store, &req.container_id).is_empty(), link.or_internal()?) {
            (false, Some(_)) => Ok(()),
            _ => Err(Error::internal(format!(
                "{} lost its address or {}",
                req.container_id, req.ifname
            ))),
        }
    }

    fn supported_versions(&self) -> Vec<Version> {
        vec![Version::V0_3_0, Version::V0_3_1, Version::V0_4_0, Version::V1_0_0]
    }

    fn about(&self) -> String {
        "CNI mini-bridge plugin (cni-rs example)".into()
    }
}

fn main() -> std::process::ExitCode {
    skel::main(&MiniBridge)
}
