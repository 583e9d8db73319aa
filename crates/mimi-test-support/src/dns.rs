//! A real DNS server on loopback for tests of provider discovery: authoritative for every name
//! it is given (one zone rooted at `.`), answering over UDP and TCP on one port, from a thread
//! of its own that stops when the server is dropped.

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr as _;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_server::ServerFuture;
use hickory_server::authority::{Catalog, ZoneType};
use hickory_server::proto::rr::rdata::{A, SOA, SRV};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryAuthority;

use crate::Error;

/// How long resolvers may keep an answer, seconds.
const TTL: u32 = 60;

/// A record the server answers with.
#[derive(Debug, Clone)]
pub enum DnsRecord {
    /// `_mimi._tcp.DOMAIN SRV 0 0 PORT TARGET`.
    MimiSrv {
        /// The provider's domain.
        domain: String,
        /// The host that takes its connections.
        target: String,
        /// The port it listens on.
        port: u16,
    },
    /// `NAME A IP`.
    A {
        /// The host name.
        name: String,
        /// Its address.
        ip: Ipv4Addr,
    },
}

/// Attempts at finding a loopback port free for both UDP and TCP.
const PORT_ATTEMPTS: usize = 32;

/// A UDP socket and a TCP listener on the same loopback port. The system picks a port free
/// for UDP; the same number may be taken for TCP (by any connection's local end, as other
/// tests run), and then another is tried.
fn bind_one_port_for_both()
-> Result<(std::net::UdpSocket, std::net::TcpListener, SocketAddr), Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")
            .map_err(|e| Error::io("bind a DNS socket on", "127.0.0.1", e))?;
        let addr = udp
            .local_addr()
            .map_err(|e| Error::io("read the address of", "127.0.0.1", e))?;
        match std::net::TcpListener::bind(addr) {
            Ok(tcp) => return Ok((udp, tcp, addr)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempt < PORT_ATTEMPTS => {}
            Err(e) => return Err(Error::io("bind a DNS listener on", addr.to_string(), e)),
        }
    }
}

/// A running DNS server; dropping it stops it.
pub struct DnsServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DnsServer {
    /// Starts a server on a free loopback port that answers `records` and nothing else.
    pub fn start(records: &[DnsRecord]) -> Result<Self, Error> {
        let catalog = catalog(records)?;
        let (udp, tcp, addr) = bind_one_port_for_both()?;
        for socket in [&udp as &dyn SetNonblocking, &tcp] {
            socket
                .nonblocking()
                .map_err(|e| Error::io("configure", addr.to_string(), e))?;
        }
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("test-dns".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let mut server = ServerFuture::new(catalog);
                    let sockets = tokio::net::UdpSocket::from_std(udp)
                        .and_then(|u| Ok((u, tokio::net::TcpListener::from_std(tcp)?)));
                    let (udp, tcp) = match sockets {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    server.register_socket(udp);
                    server.register_listener(tcp, Duration::from_secs(5));
                    let _ = ready_tx.send(Ok(()));
                    let _ = stopped.await;
                    let _ = server.shutdown_gracefully().await;
                });
            })
            .map_err(|e| Error::io("start a thread for", "the DNS server", e))?;
        match ready.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::io("start", "the DNS server", e)),
            Err(_) => {
                return Err(Error::io(
                    "start",
                    "the DNS server",
                    std::io::Error::other("its thread ended"),
                ));
            }
        }
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it answers, UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The one zone, rooted at `.`, holding `records` and the SOA a zone needs.
fn catalog(records: &[DnsRecord]) -> Result<Catalog, Error> {
    let name = |n: &str| {
        Name::from_str(&format!("{}.", n.trim_end_matches('.'))).map_err(|e| {
            Error::io(
                "parse the DNS name",
                n.to_owned(),
                std::io::Error::other(e.to_string()),
            )
        })
    };
    let root = Name::root();
    let mut zone = InMemoryAuthority::empty(root.clone(), ZoneType::Primary, false);
    let soa = SOA::new(
        name("ns.test")?,
        name("hostmaster.test")?,
        1,
        3600,
        600,
        86_400,
        TTL,
    );
    zone.upsert_mut(Record::from_rdata(root.clone(), TTL, RData::SOA(soa)), 1);
    for record in records {
        let record = match record {
            DnsRecord::MimiSrv {
                domain,
                target,
                port,
            } => Record::from_rdata(
                name(&format!("_mimi._tcp.{domain}"))?,
                TTL,
                RData::SRV(SRV::new(0, 0, *port, name(target)?)),
            ),
            DnsRecord::A { name: host, ip } => {
                Record::from_rdata(name(host)?, TTL, RData::A(A::from(*ip)))
            }
        };
        zone.upsert_mut(record, 1);
    }
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&root), vec![Arc::new(zone)]);
    Ok(catalog)
}

/// The two std sockets, made non-blocking for tokio alike.
trait SetNonblocking {
    fn nonblocking(&self) -> std::io::Result<()>;
}

impl SetNonblocking for std::net::UdpSocket {
    fn nonblocking(&self) -> std::io::Result<()> {
        self.set_nonblocking(true)
    }
}

impl SetNonblocking for std::net::TcpListener {
    fn nonblocking(&self) -> std::io::Result<()> {
        self.set_nonblocking(true)
    }
}
