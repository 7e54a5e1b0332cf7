//! Container mode: every program's lines on Kahi's own stdout, as `process | line` text or as
//! JSON lines, so `docker logs` and a cluster's collector get one stream.
//!
//! Lines are assembled per program stream (a line split across reads is joined; the last
//! partial line is written when the pipe closes). Kahi's stdout and stderr are written without
//! blocking from bounded buffers: when the reader is slow, the event loop stops reading the
//! programs' pipes (so they block on write) instead of dropping lines or growing without bound.
//!
//! The same buffers carry the raw output of programs whose log file is `/dev/stdout` or
//! `/dev/stderr`, whole lines at a time so that programs never interleave mid-line. Kahi's own
//! log goes through the stderr buffer too, so its records and program lines stay whole.

use std::os::fd::{BorrowedFd, RawFd};
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Past this many buffered bytes, stop reading programs' output until the console drains.
pub const HIGH_WATER: usize = 1 << 20;
/// Resume reading once the buffer is down to this.
pub const LOW_WATER: usize = 256 << 10;
/// While the console is behind, what programs that have exited still had in their pipes (a
/// crash's or a stop's last words, as a rule a few lines) is held for it up to this many
/// buffered bytes; past that, only their ring buffers and log files get it. A program that
/// has exited cannot be made to wait, and its pipe must be read for it to close.
pub const EXITED_ROOM: usize = 16 << 20;
/// How long Kahi, exiting, waits for a reader of its stdout or stderr that takes nothing.
pub const LAST_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

/// One line as the JSON format writes it.
#[derive(Serialize)]
struct JsonLine<'a> {
    ts: &'a str,
    program: &'a str,
    process: &'a str,
    stream: &'a str,
    line: &'a str,
    /// This piece of an over-long line continues in the next one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    continued: bool,
}

/// Where a line comes from, for formatting.
pub struct Origin<'a> {
    pub ts: &'a str,
    pub program: &'a str,
    pub process: &'a str,
    pub stream: &'a str,
    pub style: Style,
}

/// How a text line's prefix looks: by default `PROCESS | `; `kahi run` pads every name to
/// the longest and gives each process a colour, as foreman does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// The width the name is padded to.
    pub width: usize,
    /// An SGR foreground colour for the name and its bar.
    pub colour: Option<u8>,
}

/// `kahi run`'s prefixes: each process by its name (not `GROUP:NAME`), padded to `width`,
/// in its colour.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefix {
    pub width: usize,
    /// Each process's colour, by name; empty when colour is off.
    pub colours: std::collections::HashMap<String, u8>,
}

impl Prefix {
    /// The style of `name`'s lines.
    pub fn style(&self, name: &str) -> Style {
        Style { width: self.width, colour: self.colours.get(name).copied() }
    }
}

/// foreman's colours, given to processes in turn: cyan, yellow, green, magenta, red, blue,
/// then their bright forms.
pub const COLOURS: [u8; 12] = [36, 33, 32, 35, 31, 34, 96, 93, 92, 95, 91, 94];

/// Formats one program line (without its newline) into `out`, with a newline. A piece of an
/// over-long line is marked: `"continued": true` in JSON, ` [continued]` in text.
pub fn format_line(
    out: &mut Vec<u8>,
    format: Format,
    o: &Origin<'_>,
    line: &[u8],
    continued: bool,
) {
    let text = String::from_utf8_lossy(line);
    match format {
        Format::Text => {
            if let Some(c) = o.style.colour {
                out.extend_from_slice(format!("\x1b[{c}m").as_bytes());
            }
            out.extend_from_slice(o.process.as_bytes());
            let pad = o.style.width.saturating_sub(o.process.chars().count());
            out.resize(out.len() + pad, b' ');
            out.extend_from_slice(b" |");
            if o.style.colour.is_some() {
                out.extend_from_slice(b"\x1b[0m");
            }
            out.push(b' ');
            out.extend_from_slice(text.as_bytes());
            if continued {
                out.extend_from_slice(b" [continued]");
            }
        }
        Format::Json => {
            let j = JsonLine {
                ts: o.ts,
                program: o.program,
                process: o.process,
                stream: o.stream,
                line: &text,
                continued,
            };
            // Serializing a struct of strings cannot fail.
            let _ = serde_json::to_writer(&mut *out, &j);
        }
    }
    out.push(b'\n');
}

/// Joins a stream's bytes into whole lines.
#[derive(Debug, Default)]
pub struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// Adds `data`; calls `each(line, continued)` for every line it completes (without the
    /// newline), and for every `max`-byte piece of a line that grows longer than `max`
    /// (`continued` true: the line goes on in a later call).
    pub fn push(&mut self, data: &[u8], max: usize, mut each: impl FnMut(&[u8], bool)) {
        let max = max.max(1);
        let mut rest = data;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() && i <= max {
                each(&rest[..i], false);
            } else {
                self.partial.extend_from_slice(&rest[..i]);
                self.cut(max, true, &mut each);
                each(&self.partial, false);
                self.partial.clear();
            }
            rest = &rest[i + 1..];
        }
        self.partial.extend_from_slice(rest);
        self.cut(max, false, &mut each);
    }

    /// Emits `max`-byte pieces of the held line while more than `max` bytes (or, when the
    /// line is complete, more than its last piece) are held.
    fn cut(&mut self, max: usize, complete: bool, each: &mut impl FnMut(&[u8], bool)) {
        if self.partial.len() <= max {
            return;
        }
        // Keep the last piece: a complete line ends with it (unmarked); an incomplete one
        // may still grow.
        let keep = match self.partial.len() % max {
            0 if complete => max,
            0 => 0,
            r => r,
        };
        let cut = self.partial.len() - keep;
        for piece in self.partial[..cut].chunks(max) {
            each(piece, true);
        }
        self.partial.drain(..cut);
    }

    /// True when part of a line is held.
    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty()
    }

    /// The partial line held, if any (the stream ended without a newline).
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.partial.is_empty() { None } else { Some(std::mem::take(&mut self.partial)) }
    }
}

/// Kahi's stdout or stderr, written from a buffer (without blocking once the loop has made
/// the descriptor non-blocking).
pub struct Console {
    fd: RawFd,
    buf: Vec<u8>,
    written: usize,
}

/// Kahi's stderr: shared by the daemon's logger (any thread) and the loop.
static STDERR: Mutex<Console> = Mutex::new(Console::new(2));

/// Kahi's stderr buffer. Nothing may log while holding it.
pub fn stderr() -> MutexGuard<'static, Console> {
    STDERR.lock().unwrap_or_else(|e| e.into_inner())
}

impl Console {
    pub const fn new(fd: RawFd) -> Console {
        Console { fd, buf: Vec::new(), written: 0 }
    }

    /// The buffer to append formatted lines to.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    pub fn pending(&self) -> usize {
        self.buf.len() - self.written
    }

    /// Writes what is pending, waiting for the reader while it takes some at least every
    /// `quiet`; returns the bytes it gave up on (a reader that stopped reading must not keep
    /// Kahi from exiting).
    pub fn flush_within(&mut self, quiet: std::time::Duration) -> usize {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        loop {
            self.flush();
            if self.pending() == 0 {
                return 0;
            }
            // SAFETY: fds 1 and 2 stay open for the daemon's whole life.
            let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
            let ms = PollTimeout::try_from(quiet.as_millis().min(60_000) as i32)
                .unwrap_or(PollTimeout::ZERO);
            match poll(&mut [PollFd::new(fd, PollFlags::POLLOUT)], ms) {
                Ok(0) => break,
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        let lost = self.pending();
        self.buf.clear();
        self.written = 0;
        lost
    }

    /// Writes what the descriptor takes now. A closed one drops what is pending (nobody can
    /// read it).
    pub fn flush(&mut self) {
        // Straight to the descriptor, past std's buffers, so a full pipe says EAGAIN here.
        // SAFETY: fds 1 and 2 stay open for the daemon's whole life.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        while self.written < self.buf.len() {
            match nix::unistd::write(fd, &self.buf[self.written..]) {
                Ok(0) => break,
                Ok(n) => self.written += n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(_) => self.written = self.buf.len(),
            }
        }
        if self.written == self.buf.len() {
            self.buf.clear();
            self.written = 0;
        } else if self.written > (64 << 10) {
            self.buf.drain(..self.written);
            self.written = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_joined_across_reads() {
        let mut l = Lines::default();
        let mut got: Vec<String> = Vec::new();
        for chunk in [&b"a"[..], b"bc\nd", b"", b"ef\n\ng\n", b"tail"] {
            l.push(chunk, 100, |line, _| got.push(String::from_utf8_lossy(line).into_owned()));
        }
        assert_eq!(got, ["abc", "def", "", "g"]);
        assert!(l.has_partial());
        assert_eq!(l.finish(), Some(b"tail".to_vec()));
        assert_eq!(l.finish(), None);
    }

    #[test]
    fn long_lines_are_cut_into_marked_pieces() {
        let mut l = Lines::default();
        let mut got: Vec<(String, bool)> = Vec::new();
        let mut each =
            |line: &[u8], c: bool| got.push((String::from_utf8_lossy(line).into_owned(), c));
        l.push(b"0123456789ab", 4, &mut each);
        l.push(b"cd\nxy\n0123\n01234567\n", 4, &mut each);
        let want = [
            ("0123", true),
            ("4567", true),
            ("89ab", true),
            ("cd", false),
            ("xy", false),
            ("0123", false),
            ("0123", true),
            ("4567", false),
        ];
        let want: Vec<(String, bool)> = want.iter().map(|(s, c)| (s.to_string(), *c)).collect();
        assert_eq!(got, want);
        assert!(!l.has_partial());
    }

    #[test]
    fn formats() {
        let mut out = Vec::new();
        let o = |ts, stream| Origin {
            ts,
            program: "web",
            process: "g:web",
            stream,
            style: Style::default(),
        };
        format_line(&mut out, Format::Text, &o("T", "stdout"), b"hello", false);
        let json_ts = "2026-01-01T00:00:00.000Z";
        format_line(&mut out, Format::Json, &o(json_ts, "stderr"), b"say \"hi\"\xff", false);
        format_line(&mut out, Format::Text, &o("T", "stdout"), b"long", true);
        format_line(&mut out, Format::Json, &o("T", "stdout"), b"long", true);
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("g:web | hello"));
        let v: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(v["line"], "say \"hi\"\u{fffd}");
        assert_eq!(v["stream"], "stderr");
        assert_eq!(v["process"], "g:web");
        assert_eq!(v["program"], "web");
        assert_eq!(v["ts"], "2026-01-01T00:00:00.000Z");
        assert_eq!(v.get("continued"), None);
        assert_eq!(lines.next(), Some("g:web | long [continued]"));
        let v: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(v["continued"], true);
    }

    #[test]
    fn run_prefixes_are_padded_and_coloured() {
        let mut prefix = Prefix { width: 8, colours: Default::default() };
        let mut out = Vec::new();
        let o =
            |process, style| Origin { ts: "T", program: "web", process, stream: "stdout", style };
        format_line(&mut out, Format::Text, &o("web.1", prefix.style("web.1")), b"hi", false);
        format_line(&mut out, Format::Text, &o("worker.1", prefix.style("worker.1")), b"", false);
        prefix.colours.insert("web.1".into(), COLOURS[0]);
        format_line(&mut out, Format::Text, &o("web.1", prefix.style("web.1")), b"hi", false);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "web.1    | hi\nworker.1 | \n\x1b[36mweb.1    |\x1b[0m hi\n");
    }
}
