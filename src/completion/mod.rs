//! `kahi completion bash|zsh|fish`: the completion scripts, made from the table of commands and
//! options that argh reads the command line with and prints as `--help` ([`ArgsInfo`] on the
//! definitions of src/cli.rs), so a command or an option added there is completed without
//! another edit. What this module adds is what the table cannot say: what completes a value
//! ([`values`]: files, process names from the daemon, a fixed list of words).

mod bash;
mod fish;
mod zsh;

use argh::{ArgsInfo, CommandInfoWithArgs, FlagInfoKind, Optionality};

use crate::cli::{Cli, CompletionArgs};

/// The shells `kahi completion` writes for.
pub const SHELLS: &[&str] = &["bash", "zsh", "fish"];

/// Prints the script of `args.shell`: 0, or 2 (a usage error) for a shell it does not know.
pub fn run(args: CompletionArgs) -> i32 {
    match script(&args.shell) {
        Some(text) => {
            print!("{text}");
            0
        }
        None => {
            eprintln!("kahi completion: unknown shell {:?}: bash, zsh or fish", args.shell);
            2
        }
    }
}

/// The completion script for a shell, or None for a shell it does not know.
pub fn script(shell: &str) -> Option<String> {
    let table = table();
    match shell {
        "bash" => Some(bash::script(&table)),
        "zsh" => Some(zsh::script(&table)),
        "fish" => Some(fish::script(&table)),
        _ => None,
    }
}

/// What completes a value: of an option, or of a positional argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Values {
    /// Anything: nothing is offered.
    Nothing,
    Files,
    /// One process name, from the daemon.
    Process,
    /// Process names, GROUP:* and all.
    Processes,
    /// A command (from PATH) first, then files: `kahi exec`'s command line.
    CommandLine,
    /// One of a fixed list, with the list's name (a word).
    Words(&'static str, &'static [&'static str]),
}

const SIGNALS: &[&str] = &[
    "HUP", "INT", "QUIT", "KILL", "TERM", "USR1", "USR2", "ALRM", "CONT", "STOP", "TSTP", "WINCH",
    "ABRT", "PWR",
];
const EVENT_TYPES: &[&str] = &[
    "state",
    "health",
    "update",
    "shutdown",
    "EVENT",
    "PROCESS_STATE",
    "PROCESS_STATE_FATAL",
    "PROCESS_STATE_EXITED",
    "PROCESS_LOG",
    "PROCESS_GROUP",
    "SUPERVISOR_STATE_CHANGE",
    "TICK",
    "TICK_5",
    "TICK_60",
    "TICK_3600",
    "KAHI_HEALTH",
    "KAHI_DEPENDENCY",
    "KAHI_UPDATE",
];

/// What completes the value named `arg` (an option's long name without its dashes, or a
/// positional argument's name) of the command at `path`. Names not listed take anything.
fn values(path: &[&str], arg: &str) -> Values {
    match arg {
        "config" | "pidfile" | "logfile" | "output" | "socket" | "file" | "procfile" | "env" => {
            Values::Files
        }
        "from" => Values::Words("from", &["supervisord", "procfile"]),
        "format" => Values::Words("format", &["auto", "toml", "supervisord"]),
        "types" => Values::Words("types", EVENT_TYPES),
        "shell" => Values::Words("shell", SHELLS),
        "stream" => Values::Words("stream", &["stdout", "stderr"]),
        "signal" => Values::Words("signal", SIGNALS),
        "names" if path.first() == Some(&"ctl") => Values::Processes,
        "name" if path.first() == Some(&"ctl") => Values::Process,
        "command" if path == ["exec"] => Values::CommandLine,
        _ => Values::Nothing,
    }
}

/// An option of a command.
#[derive(Debug)]
struct Flag {
    /// With its dashes: `--config`.
    long: String,
    /// With its dash: `-c`.
    short: Option<String>,
    /// What completes its value; None for a switch.
    value: Option<Values>,
    /// Whether it may be given more than once (`-vv`).
    repeats: bool,
    help: String,
}

impl Flag {
    /// Its spellings: the short one first.
    fn spellings(&self) -> Vec<&str> {
        self.short.iter().map(String::as_str).chain([self.long.as_str()]).collect()
    }
}

#[derive(Debug)]
struct Positional {
    name: String,
    values: Values,
    /// Whether it takes every argument from here on (a Vec).
    repeats: bool,
    /// Whether what follows it is not Kahi's to read: `kahi exec CMD -h`.
    greedy: bool,
}

/// One command of the table: `kahi`, `kahi daemon`, `kahi ctl`, `kahi ctl tail`...
#[derive(Debug)]
struct Command {
    /// The words after `kahi`: empty for `kahi` itself.
    path: Vec<&'static str>,
    flags: Vec<Flag>,
    positionals: Vec<Positional>,
    /// Its subcommands: name and a one-line description.
    subcommands: Vec<(&'static str, String)>,
}

impl Command {
    /// The words after `kahi`, joined with spaces.
    fn key(&self) -> String {
        self.path.join(" ")
    }

    /// The options that take a value.
    fn valued(&self) -> impl Iterator<Item = (&Flag, Values)> {
        self.flags.iter().filter_map(|f| f.value.map(|v| (f, v)))
    }

    /// Whether a positional argument takes the rest of the line.
    fn greedy(&self) -> bool {
        self.positionals.iter().any(|p| p.greedy)
    }
}

/// Every command of `kahi`, each before its subcommands.
fn table() -> Vec<Command> {
    let mut out = Vec::new();
    walk(Vec::new(), Cli::get_args_info(), &mut out);
    out
}

fn walk(path: Vec<&'static str>, info: CommandInfoWithArgs, out: &mut Vec<Command>) {
    let mut flags: Vec<Flag> = info
        .flags
        .iter()
        .filter(|f| !f.hidden)
        .map(|f| {
            let long = f.long.trim_start_matches('-');
            Flag {
                long: f.long.to_string(),
                short: f.short.map(|c| format!("-{c}")),
                value: match f.kind {
                    FlagInfoKind::Switch => None,
                    FlagInfoKind::Option { .. } => Some(values(&path, long)),
                },
                repeats: f.optionality == Optionality::Repeating,
                help: brief(f.description),
            }
        })
        .collect();
    if path.is_empty() {
        flags.push(Flag {
            long: "--version".into(),
            short: Some("-V".into()),
            value: None,
            repeats: false,
            help: "print the version and exit".into(),
        });
    }
    let positionals = info
        .positionals
        .iter()
        .filter(|p| !p.hidden)
        .map(|p| Positional {
            name: p.name.to_string(),
            values: values(&path, p.name),
            repeats: matches!(p.optionality, Optionality::Repeating | Optionality::Greedy),
            greedy: p.optionality == Optionality::Greedy,
        })
        .collect();
    let subcommands =
        info.commands.iter().map(|s| (s.name, brief(s.command.description))).collect();
    out.push(Command { path: path.clone(), flags, positionals, subcommands });
    for sub in info.commands {
        let mut p = path.clone();
        p.push(sub.name);
        walk(p, sub.command, out);
    }
}

/// The first sentence of a description, on one line, without its parenthesised asides when
/// long: what fits a menu.
fn brief(description: &str) -> String {
    let text = description.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut text = text.split(". ").next().unwrap_or("").trim_end_matches('.').to_string();
    while text.len() > 60 {
        let Some(open) = text.find(" (") else { break };
        let Some(close) = text[open..].find(')') else { break };
        text.replace_range(open..open + close + 1, "");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_every_command_of_help() {
        let table = table();
        let keys: Vec<String> = table.iter().map(Command::key).collect();
        for key in ["", "daemon", "ctl", "ctl tail", "exec", "completion", "migrate"] {
            assert!(keys.contains(&key.to_string()), "{key:?} not in {keys:?}");
        }
        let tail = table.iter().find(|c| c.key() == "ctl tail").unwrap();
        let spellings: Vec<&str> = tail.flags.iter().flat_map(Flag::spellings).collect();
        assert!(spellings.contains(&"-f") && spellings.contains(&"--bytes"), "{spellings:?}");
        assert_eq!(tail.positionals[0].values, Values::Process);
        let exec = table.iter().find(|c| c.key() == "exec").unwrap();
        assert!(exec.greedy());
    }

    #[test]
    fn briefs_are_one_sentence_without_long_asides() {
        assert_eq!(brief("Show the state.\nExit status: 0."), "Show the state");
        assert_eq!(
            brief(
                "Run the supervisor (in the foreground, unless --daemonize): start the configured programs and keep them running."
            ),
            "Run the supervisor: start the configured programs and keep them running"
        );
        assert_eq!(brief("a short one (with an aside)"), "a short one (with an aside)");
    }
}
