//! fcgi: `[fcgi_programs.NAME]` with real FastCGI software. Debian's `php-cgi` is the
//! application (it accepts on its stdin, fd 0, as under supervisord) and `cgi-fcgi`
//! (libfcgi-bin) the client. Kahi binds the socket once and keeps it: requests that flow while
//! one of three processes is killed or restarted are never refused.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::util::*;

/// Whether php-cgi and cgi-fcgi are installed; if not, the calling test is skipped.
fn have_tools() -> bool {
    for tool in ["php-cgi", "cgi-fcgi"] {
        let found = run(Command::new("sh").arg("-c").arg(format!("command -v {tool}")));
        if found.code != 0 {
            skip(&format!("{tool} is not installed (apt-get install php-cgi libfcgi-bin)"));
            return false;
        }
    }
    true
}

/// A FastCGI program `php` of three php-cgi processes on `socket`, and the script it serves,
/// in `dir`.
fn start(dir: Dir, socket: &str, extra: &str) -> Daemon {
    dir.write("hello.php", "<?php echo \"hello from \", getmypid(), \"\\n\";\n");
    let body = format!(
        "[fcgi_programs.php]\ncommand = \"php-cgi\"\nsocket = \"{socket}\"\nnumprocs = 3\n\
         process_name = \"%(program_name)s_%(process_num)d\"\n\
         # php-cgi exits after 500 requests (PHP_FCGI_MAX_REQUESTS).\nautorestart = true\n{extra}"
    );
    let d = Daemon::start_in(dir, &body);
    for n in 0..3 {
        d.wait_state(&format!("php:php_{n}"), "RUNNING");
    }
    d
}

/// What one request came to.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// Answered by the process with this pid.
    Served(i32),
    /// The connection was refused (or the socket's file was not there).
    Refused,
    /// Connected, but no full answer: the process that had it died.
    Lost(String),
}

/// One GET of hello.php through `connect` (HOST:PORT or a Unix socket's path).
fn request(dir: &Path, tag: &str, connect: &str) -> Outcome {
    let out = run(Command::new("cgi-fcgi")
        .args(["-bind", "-connect", connect])
        .env(TAG, tag)
        .env("SCRIPT_FILENAME", dir.join("hello.php"))
        .env("REQUEST_METHOD", "GET"));
    if out.stderr.contains("Could not connect") {
        return Outcome::Refused;
    }
    let pid = out.stdout.split("hello from ").nth(1).and_then(|r| r.trim().parse::<i32>().ok());
    match pid {
        Some(pid) if out.code == 0 => Outcome::Served(pid),
        _ => Outcome::Lost(format!("{out:?}")),
    }
}

fn pid_of(d: &Daemon, name: &str) -> i32 {
    d.process(name)["pid"].as_i64().unwrap_or(0) as i32
}

/// What fd `fd` of `pid` is: `socket:[INODE]`, `pipe:[INODE]`, a path.
fn fd_target(pid: i32, fd: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Every socket `pid` holds.
fn sockets_of(pid: i32) -> Vec<String> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    fds.flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.display().to_string())
        .filter(|t| t.starts_with("socket:"))
        .collect()
}

/// Each of the three processes has the one socket, which Kahi holds too, as stdin, and a pipe
/// as stdout; each answers requests. Returns the socket (`socket:[INODE]`).
fn three_share_one_socket(d: &Daemon, connect: &str) -> String {
    let pids: Vec<i32> = (0..3).map(|n| pid_of(d, &format!("php:php_{n}"))).collect();
    let stdin = fd_target(pids[0], 0);
    assert!(stdin.starts_with("socket:["), "php_0's stdin is {stdin:?}");
    for &pid in &pids {
        assert_eq!(fd_target(pid, 0), stdin, "every process gets the same socket as stdin");
        assert!(fd_target(pid, 1).starts_with("pipe:["), "its stdout is captured");
    }
    assert!(sockets_of(d.pid()).contains(&stdin), "Kahi keeps the socket it bound");
    for _ in 0..6 {
        match request(&d.dir.path, &d.dir.tag, connect) {
            Outcome::Served(pid) => assert!(pids.contains(&pid), "served by {pid}, not {pids:?}"),
            other => panic!("a request through {connect} came to {other:?}; log:\n{}", d.log()),
        }
    }
    stdin
}

#[test]
fn three_php_cgi_processes_share_one_tcp_socket_as_stdin() {
    if !have_tools() {
        return;
    }
    let port = free_port();
    let d = start(Dir::new("fcgi-tcp"), &format!("tcp://127.0.0.1:{port}"), "");
    three_share_one_socket(&d, &format!("127.0.0.1:{port}"));
    d.wait_log(&format!("php: listening on tcp://127.0.0.1:{port} (FastCGI)"));
}

#[test]
fn a_unix_socket_gets_its_mode_serves_and_is_removed_at_exit() {
    if !have_tools() {
        return;
    }
    let dir = Dir::new("fcgi-unix");
    let path = dir.join("php.sock");
    let mut d = start(dir, &format!("unix://{}", path_str(&path)), "socket_mode = \"0660\"\n");
    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660, "socket_mode is applied");
    three_share_one_socket(&d, &path_str(&path));
    assert_eq!(d.ctl(&["shutdown"]).code, 0);
    assert_eq!(d.wait_exit(DEADLINE), 0);
    assert!(!path.exists(), "Kahi removes the socket's file at exit");
}

/// Requests in a loop, from a thread, until stopped: what each came to.
struct Load {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(d: &Daemon, connect: &str) -> Load {
        let (stop, outcomes) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let (dir, tag, connect) = (d.dir.path.clone(), d.dir.tag.clone(), connect.to_string());
        let (s, o) = (stop.clone(), outcomes.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let outcome = request(&dir, &tag, &connect);
                o.lock().unwrap().push(outcome);
            }
        });
        Load { stop, outcomes, thread: Some(thread) }
    }

    fn served(&self) -> usize {
        self.outcomes.lock().unwrap().iter().filter(|o| matches!(o, Outcome::Served(_))).count()
    }

    /// Waits until `more` further requests have been served.
    fn wait_served(&self, more: usize) {
        let target = self.served() + more;
        wait_until(&format!("{target} requests served"), DEADLINE, || self.served() >= target);
    }

    fn finish(mut self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.outcomes.lock().unwrap().clone()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until `name` is RUNNING with a pid other than `old`; returns it.
fn wait_restarted(d: &Daemon, name: &str, old: i32) -> i32 {
    wait_until(&format!("{name} runs again, not as {old}"), DEADLINE, || {
        let p = d.process(name);
        p["state"] == "RUNNING" && p["pid"].as_i64().is_some_and(|pid| pid as i32 != old)
    });
    pid_of(d, name)
}

/// With requests flowing in a loop, one process is killed (SIGKILL) and another restarted
/// with `kahi ctl restart`: every request is answered but the one a killed process may have
/// had in hand; none is refused.
fn no_request_refused_while_processes_restart(d: &Daemon, connect: &str) {
    let socket = fd_target(pid_of(d, "php:php_0"), 0);
    let load = Load::start(d, connect);
    load.wait_served(5);
    let killed = pid_of(d, "php:php_1");
    unsafe_kill(killed, 9);
    let new = wait_restarted(d, "php:php_1", killed);
    assert_eq!(fd_target(new, 0), socket, "the process started again has the same socket");
    load.wait_served(5);
    let stopped = pid_of(d, "php:php_2");
    let out = d.ctl(&["restart", "php:php_2"]);
    assert_eq!(out.code, 0, "{out:?}");
    let new = wait_restarted(d, "php:php_2", stopped);
    assert_eq!(fd_target(new, 0), socket);
    load.wait_served(5);
    let outcomes = load.finish();
    let refused = outcomes.iter().filter(|o| **o == Outcome::Refused).count();
    let lost: Vec<&Outcome> = outcomes.iter().filter(|o| matches!(o, Outcome::Lost(_))).collect();
    assert_eq!(refused, 0, "{refused} of {} requests refused; log:\n{}", outcomes.len(), d.log());
    // One client at a time: a killed or stopped process had one request in hand at most.
    assert!(lost.len() <= 2, "requests lost: {lost:?}");
}

#[test]
fn no_request_is_refused_over_tcp_while_a_process_restarts() {
    if !have_tools() {
        return;
    }
    let port = free_port();
    let d = start(Dir::new("fcgi-tcp-restart"), &format!("tcp://127.0.0.1:{port}"), "");
    no_request_refused_while_processes_restart(&d, &format!("127.0.0.1:{port}"));
}

#[test]
fn no_request_is_refused_over_a_unix_socket_while_a_process_restarts() {
    if !have_tools() {
        return;
    }
    let dir = Dir::new("fcgi-unix-restart");
    let path = dir.join("php.sock");
    let d = start(dir, &format!("unix://{}", path_str(&path)), "");
    // supervisord's mode when none is given.
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777, 0o700);
    no_request_refused_while_processes_restart(&d, &path_str(&path));
}

/// The pids of php_0, php_1 and php_2.
fn php_pids(d: &Daemon) -> Vec<i32> {
    (0..3).map(|n| pid_of(d, &format!("php:php_{n}"))).collect()
}

/// Rewrites the daemon's configuration with the FastCGI program of [`start`] on `socket` (none
/// when empty) with `extra` keys, and `rest`; applies it with `kahi ctl update`.
fn update(d: &Daemon, socket: &str, extra: &str, rest: &str) {
    let php = if socket.is_empty() {
        String::new()
    } else {
        format!(
            "[fcgi_programs.php]\ncommand = \"php-cgi\"\nsocket = \"{socket}\"\nnumprocs = 3\n\
             process_name = \"%(program_name)s_%(process_num)d\"\nautorestart = true\n{extra}"
        )
    };
    let text = format!("[server]\nsocket = \"{}\"\n\n{rest}\n{php}", d.socket.display());
    std::fs::write(&d.config, text).unwrap();
    let out = d.ctl(&["update"]);
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn a_reload_keeps_the_socket_changes_it_in_place_moves_it_and_closes_it() {
    if !have_tools() {
        return;
    }
    let dir = Dir::new("fcgi-reload");
    let (a, b) = (dir.join("a.sock"), dir.join("b.sock"));
    let (url_a, url_b) = (format!("unix://{}", path_str(&a)), format!("unix://{}", path_str(&b)));
    let d = start(dir, &url_a, "");
    let socket = three_share_one_socket(&d, &path_str(&a));
    let (pids, inode) = (php_pids(&d), std::fs::metadata(&a).unwrap().ino());

    // Another program added: the FastCGI program and its socket are left alone.
    update(&d, &url_a, "", "[programs.other]\ncommand = \"/bin/sleep 1000\"\nautostart = false\n");
    assert_eq!(php_pids(&d), pids, "an unchanged FastCGI program is not restarted");
    assert_eq!(std::fs::metadata(&a).unwrap().ino(), inode, "nor its socket bound again");
    assert!(sockets_of(d.pid()).contains(&socket));

    // A new mode: the processes restart, on the same socket, whose mode changed in place.
    update(&d, &url_a, "socket_mode = \"0660\"\n", "");
    for (n, old) in pids.iter().enumerate() {
        let new = wait_restarted(&d, &format!("php:php_{n}"), *old);
        assert_eq!(fd_target(new, 0), socket, "the same socket");
    }
    let meta = std::fs::metadata(&a).unwrap();
    assert_eq!((meta.ino(), meta.permissions().mode() & 0o7777), (inode, 0o660));

    // Another address: a new socket there, the old one closed and its file removed.
    let pids = php_pids(&d);
    update(&d, &url_b, "", "");
    for (n, old) in pids.iter().enumerate() {
        wait_restarted(&d, &format!("php:php_{n}"), *old);
    }
    let moved = three_share_one_socket(&d, &path_str(&b));
    assert_ne!(moved, socket);
    assert!(!a.exists(), "the old socket's file is removed");
    assert!(!sockets_of(d.pid()).contains(&socket), "Kahi closed the old socket");
    assert_eq!(request(&d.dir.path, &d.dir.tag, &path_str(&a)), Outcome::Refused);

    // The program removed: once its processes are stopped, its socket is closed and gone.
    update(&d, "", "", "");
    wait_until("the removed program's socket is closed", DEADLINE, || {
        !b.exists() && !sockets_of(d.pid()).contains(&moved)
    });
    assert!(d.status().is_empty(), "{:?}", d.status());
    assert_eq!(request(&d.dir.path, &d.dir.tag, &path_str(&b)), Outcome::Refused);
}

/// A bad socket URL and a mode that is not octal: `kahi daemon` names the file, line and key
/// of each and starts nothing.
#[test]
fn socket_errors_name_file_line_and_key() {
    let dir = Dir::new("fcgi-errors");
    let file = dir.write(
        "kahi.toml",
        "[fcgi_programs.php]\ncommand = \"php-cgi\"\nsocket = \"tcp:/127.0.0.1:9000\"\n\n\
         [fcgi_programs.py]\ncommand = \"flup\"\nsocket = \"unix:///run/py.sock\"\nsocket_mode = \"rw\"\n",
    );
    let out = run(dir.command(KAHI).args(["daemon", "--check", "-c"]).arg(&file));
    let at = path_str(&file);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "{at}:3:10: fcgi_programs.php.socket: \"tcp:/127.0.0.1:9000\": expected tcp://HOST:PORT or unix:///PATH"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "{at}:8:15: fcgi_programs.py.socket_mode: expected an octal mode such as \"022\", found string \"rw\""
        )),
        "{}",
        out.stderr
    );
    assert!(!dir.join("kahi.sock").exists());
}
