//! Lifecycle, the way up: what a program starts with, shown with the real `kahi daemon` and
//! real child processes: numprocs naming, environment, directory and umask, file descriptors,
//! signal dispositions, resource limits, spawn failures, and its output captured.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::lifecycle::{log_lines, pid_of, sh, toml_str, wait_file};
use crate::util::*;

// ---- helpers ----

/// Waits until `pid` has exactly `want` among its fds but `stray`, and fails naming what it
/// has. A program that has just started may hold a file of its own for a moment (`sleep`
/// reads its locale: /usr/lib/locale/C.utf8/LC_CTYPE on fd 3), which a loaded machine makes
/// visible; an inherited fd stays.
fn wait_fds(pid: i32, stray: &[i32], want: &[i32], what: &str) {
    let own = || -> Vec<i32> { fds(pid).into_iter().filter(|fd| !stray.contains(fd)).collect() };
    let end = Instant::now() + DEADLINE;
    while own() != want {
        if Instant::now() > end {
            let links: Vec<String> = own()
                .iter()
                .map(|fd| {
                    format!("{fd} -> {:?}", std::fs::read_link(format!("/proc/{pid}/fd/{fd}")))
                })
                .collect();
            panic!("{what}: fds {links:?}, not {want:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A hexadecimal signal-set field of /proc/PID/status (`SigIgn:`, `SigBlk:`).
fn sigset(pid: i32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = s.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| {
        panic!("no {field} in /proc/{pid}/status");
    });
    u64::from_str_radix(line[field.len()..].trim(), 16).unwrap()
}

/// The environment a process was started with, from /proc/PID/environ, sorted.
fn environ(pid: i32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let mut vars: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    vars.sort();
    vars
}

/// `kahi ctl tail -n BYTES NAME [STREAM]`'s output.
fn tail(d: &Daemon, name: &str, stream: &str) -> String {
    let out = d.ctl(&["tail", "-n", "1000000", name, stream]);
    assert_eq!(out.code, 0, "tail {name} {stream}: {out:?}");
    out.stdout
}

// ---- names and what a program starts with ----

#[test]
fn numprocs_processes_are_named_from_process_name_and_see_their_names() {
    let dir = Dir::new("numprocs");
    // Written under a temporary name, then renamed: a reader never sees half a file.
    let script = format!(
        "env > \"{dir}/tmp.$SUPERVISOR_PROCESS_NAME\"; \
         mv \"{dir}/tmp.$SUPERVISOR_PROCESS_NAME\" \"{dir}/env.$SUPERVISOR_PROCESS_NAME\"; \
         exec sleep 1000",
        dir = dir.path.display(),
    );
    let body = format!(
        "[programs.web]\ncommand = {}\nnumprocs = 3\n\
         process_name = \"%(program_name)s_%(process_num)02d\"\nstartsecs = 0\n",
        sh(&script),
    );
    let d = Daemon::start_in(dir, &body);
    for name in ["web:web_00", "web:web_01", "web:web_02"] {
        d.wait_state(name, "RUNNING");
    }

    let out = d.ctl(&["status"]);
    assert_eq!(out.code, 0, "{out:?}");
    let rows: Vec<Vec<&str>> = out.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    let names: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(
        names,
        [("web:web_00", "RUNNING"), ("web:web_01", "RUNNING"), ("web:web_02", "RUNNING")],
        "{}",
        out.stdout
    );

    for n in ["web_00", "web_01", "web_02"] {
        let env = wait_file(&d, &format!("env.{n}"));
        let env: Vec<&str> = env.lines().collect();
        for want in [
            format!("SUPERVISOR_PROCESS_NAME={n}"),
            "SUPERVISOR_GROUP_NAME=web".to_string(),
            "SUPERVISOR_ENABLED=1".to_string(),
        ] {
            assert!(env.contains(&want.as_str()), "{n} lacks {want}: {env:?}");
        }
    }
}

#[test]
fn a_program_runs_with_its_environment_directory_and_umask() {
    let dir = Dir::new("shaped");
    std::fs::create_dir(dir.join("work")).unwrap();
    // What a program reports, into files named with `prefix` (relative: in its directory).
    let report = |prefix: &str| {
        sh(&format!(
            "umask > {prefix}umask.out; pwd -P > {prefix}pwd.out; \
             echo \"$GREETING\" > {prefix}greeting.out; echo done > {prefix}done.out; \
             exec sleep 1000"
        ))
    };
    // Its twin sets none of the three and writes into the test directory.
    let body = format!(
        "[programs.shaped]\ncommand = {}\ndirectory = {}\numask = \"027\"\n\
         environment = {{ GREETING = \"hello from kahi\" }}\nstartsecs = 0\n\n\
         [programs.plain]\ncommand = {}\nstartsecs = 0\n",
        report(""),
        toml_str(&path_str(&dir.join("work"))),
        report(&format!("{}/", dir.path.display())),
    );
    let d = Daemon::start_in(dir, &body);

    wait_file(&d, "work/done.out");
    assert_eq!(d.dir.read("work/umask.out"), "0027\n");
    let work = std::fs::canonicalize(d.dir.join("work")).unwrap();
    assert_eq!(d.dir.read("work/pwd.out"), format!("{}\n", work.display()));
    assert_eq!(d.dir.read("work/greeting.out"), "hello from kahi\n");

    wait_file(&d, "done.out");
    let daemon_umask = std::fs::read_to_string(format!("/proc/{}/status", d.pid()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Umask:").map(|u| u.trim().to_string()))
        .unwrap();
    assert_eq!(d.dir.read("umask.out").trim(), daemon_umask, "without umask: the daemon's");
    let daemon_cwd = std::fs::read_link(format!("/proc/{}/cwd", d.pid())).unwrap();
    assert_eq!(d.dir.read("pwd.out"), format!("{}\n", daemon_cwd.display()), "without directory");
    assert_eq!(d.dir.read("greeting.out"), "\n");
}

#[test]
fn clean_environment_leaves_only_the_configured_and_supervisor_variables() {
    let body = "[programs.clean]\ncommand = \"/bin/sleep 1000\"\nclean_environment = true\n\
                environment = { ONLY = \"this\" }\nstartsecs = 0\n\n\
                [programs.with_path]\ncommand = \"/bin/sleep 1000\"\nclean_environment = true\n\
                environment = { PATH = \"/usr/bin:/bin\" }\nstartsecs = 0\n\n\
                [programs.inherited]\ncommand = \"/bin/sleep 1000\"\n\
                environment = { ONLY = \"this\" }\nstartsecs = 0\n";
    let d = Daemon::start("cleanenv", body);
    for name in ["clean", "with_path", "inherited"] {
        d.wait_state(name, "RUNNING");
    }

    assert_eq!(
        environ(pid_of(&d, "clean")),
        [
            "ONLY=this",
            "SUPERVISOR_ENABLED=1",
            "SUPERVISOR_GROUP_NAME=clean",
            "SUPERVISOR_PROCESS_NAME=clean"
        ]
    );
    assert_eq!(
        environ(pid_of(&d, "with_path")),
        [
            "PATH=/usr/bin:/bin",
            "SUPERVISOR_ENABLED=1",
            "SUPERVISOR_GROUP_NAME=with_path",
            "SUPERVISOR_PROCESS_NAME=with_path"
        ]
    );
    // Without clean_environment the daemon's own variables (PATH among them) are passed on.
    let inherited = environ(pid_of(&d, "inherited"));
    assert!(inherited.iter().any(|v| v.starts_with("PATH=")), "{inherited:?}");
    assert!(inherited.contains(&"ONLY=this".to_string()), "{inherited:?}");
    assert!(inherited.len() > 5, "{inherited:?}");
}

// ---- spawn failures ----

#[test]
fn a_command_that_cannot_be_executed_is_reported_and_the_daemon_keeps_running() {
    let dir = Dir::new("spawnerr");
    let noexec = dir.write("not-executable.sh", "#!/bin/sh\nexit 0\n");
    std::fs::set_permissions(&noexec, std::fs::Permissions::from_mode(0o644)).unwrap();
    let body = format!(
        "[programs.missing]\ncommand = {}\nautostart = false\nstartretries = 0\n\n\
         [programs.noexec]\ncommand = {}\nautostart = false\nstartretries = 1\n\n\
         [programs.nodir]\ncommand = \"/bin/sleep 1000\"\ndirectory = {}\nautostart = false\n\
         startretries = 0\n",
        toml_str(&path_str(&dir.join("does-not-exist"))),
        toml_str(&path_str(&noexec)),
        toml_str(&path_str(&dir.join("no-such-dir"))),
    );
    let d = Daemon::start_in(dir, &body);

    // As supervisord's start: the command itself missing or not executable is NO_FILE or
    // NOT_EXECUTABLE (exit 1); anything else a spawn error (exit 7).
    for (name, outcome, code, error) in [
        ("missing", "no such file", 1, "No such file or directory"),
        ("noexec", "file is not executable", 1, "Permission denied"),
        ("nodir", "spawn error", 7, "No such file or directory"),
    ] {
        let out = d.ctl(&["start", name]);
        assert_eq!(out.code, code, "start {name}: {out:?}");
        let line = out.stdout.trim_end();
        assert!(
            line.starts_with(&format!("{name}: ERROR ({outcome})")) && line.ends_with(error),
            "start {name}: {out:?}"
        );
        let p = d.process(name);
        assert!(p["state"] == "BACKOFF" || p["state"] == "FATAL", "{name}: {p}");
        let spawnerr = p["spawnerr"].as_str().unwrap_or("");
        assert!(spawnerr.ends_with(error), "{name}: {p}");
        // In BACKOFF, with the time to the next try.
        assert!(p["description"].as_str().unwrap_or("").starts_with(spawnerr), "{name}: {p}");
        assert!(d.log().contains(&format!("spawnerr: can't start '{name}': ")), "{}", d.log());
        assert!(alive(d.pid()), "the daemon died on a spawn error of {name}");
    }
    assert!(d.process("nodir")["spawnerr"].as_str().unwrap().contains("no-such-dir"));

    // startretries = 1: one more try after a back-off, then FATAL.
    d.wait_state("noexec", "FATAL");
    assert_eq!(log_lines(&d, "spawnerr: can't start 'noexec'").len(), 2, "{}", d.log());
    let out = d.ctl(&["status"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stdout.lines().count(), 3, "{out:?}");
    assert!(alive(d.pid()));
}

// ---- what a program inherits ----

/// The open fds of `pid`, by number.
fn fds(pid: i32) -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds
}

/// The fds above 2 of `pid` without close-on-exec: the ones its children inherit.
fn inheritable_fds(pid: i32) -> Vec<i32> {
    const O_CLOEXEC: u32 = 0o2000000;
    fds(pid)
        .into_iter()
        .filter(|fd| *fd > 2)
        .filter(|fd| {
            let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"));
            let flags = info.ok().and_then(|i| {
                let f = i.lines().find_map(|l| l.strip_prefix("flags:"))?.trim().to_string();
                u32::from_str_radix(&f, 8).ok()
            });
            flags.is_some_and(|f| f & O_CLOEXEC == 0)
        })
        .collect()
}

/// Programs started with nothing to do before the exec (`plain`) and with something
/// (`masked`: a umask); `ignorer` ignores SIGUSR1 itself.
const SPAWN_WAYS: &str = "[programs.plain]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
     [programs.masked]\ncommand = \"sleep 1000\"\numask = \"022\"\nstartsecs = 0\n\n\
     [programs.ignorer]\ncommand = [\"/bin/sh\", \"-c\", \"trap '' USR1; exec sleep 1000\"]\n\
     startsecs = 0\n";

#[test]
fn a_program_inherits_no_fd_kahi_opened() {
    // Fds this test process holds open across exec (left by whatever started the tests) reach
    // the daemon too; what becomes of those is the next test's concern.
    let stray = inheritable_fds(std::process::id() as i32);
    let body = "[programs.first]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
                [programs.plain]\ncommand = \"sleep 1000\"\nautostart = false\nstartsecs = 0\n\n\
                [programs.masked]\ncommand = \"sleep 1000\"\numask = \"022\"\nautostart = false\n\
                startsecs = 0\n";
    let d = Daemon::start("inherit-fds", body);
    d.wait_state("first", "RUNNING");
    // A control connection held open while the others start: one more fd in the daemon, as
    // are the pipes of `first`.
    let _held = UnixStream::connect(&d.socket).unwrap();
    for name in ["plain", "masked"] {
        let out = d.ctl(&["start", name]);
        assert_eq!(out.stdout, format!("{name}: started\n"), "{out:?}");
    }
    // The daemon has fds to leak (its poll, signal pipe, socket, connection, program pipes),
    // and every one it opened itself is close-on-exec.
    let daemon = d.pid();
    assert!(fds(daemon).len() >= 8 + stray.len(), "the daemon has only {:?}", fds(daemon));
    let opened: Vec<i32> =
        inheritable_fds(daemon).into_iter().filter(|fd| !stray.contains(fd)).collect();
    assert!(opened.is_empty(), "fds of the daemon without close-on-exec: {opened:?}");

    for name in ["plain", "masked"] {
        let pid = pid_of(&d, name);
        wait_fds(pid, &stray, &[0, 1, 2], &format!("{name} inherited fds"));
        let link = |fd: u32| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap().display().to_string()
        };
        assert_eq!(link(0), "/dev/null", "{name}'s stdin");
        assert!(link(1).starts_with("pipe:") && link(2).starts_with("pipe:"), "{name}");
        assert_ne!(link(1), link(2), "{name}: stdout and stderr share a pipe");
    }
}

#[test]
fn a_program_starts_with_no_blocked_signal_and_no_standard_signal_ignored() {
    let d = Daemon::start("inherit-signals", SPAWN_WAYS);
    for name in ["plain", "masked", "ignorer"] {
        d.wait_state(name, "RUNNING");
    }
    // The daemon itself ignores SIGPIPE (13): its programs must not.
    assert_ne!(sigset(d.pid(), "SigIgn:") & 1 << (13 - 1), 0, "the daemon does not ignore SIGPIPE");
    for name in ["plain", "masked"] {
        let pid = pid_of(&d, name);
        assert_eq!(sigset(pid, "SigBlk:"), 0, "{name} starts with blocked signals");
        // Signals 1 to 31; the real-time ones are the next test's.
        let ignored = sigset(pid, "SigIgn:") & 0x7fff_ffff;
        assert_eq!(ignored, 0, "{name} starts with signals ignored: {ignored:#x}");
    }
    // The reading sees an ignored signal: this program ignores SIGUSR1 (10) itself.
    assert_eq!(sigset(pid_of(&d, "ignorer"), "SigIgn:") & 0x7fff_ffff, 1 << (10 - 1));
}

#[test]
fn a_program_starts_with_no_signal_ignored() {
    let d = Daemon::start("inherit-rt-signals", SPAWN_WAYS);
    for name in ["plain", "masked"] {
        d.wait_state(name, "RUNNING");
        let ignored = sigset(pid_of(&d, name), "SigIgn:");
        assert_eq!(ignored, 0, "{name} starts with signals ignored: {ignored:#x}");
    }
}

/// A task's nice value and time slice (ns), by sched_getattr(2).
fn sched(pid: i32) -> (i32, u64) {
    // SAFETY: all zeros is a valid value of this plain C struct.
    let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::sched_attr>() as u32;
    // SAFETY: the kernel writes at most `size` bytes into `attr`.
    let r = unsafe { libc::syscall(libc::SYS_sched_getattr, pid, &raw mut attr, size, 0u32) };
    assert_eq!(r, 0, "sched_getattr({pid}): {}", std::io::Error::last_os_error());
    (attr.sched_nice, attr.sched_runtime)
}

#[test]
fn a_program_starts_with_the_daemons_nice_and_the_default_slice_not_the_loops() {
    // A daemon started at nice 3, as `nice -n 3 kahi daemon` would be.
    let d = Daemon::start_after("sched", "renice -n 3 $$ >/dev/null", SPAWN_WAYS);
    for name in ["plain", "masked"] {
        d.wait_state(name, "RUNNING");
    }
    let (nice, loop_slice) = sched(d.pid());
    let (_, default) = sched(0);
    assert_eq!(nice, 3, "the daemon's nice");
    if loop_slice == default {
        // Before 6.12 the kernel keeps no slice of a thread's own (and reports none).
        return eprintln!("skipped: the kernel reports slice {loop_slice} for both");
    }
    assert_eq!(loop_slice, 100_000, "the loop thread's slice");
    for name in ["plain", "masked"] {
        let pid = pid_of(&d, name);
        assert_eq!(sched(pid), (3, default), "{name}'s nice and slice");
    }
}

#[test]
fn a_program_does_not_inherit_fds_the_daemon_was_started_with() {
    let body = "[programs.first]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
                [programs.second]\ncommand = \"sleep 1000\"\numask = \"022\"\nstartsecs = 0\n";
    // An init script or a shell that leaves fd 7 open, as supervisord's users meet them.
    let d = Daemon::start_after("inherited-fd", "exec 7</dev/null", body);
    assert!(
        std::path::Path::new(&format!("/proc/{}/fd/7", d.pid())).exists(),
        "the daemon did not get fd 7"
    );
    for name in ["first", "second"] {
        d.wait_state(name, "RUNNING");
        wait_fds(pid_of(&d, name), &[], &[0, 1, 2], &format!("{name} inherited fds"));
    }
}

// ---- output ----

#[test]
fn redirect_stderr_merges_stderr_into_stdout_in_order() {
    let script = "echo out1; echo err1 >&2; echo out2; echo err2 >&2; exec sleep 1000";
    let body = format!(
        "[programs.merged]\ncommand = {cmd}\nredirect_stderr = true\nstartsecs = 0\n\n\
         [programs.split]\ncommand = {cmd}\nstartsecs = 0\n",
        cmd = sh(script),
    );
    let d = Daemon::start("redirect", &body);

    wait_until("merged output arrives", DEADLINE, || tail(&d, "merged", "stdout").contains("err2"));
    assert_eq!(tail(&d, "merged", "stdout"), "out1\nerr1\nout2\nerr2\n");
    assert_eq!(tail(&d, "merged", "stderr"), "");

    wait_until("split output arrives", DEADLINE, || {
        tail(&d, "split", "stdout").contains("out2") && tail(&d, "split", "stderr").contains("err2")
    });
    assert_eq!(tail(&d, "split", "stdout"), "out1\nout2\n");
    assert_eq!(tail(&d, "split", "stderr"), "err1\nerr2\n");
}

#[test]
fn output_written_just_before_exiting_is_kept() {
    // More than a pipe holds (64 KiB), so part of it is still in the pipe at the exit.
    let body = format!(
        "[programs.burst]\ncommand = {}\nautorestart = false\nstartsecs = 0\n",
        sh("seq 1 20000; echo last line")
    );
    let d = Daemon::start("drain", &body);
    let mut want: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    want.push_str("last line\n");

    d.wait_state("burst", "EXITED");
    assert_eq!(d.process("burst")["exitstatus"], 0);
    wait_until("the last line is in the log", DEADLINE, || {
        tail(&d, "burst", "stdout").contains("last line")
    });
    let got = tail(&d, "burst", "stdout");
    assert!(got == want, "{} bytes captured of {}; ends with {:?}", got.len(), want.len(), {
        &got[got.len().saturating_sub(40)..]
    });
}

// ---- resource limits ----

#[test]
fn resource_limits_are_visible_in_the_program() {
    let d = Daemon::start(
        "rlimits",
        "[programs.lim]\ncommand = [\"/bin/sh\", \"-c\", \"cat /proc/self/limits; exec sleep 1000\"]\n\
         startsecs = 0\n\n[programs.lim.limits]\nnofile = 321\ncore = 0\nstack = \"4MB\"\n",
    );
    d.wait_state("lim", "RUNNING");
    wait_until("the limits are printed", DEADLINE, || {
        d.ctl(&["tail", "lim"]).stdout.contains("Max stack")
    });
    let limits = d.ctl(&["tail", "lim"]).stdout;
    let row = |name: &str| -> Vec<String> {
        let line =
            limits.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{limits}"));
        line[name.len()..].split_whitespace().take(2).map(str::to_string).collect()
    };
    assert_eq!(row("Max open files"), ["321", "321"], "{limits}");
    assert_eq!(row("Max core file size"), ["0", "0"], "{limits}");
    assert_eq!(row("Max stack size"), ["4194304", "4194304"], "{limits}");
    // The daemon's own limits are untouched.
    let own = std::fs::read_to_string(format!("/proc/{}/limits", d.pid())).unwrap();
    assert!(!own.lines().any(|l| l.starts_with("Max open files") && l.contains(" 321 ")), "{own}");
}

/// A limit the kernel refuses (nofile past fs.nr_open, at most 2^30) fails the start naming
/// the limit, not as if the command could not be run.
#[test]
fn a_limit_the_kernel_refuses_is_named_in_the_spawn_error() {
    let d = Daemon::start(
        "rlimit-refused",
        "[programs.unl]\ncommand = \"sleep 1000\"\nstartretries = 0\n\n\
         [programs.unl.limits]\ncore = 0\nnofile = 4000000000\n",
    );
    d.wait_state("unl", "FATAL");
    let p = d.process("unl");
    let spawnerr = p["spawnerr"].as_str().unwrap_or("");
    assert_eq!(spawnerr, "limits.nofile = 4000000000: Operation not permitted", "{p}");
}
