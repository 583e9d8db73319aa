//! Integration tests of the harness against the real `mimid` binary (build it first:
//! `cargo build -p mimi-server`).

mod dns;
mod serve;
