//! The bash script: fixed functions that offer words, files and process names, the table as a
//! `case` over command paths, and one function that walks the line through the table.

use std::fmt::Write;

use super::{Command, Values};

const HEAD: &str = r#"# shellcheck shell=bash
# Bash completion for kahi, written by `kahi completion bash` from the commands and options
# that `kahi --help` lists. Install as /usr/share/bash-completion/completions/kahi, or source
# it from ~/.bashrc.
#
# Process names come from the running daemon: `kahi ctl [-s SOCKET] [-c CONFIG] status
# --json`, with the -s and -c of the line being completed.

# Offers each argument that starts with $cur. Bash splits words at ':', so for GROUP:NAME
# the part up to the last ':' is already on the line and is left out of the offer.
_kahi_offer() {
	local c prefix=""
	if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
		prefix=${cur%"${cur##*:}"}
	fi
	for c in "$@"; do
		if [[ $c == "$cur"* ]]; then
			COMPREPLY+=("${c#"$prefix"}")
		fi
	done
}

# Offers what compgen offers for its option $1 (-f files, -c commands).
_kahi_compgen() {
	[[ $1 == -f ]] && compopt -o filenames 2>/dev/null
	local f
	while IFS= read -r f; do
		COMPREPLY+=("$f")
	done < <(compgen "$1" -- "$cur")
}

# Process names; with "many" as $1 (commands that take several), GROUP:* and all too.
_kahi_processes() {
	local json name
	local -a names=()
	local -A seen=()
	local -a ctl=("$_kahi_bin" ctl "${_kahi_ctl_opts[@]}" status --json)
	if command -v timeout >/dev/null 2>&1; then
		ctl=(timeout 2 "${ctl[@]}")
	fi
	json=$("${ctl[@]}" 2>/dev/null </dev/null)
	while [[ $json =~ \"name\":\ *\"([^\"]*)\" ]]; do
		name=${BASH_REMATCH[1]}
		json=${json#*"${BASH_REMATCH[0]}"}
		[[ -n ${seen[$name]-} ]] || { seen[$name]=1; names+=("$name"); }
		if [[ ${1-} == many && $name == *:* && -z ${seen[${name%%:*}:*]-} ]]; then
			seen[${name%%:*}:*]=1
			names+=("${name%%:*}:*")
		fi
	done
	if [[ ${1-} == many ]]; then
		names+=(all)
	fi
	_kahi_offer "${names[@]}"
}

# Tilde expansion of a path typed on the line, which is passed on to kahi ctl.
_kahi_path() {
	local tilde="~"
	case $1 in
		"$tilde") printf '%s' "$HOME" ;;
		"$tilde"/*) printf '%s/%s' "$HOME" "${1#"$tilde"/}" ;;
		*) printf '%s' "$1" ;;
	esac
}

# What completes the value of option $1 of the current command, when it takes one.
_kahi_valued() {
	local e
	for e in $valued; do
		if [[ ${e%%=*} == "$1" ]]; then
			printf '%s' "${e#*=}"
			return 0
		fi
	done
	return 1
}
"#;

const WALK: &str = r#"
_kahi() {
	COMPREPLY=()
	# The words up to the cursor, with the pieces bash split at ':' joined again.
	local -a words=()
	local cword i w n
	for ((i = 0; i <= COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]-}
		n=${#words[@]}
		if ((n > 1)) && [[ $w == :* || ${words[n - 1]} == *: ]]; then
			words[n - 1]+=$w
		else
			words+=("$w")
		fi
	done
	cword=$((${#words[@]} - 1))
	local cur=${words[cword]} prev=${words[cword - 1]-}
	local _kahi_bin
	_kahi_bin=$(_kahi_path "${words[0]}")
	local -a _kahi_ctl_opts=()

	# Through the table: the command ($path), how many positional arguments it has been
	# given ($npos), and whether the rest of the line is arguments only ($rest: after --, or
	# after the first argument of a command line).
	local path="" subs opts valued pos more greedy npos=0 rest=0 kind
	_kahi_table ""
	for ((i = 1; i < cword; i++)); do
		w=${words[i]}
		if ((rest)); then
			((npos++))
		elif [[ $w == -- ]]; then
			rest=1
		elif [[ $w == -* ]]; then
			if _kahi_valued "$w" >/dev/null; then
				if [[ $path == ctl ]] && ((i + 1 < cword)); then
					_kahi_ctl_opts+=("$w" "$(_kahi_path "${words[i + 1]}")")
				fi
				((i++))
			fi
		elif [[ " $subs " == *" $w "* ]]; then
			path=${path:+$path }$w
			npos=0
			_kahi_table "$path"
		else
			((npos++))
			((greedy)) && rest=1
		fi
	done

	if ((!rest)) && [[ $prev == -* ]] && kind=$(_kahi_valued "$prev"); then
		_kahi_values "$kind" 0
		return
	fi
	if ((!rest)) && [[ $cur == -* ]]; then
		# shellcheck disable=SC2086
		_kahi_offer $opts
		return
	fi
	if [[ -n $subs ]]; then
		# shellcheck disable=SC2086
		_kahi_offer $subs
		return
	fi
	local -a kinds
	read -ra kinds <<<"$pos"
	n=${#kinds[@]}
	if ((npos < n)); then
		_kahi_values "${kinds[npos]}" 0
	elif ((n > 0 && more)); then
		_kahi_values "${kinds[n - 1]}" $((npos - n + 1))
	elif ((!rest)); then
		# shellcheck disable=SC2086
		_kahi_offer $opts
	fi
}

complete -F _kahi kahi
"#;

/// The bash name of what completes a value.
fn kind(v: Values) -> &'static str {
    match v {
        Values::Nothing => "none",
        Values::Files => "files",
        Values::Process => "process",
        Values::Processes => "processes",
        Values::CommandLine => "commandline",
        Values::Words(name, _) => name,
    }
}

pub(super) fn script(table: &[Command]) -> String {
    let mut s = String::from(HEAD);
    s.push_str(
        "\n# The table of commands, by the words after kahi ($1): its subcommands ($subs), its\n\
         # options ($opts), those that take a value and what completes it ($valued, OPTION=KIND),\n\
         # what completes each positional argument ($pos; the last one repeats when $more is 1),\n\
         # and whether the arguments after the first positional one are not kahi's ($greedy).\n\
         _kahi_table() {\n\tsubs=\"\" opts=\"\" valued=\"\" pos=\"\" more=0 greedy=0\n\tcase $1 in\n",
    );
    for c in table {
        let _ = writeln!(s, "\t\"{}\")", c.key());
        let subs: Vec<&str> = c.subcommands.iter().map(|(n, _)| *n).collect();
        if !subs.is_empty() {
            let _ = writeln!(s, "\t\tsubs=\"{}\"", subs.join(" "));
        }
        let opts: Vec<&str> = c.flags.iter().flat_map(|f| f.spellings()).collect();
        let _ = writeln!(s, "\t\topts=\"{}\"", opts.join(" "));
        let valued: Vec<String> = c
            .valued()
            .flat_map(|(f, v)| f.spellings().into_iter().map(move |o| format!("{o}={}", kind(v))))
            .collect();
        if !valued.is_empty() {
            let _ = writeln!(s, "\t\tvalued=\"{}\"", valued.join(" "));
        }
        if !c.positionals.is_empty() {
            let pos: Vec<&str> = c.positionals.iter().map(|p| kind(p.values)).collect();
            let _ = writeln!(s, "\t\tpos=\"{}\"", pos.join(" "));
        }
        if c.positionals.last().is_some_and(|p| p.repeats) {
            let _ = writeln!(s, "\t\tmore=1");
        }
        if c.greedy() {
            let _ = writeln!(s, "\t\tgreedy=1");
        }
        s.push_str("\t\t;;\n");
    }
    s.push_str("\tesac\n}\n");

    s.push_str(
        "\n# Offers the values of a kind ($1); $2 is the index of the word within its argument.\n\
         _kahi_values() {\n\tcase $1 in\n\
         \tfiles) _kahi_compgen -f ;;\n\
         \tprocess) _kahi_processes ;;\n\
         \tprocesses) _kahi_processes many ;;\n\
         \tcommandline) if (($2 == 0)); then _kahi_compgen -c; else _kahi_compgen -f; fi ;;\n",
    );
    let mut lists: Vec<(&str, &[&str])> = Vec::new();
    for c in table {
        let all = c.valued().map(|(_, v)| v).chain(c.positionals.iter().map(|p| p.values));
        for v in all {
            if let Values::Words(name, words) = v
                && !lists.iter().any(|(n, _)| *n == name)
            {
                lists.push((name, words));
            }
        }
    }
    for (name, words) in lists {
        let _ = writeln!(s, "\t{name}) _kahi_offer {} ;;", words.join(" "));
    }
    s.push_str("\tesac\n}\n");
    s.push_str(WALK);
    s
}
