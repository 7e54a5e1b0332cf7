//! `kahi init [--container] [-o FILE]`: a commented starter kahi.toml, written only where no
//! file is. With --container, the shape contrib/docker/kahi.toml has: the console on, the
//! probes on 0.0.0.0, a critical main program, and a user for the rest of the API whose
//! password is made here and printed once.

use std::io::{Read, Write};
use std::path::Path;

use crate::cli::InitArgs;

/// The starter for a host or a shell session.
const STARTER: &str = r#"# kahi.toml, written by `kahi init`. kahi.toml(5) documents every key.
#
#   kahi daemon --check -c kahi.toml    check it
#   kahi daemon -c kahi.toml            run it (in the foreground; --daemonize to detach)
#   kahi ctl -c kahi.toml status        ask it, from another terminal

# Further files of [programs.*] and [groups.*] tables: globs relative to this file, or
# https:// URLs of TOML or JSON documents ("URL#sha256=HEX" pins one).
include = []

[server]
# The control socket kahi ctl talks to. Default: /run/kahi.sock as root, else
# $XDG_RUNTIME_DIR/kahi.sock, else /tmp/kahi-UID.sock.
# socket = "/run/kahi.sock"

# The HTTP API, /healthz, /readyz and /metrics: uncomment to serve them on loopback.
# [server.http]
# listen = "127.0.0.1:9876"

[logging]
# The daemon's own log on stderr: error, warn, info, debug or trace.
level = "info"
# Copy every program's lines to Kahi's stdout: "auto" does in the foreground.
# console = "auto"

# A program: started with the daemon, restarted whenever it exits. Put your command here;
# `kahi ctl tail -f hello` follows its output.
[programs.hello]
command = "/bin/sh -c 'echo hello from kahi; exec sleep 3600'"
# Restart it when it exits: true, false, or "unexpected" (an exit code not in exitcodes).
autorestart = true
# Seconds it must stay up to count as RUNNING.
startsecs = 1
# Seconds between the stop signal (TERM) and SIGKILL.
stopwaitsecs = 10
# Also write its output to a file (default: kept in memory only).
# stdout_logfile = "/var/log/hello.log"
"#;

/// The starter for a container, with `@HASH@` for the password's bcrypt hash.
const CONTAINER: &str = r#"# kahi.toml for a container, written by `kahi init --container`. kahi.toml(5) documents
# every key. Kahi is PID 1 (ENTRYPOINT ["/kahi", "daemon", "-c", "/etc/kahi/kahi.toml"]): it
# runs the application, copies its output to its own stdout for `docker logs`, reaps orphans,
# and answers the orchestrator's probes. Check it with `kahi daemon --check -c kahi.toml`.

[server]
# /run must be writable (a tmpfs, on a read-only root file system).
socket = "/run/kahi.sock"

[server.http]
# /healthz (liveness), /readyz (readiness: 200 once every autostart program is RUNNING and
# healthy) and /metrics need no password (metrics_auth = true asks one for /metrics); the
# probes come from outside the container, hence 0.0.0.0.
listen = "0.0.0.0:9876"

# Every other request (the API: stop, restart, shutdown, logs) needs this user. kahi init
# printed its password once; make another hash with `kahi hash-password`.
[[server.http.users]]
name = "admin"
password_hash = "@HASH@"
role = "admin"

[logging]
# Every program line goes to Kahi's stdout as "PROCESS | line"; "json" suits a log collector.
console = true
format = "text"

# The application. When it exits on its own, Kahi stops the rest and the container ends with
# its exit status. Put your command here.
[programs.app]
command = "sleep infinity"
critical = true
# Seconds between the stop signal (TERM) and SIGKILL, on docker stop. docker stop itself
# kills Kahi after 10 s unless told otherwise: run with --stop-timeout 30 (Kubernetes:
# terminationGracePeriodSeconds) so that Kahi has the time to stop the app and the rest.
stopwaitsecs = 20
# Ready (for /readyz) only while this check passes: uncomment, with your application's URL.
# [programs.app.healthcheck]
# http = "http://127.0.0.1:8080/healthz"
# interval = 10
"#;

/// Writes the starter: 0, or 1 with the reason (the file exists, no randomness for the
/// password, a write that failed).
pub fn run(args: InitArgs) -> i32 {
    match write(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("kahi init: {e}");
            1
        }
    }
}

fn write(args: &InitArgs) -> Result<(), String> {
    let path = args.output.as_deref().unwrap_or(Path::new("kahi.toml"));
    let to_stdout = path == Path::new("-");
    if !to_stdout && std::fs::symlink_metadata(path).is_ok() {
        return Err(format!(
            "{} exists: not overwritten (remove it, or name another file with -o)",
            path.display()
        ));
    }
    let (text, password) = if args.container {
        let password = password()?;
        let hash = bcrypt::hash(&password, 10).map_err(|e| format!("bcrypt: {e}"))?;
        (CONTAINER.replace("@HASH@", &hash), Some(password))
    } else {
        (STARTER.to_string(), None)
    };
    if to_stdout {
        std::io::stdout().write_all(text.as_bytes()).map_err(|e| format!("stdout: {e}"))?;
    } else {
        // create_new: a file that appeared since the check above is not overwritten either.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        file.write_all(text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("kahi init: wrote {}", path.display());
    }
    if let Some(p) = password {
        eprintln!(
            "kahi init: the HTTP API's user admin has the password {p} (kept nowhere else; \
             make another hash with kahi hash-password)"
        );
    }
    Ok(())
}

/// A password of 24 characters from 18 random bytes.
fn password() -> Result<String, String> {
    use base64::Engine;
    let mut bytes = [0u8; 18];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("/dev/urandom, for the password: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starters_are_valid_toml_with_their_programs() {
        let starter: toml::Table = toml::from_str(STARTER).unwrap();
        assert!(starter["programs"]["hello"]["command"].is_str());
        let container: toml::Table = toml::from_str(CONTAINER).unwrap();
        assert_eq!(container["programs"]["app"]["critical"].as_bool(), Some(true));
        assert_eq!(container["logging"]["console"].as_bool(), Some(true));
        assert_eq!(container["server"]["http"]["listen"].as_str(), Some("0.0.0.0:9876"));
    }

    #[test]
    fn passwords_differ() {
        let (a, b) = (password().unwrap(), password().unwrap());
        assert_eq!(a.len(), 24);
        assert_ne!(a, b);
    }
}
