//! Kahi: a process supervisor and container init. The binary (`src/main.rs`) is the only user
//! of this library: it exposes the command line and the commands the binary dispatches to.
//! Everything else stays private.

mod activation;
mod api;
pub mod cli;
mod config;
mod control;
mod ctl;
mod daemon;
mod event_loop;
mod exec;
mod hash_password;
mod health;
mod http;
mod http_front;
mod logs;
mod metrics;
mod process;
mod supervisor;
mod sys;
mod timefmt;

/// The version, as `kahi version` and the API report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commands of the binary. Each returns the process's exit status.
pub mod run {
    pub use crate::ctl::run as ctl;
    pub use crate::daemon::run as daemon;
    pub use crate::exec::run as exec;
    pub use crate::hash_password::run as hash_password;
    pub use crate::sys::signals::default_sigpipe;
}
