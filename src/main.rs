//! Kahi: a process supervisor and container init. One binary: `kahi daemon`, `kahi ctl`,
//! `kahi version`. This file only dispatches and turns the result into an exit code.

mod activation;
mod api;
mod cli;
mod config;
mod control;
mod ctl;
mod daemon;
mod event_loop;
mod exec;
mod health;
mod http;
mod http_front;
mod logs;
mod metrics;
mod piecewise;
mod process;
mod supervisor;
mod sys;
mod timefmt;

/// The version, as `kahi version` and the API report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() {
    let cli = parse_args();
    if !matches!(cli.cmd, cli::Command::Daemon(_) | cli::Command::Exec(_)) {
        // A client's output is for a terminal or a pipe: `kahi ctl status | head -1` must end
        // as `cat` would when `head` goes, not with a panic or a "Broken pipe" message. The
        // daemon and `kahi exec` keep SIGPIPE ignored: they must never die of it.
        sys::signals::default_sigpipe();
    }
    let code = match cli.cmd {
        cli::Command::Daemon(args) => daemon::run(args),
        cli::Command::Ctl(args) => ctl::run(args),
        cli::Command::Exec(args) => exec::run(args.command),
        cli::Command::HashPassword(args) => hash_password(args.cost),
        cli::Command::Version(_) => {
            println!("kahi {VERSION}");
            0
        }
    };
    std::process::exit(code);
}

/// `kahi hash-password`: 0 and the hash on stdout, 1 on a mismatch or an unreadable password,
/// 2 on a bad cost.
fn hash_password(cost: u32) -> i32 {
    if !(4..=31).contains(&cost) {
        eprintln!("kahi: --cost must be from 4 to 31, not {cost}");
        return 2;
    }
    let password = match read_password() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kahi: {e}");
            return 1;
        }
    };
    if password.is_empty() {
        eprintln!("kahi: the password is empty");
        return 1;
    }
    match bcrypt::hash(&password, cost) {
        Ok(h) => {
            println!("{h}");
            0
        }
        Err(e) => {
            eprintln!("kahi: {e}");
            1
        }
    }
}

/// A password from the terminal, asked twice without echo, or one line of standard input.
fn read_password() -> Result<String, String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let line = |prompt: &str| -> Result<String, String> {
        let mut s = String::new();
        if stdin.is_terminal() {
            eprint!("{prompt}");
            let _ = std::io::stderr().flush();
            use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
            let saved =
                tcgetattr(&stdin).map_err(|e| format!("unable to read the terminal: {e}"))?;
            let mut quiet = saved.clone();
            quiet.local_flags.remove(LocalFlags::ECHO);
            let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
            let read = stdin.lock().read_line(&mut s);
            let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
            eprintln!();
            read.map_err(|e| format!("unable to read the password: {e}"))?;
        } else {
            stdin
                .lock()
                .read_line(&mut s)
                .map_err(|e| format!("unable to read the password: {e}"))?;
        }
        Ok(s.strip_suffix('\n')
            .map(|s| s.strip_suffix('\r').unwrap_or(s))
            .unwrap_or(&s)
            .to_string())
    };
    let first = line("Password: ")?;
    if std::io::stdin().is_terminal() && line("Again: ")? != first {
        return Err("the passwords differ".into());
    }
    Ok(first)
}

/// The command line, or exit: 0 after `--help` or `--version`, 2 (a usage error) after a bad
/// argument.
fn parse_args() -> cli::Cli {
    use argh::FromArgs;
    let args: Vec<String> =
        std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    let args = match cli::rewrite(args) {
        cli::Args::Version => {
            sys::signals::default_sigpipe();
            println!("kahi {VERSION}");
            std::process::exit(0);
        }
        cli::Args::Parse(args) => args,
    };
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    match cli::Cli::from_args(&["kahi"], &strs) {
        Ok(cli) => cli,
        Err(early) => {
            // Whatever the command, this process only prints and exits now.
            sys::signals::default_sigpipe();
            match early.status {
                Ok(()) => {
                    println!("{}", cli::help_text(&early.output));
                    std::process::exit(0);
                }
                Err(()) => {
                    eprintln!(
                        "kahi: {}\nRun kahi --help for more information.",
                        early.output.trim_end()
                    );
                    std::process::exit(2);
                }
            }
        }
    }
}
