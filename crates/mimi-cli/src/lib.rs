//! mimi: the MIMI command-line client
