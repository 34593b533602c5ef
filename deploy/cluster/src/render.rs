//! The deployment-specific parts of the balancer configs: which replicas
//! exist and where. The policy itself (`deploy/nginx/tether-*.conf`,
//! `deploy/haproxy/haproxy.cfg`, and the rules of each HAProxy backend
//! written here) is the same for every deployment; only the lists of
//! replicas differ. The files docker compose uses are rendered from here
//! too (`tether-cluster render`), and a test keeps them in step.

use std::fmt::Write;

/// One replica as a balancer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The replica's route key (`--route`), the prefix of its session ids.
    pub route: String,
    /// Where the balancer reaches it (`host:port`).
    pub addr: String,
}

/// How HAProxy spreads requests over the replicas (the `tether` backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaproxyAffinity {
    /// By the route in `Mcp-Session-Id`, then by the replica's cookie.
    SessionHeader,
    /// By a cookie HAProxy inserts itself, and nothing else, and otherwise
    /// like an ALB with duration-based stickiness where clients can tell:
    /// no retry of a `503`, and a draining replica is taken out (its
    /// sticky clients re-pinned elsewhere) as a deregistered target is.
    InsertedCookie,
    /// No affinity at all: each request to the next ready replica, as a
    /// Kubernetes Service or any plain balancer sends it. Sessions work
    /// only with owner forwarding (`--peers`).
    RoundRobin,
}

/// The docker compose replicas: `r1`..`rN` on the compose network.
pub fn compose_members(n: usize) -> Vec<Member> {
    named_members("r", n)
}

/// The replicas of compose's `forwarding` profile, which forward to one
/// another: `f1`..`fN`, behind the round-robin balancer.
pub fn compose_forwarding_members(n: usize) -> Vec<Member> {
    named_members("f", n)
}

/// The replicas of compose's `stateless` profile (`--stateless`): `s1`..`sN`,
/// behind nginx with plain round robin.
pub fn compose_stateless_members(n: usize) -> Vec<Member> {
    named_members("s", n)
}

/// The replicas of compose's `redis` profile, which share state in Redis:
/// `d1`..`dN`, behind nginx with the usual session routing.
pub fn compose_redis_members(n: usize) -> Vec<Member> {
    named_members("d", n)
}

fn named_members(prefix: &str, n: usize) -> Vec<Member> {
    (1..=n)
        .map(|i| Member {
            route: format!("{prefix}{i}"),
            addr: format!("{prefix}{i}:8080"),
        })
        .collect()
}

const HEADER: &str = "# Rendered by `tether-cluster render`: the replicas of one deployment.\n\
                      # The policy is in the shared files beside this one.\n";

/// Why no replica is ever marked down by nginx, written into the file.
const NGINX_NO_PASSIVE_FAILURES: &str = "\
# max_fails=0: nginx never takes a replica out on its own. Open-source nginx
# has no active health checks, only passive failure counting, and that
# cannot tell a dead replica from a request that went wrong for reasons of
# its client's making (a reset upload, a 503 refusal while draining). One
# counted failure would send every session pinned to that replica to a
# backup, which does not know them and answers 404, and spec clients take
# 404 as the end of their session. So each request tries its replica
# first; a refused connection (the replica is really gone) moves that
# request on at once (proxy_next_upstream in tether-proxy.conf).
";

/// nginx: one upstream per replica (the others as backups, so a client
/// pinned to a dead replica reaches a live one, gets 404 and starts over
/// there), a pool for new sessions, and the route -> upstream map.
pub fn nginx_upstreams(members: &[Member]) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    out.push_str(NGINX_NO_PASSIVE_FAILURES);
    out.push('\n');
    out.push_str("upstream tether_pool {\n    least_conn;\n");
    for m in members {
        let _ = writeln!(out, "    server {} max_fails=0;", m.addr);
    }
    out.push_str("    keepalive 64;\n}\n");
    for m in members {
        let _ = write!(out, "\nupstream tether_{} {{\n", m.route);
        let _ = writeln!(out, "    server {} max_fails=0;", m.addr);
        for other in members.iter().filter(|o| o.route != m.route) {
            let _ = writeln!(out, "    server {} backup;", other.addr);
        }
        out.push_str("    keepalive 16;\n}\n");
    }
    out.push_str("\nmap $tether_route $tether_upstream {\n");
    for m in members {
        let _ = writeln!(out, "    {} tether_{};", m.route, m.route);
    }
    out.push_str("    default tether_pool;\n}\n");
    out
}

/// nginx with no affinity at all: one pool, plain round robin, for
/// replicas that keep no sessions (`--stateless`), where any replica serves
/// any request. The routing map of the shared policy still runs, and every
/// route leads to the pool.
pub fn nginx_round_robin_upstreams(members: &[Member]) -> String {
    let mut out = String::from(HEADER);
    out.push('\n');
    out.push_str(NGINX_NO_PASSIVE_FAILURES);
    out.push('\n');
    out.push_str("# No balancing method: nginx's default, round robin.\n");
    out.push_str("upstream tether_pool {\n");
    for m in members {
        let _ = writeln!(out, "    server {} max_fails=0;", m.addr);
    }
    out.push_str("    keepalive 64;\n}\n");
    out.push_str("\nmap $tether_route $tether_upstream {\n    default tether_pool;\n}\n");
    out
}

/// Why the session-header backend checks liveness and retries `503`.
const HAPROXY_SESSION_HEADER: &str =
    "    # Liveness, not readiness: a draining replica must keep serving the
    # sessions pinned to it until it exits. It refuses new ones with 503,
    # and so does a full one.
    option httpchk GET /healthz
    http-check expect status 200
    default-server check inter 1s fall 2 rise 1
    # A request that could not reach its replica (connection refused, or
    # closed without an answer) or met a 503 (a replica that is draining or
    # full refuses initialize) is retried on another. A replica answers 503
    # only to initialize, never within a live session, so a retry never
    # sends a session's request to a replica that does not know it.
    retry-on conn-failure empty-response 503
    balance leastconn
";

/// What makes the cookie backend behave like an ALB, and why.
const HAPROXY_INSERTED_COOKIE: &str =
    "    # Like an ALB target group with duration-based stickiness, where it
    # matters to clients, so that what the tests meet is what production
    # meets:
    # - A draining replica is taken out, as ECS deregisters a stopping
    #   task: its check fails once /readyz says \"draining\", so it gets
    #   nothing new, and a client whose cookie names it is balanced afresh
    #   and given a new cookie (the new replica forwards its session's
    #   requests to the draining owner when the replicas have peers, and
    #   answers them 404 when they have none). What
    #   runs there runs on, open SSE streams included (no
    #   `on-marked-down shutdown-sessions`), as it does within an ALB's
    #   deregistration delay. A full replica stays in, as a target whose
    #   /healthz passes: it refuses new sessions with 503 itself.
    # - A 503 goes to the client: an ALB retries nothing. Only a connection
    #   that failed is tried on another replica (no replica saw that
    #   request); an ALB answers it 502 until the dead target is taken out.
    option httpchk GET /readyz
    http-check expect rstring '\"status\":\"(ready|full)\"'
    default-server check inter 1s fall 2 rise 1
    retry-on conn-failure
    balance roundrobin
    cookie TETHER_LB insert indirect nocache httponly
";

/// What makes the round-robin backend a plain balancer, and why.
const HAPROXY_ROUND_ROBIN: &str =
    "    # No affinity at all: every request goes to the next ready replica,
    # whatever its session id or cookies, as a Kubernetes Service or any
    # plain balancer sends it. A session's requests reach its owner only
    # through owner forwarding (the replicas' --peers): without it, most
    # of them get 404.
    # Readiness, as a Kubernetes readinessProbe: a draining or full replica
    # gets no new request (with forwarding, the others still reach its
    # sessions), and what runs there runs on.
    # Only a connection that failed is tried on another replica (no replica
    # saw that request), as HAProxy and nginx do by default; a 503 is an
    # answer, and goes to the client. (A Kubernetes Service retries
    # nothing, and balances connections rather than requests: a client's
    # requests on one kept-alive connection reach one replica, those on
    # its other connections anywhere.)
    option httpchk GET /readyz
    http-check expect status 200
    default-server check inter 1s fall 2 rise 1
    retry-on conn-failure
    balance roundrobin
";

/// HAProxy: the `tether` backend, with its servers and affinity rules.
pub fn haproxy_backend(members: &[Member], affinity: HaproxyAffinity) -> String {
    let mut out = String::from(HEADER);
    out.push_str("\nbackend tether\n");
    match affinity {
        HaproxyAffinity::SessionHeader => {
            out.push_str(HAPROXY_SESSION_HEADER);
            for m in members {
                let _ = writeln!(
                    out,
                    "    use-server {} if {{ var(txn.route) -m str {} }}",
                    m.route, m.route
                );
            }
            for m in members {
                let _ = writeln!(out, "    server {} {}", m.route, m.addr);
            }
        }
        HaproxyAffinity::InsertedCookie => {
            out.push_str(HAPROXY_INSERTED_COOKIE);
            for m in members {
                let _ = writeln!(out, "    server {} {} cookie {}", m.route, m.addr, m.route);
            }
        }
        HaproxyAffinity::RoundRobin => {
            out.push_str(HAPROXY_ROUND_ROBIN);
            for m in members {
                let _ = writeln!(out, "    server {} {}", m.route, m.addr);
            }
        }
    }
    out
}

/// The top-level nginx config of a local cluster: the shared policy files
/// included verbatim, this cluster's upstreams, and its port.
pub fn nginx_local_main(deploy_dir: &str, run_dir: &str, listen: &str) -> String {
    format!(
        "# Local cluster: the policy files of {deploy_dir}/nginx, included verbatim.\n\
         daemon off;\n\
         worker_processes 2;\n\
         pid {run_dir}/nginx.pid;\n\
         error_log stderr warn;\n\
         events {{\n    worker_connections 8192;\n}}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   client_body_temp_path {run_dir}/client-body;\n\
         \x20   proxy_temp_path {run_dir}/proxy;\n\
         \x20   include {deploy_dir}/nginx/tether-routing.conf;\n\
         \x20   include {run_dir}/upstreams.conf;\n\
         \x20   server {{\n\
         \x20       listen {listen};\n\
         \x20       include {deploy_dir}/nginx/tether-proxy.conf;\n\
         \x20   }}\n\
         }}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files docker compose mounts are exactly what this module renders
    /// for three compose replicas, so compose and the local cluster cannot
    /// drift apart.
    #[test]
    fn committed_compose_files_match_the_renderer() {
        let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let m = compose_members(3);
        let read = |p: &str| std::fs::read_to_string(format!("{deploy}/{p}")).unwrap();
        assert_eq!(read("nginx/upstreams.conf"), nginx_upstreams(&m));
        assert_eq!(
            read("haproxy/backend-header.cfg"),
            haproxy_backend(&m, HaproxyAffinity::SessionHeader)
        );
        assert_eq!(
            read("haproxy/backend-cookie.cfg"),
            haproxy_backend(&m, HaproxyAffinity::InsertedCookie)
        );
        assert_eq!(
            read("haproxy/backend-roundrobin.cfg"),
            haproxy_backend(&compose_forwarding_members(3), HaproxyAffinity::RoundRobin)
        );
        assert_eq!(
            read("nginx/upstreams-stateless.conf"),
            nginx_round_robin_upstreams(&compose_stateless_members(3))
        );
        assert_eq!(
            read("nginx/upstreams-redis.conf"),
            nginx_upstreams(&compose_redis_members(3))
        );
    }

    /// compose's nginx mains differ in the upstreams they include and
    /// nothing else: the `stateless` and `redis` profiles run the same
    /// policy.
    #[test]
    fn the_other_nginx_mains_are_the_main_with_other_upstreams() {
        let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let read = |p: &str| std::fs::read_to_string(format!("{deploy}/{p}")).unwrap();
        let main = read("nginx/nginx.conf");
        for (file, upstreams) in [
            ("nginx/nginx-stateless.conf", "upstreams-stateless.conf"),
            ("nginx/nginx-redis.conf", "upstreams-redis.conf"),
        ] {
            let other = read(file);
            let want: Vec<String> = directives(&main)
                .into_iter()
                .map(|l| l.replace("include upstreams.conf;", &format!("include {upstreams};")))
                .collect();
            assert_eq!(directives(&other), want, "{file}");
        }
    }

    #[test]
    fn the_round_robin_upstreams_have_one_pool_and_no_method() {
        let conf = nginx_round_robin_upstreams(&compose_stateless_members(2));
        let d = directives(&conf);
        assert!(d.contains(&"server s2:8080 max_fails=0;"), "{conf}");
        assert!(d.contains(&"default tether_pool;"), "{conf}");
        for pinning in ["least_conn", "hash", "backup", "ip_hash"] {
            assert!(
                !d.iter().any(|l| l.contains(pinning)),
                "{pinning} in {conf}"
            );
        }
    }

    #[test]
    fn every_route_maps_to_its_own_upstream_with_the_others_as_backups() {
        let conf = nginx_upstreams(&compose_members(2));
        assert!(conf.contains(
            "upstream tether_r1 {\n    server r1:8080 max_fails=0;\n    server r2:8080 backup;"
        ));
        assert!(conf.contains("    r2 tether_r2;\n    default tether_pool;"));
    }

    /// Lines of `conf` that are directives, comments left out.
    fn directives(conf: &str) -> Vec<&str> {
        conf.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    }

    /// Only the session-header backend pins by session or retries a 503;
    /// the ALB-like and the plain one check readiness and retry only a
    /// connection that failed.
    #[test]
    fn each_backend_pins_checks_and_retries_as_its_mode_says() {
        let m = compose_members(2);
        let header = haproxy_backend(&m, HaproxyAffinity::SessionHeader);
        let d = directives(&header);
        assert!(d.contains(&"option httpchk GET /healthz"), "{header}");
        assert!(
            d.contains(&"retry-on conn-failure empty-response 503"),
            "{header}"
        );
        assert!(d.contains(&"use-server r2 if { var(txn.route) -m str r2 }"));

        let cookie = haproxy_backend(&m, HaproxyAffinity::InsertedCookie);
        let d = directives(&cookie);
        assert!(d.contains(&"option httpchk GET /readyz"), "{cookie}");
        assert!(d.contains(&"http-check expect rstring '\"status\":\"(ready|full)\"'"));
        assert!(d.contains(&"retry-on conn-failure"), "{cookie}");
        assert!(d.contains(&"server r2 r2:8080 cookie r2"), "{cookie}");
        for pinning_elsewhere in ["use-server", "shutdown-sessions", "503"] {
            assert!(
                !d.iter().any(|l| l.contains(pinning_elsewhere)),
                "{pinning_elsewhere} in {cookie}"
            );
        }

        let plain = haproxy_backend(&m, HaproxyAffinity::RoundRobin);
        let d = directives(&plain);
        assert!(d.contains(&"option httpchk GET /readyz"), "{plain}");
        assert!(d.contains(&"http-check expect status 200"), "{plain}");
        assert!(d.contains(&"retry-on conn-failure"), "{plain}");
        assert!(d.contains(&"balance roundrobin"), "{plain}");
        assert!(d.contains(&"server r2 r2:8080"), "{plain}");
        for pinning in ["use-server", "cookie", "shutdown-sessions"] {
            assert!(
                !d.iter().any(|l| l.contains(pinning)),
                "{pinning} in {plain}"
            );
        }
    }
}
