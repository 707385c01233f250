//! Go's formatting of strings, where the reference plugins' messages and names depend on it:
//! `%q` ([`quote`], Go's `strconv.Quote`), `%q` of a `[]string` ([`quote_list`]), `%v` of a
//! `[]string` ([`list`]), and the reverse of `%q` for parsing what the Go plugins wrote
//! ([`unquote_prefix`]).
//!
//! The rules are Go's exactly: `\a \b \f \n \r \t \v`, `\\` and `\"`; other code points below
//! U+0020 and U+007F as `\xNN`; code points Go's `strconv.IsPrint` refuses ([`is_print`]) as
//! `\uNNNN` or `\UNNNNNNNN`; in [`quote_bytes`], each byte of invalid UTF-8 as `\xNN`.
//! Everything else is copied. Printability comes from a table generated with the Go that
//! built the reference plugins (1.19.8, Unicode 13.0.0), so code points assigned in later
//! Unicode versions are escaped, as that Go does.
//!
//! ```
//! use cni_types::go;
//!
//! assert_eq!(go::quote("eth0\n"), r#""eth0\n""#);
//! assert_eq!(go::quote("\u{200b}é"), r#""\u200bé""#);
//! assert_eq!(go::quote_list(&["a b", "c"]), r#"["a b" "c"]"#);
//! assert_eq!(go::unquote_prefix(r#""x\ty" rest"#), Some(("x\ty".to_string(), " rest")));
//! ```

use std::fmt::{Display, Write as _};

mod print;

/// Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space
/// (Unicode categories L, M, N, P, S and U+0020), as Go 1.19.8 classifies them.
pub fn is_print(c: char) -> bool {
    let c = c as u32;
    print::PRINTABLE
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Appends `c` as Go's `strconv.Quote` writes it inside the quotes.
fn push_escaped(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\u{07}' => out.push_str("\\a"),
        '\u{08}' => out.push_str("\\b"),
        '\u{0c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{0b}' => out.push_str("\\v"),
        c if is_print(c) => out.push(c),
        c if (c as u32) < 0x20 || c == '\u{7f}' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// `s` as Go's `%q` (`strconv.Quote`) prints it.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    out.push('"');
    out
}

/// Bytes as Go's `%q` prints a string holding them: as [`quote`], and each byte that is not
/// part of valid UTF-8 as `\xNN`.
pub fn quote_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c);
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out.push('"');
    out
}

/// A `[]string` as Go's `%q` prints it: `["a" "b"]`.
pub fn quote_list<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s.as_ref())).collect();
    format!("[{}]", quoted.join(" "))
}

/// A slice as Go's `%v` prints it: `[a b]`.
pub fn list<T: Display>(items: &[T]) -> String {
    let words: Vec<String> = items.iter().map(ToString::to_string).collect();
    format!("[{}]", words.join(" "))
}

/// Decodes a Go `%q` string at the start of `s` (`"..."` with Go's backslash escapes); returns
/// the text and the rest of `s` after the closing quote. `None` when `s` does not start with
/// one, or when it decodes to bytes that are not UTF-8.
pub fn unquote_prefix(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut chars = body.char_indices();
    let mut out: Vec<u8> = Vec::new();
    let push = |out: &mut Vec<u8>, c: char| {
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    };
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((String::from_utf8(out).ok()?, &body[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                let simple = match e {
                    'a' => Some('\u{7}'),
                    'b' => Some('\u{8}'),
                    'f' => Some('\u{c}'),
                    'n' => Some('\n'),
                    'r' => Some('\r'),
                    't' => Some('\t'),
                    'v' => Some('\u{b}'),
                    '\\' => Some('\\'),
                    '"' => Some('"'),
                    _ => None,
                };
                if let Some(c) = simple {
                    push(&mut out, c);
                    continue;
                }
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    _ => return None,
                };
                let mut hex = String::new();
                for _ in 0..n {
                    hex.push(chars.next()?.1);
                }
                let v = u32::from_str_radix(&hex, 16).ok()?;
                if e == 'x' {
                    // A byte, as in Go: `\xNN` of a valid UTF-8 string is below 0x80.
                    out.push(u8::try_from(v).ok()?);
                } else {
                    push(&mut out, char::from_u32(v)?);
                }
            }
            c => push(&mut out, c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs and what Go 1.19.8's `strconv.Quote` returned for them (a throw-away program
    /// printing `strconv.Quote(c)` for each case; `/usr/lib/cni/bridge` is built with that Go).
    const GO_QUOTED: &[(&[u8], &str)] = &[
        (b"\x07\x08\x0c\n\r\t\x0b", r#""\a\b\f\n\r\t\v""#),
        (b"\x00\x01\x1f\x7f", r#""\x00\x01\x1f\x7f""#),
        (br#"say "hi" \ there"#, r#""say \"hi\" \\ there""#),
        ("\u{a0}\u{ad}\u{85}".as_bytes(), r#""\u00a0\u00ad\u0085""#),
        ("é日本".as_bytes(), "\"é日本\""),
        (
            "\u{200b}\u{2028}\u{202e}\u{2060}\u{feff}".as_bytes(),
            r#""\u200b\u2028\u202e\u2060\ufeff""#,
        ),
        (
            "\u{1F600}\u{E0001}\u{10FFFF}\u{fffd}".as_bytes(),
            "\"\u{1F600}\\U000e0001\\U0010ffff\u{fffd}\"",
        ),
        (
            "\u{378}\u{61c}\u{d7ff}\u{e000}".as_bytes(),
            r#""\u0378\u061c\ud7ff\ue000""#,
        ),
        ("\u{3000}\u{1680} ~".as_bytes(), r#""\u3000\u1680 ~""#),
        (b"\x80", r#""\x80""#),
        (b"a\xe2\x82b", r#""a\xe2\x82b""#),
        (b"\xed\xa0\x80", r#""\xed\xa0\x80""#),
        (b"\xff\xfe", r#""\xff\xfe""#),
    ];

    #[test]
    fn quote_is_go_s() {
        for (input, go) in GO_QUOTED {
            assert_eq!(quote_bytes(input), *go, "{input:?}");
            if let Ok(s) = std::str::from_utf8(input) {
                assert_eq!(quote(s), *go, "{s:?}");
            }
        }
    }

    #[test]
    fn lists_are_go_s() {
        // Go: fmt.Sprintf("%q", []string{"a b", "c\"d", "\x01"}).
        assert_eq!(
            quote_list(&["a b", "c\"d", "\u{1}"]),
            r#"["a b" "c\"d" "\x01"]"#
        );
        assert_eq!(quote_list::<&str>(&[]), "[]");
        assert_eq!(list(&["-j", "ACCEPT"]), "[-j ACCEPT]");
    }

    #[test]
    fn print_table_is_sorted_and_disjoint() {
        let t = print::PRINTABLE;
        assert!(t.iter().all(|(lo, hi)| lo <= hi));
        assert!(t.windows(2).all(|w| w[0].1 + 1 < w[1].0));
        assert!(is_print(' ') && is_print('~') && !is_print('\u{7f}'));
        assert!(!is_print('\u{a0}') && is_print('\u{a1}') && !is_print('\u{10ffff}'));
    }

    #[test]
    fn unquote_reverses_quote() {
        for (input, go) in GO_QUOTED {
            let rest = format!("{go} tail");
            let decoded = unquote_prefix(&rest);
            match std::str::from_utf8(input) {
                Ok(s) => assert_eq!(decoded, Some((s.to_string(), " tail")), "{go}"),
                // Not UTF-8: no `String` to give back.
                Err(_) => assert_eq!(decoded, None, "{go}"),
            }
        }
        assert_eq!(unquote_prefix("no quote"), None);
        assert_eq!(unquote_prefix(r#""unterminated"#), None);
        assert_eq!(unquote_prefix(r#""bad \q escape""#), None);
        assert_eq!(
            unquote_prefix(r#""\x01é\u200b""#).map(|(s, _)| s),
            Some("\u{1}é\u{200b}".to_string())
        );
    }
}
