//! The connection policy ([`wire_pd::session`]) around the real [`Wire`]: a partial frame is
//! dropped after the idle limit, a client that sends requests and never reads its answers is
//! not buffered without bound and is dropped, and a refused connection gets one Busy answer
//! carrying its request's id. The clock is made up: no test waits for real time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use microkit::host::{set_backend, Backend, HostMemory};
use microkit::{Channel, IrqAckError, MessageInfo};
use protocol::{encode_frame, Body, Decoder, ErrorCode, Op, Request, Response, MAX_ENCODED};
use wire_pd::session::{
    busy_frame, Millis, Refusal, Session, Stall, IDLE_LIMIT_MS, MAX_UNSENT, OUTBOX_CAPACITY,
};
use wire_pd::Wire;

/// The typed protocol's labels ([`interface::msg::ledger::label`]), as numbers to match on.
use interface::msg::ledger::label as ledger_labels;

/// Bytes of object data in each fake ledger answer: large, so a few of them fill the bound.
const ANSWER: usize = 60 * 1024;

/// The wire's kernel: every ledger's region, and a fake ledger behind every channel that
/// answers each request with `ANSWER` bytes of object data for the request's id.
struct Box3 {
    regions: Vec<HostMemory>,
    mrs: RefCell<[u64; 4]>,
    calls: Cell<usize>,
}

impl Backend for Box3 {
    fn pd_name(&self) -> &str {
        "wire"
    }
    fn notify(&self, _: Channel) {}
    fn pp_call(&self, ch: Channel, _: MessageInfo) -> MessageInfo {
        // Audit, with access control off: every Check is answered Open.
        if ch.index() == interface::wire::AUDIT.index() {
            return MessageInfo::new(interface::msg::audit::label::OPEN, 0);
        }
        self.calls.set(self.calls.get() + 1);
        let t = interface::wire::LEDGERS
            .iter()
            .position(|c| c.index() == ch.index())
            .unwrap();
        let len = self.mrs.borrow()[0] as usize;
        let mut req = vec![0u8; len];
        self.regions[t].read(0, &mut req).unwrap();
        let id = Request::decode(&req).unwrap().id;
        let data = vec![7u8; ANSWER];
        let mut out = vec![0u8; ANSWER + 64];
        let n = Response {
            id,
            body: Body::Object {
                total: ANSWER as u64,
                offset: 0,
                data: &data,
            },
        }
        .encode(&mut out)
        .unwrap();
        self.regions[t].write(0, &out[..n]).unwrap();
        self.mrs.borrow_mut()[0] = n as u64;
        MessageInfo::new(ledger_labels::OK, 1)
    }
    fn irq_ack(&self, _: Channel) -> Result<(), IrqAckError> {
        Ok(())
    }
    fn get_mr(&self, i: usize) -> u64 {
        self.mrs.borrow().get(i).copied().unwrap_or(0)
    }
    fn set_mr(&self, i: usize, v: u64) {
        if let Some(r) = self.mrs.borrow_mut().get_mut(i) {
            *r = v;
        }
    }
    fn debug_put_str(&self, _: &str) {}
    fn memory_region(&self, setvar_vaddr: &str) -> Option<HostMemory> {
        if setvar_vaddr == interface::wire::AUDIT_REGION {
            return Some(HostMemory::new(interface::size::WIRE_AUDIT));
        }
        let i = interface::wire::LEDGER_REGIONS
            .iter()
            .position(|v| *v == setvar_vaddr)?;
        Some(self.regions[i].clone())
    }
}

fn boot() -> (Wire, Rc<Box3>) {
    let size = interface::size::WIRE_LEDGER;
    let b = Rc::new(Box3 {
        regions: (0..interface::TENANT_COUNT)
            .map(|_| HostMemory::new(size))
            .collect(),
        mrs: RefCell::new([0; 4]),
        calls: Cell::new(0),
    });
    set_backend(Some(b.clone()));
    (wire_pd::init().unwrap(), b)
}

fn frame(req: &Request<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 8192];
    let n = req.encode(&mut buf).unwrap();
    let mut out = Vec::new();
    encode_frame(&buf[..n], |b| out.extend_from_slice(b));
    out
}

fn ping(id: u64) -> Vec<u8> {
    frame(&Request {
        id,
        tenant: "",
        capability: &[],
        op: Op::Ping,
    })
}

fn read(id: u64) -> Vec<u8> {
    frame(&Request {
        id,
        tenant: "corporate",
        capability: &[],
        op: Op::Read { since: 0, max: 1 },
    })
}

/// Feeds `input` through `session` into `wire` at `now`; returns the bytes taken.
fn feed(session: &mut Session, wire: &mut Wire, now: Millis, input: &[u8]) -> usize {
    session
        .feed(now, input, |input, limit, out| -> Result<usize, ()> {
            Ok(wire.on_bytes_within(input, limit, out))
        })
        .unwrap()
}

/// Drains everything `session` holds into a decoder; returns each response's (id, body kind).
fn drain(session: &mut Session, now: Millis) -> Vec<(u64, String)> {
    let mut bytes = Vec::new();
    while session.unsent_len() > 0 {
        let n = session.unsent().len();
        bytes.extend_from_slice(session.unsent());
        session.sent(now, n);
    }
    let mut got = Vec::new();
    let mut d = Decoder::new(vec![0u8; MAX_ENCODED]);
    d.feed(&bytes, |f| {
        let r = Response::decode(f.unwrap()).unwrap();
        let kind = match r.body {
            Body::Pong => "pong".to_string(),
            Body::Object { .. } => "object".to_string(),
            Body::Error { code } => format!("error {code:?}"),
            other => format!("{other:?}"),
        };
        got.push((r.id, kind));
    });
    got
}

#[test]
fn a_partial_frame_is_dropped_after_the_idle_limit() {
    let (mut wire, _) = boot();
    let t0: Millis = 1_000;
    let mut s = Session::new(t0);
    let p = ping(5);
    let half = p.len() / 2;
    assert_eq!(feed(&mut s, &mut wire, t0, &p[..half]), half);
    assert!(s.in_frame() && wire.in_frame());
    // Every byte is progress: a client slowly sending one frame is not dropped.
    assert_eq!(s.stalled(t0 + IDLE_LIMIT_MS - 1), None);
    assert_eq!(
        feed(
            &mut s,
            &mut wire,
            t0 + IDLE_LIMIT_MS - 1,
            &p[half..half + 1]
        ),
        1
    );
    assert_eq!(s.stalled(t0 + IDLE_LIMIT_MS), None);
    // Then nothing for the idle limit: the client is dropped, and its partial frame with it.
    let stall_at = t0 + 2 * IDLE_LIMIT_MS - 1;
    assert_eq!(s.stalled(stall_at - 1), None);
    assert_eq!(s.stalled(stall_at), Some(Stall::PartialFrame));
    wire.reset();
    assert!(!wire.in_frame());
    // The next client is served from a clean stream: its first frame is not glued onto the
    // dropped half (which would have made one damaged frame).
    s.restart(stall_at);
    assert_eq!(s.stalled(stall_at), None);
    let q = ping(6);
    assert_eq!(feed(&mut s, &mut wire, stall_at, &q), q.len());
    assert!(!s.in_frame());
    assert_eq!(drain(&mut s, stall_at), vec![(6, "pong".to_string())]);
    // A client that finished its frames and went quiet is idle, not inside a frame.
    assert_eq!(s.stalled(stall_at + IDLE_LIMIT_MS), Some(Stall::Idle));
}

#[test]
fn a_client_that_never_reads_is_bounded_then_dropped() {
    let (mut wire, ledger) = boot();
    let t0: Millis = 0;
    let mut s = Session::new(t0);
    // 20,000 reads in one go (about 400 KB of requests), and the client reads nothing.
    let input: Vec<u8> = (1..=20_000u64).flat_map(read).collect();
    let taken = feed(&mut s, &mut wire, t0, &input);
    // The wire took requests only until the unread answers passed the bound, then stopped.
    assert!(taken < input.len());
    assert!(!s.wants_input());
    assert!(s.unsent_len() > MAX_UNSENT && s.unsent_len() <= OUTBOX_CAPACITY);
    let answered = ledger.calls.get();
    let each = s.unsent_len() / answered; // every answer frames to the same size
    assert_eq!(s.unsent_len(), answered * each);
    assert!((answered - 1) * each <= MAX_UNSENT && MAX_UNSENT < answered * each);
    // Nothing more is taken while the answers wait, however often the front end asks.
    for _ in 0..10 {
        assert_eq!(feed(&mut s, &mut wire, t0 + 1, &input[taken..]), 0);
    }
    assert_eq!(ledger.calls.get(), answered);
    // Asking is not progress: after the idle limit without a byte taken either way, the
    // client is dropped.
    assert_eq!(s.stalled(t0 + IDLE_LIMIT_MS - 1), None);
    assert_eq!(s.stalled(t0 + IDLE_LIMIT_MS), Some(Stall::Undrained));
    // Had it read one byte, it would have been progress.
    let mut reads = Session::new(t0);
    let (mut w2, _) = boot();
    feed(&mut reads, &mut w2, t0, &input[..input.len() / 4]);
    reads.sent(t0 + IDLE_LIMIT_MS - 1, 1);
    assert_eq!(reads.stalled(t0 + IDLE_LIMIT_MS), None);

    // A client that does read gets every answer, in order, through the same bound (300 of
    // the 20,000: each answer is 60 KiB through byte-wise host memory, slow in a debug build).
    let input: Vec<u8> = (1..=300u64).flat_map(read).collect();
    let (mut wire, _) = boot();
    let mut s = Session::new(t0);
    let mut at = 0;
    let mut ids = Vec::new();
    let mut peak = 0;
    while at < input.len() {
        at += feed(&mut s, &mut wire, t0, &input[at..]);
        peak = peak.max(s.unsent_len());
        ids.extend(drain(&mut s, t0).into_iter().map(|(id, kind)| {
            assert_eq!(kind, "object");
            id
        }));
    }
    assert_eq!(ids, (1..=300).collect::<Vec<u64>>());
    assert!(peak <= OUTBOX_CAPACITY);
}

#[test]
fn a_refused_connection_gets_busy_with_its_requests_id() {
    let answer = |input: &[u8], chunk: usize| {
        let mut r = Refusal::new();
        let mut id = None;
        for piece in input.chunks(chunk) {
            if let Some(i) = r.feed(piece) {
                id = Some(i);
                break;
            }
        }
        id
    };
    // What `protocol::client` sends: a lone delimiter, then its request; any id, byte by byte
    // or all at once.
    for id in [1u64, 127, 128, 300, 1 << 40, u64::MAX] {
        let mut input = vec![0u8];
        input.extend(ping(id));
        assert_eq!(answer(&input, 1), Some(id));
        assert_eq!(answer(&input, 4096), Some(id));
    }
    // A large request (COBS blocks of 254 bytes, zeros in the payload): the id is at the
    // start, read before the rest arrives.
    let entries = vec![0u8; 3000];
    let big = frame(&Request {
        id: 4242,
        tenant: "corporate",
        capability: &[],
        op: Op::Append { entries: &entries },
    });
    assert_eq!(answer(&big[..8], 1), Some(4242));
    // Nothing readable: no id until the frame ends (then 0 for garbage that is no varint),
    // and a connection that sends nothing is answered with id 0.
    assert_eq!(answer(&[0, 0, 0], 1), None);
    assert_eq!(Refusal::new().give_up(), 0);

    let mut out = Vec::new();
    busy_frame(300, &mut |b| out.extend_from_slice(b));
    let mut d = Decoder::new(vec![0u8; 64]);
    let mut got = Vec::new();
    d.feed(&out, |f| {
        let r = Response::decode(f.unwrap()).unwrap();
        got.push((
            r.id,
            r.body
                == Body::Error {
                    code: ErrorCode::Busy,
                },
        ));
    });
    assert_eq!(got, vec![(300, true)]);
    assert!(ErrorCode::Busy.to_string().contains("busy"));
}
