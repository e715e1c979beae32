//! The simulator's socket front end: one client at a time (as the image's one serial line),
//! run through the wire's connection policy ([`wire_pd::session`]), so no client can hold the
//! box longer than the idle limit and nobody waits in silence.
//!
//! - The client being served goes through a [`Session`]: the complete frames it has sent (what
//!   the socket holds, up to [`GATHER_MAX`]) are handed to the wire together (so pipelined appends for one tenant are stored as one, see
//!   `wire_pd`'s "Group commit"), taken only while the answers waiting and owed stay within
//!   [`MAX_UNSENT`] bytes, and none at all while more than that is unread; it is dropped after [`IDLE_LIMIT_MS`] without progress (half a frame and then nothing, answers
//!   it does not read, or an idle connection), and its partial frame is dropped with it
//!   ([`Sim::disconnect`]). The next connection is then served.
//! - A connection that arrives while a client is served is refused: it gets one framed
//!   [`ErrorCode::Busy`](protocol::ErrorCode::Busy) response with the id of its first request
//!   (or id 0 if it sends none within [`REFUSAL_WAIT_MS`]), its write side is shut, and it is
//!   closed when it closes or after [`REFUSAL_LINGER_MS`] (its input is read and discarded
//!   until then, so closing never resets a connection before it has read the answer). At most
//!   [`MAX_REFUSED`] wait for their answer at once; more are closed unanswered.
//!
//! [`Server`] is generic over the connection ([`Conn`]) and takes the time from its caller, so
//! tests drive it with in-memory connections and a made-up clock; `totebox-sim` drives it with
//! sockets and the host's monotonic clock.

use std::io::{self, Read, Write};
use std::time::Duration;

use wire_pd::session::{busy_frame, Millis, Refusal, Session, Stall};
pub use wire_pd::session::{IDLE_LIMIT_MS, MAX_UNSENT};

use crate::{Sim, SimError};

/// How long a refused connection may take to send its first request's id before it is
/// answered with id 0: `protocol::client` sends its request as soon as it connects.
pub const REFUSAL_WAIT_MS: Millis = 1_000;

/// How long a refused connection is kept, from its arrival, to read its answer and close.
pub const REFUSAL_LINGER_MS: Millis = 5_000;

/// Refused connections kept at once (each holds a few hundred bytes); more are closed at once.
pub const MAX_REFUSED: usize = 8;

/// Bytes read from the client at a time.
pub const READ_CHUNK: usize = 64 * 1024;

/// Most input gathered before it is handed to the wire: one read, then as many more as the
/// socket already holds (never waiting for more), up to a group's worth of entries
/// ([`wire_pd::GROUP_BYTES`]) and one more frame, about 1.2 MB. So up to 40 pipelined appends
/// of 100 entries of 256 bytes that a client wrote at once reach the wire together and are
/// stored as one group (`wire_pd`'s "Group commit"). Unread input stays in the socket: the
/// server holds at most this plus the session's [`wire_pd::session::OUTBOX_CAPACITY`].
pub const GATHER_MAX: usize = wire_pd::GROUP_BYTES + wire_pd::ANSWER_MAX;

/// How long one read or write on the served client may wait: bounds how late a refused
/// connection or a stall is noticed.
pub const TICK: Duration = Duration::from_millis(20);

/// A client connection.
pub trait Conn: Read + Write {
    /// `None`: reads and writes return [`io::ErrorKind::WouldBlock`] at once when they cannot
    /// proceed; `Some(t)`: they wait at most `t` (then `WouldBlock` or `TimedOut`).
    fn set_wait(&mut self, wait: Option<Duration>) -> io::Result<()>;
    /// No more output (the peer reads end-of-file once it has read what was sent).
    fn shutdown_write(&mut self);
}

impl Conn for std::net::TcpStream {
    fn set_wait(&mut self, wait: Option<Duration>) -> io::Result<()> {
        self.set_nonblocking(wait.is_none())?;
        self.set_read_timeout(wait)?;
        self.set_write_timeout(wait)
    }
    fn shutdown_write(&mut self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

impl Conn for std::os::unix::net::UnixStream {
    fn set_wait(&mut self, wait: Option<Duration>) -> io::Result<()> {
        self.set_nonblocking(wait.is_none())?;
        self.set_read_timeout(wait)?;
        self.set_write_timeout(wait)
    }
    fn shutdown_write(&mut self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// A connection that was refused, until its answer is read.
struct Refused<C> {
    conn: C,
    since: Millis,
    refusal: Refusal,
    /// The framed answer and how much of it was sent (set once the id is known).
    answer: Option<(Vec<u8>, usize)>,
}

/// Why the served client went away (for the console line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// It closed the connection (or it failed).
    Closed,
    /// It was dropped for stalling.
    Stalled(Stall),
}

/// The front end: the served client, its session, and the refused connections.
pub struct Server<C> {
    client: Option<C>,
    session: Session,
    /// Input read from the client, not yet taken by the session (at most [`GATHER_MAX`]).
    pending: Vec<u8>,
    /// The client closed its side: answer what it sent, then close.
    eof: bool,
    buf: Vec<u8>,
    refused: Vec<Refused<C>>,
    /// How the last client went away.
    last_gone: Option<Gone>,
}

impl<C> std::fmt::Debug for Server<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("serving", &self.client.is_some())
            .field("unsent", &self.session.unsent_len())
            .field("pending", &self.pending.len())
            .field("refused", &self.refused.len())
            .field("last_gone", &self.last_gone)
            .finish()
    }
}

impl<C: Conn> Server<C> {
    /// A server with nobody connected, its buffers allocated here.
    pub fn new(now: Millis) -> Self {
        Server {
            client: None,
            session: Session::new(now),
            pending: Vec::with_capacity(GATHER_MAX),
            eof: false,
            buf: vec![0; READ_CHUNK],
            refused: Vec::with_capacity(MAX_REFUSED),
            last_gone: None,
        }
    }

    /// Whether a client is being served.
    pub fn serving(&self) -> bool {
        self.client.is_some()
    }

    /// Whether refused connections are still waiting for, or reading, their answer.
    pub fn refusing(&self) -> usize {
        self.refused.len()
    }

    /// How the last client that was served went away.
    pub fn last_gone(&self) -> Option<Gone> {
        self.last_gone
    }

    /// A new connection at `now`: served if nobody is, otherwise refused. The served client
    /// is looked at first, without waiting: one that has just closed (a script's previous
    /// command) makes room for this one rather than getting it refused. An error once the
    /// system has stopped (see [`Sim::feed`]).
    pub fn accept(&mut self, sim: &mut Sim, mut conn: C, now: Millis) -> Result<(), SimError> {
        if self.client.is_some() {
            self.step_client(sim, now, false)?;
        }
        if self.client.is_none() {
            self.session.restart(now);
            self.pending.clear();
            self.eof = false;
            self.client = Some(conn);
        } else if self.refused.len() < MAX_REFUSED {
            if conn.set_wait(None).is_ok() {
                self.refused.push(Refused {
                    conn,
                    since: now,
                    refusal: Refusal::new(),
                    answer: None,
                });
            }
        } else {
            eprintln!(
                "SIM|INFO: busy: {MAX_REFUSED} connections already refused; closing one unanswered"
            );
        }
        Ok(())
    }

    /// Does what can be done at `now`: sends the client's answers, takes its input (into the
    /// system), drops it if it stalled or closed; answers the refused connections. `true` if
    /// anything happened. An error once the system has stopped (see [`Sim::feed`]).
    pub fn step(&mut self, sim: &mut Sim, now: Millis) -> Result<bool, SimError> {
        let mut progress = self.step_refused(now);
        if self.client.is_some() {
            progress |= self.step_client(sim, now, true)?;
        }
        Ok(progress)
    }

    /// One round with the served client; `patient`: a read or write may wait up to [`TICK`].
    fn step_client(&mut self, sim: &mut Sim, now: Millis, patient: bool) -> Result<bool, SimError> {
        let Some(conn) = self.client.as_mut() else {
            return Ok(false);
        };
        let mut progress = false;
        let mut gone = None;
        // 1. Its answers.
        if self.session.unsent_len() > 0 {
            let _ = conn.set_wait(patient.then_some(TICK));
            match conn.write(self.session.unsent()) {
                Ok(0) => gone = Some(Gone::Closed),
                Ok(n) => {
                    self.session.sent(now, n);
                    progress = true;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => gone = Some(Gone::Closed),
            }
        }
        // 2. Input already read, as far as the session takes it.
        if gone.is_none() && !self.pending.is_empty() {
            let taken = self.session.feed(now, &self.pending, |input, limit, out| {
                sim.feed_within(input, limit, out)
            })?;
            self.pending.drain(..taken);
            progress |= taken > 0;
        }
        // 3. More input, if everything read so far was taken and the answers are not piling up.
        if gone.is_none() && !self.eof && self.pending.is_empty() && self.session.wants_input() {
            // Wait for input only when there is nothing to send.
            let wait = (patient && self.session.unsent_len() == 0).then_some(TICK);
            let _ = conn.set_wait(wait);
            match conn.read(&mut self.buf) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.pending.extend_from_slice(&self.buf[..n]);
                    // And what else is already there, without waiting for more (an error is
                    // met again by the next read).
                    let _ = conn.set_wait(None);
                    while self.pending.len() < GATHER_MAX {
                        let room = (GATHER_MAX - self.pending.len()).min(self.buf.len());
                        match conn.read(&mut self.buf[..room]) {
                            Ok(0) => {
                                self.eof = true;
                                break;
                            }
                            Ok(n) => self.pending.extend_from_slice(&self.buf[..n]),
                            Err(_) => break,
                        }
                    }
                    let taken = self.session.feed(now, &self.pending, |input, limit, out| {
                        sim.feed_within(input, limit, out)
                    })?;
                    self.pending.drain(..taken);
                    progress = true;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => gone = Some(Gone::Closed),
            }
        }
        // 4. Gone, finished or stalled.
        if gone.is_none() && self.eof && self.pending.is_empty() && self.session.unsent_len() == 0 {
            gone = Some(Gone::Closed);
        }
        if gone.is_none() {
            gone = self.session.stalled(now).map(Gone::Stalled);
        }
        if let Some(why) = gone {
            if let Gone::Stalled(s) = why {
                eprintln!("SIM|INFO: client dropped: {s}");
            }
            self.client = None;
            self.pending.clear();
            self.session.restart(now);
            self.last_gone = Some(why);
            sim.disconnect();
            progress = true;
        }
        Ok(progress)
    }

    fn step_refused(&mut self, now: Millis) -> bool {
        let mut progress = false;
        let mut buf = [0u8; 512];
        self.refused.retain_mut(|r| {
            let mut keep = true;
            loop {
                match r.conn.read(&mut buf) {
                    Ok(0) => {
                        keep = r.answer.is_none(); // closed before its answer: still try it
                        break;
                    }
                    Ok(n) => {
                        progress = true;
                        if r.answer.is_none() {
                            if let Some(id) = r.refusal.feed(&buf[..n]) {
                                r.answer = Some((frame_busy(id), 0));
                            }
                        }
                    }
                    Err(e) if would_block(&e) => break,
                    Err(_) => return false,
                }
            }
            if r.answer.is_none() && (!keep || now.saturating_sub(r.since) >= REFUSAL_WAIT_MS) {
                r.answer = Some((frame_busy(r.refusal.give_up()), 0));
                keep = true;
            }
            if let Some((bytes, sent)) = r.answer.as_mut() {
                if *sent < bytes.len() {
                    match r.conn.write(&bytes[*sent..]) {
                        Ok(n) if n > 0 => {
                            *sent += n;
                            progress = true;
                            if *sent == bytes.len() {
                                r.conn.shutdown_write();
                            }
                        }
                        Err(e) if would_block(&e) => {}
                        _ => return false,
                    }
                }
            }
            keep && now.saturating_sub(r.since) < REFUSAL_LINGER_MS
        });
        progress
    }
}

fn frame_busy(id: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    busy_frame(id, &mut |b| out.extend_from_slice(b));
    out
}
