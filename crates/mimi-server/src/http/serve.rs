//! The HTTPS accept loop: each connection is admitted by its source address, passes its TLS
//! handshake (with an optional client certificate) in the handshake pool under a deadline,
//! moves to the client pool or its peer's pool, and is then watched for the header, idle and
//! write deadlines until it ends or the server shuts down.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;
use tracing::Instrument as _;

use crate::config::Connections;
use crate::http::admission::Admission;
use crate::http::deadlines::{Activity, Deadlines, MinRateBody, Watched};
use crate::http::proxy_protocol;
use crate::http::stats::{Closed, ConnectionStats, empty_snapshot};

/// The domain of an authenticated peer provider (from its mutual-TLS certificate), or `None`
/// for a connection without a client certificate (a local client).
#[derive(Debug, Clone)]
pub(crate) struct PeerDomain(pub(crate) Option<String>);

/// The source address of a request as per-address limits count it (IPv4 address or IPv6
/// /64), or `None` for an address exempt from them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddress(pub(crate) Option<crate::http::admission::AddressKey>);

/// How long open connections may take to finish their requests after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the totals of shed and closed connections are logged, when they changed.
const STATS_INTERVAL: Duration = Duration::from_secs(10);

/// What every connection task shares.
struct Shared {
    acceptor: TlsAcceptor,
    router: Router,
    admission: Arc<Admission>,
    deadlines: Deadlines,
    handshake_timeout: Duration,
    trusted_proxies: Vec<std::net::IpAddr>,
    stats: Arc<ConnectionStats>,
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// (closing idle keep-alive connections at once) for at most [`DRAIN_TIMEOUT`].
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    config: &Connections,
    stats: Arc<ConnectionStats>,
    shutdown: impl Future<Output = ()>,
) {
    let shared = Arc::new(Shared {
        acceptor: TlsAcceptor::from(tls),
        router,
        admission: Admission::new(config),
        deadlines: Deadlines::from_config(config),
        handshake_timeout: Duration::from_millis(config.tls_handshake_timeout_ms),
        trusted_proxies: config.trusted_proxies.clone(),
        stats,
    });
    let mut connections = JoinSet::new();
    let graceful = GracefulShutdown::new();
    let mut stats_tick = tokio::time::interval(STATS_INTERVAL);
    let mut last_stats = empty_snapshot();
    tokio::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            _ = &mut shutdown => break,
            _ = stats_tick.tick() => {
                shared.stats.log_changes(&mut last_stats);
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, most likely: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        let watcher = graceful.watcher();
        connections.spawn(async move {
            if let Err(why) = connection(shared.clone(), tcp, remote, watcher).await {
                shared.stats.count(why);
                tracing::debug!(%remote, reason = why.name(), "connection closed by a limit");
            }
        });
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    shared.stats.log_changes(&mut last_stats);
    // Stop accepting; let requests in flight finish, then drop whatever is left.
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// One connection from admission to its end; `Err` names the limit or deadline that ended it.
async fn connection(
    shared: Arc<Shared>,
    mut tcp: TcpStream,
    remote: SocketAddr,
    watcher: hyper_util::server::graceful::Watcher,
) -> Result<(), Closed> {
    let accepted = Instant::now();
    let handshake_deadline = tokio::time::Instant::from_std(accepted + shared.handshake_timeout);
    // A trusted proxy names the client first; limits and logs use the client's address.
    let mut client = remote;
    // A dual-stack listener reports IPv4 peers as `::ffff:a.b.c.d`.
    let remote = SocketAddr::new(remote.ip().to_canonical(), remote.port());
    if shared.trusted_proxies.contains(&remote.ip()) {
        match tokio::time::timeout_at(handshake_deadline, proxy_protocol::read_header(&mut tcp))
            .await
        {
            Ok(Ok(Some(addr))) => client = addr,
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "proxy header refused");
                return Err(Closed::ProxyHeader);
            }
            Err(_) => return Err(Closed::ProxyHeader),
        }
    }
    let client = SocketAddr::new(client.ip().to_canonical(), client.port());
    let address = shared
        .admission
        .admit_address(client.ip(), Instant::now())?;
    let handshake_place = shared.admission.admit_handshake(&address)?;
    let stream =
        match tokio::time::timeout_at(handshake_deadline, shared.acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(%client, error = %e, "tls handshake refused");
                return Err(Closed::HandshakeFailed);
            }
            Err(_) => return Err(Closed::HandshakeTimeout),
        };
    drop(handshake_place);
    let peer = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|cert| mimi_identity::tls_peer_domain(cert.as_ref()).ok());
    // Waiting for a place counts against the handshake deadline, not beyond it.
    let wait = handshake_deadline.saturating_duration_since(tokio::time::Instant::now());
    let _pool_place = shared
        .admission
        .admit_established(peer.as_deref(), wait)
        .await?;
    let peer = PeerDomain(peer);
    let address = ClientAddress(shared.admission.limited_key(client.ip()));
    let activity = Activity::new();
    let service = {
        let (router, activity, deadlines, stats) = (
            shared.router.clone(),
            activity.clone(),
            shared.deadlines,
            shared.stats.clone(),
        );
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let in_flight = activity.request();
            let mut request = request.map(|body| {
                axum::body::Body::new(MinRateBody::new(body, deadlines, stats.clone()))
            });
            request.extensions_mut().insert(peer.clone());
            request.extensions_mut().insert(address);
            // Every log line of the request (the room's owner adds the room) names it, the
            // peer provider and the connection's address.
            let span = tracing::info_span!(
                "request",
                method = %request.method(),
                path = %request.uri().path(),
                peer = peer.0.as_deref().unwrap_or("-"),
                %client,
            );
            let response = router.clone().oneshot(request).instrument(span);
            async move {
                let response = response.await;
                drop(in_flight);
                response
            }
        })
    };
    // Our own watchdog keeps the header deadline; hyper's (which would also cut idle
    // keep-alive connections at the header deadline) stays off, as it is without a timer.
    // HTTP/1.1 only, as ALPN offers: HTTP/2 would multiply every per-connection limit by its
    // streams, and its control frames between requests would read as a stalled request head.
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).http1_only();
    let io = TokioIo::new(Watched::new(stream, activity.clone()));
    let connection = watcher.watch(builder.serve_connection(io, service).into_owned());
    tokio::pin!(connection);
    let mut check = tokio::time::interval(shared.deadlines.watch_interval());
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ended = &mut connection => {
                if let Err(e) = ended {
                    tracing::debug!(%client, error = %e, "connection ended with an error");
                }
                return Ok(());
            }
            _ = check.tick() => {
                if let Some(missed) = activity.missed(&shared.deadlines) {
                    // Dropping the connection closes the socket.
                    return Err(missed);
                }
            }
        }
    }
}
