//! Which replica owns a session: the route key, session ids that carry it,
//! and the affinity cookie.
//!
//! A session id is `<route>.<random>`: the balancer reads the prefix to pin
//! the client (nginx `map`, HAProxy `req.hdr`), so spec-following clients are
//! pinned even without cookies. The random part is 128 bits from the
//! operating system's CSPRNG, hex-encoded (visible ASCII, as the spec asks).

/// Sanitizes a configured route key (or derives one from the host name) so
/// that it is safe in a session id, a cookie value and a balancer map.
///
/// The default is the first label of the host name: unique per container
/// (docker) and per task (ECS/Fargate gives each task its own host name,
/// `ip-10-0-1-23`), and stable for the life of the replica, which is all a
/// route must be.
pub fn route_key(configured: Option<&str>) -> String {
    let raw = match configured {
        Some(r) if !r.trim().is_empty() => r.to_owned(),
        _ => host_name()
            .map(|h| h.split('.').next().unwrap_or_default().to_owned())
            .unwrap_or_default(),
    };
    let clean: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(63)
        .collect();
    if clean.is_empty() {
        // Replicas without a usable name must still differ from each other.
        random_route()
    } else {
        clean
    }
}

fn random_route() -> String {
    let mut bytes = [0u8; 4];
    // Without entropy, a fixed name is the best left.
    if getrandom::fill(&mut bytes).is_err() {
        return "r0".to_owned();
    }
    let mut r = String::from("r-");
    for b in bytes {
        r.push(char::from(HEX[usize::from(b >> 4)]));
        r.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    r
}

fn host_name() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
}

/// Mints a fresh id owned by `route`, `<route>.<128 random bits in hex>`:
/// a session's, or a task's (2026-07-28), so that either names the
/// replica that holds it.
pub fn mint_id(route: &str) -> String {
    let mut bytes = [0u8; 16];
    // The OS generator only fails if the kernel cannot supply entropy at
    // all, in which case no session can be made safely.
    getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
    let mut id = String::with_capacity(route.len() + 33);
    id.push_str(route);
    id.push('.');
    for b in bytes {
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    id
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The route that a session id names, if it is shaped like one of ours.
pub fn route_of(session_id: &str) -> Option<&str> {
    session_id.split_once('.').map(|(route, _)| route)
}

/// The configured cookie name cannot be a cookie name.
#[derive(Debug, thiserror::Error)]
#[error("the affinity cookie name {0:?} is not a valid cookie name (RFC 6265: a token)")]
pub struct InvalidCookieName(pub String);

/// The `Set-Cookie` value that pins a client to `route`, built by the
/// `cookie` crate: `Path=/` (every endpoint of the replica), `HttpOnly`
/// (no script needs it), `SameSite=Lax`, and `Secure` when the balancer
/// speaks HTTPS. No `Max-Age`: it lives as long as the client's session
/// with the browser or SDK, and the session itself expires on the replica
/// (an expired route only costs a `404` and a new session).
///
/// The route is ours and always a valid value (see [`route_key`]); the
/// name comes from the configuration and is checked here.
pub fn affinity_cookie(name: &str, route: &str, secure: bool) -> Result<String, InvalidCookieName> {
    if !is_token(name) {
        return Err(InvalidCookieName(name.to_owned()));
    }
    let cookie = cookie::Cookie::build((name, route))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .secure(secure)
        .build();
    Ok(cookie.to_string())
}

/// An RFC 7230 token: what RFC 6265 allows as a cookie name.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_carry_the_route_and_128_random_bits() {
        let a = mint_id("r2");
        let b = mint_id("r2");
        assert_ne!(a, b);
        assert_eq!(route_of(&a), Some("r2"));
        let random = a.split_once('.').unwrap().1;
        assert_eq!(random.len(), 32);
        assert!(a.bytes().all(|c| (0x21..=0x7e).contains(&c)));
    }

    #[test]
    fn route_keys_are_sanitized() {
        assert_eq!(route_key(Some("r1")), "r1");
        assert_eq!(
            route_key(Some("ip-10-0-1-7.ec2.internal")),
            "ip-10-0-1-7ec2internal"
        );
        let random = route_key(Some("..."));
        assert!(random.starts_with("r-") && random.len() == 10, "{random}");
    }

    #[test]
    fn cookie_has_the_safe_attributes() {
        let c = affinity_cookie("tether_route", "r1", true).unwrap();
        let parsed = cookie::Cookie::parse(c.as_str()).unwrap();
        assert_eq!((parsed.name(), parsed.value()), ("tether_route", "r1"));
        assert_eq!(parsed.path(), Some("/"));
        assert_eq!(parsed.http_only(), Some(true));
        assert_eq!(parsed.secure(), Some(true));
        assert_eq!(parsed.same_site(), Some(cookie::SameSite::Lax));
        let plain = affinity_cookie("tether_route", "r1", false).unwrap();
        assert!(!plain.contains("Secure"), "{plain}");
    }

    #[test]
    fn cookie_names_that_are_no_tokens_are_refused() {
        for bad in ["", "a b", "a=b", "a;b", "caf\u{e9}", "a\"b"] {
            assert!(affinity_cookie(bad, "r1", false).is_err(), "{bad:?}");
        }
    }
}
