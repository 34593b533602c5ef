//! The life of a replica as one small explicit type: serving, draining,
//! stopping (tokio's mini-redis `shutdown.rs` is the model). Every part
//! that must behave differently while the replica drains asks it; nothing
//! here knows HTTP.
//!
//! The order, and why:
//! 1. **Serving.**
//! 2. **Draining** ([`Lifecycle::drain`], on SIGTERM or
//!    [`Lifecycle::request_stop`]): readiness fails and new sessions are
//!    refused, while everything of a live session is still served, so that
//!    in-flight requests finish and their clients can still answer sampling
//!    or elicitation and re-open their streams. A refusal there would reach
//!    another replica through the balancer, whose `404` ends the session
//!    for a spec client, calls in flight included.
//! 3. **Stopping** ([`Lifecycle::end_streams`]), once nothing is in flight
//!    or the drain bound has passed: the streams that would never end by
//!    themselves (standalone, old transport) end, with a `retry` hint; the
//!    transport closes what is left within [`EXIT_GRACE`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long after the drain a replica may take to close what is left and
/// exit: a container's stop timeout must exceed drain bound + this.
pub const EXIT_GRACE: Duration = Duration::from_secs(2);

/// How often the drain looks whether requests are still in flight.
const DRAIN_POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
pub struct Lifecycle {
    draining: AtomicBool,
    in_flight: Arc<AtomicUsize>,
    /// Cancelled to ask a replica to drain and stop, as SIGTERM does to
    /// the binary (embedded replicas, tests).
    stop_requested: CancellationToken,
    /// Cancelled when the replica stops: the streams that never end by
    /// themselves end with it.
    streams_end: CancellationToken,
}

impl Lifecycle {
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Fails readiness and refuses new sessions from now on; existing
    /// sessions go on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Drains for at most `bound`: returns once no request is in flight.
    pub async fn drain(&self, bound: Duration) {
        tracing::info!(
            in_flight = self.requests_in_flight(),
            "draining for at most {bound:?}"
        );
        self.start_draining();
        let deadline = tokio::time::Instant::now() + bound;
        while self.requests_in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(DRAIN_POLL).await;
        }
        let left = self.requests_in_flight();
        if left > 0 {
            tracing::warn!(
                in_flight = left,
                "drain bound reached; exiting with requests in flight"
            );
        }
    }

    /// Asks the replica to drain and stop.
    pub fn request_stop(&self) {
        self.stop_requested.cancel();
    }

    /// Resolves once a stop was requested ([`Lifecycle::request_stop`]).
    pub fn stop_requested(&self) -> &CancellationToken {
        &self.stop_requested
    }

    /// Ends the streams that would never end by themselves: the replica
    /// stops.
    pub fn end_streams(&self) {
        self.streams_end.cancel();
    }

    /// Cancelled when the replica stops (see [`Lifecycle::end_streams`]).
    pub fn streams_end(&self) -> &CancellationToken {
        &self.streams_end
    }

    /// Requests being served right now, across sessions.
    pub fn requests_in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a request as in flight until the guard drops.
    pub fn request_started(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.in_flight.clone())
    }
}

/// A request in flight, for the drain.
#[derive(Debug)]
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A task of the replica's own that runs in the background (the idle
/// reaper, the peer refresh) and stops when this handle is dropped, with
/// the replica that started it.
pub struct Background(tokio::task::JoinHandle<()>);

impl Background {
    pub fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        Background(tokio::spawn(task))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    /// Far above what either wait takes, so that only a drain that does
    /// not end fails the test on a busy machine.
    const LIMIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn the_drain_lasts_until_the_last_request_in_flight_ends() {
        let life = Arc::new(Lifecycle::default());
        let call = life.request_started();
        let start = Instant::now();
        let release = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(call);
        };
        let drained = tokio::time::timeout(LIMIT, async {
            tokio::join!(life.drain(Duration::from_secs(60)), release)
        });
        assert!(drained.await.is_ok(), "the drain did not end");
        assert!(life.is_draining());
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert_eq!(life.requests_in_flight(), 0);
    }

    #[tokio::test]
    async fn the_drain_ends_at_its_bound_with_requests_still_in_flight() {
        let life = Lifecycle::default();
        let _stuck = life.request_started();
        let start = Instant::now();
        let drained = tokio::time::timeout(LIMIT, life.drain(Duration::from_millis(200)));
        assert!(drained.await.is_ok(), "the drain outlived its bound");
        assert!(start.elapsed() >= Duration::from_millis(200));
        assert_eq!(life.requests_in_flight(), 1);
    }
}
