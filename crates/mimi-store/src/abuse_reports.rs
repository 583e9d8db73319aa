//! Abuse reports a hub accepted (draft-ietf-mimi-protocol-06 §5.9), kept for its operator.

use crate::db::params;
use crate::{StoreError, StoreGuard, Tx};

/// A verified report to store.
#[derive(Debug, Clone)]
pub struct NewAbuseReport<'a> {
    /// The room the report is about.
    pub room_uri: &'a str,
    /// The reporter's URI, empty if anonymous.
    pub reporting_user: &'a str,
    /// The user the report accuses.
    pub alleged_abuser: &'a str,
    /// The `AbuseType` code.
    pub reason_code: u8,
    /// The reporter's note.
    pub note: &'a str,
    /// The provider that delivered the report (our own domain for a local reporter).
    pub received_from: &'a str,
    /// The whole `AbuseReport` as received.
    pub report: &'a [u8],
}

/// A stored report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbuseReportRow {
    /// Its position, in arrival order.
    pub id: i64,
    /// The room the report is about.
    pub room_uri: String,
    /// The reporter's URI, empty if anonymous.
    pub reporting_user: String,
    /// The user the report accuses.
    pub alleged_abuser: String,
    /// The `AbuseType` code.
    pub reason_code: u8,
    /// The reporter's note.
    pub note: String,
    /// The provider that delivered it.
    pub received_from: String,
    /// The whole `AbuseReport` as received.
    pub report: Vec<u8>,
    /// When it arrived, seconds since the UNIX epoch.
    pub received_at: u64,
}

impl Tx<'_> {
    /// Stores a verified report; returns its id.
    pub fn add_abuse_report(&self, r: &NewAbuseReport<'_>, now: u64) -> Result<i64, StoreError> {
        self.conn().insert(
            "INSERT INTO abuse_reports (room_uri, reporting_user, alleged_abuser,
                 reason_code, note, received_from, report, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                r.room_uri,
                r.reporting_user,
                r.alleged_abuser,
                i64::from(r.reason_code),
                r.note,
                r.received_from,
                r.report,
                now as i64
            ],
        )
    }
}

impl StoreGuard<'_> {
    /// Every stored report, oldest first.
    pub fn abuse_reports(&self) -> Result<Vec<AbuseReportRow>, StoreError> {
        self.conn.query(
            "SELECT id, room_uri, reporting_user, alleged_abuser, reason_code, note,
                    received_from, report, received_at
             FROM abuse_reports ORDER BY id",
            params![],
            |r| {
                let reason_code = r.get::<i64>(4)?;
                Ok(AbuseReportRow {
                    id: r.get(0)?,
                    room_uri: r.get(1)?,
                    reporting_user: r.get(2)?,
                    alleged_abuser: r.get(3)?,
                    reason_code: u8::try_from(reason_code).map_err(|_| {
                        StoreError::Corrupt(format!("abuse reason code {reason_code}"))
                    })?,
                    note: r.get(5)?,
                    received_from: r.get(6)?,
                    report: r.get(7)?,
                    received_at: r.get::<i64>(8)?.max(0) as u64,
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::engine_test;

    use super::*;

    engine_test! {
        fn a_stored_report_is_listed_with_its_fields(store) {
            assert!(store.read().unwrap().abuse_reports().unwrap().is_empty());
            let mut guard = store.lock().unwrap();
            let tx = guard.begin().unwrap();
            let id = tx
                .add_abuse_report(
                    &NewAbuseReport {
                        room_uri: "mimi://a/r/x",
                        reporting_user: "mimi://c/u/r",
                        alleged_abuser: "mimi://b/u/a",
                        reason_code: 0,
                        note: "spam",
                        received_from: "c",
                        report: &[1, 2],
                    },
                    42,
                )
                .unwrap();
            tx.commit().unwrap();
            drop(guard);
            let rows = store.read().unwrap().abuse_reports().unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].id, id);
            assert_eq!(rows[0].alleged_abuser, "mimi://b/u/a");
            assert_eq!(rows[0].report, vec![1, 2]);
            assert_eq!(rows[0].received_at, 42);
        }
    }
}
