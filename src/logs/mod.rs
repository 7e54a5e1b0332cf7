//! Programs' output: the in-memory ring buffers behind `tail`, log files, and the console.

pub mod console;
pub mod file;
pub mod mask;
pub mod ring;
