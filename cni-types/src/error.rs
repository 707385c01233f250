//! The spec's error result: `{code, msg, details}` and its codes.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An error code of the spec (§5 "Error"). Codes 0-99 are reserved for the spec; plugins use
/// 100 and above.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 1: incompatible CNI version.
    IncompatibleCniVersion,
    /// 2: unsupported field in the network config; the message names the key and value.
    UnsupportedField,
    /// 3: container unknown or does not exist.
    UnknownContainer,
    /// 4: invalid necessary environment variables; the message names them.
    InvalidEnvironmentVariables,
    /// 5: I/O failure, such as reading stdin.
    IoFailure,
    /// 6: failed to decode content (JSON, version).
    DecodingFailure,
    /// 7: invalid network config.
    InvalidNetworkConfig,
    /// 8: the plugin's own netns is CNI_NETNS (reference library only).
    InvalidNetNs,
    /// 11: try again later.
    TryAgainLater,
    /// 50: the plugin is not available (STATUS).
    PluginNotAvailable,
    /// 51: not available and existing containers may have limited connectivity (STATUS).
    LimitedConnectivity,
    /// 999: internal or unclassified error.
    Internal,
    /// Any other code: 0, reserved codes the spec may add, and plugin codes from 100.
    Other(u32),
}

impl ErrorCode {
    /// The number on the wire.
    pub fn code(self) -> u32 {
        match self {
            ErrorCode::IncompatibleCniVersion => 1,
            ErrorCode::UnsupportedField => 2,
            ErrorCode::UnknownContainer => 3,
            ErrorCode::InvalidEnvironmentVariables => 4,
            ErrorCode::IoFailure => 5,
            ErrorCode::DecodingFailure => 6,
            ErrorCode::InvalidNetworkConfig => 7,
            ErrorCode::InvalidNetNs => 8,
            ErrorCode::TryAgainLater => 11,
            ErrorCode::PluginNotAvailable => 50,
            ErrorCode::LimitedConnectivity => 51,
            ErrorCode::Internal => 999,
            ErrorCode::Other(n) => n,
        }
    }

    /// The named variant for a wire number, or [`ErrorCode::Other`].
    pub fn from_code(n: u32) -> Self {
        match n {
            1 => ErrorCode::IncompatibleCniVersion,
            2 => ErrorCode::UnsupportedField,
            3 => ErrorCode::UnknownContainer,
            4 => ErrorCode::InvalidEnvironmentVariables,
            5 => ErrorCode::IoFailure,
            6 => ErrorCode::DecodingFailure,
            7 => ErrorCode::InvalidNetworkConfig,
            8 => ErrorCode::InvalidNetNs,
            11 => ErrorCode::TryAgainLater,
            50 => ErrorCode::PluginNotAvailable,
            51 => ErrorCode::LimitedConnectivity,
            999 => ErrorCode::Internal,
            n => ErrorCode::Other(n),
        }
    }

    /// Whether the code is a plugin-specific one (100 and above, but not 999).
    pub fn is_plugin_specific(self) -> bool {
        let n = self.code();
        n >= 100 && n != 999
    }
}

impl From<u32> for ErrorCode {
    fn from(n: u32) -> Self {
        ErrorCode::from_code(n)
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.code())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ErrorCode::from_code(u32::deserialize(d)?))
    }
}

/// The error a plugin prints on stdout, exactly as the reference library prints it:
/// `{"code": N, "msg": "...", "details": "..."}` (`details` omitted when empty, no
/// `cniVersion`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    /// The spec error code.
    pub code: ErrorCode,
    /// A short message.
    #[serde(default)]
    pub msg: String,
    /// Longer details, may be empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl Error {
    /// An error with a code, a message and details.
    pub fn new(code: ErrorCode, msg: impl Into<String>, details: impl Into<String>) -> Self {
        Error {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    /// An error with a code and a message.
    pub fn msg(code: ErrorCode, msg: impl Into<String>) -> Self {
        Error::new(code, msg, "")
    }

    /// Code 999 with a message: what the reference makes of any untyped plugin error.
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::msg(ErrorCode::Internal, msg)
    }

    /// An error whose message is `err` and its whole `source()` chain joined with `": "`, the
    /// way Go's `fmt.Errorf("...: %v", err)` wrapping reads in the reference plugins.
    pub fn from_chain(code: ErrorCode, err: &(dyn std::error::Error + 'static)) -> Self {
        Error::msg(code, chain_message(err))
    }

    /// The numeric code.
    pub fn code(&self) -> u32 {
        self.code.code()
    }

    /// The error as the reference prints it: JSON indented by four spaces.
    pub fn to_json_pretty(&self) -> String {
        crate::to_json_pretty(self)
    }
}

/// `err` followed by each `source()` in its chain, joined with `": "`. A source whose text is
/// already the end of the message so far is skipped, so errors that format their source into
/// their own message are not repeated.
pub fn chain_message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = err.to_string();
    let mut cur = err.source();
    while let Some(src) = cur {
        let s = src.to_string();
        if !s.is_empty() && !msg.ends_with(&s) {
            msg.push_str(": ");
            msg.push_str(&s);
        }
        cur = src.source();
    }
    msg
}

/// The messages of several errors, each with its whole cause chain ([`chain_message`]),
/// joined with `sep`: how a DEL or GC that tried every step reports everything that failed.
pub fn join_chain_messages<E: std::error::Error + 'static>(errs: &[E], sep: &str) -> String {
    errs.iter()
        .map(|e| chain_message(e))
        .collect::<Vec<_>>()
        .join(sep)
}

/// Collapses the errors a best-effort teardown collected: `Ok` when there are none, the error
/// itself when it is alone, `many(errs)` (an error holding them all) otherwise.
pub fn collect_errors<E>(mut errs: Vec<E>, many: impl FnOnce(Vec<E>) -> E) -> Result<(), E> {
    match errs.len() {
        0 => Ok(()),
        1 => Err(errs.remove(0)),
        _ => Err(many(errs)),
    }
}

impl fmt::Display for Error {
    /// As the reference's `Error()`: the message, then `"; "` and the details if any.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.details.is_empty() {
            f.write_str(&self.msg)
        } else {
            write!(f, "{}; {}", self.msg, self.details)
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for n in [0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 50, 51, 100, 101, 999, 1234] {
            assert_eq!(ErrorCode::from_code(n).code(), n);
        }
        assert_eq!(ErrorCode::from_code(7), ErrorCode::InvalidNetworkConfig);
        assert!(ErrorCode::Other(100).is_plugin_specific());
        assert!(!ErrorCode::Internal.is_plugin_specific());
    }

    #[test]
    fn prints_like_the_reference() {
        let e = Error::new(
            ErrorCode::IncompatibleCniVersion,
            "incompatible CNI versions",
            "x",
        );
        assert_eq!(
            e.to_json_pretty(),
            "{\n    \"code\": 1,\n    \"msg\": \"incompatible CNI versions\",\n    \"details\": \"x\"\n}"
        );
        let e = Error::internal("boom");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":999,"msg":"boom"}"#
        );
        assert_eq!(e.to_string(), "boom");
        let e = Error::new(ErrorCode::Other(100), "a", "b");
        assert_eq!(e.to_string(), "a; b");
    }

    #[test]
    fn parses_spec_form_with_cni_version() {
        let e: Error = serde_json::from_str(
            r#"{"cniVersion":"1.1.0","code":7,"msg":"Invalid Configuration","details":"d"}"#,
        )
        .unwrap();
        assert_eq!(e.code, ErrorCode::InvalidNetworkConfig);
        assert_eq!(e.details, "d");
    }

    #[derive(Debug)]
    struct Outer(Inner);
    #[derive(Debug)]
    struct Inner;
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("failed to allocate for range 0")
        }
    }
    impl fmt::Display for Inner {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("no IP addresses available")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    impl std::error::Error for Inner {}

    #[test]
    fn many_errors_join_and_collapse() {
        let errs = vec![Outer(Inner), Outer(Inner)];
        assert_eq!(
            join_chain_messages(&errs, "; "),
            "failed to allocate for range 0: no IP addresses available; \
             failed to allocate for range 0: no IP addresses available"
        );
        assert_eq!(join_chain_messages::<Outer>(&[], "; "), "");
        let many = |v: Vec<Error>| Error::internal(format!("{} errors", v.len()));
        assert_eq!(collect_errors(Vec::new(), many), Ok(()));
        let one = Error::internal("one");
        assert_eq!(collect_errors(vec![one.clone()], many), Err(one.clone()));
        assert_eq!(
            collect_errors(vec![one.clone(), one], many),
            Err(Error::internal("2 errors"))
        );
    }

    #[test]
    fn chain_reads_like_go_wrapping() {
        let e = Error::from_chain(ErrorCode::Internal, &Outer(Inner));
        assert_eq!(
            e.msg,
            "failed to allocate for range 0: no IP addresses available"
        );
    }
}
