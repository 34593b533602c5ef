//! ECS task scale-in protection, kept on while this replica holds sessions.
//!
//! When ECS scales a service in (Application Auto Scaling lowers the
//! desired count) or replaces tasks in a rollout, it stops tasks, and the
//! sessions of a stopped task end. A task may mark itself protected
//! through its ECS agent: `PUT $ECS_AGENT_URI/task-protection/v1/state`
//! with `{"ProtectionEnabled":true,"ExpiresInMinutes":N}` (1 to 2880
//! minutes; the agent's default is 120), and `{"ProtectionEnabled":false}`
//! to let go. ECS stops no protected task for a scale-in or a deployment;
//! the protection lapses by itself when its minutes are up. The agent
//! calls the ECS API `UpdateTaskProtection` with the **task role**, which
//! needs `ecs:UpdateTaskProtection` (the template in `deploy/aws` grants
//! it).
//!
//! [`keep_protected`] asks for protection when the first session appears
//! and lets go when the last one ends, so that scaling in stops idle tasks
//! first. It sends a request only when what it wants changes and to renew:
//!
//! - **15 minutes, renewed every 5.** A replica that hangs, or an agent
//!   that cannot be reached when the last session ends, holds a scale-in
//!   back by at most 15 minutes, and two renewals in a row may fail before
//!   the protection lapses.
//! - **At most 60 minutes in a row, then 10 unprotected.** Protection also
//!   holds back deployments, and a busy replica may never be without a
//!   session: protection kept up for good would stall every rollout (and
//!   every scale-in) until its sessions end, which may be never. So a
//!   replica lets go after an hour of protection even with sessions, for
//!   ten minutes in which ECS may stop it, and then asks again. A rollout
//!   or scale-in therefore waits for a busy task for at most about an hour.
//!
//! Every request has a timeout; a failure is logged and retried with a
//! growing pause, and never stops the replica: protection is a preference
//! of the scheduler, not something a session depends on.

use axum::body::Body;
use http::{Method, Request, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The agent's task protection endpoint, below `ECS_AGENT_URI`.
pub const STATE_PATH: &str = "/task-protection/v1/state";

/// The environment variable in which ECS gives every task its agent's URI.
pub const AGENT_URI_ENV: &str = "ECS_AGENT_URI";

/// The number of sessions this replica holds right now.
pub type SessionCount = Arc<dyn Fn() -> usize + Send + Sync>;

/// The bounds of [`keep_protected_with`]; [`Settings::default`] is what
/// [`keep_protected`] uses, with the reasons in the module docs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long one protection lasts unless renewed (`ExpiresInMinutes`).
    pub expires_in_minutes: u32,
    /// How often protection is renewed while wanted: well below its expiry.
    pub renew_every: Duration,
    /// The longest stretch of protection while sessions remain.
    pub hold: Duration,
    /// After a stretch of `hold`, how long the task stays unprotected
    /// (stoppable by a scale-in or a rollout) before it asks again.
    pub release: Duration,
    /// The bound of one request to the agent, connect to last byte.
    pub request_timeout: Duration,
    /// The longest pause between two tries after failures.
    pub max_retry_pause: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            expires_in_minutes: 15,
            renew_every: Duration::from_secs(5 * 60),
            hold: Duration::from_secs(60 * 60),
            release: Duration::from_secs(10 * 60),
            request_timeout: Duration::from_secs(5),
            max_retry_pause: Duration::from_secs(60),
        }
    }
}

/// Keeps this task scale-in protected while `sessions()` is above zero,
/// with [`Settings::default`]: looks every `refresh`, until `shutdown` is
/// cancelled, and then lets go of any protection it holds. `agent_uri` is
/// the value of `ECS_AGENT_URI`.
pub async fn keep_protected(
    agent_uri: String,
    sessions: SessionCount,
    refresh: Duration,
    shutdown: CancellationToken,
) {
    keep_protected_with(Settings::default(), agent_uri, sessions, refresh, shutdown).await
}

/// [`keep_protected`] with other bounds (tests, embedding).
pub async fn keep_protected_with(
    settings: Settings,
    agent_uri: String,
    sessions: SessionCount,
    refresh: Duration,
    shutdown: CancellationToken,
) {
    let uri: Uri = match format!("{}{STATE_PATH}", agent_uri.trim_end_matches('/')).parse() {
        Ok(uri) => uri,
        Err(e) => {
            tracing::warn!(%agent_uri, error = %e, "task protection: not a URI; protection stays off");
            return;
        }
    };
    let agent = Agent::new(uri, settings.request_timeout);
    let refresh = refresh.max(Duration::from_millis(1));
    let mut plan = Plan::new(settings.hold, settings.release);
    // What the agent last confirmed, and when. A new task is unprotected.
    let mut confirmed = false;
    let mut confirmed_at = Instant::now();
    let mut failures: u32 = 0;
    let mut next_try = Instant::now();
    loop {
        let now = Instant::now();
        let want = plan.wants(sessions(), now);
        let renewal_due = want && now.duration_since(confirmed_at) >= settings.renew_every;
        if (want != confirmed || renewal_due) && now >= next_try {
            let body = if want {
                serde_json::json!({
                    "ProtectionEnabled": true,
                    "ExpiresInMinutes": settings.expires_in_minutes,
                })
            } else {
                serde_json::json!({ "ProtectionEnabled": false })
            };
            match agent.put(&body).await {
                Ok(()) => {
                    if want != confirmed {
                        tracing::info!(protected = want, "task scale-in protection changed");
                    }
                    confirmed = want;
                    confirmed_at = Instant::now();
                    failures = 0;
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let pause = retry_pause(refresh, failures, settings.max_retry_pause);
                    next_try = Instant::now() + pause;
                    tracing::warn!(
                        protected = want,
                        error = %e,
                        failures,
                        retry_in_ms = pause.as_millis() as u64,
                        "task scale-in protection: the ECS agent did not take the change"
                    );
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(refresh) => {}
        }
    }
    // The replica is stopping: a protection it still holds would only
    // keep ECS from replacing the task for nothing.
    if confirmed {
        match agent
            .put(&serde_json::json!({ "ProtectionEnabled": false }))
            .await
        {
            Ok(()) => tracing::info!(protected = false, "task scale-in protection changed"),
            Err(e) => tracing::warn!(
                error = %e,
                "task scale-in protection: could not let go at stop; it lapses by itself"
            ),
        }
    }
}

/// After `failures` failed tries in a row: `refresh` doubled each time,
/// at most `max`.
fn retry_pause(refresh: Duration, failures: u32, max: Duration) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    refresh.saturating_mul(factor).min(max.max(refresh))
}

/// Whether protection is wanted, from the session count over time:
/// while sessions remain, stretches of `hold` protected, each followed by
/// `release` unprotected; no sessions, no protection.
struct Plan {
    hold: Duration,
    release: Duration,
    /// When the current protected stretch began.
    stretch: Option<Instant>,
    /// The end of the current unprotected window.
    released_until: Option<Instant>,
}

impl Plan {
    fn new(hold: Duration, release: Duration) -> Self {
        Plan {
            hold,
            release,
            stretch: None,
            released_until: None,
        }
    }

    fn wants(&mut self, sessions: usize, now: Instant) -> bool {
        if sessions == 0 {
            self.stretch = None;
            self.released_until = None;
            return false;
        }
        if let Some(until) = self.released_until {
            if now < until {
                return false;
            }
            self.released_until = None;
        }
        let began = *self.stretch.get_or_insert(now);
        if now.duration_since(began) < self.hold {
            return true;
        }
        self.stretch = None;
        self.released_until = Some(now + self.release);
        false
    }
}

/// The agent endpoint, through one plain-HTTP client.
struct Agent {
    uri: Uri,
    timeout: Duration,
    client: Client<HttpConnector, Body>,
}

/// Why a request to the agent did not take.
#[derive(Debug, thiserror::Error)]
enum AgentError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Request(#[from] hyper_util::client::legacy::Error),
    #[error("cannot build the request: {0}")]
    Build(#[from] http::Error),
    #[error("cannot read the answer: {0}")]
    Body(#[from] axum::Error),
    #[error("HTTP {status}: {body}")]
    Refused { status: u16, body: String },
}

/// The longest answer read from the agent (it sends a few hundred bytes).
const MAX_ANSWER: usize = 64 * 1024;

impl Agent {
    fn new(uri: Uri, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Agent {
            uri,
            timeout,
            client,
        }
    }

    async fn put(&self, body: &serde_json::Value) -> Result<(), AgentError> {
        match tokio::time::timeout(self.timeout, self.send(body)).await {
            Ok(result) => result,
            Err(_) => Err(AgentError::Timeout(self.timeout)),
        }
    }

    async fn send(&self, body: &serde_json::Value) -> Result<(), AgentError> {
        let request = Request::builder()
            .method(Method::PUT)
            .uri(self.uri.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))?;
        let response = self.client.request(request).await?;
        let status = response.status();
        let answer = axum::body::to_bytes(Body::new(response.into_body()), MAX_ANSWER).await?;
        // The agent answers `{"protection":{...}}` when the change took,
        // and `{"failure":{...}}` or `{"error":{...}}` when it did not.
        let refused = serde_json::from_slice::<serde_json::Value>(&answer)
            .is_ok_and(|v| v.get("failure").is_some() || v.get("error").is_some());
        if status.is_success() && !refused {
            Ok(())
        } else {
            Err(AgentError::Refused {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&answer).chars().take(512).collect(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::put;
    use serde_json::{Value, json};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// What the stand-in agent does with a request.
    #[derive(Clone, Copy)]
    enum Answer {
        Take,
        Fail,
        Hang,
    }

    /// What the stand-in agent shares with its handler.
    #[derive(Clone)]
    struct Shared {
        bodies: Arc<Mutex<Vec<Value>>>,
        answer: Arc<Mutex<Answer>>,
    }

    /// The stand-in's protection endpoint: records the body, answers as
    /// told (the answer is read before the body is recorded, so a test
    /// that changes it knows which requests saw which).
    async fn state_endpoint(State(shared): State<Shared>, body: String) -> (StatusCode, String) {
        let answer = *shared.answer.lock().expect("lock");
        let body: Value = serde_json::from_str(&body).expect("a JSON body");
        shared.bodies.lock().expect("lock").push(body.clone());
        match answer {
            Answer::Take => (
                StatusCode::OK,
                json!({"protection": {
                    "ProtectionEnabled": body["ProtectionEnabled"],
                    "TaskArn": "arn:aws:ecs:eu-west-1:123456789012:task/c/1",
                }})
                .to_string(),
            ),
            Answer::Fail => (
                StatusCode::BAD_REQUEST,
                json!({"error": {"Code": "AccessDeniedException"}}).to_string(),
            ),
            Answer::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                (StatusCode::OK, String::new())
            }
        }
    }

    /// A loopback stand-in of the ECS agent: records every PUT body on
    /// the protection endpoint, and answers as told.
    struct FakeAgent {
        uri: String,
        shared: Shared,
    }

    impl FakeAgent {
        async fn start() -> FakeAgent {
            let shared = Shared {
                bodies: Arc::default(),
                answer: Arc::new(Mutex::new(Answer::Take)),
            };
            let app = Router::new()
                .route("/api/task-1/task-protection/v1/state", put(state_endpoint))
                .with_state(shared.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("address");
            tokio::spawn(async move {
                axum::serve(listener, app).await.expect("serve");
            });
            FakeAgent {
                uri: format!("http://{addr}/api/task-1"),
                shared,
            }
        }

        fn bodies(&self) -> Vec<Value> {
            self.shared.bodies.lock().expect("lock").clone()
        }

        fn answer(&self, a: Answer) {
            *self.shared.answer.lock().expect("lock") = a;
        }

        /// Waits (at most 5 s) until no request has come for `quiet`;
        /// returns how many came in all.
        async fn quiet_for(&self, quiet: Duration) -> usize {
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut seen = self.bodies().len();
            let mut since = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let now = self.bodies().len();
                if now != seen {
                    (seen, since) = (now, Instant::now());
                } else if since.elapsed() >= quiet {
                    return seen;
                }
                assert!(Instant::now() < deadline, "the agent is never left alone");
            }
        }

        /// Waits (at most 5 s) until the agent has received `n` bodies.
        async fn wait_for(&self, n: usize) -> Vec<Value> {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let bodies = self.bodies();
                if bodies.len() >= n {
                    return bodies;
                }
                assert!(
                    Instant::now() < deadline,
                    "the agent got {bodies:?}, expected {n} requests"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }

    const REFRESH: Duration = Duration::from_millis(10);

    fn on(minutes: u32) -> Value {
        json!({"ProtectionEnabled": true, "ExpiresInMinutes": minutes})
    }

    fn off() -> Value {
        json!({"ProtectionEnabled": false})
    }

    fn counter() -> (Arc<AtomicUsize>, SessionCount) {
        let n = Arc::new(AtomicUsize::new(0));
        let read = n.clone();
        (n, Arc::new(move || read.load(Ordering::SeqCst)))
    }

    fn start(settings: Settings, agent: &FakeAgent, sessions: SessionCount) -> CancellationToken {
        let shutdown = CancellationToken::new();
        tokio::spawn(keep_protected_with(
            settings,
            agent.uri.clone(),
            sessions,
            REFRESH,
            shutdown.clone(),
        ));
        shutdown
    }

    #[tokio::test]
    async fn protection_is_on_while_sessions_exist_and_off_when_they_end() {
        let agent = FakeAgent::start().await;
        let (n, sessions) = counter();
        let shutdown = start(Settings::default(), &agent, sessions);

        // A new task is unprotected: nothing to say while it holds nothing.
        tokio::time::sleep(REFRESH * 10).await;
        assert_eq!(agent.bodies(), Vec::<Value>::new());

        n.store(3, Ordering::SeqCst);
        assert_eq!(agent.wait_for(1).await, vec![on(15)]);
        // More sessions, fewer sessions: no change, no request.
        n.store(7, Ordering::SeqCst);
        tokio::time::sleep(REFRESH * 5).await;
        n.store(1, Ordering::SeqCst);
        tokio::time::sleep(REFRESH * 10).await;
        assert_eq!(agent.bodies().len(), 1, "{:?}", agent.bodies());

        n.store(0, Ordering::SeqCst);
        assert_eq!(agent.wait_for(2).await, vec![on(15), off()]);
        tokio::time::sleep(REFRESH * 10).await;
        assert_eq!(agent.bodies().len(), 2, "{:?}", agent.bodies());

        // Sessions again: protected again. At stop it lets go.
        n.store(2, Ordering::SeqCst);
        agent.wait_for(3).await;
        shutdown.cancel();
        assert_eq!(agent.wait_for(4).await, vec![on(15), off(), on(15), off()]);
    }

    #[tokio::test]
    async fn protection_is_renewed_before_it_expires() {
        let agent = FakeAgent::start().await;
        let (n, sessions) = counter();
        let settings = Settings {
            renew_every: Duration::from_millis(50),
            ..Settings::default()
        };
        let shutdown = start(settings, &agent, sessions);
        n.store(1, Ordering::SeqCst);
        let bodies = agent.wait_for(4).await;
        assert!(bodies.iter().all(|b| *b == on(15)), "{bodies:?}");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_long_busy_stretch_is_followed_by_a_window_without_protection() {
        let agent = FakeAgent::start().await;
        let (n, sessions) = counter();
        let settings = Settings {
            hold: Duration::from_millis(100),
            release: Duration::from_millis(100),
            ..Settings::default()
        };
        let shutdown = start(settings, &agent, sessions);
        n.store(5, Ordering::SeqCst);
        // Sessions all along: on, off for the window, on again.
        assert_eq!(agent.wait_for(3).await[..3], [on(15), off(), on(15)]);
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_refusing_agent_is_retried_and_never_stops_the_replica() {
        let agent = FakeAgent::start().await;
        agent.answer(Answer::Fail);
        let (n, sessions) = counter();
        let shutdown = start(Settings::default(), &agent, sessions);
        n.store(1, Ordering::SeqCst);
        // Refused twice (a growing pause between tries), then it takes.
        agent.wait_for(2).await;
        agent.answer(Answer::Take);
        // Once taken, quiet: nothing more to say while sessions remain.
        let taken = agent.quiet_for(REFRESH * 30).await;
        assert!(agent.bodies().iter().all(|b| *b == on(15)));
        // Nothing to let go of is not sent twice: off once when it ends.
        n.store(0, Ordering::SeqCst);
        assert_eq!(agent.wait_for(taken + 1).await[taken], off());
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_hanging_agent_costs_one_timeout_per_try() {
        let agent = FakeAgent::start().await;
        agent.answer(Answer::Hang);
        let (n, sessions) = counter();
        let settings = Settings {
            request_timeout: Duration::from_millis(50),
            ..Settings::default()
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(keep_protected_with(
            settings,
            agent.uri.clone(),
            sessions,
            REFRESH,
            shutdown.clone(),
        ));
        n.store(1, Ordering::SeqCst);
        agent.wait_for(2).await;
        shutdown.cancel();
        // It stops promptly: no protection was confirmed, so nothing to
        // let go of.
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("stops within the request timeout")
            .expect("no panic");
    }

    #[tokio::test]
    async fn an_unreachable_agent_is_only_logged() {
        // A port nothing listens on (bound, then dropped).
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        drop(listener);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(keep_protected(
            format!("http://{addr}/api/x"),
            Arc::new(|| 1),
            REFRESH,
            shutdown.clone(),
        ));
        tokio::time::sleep(REFRESH * 10).await;
        assert!(!task.is_finished(), "failures are not fatal");
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("stops")
            .expect("no panic");
    }

    #[test]
    fn the_retry_pause_doubles_up_to_its_bound() {
        let r = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        assert_eq!(retry_pause(r, 1, max), r);
        assert_eq!(retry_pause(r, 2, max), r * 2);
        assert_eq!(retry_pause(r, 4, max), r * 8);
        assert_eq!(retry_pause(r, 5, max), max);
        assert_eq!(retry_pause(r, u32::MAX, max), max);
    }

    #[test]
    fn default_protection_is_renewed_twice_before_it_lapses() {
        let s = Settings::default();
        let expiry = Duration::from_secs(u64::from(s.expires_in_minutes) * 60);
        assert!(
            (1..=2880).contains(&s.expires_in_minutes),
            "the agent's range"
        );
        assert!(s.renew_every * 3 <= expiry);
        assert!(s.hold > s.renew_every && s.release > Duration::ZERO);
    }
}
