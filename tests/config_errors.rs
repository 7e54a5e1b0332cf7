//! config_errors: what `kahi daemon` does with a configuration that does not load. It prints
//! every error as `file:line:col: key: message` on stderr, exits 2 and starts nothing; the same
//! configuration fixed starts. `--check` reports without starting.

use std::fs::File;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::util::*;

/// The last line of stderr whenever the configuration is refused.
fn fatal_line(count: usize) -> String {
    format!("kahi: fatal: {count} error(s) in the configuration; nothing was started\n")
}

/// Runs `kahi ARGS` in `dir` and waits for it to exit. A daemon that does not exit within the
/// deadline has started despite its errors: it is stopped (TERM, then KILL) and the test fails.
fn kahi(dir: &Dir, args: &[&str], env: &[(&str, &str)]) -> Output {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let (out_path, err_path) = (dir.join(&format!("out-{n}")), dir.join(&format!("err-{n}")));
    let mut cmd = dir.command(KAHI);
    cmd.args(args)
        .current_dir(&dir.path)
        .env_remove("KAHI_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start kahi");
    let end = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > end {
            unsafe_kill(child.id() as i32, 15);
            let grace = Instant::now() + Duration::from_secs(10);
            while child.try_wait().unwrap().is_none() && Instant::now() < grace {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "kahi {args:?} still running after {DEADLINE:?}; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&out_path).unwrap(),
        stderr: std::fs::read_to_string(&err_path).unwrap(),
    }
}

/// A configuration with a program that leaves a marker file when it starts. With `mistakes`,
/// three independent errors are added on lines 7, 8 and 12; the rest is identical.
fn marker_config(dir: &Dir, mistakes: bool) -> String {
    let (startsecs, stopsignal, autorestart) = if mistakes {
        ("\"abc\"", "\"NOPE\"", "autorestrat")
    } else {
        ("0", "\"TERM\"", "autorestart")
    };
    format!(
        r#"[server]
socket = "{socket}"

[programs.marker]
# leaves a file behind when it runs
command = ["/bin/sh", "-c", "touch {marker}; exec sleep 100"]
startsecs = {startsecs}
stopsignal = {stopsignal}

[programs.other]
command = "/bin/sleep 100"
{autorestart} = true
"#,
        socket = dir.join("kahi.sock").display(),
        marker = dir.join("started").display(),
    )
}

/// Checks that each line is `FILE:LINE:COL: KEY: MESSAGE` with a positive line and column.
fn assert_located(lines: &[&str]) {
    for line in lines {
        let mut parts = line.splitn(5, ':');
        let file = parts.next().unwrap_or("");
        let nums: Vec<usize> =
            parts.by_ref().take(2).filter_map(|n| n.parse().ok()).filter(|n| *n > 0).collect();
        let key = parts.next().unwrap_or("");
        let message = parts.next().unwrap_or("");
        assert!(file.starts_with('/'), "absolute file in {line:?}");
        assert_eq!(nums.len(), 2, "line and column in {line:?}");
        assert!(key.starts_with(' ') && !key.trim().is_empty(), "key in {line:?}");
        assert!(message.starts_with(' ') && !message.trim().is_empty(), "message in {line:?}");
    }
}

#[test]
fn bad_config_prints_every_error_exits_2_and_starts_nothing() {
    let dir = Dir::new("bad-config");
    dir.write("bad.toml", &marker_config(&dir, true));
    let file = dir.join("bad.toml").display().to_string();

    // A relative -c: the errors still name the file absolutely.
    let out = kahi(&dir, &["daemon", "-c", "bad.toml"], &[]);

    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.stdout, "");
    let expected = format!(
        "{file}:7:13: programs.marker.startsecs: expected a number of seconds >= 0, found string \"abc\"\n\
         {file}:8:14: programs.marker.stopsignal: unknown signal \"NOPE\"; expected a name such as \
         TERM, HUP, INT, QUIT, KILL, USR1, USR2 or a number\n\
         {file}:12:1: programs.other.autorestrat: unknown key; did you mean \"autorestart\"?\n{}",
        fatal_line(3)
    );
    assert_eq!(out.stderr, expected);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_located(&lines[..lines.len() - 1]);
    assert!(!dir.join("kahi.sock").exists(), "no control socket for a refused config");
    assert!(!dir.join("started").exists(), "no program started");
}

#[test]
fn the_same_config_fixed_starts_and_stops() {
    let dir = Dir::new("fixed-config");
    let config = dir.write("good.toml", &marker_config(&dir, false));
    let socket = dir.join("kahi.sock");
    let marker = dir.join("started");
    let mut d = Daemon::launch(dir, config, socket, &[]);

    wait_until("the program leaves its marker", DEADLINE, || marker.exists());
    d.wait_state("marker", "RUNNING");
    d.wait_state("other", "RUNNING");
    let pid = d.process("marker")["pid"].as_i64().expect("a pid") as i32;
    d.signal(15);
    assert_eq!(d.wait_exit(DEADLINE), 0, "{}", d.log());
    assert!(!alive(pid), "the program was stopped with the daemon");
}

#[test]
fn check_accepts_a_good_config_without_starting_it() {
    let dir = Dir::new("check-good");
    let file = dir.write("good.toml", &marker_config(&dir, false));

    let out = kahi(&dir, &["daemon", "--check", "-c", &path_str(&file)], &[]);

    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, format!("{}: ok (2 processes)\n", file.display()));
    assert_eq!(out.stderr, "");
    assert!(!dir.join("kahi.sock").exists(), "--check binds nothing");
    assert!(!dir.join("started").exists(), "--check starts nothing");
}

#[test]
fn check_reports_a_bad_config_like_the_daemon() {
    let dir = Dir::new("check-bad");
    let file = dir.write("bad.toml", &marker_config(&dir, true));

    let out = kahi(&dir, &["daemon", "--check", "-c", &path_str(&file)], &[]);

    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.stdout, "", "no \"ok\" for a bad config");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.stderr);
    assert_located(&lines[..3]);
    assert!(out.stderr.ends_with(&fatal_line(3)));
    assert!(!dir.join("started").exists());
}

#[test]
fn missing_config_file_names_the_path() {
    let dir = Dir::new("missing-config");
    let file = dir.join("nope.toml");

    let out = kahi(&dir, &["daemon", "-c", "nope.toml"], &[]);

    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "{}: unable to read: No such file or directory (os error 2)\n{}",
            file.display(),
            fatal_line(1)
        )
    );
    assert!(!dir.join("kahi.sock").exists());

    // Negative twin: once the file exists, it loads.
    dir.write("nope.toml", &marker_config(&dir, false));
    let out = kahi(&dir, &["daemon", "--check", "-c", "nope.toml"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn unreadable_config_names_the_path_and_the_reason() {
    let dir = Dir::new("unreadable-config");
    // A directory cannot be read as a file, even by root.
    std::fs::create_dir_all(dir.join("conf.toml")).unwrap();
    let out = kahi(&dir, &["daemon", "-c", "conf.toml"], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "{}: unable to read: not a regular file (a directory)\n{}",
            dir.join("conf.toml").display(),
            fatal_line(1)
        )
    );

    // Without read permission; root reads anything, so only an ordinary user can see it.
    if !is_root() {
        use std::os::unix::fs::PermissionsExt;
        let file = dir.write("secret.toml", "");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).unwrap();
        let out = kahi(&dir, &["daemon", "-c", "secret.toml"], &[]);
        assert_eq!(out.code, 2, "{out:?}");
        assert!(
            out.stderr
                .starts_with(&format!("{}: unable to read: Permission denied", file.display())),
            "{out:?}"
        );
    }
}

#[test]
fn config_from_kahi_config_environment_variable() {
    let dir = Dir::new("kahi-config-env");
    let missing = dir.join("missing.toml");
    let out = kahi(&dir, &["daemon", "--check"], &[("KAHI_CONFIG", &path_str(&missing))]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.starts_with(&format!("{}: unable to read: ", missing.display())), "{out:?}");

    let good = dir.write("good.toml", &marker_config(&dir, false));
    let out = kahi(&dir, &["daemon", "--check"], &[("KAHI_CONFIG", &path_str(&good))]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, format!("{}: ok (2 processes)\n", good.display()));
}

#[test]
fn errors_in_an_included_file_name_that_file() {
    let dir = Dir::new("include-errors");
    let main = dir.write(
        "kahi.toml",
        &format!(
            "include = [\"conf.d/*.toml\"]\n[server]\nsocket = \"{}\"\n",
            dir.join("kahi.sock").display()
        ),
    );
    let included = dir.write(
        "conf.d/web.toml",
        "[programs.web]\ncommand = \"/bin/sleep 100\"\nstopwaitsecs = -5\n",
    );

    let out = kahi(&dir, &["daemon", "-c", &path_str(&main)], &[]);

    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "{}:3:16: programs.web.stopwaitsecs: expected a number of seconds >= 0, \
             found integer -5\n{}",
            included.display(),
            fatal_line(1)
        )
    );
    assert!(!dir.join("kahi.sock").exists());

    // Negative twin: the include fixed, the whole configuration loads.
    dir.write(
        "conf.d/web.toml",
        "[programs.web]\ncommand = \"/bin/sleep 100\"\nstopwaitsecs = 5\n",
    );
    let out = kahi(&dir, &["daemon", "--check", "-c", &path_str(&main)], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, format!("{}: ok (1 process)\n", main.display()));
}

#[test]
fn toml_syntax_error_has_line_and_column() {
    let dir = Dir::new("syntax-error");
    let file = dir.write("kahi.toml", "[programs.web]\ncommand = \"/bin/true\"\nautostart = yes\n");
    let out = kahi(&dir, &["daemon", "-c", &path_str(&file)], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    let prefix = format!("{}:3:13: invalid TOML: ", file.display());
    assert!(out.stderr.starts_with(&prefix), "{out:?}");
    assert!(out.stderr.ends_with(&fatal_line(1)), "{out:?}");
}

fn is_root() -> bool {
    // /proc/self/status: "Uid:\treal\teffective\t..."
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

#[test]
fn bad_resource_limits_name_their_place() {
    let d = Dir::new("cfg-limits");
    let config = d.write(
        "kahi.toml",
        "[programs.a]\ncommand = \"true\"\n\n[programs.a.limits]\nnofile = \"lots\"\nnofiles = 10\nstack = \"8MB\"\n",
    );
    let out = run(std::process::Command::new(KAHI).args(["daemon", "--check", "-c"]).arg(&config));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("kahi.toml:5:") && out.stderr.contains("programs.a.limits.nofile"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("kahi.toml:6:") && out.stderr.contains("nofile"), "{}", out.stderr);
    assert!(!out.stderr.contains("kahi.toml:7:"), "a good size was refused: {}", out.stderr);
}

/// Issue 12: `--check` said nothing of a command that does not exist, nor of a file with no
/// program. A path that is not an executable file is an error; a bare name not in PATH is a
/// warning (PATH may differ when the program starts); the daemon warns and starts anyway.
#[test]
fn check_names_a_command_that_does_not_resolve_issue_12() {
    let dir = Dir::new("check-commands");
    let plain = dir.write("plain", "not a program\n");
    let mode =
        |m| std::fs::set_permissions(&plain, std::os::unix::fs::PermissionsExt::from_mode(m));
    mode(0o644).unwrap();
    let body = format!(
        "[programs.gone]\ncommand = \"/no/such/bin --flag\"\nautostart = false\n\n\
         [programs.plain]\ncommand = [\"{}\"]\nautostart = false\n\n\
         [programs.bare]\ncommand = \"no-such-command-kahi\"\nautostart = false\n\
         environment = {{ PATH = \"/nonexistent\" }}\n\n\
         [programs.ok]\ncommand = \"sleep 1000\"\nstartsecs = 0\n",
        plain.display()
    );
    let file = dir.write("check.toml", &body);
    let out = kahi(&dir, &["daemon", "--check", "-c", &path_str(&file)], &[]);
    assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{out:?}");
    let f = file.display();
    let has = |line: String| assert!(out.stderr.lines().any(|l| l == line), "{line}\n{out:?}");
    has(format!("{f}:2:11: programs.gone.command: \"/no/such/bin\": no such file"));
    has(format!(
        "{f}:6:11: programs.plain.command: \"{}\" is not executable (mode 0644)",
        plain.display()
    ));
    has(format!(
        "warning: {f}:10:11: programs.bare.command: \"no-such-command-kahi\" is not found in \
         PATH (/nonexistent); it may be there when the program starts"
    ));
    assert_eq!(out.stderr.lines().count(), 4, "{out:?}");
    assert!(out.stderr.ends_with(&fatal_line(2)), "{out:?}");

    // The negative twin: the file fixed, a warning is not an error.
    mode(0o755).unwrap();
    let fixed = dir.write("fixed.toml", &body.replace("/no/such/bin", "/bin/sh"));
    let out = kahi(&dir, &["daemon", "--check", "-c", &path_str(&fixed)], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, format!("{}: ok (4 processes)\n", fixed.display()));
    assert!(out.stderr.starts_with("warning: ") && out.stderr.lines().count() == 1, "{out:?}");

    // The daemon logs the same and starts: one broken program does not take the others down.
    mode(0o644).unwrap();
    let d = Daemon::start_in(dir, &body);
    d.wait_state("ok", "RUNNING");
    d.wait_log("programs.gone.command: \"/no/such/bin\": no such file");
}

#[test]
fn check_warns_of_a_file_with_no_program_issue_12() {
    let dir = Dir::new("check-empty");
    let file = dir.write("empty.toml", "");
    let out = kahi(&dir, &["daemon", "--check", "-c", &path_str(&file)], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, format!("{}: ok (0 processes)\n", file.display()));
    assert_eq!(
        out.stderr,
        format!(
            "warning: {}: programs: no program is configured ([programs.NAME] tables): the \
             daemon would run nothing\n",
            file.display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir.path);
}

#[test]
fn a_duplicate_key_names_the_key_and_both_lines_issue_12() {
    let dir = Dir::new("check-duplicate");
    let file = dir.write(
        "dup.toml",
        "[programs.web]\ncommand = \"/bin/sh\"\nstartsecs = 1\n\ncommand = \"/bin/true\"\n",
    );
    let out = kahi(&dir, &["daemon", "--check", "-c", &path_str(&file)], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "{}:5:1: programs.web.command: duplicate key (first at line 2)\n{}",
            file.display(),
            fatal_line(1)
        )
    );
    let _ = std::fs::remove_dir_all(&dir.path);
}

#[test]
fn issue_13_a_nul_byte_in_a_command_or_environment_value_fails_the_check() {
    // They passed --check and failed only at spawn, with an error about something else.
    let dir = Dir::new("check-nul");
    let file = dir.write(
        "kahi.toml",
        "[programs.web]\ncommand = \"/bin/true\\u0000x\"\n\n\
         [programs.arr]\ncommand = [\"/bin/true\", \"a\\u0000b\"]\n\n\
         [programs.env]\ncommand = \"/bin/true\"\nenvironment = { A = \"x\\u0000y\" }\n",
    );
    let out = kahi(&dir, &["daemon", "--check", "-c", &path_str(&file)], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    let place = path_str(&file);
    for line in [
        format!("{place}:2:11: programs.web.command: a NUL byte is not allowed in a command"),
        format!("{place}:5:11: programs.arr.command: a NUL byte is not allowed in a command"),
        format!(
            "{place}:9:21: programs.env.environment.A: a NUL byte is not allowed in an \
             environment value"
        ),
    ] {
        assert!(out.stderr.lines().any(|l| l == line), "no {line:?} in:\n{}", out.stderr);
    }
    assert!(out.stderr.ends_with(&fatal_line(3)), "{}", out.stderr);
}
