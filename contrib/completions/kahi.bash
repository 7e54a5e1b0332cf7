# shellcheck shell=bash
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

# The table of commands, by the words after kahi ($1): its subcommands ($subs), its
# options ($opts), those that take a value and what completes it ($valued, OPTION=KIND),
# what completes each positional argument ($pos; the last one repeats when $more is 1),
# and whether the arguments after the first positional one are not kahi's ($greedy).
_kahi_table() {
	subs="" opts="" valued="" pos="" more=0 greedy=0
	case $1 in
	"")
		subs="daemon ctl exec hash-password migrate run init completion version"
		opts="--help -V --version"
		;;
	"daemon")
		opts="--help -c --config -v --verbose --check --json --format --daemonize --pidfile --logfile"
		valued="-c=files --config=files --format=format --pidfile=files --logfile=files"
		;;
	"ctl")
		subs="status start stop restart signal pid tail maintail events clear stdin reread update add remove reload avail fg shutdown version sendcomm"
		opts="--help -s --socket -c --config"
		valued="-s=files --socket=files -c=files --config=files"
		;;
	"ctl status")
		opts="--help --json"
		pos="processes"
		more=1
		;;
	"ctl start")
		opts="--help --no-wait"
		pos="processes"
		more=1
		;;
	"ctl stop")
		opts="--help --no-wait"
		pos="processes"
		more=1
		;;
	"ctl restart")
		opts="--help --no-wait"
		pos="processes"
		more=1
		;;
	"ctl signal")
		opts="--help"
		pos="signal processes"
		more=1
		;;
	"ctl pid")
		opts="--help"
		pos="processes"
		more=1
		;;
	"ctl tail")
		opts="--help -f --follow -n --bytes"
		valued="-n=none --bytes=none"
		pos="process stream"
		;;
	"ctl maintail")
		opts="--help -f --follow -n --bytes"
		valued="-n=none --bytes=none"
		;;
	"ctl events")
		opts="--help --types --json"
		valued="--types=types"
		;;
	"ctl clear")
		opts="--help"
		pos="processes"
		more=1
		;;
	"ctl stdin")
		opts="--help"
		pos="process none"
		;;
	"ctl reread")
		opts="--help"
		;;
	"ctl update")
		opts="--help"
		pos="none"
		more=1
		;;
	"ctl add")
		opts="--help"
		pos="none"
		more=1
		;;
	"ctl remove")
		opts="--help"
		pos="none"
		more=1
		;;
	"ctl reload")
		opts="--help"
		;;
	"ctl avail")
		opts="--help --json"
		;;
	"ctl fg")
		opts="--help"
		pos="process"
		;;
	"ctl shutdown")
		opts="--help"
		;;
	"ctl version")
		opts="--help"
		;;
	"ctl sendcomm")
		opts="--help"
		pos="none none"
		;;
	"exec")
		opts="--help"
		pos="commandline"
		more=1
		greedy=1
		;;
	"hash-password")
		opts="--help --cost"
		valued="--cost=none"
		;;
	"migrate")
		opts="--help -o --output --check --from -m --formation -e --env -p --port"
		valued="-o=files --output=files --from=from -m=none --formation=none -e=files --env=files -p=none --port=none"
		pos="files"
		;;
	"run")
		opts="--help -f --file -e --env -m --formation -p --port -t --timeout -s --socket -v --verbose"
		valued="-f=files --file=files -e=files --env=files -m=none --formation=none -p=none --port=none -t=none --timeout=none -s=files --socket=files"
		pos="files"
		;;
	"init")
		opts="--help --container -o --output"
		valued="-o=files --output=files"
		;;
	"completion")
		opts="--help"
		pos="shell"
		;;
	"version")
		opts="--help"
		;;
	esac
}

# Offers the values of a kind ($1); $2 is the index of the word within its argument.
_kahi_values() {
	case $1 in
	files) _kahi_compgen -f ;;
	process) _kahi_processes ;;
	processes) _kahi_processes many ;;
	commandline) if (($2 == 0)); then _kahi_compgen -c; else _kahi_compgen -f; fi ;;
	format) _kahi_offer auto toml supervisord ;;
	signal) _kahi_offer HUP INT QUIT KILL TERM USR1 USR2 ALRM CONT STOP TSTP WINCH ABRT PWR ;;
	stream) _kahi_offer stdout stderr ;;
	types) _kahi_offer state health update shutdown EVENT PROCESS_STATE PROCESS_STATE_FATAL PROCESS_STATE_EXITED PROCESS_LOG PROCESS_GROUP SUPERVISOR_STATE_CHANGE TICK TICK_5 TICK_60 TICK_3600 KAHI_HEALTH KAHI_DEPENDENCY KAHI_UPDATE ;;
	from) _kahi_offer supervisord procfile ;;
	shell) _kahi_offer bash zsh fish ;;
	esac
}

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
