//! The outbound `/notify` queue: persisted in the store (`mimi_store` outbox), drained by one
//! sender task per peer (see `sender`).

mod sender;

pub(crate) use sender::run_senders;
