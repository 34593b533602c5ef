//! The official Rust SDK (`rmcp`) through the shim: its Streamable HTTP
//! transport takes a reqwest 0.13 client, and the shim's
//! `cookie_client(jar)` keeps the balancer's cookie for it. Without a jar,
//! a balancer that pins by cookie alone loses rmcp's sessions.

mod common;

use common::*;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use std::sync::Arc;
use tether_shim::CookieJar;

const SESSIONS: usize = 20;
const CALLS: u64 = 3;

/// What one rmcp session saw: the (count, replica) of each `counter` call.
type Seen = Vec<(u64, String)>;

/// One rmcp session calling `counter` three times.
async fn rmcp_session(url: String, jar: Option<Arc<CookieJar>>) -> Result<Seen, String> {
    let http = match jar {
        // One jar, hence one reqwest client, per session.
        Some(jar) => tether_shim::cookie_client(jar),
        None => tether_shim::http_client(),
    }
    .map_err(|e| e.to_string())?;
    let transport = StreamableHttpClientTransport::with_client(
        http,
        StreamableHttpClientTransportConfig::with_uri(url),
    );
    let client = ().serve(transport).await.map_err(|e| format!("initialize: {e}"))?;
    let mut seen = Vec::new();
    for _ in 0..CALLS {
        let r = client
            .call_tool(CallToolRequestParams::new("counter"))
            .await
            .map_err(|e| format!("tools/call: {e}"))?;
        let s = r.structured_content.ok_or("no structuredContent")?;
        seen.push((
            s["count"].as_u64().ok_or("no count")?,
            s["replica"].as_str().ok_or("no replica")?.to_owned(),
        ));
    }
    let _ = client.cancel().await;
    Ok(seen)
}

async fn run(url: &str, cookies: bool) -> Vec<(Option<Arc<CookieJar>>, Result<Seen, String>)> {
    let tasks: Vec<_> = (0..SESSIONS)
        .map(|_| {
            let jar = cookies.then(|| Arc::new(CookieJar::new()));
            let url = url.to_owned();
            tokio::spawn(async move {
                let r = within("an rmcp session", rmcp_session(url, jar.clone())).await;
                (jar, r)
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(within("an rmcp session", t).await.expect("no panic"));
    }
    out
}

/// Whether a session counted 1, 2, 3 on one replica.
fn sticky(seen: &Seen) -> bool {
    seen.len() == CALLS as usize
        && seen
            .iter()
            .enumerate()
            .all(|(i, (n, _))| *n == i as u64 + 1)
        && seen.iter().all(|(_, r)| *r == seen[0].1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rmcp_with_the_shims_client_keeps_twenty_sessions_on_their_replicas() {
    let cluster = cookie_cluster().await;
    let url = cluster.mcp_url();
    for (jar, outcome) in run(&url, true).await {
        let seen = outcome.unwrap_or_else(|e| panic!("an rmcp session failed: {e}"));
        assert!(sticky(&seen), "counted {seen:?}");
        let jar = jar.expect("a jar");
        assert_eq!(
            jar.get(&url.parse().expect("url"), "TETHER_LB"),
            Some(seen[0].1.clone()),
            "the jar holds HAProxy's cookie for the session's replica"
        );
    }
    assert_eq!(misrouted(&cluster).await, 0);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rmcp_without_a_cookie_jar_loses_its_sessions() {
    let cluster = cookie_cluster().await;
    let outcomes = run(&cluster.mcp_url(), false).await;
    // rmcp re-initializes after a 404 and retries the call once, so a lost
    // session shows either as an error or as a count that starts over (or
    // a replica that changes): a tool call silently ran in a new session.
    let mut errors = 0;
    let mut restarted = 0;
    for (_, o) in &outcomes {
        match o {
            Err(e) => {
                if errors == 0 {
                    eprintln!("rmcp without cookies, e.g.: {e}");
                }
                errors += 1
            }
            Ok(seen) if !sticky(seen) => restarted += 1,
            Ok(_) => {}
        }
    }
    eprintln!(
        "rmcp without cookies: {errors} sessions failed, {restarted} silently restarted, {} intact of {SESSIONS}",
        SESSIONS - errors - restarted
    );
    // A session stays intact only when all of its requests happen to meet
    // the same replica of the round robin: rare, but under load (a shared
    // CI machine) requests of concurrent sessions interleave in runs, and
    // up to a fifth have been seen intact. Most are lost, every time.
    assert!(
        errors + restarted >= SESSIONS / 2,
        "{errors} failed and {restarted} restarted of {SESSIONS}"
    );
    assert!(misrouted(&cluster).await > 0);
    cluster.stop().await;
}
