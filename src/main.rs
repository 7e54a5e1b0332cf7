//! Kahi: a process supervisor and container init. One binary: `kahi daemon`, `kahi ctl`,
//! `kahi version`. This file only dispatches and turns the result into an exit code.

mod api;
mod cli;
mod config;
mod control;
mod ctl;
mod daemon;
mod event_loop;
mod http;
mod logs;
mod metrics;
mod process;
mod supervisor;
mod sys;
mod timefmt;

/// The version, as `kahi version` and the API report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() {
    let cli = parse_args();
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

/// The command line, or exit: 0 after `--help`, 2 (a usage error) after a bad argument.
fn parse_args() -> cli::Cli {
    use argh::FromArgs;
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    match cli::Cli::from_args(&["kahi"], strs.get(1..).unwrap_or_default()) {
        Ok(cli) => cli,
        Err(early) => match early.status {
            Ok(()) => {
                println!("{}", early.output);
                std::process::exit(0);
            }
            Err(()) => {
                eprintln!(
                    "kahi: {}\nRun kahi --help for more information.",
                    early.output.trim_end()
                );
                std::process::exit(2);
            }
        },
    }
}
