//! The way of one output stream of a program, from the bytes read off its pipe to what each
//! sink takes: capture mode (supervisord's, [`super::capture`]), ANSI stripping, then masking
//! of secrets, then line splitting, with the deadline of a held partial line. Pure: bytes and the time go in, [`Ops`] come out, and the event loop
//! applies them to the sinks (ring buffer, log file, followers: bytes; console, syslog, Kahi's
//! stdout or stderr: lines). No I/O and no clock here.
//!
//! A stream that strips nothing, masks nothing and feeds no line sink passes its bytes through
//! borrowed, uncopied: the common case of a program logging to a file costs no more than the
//! write.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use super::ansi::Stripper;
use super::capture::{Capture, Captured};
use super::console::Lines;
use super::mask;

/// What a stream's configuration asks of its output, as of this push (an update may change it
/// between two).
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// `strip_ansi`: escape sequences are removed.
    pub strip_ansi: bool,
    /// The secrets masked in everything kept (none: no masking).
    pub secrets: &'a [Vec<u8>],
    /// `max_line_bytes`: a longer line goes out in pieces of this size, marked continued.
    pub max_line: usize,
    /// `partial_line_secs`: how long a partial line waits for its end before it goes out as
    /// it is (zero: it waits for its newline or the stream's end).
    pub partial_wait: Duration,
    /// Some sink takes whole lines (console, syslog, Kahi's stdout or stderr): split them.
    pub lines: bool,
    /// Capture mode: the most bytes one capture keeps; 0 is off.
    pub capture: usize,
}

/// How a line handed to the line sinks ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnd {
    /// It had its newline (not included).
    Newline,
    /// A piece of a line that goes on: over `max_line`, or quiet past its deadline.
    Continued,
    /// The stream's last bytes, which never got a newline.
    Last,
}

/// What one push, flush or end of a stream produced, for the loop to apply.
#[derive(Debug, Default)]
pub struct Ops<'a> {
    /// The output as it is kept, ANSI stripped and secrets masked: for the ring buffer, the
    /// log file and the followers. Borrowed from the input when nothing changed it.
    pub bytes: Cow<'a, [u8]>,
    /// The lines for the line sinks, one after the other in one buffer, and where each ends.
    line_buf: Vec<u8>,
    ends: Vec<(usize, LineEnd)>,
    /// Captures that ended, ANSI stripped and masked as the rest: for PROCESS_COMMUNICATION.
    pub captured: Vec<Captured>,
    /// At the stream's end: bytes of a capture never ended, dropped.
    pub unended: usize,
}

impl Ops<'_> {
    /// The lines for the line sinks, in order.
    pub fn lines(&self) -> impl Iterator<Item = (&[u8], LineEnd)> {
        let mut start = 0;
        self.ends.iter().map(move |&(end, how)| {
            let line = &self.line_buf[start..end];
            start = end;
            (line, how)
        })
    }

    /// Whether any line goes to the line sinks.
    pub fn has_lines(&self) -> bool {
        !self.ends.is_empty()
    }

    fn line(&mut self, line: &[u8], how: LineEnd) {
        self.line_buf.extend_from_slice(line);
        self.ends.push((self.line_buf.len(), how));
    }
}

/// One stream's state between reads: a capture under way (or the start of a marker), an escape
/// sequence begun, a line waiting to be masked whole, a line waiting for its end, and when that
/// one goes out anyway.
#[derive(Debug, Default)]
pub struct Pipeline {
    capture: Capture,
    ansi: Stripper,
    /// Masking works on whole lines, so a secret split across two reads is still found.
    masking: Lines,
    lines: Lines,
    /// Bytes went to no line sink and ended mid-line: the line sinks pick the stream up
    /// again after its next newline, not with the rest of a line they never saw begin.
    resync: bool,
    deadline: Option<Instant>,
}

impl Pipeline {
    /// Output read from the stream at `now`.
    pub fn push<'a>(&mut self, data: &'a [u8], now: Instant, rules: &Rules<'_>) -> Ops<'a> {
        let mut captured = Vec::new();
        let data = if rules.capture > 0 {
            self.capture.push(data, rules.capture, &mut captured)
        } else {
            Cow::Borrowed(data)
        };
        let bytes = self.clean(data, rules);
        let captured = captured.into_iter().map(|c| clean_capture(c, rules)).collect();
        let mut ops = Ops { bytes, captured, ..Ops::default() };
        if rules.lines {
            self.split(&mut ops, rules.max_line);
        } else if let Some(&last) = ops.bytes.last() {
            // These bytes go to no line sink (the console skips a process that is gone while
            // it is blocked): a line held from before cannot be finished by what comes after
            // them, so it is let go, and the line sinks start again at a line's start.
            self.lines.finish();
            self.resync = last != b'\n';
        }
        let partial =
            self.masking.has_partial() || self.lines.has_partial() || self.capture.holds_output();
        // The wait is for quiet: each push that leaves a partial line starts it again.
        self.deadline =
            (partial && !rules.partial_wait.is_zero()).then(|| now + rules.partial_wait);
        ops
    }

    /// Output as it is kept: ANSI stripped, secrets masked (a partial line held for that).
    fn clean<'a>(&mut self, data: Cow<'a, [u8]>, rules: &Rules<'_>) -> Cow<'a, [u8]> {
        let bytes = if rules.strip_ansi {
            let mut out = Vec::with_capacity(data.len());
            self.ansi.strip(&data, &mut out);
            Cow::Owned(out)
        } else {
            data
        };
        if rules.secrets.is_empty() {
            return bytes;
        }
        let mut masked = Vec::with_capacity(bytes.len());
        self.masking.push(&bytes, rules.max_line, |line, continued| {
            mask::mask_into(&mut masked, line, rules.secrets);
            if !continued {
                masked.push(b'\n');
            }
        });
        Cow::Owned(masked)
    }

    /// Cuts the kept bytes of `ops` into lines for the line sinks.
    fn split(&mut self, ops: &mut Ops<'_>, max: usize) {
        let Ops { bytes, line_buf, ends, .. } = ops;
        let mut bytes: &[u8] = bytes;
        if self.resync {
            match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    bytes = &bytes[i + 1..];
                    self.resync = false;
                }
                None => return,
            }
        }
        self.lines.push(bytes, max, |line, continued| {
            line_buf.extend_from_slice(line);
            ends.push((
                line_buf.len(),
                if continued { LineEnd::Continued } else { LineEnd::Newline },
            ));
        });
    }

    /// When the partial line held goes out if no more output comes; None when none is held
    /// (or partial lines wait for their end).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Starts the wait for quiet again (Kahi stopped reading the pipe for a while, so the
    /// quiet was its own).
    pub fn rearm(&mut self, now: Instant, wait: Duration) {
        if self.deadline.is_some() {
            self.deadline = Some(now + wait);
        }
    }

    /// The deadline passed: the partial line held goes out as it is, marked continued for the
    /// line sinks; its rest, if it comes, is a line of its own. So do bytes held as the
    /// possible start of a capture marker that did not come.
    pub fn flush(&mut self, rules: &Rules<'_>) -> Ops<'static> {
        self.deadline = None;
        let held = self.capture.release();
        self.release(held, rules, LineEnd::Continued)
    }

    /// The stream ended (its pipe closed): what is held goes out, a capture never ended is
    /// dropped (counted in `unended`), and the state starts over.
    pub fn end(&mut self, rules: &Rules<'_>) -> Ops<'static> {
        let (held, unended) = self.capture.end();
        let mut ops = self.release(held, rules, LineEnd::Last);
        ops.unended = unended;
        *self = Pipeline::default();
        ops
    }

    fn release(&mut self, held: Vec<u8>, rules: &Rules<'_>, how: LineEnd) -> Ops<'static> {
        let mut bytes = self.clean(Cow::Owned(held), rules).into_owned();
        if let Some(rest) = self.masking.finish() {
            mask::mask_into(&mut bytes, &rest, rules.secrets);
        }
        let mut ops = Ops { bytes: Cow::Owned(bytes), ..Ops::default() };
        if rules.lines {
            self.split(&mut ops, rules.max_line);
            if let Some(rest) = self.lines.finish() {
                ops.line(&rest, how);
            }
        } else {
            self.lines.finish();
        }
        ops
    }
}

/// A capture as it is published: ANSI stripped and secrets masked, as the log would have had
/// it (whole, so a secret anywhere in it is found).
fn clean_capture(c: Captured, rules: &Rules<'_>) -> Captured {
    let mut data = c.data;
    if rules.strip_ansi {
        let mut out = Vec::with_capacity(data.len());
        Stripper::default().strip(&data, &mut out);
        data = out;
    }
    if !rules.secrets.is_empty() {
        let mut out = Vec::with_capacity(data.len());
        mask::mask_into(&mut out, &data, rules.secrets);
        data = out;
    }
    Captured { data, ..c }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(2);

    fn rules(secrets: &[Vec<u8>]) -> Rules<'_> {
        Rules {
            strip_ansi: false,
            secrets,
            max_line: 16,
            partial_wait: WAIT,
            lines: true,
            capture: 0,
        }
    }

    /// The lines of `ops`, as text, with `+` after a continued piece and `$` after a last one.
    fn lines(ops: &Ops<'_>) -> Vec<String> {
        ops.lines()
            .map(|(l, how)| {
                let mark = match how {
                    LineEnd::Newline => "",
                    LineEnd::Continued => "+",
                    LineEnd::Last => "$",
                };
                format!("{}{mark}", String::from_utf8_lossy(l))
            })
            .collect()
    }

    #[test]
    fn a_stream_that_changes_nothing_passes_its_bytes_through_uncopied() {
        let mut p = Pipeline::default();
        let r = Rules { lines: false, ..rules(&[]) };
        let data = b"one\ntw";
        let ops = p.push(data, Instant::now(), &r);
        assert!(matches!(ops.bytes, Cow::Borrowed(b) if b.as_ptr() == data.as_ptr()));
        assert!(!ops.has_lines());
        assert_eq!(p.deadline(), None, "no line sink: nothing is held");
    }

    #[test]
    fn lines_split_across_pushes_come_out_whole() {
        let mut p = Pipeline::default();
        let t0 = Instant::now();
        let ops = p.push(b"first li", t0, &rules(&[]));
        assert_eq!(&ops.bytes[..], b"first li", "the kept bytes do not wait for lines");
        assert!(lines(&ops).is_empty());
        let ops = p.push(b"ne\nsecond\nthi", t0, &rules(&[]));
        assert_eq!(lines(&ops), ["first line", "second"]);
        let ops = p.push(b"rd\n", t0, &rules(&[]));
        assert_eq!(lines(&ops), ["third"]);
        assert_eq!(p.deadline(), None);
    }

    /// Bytes pushed without lines (the console skipped them) end the line held before them:
    /// the lines after them start afresh, not joined to a start written long before.
    #[test]
    fn a_push_without_lines_lets_the_held_line_go() {
        let mut p = Pipeline::default();
        let t0 = Instant::now();
        p.push(b"soak-fl", t0, &rules(&[]));
        let skipped = Rules { lines: false, ..rules(&[]) };
        let ops = p.push(b"ood-1\nsoak-flood-1\nsoak-fl", t0, &skipped);
        assert!(!ops.has_lines());
        let ops = p.push(b"ood", t0, &rules(&[]));
        assert!(!ops.has_lines(), "the rest of a line whose start was skipped");
        let ops = p.push(b"-1\nsoak-flood-1\nsoak-", t0, &rules(&[]));
        assert_eq!(lines(&ops), ["soak-flood-1"], "never soak-flsoak-flood-1, nor ood-1");
        // Skipped bytes that end a line leave nothing to skip.
        p.push(b"x\n", t0, &skipped);
        let ops = p.push(b"flood-2\n", t0, &rules(&[]));
        assert_eq!(lines(&ops), ["flood-2"]);
    }

    #[test]
    fn a_quiet_partial_line_goes_out_at_its_deadline_and_its_rest_later() {
        let mut p = Pipeline::default();
        let t0 = Instant::now();
        p.push(b"prompt> ", t0, &rules(&[]));
        assert_eq!(p.deadline(), Some(t0 + WAIT));
        // More output without a newline: the wait is for quiet, so it starts again.
        let t1 = t0 + Duration::from_secs(1);
        p.push(b"?", t1, &rules(&[]));
        assert_eq!(p.deadline(), Some(t1 + WAIT));
        let later = t1 + Duration::from_secs(5);
        p.rearm(later, WAIT);
        assert_eq!(p.deadline(), Some(later + WAIT));
        let ops = p.flush(&rules(&[]));
        assert_eq!(lines(&ops), ["prompt> ?+"]);
        assert!(ops.bytes.is_empty(), "unmasked bytes were kept as they came");
        assert_eq!(p.deadline(), None);
        let ops = p.push(b"yes\n", later, &rules(&[]));
        assert_eq!(lines(&ops), ["yes"]);
        // Without a wait, a partial line waits for its end.
        let r = Rules { partial_wait: Duration::ZERO, ..rules(&[]) };
        p.push(b"half", t0, &r);
        assert_eq!(p.deadline(), None);
    }

    #[test]
    fn an_escape_sequence_split_across_pushes_is_still_stripped() {
        let mut p = Pipeline::default();
        let r = Rules { strip_ansi: true, ..rules(&[]) };
        let t0 = Instant::now();
        let a = p.push(b"red \x1b[3", t0, &r);
        let b = p.push(b"1mtext\x1b[0m\n", t0, &r);
        assert_eq!([&a.bytes[..], &b.bytes[..]].concat(), b"red text\n");
        assert_eq!(lines(&b), ["red text"]);
    }

    #[test]
    fn a_secret_split_across_pushes_is_masked_and_held_until_its_line_ends() {
        let secrets = vec![b"hunter2".to_vec()];
        let mut p = Pipeline::default();
        let t0 = Instant::now();
        let a = p.push(b"pw=hun", t0, &rules(&secrets));
        assert!(a.bytes.is_empty(), "a partial line is held back from every sink");
        assert_eq!(p.deadline(), Some(t0 + WAIT));
        let b = p.push(b"ter2 ok\n", t0, &rules(&secrets));
        assert_eq!(&b.bytes[..], b"pw=**** ok\n");
        assert_eq!(lines(&b), ["pw=**** ok"]);
        // Flushed at its deadline, the held part is masked as far as it goes.
        p.push(b"hunter2 and mo", t0, &rules(&secrets));
        let f = p.flush(&rules(&secrets));
        assert_eq!(&f.bytes[..], b"**** and mo");
        assert_eq!(lines(&f), ["**** and mo+"]);
    }

    #[test]
    fn a_line_over_the_cap_goes_out_in_continued_pieces() {
        let mut p = Pipeline::default();
        let t0 = Instant::now();
        let ops = p.push(b"0123456789abcdef0123", t0, &rules(&[]));
        assert_eq!(lines(&ops), ["0123456789abcdef+"]);
        let ops = p.push(b"45\nshort\n", t0, &rules(&[]));
        assert_eq!(lines(&ops), ["012345", "short"]);
        // The same cap applies to the whole lines masking holds.
        let secrets = vec![b"zzzz".to_vec()];
        let mut p = Pipeline::default();
        let ops = p.push(b"0123456789abcdefzz", t0, &rules(&secrets));
        assert_eq!(&ops.bytes[..], b"0123456789abcdef", "the full piece is kept at once");
        let ops = p.push(b"zz\n", t0, &rules(&secrets));
        assert_eq!(&ops.bytes[..], b"****\n", "a secret across the cut is still masked");
        assert_eq!(lines(&ops), ["0123456789abcdef+", "****"]);
    }

    #[test]
    fn the_end_of_output_lets_the_partial_line_out_and_starts_over() {
        let secrets = vec![b"hunter2".to_vec()];
        let mut p = Pipeline::default();
        let r = Rules { strip_ansi: true, ..rules(&secrets) };
        let t0 = Instant::now();
        let a = p.push(b"done\nbye hunter2\x1b[", t0, &r);
        assert_eq!(lines(&a), ["done"]);
        let end = p.end(&r);
        assert_eq!(&end.bytes[..], b"bye ****", "no newline is made up");
        assert_eq!(lines(&end), ["bye ****$"]);
        assert_eq!(p.deadline(), None);
        // A new instance's output starts clean: no escape sequence left open.
        let b = p.push(b"Xnew\n", t0, &r);
        assert_eq!(&b.bytes[..], b"Xnew\n");
        // Nothing held: the end says nothing.
        let end = p.end(&r);
        assert!(end.bytes.is_empty() && !end.has_lines());
    }

    #[test]
    fn without_line_sinks_nothing_is_split_or_held_for_them() {
        let mut p = Pipeline::default();
        let r = Rules { lines: false, ..rules(&[]) };
        let ops = p.push(b"a\nb", Instant::now(), &r);
        assert!(!ops.has_lines());
        assert_eq!(p.deadline(), None);
        assert!(!p.end(&r).has_lines());
    }

    #[test]
    fn a_capture_leaves_the_log_and_comes_out_cleaned_as_the_log_would_be() {
        let secrets = vec![b"hunter2".to_vec()];
        let mut p = Pipeline::default();
        let r = Rules { strip_ansi: true, capture: 1024, ..rules(&secrets) };
        let t0 = Instant::now();
        let a = p.push(b"one\n<!--XSUPERVISOR:BEGIN-->\x1b[1mpw=hunter2\x1b[0m\n", t0, &r);
        assert_eq!(&a.bytes[..], b"one\n");
        assert_eq!(lines(&a), ["one"]);
        assert!(a.captured.is_empty());
        let b = p.push(b"<!--XSUPERVISOR:END-->two\n", t0, &r);
        assert_eq!(&b.bytes[..], b"two\n");
        assert_eq!(lines(&b), ["two"]);
        assert_eq!(b.captured.len(), 1);
        assert_eq!(b.captured[0].data, b"pw=****\n");
        // Without capture mode the markers are output like any other.
        let mut p = Pipeline::default();
        let off = p.push(b"<!--XSUPERVISOR:BEGIN-->x", t0, &rules(&[]));
        assert_eq!(&off.bytes[..], b"<!--XSUPERVISOR:BEGIN-->x");
        assert!(off.captured.is_empty());
    }

    #[test]
    fn a_possible_marker_held_back_goes_out_at_the_deadline_or_the_end() {
        let mut p = Pipeline::default();
        let r = Rules { capture: 1024, lines: false, ..rules(&[]) };
        let t0 = Instant::now();
        let a = p.push(b"prompt <!-", t0, &r);
        assert_eq!(&a.bytes[..], b"prompt ");
        assert_eq!(p.deadline(), Some(t0 + WAIT), "held bytes wait for quiet like a line");
        assert_eq!(&p.flush(&r).bytes[..], b"<!-");
        p.push(b"<!--XSUPERVISOR:BEGIN-->lost", t0, &r);
        let end = p.end(&r);
        assert!(end.bytes.is_empty() && end.captured.is_empty());
        assert_eq!(end.unended, 4, "a capture never ended is dropped, and counted");
    }
}
