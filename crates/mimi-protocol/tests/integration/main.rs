//! Integration tests of mimi-protocol: the MLS skimmer against real OpenMLS output, and
//! decoders against random input.

mod openmls_interop;
mod random_bytes;
