//! Kahi: a process supervisor and container init. One binary: `kahi daemon`, `kahi ctl`,
//! `kahi version`. This file only dispatches and turns the result into an exit code.

mod api;
mod cli;
mod config;
mod control;
mod ctl;
mod daemon;
mod event_loop;
mod logs;
mod process;
mod supervisor;
mod sys;
mod timefmt;

/// The version, as `kahi version` and the API report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() {
    let cli: cli::Cli = argh::from_env();
    let code = match cli.cmd {
        cli::Command::Daemon(args) => daemon::run(args),
        cli::Command::Ctl(args) => ctl::run(args),
        cli::Command::Version(_) => {
            println!("kahi {VERSION}");
            0
        }
    };
    std::process::exit(code);
}
