# shellcheck shell=bash
# Bash completion for kahi. Install as /usr/share/bash-completion/completions/kahi, or
# source it from ~/.bashrc.
#
# Process names come from the running daemon: `kahi ctl [-s SOCKET] [-c CONFIG] status
# --json`, with the -s and -c of the line being completed.

_kahi_ctl_commands="status start stop restart signal pid tail maintail events clear stdin reread update add remove reload avail fg shutdown version sendcomm"
_kahi_signals="HUP INT QUIT KILL TERM USR1 USR2 ALRM CONT STOP TSTP WINCH ABRT PWR"

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

_kahi_files() {
	compopt -o filenames 2>/dev/null
	local f
	while IFS= read -r f; do
		COMPREPLY+=("$f")
	done < <(compgen -f -- "$cur")
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

# kahi ctl ...: $1 is the index of the word after `ctl`.
_kahi_ctl() {
	local i=$1 sub="" w
	_kahi_ctl_opts=()
	while ((i < cword)); do
		w=${words[i]}
		case $w in
			-s | --socket | -c | --config)
				if ((i + 1 < cword)); then
					_kahi_ctl_opts+=("$w" "$(_kahi_path "${words[i + 1]}")")
				fi
				((i += 2))
				continue
				;;
			-*) ;;
			*)
				sub=$w
				break
				;;
		esac
		((i++))
	done

	if [[ -z $sub ]]; then
		case $prev in
			-s | --socket | -c | --config) _kahi_files ;;
			*)
				if [[ $cur == -* ]]; then
					_kahi_offer -s --socket -c --config --help
				else
					# shellcheck disable=SC2086
					_kahi_offer $_kahi_ctl_commands
				fi
				;;
		esac
		return
	fi

	# The arguments after the command, and how many of them are positional.
	local npos=0
	((i++))
	while ((i < cword)); do
		w=${words[i]}
		case $sub:$w in
			tail:-n | maintail:-n | tail:--bytes | maintail:--bytes | events:--types) ((i++)) ;;
			*:-*) ;;
			*) ((npos++)) ;;
		esac
		((i++))
	done

	case $sub in
		status)
			if [[ $cur == -* ]]; then _kahi_offer --json --help; else _kahi_processes many; fi
			;;
		start | stop | restart)
			if [[ $cur == -* ]]; then _kahi_offer --no-wait --help; else _kahi_processes many; fi
			;;
		signal)
			if [[ $cur == -* ]]; then
				_kahi_offer --help
			elif ((npos == 0)); then
				# shellcheck disable=SC2086
				_kahi_offer $_kahi_signals
			else
				_kahi_processes many
			fi
			;;
		clear | pid)
			if [[ $cur == -* ]]; then _kahi_offer --help; else _kahi_processes many; fi
			;;
		sendcomm | update | add | remove)
			if [[ $cur == -* ]]; then _kahi_offer --help; fi
			;;
		fg)
			if [[ $cur == -* ]]; then
				_kahi_offer --help
			elif ((npos == 0)); then
				_kahi_processes
			fi
			;;
		stdin)
			if [[ $cur == -* ]]; then
				_kahi_offer --help
			elif ((npos == 0)); then
				_kahi_processes
			fi
			;;
		tail)
			if [[ $prev == -n || $prev == --bytes ]]; then
				return
			elif [[ $cur == -* ]]; then
				_kahi_offer -f --follow -n --bytes --help
			elif ((npos == 0)); then
				_kahi_processes
			elif ((npos == 1)); then
				_kahi_offer stdout stderr
			fi
			;;
		maintail)
			if [[ $prev != -n && $prev != --bytes ]]; then
				_kahi_offer -f --follow -n --bytes --help
			fi
			;;
		avail)
			_kahi_offer --json --help
			;;
		events)
			if [[ $prev == --types ]]; then
				_kahi_offer state health update shutdown EVENT PROCESS_STATE PROCESS_STATE_FATAL \
					PROCESS_STATE_EXITED PROCESS_LOG PROCESS_GROUP SUPERVISOR_STATE_CHANGE TICK \
					TICK_5 TICK_60 TICK_3600 KAHI_HEALTH KAHI_DEPENDENCY KAHI_UPDATE
			else
				_kahi_offer --types --json --help
			fi
			;;
		reread | reload | shutdown | version)
			_kahi_offer --help
			;;
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

	# The subcommand: the first word that is not an option.
	local sub=""
	i=1
	while ((i < cword)); do
		if [[ ${words[i]} != -* ]]; then
			sub=${words[i]}
			break
		fi
		((i++))
	done

	case $sub in
		"")
			_kahi_offer daemon ctl exec hash-password migrate run version --help
			;;
		daemon)
			case $prev in
				-c | --config | --pidfile | --logfile) _kahi_files ;;
				--format) _kahi_offer auto toml supervisord ;;
				*) _kahi_offer -c --config -v --verbose --check --json --format --daemonize --pidfile --logfile --help ;;
			esac
			;;
		ctl)
			_kahi_ctl $((i + 1))
			;;
		exec)
			# The command to run (after an optional --), then its arguments.
			local j=$((i + 1))
			[[ ${words[j]-} == -- && j -lt cword ]] && ((j++))
			if ((j == cword)); then
				if [[ $cur == -* ]]; then
					_kahi_offer -- --help
				else
					while IFS= read -r w; do
						COMPREPLY+=("$w")
					done < <(compgen -c -- "$cur")
				fi
			else
				_kahi_files
			fi
			;;
		hash-password)
			[[ $prev == --cost ]] || _kahi_offer --cost --help
			;;
		migrate)
			case $prev in
				--from) _kahi_offer supervisord procfile ;;
				-m | --formation | -p | --port) ;;
				*)
					if [[ $cur == -* ]]; then
						_kahi_offer -o --output --check --from -m --formation -e --env -p --port --help
					else
						_kahi_files
					fi
					;;
			esac
			;;
		run)
			case $prev in
				-m | --formation | -p | --port | -t | --timeout) ;;
				*)
					if [[ $cur == -* ]]; then
						_kahi_offer -f --file -e --env -m --formation -p --port -t --timeout -s --socket -v --verbose --help
					else
						_kahi_files
					fi
					;;
			esac
			;;
		version)
			_kahi_offer --help
			;;
	esac
}

complete -F _kahi kahi
