//! Who may call a replica: the `Origin` and `Host` allow-lists that protect
//! a replica on a private address from DNS rebinding, resolved once from
//! the configuration. Any transport (HTTP today, a Lambda adapter later)
//! checks its requests against them; nothing here knows HTTP.

use std::net::SocketAddr;

/// Origin and Host allow-lists, resolved once from the config.
#[derive(Debug, Clone)]
pub struct Allowed {
    origins: Option<Vec<String>>,
    hosts: Option<Vec<String>>,
}

impl Allowed {
    /// Explicit lists win; otherwise a replica on loopback accepts only
    /// loopback names (a browser page elsewhere cannot reach it through DNS
    /// rebinding), and a replica on a public address checks no Host (it
    /// cannot know the names it is reached by) and accepts no browser
    /// Origin.
    pub fn from_config(listen: SocketAddr, origins: &[String], hosts: &[String]) -> Self {
        let loopback = listen.ip().is_loopback();
        let list = |v: &[String]| -> Option<Vec<String>> {
            if v.iter().any(|s| s == "*") {
                None
            } else {
                Some(v.iter().map(|s| s.trim().to_ascii_lowercase()).collect())
            }
        };
        let local_names = || {
            ["localhost", "127.0.0.1", "[::1]"]
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        };
        let origins = if !origins.is_empty() {
            list(origins)
        } else if loopback {
            Some(
                local_names()
                    .into_iter()
                    .flat_map(|h| [format!("http://{h}"), format!("https://{h}")])
                    .collect(),
            )
        } else {
            Some(Vec::new())
        };
        let hosts = if !hosts.is_empty() {
            list(hosts)
        } else if loopback {
            Some(local_names())
        } else {
            None
        };
        Allowed { origins, hosts }
    }

    /// Whether a request with this `Origin` may be served.
    pub fn origin_ok(&self, origin: &str) -> bool {
        let Some(allowed) = &self.origins else {
            return true;
        };
        let origin = origin.to_ascii_lowercase();
        allowed
            .iter()
            .any(|a| *a == origin || strip_port(&origin) == a.as_str())
    }

    /// Whether a request for this `Host` may be served.
    pub fn host_ok(&self, host: &str) -> bool {
        let Some(allowed) = &self.hosts else {
            return true;
        };
        let host = host.to_ascii_lowercase();
        allowed
            .iter()
            .any(|a| *a == host || strip_port(&host) == a.as_str())
    }
}

/// `http://localhost:3000` -> `http://localhost`; `[::1]:80` -> `[::1]`.
fn strip_port(s: &str) -> &str {
    match s.rfind(':') {
        Some(i) if s[i + 1..].chars().all(|c| c.is_ascii_digit()) && !s[i + 1..].is_empty() => {
            &s[..i]
        }
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_defaults_refuse_foreign_origins_and_hosts() {
        let a = Allowed::from_config("127.0.0.1:8080".parse().unwrap(), &[], &[]);
        assert!(a.origin_ok("http://localhost:5173"));
        assert!(!a.origin_ok("http://evil.example"));
        assert!(a.host_ok("127.0.0.1:8080"));
        assert!(a.host_ok("[::1]:8080"));
        assert!(!a.host_ok("evil.example:8080"));
        let public = Allowed::from_config("0.0.0.0:8080".parse().unwrap(), &[], &[]);
        assert!(public.host_ok("mcp.example.com"));
        assert!(!public.origin_ok("http://localhost:3000"));
        let any = Allowed::from_config("0.0.0.0:8080".parse().unwrap(), &["*".into()], &[]);
        assert!(any.origin_ok("https://app.example"));
    }
}
