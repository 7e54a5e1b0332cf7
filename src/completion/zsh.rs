//! The zsh script: one function per command that has subcommands, each an `_arguments` call
//! made from the table, and a function that asks the daemon for process names.

use std::fmt::Write;

use super::{Command, Flag, Positional, Values};

const HEAD: &str = r#"#compdef kahi
# Zsh completion for kahi, written by `kahi completion zsh` from the commands and options that
# `kahi --help` lists. Install as _kahi in a directory of $fpath, for example
# /usr/local/share/zsh/site-functions, then run compinit again (or start a new shell).
#
# Process names come from the running daemon: `kahi ctl [-s SOCKET] [-c CONFIG] status
# --json`, with the -s and -c of the line being completed.

# Process names; with the argument "many" (commands that take several), GROUP:* and all
# too. The other arguments are compadd's, from _arguments.
(( $+functions[_kahi_processes] )) ||
_kahi_processes() {
  local -a lines names groups
  local n many=${argv[(Ie)many]}
  (( many )) && argv[many]=()
  lines=( ${(f)"$(_call_program processes ${(q)_kahi_bin} ctl ${(q)_kahi_ctl_opts} \
    status --json 2>/dev/null </dev/null | command grep -o '"name": *"[^"]*"')"} )
  for n in $lines; do
    n=${${n#\"name\":*\"}%\"}
    names+=( $n )
    (( many )) && [[ $n == *:* ]] && groups+=( "${n%%:*}:*" )
  done
  (( many )) && groups+=( all )
  names+=( ${(u)groups} )
  compadd "$@" -a names
}
"#;

/// A word in single quotes.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A description for `[...]` in a spec of _arguments.
fn bracket(s: &str) -> String {
    s.replace('[', r"\[").replace(']', r"\]")
}

fn action(v: Values) -> String {
    match v {
        Values::Nothing => " ".into(),
        Values::Files => "_files".into(),
        Values::Process => "_kahi_processes".into(),
        Values::Processes => "_kahi_processes many".into(),
        Values::CommandLine => "_normal".into(),
        Values::Words(_, words) => format!("({})", words.join(" ")),
    }
}

/// The spec of an option for _arguments, one shell word (braces expand to one per spelling).
fn flag(f: &Flag) -> String {
    let value = f.value.map(|v| format!(":{}:{}", f.long.trim_start_matches('-'), action(v)));
    let rest = quote(&format!("[{}]{}", bracket(&f.help), value.unwrap_or_default()));
    if f.long == "--help" {
        return quote("(- *)--help[display usage information]");
    }
    let spellings = f.spellings();
    let names = if spellings.len() > 1 {
        format!("{{{}}}", spellings.join(","))
    } else {
        spellings[0].to_string()
    };
    let exclusive = if f.repeats {
        "'*'".to_string()
    } else if spellings.len() > 1 {
        quote(&format!("({})", spellings.join(" ")))
    } else {
        String::new()
    };
    format!("{exclusive}{names}{rest}")
}

fn positional(i: usize, p: &Positional) -> String {
    let name = p.name.replace('_', " ");
    if p.greedy {
        quote(&format!("*::{name}:{}", action(p.values)))
    } else if p.repeats {
        quote(&format!("*:{name}:{}", action(p.values)))
    } else {
        quote(&format!("{}:{name}:{}", i + 1, action(p.values)))
    }
}

/// The function of a command that has subcommands.
fn function(c: &Command) -> String {
    format!(
        "_kahi{}",
        c.path.iter().map(|w| format!("_{}", w.replace('-', "_"))).collect::<String>()
    )
}

/// The `_arguments` call of a command without subcommands.
fn arguments(c: &Command) -> String {
    let mut specs: Vec<String> = c.flags.iter().map(flag).collect();
    specs.extend(c.positionals.iter().enumerate().map(|(i, p)| positional(i, p)));
    let s = if c.greedy() { "-S " } else { "" };
    format!("_arguments {s}{} && ret=0", specs.join(" \\\n            "))
}

pub(super) fn script(table: &[Command]) -> String {
    let mut s = String::from(HEAD);
    for c in table.iter().filter(|c| !c.subcommands.is_empty()).rev() {
        let title =
            if c.path.is_empty() { "kahi".to_string() } else { format!("kahi {}", c.key()) };
        let context = title.replace(' ', "-");
        let fname = function(c);
        let _ = write!(
            s,
            "\n(( $+functions[{fname}] )) ||\n{fname}() {{\n  \
             local curcontext=$curcontext state state_descr line ret=1\n  typeset -A opt_args\n"
        );
        if c.path.is_empty() {
            s.push_str("  # The kahi that is being run, to ask its daemon for process names.\n");
            s.push_str("  local _kahi_bin=${words[1]/#\\~/$HOME}\n");
        }
        let specs: Vec<String> = c.flags.iter().map(flag).collect();
        let _ = write!(
            s,
            "\n  _arguments -C \\\n    {} \\\n    '1:{title} command:->command' \\\n    \
             '*::argument:->argument' && ret=0\n",
            specs.join(" \\\n    ")
        );
        if c.path == ["ctl"] {
            s.push_str("\n  # The daemon to ask for process names: the socket options given on the line.\n");
            s.push_str("  local v\n  local -a _kahi_ctl_opts\n");
            let opts: Vec<&str> = c.valued().flat_map(|(f, _)| f.spellings()).collect();
            let _ = write!(
                s,
                "  for v in {}; do\n    if (( $+opt_args[$v] )); then\n      \
                 _kahi_ctl_opts+=( $v ${{(Q)${{opt_args[$v]}}/#\\~/$HOME}} )\n    fi\n  done\n",
                opts.join(" ")
            );
        }
        s.push_str("\n  case $state in\n    command)\n      local -a commands=(\n");
        for (name, help) in &c.subcommands {
            let _ = writeln!(s, "        {}", quote(&format!("{name}:{help}")));
        }
        let _ = write!(
            s,
            "      )\n      _describe -t commands {} commands && ret=0\n      ;;\n    argument)\n      \
             curcontext=${{curcontext%:*:*}}:{context}-$words[1]:\n      case $words[1] in\n",
            quote(&format!("{title} command"))
        );
        for (name, _) in &c.subcommands {
            let mut path = c.path.clone();
            path.push(name);
            let Some(sub) = table.iter().find(|t| t.path == path) else { continue };
            let body = if sub.subcommands.is_empty() {
                arguments(sub)
            } else {
                format!("{} && ret=0", function(sub))
            };
            let _ = write!(s, "        {name})\n          {body}\n          ;;\n");
        }
        s.push_str("      esac\n      ;;\n  esac\n  return ret\n}\n");
    }
    s.push_str("\n_kahi \"$@\"\n");
    s
}
