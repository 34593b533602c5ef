//! Protocol revisions and their negotiation.
//!
//! Each revision is a variant, and what differs between revisions is a
//! method of [`ProtocolVersion`] (batches, stream priming, the transport),
//! so that code asks "does this revision allow X" rather than comparing
//! dates. 2026-07-28, which removes sessions, becomes one more variant and
//! a method that tells the two eras apart (a request of the new era
//! carries its revision in `params._meta` and is never negotiated by
//! `initialize`).

use std::fmt;

/// A protocol revision, oldest first so that `Ord` compares by age.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    /// Served only over the old HTTP+SSE transport (`GET /sse`).
    V2024_11_05,
    /// The first Streamable HTTP revision; the only one with JSON-RPC batches.
    V2025_03_26,
    /// Structured tool output, elicitation; batches removed.
    V2025_06_18,
    /// The latest revision with sessions.
    V2025_11_25,
}

impl ProtocolVersion {
    /// The newest revision spoken.
    pub const LATEST: ProtocolVersion = ProtocolVersion::V2025_11_25;
    /// What a Streamable HTTP request without `MCP-Protocol-Version` is taken
    /// to speak, as the spec prescribes for backwards compatibility.
    pub const ASSUMED_WITHOUT_HEADER: ProtocolVersion = ProtocolVersion::V2025_03_26;
    /// Every revision, oldest first.
    pub const ALL: [ProtocolVersion; 4] = [
        ProtocolVersion::V2024_11_05,
        ProtocolVersion::V2025_03_26,
        ProtocolVersion::V2025_06_18,
        ProtocolVersion::V2025_11_25,
    ];

    /// The revision's name on the wire (`"2025-11-25"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ProtocolVersion::V2024_11_05 => "2024-11-05",
            ProtocolVersion::V2025_03_26 => "2025-03-26",
            ProtocolVersion::V2025_06_18 => "2025-06-18",
            ProtocolVersion::V2025_11_25 => "2025-11-25",
        }
    }

    /// The revision named `s`, if it is one of ours.
    pub fn parse(s: &str) -> Option<ProtocolVersion> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The revision to answer an `initialize` with: the client's own when we
    /// speak it, else our latest (the client then decides whether to go on).
    pub fn negotiate(requested: &str) -> ProtocolVersion {
        Self::parse(requested).unwrap_or(Self::LATEST)
    }

    /// Whether the revision's HTTP transport is Streamable HTTP (one
    /// endpoint, POST and GET); 2024-11-05 had the old HTTP+SSE transport.
    pub fn streamable_http(self) -> bool {
        self >= ProtocolVersion::V2025_03_26
    }

    /// Only 2025-03-26 allows JSON-RPC batches; 2025-06-18 removed them.
    pub fn allows_batches(self) -> bool {
        self == ProtocolVersion::V2025_03_26
    }

    /// 2025-11-25 added the priming event and server-initiated disconnects
    /// with a `retry` hint (SSE polling).
    pub fn primes_streams(self) -> bool {
        self >= ProtocolVersion::V2025_11_25
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_known_versions_and_falls_back_to_latest() {
        assert_eq!(
            ProtocolVersion::negotiate("2025-06-18"),
            ProtocolVersion::V2025_06_18
        );
        assert_eq!(
            ProtocolVersion::negotiate("2099-01-01"),
            ProtocolVersion::LATEST
        );
        assert!(ProtocolVersion::V2025_03_26.allows_batches());
        assert!(!ProtocolVersion::V2025_06_18.allows_batches());
    }

    #[test]
    fn names_round_trip_and_order_by_age() {
        for v in ProtocolVersion::ALL {
            assert_eq!(ProtocolVersion::parse(v.as_str()), Some(v));
        }
        assert!(ProtocolVersion::ALL.is_sorted());
        assert_eq!(ProtocolVersion::ALL.last(), Some(&ProtocolVersion::LATEST));
        assert!(!ProtocolVersion::V2024_11_05.streamable_http());
        assert!(ProtocolVersion::V2025_03_26.streamable_http());
    }
}
