//! Programs' output: the in-memory ring buffers behind `tail`, and log files.

pub mod file;
pub mod ring;
