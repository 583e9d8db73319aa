//! Provider-vouched client credentials: X.509 issue and verification
