//! Routes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteMetric, RouteProtocol,
    RouteScope, RouteType,
};

use super::{CREATE_EXCL, Handle, IpFamily, Result};

/// The main routing table (`RT_TABLE_MAIN`).
pub const TABLE_MAIN: u32 = 254;
/// The local routing table (`RT_TABLE_LOCAL`).
pub const TABLE_LOCAL: u32 = 255;

/// Route scope (`RT_SCOPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Global (`RT_SCOPE_UNIVERSE`, 0).
    Universe,
    /// `RT_SCOPE_SITE` (200).
    Site,
    /// Directly attached (`RT_SCOPE_LINK`, 253).
    Link,
    /// Local host (`RT_SCOPE_HOST`, 254).
    Host,
    /// `RT_SCOPE_NOWHERE` (255).
    Nowhere,
    /// Any other value.
    Other(u8),
}

impl From<u8> for Scope {
    fn from(v: u8) -> Self {
        match v {
            0 => Scope::Universe,
            200 => Scope::Site,
            253 => Scope::Link,
            254 => Scope::Host,
            255 => Scope::Nowhere,
            v => Scope::Other(v),
        }
    }
}

impl From<Scope> for u8 {
    fn from(s: Scope) -> u8 {
        match s {
            Scope::Universe => 0,
            Scope::Site => 200,
            Scope::Link => 253,
            Scope::Host => 254,
            Scope::Nowhere => 255,
            Scope::Other(v) => v,
        }
    }
}

/// Route type (`RTN_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// A gateway or direct route (`RTN_UNICAST`).
    Unicast,
    /// A local address (`RTN_LOCAL`).
    Local,
    /// A broadcast address (`RTN_BROADCAST`).
    Broadcast,
    /// Anycast (`RTN_ANYCAST`).
    Anycast,
    /// Multicast (`RTN_MULTICAST`).
    Multicast,
    /// Drop silently (`RTN_BLACKHOLE`).
    Blackhole,
    /// Destination unreachable (`RTN_UNREACHABLE`).
    Unreachable,
    /// Administratively prohibited (`RTN_PROHIBIT`).
    Prohibit,
    /// Any other value.
    Other(u8),
}

impl From<u8> for RouteKind {
    fn from(v: u8) -> Self {
        match v {
            1 => RouteKind::Unicast,
            2 => RouteKind::Local,
            3 => RouteKind::Broadcast,
            4 => RouteKind::Anycast,
            5 => RouteKind::Multicast,
            6 => RouteKind::Blackhole,
            7 => RouteKind::Unreachable,
            8 => RouteKind::Prohibit,
            v => RouteKind::Other(v),
        }
    }
}

impl From<RouteKind> for u8 {
    fn from(k: RouteKind) -> u8 {
        match k {
            RouteKind::Unicast => 1,
            RouteKind::Local => 2,
            RouteKind::Broadcast => 3,
            RouteKind::Anycast => 4,
            RouteKind::Multicast => 5,
            RouteKind::Blackhole => 6,
            RouteKind::Unreachable => 7,
            RouteKind::Prohibit => 8,
            RouteKind::Other(v) => v,
        }
    }
}

/// A route, both as a request ([`Handle::route_add`]) and as reported by the kernel.
///
/// In a request `None` means "kernel default": table main, scope link without a gateway and
/// universe with one, no metric, type unicast. In listings every field the kernel reports is
/// filled in (`table`, `scope`, `kind` always).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network (`0.0.0.0/0` / `::/0` for a default route).
    pub dst: IpNet,
    /// Next-hop gateway.
    pub gw: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
    /// Routing table id.
    pub table: Option<u32>,
    /// Scope.
    pub scope: Option<Scope>,
    /// Metric (`RTA_PRIORITY`).
    pub priority: Option<u32>,
    /// Path MTU metric (`RTAX_MTU`).
    pub mtu: Option<u32>,
    /// Advertised MSS metric (`RTAX_ADVMSS`).
    pub advmss: Option<u32>,
    /// Preferred source address (`RTA_PREFSRC`).
    pub src: Option<IpAddr>,
    /// Route type.
    pub kind: Option<RouteKind>,
    /// Routing protocol (`RTPROT_*`, e.g. 2 kernel, 3 boot, 4 static). Requests default to
    /// boot, as iproute2 does.
    pub protocol: Option<u8>,
}

impl Route {
    /// A route to `dst` with everything else default.
    pub fn new(dst: IpNet) -> Self {
        Route {
            dst,
            gw: None,
            oif: None,
            table: None,
            scope: None,
            priority: None,
            mtu: None,
            advmss: None,
            src: None,
            kind: None,
            protocol: None,
        }
    }

    /// A default route (`0.0.0.0/0` or `::/0`, family of `gw`) via `gw`.
    pub fn default_via(gw: IpAddr) -> Self {
        let dst = match gw {
            IpAddr::V4(_) => IpNet::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            IpAddr::V6(_) => IpNet::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        };
        let mut r = Route::new(dst.unwrap_or_default());
        r.gw = Some(gw);
        r
    }

    /// Sets the gateway.
    pub fn via(mut self, gw: IpAddr) -> Self {
        self.gw = Some(gw);
        self
    }

    /// Sets the output interface.
    pub fn dev(mut self, oif: u32) -> Self {
        self.oif = Some(oif);
        self
    }

    /// Sets the table.
    pub fn table(mut self, table: u32) -> Self {
        self.table = Some(table);
        self
    }

    /// Sets the metric.
    pub fn metric(mut self, priority: u32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Sets the scope.
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = Some(scope);
        self
    }

    /// True for `0.0.0.0/0` and `::/0`.
    pub fn is_default(&self) -> bool {
        self.dst.prefix_len() == 0
    }

    fn family(&self) -> IpFamily {
        IpFamily::of(&self.dst.addr())
    }

    /// The `RTM_NEWROUTE` / `RTM_DELROUTE` message. `delete` leaves scope, type and protocol
    /// open so the kernel matches any.
    pub(crate) fn message(&self, delete: bool) -> RouteMessage {
        let mut msg = RouteMessage::default();
        let h = &mut msg.header;
        h.address_family = super::family_to_af(self.family());
        h.destination_prefix_length = self.dst.prefix_len();
        let table = self.table.unwrap_or(TABLE_MAIN);
        h.table = if table < 256 {
            table as u8
        } else {
            RouteHeader::RT_TABLE_UNSPEC
        };
        if delete {
            h.scope = RouteScope::from(self.scope.map_or(255, u8::from));
            h.kind = RouteType::from(self.kind.map_or(0, u8::from));
            h.protocol = RouteProtocol::from(self.protocol.unwrap_or(0));
        } else {
            let default_scope =
                if self.gw.is_none() && matches!(self.kind, None | Some(RouteKind::Unicast)) {
                    Scope::Link
                } else {
                    Scope::Universe
                };
            h.scope = RouteScope::from(u8::from(self.scope.unwrap_or(default_scope)));
            h.kind = RouteType::from(u8::from(self.kind.unwrap_or(RouteKind::Unicast)));
            h.protocol = RouteProtocol::from(self.protocol.unwrap_or(3));
        }
        let attrs = &mut msg.attributes;
        if self.dst.prefix_len() > 0 || delete {
            attrs.push(RouteAttribute::Destination(RouteAddress::from(
                self.dst.network(),
            )));
        }
        if let Some(gw) = self.gw {
            attrs.push(RouteAttribute::Gateway(RouteAddress::from(gw)));
        }
        if let Some(oif) = self.oif {
            attrs.push(RouteAttribute::Oif(oif));
        }
        if let Some(src) = self.src {
            attrs.push(RouteAttribute::PrefSource(RouteAddress::from(src)));
        }
        if let Some(p) = self.priority {
            attrs.push(RouteAttribute::Priority(p));
        }
        attrs.push(RouteAttribute::Table(table));
        let mut metrics = Vec::new();
        if let Some(mtu) = self.mtu {
            metrics.push(RouteMetric::Mtu(mtu));
        }
        if let Some(advmss) = self.advmss {
            metrics.push(RouteMetric::Advmss(advmss));
        }
        if !metrics.is_empty() && !delete {
            attrs.push(RouteAttribute::Metrics(metrics));
        }
        msg
    }

    fn from_message(msg: RouteMessage) -> Option<Route> {
        let h = &msg.header;
        let family = match h.address_family {
            netlink_packet_route::AddressFamily::Inet => IpFamily::V4,
            netlink_packet_route::AddressFamily::Inet6 => IpFamily::V6,
            _ => return None,
        };
        let unspecified = match family {
            IpFamily::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpFamily::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let mut dst_ip = unspecified;
        let mut route = Route::new(IpNet::new(unspecified, 0).ok()?);
        route.table = Some(u32::from(h.table));
        route.scope = Some(Scope::from(u8::from(h.scope)));
        route.kind = Some(RouteKind::from(u8::from(h.kind)));
        route.protocol = Some(u8::from(h.protocol));
        for attr in msg.attributes {
            match attr {
                RouteAttribute::Destination(a) => {
                    if let Some(ip) = route_ip(a) {
                        dst_ip = ip;
                    }
                }
                RouteAttribute::Gateway(a) => route.gw = route_ip(a),
                RouteAttribute::PrefSource(a) => route.src = route_ip(a),
                RouteAttribute::Oif(i) => route.oif = Some(i),
                RouteAttribute::Priority(p) => route.priority = Some(p),
                RouteAttribute::Table(t) => route.table = Some(t),
                RouteAttribute::Metrics(ms) => {
                    for m in ms {
                        match m {
                            RouteMetric::Mtu(v) => route.mtu = Some(v),
                            RouteMetric::Advmss(v) => route.advmss = Some(v),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        route.dst = IpNet::new(dst_ip, h.destination_prefix_length).ok()?;
        Some(route)
    }
}

fn route_ip(a: RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(v6)),
        _ => None,
    }
}

impl Handle {
    /// Adds a route; an existing identical route fails with an error whose
    /// [`super::Error::is_exists`] is true.
    pub fn route_add(&mut self, route: &Route) -> Result<()> {
        self.ack(
            "add route",
            &route.dst,
            RouteNetlinkMessage::NewRoute(route.message(false)),
            CREATE_EXCL,
        )
    }

    /// Adds or replaces a route (`NLM_F_CREATE | NLM_F_REPLACE`).
    pub fn route_replace(&mut self, route: &Route) -> Result<()> {
        self.ack(
            "replace route",
            &route.dst,
            RouteNetlinkMessage::NewRoute(route.message(false)),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
    }

    /// Deletes the route matching `route` (destination, table and whichever of gateway,
    /// interface, metric, scope, type are set). A missing route fails with an error whose
    /// [`super::Error::is_not_found`] is true.
    pub fn route_del(&mut self, route: &Route) -> Result<()> {
        self.ack(
            "delete route",
            &route.dst,
            RouteNetlinkMessage::DelRoute(route.message(true)),
            0,
        )
    }

    /// Routes of one family (both when `None`), from one table (all tables when `None`).
    /// Cached clones are not included.
    pub fn routes(&mut self, family: Option<IpFamily>, table: Option<u32>) -> Result<Vec<Route>> {
        let families: &[IpFamily] = match family {
            Some(IpFamily::V4) => &[IpFamily::V4],
            Some(IpFamily::V6) => &[IpFamily::V6],
            None => &[IpFamily::V4, IpFamily::V6],
        };
        let mut out = Vec::new();
        for fam in families {
            let mut msg = RouteMessage::default();
            msg.header.address_family = super::family_to_af(*fam);
            if let Some(t) = table {
                msg.attributes.push(RouteAttribute::Table(t));
            }
            self.dump("list routes", RouteNetlinkMessage::GetRoute(msg), |m| {
                if let RouteNetlinkMessage::NewRoute(m) = m
                    && let Some(r) = Route::from_message(m)
                    && table.is_none_or(|t| r.table == Some(t))
                {
                    out.push(r);
                }
                Ok(())
            })?;
        }
        Ok(out)
    }

    /// Asks the kernel which route it would use to reach `dst` (`ip route get`): the reply
    /// has `dst` as a host route with `oif`, `gw` (when via a gateway), `src` and `table`.
    pub fn route_get(&mut self, dst: IpAddr) -> Result<Route> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = super::family_to_af(IpFamily::of(&dst));
        msg.header.destination_prefix_length = match dst {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(dst)));
        match self.get_one("get route", &dst, RouteNetlinkMessage::GetRoute(msg))? {
            RouteNetlinkMessage::NewRoute(m) => {
                Route::from_message(m).ok_or_else(|| super::Error::NotFound {
                    what: "route to",
                    name: dst.to_string(),
                })
            }
            _ => Err(super::Error::NotFound {
                what: "route to",
                name: dst.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_for_add() {
        let r = Route::new("10.0.0.0/8".parse().unwrap()).dev(4);
        let m = r.message(false);
        assert_eq!(u8::from(m.header.scope), 253, "no gateway: link scope");
        assert_eq!(m.header.table, 254);
        assert_eq!(u8::from(m.header.kind), 1);
        assert!(m.attributes.contains(&RouteAttribute::Oif(4)));
        assert!(m.attributes.contains(&RouteAttribute::Table(254)));

        let d = Route::default_via("10.0.0.1".parse().unwrap()).table(1000);
        let m = d.message(false);
        assert_eq!(u8::from(m.header.scope), 0);
        assert_eq!(m.header.destination_prefix_length, 0);
        assert_eq!(m.header.table, 0, "tables above 255 only in RTA_TABLE");
        assert!(m.attributes.contains(&RouteAttribute::Table(1000)));
        assert!(
            !m.attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Destination(_)))
        );
    }

    #[test]
    fn delete_matches_any_scope() {
        let r = Route::new("10.1.0.0/16".parse().unwrap());
        let m = r.message(true);
        assert_eq!(u8::from(m.header.scope), 255);
        assert_eq!(u8::from(m.header.kind), 0);
    }

    #[test]
    fn round_trip_through_message() {
        let mut r = Route::new("fd00:1::/64".parse().unwrap())
            .via("fd00::1".parse().unwrap())
            .dev(3)
            .metric(100);
        r.mtu = Some(1400);
        r.advmss = Some(1300);
        let parsed = Route::from_message(r.message(false)).unwrap();
        assert_eq!(parsed.dst, r.dst);
        assert_eq!(parsed.gw, r.gw);
        assert_eq!(parsed.oif, Some(3));
        assert_eq!(parsed.priority, Some(100));
        assert_eq!(parsed.mtu, Some(1400));
        assert_eq!(parsed.advmss, Some(1300));
        assert_eq!(parsed.table, Some(254));
    }
}
