//! Logging: severities, and `logging/setLevel`.
//!
//! (2026-07-28 deprecates `logging/setLevel`: the level travels in each
//! request's `_meta` instead; see [`meta`](crate::meta).)

use serde::{Deserialize, Serialize};
use std::fmt;

/// Syslog severities, as `logging/setLevel` and `notifications/message`
/// name them, least severe first so that `Ord` filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum LogLevel {
    /// Debugging detail.
    Debug = 0,
    /// Informational.
    Info,
    /// Normal but significant.
    Notice,
    /// A warning.
    Warning,
    /// An error.
    Error,
    /// A critical condition.
    Critical,
    /// Action must be taken at once.
    Alert,
    /// The system is unusable.
    Emergency,
}

impl LogLevel {
    /// Every level, least severe first.
    pub const ALL: [LogLevel; 8] = [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Notice,
        LogLevel::Warning,
        LogLevel::Error,
        LogLevel::Critical,
        LogLevel::Alert,
        LogLevel::Emergency,
    ];

    /// The level whose `repr(u8)` is `n` (for levels kept in an atomic);
    /// anything past the last is the last.
    pub fn from_u8(n: u8) -> LogLevel {
        Self::ALL[usize::from(n).min(Self::ALL.len() - 1)]
    }

    /// The level's name on the wire (`"warning"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Notice => "notice",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
            LogLevel::Alert => "alert",
            LogLevel::Emergency => "emergency",
        }
    }

    /// The level named `s`.
    pub fn parse(s: &str) -> Option<LogLevel> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The params of `logging/setLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetLevelParams {
    /// The least severe level the client wants to receive.
    pub level: LogLevel,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_wire() {
        for l in LogLevel::ALL {
            assert_eq!(serde_json::to_value(l).unwrap(), l.as_str());
            assert_eq!(LogLevel::parse(l.as_str()), Some(l));
            assert_eq!(LogLevel::from_u8(l as u8), l);
        }
    }
}
