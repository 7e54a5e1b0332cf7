//! supervisorctl's habits in `kahi ctl`: `tail -NUM`, `maintail -NUM`, its exit statuses,
//! `reload`, `update GROUP`, `add`, `remove`, `fg` in a terminal, and the status table's
//! columns. Where supervisord is installed (Debian's `supervisor` package), the stock
//! `supervisorctl` drives a real `supervisord` on the same programs in the same test, and both
//! must print the same lines and exit with the same codes.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

pub(crate) const SUPERVISORD: &str = "/usr/bin/supervisord";
pub(crate) const SUPERVISORCTL: &str = "/usr/bin/supervisorctl";

/// A program that says hello, then answers each line of its stdin on stdout (`got LINE`) and
/// stderr (`err LINE`).
const ECHO: &str = "while read l; do echo got $l; echo err $l >&2; done";

/// `kahi ctl` in a terminal: a pty from Python's `pty` module, the lines to wait for and the
/// keys to type in between, each wait bounded. Prints what the terminal showed, then the
/// exit status. With LINGER set, the command is killed once the last step is seen.
const PTY: &str = r#"
import os, pty, select, sys, time
argv = sys.argv[1:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
seen = b''
def wait_for(s, t=20):
    global seen
    end = time.time() + t
    while s.encode() not in seen:
        r, _, _ = select.select([fd], [], [], max(0, end - time.time()))
        if not r:
            os.kill(pid, 9)
            sys.exit('timed out waiting for %r; the terminal showed %r' % (s, seen))
        try:
            seen += os.read(fd, 4096)
        except OSError:
            sys.exit('the terminal closed while waiting for %r; it showed %r' % (s, seen))
for step in os.environ['STEPS'].split('|'):
    if step.startswith('>'):
        os.write(fd, step[1:].encode().decode('unicode_escape').encode())
    else:
        wait_for(step)
if os.environ.get('LINGER'):
    # It is not waited for: killed once it has shown the last step.
    os.kill(pid, 9)
end = time.time() + 20
while True:
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.time() > end:
        os.kill(pid, 9)
        sys.exit('it did not exit; the terminal showed %r' % seen)
    time.sleep(0.02)
try:
    while True:
        r, _, _ = select.select([fd], [], [], 0.1)
        if not r:
            break
        seen += os.read(fd, 4096)
except OSError:
    pass
print(repr(seen))
print(os.waitstatus_to_exitcode(st))
"#;

/// Runs `argv` in a terminal through `steps` (see [`PTY`]): (what it showed, its exit status).
fn in_terminal(dir: &Dir, argv: &[&str], steps: &str) -> (String, i32) {
    terminal(dir, argv, steps, false)
}

fn terminal(dir: &Dir, argv: &[&str], steps: &str, linger: bool) -> (String, i32) {
    let script = dir.write("terminal.py", PTY);
    let mut cmd = dir.command("python3");
    cmd.arg(script).args(argv).env("STEPS", steps);
    if linger {
        cmd.env("LINGER", "1");
    }
    let out = run(&mut cmd);
    assert_eq!(out.code, 0, "the terminal script failed: {out:?}");
    let mut lines = out.stdout.lines();
    let shown = lines.next().unwrap_or_default().to_string();
    let code = lines.next().and_then(|c| c.trim().parse().ok()).unwrap_or(-1);
    (shown, code)
}

fn have_python() -> bool {
    Command::new("python3").arg("-c").arg("import pty").output().is_ok_and(|o| o.status.success())
}

#[test]
fn tail_and_maintail_take_supervisorctls_byte_count() {
    let d = Daemon::start(
        "habits-tail",
        "[programs.talk]\ncommand = \"/bin/sh -c 'echo hello world; exec sleep 1000'\"\n\
         startsecs = 0\n",
    );
    d.wait_state("talk", "RUNNING");
    wait_until("talk said hello", DEADLINE, || d.ctl(&["tail", "talk"]).stdout == "hello world\n");
    let out = d.ctl(&["tail", "-6", "talk"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "world\n"), "{out:?}");
    let out = d.ctl(&["tail", "-6", "talk", "stdout"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "world\n"), "{out:?}");
    // -n says the same.
    assert_eq!(d.ctl(&["tail", "-n", "6", "talk"]).stdout, "world\n");

    let whole = d.ctl(&["maintail"]).stdout;
    assert!(whole.len() > 20, "{whole:?}");
    let out = d.ctl(&["maintail", "-20"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, whole[whole.len() - 20..], "{out:?}");
}

#[test]
fn status_columns_and_exit_codes_are_supervisorctls() {
    let long = "a_program_whose_name_is_longer_than_thirty";
    let d = Daemon::start(
        "habits-status",
        &format!(
            "[programs.web]\ncommand = \"/bin/sleep 1000\"\nstartsecs = 0\n\n\
             [programs.slow]\ncommand = \"/bin/sleep 1000\"\nstartsecs = 1000\n\n\
             [programs.{long}]\ncommand = \"/bin/sleep 1000\"\nautostart = false\n"
        ),
    );
    d.wait_state("web", "RUNNING");
    // STARTING is on its way, not down: 0.
    let out = d.ctl(&["status", "web", "slow"]);
    assert_eq!(out.code, 0, "{out:?}");
    // The widest name and three spaces, the state padded to 10, the description.
    let out = d.ctl(&["status"]);
    assert_eq!(out.code, 3, "{out:?}");
    let width = long.len() + 3;
    for line in out.stdout.lines() {
        let (name, rest) = line.split_at(width);
        assert!(!name.trim_end().contains(' ') && name.ends_with("   "), "{line:?}");
        let state = &rest[..10];
        assert!(state.starts_with(|c: char| c.is_ascii_uppercase()), "{line:?}");
        assert!(!rest[10..].starts_with(' '), "{line:?}");
    }
    let idle = out.stdout.lines().find(|l| l.starts_with(long)).unwrap();
    assert_eq!(idle, format!("{long}   STOPPED   Not started"));
}

#[test]
fn start_of_a_missing_command_is_no_such_file_and_exit_1() {
    let dir = Dir::new("habits-nofile");
    // A file without execute permission.
    let plain = path_str(&dir.write("plain", "echo hi\n"));
    let d = Daemon::start_in(
        dir,
        &format!(
            "[programs.gone]\ncommand = \"/no/such/bin\"\nautostart = false\n\n\
             [programs.plain]\ncommand = \"{plain}\"\nautostart = false\n"
        ),
    );
    let out = d.ctl(&["start", "gone"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.starts_with("gone: ERROR (no such file)"), "{out:?}");
    let out = d.ctl(&["start", "plain"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.starts_with("plain: ERROR (file is not executable)"), "{out:?}");
    // And over the protocol, with supervisord's outcome.
    d.ctl(&["stop", "gone"]);
    let r = d.request(r#"{"cmd":"start","names":["gone"]}"#);
    assert_eq!(r["results"][0]["outcome"], "no_such_file", "{r}");
    d.ctl(&["stop", "gone"]);
}

/// The configuration of the reload and group tests, with `extra` appended.
fn groups_body(web: &str, extra: &str) -> String {
    format!(
        "[programs.web]\ncommand = \"/bin/sleep {web}\"\nstartsecs = 0\n\n\
         [programs.manual]\ncommand = \"/bin/sleep 1000\"\nautostart = false\n\n\
         [programs.other]\ncommand = \"/bin/sleep 1001\"\nstartsecs = 0\n\n{extra}"
    )
}

fn rewrite(d: &Daemon, body: &str) {
    let text = format!("[server]\nsocket = \"{}\"\n\n{body}", d.socket.display());
    std::fs::write(&d.config, text).unwrap();
}

fn pid_of(d: &Daemon, name: &str) -> i64 {
    d.process(name)["pid"].as_i64().unwrap_or(0)
}

#[test]
fn reload_restarts_every_program_with_the_file_read_again() {
    let d = Daemon::start("habits-reload", &groups_body("1000", ""));
    d.wait_state("web", "RUNNING");
    d.wait_state("other", "RUNNING");
    let (web, other) = (pid_of(&d, "web"), pid_of(&d, "other"));
    assert_eq!(d.ctl(&["start", "manual"]).code, 0);
    assert_eq!(d.ctl(&["stop", "other"]).code, 0);

    // A file that does not load changes nothing, and says why: 1.
    rewrite(&d, "[programs.web]\ncommand = 12\n");
    let out = d.ctl(&["reload"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("programs.web.command"), "{out:?}");
    assert_eq!(pid_of(&d, "web"), web);

    rewrite(
        &d,
        &groups_body("1002", "[programs.new]\ncommand = \"/bin/sleep 1003\"\nstartsecs = 0\n"),
    );
    let out = d.ctl(&["reload"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "Restarted kahi\n"), "{out:?}");
    // As after supervisord's restart: every autostart program runs anew, with the file's
    // settings, the stopped one too; what was started by hand without autostart is stopped.
    wait_until("web runs again with its new command", DEADLINE, || {
        let p = d.process("web");
        p["state"] == "RUNNING" && p["pid"].as_i64().is_some_and(|p| p != web)
    });
    d.wait_state("other", "RUNNING");
    assert_ne!(pid_of(&d, "other"), other);
    d.wait_state("new", "RUNNING");
    d.wait_state("manual", "STOPPED");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid_of(&d, "web"))).unwrap();
    assert_eq!(String::from_utf8_lossy(&cmdline).replace('\0', " ").trim(), "/bin/sleep 1002");
}

#[test]
fn update_group_add_and_remove_touch_only_the_named_groups() {
    let d = Daemon::start("habits-groups", &groups_body("1000", ""));
    d.wait_state("web", "RUNNING");
    d.wait_state("other", "RUNNING");
    let other = pid_of(&d, "other");
    let extra = "[programs.extra]\ncommand = \"/bin/sleep 1004\"\nstartsecs = 0\n";
    rewrite(&d, &groups_body("1002", extra));

    let out = d.ctl(&["update", "nosuch"]);
    assert_eq!((out.code, out.stdout.as_str()), (1, "ERROR: no such group: nosuch\n"), "{out:?}");
    let out = d.ctl(&["update", "extra"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "extra: added process group\n"), "{out:?}");
    d.wait_state("extra", "RUNNING");
    // web changed in the file, and was not named: it runs as it did.
    assert_eq!(d.ctl(&["reread"]).stdout, "web: changed\n");
    let out = d.ctl(&["update", "web"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "web: stopped\nweb: updated process group\n"),
        "{out:?}"
    );
    d.wait_state("web", "RUNNING");
    assert_eq!(d.ctl(&["reread"]).stdout, "No config updates to processes\n");
    assert_eq!(pid_of(&d, "other"), other, "other was not named and did not change");

    // extra gone from the file: update stops and removes it.
    rewrite(&d, &groups_body("1002", ""));
    let out = d.ctl(&["update", "extra"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "extra: stopped\nextra: removed process group\n"),
        "{out:?}"
    );
    assert!(!d.status().iter().any(|p| p["name"] == "extra"));

    // add and remove, one step each, as supervisorctl's.
    rewrite(&d, &groups_body("1002", extra));
    let out = d.ctl(&["add", "extra", "nosuch"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (1, "extra: added process group\nERROR: no such process/group: nosuch\n"),
        "{out:?}"
    );
    let out = d.ctl(&["add", "extra"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "ERROR: process group already active\n"));
    d.wait_state("extra", "RUNNING");
    let out = d.ctl(&["remove", "extra"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (1, "ERROR: process/group still running: extra\n"),
        "{out:?}"
    );
    assert_eq!(d.ctl(&["stop", "extra"]).code, 0);
    let out = d.ctl(&["remove", "extra"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "extra: removed process group\n"), "{out:?}");
    assert!(!d.status().iter().any(|p| p["name"] == "extra"));
}

#[test]
fn fg_attaches_the_terminal_and_ctrl_c_leaves_the_process_running() {
    if !have_python() {
        return skip("python3 with its pty module is not installed");
    }
    let d = Daemon::start(
        "habits-fg",
        &format!(
            "[programs.echo]\ncommand = [\"/bin/sh\", \"-c\", \"echo hello; {ECHO}\"]\n\
             stdin_pipe = true\nstartsecs = 0\n\n\
             [programs.idle]\ncommand = \"/bin/sleep 1000\"\nautostart = false\n"
        ),
    );
    d.wait_state("echo", "RUNNING");
    let pid = pid_of(&d, "echo");
    let socket = path_str(&d.socket);
    let ctl = |name: &'static str| vec![KAHI, "ctl", "-s", socket.as_str(), "fg", name];
    let steps = "Press Ctrl-C to exit|hello|>ping\\n|got ping|err ping|>\\x03|Exiting foreground";
    let (shown, code) = in_terminal(&d.dir, &ctl("echo"), steps);
    assert_eq!(code, 0, "{shown}");
    assert_eq!(pid_of(&d, "echo"), pid, "Ctrl-C left it running: {shown}");
    assert_eq!(d.state("echo"), "RUNNING");

    // Ctrl-D detaches too.
    let (shown, code) =
        in_terminal(&d.dir, &ctl("echo"), "Press Ctrl-C|>again\\n|got again|>\\x04|Exiting");
    assert_eq!(code, 0, "{shown}");
    assert_eq!(pid_of(&d, "echo"), pid);

    let out = d.ctl(&["fg", "nosuch"]);
    assert_eq!((out.code, out.stdout.as_str()), (1, "ERROR: bad process name supplied\n"));
    let out = d.ctl(&["fg", "idle"]);
    assert_eq!((out.code, out.stdout.as_str()), (1, "ERROR: process not running\n"));
}

/// A real supervisord on `conf` in `dir`, stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct Supervisord {
    child: Child,
    conf: String,
}

impl Supervisord {
    pub(crate) fn start(dir: &Dir, programs: &str) -> Supervisord {
        let d = path_str(&dir.path);
        let text = format!(
            "[supervisord]\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\n\
             childlogdir={d}\n\n\
             [unix_http_server]\nfile={d}/supervisor.sock\n\n\
             [rpcinterface:supervisor]\n\
             supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n\
             [supervisorctl]\nserverurl=unix://{d}/supervisor.sock\n\n{programs}"
        );
        let conf = path_str(&dir.write("supervisord.conf", &text));
        let log = std::fs::File::create(dir.join("supervisord.out")).unwrap();
        let child = dir
            .command(SUPERVISORD)
            .args(["-n", "-c", &conf])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start supervisord");
        let s = Supervisord { child, conf };
        wait_until("supervisord answers", DEADLINE, || s.ctl(&["pid"]).code == 0);
        s
    }

    fn ctl(&self, args: &[&str]) -> Output {
        run(Command::new(SUPERVISORCTL).arg("-c").arg(&self.conf).args(args))
    }

    pub(crate) fn wait_state(&self, name: &str, state: &str) {
        wait_until(&format!("supervisord's {name} is {state}"), DEADLINE, || {
            self.ctl(&["status", name]).stdout.split_whitespace().nth(1) == Some(state)
        });
    }
}

impl Drop for Supervisord {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        unsafe_kill(pid, 15);
        let end = Instant::now() + DEADLINE;
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > end {
                unsafe_kill(pid, 9);
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Everything a command said, as supervisorctl says it (on stdout), sorted: Kahi's "kahi:"
/// lines left out (its errors on stderr that supervisorctl does not have), and a RUNNING
/// process's description, which names its pid, cut.
pub(crate) fn said(out: &Output) -> Vec<String> {
    let mut lines: Vec<String> = out
        .stdout
        .lines()
        .chain(out.stderr.lines().filter(|l| !l.starts_with("kahi:")))
        .map(|l| match l.find("RUNNING   pid ") {
            Some(at) => l[..at + 10].to_string(),
            None => l.to_string(),
        })
        .collect();
    lines.sort();
    lines
}

/// The same programs, for each.
const TOML: &str = "[programs.web]\ncommand = \"/bin/sleep 1000\"\nstartsecs = 0\n\n\
    [programs.echo]\ncommand = \"/bin/sh -c 'echo hello; while read l; do echo got $l; done'\"\n\
    stdin_pipe = true\nstartsecs = 0\n\n\
    [programs.idle]\ncommand = \"/bin/sleep 1001\"\nautostart = false\n\n\
    [programs.nobin]\ncommand = \"/no/such/bin\"\nautostart = false\n\n\
    [programs.a_program_whose_name_is_longer_than_thirty]\ncommand = \"/bin/sleep 1002\"\n\
    autostart = false\n";
const INI: &str = "[program:web]\ncommand=/bin/sleep 1000\nstartsecs=0\n\n\
    [program:echo]\ncommand=/bin/sh -c 'echo hello; while read l; do echo got $l; done'\n\
    startsecs=0\n\n\
    [program:idle]\ncommand=/bin/sleep 1001\nautostart=false\n\n\
    [program:nobin]\ncommand=/no/such/bin\nautostart=false\n\n\
    [program:a_program_whose_name_is_longer_than_thirty]\ncommand=/bin/sleep 1002\n\
    autostart=false\n";
const EXTRA_TOML: &str = "\n[programs.extra]\ncommand = \"/bin/sleep 1003\"\nstartsecs = 0\n";
const EXTRA_INI: &str = "\n[program:extra]\ncommand=/bin/sleep 1003\nstartsecs=0\n";

#[test]
fn kahi_ctl_answers_as_supervisorctl_answers_supervisord() {
    if !Path::new(SUPERVISORD).exists() || !Path::new(SUPERVISORCTL).exists() {
        return skip("supervisord is not installed (apt-get install supervisor)");
    }
    let sup_dir = Dir::new("habits-supervisord");
    let s = Supervisord::start(&sup_dir, INI);
    let d = Daemon::start("habits-kahi", TOML);
    for name in ["web", "echo"] {
        s.wait_state(name, "RUNNING");
        d.wait_state(name, "RUNNING");
    }

    // The status table: the same columns; the descriptions of RUNNING ones differ by pid.
    let (theirs, ours) = (s.ctl(&["status"]), d.ctl(&["status"]));
    assert_eq!((ours.code, theirs.code), (3, 3), "{ours:?} {theirs:?}");
    assert_eq!(said(&ours), said(&theirs), "{ours:?} {theirs:?}");

    // Each command: the same exit status, and the same lines (Kahi adds a reason after a start
    // error: the line begins as supervisorctl's).
    let cases: &[&[&str]] = &[
        &["status", "web"],
        &["status", "nosuch"],
        &["status", "web", "nosuch"],
        &["status", "idle", "nosuch"],
        &["status", "nog:*"],
        &["start", "web"],
        &["start", "nosuch"],
        &["start", "nog:*"],
        &["start", "nobin"],
        &["stop", "idle"],
        &["stop", "nosuch"],
        &["signal", "HUP", "idle"],
        &["signal", "HUP", "nosuch"],
        &["signal", "BOGUS", "web"],
        &["pid", "idle"],
        &["pid", "nosuch"],
        &["tail", "-5", "web"],
        &["tail", "-5", "web", "stderr"],
        &["maintail", "-20"],
        &["add", "web"],
        &["add", "nosuch"],
        &["remove", "web"],
        &["remove", "nosuch"],
        &["update", "nosuch"],
        &["fg", "nosuch"],
        &["fg", "idle"],
        &["clear", "nosuch"],
        &["avail"],
        &["reread"],
    ];
    for args in cases {
        let (theirs, ours) = (s.ctl(args), d.ctl(args));
        assert_eq!(ours.code, theirs.code, "{args:?}: kahi {ours:?}, supervisorctl {theirs:?}");
        if matches!(args[0], "tail" | "maintail") {
            continue;
        }
        let (t, o) = (said(&theirs), said(&ours));
        assert_eq!(o.len(), t.len(), "{args:?}: kahi {ours:?}, supervisorctl {theirs:?}");
        for (o, t) in o.iter().zip(&t) {
            assert!(o.starts_with(t.as_str()), "{args:?}: kahi {o:?}, supervisorctl {t:?}");
        }
    }
    d.ctl(&["stop", "nobin"]);

    // fg in a terminal: the same screen, up to the Ctrl-C (after which supervisorctl 4.2.5
    // may hang, its output thread not stopping: it is killed there).
    if have_python() {
        let steps = "Press Ctrl-C to exit|hello|>ping\\n|got ping|>\\x03|Exiting foreground";
        let socket = path_str(&d.socket);
        let ours = terminal(&d.dir, &[KAHI, "ctl", "-s", &socket, "fg", "echo"], steps, true).0;
        let theirs =
            terminal(&sup_dir, &[SUPERVISORCTL, "-c", &s.conf, "fg", "echo"], steps, true).0;
        assert_eq!(ours, theirs);
    }

    // update GROUP, both ways.
    let extra = |text: &str| format!("{text}{EXTRA_INI}");
    std::fs::write(&s.conf, extra(&std::fs::read_to_string(&s.conf).unwrap())).unwrap();
    rewrite(&d, &format!("{TOML}{EXTRA_TOML}"));
    let steps: &[&[&str]] = &[&["update", "extra"], &["stop", "extra"], &["remove", "extra"]];
    for args in steps {
        let (theirs, ours) = (s.ctl(args), d.ctl(args));
        assert_eq!(
            (ours.code, said(&ours)),
            (theirs.code, said(&theirs)),
            "{args:?}: kahi {ours:?}, supervisorctl {theirs:?}"
        );
    }

    // reload: 0 both, and the programs run again.
    let (theirs, ours) = (s.ctl(&["reload"]), d.ctl(&["reload"]));
    assert_eq!((ours.code, theirs.code), (0, 0), "{ours:?} {theirs:?}");
    d.wait_state("web", "RUNNING");
    s.wait_state("web", "RUNNING");

    // No daemon: each client's codes.
    let gone = sup_dir.join("gone.conf");
    std::fs::write(
        &gone,
        format!("[supervisorctl]\nserverurl=unix://{}/none.sock\n", path_str(&sup_dir.path)),
    )
    .unwrap();
    let none = path_str(&d.dir.join("none.sock"));
    for args in [&["status"][..], &["pid"], &["start", "web"], &["avail"], &["update"]] {
        let theirs = run(Command::new(SUPERVISORCTL).arg("-c").arg(&gone).args(args));
        let ours = run(Command::new(KAHI).args(["ctl", "-s", &none]).args(args));
        assert_eq!(ours.code, theirs.code, "{args:?}: kahi {ours:?}, supervisorctl {theirs:?}");
    }
}
