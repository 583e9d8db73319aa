//! A TCP proxy on loopback: the load balancer in front of a cluster's nodes (each connection
//! to the next backend that accepts it, round robin), and the faulty network between a client
//! and its provider or between providers ([`Fault`]). TLS passes through untouched: a fault
//! hits whatever request the connection carries next.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::Error;

/// How long a backend may take to accept a connection before the next one is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How often the accepting thread looks up to notice it should stop.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// What the proxy does to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: bytes pass both ways.
    None,
    /// The request reaches the backend, the answer never reaches the client: once the backend
    /// starts answering, both sides are closed (a lost answer).
    DropAnswer,
    /// Both directions wait this long before each chunk passes.
    Delay(Duration),
    /// After this many bytes from the client, both sides are reset (a request cut in its
    /// body). With [`Proxy::fault_next`], the cut lands instead on the next request, on any
    /// connection, new or already open, that grows past this many bytes (TLS records
    /// included): other connections opened meanwhile (a peer's, a read) cannot take it.
    ResetAfter(usize),
    /// The next answer to a request of more than this many bytes (TLS records included), on
    /// any connection, new or already open, is lost: when the backend starts answering it, both
    /// sides are closed. Smaller requests (reads, TLS handshakes) pass, so the fault lands on
    /// a write. Only with [`Proxy::fault_next`].
    DropAnswerToLarge(usize),
}

/// Which connections get which fault: every `every`-th connection (1: all) gets `fault`;
/// with `once`, only the next one.
#[derive(Debug, Clone, Copy)]
struct Plan {
    fault: Fault,
    every: usize,
    once: bool,
}

/// A running proxy; stops accepting when dropped (connections already open run to their end).
pub struct Proxy {
    addr: SocketAddr,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    plan: Arc<Mutex<Plan>>,
    /// An armed [`Fault::DropAnswerToLarge`]: its size, until a connection uses it.
    large: Arc<Mutex<Option<usize>>>,
    /// An armed [`Fault::ResetAfter`] from [`Proxy::fault_next`]: its size, until a request
    /// uses it.
    cut: Arc<Mutex<Option<usize>>>,
    faults_injected: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on `listen` (port 0: any) and spreads connections over `backends`.
    pub fn start(listen: SocketAddr, backends: Vec<SocketAddr>) -> Result<Self, Error> {
        let listener = TcpListener::bind(listen)
            .map_err(|e| Error::Net(format!("proxy cannot listen on {listen}"), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::Net("proxy listener".into(), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Net("proxy listener".into(), e))?;
        let backends = Arc::new(Mutex::new(backends));
        let plan = Arc::new(Mutex::new(Plan {
            fault: Fault::None,
            every: 1,
            once: false,
        }));
        let faults_injected = Arc::new(AtomicUsize::new(0));
        let large = Arc::new(Mutex::new(None));
        let cut = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let shared = Shared {
                backends: backends.clone(),
                plan: plan.clone(),
                large: large.clone(),
                cut: cut.clone(),
                injected: faults_injected.clone(),
            };
            let stop = stop.clone();
            std::thread::spawn(move || accept(&listener, &shared, &stop))
        };
        Ok(Self {
            addr,
            backends,
            plan,
            large,
            cut,
            faults_injected,
            stop,
            thread: Some(thread),
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on, every `every`-th new connection (1: each) gets `fault`.
    pub fn set_fault(&self, fault: Fault, every: usize) {
        *self.plan.lock().unwrap_or_else(|e| e.into_inner()) = Plan {
            fault,
            every: every.max(1),
            once: false,
        };
    }

    /// The next new connection gets `fault`; the ones after it none. A
    /// [`Fault::DropAnswerToLarge`] or [`Fault::ResetAfter`] waits instead for the next large
    /// request on any connection, so that it lands on a write whoever connects first.
    pub fn fault_next(&self, fault: Fault) {
        match fault {
            Fault::DropAnswerToLarge(size) => {
                *self.large.lock().unwrap_or_else(|e| e.into_inner()) = Some(size);
                return;
            }
            Fault::ResetAfter(size) => {
                *self.cut.lock().unwrap_or_else(|e| e.into_inner()) = Some(size);
                return;
            }
            _ => {}
        }
        *self.plan.lock().unwrap_or_else(|e| e.into_inner()) = Plan {
            fault,
            every: 1,
            once: true,
        };
    }

    /// Connections a fault was applied to so far.
    pub fn faults_injected(&self) -> usize {
        self.faults_injected.load(Ordering::Relaxed)
    }

    /// Replaces the backends new connections go to.
    pub fn set_backends(&self, backends: Vec<SocketAddr>) {
        *self.backends.lock().unwrap_or_else(|e| e.into_inner()) = backends;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the accepting thread and every connection share.
#[derive(Clone)]
struct Shared {
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    plan: Arc<Mutex<Plan>>,
    large: Arc<Mutex<Option<usize>>>,
    cut: Arc<Mutex<Option<usize>>>,
    injected: Arc<AtomicUsize>,
}

fn accept(listener: &TcpListener, shared: &Shared, stop: &AtomicBool) {
    let mut next = 0usize;
    let mut count = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL);
                continue;
            }
            Err(_) => continue,
        };
        let _ = client.set_nonblocking(false);
        let targets = shared
            .backends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        // The next backend that accepts, as a balancer skips a dead node.
        let backend = (0..targets.len()).find_map(|i| {
            let target = targets[(next + i) % targets.len()];
            TcpStream::connect_timeout(&target, CONNECT_TIMEOUT)
                .ok()
                .map(|s| (i, s))
        });
        let Some((skipped, backend)) = backend else {
            continue;
        };
        next = next.wrapping_add(skipped + 1);
        count += 1;
        let fault = {
            let mut plan = shared.plan.lock().unwrap_or_else(|e| e.into_inner());
            let fault = if count.is_multiple_of(plan.every) {
                plan.fault
            } else {
                Fault::None
            };
            if plan.once {
                plan.fault = Fault::None;
            }
            fault
        };
        let shared = shared.clone();
        std::thread::spawn(move || relay(client, backend, fault, &shared));
    }
}

/// Copies both ways until either side ends, applying `fault`; counts it in `injected` once it
/// took effect.
fn relay(client: TcpStream, backend: TcpStream, fault: Fault, shared: &Shared) {
    let injected = &shared.injected;
    let (Ok(client_r), Ok(backend_r)) = (client.try_clone(), backend.try_clone()) else {
        return;
    };
    let delay = match fault {
        Fault::Delay(d) => Some(d),
        _ => None,
    };
    let limit = match fault {
        Fault::ResetAfter(n) => Some(n),
        _ => None,
    };
    if delay.is_some() {
        injected.fetch_add(1, Ordering::Relaxed);
    }
    // Bytes the client sent since the backend last answered: the size of the request an
    // answer belongs to.
    let request = Arc::new(AtomicUsize::new(0));
    let (c, b, counted) = (client.try_clone(), backend.try_clone(), request.clone());
    let armed = shared.cut.clone();
    let upstream = std::thread::spawn(move || {
        let cut = copy(client_r, backend, delay, limit, &counted, &armed);
        if cut && let (Ok(c), Ok(b)) = (c, b) {
            reset(&c);
            reset(&b);
        }
        cut
    });
    let drop_all = fault == Fault::DropAnswer;
    let mut from = backend_r;
    let mut to = client;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let asked = request.swap(0, Ordering::Relaxed);
        let drop_large = asked > 0 && {
            let mut large = shared.large.lock().unwrap_or_else(|e| e.into_inner());
            match *large {
                Some(size) if asked > size => large.take().is_some(),
                _ => false,
            }
        };
        if drop_all || drop_large {
            injected.fetch_add(1, Ordering::Relaxed);
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            break;
        }
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    if upstream.join().unwrap_or(false) {
        injected.fetch_add(1, Ordering::Relaxed);
    }
}

/// Copies `from` to `to` until the end or a cut (then returns true), waiting `delay` before
/// each chunk and adding what passed to `request` (the bytes of the request in flight, which
/// the answering side sets back to 0). The cut comes after `limit` bytes of the connection, or
/// once the request in flight grows past the size `armed` holds, which it then disarms. Closes
/// `to` for writing at the end.
fn copy(
    mut from: TcpStream,
    mut to: TcpStream,
    delay: Option<Duration>,
    limit: Option<usize>,
    request: &AtomicUsize,
    armed: &Mutex<Option<usize>>,
) -> bool {
    let mut buf = [0u8; 16 * 1024];
    let mut passed = 0usize;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        let mut keep = match limit {
            Some(limit) => n.min(limit - passed),
            None => n,
        };
        let asked = request.load(Ordering::Relaxed);
        let taken = {
            let mut armed = armed.lock().unwrap_or_else(|e| e.into_inner());
            match *armed {
                Some(size) if asked + n > size => armed.take(),
                _ => None,
            }
        };
        if let Some(size) = taken {
            keep = keep.min(size.saturating_sub(asked));
        }
        request.fetch_add(keep, Ordering::Relaxed);
        if to.write_all(&buf[..keep]).is_err() {
            break;
        }
        passed += keep;
        if taken.is_some() || limit.is_some_and(|limit| passed >= limit) {
            return true;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    false
}

/// Closes `stream` with a reset (SO_LINGER 0), as a crashed middlebox would.
fn reset(stream: &TcpStream) {
    let socket = socket2::SockRef::from(stream);
    let _ = socket.set_linger(Some(Duration::ZERO));
    let _ = socket.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut stream = stream;
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 || stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    fn round_trip(addr: SocketAddr) -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"ping")?;
        let mut got = [0u8; 4];
        s.read_exact(&mut got)?;
        Ok(got.to_vec())
    }

    #[test]
    fn connections_take_turns_and_skip_a_dead_backend() {
        let live = echo_server();
        let dead = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), vec![dead, live]).unwrap();
        for _ in 0..4 {
            assert_eq!(round_trip(proxy.addr()).unwrap(), b"ping");
        }
        assert_eq!(proxy.faults_injected(), 0);
    }

    #[test]
    fn a_dropped_answer_reaches_the_backend_but_not_the_client() {
        let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), vec![echo_server()]).unwrap();
        proxy.set_fault(Fault::DropAnswer, 2);
        assert!(round_trip(proxy.addr()).is_ok());
        assert!(round_trip(proxy.addr()).is_err());
        assert!(round_trip(proxy.addr()).is_ok());
        assert_eq!(proxy.faults_injected(), 1);
    }

    #[test]
    fn only_the_answer_to_a_large_request_is_dropped_and_only_once() {
        let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), vec![echo_server()]).unwrap();
        proxy.fault_next(Fault::DropAnswerToLarge(100));
        let mut s = TcpStream::connect(proxy.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // A small request on the faulty connection is answered.
        s.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        s.read_exact(&mut got).unwrap();
        // A large one is not, and the connection is gone.
        s.write_all(&[7u8; 500]).unwrap();
        let mut rest = Vec::new();
        assert!(matches!(s.read_to_end(&mut rest), Ok(n) if n < 500) || rest.len() < 500);
        assert_eq!(proxy.faults_injected(), 1);
        // The next connection is not faulty.
        assert_eq!(round_trip(proxy.addr()).unwrap(), b"ping");
    }

    #[test]
    fn an_armed_reset_waits_for_a_large_request_on_any_connection_and_cuts_it_once() {
        let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), vec![echo_server()]).unwrap();
        // A connection open before the fault is armed.
        let mut open = TcpStream::connect(proxy.addr()).unwrap();
        open.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = [0u8; 4];
        open.write_all(b"ping").unwrap();
        open.read_exact(&mut got).unwrap();
        proxy.fault_next(Fault::ResetAfter(100));
        // A new connection with small requests only is not cut.
        assert_eq!(round_trip(proxy.addr()).unwrap(), b"ping");
        assert_eq!(proxy.faults_injected(), 0);
        // A large request on the connection that was already open is.
        open.write_all(&[7u8; 500]).unwrap();
        let mut rest = Vec::new();
        let _ = open.read_to_end(&mut rest);
        assert!(
            rest.len() <= 100,
            "{} bytes echoed past the cut",
            rest.len()
        );
        // Counted once the connection is gone, and only once.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while proxy.faults_injected() == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(proxy.faults_injected(), 1);
        let mut next = TcpStream::connect(proxy.addr()).unwrap();
        next.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        next.write_all(&[8u8; 500]).unwrap();
        let mut back = [0u8; 500];
        next.read_exact(&mut back).unwrap();
        assert_eq!(proxy.faults_injected(), 1);
    }

    #[test]
    fn a_reset_cuts_the_request() {
        let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), vec![echo_server()]).unwrap();
        proxy.set_fault(Fault::ResetAfter(2), 1);
        assert!(round_trip(proxy.addr()).is_err());
        proxy.set_fault(Fault::Delay(Duration::from_millis(50)), 1);
        assert_eq!(round_trip(proxy.addr()).unwrap(), b"ping");
    }
}
