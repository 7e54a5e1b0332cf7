//! Programs' output: read from their pipes (a budget per turn, back-pressure while Kahi's
//! stdout is behind), passed through each stream's [`Pipeline`](crate::logs::pipeline), and
//! what it yields applied to the sinks: bytes to the ring buffer, the log file and the
//! followers; lines to the console, syslog, and Kahi's stdout or stderr.

use std::os::fd::AsRawFd;
use std::time::Instant;

use mio::Token;
use mio::unix::SourceFd;

use super::procio::StreamIo;
use super::sources::Source;
use super::timers::{TimerKey, Timers};
use super::{EventLoop, GROWN_PIPE, GROWN_PIPES_MAX, PIPE_BUDGET, PIPE_FULL};
use crate::config::{LogSpec, ProcessSpec};
use crate::logs::console::{self, Origin};
use crate::logs::file::{LogFile, Written};
use crate::logs::pipeline::{LineEnd, Ops, Rules};
use crate::logs::syslog::Syslog;
use crate::supervisor::{ProcId, Stream};
use crate::sys;

/// The destinations of whole lines for one stream, borrowed from the loop.
struct LineSinks<'a> {
    console: Option<(&'a mut Vec<u8>, console::Format)>,
    syslog: Option<&'a mut Syslog>,
    /// The stream's bytes as they came, for a log file of `/dev/stdout` or `/dev/stderr`.
    raw: Option<&'a mut Vec<u8>>,
    pid: Option<i32>,
}

impl LineSinks<'_> {
    /// A line of the pipeline's, as its end says.
    fn put(&mut self, origin: &Origin<'_>, line: &[u8], how: LineEnd) {
        match how {
            LineEnd::Newline => self.line(origin, line, false),
            LineEnd::Continued => self.line(origin, line, true),
            LineEnd::Last => self.last(origin, line),
        }
    }

    /// A line (without its newline), or a piece of one that goes on (`continued`).
    fn line(&mut self, origin: &Origin<'_>, line: &[u8], continued: bool) {
        if let Some((buf, format)) = &mut self.console {
            console::format_line(buf, *format, origin, line, continued);
        }
        if let Some(syslog) = &mut self.syslog {
            syslog.send(origin, self.pid, line, continued);
        }
        if let Some(raw) = &mut self.raw {
            raw.extend_from_slice(line);
            if !continued {
                raw.push(b'\n');
            }
        }
    }

    /// The stream's last bytes, which had no newline.
    fn last(&mut self, origin: &Origin<'_>, rest: &[u8]) {
        let raw = self.raw.take();
        self.line(origin, rest, false);
        if let Some(raw) = raw {
            raw.extend_from_slice(rest);
        }
    }
}

/// Where a stream's lines go, besides the bytes' sinks.
#[derive(Debug, Clone, Copy)]
struct Targets {
    console: bool,
    syslog: bool,
    /// Kahi's stdout (1) or stderr (2), for a log file of `/dev/stdout` or `/dev/stderr`.
    raw_fd: Option<i32>,
}

impl Targets {
    fn any(&self) -> bool {
        self.console || self.syslog || self.raw_fd.is_some()
    }
}

/// What the configuration asks of a stream's output.
fn rules<'a>(
    logging: &crate::config::Logging,
    spec: &'a ProcessSpec,
    stream: Stream,
    lines: bool,
) -> Rules<'a> {
    Rules {
        strip_ansi: spec.strip_ansi,
        secrets: &spec.secrets,
        max_line: logging.max_line_bytes,
        partial_wait: logging.partial_line_secs,
        lines,
        capture: match stream {
            Stream::Stdout => spec.stdout_capturemode_maxbytes,
            Stream::Stderr => spec.stderr_capturemode_maxbytes,
        },
    }
}

/// Puts the flush of the stream's partial line in the heap, unless an earlier entry is there:
/// that one, when it fires, finds the later deadline and puts it in then (so a program that
/// writes a partial line a thousand times a second costs one entry, not a thousand).
fn arm_flush(timers: &mut Timers, id: ProcId, stream: Stream, s: &mut StreamIo) {
    if let Some(at) = s.pipeline.deadline()
        && s.flush_armed.is_none()
    {
        s.flush_armed = Some(at);
        timers.arm(at, TimerKey::Flush(id, stream));
    }
}

impl EventLoop {
    /// Reads a child's pipe until it would block, the budget runs out, or EOF.
    pub(super) fn read_pipe(&mut self, token: Token) {
        let Some(Source::Pipe { id, stream, pid, .. }) = self.sources.get(token) else { return };
        let (id, stream, pid) = (*id, *stream, *pid);
        // The instance that writes it is gone (reaped): nothing to hold back any more.
        let gone = self.sup.get(id).is_none_or(|e| e.proc.pid != Some(pid));
        // A listener's stdout is its protocol: neither logged nor held back.
        let protocol = stream == Stream::Stdout && self.is_listener(id);
        if self.paused && !gone && !protocol {
            // Back-pressure: the program blocks on its full pipe until the console drains.
            self.paused_reads.insert(token);
            return;
        }
        // A process that has exited cannot be held back: its last output is read now, so
        // that its pipes close, into the ring, its log file and the console's buffer up to
        // EXITED_ROOM; past that the blocked console skips it (and says so once it drains).
        self.console_off = self.paused
            && self.console.pending().max(console::stderr().pending()) > console::EXITED_ROOM;
        let Some(Source::Pipe { fd, grown, .. }) = self.sources.get_mut(token) else { return };
        // Read straight into the loop's one buffer, up to the turn's budget: no copy, no
        // allocation.
        let mut buf = std::mem::take(&mut self.read_buf);
        if buf.is_empty() {
            // Taken by a read further up the stack (none does today): a zero-length read
            // would look like the end of the pipe.
            buf = vec![0; PIPE_BUDGET].into_boxed_slice();
        }
        let mut len = 0;
        let mut eof = false;
        loop {
            match nix::unistd::read(&*fd, &mut buf[len..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    len += n;
                    if len == buf.len() {
                        self.pending_reads.insert(token);
                        break;
                    }
                }
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    log::warn!("unable to read the {} pipe of process {id}: {e}", stream.name());
                    eof = true;
                    break;
                }
            }
        }
        if !*grown && len >= PIPE_FULL && self.grown_pipes < GROWN_PIPES_MAX {
            // The program fills its pipe: a larger one lets it write on while the loop is
            // busy, and lets each read take more (1 GiB of output to a log file: 1.9 GB/s
            // instead of 1.1-1.3). Only such pipes grow, a bounded number of them; where the
            // kernel refuses (the user's pipe memory limit), it stays as it is.
            let size = nix::fcntl::FcntlArg::F_SETPIPE_SZ(GROWN_PIPE);
            if nix::fcntl::fcntl(&*fd, size).is_ok() {
                *grown = true;
                self.grown_pipes += 1;
            }
        }
        let data = &buf[..len];
        if protocol {
            // What an instance that is gone wrote is not its successor's to answer.
            if !gone && !data.is_empty() {
                self.listener_said(id, data);
            }
        } else if !data.is_empty() {
            if self.console_off {
                self.console_skipped += data.len() as u64;
            }
            self.output(id, stream, pid, data);
        }
        self.read_buf = buf;
        if eof {
            self.end_of_output(id, stream, pid);
        }
        self.console_off = false;
        if self.paused && !eof && !protocol {
            // Read once, to what is there: a grandchild that keeps it open waits for the
            // console like everyone else.
            self.pending_reads.remove(&token);
            self.paused_reads.insert(token);
        }
        if eof {
            if let Some(Source::Pipe { fd, grown, .. }) = self.sources.remove(token) {
                self.grown_pipes -= usize::from(grown);
                let _ = self.poll.registry().deregister(&mut SourceFd(&fd.as_raw_fd()));
            }
            if let Some(io) = self.io.get_mut(&id) {
                io.pipes = io.pipes.saturating_sub(1);
            }
            self.pending_reads.remove(&token);
            // A pipe closes when its process exits, as a rule: look at that one child now,
            // rather than leave it to a scan of them all on SIGCHLD.
            if !gone && let Some(status) = sys::reap::reap_pid(pid) {
                let now = Instant::now();
                self.reaped(pid, status, now);
            }
        }
    }

    /// Output from a program, through its stream's pipeline to the sinks.
    fn output(&mut self, id: ProcId, stream: Stream, pid: i32, data: &[u8]) {
        let lines = self.targets(id, stream).is_some_and(|t| t.any());
        let Some(e) = self.sup.get(id) else { return };
        let rules = rules(&self.sup.config.logging, &e.spec, stream, lines);
        let s = self.io.entry(id).or_default().stream(stream);
        let ops = s.pipeline.push(data, Instant::now(), &rules);
        arm_flush(&mut self.timers, id, stream, s);
        self.apply(id, stream, pid, ops);
    }

    /// A stream's flush deadline fell due: its partial line goes out if it has been quiet
    /// that long (its deadline moves on with each read), and not while the console is behind:
    /// the rest of the line may be waiting in its pipe, unread by Kahi.
    pub(super) fn flush_due(&mut self, id: ProcId, stream: Stream, at: Instant, now: Instant) {
        let lines = self.targets(id, stream).is_some_and(|t| t.any());
        let Some(e) = self.sup.get(id) else { return };
        let rules = rules(&self.sup.config.logging, &e.spec, stream, lines);
        let pid = e.proc.pid.unwrap_or(0);
        let Some(io) = self.io.get_mut(&id) else { return };
        let s = io.stream(stream);
        if s.flush_armed != Some(at) {
            return;
        }
        s.flush_armed = None;
        if self.paused {
            // Armed again when the console drains.
            return;
        }
        match s.pipeline.deadline() {
            Some(due) if due <= now => {
                let ops = s.pipeline.flush(&rules);
                self.apply(id, stream, pid, ops);
            }
            _ => arm_flush(&mut self.timers, id, stream, s),
        }
    }

    /// The stream's pipe closed: its last partial line goes out now.
    fn end_of_output(&mut self, id: ProcId, stream: Stream, pid: i32) {
        let lines = self.targets(id, stream).is_some_and(|t| t.any());
        let Some(e) = self.sup.get(id) else { return };
        let rules = rules(&self.sup.config.logging, &e.spec, stream, lines);
        let Some(io) = self.io.get_mut(&id) else { return };
        let s = io.stream(stream);
        s.flush_armed = None;
        let ops = s.pipeline.end(&rules);
        self.apply(id, stream, pid, ops);
    }

    /// What the pipeline made of some output of the instance `pid`, to the sinks and the
    /// events.
    fn apply(&mut self, id: ProcId, stream: Stream, pid: i32, ops: Ops<'_>) {
        if !ops.bytes.is_empty() {
            self.deliver(id, stream, &ops.bytes);
            self.publish_output(id, stream, pid, &ops.bytes);
        }
        if !ops.captured.is_empty() || ops.unended > 0 {
            self.publish_captures(id, stream, pid, &ops);
        }
        if ops.has_lines() {
            self.line_sinks(id, stream, |sinks, origin| {
                for (line, how) in ops.lines() {
                    sinks.put(origin, line, how);
                }
            });
        }
    }

    /// Output as it is kept: into the ring buffer, the log file, the followers.
    fn deliver(&mut self, id: ProcId, stream: Stream, data: &[u8]) {
        let Some(e) = self.sup.get_mut(id) else { return };
        e.ring_mut(stream).write(data);
        if let Some(file) = self.log_file(id, stream) {
            let written = file.write(data);
            let path = file.path().display().to_string();
            self.log_written(id, stream, &path, written);
        } else if let Some(io) = self.io.get_mut(&id)
            && let h = &mut io.stream(stream).log_health
            && let Some((bytes, lines)) = &mut h.outage
        {
            // The file could not be opened.
            let n = data.len() as u64;
            h.dropped_bytes += n;
            *bytes += n;
            *lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
            h.mid_line = data.last() != Some(&b'\n');
        }
        if !self.followers.is_empty() {
            for token in self.followers.clone() {
                self.feed_follower(token);
            }
        }
        if !self.subscribers.is_empty() {
            self.feed_log_subscribers(id, stream);
        }
    }

    /// Accounts for a write to a stream's log file: one warning when writes start to fail,
    /// one line when they succeed again, saying how much was dropped in between. A failing
    /// disk costs one failed write per read of the program's output, never a retry loop.
    fn log_written(&mut self, id: ProcId, stream: Stream, path: &str, w: Written) {
        let Some(e) = self.sup.get(id) else { return };
        let name = e.spec.namespec();
        let h = &mut self.io.entry(id).or_default().stream(stream).log_health;
        h.dropped_bytes += w.dropped;
        if let Some((bytes, lines)) = &mut h.outage {
            *bytes += w.dropped;
            *lines += w.dropped_lines;
        }
        match w.error {
            Some(err) if h.outage.is_none() => {
                h.outage = Some((w.dropped, w.dropped_lines));
                log::warn!(
                    "unable to write the log file {path} of '{name}' ({}): {err}; dropping \
                     its output, whole lines at a time, until it can be written (kahi ctl \
                     tail still shows it)",
                    stream.name()
                );
            }
            Some(_) => {}
            None if w.bytes > 0 => {
                if let Some((bytes, lines)) = h.outage.take() {
                    log::warn!(
                        "the log file {path} of '{name}' ({}) is written again; {bytes} bytes \
                         ({lines} lines) of its output were dropped",
                        stream.name()
                    );
                }
            }
            None => {}
        }
    }

    /// Bytes of a stream's output its log file dropped, and whether it fails now: for
    /// /metrics.
    pub(super) fn log_state(&self, id: ProcId, stream: Stream) -> (u64, bool) {
        self.io.get(&id).map_or((0, false), |io| {
            let h = match stream {
                Stream::Stdout => &io.stdout.log_health,
                Stream::Stderr => &io.stderr.log_health,
            };
            (h.dropped_bytes, h.outage.is_some())
        })
    }

    /// Where a stream's lines go now; None for a process that is gone.
    fn targets(&self, id: ProcId, stream: Stream) -> Option<Targets> {
        let e = self.sup.get(id)?;
        let syslog = match stream {
            Stream::Stdout => e.spec.stdout_syslog,
            Stream::Stderr => e.spec.stderr_syslog,
        };
        let raw_fd = match stream {
            Stream::Stdout => e.spec.stdout_log.as_ref(),
            Stream::Stderr => e.spec.stderr_log.as_ref(),
        }
        .and_then(LogSpec::std_fd);
        // A stream that goes to Kahi's stdout or stderr as it is is not copied there again.
        let console = raw_fd.is_none()
            && !self.console_off
            && self.sup.config.logging.console.on(self.daemonized);
        let raw_fd = raw_fd.filter(|_| !self.console_off);
        Some(Targets { console, syslog, raw_fd })
    }

    /// Lets `write` send lines of a program stream to the console, syslog and Kahi's own
    /// stdout or stderr, as the program asks; then flushes the console. Does nothing when the
    /// stream goes to none of them.
    fn line_sinks(
        &mut self,
        id: ProcId,
        stream: Stream,
        write: impl FnOnce(&mut LineSinks<'_>, &Origin<'_>),
    ) {
        let Some(t) = self.targets(id, stream).filter(Targets::any) else { return };
        let Some(e) = self.sup.get(id) else { return };
        let ts = crate::timefmt::rfc3339_now();
        let prefix = self.sup.config.logging.prefix.as_ref();
        let process = if prefix.is_some() { e.spec.name.clone() } else { e.spec.namespec() };
        let origin = Origin {
            ts: &ts,
            program: &e.spec.program,
            process: &process,
            stream: stream.name(),
            style: prefix.map(|p| p.style(&e.spec.name)).unwrap_or_default(),
        };
        let format = self.sup.config.logging.format;
        let mut raw = Vec::new();
        let mut sinks = LineSinks {
            console: if t.console { Some((self.console.buf(), format)) } else { None },
            syslog: if t.syslog { Some(&mut self.syslog) } else { None },
            raw: t.raw_fd.map(|_| &mut raw),
            pid: e.proc.pid,
        };
        write(&mut sinks, &origin);
        match t.raw_fd {
            Some(1) => self.console.buf().extend_from_slice(&raw),
            Some(_) => console::stderr().buf().extend_from_slice(&raw),
            None => {}
        }
        self.flush_console();
    }

    /// Writes what Kahi's stdout and stderr take now; pauses reading programs' pipes while
    /// either is far behind.
    pub(super) fn flush_console(&mut self) {
        self.console.flush();
        let pending = {
            let mut err = console::stderr();
            err.flush();
            self.console.pending().max(err.pending())
        };
        if !self.paused && pending > console::HIGH_WATER {
            self.paused = true;
        } else if self.paused && pending <= console::LOW_WATER {
            self.paused = false;
            self.pending_reads.extend(self.paused_reads.drain());
            if self.console_skipped > 0 {
                log::warn!(
                    "{} bytes of output of processes that had exited were not copied to stdout \
                     while it was blocked; their ring buffers and log files hold them",
                    std::mem::take(&mut self.console_skipped)
                );
            }
            // A partial line was quiet only because Kahi stopped reading: its wait for
            // quiet starts again now.
            let (now, wait) = (Instant::now(), self.sup.config.logging.partial_line_secs);
            for (&id, io) in self.io.iter_mut() {
                for (stream, s) in
                    [(Stream::Stdout, &mut io.stdout), (Stream::Stderr, &mut io.stderr)]
                {
                    s.pipeline.rearm(now, wait);
                    arm_flush(&mut self.timers, id, stream, s);
                }
            }
        }
    }

    /// The open log file of a stream, opened (or reopened, after an update changed it) as
    /// needed. None when the stream has no log file, or it cannot be opened.
    pub(super) fn log_file(&mut self, id: ProcId, stream: Stream) -> Option<&mut LogFile> {
        let e = self.sup.get(id)?;
        let spec = match stream {
            Stream::Stdout => e.spec.stdout_log.as_ref(),
            Stream::Stderr => e.spec.stderr_log.as_ref(),
        };
        let s = self.io.entry(id).or_default().stream(stream);
        let Some(spec) = spec else {
            s.log_file = None;
            return None;
        };
        if spec.std_fd().is_some() {
            // Kahi's own stdout or stderr: written by line_sinks, through its buffer.
            return None;
        }
        let current = s.log_file.as_ref().is_some_and(|f| f.is(spec));
        if !current {
            match LogFile::open_spec(spec) {
                Ok(mut f) => {
                    // The outage, if any, ends with the first write that succeeds.
                    if std::mem::take(&mut s.log_health.mid_line) {
                        f.skip_to_next_line();
                    }
                    s.log_file = Some(Box::new(f));
                }
                Err(err) => {
                    let h = &mut s.log_health;
                    if h.outage.is_none() {
                        h.outage = Some((0, 0));
                        log::warn!(
                            "unable to open the log file {} of '{}' ({}): {err}; dropping its \
                             output until it can be written (kahi ctl tail still shows it)",
                            spec.path.display(),
                            e.spec.namespec(),
                            stream.name()
                        );
                    }
                    return None;
                }
            }
        }
        s.log_file.as_deref_mut()
    }

    /// SIGUSR2: reopen every log file (logrotate moved them away).
    pub(super) fn reopen_logs(&mut self) {
        let mut n = 0;
        for io in self.io.values_mut() {
            for f in [&mut io.stdout.log_file, &mut io.stderr.log_file].into_iter().flatten() {
                n += 1;
                if let Err(e) = f.reopen() {
                    log::warn!("unable to reopen {}: {e}", f.path().display());
                }
            }
        }
        log::info!("reopened {n} log files");
    }
}
