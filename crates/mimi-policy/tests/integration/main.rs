//! Integration tests of mimi-policy's public API: decoders against arbitrary input.

mod decode;
