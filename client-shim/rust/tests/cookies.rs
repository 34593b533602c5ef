//! The cookie jar: RFC 6265 storage and matching (Domain, Path, Secure,
//! Max-Age versus Expires, deletion) and the cluster policy on top (origin
//! partitions, loopback as a secure context, cookies of several balancer
//! layers at once).

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderValue, SET_COOKIE};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};
use tether_shim::{CookieJar, CookiePolicy, CookieRejected, CookieScope, Stored};

fn url(s: &str) -> Url {
    Url::parse(s).expect("a test URL")
}

fn host_scoped() -> CookieJar {
    CookieJar::with_policy(CookiePolicy {
        scope: CookieScope::Host,
        ..CookiePolicy::default()
    })
}

/// The names sent to `to`, as a set.
fn names(jar: &CookieJar, to: &str) -> BTreeSet<String> {
    jar.cookies_for(&url(to))
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn http_date(offset_secs: i64) -> String {
    let now = SystemTime::now();
    let t = if offset_secs >= 0 {
        now + Duration::from_secs(offset_secs as u64)
    } else {
        now - Duration::from_secs((-offset_secs) as u64)
    };
    httpdate::fmt_http_date(t)
}

#[test]
fn a_cookie_without_domain_goes_back_to_its_host_only() {
    let jar = host_scoped();
    let from = url("http://app.example.com/");
    assert_eq!(jar.store(&from, "a=1"), Ok(Stored::Inserted));
    assert_eq!(names(&jar, "http://app.example.com/x"), set(&["a"]));
    assert!(names(&jar, "http://sub.app.example.com/").is_empty());
    assert!(names(&jar, "http://example.com/").is_empty());
    assert!(names(&jar, "http://other.com/").is_empty());
}

#[test]
fn a_domain_cookie_covers_the_domain_and_its_subdomains() {
    let jar = host_scoped();
    let from = url("http://app.example.com/");
    assert_eq!(
        jar.store(&from, "b=2; Domain=.Example.COM"),
        Ok(Stored::Inserted)
    );
    for to in [
        "http://example.com/",
        "http://app.example.com/",
        "http://api.example.com/",
    ] {
        assert_eq!(names(&jar, to), set(&["b"]), "{to}");
    }
    assert!(names(&jar, "http://notexample.com/").is_empty());
    assert!(names(&jar, "http://example.org/").is_empty());
}

#[test]
fn a_domain_that_does_not_cover_the_host_or_is_top_level_is_refused() {
    let jar = host_scoped();
    let from = url("http://app.example.com/");
    assert_eq!(
        jar.store(&from, "c=3; Domain=other.com"),
        Err(CookieRejected::DomainMismatch)
    );
    assert_eq!(
        jar.store(&from, "c=3; Domain=sub.app.example.com"),
        Err(CookieRejected::DomainMismatch)
    );
    assert_eq!(
        jar.store(&from, "d=4; Domain=com"),
        Err(CookieRejected::PublicDomain)
    );
    // A host may name itself, even without a dot.
    assert_eq!(
        jar.store(&url("http://localhost:8080/"), "e=5; Domain=localhost"),
        Ok(Stored::Inserted)
    );
    assert_eq!(names(&jar, "http://app.example.com/"), set(&[]));
}

#[test]
fn origin_partitions_keep_ports_and_subdomains_apart() {
    // The default: two clusters on one host never see each other's pins.
    let jar = CookieJar::new();
    let a = url("http://127.0.0.1:8080/mcp");
    assert_eq!(jar.store(&a, "TETHER_LB=r1; path=/"), Ok(Stored::Inserted));
    assert_eq!(jar.get(&a, "TETHER_LB").as_deref(), Some("r1"));
    assert_eq!(
        jar.get(&url("http://127.0.0.1:9090/mcp"), "TETHER_LB"),
        None
    );
    assert_eq!(
        jar.get(&url("https://127.0.0.1:8080/mcp"), "TETHER_LB"),
        None
    );
    let app = url("http://app.example.com/");
    jar.store(&app, "b=2; Domain=example.com").expect("stored");
    assert_eq!(names(&jar, "http://app.example.com/"), set(&["b"]));
    assert!(names(&jar, "http://api.example.com/").is_empty());
    // Plain RFC 6265 ignores the port.
    let rfc = host_scoped();
    rfc.store(&a, "TETHER_LB=r1; path=/").expect("stored");
    assert_eq!(
        rfc.get(&url("http://127.0.0.1:9090/mcp"), "TETHER_LB")
            .as_deref(),
        Some("r1")
    );
}

#[test]
fn path_limits_where_a_cookie_goes_and_orders_the_header() {
    let jar = CookieJar::new();
    let from = url("http://localhost:8080/a/b/c");
    jar.store(&from, "root=1; Path=/").expect("stored");
    jar.store(&from, "mcp=2; Path=/mcp").expect("stored");
    // Without Path: the default path of /a/b/c is /a/b.
    jar.store(&from, "dflt=3").expect("stored");
    assert_eq!(
        names(&jar, "http://localhost:8080/mcp"),
        set(&["root", "mcp"])
    );
    assert_eq!(
        names(&jar, "http://localhost:8080/mcp/sub"),
        set(&["root", "mcp"])
    );
    assert_eq!(names(&jar, "http://localhost:8080/mcpx"), set(&["root"]));
    assert_eq!(
        names(&jar, "http://localhost:8080/a/b/x"),
        set(&["root", "dflt"])
    );
    assert_eq!(names(&jar, "http://localhost:8080/a"), set(&["root"]));
    // Longest path first, as RFC 6265 asks.
    assert_eq!(
        jar.header(&url("http://localhost:8080/mcp/x")),
        Some(HeaderValue::from_static("mcp=2; root=1"))
    );
}

#[test]
fn secure_cookies_need_a_secure_context_and_loopback_is_one() {
    let jar = host_scoped();
    // Loopback counts as secure (as in browsers): a local cluster run with
    // --cookie-secure still pins.
    for origin in [
        "http://localhost:8080/",
        "http://127.0.0.1:8080/",
        "http://[::1]:8080/",
        "http://tether.localhost:8080/",
    ] {
        let u = url(origin);
        assert!(jar.is_secure_context(&u), "{origin}");
        assert_eq!(
            jar.store(
                &u,
                "tether_route=r1; Path=/; HttpOnly; SameSite=Lax; Secure"
            ),
            Ok(Stored::Inserted),
            "{origin}"
        );
        assert_eq!(
            jar.get(&u, "tether_route").as_deref(),
            Some("r1"),
            "{origin}"
        );
    }
    // A plain-HTTP remote host cannot set one (RFC 6265bis)...
    let plain = url("http://mcp.example.com/");
    assert_eq!(
        jar.store(&plain, "s=1; Secure"),
        Err(CookieRejected::InsecureOrigin)
    );
    // ...an https one can, and it never goes back over plain HTTP.
    let tls = url("https://mcp.example.com/");
    assert_eq!(jar.store(&tls, "s=1; Secure"), Ok(Stored::Inserted));
    assert_eq!(jar.store(&tls, "p=2"), Ok(Stored::Inserted));
    assert_eq!(names(&jar, "https://mcp.example.com/"), set(&["s", "p"]));
    assert_eq!(names(&jar, "http://mcp.example.com/"), set(&["p"]));
    // A trusted plain-HTTP name (a compose service behind a TLS proxy).
    let trusted = CookieJar::with_policy(CookiePolicy {
        secure_hosts: vec!["tether".into()],
        ..CookiePolicy::default()
    });
    let svc = url("http://tether:8080/mcp");
    assert_eq!(trusted.store(&svc, "s=1; Secure"), Ok(Stored::Inserted));
    assert_eq!(trusted.get(&svc, "s").as_deref(), Some("1"));
}

#[test]
fn cookie_name_prefixes_are_enforced() {
    let jar = CookieJar::new();
    let u = url("https://mcp.example.com/mcp");
    assert_eq!(jar.store(&u, "__Secure-a=1"), Err(CookieRejected::Prefix));
    assert_eq!(
        jar.store(&u, "__Host-b=1; Secure; Path=/; Domain=example.com"),
        Err(CookieRejected::Prefix)
    );
    assert_eq!(
        jar.store(&u, "__Host-b=1; Secure"),
        Err(CookieRejected::Prefix),
        "__Host- needs Path=/"
    );
    assert_eq!(
        jar.store(&u, "__Host-b=1; Secure; Path=/"),
        Ok(Stored::Inserted)
    );
    assert_eq!(jar.store(&u, "__Secure-a=1; Secure"), Ok(Stored::Inserted));
}

#[test]
fn max_age_wins_over_expires() {
    let jar = CookieJar::new();
    let u = url("http://localhost:8080/");
    let past = http_date(-3600);
    let future = http_date(3600);
    assert_eq!(
        jar.store(&u, &format!("kept=1; Max-Age=3600; Expires={past}")),
        Ok(Stored::Inserted)
    );
    assert_eq!(
        jar.store(&u, &format!("gone=1; Max-Age=0; Expires={future}")),
        Ok(Stored::Deleted)
    );
    assert_eq!(
        jar.store(&u, &format!("later=1; Expires={future}")),
        Ok(Stored::Inserted)
    );
    assert_eq!(
        jar.store(&u, &format!("old=1; Expires={past}")),
        Ok(Stored::Deleted)
    );
    assert_eq!(
        names(&jar, "http://localhost:8080/"),
        set(&["kept", "later"])
    );
}

#[test]
fn a_cookie_expires_after_its_max_age() {
    let jar = CookieJar::new();
    let u = url("http://localhost:8080/");
    jar.store(&u, "short=1; Max-Age=1").expect("stored");
    jar.store(&u, "session=1").expect("stored");
    assert_eq!(
        names(&jar, "http://localhost:8080/"),
        set(&["short", "session"])
    );
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(names(&jar, "http://localhost:8080/"), set(&["session"]));
}

#[test]
fn a_server_deletes_and_replaces_cookies_by_name_domain_and_path() {
    let jar = CookieJar::new();
    let u = url("http://localhost:8080/mcp");
    jar.store(&u, "a=1; Path=/").expect("stored");
    assert_eq!(jar.store(&u, "a=2; Path=/"), Ok(Stored::Updated));
    assert_eq!(jar.get(&u, "a").as_deref(), Some("2"));
    // Another path is another cookie: neither replaced nor deleted.
    jar.store(&u, "a=; Max-Age=0; Path=/other")
        .expect("handled");
    assert_eq!(jar.get(&u, "a").as_deref(), Some("2"));
    assert_eq!(jar.store(&u, "a=; Max-Age=0; Path=/"), Ok(Stored::Deleted));
    assert_eq!(jar.get(&u, "a"), None);
    jar.store(&u, "b=1; Path=/").expect("stored");
    assert_eq!(
        jar.store(&u, "b=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
        Ok(Stored::Deleted)
    );
    assert!(jar.is_empty());
}

fn response(set_cookies: &[&str]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for c in set_cookies {
        h.append(
            SET_COOKIE,
            HeaderValue::from_str(c).expect("a header value"),
        );
    }
    h
}

#[test]
fn cookies_of_several_balancer_layers_travel_together() {
    // An ALB (AWSALB, and its CORS twin marked Secure), HAProxy's inserted
    // cookie, and the replica's own affinity cookie, in one response.
    let week = http_date(7 * 24 * 3600);
    let first = response(&[
        &format!("AWSALB=alb1; Expires={week}; Path=/"),
        &format!("AWSALBCORS=alb1; Expires={week}; Path=/; SameSite=None; Secure"),
        "TETHER_LB=r2; path=/; HttpOnly",
        "tether_route=r2; Path=/; HttpOnly; SameSite=Lax",
    ]);
    let all = set(&["AWSALB", "AWSALBCORS", "TETHER_LB", "tether_route"]);
    for origin in ["http://localhost:8080/mcp", "https://mcp.example.com/mcp"] {
        let jar = CookieJar::new();
        let u = url(origin);
        jar.store_response(&u, &first);
        assert_eq!(names(&jar, origin), all, "{origin}");
        // The ALB rotates its cookie on every response; the rest stay.
        jar.store_response(
            &u,
            &response(&[&format!("AWSALB=alb2; Expires={week}; Path=/")]),
        );
        assert_eq!(jar.get(&u, "AWSALB").as_deref(), Some("alb2"));
        assert_eq!(jar.get(&u, "TETHER_LB").as_deref(), Some("r2"));
        assert_eq!(jar.get(&u, "tether_route").as_deref(), Some("r2"));
        let header = jar.header(&u).expect("a Cookie header");
        let mut parts: Vec<&str> = header.to_str().expect("ASCII").split("; ").collect();
        parts.sort_unstable();
        assert_eq!(
            parts,
            [
                "AWSALB=alb2",
                "AWSALBCORS=alb1",
                "TETHER_LB=r2",
                "tether_route=r2"
            ]
        );
    }
    // Over plain HTTP to a remote balancer, the Secure one cannot be kept.
    let jar = CookieJar::new();
    let plain = url("http://lb.example.com/mcp");
    jar.store_response(&plain, &first);
    assert_eq!(
        names(&jar, "http://lb.example.com/mcp"),
        set(&["AWSALB", "TETHER_LB", "tether_route"])
    );
}

#[test]
fn the_jar_is_a_reqwest_cookie_store_and_is_bounded() {
    use reqwest::cookie::CookieStore;
    let jar = CookieJar::with_policy(CookiePolicy {
        max_cookies: 3,
        max_cookie_bytes: 100,
        ..CookiePolicy::default()
    });
    let u = url("http://127.0.0.1:8080/mcp");
    let headers = response(&["a=1", "b=2; Path=/", "c=3; Path=/"]);
    jar.set_cookies(&mut headers.get_all(SET_COOKIE).iter(), &u);
    assert_eq!(
        CookieStore::cookies(&jar, &u),
        Some(HeaderValue::from_static("a=1; b=2; c=3"))
    );
    assert_eq!(jar.store(&u, "d=4"), Err(CookieRejected::Full(3)));
    // Updating one that exists is fine at the cap; a deleted one frees room.
    assert_eq!(jar.store(&u, "a=9"), Ok(Stored::Updated));
    assert_eq!(jar.store(&u, "c=; Max-Age=0; Path=/"), Ok(Stored::Deleted));
    assert_eq!(jar.store(&u, "d=4"), Ok(Stored::Inserted));
    let big = format!("big={}", "x".repeat(200));
    assert_eq!(jar.store(&u, &big), Err(CookieRejected::TooLarge(100)));
    assert!(matches!(
        jar.store(&u, "no equals sign"),
        Err(CookieRejected::Parse(_))
    ));
    jar.clear();
    assert!(jar.is_empty());
}
