//! The mapping, end to end without a process: supervisord text -> TOML -> Kahi's `Config`,
//! one test per rule. What supervisord itself says for the same files is checked by the
//! integration tests (tests/migrate.rs), against its own parser.

use super::*;
use crate::config::{Config, load_text};

const FILE: &str = "/etc/supervisor/supervisord.conf";

fn env() -> Vec<(String, String)> {
    vec![("HOME".into(), "/home/k".into()), ("N".into(), "4".into())]
}

fn run(text: &str) -> Result<(Config, Migration), String> {
    let m = migrate(Path::new(FILE), text, &env())
        .map_err(|e| e.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))?;
    let config = load_text(Path::new(FILE), &m.toml, &|_| None).map_err(|e| {
        let placed: Vec<String> = e.into_iter().map(|e| m.place(e).to_string()).collect();
        format!("{}\n--- toml:\n{}", placed.join("\n"), m.toml)
    })?;
    Ok((config, m))
}

fn ok(text: &str) -> (Config, Migration) {
    run(text).unwrap_or_else(|e| panic!("{e}"))
}

fn refused(text: &str) -> String {
    match run(text) {
        Ok((_, m)) => panic!("accepted:\n{}", m.toml),
        Err(e) => e,
    }
}

/// (group:name, argv) of every process, sorted.
fn table(c: &Config) -> Vec<(String, Vec<String>)> {
    let mut t: Vec<_> = c.processes.iter().map(|p| (p.namespec(), p.argv.clone())).collect();
    t.sort();
    t
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn numprocs_becomes_one_program_with_templates_when_kahi_expands_them_the_same() {
    let (c, m) = ok(
        "[supervisord]\n[program:w]\ncommand=/bin/w --n=%(process_num)d --of=%(numprocs)d %(ENV_N)s\n\
                     numprocs=2\nnumprocs_start=5\nprocess_name=%(program_name)s_%(process_num)02d\n\
                     directory=/d%(process_num)02d\n",
    );
    assert!(m.toml.contains("numprocs = 2"), "{}", m.toml);
    assert!(m.toml.contains("process_name = \"w_%(process_num)02d\""), "{}", m.toml);
    assert_eq!(
        table(&c),
        vec![
            ("w:w_05".into(), s(&["/bin/w", "--n=5", "--of=2", "4"])),
            ("w:w_06".into(), s(&["/bin/w", "--n=6", "--of=2", "4"])),
        ]
    );
    assert_eq!(c.processes[1].directory.as_deref(), Some(Path::new("/d06")));
}

#[test]
fn a_per_process_environment_makes_one_program_per_process_in_the_same_group() {
    let (c, m) = ok("[supervisord]\n[program:w]\ncommand=/bin/w\nnumprocs=2\n\
                     process_name=w%(process_num)d\nenvironment=K=%(process_num)s\n");
    assert!(m.toml.contains("[programs.w0]") && m.toml.contains("[groups.w]"), "{}", m.toml);
    let names: Vec<String> = c.processes.iter().map(|p| p.namespec()).collect();
    assert_eq!(names, ["w:w0", "w:w1"]);
    assert_eq!(c.processes[1].environment, vec![("K".to_string(), "1".to_string())]);
}

#[test]
fn expansions_here_env_host_program_and_group_names() {
    let host = nix::unistd::gethostname().unwrap().to_string_lossy().into_owned();
    let (c, _) = ok("[supervisord]\nenvironment=G=glob\n[group:g]\nprograms=p\n[program:p]\n\
                     command=/bin/x %(here)s %(ENV_HOME)s %(host_node_name)s %(program_name)s %(group_name)s %(ENV_G)s %(ENV_OWN)s\n\
                     environment=OWN=mine\n");
    assert_eq!(
        c.processes[0].argv,
        s(&["/bin/x", "/etc/supervisor", "/home/k", &host, "p", "g", "glob", "mine"])
    );
    assert_eq!(c.processes[0].group, "g");
    // [supervisord] environment, overlaid by the program's.
    assert_eq!(
        c.processes[0].environment,
        vec![("G".to_string(), "glob".to_string()), ("OWN".to_string(), "mine".to_string())]
    );
}

#[test]
fn literal_dollars_and_percents_stay_literal_in_kahi() {
    let (c, _) = ok("[supervisord]\n[program:p]\ncommand=/bin/sh -c 'echo $HOME ${X} 100%%'\n");
    assert_eq!(c.processes[0].argv, s(&["/bin/sh", "-c", "echo $HOME ${X} 100%"]));
}

#[test]
fn defaults_as_supervisord_has_them() {
    let (c, _) = ok(
        "[supervisord]\nchildlogdir=/tmp\n[DEFAULT]\nstartsecs=7\n[program:p]\ncommand=/bin/p\n",
    );
    let p = &c.processes[0];
    assert_eq!(p.startsecs, std::time::Duration::from_secs(7));
    assert_eq!(p.priority, 999);
    assert!(p.autostart);
    // supervisord's AUTO log files by default.
    assert_eq!(p.stdout_log.as_ref().map(|l| l.path.clone()), Some("/tmp/p-stdout.log".into()));
    // A pipe for its stdin, held open: `cat` waits on it, as under supervisord.
    assert!(p.stdin_pipe);
}

#[test]
fn refused_as_supervisord_refuses() {
    let cases = [
        ("[program:p]\ncommand=x\n", "does not include supervisord section"),
        ("[supervisord]\n[program:p]\nnumprocs=2\ncommand=x\n", "%(process_num) must be present"),
        (
            "[supervisord]\n[program:p]\ncommand=x\nstopasgroup=true\nkillasgroup=false\n",
            "Cannot set stopasgroup=true and killasgroup=false",
        ),
        ("[supervisord]\n[program:p]\nautostart=x\n", "not a valid boolean"),
        ("[supervisord]\n[program:p]\nstartsecs=1\n", "does not specify a command"),
        ("[supervisord]\n[program:p]\ncommand=%(ENV_NOPE)s\n", "cannot be expanded"),
        ("[supervisord]\n[program:p]\ncommand=date +%Y\n", "badly formatted"),
        ("[supervisord]\n[program:p]\ncommand=x\npriority=%(process_num)d\n", "cannot be expanded"),
        (
            "[supervisord]\n[program:p]\ncommand=x\nenvironment=A=1,B\n",
            "Unexpected end of key/value pairs",
        ),
        ("[supervisord]\n[program:a b]\ncommand=x\n", "Invalid name"),
        ("[supervisord]\n[group:g]\nprograms=nope\n", "names unknown program or fcgi-program nope"),
        ("[supervisord]\n[eventlistener:l]\ncommand=x\n", "requires an \"events\" line"),
        ("[supervisord]\n[eventlistener:l]\ncommand=x\nevents=NOPE\n", "Unknown event type NOPE"),
        (
            "[supervisord]\n[eventlistener:l]\ncommand=x\nevents=TICK_5\nbuffer_size=0\n",
            "invalid buffer_size",
        ),
        (
            "[supervisord]\n[eventlistener:l]\ncommand=x\nevents=TICK_5\nredirect_stderr=true\n",
            "redirect_stderr=true but this is not allowed",
        ),
        ("[supervisord]\n[inet_http_server]\nusername=u\n", "has no port value"),
        ("[supervisord]\n[inet_http_server]\nport=9001\nusername=u\n", "incomplete authentication"),
        ("[supervisord]\n[unix_http_server]\nchmod=0700\n", "has no file value"),
        (
            "[supervisord]\n[program:p]\ncommand=x\nstdout_logfile=/nonexistent/dir/x.log\n",
            "does not exist",
        ),
        ("[supervisord]\n[program:p]\ncommand=x\nuser=no-such-user-here\n", "Invalid user name"),
        ("[supervisord]\nbogus line\n", "neither a [section]"),
    ];
    for (text, why) in cases {
        let e = refused(text);
        assert!(e.contains(why), "{text:?}: {e}");
        assert!(e.starts_with(FILE), "{text:?}: the place is named: {e}");
    }
}

#[test]
fn an_error_names_the_line_and_the_key() {
    let e = refused("[supervisord]\n\n[program:p]\ncommand=x\nstartretries=many\n");
    assert!(e.starts_with(&format!("{FILE}:5:1: [program:p] startretries: ")), "{e}");
}

#[test]
fn warnings_and_what_is_not_mapped() {
    let (_, m) = ok(
        "[supervisord]\nnodaemon=true\n[program:p]\ncommand=x\nbogus=1\ndependent_startup=true\n\
                     [Program:q]\ncommand=y\n[fcgi-program:f]\ncommand=z\nsocket=tcp://localhost:9000\n\
                     [program:d]\ncommand=date +%s\n[program:u]\ncommand=x\nserverurl=http://h:1\n",
    );
    let said = |what: &str, unmapped: bool| {
        m.notes.iter().any(|n| n.unmapped == unmapped && n.error.to_string().contains(what))
    };
    assert!(said("[program:p] bogus: unknown key", false), "{:?}", m.notes);
    assert!(said("[program:p] dependent_startup: unknown key", false));
    assert!(said("[Program:q]: section names are case-sensitive", false));
    assert!(!m.notes.iter().any(|n| n.error.to_string().contains("[fcgi-program:f]")));
    assert!(said("[program:d] command: a '%' with no (name)", true));
    assert!(said("[program:u] serverurl: ignored", true));
    assert!(!m.toml.contains("[programs.q]") && !m.toml.contains("[programs.Q]"));
}

#[test]
fn program_options_map_to_kahi_keys() {
    let (c, m) = ok("[supervisord]\nstrip_ansi=true\nminfds=2048\nloglevel=blather\n\
                     [program:p]\ncommand=x\nautorestart=true\nexitcodes=1,4\nstopsignal=quit\n\
                     stopwaitsecs=3\nstopasgroup=true\numask=027\nredirect_stderr=true\n\
                     stdout_logfile=NONE\nstdout_capture_maxbytes=1KB\nstdout_events_enabled=yes\n\
                     startretries=9\nautostart=false\npriority=-5\n");
    let p = &c.processes[0];
    assert_eq!(p.autorestart, crate::config::AutoRestart::Always);
    assert_eq!(p.exitcodes, vec![1, 4]);
    assert_eq!(p.stopsignal, nix::sys::signal::Signal::SIGQUIT);
    assert_eq!(p.stopwaitsecs, std::time::Duration::from_secs(3));
    assert!(p.stopasgroup && p.redirect_stderr && p.stdout_events_enabled && p.strip_ansi);
    assert_eq!(p.umask, Some(0o27));
    assert_eq!(p.stdout_log, None);
    assert_eq!(p.stderr_log, None);
    assert_eq!(p.stdout_capturemode_maxbytes, 1024);
    assert_eq!((p.startretries, p.autostart, p.priority), (9, false, -5));
    assert_eq!(c.server.minfds, 2048);
    assert_eq!(c.logging.level, log::LevelFilter::Trace);
    assert!(m.toml.contains("# /etc/supervisor/supervisord.conf:5\n[programs.p]"), "{}", m.toml);
}

#[test]
fn listeners_and_servers() {
    let (c, _) = ok(
        "[supervisord]\n[eventlistener:l]\ncommand=x\nevents=process_state, TICK_60\nbuffer_size=3\n\
                     [inet_http_server]\nport=127.0.0.1:9001\nusername=u\npassword=pw\n\
                     [unix_http_server]\nfile=/tmp/kahi-s.sock\nchmod=0770\nchown=0:0\n\
                     username=u\npassword=other\n",
    );
    let l = &c.processes[0];
    assert_eq!(l.priority, -1);
    let spec = l.listener.as_ref().unwrap();
    assert_eq!(spec.buffer_size, 3);
    // supervisorctl's socket speaks HTTP, first of the listen addresses (the one programs are
    // told of); kahi ctl's goes beside it, with the same mode and group.
    use crate::config::Listen;
    assert_eq!(
        c.server.http.listen,
        [Listen::Unix("/tmp/kahi-s.sock".into()), Listen::Tcp("127.0.0.1:9001".parse().unwrap())]
    );
    assert_eq!((c.server.http.socket_mode, c.server.http.socket_owner), (0o770, Some((0, 0))));
    assert_eq!(c.server.socket, Path::new("/tmp/kahi-s.kahi.sock"));
    // supervisord copies no program's output to its own.
    assert_eq!(c.logging.console, crate::config::ConsoleMode::Off);
    assert_eq!((c.server.socket_mode, c.server.socket_group), (0o770, Some(0)));
    // One user for the two servers' one name, with the password given first.
    assert_eq!(c.server.http.users.len(), 1);
    assert!(bcrypt::verify("pw", &c.server.http.users[0].password_hash).unwrap());
    let (c, _) =
        ok("[supervisord]\n[unix_http_server]\nfile=/run/supervisor\nusername=u\npassword=pw\n");
    assert_eq!(c.server.socket, Path::new("/run/supervisor.kahi.sock"));
    assert_eq!(c.server.http.listen, [Listen::Unix("/run/supervisor".into())]);
    assert!(bcrypt::verify("pw", &c.server.http.users[0].password_hash).unwrap());
    // A relative file is made absolute, as supervisord's normalize_path makes it.
    let (c, _) = ok("[supervisord]\n[unix_http_server]\nfile=s.sock\n");
    let here = std::env::current_dir().unwrap();
    assert_eq!(c.server.http.listen, [Listen::Unix(here.join("s.sock"))]);
    assert_eq!(c.server.socket, here.join("s.kahi.sock"));
}

#[test]
fn content_tells_the_format() {
    assert!(looks_like("; x\n[supervisord]\n"));
    assert!(looks_like("  [program:x]\ncommand=y\n"));
    assert!(!looks_like("[programs.web]\ncommand = \"x\"\n"));
    assert!(!looks_like("include = [\"[program:x]\"]\n"));
}

#[test]
fn a_reread_gives_the_same_server_table() {
    let text = "[supervisord]\n[inet_http_server]\nport=127.0.0.1:9001\nusername=u\npassword=pw\n";
    let (a, _) = ok(text);
    let (b, _) = ok(text);
    assert_eq!(a.server, b.server, "else every reread would say [server] changed");
}

#[test]
fn every_supervisord_option_the_schema_names_is_read() {
    use crate::config::schema::{KEYS, Section};
    for key in KEYS {
        let Some(name) = key.supervisord else { continue };
        match key.section {
            Section::Program => assert!(
                program::PROGRAM_KEYS.contains(&name) || name == "[supervisord] strip_ansi",
                "the schema maps {name} to programs.{}, the reader does not know it",
                key.name
            ),
            Section::Listener => assert!(program::LISTENER_KEYS.contains(&name), "{name}"),
            Section::Fcgi => assert!(map::FCGI_KEYS.contains(&name), "{name}"),
            _ => {}
        }
    }
}

#[test]
fn fcgi_programs_keep_their_socket_keys() {
    let (c, m) = ok("[supervisord]\n[fcgi-program:php]\ncommand=/usr/bin/php-cgi\n\
                     socket=unix:///run/%(program_name)s-%(ENV_N)s.sock\nsocket_mode=0660\n\
                     socket_backlog=32\nnumprocs=2\nprocess_name=%(program_name)s_%(process_num)d\n\
                     [fcgi-program:tcp]\ncommand=/usr/bin/php-cgi\nsocket=tcp://localhost:9000\n");
    assert!(m.toml.contains("[fcgi_programs.php]"), "{}", m.toml);
    assert!(m.toml.contains("socket = \"unix:///run/php-4.sock\""), "expanded: {}", m.toml);
    assert_eq!(
        table(&c)[..2],
        [
            ("php:php_0".into(), s(&["/usr/bin/php-cgi"])),
            ("php:php_1".into(), s(&["/usr/bin/php-cgi"])),
        ]
    );
    let f = c.processes.iter().find(|p| p.name == "php_1").unwrap().fcgi.clone().unwrap();
    assert_eq!(f.addr, crate::config::Listen::Unix("/run/php-4.sock".into()));
    assert_eq!((f.mode, f.backlog), (0o660, Some(32)));
    let f = c.processes.iter().find(|p| p.name == "tcp").unwrap().fcgi.clone().unwrap();
    assert!(matches!(f.addr, crate::config::Listen::Tcp(a) if a.port() == 9000));
    assert!(!m.notes.iter().any(|n| n.error.key.contains("fcgi")), "{:?}", m.notes);
}

/// supervisord reads an fcgi-program named by a [group:x] as a program: no socket.
#[test]
fn an_fcgi_program_in_a_group_runs_without_its_socket_as_in_supervisord() {
    let (c, m) = ok("[supervisord]\n[group:g]\nprograms=php\n\
                     [fcgi-program:php]\ncommand=/usr/bin/php-cgi\nsocket=tcp://127.0.0.1:9000\n");
    assert_eq!(table(&c), [("g:php".into(), s(&["/usr/bin/php-cgi"]))]);
    assert_eq!(c.processes[0].fcgi, None);
    assert!(m.toml.contains("[programs.php]"), "{}", m.toml);
    assert!(
        m.notes.iter().any(|n| !n.unmapped && n.error.to_string().contains("without the socket"))
    );
}

#[test]
fn fcgi_socket_errors_are_supervisords() {
    let sec = "[supervisord]\n[fcgi-program:f]\ncommand=x\n";
    for (keys, line, says) in [
        ("", 2, "[fcgi-program:f] section requires a \"socket\" line"),
        ("socket=udp://h:1\n", 4, "Bad socket format udp://h:1 in [fcgi-program:f] socket"),
        ("socket=tcp://[::1]:9000\n", 4, "Bad socket format"),
        ("socket=unix://rel.sock\n", 4, "Unix socket path rel.sock is not an absolute path"),
        (
            "socket=tcp://h:1\nsocket_mode=0600\n",
            4,
            "should only be used with a Unix domain socket",
        ),
        ("socket=unix:///a\nsocket_mode=rw\n", 5, "Invalid socket_mode value rw"),
        ("socket=unix:///a\nsocket_backlog=0\n", 5, "Invalid socket_backlog value 0"),
        ("socket=unix:///a\nsocket_owner=no-such-user-k\n", 5, "Invalid socket_owner value"),
        ("socket=unix:///a_%(process_num)d\n", 4, "process_num"),
    ] {
        let e = refused(&format!("{sec}{keys}"));
        assert!(e.starts_with(&format!("{FILE}:{line}:")), "{keys}: {e}");
        assert!(e.contains(says), "{keys}: {e}");
    }
}

/// `[rpcinterface:x]` as supervisord's `get_plugins` reads it: supervisord's own interface is
/// Kahi's too; a plugin is not mapped, at its section's line; no factory, or a name that cannot
/// be expanded in any of its keys, refuses the file.
#[test]
fn rpc_interface_sections_as_supervisord_reads_them() {
    const MAIN: &str =
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n";
    let (_, m) = ok(&format!("[supervisord]\nnodaemon=true\n[rpcinterface:supervisor]\n{MAIN}"));
    assert!(m.notes.is_empty(), "{:?}", m.notes);
    let (_, m) = ok(&format!(
        "[supervisord]\nnodaemon=true\nenvironment=G=g\n[rpcinterface:supervisor]\n{MAIN}\n\
         [rpcinterface:twiddler]\nsupervisor.rpcinterface_factory = supervisor_twiddler.rpcinterface:make_twiddler_rpcinterface\n\
         home = %(ENV_HOME)s/%(ENV_G)s\n"
    ));
    let [n] = &m.notes[..] else { panic!("{:?}", m.notes) };
    assert!(n.unmapped);
    assert!(
        n.error.to_string().starts_with(&format!("{FILE}:7:1: [rpcinterface:twiddler]: ")),
        "{}",
        n.error
    );
    for (keys, line, says) in [
        (
            "retries = 3\n",
            2,
            "section [rpcinterface:x] does not specify a supervisor.rpcinterface_factory",
        ),
        ("supervisor.rpcinterface_factory = %(ENV_NOPE)s:f\n", 3, "cannot be expanded"),
        (
            "supervisor.rpcinterface_factory = p:f\nretries = %(ENV_NOPE)s\n",
            4,
            "cannot be expanded",
        ),
        ("supervisor.rpcinterface_factory = p:f\nwhere = %(here)s\n", 4, "cannot be expanded"),
    ] {
        let e = refused(&format!("[supervisord]\n[rpcinterface:x]\n{keys}"));
        assert!(e.starts_with(&format!("{FILE}:{line}:")), "{keys}: {e}");
        assert!(e.contains(says), "{keys}: {e}");
    }
}

/// `%%` in environment= is a `%` in the child's environment, beside an expanded name; text
/// that looks like a name or a variable after the expansion stays as it is through Kahi's
/// TOML (whose own `%(..)` and `${..}` are not applied to it).
#[test]
fn percent_signs_in_environment_reach_the_child_as_supervisord_gives_them() {
    let (c, m) = ok("[supervisord]\nenvironment=G=\"%%%%g %(ENV_N)s\",H=\"%%(ENV_N)s\"\n\
                     [program:p]\ncommand=/bin/p\n\
                     environment=P=\"100%%\",Q=\"%(ENV_HOME)s is 50%%\",R=\"%%(ENV_N)s ${N} $N\"\n");
    let env: Vec<(&str, &str)> =
        c.processes[0].environment.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        env,
        [
            ("G", "%g 4"),
            ("H", "4"),
            ("P", "100%"),
            ("Q", "/home/k is 50%"),
            ("R", "%(ENV_N)s ${N} $N")
        ],
        "{}",
        m.toml
    );
}

/// For another host, users and directories are taken as written; for this one, checked.
#[test]
fn users_and_directories_are_checked_only_for_this_host() {
    let text = "[supervisord]\nchildlogdir=/nonexistent/l\nlogfile=/nonexistent/s/s.log\n\
                [program:p]\ncommand=x\nuser=no-such-user-here\nstdout_logfile=/nonexistent/d/x.log\n\
                [fcgi-program:f]\ncommand=x\nsocket=unix:///run/f.sock\nsocket_owner=no-such-user-here\n";
    let m = convert(Path::new(FILE), text, &env(), false).unwrap_or_else(|e| panic!("{e:?}"));
    for written in ["user = \"no-such-user-here\"", "/nonexistent/d/x.log", "/nonexistent/l"] {
        assert!(m.toml.contains(written), "{written}: {}", m.toml);
    }
    let e = migrate(Path::new(FILE), text, &env()).unwrap_err();
    assert_eq!(e.len(), 3, "[supervisord], [program:p] and [fcgi-program:f]: {e:?}");
}
