//! The simulator's socket front end ([`sim::server`]) with in-memory connections and a made-up
//! clock: one client that stalls (half a frame, or 20,000 requests whose answers it never
//! reads) holds the box only until the idle limit; meanwhile every other connection is told
//! Busy at once; after the stalled client leaves or times out, the next one is served from a
//! clean stream. No test waits for real time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::time::Duration;

use protocol::frame::encode_frame_vec;
use protocol::{Body, Decoder, Op, Request, Response, MAX_ENCODED};
use psdb::RamDevice;
use sim::server::{
    Conn, Gone, Server, IDLE_LIMIT_MS, MAX_REFUSED, REFUSAL_LINGER_MS, REFUSAL_WAIT_MS,
};
use sim::{Disk, Keys, Sim};
use wire_pd::session::Stall;

/// Both ends of one in-memory connection.
#[derive(Default)]
struct Pipe {
    /// Client -> server bytes not yet read by the server.
    up: VecDeque<u8>,
    /// Server -> client bytes not yet read by the client (the socket buffer).
    down: Vec<u8>,
    /// How much `down` holds before the server's writes would block.
    cap: usize,
    client_closed: bool,
    server_shut: bool,
    dropped: bool,
}

struct FakeConn(Rc<RefCell<Pipe>>);

impl Read for FakeConn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut p = self.0.borrow_mut();
        if p.up.is_empty() {
            return if p.client_closed {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(p.up.len());
        for b in buf.iter_mut().take(n) {
            *b = p.up.pop_front().unwrap();
        }
        Ok(n)
    }
}

impl Write for FakeConn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut p = self.0.borrow_mut();
        assert!(!p.server_shut, "write after shutdown");
        let n = buf.len().min(p.cap.saturating_sub(p.down.len()));
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        p.down.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Conn for FakeConn {
    fn set_wait(&mut self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
    fn shutdown_write(&mut self) {
        self.0.borrow_mut().server_shut = true;
    }
}

impl Drop for FakeConn {
    fn drop(&mut self) {
        self.0.borrow_mut().dropped = true;
    }
}

/// The client's end.
#[derive(Clone)]
struct Peer(Rc<RefCell<Pipe>>);

impl Peer {
    fn send(&self, bytes: &[u8]) {
        self.0.borrow_mut().up.extend(bytes);
    }
    fn close(&self) {
        self.0.borrow_mut().client_closed = true;
    }
    /// Reads everything the server sent so far: (id, body) of each response.
    fn answers(&self) -> Vec<(u64, String)> {
        let bytes = std::mem::take(&mut self.0.borrow_mut().down);
        let mut d = Decoder::new(vec![0u8; MAX_ENCODED]);
        let mut out = Vec::new();
        d.feed(&bytes, |f| {
            let r = Response::decode(f.unwrap()).unwrap();
            let body = match r.body {
                Body::Error { code } => format!("{code:?}"),
                Body::Pong => "Pong".into(),
                Body::Appended { .. } => "Appended".into(),
                Body::Checkpoint { .. } => "Checkpoint".into(),
                other => format!("{other:?}"),
            };
            out.push((r.id, body));
        });
        out
    }
    fn unread_input(&self) -> usize {
        self.0.borrow().up.len()
    }
    fn dropped(&self) -> bool {
        self.0.borrow().dropped
    }
    fn shut(&self) -> bool {
        self.0.borrow().server_shut
    }
}

fn connection(cap: usize) -> (FakeConn, Peer) {
    let p = Rc::new(RefCell::new(Pipe {
        cap,
        ..Pipe::default()
    }));
    (FakeConn(p.clone()), Peer(p))
}

fn boot() -> Sim {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../system.xml")).unwrap();
    let system = sysdesc::System::parse(&text).unwrap();
    Sim::new(
        system,
        Disk::Ram(RamDevice::new(64 << 11)),
        &Keys::from_seed(1),
        false,
    )
    .unwrap()
}

fn frame(id: u64, tenant: &str, op: Op<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; protocol::MAX_PAYLOAD];
    let n = Request {
        id,
        tenant,
        capability: &[],
        op,
    }
    .encode(&mut buf)
    .unwrap();
    encode_frame_vec(&buf[..n])
}

fn ping(id: u64) -> Vec<u8> {
    frame(id, "", Op::Ping)
}

/// What `protocol::client` sends first: a lone delimiter, then its request.
fn hello(req: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8];
    v.extend_from_slice(req);
    v
}

const ROOMY: usize = 1 << 20;

fn step(server: &mut Server<FakeConn>, sim: &mut Sim, now: u64) {
    for _ in 0..4 {
        server.step(sim, now).unwrap();
    }
}

/// A second client is told Busy at once (with its request's id, so `totebox client` prints
/// it) and closed, while the first is served.
fn assert_refused(server: &mut Server<FakeConn>, sim: &mut Sim, now: u64, id: u64) {
    let (c, p) = connection(ROOMY);
    server.accept(sim, c, now).unwrap();
    p.send(&hello(&ping(id)));
    step(server, sim, now);
    assert_eq!(p.answers(), vec![(id, "Busy".to_string())]);
    assert!(p.shut(), "the refused connection's write side is shut");
    p.close();
    step(server, sim, now);
    assert!(
        p.dropped(),
        "the refused connection is closed once it closes"
    );
}

/// The next client is served, from a clean stream: its request, sent without the leading
/// delimiter, is not glued onto a partial frame a previous client left.
fn assert_served(server: &mut Server<FakeConn>, sim: &mut Sim, now: u64, id: u64) -> Peer {
    assert!(!server.serving());
    let (c, p) = connection(ROOMY);
    server.accept(sim, c, now).unwrap();
    p.send(&ping(id));
    step(server, sim, now);
    assert_eq!(p.answers(), vec![(id, "Pong".to_string())]);
    p
}

#[test]
fn a_client_stalled_in_a_frame_is_dropped_after_the_idle_limit() {
    let mut sim = boot();
    let mut server = Server::new(0);
    let (c1, p1) = connection(ROOMY);
    server.accept(&mut sim, c1, 0).unwrap();
    let half = ping(1);
    p1.send(&hello(&half[..half.len() / 2]));
    step(&mut server, &mut sim, 0);
    assert!(server.serving());
    // While it stalls, others are told Busy, not left waiting.
    assert_refused(&mut server, &mut sim, 5, 7);
    assert_refused(&mut server, &mut sim, IDLE_LIMIT_MS - 1, 8);
    assert!(server.serving() && !p1.dropped());
    // At the idle limit it is dropped, with its partial frame.
    step(&mut server, &mut sim, IDLE_LIMIT_MS);
    assert!(!server.serving() && p1.dropped());
    assert_eq!(server.last_gone(), Some(Gone::Stalled(Stall::PartialFrame)));
    assert_eq!(p1.answers(), vec![]);
    assert_served(&mut server, &mut sim, IDLE_LIMIT_MS + 1, 9);
}

#[test]
fn a_client_that_leaves_lets_the_next_one_in_at_once() {
    let mut sim = boot();
    let mut server = Server::new(0);
    let (c1, p1) = connection(ROOMY);
    server.accept(&mut sim, c1, 0).unwrap();
    let half = ping(1);
    p1.send(&half[..3]);
    step(&mut server, &mut sim, 0);
    assert_refused(&mut server, &mut sim, 1, 2);
    p1.close();
    step(&mut server, &mut sim, 2);
    assert!(p1.dropped());
    assert_eq!(server.last_gone(), Some(Gone::Closed));
    assert_served(&mut server, &mut sim, 3, 4);
}

/// A script's commands one after another: the next connects the moment the previous one
/// has closed, before the front end has looked at it again. It is served, not told Busy.
#[test]
fn a_client_that_just_closed_is_not_mistaken_for_a_busy_box() {
    let mut sim = boot();
    let mut server = Server::new(0);
    for id in 1..=3u64 {
        let (c, p) = connection(ROOMY);
        server.accept(&mut sim, c, id).unwrap();
        p.send(&hello(&ping(id)));
        step(&mut server, &mut sim, id);
        assert_eq!(p.answers(), vec![(id, "Pong".to_string())]);
        p.close(); // and the next connects at once
    }
}

#[test]
fn a_client_that_never_reads_its_answers_is_bounded_then_dropped() {
    let mut sim = boot();
    let mut server = Server::new(0);
    // Something to read back: one record for corporate.
    let (c0, p0) = connection(ROOMY);
    server.accept(&mut sim, c0, 0).unwrap();
    let mut bundle = Vec::new();
    let mut len = 0;
    bundle.resize(64, 0);
    assert!(protocol::push_entry(&mut bundle, &mut len, b"record"));
    p0.send(&hello(&frame(
        1,
        "corporate",
        Op::Append {
            entries: &bundle[..len],
        },
    )));
    step(&mut server, &mut sim, 0);
    assert_eq!(p0.answers(), vec![(1, "Appended".to_string())]);
    p0.close();
    step(&mut server, &mut sim, 0);
    assert!(!server.serving());

    // 100,000 checkpoint requests at once (more than the front end gathers, GATHER_MAX); the
    // socket takes 64 KiB of answers and the client never reads them.
    let (c1, p1) = connection(64 << 10);
    server.accept(&mut sim, c1, 1).unwrap();
    let requests: Vec<u8> = (1..=100_000u64)
        .flat_map(|id| frame(id, "corporate", Op::Checkpoint))
        .collect();
    assert!(requests.len() > sim::server::GATHER_MAX);
    p1.send(&hello(&requests));
    let before = sim.wire_stats().forwarded;
    step(&mut server, &mut sim, 1);
    let taken = sim.wire_stats().forwarded - before;
    // The front end stopped taking requests once the unread answers passed the bound...
    assert!(taken > 0 && taken < 100_000, "{taken} requests taken");
    assert!(p1.unread_input() > 0);
    // ...and takes none while they stay unread, however long it runs.
    for t in [2, 100, IDLE_LIMIT_MS / 2, IDLE_LIMIT_MS] {
        step(&mut server, &mut sim, t);
        assert_eq!(sim.wire_stats().forwarded - before, taken);
    }
    // Meanwhile the box is busy, and says so.
    assert_refused(&mut server, &mut sim, IDLE_LIMIT_MS, 5);
    // The idle limit after its last progress, the client is dropped.
    step(&mut server, &mut sim, IDLE_LIMIT_MS + 1);
    assert!(!server.serving() && p1.dropped());
    assert_eq!(server.last_gone(), Some(Gone::Stalled(Stall::Undrained)));
    assert_served(&mut server, &mut sim, IDLE_LIMIT_MS + 2, 6);
}

#[test]
fn refused_connections_are_answered_even_if_silent_and_never_pile_up() {
    let mut sim = boot();
    let mut server = Server::new(0);
    let (c1, _p1) = connection(ROOMY);
    server.accept(&mut sim, c1, 0).unwrap();
    // A connection that sends nothing is told Busy (id 0) after a short wait, not left silent.
    let (c, quiet) = connection(ROOMY);
    server.accept(&mut sim, c, 0).unwrap();
    step(&mut server, &mut sim, REFUSAL_WAIT_MS - 1);
    assert_eq!(quiet.answers(), vec![]);
    step(&mut server, &mut sim, REFUSAL_WAIT_MS);
    assert_eq!(quiet.answers(), vec![(0, "Busy".to_string())]);
    // One that never closes is closed after the linger time.
    step(&mut server, &mut sim, REFUSAL_LINGER_MS);
    assert!(quiet.dropped());
    // At most MAX_REFUSED wait at once; the next is closed at once.
    let mut waiting = Vec::new();
    for _ in 0..MAX_REFUSED {
        let (c, p) = connection(ROOMY);
        server.accept(&mut sim, c, REFUSAL_LINGER_MS).unwrap();
        waiting.push(p);
    }
    let (c, extra) = connection(ROOMY);
    server.accept(&mut sim, c, REFUSAL_LINGER_MS).unwrap();
    assert!(extra.dropped());
    assert!(waiting.iter().all(|p| !p.dropped()));
    assert_eq!(server.refusing(), MAX_REFUSED);
}

/// A client that pipelines its appends (sends many before reading an answer) has every
/// complete one taken at once, and they are stored as few combined appends (group commit);
/// each gets its own answer, in order, with its own index. One that sends them one at a time,
/// waiting for each answer, gets one ledger call per request.
#[test]
fn pipelined_appends_through_the_front_end_are_stored_together() {
    let mut sim = boot();
    let mut server = Server::new(0);
    let (c, p) = connection(ROOMY);
    server.accept(&mut sim, c, 0).unwrap();
    let mut bundle = vec![0u8; 64];
    let mut one = |id: u64| {
        let mut len = 0;
        assert!(protocol::push_entry(
            &mut bundle,
            &mut len,
            format!("entry {id}").as_bytes()
        ));
        frame(
            id,
            "corporate",
            Op::Append {
                entries: &bundle[..len],
            },
        )
    };
    let before = sim.wire_stats();
    // One at a time: one call each.
    for id in 1..=3u64 {
        p.send(&one(id));
        step(&mut server, &mut sim, 0);
        assert_eq!(p.answers(), vec![(id, "Appended".to_string())]);
    }
    assert_eq!(sim.wire_stats().calls - before.calls, 3);
    // 200 at once.
    let burst: Vec<u8> = (4..=203u64).flat_map(&mut one).collect();
    p.send(&burst);
    step(&mut server, &mut sim, 1);
    let got = p.answers();
    assert_eq!(
        got,
        (4..=203u64)
            .map(|id| (id, "Appended".to_string()))
            .collect::<Vec<_>>()
    );
    let s = sim.wire_stats();
    assert!(
        s.calls - before.calls <= 3 + 4,
        "{} ledger calls for 203 appends",
        s.calls - before.calls
    );
    assert_eq!(s.grouped - before.grouped, 200);
    p.close();
    step(&mut server, &mut sim, 2);
    // Each stored at its own index.
    let (c, p) = connection(ROOMY);
    server.accept(&mut sim, c, 3).unwrap();
    p.send(&hello(&frame(
        1000,
        "corporate",
        Op::Read { since: 150, max: 1 },
    )));
    step(&mut server, &mut sim, 3);
    let bytes = std::mem::take(&mut p.0.borrow_mut().down);
    let mut d = Decoder::new(vec![0u8; MAX_ENCODED]);
    let mut entries = Vec::new();
    d.feed(&bytes, |f| {
        if let Body::Entries { first, entries: e } = Response::decode(f.unwrap()).unwrap().body {
            entries.push((
                first,
                protocol::entries(e).next().unwrap().unwrap().to_vec(),
            ));
        }
    });
    assert_eq!(entries, vec![(150, b"entry 151".to_vec())]);
}

/// A client that writes 32 appends of 100 entries of 256 bytes at once (826 KB, more than one
/// socket read): the front end gathers what the socket holds, so the wire stores them as one
/// group under one checkpoint (in several calls: `wire_pd`'s "Group commit").
#[test]
fn pipelined_appends_written_at_once_are_one_group() {
    let mut sim = boot();
    let mut server = Server::new(0);
    let (c, p) = connection(ROOMY);
    server.accept(&mut sim, c, 0).unwrap();
    let mut bundle = vec![0u8; protocol::MAX_PAYLOAD];
    let mut len = 0;
    for _ in 0..100 {
        assert!(protocol::push_entry(&mut bundle, &mut len, &[b'e'; 256]));
    }
    let requests: Vec<u8> = (1..=32u64)
        .flat_map(|id| {
            frame(
                id,
                "personnel",
                Op::Append {
                    entries: &bundle[..len],
                },
            )
        })
        .collect();
    assert!(requests.len() > 10 * sim::server::READ_CHUNK);
    p.send(&hello(&requests));
    let before = sim.wire_stats();
    step(&mut server, &mut sim, 0);
    let after = sim.wire_stats();
    assert_eq!(
        p.answers(),
        (1..=32u64)
            .map(|id| (id, "Appended".to_string()))
            .collect::<Vec<_>>()
    );
    // One checkpoint: every call but one was a stage.
    assert_eq!(after.grouped - before.grouped, 32);
    assert_eq!(
        (after.calls - after.stages) - (before.calls - before.stages),
        1
    );
}
