//! How long a process waits before it is started again: the back-off between failed starts
//! and the restart guard's wait after a run. Pure.

use std::time::{Duration, Instant};

use super::machine::{Proc, secs_text};
use crate::config::ProcessSpec;

/// The restart guard: how long an automatic restart after a run that lasted `ran` waits.
///
/// A run shorter than `restart_min_interval` is started again no sooner than that after its
/// start (s6's one-second floor), so a program that exits at once cannot be restarted
/// hundreds of times a second. Crashes in a row grow the wait by the back-off policy
/// (`backoff_initial`, `backoff_factor`, `backoff_max`), the first one excepted: a process that
/// ran for a while and crashed once is replaced at once. A run that lasted `backoff_reset`,
/// or an expected exit, forgets the count.
pub(super) fn restart_wait(
    p: &mut Proc,
    spec: &ProcessSpec,
    expected: bool,
    crash: bool,
    ran: Option<Duration>,
    now: Instant,
) -> Duration {
    let ran = ran.unwrap_or(Duration::MAX);
    if ran >= spec.backoff_reset || expected {
        p.crashes = 0;
    }
    if crash {
        p.crashes = p.crashes.saturating_add(1);
    }
    let backoff =
        if crash && p.crashes >= 2 { backoff_delay(spec, p.crashes - 1) } else { Duration::ZERO };
    let floor = p.last_spawn.map_or(Duration::ZERO, |at| {
        (at + spec.restart_min_interval).saturating_duration_since(now)
    });
    let floor = if ran < spec.restart_min_interval { floor } else { Duration::ZERO };
    backoff.max(floor)
}

/// Why the restart guard holds a restart back, for the log.
pub(super) fn restart_reason(p: &Proc, spec: &ProcessSpec, ran: Option<Duration>) -> String {
    let ran = ran.map_or_else(|| "?".to_string(), |d| secs_text(round_ms(d)));
    if p.crashes >= 2 {
        format!(
            "{} unexpected exits in a row, each within backoff_reset = {} s of its start; the last ran {ran} s",
            p.crashes,
            secs_text(spec.backoff_reset)
        )
    } else {
        format!(
            "it ran {ran} s, less than restart_min_interval = {} s",
            secs_text(spec.restart_min_interval)
        )
    }
}

/// A duration to the millisecond, for messages.
pub(super) fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().min(u128::from(u64::MAX)) as u64)
}

/// The wait before retry `n` (1 after the first failure): supervisord's `n` seconds by
/// default (backoff_initial × n); with backoff_factor, backoff_initial × factor^(n-1);
/// never more than backoff_max, nor than a day.
pub fn backoff_delay(spec: &ProcessSpec, n: u32) -> Duration {
    let initial = spec.backoff_initial.as_secs_f64();
    let secs = match spec.backoff_factor {
        None => initial * f64::from(n),
        Some(f) => initial * f.powi(n.saturating_sub(1).min(1000) as i32),
    };
    let cap =
        spec.backoff_max.unwrap_or(Duration::from_secs(86_400)).min(Duration::from_secs(86_400));
    Duration::try_from_secs_f64(secs).unwrap_or(cap).min(cap)
}
