//! compat tests
