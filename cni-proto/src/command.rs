//! The CNI verbs.

use std::fmt;
use std::str::FromStr;

/// A value of `CNI_COMMAND`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Command {
    /// ADD.
    Add,
    /// DEL.
    Del,
    /// CHECK (0.4.0).
    Check,
    /// GC (1.1.0).
    Gc,
    /// STATUS (1.1.0).
    Status,
    /// VERSION.
    Version,
}

impl Command {
    /// The string on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Gc => "GC",
            Command::Status => "STATUS",
            Command::Version => "VERSION",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `CNI_COMMAND` that is not a verb.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownCommand(pub String);

impl fmt::Display for UnknownCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown CNI_COMMAND: {}", self.0)
    }
}

impl std::error::Error for UnknownCommand {}

impl FromStr for Command {
    type Err = UnknownCommand;
    /// Exact, case-sensitive, as the reference.
    fn from_str(s: &str) -> Result<Self, UnknownCommand> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "GC" => Command::Gc,
            "STATUS" => Command::Status,
            "VERSION" => Command::Version,
            other => return Err(UnknownCommand(other.to_string())),
        })
    }
}
