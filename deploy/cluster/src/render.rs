//! The deployment-specific parts of the balancer configs: which replicas
//! exist and where. The policy itself (`deploy/nginx/tether-*.conf`,
//! `deploy/haproxy/haproxy.cfg`) is shared verbatim by every deployment;
//! only these lists differ. The files docker compose uses are rendered from
//! here too (`tether-cluster render`), and a test keeps them in step.

use std::fmt::Write;

/// One replica as a balancer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The replica's route key (`--route`), the prefix of its session ids.
    pub route: String,
    /// Where the balancer reaches it (`host:port`).
    pub addr: String,
}

/// How HAProxy pins clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HaproxyAffinity {
    /// By the route in `Mcp-Session-Id`, then by the replica's cookie.
    SessionHeader,
    /// By a cookie HAProxy inserts itself, and nothing else (like an ALB
    /// with duration-based stickiness).
    InsertedCookie,
}

/// The docker compose replicas: `r1`..`rN` on the compose network.
pub fn compose_members(n: usize) -> Vec<Member> {
    (1..=n)
        .map(|i| Member {
            route: format!("r{i}"),
            addr: format!("r{i}:8080"),
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

/// HAProxy: the `tether` backend, with its servers and affinity rules.
pub fn haproxy_backend(members: &[Member], affinity: HaproxyAffinity) -> String {
    let mut out = String::from(HEADER);
    out.push_str("\nbackend tether\n");
    // Liveness, not readiness: a draining replica must keep serving the
    // sessions pinned to it until it exits; it refuses new ones with 503,
    // which the frontend retries elsewhere.
    out.push_str("    option httpchk GET /healthz\n    http-check expect status 200\n");
    out.push_str("    default-server check inter 1s fall 2 rise 1\n");
    match affinity {
        HaproxyAffinity::SessionHeader => {
            out.push_str("    balance leastconn\n");
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
            out.push_str("    balance roundrobin\n");
            out.push_str("    cookie TETHER_LB insert indirect nocache httponly\n");
            for m in members {
                let _ = writeln!(out, "    server {} {} cookie {}", m.route, m.addr, m.route);
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
    }

    #[test]
    fn every_route_maps_to_its_own_upstream_with_the_others_as_backups() {
        let conf = nginx_upstreams(&compose_members(2));
        assert!(conf.contains(
            "upstream tether_r1 {\n    server r1:8080 max_fails=0;\n    server r2:8080 backup;"
        ));
        assert!(conf.contains("    r2 tether_r2;\n    default tether_pool;"));
    }
}
