//! Fan-out: putting an accepted message on its way inside the transaction that accepted it
//! (`delivery`: local inboxes, or the durable per-peer `/notify` queue in the store), and
//! draining that queue, one sender task per peer (`sender`), which takes what commits while
//! it keeps up from memory (`feed`).

mod delivery;
mod feed;
mod sender;

pub(crate) use delivery::{deliver_local, fan_out};
pub(crate) use feed::Feed;
pub(crate) use sender::run_senders;
