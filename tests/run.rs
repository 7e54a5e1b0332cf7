//! `kahi run`: a Procfile's stack, in a terminal (a pty) and out of one, with foreman's
//! names, ports, prefixes and colours, the `.env` file, what is refused, what stops the stack
//! and its exit status, `kahi ctl` against it; and `kahi migrate --from procfile`.

use std::process::{Command, Stdio};

use crate::util::*;

/// A process that says its name, port and greeting, marks itself ready, and waits (as
/// `sleep`, which SIGTERM ends).
const WAITER: &str =
    r#"echo "$PS port=$PORT greeting=$GREETING"; touch "$PS.ready"; exec sleep 1000"#;

fn procfile(kinds: &[&str]) -> String {
    kinds.iter().map(|k| format!("{k}: {WAITER}\n")).collect()
}

/// `kahi run ARGS` in `dir`, its stdout in `out.txt` and stderr in `daemon.log`; returns once
/// its control socket answers.
fn start(dir: Dir, args: &[&str]) -> Daemon {
    let out = std::fs::File::create(dir.join("out.txt")).unwrap();
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    let mut cmd = dir.command(KAHI);
    cmd.arg("run").args(args).current_dir(&dir.path);
    cmd.stdin(Stdio::null()).stdout(out).stderr(log);
    let (procfile, socket) = (dir.join("Procfile"), dir.join(".kahi-run.sock"));
    Daemon::spawn(dir, procfile, socket, cmd)
}

fn wait_files(d: &Daemon, names: &[&str]) {
    wait_until(&format!("{names:?} exist"), DEADLINE, || {
        names.iter().all(|n| d.dir.join(n).exists())
    });
}

/// Waits until the stack's output has every line of `lines`; returns the output.
fn wait_output(d: &Daemon, lines: &[&str]) -> String {
    wait_until(&format!("the output has {lines:?}"), DEADLINE, || {
        let out = d.dir.read("out.txt");
        lines.iter().all(|l| out.contains(l))
    });
    d.dir.read("out.txt")
}

/// Kahi's log says it stopped each of `names` with SIGTERM.
fn stopped(log: &str, names: &[&str]) {
    for name in names {
        let line = format!("stopped: {name} (terminated by SIGTERM)");
        assert!(log.contains(&line), "no {line:?} in:\n{log}");
    }
}

/// Runs `kahi run` in a new pty (python3's `pty` module), with `env`; once every name of
/// `ready` exists in the directory, types Ctrl-C. Returns what the terminal showed and the
/// exit status.
fn in_pty(dir: &Dir, args: &[&str], env: &[(&str, &str)], ready: &[&str]) -> (String, i32) {
    const DRIVER: &str = r#"
import os, pty, sys, time, select
ready, argv = sys.argv[1].split(","), sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out, sent, deadline = b"", False, time.time() + 60
while time.time() < deadline:
    if not sent and all(os.path.exists(r) for r in ready):
        os.write(fd, b"\x03")
        sent = True
    if select.select([fd], [], [], 0.05)[0]:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        out += data
else:
    os.kill(pid, 9)
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.stderr.write("sent=%s status=%d\n" % (sent, os.waitstatus_to_exitcode(status)))
"#;
    let mut cmd = dir.command("python3");
    cmd.arg("-c").arg(DRIVER).arg(ready.join(",")).arg(KAHI).arg("run").args(args);
    cmd.current_dir(&dir.path).env_remove("NO_COLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(&mut cmd);
    let status = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("sent=True status="))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("the pty run did not end after Ctrl-C: {out:?}"));
    (out.stdout.replace("\r\n", "\n"), status)
}

#[test]
fn a_stack_in_a_terminal_has_coloured_aligned_prefixes_and_ports_and_stops_on_ctrl_c() {
    if run(Command::new("python3").arg("-c").arg("import pty")).code != 0 {
        return skip("python3 with its pty module is needed");
    }
    let dir = Dir::new("run-pty");
    dir.write("Procfile", &procfile(&["web", "worker", "clock"]));
    dir.write(".env", "GREETING=hi\n");
    let ready = ["web.1.ready", "web.2.ready", "worker.1.ready", "clock.1.ready"];
    let (shown, status) = in_pty(&dir, &["-m", "web=2,all=1", "-p", "7000"], &[], &ready);
    assert_eq!(status, 0, "{shown}");
    // foreman's colours in turn, the names padded to the longest (worker.1), the bar coloured.
    for (name, colour, port) in [
        ("web.1   ", 36, 7000),
        ("web.2   ", 33, 7001),
        ("worker.1", 32, 7100),
        ("clock.1 ", 35, 7200),
    ] {
        let line =
            format!("\x1b[{colour}m{name} |\x1b[0m {} port={port} greeting=hi\n", name.trim_end());
        assert!(shown.contains(&line), "no {line:?} in:\n{shown}");
    }
    // Ctrl-C went to Kahi alone (each program has its process group), which stopped each.
    stopped(&shown, &["web:web.1", "web:web.2", "worker:worker.1", "clock:clock.1"]);
    assert!(!dir.join(".kahi-run.sock").exists());

    // NO_COLOR, even on a terminal.
    let dir = Dir::new("run-no-color");
    dir.write("Procfile", &procfile(&["web", "worker"]));
    let ready = ["web.1.ready", "worker.1.ready"];
    let (shown, status) = in_pty(&dir, &["-p", "7000"], &[("NO_COLOR", "1")], &ready);
    assert_eq!(status, 0, "{shown}");
    assert!(shown.contains("web.1    | web.1 port=7000"), "{shown}");
    assert!(!shown.contains('\x1b'), "{shown:?}");
}

#[test]
fn out_of_a_terminal_no_colour_and_a_process_that_exits_ends_the_stack_with_its_status() {
    let dir = Dir::new("run-exit");
    let last = "last: while [ ! -e go ]; do sleep 0.05; done; echo bye; exit 7";
    dir.write("Procfile", &format!("{}{last}\n", procfile(&["web", "worker"])));
    let mut d = start(dir, &["-p", "7000"]);
    wait_files(&d, &["web.1.ready", "worker.1.ready"]);
    d.dir.write("go", "");
    assert_eq!(d.wait_exit(DEADLINE), 7, "{}", d.log());
    let out = d.dir.read("out.txt");
    for line in ["web.1    | web.1 port=7000", "worker.1 | worker.1 port=7100", "last.1   | bye"] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }
    assert!(!out.contains('\x1b'), "{out:?}");
    stopped(&d.log(), &["web:web.1", "worker:worker.1"]);
    // A signal's death is 128 + its number, as a shell says.
    let dir = Dir::new("run-killed");
    dir.write(
        "Procfile",
        "web: exec sleep 1000\nselfish: while [ ! -e go ]; do sleep 0.05; done; kill -9 $$\n",
    );
    let mut d = start(dir, &[]);
    d.dir.write("go", "");
    assert_eq!(d.wait_exit(DEADLINE), 137, "{}", d.log());
}

#[test]
fn the_env_file_gives_variables_and_the_base_port() {
    let dir = Dir::new("run-env");
    dir.write("Procfile", &procfile(&["web", "worker"]));
    dir.write(".env", "# the app's settings\nexport GREETING=\"hello\\nworld\"\nPORT=6000\n");
    dir.write("other.env", "GREETING='single $quoted'\n");
    let d = start(dir, &[]);
    wait_output(
        &d,
        &[
            "web.1    | web.1 port=6000 greeting=hello\nweb.1    | world\n",
            "worker.1 | worker.1 port=6100",
        ],
    );
    drop(d);
    // -e replaces the default file; -p wins over PORT.
    let dir = Dir::new("run-env-given");
    dir.write("Procfile", &procfile(&["web"]));
    dir.write("other.env", "GREETING='single $quoted'\nPORT=6000\n");
    let d = start(dir, &["-e", "other.env", "-p", "8000"]);
    wait_output(&d, &["web.1 | web.1 port=8000 greeting=single $quoted\n"]);
}

#[test]
fn kahi_ctl_restarts_one_process_without_stopping_the_stack() {
    let dir = Dir::new("run-ctl");
    dir.write("Procfile", &procfile(&["web", "worker"]));
    let mut d = start(dir, &["-m", "web=2,worker=1"]);
    wait_files(&d, &["web.1.ready", "web.2.ready", "worker.1.ready"]);
    let pid = |name: &str| d.ctl(&["pid", name]).stdout.trim().to_string();
    let (web1, web2, worker) = (pid("web.1"), pid("web.2"), pid("worker.1"));
    let _ = std::fs::remove_file(d.dir.join("web.1.ready"));
    let out = d.ctl(&["restart", "web.1"]);
    assert_eq!(out.code, 0, "{out:?}");
    wait_files(&d, &["web.1.ready"]);
    stopped(&d.log(), &["web:web.1"]);
    assert_ne!(pid("web.1"), web1);
    assert_eq!((pid("web.2"), pid("worker.1")), (web2, worker));
    assert_eq!(d.state("worker:worker.1"), "RUNNING");
    assert!(d.child.as_mut().unwrap().try_wait().unwrap().is_none(), "the stack ended");
    // A name of a type is all of its processes.
    let status = d.ctl(&["status", "web"]);
    assert_eq!(status.stdout.lines().count(), 2, "{status:?}");
    // The Procfile was read once: reread says so, not that it is bad TOML, and changes nothing.
    let out = d.ctl(&["reread"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("kahi run reads its Procfile once"), "{out:?}");
    assert_eq!(d.state("web:web.2"), "RUNNING");
    // A second kahi run on the same socket is told how to have its own.
    let again = run(d.dir.command(KAHI).arg("run").current_dir(&d.dir.path));
    assert_ne!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("kahi run -s"), "{again:?}");
    d.signal(15);
    assert_eq!(d.wait_exit(DEADLINE), 0, "{}", d.log());
    stopped(&d.log(), &["web:web.2", "worker:worker.1"]);
}

#[test]
fn what_foreman_skips_or_refuses_is_refused_with_its_place() {
    let dir = Dir::new("run-refused");
    let kahi_run =
        |args: &[&str]| run(dir.command(KAHI).arg("run").args(args).current_dir(&dir.path));
    dir.write("Procfile", "web: sleep 1000\nworker sleep 1000\n");
    let out = kahi_run(&[]);
    assert_eq!(out.code, 2, "{out:?}");
    let place = format!("{}:2:", dir.join("Procfile").display());
    assert!(out.stderr.contains(&place) && out.stderr.contains("NAME: COMMAND"), "{out:?}");
    dir.write("Procfile", "web: sleep 1000\n");
    dir.write("bad.env", "A=1\nnot a variable\n");
    let out = kahi_run(&["-e", "bad.env"]);
    assert!(out.code == 2 && out.stderr.contains("bad.env:2:"), "{out:?}");
    let out = kahi_run(&["-m", "wbe=2"]);
    assert!(out.code == 2 && out.stderr.contains("\"wbe\""), "{out:?}");
    let out = kahi_run(&["missing/Procfile"]);
    assert!(out.code == 2 && out.stderr.contains("missing/Procfile"), "{out:?}");
    let out = kahi_run(&["Procfile", "-f", "Procfile"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(!dir.join(".kahi-run.sock").exists());
}

#[test]
fn migrate_from_procfile_writes_what_kahi_daemon_loads() {
    let dir = Dir::new("run-migrate");
    dir.write("Procfile", "web: serve --port $PORT\nworker: work 100%\n");
    dir.write(".env", "A=1\n");
    let toml = dir.join("kahi.toml");
    let out = run(Command::new(KAHI)
        .args(["migrate", "--from", "procfile", "Procfile", "-m", "web=2,worker=1", "-o"])
        .arg(&toml)
        .current_dir(&dir.path));
    assert_eq!(out.code, 0, "{out:?}");
    let text = dir.read("kahi.toml");
    assert!(text.contains("[programs.\"web.2\"]"), "{text}");
    assert!(
        text.contains("environment = { A = \"1\", PORT = \"5001\", PS = \"web.2\" }"),
        "{text}"
    );
    assert!(text.contains("# ") && !text.contains("critical"), "{text}");
    let out = run(Command::new(KAHI).args(["daemon", "--check", "--json", "-c"]).arg(&toml));
    assert_eq!(out.code, 0, "{out:?}");
    let table: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let names: Vec<(&str, &str)> = table
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["group"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("web", "web.1"), ("web", "web.2"), ("worker", "worker.1")]);
    assert_eq!(table[2]["command"], serde_json::json!(["/bin/sh", "-c", "work 100%"]));
    // Kahi's own errors, refused at the Procfile's line.
    dir.write("Procfile", "web: ok\nweb: again\n");
    let out = run(Command::new(KAHI)
        .args(["migrate", "--from", "procfile", "Procfile"])
        .current_dir(&dir.path));
    assert!(out.code == 2 && out.stderr.contains("Procfile:2:"), "{out:?}");
    let out = run(Command::new(KAHI)
        .args(["migrate", "--from", "ini", "Procfile"])
        .current_dir(&dir.path));
    assert_eq!(out.code, 2, "{out:?}");
}
