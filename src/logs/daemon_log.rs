//! Kahi's own log, kept in memory as well as written to stderr, for `kahi ctl maintail`.
//!
//! The logger writes each record once, whole, through [`Tee`]: into a ring buffer of the newest
//! [`CAP`] bytes (allocated as it fills) and to stderr. The event loop sends new bytes to the
//! clients following it at the end of each turn.

use std::io::Write;
use std::sync::Mutex;

use crate::logs::ring::{Read, Ring};

/// The newest bytes of the daemon's log kept for `maintail`.
pub const CAP: usize = 256 << 10;

static RING: Mutex<Ring> = Mutex::new(Ring::new(CAP));

fn ring() -> std::sync::MutexGuard<'static, Ring> {
    // A panic while holding the lock cannot leave the ring inconsistent in a way that
    // matters more than losing the log: take it anyway.
    RING.lock().unwrap_or_else(|e| e.into_inner())
}

/// The logger's output: the ring buffer, then stderr.
pub struct Tee;

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        ring().write(buf);
        // Through the stderr buffer, behind any program lines waiting there. A stderr that
        // stays full must not grow it without bound: past the mark the record is only in the
        // ring. A closed stderr drops it the same way.
        let mut err = crate::logs::console::stderr();
        if err.pending() < crate::logs::console::HIGH_WATER * 4 {
            err.buf().extend_from_slice(buf);
        }
        err.flush();
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The last `n` bytes.
pub fn tail(n: u64) -> Read {
    ring().tail(n)
}

/// Everything from `offset` on.
pub fn read(offset: u64) -> Read {
    ring().read(offset, usize::MAX)
}

/// Offset of the next byte to be written.
pub fn end() -> u64 {
    ring().end()
}
