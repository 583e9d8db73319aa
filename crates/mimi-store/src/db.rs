//! The two database engines behind one small interface: embedded SQLite (one file, the
//! default) and PostgreSQL (a server several `mimid` nodes can share). Every query of the store
//! is written once, in the SQL both engines read:
//!
//! * parameters are `?1`, `?2`, ... (rewritten to `$1`, `$2`, ... for PostgreSQL);
//! * every integer column is 64-bit (`INTEGER` in SQLite, `BIGINT` in PostgreSQL) and flags are
//!   integers 0 and 1, so one [`Value`] type binds them all;
//! * `INSERT ... ON CONFLICT`, `RETURNING`, `COALESCE`, `CASE` and the aggregates, which both
//!   engines read alike; where they differ (a substring search), [`Db::dialect`] says which SQL
//!   to write.
//!
//! [`Db`] runs one statement at a time on one connection; transactions are plain `BEGIN` /
//! `COMMIT` statements (see `Tx` in lib.rs), so the domain code is the same for both.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use crate::StoreError;

/// Which SQL dialect a connection speaks, for the few statements the engines spell differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Embedded SQLite.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// One open connection to either engine.
pub(crate) enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(Box<Pg>),
}

/// A PostgreSQL connection and the statements it prepared. The `RefCell`s are only ever
/// borrowed inside one method call: a `Db` is used by one thread at a time (it sits behind the
/// store's mutexes).
pub(crate) struct Pg {
    client: RefCell<postgres::Client>,
    statements: RefCell<HashMap<String, postgres::Statement>>,
    /// A statement failed since the transaction (or its savepoint) began. PostgreSQL then
    /// refuses everything until a rollback, and answers `COMMIT` with a silent rollback, so
    /// the commit must know.
    failed: Cell<bool>,
}

/// Prepared statements kept per PostgreSQL connection before the cache starts over (the store
/// has fewer fixed statements than this; only profile searches build theirs at run time).
const PG_STATEMENT_CACHE: usize = 512;

/// A value bound to a statement parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// A value read from a result column.
#[derive(Debug)]
pub(crate) enum Owned {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// What can be bound as a parameter (see the `params!` macro).
pub(crate) trait ToValue {
    fn to_value(&self) -> Value<'_>;
}

impl ToValue for i64 {
    fn to_value(&self) -> Value<'_> {
        Value::Int(*self)
    }
}
impl ToValue for i32 {
    fn to_value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}
impl ToValue for u32 {
    fn to_value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}
impl ToValue for bool {
    fn to_value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}
impl ToValue for str {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl ToValue for [u8] {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl<const N: usize> ToValue for [u8; N] {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value<'_> {
        (**self).to_value()
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value<'_> {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null,
        }
    }
}

/// Statement parameters: `params![a, b]` is `&[Value]` for any mix of [`ToValue`] types.
macro_rules! params {
    () => { &[] as &[$crate::db::Value<'_>] };
    ($($e:expr),+ $(,)?) => {
        &[$($crate::db::ToValue::to_value(&$e)),+] as &[$crate::db::Value<'_>]
    };
}
pub(crate) use params;

/// What a result column can be read as.
pub(crate) trait FromValue: Sized {
    fn from_value(v: Owned) -> Result<Self, StoreError>;
}

fn wrong_type(want: &str, got: &Owned) -> StoreError {
    StoreError::Corrupt(format!("column holds {got:?}, not {want}"))
}

impl FromValue for i64 {
    fn from_value(v: Owned) -> Result<Self, StoreError> {
        match v {
            Owned::Int(i) => Ok(i),
            other => Err(wrong_type("an integer", &other)),
        }
    }
}
impl FromValue for bool {
    fn from_value(v: Owned) -> Result<Self, StoreError> {
        i64::from_value(v).map(|i| i != 0)
    }
}
impl FromValue for String {
    fn from_value(v: Owned) -> Result<Self, StoreError> {
        match v {
            Owned::Text(s) => Ok(s),
            other => Err(wrong_type("text", &other)),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: Owned) -> Result<Self, StoreError> {
        match v {
            Owned::Blob(b) => Ok(b),
            other => Err(wrong_type("bytes", &other)),
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Owned) -> Result<Self, StoreError> {
        match v {
            Owned::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One result row.
pub(crate) enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a postgres::Row),
}

impl FromValue for Owned {
    fn from_value(v: Owned) -> Result<Self, StoreError> {
        Ok(v)
    }
}

impl Row<'_> {
    /// How many columns the row has.
    pub(crate) fn len(&self) -> usize {
        match self {
            Row::Sqlite(row) => row.as_ref().column_count(),
            Row::Postgres(row) => row.len(),
        }
    }

    /// Column `i` (from 0) as a `T`.
    pub(crate) fn get<T: FromValue>(&self, i: usize) -> Result<T, StoreError> {
        T::from_value(self.owned(i)?)
    }

    fn owned(&self, i: usize) -> Result<Owned, StoreError> {
        use rusqlite::types::ValueRef;
        match self {
            Row::Sqlite(row) => Ok(match row.get_ref(i)? {
                ValueRef::Null => Owned::Null,
                ValueRef::Integer(n) => Owned::Int(n),
                ValueRef::Text(t) => Owned::Text(
                    String::from_utf8(t.to_vec())
                        .map_err(|_| StoreError::Corrupt("text that is not UTF-8".into()))?,
                ),
                ValueRef::Blob(b) => Owned::Blob(b.to_vec()),
                ValueRef::Real(_) => return Err(StoreError::Corrupt("a real number".into())),
            }),
            Row::Postgres(row) => pg_owned(row, i),
        }
    }
}

fn pg_owned(row: &postgres::Row, i: usize) -> Result<Owned, StoreError> {
    use postgres::types::Type;
    let ty = row
        .columns()
        .get(i)
        .ok_or_else(|| StoreError::Corrupt(format!("no column {i}")))?
        .type_();
    let owned = if *ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)?.map(Owned::Int)
    } else if *ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)?
            .map(|n| Owned::Int(n.into()))
    } else if *ty == Type::INT2 {
        row.try_get::<_, Option<i16>>(i)?
            .map(|n| Owned::Int(n.into()))
    } else if *ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(i)?
            .map(|b| Owned::Int(b.into()))
    } else if *ty == Type::TEXT || *ty == Type::VARCHAR || *ty == Type::NAME {
        row.try_get::<_, Option<String>>(i)?.map(Owned::Text)
    } else if *ty == Type::BYTEA {
        row.try_get::<_, Option<Vec<u8>>>(i)?.map(Owned::Blob)
    } else {
        return Err(StoreError::Corrupt(format!(
            "column {i} has type {ty}, which the store does not read"
        )));
    };
    Ok(owned.unwrap_or(Owned::Null))
}

impl Db {
    /// Connects to PostgreSQL at `url` (`postgres://user@host:port/db` or key=value form).
    pub(crate) fn connect_postgres(url: &str) -> Result<Self, StoreError> {
        let client = postgres::Client::connect(url, postgres::NoTls)?;
        Ok(Db::Postgres(Box::new(Pg {
            client: RefCell::new(client),
            statements: RefCell::new(HashMap::new()),
            failed: Cell::new(false),
        })))
    }

    /// Whether the server closed this connection (PostgreSQL restarted or failed over).
    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Db::Sqlite(_) => false,
            Db::Postgres(pg) => pg.client.borrow().is_closed(),
        }
    }

    /// Whether a statement failed in the current transaction since it began or since its
    /// last savepoint rollback (PostgreSQL; SQLite keeps a transaction usable).
    pub(crate) fn transaction_failed(&self) -> bool {
        match self {
            Db::Sqlite(_) => false,
            Db::Postgres(pg) => pg.failed.get(),
        }
    }

    /// The dialect this connection speaks.
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs one statement; returns how many rows it changed.
    pub(crate) fn execute(&self, sql: &str, params: &[Value<'_>]) -> Result<usize, StoreError> {
        match self {
            Db::Sqlite(conn) => Ok(conn
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(params.iter()))?),
            Db::Postgres(pg) => {
                let stmt = pg.statement(sql)?;
                let n = pg.track(pg.client.borrow_mut().execute(&stmt, &pg_params(params)))?;
                Ok(n as usize)
            }
        }
    }

    /// Runs one `INSERT` into a table whose key is `id` and returns the new row's `id`.
    /// SQLite reads it from the connection: `RETURNING` there makes the statement keep a
    /// statement journal, which costs more than the insert itself at fan-out rates.
    pub(crate) fn insert(&self, sql: &str, params: &[Value<'_>]) -> Result<i64, StoreError> {
        match self {
            Db::Sqlite(conn) => {
                conn.prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(params.iter()))?;
                Ok(conn.last_insert_rowid())
            }
            Db::Postgres(_) => self.query_one(&format!("{sql} RETURNING id"), params, |r| r.get(0)),
        }
    }

    /// Runs a query and maps each row with `f`.
    pub(crate) fn query<T>(
        &self,
        sql: &str,
        params: &[Value<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        match self {
            Db::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(f(&Row::Sqlite(row))?);
                }
                Ok(out)
            }
            Db::Postgres(pg) => {
                let stmt = pg.statement(sql)?;
                let rows = pg.track(pg.client.borrow_mut().query(&stmt, &pg_params(params)))?;
                rows.iter().map(|row| f(&Row::Postgres(row))).collect()
            }
        }
    }

    /// Runs a query and maps its first row, if any, with `f`.
    pub(crate) fn query_opt<T>(
        &self,
        sql: &str,
        params: &[Value<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        match self {
            Db::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
                match rows.next()? {
                    Some(row) => f(&Row::Sqlite(row)).map(Some),
                    None => Ok(None),
                }
            }
            Db::Postgres(pg) => {
                let stmt = pg.statement(sql)?;
                let rows = pg.track(pg.client.borrow_mut().query(&stmt, &pg_params(params)))?;
                rows.first().map(|row| f(&Row::Postgres(row))).transpose()
            }
        }
    }

    /// Runs a query that always yields a row (an aggregate, `RETURNING`) and maps it.
    pub(crate) fn query_one<T>(
        &self,
        sql: &str,
        params: &[Value<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.query_opt(sql, params, f)?
            .ok_or_else(|| StoreError::Corrupt(format!("no row from: {sql}")))
    }

    /// Runs statements without parameters, separated by `;` (schema changes, transaction
    /// control). Not cached.
    pub(crate) fn batch(&self, sql: &str) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Db::Postgres(pg) => {
                pg.track(pg.client.borrow_mut().batch_execute(sql))?;
                // A transaction's start, or a rollback to a savepoint, leaves it usable again.
                if sql.starts_with("BEGIN") || sql.starts_with("ROLLBACK") {
                    pg.failed.set(false);
                }
                Ok(())
            }
        }
    }
}

impl Pg {
    /// Notes a failed statement (see [`Pg::failed`]).
    fn track<T>(&self, result: Result<T, postgres::Error>) -> Result<T, StoreError> {
        if result.is_err() {
            self.failed.set(true);
        }
        Ok(result?)
    }

    /// The prepared form of `sql`, prepared on first use.
    fn statement(&self, sql: &str) -> Result<postgres::Statement, StoreError> {
        if let Some(stmt) = self.statements.borrow().get(sql) {
            return Ok(stmt.clone());
        }
        let stmt = self.track(
            self.client
                .borrow_mut()
                .prepare(&postgres_placeholders(sql)),
        )?;
        let mut cache = self.statements.borrow_mut();
        if cache.len() >= PG_STATEMENT_CACHE {
            cache.clear();
        }
        cache.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }
}

/// `?N` placeholders in PostgreSQL's spelling, `$N` (a bare `?` takes the next number). The
/// store's SQL has no `?` inside string literals, so a plain scan is exact.
pub(crate) fn postgres_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 1;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '?' {
            out.push(c);
            continue;
        }
        out.push('$');
        if chars.peek().is_some_and(char::is_ascii_digit) {
            continue;
        }
        out.push_str(&next.to_string());
        next += 1;
    }
    out
}

fn pg_params<'a>(params: &'a [Value<'a>]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| p as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(i),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl postgres::types::ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        match *self {
            Value::Null => Ok(postgres::types::IsNull::Yes),
            // The schema's integers are BIGINT; a few expressions infer a narrower type.
            Value::Int(i) if *ty == Type::INT8 => i.to_sql(ty, out),
            Value::Int(i) if *ty == Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
            Value::Int(i) if *ty == Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
            Value::Int(i) if *ty == Type::BOOL => (i != 0).to_sql(ty, out),
            Value::Text(t) if <&str as postgres::types::ToSql>::accepts(ty) => t.to_sql(ty, out),
            Value::Blob(b) if *ty == Type::BYTEA => b.to_sql(ty, out),
            other => Err(format!("{other:?} cannot be bound to a {ty} parameter").into()),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_take_postgres_spelling() {
        assert_eq!(
            postgres_placeholders("SELECT a FROM t WHERE b = ?1 AND c > ?12"),
            "SELECT a FROM t WHERE b = $1 AND c > $12"
        );
        assert_eq!(
            postgres_placeholders("INSERT INTO t VALUES (?, ?)"),
            "INSERT INTO t VALUES ($1, $2)"
        );
    }
}
