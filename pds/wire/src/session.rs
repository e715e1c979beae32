//! One client connection's policy: how long a client may stall, how much output it may leave
//! unread, and what a client that cannot be served is told. Pure and clock-free: every call
//! takes `now` ([`Millis`]) from its caller, so it is tested with a made-up clock.
//!
//! The simulator's socket front end (`crates/sim`) runs every connection through a
//! [`Session`] and answers the connections it cannot serve with a [`Refusal`]. The seL4 image
//! shares the limits but not the session, because it has neither a clock nor a queue to bound:
//!
//! - No clock: the wire PD has no timer device, and the one counter seL4 exports to user
//!   level on this board (`CONFIG_EXPORT_PCNT_USER`, the physical counter `CNTPCT_EL0`;
//!   `CONFIG_EXPORT_VCNT_USER` is off in Microkit 2.3.0's `qemu_virt_aarch64` kernel
//!   configs) needs an `mrs` the runtime does not provide. A clock would not help anyway: the
//!   PD runs only when console bytes arrive, so it could drop a stalled partial frame only at
//!   the moment the next client's bytes come in, and those start with the lone delimiter that
//!   `protocol::client` sends first on every connection, which ends any leftover partial
//!   frame already (answered as one damaged frame, id 0, which clients skip).
//! - No queue: the image sends each response to the virtio-console as it is made. QEMU's
//!   `virtconsole` does not throttle the guest: what the socket cannot take is dropped
//!   (reasoned from QEMU's source, see `qemu/README.md`), so a client that never reads loses
//!   its own answers and holds nobody up.

use alloc::collections::VecDeque;

use protocol::{encode_frame, peek_request_id, ErrorCode, Response};

/// Milliseconds on a monotonic clock of the caller's choosing (the simulator: the host's
/// `Instant`). Only differences matter.
pub type Millis = u64;

/// How long a client may make no progress (send nothing, take none of its output) before it
/// is dropped: 10 s. A client that is working never pauses that long: `totebox client` writes
/// each frame with one write and the next request as soon as it has read an answer, and the
/// box's own work (an append's `fsync`) happens while the front end is not looking at the
/// clock. A client that stalls half-way through a frame, stops reading its answers or sits on
/// an idle connection holds the box (one connection at a time) for this long, not forever.
pub const IDLE_LIMIT_MS: Millis = 10_000;

/// The most output a client may leave unread before the front end stops reading its input:
/// two of the largest frames. Input is handed to the wire only while no more than this waits,
/// and the wire takes frames from it only while what waits plus what it owes (answers made, and
/// [`crate::APPEND_ANSWER_MAX`] for each append it holds to send as one) stays within this
/// ([`crate::Wire::on_bytes_within`]). So a client that pipelines small appends has as many of
/// them taken at once as fit (and they go to the ledger as one, see the crate's "Group
/// commit"), while one that asks for large answers has them taken one at a time.
pub const MAX_UNSENT: usize = 2 * FRAME_MAX;

/// The most output a [`Session`] ever holds: [`MAX_UNSENT`] plus the one answer of the frame
/// that crossed it. Allocated once, by [`Session::new`].
pub const OUTBOX_CAPACITY: usize = MAX_UNSENT + FRAME_MAX;

/// The largest framed response: a COBS body of [`protocol::MAX_ENCODED`] and its delimiter.
const FRAME_MAX: usize = crate::ANSWER_MAX;

/// Why a client is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// It sent part of a frame and nothing more for [`IDLE_LIMIT_MS`]; the partial frame is
    /// dropped with it.
    PartialFrame,
    /// Its output waited [`IDLE_LIMIT_MS`] without a byte of it being taken.
    Undrained,
    /// It sent nothing and was owed nothing for [`IDLE_LIMIT_MS`].
    Idle,
    /// More than [`OUTBOX_CAPACITY`] would have been queued (never, while the wire keeps to
    /// the limit [`Session::feed`] gives it; checked rather than assumed).
    Overflow,
}

impl core::fmt::Display for Stall {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Stall::PartialFrame => "sent part of a frame, then nothing for the idle limit",
            Stall::Undrained => "did not read its answers for the idle limit",
            Stall::Idle => "idle for the idle limit",
            Stall::Overflow => "output beyond the session's bound",
        })
    }
}

/// One connection: its unsent output (bounded), whether it is inside a frame, and when it last
/// made progress.
#[derive(Debug)]
pub struct Session {
    outbox: VecDeque<u8>,
    in_frame: bool,
    last_progress: Millis,
    overflowed: bool,
}

impl Session {
    /// A session for a connection accepted at `now`, its output buffer
    /// ([`OUTBOX_CAPACITY`] bytes) allocated here, once.
    pub fn new(now: Millis) -> Self {
        Session {
            outbox: VecDeque::with_capacity(OUTBOX_CAPACITY),
            in_frame: false,
            last_progress: now,
            overflowed: false,
        }
    }

    /// Starts over for a new connection accepted at `now`, keeping the buffer.
    pub fn restart(&mut self, now: Millis) {
        self.outbox.clear();
        self.in_frame = false;
        self.last_progress = now;
        self.overflowed = false;
    }

    /// Whether the front end should read more input: not while more than [`MAX_UNSENT`] bytes
    /// of output wait to be sent.
    pub fn wants_input(&self) -> bool {
        !self.overflowed && self.outbox.len() <= MAX_UNSENT
    }

    /// Hands `input` to `wire` while [`Session::wants_input`], queueing what it answers.
    /// `wire(input, limit, out)` takes leading frames of `input` (each piece ends at a
    /// delimiter, or is the start of a frame) while what it has sent to `out` plus what it owes
    /// for requests it holds is at most `limit`, answers every frame it took before it returns,
    /// and says how many bytes it took: [`crate::Wire::on_bytes_within`]. The limit given is
    /// what is left of [`MAX_UNSENT`], so the queue never passes [`OUTBOX_CAPACITY`]. Returns
    /// how many leading bytes of `input` were taken; the caller keeps the rest for later.
    /// `wire`'s first error stops the feed and is returned.
    pub fn feed<E, W>(&mut self, now: Millis, input: &[u8], mut wire: W) -> Result<usize, E>
    where
        W: FnMut(&[u8], usize, &mut dyn FnMut(&[u8])) -> Result<usize, E>,
    {
        let mut used = 0;
        while used < input.len() && self.wants_input() {
            let rest = &input[used..];
            let limit = MAX_UNSENT.saturating_sub(self.outbox.len());
            let Session {
                outbox, overflowed, ..
            } = self;
            let taken = wire(rest, limit, &mut |b| {
                if outbox.len() + b.len() <= OUTBOX_CAPACITY {
                    outbox.extend(b);
                } else {
                    *overflowed = true;
                }
            })?
            .min(rest.len());
            if taken == 0 {
                break;
            }
            used += taken;
            self.last_progress = now;
            // What was taken ends a frame or is part of one.
            self.in_frame = rest[taken - 1] != 0;
        }
        Ok(used)
    }

    /// The output waiting to be sent (its first contiguous part: empty only when nothing
    /// waits). Report what was sent with [`Session::sent`].
    pub fn unsent(&self) -> &[u8] {
        self.outbox.as_slices().0
    }

    /// Bytes of output waiting.
    pub fn unsent_len(&self) -> usize {
        self.outbox.len()
    }

    /// The client took the first `n` bytes of [`Session::unsent`] at `now`.
    pub fn sent(&mut self, now: Millis, n: usize) {
        let n = n.min(self.outbox.len());
        if n > 0 {
            self.outbox.drain(..n);
            self.last_progress = now;
        }
    }

    /// Whether the client is inside a frame (sent part of one).
    pub fn in_frame(&self) -> bool {
        self.in_frame
    }

    /// Why the client should be dropped at `now`, if it should: no progress (input taken or
    /// output sent) for [`IDLE_LIMIT_MS`], or an output overflow.
    pub fn stalled(&self, now: Millis) -> Option<Stall> {
        if self.overflowed {
            return Some(Stall::Overflow);
        }
        if now.saturating_sub(self.last_progress) < IDLE_LIMIT_MS {
            return None;
        }
        Some(if !self.outbox.is_empty() {
            Stall::Undrained
        } else if self.in_frame {
            Stall::PartialFrame
        } else {
            Stall::Idle
        })
    }
}

/// The answer for a connection that cannot be served (another client holds the box): one
/// framed [`ErrorCode::Busy`] response carrying the id of the connection's first request, so a
/// client waiting for that id (as `protocol::client` does) gets it and prints why.
///
/// Feed it what the connection sends; it reads only as far as the first request's id (a
/// varint at the start of the payload, at most 10 bytes), decoding COBS as it goes, and keeps
/// nothing else. A connection that sends no request is answered with id 0 by
/// [`Refusal::give_up`].
#[derive(Debug, Default, Clone)]
pub struct Refusal {
    /// The first decoded payload bytes of the first non-empty frame.
    head: [u8; 10],
    len: usize,
    /// COBS: data bytes left in the current block, its code byte, whether a block started.
    left: u8,
    code: u8,
    started: bool,
    id: Option<u64>,
}

impl Refusal {
    /// A refusal that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes from the refused connection; the id to answer with once the first
    /// request's id is known (or its frame ended first).
    pub fn feed(&mut self, input: &[u8]) -> Option<u64> {
        for &b in input {
            if self.id.is_some() {
                break;
            }
            if b == 0 {
                if self.started {
                    self.id = Some(peek_request_id(&self.head[..self.len]));
                }
                continue; // a lone delimiter (the client's resync) is not a frame
            }
            if self.left == 0 {
                if self.started && self.code != 0xFF {
                    self.push(0);
                }
                self.started = true;
                self.code = b;
                self.left = b - 1;
            } else {
                self.push(b);
                self.left -= 1;
            }
            // A varint ends at its first byte below 0x80, and has at most 10 bytes.
            if self.len == self.head.len() || self.head[..self.len].iter().any(|&x| x < 0x80) {
                self.id = Some(peek_request_id(&self.head[..self.len]));
            }
        }
        self.id
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.head.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// The id to answer with when the connection sent no whole id: 0 (no readable id).
    pub fn give_up(&self) -> u64 {
        self.id.unwrap_or(0)
    }
}

/// Frames the [`ErrorCode::Busy`] response for request `id` into `out`.
pub fn busy_frame(id: u64, out: &mut dyn FnMut(&[u8])) {
    let mut buf = [0u8; 32];
    if let Ok(n) = Response::error(id, ErrorCode::Busy).encode(&mut buf) {
        encode_frame(&buf[..n], out);
    }
}
