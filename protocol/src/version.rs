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

/// The revisions served without sessions: every request carries its
/// revision and the client's capabilities in `params._meta`, and any
/// replica may serve it. Not [`ProtocolVersion`]s: they are never
/// negotiated by `initialize`, and a session never speaks them.
pub const STATELESS_REVISIONS: [&str; 1] = ["2026-07-28"];

/// The newest revision with sessions, as a date: a revision named by a
/// later date belongs to the era without them.
const LAST_SESSION_REVISION: &str = "2025-11-25";

/// Whether `name` is a revision date (`YYYY-MM-DD`) later than the last
/// revision with sessions: a request whose `MCP-Protocol-Version` names
/// one speaks the era without sessions, even if its `_meta` is missing
/// (and is then refused as that era refuses it, not as a session request).
pub fn names_stateless_era(name: &str) -> bool {
    let b = name.as_bytes();
    let date = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    date && name > LAST_SESSION_REVISION
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

#[cfg(test)]
mod era_tests {
    use super::*;

    #[test]
    fn only_dates_after_the_last_session_revision_name_the_stateless_era() {
        assert!(names_stateless_era("2026-07-28"));
        assert!(names_stateless_era("2030-01-01"));
        for legacy in ProtocolVersion::ALL {
            assert!(!names_stateless_era(legacy.as_str()), "{legacy}");
        }
        for other in ["v999.0.0", "2026-7-28", "DRAFT-2026-v1", "", "2026-07-28x"] {
            assert!(!names_stateless_era(other), "{other}");
        }
    }
}
