//! The HTTPS front: accepting connections, admitting them by source address and by pool,
//! enforcing a deadline on every phase of a connection, TLS with optional client certificates,
//! and graceful shutdown. What the server does at each limit is in docs/architecture.md
//! ("Connections").

mod admission;
mod deadlines;
mod proxy_protocol;
mod serve;
mod stats;

pub(crate) use admission::LongPolls;
pub(crate) use serve::{PeerDomain, serve};
pub(crate) use stats::{Closed, ConnectionStats};
