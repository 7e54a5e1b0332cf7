//! Soak: the real `kahi` under hours-of-production loads compressed into minutes. Each
//! scenario runs a load for a while, samples the canary throughout (a `sleep` killed with
//! SIGKILL must be RUNNING again within [`common::CANARY_BOUND`] of its end), and checks after
//! it: no zombie the daemon left unreaped, the daemon's fds back to what they were, its memory
//! under a stated bound, and every program in the state it should be.
//!
//! `cargo test --test soak` (and so `make test`, and CI) runs the short version, about 15 s a
//! scenario. `make soak` runs the long one: `KAHI_SOAK_SECS=600` makes the crash loop last ten
//! minutes and the other timed scenarios a sixth of that, and `KAHI_SOAK_PROGRAMS=10000` starts
//! and stops ten thousand programs. The scenarios run one at a time, whatever the test
//! threads: each measures latency, and the others' load would be its noise.

#[path = "../util.rs"]
mod util;

mod common;

mod clients;
mod crash_loop;
mod disk;
mod flood;
mod many;
mod reload;
