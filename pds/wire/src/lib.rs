//! The **wire** protection domain's logic: a pure bytes-in / bytes-out state machine ([`Wire`])
//! between the client byte stream and the tenants' ledgers. The same code runs over
//! virtio-console on seL4 (`src/main.rs`) and over a socket in the simulator.
//!
//! For each frame ([`protocol::frame`]): decode the [`protocol::Request`], route it by its
//! tenant (`moduleId`) to that tenant's ledger ([`interface::wire::LEDGERS`]) with a protected
//! call, the request's bytes in the region shared with that ledger; frame the ledger's response
//! back. `Ping` is answered here. Damaged, truncated, oversized frames, garbage, undecodable
//! requests and unknown tenants get an error response (id 0 when there is no readable id) and
//! the stream carries on; nothing reaches a ledger but a decoded request for its own tenant, so
//! no other tenant notices. A ledger that answers nonsense gets the client
//! [`ErrorCode::Unavailable`].
//!
//! The wire never sees a signing key or the disk: it has channels to the ledgers only.
//!
//! # One client must not hold up the others
//! The wire is one byte stream, so a client that stalls holds every tenant up. [`session`]
//! states the policy every front end shares: a partial frame, unread output or an idle
//! connection is dropped after [`session::IDLE_LIMIT_MS`] without progress, input is taken
//! one frame at a time and not at all while more than [`session::MAX_UNSENT`] bytes of output
//! wait, and a connection that cannot be served gets one framed [`ErrorCode::Busy`] answer
//! ([`session::Refusal`]). The simulator runs every connection through a
//! [`session::Session`] with the host's clock. The seL4 image has no clock and no output queue
//! (see [`session`]): it relies on the lone delimiter every client sends first to end a
//! partial frame left by a previous client, and on QEMU dropping console output a client does
//! not read.
//!
//! # Memory
//! One receive buffer of [`protocol::MAX_ENCODED`] bytes (a frame) and one response buffer of
//! [`protocol::MAX_PAYLOAD`], both allocated once by [`Wire::new`]. A [`session::Session`]
//! (front ends that queue output: the simulator) adds [`session::OUTBOX_CAPACITY`] bytes,
//! allocated once.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod session;

use alloc::vec::Vec;

use interface::{ledger_call, wire, TENANT_COUNT};
use microkit::region::{ReadWrite, Region, RegionError};
use microkit::{get_mr, set_mr, MessageInfo};
use protocol::{
    encode_frame, peek_request_id, Decoder, ErrorCode, FrameError, Op, Request, Response,
    MAX_ENCODED, MAX_PAYLOAD,
};

interface::wire_regions!();

/// The console line the wire prints when it serves (tests wait for it).
pub const READY_LINE: &str = "WIRE|INFO: ready";

/// Counters, for the console and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests forwarded to a ledger.
    pub forwarded: u64,
    /// Error responses sent by the wire itself (bad frames, bad requests, unknown tenants,
    /// unavailable ledgers).
    pub rejected: u64,
}

/// The wire's state machine.
#[derive(Debug)]
pub struct Wire {
    decoder: Decoder<Vec<u8>>,
    ledgers: [Region<ReadWrite>; TENANT_COUNT],
    resp: Vec<u8>,
    stats: Stats,
}

/// Gets the regions shared with the ledgers and builds the state machine.
pub fn init() -> Result<Wire, RegionError> {
    Ok(Wire::new(interface::regions(&REGIONS)?))
}

impl Wire {
    /// A wire over the regions shared with each tenant's ledger (in `TENANTS` order).
    pub fn new(ledgers: [Region<ReadWrite>; TENANT_COUNT]) -> Self {
        Wire {
            decoder: Decoder::new(alloc::vec![0; MAX_ENCODED]),
            ledgers,
            resp: alloc::vec![0; MAX_PAYLOAD],
            stats: Stats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Drops a partial frame (the simulator calls it when a client disconnects or is dropped
    /// for stalling).
    pub fn reset(&mut self) {
        self.decoder.reset();
    }

    /// Whether part of a frame has been received (its delimiter not yet).
    pub fn in_frame(&self) -> bool {
        self.decoder.in_frame()
    }

    /// Feeds bytes received from the client; every response goes to `out` (framed, possibly in
    /// several pieces) before this returns.
    pub fn on_bytes(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8])) {
        let Wire {
            decoder,
            ledgers,
            resp,
            stats,
        } = self;
        decoder.feed(input, |frame| {
            let answer = match frame {
                Err(FrameError::Oversize) => Err((0, ErrorCode::Oversize)),
                Err(_) => Err((0, ErrorCode::BadFrame)),
                Ok(payload) => route(payload, ledgers, resp),
            };
            match answer {
                Ok(n) => {
                    stats.forwarded += 1;
                    encode_frame(&resp[..n], &mut *out);
                }
                Err((id, code)) => {
                    stats.rejected += 1;
                    let mut buf = [0u8; 32];
                    if let Ok(n) = Response::error(id, code).encode(&mut buf) {
                        encode_frame(&buf[..n], &mut *out);
                    }
                }
            }
        });
    }
}

/// Forwards one request to its tenant's ledger; the response is `resp[..n]`.
fn route(
    payload: &[u8],
    ledgers: &[Region<ReadWrite>; TENANT_COUNT],
    resp: &mut [u8],
) -> Result<usize, (u64, ErrorCode)> {
    let req =
        Request::decode(payload).map_err(|_| (peek_request_id(payload), ErrorCode::BadMessage))?;
    let id = req.id;
    if req.op == Op::Ping {
        let n = Response {
            id,
            body: protocol::Body::Pong,
        }
        .encode(resp)
        .map_err(|_| (id, ErrorCode::TooLarge))?;
        return Ok(n);
    }
    let t = interface::tenant_index(req.tenant).ok_or((id, ErrorCode::UnknownTenant))?;
    let region = &ledgers[t];
    let unavailable = (id, ErrorCode::Unavailable);
    region
        .write(0, payload)
        .map_err(|_| (id, ErrorCode::TooLarge))?;
    set_mr(0, payload.len() as u64);
    let reply = wire::LEDGERS[t].pp_call(MessageInfo::new(ledger_call::REQUEST, 1));
    if reply.label() != ledger_call::OK || reply.count() < 1 {
        return Err(unavailable);
    }
    let n = usize::try_from(get_mr(0)).map_err(|_| unavailable)?;
    let dst = resp.get_mut(..n).ok_or(unavailable)?;
    region.read(0, dst).map_err(|_| unavailable)?;
    // The ledger answers this request or nothing: a response for another id is refused.
    match Response::decode(dst) {
        Ok(r) if r.id == id => Ok(n),
        _ => Err(unavailable),
    }
}
