//! boot tests
