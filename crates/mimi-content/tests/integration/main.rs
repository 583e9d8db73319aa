//! Integration tests of mimi-content: vectors, rejection of malformed input, properties, the JSON
//! mapping and status reports. One binary keeps link time down.

mod json_mapping;
mod malformed;
mod properties;
mod status;
mod vectors;

/// Path of a file in `tests/vectors/`.
fn vector_path(name: &str) -> String {
    format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"))
}
