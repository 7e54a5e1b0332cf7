//! supervisord's capture mode, the first step of an output stream's pipeline: what a program
//! writes between `<!--XSUPERVISOR:BEGIN-->` and `<!--XSUPERVISOR:END-->` is taken out of its
//! output and handed back whole, for a PROCESS_COMMUNICATION event; the rest goes on to the
//! log. The markers are found as supervisord finds them, in the bytes as written (before ANSI
//! stripping), across reads: the end of a read that may be the start of a marker is held
//! until the next. One capture keeps its newest `limit` bytes, the oldest dropped and counted
//! (supervisord's capture buffer drops the oldest too). Pure: no I/O, no clock.

use std::borrow::Cow;

pub const BEGIN: &[u8] = b"<!--XSUPERVISOR:BEGIN-->";
pub const END: &[u8] = b"<!--XSUPERVISOR:END-->";

/// A capture that ended: the bytes between the markers, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    pub data: Vec<u8>,
    /// Bytes dropped from its start past the limit.
    pub dropped: u64,
}

/// One stream's capture state between reads.
#[derive(Debug, Default)]
pub struct Capture {
    /// Between BEGIN and END.
    on: bool,
    /// The end of the last read, which may be the start of the next marker.
    held: Vec<u8>,
    /// The capture so far: its newest `limit` bytes.
    data: Vec<u8>,
    dropped: u64,
}

impl Capture {
    /// Splits a read into the output (returned: borrowed when no marker is near) and what is
    /// captured; each capture that ends goes to `done`.
    pub fn push<'a>(
        &mut self,
        input: &'a [u8],
        limit: usize,
        done: &mut Vec<Captured>,
    ) -> Cow<'a, [u8]> {
        if !self.on
            && self.held.is_empty()
            && find(input, BEGIN).is_none()
            && prefix_at_end(input, BEGIN) == 0
        {
            return Cow::Borrowed(input);
        }
        let mut all = std::mem::take(&mut self.held);
        all.extend_from_slice(input);
        let mut out = Vec::new();
        let mut rest = &all[..];
        loop {
            let marker = if self.on { END } else { BEGIN };
            match find(rest, marker) {
                Some(i) => {
                    self.put(&rest[..i], &mut out, limit);
                    rest = &rest[i + marker.len()..];
                    if self.on {
                        let data = std::mem::take(&mut self.data);
                        done.push(Captured { data, dropped: std::mem::take(&mut self.dropped) });
                    }
                    self.on = !self.on;
                }
                None => {
                    let keep = prefix_at_end(rest, marker);
                    let (now, later) = rest.split_at(rest.len() - keep);
                    self.put(now, &mut out, limit);
                    self.held = later.to_vec();
                    break;
                }
            }
        }
        Cow::Owned(out)
    }

    fn put(&mut self, bytes: &[u8], out: &mut Vec<u8>, limit: usize) {
        if !self.on {
            out.extend_from_slice(bytes);
            return;
        }
        self.data.extend_from_slice(bytes);
        if self.data.len() > limit {
            let over = self.data.len() - limit;
            self.data.drain(..over);
            self.dropped += over as u64;
        }
    }

    /// Output held back as the possible start of BEGIN (none in a capture): what a quiet
    /// stream lets out at its deadline.
    pub fn holds_output(&self) -> bool {
        !self.on && !self.held.is_empty()
    }

    /// Gives up the output held back (the marker did not come); a capture under way keeps
    /// what it holds.
    pub fn release(&mut self) -> Vec<u8> {
        if self.on { Vec::new() } else { std::mem::take(&mut self.held) }
    }

    /// The stream ended: the bytes of a capture never ended, which are dropped; what was held
    /// outside one goes out.
    pub fn end(&mut self) -> (Vec<u8>, usize) {
        let unended = if self.on { self.data.len() + self.held.len() } else { 0 };
        let out = self.release();
        *self = Capture::default();
        (out, unended)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The length of the longest end of `data` that begins `marker` (shorter than it).
fn prefix_at_end(data: &[u8], marker: &[u8]) -> usize {
    (1..marker.len().min(data.len() + 1)).rev().find(|&n| data.ends_with(&marker[..n])).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(c: &mut Capture, input: &[u8], done: &mut Vec<Captured>) -> Vec<u8> {
        c.push(input, 1024, done).into_owned()
    }

    #[test]
    fn output_without_a_marker_passes_through_uncopied() {
        let mut c = Capture::default();
        let data = b"plain output\n";
        let out = c.push(data, 16, &mut Vec::new());
        assert!(matches!(out, Cow::Borrowed(b) if b.as_ptr() == data.as_ptr()));
    }

    #[test]
    fn what_is_between_the_markers_is_taken_out_whole() {
        let mut c = Capture::default();
        let mut done = Vec::new();
        let out = push(
            &mut c,
            b"before <!--XSUPERVISOR:BEGIN-->a\nb<!--XSUPERVISOR:END--> after\n",
            &mut done,
        );
        assert_eq!(out, b"before  after\n");
        assert_eq!(done, [Captured { data: b"a\nb".to_vec(), dropped: 0 }]);
        // Two in one read.
        done.clear();
        let two = b"<!--XSUPERVISOR:BEGIN-->1<!--XSUPERVISOR:END-->-<!--XSUPERVISOR:BEGIN-->2<!--XSUPERVISOR:END-->";
        assert_eq!(push(&mut c, two, &mut done), b"-");
        assert_eq!(done.iter().map(|d| &d.data[..]).collect::<Vec<_>>(), [b"1", b"2"]);
    }

    #[test]
    fn markers_split_across_reads_are_found() {
        let mut c = Capture::default();
        let mut done = Vec::new();
        assert_eq!(push(&mut c, b"log\n<!--XSUPER", &mut done), b"log\n");
        assert!(c.holds_output());
        assert_eq!(push(&mut c, b"VISOR:BEGIN-->da", &mut done), b"");
        assert_eq!(push(&mut c, b"ta<!--XSUPERVISOR:E", &mut done), b"");
        assert!(!c.holds_output(), "in a capture, nothing is held back from the log");
        assert_eq!(push(&mut c, b"ND-->tail", &mut done), b"tail");
        assert_eq!(done, [Captured { data: b"data".to_vec(), dropped: 0 }]);
        // What looked like a marker's start and was not goes out with the next read.
        assert_eq!(push(&mut c, b"<!--", &mut done), b"");
        assert_eq!(push(&mut c, b" a comment\n", &mut done), b"<!-- a comment\n");
        // Or at the deadline of a quiet stream.
        assert_eq!(push(&mut c, b"x <!-", &mut done), b"x ");
        assert_eq!(c.release(), b"<!-");
        assert!(!c.holds_output());
    }

    #[test]
    fn a_capture_keeps_its_newest_bytes_up_to_the_limit() {
        let mut c = Capture::default();
        let mut done = Vec::new();
        c.push(b"<!--XSUPERVISOR:BEGIN-->0123456789", 4, &mut done);
        c.push(b"abc<!--XSUPERVISOR:END-->", 4, &mut done);
        assert_eq!(done, [Captured { data: b"9abc".to_vec(), dropped: 9 }]);
        // The count starts again with the next capture.
        done.clear();
        c.push(b"<!--XSUPERVISOR:BEGIN-->z<!--XSUPERVISOR:END-->", 4, &mut done);
        assert_eq!(done, [Captured { data: b"z".to_vec(), dropped: 0 }]);
    }

    #[test]
    fn the_end_of_the_stream_drops_an_unended_capture() {
        let mut c = Capture::default();
        let mut done = Vec::new();
        c.push(b"<!--XSUPERVISOR:BEGIN-->half", 1024, &mut done);
        assert_eq!(c.end(), (Vec::new(), 4));
        assert!(done.is_empty());
        // A new run starts outside a capture.
        assert_eq!(push(&mut c, b"fresh <!-", &mut done), b"fresh ");
        assert_eq!(c.end(), (b"<!-".to_vec(), 0));
    }
}
