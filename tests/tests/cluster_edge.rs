//! What the balancers answer themselves, through nginx and HAProxy in front
//! of three replica processes: the operations endpoints stay inside (as on
//! the ALB), and the refusals of oversize input carry the same JSON-RPC
//! error body through a balancer as they do direct.

mod common;

use common::cluster::{TestCluster, start_cluster};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tether_cluster::Balancer;

const OPS_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

async fn status_of(url: &str) -> StatusCode {
    send(client().get(url)).await.status()
}

/// `/healthz`, `/readyz` and `/metrics` are `404` through the balancer,
/// under every spelling a replica would still serve, and `200` straight
/// from each replica.
async fn ops_endpoints_stay_inside(cluster: &TestCluster) {
    for path in OPS_PATHS {
        for spelling in [path.to_owned(), format!("{path}?x=1")] {
            let url = format!("{}{spelling}", cluster.url());
            assert_eq!(
                status_of(&url).await,
                StatusCode::NOT_FOUND,
                "{spelling} through {:?}",
                cluster.balancer
            );
        }
        for r in &cluster.replicas {
            // Readiness is 200 for a replica that is neither draining nor
            // full, which these are.
            assert_eq!(
                status_of(&format!("{}{path}", r.url())).await,
                StatusCode::OK,
                "{path} straight from {}",
                r.route
            );
        }
    }
}

/// A 20 MB body on a live session: `413` with a JSON-RPC error body, the
/// session goes on.
async fn oversize_body_is_413_with_a_json_rpc_body(cluster: &TestCluster) {
    let s = cluster.endpoint().connect().await;
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(20 * 1024 * 1024)
    );
    let resp = send(s.post_raw(big)).await;
    assert_eq!(
        resp.status(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "through {:?}",
        cluster.balancer
    );
    assert!(
        content_type(&resp).starts_with("application/json"),
        "the 413 through {:?} has no JSON body",
        cluster.balancer
    );
    let body: Value = body_json(resp).await;
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["error"]["code"], -32600, "{body}");
    assert_eq!(s.result("ping", json!({})).await, json!({}));
}

async fn balancer_edge(balancer: Balancer) {
    let cluster = start_cluster(balancer).await;
    ops_endpoints_stay_inside(&cluster).await;
    oversize_body_is_413_with_a_json_rpc_body(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_keeps_ops_inside_and_refuses_oversize_bodies_with_json() {
    balancer_edge(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_keeps_ops_inside_and_refuses_oversize_bodies_with_json() {
    balancer_edge(Balancer::Haproxy).await;
}
