//! Throwaway PostgreSQL databases, for tests and benchmarks that run the store on PostgreSQL:
//! each gets a fresh empty database on a shared server, dropped when it goes out of scope.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::StoreError;

/// The environment variable naming the PostgreSQL server tests use, as a connection URL to
/// its `postgres` database (`scripts/postgres.sh start` prints one; `scripts/test.sh` sets it).
pub const TEST_POSTGRES_ENV: &str = "MIMI_TEST_POSTGRES";

/// A database created for one test or benchmark run; dropped with it.
#[derive(Debug)]
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    /// Creates an empty database on the server `admin_url` connects to. Blocks: call it off
    /// the async workers.
    pub fn create(admin_url: &str) -> Result<Self, StoreError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!(
            "mimi_scratch_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = postgres::Client::connect(admin_url, postgres::NoTls)?;
        admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
        let url = with_database(admin_url, &name)
            .ok_or_else(|| StoreError::Corrupt(format!("{admin_url} is not a postgres:// URL")))?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
            url,
        })
    }

    /// Creates one on the server named by [`TEST_POSTGRES_ENV`]; an error says how to start
    /// one when it is not set.
    pub fn from_env() -> Result<Self, StoreError> {
        match std::env::var(TEST_POSTGRES_ENV) {
            Ok(url) if !url.is_empty() => Self::create(&url),
            _ => Err(StoreError::Corrupt(format!(
                "{TEST_POSTGRES_ENV} is not set: run the tests with scripts/test.sh, or start a \
                 server with `scripts/postgres.sh start DIR` and export the URL it prints"
            ))),
        }
    }

    /// The connection URL of the database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        // Best effort: a server already gone takes its databases with it. On a thread of its
        // own, so a drop inside an async runtime (a test's end, a panic) does not block it.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(mut admin) = postgres::Client::connect(&admin_url, postgres::NoTls) {
                let _ =
                    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        })
        .join();
    }
}

/// `url` (`postgres://user@host:port/db?options`) naming database `name` instead.
fn with_database(url: &str, name: &str) -> Option<String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    let (authority, tail) = match rest.split_once('/') {
        Some((authority, tail)) => (authority, tail),
        None => (rest, ""),
    };
    let query = tail.split_once('?').map(|(_, q)| q);
    Some(match query {
        Some(q) => format!("postgres://{authority}/{name}?{q}"),
        None => format!("postgres://{authority}/{name}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_another_database() {
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5432/postgres", "x").as_deref(),
            Some("postgres://u@127.0.0.1:5432/x")
        );
        assert_eq!(
            with_database("postgresql://u:p@h/postgres?sslmode=disable", "x").as_deref(),
            Some("postgres://u:p@h/x?sslmode=disable")
        );
        assert_eq!(
            with_database("postgres://u@h", "x").as_deref(),
            Some("postgres://u@h/x")
        );
        assert_eq!(with_database("host=h user=u", "x"), None);
    }
}
