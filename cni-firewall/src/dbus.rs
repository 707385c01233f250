//! A minimal synchronous D-Bus client: enough to call firewalld.
//!
//! It speaks the wire protocol directly over the bus's unix socket: SASL `EXTERNAL`
//! authentication (the kernel vouches for our uid), `Hello`, then method calls whose
//! arguments are strings, and replies whose values are strings or booleans (anything else is
//! skipped). Signals and other messages that arrive in between are ignored. No threads, no
//! async runtime, no dependency: a plugin makes a handful of calls and exits.
//!
//! The bus address comes from `DBUS_SYSTEM_BUS_ADDRESS` (`unix:path=...` or
//! `unix:abstract=...`), else `/run/dbus/system_bus_socket`, as libdbus and godbus do.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// The system bus socket when `DBUS_SYSTEM_BUS_ADDRESS` is not set.
pub const DEFAULT_SYSTEM_BUS: &str = "unix:path=/run/dbus/system_bus_socket";
/// How long a call may take (libdbus's default timeout).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(25);
/// The largest message we accept (the spec's limit is 128 MiB; firewalld's are tiny).
const MAX_MESSAGE: usize = 1 << 20;

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbusError {
    /// The address is not one we can connect to.
    #[error("unsupported D-Bus address {0:?}")]
    Address(String),
    /// The socket could not be opened.
    #[error("cannot connect to the D-Bus system bus at {addr}")]
    Connect {
        /// Address.
        addr: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The bus refused our authentication.
    #[error("D-Bus authentication refused: {0}")]
    Auth(String),
    /// Reading or writing failed.
    #[error("D-Bus i/o")]
    Io(#[from] io::Error),
    /// A message we could not understand.
    #[error("D-Bus protocol: {0}")]
    Protocol(String),
    /// The called service answered with an error.
    #[error("{name}: {message}")]
    Remote {
        /// Error name, e.g. `org.fedoraproject.FirewallD1.Exception`.
        name: String,
        /// Its message.
        message: String,
    },
}

/// A value of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// `s`, `o` or `g`.
    Str(String),
    /// `b`.
    Bool(bool),
}

/// A connection to a bus.
#[derive(Debug)]
pub struct Bus {
    sock: UnixStream,
    serial: u32,
    addr: String,
}

fn socket_of(addr: &str) -> Result<UnixStream, DbusError> {
    let connect = |r: io::Result<UnixStream>| {
        r.map_err(|source| DbusError::Connect {
            addr: addr.to_owned(),
            source,
        })
    };
    // The first transport we understand of a `;`-separated list.
    for entry in addr.split(';') {
        let Some(rest) = entry.strip_prefix("unix:") else {
            continue;
        };
        for kv in rest.split(',') {
            if let Some(p) = kv.strip_prefix("path=") {
                return connect(UnixStream::connect(unescape(p)));
            }
            if let Some(name) = kv.strip_prefix("abstract=") {
                use std::os::linux::net::SocketAddrExt;
                let sa = std::os::unix::net::SocketAddr::from_abstract_name(unescape(name))
                    .map_err(|source| DbusError::Connect {
                        addr: addr.to_owned(),
                        source,
                    })?;
                return connect(UnixStream::connect_addr(&sa));
            }
        }
    }
    Err(DbusError::Address(addr.to_owned()))
}

/// D-Bus address values escape bytes as `%xx`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Bus {
    /// The system bus (see the module docs for the address).
    pub fn system() -> Result<Bus, DbusError> {
        let addr = std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
            .ok()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| DEFAULT_SYSTEM_BUS.to_owned());
        Bus::connect(&addr)
    }

    /// Connects to `addr`, authenticates and says `Hello`.
    pub fn connect(addr: &str) -> Result<Bus, DbusError> {
        let sock = socket_of(addr)?;
        sock.set_read_timeout(Some(CALL_TIMEOUT))?;
        sock.set_write_timeout(Some(CALL_TIMEOUT))?;
        let mut bus = Bus {
            sock,
            serial: 0,
            addr: addr.to_owned(),
        };
        bus.auth()?;
        bus.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
            &[],
        )?;
        Ok(bus)
    }

    /// The address connected to.
    pub fn address(&self) -> &str {
        &self.addr
    }

    fn auth(&mut self) -> Result<(), DbusError> {
        let uid = nix_uid();
        let hex: String = uid
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.sock.write_all(b"\0")?;
        self.sock
            .write_all(format!("AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let line = self.read_line()?;
        if !line.starts_with("OK ") {
            return Err(DbusError::Auth(line));
        }
        self.sock.write_all(b"BEGIN\r\n")?;
        Ok(())
    }

    fn read_line(&mut self) -> Result<String, DbusError> {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            if self.sock.read(&mut b)? == 0 || line.len() > 4096 {
                return Err(DbusError::Auth(
                    "connection closed during authentication".into(),
                ));
            }
            line.push(b[0]);
        }
        line.truncate(line.len() - 2);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Calls `member` of `iface` on `path` of `dest` with string arguments; returns the
    /// reply's values, or the service's error as [`DbusError::Remote`].
    pub fn call(
        &mut self,
        dest: &str,
        path: &str,
        iface: &str,
        member: &str,
        args: &[&str],
    ) -> Result<Vec<Arg>, DbusError> {
        self.serial += 1;
        let serial = self.serial;
        let msg = encode_call(serial, dest, path, iface, member, args);
        self.sock.write_all(&msg)?;
        loop {
            let m = self.read_message()?;
            if m.reply_serial != Some(serial) {
                continue;
            }
            return match m.kind {
                2 => Ok(m.args),
                3 => Err(DbusError::Remote {
                    name: m.error_name.unwrap_or_default(),
                    message: match m.args.first() {
                        Some(Arg::Str(s)) => s.clone(),
                        _ => String::new(),
                    },
                }),
                k => Err(DbusError::Protocol(format!("unexpected message type {k}"))),
            };
        }
    }

    fn read_message(&mut self) -> Result<Message, DbusError> {
        let mut fixed = [0u8; 16];
        self.sock.read_exact(&mut fixed)?;
        let le = match fixed[0] {
            b'l' => true,
            b'B' => false,
            e => return Err(DbusError::Protocol(format!("bad endianness {e}"))),
        };
        let u32_at = |b: &[u8], i: usize| {
            let a = [b[i], b[i + 1], b[i + 2], b[i + 3]];
            if le {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            }
        };
        let body_len = u32_at(&fixed, 4) as usize;
        let fields_len = u32_at(&fixed, 12) as usize;
        let header_len = (16 + fields_len).div_ceil(8) * 8;
        let total = header_len + body_len;
        if total > MAX_MESSAGE {
            return Err(DbusError::Protocol(format!("message of {total} bytes")));
        }
        let mut buf = vec![0u8; total];
        buf[..16].copy_from_slice(&fixed);
        self.sock.read_exact(&mut buf[16..])?;
        Message::parse(&buf, le, fields_len, header_len)
    }
}

fn nix_uid() -> u32 {
    // The uid the kernel reports for our socket (SO_PEERCRED on the bus side).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|u| u.parse().ok())
        .unwrap_or(0)
}

// ------------------------------------------------------------------- encoding

struct Enc {
    b: Vec<u8>,
}

impl Enc {
    fn pad(&mut self, n: usize) {
        while !self.b.len().is_multiple_of(n) {
            self.b.push(0);
        }
    }
    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.b.extend_from_slice(&v.to_le_bytes());
    }
    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.b.extend_from_slice(s.as_bytes());
        self.b.push(0);
    }
    fn signature(&mut self, s: &str) {
        self.b.push(s.len() as u8);
        self.b.extend_from_slice(s.as_bytes());
        self.b.push(0);
    }
    fn field(&mut self, code: u8, sig: &str, f: impl FnOnce(&mut Enc)) {
        self.pad(8);
        self.b.push(code);
        self.signature(sig);
        f(self);
    }
}

fn encode_call(
    serial: u32,
    dest: &str,
    path: &str,
    iface: &str,
    member: &str,
    args: &[&str],
) -> Vec<u8> {
    let mut body = Enc { b: Vec::new() };
    for a in args {
        body.string(a);
    }
    let sig = "s".repeat(args.len());
    let mut fields = Enc { b: Vec::new() };
    fields.field(1, "o", |e| e.string(path));
    fields.field(2, "s", |e| e.string(iface));
    fields.field(3, "s", |e| e.string(member));
    fields.field(6, "s", |e| e.string(dest));
    if !sig.is_empty() {
        fields.field(8, "g", |e| e.signature(&sig));
    }
    let mut m = Enc { b: Vec::new() };
    m.b.extend_from_slice(&[b'l', 1, 0, 1]);
    m.b.extend_from_slice(&(body.b.len() as u32).to_le_bytes());
    m.b.extend_from_slice(&serial.to_le_bytes());
    m.b.extend_from_slice(&(fields.b.len() as u32).to_le_bytes());
    // The fields were encoded from offset 0; in the message they start at 16, which keeps
    // every 8-byte alignment.
    m.b.extend_from_slice(&fields.b);
    m.pad(8);
    m.b.extend_from_slice(&body.b);
    m.b
}

// ------------------------------------------------------------------- decoding

struct Message {
    kind: u8,
    reply_serial: Option<u32>,
    error_name: Option<String>,
    args: Vec<Arg>,
}

struct Dec<'a> {
    b: &'a [u8],
    i: usize,
    le: bool,
}

impl Dec<'_> {
    fn err(what: &str) -> DbusError {
        DbusError::Protocol(format!("truncated or malformed {what}"))
    }
    fn align(&mut self, n: usize) {
        self.i = self.i.div_ceil(n) * n;
    }
    fn byte(&mut self) -> Result<u8, DbusError> {
        let v = *self.b.get(self.i).ok_or_else(|| Self::err("byte"))?;
        self.i += 1;
        Ok(v)
    }
    fn u32(&mut self) -> Result<u32, DbusError> {
        self.align(4);
        let s = self
            .b
            .get(self.i..self.i + 4)
            .ok_or_else(|| Self::err("u32"))?;
        self.i += 4;
        let a = [s[0], s[1], s[2], s[3]];
        Ok(if self.le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }
    fn bytes_nul(&mut self, len: usize) -> Result<String, DbusError> {
        let s = self
            .b
            .get(self.i..self.i + len)
            .ok_or_else(|| Self::err("string"))?;
        self.i += len + 1;
        Ok(String::from_utf8_lossy(s).into_owned())
    }
    fn string(&mut self) -> Result<String, DbusError> {
        let len = self.u32()? as usize;
        self.bytes_nul(len)
    }
    fn signature(&mut self) -> Result<String, DbusError> {
        let len = self.byte()? as usize;
        self.bytes_nul(len)
    }
    /// One value of a single-character basic type; `None` for a type we do not decode
    /// (the rest of the body is then skipped).
    fn value(&mut self, t: char) -> Result<Option<Arg>, DbusError> {
        Ok(match t {
            's' | 'o' => Some(Arg::Str(self.string()?)),
            'g' => Some(Arg::Str(self.signature()?)),
            'b' => Some(Arg::Bool(self.u32()? != 0)),
            'u' | 'i' => Some(Arg::Str(self.u32()?.to_string())),
            _ => None,
        })
    }
}

impl Message {
    fn parse(
        b: &[u8],
        le: bool,
        fields_len: usize,
        header_len: usize,
    ) -> Result<Message, DbusError> {
        let mut m = Message {
            kind: b[1],
            reply_serial: None,
            error_name: None,
            args: Vec::new(),
        };
        let mut d = Dec { b, i: 16, le };
        let end = 16 + fields_len;
        let mut sig = String::new();
        while d.i < end {
            d.align(8);
            if d.i >= end {
                break;
            }
            let code = d.byte()?;
            let t = d.signature()?;
            let v = d.value(t.chars().next().unwrap_or('?'))?;
            let Some(v) = v else {
                return Err(DbusError::Protocol(format!("header field of type {t}")));
            };
            match (code, v) {
                (4, Arg::Str(s)) => m.error_name = Some(s),
                (5, Arg::Str(s)) => m.reply_serial = s.parse().ok(),
                (8, Arg::Str(s)) => sig = s,
                _ => {}
            }
        }
        let mut body = Dec {
            b,
            i: header_len,
            le,
        };
        for t in sig.chars() {
            match body.value(t)? {
                Some(a) => m.args.push(a),
                None => break,
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_call_round_trips_through_the_decoder() {
        let m = encode_call(7, "d.e", "/p", "i.f", "m", &["trusted", "10.0.0.1/32"]);
        let fields_len = u32::from_le_bytes([m[12], m[13], m[14], m[15]]) as usize;
        let header_len = (16 + fields_len).div_ceil(8) * 8;
        assert_eq!(
            m.len(),
            header_len + u32::from_le_bytes([m[4], m[5], m[6], m[7]]) as usize
        );
        let d = Message::parse(&m, true, fields_len, header_len).unwrap();
        assert_eq!(d.kind, 1);
        assert_eq!(
            d.args,
            [Arg::Str("trusted".into()), Arg::Str("10.0.0.1/32".into())]
        );
    }

    #[test]
    fn addresses() {
        assert_eq!(unescape("/run/a%20b"), "/run/a b");
        assert!(matches!(
            socket_of("tcp:host=x,port=1"),
            Err(DbusError::Address(_))
        ));
    }
}
