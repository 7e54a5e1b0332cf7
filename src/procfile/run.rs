//! `kahi run`: a Procfile's stack in the foreground, as `foreman start` runs it, on an ordinary
//! Kahi daemon (its control socket next to the Procfile, so `kahi ctl` works against it); and
//! `kahi migrate --from procfile`, the same stack written as a `kahi.toml`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::{Options, Stack};
use crate::cli::{DaemonArgs, MigrateArgs, RunArgs};
use crate::config::ConfigError;
use crate::logs::console::{COLOURS, Prefix};

/// Exit status when the Procfile, a `.env` file or an option is refused (the daemon's, for a
/// bad configuration).
const REFUSED: i32 = crate::daemon::exit::CONFIG;

/// The control socket's name, in the Procfile's directory.
pub const SOCKET: &str = ".kahi-run.sock";

/// `-e a,b -e c`: every file, in order.
fn env_files(given: &[String]) -> Vec<PathBuf> {
    given.iter().flat_map(|e| e.split(',')).filter(|e| !e.is_empty()).map(PathBuf::from).collect()
}

/// Prints `errors` and says that nothing was done.
fn refused(errors: &[ConfigError], what: &str) -> i32 {
    for e in errors {
        eprintln!("{e}");
    }
    eprintln!("kahi: {} error(s); {what}", errors.len());
    REFUSED
}

/// The environment's PORT, foreman's base port when neither -p nor a `.env` file gives one.
fn env_port() -> Option<String> {
    std::env::var("PORT").ok()
}

/// `kahi run`: 2 when the Procfile, a `.env` file or an option is refused; else the exit
/// status of the process whose exit ended the stack, or, after Ctrl-C or SIGTERM, 0 (1 when a
/// process had to be killed with SIGKILL).
pub fn run(args: RunArgs) -> i32 {
    let procfile = match (args.procfile, args.file) {
        (Some(_), Some(_)) => {
            eprintln!("kahi: give the Procfile once: as an argument or with -f");
            return REFUSED;
        }
        (Some(p), None) | (None, Some(p)) => p,
        (None, None) => PathBuf::from("Procfile"),
    };
    let options = Options {
        env_files: env_files(&args.env),
        formation: args.formation,
        port: args.port,
        timeout: args.timeout,
    };
    crate::daemon::prepare(args.verbose);
    let stack = match Stack::read(&procfile, &options, env_port().as_deref()) {
        Ok(s) => s,
        Err(errors) => return refused(&errors, "nothing was started"),
    };
    let socket = args.socket.unwrap_or_else(|| stack.root.join(SOCKET));
    let socket = std::path::absolute(&socket).unwrap_or(socket);
    let mut config = match load(&stack, Some(&socket)) {
        Ok(c) => c,
        Err(errors) => return refused(&errors, "nothing was started"),
    };
    let colour = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    config.logging.prefix = Some(prefix(&stack, colour));
    let daemon = DaemonArgs {
        config: None,
        verbose: args.verbose,
        check: false,
        json: false,
        format: String::new(),
        daemonize: false,
        pidfile: None,
        logfile: None,
    };
    crate::daemon::serve(config, daemon)
}

/// The stack's TOML loaded as Kahi loads any: an error is told at its Procfile line.
fn load(stack: &Stack, socket: Option<&Path>) -> Result<crate::config::Config, Vec<ConfigError>> {
    let out = stack.toml(socket);
    let env = |name: &str| std::env::var(name).ok();
    let files = [stack.procfile.clone()];
    let mut config = crate::config::load_text(&stack.procfile, &out.text, &env)
        .map_err(|errors| errors.into_iter().map(|e| out.place(e, &files)).collect::<Vec<_>>())?;
    config.format = crate::config::Format::Procfile;
    Ok(config)
}

/// Names padded to the longest; a colour for each process in turn, when `colour`.
fn prefix(stack: &Stack, colour: bool) -> Prefix {
    let width = stack.processes.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let colours = if colour {
        stack
            .processes
            .iter()
            .zip(COLOURS.iter().cycle())
            .map(|(p, c)| (p.name.clone(), *c))
            .collect()
    } else {
        Default::default()
    };
    Prefix { width, colours }
}

/// `kahi migrate --from procfile Procfile [-o kahi.toml] [-m ...] [-e ...] [-p ...]`: 0
/// written, 2 refused.
pub fn migrate(args: MigrateArgs) -> i32 {
    let options = Options {
        env_files: env_files(&args.env),
        formation: args.formation,
        port: args.port,
        timeout: None,
    };
    let stack = match Stack::read(&args.file, &options, env_port().as_deref()) {
        Ok(s) => s,
        Err(errors) => return refused(&errors, "nothing was written"),
    };
    // What the daemon would refuse, refused here.
    if let Err(errors) = load(&stack, None) {
        return refused(&errors, "nothing was written");
    }
    if args.check {
        return 0;
    }
    crate::supervisord::cli::write(args.output.as_deref(), &stack.toml(None).text)
}
