//! XML-RPC at `/RPC2`, as supervisord serves it, so that `supervisorctl` and the tools written
//! for supervisord's API work with Kahi. One more codec on the one dispatcher, not a
//! dispatcher of its own: a call becomes the `api::Request` the control socket and the REST
//! API ask, and its reply becomes supervisord's value.
//!
//! - `codec`: the wire format, bounded (size, depth, no DTD): bytes to a call, values and
//!   faults to bytes. Pure.
//! - `methods`: supervisord's methods on Kahi's requests, its field names, state codes and
//!   faults; `introspect`: their names, signatures and help. Pure.
//! - [`Exchange`]: one HTTP request's calls (one, or a `system.multicall`'s, in order, each
//!   waiting for the one before it as supervisord's do), carried through the dispatcher as the
//!   responder of each request it asks. The loop drives it (`event_loop/respond.rs`). Pure.

mod codec;
mod exchange;
mod introspect;
mod methods;

pub use exchange::{Exchange, Next};
