//! mimid: a MIMI provider (hub and follower)
