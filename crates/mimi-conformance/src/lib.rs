//! Real-process conformance tests for MIMI providers
