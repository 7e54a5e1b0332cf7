//! The command line: `kahi daemon`, `kahi ctl ...`, `kahi exec`, `kahi hash-password`,
//! `kahi migrate`, `kahi run`, `kahi init`, `kahi completion`, `kahi version`.
//! Definitions, and the few spellings argh does not know (`-h`, `-V`, `--version`), mapped to
//! the ones it does before it reads the arguments; [`parse`] reads them.

use std::path::PathBuf;

use argh::{ArgsInfo, FromArgs};

/// Kahi: a process supervisor and container init.
#[derive(FromArgs, ArgsInfo, Debug)]
pub struct Cli {
    #[argh(subcommand)]
    pub cmd: Command,
}

#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand)]
pub enum Command {
    Daemon(DaemonArgs),
    Ctl(CtlArgs),
    Exec(ExecArgs),
    HashPassword(HashPasswordArgs),
    Migrate(MigrateArgs),
    Run(RunArgs),
    Init(InitArgs),
    Completion(CompletionArgs),
    Version(VersionArgs),
}

/// Write a supervisord configuration (and what its [include] reads), or a Procfile, as Kahi's
/// TOML, each table commented with its source line; what cannot be mapped is told on stderr
/// with its place. Exit status: 0 written, 1 with --check when something could not be mapped,
/// 2 refused.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "migrate")]
pub struct MigrateArgs {
    /// the supervisord configuration (supervisord.conf), or the Procfile
    #[argh(positional)]
    pub file: PathBuf,
    /// write the TOML to this file instead of stdout
    #[argh(option, short = 'o')]
    pub output: Option<PathBuf>,
    /// write nothing; exit 1 when anything could not be mapped
    #[argh(switch)]
    pub check: bool,
    /// what FILE is: supervisord (the default) or procfile
    #[argh(option, default = "String::from(\"supervisord\")")]
    pub from: String,
    /// with --from procfile: how many of each process type, as kahi run's -m
    #[argh(option, short = 'm')]
    pub formation: Option<String>,
    /// with --from procfile: an environment file, as kahi run's -e
    #[argh(option, short = 'e')]
    pub env: Vec<String>,
    /// with --from procfile: the base port, as kahi run's -p
    #[argh(option, short = 'p')]
    pub port: Option<u32>,
}

/// Run the processes of a Procfile in the foreground, as foreman start does: each with its
/// PORT, every line prefixed with its process's name; when one process exits, or on Ctrl-C,
/// stop them all. Exit status: that process's, or 0 after Ctrl-C; 2 when the Procfile is
/// refused. `kahi ctl -s .kahi-run.sock` controls the stack meanwhile.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "run")]
pub struct RunArgs {
    /// the Procfile (default: ./Procfile)
    #[argh(positional)]
    pub procfile: Option<PathBuf>,
    /// the Procfile, as foreman's -f
    #[argh(option, short = 'f')]
    pub file: Option<PathBuf>,
    /// an environment file of KEY=VALUE lines; repeat or separate with commas (default: .env
    /// next to the Procfile, when there is one)
    #[argh(option, short = 'e')]
    pub env: Vec<String>,
    /// how many of each process type: web=2,worker=3 (types not named: none; all=N: every
    /// type not named); default all=1
    #[argh(option, short = 'm')]
    pub formation: Option<String>,
    /// the base port: PORT is base + 100 per type before it + the instance - 1 (default:
    /// PORT from the .env files or the environment, else 5000)
    #[argh(option, short = 'p')]
    pub port: Option<u32>,
    /// seconds a process has to stop after SIGTERM before SIGKILL (default 5)
    #[argh(option, short = 't')]
    pub timeout: Option<u32>,
    /// the control socket (default: .kahi-run.sock next to the Procfile)
    #[argh(option, short = 's')]
    pub socket: Option<PathBuf>,
    /// log more: -v for debug, -vv for trace
    #[argh(switch, short = 'v')]
    pub verbose: u8,
}

/// Write a commented starter configuration (kahi.toml, or the file of -o); an existing file
/// is never overwritten (exit 1).
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "init")]
pub struct InitArgs {
    /// for a container: the console on, the HTTP probes on 0.0.0.0:9876 (the rest of the API
    /// behind a user whose password is printed once), a critical main program
    #[argh(switch)]
    pub container: bool,
    /// write to this file instead of kahi.toml (- for standard output)
    #[argh(option, short = 'o')]
    pub output: Option<PathBuf>,
}

/// Print the completion script of a shell (bash, zsh or fish), made from the commands and
/// options this help lists.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "completion")]
pub struct CompletionArgs {
    /// the shell: bash, zsh or fish
    #[argh(positional)]
    pub shell: String,
}

/// Run one command as a container's init, as tini does, with no configuration: pass every
/// signal on to it, reap orphans, and exit with its status (128 + N when signal N killed it).
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "exec")]
pub struct ExecArgs {
    /// the command and its arguments (put -- first when the command starts with a dash)
    #[argh(positional, greedy)]
    pub command: Vec<String>,
}

/// Print the bcrypt hash of a password for [[server.http.users]]: read from the terminal
/// (twice, without echo) or from standard input (one line).
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "hash-password")]
pub struct HashPasswordArgs {
    /// the bcrypt cost, 4 to 31 (default 12: about a quarter of a second)
    #[argh(option, default = "12")]
    pub cost: u32,
}

/// Run the supervisor (in the foreground, unless --daemonize): start the configured programs
/// and keep them running.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "daemon")]
pub struct DaemonArgs {
    /// the configuration file (default: $KAHI_CONFIG, else /etc/kahi/kahi.toml)
    #[argh(option, short = 'c')]
    pub config: Option<PathBuf>,
    /// log more: -v for debug, -vv for trace (RUST_LOG overrides)
    #[argh(switch, short = 'v')]
    pub verbose: u8,
    /// check the configuration, print every error, and exit
    #[argh(switch)]
    pub check: bool,
    /// with --check: print the resolved process table as JSON (group, name, command, user,
    /// priority, autostart)
    #[argh(switch)]
    pub json: bool,
    /// the configuration's format: auto (by its content, the default), toml, or supervisord
    #[argh(option, default = "String::from(\"auto\")")]
    pub format: String,
    /// detach: run in the background, in a new session; return once the control socket is
    /// ready (0) or the start failed (1, with the error)
    #[argh(switch)]
    pub daemonize: bool,
    /// write the daemon's pid to this file once the control socket is ready; removed at exit
    #[argh(option)]
    pub pidfile: Option<PathBuf>,
    /// with --daemonize: append the daemon's own stdout and stderr to this file instead of
    /// sending them to /dev/null
    #[argh(option)]
    pub logfile: Option<PathBuf>,
}

/// Control a running daemon over its Unix socket.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "ctl")]
pub struct CtlArgs {
    /// the control socket (default: from -c, else $KAHI_SOCKET, else the daemon's default)
    #[argh(option, short = 's')]
    pub socket: Option<PathBuf>,
    /// read the socket path from this configuration file
    #[argh(option, short = 'c')]
    pub config: Option<PathBuf>,
    #[argh(subcommand)]
    pub cmd: CtlCommand,
}

#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand)]
pub enum CtlCommand {
    Status(StatusArgs),
    Start(StartArgs),
    Stop(StopArgs),
    Restart(RestartArgs),
    Signal(SignalArgs),
    Pid(PidArgs),
    Tail(TailArgs),
    Maintail(MaintailArgs),
    Events(EventsArgs),
    Clear(ClearArgs),
    Stdin(StdinArgs),
    Reread(RereadArgs),
    Update(UpdateArgs),
    Add(AddArgs),
    Remove(RemoveArgs),
    Reload(ReloadArgs),
    Avail(AvailArgs),
    Fg(FgArgs),
    Shutdown(ShutdownArgs),
    Version(CtlVersionArgs),
    Sendcomm(SendcommArgs),
}

/// Show the state of every process, or of the named ones. Exit status: 0 none is down, 3 some
/// is STOPPED, EXITED, FATAL or UNKNOWN, 4 a name is unknown or the daemon cannot be reached.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "status")]
pub struct StatusArgs {
    /// print JSON: an array of objects
    #[argh(switch)]
    pub json: bool,
    /// NAME, GROUP:NAME, GROUP:* or all
    #[argh(positional)]
    pub names: Vec<String>,
}

/// Start processes and wait until they are RUNNING (or have failed).
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "start")]
pub struct StartArgs {
    /// return at once instead of waiting for the outcome
    #[argh(switch)]
    pub no_wait: bool,
    /// NAME, GROUP:NAME, GROUP:* or all
    #[argh(positional)]
    pub names: Vec<String>,
}

/// Stop processes and wait until they are stopped.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "stop")]
pub struct StopArgs {
    /// return at once instead of waiting for the outcome
    #[argh(switch)]
    pub no_wait: bool,
    /// NAME, GROUP:NAME, GROUP:* or all
    #[argh(positional)]
    pub names: Vec<String>,
}

/// Stop processes, then start them again.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "restart")]
pub struct RestartArgs {
    /// return at once instead of waiting for the outcome
    #[argh(switch)]
    pub no_wait: bool,
    /// NAME, GROUP:NAME, GROUP:* or all
    #[argh(positional)]
    pub names: Vec<String>,
}

/// Send a signal to processes.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "signal")]
pub struct SignalArgs {
    /// the signal: a name (HUP, SIGHUP) or a number
    #[argh(positional)]
    pub signal: String,
    /// NAME, GROUP:NAME, GROUP:* or all
    #[argh(positional)]
    pub names: Vec<String>,
}

/// Print the daemon's pid, or each named process's, one a line (0 when it is not running:
/// exit status 7); `all` prints every process's.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "pid")]
pub struct PidArgs {
    /// processes, or all
    #[argh(positional)]
    pub names: Vec<String>,
}

/// Print the end of a process's output (-NUM: its last NUM bytes, as supervisorctl's
/// tail -NUM); -f keeps following it.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "tail")]
pub struct TailArgs {
    /// keep printing new output until interrupted
    #[argh(switch, short = 'f')]
    pub follow: bool,
    /// how many bytes from the end (default 1600); -NUM says the same
    #[argh(option, short = 'n')]
    pub bytes: Option<u64>,
    /// the process
    #[argh(positional)]
    pub name: String,
    /// stdout (default) or stderr
    #[argh(positional)]
    pub stream: Option<String>,
}

/// Print the end of the daemon's own log (-NUM: its last NUM bytes); -f keeps following it.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "maintail")]
pub struct MaintailArgs {
    /// keep printing new lines until interrupted
    #[argh(switch, short = 'f')]
    pub follow: bool,
    /// how many bytes from the end (default 1600); -NUM says the same
    #[argh(option, short = 'n')]
    pub bytes: Option<u64>,
}

/// Follow Kahi's events, one line each (or JSON lines), until interrupted or the daemon
/// exits.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "events")]
pub struct EventsArgs {
    /// the event types, comma-separated: supervisord's names (PROCESS_STATE_FATAL, TICK_5,
    /// and the abstract PROCESS_STATE, TICK, EVENT, ...), Kahi's (KAHI_HEALTH, ...), or
    /// state, health, update, shutdown (default: all)
    #[argh(option)]
    pub types: Option<String>,
    /// print each event as one JSON object per line
    #[argh(switch)]
    pub json: bool,
}

/// Empty the in-memory output buffers of processes.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "clear")]
pub struct ClearArgs {
    /// NAME, GROUP:NAME, GROUP:* or all
    #[argh(positional)]
    pub names: Vec<String>,
}

/// Write TEXT (or, without it, standard input) to the stdin pipe of a process with
/// stdin_pipe = true.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "stdin")]
pub struct StdinArgs {
    /// NAME or GROUP:NAME: one process
    #[argh(positional)]
    pub name: String,
    /// the text to write, as it is (add a newline with $'...\n'); default: read stdin
    #[argh(positional)]
    pub text: Option<String>,
}

/// Publish a REMOTE_COMMUNICATION event to the event listeners that take it (supervisord's
/// sendRemoteCommEvent): its payload is `type:TYPE`, a newline, then DATA.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "sendcomm")]
pub struct SendcommArgs {
    /// the event's type: one word, without colons
    #[argh(positional)]
    pub kind: String,
    /// the event's data, as it is; default: read stdin
    #[argh(positional)]
    pub data: Option<String>,
}

/// Read the configuration again and show what changed, without applying it.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "reread")]
pub struct RereadArgs {}

/// Read the configuration again and apply it: add, remove and restart only what changed;
/// with GROUP names, only in those groups (all: everything).
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "update")]
pub struct UpdateArgs {
    /// groups, or all (the default)
    #[argh(positional)]
    pub groups: Vec<String>,
}

/// Start groups that the configuration file has and the daemon does not yet (see reread).
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "add")]
pub struct AddArgs {
    /// groups of the configuration file
    #[argh(positional)]
    pub groups: Vec<String>,
}

/// Forget groups whose processes are all stopped (those gone from the file, after reread).
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "remove")]
pub struct RemoveArgs {
    /// groups
    #[argh(positional)]
    pub groups: Vec<String>,
}

/// Read the configuration again and restart every program with it, as supervisord's restart.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "reload")]
pub struct ReloadArgs {}

/// Attach the terminal to a running process: its output as it comes, each line typed to its
/// stdin (stdin_pipe = true); Ctrl-C or Ctrl-D detaches, leaving it running.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "fg")]
pub struct FgArgs {
    /// NAME or GROUP:NAME: one process
    #[argh(positional)]
    pub name: String,
}

/// List every configured program.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "avail")]
pub struct AvailArgs {
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

/// Stop every program and the daemon.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "shutdown")]
pub struct ShutdownArgs {}

/// Print the daemon's version.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "version")]
pub struct CtlVersionArgs {}

/// Print this program's version.
#[derive(FromArgs, ArgsInfo, Debug)]
#[argh(subcommand, name = "version")]
pub struct VersionArgs {}

/// The arguments after `kahi`, once the spellings argh does not know are mapped.
#[derive(Debug, PartialEq, Eq)]
pub enum Args {
    /// `kahi --version` or `kahi -V`.
    Version,
    /// What argh is to read.
    Parse(Vec<String>),
}

/// Maps `-V` and `--version` (as the first argument) to the version, `-h` to `--help`
/// wherever argh reads options: everywhere but after `--`, and in `kahi exec` only right after
/// `exec`, since the command and its arguments are not Kahi's (`kahi exec -- ls -h`,
/// `kahi exec ls -h`); and supervisorctl's `-NUM` of `kahi ctl tail` and `maintail` to
/// `-n NUM`.
pub fn rewrite(args: Vec<String>) -> Args {
    if matches!(args.first().map(String::as_str), Some("--version" | "-V")) {
        return Args::Version;
    }
    let exec = args.first().is_some_and(|a| a == "exec");
    let tail = tail_command(&args);
    let mut verbatim = false;
    let mut out = Vec::with_capacity(args.len());
    for (i, a) in args.into_iter().enumerate() {
        if exec && i >= 1 && (i > 1 || a != "-h") {
            verbatim = true;
        }
        if a == "--" {
            verbatim = true;
        }
        let count =
            a.strip_prefix('-').filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        match count {
            Some(n) if !verbatim && tail.is_some_and(|t| i > t) => {
                out.push("-n".to_string());
                out.push(n.to_string());
            }
            _ => out.push(if a == "-h" && !verbatim { "--help".to_string() } else { a }),
        }
    }
    Args::Parse(out)
}

/// Where `tail` or `maintail` is in `kahi ctl [-s SOCKET] [-c FILE] tail ...`.
fn tail_command(args: &[String]) -> Option<usize> {
    if args.first().map(String::as_str) != Some("ctl") {
        return None;
    }
    let mut i = 1;
    while let Some(a) = args.get(i) {
        match a.as_str() {
            "-s" | "--socket" | "-c" | "--config" => i += 2,
            "tail" | "maintail" => return Some(i),
            _ => return None,
        }
    }
    None
}

/// argh's usage text, with the short spellings added to its options.
pub fn help_text(usage: &str) -> String {
    // argh pads the option column to 20 characters.
    const ARGH_HELP: &str = "  --help, help      display usage information";
    let mut help = "  -h, --help, help  display usage information".to_string();
    if usage.starts_with("Usage: kahi <command>") {
        help.push_str("\n  -V, --version     print the version and exit");
    }
    usage.replace(ARGH_HELP, &help)
}

/// The command line from the arguments after the program's name, or exit: 0 after `--help` or
/// `--version`, 2 (a usage error) after a bad argument.
pub fn parse(args: Vec<std::ffi::OsString>) -> Cli {
    let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let args = match rewrite(args) {
        Args::Version => {
            crate::sys::signals::default_sigpipe();
            println!("kahi {}", crate::VERSION);
            std::process::exit(0);
        }
        Args::Parse(args) => args,
    };
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    match Cli::from_args(&["kahi"], &strs) {
        Ok(cli) => cli,
        Err(early) => {
            // Whatever the command, this process only prints and exits now.
            crate::sys::signals::default_sigpipe();
            match early.status {
                Ok(()) => {
                    println!("{}", help_text(&early.output));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        rewrite(args.iter().map(|a| a.to_string()).collect())
    }

    fn same(args: &[&str]) -> Args {
        Args::Parse(args.iter().map(|a| a.to_string()).collect())
    }

    #[test]
    fn version_and_help_have_their_short_spellings() {
        assert_eq!(parse(&["--version"]), Args::Version);
        assert_eq!(parse(&["-V"]), Args::Version);
        assert_eq!(parse(&["-h"]), same(&["--help"]));
        assert_eq!(parse(&["daemon", "-h"]), same(&["daemon", "--help"]));
        assert_eq!(parse(&["ctl", "-h"]), same(&["ctl", "--help"]));
        assert_eq!(
            parse(&["ctl", "tail", "-f", "web", "-h"]),
            same(&["ctl", "tail", "-f", "web", "--help"])
        );
        assert_eq!(parse(&["exec", "-h"]), same(&["exec", "--help"]));
        // Only the first argument: `kahi daemon -V` is not Kahi's version.
        assert_eq!(parse(&["daemon", "-V"]), same(&["daemon", "-V"]));
    }

    #[test]
    fn the_arguments_of_a_command_are_left_alone() {
        assert_eq!(parse(&["exec", "--", "ls", "-h"]), same(&["exec", "--", "ls", "-h"]));
        assert_eq!(parse(&["exec", "ls", "-h"]), same(&["exec", "ls", "-h"]));
        assert_eq!(parse(&["exec", "--", "-h"]), same(&["exec", "--", "-h"]));
        assert_eq!(parse(&["exec", "sh", "-c", "x", "-V"]), same(&["exec", "sh", "-c", "x", "-V"]));
        assert_eq!(
            parse(&["ctl", "stdin", "web", "--", "-h"]),
            same(&["ctl", "stdin", "web", "--", "-h"])
        );
    }

    #[test]
    fn supervisorctls_byte_count_is_an_option() {
        assert_eq!(
            parse(&["ctl", "tail", "-200", "web"]),
            same(&["ctl", "tail", "-n", "200", "web"])
        );
        assert_eq!(
            parse(&["ctl", "-s", "/x", "tail", "-f", "-5", "web", "stderr"]),
            same(&["ctl", "-s", "/x", "tail", "-f", "-n", "5", "web", "stderr"])
        );
        assert_eq!(parse(&["ctl", "maintail", "-300"]), same(&["ctl", "maintail", "-n", "300"]));
        // Elsewhere a negative number is left alone: a signal, a program's argument.
        assert_eq!(parse(&["ctl", "signal", "-9", "web"]), same(&["ctl", "signal", "-9", "web"]));
        assert_eq!(parse(&["exec", "tail", "-5"]), same(&["exec", "tail", "-5"]));
        assert_eq!(parse(&["ctl", "stdin", "tail", "-5"]), same(&["ctl", "stdin", "tail", "-5"]));
        assert_eq!(parse(&["ctl", "tail", "--", "-5"]), same(&["ctl", "tail", "--", "-5"]));
    }

    #[test]
    fn help_lists_the_short_spellings() {
        let top = "Usage: kahi <command> [<args>]\n\nOptions:\n  --help, help      display usage information\n";
        let text = help_text(top);
        assert!(text.contains("  -h, --help, help  display usage information\n"), "{text}");
        assert!(text.contains("  -V, --version     print the version"), "{text}");
        let sub =
            "Usage: kahi ctl tail\n\nOptions:\n  --help, help      display usage information\n";
        let text = help_text(sub);
        assert!(text.contains("-h, --help") && !text.contains("--version"), "{text}");
    }
}
