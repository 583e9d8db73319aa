//! MIMI client SDK
