//! supervisord.conf read as it is: for configurations written to cover supervisord's parsing
//! rules, Kahi's resolved process table (`kahi daemon --check --json`) is the one supervisord's
//! own parser gives (tests/supervisord_table.py, Debian's `supervisor` package); a file
//! supervisord refuses, Kahi refuses. Then `kahi daemon` runs a supervisord.conf, `kahi migrate`
//! writes TOML that loads to the same table, and a 1,000-program file migrates quickly.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

const ORACLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/supervisord_table.py");

/// A Python that has supervisord's modules.
fn python() -> Option<String> {
    ["/usr/bin/python3", "python3"].into_iter().map(String::from).find(|py| {
        Command::new(py)
            .args(["-c", "import supervisor.options"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid()).unwrap().unwrap().name
}

/// The environment both parsers run with.
fn env(cmd: &mut Command) -> &mut Command {
    cmd.env("KAHI_MIG", "from env")
        .env("KAHI_USER", user())
        .env("KAHI_FACTORY", "supervisor.rpcinterface:make_main_rpcinterface")
}

/// The rows sorted, so the two orders (Kahi's start order, supervisord's group order) compare.
fn sorted(v: Value) -> Vec<Value> {
    let mut rows = v.as_array().cloned().unwrap_or_default();
    rows.sort_by_key(|r| (r["group"].to_string(), r["name"].to_string()));
    rows
}

/// Kahi's table and supervisord's for `main` in `dir`: (Kahi, supervisord), or the two
/// refusals.
fn both(
    dir: &Dir,
    main: &str,
    py: &str,
) -> (Result<Vec<Value>, String>, Result<Vec<Value>, String>) {
    let path = dir.join(main);
    let k = run(env(&mut Command::new(KAHI))
        .arg("daemon")
        .arg("--check")
        .arg("--json")
        .arg("-c")
        .arg(&path));
    let kahi = match k.code {
        0 => Ok(sorted(
            serde_json::from_str(&k.stdout).unwrap_or_else(|e| panic!("{e}: {}", k.stdout)),
        )),
        2 => Err(k.stderr),
        c => panic!("kahi exited {c}: {}", k.stderr),
    };
    let s = run(env(&mut Command::new(py)).arg(ORACLE).arg(&path));
    let sup = match s.code {
        0 => Ok(sorted(serde_json::from_str(&s.stdout).unwrap())),
        2 => Err(s.stdout),
        c => panic!("the oracle exited {c}: {}{}", s.stdout, s.stderr),
    };
    (kahi, sup)
}

/// Each configuration: its files (name, text; `{dir}` is the test directory), and a word on
/// what it covers.
const ACCEPTED: &[(&str, &[(&str, &str)])] = &[
    ("comments, delimiters, continuation, key case, section case", &[("s.conf", "\
; a full-line comment
# another
[supervisord]
nodaemon = true ; inline
  ; an indented comment

[program:a]
command: /bin/echo a;b #not-a-comment
    continued \"x y\" ; gone
PRIORITY = 5
autostart=false
[Program:ignored]
command=/bin/true
[program: spaced ]
command=/bin/echo spaced
unknown_key=1
[program:rounds]
command=/bin/echo a;b ;c #d
")]),
    ("[DEFAULT], duplicate sections merged, the last key wins", &[("s.conf", "\
[DEFAULT]
autostart=off
[supervisord]
[program:d]
command=/bin/echo 1
[program:e]
command=/bin/echo e
autostart=yes
[program:d]
command=/bin/echo 2
priority=7
")]),
    ("numprocs, process_name, every expansion, printf forms, %%", &[("s.conf", "\
[supervisord]
environment=GV=\"g v\",SHARED=global
[program:w]
command=/bin/echo %(program_name)s %(process_num)03d %(numprocs)d %(ENV_KAHI_MIG)s %(ENV_GV)s %(here)s %(group_name)s 100%%
numprocs=3
numprocs_start=2
process_name=%(program_name)s-%(process_num)d
[program:v]
command=/bin/echo %(ENV_OWN)s %(ENV_SHARED)s
environment=OWN=%(process_num)s,SHARED=\"mine, quoted\"
numprocs=2
process_name=v%(process_num)s
[program:one]
command=/bin/echo %(process_num)02d
process_name=%(program_name)s_%(process_num)02d
")]),
    // [supervisord] environment= is expanded twice (supervisord 4.2.5), a program's once.
    ("%% in environment=, beside %(ENV_X)s, and a literal %(name)s that is not expanded again", &[("s.conf", "\
[supervisord]
environment=G=\"%%%%g %(ENV_KAHI_MIG)s\",H=\"%%(ENV_KAHI_MIG)s\"
[program:e]
command=/bin/echo '%(ENV_P)s' '%(ENV_Q)s' '%(ENV_R)s' '%(ENV_T)s' '%(ENV_G)s' '%(ENV_U)s' '%(ENV_H)s'
environment=P=\"100%%\",Q=\"%(ENV_KAHI_MIG)s is 50%%\",R=\"%%(ENV_KAHI_MIG)s\",U=\"%(ENV_G)s\",T=a%%
")]),
    ("[include]: relative globs, sorted, one level, %(here)s per file", &[
        ("s.conf", "[supervisord]\n[program:main]\ncommand=/bin/echo %(here)s\n[include]\nfiles = conf.d/*.conf none/*.conf\n"),
        ("conf.d/b.conf", "[program:b]\ncommand=/bin/echo %(here)s b\n[program:main]\npriority=3\n"),
        ("conf.d/a.conf", "[program:a]\ncommand=/bin/echo a\n[include]\nfiles=never/*.conf\n"),
        ("conf.d/.hidden.conf", "[program:hidden]\ncommand=/bin/echo hidden\n"),
        ("never/x.conf", "[program:never]\ncommand=/bin/echo never\n"),
    ]),
    ("groups, priorities, event listener pools, users", &[("s.conf", "\
[supervisord]
[group:g]
programs=a, b
priority=3
[program:a]
command=/bin/echo a
priority=10
user=%(ENV_KAHI_USER)s
[program:b]
command=/bin/echo b
[program:c]
command=/bin/echo c
[eventlistener:l]
command=/bin/cat
events=process_state,TICK_60
[eventlistener:m]
command=/bin/cat %(process_num)d
events=TICK_5
numprocs=2
process_name=m%(process_num)d
priority=4
")]),
    ("FastCGI programs: numprocs, sockets, one named by a group (a program there)", &[("s.conf", "\
[supervisord]
[fcgi-program:php]
command=/bin/cat %(process_num)d
socket=unix://{dir}/%(program_name)s.sock
socket_mode=0660
socket_backlog=16
numprocs=3
process_name=%(program_name)s_%(process_num)d
[fcgi-program:tcp]
command=/bin/cat
socket=tcp://localhost:9000
priority=2
[group:g]
programs=grouped
[fcgi-program:grouped]
command=/bin/cat g
socket=tcp://127.0.0.1:9001
")]),
    ("supervisord's own RPC interface, its keys expanded with ENV_* alone", &[("s.conf", "\
[supervisord]
environment=G=g
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[rpcinterface:again]
supervisor.rpcinterface_factory = %(ENV_KAHI_FACTORY)s
note = %(ENV_KAHI_MIG)s %(ENV_G)s 100%%
[program:p]
command=/bin/echo p
")]),
];

/// Files supervisord refuses, and so must Kahi.
const REFUSED: &[(&str, &str)] = &[
    ("numprocs without process_num", "[supervisord]\n[program:p]\ncommand=/bin/echo\nnumprocs=2\n"),
    ("an unknown group member", "[supervisord]\n[group:g]\nprograms=nope\n"),
    ("an unset environment variable", "[supervisord]\n[program:p]\ncommand=%(ENV_KAHI_NOT_SET)s\n"),
    ("a lone %", "[supervisord]\n[program:p]\ncommand=/bin/date +%Y\n"),
    (
        "%% once in [supervisord] environment=, which is expanded twice",
        "[supervisord]\nenvironment=A=\"100%%\"\n[program:p]\ncommand=/bin/echo\n",
    ),
    (
        "host_node_name in [supervisord] environment=",
        "[supervisord]\nenvironment=H=%(host_node_name)s\n[program:p]\ncommand=/bin/echo\n",
    ),
    ("no [supervisord]", "[program:p]\ncommand=/bin/echo\n"),
    ("a line that is no key", "[supervisord]\n[program:p]\ncommand=/bin/echo\njunk\n"),
    (
        "stopasgroup without killasgroup",
        "[supervisord]\n[program:p]\ncommand=/bin/echo\nstopasgroup=true\nkillasgroup=false\n",
    ),
    ("a listener without events", "[supervisord]\n[eventlistener:l]\ncommand=/bin/cat\n"),
    ("a bad environment", "[supervisord]\n[program:p]\ncommand=/bin/echo\nenvironment=A=1,B\n"),
    ("a program without command", "[supervisord]\n[program:p]\nautostart=true\n"),
    ("an fcgi-program without socket", "[supervisord]\n[fcgi-program:f]\ncommand=/bin/cat\n"),
    ("a bad fcgi socket", "[supervisord]\n[fcgi-program:f]\ncommand=/bin/cat\nsocket=tcp:/h:1\n"),
    (
        "an rpcinterface without its factory",
        "[supervisord]\n[rpcinterface:x]\nretries=3\n[program:p]\ncommand=/bin/echo\n",
    ),
    (
        "an unset variable in an rpcinterface key",
        "[supervisord]\n[rpcinterface:supervisor]\n\
         supervisor.rpcinterface_factory=supervisor.rpcinterface:make_main_rpcinterface\n\
         retries=%(ENV_KAHI_NOT_SET)s\n[program:p]\ncommand=/bin/echo\n",
    ),
    (
        "socket_mode on a TCP socket",
        "[supervisord]\n[fcgi-program:f]\ncommand=/bin/cat\nsocket=tcp://h:1\nsocket_mode=0600\n",
    ),
];

#[test]
fn the_process_table_is_the_one_supervisords_own_parser_gives() {
    let Some(py) = python() else {
        return skip("no python3 with supervisord's modules (apt-get install supervisor)");
    };
    for (what, files) in ACCEPTED {
        let dir = Dir::new("sup-table");
        for (name, text) in *files {
            dir.write(name, &text.replace("{dir}", &path_str(&dir.path)));
        }
        let (kahi, sup) = both(&dir, "s.conf", &py);
        let sup = sup.unwrap_or_else(|e| panic!("{what}: supervisord refuses it: {e}"));
        let kahi = kahi.unwrap_or_else(|e| panic!("{what}: Kahi refuses it: {e}"));
        assert!(!sup.is_empty(), "{what}");
        assert_eq!(kahi, sup, "{what}");
    }
}

#[test]
fn what_supervisord_refuses_kahi_refuses_naming_the_line() {
    let Some(py) = python() else {
        return skip("no python3 with supervisord's modules (apt-get install supervisor)");
    };
    for (what, text) in REFUSED {
        let dir = Dir::new("sup-refused");
        dir.write("s.conf", text);
        let (kahi, sup) = both(&dir, "s.conf", &py);
        assert!(sup.is_err(), "{what}: supervisord accepts it: {sup:?}");
        let e = kahi.expect_err(what);
        assert!(e.contains(&path_str(&dir.join("s.conf"))), "{what}: {e}");
    }
}

#[test]
fn the_daemon_runs_a_supervisord_conf_with_its_names() {
    let dir = Dir::new("sup-daemon");
    let socket = dir.join("supervisor.sock");
    // kahi ctl's socket, beside supervisorctl's.
    let control = dir.join("supervisor.kahi.sock");
    let text = format!(
        "[unix_http_server]\nfile={}\n[supervisord]\nnodaemon=true\nchildlogdir={}\n\
         [program:web]\ncommand=/bin/sleep 600\nnumprocs=2\nprocess_name=%(program_name)s_%(process_num)02d\n\
         startsecs=0\n[program:worker]\ncommand=/bin/sh -c 'echo started; exec sleep 600'\nstartsecs=0\n\
         [group:back]\nprograms=worker\n\
         [rpcinterface:supervisor]\n\
         supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\
         [supervisorctl]\nserverurl=unix://{0}\n",
        path_str(&socket),
        path_str(&dir.path)
    );
    let config = dir.write("supervisord.conf", &text);
    let d = Daemon::launch(dir, config.clone(), control, &[]);
    for name in ["web:web_00", "web:web_01", "back:worker"] {
        d.wait_state(name, "RUNNING");
    }
    // Programs are told the socket's URL, as supervisord tells them.
    let worker = d.process("back:worker")["pid"].as_i64().unwrap();
    let environ = std::fs::read(format!("/proc/{worker}/environ")).unwrap();
    let url = format!("SUPERVISOR_SERVER_URL=unix://{}", path_str(&socket));
    assert!(environ.split(|b| *b == 0).any(|v| v == url.as_bytes()), "no {url}");
    // The stock supervisorctl, on the same file, speaks to Kahi through that socket.
    if std::path::Path::new(crate::ctl_habits::SUPERVISORCTL).exists() {
        let out = run(Command::new(crate::ctl_habits::SUPERVISORCTL)
            .arg("-c")
            .arg(&config)
            .arg("status"));
        assert_eq!(out.code, 0, "{out:?}");
        let running = out.stdout.lines().filter(|l| l.contains("RUNNING")).count();
        assert_eq!(running, 3, "{}", out.stdout);
    } else {
        skip("supervisorctl is not installed (Debian's supervisor package)");
    }
    let names: Vec<String> = d
        .status()
        .iter()
        .map(|p| {
            format!("{}:{}", p["group"].as_str().unwrap_or(""), p["name"].as_str().unwrap_or(""))
        })
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    // supervisord's AUTO log file, in childlogdir.
    wait_until("the AUTO log has the line", DEADLINE, || {
        d.dir.read("back_worker-stdout.log").contains("started")
    });
}

#[test]
fn migrate_writes_toml_that_loads_to_the_same_table_and_check_says_what_is_left_out() {
    let dir = Dir::new("sup-migrate");
    let text = "[supervisord]\npidfile=/tmp/x.pid\n[program:a]\ncommand=/bin/echo a\nnumprocs=2\nprocess_name=a%(process_num)d\n[fcgi-program:f]\ncommand=/bin/cat\nsocket=tcp://127.0.0.1:9000\n";
    let conf = dir.write("s.conf", text);
    let out = dir.join("kahi.toml");
    let m = run(Command::new(KAHI).arg("migrate").arg(&conf).arg("-o").arg(&out));
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert!(m.stderr.contains(":2:1: [supervisord] pidfile: "), "{}", m.stderr);
    let toml = dir.read("kahi.toml");
    assert!(toml.contains("# ") && toml.contains("s.conf:3\n[programs.a]"), "{toml}");
    assert!(toml.contains("s.conf:7\n[fcgi_programs.f]"), "{toml}");
    let table = |path: &std::path::Path| {
        let o = run(Command::new(KAHI).args(["daemon", "--check", "--json", "-c"]).arg(path));
        assert_eq!(o.code, 0, "{}", o.stderr);
        o.stdout
    };
    assert_eq!(table(&out), table(&conf));
    let check = run(Command::new(KAHI).arg("migrate").arg("--check").arg(&conf));
    assert_eq!(check.code, 1, "{}", check.stderr);
    assert!(check.stdout.is_empty());
    let clean =
        dir.write("clean.conf", "[supervisord]\nnodaemon=true\n[program:a]\ncommand=/bin/echo\n");
    let check = run(Command::new(KAHI).arg("migrate").arg("--check").arg(&clean));
    assert_eq!(check.code, 0, "{}", check.stderr);
    let refused =
        dir.write("bad.conf", "[supervisord]\n[program:a]\nstartsecs=x\ncommand=/bin/echo\n");
    let r = run(Command::new(KAHI).arg("migrate").arg(&refused));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad.conf:3:1: [program:a] startsecs: "), "{}", r.stderr);
}

#[test]
fn a_thousand_programs_migrate_quickly() {
    let dir = Dir::new("sup-1000");
    let mut text = String::from("[supervisord]\nnodaemon=true\n");
    for i in 0..1000 {
        text.push_str(&format!(
            "[program:p{i}]\ncommand=/bin/sleep {i}\npriority={}\nenvironment=A=\"{i}\",B=b\nstdout_logfile=NONE\n",
            i % 10
        ));
    }
    let conf = dir.write("s.conf", &text);
    let started = Instant::now();
    let m = run(Command::new(KAHI).arg("migrate").arg(&conf).arg("-o").arg(dir.join("k.toml")));
    let took = started.elapsed();
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert_eq!(dir.read("k.toml").matches("[programs.").count(), 1000);
    // Generous for a debug build on a loaded machine; a release build takes far less.
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// An RPC interface plugin is Python code Kahi does not run: `kahi migrate` writes the rest and
/// says so at the section's line, and `--check` fails; supervisord's own interface (as in
/// Debian's supervisord.conf) is Kahi's, and passes.
#[test]
fn an_rpc_interface_plugin_is_not_mapped_and_fails_the_check() {
    let dir = Dir::new("sup-rpc");
    let own = "[rpcinterface:supervisor]\n\
               supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n";
    let clean = dir.write(
        "clean.conf",
        &format!("[supervisord]\nnodaemon=true\n{own}[program:a]\ncommand=/bin/echo\n"),
    );
    let check = run(Command::new(KAHI).arg("migrate").arg("--check").arg(&clean));
    assert_eq!((check.code, check.stderr.as_str()), (0, ""));
    let text = format!(
        "[supervisord]\nnodaemon=true\n{own}[rpcinterface:twiddler]\n\
         supervisor.rpcinterface_factory = supervisor_twiddler.rpcinterface:make_twiddler_rpcinterface\n\
         [program:a]\ncommand=/bin/echo\n"
    );
    let conf = dir.write("s.conf", &text);
    let said = format!("not mapped: {}:5:1: [rpcinterface:twiddler]: ", path_str(&conf));
    let check = run(Command::new(KAHI).arg("migrate").arg("--check").arg(&conf));
    assert_eq!(check.code, 1, "{}", check.stderr);
    assert!(check.stderr.contains(&said), "{}", check.stderr);
    let m = run(Command::new(KAHI).arg("migrate").arg(&conf).arg("-o").arg(dir.join("k.toml")));
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert!(m.stderr.contains(&said), "{}", m.stderr);
    let toml = dir.read("k.toml");
    assert!(toml.contains("[programs.a]") && toml.contains("# not mapped: "), "{toml}");
}

/// What supervisord reads silently wrong is warned at its file, line and key, and the file is
/// read on as supervisord reads it: values an unquoted `$`, `#`, `?` or `;` cut short (the
/// table is supervisord's), a command an inline comment cut short (supervisord accepts it and
/// cannot start it: nor can Kahi, and the rest runs), and a bare `%s` (not mapped: supervisord
/// puts its whole table of names there, Kahi keeps the text).
#[test]
fn the_silent_traps_are_warned_at_their_line_and_read_on_as_supervisord_reads_them() {
    let dir = Dir::new("sup-traps");
    let socket = dir.join("supervisor.sock");
    // kahi ctl's socket, beside supervisorctl's.
    let control = dir.join("supervisor.kahi.sock");
    let text = format!(
        "[unix_http_server]\nfile={}\n[supervisord]\nnodaemon=true\nchildlogdir={}\n\
         [program:dollar]\ncommand=/bin/echo %(ENV_P)s\nenvironment=P=$PATH:/x\n\
         [program:hash]\ncommand=/bin/echo %(ENV_PASS)s %(ENV_A)s\nenvironment=A=\"x\",PASS=abc#def,B=2\n\
         [program:query]\ncommand=/bin/echo %(ENV_URL)s %(ENV_y)s\nenvironment=URL=http://h:9/x?y=1\n\
         [program:semi]\ncommand=/bin/echo %(ENV_A)s %(ENV_C)s\nenvironment=A=b;C=d\n\
         [program:cut]\ncommand=sh -c 'echo a ; sleep 600'\nstartretries=0\n\
         [program:runs]\ncommand=/bin/sleep 600\nstartsecs=0\n",
        path_str(&socket),
        path_str(&dir.path)
    );
    let conf = dir.write("s.conf", &text);
    let file = path_str(&conf);
    if let Some(py) = python() {
        let (kahi, sup) = both(&dir, "s.conf", &py);
        assert_eq!(kahi.unwrap(), sup.unwrap());
    } else {
        skip("no python3 with supervisord's modules: the table is not compared");
    }
    let m = run(Command::new(KAHI).arg("migrate").arg(&conf));
    assert_eq!(m.code, 0, "{}", m.stderr);
    for (line, key, says) in [
        (8, "[program:dollar] environment", "P=$ is followed by \"PATH:/x\""),
        (11, "[program:hash] environment", "an unquoted '#' starts a comment"),
        (14, "[program:query] environment", "followed by \"?\""),
        (17, "[program:semi] environment", "followed by \";\""),
        (19, "[program:cut] command", "probably cut short by an inline comment"),
    ] {
        let want = format!("warning: {file}:{line}:1: {key}: ");
        let said = m.stderr.lines().find(|l| l.starts_with(&want));
        assert!(said.is_some_and(|l| l.contains(says)), "{want}…{says}: {}", m.stderr);
    }
    // Run: the program whose command cannot be split never starts, the others do.
    let d = Daemon::launch(dir, conf, control, &[]);
    d.wait_state("runs", "RUNNING");
    d.wait_state("cut", "FATAL");

    let dir = Dir::new("sup-trap-s");
    let conf = dir.write("s.conf", "[supervisord]\nnodaemon=true\n[program:d]\ncommand=date +%s\n");
    if let Some(py) = python() {
        let (_, sup) = both(&dir, "s.conf", &py);
        assert!(sup.is_ok_and(|t| t[0]["command"][1].as_str().unwrap().contains("ENV_")));
    }
    let want = format!("not mapped: {}:4:1: [program:d] command: a '%' with no", path_str(&conf));
    let m = run(Command::new(KAHI).arg("migrate").arg(&conf));
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert!(m.stderr.contains(&want), "{}", m.stderr);
    assert!(m.stdout.contains("command = \"date +%%s\""), "kept as written: {}", m.stdout);
    let check = run(Command::new(KAHI).arg("migrate").arg("--check").arg(&conf));
    assert_eq!(check.code, 1, "{}", check.stderr);
}

/// Users and directories are the host's: `kahi migrate` writes them as they are, with a warning
/// at their line, as the TOML may be for another host; `kahi daemon` here refuses the file at
/// load for a missing user or log directory (as supervisord does), and a missing working
/// directory fails the program when it starts (as supervisord's spawn).
#[test]
fn users_and_directories_are_not_checked_by_migrate_and_are_by_the_daemon() {
    let dir = Dir::new("sup-host");
    let text = "[supervisord]\nnodaemon=true\nchildlogdir=/nonexistent/kahi-logs\n\
                [program:p]\ncommand=/bin/sleep 600\nuser=kahi-no-such-user\n\
                directory=/nonexistent/kahi-dir\nstdout_logfile=/nonexistent/kahi-log/out.log\n";
    let conf = dir.write("s.conf", text);
    let file = path_str(&conf);
    let out = dir.join("kahi.toml");
    let m = run(Command::new(KAHI).arg("migrate").arg(&conf).arg("-o").arg(&out));
    assert_eq!(m.code, 0, "{}", m.stderr);
    let toml = dir.read("kahi.toml");
    for written in [
        "childlogdir = \"/nonexistent/kahi-logs\"",
        "user = \"kahi-no-such-user\"",
        "directory = \"/nonexistent/kahi-dir\"",
        "stdout_logfile = \"/nonexistent/kahi-log/out.log\"",
    ] {
        assert!(toml.contains(written), "{written}: {toml}");
    }
    for (line, key) in
        [(3, "logging.childlogdir"), (6, "programs.p.user"), (8, "programs.p.stdout_logfile")]
    {
        let want = format!("warning: {file}:{line}:1: {key}: on this host, ");
        assert!(m.stderr.contains(&want), "{want}: {}", m.stderr);
    }
    let check = run(Command::new(KAHI).arg("migrate").arg("--check").arg(&conf));
    assert_eq!(check.code, 0, "{}", check.stderr);
    // Here the daemon refuses it at load, with supervisord's reasons at their lines.
    for path in [&conf, &out] {
        let d = run(Command::new(KAHI).args(["daemon", "--check", "-c"]).arg(path));
        assert_eq!(d.code, 2, "{}", d.stderr);
        assert!(d.stderr.contains("kahi-no-such-user"), "{}", d.stderr);
        assert!(d.stderr.contains("/nonexistent/kahi-logs"), "{}", d.stderr);
    }
    let d = run(Command::new(KAHI).args(["daemon", "--check", "-c"]).arg(&conf));
    assert!(d.stderr.contains(&format!("{file}:6:1: [program:p] user: ")), "{}", d.stderr);

    // A missing working directory: the file loads, the program fails as it starts.
    let dir = Dir::new("sup-host-dir");
    let socket = dir.join("supervisor.sock");
    // kahi ctl's socket, beside supervisorctl's.
    let control = dir.join("supervisor.kahi.sock");
    let text = format!(
        "[unix_http_server]\nfile={}\n[supervisord]\nnodaemon=true\nchildlogdir={}\n\
         [program:p]\ncommand=/bin/sleep 600\ndirectory=/nonexistent/kahi-dir\nstartretries=0\n",
        path_str(&socket),
        path_str(&dir.path)
    );
    let conf = dir.write("s.conf", &text);
    let d = Daemon::launch(dir, conf, control, &[]);
    d.wait_state("p", "FATAL");
    let p = d.process("p");
    assert!(p.to_string().contains("/nonexistent/kahi-dir"), "{p}");
    d.wait_log("/nonexistent/kahi-dir");
}
