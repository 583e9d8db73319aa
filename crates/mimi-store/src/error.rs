//! Storage errors: all are I/O or database failures, or a value that breaks a uniqueness rule.

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A row that must be unique already exists.
    #[error("{0} already exists")]
    Exists(String),
    /// A row that must exist does not.
    #[error("{0} not found")]
    NotFound(String),
    /// A thread panicked while holding the connection.
    #[error("database lock poisoned")]
    Poisoned,
}
