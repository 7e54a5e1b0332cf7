//! Reloading the configuration: `reread` shows what changed and touches nothing; `update` and
//! SIGHUP apply it and touch only what changed; a bad file changes nothing at all.

use std::collections::BTreeMap;

use crate::ctl_habits::{SUPERVISORCTL, SUPERVISORD, Supervisord, said};
use crate::util::*;

const SIGHUP: i32 = 1;

/// Three programs: one that stays, one whose command changes, one that goes away.
const BEFORE: &str = "\
[programs.same]
command = \"/bin/sleep 1001\"
startsecs = 0

[programs.changes]
command = \"/bin/sleep 1002\"
startsecs = 0

[programs.goes]
command = \"/bin/sleep 1003\"
startsecs = 0
";

/// `same` untouched, `changes` with a new command, `goes` gone, `comes` added.
const AFTER: &str = "\
[programs.same]
command = \"/bin/sleep 1001\"
startsecs = 0

[programs.changes]
command = \"/bin/sleep 2002\"
startsecs = 0

[programs.comes]
command = \"/bin/sleep 1004\"
startsecs = 0
";

/// Rewrites the daemon's configuration file with `body`, after the same `[server]` table
/// `Daemon::start` wrote (three lines, so the body starts on line 4).
fn rewrite(d: &Daemon, body: &str) {
    let text = format!("[server]\nsocket = \"{}\"\n\n{body}", d.socket.display());
    std::fs::write(&d.config, text).unwrap();
}

/// name -> pid of every process in status (0 when it has none).
fn pids(d: &Daemon) -> BTreeMap<String, i64> {
    d.status()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p["pid"].as_i64().unwrap_or(0)))
        .collect()
}

fn cmdline(pid: i64) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim_end().to_string())
        .unwrap_or_default()
}

fn started(name: &str) -> Daemon {
    let d = Daemon::start(name, BEFORE);
    for p in ["same", "changes", "goes"] {
        d.wait_state(p, "RUNNING");
    }
    d
}

#[test]
fn reread_reports_changes_and_touches_nothing() {
    let d = started("reload-reread");
    let before = pids(&d);

    rewrite(&d, AFTER);
    let out = d.ctl(&["reread"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "comes: available\nchanges: changed\ngoes: disappeared\n", "{out:?}");

    let r = d.request(r#"{"cmd":"reread"}"#);
    assert_eq!(
        r,
        serde_json::json!({"reply": "changes",
            "changes": {"added": ["comes"], "changed": ["changes"], "removed": ["goes"]}})
    );

    assert_eq!(pids(&d), before, "reread started, stopped or restarted something");
    for (name, pid) in &before {
        assert!(alive(*pid as i32), "{name} ({pid}) died");
    }
    assert_eq!(cmdline(before["changes"]), "/bin/sleep 1002");

    // Nothing changed on disk: nothing to report.
    rewrite(&d, BEFORE);
    let out = d.ctl(&["reread"]);
    assert_eq!(out.stdout, "No config updates to processes\n", "{out:?}");
}

/// What `update` and SIGHUP must both do.
fn check_applied(d: &Daemon, before: &BTreeMap<String, i64>) {
    d.wait_state("comes", "RUNNING");
    wait_until("changes runs again with a new pid", DEADLINE, || {
        let p = d.process("changes");
        p["state"] == "RUNNING" && p["pid"].as_i64().is_some_and(|pid| pid != before["changes"])
    });
    wait_until("goes disappears from status", DEADLINE, || {
        !d.status().iter().any(|p| p["name"] == "goes")
    });
    let after = pids(d);
    let names: Vec<&str> = after.keys().map(String::as_str).collect();
    assert_eq!(names, ["changes", "comes", "same"]);
    assert_eq!(after["same"], before["same"], "the unchanged program was restarted");
    assert!(alive(before["same"] as i32));
    assert_eq!(
        cmdline(after["changes"]),
        "/bin/sleep 2002",
        "the changed program runs its new command"
    );
    assert_eq!(cmdline(after["comes"]), "/bin/sleep 1004");
    wait_until("the old pids of changes and goes are gone", DEADLINE, || {
        !alive(before["changes"] as i32) && !alive(before["goes"] as i32)
    });
}

#[test]
fn update_touches_only_what_changed() {
    let d = started("reload-update");
    let before = pids(&d);

    rewrite(&d, AFTER);
    let out = d.ctl(&["update"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "comes: added\nchanges: updated\ngoes: removed\n", "{out:?}");
    check_applied(&d, &before);

    // A second update finds nothing to do, and restarts nothing.
    let settled = pids(&d);
    let out = d.ctl(&["update"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "No config updates to processes\n"));
    assert_eq!(pids(&d), settled);
}

#[test]
fn sighup_is_update() {
    let d = started("reload-sighup");
    let before = pids(&d);

    rewrite(&d, AFTER);
    d.signal(SIGHUP);
    d.wait_log("received SIGHUP, reloading the configuration");
    check_applied(&d, &before);
    d.wait_log("update: goes: removed");
}

#[test]
fn an_added_program_without_autostart_is_added_stopped() {
    let d = started("reload-manual");
    rewrite(
        &d,
        &format!("{BEFORE}\n[programs.later]\ncommand = \"/bin/sleep 1005\"\nautostart = false\n"),
    );
    let out = d.ctl(&["update"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "later: added\n"), "{out:?}");
    assert_eq!(d.state("later"), "STOPPED");
    let out = d.ctl(&["start", "later"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "later: started\n"), "{out:?}");
}

/// AFTER plus a program with a bad value on a known line.
fn bad_body() -> (String, usize) {
    let body =
        format!("{AFTER}\n[programs.broken]\ncommand = \"/bin/sleep 1\"\nstartsecs = \"soon\"\n");
    // The [server] table takes three lines; `startsecs` is the body's last line.
    let line = 3 + body.lines().count();
    (body, line)
}

#[test]
fn update_with_a_bad_config_fails_with_file_and_line_and_changes_nothing() {
    let d = started("reload-bad");
    let before = pids(&d);

    let (body, line) = bad_body();
    rewrite(&d, &body);
    let out = d.ctl(&["update"]);
    assert_ne!(out.code, 0, "{out:?}");
    let place = format!("{}:{line}:", d.config.display());
    assert!(out.stderr.contains(&place), "the error names {place}: {out:?}");
    assert!(out.stderr.contains("programs.broken.startsecs"), "{out:?}");
    assert_eq!(out.stdout, "", "{out:?}");

    let out = d.ctl(&["reread"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains(&place), "{out:?}");

    // Nothing was added, removed or restarted, even what the bad file also changed.
    assert_eq!(pids(&d), before);
    for pid in before.values() {
        assert!(alive(*pid as i32));
    }

    // Fixed, the same update goes through.
    rewrite(&d, AFTER);
    let out = d.ctl(&["update"]);
    assert_eq!(out.code, 0, "{out:?}");
    check_applied(&d, &before);
}

#[test]
fn sighup_with_a_bad_config_logs_the_error_and_keeps_running() {
    let d = started("reload-bad-hup");
    let before = pids(&d);

    let (body, line) = bad_body();
    rewrite(&d, &body);
    d.signal(SIGHUP);
    d.wait_log("configuration not reloaded, nothing changed");
    d.wait_log(&format!("{}:{line}:", d.config.display()));

    // Still serving, with the same processes.
    let out = d.ctl(&["version"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(d.child.as_ref().is_some_and(|c| alive(c.id() as i32)));
    assert_eq!(pids(&d), before);

    // A second SIGHUP with the file fixed applies it.
    rewrite(&d, AFTER);
    d.signal(SIGHUP);
    check_applied(&d, &before);
}

/// Regression (issue 13): an include matching a named pipe blocked the loop on `update` until
/// something wrote to it, and one linked to /dev/zero filled memory. Only regular files are
/// read, at most 16 MiB each: the update fails at once naming the file, changes nothing, and
/// the daemon goes on answering and restarting.
#[test]
fn an_include_that_is_a_fifo_or_a_device_fails_the_update_at_once() {
    let dir = Dir::new("reload-fifo");
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    let socket = dir.join("kahi.sock");
    let config = dir.write(
        "kahi.toml",
        &format!(
            "include = [\"conf.d/*.toml\"]\n\n[server]\nsocket = \"{}\"\n\n\
             [programs.canary]\ncommand = \"sleep 1000\"\nstartsecs = 0\nrestart_min_interval = 0\n",
            socket.display()
        ),
    );
    let d = Daemon::launch(dir, config, socket, &[]);
    d.wait_state("canary", "RUNNING");
    let fifo = d.dir.join("conf.d/fifo.toml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let t = std::time::Instant::now();
    let out = d.ctl(&["update"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("fifo.toml")
            && out.stderr.contains("not a regular file (a named pipe)"),
        "{out:?}"
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(5), "update took {:?}", t.elapsed());
    std::fs::remove_file(&fifo).unwrap();
    std::os::unix::fs::symlink("/dev/zero", d.dir.join("conf.d/zero.toml")).unwrap();
    let out = d.ctl(&["update"]);
    assert!(out.stderr.contains("not a regular file (a character device)"), "{out:?}");
    // Nothing changed, and the loop is not stuck.
    time_restart(&d, "canary", DEADLINE);
    assert_eq!(d.state("canary"), "RUNNING");
}

/// Regression (issue 13): a `stop` waiting for its process was never answered when an update
/// changed that program meanwhile (the update started it again, and the stop waited for a
/// STOPPED it would never see). Every waiter gets an answer.
#[test]
fn a_waiting_stop_is_answered_when_an_update_changes_the_program() {
    let body = |seconds: u32| {
        format!(
            "[programs.stubborn]\ncommand = [\"/bin/sh\", \"-c\", \"trap '' TERM; exec sleep {seconds}\"]\n\
             startsecs = 0\nstopwaitsecs = 2\n\n[programs.gone]\ncommand = [\"/bin/sh\", \"-c\", \"trap '' TERM; exec sleep 1000\"]\n\
             startsecs = 0\nstopwaitsecs = 2\n"
        )
    };
    let d = Daemon::start("reload-waiting-stop", &body(1000));
    d.wait_state("stubborn", "RUNNING");
    d.wait_state("gone", "RUNNING");
    let socket = d.socket.clone();
    let stop = |name: &'static str| {
        let mut cmd = d.dir.command(KAHI);
        cmd.arg("ctl").arg("-s").arg(&socket).args(["stop", name]);
        std::thread::spawn(move || run(&mut cmd))
    };
    let (stubborn, gone) = (stop("stubborn"), stop("gone"));
    wait_until("both are stopping", DEADLINE, || {
        d.state("stubborn") == "STOPPING" && d.state("gone") == "STOPPING"
    });
    // stubborn changes, gone goes away.
    rewrite(&d, body(2000).split("\n\n[programs.gone]").next().unwrap());
    let out = d.ctl(&["update"]);
    assert_eq!(out.code, 0, "{out:?}");
    let (stubborn, gone) = (stubborn.join().unwrap(), gone.join().unwrap());
    assert_eq!(stubborn.code, 0, "{stubborn:?}");
    assert!(stubborn.stdout.starts_with("stubborn: stopped"), "{stubborn:?}");
    assert_eq!(gone.code, 0, "{gone:?}");
    assert!(gone.stdout.starts_with("gone: stopped"), "{gone:?}");
    d.wait_state("stubborn", "RUNNING");
}

/// db, stopped by the operator; web and api depend on it, and wait.
const HELD: &str = "\
[programs.db]
command = \"/bin/sleep 1005\"
startsecs = 0
autostart = false

[programs.web]
command = \"/bin/sleep 1006\"
startsecs = 0
depends_on = [\"db\"]

[programs.api]
command = \"/bin/sleep 1007\"
startsecs = 0
depends_on = [\"db\"]
";

/// A daemon whose web and api wait for db, which an operator stopped.
fn held(name: &str) -> Daemon {
    let d = Daemon::start(name, HELD);
    // Their start started db; the operator stops it, and restarts them: they wait.
    d.wait_state("db", "RUNNING");
    assert_eq!(d.ctl(&["stop", "db"]).code, 0);
    let out = d.ctl(&["restart", "--no-wait", "web", "api"]);
    assert_eq!(out.code, 0, "{out:?}");
    for p in ["web", "api"] {
        wait_until(&format!("{p} waits for db"), DEADLINE, || {
            let p = d.process(p);
            p["state"] == "STARTING" && p["pid"].is_null()
        });
    }
    d
}

/// Regression (issue 14): `update` that removed a program still waiting for its dependencies
/// reported it removed, but kept it: it started once they were up, and ran.
#[test]
fn an_update_removing_a_program_that_waits_for_its_dependencies_removes_it() {
    let d = held("reload-held-removed");
    let before = d.log().len();
    rewrite(&d, HELD.split("\n\n[programs.api]").next().unwrap_or(HELD));
    let out = d.ctl(&["update"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("api: removed"), "{out:?}");
    let names: Vec<String> = pids(&d).into_keys().collect();
    assert_eq!(names, ["db", "web"], "api is gone at once");
    // db up: web starts, and api, removed, does not.
    assert_eq!(d.ctl(&["start", "db"]).code, 0);
    d.wait_state("web", "RUNNING");
    assert_eq!(pids(&d).into_keys().collect::<Vec<_>>(), ["db", "web"]);
    let since = d.log().get(before..).unwrap_or_default().to_string();
    assert!(!since.contains("spawned: 'api'"), "{since}");
}

/// Regression (issue 14): two programs removed while they waited for their dependencies, then
/// shutdown: the daemon panicked, which as PID 1 aborts the container. It stops and exits 0.
#[test]
fn shutdown_after_removing_two_programs_that_wait_for_their_dependencies_exits_cleanly() {
    let mut d = held("reload-held-shutdown");
    rewrite(&d, HELD.split("\n\n[programs.web]").next().unwrap_or(HELD));
    let out = d.ctl(&["update"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("api: removed") && out.stdout.contains("web: removed"), "{out:?}");
    d.signal(15);
    assert_eq!(d.wait_exit(DEADLINE), 0, "{}", d.log());
    assert!(!d.log().contains("panicked"), "{}", d.log());
}

/// `broken` fails at once and is not started at boot; `web` runs.
const FAILS_TOML: &str = "[programs.broken]\ncommand = \"/bin/false\"\nautostart = false\n\
    startretries = 0\n\n[programs.web]\ncommand = \"/bin/sleep 1008\"\nstartsecs = 0\n";
const FAILS_INI: &str = "[program:broken]\ncommand=/bin/false\nautostart=false\n\
    startretries=0\n\n[program:web]\ncommand=/bin/sleep 1008\nstartsecs=0\n";

/// Regression (issue 16): `reload` (supervisorctl's, and XML-RPC's supervisor.restart) left a
/// program that does not autostart FATAL, with its spawn error, when it had failed before;
/// supervisord's restart makes every process anew, so it is STOPPED, "Not started", and what
/// autostarts starts again. Where supervisord is installed, it is asked the same and must say
/// the same.
#[test]
fn reload_leaves_a_fatal_program_that_does_not_autostart_stopped() {
    let d = Daemon::start("reload-fatal", FAILS_TOML);
    d.wait_state("web", "RUNNING");
    let web = d.process("web")["pid"].as_i64().unwrap();
    let out = d.ctl(&["start", "broken"]);
    assert_ne!(out.code, 0, "{out:?}");
    d.wait_state("broken", "FATAL");

    let out = d.ctl(&["reload"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "Restarted kahi\n"), "{out:?}");
    wait_until("web runs again with a new pid", DEADLINE, || {
        let p = d.process("web");
        p["state"] == "RUNNING" && p["pid"].as_i64().is_some_and(|pid| pid != web)
    });
    let broken = d.process("broken");
    assert_eq!(broken["state"], "STOPPED", "{broken}");
    for field in ["pid", "exitstatus", "spawnerr", "start_time", "stop_time"] {
        assert!(broken[field].is_null(), "{field}: {broken}");
    }
    assert_eq!(broken["restarts"], 0, "{broken}");
    let ours = d.ctl(&["status", "broken"]);
    assert_eq!(
        ours.stdout.split_whitespace().collect::<Vec<_>>(),
        ["broken", "STOPPED", "Not", "started"],
        "{ours:?}"
    );

    // supervisord, asked the same, says the same.
    if !std::path::Path::new(SUPERVISORD).exists() {
        return skip("supervisord is not installed (Debian's supervisor package)");
    }
    let dir = Dir::new("reload-fatal-supervisord");
    let s = Supervisord::start(&dir, FAILS_INI);
    s.wait_state("web", "RUNNING");
    let conf = dir.join("supervisord.conf");
    let ctl = |args: &[&str]| {
        run(std::process::Command::new(SUPERVISORCTL).arg("-c").arg(&conf).args(args))
    };
    let theirs = ctl(&["start", "broken"]);
    assert_ne!(theirs.code, 0, "{theirs:?}");
    s.wait_state("broken", "FATAL");
    assert_eq!(ctl(&["reload"]).code, 0);
    s.wait_state("web", "RUNNING");
    let theirs = ctl(&["status", "broken"]);
    assert_eq!(said(&ours), said(&theirs), "kahi {ours:?}, supervisorctl {theirs:?}");
}
