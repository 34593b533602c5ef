//! The accept loop: HTTP/1.1 connections from a listener to the router,
//! with the connection-level bounds (`TCP_NODELAY`, the size of a request's
//! head), and the order of a graceful stop.
//!
//! Stopping happens in two steps. While the replica drains, the listener
//! stays open: clients of its sessions can still answer sampling or
//! elicitation, and reconnect their streams, which must reach this replica
//! and no other. Once the drain is over, the listener closes, every
//! stream that would never end by itself ends, and the connections get
//! [`EXIT_GRACE`] to finish what they are writing.

use crate::replica::{EXIT_GRACE, Replica};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Pause after an accept error (out of file descriptors, say), so that a
/// full process table does not turn the loop into a busy spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `replica` on `listener` until `stop` resolves and the drain that
/// follows is over, then closes down within [`EXIT_GRACE`] and ends every
/// session.
pub async fn serve(
    replica: Arc<Replica>,
    listener: TcpListener,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let reaper = replica.start_reaper();
    let forwarding = super::forward::Forwarding::new(&replica);
    let refresh = forwarding
        .as_ref()
        .filter(|_| replica.peers.is_some())
        .map(|f| f.start_refresh());
    // With Redis, events reach every replica through it, peers included.
    let sharing = match replica.redis() {
        Some(redis) => Some(crate::shared::events::start(&replica, redis.clone())),
        None => forwarding.as_ref().map(|f| f.start_sharing()),
    };
    let lease = replica.lease().map(|lease| {
        let addr = replica.config.advertise_addr.clone().or_else(|| {
            listener
                .local_addr()
                .ok()
                .filter(|a| !a.ip().is_unspecified())
                .map(|a| a.to_string())
        });
        lease.start(crate::shared::lease::Holder {
            route: replica.route().to_owned(),
            addr,
        })
    });
    let records = replica.records().map(|r| r.start(&replica));
    let replay = replica.replay().map(|r| r.start());
    let app = super::router(replica.clone(), forwarding);
    let result = accept_until_drained(&replica, app, listener, stop).await;
    drop((reaper, refresh, sharing, records, replay));
    if let Some(records) = replica.records() {
        records.flush(&replica).await;
    }
    if let Some(held) = lease {
        drop(held);
        if let Some(lease) = replica.lease() {
            lease.release().await;
        }
    }
    replica.shutdown();
    tracing::info!("stopped");
    result
}

async fn accept_until_drained(
    replica: &Arc<Replica>,
    app: axum::Router,
    listener: TcpListener,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        // No header read timeout: hyper would also apply it to idle
        // keep-alive connections, and a balancer that reuses one just as
        // the replica closes it takes the error as the replica's failure.
        .header_read_timeout(None)
        .max_header_size(replica.config.max_header_bytes);
    let graceful = GracefulShutdown::new();
    let drained = {
        let replica = replica.clone();
        async move {
            stop.await;
            replica.drain().await;
        }
    };
    tokio::pin!(drained);
    loop {
        let (tcp, _peer) = tokio::select! {
            () = &mut drained => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        // Small SSE frames otherwise wait on delayed ACKs.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("TCP_NODELAY: {e}");
        }
        let service = TowerToHyperService::new(app.clone());
        let conn = http.serve_connection(TokioIo::new(tcp), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection: {e}");
            }
        });
    }
    drop(listener);
    // Standalone and old-transport streams end now (with a retry hint);
    // request streams end with their answers.
    replica.stop_streams();
    if tokio::time::timeout(EXIT_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open {EXIT_GRACE:?} after the drain; closing them");
    }
    Ok(())
}
