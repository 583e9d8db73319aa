//! MIMI content format (draft-ietf-mimi-content-08): types, deterministic CBOR, message IDs
