//! `kahi ctl fg NAME`, as supervisorctl's: the process's stdout and stderr followed on their
//! own connections and written as they come, each line typed sent to its stdin, and Ctrl-C
//! (or the end of input) detaches, leaving it running. Its lines and exit statuses are
//! supervisorctl's.

use std::io::{BufRead, Write};
use std::path::Path;

use nix::sys::signal::{SigSet, Signal};

use super::{Client, exit};
use crate::api::{Encoding, ErrorCode, Reply, Request};
use crate::process::State;
use crate::supervisor::Stream;

pub(super) fn run(mut client: Client, socket: &Path, name: String) -> Result<i32, String> {
    match running(&mut client, &name)? {
        Some(true) => {}
        Some(false) => {
            println!("ERROR: process not running");
            return Ok(exit::GENERIC);
        }
        None => {
            println!("ERROR: bad process name supplied");
            return Ok(exit::GENERIC);
        }
    }
    // Ctrl-C is taken by one thread, in order, rather than ending the client mid-line; the
    // threads started below inherit the mask.
    let mut interrupts = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        interrupts.add(s);
    }
    interrupts.thread_block().map_err(|e| format!("unable to block signals: {e}"))?;
    println!("==> Press Ctrl-C to exit <==");
    std::thread::spawn(move || {
        let _ = interrupts.wait();
        // Right after the terminal's ^C, as supervisorctl's.
        detach(None)
    });
    for stream in [Stream::Stdout, Stream::Stderr] {
        let mut follower = Client::connect(socket).map_err(|e| e.to_string())?;
        let request = Request::Tail {
            name: name.clone(),
            stream,
            bytes: crate::api::default_tail_bytes(),
            offset: None,
            follow: true,
            encoding: Encoding::Base64,
        };
        follower.send(&request)?;
        std::thread::spawn(move || follow(follower, stream));
    }
    let stdin = std::io::stdin();
    let mut line = String::new();
    loop {
        line.clear();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => detach(None),
            Ok(_) => {}
        }
        match client.call(&Request::Stdin { name: name.clone(), data: line.clone() })? {
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::Conflict && e.error.ends_with("is not running") => {
                detach(Some("Process got killed"))
            }
            Err(e) => detach(Some(&format!("ERROR: {}", e.error))),
        }
        if running(&mut client, &name)? != Some(true) {
            detach(Some("Process got killed"));
        }
    }
}

/// Whether the one process `name` is RUNNING; None when no one process has that name.
fn running(client: &mut Client, name: &str) -> Result<Option<bool>, String> {
    match client.call(&Request::Status { names: vec![name.to_string()] })? {
        Ok(Reply::Status { processes, unknown }) if unknown.is_empty() && processes.len() == 1 => {
            Ok(Some(processes[0].state == State::Running))
        }
        Ok(_) => Ok(None),
        Err(e) => Err(e.error),
    }
}

/// Writes what comes on a followed log to this terminal, until the daemon hangs up.
fn follow(mut follower: Client, stream: Stream) {
    use base64::Engine;
    while let Ok(Some(Ok(Reply::Log { data, .. }))) = follower.next() {
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&data) else { break };
        let written = match stream {
            Stream::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&bytes).and_then(|_| out.flush())
            }
            Stream::Stderr => std::io::stderr().write_all(&bytes),
        };
        if written.is_err() {
            break;
        }
    }
    eprintln!("kahi: the daemon closed the connection");
    std::process::exit(exit::GENERIC);
}

/// Leaves the process to itself: why (if anything), then supervisorctl's last line; exit 0.
fn detach(why: Option<&str>) -> ! {
    let mut out = std::io::stdout().lock();
    let _ = match why {
        Some(why) => writeln!(out, "{why}\nExiting foreground"),
        None => writeln!(out, "Exiting foreground"),
    };
    let _ = out.flush();
    std::process::exit(exit::OK)
}
