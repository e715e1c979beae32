//! The simulator's HTTP front end (`totebox-sim --http HOST:PORT`): the C2SP tlog-tiles read
//! endpoints ([`tiles_http`]) over plain HTTP/1.1 on TCP, beside the console socket.
//!
//! Every request is sent through the same wire the console uses ([`Sim::request`]): audit's
//! Check and the ledger's re-check apply unchanged, and an HTTP request reaches them as an
//! unsigned request (so it is served only what `PUBLIC_METADATA=1` makes public).
//!
//! Bounds, so no HTTP client can stall the console or the others: all sockets are
//! non-blocking and served in the simulator's one loop; at most [`MAX_CONNS`] connections at
//! once (one more is answered 503 and closed); each holds at most [`tiles_http::MAX_HEAD`]
//! bytes of input (a longer head is answered 431) and one answer (at most
//! [`tiles_http::MAX_OBJECT`] bytes plus its head); the next request on a keep-alive
//! connection is read only once the previous answer is sent; a connection without progress
//! for [`IDLE_MS`] is closed.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};

use wire_pd::session::Millis;

use crate::{Sim, SimError};

/// Connections served at once.
pub const MAX_CONNS: usize = 8;
/// A connection without progress (no byte read or written) for this long is closed.
pub const IDLE_MS: Millis = 10_000;

struct HttpConn {
    stream: TcpStream,
    input: Vec<u8>,
    out: Vec<u8>,
    sent: usize,
    close_after: bool,
    last: Millis,
}

/// The HTTP listener and its connections.
pub struct HttpServer {
    listener: TcpListener,
    conns: Vec<HttpConn>,
    next_id: u64,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("conns", &self.conns.len())
            .finish()
    }
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

impl HttpServer {
    /// Serves HTTP on `listener` (made non-blocking here).
    pub fn new(listener: TcpListener) -> io::Result<HttpServer> {
        listener.set_nonblocking(true)?;
        Ok(HttpServer {
            listener,
            conns: Vec::with_capacity(MAX_CONNS),
            next_id: 1 << 48,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Does what can be done without waiting: accepts, reads, answers, writes, closes.
    /// `true` if anything happened. An error once the system has stopped.
    pub fn step(&mut self, sim: &mut Sim, now: Millis) -> Result<bool, SimError> {
        let mut progress = false;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    progress = true;
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    if self.conns.len() >= MAX_CONNS {
                        let mut s = stream;
                        let mut out = Vec::new();
                        tiles_http::error_response(503, false, &mut |b| out.extend_from_slice(b));
                        let _ = s.write(&out);
                        continue;
                    }
                    self.conns.push(HttpConn {
                        stream,
                        input: Vec::with_capacity(tiles_http::MAX_HEAD),
                        out: Vec::new(),
                        sent: 0,
                        close_after: false,
                        last: now,
                    });
                }
                Err(e) if would_block(&e) => break,
                Err(_) => break,
            }
        }
        let mut i = 0;
        while i < self.conns.len() {
            let (keep, p) = self.step_conn(i, sim, now)?;
            progress |= p;
            if keep {
                i += 1;
            } else {
                let c = self.conns.swap_remove(i);
                let _ = c.stream.shutdown(std::net::Shutdown::Both);
            }
        }
        Ok(progress)
    }

    /// One round of connection `i`: whether to keep it, and whether anything happened.
    fn step_conn(
        &mut self,
        i: usize,
        sim: &mut Sim,
        now: Millis,
    ) -> Result<(bool, bool), SimError> {
        let next_id = &mut self.next_id;
        let Some(c) = self.conns.get_mut(i) else {
            return Ok((false, false));
        };
        let mut progress = false;
        // 1. The answer being sent.
        while c.sent < c.out.len() {
            match c.stream.write(&c.out[c.sent..]) {
                Ok(0) => return Ok((false, true)),
                Ok(n) => {
                    c.sent += n;
                    c.last = now;
                    progress = true;
                }
                Err(e) if would_block(&e) => break,
                Err(_) => return Ok((false, true)),
            }
        }
        if c.sent < c.out.len() {
            return Ok((now.saturating_sub(c.last) < IDLE_MS, progress));
        }
        c.out.clear();
        c.sent = 0;
        if c.close_after {
            return Ok((false, progress));
        }
        // 2. More of the request head, never past the bound.
        let room = tiles_http::MAX_HEAD.saturating_sub(c.input.len());
        if room > 0 {
            let mut buf = [0u8; 4096];
            let want = room.min(buf.len());
            match c.stream.read(&mut buf[..want]) {
                Ok(0) => {
                    // Closed by the client: nothing left to answer but a complete head.
                    if c.input.is_empty() {
                        return Ok((false, true));
                    }
                    c.close_after = true;
                    progress = true;
                }
                Ok(n) => {
                    c.input.extend_from_slice(&buf[..n]);
                    c.last = now;
                    progress = true;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => return Ok((false, true)),
            }
        }
        // 3. A complete head: answer it.
        let mut out = Vec::new();
        let mut push = |b: &[u8]| out.extend_from_slice(b);
        let (used, close) = match tiles_http::parse(&c.input, &interface::TENANTS) {
            tiles_http::Parsed::Incomplete => {
                if c.close_after {
                    return Ok((false, progress));
                }
                return Ok((now.saturating_sub(c.last) < IDLE_MS, progress));
            }
            tiles_http::Parsed::Refused(status) => {
                tiles_http::error_response(status, false, &mut push);
                (c.input.len(), true)
            }
            tiles_http::Parsed::Request {
                len,
                keep_alive,
                route: Err(status),
            } => {
                tiles_http::error_response(status, keep_alive, &mut push);
                (len, !keep_alive)
            }
            tiles_http::Parsed::Request {
                len,
                keep_alive,
                route: Ok(route),
            } => {
                let mut failed = None;
                let served = tiles_http::serve(
                    &route,
                    keep_alive,
                    next_id,
                    &mut |req| match sim.request(req) {
                        Ok(r) => Some(r),
                        Err(e) => {
                            failed = Some(e);
                            None
                        }
                    },
                    &mut push,
                );
                if let Some(e) = failed {
                    if sim.halted().is_some() {
                        return Err(e);
                    }
                }
                (len, served.close)
            }
        };
        c.input.drain(..used.min(c.input.len()));
        c.out = out;
        c.close_after |= close;
        c.last = now;
        Ok((true, true))
    }
}
