//! XML-RPC at `/RPC2`, as supervisord serves it.
//!
//! - `codec`: the wire format, bounded (size, depth, no DTD): bytes to a call, values and
//!   faults to bytes. Pure.

// Its users come with the methods.
#[allow(dead_code)]
mod codec;
