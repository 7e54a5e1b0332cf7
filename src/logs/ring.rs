//! A per-stream ring buffer with absolute offsets, for `tail` without log files.
//!
//! Every byte ever written has an offset (0, 1, 2, ...). The buffer keeps the newest `cap`
//! bytes. A read from an offset that was already overwritten starts at the oldest byte still
//! held, and says so: nothing is lost silently. Memory is allocated when the first byte arrives
//! and grows with use, up to `cap`. No I/O here.

#[derive(Debug, Clone, Default)]
pub struct Ring {
    buf: Vec<u8>,
    cap: usize,
    /// Offset of the next byte to be written: the total written so far.
    end: u64,
    /// Offset stored at `buf[0]` when the buffer last started empty; byte `o` lives at
    /// `buf[(o - base) % cap]`.
    base: u64,
}

/// What a read returned.
#[derive(Debug, PartialEq, Eq)]
pub struct Read {
    pub data: Vec<u8>,
    /// Offset of `data[0]`.
    pub offset: u64,
    /// Bytes between the requested offset and `offset` that were overwritten.
    pub skipped: u64,
}

impl Ring {
    pub const fn new(cap: usize) -> Ring {
        Ring { buf: Vec::new(), cap, end: 0, base: 0 }
    }

    /// Offset of the next byte to be written.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Offset of the oldest byte still held.
    pub fn start(&self) -> u64 {
        self.end - self.buf.len() as u64
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Appends `data`, overwriting the oldest bytes when full.
    pub fn write(&mut self, data: &[u8]) {
        self.end += data.len() as u64;
        if self.cap == 0 {
            return;
        }
        if data.len() >= self.cap {
            // Only the newest `cap` bytes of this write survive; lay them out afresh.
            self.buf.clear();
            self.buf.extend_from_slice(&data[data.len() - self.cap..]);
            self.base = self.end - self.cap as u64;
            return;
        }
        let mut data = data;
        if self.buf.len() < self.cap {
            // Still growing: the buffer is linear, oldest first.
            let take = (self.cap - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        if !data.is_empty() {
            // Full: write over the oldest bytes in place, wrapping at the end.
            let pos = ((self.end - data.len() as u64 - self.base) % self.cap as u64) as usize;
            let first = (self.cap - pos).min(data.len());
            self.buf[pos..pos + first].copy_from_slice(&data[..first]);
            self.buf[..data.len() - first].copy_from_slice(&data[first..]);
        }
    }

    /// Up to `max` bytes from `offset` on.
    pub fn read(&self, offset: u64, max: usize) -> Read {
        let start = self.start();
        let from = offset.clamp(start, self.end);
        let skipped = start.saturating_sub(offset);
        let len = ((self.end - from) as usize).min(max);
        let mut data = Vec::with_capacity(len);
        if len > 0 {
            if self.buf.len() < self.cap {
                let i = (from - start) as usize;
                data.extend_from_slice(&self.buf[i..i + len]);
            } else {
                let i = ((from - self.base) % self.cap as u64) as usize;
                let first = (self.cap - i).min(len);
                data.extend_from_slice(&self.buf[i..i + first]);
                data.extend_from_slice(&self.buf[..len - first]);
            }
        }
        Read { data, offset: from, skipped }
    }

    /// The last `n` bytes.
    pub fn tail(&self, n: u64) -> Read {
        let (from, end, _) = self.span(None, n);
        self.read(from, (end - from) as usize)
    }

    /// Where a read of `bytes` bytes from `offset` (or of the last `bytes`, without one)
    /// begins and ends among the bytes held, and how many asked for were overwritten.
    pub fn span(&self, offset: Option<u64>, bytes: u64) -> (u64, u64, u64) {
        let (start, end) = (self.start(), self.end);
        let (from, skipped) = match offset {
            Some(o) => (o.clamp(start, end), start.saturating_sub(o)),
            None => (end.saturating_sub(bytes).max(start), 0),
        };
        (from, end.min(from.saturating_add(bytes)), skipped)
    }

    /// Forgets everything held; offsets keep counting.
    pub fn clear(&mut self) {
        self.buf = Vec::new();
        self.base = self.end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reference model: everything ever written.
    fn check(r: &Ring, all: &[u8]) {
        let start = all.len().saturating_sub(r.capacity());
        let got = r.read(0, usize::MAX);
        assert_eq!(got.offset, start as u64);
        assert_eq!(got.skipped, start as u64);
        assert_eq!(got.data, &all[start..]);
        for from in start..=all.len() {
            let got = r.read(from as u64, 3);
            let want = &all[from..(from + 3).min(all.len())];
            assert_eq!(got.data, want, "read at {from}");
        }
    }

    #[test]
    fn matches_a_model_under_every_write_size() {
        for cap in [1, 2, 5, 8] {
            for size in [1, 2, 3, 7, 9, 17] {
                let mut r = Ring::new(cap);
                let mut all = Vec::new();
                for i in 0..10u8 {
                    let chunk: Vec<u8> =
                        (0..size).map(|j| i.wrapping_mul(31).wrapping_add(j as u8)).collect();
                    r.write(&chunk);
                    all.extend_from_slice(&chunk);
                    check(&r, &all);
                }
            }
        }
    }

    #[test]
    fn tail_and_clear() {
        let mut r = Ring::new(4);
        assert!(r.buf.capacity() == 0, "allocated lazily");
        r.write(b"hello world");
        assert_eq!(r.tail(3).data, b"rld");
        assert_eq!(r.tail(100).data, b"orld");
        assert_eq!(r.end(), 11);
        r.clear();
        assert_eq!(r.tail(100).data, b"");
        r.write(b"!");
        assert_eq!(r.read(11, 10).data, b"!");
        r.write(b"abcdef");
        assert_eq!(r.read(0, 10), Read { data: b"cdef".to_vec(), offset: 14, skipped: 14 });
    }

    #[test]
    fn zero_capacity_counts_but_keeps_nothing() {
        let mut r = Ring::new(0);
        r.write(b"abc");
        assert_eq!(r.end(), 3);
        assert_eq!(r.read(0, 10), Read { data: vec![], offset: 3, skipped: 3 });
    }
}
