//! Kahi: a process supervisor and container init. One binary: `kahi daemon`, `kahi ctl`,
//! `kahi run`, `kahi version`, ... This file only dispatches and turns the result into an exit code.

use kahi::cli::{self, Command};
use kahi::run;

fn main() {
    let cli = cli::parse();
    if !matches!(cli.cmd, Command::Daemon(_) | Command::Exec(_) | Command::Run(_)) {
        // A client's output is for a terminal or a pipe: `kahi ctl status | head -1` must end
        // as `cat` would when `head` goes, not with a panic or a "Broken pipe" message. The
        // daemon, `kahi run` and `kahi exec` keep SIGPIPE ignored: they must never die of it.
        run::default_sigpipe();
    }
    let code = match cli.cmd {
        Command::Daemon(args) => run::daemon(args),
        Command::Ctl(args) => run::ctl(args),
        Command::Exec(args) => run::exec(args.command),
        Command::HashPassword(args) => run::hash_password(args.cost),
        Command::Migrate(args) => run::migrate(args),
        Command::Run(args) => run::procfile(args),
        Command::Init(args) => run::init(args),
        Command::Completion(args) => run::completion(args),
        Command::Version(_) => {
            println!("kahi {}", kahi::VERSION);
            0
        }
    };
    std::process::exit(code);
}
