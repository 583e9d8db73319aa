//! Storage errors: I/O or database failures, a value that breaks a uniqueness rule, or a
//! database from a newer version or from before the RFC 9420 credential fix.

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL reported an error.
    #[error("database: {0}")]
    Postgres(#[from] postgres::Error),
    /// A stored value is not what the schema says (a wrong type, a missing row).
    #[error("stored data is not as expected: {0}")]
    Corrupt(String),
    /// A statement failed inside the transaction, so PostgreSQL discarded all of it.
    #[error("the transaction failed part way and was rolled back")]
    Aborted,
    /// A row that must be unique already exists.
    #[error("{0} already exists")]
    Exists(String),
    /// A row that must exist does not.
    #[error("{0} not found")]
    NotFound(String),
    /// A thread panicked while holding the connection.
    #[error("database lock poisoned")]
    Poisoned,
    /// The database was written by a newer version whose schema this one does not know.
    #[error("database schema v{found} is newer than v{supported}, the newest this build knows")]
    NewerSchema {
        /// The database's schema version.
        found: i64,
        /// The newest version this build can read and write.
        supported: i64,
    },
    /// The database holds MLS state written before credentials followed RFC 9420 §5.3 (schema
    /// v5 and older). Signatures cover the old bytes, so it cannot be converted (issue 14).
    #[error(
        "database schema v{found} holds X.509 credentials in the pre-RFC 9420 form, which cannot \
         be converted: move the database aside, start with a new one (`mimid init`) and have \
         clients register again"
    )]
    PreRfcCredentials {
        /// The database's schema version.
        found: i64,
    },
}
