//! Unit tests of the configuration loader.
