//! Replies too large for one turn of the event loop, made and sent in pieces: the status of
//! thousands of processes, a tail of megabytes. The control socket writes a piece whenever
//! what it queued for the client has drained below a low-water mark, so one such reply costs
//! the loop a bounded amount of work per turn and holds at most a piece or two in memory,
//! however slowly the client reads. The reply is one JSON line, byte for byte what the whole
//! [`Reply`] would serialize to (for a log: unless the program overwrote part of the range
//! before it was sent, and then `data` ends where the overwritten part begins).
//!
//! Other transports take the whole reply at once ([`Piecewise::whole`]).

use base64::Engine;

use crate::api::{Encoding, Now, Reply, log_reply, process_info};
use crate::supervisor::{ProcId, Stream, Supervisor};

/// Processes in one piece of a status reply (~230 bytes of JSON each).
pub const PROCESSES_PER_PIECE: usize = 512;

/// Log bytes in one piece: a multiple of 3, so that base64 pieces join without padding.
pub const BYTES_PER_PIECE: usize = 3 << 18;

/// Log bytes in one piece of an HTTP answer: smaller, so that each costs the loop well under
/// a millisecond (the HTTP front has its own bound on what waits for a client); a multiple of 3.
pub const HTTP_BYTES_PER_PIECE: usize = 3 << 15;

/// A reply on its way, with what is left to send.
#[derive(Debug)]
pub struct Piecewise {
    what: What,
    /// The reply's opening was written.
    opened: bool,
    /// The reply names itself (`"reply":"log"`), as on the control socket; HTTP answers
    /// leave it out.
    tagged: bool,
    /// Log bytes in one piece.
    bytes: usize,
}

#[derive(Debug)]
enum What {
    Status {
        ids: Vec<ProcId>,
        next: usize,
        first: bool,
        unknown: Vec<String>,
    },
    Log {
        id: ProcId,
        stream: Stream,
        from: u64,
        next: u64,
        end: u64,
        skipped: u64,
        encoding: Encoding,
    },
}

impl Piecewise {
    /// The status of `ids`, and the names that matched none.
    pub fn status(ids: Vec<ProcId>, unknown: Vec<String>) -> Piecewise {
        Piecewise {
            what: What::Status { ids, next: 0, first: true, unknown },
            opened: false,
            tagged: true,
            bytes: BYTES_PER_PIECE,
        }
    }

    /// Bytes `from..end` of a process's ring buffer; `skipped` bytes before `from` were
    /// asked for and overwritten.
    pub fn log(
        id: ProcId,
        stream: Stream,
        from: u64,
        end: u64,
        skipped: u64,
        encoding: Encoding,
    ) -> Piecewise {
        Piecewise {
            what: What::Log { id, stream, from, next: from, end, skipped, encoding },
            opened: false,
            tagged: true,
            bytes: BYTES_PER_PIECE,
        }
    }

    /// The same reply as the HTTP API answers it: without its `"reply"` tag, in pieces of
    /// [`HTTP_BYTES_PER_PIECE`] (the event loop makes each as the client has taken the last).
    pub fn for_http(self) -> Piecewise {
        Piecewise { tagged: false, bytes: HTTP_BYTES_PER_PIECE, ..self }
    }

    /// Appends the next piece to `out`: true when that was the last (the reply's newline
    /// included).
    pub fn piece(&mut self, sup: &Supervisor, now: Now, out: &mut Vec<u8>) -> bool {
        let opening = !std::mem::replace(&mut self.opened, true);
        let (tagged, per_piece) = (self.tagged, self.bytes as u64);
        match &mut self.what {
            What::Status { ids, next, first, unknown } => {
                if opening {
                    out.extend_from_slice(br#"{"reply":"status","processes":["#);
                }
                let stop = (*next + PROCESSES_PER_PIECE).min(ids.len());
                for e in ids[*next..stop].iter().filter_map(|id| sup.get(*id)) {
                    if !std::mem::replace(first, false) {
                        out.push(b',');
                    }
                    let _ = serde_json::to_writer(&mut *out, &process_info(e, now));
                }
                *next = stop;
                if *next < ids.len() {
                    return false;
                }
                out.push(b']');
                if !unknown.is_empty() {
                    out.extend_from_slice(br#","unknown":"#);
                    let _ = serde_json::to_writer(&mut *out, unknown);
                }
                out.extend_from_slice(b"}\n");
                true
            }
            What::Log { id, stream, from, next, end, skipped, encoding } => {
                if opening && tagged {
                    out.extend_from_slice(br#"{"reply":"log","data":""#);
                } else if opening {
                    out.extend_from_slice(br#"{"data":""#);
                }
                // Gone, cleared or overwritten since: the data ends here.
                let read = sup.get(*id).map(|e| {
                    let want = (*end - *next).min(per_piece) as usize;
                    e.ring(*stream).read(*next, want)
                });
                let more = match read {
                    Some(r) if r.offset == *next && !r.data.is_empty() => {
                        *next += push_data(
                            &r.data,
                            *next + (r.data.len() as u64) < *end,
                            *encoding,
                            out,
                        );
                        *next < *end
                    }
                    _ => false,
                };
                if more {
                    return false;
                }
                out.extend_from_slice(br#"","offset":"#);
                out.extend_from_slice(from.to_string().as_bytes());
                out.extend_from_slice(br#","skipped":"#);
                out.extend_from_slice(skipped.to_string().as_bytes());
                if *encoding == Encoding::Base64 {
                    out.extend_from_slice(br#","encoding":"base64""#);
                }
                out.extend_from_slice(b"}\n");
                true
            }
        }
    }

    /// The whole reply at once.
    pub fn whole(self, sup: &Supervisor, now: Now) -> Reply {
        match self.what {
            What::Status { ids, unknown, .. } => crate::api::status(sup, &ids, unknown, now),
            What::Log { id, stream, from, end, skipped, encoding, .. } => {
                let data = sup
                    .get(id)
                    .map(|e| e.ring(stream).read(from, (end - from) as usize))
                    .filter(|r| r.offset == from)
                    .map(|r| r.data)
                    .unwrap_or_default();
                log_reply(&data, from, skipped, encoding)
            }
        }
    }
}

/// Appends `data` as the inside of a JSON string, the way `encoding` says; returns how many of
/// its bytes it used. As text, a character cut at the end of a piece that is not the last is
/// left for the next piece, so that it does not become two U+FFFD.
fn push_data(data: &[u8], more: bool, encoding: Encoding, out: &mut Vec<u8>) -> u64 {
    match encoding {
        Encoding::Base64 => {
            out.extend_from_slice(
                base64::engine::general_purpose::STANDARD.encode(data).as_bytes(),
            );
            data.len() as u64
        }
        Encoding::Text => {
            let used = match std::str::from_utf8(data) {
                Err(e) if more && e.error_len().is_none() && e.valid_up_to() > 0 => e.valid_up_to(),
                _ => data.len(),
            };
            let text =
                serde_json::to_string(&String::from_utf8_lossy(&data[..used])).unwrap_or_default();
            out.extend_from_slice(&text.as_bytes()[1..text.len() - 1]);
            used as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_cut_by_the_end_of_a_piece_waits_for_the_next() {
        let mut out = Vec::new();
        let used = push_data("aé".as_bytes()[..2].as_ref(), true, Encoding::Text, &mut out);
        assert_eq!((used, out.as_slice()), (1, b"a".as_slice()));
        out.clear();
        // The last piece: what cannot be decoded is U+FFFD, as for a whole reply.
        let used = push_data("aé".as_bytes()[..2].as_ref(), false, Encoding::Text, &mut out);
        assert_eq!((used, String::from_utf8(out).unwrap()), (2, "a\u{FFFD}".to_string()));
    }

    #[test]
    fn text_is_escaped_as_in_a_json_string() {
        let mut out = Vec::new();
        push_data(b"a\"b\\c\n\x01", false, Encoding::Text, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), r#"a\"b\\c\n\u0001"#);
    }
}
