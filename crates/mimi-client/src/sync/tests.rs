//! Tests of the page application.
