//! The fish script: a function that walks the line through the table (which command, how many
//! positional arguments so far), and one `complete` line per subcommand, option and positional
//! argument, each conditioned on it.

use std::fmt::Write;

use super::{Command, Values};

const HEAD: &str = r#"# Fish completion for kahi, written by `kahi completion fish` from the commands and options
# that `kahi --help` lists. Install as kahi.fish in a directory of $fish_complete_path, for
# example /usr/share/fish/vendor_completions.d.
#
# Process names come from the running daemon: `kahi ctl [-s SOCKET] [-c CONFIG] status
# --json`, with the -s and -c of the line being completed.

complete -c kahi -e
complete -c kahi -f
"#;

const WALK: &str = r#"
# Whether the line (up to the cursor) is at command $argv[1] (its words after kahi) and, with
# $argv[2] and $argv[3], has between that many positional arguments (- for no bound); without
# them, whether options are still kahi's. Sets __kahi_ctl_opts, the -s and -c of kahi ctl.
function __kahi_at
    set -l tokens (commandline -opc)
    set -l path ''
    __kahi_table ''
    set -l npos 0
    set -l rest 0
    set -l skip 0
    set -g __kahi_ctl_opts
    for w in $tokens[2..-1]
        if test $skip = 1
            set skip 0
            if test "$path" = ctl
                set -a __kahi_ctl_opts $w
            end
        else if test $rest = 1
            set npos (math $npos + 1)
        else if test "$w" = --
            set rest 1
        else if string match -q -- '-*' $w
            if contains -- $w $__kahi_valued
                set skip 1
                if test "$path" = ctl
                    set -a __kahi_ctl_opts $w
                end
            end
        else if contains -- $w $__kahi_subs
            set path (string trim -- "$path $w")
            set npos 0
            __kahi_table $path
        else
            set npos (math $npos + 1)
            if test $__kahi_greedy = 1
                set rest 1
            end
        end
    end
    test "$path" = "$argv[1]"; or return 1
    if not set -q argv[2]
        test $rest = 0
        return
    end
    test $npos -ge $argv[2]; or return 1
    test "$argv[3]" = -; or test $npos -le $argv[3]
end

# Process names from the daemon; with "many", GROUP:* and all too.
function __kahi_processes
    set -l bin (commandline -opc)[1]
    set -l names (command $bin ctl $__kahi_ctl_opts status --json 2>/dev/null </dev/null | string match -r -a -g '"name": *"([^"]*)"')
    printf '%s\n' $names
    if test "$argv[1]" = many
        string match -r -g '^([^:]+):' -- $names | sort -u | string replace -r '$' ':*'
        echo all
    end
end
"#;

/// A word in single quotes, as fish reads it.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'"))
}

/// The arguments of `complete` that offer a value.
fn offer(v: Values) -> String {
    match v {
        Values::Nothing => String::new(),
        Values::Files => " -F".into(),
        Values::Process => " -a '(__kahi_processes)'".into(),
        Values::Processes => " -a '(__kahi_processes many)'".into(),
        Values::CommandLine => " -a '(__fish_complete_command)'".into(),
        Values::Words(_, words) => format!(" -a {}", quote(&words.join(" "))),
    }
}

pub(super) fn script(table: &[Command]) -> String {
    let mut s = String::from(HEAD);
    s.push_str(
        "\n# The table of commands, by the words after kahi: its subcommands, the options that\n\
         # take a value, and whether the arguments after its first positional one are not kahi's.\n\
         function __kahi_table\n    set -g __kahi_subs\n    set -g __kahi_valued\n    set -g __kahi_greedy 0\n    \
         switch \"$argv[1]\"\n",
    );
    for c in table {
        let _ = writeln!(s, "        case {}", quote(&c.key()));
        let subs: Vec<&str> = c.subcommands.iter().map(|(n, _)| *n).collect();
        if !subs.is_empty() {
            let _ = writeln!(s, "            set __kahi_subs {}", subs.join(" "));
        }
        let valued: Vec<&str> = c.valued().flat_map(|(f, _)| f.spellings()).collect();
        if !valued.is_empty() {
            let _ = writeln!(s, "            set __kahi_valued {}", valued.join(" "));
        }
        if c.greedy() {
            s.push_str("            set __kahi_greedy 1\n");
        }
    }
    s.push_str("    end\nend\n");
    s.push_str(WALK);

    for c in table {
        let at = quote(&c.key());
        let title =
            if c.path.is_empty() { "kahi".to_string() } else { format!("kahi {}", c.key()) };
        let _ = writeln!(s, "\n# {title}");
        for (name, help) in &c.subcommands {
            let _ = writeln!(
                s,
                "complete -c kahi -n \"__kahi_at {at} 0 0\" -a {name} -d {}",
                quote(help)
            );
        }
        for f in &c.flags {
            let mut line = format!("complete -c kahi -n \"__kahi_at {at}\"");
            if let Some(short) = &f.short {
                let _ = write!(line, " -s {}", short.trim_start_matches('-'));
            }
            let _ = write!(line, " -l {} -d {}", f.long.trim_start_matches('-'), quote(&f.help));
            match f.value {
                Some(Values::Files) => line.push_str(" -r -F"),
                Some(v) => {
                    let _ = write!(line, " -x{}", offer(v));
                }
                None => {}
            }
            let _ = writeln!(s, "{line}");
        }
        for (i, p) in c.positionals.iter().enumerate() {
            let max = if p.repeats { "-".to_string() } else { i.to_string() };
            let at_n = format!("\"__kahi_at {at} {i} {max}\"");
            if p.values == Values::CommandLine {
                let _ = writeln!(
                    s,
                    "complete -c kahi -n \"__kahi_at {at} {i} {i}\"{}",
                    offer(p.values)
                );
                let _ = writeln!(s, "complete -c kahi -n \"__kahi_at {at} {} -\" -F", i + 1);
            } else if p.values != Values::Nothing {
                let _ = writeln!(s, "complete -c kahi -n {at_n}{}", offer(p.values));
            }
        }
    }
    s
}
