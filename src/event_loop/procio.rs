//! One record per process of the I/O the loop does for it: each stream's pipeline state and
//! log file, the pipes still open, its stdin pipe, its health check under way, what its cgroup
//! had seen of the OOM killer, an accept instance's connection. Forgetting a process is one
//! `remove` ([`EventLoop::forget`]); the pipes' fds themselves live in the source table, which
//! reads them to their end even after the process is gone.

use std::os::fd::{AsRawFd, OwnedFd};

use mio::unix::SourceFd;
use mio::{Interest, Token};

use super::EventLoop;
use super::sources::Source;
use crate::api::{ApiError, ErrorCode, Reply};
use crate::logs::file::LogFile;
use crate::logs::pipeline::Pipeline;
use crate::supervisor::{ProcId, Stream};

/// Bytes a process's stdin may hold back before writes to it are refused.
const STDIN_BUFFER: usize = 64 << 10;

/// Kept small (the rare parts boxed): a thousand sleeping programs hold a thousand of them.
#[derive(Default)]
pub(super) struct ProcessIo {
    pub(super) stdout: StreamIo,
    pub(super) stderr: StreamIo,
    /// How many of its pipes are still open (an instance that exited may leave them open
    /// behind it, held by a grandchild, while the next instance has its own).
    pub(super) pipes: u32,
    pub(super) stdin: Option<Box<StdinPipe>>,
    /// Its health check under way, and the token of the check's socket.
    pub(super) check: Option<Box<(crate::health::Check, Option<Token>)>>,
    /// OOM kills of its cgroup when it started, for one with limits.
    pub(super) oom_kills: Option<u64>,
    /// An accept instance's connection, until it is spawned with it.
    pub(super) instance_conn: Option<OwnedFd>,
}

impl ProcessIo {
    pub(super) fn stream(&mut self, stream: Stream) -> &mut StreamIo {
        match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        }
    }
}

/// One output stream of a process.
#[derive(Default)]
pub(super) struct StreamIo {
    pub(super) pipeline: Pipeline,
    /// The deadline in the timer heap for the pipeline's partial line: the pipeline's own may
    /// have moved later since (each read restarts its wait), and is looked at when this fires.
    pub(super) flush_armed: Option<std::time::Instant>,
    pub(super) log_file: Option<Box<LogFile>>,
    pub(super) log_health: LogHealth,
}

/// How a stream's log file fares, across its reopenings: for the warnings and /metrics.
#[derive(Debug, Default)]
pub(super) struct LogHealth {
    /// Bytes of output that never reached the file.
    pub(super) dropped_bytes: u64,
    /// While the file cannot be opened or written (one outage, warned once): the bytes and
    /// lines dropped since it began. It ends with the first write that succeeds.
    pub(super) outage: Option<(u64, u64)>,
    /// The output dropped while the file could not be opened ended mid-line: once it is open,
    /// the rest of that line is dropped too, so that the file gets no tail of a line.
    pub(super) mid_line: bool,
}

/// Kahi's end of a process's stdin pipe, and what waits to go into it.
pub(super) struct StdinPipe {
    fd: OwnedFd,
    token: Token,
    pending: Vec<u8>,
}

impl EventLoop {
    /// Watches a new instance's stdin pipe (replacing the last one's).
    pub(super) fn add_stdin(&mut self, id: ProcId, fd: OwnedFd) {
        self.close_stdin(id);
        let token = self.token();
        let watched = self.poll.registry().register(
            &mut SourceFd(&fd.as_raw_fd()),
            token,
            Interest::WRITABLE,
        );
        if watched.is_ok() {
            self.sources.insert(token, Source::Stdin(id));
            self.io(id).stdin = Some(Box::new(StdinPipe { fd, token, pending: Vec::new() }));
        }
    }

    /// Queues bytes for a process's stdin pipe and writes what it takes now.
    pub(super) fn write_stdin(
        &mut self,
        id: ProcId,
        name: String,
        data: &[u8],
    ) -> Result<Reply, ApiError> {
        let Some(pipe) = self.io.get_mut(&id).and_then(|io| io.stdin.as_mut()) else {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("{name} has no stdin pipe (set stdin_pipe = true)"),
            ));
        };
        if pipe.pending.len() + data.len() > STDIN_BUFFER {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "the stdin of {name} is full: the program has not read the last {} KiB",
                    STDIN_BUFFER >> 10
                ),
            ));
        }
        self.queue_stdin(id, data);
        Ok(Reply::Written { name, bytes: data.len() })
    }

    /// Queues bytes for a process's stdin pipe, whatever it holds already, and writes what
    /// it takes now: for an event listener, which has one event at a time.
    pub(super) fn queue_stdin(&mut self, id: ProcId, data: &[u8]) {
        let Some(pipe) = self.io.get_mut(&id).and_then(|io| io.stdin.as_mut()) else { return };
        pipe.pending.extend_from_slice(data);
        self.flush_stdin(id);
    }

    /// Writes what a stdin pipe takes now; a program that closed its stdin loses the rest.
    pub(super) fn flush_stdin(&mut self, id: ProcId) {
        let Some(pipe) = self.io.get_mut(&id).and_then(|io| io.stdin.as_mut()) else { return };
        while !pipe.pending.is_empty() {
            match nix::unistd::write(&pipe.fd, &pipe.pending) {
                Ok(n) => {
                    pipe.pending.drain(..n);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(_) => {
                    pipe.pending.clear();
                    break;
                }
            }
        }
    }

    /// Forgets a process's stdin pipe (it exited), closing Kahi's end.
    pub(super) fn close_stdin(&mut self, id: ProcId) {
        if let Some(pipe) = self.io.get_mut(&id).and_then(|io| io.stdin.take()) {
            self.sources.remove(pipe.token);
            let _ = self.poll.registry().deregister(&mut SourceFd(&pipe.fd.as_raw_fd()));
        }
    }
}
