//! Traffic control over rtnetlink: qdiscs (token bucket filter, ingress), u32 filters with a
//! mirred redirect, and ifb devices. No `tc` processes.
//!
//! netlink-packet-route 0.34 knows the ingress qdisc, the u32 filter and the mirred action;
//! the token bucket filter's options (`struct tc_tbf_qopt`, `TCA_TBF_*`) are written here.
//!
//! A [`TcRequest`] is a value: [`TcRequest::message`] builds the `RTM_NEW*` message without a
//! socket (golden tests compare its bytes), [`Handle::tc_add`] sends it. Dumps come back as
//! [`Qdisc`] and [`Filter`].

use netlink_packet_core::{DefaultNla, Emitable, Nla, NlaBuffer, NlasIterator};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::tc::{
    TcAction, TcActionAttribute, TcActionGeneric, TcActionMirrorOption, TcActionOption,
    TcActionType, TcAttribute, TcFilterU32Option, TcHandle, TcMessage, TcMirror,
    TcMirrorActionType, TcOption, TcU32Key, TcU32Selector, TcU32SelectorFlags,
};

use super::{CREATE_EXCL, Handle, Link, Result, validate_ifname};

/// `TC_H_ROOT`: the parent of a root qdisc.
pub const HANDLE_ROOT: u32 = 0xFFFF_FFFF;
/// `TC_H_INGRESS`: the parent of the ingress qdisc.
pub const HANDLE_INGRESS: u32 = 0xFFFF_FFF1;
/// `ffff:`, the ingress qdisc's handle (and its filters' parent).
pub const INGRESS_QDISC: u32 = 0xFFFF_0000;
/// `ETH_P_ALL`: a filter for every protocol.
pub const ETH_P_ALL: u16 = 0x0003;

const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RATE64: u16 = 4;
/// `TCA_OPTIONS` (the kind-specific nest of a qdisc or filter).
const TCA_OPTIONS: u16 = 2;
/// Size of `struct tc_tbf_qopt`: two `tc_ratespec` (12 bytes each) and limit, buffer, mtu.
const TBF_QOPT_LEN: usize = 36;

/// Builds a `major:minor` handle.
pub const fn handle(major: u16, minor: u16) -> u32 {
    ((major as u32) << 16) | minor as u32
}

/// The parameters of a token bucket filter (`tc qdisc ... tbf`), as sent and as the kernel
/// reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TbfParams {
    /// Rate in bytes per second.
    pub rate: u64,
    /// Bucket size as a time, in psched ticks (see [`tick_in_usec`]).
    pub buffer: u32,
    /// Queue limit in bytes.
    pub limit: u32,
}

impl TbfParams {
    /// `TCA_OPTIONS` of a tbf qdisc: `TCA_TBF_PARMS`, and `TCA_TBF_RATE64` when the rate does
    /// not fit the 32-bit field.
    fn options(&self) -> Vec<TcOption> {
        let mut qopt = [0u8; TBF_QOPT_LEN];
        // rate: tc_ratespec { cell_log u8, linklayer u8, overhead u16, cell_align i16, mpu u16,
        // rate u32 }; linklayer 0 (unaware) needs no rate table.
        let rate32 = u32::try_from(self.rate).unwrap_or(u32::MAX);
        qopt[8..12].copy_from_slice(&rate32.to_ne_bytes());
        // peakrate: all zero. Then limit, buffer, mtu.
        qopt[24..28].copy_from_slice(&self.limit.to_ne_bytes());
        qopt[28..32].copy_from_slice(&self.buffer.to_ne_bytes());
        let mut out = vec![TcOption::Other(DefaultNla::new(
            TCA_TBF_PARMS,
            qopt.to_vec(),
        ))];
        if self.rate > u64::from(u32::MAX) {
            out.push(TcOption::Other(DefaultNla::new(
                TCA_TBF_RATE64,
                self.rate.to_ne_bytes().to_vec(),
            )));
        }
        out
    }

    /// Parses the nested `TCA_OPTIONS` payload of a tbf qdisc.
    fn parse(nest: &[u8]) -> Option<TbfParams> {
        let mut params = None;
        let mut rate64 = None;
        for nla in NlasIterator::new(nest) {
            let nla: NlaBuffer<&[u8]> = nla.ok()?;
            let v = nla.value();
            match nla.kind() & 0x3fff {
                TCA_TBF_PARMS if v.len() >= TBF_QOPT_LEN => {
                    let u = |o: usize| u32::from_ne_bytes([v[o], v[o + 1], v[o + 2], v[o + 3]]);
                    params = Some(TbfParams {
                        rate: u64::from(u(8)),
                        limit: u(24),
                        buffer: u(28),
                    });
                }
                TCA_TBF_RATE64 if v.len() >= 8 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&v[..8]);
                    rate64 = Some(u64::from_ne_bytes(b));
                }
                _ => {}
            }
        }
        let mut p = params?;
        if let Some(r) = rate64 {
            p.rate = r;
        }
        Some(p)
    }
}

/// Psched ticks per microsecond, from `/proc/net/psched` as tc and the Go netlink library
/// read it (15.625 on every current kernel; that value when the file cannot be read).
pub fn tick_in_usec() -> f64 {
    std::fs::read_to_string("/proc/net/psched")
        .ok()
        .and_then(|s| parse_psched(&s))
        .unwrap_or(15.625)
}

fn parse_psched(text: &str) -> Option<f64> {
    let v: Vec<u64> = text
        .split_whitespace()
        .take(4)
        .map(|p| u64::from_str_radix(p, 16))
        .collect::<std::result::Result<_, _>>()
        .ok()?;
    let [mut t2us, us2t, clock_res, _] = <[u64; 4]>::try_from(v).ok()?;
    if clock_res == 1_000_000_000 {
        t2us = us2t;
    }
    if us2t == 0 {
        return None;
    }
    let clock_factor = clock_res as f64 / 1_000_000.0;
    Some(t2us as f64 / us2t as f64 * clock_factor)
}

/// What to add with [`Handle::tc_add`]. Indexes are interface indexes in the handle's
/// namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TcRequest {
    /// A token bucket filter as the root qdisc of `ifindex`, with handle `handle`.
    Tbf {
        /// The device.
        ifindex: u32,
        /// The qdisc's handle (e.g. `1:`).
        handle: u32,
        /// Rate, bucket and limit.
        params: TbfParams,
    },
    /// The ingress qdisc (`ffff:`) of `ifindex`.
    Ingress {
        /// The device.
        ifindex: u32,
    },
    /// A u32 filter under `parent` matching every packet of every protocol, classifying
    /// into `class_id` and redirecting it to the egress of `target` (mirred, stolen).
    RedirectAll {
        /// The device whose qdisc holds the filter.
        ifindex: u32,
        /// The qdisc (e.g. [`INGRESS_QDISC`]).
        parent: u32,
        /// The filter's priority.
        priority: u16,
        /// `flowid` / `classid`.
        class_id: u32,
        /// The device packets are redirected to.
        target: u32,
    },
}

fn tc_header(msg: &mut TcMessage, ifindex: u32, handle: u32, parent: u32, info: u32) {
    msg.header.index = i32::try_from(ifindex).unwrap_or(i32::MAX);
    msg.header.handle = TcHandle::from(handle);
    msg.header.parent = TcHandle::from(parent);
    msg.header.info = info;
}

impl TcRequest {
    /// The message this request sends: `RTM_NEWQDISC` or `RTM_NEWTFILTER`.
    pub fn message(&self) -> RouteNetlinkMessage {
        let mut msg = TcMessage::default();
        match *self {
            TcRequest::Tbf {
                ifindex,
                handle,
                params,
            } => {
                tc_header(&mut msg, ifindex, handle, HANDLE_ROOT, 0);
                msg.attributes.push(TcAttribute::Kind("tbf".into()));
                msg.attributes.push(TcAttribute::Options(params.options()));
                RouteNetlinkMessage::NewQueueDiscipline(msg)
            }
            TcRequest::Ingress { ifindex } => {
                tc_header(&mut msg, ifindex, INGRESS_QDISC, HANDLE_INGRESS, 0);
                msg.attributes.push(TcAttribute::Kind("ingress".into()));
                msg.attributes.push(TcAttribute::Options(Vec::new()));
                RouteNetlinkMessage::NewQueueDiscipline(msg)
            }
            TcRequest::RedirectAll {
                ifindex,
                parent,
                priority,
                class_id,
                target,
            } => {
                // tcm_info: priority in the upper half, the protocol in network order below.
                let info = (u32::from(priority) << 16) | u32::from(ETH_P_ALL.to_be());
                tc_header(&mut msg, ifindex, 0, parent, info);
                msg.attributes.push(TcAttribute::Kind("u32".into()));
                msg.attributes
                    .push(TcAttribute::Options(redirect_options(class_id, target)));
                RouteNetlinkMessage::NewTrafficFilter(msg)
            }
        }
    }

    fn op(&self) -> &'static str {
        match self {
            TcRequest::Tbf { .. } => "add tbf qdisc",
            TcRequest::Ingress { .. } => "add ingress qdisc",
            TcRequest::RedirectAll { .. } => "add u32 filter",
        }
    }

    fn ifindex(&self) -> u32 {
        match *self {
            TcRequest::Tbf { ifindex, .. }
            | TcRequest::Ingress { ifindex }
            | TcRequest::RedirectAll { ifindex, .. } => ifindex,
        }
    }
}

/// u32 options: a terminal selector with one all-zero key (matches everything), the class,
/// and one mirred action redirecting to the egress of `target`.
fn redirect_options(class_id: u32, target: u32) -> Vec<TcOption> {
    let mut sel = TcU32Selector::default();
    sel.flags = TcU32SelectorFlags::Terminal;
    sel.nkeys = 1;
    sel.keys = vec![TcU32Key::default()];
    let mut generic = TcActionGeneric::default();
    generic.action = TcActionType::Stolen;
    let mut mirror = TcMirror::default();
    mirror.generic = generic;
    mirror.eaction = TcMirrorActionType::EgressRedir;
    mirror.ifindex = target;
    let mut action = TcAction::default();
    action.tab = 1;
    action.attributes = vec![
        TcActionAttribute::Kind("mirred".into()),
        TcActionAttribute::Options(vec![TcActionOption::Mirror(TcActionMirrorOption::Parms(
            mirror,
        ))]),
    ];
    vec![
        TcOption::U32(TcFilterU32Option::Selector(sel)),
        TcOption::U32(TcFilterU32Option::ClassId(TcHandle::from(class_id))),
        TcOption::U32(TcFilterU32Option::Action(vec![action])),
    ]
}

/// A qdisc as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qdisc {
    /// The device's index.
    pub ifindex: u32,
    /// Its handle (`1:` is `0x0001_0000`).
    pub handle: u32,
    /// Its parent ([`HANDLE_ROOT`], [`HANDLE_INGRESS`] or a class).
    pub parent: u32,
    /// `tbf`, `ingress`, `noqueue`...
    pub kind: String,
    /// The parameters, when it is a tbf.
    pub tbf: Option<TbfParams>,
}

/// A mirred action of a [`Filter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redirect {
    /// Egress redirect (not a mirror, not to ingress).
    pub egress_redirect: bool,
    /// The target device's index.
    pub ifindex: u32,
}

/// A filter as the kernel reports it (one entry per filter node; u32 also reports its hash
/// tables, which carry no actions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The device's index.
    pub ifindex: u32,
    /// The qdisc or class it hangs under.
    pub parent: u32,
    /// Its handle (`800::800` for the first u32 node).
    pub handle: u32,
    /// Priority.
    pub priority: u16,
    /// Protocol (host order; [`ETH_P_ALL`] for all).
    pub protocol: u16,
    /// `u32`, `matchall`...
    pub kind: String,
    /// The u32 class, when set.
    pub class_id: Option<u32>,
    /// The mirred actions, in order.
    pub redirects: Vec<Redirect>,
}

fn parse_filter(msg: TcMessage) -> Filter {
    let mut f = Filter {
        ifindex: u32::try_from(msg.header.index).unwrap_or(0),
        parent: msg.header.parent.into(),
        handle: msg.header.handle.into(),
        priority: (msg.header.info >> 16) as u16,
        protocol: u16::from_be(msg.header.info as u16),
        kind: String::new(),
        class_id: None,
        redirects: Vec::new(),
    };
    for attr in msg.attributes {
        match attr {
            TcAttribute::Kind(k) => f.kind = k,
            TcAttribute::Options(opts) => {
                for o in opts {
                    match o {
                        TcOption::U32(TcFilterU32Option::ClassId(c)) => f.class_id = Some(c.into()),
                        TcOption::U32(TcFilterU32Option::Action(acts)) => {
                            f.redirects.extend(acts.iter().filter_map(redirect_of));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    f
}

fn redirect_of(action: &TcAction) -> Option<Redirect> {
    action.attributes.iter().find_map(|a| match a {
        TcActionAttribute::Options(opts) => opts.iter().find_map(|o| match o {
            TcActionOption::Mirror(TcActionMirrorOption::Parms(m)) => Some(Redirect {
                egress_redirect: m.eaction == TcMirrorActionType::EgressRedir,
                ifindex: m.ifindex,
            }),
            _ => None,
        }),
        _ => None,
    })
}

fn parse_qdisc(msg: TcMessage) -> Qdisc {
    let mut q = Qdisc {
        ifindex: u32::try_from(msg.header.index).unwrap_or(0),
        handle: msg.header.handle.into(),
        parent: msg.header.parent.into(),
        kind: String::new(),
        tbf: None,
    };
    for attr in msg.attributes {
        match attr {
            TcAttribute::Kind(k) => q.kind = k,
            // Kinds the codec does not know (tbf) come back as one raw TCA_OPTIONS nest.
            TcAttribute::Options(opts) => {
                for o in opts {
                    if let TcOption::Other(nla) = o
                        && nla.kind() & 0x3fff == TCA_OPTIONS
                    {
                        let mut value = vec![0u8; nla.value_len()];
                        nla.emit_value(&mut value);
                        q.tbf = TbfParams::parse(&value);
                    }
                }
            }
            _ => {}
        }
    }
    if q.kind != "tbf" {
        q.tbf = None;
    }
    q
}

/// An ifb device created by [`Handle::add_ifb`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IfbOptions {
    /// MTU (kernel default when `None`).
    pub mtu: Option<u32>,
    /// Transmit queue length (kernel default when `None`).
    pub txqlen: Option<u32>,
    /// `IFLA_IFALIAS`, a free-form label (at most 255 bytes), set right after creation
    /// (the kernel ignores it in the creating request).
    pub alias: Option<String>,
    /// Bring it up in the same request.
    pub up: bool,
}

/// An ifb device as listed by [`Handle::ifbs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ifb {
    /// Index.
    pub index: u32,
    /// Name.
    pub name: String,
    /// `IFLA_IFALIAS`, when set.
    pub alias: Option<String>,
}

impl Handle {
    /// Adds a qdisc or filter (`NLM_F_CREATE | NLM_F_EXCL`): an existing one of that handle
    /// fails with an error whose [`Error::is_exists`](super::Error::is_exists) is true.
    pub fn tc_add(&mut self, req: &TcRequest) -> Result<()> {
        let (op, index) = (req.op(), req.ifindex());
        self.ack(op, &index, req.message(), CREATE_EXCL)
    }

    /// The qdiscs of `ifindex`.
    pub fn qdiscs(&mut self, ifindex: u32) -> Result<Vec<Qdisc>> {
        let msg = TcMessage::with_index(i32::try_from(ifindex).unwrap_or(i32::MAX));
        let mut out = Vec::new();
        self.dump(
            "list qdiscs",
            RouteNetlinkMessage::GetQueueDiscipline(msg),
            |m| {
                if let RouteNetlinkMessage::NewQueueDiscipline(m) = m {
                    let q = parse_qdisc(m);
                    if q.ifindex == ifindex {
                        out.push(q);
                    }
                }
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// The filters of `ifindex` under `parent`.
    pub fn filters(&mut self, ifindex: u32, parent: u32) -> Result<Vec<Filter>> {
        let mut msg = TcMessage::with_index(i32::try_from(ifindex).unwrap_or(i32::MAX));
        msg.header.parent = TcHandle::from(parent);
        let mut out = Vec::new();
        self.dump(
            "list filters",
            RouteNetlinkMessage::GetTrafficFilter(msg),
            |m| {
                if let RouteNetlinkMessage::NewTrafficFilter(m) = m {
                    out.push(parse_filter(m));
                }
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Deletes the qdisc `handle` under `parent` of `ifindex` (its filters and classes go
    /// with it). A missing qdisc fails with an error whose
    /// [`Error::is_not_found`](super::Error::is_not_found) is true.
    pub fn delete_qdisc(&mut self, ifindex: u32, parent: u32, handle: u32) -> Result<()> {
        let mut msg = TcMessage::default();
        tc_header(&mut msg, ifindex, handle, parent, 0);
        self.ack(
            "delete qdisc",
            &ifindex,
            RouteNetlinkMessage::DelQueueDiscipline(msg),
            0,
        )
    }

    /// Creates an ifb device. An existing link of that name fails with an error whose
    /// [`Error::is_exists`](super::Error::is_exists) is true.
    pub fn add_ifb(&mut self, name: &str, opts: &IfbOptions) -> Result<Link> {
        validate_ifname(name)?;
        self.ack(
            "add ifb",
            &name,
            RouteNetlinkMessage::NewLink(ifb_message(name, opts)),
            CREATE_EXCL,
        )?;
        let link = self.require_link(name)?;
        // The kernel ignores IFLA_IFALIAS when it creates a link: set it afterwards.
        if let Some(alias) = &opts.alias {
            let mut msg = LinkMessage::default();
            msg.header.index = link.index;
            msg.attributes.push(LinkAttribute::IfAlias(alias.clone()));
            if let Err(e) = self.ack("set ifb alias", &name, RouteNetlinkMessage::SetLink(msg), 0) {
                let _ = self.delete_link(link.index);
                return Err(e);
            }
        }
        Ok(link)
    }

    /// Every ifb device of the namespace, with its alias.
    pub fn ifbs(&mut self) -> Result<Vec<Ifb>> {
        let mut out = Vec::new();
        self.dump(
            "list links",
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            |m| {
                if let RouteNetlinkMessage::NewLink(m) = m {
                    let mut ifb = Ifb {
                        index: m.header.index,
                        name: String::new(),
                        alias: None,
                    };
                    let mut is_ifb = false;
                    for a in m.attributes {
                        match a {
                            LinkAttribute::IfName(n) => ifb.name = n,
                            LinkAttribute::IfAlias(s) => ifb.alias = Some(s),
                            LinkAttribute::LinkInfo(infos) => {
                                is_ifb = infos
                                    .iter()
                                    .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Ifb)))
                            }
                            _ => {}
                        }
                    }
                    if is_ifb {
                        out.push(ifb);
                    }
                }
                Ok(())
            },
        )?;
        Ok(out)
    }
}

/// The `RTM_NEWLINK` message creating an ifb device (without the alias, see
/// [`IfbOptions::alias`]).
pub fn ifb_message(name: &str, opts: &IfbOptions) -> LinkMessage {
    let mut msg = LinkMessage::default();
    if opts.up {
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
    }
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    if let Some(mtu) = opts.mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(q) = opts.txqlen {
        msg.attributes.push(LinkAttribute::TxQueueLen(q));
    }
    msg.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Ifb)]));
    msg
}

/// The bytes of a request's message (without the netlink header), for golden tests.
pub fn message_bytes(msg: &RouteNetlinkMessage) -> Vec<u8> {
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.emit(&mut buf);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psched_is_read_like_tc() {
        assert_eq!(
            parse_psched("000003e8 00000040 000f4240 3b9aca00\n"),
            Some(15.625)
        );
        assert_eq!(parse_psched("garbage"), None);
    }

    #[test]
    fn tbf_options_round_trip() {
        for rate in [1_000_000u64, u64::from(u32::MAX) + 10] {
            let p = TbfParams {
                rate,
                buffer: 1234,
                limit: 5678,
            };
            let opts = p.options();
            let mut nest = vec![0u8; opts.as_slice().buffer_len()];
            opts.as_slice().emit(&mut nest);
            assert_eq!(TbfParams::parse(&nest), Some(p));
        }
    }

    #[test]
    fn redirect_filter_parses_back() {
        let req = TcRequest::RedirectAll {
            ifindex: 7,
            parent: INGRESS_QDISC,
            priority: 1,
            class_id: handle(1, 1),
            target: 9,
        };
        let RouteNetlinkMessage::NewTrafficFilter(msg) = req.message() else {
            panic!("not a filter")
        };
        let mut bytes = vec![0u8; msg.buffer_len()];
        msg.emit(&mut bytes);
        let parsed =
            <TcMessage as netlink_packet_core::Parseable<[u8]>>::parse(&bytes[..]).expect("parses");
        let f = parse_filter(parsed);
        assert_eq!(f.kind, "u32");
        assert_eq!((f.priority, f.protocol), (1, ETH_P_ALL));
        assert_eq!(f.class_id, Some(0x0001_0001));
        assert_eq!(
            f.redirects,
            vec![Redirect {
                egress_redirect: true,
                ifindex: 9
            }]
        );
    }
}
