//! Ad-hoc SQL against a store's database, for tests that look at (or tamper with) what a
//! running `mimid` stored, on either engine. The statements take `?N` parameters, as the
//! store's own do. Not part of the product: `mimid` never calls it.

use crate::db::{Db, Owned, Value};
use crate::{Location, StoreError};

/// A parameter or a result column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl Cell {
    /// The integer, if this is one.
    pub fn int(&self) -> Option<i64> {
        match self {
            Cell::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The bytes, if this is a blob.
    pub fn blob(&self) -> Option<&[u8]> {
        match self {
            Cell::Blob(b) => Some(b),
            _ => None,
        }
    }

    /// The text, if this is text.
    pub fn text(&self) -> Option<&str> {
        match self {
            Cell::Text(t) => Some(t),
            _ => None,
        }
    }

    fn value(&self) -> Value<'_> {
        match self {
            Cell::Null => Value::Null,
            Cell::Int(i) => Value::Int(*i),
            Cell::Text(t) => Value::Text(t),
            Cell::Blob(b) => Value::Blob(b),
        }
    }
}

fn connect(location: &Location) -> Result<Db, StoreError> {
    match location {
        Location::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            Ok(Db::Sqlite(conn))
        }
        Location::Postgres(url) => Db::connect_postgres(url),
    }
}

/// Runs a query and returns every row, each column as a [`Cell`].
pub fn query(
    location: &Location,
    sql: &str,
    params: &[Cell],
) -> Result<Vec<Vec<Cell>>, StoreError> {
    let db = connect(location)?;
    let values: Vec<Value<'_>> = params.iter().map(Cell::value).collect();
    db.query(sql, &values, |row| {
        (0..row.len())
            .map(|i| {
                Ok(match row.get::<Owned>(i)? {
                    Owned::Null => Cell::Null,
                    Owned::Int(i) => Cell::Int(i),
                    Owned::Text(t) => Cell::Text(t),
                    Owned::Blob(b) => Cell::Blob(b),
                })
            })
            .collect()
    })
}

/// Runs one statement and returns how many rows it changed.
pub fn execute(location: &Location, sql: &str, params: &[Cell]) -> Result<usize, StoreError> {
    let db = connect(location)?;
    let values: Vec<Value<'_>> = params.iter().map(Cell::value).collect();
    db.execute(sql, &values)
}
