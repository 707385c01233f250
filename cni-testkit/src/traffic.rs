//! Traffic inside namespaces: ping, and TCP / UDP echo servers and clients, all with timeouts.
//!
//! A socket stays bound to the namespace it was created in, so servers and clients create
//! their sockets inside the namespace (on a short-lived thread, see [`TempNetns::run`]) and
//! then work from ordinary threads. A server is ready as soon as `start` returns (the socket
//! is bound and listening); no sleeps are needed.
//!
//! ```no_run
//! use std::time::Duration;
//! use cni_testkit::TempNetns;
//! use cni_testkit::traffic::{self, TcpEchoServer};
//!
//! # fn main() -> cni_testkit::Result<()> {
//! let (a, b) = (TempNetns::new("a")?, TempNetns::new("b")?);
//! // ... connect a and b, give b 10.0.0.2 ...
//! let server = TcpEchoServer::start(&b, "0.0.0.0:8080".parse().unwrap())?;
//! let reply = traffic::tcp_echo(&a, "10.0.0.2:8080".parse().unwrap(), b"hi", Duration::from_secs(5))?;
//! assert_eq!(reply, b"hi");
//! traffic::ping(&a, "10.0.0.2".parse().unwrap(), Duration::from_secs(2))?;
//! # drop(server);
//! # Ok(())
//! # }
//! ```

use std::io::{Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket,
};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::netns::TempNetns;
use crate::process;

/// Default timeout for the helpers' own waits.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Ping `dst` once from inside `ns`; an error (with ping's output) unless a reply came
/// within `timeout` (rounded up to whole seconds, at least one).
pub fn ping(ns: &TempNetns, dst: IpAddr, timeout: Duration) -> Result<()> {
    let secs = timeout.as_secs().max(1) + u64::from(timeout.subsec_nanos() > 0);
    let wait = secs.to_string();
    let dst_s = dst.to_string();
    let mut args = vec!["-c", "1", "-W", wait.as_str(), "-n", "-q"];
    if dst.is_ipv6() {
        args.insert(0, "-6");
    }
    args.push(&dst_s);
    process::run_ok(
        "ping",
        &args,
        Some(ns.netns()),
        timeout + Duration::from_secs(5),
    )
    .map(drop)
}

/// Whether one ping from `ns` to `dst` is answered within `timeout`.
pub fn can_ping(ns: &TempNetns, dst: IpAddr, timeout: Duration) -> bool {
    ping(ns, dst, timeout).is_ok()
}

fn io_err(op: String) -> impl FnOnce(std::io::Error) -> Error {
    Error::io(op)
}

/// A TCP server inside a namespace that echoes what each connection sends. Stopped on drop.
#[derive(Debug)]
pub struct TcpEchoServer {
    addr: SocketAddr,
    listener: Arc<TcpListener>,
    stop: Arc<AtomicBool>,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    thread: Option<JoinHandle<()>>,
}

impl TcpEchoServer {
    /// Listen on `addr` inside `ns` (port 0 picks a free port, see
    /// [`TcpEchoServer::local_addr`]). Ready when this returns.
    pub fn start(ns: &TempNetns, addr: SocketAddr) -> Result<Self> {
        let listener = ns
            .run(|| TcpListener::bind(addr))?
            .map_err(io_err(format!("listen on tcp {addr}")))?;
        let local = listener
            .local_addr()
            .map_err(io_err("local address".into()))?;
        let listener = Arc::new(listener);
        let stop = Arc::new(AtomicBool::new(false));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (listener, stop, peers) = (listener.clone(), stop.clone(), peers.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Ok((mut conn, peer)) = listener.accept() else {
                        continue;
                    };
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(mut p) = peers.lock() {
                        p.push(peer);
                    }
                    thread::spawn(move || {
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                        let mut buf = [0u8; 4096];
                        while let Ok(n) = conn.read(&mut buf) {
                            if n == 0 || conn.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    });
                }
            })
        };
        Ok(TcpEchoServer {
            addr: local,
            listener,
            stop,
            peers,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The source addresses of the connections accepted so far (to see SNAT at work).
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

impl Drop for TcpEchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocked accept(2) with EINVAL.
        let _ =
            nix::sys::socket::shutdown(self.listener.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connect from inside `ns` to `dst`, send `payload`, close the sending side and return
/// everything received until the server closes, all within `timeout`.
pub fn tcp_echo(
    ns: &TempNetns,
    dst: SocketAddr,
    payload: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>> {
    tcp_echo_from(ns, None, dst, payload, timeout)
}

/// As [`tcp_echo`], from source address `src` (port 0: any port).
pub fn tcp_echo_from(
    ns: &TempNetns,
    src: Option<SocketAddr>,
    dst: SocketAddr,
    payload: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>> {
    let stream = ns.run(|| connect(src, dst, timeout))??;
    let deadline = Instant::now() + timeout;
    let mut stream = stream;
    let op = format!("tcp echo with {dst}");
    stream
        .set_write_timeout(Some(timeout))
        .and_then(|()| stream.write_all(payload))
        .and_then(|()| stream.shutdown(Shutdown::Write))
        .map_err(io_err(op.clone()))?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout {
                what: op,
                after: timeout,
            });
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(io_err(op.clone()))?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Error::Timeout {
                    what: op,
                    after: timeout,
                });
            }
            Err(e) => return Err(io_err(op)(e)),
        }
    }
}

fn connect(src: Option<SocketAddr>, dst: SocketAddr, timeout: Duration) -> Result<TcpStream> {
    let op = format!("connect to tcp {dst}");
    let Some(src) = src else {
        return TcpStream::connect_timeout(&dst, timeout).map_err(io_err(op));
    };
    // std cannot bind before connecting: a blocking connect(2) with SO_SNDTIMEO as timeout.
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrStorage, bind, setsockopt, socket,
        sockopt::SendTimeout,
    };
    use nix::sys::time::{TimeVal, TimeValLike};
    let sys = |op: String| {
        move |e: nix::errno::Errno| Error::Io {
            op,
            source: e.into(),
        }
    };
    let family = if dst.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd =
        socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).map_err(sys(op.clone()))?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(src)).map_err(sys(format!("bind {src}")))?;
    let micros = i64::try_from(timeout.as_micros())
        .unwrap_or(i64::MAX)
        .max(1);
    setsockopt(&fd, SendTimeout, &TimeVal::microseconds(micros)).map_err(sys(op.clone()))?;
    match nix::sys::socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(dst)) {
        Ok(()) => Ok(TcpStream::from(fd)),
        Err(nix::errno::Errno::EINPROGRESS | nix::errno::Errno::EAGAIN) => Err(Error::Timeout {
            what: op,
            after: timeout,
        }),
        Err(e) => Err(sys(op)(e)),
    }
}

/// A UDP server inside a namespace that sends every datagram back to its sender. Stopped on
/// drop.
#[derive(Debug)]
pub struct UdpEchoServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    thread: Option<JoinHandle<()>>,
}

impl UdpEchoServer {
    /// Bind `addr` inside `ns` (port 0 picks a free port). Ready when this returns.
    pub fn start(ns: &TempNetns, addr: SocketAddr) -> Result<Self> {
        let sock = ns
            .run(|| UdpSocket::bind(addr))?
            .map_err(io_err(format!("bind udp {addr}")))?;
        let local = sock.local_addr().map_err(io_err("local address".into()))?;
        // The stop flag is looked at between receive timeouts.
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(io_err("set receive timeout".into()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, peers) = (stop.clone(), peers.clone());
            thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while !stop.load(Ordering::SeqCst) {
                    if let Ok((n, peer)) = sock.recv_from(&mut buf) {
                        if let Ok(mut p) = peers.lock() {
                            p.push(peer);
                        }
                        let _ = sock.send_to(&buf[..n], peer);
                    }
                }
            })
        };
        Ok(UdpEchoServer {
            addr: local,
            stop,
            peers,
            thread: Some(thread),
        })
    }

    /// The address it is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The source addresses of the datagrams received so far.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

impl Drop for UdpEchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Send `payload` from inside `ns` to `dst` over UDP and return the first reply. The datagram
/// is re-sent every 250 ms (UDP may drop it) until `timeout`.
pub fn udp_echo(
    ns: &TempNetns,
    dst: SocketAddr,
    payload: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>> {
    let any: IpAddr = if dst.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let op = format!("udp echo with {dst}");
    let sock = ns
        .run(|| UdpSocket::bind(SocketAddr::new(any, 0)))?
        .map_err(io_err(op.clone()))?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout {
                what: op,
                after: timeout,
            });
        }
        sock.send_to(payload, dst).map_err(io_err(op.clone()))?;
        sock.set_read_timeout(Some(left.min(Duration::from_millis(250))))
            .map_err(io_err(op.clone()))?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if from == dst || from.port() == dst.port() => {
                return Ok(buf[..n].to_vec());
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(io_err(op)(e)),
        }
    }
}
