//! `conditionsV4` / `conditionsV6` for the nftables backend.
//!
//! The reference pastes these strings into its rules as nft syntax. We speak netlink, not nft
//! syntax, so they are parsed into statements. The subset covers what such conditions are
//! used for (restricting which traffic is port-forwarded):
//!
//! ```text
//! ip saddr|daddr [==|!=] ADDR[/LEN]        (conditionsV4)
//! ip6 saddr|daddr [==|!=] ADDR[/LEN]       (conditionsV6)
//! [meta] iifname|oifname [==|!=] NAME      (NAME may be quoted; a trailing * is a prefix)
//! meta mark [==|!=] NUM                    (decimal or 0x hex)
//! meta l4proto [==|!=] tcp|udp|sctp|NUM
//! tcp|udp|sctp dport|sport [==|!=] PORT
//! th dport|sport [==|!=] PORT
//! fib daddr type [==|!=] local
//! ```
//!
//! The strings are joined with spaces and split again, so `["ip saddr 10.0.0.0/8"]` and
//! `["ip", "saddr", "10.0.0.0/8"]` are the same. Anything else (sets `{ ... }`, verdicts,
//! other expressions) is refused with an error naming the token, rather than ignored.

use std::net::IpAddr;

use cni_linux::firewall::IpFamily;
use cni_linux::firewall::nftables::{CmpOp, Field, L4Proto, Stmt, Value};

/// A condition outside the supported subset, or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported nftables condition at {token:?}: {reason}")]
pub struct ConditionError {
    /// The token where parsing stopped (empty at the end of input).
    pub token: String,
    /// What was expected.
    pub reason: String,
}

fn tokenize(conds: &[String]) -> Result<Vec<String>, ConditionError> {
    let text = conds.join(" ");
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut tok = String::new();
        if c == '"' {
            chars.next();
            let mut closed = false;
            for c in chars.by_ref() {
                if c == '"' {
                    closed = true;
                    break;
                }
                tok.push(c);
            }
            if !closed {
                return Err(ConditionError {
                    token: tok,
                    reason: "unterminated quoted string".into(),
                });
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                tok.push(c);
                chars.next();
            }
        }
        out.push(tok);
    }
    Ok(out)
}

struct Parser {
    toks: Vec<String>,
    pos: usize,
    family: IpFamily,
}

impl Parser {
    fn err<T>(&self, reason: impl Into<String>) -> Result<T, ConditionError> {
        Err(ConditionError {
            token: self.toks.get(self.pos).cloned().unwrap_or_default(),
            reason: reason.into(),
        })
    }

    fn peek(&self) -> Option<&str> {
        self.toks.get(self.pos).map(String::as_str)
    }

    fn next(&mut self) -> Option<String> {
        let t = self.toks.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn expect(&mut self, what: &[&str]) -> Result<String, ConditionError> {
        match self.peek() {
            Some(t) if what.contains(&t) => Ok(self.next().unwrap_or_default()),
            _ => self.err(format!("expected {}", what.join(" or "))),
        }
    }

    fn op(&mut self) -> CmpOp {
        match self.peek() {
            Some("!=" | "ne") => {
                self.pos += 1;
                CmpOp::Neq
            }
            Some("==" | "eq") => {
                self.pos += 1;
                CmpOp::Eq
            }
            _ => CmpOp::Eq,
        }
    }

    fn value(&mut self, what: &str) -> Result<String, ConditionError> {
        match self.peek() {
            Some(t) if !t.starts_with('{') => Ok(self.next().unwrap_or_default()),
            Some(_) => self.err("anonymous sets are not supported"),
            None => self.err(format!("expected {what}")),
        }
    }

    fn addr(&mut self, v6: bool) -> Result<Stmt, ConditionError> {
        let dir = self.expect(&["saddr", "daddr"])?;
        let field = match (v6, dir.as_str()) {
            (false, "saddr") => Field::IpSaddr,
            (false, _) => Field::IpDaddr,
            (true, "saddr") => Field::Ip6Saddr,
            (true, _) => Field::Ip6Daddr,
        };
        let op = self.op();
        let text = self.value("an address")?;
        let value = if text.contains('/') {
            match text.parse::<ipnet::IpNet>() {
                Ok(n) if n.addr().is_ipv6() == v6 => Value::Net(n),
                _ => return Err(self.bad_value(&text, "an address or network of the family")),
            }
        } else {
            match text.parse::<IpAddr>() {
                Ok(a) if a.is_ipv6() == v6 => Value::Addr(a),
                _ => return Err(self.bad_value(&text, "an address or network of the family")),
            }
        };
        Ok(Stmt::Cmp { field, op, value })
    }

    fn bad_value(&self, text: &str, expected: &str) -> ConditionError {
        ConditionError {
            token: text.to_owned(),
            reason: format!("expected {expected}"),
        }
    }

    fn number(&self, text: &str) -> Option<u64> {
        if let Some(h) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            u64::from_str_radix(h, 16).ok()
        } else {
            text.parse().ok()
        }
    }

    fn port(&mut self) -> Result<Value, ConditionError> {
        let text = self.value("a port")?;
        self.number(&text)
            .and_then(|n| u16::try_from(n).ok())
            .map(Value::Port)
            .ok_or_else(|| self.bad_value(&text, "a port number"))
    }

    fn ifname(&mut self, field: Field) -> Result<Stmt, ConditionError> {
        let op = self.op();
        let text = self.value("an interface name")?;
        let base = text.strip_suffix('*').unwrap_or(&text);
        if base.is_empty() || base.len() > 15 {
            return Err(self.bad_value(&text, "an interface name of 1 to 15 bytes"));
        }
        Ok(Stmt::Cmp {
            field,
            op,
            value: Value::Ifname(text),
        })
    }

    fn one(&mut self) -> Result<Stmt, ConditionError> {
        let Some(tok) = self.peek().map(str::to_owned) else {
            return self.err("expected a match");
        };
        match tok.as_str() {
            "ip" | "ip6" => {
                let v6 = tok == "ip6";
                if v6 != (self.family == IpFamily::V6) {
                    return self.err(format!(
                        "{tok} matches do not apply to {} traffic",
                        self.family
                    ));
                }
                self.pos += 1;
                self.addr(v6)
            }
            "iifname" | "oifname" => {
                self.pos += 1;
                self.ifname(if tok == "iifname" {
                    Field::Iifname
                } else {
                    Field::Oifname
                })
            }
            "meta" => {
                self.pos += 1;
                let key = self.expect(&["iifname", "oifname", "mark", "l4proto"])?;
                match key.as_str() {
                    "iifname" => self.ifname(Field::Iifname),
                    "oifname" => self.ifname(Field::Oifname),
                    "mark" => {
                        let op = self.op();
                        let text = self.value("a mark")?;
                        let m = self
                            .number(&text)
                            .and_then(|n| u32::try_from(n).ok())
                            .ok_or_else(|| self.bad_value(&text, "a 32-bit number"))?;
                        Ok(Stmt::Cmp {
                            field: Field::Mark,
                            op,
                            value: Value::Mark(m),
                        })
                    }
                    _ => {
                        let op = self.op();
                        let text = self.value("a protocol")?;
                        let p = match L4Proto::parse(&text) {
                            Some(p) => p.number(),
                            None => self
                                .number(&text)
                                .and_then(|n| u8::try_from(n).ok())
                                .ok_or_else(|| {
                                    self.bad_value(&text, "tcp, udp, sctp or a number")
                                })?,
                        };
                        Ok(Stmt::Cmp {
                            field: Field::L4Proto,
                            op,
                            value: Value::Proto(p),
                        })
                    }
                }
            }
            "tcp" | "udp" | "sctp" | "th" => {
                self.pos += 1;
                let dir = self.expect(&["dport", "sport"])?;
                let field = match (L4Proto::parse(&tok), dir.as_str()) {
                    (Some(p), "dport") => Field::Dport(p),
                    (Some(p), _) => Field::Sport(p),
                    (None, "dport") => Field::ThDport,
                    (None, _) => Field::ThSport,
                };
                let op = self.op();
                let value = self.port()?;
                Ok(Stmt::Cmp { field, op, value })
            }
            "fib" => {
                self.pos += 1;
                self.expect(&["daddr"])?;
                self.expect(&["type"])?;
                let op = self.op();
                self.expect(&["local"])?;
                Ok(Stmt::FibDaddrLocal {
                    negate: op == CmpOp::Neq,
                })
            }
            _ => self.err("expected ip, ip6, iifname, oifname, meta, tcp, udp, sctp, th or fib"),
        }
    }
}

/// Parses the conditions of `family` into statements (empty for no conditions).
pub fn parse(conds: &[String], family: IpFamily) -> Result<Vec<Stmt>, ConditionError> {
    let toks = tokenize(conds)?;
    let mut p = Parser {
        toks,
        pos: 0,
        family,
    };
    let mut out = Vec::new();
    while p.peek().is_some() {
        out.push(p.one()?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn parses_the_supported_subset() {
        let st = parse(
            &s(&[
                "ip saddr != 10.0.0.0/8",
                "iifname",
                "\"eth*\"",
                "meta mark 0x10 tcp dport 80 fib daddr type local",
                "meta l4proto udp th sport == 53",
            ]),
            IpFamily::V4,
        )
        .unwrap();
        assert_eq!(st.len(), 7);
        assert_eq!(
            st[0],
            Stmt::Cmp {
                field: Field::IpSaddr,
                op: CmpOp::Neq,
                value: Value::Net("10.0.0.0/8".parse().unwrap())
            }
        );
        assert_eq!(
            st[1],
            Stmt::Cmp {
                field: Field::Iifname,
                op: CmpOp::Eq,
                value: Value::Ifname("eth*".into())
            }
        );
        assert_eq!(st[4], Stmt::FibDaddrLocal { negate: false });
        assert_eq!(
            st[6],
            Stmt::Cmp {
                field: Field::ThSport,
                op: CmpOp::Eq,
                value: Value::Port(53)
            }
        );
        let st = parse(&s(&["ip6", "daddr", "fd00::1"]), IpFamily::V6).unwrap();
        assert_eq!(
            st,
            vec![Stmt::Cmp {
                field: Field::Ip6Daddr,
                op: CmpOp::Eq,
                value: Value::Addr("fd00::1".parse().unwrap())
            }]
        );
        assert!(parse(&[], IpFamily::V4).unwrap().is_empty());
    }

    #[test]
    fn refuses_what_it_cannot_express() {
        for (conds, fam, tok) in [
            (vec!["ip6 saddr fd00::1"], IpFamily::V4, "ip6"),
            (vec!["ip saddr fd00::1"], IpFamily::V4, "fd00::1"),
            (vec!["ip saddr { 1.2.3.4 }"], IpFamily::V4, "{"),
            (vec!["counter"], IpFamily::V4, "counter"),
            (vec!["tcp dport 70000"], IpFamily::V4, "70000"),
            (vec!["iifname \"eth0"], IpFamily::V4, "eth0"),
            (vec!["ip saddr"], IpFamily::V4, ""),
            (vec!["a", "b"], IpFamily::V4, "a"),
        ] {
            let e = parse(&s(&conds), fam).unwrap_err();
            assert_eq!(e.token, tok, "{conds:?}: {e}");
        }
    }
}
