//! Kahi's own log, kept in memory as well as written to stderr, for `kahi ctl maintail`.
//!
//! The logger writes each record once, whole, through [`Tee`]: into a ring buffer of the newest
//! [`CAP`] bytes (allocated as it fills) and to stderr. The event loop sends new bytes to the
//! clients following it at the end of each turn.
//!
//! The ring and the stderr buffer are the loop's: a record logged on another thread (the HTTP
//! front's) is only queued, and the loop, woken, writes it ([`take_deferred`]). So no other
//! thread ever holds the locks the loop takes to log, nor writes to stderr while the loop waits
//! (a stderr that blocks, a thread descheduled while holding it).

use std::cell::Cell;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use crate::logs::ring::{Read, Ring};

/// The newest bytes of the daemon's log kept for `maintail`.
pub const CAP: usize = 256 << 10;

static RING: Mutex<Ring> = Mutex::new(Ring::new(CAP));

fn ring() -> std::sync::MutexGuard<'static, Ring> {
    // A panic while holding the lock cannot leave the ring inconsistent in a way that
    // matters more than losing the log: take it anyway.
    RING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records logged off the loop, waiting for it; past [`CAP`] bytes, further ones are dropped
/// (and counted in a line of their own).
static DEFERRED: Mutex<(Vec<u8>, u64)> = Mutex::new((Vec::new(), 0));
/// Wakes the loop for them.
static WAKER: OnceLock<Arc<mio::Waker>> = OnceLock::new();

thread_local! {
    static OFF_LOOP: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as not the loop's: what it logs waits for the loop, woken by
/// `waker`.
pub fn off_loop(waker: Arc<mio::Waker>) {
    OFF_LOOP.set(true);
    let _ = WAKER.set(waker);
}

/// On the loop: writes what other threads logged. If one of them is queueing a record right
/// now, that one wakes the loop again when done.
pub fn take_deferred() {
    let Ok(mut q) = DEFERRED.try_lock() else { return };
    if q.0.is_empty() && q.1 == 0 {
        return;
    }
    let (records, dropped) = std::mem::take(&mut *q);
    drop(q);
    let _ = Tee.write_all(&records);
    if dropped > 0 {
        log::warn!(
            "{dropped} log records from the HTTP threads were dropped (the loop was behind)"
        );
    }
}

/// The logger's output: the ring buffer, then stderr.
pub struct Tee;

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if OFF_LOOP.get() {
            let mut q = DEFERRED.lock().unwrap_or_else(|e| e.into_inner());
            if q.0.len() + buf.len() <= CAP {
                q.0.extend_from_slice(buf);
            } else {
                q.1 += 1;
            }
            drop(q);
            if let Some(w) = WAKER.get() {
                let _ = w.wake();
            }
            return Ok(());
        }
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
    read_some(offset, usize::MAX)
}

/// At most `max` bytes from `offset` on.
pub fn read_some(offset: u64, max: usize) -> Read {
    ring().read(offset, max)
}

/// The file the daemon's stdout and stderr are appended to (`--logfile` with `--daemonize`).
static FILE: OnceLock<std::path::PathBuf> = OnceLock::new();

/// Names the daemon's log file (an absolute path).
pub fn set_file(path: std::path::PathBuf) {
    let _ = FILE.set(path);
}

/// Why the daemon's log could not be cleared.
#[derive(Debug)]
pub enum ClearError {
    /// It has no file (it logs to stderr, which is not Kahi's to empty), or the file is gone.
    NoFile(String),
    Failed(String),
}

/// Empties the daemon's log file, and what `maintail` holds (supervisord's `clearLog`).
/// Returns the file's path. Its writers append, so they go on at its new end.
pub fn clear() -> Result<std::path::PathBuf, ClearError> {
    let Some(path) = FILE.get() else {
        return Err(ClearError::NoFile(
            "Kahi has no log file: it logs to stderr (--logfile with --daemonize gives it one)"
                .into(),
        ));
    };
    let opened = std::fs::File::options().write(true).open(path);
    match opened.and_then(|f| f.set_len(0)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ClearError::NoFile(format!("{} is gone", path.display())));
        }
        Err(e) => {
            return Err(ClearError::Failed(format!("unable to empty {}: {e}", path.display())));
        }
    }
    ring().clear();
    Ok(path.clone())
}

/// Offset of the next byte to be written.
pub fn end() -> u64 {
    ring().end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_logged_off_the_loop_wait_for_it() {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let before = end();
        std::thread::spawn(move || {
            off_loop(waker);
            // Neither the ring nor stderr is touched here.
            Tee.write_all(b"from the front\n").unwrap();
        })
        .join()
        .unwrap();
        assert_eq!(end(), before, "a record logged off the loop went to the ring");
        take_deferred();
        let read = read(before);
        assert!(String::from_utf8_lossy(&read.data).contains("from the front\n"));
    }
}
