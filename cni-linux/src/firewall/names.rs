//! Names and comments exactly as the reference Go plugins compute them.
//!
//! Chain names and comments are shared state with the Go plugins (a node may switch between
//! them, and teardown must find what the other created), so these helpers reproduce
//! `pkg/utils/iptables.go` (`FormatChainName`, `MustFormatChainNameWithPrefix`,
//! `MustFormatHashWithPrefix`, `FormatComment`) and portmap's `trimComment` byte for byte.

use super::sha512::sha512_hex;

/// Maximum length of an iptables chain name used by the reference (`maxChainLength`).
pub const MAX_CHAIN_LENGTH: usize = 28;

/// Prefix of every chain name the reference derives from a hash (`chainPrefix`).
pub const CHAIN_PREFIX: &str = "CNI-";

/// Length of a hex SHA-512 digest (`MaxHashLen`).
pub const MAX_HASH_LEN: usize = 128;

/// Maximum length of an iptables comment (`xt_comment`: 256 bytes including the NUL).
pub const MAX_IPTABLES_COMMENT_LEN: usize = 255;

/// Error for an impossible hash-name request (the reference panics instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid hash name length {length} for prefix {prefix:?}")]
pub struct HashNameError {
    /// Requested total length.
    pub length: usize,
    /// Requested prefix.
    pub prefix: String,
}

/// `prefix + hex(sha512(to_hash))`, cut to `length` bytes (`MustFormatHashWithPrefix`).
///
/// Fails when `prefix` is at least `length` bytes long or `length` exceeds 128, which is when
/// the reference panics.
pub fn format_hash_with_prefix(
    length: usize,
    prefix: &str,
    to_hash: &str,
) -> Result<String, HashNameError> {
    if prefix.len() >= length || length > MAX_HASH_LEN {
        return Err(HashNameError {
            length,
            prefix: prefix.to_owned(),
        });
    }
    let mut out = String::with_capacity(prefix.len() + MAX_HASH_LEN);
    out.push_str(prefix);
    out.push_str(&sha512_hex(to_hash.as_bytes()));
    // Only ASCII hex follows the prefix, and prefix.len() < length, so this is a char boundary.
    out.truncate(length);
    Ok(out)
}

/// The reference's per-container chain name: `("CNI-" + prefix + hex(sha512(name + id)))[:28]`
/// (`MustFormatChainNameWithPrefix`). Portmap uses the prefix `"DN-"` (and formerly `"SN-"`).
///
/// ```
/// use cni_linux::firewall::names::format_chain_name_with_prefix;
/// let cid = "icee6giejonei6sohng6ahngee7laquohquee9shiGo7fohferakah3Feiyoolu2pei7ciPhoh7shaoX6vai3vuf0ahfaeng8yohb9ceu0daez5hashee8ooYai5wa3y";
/// assert_eq!(
///     format_chain_name_with_prefix("DN-", "testNetName", cid).unwrap(),
///     "CNI-DN-bfd599665540dd91d5d28"
/// );
/// ```
pub fn format_chain_name_with_prefix(
    prefix: &str,
    name: &str,
    id: &str,
) -> Result<String, HashNameError> {
    let mut to_hash = String::with_capacity(name.len() + id.len());
    to_hash.push_str(name);
    to_hash.push_str(id);
    format_hash_with_prefix(
        MAX_CHAIN_LENGTH,
        &format!("{CHAIN_PREFIX}{prefix}"),
        &to_hash,
    )
}

/// The reference's per-container chain name without extra prefix (`FormatChainName`), as used
/// by the bridge plugin's iptables `ipMasq`: `("CNI-" + hex(sha512(name + id)))[:28]`.
pub fn format_chain_name(name: &str, id: &str) -> String {
    let mut s = String::with_capacity(MAX_CHAIN_LENGTH);
    s.push_str(CHAIN_PREFIX);
    let mut to_hash = String::with_capacity(name.len() + id.len());
    to_hash.push_str(name);
    to_hash.push_str(id);
    s.push_str(&sha512_hex(to_hash.as_bytes()));
    s.truncate(MAX_CHAIN_LENGTH);
    s
}

/// The reference's rule comment `name: "<net>" id: "<cid>"` (`FormatComment`, Go `%q`).
pub fn format_comment(name: &str, id: &str) -> String {
    format!("name: {} id: {}", go_quote(name), go_quote(id))
}

/// Trims a comment to the iptables limit the way portmap does (`trimComment`): strings longer
/// than 255 bytes become their first 253 bytes followed by `"..."`.
///
/// Difference from Go: Go cuts at byte 253 even inside a multi-byte UTF-8 sequence (producing
/// invalid UTF-8); we cut at the closest character boundary at or below 253 bytes. Both agree
/// whenever byte 253 is a character boundary (always for ASCII).
pub fn trim_comment(val: &str) -> String {
    if val.len() <= MAX_IPTABLES_COMMENT_LEN {
        return val.to_owned();
    }
    let mut cut = MAX_IPTABLES_COMMENT_LEN - 2;
    while !val.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &val[..cut])
}

/// Quotes `s` like Go's `strconv.Quote` (`%q`): double quotes, backslash escapes for `"`,
/// `\`, `\a \b \f \n \r \t \v`, `\xNN` for other ASCII control bytes, `\uNNNN`/`\UNNNNNNNN`
/// for non-printable code points.
///
/// Printability follows Go's `unicode.IsPrint` for ASCII exactly; outside ASCII, control,
/// non-ASCII space and the common format (Cf) and private-use code points are escaped. Exotic
/// unassigned code points may be printed raw where Go would escape them.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
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
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if go_is_print(c) => out.push(c),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn go_is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    let u = c as u32;
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    // Common format (Cf) characters, private use and non-characters, which Go escapes.
    let escaped_ranges: &[(u32, u32)] = &[
        (0x00ad, 0x00ad),
        (0x0600, 0x0605),
        (0x061c, 0x061c),
        (0x06dd, 0x06dd),
        (0x070f, 0x070f),
        (0x180e, 0x180e),
        (0x200b, 0x200f),
        (0x2028, 0x202e),
        (0x2060, 0x206f),
        (0xd800, 0xf8ff),
        (0xfdd0, 0xfdef),
        (0xfeff, 0xfeff),
        (0xfff9, 0xfffb),
        (0xfffe, 0xffff),
        (0xe0000, 0xe007f),
        (0xf0000, 0x10ffff),
    ];
    !escaped_ranges
        .iter()
        .any(|&(lo, hi)| (lo..=hi).contains(&u))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "icee6giejonei6sohng6ahngee7laquohquee9shiGo7fohferakah3Feiyoolu2pei7ciPhoh7shaoX6vai3vuf0ahfaeng8yohb9ceu0daez5hashee8ooYai5wa3y";

    #[test]
    fn reference_golden_chain_names() {
        // portmap_iptables_test.go
        assert_eq!(
            format_chain_name_with_prefix("DN-", "testNetName", CID).unwrap(),
            "CNI-DN-bfd599665540dd91d5d28"
        );
        assert_eq!(
            format_chain_name_with_prefix("DN-", "test", CID).unwrap(),
            "CNI-DN-67e92b96e692a494b6b85"
        );
    }

    #[test]
    fn chain_name_is_28_chars_and_prefix_free_variant_matches() {
        let a = format_chain_name("net", "cid");
        assert_eq!(a.len(), MAX_CHAIN_LENGTH);
        assert!(a.starts_with("CNI-"));
        assert_eq!(a, format_chain_name_with_prefix("", "net", "cid").unwrap());
        // different inputs, different names
        assert_ne!(a, format_chain_name("net", "cie"));
    }

    #[test]
    fn hash_with_prefix_rejects_what_go_panics_on() {
        assert!(format_hash_with_prefix(4, "CNI-", "x").is_err());
        assert!(format_hash_with_prefix(129, "", "x").is_err());
        assert_eq!(
            format_hash_with_prefix(16, "", "").unwrap(),
            "cf83e1357eefb8bd"
        );
    }

    #[test]
    fn comment_uses_go_quoting() {
        assert_eq!(format_comment("net", "cid"), r#"name: "net" id: "cid""#);
        assert_eq!(
            format_comment("a\"b\\c", "x\ny\u{1}\u{7f}é\u{200b}"),
            r#"name: "a\"b\\c" id: "x\ny\x01\x7fé\u200b""#
        );
        assert_eq!(
            go_quote("\u{0}\t\u{b}\u{c}\u{7}\u{8}\r"),
            r#""\x00\t\v\f\a\b\r""#
        );
        assert_eq!(go_quote("\u{a0}"), r#""\u00a0""#);
        assert_eq!(go_quote("\u{f0000}"), r#""\U000f0000""#);
        assert_eq!(go_quote("日本"), "\"日本\"");
    }

    #[test]
    fn trim_comment_like_portmap() {
        let short = "a".repeat(255);
        assert_eq!(trim_comment(&short), short);
        let long = "b".repeat(300);
        let t = trim_comment(&long);
        assert_eq!(t.len(), 256);
        assert_eq!(&t[..253], &long[..253]);
        assert!(t.ends_with("..."));
        // Multi-byte character straddling byte 253: cut before it.
        let mut s = "c".repeat(252);
        s.push('é'); // bytes 252..254
        s.push_str(&"d".repeat(10));
        let t = trim_comment(&s);
        assert_eq!(t, format!("{}...", "c".repeat(252)));
    }
}
