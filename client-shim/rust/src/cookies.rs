//! A cookie jar for MCP clients behind balancers: RFC 6265 storage and
//! matching (the `cookie_store` crate, which reqwest's own jar uses), plus
//! the policy a client of a *cluster* needs.
//!
//! - **Partitioned by origin** (default, [`CookieScope::Origin`]): RFC 6265
//!   scopes cookies by host and ignores ports, so two local clusters on
//!   `127.0.0.1:8080` and `127.0.0.1:9090` (or a balancer and a replica
//!   reached directly) would see each other's `TETHER_LB` and be mis-pinned.
//!   Each origin (scheme, host, port) gets its own RFC 6265 store.
//!   [`CookieScope::Host`] restores the plain RFC behaviour (cookies shared
//!   across ports, and across subdomains with `Domain`).
//! - **`Secure` on loopback**: `http://localhost`, `*.localhost`,
//!   `127.0.0.0/8` and `[::1]` count as secure, as browsers treat them, so a
//!   local cluster run with `--cookie-secure` (or an ALB-like balancer that
//!   marks its cookie `Secure`) still pins. Other plain-HTTP hosts may be
//!   trusted by name ([`CookiePolicy::secure_hosts`]); otherwise a `Secure`
//!   cookie arriving over plain HTTP is refused (RFC 6265bis), not stored to
//!   be silently never sent.
//! - **Prefixes**: `__Secure-` and `__Host-` names are held to their rules.
//! - **Bounds**: a cookie above [`CookiePolicy::max_cookie_bytes`] is
//!   refused, and each partition holds at most
//!   [`CookiePolicy::max_cookies`] (expired ones are purged first).
//! - **No public-suffix list**: a `Domain` attribute without a dot (`com`)
//!   is refused unless it is the host itself (`localhost`); with origin
//!   partitioning a wider `Domain` cannot leak a cookie to another origin
//!   anyway.
//!
//! One jar belongs to **one MCP session**. Balancer cookies pin a *client*,
//! so concurrent sessions sharing a jar overwrite each other's pin (session
//! A's `TETHER_LB=r1` is replaced by session B's `TETHER_LB=r2`, and A's
//! next request lands on r2 and gets `404`). The shim's
//! [`Client`](crate::Client) keeps a jar per session while sharing one
//! connection pool; for other clients, build one
//! [`cookie_client`](crate::cookie_client) per session.

use cookie_store::{CookieError, CookieStore, RawCookie, StoreAction};
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderValue, SET_COOKIE};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::RwLock;

/// How far a cookie reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CookieScope {
    /// One RFC 6265 store per origin (scheme, host, port). The default.
    #[default]
    Origin,
    /// One RFC 6265 store for everything: cookies follow host and `Domain`
    /// across ports and schemes, as in a browser.
    Host,
}

/// The jar's policy. `CookiePolicy::default()` is what the shim uses.
#[derive(Debug, Clone)]
pub struct CookiePolicy {
    pub scope: CookieScope,
    /// Plain-HTTP host names to treat as secure contexts besides loopback
    /// (e.g. a compose service name behind a TLS-terminating proxy).
    pub secure_hosts: Vec<String>,
    /// Longest `Set-Cookie` value accepted (RFC 6265 asks for at least 4096).
    pub max_cookie_bytes: usize,
    /// Most cookies kept per partition.
    pub max_cookies: usize,
}

impl Default for CookiePolicy {
    fn default() -> Self {
        CookiePolicy {
            scope: CookieScope::Origin,
            secure_hosts: Vec::new(),
            max_cookie_bytes: 8192,
            max_cookies: 64,
        }
    }
}

/// Why a `Set-Cookie` was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CookieRejected {
    #[error("not a cookie: {0}")]
    Parse(String),
    #[error("larger than {0} bytes")]
    TooLarge(usize),
    #[error("a Secure cookie from a plain-HTTP, non-loopback origin")]
    InsecureOrigin,
    #[error("the Domain attribute does not cover the host that set it")]
    DomainMismatch,
    #[error("the Domain attribute is a top-level or public domain")]
    PublicDomain,
    #[error("a __Secure- or __Host- cookie without the attributes its prefix requires")]
    Prefix,
    #[error("the jar already holds {0} cookies for this origin")]
    Full(usize),
    #[error("{0}")]
    Other(String),
}

/// What storing a `Set-Cookie` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A new cookie.
    Inserted,
    /// An existing cookie (same name, domain and path) got a new value.
    Updated,
    /// The cookie was already expired: an existing one was deleted, or
    /// there was nothing to delete.
    Deleted,
}

/// A thread-safe cookie jar; see the module docs for its policy. It is
/// also a [`reqwest::cookie::CookieStore`], so any reqwest 0.13 client
/// (and the official Rust SDK's transport built on one) can use it.
#[derive(Debug, Default)]
pub struct CookieJar {
    partitions: RwLock<HashMap<String, CookieStore>>,
    policy: CookiePolicy,
}

impl CookieJar {
    /// An empty jar with the default policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty jar with `policy`.
    pub fn with_policy(policy: CookiePolicy) -> Self {
        CookieJar {
            partitions: RwLock::new(HashMap::new()),
            policy,
        }
    }

    pub fn policy(&self) -> &CookiePolicy {
        &self.policy
    }

    /// Stores one `Set-Cookie` value received from `url`.
    pub fn store(&self, url: &Url, set_cookie: &str) -> Result<Stored, CookieRejected> {
        if set_cookie.len() > self.policy.max_cookie_bytes {
            return Err(CookieRejected::TooLarge(self.policy.max_cookie_bytes));
        }
        let raw = RawCookie::parse(set_cookie).map_err(|e| CookieRejected::Parse(e.to_string()))?;
        let secure_context = self.is_secure_context(url);
        let secure = raw.secure().unwrap_or(false);
        if secure && !secure_context {
            return Err(CookieRejected::InsecureOrigin);
        }
        let name = raw.name();
        if (name.starts_with("__Secure-") || name.starts_with("__Host-")) && !secure {
            return Err(CookieRejected::Prefix);
        }
        if name.starts_with("__Host-") && (raw.domain().is_some() || raw.path() != Some("/")) {
            return Err(CookieRejected::Prefix);
        }
        if let Some(domain) = raw.domain() {
            let domain = domain.trim_start_matches('.').to_ascii_lowercase();
            let host = url.host_str().unwrap_or("").to_ascii_lowercase();
            if !domain.contains('.') && domain != host {
                return Err(CookieRejected::PublicDomain);
            }
        }
        let matching_url = self.matching_url(url, secure_context);
        let mut partitions = self.partitions.write().unwrap_or_else(|e| e.into_inner());
        let store = partitions.entry(self.partition(url)).or_default();
        let exists = store
            .get_any(
                &effective_domain(&raw, &matching_url),
                &effective_path(&raw, &matching_url),
                raw.name(),
            )
            .is_some();
        if !exists && store.iter_any().count() >= self.policy.max_cookies {
            let live: Vec<_> = store.iter_unexpired().cloned().collect();
            *store = CookieStore::from_cookies(live.into_iter().map(Ok::<_, ()>), false)
                .unwrap_or_default();
            if store.iter_any().count() >= self.policy.max_cookies {
                return Err(CookieRejected::Full(self.policy.max_cookies));
            }
        }
        match store.insert_raw(&raw, &matching_url) {
            Ok(StoreAction::Inserted) => Ok(Stored::Inserted),
            Ok(StoreAction::UpdatedExisting) => Ok(Stored::Updated),
            Ok(StoreAction::ExpiredExisting) | Err(CookieError::Expired) => Ok(Stored::Deleted),
            Err(CookieError::DomainMismatch) => Err(CookieRejected::DomainMismatch),
            Err(e) => Err(CookieRejected::Other(e.to_string())),
        }
    }

    /// Stores every `Set-Cookie` of a response from `url`; refused cookies
    /// are logged (at debug) and skipped.
    pub fn store_response(&self, url: &Url, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            match value.to_str() {
                Ok(v) => {
                    if let Err(e) = self.store(url, v) {
                        tracing::debug!(%url, error = %e, "cookie refused");
                    }
                }
                Err(_) => tracing::debug!(%url, "Set-Cookie is not visible ASCII; ignored"),
            }
        }
    }

    /// The `(name, value)` pairs to send to `url`: unexpired cookies whose
    /// domain, path and `Secure` flag match, longest path first.
    pub fn cookies_for(&self, url: &Url) -> Vec<(String, String)> {
        let secure_context = self.is_secure_context(url);
        let matching_url = self.matching_url(url, secure_context);
        let partitions = self.partitions.read().unwrap_or_else(|e| e.into_inner());
        let Some(store) = partitions.get(&self.partition(url)) else {
            return Vec::new();
        };
        let mut found = store.matches(&matching_url);
        found.sort_by(|a, b| {
            b.path
                .as_ref()
                .len()
                .cmp(&a.path.as_ref().len())
                .then_with(|| a.name().cmp(b.name()))
        });
        found
            .into_iter()
            .map(|c| (c.name().to_owned(), c.value().to_owned()))
            .collect()
    }

    /// The `Cookie` header for a request to `url`, if any cookie matches.
    pub fn header(&self, url: &Url) -> Option<HeaderValue> {
        let found = self.cookies_for(url);
        if found.is_empty() {
            return None;
        }
        let mut s = String::with_capacity(found.iter().map(|(n, v)| n.len() + v.len() + 3).sum());
        for (i, (n, v)) in found.iter().enumerate() {
            if i > 0 {
                s.push_str("; ");
            }
            s.push_str(n);
            s.push('=');
            s.push_str(v);
        }
        HeaderValue::from_str(&s).ok()
    }

    /// The value of cookie `name` as it would be sent to `url`.
    pub fn get(&self, url: &Url, name: &str) -> Option<String> {
        self.cookies_for(url)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Forgets every cookie.
    pub fn clear(&self) {
        self.partitions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Number of unexpired cookies held, over all partitions.
    pub fn len(&self) -> usize {
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|s| s.iter_unexpired().count())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `url` is a secure context for cookies: `https`, a loopback
    /// host, or one of [`CookiePolicy::secure_hosts`].
    pub fn is_secure_context(&self, url: &Url) -> bool {
        if matches!(url.scheme(), "https" | "wss") {
            return true;
        }
        match url.host() {
            Some(url::Host::Domain(d)) => {
                let d = d.to_ascii_lowercase();
                d == "localhost"
                    || d.ends_with(".localhost")
                    || self
                        .policy
                        .secure_hosts
                        .iter()
                        .any(|h| h.eq_ignore_ascii_case(&d))
            }
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => false,
        }
    }

    fn partition(&self, url: &Url) -> String {
        match self.policy.scope {
            CookieScope::Origin => url.origin().ascii_serialization(),
            CookieScope::Host => String::new(),
        }
    }

    /// The URL the RFC 6265 store sees: `https` for a secure context, so
    /// that `Secure` cookies match on a trusted plain-HTTP host too.
    fn matching_url(&self, url: &Url, secure_context: bool) -> Url {
        let mut u = url.clone();
        if secure_context && u.scheme() == "http" {
            // The store ignores ports, so `:80` reading as `:443` is moot.
            let _ = u.set_scheme("https");
        }
        u
    }
}

/// The domain key `cookie_store` files a cookie under.
fn effective_domain(raw: &RawCookie<'_>, url: &Url) -> String {
    match raw.domain() {
        Some(d) if !d.trim_start_matches('.').is_empty() => {
            d.trim_start_matches('.').to_ascii_lowercase()
        }
        _ => url.host_str().unwrap_or("").to_ascii_lowercase(),
    }
}

/// The path key `cookie_store` files a cookie under.
fn effective_path(raw: &RawCookie<'_>, url: &Url) -> String {
    match raw.path() {
        Some(p) if p.starts_with('/') => p.to_owned(),
        _ => cookie_store::CookiePath::default_path(url)
            .as_ref()
            .to_owned(),
    }
}

impl reqwest::cookie::CookieStore for CookieJar {
    fn set_cookies(&self, cookie_headers: &mut dyn Iterator<Item = &HeaderValue>, url: &Url) {
        for value in cookie_headers {
            if let Ok(v) = value.to_str()
                && let Err(e) = self.store(url, v)
            {
                tracing::debug!(%url, error = %e, "cookie refused");
            }
        }
    }

    fn cookies(&self, url: &Url) -> Option<HeaderValue> {
        self.header(url)
    }
}
