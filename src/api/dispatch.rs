//! One dispatcher for every transport. A transport turns what its client sent into a
//! [`Request`] and a responder (who gets the answer, and in which framing: a control
//! connection, an HTTP request), and calls [`dispatch`]. The request is answered by
//! [`handle`], and what that produced is carried out through the [`Host`] — the event loop,
//! or the fuzz targets' stand-in for it — once for all transports: an answer now, a wait
//! parked until its processes settle, log files cleared, the configuration read, a stdin
//! write, a shutdown. Every answer goes out through [`Host::settle`], the one place that frames
//! a reply for its transport. What is a framing by nature (a follow, an event stream, a long
//! reply in pieces) is the host's to do per responder.
//!
//! A new transport (XML-RPC, say) is a new responder and its framing in the host's `settle`:
//! a codec, not a new dispatcher.

use std::time::Instant;

use super::*;
use crate::supervisor::{ProcId, Supervisor};

/// What carries out the answers: I/O, which [`dispatch`] does none of.
pub trait Host {
    /// Who gets an answer, and how it is framed.
    type Responder;

    fn supervisor(&mut self) -> &mut Supervisor;
    /// The responder's transport, for the daemon's log: "HTTP".
    fn transport(to: &Self::Responder) -> &'static str;
    /// Sends a reply, framed for its transport.
    fn settle(&mut self, to: Self::Responder, reply: Result<Reply, ApiError>);
    /// Keeps a start, stop or restart until its processes settle, then settles it.
    fn park(&mut self, to: Self::Responder, waiter: Waiter, now: Instant);
    /// Keeps a restart going that nobody waits for.
    fn detach(&mut self, waiter: Waiter);
    /// Empties the log files of processes whose ring buffers were just emptied.
    fn clear_log_files(&mut self, ids: &[ProcId]);
    /// Sends a log from `offset` on, then every new byte.
    fn follow(&mut self, to: Self::Responder, log: LogSource, offset: u64, encoding: Encoding);
    /// Sends Kahi's events of these types as they come (a client that named none has
    /// `stream::DEFAULT_TYPES`).
    fn follow_events(&mut self, to: Self::Responder, types: Vec<crate::events::EventType>);
    /// Sends a range of a log, whole or in pieces as the framing wants.
    fn send_log(&mut self, to: Self::Responder, read: LogRead, now: Now);
    /// Sends a reply too large for one turn, in pieces or whole.
    fn send_pieces(&mut self, to: Self::Responder, reply: crate::piecewise::Piecewise, now: Now);
    /// Reads the configuration file again and answers with it.
    fn read_config(&mut self, what: ConfigUse, now: Instant) -> Result<Reply, ApiError>;
    /// Writes to a running process's stdin pipe.
    fn feed_stdin(&mut self, id: ProcId, name: String, data: String) -> Result<Reply, ApiError>;
    /// Publishes a REMOTE_COMMUNICATION event; returns how many subscribers took it.
    fn send_remote(&mut self, kind: String, data: String) -> usize;
    /// The Prometheus exposition (it needs the host's I/O state too).
    fn metrics(&mut self, now: Now) -> String;
    /// Begins stopping everything.
    fn begin_shutdown(&mut self, now: Instant);
}

/// Answers one request, from whichever transport.
pub fn dispatch<H: Host>(host: &mut H, to: H::Responder, req: Request, now: Now) {
    match handle(host.supervisor(), req, now) {
        Handled::Reply(r) => host.settle(to, r),
        Handled::Wait(w) => host.park(to, w, now.mono),
        Handled::ReplyThenWait(reply, w) => {
            host.settle(to, Ok(reply));
            host.detach(w);
        }
        Handled::Cleared(ids, reply) => {
            host.clear_log_files(&ids);
            host.settle(to, Ok(reply));
        }
        Handled::Follow { log, offset, encoding } => host.follow(to, log, offset, encoding),
        Handled::Events(types) => host.follow_events(to, types),
        Handled::Log(read) => host.send_log(to, read, now),
        Handled::Piecewise(reply) => host.send_pieces(to, reply, now),
        Handled::NeedConfig(what) => {
            let reply = host.read_config(what, now.mono);
            host.settle(to, reply);
        }
        Handled::Stdin { id, name, data } => {
            let reply = host.feed_stdin(id, name, data);
            host.settle(to, reply);
        }
        Handled::Remote { kind, data } => {
            let taken = host.send_remote(kind, data);
            host.settle(to, Ok(Reply::Sent { taken }));
        }
        Handled::Metrics => {
            let text = host.metrics(now);
            host.settle(to, Ok(Reply::Metrics { text }));
        }
        Handled::Shutdown => {
            log::info!("shutdown requested over {}", H::transport(&to));
            host.settle(to, Ok(Reply::Shutdown { message: "Shut down".into() }));
            host.begin_shutdown(now.mono);
        }
    }
}
