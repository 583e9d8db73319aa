//! MIMI provider-to-provider wire types (draft-ietf-mimi-protocol-06)
