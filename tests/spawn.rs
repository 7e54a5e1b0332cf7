//! How programs are started and what becomes of them when Kahi dies: with
//! `[server] orphans = "kill"` they die with it (PR_SET_PDEATHSIG), with `"keep"` they live on
//! and a Kahi started again finds them; and `kahi exec` under a terminal.

use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// `SigPnd:` and `ShdPnd:` of `pid` together: the signals pending for it.
fn pending(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    ["SigPnd:", "ShdPnd:"]
        .iter()
        .filter_map(|f| status.lines().find_map(|l| l.strip_prefix(f)))
        .filter_map(|v| u64::from_str_radix(v.trim(), 16).ok())
        .fold(0, |a, b| a | b)
}

/// The parent pid of `pid`, per /proc.
fn ppid(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("PPid:"))?.trim().parse().ok()
}

fn is_root() -> bool {
    nix::unistd::getuid().is_root()
}

/// Programs started every way that matters to PR_SET_PDEATHSIG: plainly, with limits and a
/// umask, and (as root) as another user, whose switch clears the setting if it is made first.
fn programs() -> String {
    let mut body = String::from(
        "[programs.plain]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n\
         [programs.limited]\ncommand = \"sleep 1000\"\nstartsecs = 0\numask = \"022\"\n\
         limits = { nofile = 512 }\n\n",
    );
    if is_root() {
        body.push_str(
            "[programs.other]\ncommand = \"sleep 1000\"\nstartsecs = 0\nuser = \"nobody\"\n\n",
        );
    }
    body
}

/// Starts Kahi on `orphans` with [`programs`], kills it with SIGKILL once they run, and
/// returns their pids and the daemon (reaped).
fn kill_kahi(name: &str, orphans: &str) -> (Daemon, Vec<i32>) {
    let body = programs();
    let dir = Dir::new(name);
    let socket = dir.join("kahi.sock");
    let text =
        format!("[server]\nsocket = \"{}\"\norphans = \"{orphans}\"\n\n{body}", socket.display());
    let config = dir.write("kahi.toml", &text);
    let mut d = Daemon::launch(dir, config, socket, &[]);
    let names: Vec<String> =
        d.status().iter().filter_map(|p| p["name"].as_str().map(String::from)).collect();
    for name in &names {
        d.wait_state(name, "RUNNING");
    }
    let pids: Vec<i32> =
        d.status().iter().filter_map(|p| p["pid"].as_i64()).map(|p| p as i32).collect();
    assert_eq!(pids.len(), names.len(), "{:?}", d.status());
    let kahi = d.pid();
    d.signal(9);
    d.wait_exit(DEADLINE);
    // Reparented: the exit that would send the parent-death signal is over.
    for pid in &pids {
        wait_until("the program is reparented", DEADLINE, || ppid(*pid) != Some(kahi));
    }
    (d, pids)
}

/// Issue 13 (11): a kill -9 of Kahi left its programs running. With orphans = "kill" they get
/// SIGKILL when Kahi dies, whatever their user, limits or umask.
#[test]
fn issue_13_programs_die_with_a_killed_kahi_when_orphans_is_kill() {
    let (_d, pids) = kill_kahi("pdeathsig-kill", "kill");
    for pid in pids {
        wait_until(&format!("program {pid} dies with kahi"), DEADLINE, || !alive(pid));
    }
}

/// The negative twin: with orphans = "keep" nothing is sent, and the programs live on.
#[test]
fn programs_outlive_a_killed_kahi_when_orphans_is_keep() {
    let (_d, pids) = kill_kahi("pdeathsig-keep", "keep");
    for pid in &pids {
        // The signal would be pending by now (it is sent before the reparenting ends).
        assert!(alive(*pid), "program {pid} died with kahi");
        assert_eq!(pending(*pid) & 1 << (9 - 1), 0, "program {pid} has a SIGKILL pending");
    }
    for pid in pids {
        unsafe_kill(pid, 9);
        wait_until("the program is ended", DEADLINE, || !alive(pid));
    }
}

/// An error between the clone and the exec (here the user's directory, or the user switch
/// itself) is reported as an exec failure is, with its errno.
#[test]
fn a_failure_after_the_user_switch_is_reported_as_a_spawn_error() {
    let dir = Dir::new("spawn-user-error");
    let (extra, error) = if is_root() {
        // Root's private directory, which nobody cannot enter.
        let private = dir.join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::set_permissions(&private, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        (format!("user = \"nobody\"\ndirectory = \"{}\"\n", private.display()), "Permission denied")
    } else {
        ("user = \"root\"\n".to_string(), "Operation not permitted")
    };
    let body = format!(
        "[programs.denied]\ncommand = \"sleep 1000\"\nautostart = false\nstartretries = 0\n{extra}"
    );
    let d = Daemon::start_in(dir, &body);
    let out = d.ctl(&["start", "denied"]);
    assert_eq!(out.code, 7, "{out:?}");
    assert!(out.stdout.starts_with("denied: ERROR (spawn error)"), "{out:?}");
    assert!(out.stdout.trim_end().ends_with(error), "{out:?}");
    let p = d.process("denied");
    assert!(p["spawnerr"].as_str().unwrap_or("").ends_with(error), "{p}");
    assert!(alive(d.pid()));
}

// ---- a Kahi started after a crash ----

/// Starts `kahi daemon -c CONFIG` in `dir`, its output to `log`; waits for the socket.
fn daemon_in(dir: &Dir, log: &str) -> std::process::Child {
    let out = std::fs::File::create(dir.join(log)).unwrap();
    let child = dir
        .command(KAHI)
        .arg("daemon")
        .arg("-c")
        .arg(dir.join("kahi.toml"))
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let socket = dir.join("kahi.sock");
    wait_until("the socket answers", DEADLINE, || UnixStream::connect(&socket).is_ok());
    child
}

/// The pid of `name`, from status over the socket in `dir`.
fn pid_in(dir: &Dir, name: &str) -> Option<i32> {
    let out = run(dir
        .command(KAHI)
        .args(["ctl", "-s"])
        .arg(dir.join("kahi.sock"))
        .args(["status", "--json", name]));
    let v: Value = serde_json::from_str(&out.stdout).ok()?;
    v[0]["pid"].as_i64().map(|p| p as i32)
}

/// Regression (issue 13): after a kill -9 of Kahi its programs ran on, and a Kahi started
/// again ran a second copy of each. The state file beside the socket names them: with
/// orphans = "kill" the new Kahi ends them first; with "keep" it says so and leaves them.
/// (The first Kahi keeps its orphans, or they would die with it.)
#[test]
fn a_kahi_started_after_a_crash_ends_what_the_crashed_one_left() {
    for second_keeps in [false, true] {
        let dir = Dir::new("reg-orphans");
        let config = |orphans: &str| {
            let socket = dir.join("kahi.sock");
            let text = format!(
                "[server]\nsocket = \"{}\"\norphans = \"{orphans}\"\n\n\
                 [programs.left]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
                socket.display()
            );
            dir.write("kahi.toml", &text);
        };
        config("keep");
        let mut first = daemon_in(&dir, "first.log");
        wait_until("left runs", DEADLINE, || pid_in(&dir, "left").is_some());
        let old = pid_in(&dir, "left").unwrap();
        let state = dir.join("kahi.sock.pids");
        wait_until("the state file names it", DEADLINE, || {
            std::fs::read_to_string(&state).unwrap_or_default().starts_with(&format!("{old} "))
        });
        unsafe_kill(first.id() as i32, 9);
        let _ = first.wait();
        assert!(alive(old), "the program outlives a killed kahi");

        config(if second_keeps { "keep" } else { "kill" });
        let mut second = daemon_in(&dir, "second.log");
        // Its programs start only once the previous run's are dealt with.
        wait_until("a new left runs", DEADLINE, || pid_in(&dir, "left").is_some_and(|p| p != old));
        let log = dir.read("second.log");
        if second_keeps {
            assert!(log.contains(&format!("'left' (pid {old}) is still running")), "{log}");
            assert!(alive(old));
            unsafe_kill(old, 9);
        } else {
            assert!(log.contains(&format!("ending 'left' (pid {old})")), "{log}");
            assert!(!alive(old), "the previous run's program was ended");
        }
        unsafe_kill(second.id() as i32, 15);
        let _ = second.wait();
        assert!(!state.exists(), "a clean exit removes the state file");
    }
}

/// With orphans = "kill" a program dies with Kahi, but what it started lives on in its
/// process group (the parent-death signal reaches the program alone): the next Kahi ends the
/// group, though the program recorded in the state file is gone.
#[test]
fn issue_13_what_a_program_started_is_ended_by_the_next_kahi() {
    let dir = Dir::new("orphans-group");
    let child = dir.join("child.pid");
    let text = format!(
        "[server]\nsocket = \"{}\"\n\n[programs.left]\n\
         command = [\"/bin/sh\", \"-c\", \"sleep 1000 & echo $! > {}; wait\"]\nstartsecs = 0\n\
         stopasgroup = true\n",
        dir.join("kahi.sock").display(),
        child.display()
    );
    dir.write("kahi.toml", &text);
    let mut first = daemon_in(&dir, "first.log");
    wait_until("left runs", DEADLINE, || pid_in(&dir, "left").is_some());
    let shell = pid_in(&dir, "left").unwrap();
    wait_until("its child runs", DEADLINE, || dir.read("child.pid").trim().parse::<i32>().is_ok());
    let sleep: i32 = dir.read("child.pid").trim().parse().unwrap();
    let state = dir.join("kahi.sock.pids");
    wait_until("the state file names it", DEADLINE, || {
        std::fs::read_to_string(&state).unwrap_or_default().starts_with(&format!("{shell} "))
    });
    unsafe_kill(first.id() as i32, 9);
    let _ = first.wait();
    wait_until("the program dies with kahi", DEADLINE, || !alive(shell));
    assert!(alive(sleep), "what it started lives on (or this test shows nothing)");

    let mut second = daemon_in(&dir, "second.log");
    wait_until("a new left runs", DEADLINE, || pid_in(&dir, "left").is_some_and(|p| p != shell));
    let log = dir.read("second.log");
    assert!(log.contains(&format!("ending 'left' (pid {shell})")), "{log}");
    assert!(!alive(sleep), "what the previous run's program started was ended");
    unsafe_kill(second.id() as i32, 15);
    let _ = second.wait();
}

// ---- kahi exec under a terminal ----

/// Regression (issue 14): `kahi exec` run from a terminal stopped forever. Its child moved to
/// a group of its own, then asked for the terminal (tcsetpgrp) from that background group
/// with SIGTTOU neither blocked nor ignored, and the terminal stopped it. Here Kahi leads a
/// session whose controlling terminal is a new pseudo-terminal, as a login shell's job would.
#[test]
fn issue_14_exec_on_a_terminal_gives_the_command_the_terminal_and_returns() {
    let dir = Dir::new("exec-tty");
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let seen = dir.join("seen");
    // The command's group and the terminal's foreground group, from /proc/self/stat
    // (fields 5 and 8; the shell's name holds no space).
    let script = format!(
        "read pid comm state ppid pgrp session tty tpgid rest < /proc/self/stat; \
         echo \"$pgrp $tpgid\" > {}; exit 3",
        seen.display()
    );
    let mut cmd = dir.command(KAHI);
    cmd.args(["exec", "--", "sh", "-c", &script]);
    cmd.stdin(pty.slave.try_clone().unwrap())
        .stdout(pty.slave.try_clone().unwrap())
        .stderr(pty.slave.try_clone().unwrap());
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid()?;
            if nix::libc::ioctl(0, nix::libc::TIOCSCTTY as _, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut kahi = cmd.spawn().expect("start kahi exec");
    let end = Instant::now() + DEADLINE;
    let code = loop {
        if let Some(st) = kahi.try_wait().unwrap() {
            break st.code();
        }
        if Instant::now() > end {
            // Its session: the command, stopped, is in it.
            unsafe_kill(kahi.id() as i32, 9);
            let _ = kahi.wait();
            panic!("kahi exec on a terminal did not return within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(code, Some(3));
    let seen = std::fs::read_to_string(&seen).unwrap_or_default();
    let ids: Vec<&str> = seen.split_whitespace().collect();
    assert!(
        ids.len() == 2 && ids[0] == ids[1],
        "the command is not the foreground group: {seen:?}"
    );
    drop(pty);
}

/// The static binary cannot load NSS's modules (LDAP, sssd), so a user or group that
/// /etc/passwd and /etc/group lack is looked up with the host's `getent`. Here a `getent`
/// first on the daemon's PATH plays the directory: it knows a user, its groups and a group
/// that the files do not, and the program runs as that user, in those groups.
#[test]
fn the_static_binary_finds_a_user_that_only_getent_knows() {
    let Some(kahi) = std::env::var_os("KAHI_STATIC") else {
        return skip("KAHI_STATIC is not set (make test builds target/kahi-static and sets it)");
    };
    if !is_root() {
        return skip("not root: only root runs a program as another user");
    }
    let dir = Dir::new("getent-user");
    let calls = dir.join("getent.calls");
    let getent = dir.write(
        "bin/getent",
        &format!(
            "#!/bin/sh\n\
         echo \"$1 $2\" >> '{}'\n\
         case \"$1 $2\" in\n\
         'passwd kahi-directory-user'|'passwd 65533') \
           echo 'kahi-directory-user:*:65533:65532:From the directory:/nonexistent:/bin/false';;\n\
         'group kahi-directory-group') echo 'kahi-directory-group:*:65529:kahi-directory-user';;\n\
         'initgroups kahi-directory-user') echo 'kahi-directory-user     65531 65530 65529';;\n\
         *) exit 2;;\n\
         esac\n",
            calls.display()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&getent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.join("kahi.sock");
    let out = dir.join("who.out");
    let text = format!(
        "[server]\nsocket = \"{}\"\n\n[programs.who]\n\
         command = \"/bin/sh -c 'echo $(id -u) $(id -g) $(id -G); exec sleep 1000'\"\n\
         user = \"kahi-directory-user:kahi-directory-group\"\nstartsecs = 0\n\
         stdout_logfile = \"{}\"\n\n\
         [programs.same]\ncommand = \"sleep 1000\"\n\
         user = \"kahi-directory-user:kahi-directory-group\"\nstartsecs = 0\n",
        socket.display(),
        out.display()
    );
    let config = dir.write("kahi.toml", &text);
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", dir.join("bin").display());
    let mut cmd = dir.command(&kahi);
    cmd.args(["daemon", "-c"]).arg(&config).arg("-v").env("PATH", path);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let d = Daemon::spawn(dir, config, socket, cmd);
    wait_until("the program says who it is", DEADLINE, || {
        std::fs::read_to_string(&out).is_ok_and(|s| s.ends_with('\n'))
    });
    let said = std::fs::read_to_string(&out).unwrap();
    let ids: Vec<&str> = said.split_whitespace().collect();
    assert_eq!(ids[..2], ["65533", "65529"], "uid and gid: {said:?}");
    let mut groups = ids[2..].to_vec();
    groups.sort();
    assert_eq!(groups, ["65529", "65530", "65531"], "its groups: {said:?}");
    // Two programs of one user: the load asks the directory about it once.
    let asked = std::fs::read_to_string(&calls).unwrap();
    let times = |q: &str| asked.lines().filter(|l| *l == q).count();
    assert_eq!(times("passwd kahi-directory-user"), 1, "getent was run for: {asked}");
    assert_eq!(times("initgroups kahi-directory-user"), 1, "getent was run for: {asked}");
    drop(d);
}
