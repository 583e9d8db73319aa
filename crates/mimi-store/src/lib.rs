//! Durable storage for mimid (SQLite)
