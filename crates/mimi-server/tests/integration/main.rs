//! mimid tests that need no network: configuration files and `mimid init`.

mod config;
