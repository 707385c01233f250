//! `resolvConf`: a resolv.conf turned into the result's `dns`, as the reference parses it.
//!
//! Lines are trimmed; empty lines and lines starting with `#` or `;` are skipped, as are lines
//! with fewer than two fields. `nameserver` appends one server, `domain` sets the domain (the
//! last one wins), `search` and `options` append all their fields.

use std::path::Path;

use cni_types::Dns;

/// Parse resolv.conf text.
pub fn parse_resolv_conf(text: &str) -> Dns {
    let mut dns = Dns::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 2 {
            continue;
        }
        let rest = fields[1..].iter().map(|s| s.to_string());
        match fields[0] {
            "nameserver" => dns.nameservers.push(fields[1].to_string()),
            "domain" => dns.domain = fields[1].to_string(),
            "search" => dns.search.extend(rest),
            "options" => dns.options.extend(rest),
            _ => {}
        }
    }
    dns
}

/// Read and parse a resolv.conf file.
pub fn read_resolv_conf(path: &Path) -> std::io::Result<Dns> {
    Ok(parse_resolv_conf(&std::fs::read_to_string(path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_file() {
        let d = parse_resolv_conf("nameserver 10.0.0.1\n");
        assert_eq!(d.nameservers, ["10.0.0.1"]);
        assert!(d.domain.is_empty() && d.search.is_empty() && d.options.is_empty());
    }

    #[test]
    fn comments_are_ignored() {
        let d = parse_resolv_conf(
            "nameserver 10.0.0.1\n# nameserver 10.0.0.2\n  ; nameserver 10.0.0.3\nnameserver 10.0.0.4 # trailing\n",
        );
        assert_eq!(d.nameservers, ["10.0.0.1", "10.0.0.4"]);
    }

    #[test]
    fn all_fields() {
        let d = parse_resolv_conf(
            "nameserver 10.0.0.1\nnameserver 10.0.0.2\ndomain example.com\n\
             options foo bar\noptions baz\nsearch a.example.com b.example.com\n\
             search c.example.com\nsortlist 1.2.3.4\nnameserver\n",
        );
        assert_eq!(d.nameservers, ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(d.domain, "example.com");
        assert_eq!(d.options, ["foo", "bar", "baz"]);
        assert_eq!(
            d.search,
            ["a.example.com", "b.example.com", "c.example.com"]
        );
    }
}
