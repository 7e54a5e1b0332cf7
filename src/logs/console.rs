//! Container mode: every program's lines on Kahi's own stdout, as `process | line` text or as
//! JSON lines, so `docker logs` and a cluster's collector get one stream.
//!
//! Lines are assembled per program stream (a line split across reads is joined; the last
//! partial line is written when the pipe closes). Kahi's stdout is written without blocking
//! from a bounded buffer: when the reader is slow, the event loop stops reading the programs'
//! pipes (so they block on write) instead of dropping lines or growing without bound.

use std::os::fd::AsFd;

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

/// One line as the JSON format writes it.
#[derive(Serialize)]
struct JsonLine<'a> {
    ts: &'a str,
    program: &'a str,
    process: &'a str,
    stream: &'a str,
    line: &'a str,
}

/// Formats one program line (without its newline) into `out`, with a newline.
pub fn format_line(
    out: &mut Vec<u8>,
    format: Format,
    ts: &str,
    program: &str,
    process: &str,
    stream: &str,
    line: &[u8],
) {
    let text = String::from_utf8_lossy(line);
    match format {
        Format::Text => {
            out.extend_from_slice(process.as_bytes());
            out.extend_from_slice(b" | ");
            out.extend_from_slice(text.as_bytes());
        }
        Format::Json => {
            let j = JsonLine { ts, program, process, stream, line: &text };
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
    /// Adds `data`; calls `each` for every line it completes (without the newline).
    pub fn push(&mut self, data: &[u8], mut each: impl FnMut(&[u8])) {
        let mut rest = data;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                each(&rest[..i]);
            } else {
                self.partial.extend_from_slice(&rest[..i]);
                each(&self.partial);
                self.partial.clear();
            }
            rest = &rest[i + 1..];
        }
        self.partial.extend_from_slice(rest);
    }

    /// The partial line held, if any (the stream ended without a newline).
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.partial.is_empty() { None } else { Some(std::mem::take(&mut self.partial)) }
    }
}

/// Kahi's stdout, written without blocking from a bounded buffer.
pub struct Console {
    buf: Vec<u8>,
    written: usize,
}

impl Default for Console {
    fn default() -> Self {
        Console::new()
    }
}

impl Console {
    pub fn new() -> Console {
        Console { buf: Vec::new(), written: 0 }
    }

    /// The buffer to append formatted lines to.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    pub fn pending(&self) -> usize {
        self.buf.len() - self.written
    }

    /// Writes what stdout takes now. A closed stdout drops what is pending (nobody can read it).
    pub fn flush(&mut self) {
        // Straight to fd 1, past std's line buffer, so a full pipe says EAGAIN here.
        let stdout = std::io::stdout();
        while self.written < self.buf.len() {
            match nix::unistd::write(stdout.as_fd(), &self.buf[self.written..]) {
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
            l.push(chunk, |line| got.push(String::from_utf8_lossy(line).into_owned()));
        }
        assert_eq!(got, ["abc", "def", "", "g"]);
        assert_eq!(l.finish(), Some(b"tail".to_vec()));
        assert_eq!(l.finish(), None);
    }

    #[test]
    fn formats() {
        let mut out = Vec::new();
        format_line(&mut out, Format::Text, "T", "web", "g:web", "stdout", b"hello");
        format_line(
            &mut out,
            Format::Json,
            "2026-01-01T00:00:00.000Z",
            "web",
            "g:web",
            "stderr",
            b"say \"hi\"\xff",
        );
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("g:web | hello"));
        let v: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(v["line"], "say \"hi\"\u{fffd}");
        assert_eq!(v["stream"], "stderr");
        assert_eq!(v["process"], "g:web");
        assert_eq!(v["program"], "web");
        assert_eq!(v["ts"], "2026-01-01T00:00:00.000Z");
    }
}
