//! Webhooks: events POSTed to HTTP(S) receivers, off the loop. Each `[webhooks.NAME]` has a
//! delivery thread of its own, fed by the loop through a bounded queue: the loop only renders
//! the body and pushes it (a full queue drops its oldest, counted), never waits for a
//! receiver; the thread resolves, connects, sends and retries with back-off. One thread per
//! webhook, not one for all: a receiver that is down (each attempt up to `timeout`, then
//! back-off) holds back its own events only, and each thread's order is its webhook's.
//! What happened is counted in atomics the loop reads for /metrics; what goes wrong is logged
//! through the loop (`daemon_log::off_loop`).
//!
//! `body` renders and signs (pure), `deliver` is the thread and its HTTP/1.1 POST, `tls` the
//! certificates it trusts.

mod body;
pub(crate) mod conn;
mod deliver;
pub(crate) mod tls;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::config::WebhookSpec;

pub use body::render;
pub use tls::read_certificates;

/// One event to deliver: its type's name and serial (for the headers and the log) and the body.
pub struct Job {
    pub event: &'static str,
    pub serial: u64,
    pub body: Vec<u8>,
}

/// What became of a webhook's events, as `kahi_webhook_deliveries_total` shows them.
#[derive(Default)]
pub struct Counters {
    /// Answered 2xx.
    delivered: AtomicU64,
    /// Given up after the last retry.
    failed: AtomicU64,
    /// Dropped unsent: the queue was full, or the webhook was removed.
    dropped: AtomicU64,
    /// Attempts made again after a failed one.
    retried: AtomicU64,
}

/// The outcomes, in the order of [`Counters::get`].
pub const OUTCOMES: [&str; 4] = ["delivered", "failed", "dropped", "retried"];

impl Counters {
    pub fn get(&self) -> [u64; 4] {
        [&self.delivered, &self.failed, &self.dropped, &self.retried]
            .map(|c| c.load(Ordering::Relaxed))
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// What the loop and the thread share.
struct Queue {
    jobs: VecDeque<Job>,
    /// The configuration in force (changed in place by a reload).
    spec: Arc<WebhookSpec>,
    /// The webhook was removed: the thread ends after its attempt.
    closed: bool,
    /// The thread has a job in hand.
    busy: bool,
    /// The thread waits for a job: only then does a push wake it.
    waiting: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when a job comes, the webhook closes, or the thread finishes a job.
    cond: Condvar,
    counters: Counters,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic on the thread while it held the lock leaves a queue of whole jobs.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The loop's end of a webhook.
pub struct Webhook {
    shared: Arc<Shared>,
}

impl Webhook {
    /// Starts the delivery thread of `spec`; what it logs waits for the loop, woken by `waker`.
    pub fn start(spec: WebhookSpec, waker: Arc<mio::Waker>) -> std::io::Result<Webhook> {
        let name = spec.name.clone();
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                spec: Arc::new(spec),
                closed: false,
                busy: false,
                waiting: false,
            }),
            cond: Condvar::new(),
            counters: Counters::default(),
        });
        let theirs = Arc::clone(&shared);
        std::thread::Builder::new().name(format!("webhook {name}")).spawn(move || {
            crate::logs::daemon_log::off_loop(waker);
            deliver::run(&theirs);
        })?;
        Ok(Webhook { shared })
    }

    /// Queues jobs; a full queue drops its oldest first. Never waits but for the lock, which
    /// the thread holds only to take a job. One lock and at most one wake-up for all of them,
    /// and none for a thread that is busy or waiting to retry: the loop feeds the webhooks
    /// just after a restart's spawn, while the new program may be waiting for the CPU.
    pub fn push(&self, jobs: impl IntoIterator<Item = Job>) {
        let mut q = self.shared.lock();
        let mut dropped = 0;
        for job in jobs {
            while q.jobs.len() >= q.spec.queue_size {
                q.jobs.pop_front();
                dropped += 1;
            }
            q.jobs.push_back(job);
        }
        let wake = q.waiting && !q.jobs.is_empty();
        drop(q);
        self.dropped(dropped);
        if wake {
            self.shared.cond.notify_all();
        }
    }

    /// Counts events dropped before they reached the queue.
    pub fn dropped(&self, n: u64) {
        if n > 0 {
            Counters::add(&self.shared.counters.dropped, n);
        }
    }

    /// A reload changed the webhook: the next attempt uses the new settings, and what waits
    /// is kept (its oldest dropped if the queue is now smaller).
    pub fn reconfigure(&self, spec: WebhookSpec) {
        let mut q = self.shared.lock();
        let mut dropped = 0;
        while q.jobs.len() > spec.queue_size {
            q.jobs.pop_front();
            dropped += 1;
        }
        q.spec = Arc::new(spec);
        drop(q);
        self.dropped(dropped);
        self.shared.cond.notify_all();
    }

    /// The webhook was removed: what waits is dropped (and counted), the thread ends once its
    /// attempt under way is over. Returns how many were dropped.
    pub fn close(&self) -> usize {
        let mut q = self.shared.lock();
        q.closed = true;
        let n = std::mem::take(&mut q.jobs).len();
        drop(q);
        self.dropped(n as u64);
        self.shared.cond.notify_all();
        n
    }

    pub fn counts(&self) -> [u64; 4] {
        self.shared.counters.get()
    }

    /// Waits until every queued job has been tried (delivered, or waiting for a retry), or
    /// until `deadline`: Kahi's exit gives its last events a moment.
    pub fn drain(&self, deadline: Instant) {
        let mut q = self.shared.lock();
        while !q.jobs.is_empty() || q.busy {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { return };
            q = match self.shared.cond.wait_timeout(q, left) {
                Ok((q, _)) => q,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A webhook without its thread: what the loop's end does to the queue.
    fn idle(queue_size: usize) -> Webhook {
        let spec = WebhookSpec { queue_size, ..WebhookSpec::default() };
        let queue = Queue {
            jobs: VecDeque::new(),
            spec: Arc::new(spec),
            closed: false,
            busy: false,
            waiting: false,
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(queue),
            cond: Condvar::new(),
            counters: Counters::default(),
        });
        Webhook { shared }
    }

    fn serials(w: &Webhook) -> Vec<u64> {
        w.shared.lock().jobs.iter().map(|j| j.serial).collect()
    }

    #[test]
    fn a_full_queue_drops_its_oldest_and_counts_them() {
        let w = idle(3);
        for serial in 1..=5 {
            w.push([Job { event: "TICK_5", serial, body: Vec::new() }]);
        }
        assert_eq!(serials(&w), [3, 4, 5]);
        assert_eq!(w.counts(), [0, 0, 2, 0]);
        // Dropped on the bus before the queue: counted too.
        w.dropped(4);
        assert_eq!(w.counts()[2], 6);
        // A smaller queue_size keeps the newest.
        w.reconfigure(WebhookSpec { queue_size: 1, ..WebhookSpec::default() });
        assert_eq!(serials(&w), [5]);
        assert_eq!(w.counts()[2], 8);
        // Removed: what waits is dropped.
        assert_eq!(w.close(), 1);
        assert_eq!(w.counts(), [0, 0, 9, 0]);
        assert!(w.shared.lock().closed);
    }

    #[test]
    fn drain_returns_at_its_deadline_when_the_queue_does_not_empty() {
        let w = idle(3);
        w.push([Job { event: "TICK_5", serial: 1, body: Vec::new() }]);
        let t0 = Instant::now();
        w.drain(t0 + std::time::Duration::from_millis(50));
        assert!(t0.elapsed() >= std::time::Duration::from_millis(50));
        // An empty queue with nothing in hand: at once.
        w.close();
        w.drain(Instant::now() + std::time::Duration::from_secs(60));
    }
}
