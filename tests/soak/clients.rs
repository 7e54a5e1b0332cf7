//! A thousand control clients at once, connecting and disconnecting in waves: most ask and
//! read, some follow a log and leave, some leave mid-request or without reading their answer.
//! Each connection is an fd and buffers in the daemon; when they are gone, so are those.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::common::*;
use crate::util::*;

/// The daemon's RSS bound: measured 7.2 MiB (release; 7.1 MiB after 1.6 million connections
/// in 100 s) and 12.1 MiB (debug) at the end; kept buffers would pass it within seconds.
const RSS_BOUND_KIB: u64 = 32 * 1024;

/// Clients open at once.
const CLIENTS: usize = 1000;
/// Threads that open them, CLIENTS / THREADS each. They run as SCHED_IDLE, so that on a 2-core
/// machine they take only the CPU that Kahi and the canary leave: clients elsewhere cost the
/// supervisor's host nothing but the serving, and the canary is to time that serving, not the
/// scheduler's share among the harness's threads. (At normal priority, the killed canary
/// waited up to 14 ms for a CPU to end on, and the woken loop for one to reap it on, with no
/// turn of the loop over 4.2 ms.)
const THREADS: usize = 2;
const PROGRAMS: usize = 5;

/// What the clients did: waves, connections, and replies checked.
#[derive(Default)]
struct Tally {
    waves: AtomicU64,
    connections: AtomicU64,
    replies: AtomicU64,
}

/// One thread's share of a wave: `n` connections open together, each doing one of ten things,
/// then all closed. Panics on a wrong answer.
fn wave(socket: &std::path::Path, n: usize, tally: &Tally) {
    let mut conns: Vec<(usize, UnixStream)> = (0..n)
        .map(|i| {
            let s = UnixStream::connect(socket).expect("connect to the control socket");
            s.set_read_timeout(Some(DEADLINE)).unwrap();
            (i % 10, s)
        })
        .collect();
    for (kind, s) in &mut conns {
        let line: &[u8] = match kind {
            0..=4 => b"{\"cmd\":\"status\"}\n",
            5 => b"{\"cmd\":\"version\"}\n",
            6 => b"{\"cmd\":\"tail\",\"name\":\"chatty\",\"follow\":true}\n",
            // Half a request, then gone.
            7 => b"{\"cmd\":\"sta",
            // A status whose answer is never read.
            8 => b"{\"cmd\":\"status\"}\n",
            // Connects and leaves without a word.
            _ => b"",
        };
        s.write_all(line).expect("send a request");
    }
    for (kind, s) in &mut conns {
        if *kind > 6 {
            continue;
        }
        let mut r = BufReader::new(&*s);
        let mut reply = String::new();
        r.read_line(&mut reply).expect("read a reply");
        let v: serde_json::Value =
            serde_json::from_str(&reply).unwrap_or_else(|e| panic!("bad reply {reply:?}: {e}"));
        match kind {
            0..=4 => {
                assert_eq!(v["processes"].as_array().map(Vec::len), Some(1 + PROGRAMS), "{reply}")
            }
            5 => assert_eq!(v["version"], env!("CARGO_PKG_VERSION"), "{reply}"),
            _ => {
                // A follower: the first piece of the log, then it leaves mid-stream.
                assert_eq!(v["reply"], "log", "{reply}");
                let mut more = [0u8; 64];
                let _ = r.read(&mut more);
            }
        }
        tally.replies.fetch_add(1, Ordering::Relaxed);
    }
    tally.connections.fetch_add(n as u64, Ordering::Relaxed);
}

/// Makes the calling thread SCHED_IDLE: it runs when nothing else on its CPU wants to.
fn idle_priority() {
    let param = nix::libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; param is valid for the call.
    let r = unsafe { nix::libc::sched_setscheduler(0, nix::libc::SCHED_IDLE, &param) };
    assert_eq!(r, 0, "SCHED_IDLE: {}", std::io::Error::last_os_error());
}

#[test]
fn a_thousand_control_clients_connecting_and_disconnecting() {
    let _serial = serial();
    let mut body = String::from(CANARY);
    for i in 1..PROGRAMS {
        body.push_str(&format!("[programs.p{i}]\ncommand = \"sleep 1000\"\nstartsecs = 0\n\n"));
    }
    body.push_str(
        "[programs.chatty]\n\
         command = [\"/bin/sh\", \"-c\", \"i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.05; done\"]\n\
         startsecs = 0\nstopasgroup = true\n",
    );
    let d = Daemon::start("soak-clients", &body);
    let daemon = d.pid();
    wait_until("every program RUNNING", DEADLINE, || {
        states(&d).values().filter(|s| *s == "RUNNING").count() == 1 + PROGRAMS
    });
    let pids_before = pids(&d);
    let baseline = fewest_fds(daemon);

    let stop = AtomicBool::new(false);
    let tally = Tally::default();
    let mut w = Watch::new(&d);
    let total = scenario_secs();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    idle_priority();
                    while !stop.load(Ordering::Relaxed) {
                        wave(&d.socket, CLIENTS / THREADS, &tally);
                        tally.waves.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // Stops the clients even when the watch panics, so the scope can end.
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = Stop(&stop);
        w.paced(total, Duration::from_millis(500), |_| {});
        drop(_stop);
        for t in workers {
            if let Err(e) = t.join() {
                std::panic::resume_unwind(e);
            }
        }
    });

    // Nothing restarted, every client's fd closed, no buffer kept.
    assert_eq!(pids(&d), pids_before, "a program was restarted");
    assert_states(&d, 1 + PROGRAMS, |_| Some(&["RUNNING"]));
    assert_eq!(d.request(r#"{"cmd":"version"}"#)["version"], env!("CARGO_PKG_VERSION"));
    let fds = w.settle(baseline);
    let (rss, peak) = w.assert_rss(RSS_BOUND_KIB);
    let (waves, conns, replies) = (
        tally.waves.load(Ordering::Relaxed) / THREADS as u64,
        tally.connections.load(Ordering::Relaxed),
        tally.replies.load(Ordering::Relaxed),
    );
    report(&format!(
        "control clients: {waves} waves of {CLIENTS} at once in {total:.0?}, {conns} connections, \
         {replies} replies checked; {}; fds {baseline} -> {fds} (at most {} meanwhile); RSS {rss} \
         KiB (peak {peak} KiB, bound {RSS_BOUND_KIB})",
        w.canary_figures(),
        w.max_fds,
    ));
    assert!(waves >= 2, "only {waves} waves");
    w.assert_canary();
}
