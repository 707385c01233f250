//! A bounded transfer measured at the receiver: a TCP or UDP sender in one namespace writes
//! for a fixed time at a paced rate, a receiver in the other counts the bytes it gets, with a
//! timestamp per read. The rate is taken over the steady part (after the first half second),
//! from the receiver's own clock and counts: what the token bucket let through.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use cni_testkit::TempNetns;

/// One measurement at a time in a test binary: two cores are shared by sender, receiver
/// and the kernel's work.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// What the receiver saw.
#[derive(Debug, Clone)]
pub struct Received {
    /// (time since the first byte, bytes so far), one per read.
    pub samples: Vec<(Duration, u64)>,
}

impl Received {
    /// Bytes received up to `t` after the first byte.
    pub fn bytes_at(&self, t: Duration) -> u64 {
        self.samples
            .iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .map_or(0, |(_, b)| *b)
    }

    /// Payload bits per second between `from` and `to` after the first byte.
    pub fn bits_per_sec(&self, from: Duration, to: Duration) -> f64 {
        let bytes = self.bytes_at(to).saturating_sub(self.bytes_at(from));
        bytes as f64 * 8.0 / (to - from).as_secs_f64()
    }

    /// The steady rate: from 0.5 s after the first byte to `until`.
    pub fn steady(&self, until: Duration) -> f64 {
        self.bits_per_sec(Duration::from_millis(500), until)
    }
}

const TCP_CHUNK: usize = 16 * 1024;
const UDP_PAYLOAD: usize = 1200;

/// Sends from `from` to `dst_ip` (an address of `to`) for `duration`, paced at `pace`
/// payload bits per second, and returns what the receiver in `to` counted.
pub fn transfer(
    proto: Proto,
    from: &TempNetns,
    to: &TempNetns,
    dst_ip: Ipv4Addr,
    pace: u64,
    duration: Duration,
) -> Received {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let done = Arc::new(AtomicBool::new(false));
    let (receiver, port) = match proto {
        Proto::Tcp => {
            let l = to
                .run(|| TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)))
                .unwrap()
                .unwrap();
            let port = l.local_addr().unwrap().port();
            (thread::spawn(move || receive_tcp(l)), port)
        }
        Proto::Udp => {
            let s = to
                .run(|| UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)))
                .unwrap()
                .unwrap();
            let port = s.local_addr().unwrap().port();
            let d = done.clone();
            (thread::spawn(move || receive_udp(s, d)), port)
        }
    };
    let dst = SocketAddr::from((dst_ip, port));
    match proto {
        Proto::Tcp => {
            let s = from.run(move || TcpStream::connect(dst)).unwrap().unwrap();
            send_tcp(s, pace, duration);
        }
        Proto::Udp => {
            let s = from
                .run(|| UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)))
                .unwrap()
                .unwrap();
            send_udp(s, dst, pace, duration);
        }
    }
    done.store(true, Ordering::SeqCst);
    receiver.join().unwrap()
}

/// Sleeps when ahead of `pace`.
fn pace_to(start: Instant, sent: u64, pace: u64) {
    let due = Duration::from_secs_f64(sent as f64 * 8.0 / pace as f64);
    let elapsed = start.elapsed();
    if due > elapsed {
        thread::sleep(due - elapsed);
    }
}

fn send_tcp(mut s: TcpStream, pace: u64, duration: Duration) {
    let buf = vec![0x5au8; TCP_CHUNK];
    let start = Instant::now();
    let mut sent = 0u64;
    s.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while start.elapsed() < duration {
        match s.write(&buf) {
            Ok(n) => sent += n as u64,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("tcp send: {e}"),
        }
        pace_to(start, sent, pace);
    }
    // Closing the connection ends the receiver; what is still queued is dropped with it.
    let _ = s.shutdown(std::net::Shutdown::Both);
}

fn send_udp(s: UdpSocket, dst: SocketAddr, pace: u64, duration: Duration) {
    let buf = vec![0xa5u8; UDP_PAYLOAD];
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < duration {
        // A datagram refused on the way (ENOBUFS from a full queue) counts as sent: dropping
        // is what shaping does.
        let _ = s.send_to(&buf, dst);
        sent += UDP_PAYLOAD as u64;
        pace_to(start, sent, pace);
    }
}

fn receive_tcp(l: TcpListener) -> Received {
    let (mut c, _) = l.accept().unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut samples = Vec::new();
    let mut total = 0u64;
    let mut first = None;
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let now = Instant::now();
                let t0 = *first.get_or_insert(now);
                total += n as u64;
                samples.push((now - t0, total));
            }
        }
    }
    Received { samples }
}

fn receive_udp(s: UdpSocket, done: Arc<AtomicBool>) -> Received {
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut samples = Vec::new();
    let mut total = 0u64;
    let mut first = None;
    loop {
        match s.recv(&mut buf) {
            Ok(n) => {
                let now = Instant::now();
                let t0 = *first.get_or_insert(now);
                total += n as u64;
                samples.push((now - t0, total));
            }
            Err(_) if done.load(Ordering::SeqCst) => break,
            Err(_) => {}
        }
    }
    Received { samples }
}
