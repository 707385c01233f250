//! One iptables rule as a normalised token list, and the quoting used in restore scripts.
//!
//! # Canonical form
//!
//! "Append if missing" compares our rule with what `iptables-save` prints, so a [`Rule`] is
//! kept in the exact token form `iptables-save` (v1.8, legacy and nf_tables) prints:
//!
//! - header options first, in the order `-s -d -i -o -p`, each optionally preceded by `!`;
//!   addresses get an explicit prefix with host bits cleared (`-s 10.0.0.2` becomes
//!   `-s 10.0.0.2/32`, `-d 10.1.2.3/24` becomes `-d 10.1.2.0/24`), a non-negated `/0` address
//!   and `-p all` are dropped, protocol names are lower-cased and numbers named
//!   (`-p 6` becomes `-p tcp`, `-p icmpv6`/`-p 58` become `-p ipv6-icmp`);
//! - then the matches in the order given; options of the protocol match that follow `-p`
//!   without an explicit `-m` get the implicit module (`-p tcp --dport 80` becomes
//!   `-p tcp -m tcp --dport 80`); long aliases are shortened (`--destination-port` to
//!   `--dport`, multiport `--destination-ports` to `--dports`); `tcp`/`udp` print `--sport`
//!   before `--dport`, `addrtype` `--src-type` before `--dst-type`; `mark` values are
//!   printed in hex;
//! - then the target (`-j NAME` or `-g CHAIN`) and its options; `MARK --set-mark V` becomes
//!   `--set-xmark V/0xffffffff` and `--or-mark V` becomes `--set-xmark V/V`.
//!
//! Options not listed here are kept verbatim: write them the way `iptables-save` prints them.
//! The tests in `tests/firewall_iptables.rs` check every form the bridge and portmap plugins
//! use against a real `iptables-save`.
//!
//! # Injection safety
//!
//! A restore script is line based and `iptables-restore` splits arguments on blanks, honouring
//! double quotes with backslash escapes inside them. Every token is therefore written either
//! bare (only when it contains no blank, quote or backslash and is not empty) or double-quoted
//! with `"`, `\` and `'` escaped, exactly like `iptables-save` quotes comments. Newlines,
//! carriage returns and NUL cannot be represented on a restore line, so [`Rule::new`] rejects
//! any token that contains one: a network name or container id placed in a comment can
//! neither end the comment nor start another rule or command. A comment longer than 255 bytes
//! is cut to its first 255, which is what iptables itself stores and prints (`xt_comment`)
//! when the reference bridge writes its untrimmed `name: "<net>" id: "<cid>"`; portmap's own
//! trimming (`253 bytes + "..."`) is [`crate::firewall::names::trim_comment`].

use std::fmt;
use std::net::IpAddr;

use crate::firewall::names::MAX_IPTABLES_COMMENT_LEN;

/// The part of a comment iptables stores (and `iptables-save` prints): its first 255 bytes
/// (`XT_MAX_COMMENT_LEN - 1`, cut at a character boundary); the rest is silently dropped.
pub(crate) fn stored_comment(c: &str) -> &str {
    let mut cut = c.len().min(MAX_IPTABLES_COMMENT_LEN);
    while !c.is_char_boundary(cut) {
        cut -= 1;
    }
    &c[..cut]
}

/// Why a token list is not an acceptable rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid iptables rule {tokens:?}: {reason}")]
pub struct RuleError {
    /// The tokens as given.
    pub tokens: Vec<String>,
    /// What is wrong with them.
    pub reason: String,
}

/// An iptables rule specification (everything after `-A CHAIN`) in canonical token form.
///
/// Build one with [`Rule::new`] from the arguments you would pass to `iptables -A CHAIN`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rule {
    tokens: Vec<String>,
}

#[derive(Default)]
struct Header {
    src: Option<(bool, String)>,
    dst: Option<(bool, String)>,
    iif: Option<(bool, String)>,
    oif: Option<(bool, String)>,
    proto: Option<(bool, String)>,
}

struct Segment {
    /// `-m` for a match, `-j`/`-g` for the target.
    flag: &'static str,
    name: String,
    opts: Vec<String>,
}

fn header_key(tok: &str) -> Option<char> {
    match tok {
        "-s" | "--source" | "--src" => Some('s'),
        "-d" | "--destination" | "--dst" => Some('d'),
        "-i" | "--in-interface" => Some('i'),
        "-o" | "--out-interface" => Some('o'),
        "-p" | "--protocol" => Some('p'),
        _ => None,
    }
}

fn canonical_proto(p: &str) -> Option<String> {
    let lower = p.to_ascii_lowercase();
    let named = match lower.as_str() {
        "all" | "0" => return None,
        "1" => "icmp",
        "6" => "tcp",
        "17" => "udp",
        "33" => "dccp",
        "47" => "gre",
        "50" => "esp",
        "51" => "ah",
        "58" | "icmpv6" | "icmp6" => "ipv6-icmp",
        "132" => "sctp",
        "136" => "udplite",
        other => other,
    };
    Some(named.to_owned())
}

fn implicit_match(proto: &str) -> Option<&'static str> {
    match proto {
        "tcp" => Some("tcp"),
        "udp" => Some("udp"),
        "sctp" => Some("sctp"),
        "udplite" => Some("udplite"),
        "dccp" => Some("dccp"),
        "icmp" => Some("icmp"),
        "ipv6-icmp" => Some("icmp6"),
        _ => None,
    }
}

/// Parses `addr` or `addr/prefix` and prints it as iptables-save does (`net/prefix`).
/// Returns `None` for a `/0` network (which iptables-save omits).
fn canonical_addr(v: &str) -> Result<Option<String>, String> {
    let (addr, prefix) = match v.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (v, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| {
        format!("{v:?} is not an IP address or network (host names are not supported)")
    })?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len: u8 = match prefix {
        None => max,
        Some(p) => {
            let n: u8 = p.parse().map_err(|_| {
                format!("{v:?}: prefix length must be a number (masks are not supported)")
            })?;
            if n > max {
                return Err(format!("{v:?}: prefix length above {max}"));
            }
            n
        }
    };
    if len == 0 {
        return Ok(None);
    }
    let net = match ip {
        IpAddr::V4(a) => {
            let mask = u32::MAX << (32 - u32::from(len));
            IpAddr::from(std::net::Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX << (128 - u32::from(len));
            IpAddr::from(std::net::Ipv6Addr::from(u128::from(a) & mask))
        }
    };
    Ok(Some(format!("{net}/{len}")))
}

fn parse_u32_any(s: &str) -> Option<u32> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// `V` or `V/M` with numbers in any base, printed as `0xV` / `0xV/0xM`.
fn canonical_mark(s: &str) -> String {
    let hex = |x: &str| parse_u32_any(x).map(|n| format!("{n:#x}"));
    match s.split_once('/') {
        Some((v, m)) => match (hex(v), hex(m)) {
            (Some(v), Some(m)) => format!("{v}/{m}"),
            _ => s.to_owned(),
        },
        None => hex(s).unwrap_or_else(|| s.to_owned()),
    }
}

/// Moves the option `first` (with its value and a preceding `!`) before `second`.
fn order_options(opts: &mut Vec<String>, first: &str, second: &str) {
    let pos = |opts: &[String], name: &str| opts.iter().position(|t| t == name);
    let (Some(f), Some(s)) = (pos(opts, first), pos(opts, second)) else {
        return;
    };
    if f < s {
        return;
    }
    // Extract the `first` option group: optional "!" before it, the option and one value.
    let start = if f > 0 && opts[f - 1] == "!" {
        f - 1
    } else {
        f
    };
    let end = (f + 2).min(opts.len());
    let group: Vec<String> = opts.drain(start..end).collect();
    let s_start = if s > 0 && opts[s - 1] == "!" {
        s - 1
    } else {
        s
    };
    for (i, t) in group.into_iter().enumerate() {
        opts.insert(s_start + i, t);
    }
}

fn canonical_match_opts(name: &str, opts: &mut Vec<String>) {
    for t in opts.iter_mut() {
        let renamed = match (name, t.as_str()) {
            ("tcp" | "udp" | "sctp" | "udplite" | "dccp", "--destination-port") => "--dport",
            ("tcp" | "udp" | "sctp" | "udplite" | "dccp", "--source-port") => "--sport",
            ("multiport", "--destination-ports") => "--dports",
            ("multiport", "--source-ports") => "--sports",
            _ => continue,
        };
        *t = renamed.to_owned();
    }
    match name {
        "tcp" | "udp" | "sctp" | "udplite" | "dccp" => order_options(opts, "--sport", "--dport"),
        "addrtype" => order_options(opts, "--src-type", "--dst-type"),
        "mark" => {
            if let Some(i) = opts.iter().position(|t| t == "--mark")
                && let Some(v) = opts.get_mut(i + 1)
            {
                *v = canonical_mark(v);
            }
        }
        _ => {}
    }
}

fn canonical_target_opts(name: &str, opts: &mut [String]) {
    if name != "MARK" || opts.len() != 2 {
        return;
    }
    let value = opts[1].clone();
    match opts[0].as_str() {
        "--set-xmark" => opts[1] = canonical_mark(&value),
        "--set-mark" => {
            opts[0] = "--set-xmark".to_owned();
            opts[1] = if value.contains('/') {
                canonical_mark(&value)
            } else {
                canonical_mark(&format!("{value}/0xffffffff"))
            };
        }
        "--or-mark" => {
            opts[0] = "--set-xmark".to_owned();
            opts[1] = canonical_mark(&format!("{value}/{value}"));
        }
        _ => {}
    }
}

/// Parses the tokens into the header options (`-s`, `-d`, `-i`, `-o`, `-p`, each at most once,
/// possibly negated) and the segments (`-m` matches and the `-j`/`-g` target with their
/// options). An option before any `-m`/`-j` belongs to the protocol's implicit match.
fn parse_tokens(tokens: &[String]) -> Result<(Header, Vec<Segment>), String> {
    let mut header = Header::default();
    let mut segments: Vec<Segment> = Vec::new();
    // Index into `segments` of the segment that collects options (None before any).
    let mut current: Option<usize> = None;
    let mut i = 0;
    while i < tokens.len() {
        let tok = tokens[i].as_str();
        let negated_header =
            tok == "!" && tokens.get(i + 1).is_some_and(|n| header_key(n).is_some());
        if negated_header || header_key(tok).is_some() {
            let opt_idx = if negated_header { i + 1 } else { i };
            set_header(&mut header, negated_header, &tokens[opt_idx..])?;
            i = opt_idx + 2;
            continue;
        }
        match tok {
            "-m" | "--match" | "-j" | "--jump" | "-g" | "--goto" => {
                let flag = match tok {
                    "-m" | "--match" => "-m",
                    "-g" | "--goto" => "-g",
                    _ => "-j",
                };
                if flag != "-m" && segments.iter().any(|s| s.flag != "-m") {
                    return Err("more than one -j/-g target".to_owned());
                }
                let Some(name) = tokens.get(i + 1) else {
                    return Err(if flag == "-m" {
                        "-m needs a module name".to_owned()
                    } else {
                        format!("{tok} needs a target")
                    });
                };
                segments.push(Segment {
                    flag,
                    name: name.clone(),
                    opts: Vec::new(),
                });
                current = Some(segments.len() - 1);
                i += 2;
            }
            _ => {
                let idx = match current {
                    Some(idx) => idx,
                    None => {
                        // An option before any -m/-j: it must belong to the protocol's
                        // implicit match (`-p tcp --dport 80`).
                        let proto = header.proto.as_ref().and_then(|(_, p)| canonical_proto(p));
                        let Some(m) = proto.as_deref().and_then(implicit_match) else {
                            return Err(format!(
                                "option {tok} is not inside a match (-m) or target (-j)"
                            ));
                        };
                        segments.push(Segment {
                            flag: "-m",
                            name: m.to_owned(),
                            opts: Vec::new(),
                        });
                        segments.len() - 1
                    }
                };
                current = Some(idx);
                segments[idx].opts.push(tok.to_owned());
                i += 1;
            }
        }
    }
    Ok((header, segments))
}

/// Records header option `opt_value[0]` with its value `opt_value[1]`.
fn set_header(header: &mut Header, neg: bool, opt_value: &[String]) -> Result<(), String> {
    let opt = opt_value[0].as_str();
    let Some(value) = opt_value.get(1) else {
        return Err(format!("option {opt} needs a value"));
    };
    let slot = match header_key(opt) {
        Some('s') => &mut header.src,
        Some('d') => &mut header.dst,
        Some('i') => &mut header.iif,
        Some('o') => &mut header.oif,
        _ => &mut header.proto,
    };
    if slot.is_some() {
        return Err(format!("option {opt} given twice"));
    }
    *slot = Some((neg, value.clone()));
    Ok(())
}

/// The header in iptables-save's order and form (`-s`, `-d`, `-i`, `-o`, `-p`).
fn emit_header(header: &Header, out: &mut Vec<String>) -> Result<(), String> {
    let mut push_header = |slot: &Option<(bool, String)>, flag: &str, value: Option<String>| {
        if let (Some((neg, _)), Some(v)) = (slot, value) {
            if *neg {
                out.push("!".to_owned());
            }
            out.push(flag.to_owned());
            out.push(v);
        }
    };
    for (slot, flag) in [(&header.src, "-s"), (&header.dst, "-d")] {
        let value = match slot {
            Some((neg, v)) => match canonical_addr(v)? {
                Some(a) => Some(a),
                // `! -s 0.0.0.0/0` cannot be dropped; keep it printable.
                None if *neg => Some(v.clone()),
                None => None,
            },
            None => None,
        };
        push_header(slot, flag, value);
    }
    push_header(
        &header.iif,
        "-i",
        header.iif.as_ref().map(|(_, v)| v.clone()),
    );
    push_header(
        &header.oif,
        "-o",
        header.oif.as_ref().map(|(_, v)| v.clone()),
    );
    push_header(
        &header.proto,
        "-p",
        header.proto.as_ref().and_then(|(_, v)| canonical_proto(v)),
    );
    Ok(())
}

/// Matches in the order given, then the target: iptables-save prints every match before the
/// target even when `-j X` came first (`-j ACCEPT -m comment ...`).
fn emit_segments(segments: Vec<Segment>, out: &mut Vec<String>) -> Result<(), String> {
    let mut target: Option<Segment> = None;
    for mut seg in segments {
        if seg.flag != "-m" {
            canonical_target_opts(&seg.name, &mut seg.opts);
            target = Some(seg);
            continue;
        }
        canonical_match_opts(&seg.name, &mut seg.opts);
        if seg.name == "comment" {
            match seg.opts.as_mut_slice() {
                [opt, c] if opt == "--comment" => {
                    let stored = stored_comment(c).len();
                    c.truncate(stored);
                }
                _ => return Err("-m comment takes exactly --comment <text>".to_owned()),
            }
        }
        out.push("-m".to_owned());
        out.push(seg.name);
        out.extend(seg.opts);
    }
    if let Some(seg) = target {
        out.push(seg.flag.to_owned());
        out.push(seg.name);
        out.extend(seg.opts);
    }
    Ok(())
}

impl Rule {
    /// Validates and normalises the arguments of `iptables -A CHAIN <tokens>`: checks the
    /// characters, parses header and segments, then writes them in iptables-save's form.
    ///
    /// See the module documentation for the canonical form and the rejected characters.
    pub fn new<I, S>(tokens: I) -> Result<Rule, RuleError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let tokens: Vec<String> = tokens.into_iter().map(Into::into).collect();
        let normalise = || -> Result<Vec<String>, String> {
            if let Some(t) = tokens.iter().find(|t| t.contains(['\n', '\r', '\0'])) {
                return Err(format!(
                    "token {t:?} contains a newline, carriage return or NUL"
                ));
            }
            let (header, segments) = parse_tokens(&tokens)?;
            let mut out: Vec<String> = Vec::with_capacity(tokens.len() + 2);
            emit_header(&header, &mut out)?;
            emit_segments(segments, &mut out)?;
            Ok(out)
        };
        match normalise() {
            Ok(out) => Ok(Rule { tokens: out }),
            Err(reason) => Err(RuleError { tokens, reason }),
        }
    }

    /// Builds a rule from tokens as printed by `iptables-save`, without normalisation.
    pub(crate) fn from_saved(tokens: Vec<String>) -> Rule {
        Rule { tokens }
    }

    /// The canonical tokens.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The text of the first `-m comment --comment` of the rule.
    pub fn comment(&self) -> Option<&str> {
        self.tokens
            .windows(4)
            .find(|w| w[0] == "-m" && w[1] == "comment" && w[2] == "--comment")
            .map(|w| w[3].as_str())
    }

    /// The target of `-j TARGET` or `-g CHAIN`.
    pub fn target(&self) -> Option<&str> {
        self.tokens
            .windows(2)
            .find(|w| w[0] == "-j" || w[0] == "-g")
            .map(|w| w[1].as_str())
    }
}

/// Writes `tok` for a restore script: bare when safe, else double-quoted with `"`, `\` and `'`
/// escaped. `xtables_save_string` quoting is used for comments so our text equals
/// `iptables-save`'s.
pub(crate) fn push_quoted(out: &mut String, tok: &str, strict: bool) {
    let bare_ok = if strict {
        !tok.is_empty()
            && tok
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    } else {
        !tok.is_empty()
            && !tok
                .bytes()
                .any(|b| matches!(b, b' ' | b'\t' | b'"' | b'\\' | b'\'' | b'\x0b' | b'\x0c'))
    };
    if bare_ok {
        out.push_str(tok);
        return;
    }
    out.push('"');
    for c in tok.chars() {
        if matches!(c, '"' | '\\' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

impl fmt::Display for Rule {
    /// The rule as `iptables-save` prints it after `-A CHAIN ` (and as a restore script
    /// needs it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        let mut prev_is_comment_opt = false;
        for (i, t) in self.tokens.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            push_quoted(&mut s, t, prev_is_comment_opt);
            prev_is_comment_opt = t == "--comment";
        }
        f.write_str(&s)
    }
}

/// Splits one restore/save line into arguments like `iptables-restore` does: blanks separate
/// arguments, double quotes group, and inside quotes a backslash escapes the next character.
pub(crate) fn split_args(line: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut in_arg = false;
    let mut quoted = false;
    let mut escaped = false;
    for c in line.chars() {
        if quoted {
            if escaped {
                cur.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                in_arg = true;
            }
            ' ' | '\t' | '\n' => {
                if in_arg {
                    args.push(std::mem::take(&mut cur));
                    in_arg = false;
                }
            }
            c => {
                cur.push(c);
                in_arg = true;
            }
        }
    }
    if quoted {
        return Err("unterminated quote".to_owned());
    }
    if in_arg {
        args.push(cur);
    }
    Ok(args)
}
