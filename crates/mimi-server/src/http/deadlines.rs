//! Deadlines inside an established connection: request headers, idle keep-alive, stalled
//! response writes (watched on the connection's I/O), and the minimum transfer rate of request
//! bodies (enforced by wrapping each body).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::config::Connections;
use crate::http::stats::Closed;

/// A moment that has not happened, in [`Activity`]'s millisecond fields.
const NEVER: u64 = u64::MAX;

/// The deadlines of the phases of one connection, from the config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    pub(crate) header: Duration,
    pub(crate) idle: Duration,
    pub(crate) write_stall: Duration,
    pub(crate) body_grace: Duration,
    pub(crate) body_min_bytes_per_sec: u64,
}

/// What one connection has been doing, updated by its I/O and its requests, read by its
/// watchdog. Times are milliseconds since `start`.
#[derive(Debug)]
pub(crate) struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    /// When the first byte of a request head arrived while no request was in progress.
    head_started: AtomicU64,
    /// When the last request ended or the last byte arrived.
    last_active: AtomicU64,
    /// Since when a write has been waiting for the other side to read.
    write_blocked: AtomicU64,
}

/// A connection's I/O, reporting progress to its [`Activity`].
pub(crate) struct Watched<IO> {
    inner: IO,
    activity: Arc<Activity>,
}

/// Marks one request in progress on its connection until dropped.
pub(crate) struct InFlight(Arc<Activity>);

/// A request body that fails once it falls below the minimum average rate after the grace
/// period: slowloris bodies end, slow but honest uploads go on.
pub(crate) struct MinRateBody<B> {
    inner: B,
    start: Instant,
    received: u64,
    deadlines: Deadlines,
    /// Armed only once the body has to be waited for: most bodies arrive with their headers,
    /// and a timer per request would cost every request a timer-wheel entry.
    timer: Option<(Pin<Box<Sleep>>, u64)>,
    /// Set once the body has failed: later polls end it without counting it again.
    failed: bool,
    stats: Arc<crate::http::ConnectionStats>,
}

/// The error a [`MinRateBody`] ends with.
#[derive(Debug, thiserror::Error)]
#[error("request body slower than {0} bytes per second")]
pub(crate) struct BodyTooSlow(u64);

impl Deadlines {
    /// The deadlines in `config`.
    pub(crate) fn from_config(config: &Connections) -> Self {
        Self {
            header: Duration::from_millis(config.header_timeout_ms),
            idle: Duration::from_millis(config.idle_timeout_ms),
            write_stall: Duration::from_millis(config.write_stall_timeout_ms),
            body_grace: Duration::from_millis(config.body_grace_ms),
            body_min_bytes_per_sec: config.body_min_bytes_per_sec,
        }
    }

    /// How often a watchdog looks: often enough to close within a quarter of the shortest
    /// deadline (at most a second late), rarely enough to cost nothing.
    pub(crate) fn watch_interval(&self) -> Duration {
        (self.header.min(self.idle).min(self.write_stall) / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(1))
    }
}

impl Activity {
    /// A connection that starts now, idle. Until its first byte it is held to the idle
    /// deadline, not the header deadline: HTTP clients open pooled connections they use only
    /// later, and closing those early makes their next request fail.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            head_started: AtomicU64::new(NEVER),
            last_active: AtomicU64::new(0),
            write_blocked: AtomicU64::new(NEVER),
        })
    }

    /// A request's head has been read and its handling begins.
    pub(crate) fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.head_started.store(NEVER, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// The deadline this connection has missed, if any.
    pub(crate) fn missed(&self, deadlines: &Deadlines) -> Option<Closed> {
        let now = self.now();
        let past = |since: u64, limit: Duration| {
            since != NEVER && now.saturating_sub(since) > limit.as_millis() as u64
        };
        let write_blocked = self.write_blocked.load(Ordering::SeqCst);
        if past(write_blocked, deadlines.write_stall) {
            return Some(Closed::WriteStall);
        }
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let head_started = self.head_started.load(Ordering::SeqCst);
        if past(head_started, deadlines.header) {
            return Some(Closed::HeaderTimeout);
        }
        if head_started == NEVER && past(self.last_active.load(Ordering::SeqCst), deadlines.idle) {
            return Some(Closed::Idle);
        }
        None
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn on_read(&self) {
        let now = self.now();
        self.last_active.store(now, Ordering::SeqCst);
        if self.in_flight.load(Ordering::SeqCst) == 0 {
            let _ =
                self.head_started
                    .compare_exchange(NEVER, now, Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    fn on_write(&self, progressed: bool) {
        if progressed {
            self.write_blocked.store(NEVER, Ordering::SeqCst);
            // A response still being written (a large download on a slow link, after its
            // handler returned) is activity, not idleness.
            self.last_active.store(self.now(), Ordering::SeqCst);
        } else {
            let _ = self.write_blocked.compare_exchange(
                NEVER,
                self.now(),
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last_active.store(self.0.now(), Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<IO> Watched<IO> {
    /// Wraps `inner`, reporting to `activity`.
    pub(crate) fn new(inner: IO, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.on_read();
        }
        result
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.activity.on_write(!result.is_pending());
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.activity.on_write(!result.is_pending());
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.activity.on_write(!result.is_pending());
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<B> MinRateBody<B> {
    /// Wraps a request body that starts arriving now.
    pub(crate) fn new(
        inner: B,
        deadlines: Deadlines,
        stats: Arc<crate::http::ConnectionStats>,
    ) -> Self {
        Self {
            inner,
            start: Instant::now(),
            received: 0,
            deadlines,
            timer: None,
            failed: false,
            stats,
        }
    }

    /// When the body falls below the rate if nothing more arrives: the grace period plus the
    /// time the bytes received so far buy at the minimum rate.
    fn deadline(&self) -> Instant {
        let earned = Duration::from_secs_f64(
            self.received as f64 / self.deadlines.body_min_bytes_per_sec.max(1) as f64,
        );
        self.start + self.deadlines.body_grace + earned
    }
}

impl<B> Body for MinRateBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.received += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let (received, deadline) = (self.received, self.deadline());
                let timer = match &mut self.timer {
                    Some((timer, armed_for)) => {
                        if *armed_for != received {
                            timer.as_mut().reset(deadline.into());
                            *armed_for = received;
                        }
                        timer
                    }
                    None => {
                        let timer = Box::pin(tokio::time::sleep_until(deadline.into()));
                        &mut self.timer.insert((timer, received)).0
                    }
                };
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        self.failed = true;
                        self.stats.count(Closed::BodyTooSlow);
                        let rate = self.deadlines.body_min_bytes_per_sec;
                        Poll::Ready(Some(Err(Box::new(BodyTooSlow(rate)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadlines() -> Deadlines {
        Deadlines {
            header: Duration::from_millis(100),
            idle: Duration::from_millis(300),
            write_stall: Duration::from_millis(200),
            body_grace: Duration::from_millis(100),
            body_min_bytes_per_sec: 1000,
        }
    }

    #[test]
    fn a_new_connection_that_says_nothing_is_held_to_the_idle_deadline() {
        let activity = Activity::new();
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(activity.missed(&deadlines()), None);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(activity.missed(&deadlines()), Some(Closed::Idle));
    }

    #[test]
    fn an_idle_connection_misses_the_idle_deadline_and_a_busy_one_does_not() {
        let activity = Activity::new();
        drop(activity.request());
        assert_eq!(activity.missed(&deadlines()), None);
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(activity.missed(&deadlines()), Some(Closed::Idle));
        // A long poll in progress keeps the connection.
        let request = activity.request();
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(activity.missed(&deadlines()), None);
        drop(request);
        assert_eq!(activity.missed(&deadlines()), None);
    }

    #[test]
    fn a_head_that_does_not_complete_misses_the_header_deadline() {
        let activity = Activity::new();
        drop(activity.request());
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(activity.missed(&deadlines()), None);
        activity.on_read();
        std::thread::sleep(Duration::from_millis(150));
        // Trickling more bytes does not extend it.
        activity.on_read();
        assert_eq!(activity.missed(&deadlines()), Some(Closed::HeaderTimeout));
        drop(activity.request());
        assert_eq!(activity.missed(&deadlines()), None);
    }

    #[test]
    fn a_response_still_being_written_is_not_idle() {
        let activity = Activity::new();
        drop(activity.request());
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(100));
            activity.on_write(true);
        }
        assert_eq!(activity.missed(&deadlines()), None);
    }

    #[test]
    fn a_write_the_peer_never_reads_misses_the_stall_deadline() {
        let activity = Activity::new();
        let _request = activity.request();
        activity.on_write(false);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(activity.missed(&deadlines()), Some(Closed::WriteStall));
        activity.on_write(true);
        assert_eq!(activity.missed(&deadlines()), None);
    }

    /// A body fed through a channel, a chunk at a time.
    struct ChunkBody(tokio::sync::mpsc::Receiver<Bytes>);

    impl Body for ChunkBody {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
        }
    }

    #[tokio::test]
    async fn a_body_below_the_minimum_rate_fails_and_a_steady_one_completes() {
        use http_body_util::BodyExt as _;
        let stats = Arc::new(crate::http::ConnectionStats::default());
        // 200 bytes every 100 ms is 2,000 bytes per second: above the minimum.
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let steady = tokio::spawn(async move {
            for _ in 0..5 {
                tx.send(Bytes::from(vec![0u8; 200])).await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let got = MinRateBody::new(ChunkBody(rx), deadlines(), stats.clone())
            .collect()
            .await
            .unwrap()
            .to_bytes();
        steady.await.unwrap();
        assert_eq!(got.len(), 1000);

        // 10 bytes, then nothing: the grace period and 10 ms of credit run out.
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(Bytes::from_static(b"0123456789")).await.unwrap();
        let err = MinRateBody::new(ChunkBody(rx), deadlines(), stats.clone())
            .collect()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("slower than 1000"), "{err}");
        assert_eq!(stats.total(Closed::BodyTooSlow), 1);
        drop(tx);
    }
}
