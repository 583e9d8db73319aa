//! mimid tests that need no network: configuration files, `mimid init`, and its logs.

mod config;
mod logs;
mod migrate;
