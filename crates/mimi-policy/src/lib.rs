//! MIMI room policy (draft-ietf-mimi-room-policy-03): roles, capabilities, authorization
