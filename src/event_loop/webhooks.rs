//! Webhooks on the loop: each `[webhooks.NAME]` is a subscriber of the bus whose events are
//! rendered here and handed to its delivery thread's queue at the end of each turn. Nothing
//! here waits for a receiver; the loop reads the threads' counters for /metrics.

use std::sync::Arc;
use std::time::Instant;

use super::EventLoop;
use crate::config::WebhookSpec;
use crate::events::SubId;
use crate::webhooks::{Job, Webhook};

/// A webhook of the configuration in force.
pub(super) struct Hook {
    spec: WebhookSpec,
    sub: SubId,
    /// Events its bus queue had dropped when last looked at.
    bus_dropped: u64,
    handle: Webhook,
    /// This machine's name, for the bodies.
    host: String,
}

impl EventLoop {
    /// Starts the webhooks the configuration adds, changes those it changes (the events
    /// waiting are kept), and closes those it removes (the events waiting are dropped).
    pub(super) fn sync_webhooks(&mut self) {
        let wanted = self.sup.config.webhooks.clone();
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut kept = Vec::with_capacity(wanted.len());
        for mut hook in std::mem::take(&mut self.webhooks) {
            if wanted.iter().any(|w| w.name == hook.spec.name) {
                kept.push(hook);
                continue;
            }
            // Its last events first.
            self.feed_webhook(&mut hook);
            self.bus.unsubscribe(hook.sub);
            let dropped = hook.handle.close();
            log::info!(
                "webhook {}: removed{}",
                hook.spec.name,
                match dropped {
                    0 => String::new(),
                    n => format!("; {n} undelivered event(s) dropped"),
                }
            );
        }
        for spec in wanted {
            match kept.iter().position(|h| h.spec.name == spec.name) {
                Some(i) => {
                    let mut hook = kept.swap_remove(i);
                    hook.host.clone_from(&host);
                    if hook.spec != spec {
                        if (&hook.spec.events, hook.spec.queue_size)
                            != (&spec.events, spec.queue_size)
                        {
                            self.feed_webhook(&mut hook);
                            self.bus.unsubscribe(hook.sub);
                            hook.sub = self.bus.subscribe(spec.events.clone(), spec.queue_size);
                            hook.bus_dropped = 0;
                        }
                        log::info!("webhook {}: changed; posting to {}", spec.name, spec.url);
                        hook.handle.reconfigure(spec.clone());
                        hook.spec = spec;
                    }
                    self.webhooks.push(hook);
                }
                None => match Webhook::start(spec.clone(), Arc::clone(&self.waker)) {
                    Ok(handle) => {
                        log::info!("webhook {}: posting to {}", spec.name, spec.url);
                        let sub = self.bus.subscribe(spec.events.clone(), spec.queue_size);
                        let host = host.clone();
                        self.webhooks.push(Hook { spec, sub, bus_dropped: 0, handle, host });
                    }
                    Err(e) => log::error!(
                        "webhook {}: unable to start its delivery thread: {e}; its events are not sent (a reload tries again)",
                        spec.name
                    ),
                },
            }
        }
        self.webhooks.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    }

    /// Hands every webhook the events its bus queue holds.
    pub(super) fn feed_webhooks(&mut self) {
        if self.webhooks.is_empty() {
            return;
        }
        let mut hooks = std::mem::take(&mut self.webhooks);
        for hook in &mut hooks {
            self.feed_webhook(hook);
        }
        self.webhooks = hooks;
    }

    fn feed_webhook(&mut self, hook: &mut Hook) {
        // What the bus dropped for it before it got here (a burst beyond queue_size in one turn).
        hook.handle.dropped(self.bus.dropped_since(hook.sub, &mut hook.bus_dropped));
        let mut now = None;
        let mut jobs = Vec::new();
        while let Some((serial, event)) = self.bus.next_numbered(hook.sub) {
            let time = now.get_or_insert_with(crate::timefmt::rfc3339_now);
            let body = crate::webhooks::render(
                hook.spec.format,
                &hook.spec.name,
                serial,
                &event,
                time,
                &hook.host,
            );
            jobs.push(Job { event: event.kind().name(), serial, body });
        }
        if !jobs.is_empty() {
            hook.handle.push(jobs);
        }
    }

    /// Each webhook's counts, by name, for /metrics.
    pub(super) fn webhook_counts(&self) -> Vec<(String, [u64; 4])> {
        self.webhooks.iter().map(|h| (h.spec.name.clone(), h.handle.counts())).collect()
    }

    /// At exit: the webhooks' last events get until `deadline` to go out.
    pub(super) fn drain_webhooks(&mut self, deadline: Instant) {
        self.feed_webhooks();
        for hook in &self.webhooks {
            hook.handle.drain(deadline);
        }
        crate::logs::daemon_log::take_deferred();
    }
}
