//! Prometheus metrics (text exposition format 0.0.4), kept in memory and written out on each
//! scrape of `/metrics` on `metrics_listen` (issue 13). Counters and histograms are plain
//! atomics or maps under a mutex held only to add one number; the fan-out queue and the room
//! cache are read at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;

use crate::error::ApiError;
use crate::state::{AppState, now_secs};

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram with [`BUCKETS`].
#[derive(Default)]
pub(crate) struct Histogram {
    /// Observations at or under each bound (not cumulative; summed when written).
    counts: [AtomicU64; BUCKETS.len()],
    /// Observations over the last bound.
    over: AtomicU64,
    /// Sum of all observations, microseconds.
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub(crate) fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        match BUCKETS.iter().position(|b| secs <= *b) {
            Some(i) => self.counts[i].fetch_add(1, Ordering::Relaxed),
            None => self.over.fetch_add(1, Ordering::Relaxed),
        };
        self.sum_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += self.over.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// Everything counted in memory since the start.
#[derive(Default)]
pub(crate) struct Metrics {
    /// Requests by (endpoint route, status).
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// Handling time by endpoint route.
    request_seconds: Mutex<BTreeMap<String, std::sync::Arc<Histogram>>>,
    /// Handshakes by (kind, outcome): `accepted` or the refusal's code.
    handshakes: Mutex<BTreeMap<(&'static str, String), u64>>,
    /// Application messages by outcome: `accepted` or the refusal's code.
    messages: Mutex<BTreeMap<String, u64>>,
    /// Fan-out deliveries by (peer, outcome: `delivered` or `failed`).
    deliveries: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Queueing to confirmed delivery of fan-out entries, by peer.
    delivery_seconds: Mutex<BTreeMap<String, Arc<Histogram>>>,
    /// Fan-out entries dropped undelivered after `limits.fanout_expiry_secs`, by peer.
    expired: Mutex<BTreeMap<String, u64>>,
    /// The last failure of a fan-out delivery to each peer, with when (seconds since the UNIX
    /// epoch); for `mimid admin peers`, not exported.
    last_errors: Mutex<BTreeMap<String, (String, u64)>>,
    /// Time the store writer takes per batch (one transaction, synced).
    pub(crate) write_batch_seconds: Histogram,
}

/// Adds one to `map[key]`.
fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    // Held only to add one: never across an await.
    *map.lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_default() += 1;
}

impl Metrics {
    /// One request to `endpoint` answered with `status` after `took`.
    pub(crate) fn request(&self, endpoint: &str, status: u16, took: Duration) {
        bump(&self.requests, (endpoint.to_owned(), status));
        let histogram = self
            .request_seconds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(endpoint.to_owned())
            .or_default()
            .clone();
        histogram.observe(took);
    }

    /// A handshake of `kind` (`commit` or `proposal`) with `outcome`.
    pub(crate) fn handshake(&self, kind: &'static str, outcome: &str) {
        bump(&self.handshakes, (kind, outcome.to_owned()));
    }

    /// An application message with `outcome`.
    pub(crate) fn message(&self, outcome: &str) {
        bump(&self.messages, outcome.to_owned());
    }

    /// A fan-out batch to `peer` delivered (or not).
    pub(crate) fn delivery(&self, peer: &str, delivered: bool) {
        let outcome = if delivered { "delivered" } else { "failed" };
        bump(&self.deliveries, (peer.to_owned(), outcome));
    }

    /// A fan-out entry reached `peer` `took` after it was queued.
    pub(crate) fn delivered_after(&self, peer: &str, took: Duration) {
        let histogram = lock(&self.delivery_seconds)
            .entry(peer.to_owned())
            .or_default()
            .clone();
        histogram.observe(took);
    }

    /// A fan-out delivery to `peer` failed with `error`.
    pub(crate) fn delivery_failed(&self, peer: &str, error: String) {
        lock(&self.last_errors).insert(peer.to_owned(), (error, now_secs()));
    }

    /// The last delivery failure to `peer` and when, if any.
    pub(crate) fn last_error(&self, peer: &str) -> Option<(String, u64)> {
        lock(&self.last_errors).get(peer).cloned()
    }

    /// `count` fan-out entries for `peer` expired undelivered.
    pub(crate) fn expired(&self, peer: &str, count: u64) {
        *lock(&self.expired).entry(peer.to_owned()).or_default() += count;
    }

    /// The counters and histograms in the text exposition format, then `gauges`.
    pub(crate) fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        header(
            &mut out,
            "mimid_requests_total",
            "counter",
            "Requests answered, by endpoint and status.",
        );
        for ((endpoint, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "mimid_requests_total{{endpoint=\"{}\",status=\"{status}\"}} {n}",
                escape(endpoint)
            );
        }
        header(
            &mut out,
            "mimid_request_seconds",
            "histogram",
            "Time to answer a request, by endpoint.",
        );
        for (endpoint, histogram) in lock(&self.request_seconds).iter() {
            let labels = format!("endpoint=\"{}\"", escape(endpoint));
            histogram.write(&mut out, "mimid_request_seconds", &labels);
        }
        header(
            &mut out,
            "mimid_handshakes_total",
            "counter",
            "Hosted rooms' commits and proposals, accepted or refused by reason.",
        );
        for ((kind, outcome), n) in lock(&self.handshakes).iter() {
            let _ = writeln!(
                out,
                "mimid_handshakes_total{{kind=\"{kind}\",outcome=\"{}\"}} {n}",
                escape(outcome)
            );
        }
        header(
            &mut out,
            "mimid_messages_total",
            "counter",
            "Hosted rooms' application messages, accepted or refused by reason.",
        );
        for (outcome, n) in lock(&self.messages).iter() {
            let _ = writeln!(
                out,
                "mimid_messages_total{{outcome=\"{}\"}} {n}",
                escape(outcome)
            );
        }
        header(
            &mut out,
            "mimid_fanout_batches_total",
            "counter",
            "Fan-out batches sent to peers, delivered or failed.",
        );
        for ((peer, outcome), n) in lock(&self.deliveries).iter() {
            let _ = writeln!(
                out,
                "mimid_fanout_batches_total{{peer=\"{}\",outcome=\"{outcome}\"}} {n}",
                escape(peer)
            );
        }
        header(
            &mut out,
            "mimid_fanout_delivery_seconds",
            "histogram",
            "From queueing a fan-out entry to the peer's confirmation, by peer.",
        );
        for (peer, histogram) in lock(&self.delivery_seconds).iter() {
            let labels = format!("peer=\"{}\"", escape(peer));
            histogram.write(&mut out, "mimid_fanout_delivery_seconds", &labels);
        }
        header(
            &mut out,
            "mimid_fanout_expired_total",
            "counter",
            "Fan-out entries dropped undelivered after fanout_expiry_secs.",
        );
        for (peer, n) in lock(&self.expired).iter() {
            let _ = writeln!(
                out,
                "mimid_fanout_expired_total{{peer=\"{}\"}} {n}",
                escape(peer)
            );
        }
        header(
            &mut out,
            "mimid_write_batch_seconds",
            "histogram",
            "Time of one store transaction of the writer (a batch of writes, synced).",
        );
        self.write_batch_seconds
            .write(&mut out, "mimid_write_batch_seconds", "");
        gauges.write(&mut out);
        out
    }
}

/// What is read at scrape time rather than counted.
#[derive(Debug, Default)]
pub(crate) struct Gauges {
    /// Per peer: entries queued, and the age of the oldest, seconds.
    pub(crate) queues: Vec<(String, u64, u64)>,
    /// Rooms whose owner is in memory.
    pub(crate) rooms_cached: usize,
}

impl Gauges {
    fn write(&self, out: &mut String) {
        header(
            out,
            "mimid_fanout_queue_depth",
            "gauge",
            "Fan-out entries queued for a peer.",
        );
        for (peer, depth, _) in &self.queues {
            let _ = writeln!(
                out,
                "mimid_fanout_queue_depth{{peer=\"{}\"}} {depth}",
                escape(peer)
            );
        }
        header(
            out,
            "mimid_fanout_oldest_seconds",
            "gauge",
            "Age of the oldest fan-out entry queued for a peer.",
        );
        for (peer, _, oldest) in &self.queues {
            let _ = writeln!(
                out,
                "mimid_fanout_oldest_seconds{{peer=\"{}\"}} {oldest}",
                escape(peer)
            );
        }
        header(
            out,
            "mimid_rooms_cached",
            "gauge",
            "Hosted rooms held in memory by their owner.",
        );
        let _ = writeln!(out, "mimid_rooms_cached {}", self.rooms_cached);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the exposition format quotes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The label of an update's outcome: the draft's code name.
pub(crate) fn update_outcome(outcome: &mimi_protocol::UpdateOutcome) -> &'static str {
    use mimi_protocol::UpdateOutcome;
    match outcome {
        UpdateOutcome::Success { .. } => "success",
        UpdateOutcome::WrongEpoch { .. } => "wrongEpoch",
        UpdateOutcome::NotAllowed => "notAllowed",
        UpdateOutcome::InvalidProposal { .. } => "invalidProposal",
        UpdateOutcome::Other(_) => "other",
    }
}

/// The label of a submission's outcome: the draft's code name.
pub(crate) fn submit_outcome(outcome: &mimi_protocol::SubmitOutcome) -> &'static str {
    use mimi_protocol::SubmitOutcome;
    match outcome {
        SubmitOutcome::Accepted { .. } => "accepted",
        SubmitOutcome::NotAllowed => "notAllowed",
        SubmitOutcome::EpochTooOld { .. } => "epochTooOld",
        SubmitOutcome::Other(_) => "other",
    }
}

/// Middleware: counts each request under its route (never the raw path, which would name
/// rooms and users) and status, and times it.
pub(crate) async fn track(
    State(state): State<Arc<AppState>>,
    route: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let endpoint = route.map_or_else(|| "unmatched".to_owned(), |r| r.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .request(&endpoint, response.status().as_u16(), started.elapsed());
    response
}

/// The operations endpoints, for `metrics_listen`.
fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
}

/// `GET /metrics`: everything counted, and the fan-out queues and room cache as they are now.
async fn scrape(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let s = state.clone();
    let queues =
        tokio::task::spawn_blocking(move || Ok::<_, ApiError>(s.store.read()?.outbox_by_peer()?))
            .await??;
    let now = now_secs();
    let gauges = Gauges {
        queues: queues
            .into_iter()
            .map(|q| (q.peer, q.depth, now.saturating_sub(q.oldest_created_at)))
            .collect(),
        rooms_cached: state.hub.rooms_cached(),
    };
    let text = state.metrics.render(&gauges);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response())
}

/// `GET /readyz`: 200 while serving and the store answers; 503 once shutdown began.
async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    if state.draining.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n");
    }
    let s = state.clone();
    let store_ok =
        tokio::task::spawn_blocking(move || s.store.read().and_then(|r| r.ping()).is_ok())
            .await
            .unwrap_or(false);
    if store_ok {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the store does not answer\n",
        )
    }
}

/// Serves the operations endpoints on `listener` until `stop` turns true.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    serve_until_stopped(
        listener,
        routes().with_state(state),
        stop,
        "operations listener",
    )
    .await;
}

/// Serves `router` in plain HTTP on `listener` (an operator's listener: metrics or the admin
/// socket) until `stop` turns true; a failure is logged under `what`.
pub(crate) async fn serve_until_stopped<L>(
    listener: L,
    router: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
    what: &'static str,
) where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, listener = what, "an operator's listener failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_are_written_in_the_exposition_format() {
        let metrics = Metrics::default();
        metrics.request("/v1/notify/{room}", 200, Duration::from_millis(3));
        metrics.request("/v1/notify/{room}", 200, Duration::from_millis(30));
        metrics.request("/v1/notify/{room}", 429, Duration::from_secs(20));
        metrics.handshake("commit", "accepted");
        metrics.handshake("commit", "wrongEpoch");
        metrics.message("notAllowed");
        metrics.delivery("b.example", true);
        metrics.expired("c.example", 4);
        metrics.delivered_after("b.example", Duration::from_millis(20));
        let gauges = Gauges {
            queues: vec![("b.example".into(), 7, 12)],
            rooms_cached: 3,
        };
        let text = metrics.render(&gauges);
        for line in [
            "# TYPE mimid_requests_total counter",
            "mimid_requests_total{endpoint=\"/v1/notify/{room}\",status=\"200\"} 2",
            "mimid_requests_total{endpoint=\"/v1/notify/{room}\",status=\"429\"} 1",
            "mimid_request_seconds_bucket{endpoint=\"/v1/notify/{room}\",le=\"0.005\"} 1",
            "mimid_request_seconds_bucket{endpoint=\"/v1/notify/{room}\",le=\"0.05\"} 2",
            "mimid_request_seconds_bucket{endpoint=\"/v1/notify/{room}\",le=\"10\"} 2",
            "mimid_request_seconds_bucket{endpoint=\"/v1/notify/{room}\",le=\"+Inf\"} 3",
            "mimid_request_seconds_sum{endpoint=\"/v1/notify/{room}\"} 20.033",
            "mimid_request_seconds_count{endpoint=\"/v1/notify/{room}\"} 3",
            "mimid_handshakes_total{kind=\"commit\",outcome=\"accepted\"} 1",
            "mimid_handshakes_total{kind=\"commit\",outcome=\"wrongEpoch\"} 1",
            "mimid_messages_total{outcome=\"notAllowed\"} 1",
            "mimid_fanout_batches_total{peer=\"b.example\",outcome=\"delivered\"} 1",
            "mimid_fanout_expired_total{peer=\"c.example\"} 4",
            "mimid_fanout_delivery_seconds_bucket{peer=\"b.example\",le=\"0.01\"} 0",
            "mimid_fanout_delivery_seconds_bucket{peer=\"b.example\",le=\"0.025\"} 1",
            "mimid_fanout_delivery_seconds_count{peer=\"b.example\"} 1",
            "mimid_write_batch_seconds_count 0",
            "mimid_fanout_queue_depth{peer=\"b.example\"} 7",
            "mimid_fanout_oldest_seconds{peer=\"b.example\"} 12",
            "mimid_rooms_cached 3",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
