# Fish completion for kahi, written by `kahi completion fish` from the commands and options
# that `kahi --help` lists. Install as kahi.fish in a directory of $fish_complete_path, for
# example /usr/share/fish/vendor_completions.d.
#
# Process names come from the running daemon: `kahi ctl [-s SOCKET] [-c CONFIG] status
# --json`, with the -s and -c of the line being completed.

complete -c kahi -e
complete -c kahi -f

# The table of commands, by the words after kahi: its subcommands, the options that
# take a value, and whether the arguments after its first positional one are not kahi's.
function __kahi_table
    set -g __kahi_subs
    set -g __kahi_valued
    set -g __kahi_greedy 0
    switch "$argv[1]"
        case ''
            set __kahi_subs daemon ctl exec hash-password migrate run init completion version
        case 'daemon'
            set __kahi_valued -c --config --format --pidfile --logfile
        case 'ctl'
            set __kahi_subs status start stop restart signal pid tail maintail events clear stdin reread update add remove reload avail fg shutdown version sendcomm
            set __kahi_valued -s --socket -c --config
        case 'ctl status'
        case 'ctl start'
        case 'ctl stop'
        case 'ctl restart'
        case 'ctl signal'
        case 'ctl pid'
        case 'ctl tail'
            set __kahi_valued -n --bytes
        case 'ctl maintail'
            set __kahi_valued -n --bytes
        case 'ctl events'
            set __kahi_valued --types
        case 'ctl clear'
        case 'ctl stdin'
        case 'ctl reread'
        case 'ctl update'
        case 'ctl add'
        case 'ctl remove'
        case 'ctl reload'
        case 'ctl avail'
        case 'ctl fg'
        case 'ctl shutdown'
        case 'ctl version'
        case 'ctl sendcomm'
        case 'exec'
            set __kahi_greedy 1
        case 'hash-password'
            set __kahi_valued --cost
        case 'migrate'
            set __kahi_valued -o --output --from -m --formation -e --env -p --port
        case 'run'
            set __kahi_valued -f --file -e --env -m --formation -p --port -t --timeout -s --socket
        case 'init'
            set __kahi_valued -o --output
        case 'completion'
        case 'version'
    end
end

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

# kahi
complete -c kahi -n "__kahi_at '' 0 0" -a daemon -d 'Run the supervisor: start the configured programs and keep them running'
complete -c kahi -n "__kahi_at '' 0 0" -a ctl -d 'Control a running daemon over its Unix socket'
complete -c kahi -n "__kahi_at '' 0 0" -a exec -d 'Run one command as a container\'s init, as tini does, with no configuration: pass every signal on to it, reap orphans, and exit with its status'
complete -c kahi -n "__kahi_at '' 0 0" -a hash-password -d 'Print the bcrypt hash of a password for [[server.http.users]]: read from the terminal or from standard input'
complete -c kahi -n "__kahi_at '' 0 0" -a migrate -d 'Write a supervisord configuration, or a Procfile, as Kahi\'s TOML, each table commented with its source line; what cannot be mapped is told on stderr with its place'
complete -c kahi -n "__kahi_at '' 0 0" -a run -d 'Run the processes of a Procfile in the foreground, as foreman start does: each with its PORT, every line prefixed with its process\'s name; when one process exits, or on Ctrl-C, stop them all'
complete -c kahi -n "__kahi_at '' 0 0" -a init -d 'Write a commented starter configuration; an existing file is never overwritten'
complete -c kahi -n "__kahi_at '' 0 0" -a completion -d 'Print the completion script of a shell, made from the commands and options this help lists'
complete -c kahi -n "__kahi_at '' 0 0" -a version -d 'Print this program\'s version'
complete -c kahi -n "__kahi_at ''" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at ''" -s V -l version -d 'print the version and exit'

# kahi daemon
complete -c kahi -n "__kahi_at 'daemon'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'daemon'" -s c -l config -d 'the configuration file' -r -F
complete -c kahi -n "__kahi_at 'daemon'" -s v -l verbose -d 'log more: -v for debug, -vv for trace (RUST_LOG overrides)'
complete -c kahi -n "__kahi_at 'daemon'" -l check -d 'check the configuration, print every error, and exit'
complete -c kahi -n "__kahi_at 'daemon'" -l json -d 'with --check: print the resolved process table as JSON'
complete -c kahi -n "__kahi_at 'daemon'" -l format -d 'the configuration\'s format: auto, toml, or supervisord' -x -a 'auto toml supervisord'
complete -c kahi -n "__kahi_at 'daemon'" -l daemonize -d 'detach: run in the background, in a new session; return once the control socket is ready or the start failed'
complete -c kahi -n "__kahi_at 'daemon'" -l pidfile -d 'write the daemon\'s pid to this file once the control socket is ready; removed at exit' -r -F
complete -c kahi -n "__kahi_at 'daemon'" -l logfile -d 'with --daemonize: append the daemon\'s own stdout and stderr to this file instead of sending them to /dev/null' -r -F

# kahi ctl
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a status -d 'Show the state of every process, or of the named ones'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a start -d 'Start processes and wait until they are RUNNING'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a stop -d 'Stop processes and wait until they are stopped'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a restart -d 'Stop processes, then start them again'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a signal -d 'Send a signal to processes'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a pid -d 'Print the daemon\'s pid, or each named process\'s, one a line; `all` prints every process\'s'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a tail -d 'Print the end of a process\'s output; -f keeps following it'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a maintail -d 'Print the end of the daemon\'s own log; -f keeps following it'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a events -d 'Follow Kahi\'s events, one line each, until interrupted or the daemon exits'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a clear -d 'Empty the in-memory output buffers of processes'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a stdin -d 'Write TEXT to the stdin pipe of a process with stdin_pipe = true'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a reread -d 'Read the configuration again and show what changed, without applying it'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a update -d 'Read the configuration again and apply it: add, remove and restart only what changed; with GROUP names, only in those groups'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a add -d 'Start groups that the configuration file has and the daemon does not yet'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a remove -d 'Forget groups whose processes are all stopped'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a reload -d 'Read the configuration again and restart every program with it, as supervisord\'s restart'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a avail -d 'List every configured program'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a fg -d 'Attach the terminal to a running process: its output as it comes, each line typed to its stdin; Ctrl-C or Ctrl-D detaches, leaving it running'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a shutdown -d 'Stop every program and the daemon'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a version -d 'Print the daemon\'s version'
complete -c kahi -n "__kahi_at 'ctl' 0 0" -a sendcomm -d 'Publish a REMOTE_COMMUNICATION event to the event listeners that take it: its payload is `type:TYPE`, a newline, then DATA'
complete -c kahi -n "__kahi_at 'ctl'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'ctl'" -s s -l socket -d 'the control socket' -r -F
complete -c kahi -n "__kahi_at 'ctl'" -s c -l config -d 'read the socket path from this configuration file' -r -F

# kahi ctl status
complete -c kahi -n "__kahi_at 'ctl status'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'ctl status'" -l json -d 'print JSON: an array of objects'
complete -c kahi -n "__kahi_at 'ctl status' 0 -" -a '(__kahi_processes many)'

# kahi ctl start
complete -c kahi -n "__kahi_at 'ctl start'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'ctl start'" -l no-wait -d 'return at once instead of waiting for the outcome'
complete -c kahi -n "__kahi_at 'ctl start' 0 -" -a '(__kahi_processes many)'

# kahi ctl stop
complete -c kahi -n "__kahi_at 'ctl stop'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'ctl stop'" -l no-wait -d 'return at once instead of waiting for the outcome'
complete -c kahi -n "__kahi_at 'ctl stop' 0 -" -a '(__kahi_processes many)'

# kahi ctl restart
complete -c kahi -n "__kahi_at 'ctl restart'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'ctl restart'" -l no-wait -d 'return at once instead of waiting for the outcome'
complete -c kahi -n "__kahi_at 'ctl restart' 0 -" -a '(__kahi_processes many)'

# kahi ctl signal
complete -c kahi -n "__kahi_at 'ctl signal'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'ctl signal' 0 0" -a 'HUP INT QUIT KILL TERM USR1 USR2 ALRM CONT STOP TSTP WINCH ABRT PWR'
complete -c kahi -n "__kahi_at 'ctl signal' 1 -" -a '(__kahi_processes many)'

# kahi ctl pid
complete -c kahi -n "__kahi_at 'ctl pid'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'ctl pid' 0 -" -a '(__kahi_processes many)'

# kahi ctl tail
complete -c kahi -n "__kahi_at 'ctl tail'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'ctl tail'" -s f -l follow -d 'keep printing new output until interrupted'
complete -c kahi -n "__kahi_at 'ctl tail'" -s n -l bytes -d 'how many bytes from the end; -NUM says the same' -x
complete -c kahi -n "__kahi_at 'ctl tail' 0 0" -a '(__kahi_processes)'
complete -c kahi -n "__kahi_at 'ctl tail' 1 1" -a 'stdout stderr'

# kahi ctl maintail
complete -c kahi -n "__kahi_at 'ctl maintail'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'ctl maintail'" -s f -l follow -d 'keep printing new lines until interrupted'
complete -c kahi -n "__kahi_at 'ctl maintail'" -s n -l bytes -d 'how many bytes from the end; -NUM says the same' -x

# kahi ctl events
complete -c kahi -n "__kahi_at 'ctl events'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'ctl events'" -l types -d 'the event types, comma-separated: supervisord\'s names, Kahi\'s, or state, health, update, shutdown' -x -a 'state health update shutdown EVENT PROCESS_STATE PROCESS_STATE_FATAL PROCESS_STATE_EXITED PROCESS_LOG PROCESS_GROUP SUPERVISOR_STATE_CHANGE TICK TICK_5 TICK_60 TICK_3600 KAHI_HEALTH KAHI_DEPENDENCY KAHI_UPDATE'
complete -c kahi -n "__kahi_at 'ctl events'" -l json -d 'print each event as one JSON object per line'

# kahi ctl clear
complete -c kahi -n "__kahi_at 'ctl clear'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'ctl clear' 0 -" -a '(__kahi_processes many)'

# kahi ctl stdin
complete -c kahi -n "__kahi_at 'ctl stdin'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'ctl stdin' 0 0" -a '(__kahi_processes)'

# kahi ctl reread
complete -c kahi -n "__kahi_at 'ctl reread'" -l help -d 'display usage information'

# kahi ctl update
complete -c kahi -n "__kahi_at 'ctl update'" -l help -d 'display usage information'

# kahi ctl add
complete -c kahi -n "__kahi_at 'ctl add'" -l help -d 'display usage information'

# kahi ctl remove
complete -c kahi -n "__kahi_at 'ctl remove'" -l help -d 'display usage information'

# kahi ctl reload
complete -c kahi -n "__kahi_at 'ctl reload'" -l help -d 'display usage information'

# kahi ctl avail
complete -c kahi -n "__kahi_at 'ctl avail'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'ctl avail'" -l json -d 'print JSON'

# kahi ctl fg
complete -c kahi -n "__kahi_at 'ctl fg'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'ctl fg' 0 0" -a '(__kahi_processes)'

# kahi ctl shutdown
complete -c kahi -n "__kahi_at 'ctl shutdown'" -l help -d 'display usage information'

# kahi ctl version
complete -c kahi -n "__kahi_at 'ctl version'" -l help -d 'display usage information'

# kahi ctl sendcomm
complete -c kahi -n "__kahi_at 'ctl sendcomm'" -l help -d 'display usage information'

# kahi exec
complete -c kahi -n "__kahi_at 'exec'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'exec' 0 0" -a '(__fish_complete_command)'
complete -c kahi -n "__kahi_at 'exec' 1 -" -F

# kahi hash-password
complete -c kahi -n "__kahi_at 'hash-password'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'hash-password'" -l cost -d 'the bcrypt cost, 4 to 31' -x

# kahi migrate
complete -c kahi -n "__kahi_at 'migrate'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'migrate'" -s o -l output -d 'write the TOML to this file instead of stdout' -r -F
complete -c kahi -n "__kahi_at 'migrate'" -l check -d 'write nothing; exit 1 when anything could not be mapped'
complete -c kahi -n "__kahi_at 'migrate'" -l from -d 'what FILE is: supervisord (the default) or procfile' -x -a 'supervisord procfile'
complete -c kahi -n "__kahi_at 'migrate'" -s m -l formation -d 'with --from procfile: how many of each process type, as kahi run\'s -m' -x
complete -c kahi -n "__kahi_at 'migrate'" -s e -l env -d 'with --from procfile: an environment file, as kahi run\'s -e' -r -F
complete -c kahi -n "__kahi_at 'migrate'" -s p -l port -d 'with --from procfile: the base port, as kahi run\'s -p' -x
complete -c kahi -n "__kahi_at 'migrate' 0 0" -F

# kahi run
complete -c kahi -n "__kahi_at 'run'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'run'" -s f -l file -d 'the Procfile, as foreman\'s -f' -r -F
complete -c kahi -n "__kahi_at 'run'" -s e -l env -d 'an environment file of KEY=VALUE lines; repeat or separate with commas' -r -F
complete -c kahi -n "__kahi_at 'run'" -s m -l formation -d 'how many of each process type: web=2,worker=3; default all=1' -x
complete -c kahi -n "__kahi_at 'run'" -s p -l port -d 'the base port: PORT is base + 100 per type before it + the instance - 1' -x
complete -c kahi -n "__kahi_at 'run'" -s t -l timeout -d 'seconds a process has to stop after SIGTERM before SIGKILL' -x
complete -c kahi -n "__kahi_at 'run'" -s s -l socket -d 'the control socket' -r -F
complete -c kahi -n "__kahi_at 'run'" -s v -l verbose -d 'log more: -v for debug, -vv for trace'
complete -c kahi -n "__kahi_at 'run' 0 0" -F

# kahi init
complete -c kahi -n "__kahi_at 'init'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'init'" -l container -d 'for a container: the console on, the HTTP probes on 0.0.0.0:9876, a critical main program'
complete -c kahi -n "__kahi_at 'init'" -s o -l output -d 'write to this file instead of kahi.toml' -r -F

# kahi completion
complete -c kahi -n "__kahi_at 'completion'" -l help -d 'display usage information'
complete -c kahi -n "__kahi_at 'completion' 0 0" -a 'bash zsh fish'

# kahi version
complete -c kahi -n "__kahi_at 'version'" -l help -d 'display usage information'
