//! Changes every replica's clients must hear of, through Redis pub/sub:
//! each [`SharedEvent`] of this replica is published once on
//! `<prefix>:events`, and every replica subscribed there tells its own
//! sessions and listeners (the publisher has told its own already).
//!
//! Pub/sub keeps nothing: a replica cut off from Redis misses what is
//! published meanwhile (counted as `lost`), and hears again once it has
//! subscribed anew. This replaces passing events to peers over HTTP when
//! both are configured.

use super::Redis;
use crate::lifecycle::Background;
use crate::replica::{Replica, SharedEvent};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// The first pause before subscribing again after losing Redis; it doubles
/// up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What goes on the channel.
#[derive(Debug, Serialize, Deserialize)]
struct Published {
    /// The incarnation that published it (which hears its own, and skips).
    from: String,
    event: SharedEvent,
}

/// Publishes this replica's events and applies the others', until the
/// handle is dropped.
pub fn start(replica: &Arc<Replica>, redis: Arc<Redis>) -> Background {
    let events = replica.shared_events();
    let publish = publish(replica.clone(), redis.clone(), events);
    let subscribe = subscribe(replica.clone(), redis);
    Background::spawn(async move {
        tokio::join!(publish, subscribe);
    })
}

fn channel(redis: &Redis) -> String {
    redis.key("events")
}

async fn publish(
    replica: Arc<Replica>,
    redis: Arc<Redis>,
    mut events: tokio::sync::broadcast::Receiver<SharedEvent>,
) {
    let channel = channel(&redis);
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    dropped = n,
                    "shared events came faster than Redis took them"
                );
                replica.metrics.shared_event("lagged", n);
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let message = Published {
            from: redis.incarnation().to_owned(),
            event,
        };
        let Ok(body) = serde_json::to_string(&message) else {
            continue;
        };
        let sent = redis
            .query::<()>("publish", redis::cmd("PUBLISH").arg(&channel).arg(body))
            .await;
        match sent {
            Ok(()) => replica.metrics.shared_event("sent", 1),
            Err(e) => {
                tracing::warn!("a shared event was not published: {e}");
                replica.metrics.shared_event("failed", 1);
            }
        }
    }
}

async fn subscribe(replica: Arc<Replica>, redis: Arc<Redis>) {
    let channel = channel(&redis);
    let mut backoff = MIN_BACKOFF;
    loop {
        let connected = redis
            .bounded("subscribe", async {
                let mut pubsub = redis.client().get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                Ok(pubsub)
            })
            .await;
        let pubsub = match connected {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!("cannot subscribe to shared events: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = MIN_BACKOFF;
        tracing::debug!(%channel, "subscribed to shared events");
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            let Ok(body) = msg.get_payload::<String>() else {
                continue;
            };
            match serde_json::from_str::<Published>(&body) {
                Ok(p) if p.from == redis.incarnation() => {}
                Ok(p) => {
                    replica.metrics.shared_event("received", 1);
                    if replica.apply_shared(&p.event).is_err() {
                        tracing::warn!(?p.event, "a shared event names nothing this server sends");
                    }
                }
                Err(e) => tracing::warn!("a message on {channel} is not a shared event: {e}"),
            }
        }
        // The connection ended: what is published until the next
        // subscription is not heard here.
        tracing::warn!("lost the subscription to shared events; subscribing again");
        redis.count("subscribe", "lost");
    }
}
