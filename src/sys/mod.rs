//! Everything that talks to the kernel about processes: spawning, reaping, signals.
//! The event loop calls these; nothing here keeps supervisor state.

#[cfg(target_env = "musl")]
pub mod allocator;
pub mod cgroup;
pub mod detach;
pub mod environ;
pub mod leftovers;
pub mod nofile;
pub mod notify;
pub mod reap;
pub mod signals;
pub mod spawn;
pub mod start;
pub mod users;
pub mod vfork;
