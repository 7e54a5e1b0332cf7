//! Programs' output: the in-memory ring buffers behind `tail`, log files, and the console.

pub mod ansi;
pub mod capture;
pub mod console;
pub mod daemon_log;
pub mod file;
pub mod mask;
pub mod pipeline;
pub mod ring;
pub mod syslog;
