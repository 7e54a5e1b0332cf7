//! Programs' output: the in-memory ring buffers behind `tail`.

pub mod ring;
