//! Kahi: a process supervisor and container init. The binary (`src/main.rs`) and the fuzz
//! targets (`fuzz/`) are the only users of this library: it exposes the command line, the
//! commands the binary dispatches to, and [`fuzz`], the fuzz targets' entry points.
//! Everything else stays private.

mod activation;
mod api;
pub mod cli;
mod completion;
mod config;
mod control;
mod ctl;
mod daemon;
mod dashboard;
mod event_loop;
mod events;
mod exec;
pub mod fuzz;
mod hash_password;
mod health;
mod http;
mod http_auth;
mod http_conn;
mod http_front;
mod http_routes;
mod http_tls;
mod http_wire;
mod init;
mod logs;
mod metrics;
mod piecewise;
mod process;
mod procfile;
mod supervisor;
mod supervisord;
mod sys;
mod timefmt;
mod webhooks;
mod xmlrpc;

/// The version, as `kahi version` and the API report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commands of the binary. Each returns the process's exit status.
pub mod run {
    pub use crate::completion::run as completion;
    pub use crate::ctl::run as ctl;
    pub use crate::daemon::run as daemon;
    pub use crate::exec::run as exec;
    pub use crate::hash_password::run as hash_password;
    pub use crate::init::run as init;
    pub use crate::procfile::run::run as procfile;
    pub use crate::supervisord::cli::migrate;
    #[cfg(target_env = "musl")]
    pub use crate::sys::allocator::{Allocator, long_lived};
    pub use crate::sys::signals::{default_sigpipe, ignore_sigpipe};
    pub use crate::sys::start::{args, open_standard_fds};
}
