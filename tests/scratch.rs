//! Kahi as a `FROM scratch` image runs it: PID 1 of a new PID namespace, chrooted into a
//! read-only root that holds only the static `kahi`, its config and a static busybox for the
//! programs. No /etc/passwd, no /tmp, no /proc, no /dev/log. A host directory is mounted on
//! /run, as a container runtime mounts a volume, so the host reaches the control socket.
//!
//! The static binary comes from `make static` (KAHI_STATIC, which `make test` sets); busybox
//! from Debian's busybox-static.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::pid1::{Ns, descendants, zombies};
use crate::util::*;

const SIGTERM: i32 = 15;

/// The static binary, or None (after saying so) when `make static` was not run.
fn static_kahi() -> Option<PathBuf> {
    match std::env::var_os("KAHI_STATIC") {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "KAHI_STATIC={} is not a file", p.display());
            Some(p)
        }
        None => {
            skip("KAHI_STATIC is not set (make test builds target/kahi-static and sets it)");
            None
        }
    }
}

const BUSYBOX: &str = "/bin/busybox";

/// The static binary, or None (after saying why) when this machine cannot boot an image:
/// mounts and a PID namespace need root and `unshare`, the programs a static busybox.
fn can_boot() -> Option<PathBuf> {
    let kahi = static_kahi()?;
    let missing = if run(Command::new("id").arg("-u")).stdout.trim() != "0" {
        Some("not root (mount and unshare --pid need it)".to_string())
    } else if run(Command::new("sh").args(["-c", "command -v unshare"])).code != 0 {
        Some("no unshare (util-linux)".to_string())
    } else if !Path::new(BUSYBOX).is_file() || !is_static(Path::new(BUSYBOX)) {
        Some(format!("no static {BUSYBOX} (apt-get install busybox-static)"))
    } else {
        None
    };
    match missing {
        Some(why) => {
            skip(&why);
            None
        }
        None => Some(kahi),
    }
}

/// Whether `path` is an ELF file with no program interpreter: a static executable.
fn is_static(path: &Path) -> bool {
    let out = run(Command::new("readelf").arg("-lW").arg(path));
    assert_eq!(out.code, 0, "readelf -l {}: {}", path.display(), out.stderr);
    !out.stdout.contains("INTERP")
}

/// The image: /kahi, /etc/kahi.toml, /bin/busybox with the applets the programs call, and
/// empty mount points for /run and /proc.
fn image(dir: &Dir, kahi: &Path, body: &str) -> PathBuf {
    let root = dir.join("root");
    for d in ["bin", "etc", "run", "proc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(kahi, root.join("kahi")).unwrap();
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
    for applet in ["sh", "sleep", "id", "touch", "echo"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        root.join("etc/kahi.toml"),
        format!("[server]\nsocket = \"/run/kahi.sock\"\n\n{body}"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("run")).unwrap();
    root
}

/// Starts the image's Kahi as PID 1: the root bind-mounted read-only, the host's `run`
/// directory on /run, then chroot, with no environment but a PATH, as a scratch image starts.
fn boot(name: &str, body: &str) -> Option<Ns> {
    let kahi = can_boot()?;
    let dir = Dir::new(name);
    let root = image(&dir, &kahi, body);
    let (r, run) = (path_str(&root), path_str(&dir.join("run")));
    let script = format!(
        "set -e; mount --bind {r} {r}; mount -o remount,bind,ro {r}; mount --bind {run} {r}/run; \
         exec env -i PATH=/bin \"$(command -v chroot)\" {r} /kahi daemon -c /etc/kahi.toml -v"
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child", "/bin/sh", "-c", &script]);
    let socket = dir.join("run/kahi.sock");
    Ns::launch(dir, socket, cmd)
}

#[test]
fn the_static_binary_is_static_and_small() {
    let Some(kahi) = static_kahi() else { return };
    assert!(is_static(&kahi), "{} has a program interpreter", kahi.display());
    let size = std::fs::metadata(&kahi).unwrap().len();
    assert!(size < 5 << 20, "{} is {size} bytes, not under 5 MiB", kahi.display());
    let out = run(Command::new(&kahi).arg("version"));
    assert!(out.stdout.starts_with("kahi "), "{out:?}");
}

#[test]
fn in_a_scratch_image_kahi_reaps_200_orphans_and_stops_cleanly_on_sigterm() {
    let am_root = run(Command::new("id").arg("-u")).stdout.trim() == "0";
    let user = if am_root { "user = \"1000:1000\"\n" } else { "" };
    let body = format!(
        "[programs.orphans]\n\
         command = \"/bin/sh -c 'i=0; while [ $i -lt 200 ]; do (sleep 0.1 &); i=$((i+1)); done; echo spawned; exec sleep 1000'\"\n\
         startsecs = 0\nstopwaitsecs = 5\n\n\
         [programs.probe]\n\
         command = \"/bin/sh -c 'echo $(id -u):$(id -g); touch /written 2>/dev/null && echo writable || echo read-only; exec sleep 1000'\"\n\
         startsecs = 0\nstopwaitsecs = 5\n{user}"
    );
    let Some(mut ns) = boot("scratch-orphans", &body) else { return };
    assert!(is_static(&ns.dir.join("root/bin/busybox")), "busybox must be static");
    ns.wait_state("orphans", "RUNNING");
    wait_until("the 200 orphans are spawned", DEADLINE, || {
        ns.ctl(&["tail", "orphans"]).stdout == "spawned\n"
    });
    ns.wait_log("200 orphans reaped", |log| log.matches("reaped unknown pid").count() >= 200);
    let left = zombies(ns.kahi);
    assert!(left.is_empty(), "zombies left in the namespace: {left:?}");
    let names: Vec<String> = descendants(ns.kahi).into_iter().map(|p| p.name).collect();
    assert_eq!(names.iter().filter(|n| *n == "sleep").count(), 2, "{names:?}");

    // Numeric ids need no /etc/passwd; the root is read-only.
    wait_until("the probe has spoken", DEADLINE, || {
        ns.ctl(&["tail", "probe"]).stdout.lines().count() == 2
    });
    let probe = ns.ctl(&["tail", "probe"]).stdout;
    let mut lines = probe.lines();
    let ids = lines.next().unwrap_or_default();
    if am_root {
        assert_eq!(ids, "1000:1000", "{probe}");
    }
    assert_eq!(lines.next(), Some("read-only"), "{probe}");

    // `docker stop`: SIGTERM to PID 1 from outside.
    let t = Instant::now();
    unsafe_kill(ns.kahi, SIGTERM);
    let code = ns.wait_exit(DEADLINE);
    let took = t.elapsed();
    let log = ns.log();
    assert_eq!(code, 0, "{log}");
    assert!(took < Duration::from_secs(6), "stopped in {took:?}, not under stopwaitsecs + 1 s");
    assert!(log.contains("stopped: orphans") && log.contains("stopped: probe"), "{log}");
    assert!(log.contains("(as PID 1)"), "{log}");
}

#[test]
fn in_a_scratch_image_a_program_ignoring_sigterm_is_killed_after_stopwaitsecs() {
    let body = "[programs.stubborn]\n\
         command = \"/bin/sh -c 'trap \\\"\\\" TERM; echo up; while :; do sleep 0.1; done'\"\n\
         startsecs = 0\nstopwaitsecs = 2\nkillasgroup = true\n\n\
         [programs.polite]\n\
         command = \"/bin/sleep 1000\"\n\
         startsecs = 0\n";
    let Some(mut ns) = boot("scratch-stubborn", body) else { return };
    ns.wait_state("stubborn", "RUNNING");
    ns.wait_state("polite", "RUNNING");
    wait_until("the trap is set", DEADLINE, || ns.ctl(&["tail", "stubborn"]).stdout == "up\n");

    let t = Instant::now();
    unsafe_kill(ns.kahi, SIGTERM);
    let code = ns.wait_exit(DEADLINE);
    let took = t.elapsed();
    let log = ns.log();
    // Exit status 1 says a program had to be killed.
    assert_eq!(code, 1, "{log}");
    assert!(took >= Duration::from_secs(2), "killed after {took:?}, before stopwaitsecs");
    assert!(took < Duration::from_secs(3), "killed after {took:?}, not within stopwaitsecs + 1 s");
    assert!(log.contains("SIGKILL"), "{log}");
    assert!(log.contains("stopped: polite"), "{log}");
}

#[test]
fn in_a_scratch_image_a_critical_program_ends_the_container_with_its_exit_code() {
    let body = "[programs.main]\n\
         command = \"/bin/sh -c 'echo up; while [ ! -e /run/go ]; do sleep 0.05; done; exit 42'\"\n\
         startsecs = 0\ncritical = true\nautorestart = true\n\n\
         [programs.sidecar]\n\
         command = \"/bin/sleep 1000\"\n\
         startsecs = 0\n";
    let Some(mut ns) = boot("scratch-critical", body) else { return };
    ns.wait_state("main", "RUNNING");
    ns.wait_state("sidecar", "RUNNING");
    wait_until("main is up", DEADLINE, || ns.ctl(&["tail", "main"]).stdout == "up\n");
    std::fs::write(ns.dir.join("run/go"), "").unwrap();
    let code = ns.wait_exit(DEADLINE);
    let log = ns.log();
    assert_eq!(code, 42, "{log}");
    assert!(log.contains("critical program main exited with status 42"), "{log}");
    assert!(log.contains("stopped: sidecar"), "{log}");
    // Not restarted, although autorestart = true.
    assert_eq!(log.matches("spawned: 'main'").count(), 1, "{log}");
}
