//! One task per peer drains that peer's queue in order: an entry leaves the queue only after a
//! 201; anything else is retried with exponential backoff, or after `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use mimi_protocol::MimiUri;
use tokio::task::JoinSet;

use crate::state::{AppState, now_ms};

/// First retry delay after a failure; doubles per attempt up to `limits.max_backoff_ms`.
const FIRST_BACKOFF_MS: u64 = 200;
/// Attempts after which an entry the peer keeps refusing as malformed or forbidden (a 4xx other
/// than 408 and 429) is dropped, so one poisoned entry cannot block the peer's queue forever.
const MAX_REFUSED_ATTEMPTS: u32 = 10;
/// How often an idle sender looks at its queue even without a wake-up.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Spawns a sender for every configured peer into `tasks`.
pub(crate) fn run_senders(state: &Arc<AppState>, tasks: &mut JoinSet<()>) {
    for peer in state.config.peers.keys() {
        let state = state.clone();
        let peer = peer.clone();
        tasks.spawn(async move { drain_forever(state, peer).await });
    }
}

async fn drain_forever(state: Arc<AppState>, peer: String) {
    loop {
        let wait = match drain_once(&state, &peer).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(peer = %peer, error = %e, "outbox error");
                Some(IDLE_POLL)
            }
        };
        let wait = wait.unwrap_or(IDLE_POLL);
        tokio::select! {
            _ = state.outbox_wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Sends queued entries in order until the queue is empty or a delivery fails; returns how
/// long to wait before the next try.
async fn drain_once(state: &Arc<AppState>, peer: &str) -> anyhow::Result<Option<Duration>> {
    loop {
        let (items, not_before) = {
            let s = state.clone();
            let p = peer.to_owned();
            tokio::task::spawn_blocking(move || s.store.lock()?.outbox_head(&p, 16)).await??
        };
        if items.is_empty() {
            return Ok(None);
        }
        let now = now_ms();
        if not_before > now {
            return Ok(Some(Duration::from_millis(not_before - now)));
        }
        for item in items {
            let path = match item.room_uri.parse::<MimiUri>() {
                Ok(uri) => format!("/v1/notify/{}", uri.to_path_segment()),
                Err(_) => format!("/v1/notify/{}", item.room_uri),
            };
            let outcome = state.peers.post(peer, &path, item.body.clone()).await;
            let permanent_refusal = matches!(&outcome, Ok(r) if r.status.is_client_error()
                && r.status != StatusCode::REQUEST_TIMEOUT
                && r.status != StatusCode::TOO_MANY_REQUESTS);
            if permanent_refusal && item.attempts + 1 >= MAX_REFUSED_ATTEMPTS {
                tracing::error!(
                    peer,
                    room = %item.room_uri,
                    attempts = item.attempts + 1,
                    "peer keeps refusing a notify; dropping it"
                );
            }
            let retry_after = match outcome {
                Ok(r) if r.status == StatusCode::CREATED => None,
                _ if permanent_refusal && item.attempts + 1 >= MAX_REFUSED_ATTEMPTS => None,
                Ok(r) => {
                    tracing::info!(peer, status = %r.status, "notify not accepted, will retry");
                    Some(r.retry_after)
                }
                Err(e) => {
                    tracing::info!(peer, error = %format!("{e:#}"), "notify failed, will retry");
                    Some(None)
                }
            };
            let s = state.clone();
            match retry_after {
                None => {
                    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                        let mut g = s.store.lock()?;
                        let tx = g.begin()?;
                        tx.delete_outbox(item.id)?;
                        tx.commit()?;
                        Ok(())
                    })
                    .await??;
                }
                Some(hint) => {
                    let max = s.config.limits.max_backoff_ms;
                    let backoff = hint
                        .map(|d| (d.as_millis() as u64).min(max))
                        .unwrap_or_else(|| {
                            (FIRST_BACKOFF_MS << item.attempts.min(16))
                                .min(s.config.limits.max_backoff_ms)
                        });
                    let next = now_ms().saturating_add(backoff);
                    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                        let mut g = s.store.lock()?;
                        let tx = g.begin()?;
                        tx.defer_outbox(item.id, next)?;
                        tx.commit()?;
                        Ok(())
                    })
                    .await??;
                    return Ok(Some(Duration::from_millis(backoff)));
                }
            }
        }
    }
}
