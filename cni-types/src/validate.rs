//! The reference library's rules for container IDs, network names and interface names.
//!
//! These run before any path or device name is built from input, so a name can never escape a
//! directory or smuggle a separator.

use crate::error::{Error, ErrorCode};

/// The longest interface name Linux accepts (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = 15;

/// `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`: the reference's rule for container IDs and network names.
pub fn is_valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Container IDs: empty is code 3 `missing containerID`; bad characters are code 4.
pub fn validate_container_id(id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::msg(
            ErrorCode::UnknownContainer,
            "missing containerID",
        ));
    }
    if !is_valid_name(id) {
        return Err(Error::new(
            ErrorCode::InvalidEnvironmentVariables,
            "invalid characters in containerID",
            id,
        ));
    }
    Ok(())
}

/// Network names: empty or bad characters are code 7.
pub fn validate_network_name(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::msg(
            ErrorCode::InvalidNetworkConfig,
            "missing network name",
        ));
    }
    if !is_valid_name(name) {
        return Err(Error::new(
            ErrorCode::InvalidNetworkConfig,
            "invalid characters found in network name",
            name,
        ));
    }
    Ok(())
}

/// Interface names: 1-15 bytes, not `.` or `..`, no `/`, `:` or whitespace (code 4).
pub fn validate_interface_name(name: &str) -> Result<(), Error> {
    let bad = |msg: &str, details: &str| {
        Err(Error::new(
            ErrorCode::InvalidEnvironmentVariables,
            msg,
            details,
        ))
    };
    if name.is_empty() {
        return bad("interface name is empty", "");
    }
    if name.len() > MAX_IFNAME_LEN {
        return bad(
            "interface name is too long",
            &format!(
                "interface name should be less than {} characters",
                MAX_IFNAME_LEN + 1
            ),
        );
    }
    if name == "." || name == ".." {
        return bad("interface name is . or ..", "");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return bad(
            "interface name contains / or : or whitespace characters",
            "",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "0", "abc-DEF_1.2", "55e4cbbe1ec68a10c059eec868ad722f"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "-a", ".a", "_a", "a/b", "..", "a b", "a:b", "é", "a\n"] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn container_id_codes() {
        assert_eq!(validate_container_id("").unwrap_err().code(), 3);
        assert_eq!(validate_container_id("../x").unwrap_err().code(), 4);
        assert!(validate_container_id("abc").is_ok());
    }

    #[test]
    fn network_name_codes() {
        assert_eq!(validate_network_name("").unwrap_err().code(), 7);
        let e = validate_network_name("a/b").unwrap_err();
        assert_eq!(e.code(), 7);
        assert_eq!(e.details, "a/b");
    }

    #[test]
    fn interface_names() {
        assert!(validate_interface_name("eth0").is_ok());
        assert!(validate_interface_name("a23456789012345").is_ok());
        for bad in [
            "",
            "a234567890123456",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
        ] {
            assert_eq!(
                validate_interface_name(bad).unwrap_err().code(),
                4,
                "{bad:?}"
            );
        }
    }
}
