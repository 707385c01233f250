//! `CNI_ARGS`: `K=V;K=V` pairs.
//!
//! As in the reference's `types.LoadArgs`: pairs split on `;` then `=` (exactly one `=` per
//! pair), keys are case-sensitive, and a key the plugin does not know is an error unless
//! `IgnoreUnknown` is true (`1`, `true`, `True`; any case).

use std::fmt;

use crate::go;

/// Parsed `CNI_ARGS`, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CniArgs {
    pairs: Vec<(String, String)>,
}

/// An error in `CNI_ARGS`, with the reference's messages.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgsError {
    /// A pair without exactly one `=`.
    InvalidPair(String),
    /// Keys the plugin does not know, without `IgnoreUnknown`.
    Unknown(Vec<String>),
    /// A value that does not parse for its key.
    InvalidValue {
        /// The whole pair.
        pair: String,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::InvalidPair(p) => write!(f, "ARGS: invalid pair {}", go::quote(p)),
            ArgsError::Unknown(u) => write!(f, "ARGS: unknown args {}", go::quote_list(u)),
            ArgsError::InvalidValue { pair, reason } => {
                write!(
                    f,
                    "ARGS: error parsing value of pair {}: {reason}",
                    go::quote(pair)
                )
            }
        }
    }
}

impl std::error::Error for ArgsError {}

/// The reference's `UnmarshallableBool`: `1`/`true` and `0`/`false`, any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

impl CniArgs {
    /// Parse `K=V;K=V`. The empty string is no pairs.
    pub fn parse(s: &str) -> Result<Self, ArgsError> {
        let mut pairs = Vec::new();
        if s.is_empty() {
            return Ok(CniArgs { pairs });
        }
        for pair in s.split(';') {
            let mut kv = pair.split('=');
            match (kv.next(), kv.next(), kv.next()) {
                (Some(k), Some(v), None) => pairs.push((k.to_string(), v.to_string())),
                _ => return Err(ArgsError::InvalidPair(pair.to_string())),
            }
        }
        Ok(CniArgs { pairs })
    }

    /// Parse and check that every key is in `known` (`IgnoreUnknown` is always known) unless
    /// `IgnoreUnknown` is true. This is what a plugin calls with the keys it understands.
    pub fn parse_known(s: &str, known: &[&str]) -> Result<Self, ArgsError> {
        let args = CniArgs::parse(s)?;
        args.check_known(known)?;
        Ok(args)
    }

    /// Error for keys not in `known`, unless `IgnoreUnknown` is true.
    pub fn check_known(&self, known: &[&str]) -> Result<(), ArgsError> {
        let ignore = self.ignore_unknown()?;
        let unknown: Vec<String> = self
            .pairs
            .iter()
            .filter(|(k, _)| k != "IgnoreUnknown" && !known.contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !unknown.is_empty() && !ignore {
            return Err(ArgsError::Unknown(unknown));
        }
        Ok(())
    }

    /// Whether `IgnoreUnknown` is set to true; an unparsable value is an error.
    pub fn ignore_unknown(&self) -> Result<bool, ArgsError> {
        match self.get("IgnoreUnknown") {
            None => Ok(false),
            Some(v) => parse_bool(v).ok_or_else(|| ArgsError::InvalidValue {
                pair: format!("IgnoreUnknown={v}"),
                reason: format!("boolean unmarshal error: invalid input {v}"),
            }),
        }
    }

    /// The value of the last pair with this exact key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All pairs, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Build from pairs.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        CniArgs {
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

impl fmt::Display for CniArgs {
    /// `K=V;K=V`, as runtimes build it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs() {
        let a = CniArgs::parse("IgnoreUnknown=1;K8S_POD_NAME=demo;IP=10.1.2.3/24").unwrap();
        assert_eq!(a.get("IP"), Some("10.1.2.3/24"));
        assert_eq!(a.get("ip"), None, "keys are case-sensitive");
        assert_eq!(a.get("K8S_POD_NAME"), Some("demo"));
        assert!(a.ignore_unknown().unwrap());
        assert_eq!(
            a.to_string(),
            "IgnoreUnknown=1;K8S_POD_NAME=demo;IP=10.1.2.3/24"
        );
        assert!(CniArgs::parse("").unwrap().is_empty());
        assert_eq!(CniArgs::parse("K=").unwrap().get("K"), Some(""));
    }

    #[test]
    fn invalid_pairs() {
        assert_eq!(
            CniArgs::parse("A=1;B").unwrap_err().to_string(),
            "ARGS: invalid pair \"B\""
        );
        assert!(CniArgs::parse("A=1=2").is_err());
        assert!(CniArgs::parse("A=1;").is_err());
    }

    #[test]
    fn unknown_keys() {
        let e = CniArgs::parse_known("K8S_POD_NAME=x;IP=1.2.3.4", &["IP"]).unwrap_err();
        assert_eq!(e.to_string(), "ARGS: unknown args [\"K8S_POD_NAME=x\"]");
        for yes in ["1", "true", "True", "TRUE"] {
            assert!(
                CniArgs::parse_known(&format!("IgnoreUnknown={yes};X=1"), &[]).is_ok(),
                "{yes}"
            );
        }
        for no in ["0", "false", "False"] {
            assert!(CniArgs::parse_known(&format!("IgnoreUnknown={no};X=1"), &[]).is_err());
        }
        assert!(matches!(
            CniArgs::parse_known("IgnoreUnknown=yes", &[]),
            Err(ArgsError::InvalidValue { .. })
        ));
        assert!(CniArgs::parse_known("IgnoreUnknown=1", &[]).is_ok());
    }
}
