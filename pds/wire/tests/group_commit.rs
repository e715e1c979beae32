//! Group commit ([`wire_pd`], "Group commit") against a fake ledger that keeps each tenant's
//! entries in memory, with a quota of entries, stages groups as the real one does
//! ([`interface::ledger_call`]: stages kept in memory, the commit stores them all or nothing)
//! and records every call: consecutive appends for one tenant in one input go as one call, or
//! as stages and one commit when their entries pass one region; each request is answered in
//! order with its own id and its own part of the range; anything else ends a group and is
//! answered in its place; a refused combined append or stage falls back to one call per
//! request; a combined append without a valid answer is never sent again; the limits (entry
//! bytes per call, calls and requests per group, output bound) hold.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use microkit::host::{set_backend, Backend, HostMemory};
use microkit::{Channel, IrqAckError, MessageInfo};
use protocol::{
    count_entries, encode_frame, entries, push_entry, Body, Decoder, ErrorCode, Op, Request,
    Response, MAX_ENCODED, MAX_PAYLOAD,
};
use wire_pd::{Wire, APPEND_ANSWER_MAX, GROUP_ENTRIES, MAX_GROUP, MAX_GROUP_CALLS};

use interface::TENANTS;

/// The typed protocol's labels ([`interface::msg::ledger::label`]), as numbers to match on.
use interface::msg::ledger::label as ledger_labels;

/// How the fake ledger answers its next calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// As a ledger: store and acknowledge, or refuse with an error.
    Honest,
    /// Store a request of several entries' worth, then answer garbage (a ledger gone wrong).
    GarbleBig,
    /// Refuse the stage that would hold more than this many entries (an error answer).
    RefuseStageOver(u64),
    /// Answer a stage with a wrong count (a ledger gone wrong; it stores nothing).
    MiscountStage,
}

/// One call the fake ledger received.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    label: u64,
    tenant: usize,
    id: u64,
    /// Entries in the request (0 for other ops).
    entries: usize,
    len: usize,
    /// The request's authorization (empty: unsigned).
    auth: Vec<u8>,
}

/// The authorization the fake audit refuses at Check (`Unpaired`), and the one the fake
/// ledger's Authorize refuses at a signed stage (`Replayed`: a second use of a nonce the
/// wire's Check could not know was taken).
const REFUSED_AT_CHECK: &[u8] = b"unpaired";
const REFUSED_AT_AUTHORIZE: &[u8] = b"replayed";

struct Fake {
    regions: Vec<HostMemory>,
    mrs: RefCell<[u64; 4]>,
    logs: RefCell<Vec<Vec<Vec<u8>>>>,
    /// Most entries a tenant's log may hold: a request that would pass it is refused `Full`.
    quota: Cell<usize>,
    mode: Cell<Mode>,
    calls: RefCell<Vec<Call>>,
    /// The group being staged: its tenant, id and entries (as the real ledger, one at a time).
    stage: RefCell<Option<(usize, u64, Vec<u8>)>>,
    /// Commits (and plain appends) that stored something: the checkpoints a ledger signs.
    checkpoints: Cell<usize>,
    /// What reached audit and the ledgers, in order: `check <tenant> <action>`, `serve <id>`,
    /// `ledger <tenant index>`.
    events: RefCell<Vec<String>>,
    /// The region shared with audit.
    audit: HostMemory,
    /// Audit's answer to a Check (other than [`REFUSED_AT_CHECK`]): `None` is `Open` (access
    /// control off), else `Refused` with this code.
    check_refuses: Cell<Option<ErrorCode>>,
    /// Audit answers Serve for another request id than asked (an audit gone wrong).
    serve_wrong_id: Cell<bool>,
}

/// What a call is answered with: a response in the region, or a stage kept.
enum Reply {
    Response(Vec<u8>),
    Staged(u64),
}

impl Fake {
    fn call(&self, t: usize, label: u64, req: &[u8]) -> Reply {
        let r = Request::decode(req).unwrap();
        let n_entries = match r.op {
            Op::Append { entries } => count_entries(entries).unwrap_or(0) as usize,
            _ => 0,
        };
        self.calls.borrow_mut().push(Call {
            label,
            tenant: t,
            id: r.id,
            entries: n_entries,
            len: req.len(),
            auth: r.capability.to_vec(),
        });
        let staged = self.stage.borrow_mut().take();
        // A signed stage refused at its Authorize: its error, and what was staged stays
        // (interface::ledger_call).
        if label == ledger_labels::STAGE && r.capability == REFUSED_AT_AUTHORIZE {
            *self.stage.borrow_mut() = staged;
            return self.respond(r.id, err_body(ErrorCode::Replayed));
        }
        match (label, r.op) {
            (ledger_labels::STAGE, Op::Append { entries: bundle }) => {
                let (mut bytes, before) = match staged {
                    Some((st, id, b)) if st == t && id == r.id => {
                        let n = count_entries(&b).unwrap();
                        (b, n)
                    }
                    None => (Vec::new(), 0),
                    Some(_) => return self.respond(r.id, err_body(ErrorCode::BadRequest)),
                };
                let total = match count_entries(bundle) {
                    None | Some(0) => return self.respond(r.id, err_body(ErrorCode::BadEntries)),
                    Some(n) => before + n,
                };
                match self.mode.get() {
                    Mode::RefuseStageOver(max) if total > max => {
                        return self.respond(r.id, err_body(ErrorCode::TooLarge))
                    }
                    Mode::MiscountStage => return Reply::Staged(total as u64 + 1),
                    _ => {}
                }
                bytes.extend_from_slice(bundle);
                *self.stage.borrow_mut() = Some((t, r.id, bytes));
                Reply::Staged(total as u64)
            }
            (ledger_labels::COMMIT, Op::Append { entries: bundle }) => match staged {
                Some((st, id, mut bytes)) if st == t && id == r.id => {
                    bytes.extend_from_slice(bundle);
                    self.serve(t, r.id, r.tenant, Op::Append { entries: &bytes })
                }
                _ => self.respond(r.id, err_body(ErrorCode::BadRequest)),
            },
            (ledger_labels::REQUEST, op) => self.serve(t, r.id, r.tenant, op),
            _ => self.respond(r.id, err_body(ErrorCode::BadRequest)),
        }
    }

    fn respond(&self, id: u64, body: Body<'_>) -> Reply {
        let mut out = vec![0u8; 256];
        let n = Response { id, body }.encode(&mut out).unwrap();
        out.truncate(n);
        Reply::Response(out)
    }

    fn serve(&self, t: usize, id: u64, tenant: &str, op: Op<'_>) -> Reply {
        let body = match op {
            _ if tenant != TENANTS[t] => Body::Error {
                code: ErrorCode::WrongTenant,
            },
            Op::Append { entries: bundle } => {
                let mut logs = self.logs.borrow_mut();
                let log = &mut logs[t];
                match count_entries(bundle) {
                    None => Body::Error {
                        code: ErrorCode::BadEntries,
                    },
                    Some(0) => Body::Error {
                        code: ErrorCode::BadRequest,
                    },
                    Some(n) if log.len() + n as usize > self.quota.get() => Body::Error {
                        code: ErrorCode::Full,
                    },
                    Some(n) => {
                        let first = log.len() as u64;
                        log.extend(entries(bundle).map(|e| e.unwrap().to_vec()));
                        self.checkpoints.set(self.checkpoints.get() + 1);
                        if self.mode.get() == Mode::GarbleBig && n > 1 {
                            return Reply::Response(b"\xffgarbage".to_vec());
                        }
                        Body::Appended {
                            first,
                            count: n as u32,
                            size: log.len() as u64,
                        }
                    }
                }
            }
            _ => Body::Checkpoint { note: b"note" },
        };
        self.respond(id, body)
    }
}

impl Fake {
    /// Audit on the wire's channel: Check (Open, or a refusal) and Serve (a `Pong` to the
    /// archive-wide request, standing for audit's answer).
    fn audit_call(&self, info: MessageInfo) -> MessageInfo {
        use interface::msg::audit::{label, AccessCall};
        let len = self.mrs.borrow()[0] as usize;
        let mut buf = vec![0u8; len];
        self.audit.read(0, &mut buf).unwrap();
        match info.label() {
            label::CHECK => {
                let c = AccessCall::decode(&buf).expect("a Check carries an AccessCall");
                self.events.borrow_mut().push(format!(
                    "check {} {}",
                    c.tenant,
                    String::from_utf8_lossy(c.action)
                        .lines()
                        .find_map(|l| l.strip_prefix("op "))
                        .unwrap_or("-")
                ));
                let code = if c.auth == REFUSED_AT_CHECK {
                    Some(ErrorCode::Unpaired)
                } else {
                    self.check_refuses.get()
                };
                match code {
                    None => MessageInfo::new(label::OPEN, 0),
                    Some(code) => {
                        self.mrs.borrow_mut()[0] = u64::from(u8::from(code));
                        MessageInfo::new(label::REFUSED, 1)
                    }
                }
            }
            label::SERVE => {
                let r = Request::decode(&buf).expect("Serve carries the request");
                self.events.borrow_mut().push(format!("serve {}", r.id));
                let id = if self.serve_wrong_id.get() {
                    r.id + 1
                } else {
                    r.id
                };
                let mut out = vec![0u8; 64];
                let n = Response {
                    id,
                    body: Body::Pong,
                }
                .encode(&mut out)
                .unwrap();
                self.audit.write(0, &out[..n]).unwrap();
                self.mrs.borrow_mut()[0] = n as u64;
                MessageInfo::new(label::SERVED, 1)
            }
            l => panic!("the wire called audit with label {l}"),
        }
    }
}

fn err_body(code: ErrorCode) -> Body<'static> {
    Body::Error { code }
}

impl Backend for Fake {
    fn pd_name(&self) -> &str {
        "wire"
    }
    fn notify(&self, _: Channel) {}
    fn pp_call(&self, ch: Channel, info: MessageInfo) -> MessageInfo {
        if ch.index() == interface::wire::AUDIT.index() {
            return self.audit_call(info);
        }
        let t = interface::wire::LEDGERS
            .iter()
            .position(|c| c.index() == ch.index())
            .unwrap();
        let len = self.mrs.borrow()[0] as usize;
        assert!(
            len <= MAX_PAYLOAD,
            "a request of {len} bytes reached a ledger"
        );
        let mut req = vec![0u8; len];
        self.regions[t].read(0, &mut req).unwrap();
        self.events.borrow_mut().push(format!("ledger {t}"));
        match self.call(t, info.label(), &req) {
            Reply::Response(out) => {
                self.regions[t].write(0, &out).unwrap();
                self.mrs.borrow_mut()[0] = out.len() as u64;
                MessageInfo::new(ledger_labels::OK, 1)
            }
            Reply::Staged(n) => {
                self.mrs.borrow_mut()[0] = n;
                MessageInfo::new(ledger_labels::STAGED, 1)
            }
        }
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
            return Some(self.audit.clone());
        }
        let i = interface::wire::LEDGER_REGIONS
            .iter()
            .position(|v| *v == setvar_vaddr)?;
        Some(self.regions[i].clone())
    }
}

fn boot() -> (Wire, Rc<Fake>) {
    let size = interface::size::WIRE_LEDGER;
    let f = Rc::new(Fake {
        regions: TENANTS.iter().map(|_| HostMemory::new(size)).collect(),
        mrs: RefCell::new([0; 4]),
        logs: RefCell::new(TENANTS.iter().map(|_| Vec::new()).collect()),
        quota: Cell::new(usize::MAX),
        mode: Cell::new(Mode::Honest),
        calls: RefCell::new(Vec::new()),
        stage: RefCell::new(None),
        checkpoints: Cell::new(0),
        events: RefCell::new(Vec::new()),
        audit: HostMemory::new(interface::size::WIRE_AUDIT),
        check_refuses: Cell::new(None),
        serve_wrong_id: Cell::new(false),
    });
    set_backend(Some(f.clone()));
    (wire_pd::init().unwrap(), f)
}

fn frame_of(req: &Request<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_PAYLOAD];
    let n = req.encode(&mut buf).unwrap();
    let mut out = Vec::new();
    encode_frame(&buf[..n], |b| out.extend_from_slice(b));
    out
}

fn bundle(es: &[&[u8]]) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_PAYLOAD];
    let mut len = 0;
    for e in es {
        assert!(push_entry(&mut buf, &mut len, e));
    }
    buf.truncate(len);
    buf
}

fn append(id: u64, tenant: &str, es: &[&[u8]]) -> Vec<u8> {
    frame_of(&Request {
        id,
        tenant,
        capability: &[],
        op: Op::Append {
            entries: &bundle(es),
        },
    })
}

/// An answer, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ans {
    Appended { first: u64, count: u32, size: u64 },
    Error(ErrorCode),
    Other(String),
}

fn answers(bytes: &[u8]) -> Vec<(u64, Ans)> {
    let mut d = Decoder::new(vec![0u8; MAX_ENCODED]);
    let mut got = Vec::new();
    d.feed(bytes, |f| {
        let r = Response::decode(f.unwrap()).unwrap();
        let a = match r.body {
            Body::Appended { first, count, size } => Ans::Appended { first, count, size },
            Body::Error { code } => Ans::Error(code),
            b => Ans::Other(format!("{b:?}")),
        };
        got.push((r.id, a));
    });
    got
}

fn feed(wire: &mut Wire, input: &[u8]) -> Vec<(u64, Ans)> {
    let mut out = Vec::new();
    wire.on_bytes(input, &mut |b| out.extend_from_slice(b));
    answers(&out)
}

fn ok(id: u64, first: u64, count: u32, size: u64) -> (u64, Ans) {
    (id, Ans::Appended { first, count, size })
}

fn err(id: u64, code: ErrorCode) -> (u64, Ans) {
    (id, Ans::Error(code))
}

#[test]
fn consecutive_appends_for_one_tenant_are_one_call_answered_each_in_order() {
    let (mut wire, ledger) = boot();
    // Ten requests of 1, 2, 3, ... entries, ids out of any order, in one input.
    let ids = [40u64, 7, 8, 1000, 3, 3, 99, 12, 13, 1];
    let mut input = vec![0u8]; // a client's leading delimiter
    let mut expected = Vec::new();
    let mut all = Vec::new();
    let mut first = 0u64;
    for (k, &id) in ids.iter().enumerate() {
        let es: Vec<Vec<u8>> = (0..=k).map(|j| format!("r{k} e{j}").into_bytes()).collect();
        let refs: Vec<&[u8]> = es.iter().map(Vec::as_slice).collect();
        input.extend(append(id, "corporate", &refs));
        expected.push((id, first, k as u32 + 1));
        first += k as u64 + 1;
        all.extend(es);
    }
    let got = feed(&mut wire, &input);
    let want: Vec<_> = expected
        .iter()
        .map(|&(id, f, c)| ok(id, f, c, first))
        .collect();
    assert_eq!(got, want);
    // One call, for all 55 entries, in request order.
    let calls = ledger.calls.borrow().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!((calls[0].tenant, calls[0].entries), (0, 55));
    assert_eq!(ledger.logs.borrow()[0], all);
    let s = wire.stats();
    assert_eq!(
        (s.calls, s.combined, s.grouped, s.forwarded, s.fallbacks),
        (1, 1, 10, 10, 0)
    );
}

#[test]
fn nothing_complete_waits_for_more_input() {
    let (mut wire, ledger) = boot();
    // One request per input: each answered before the call returns, each its own call.
    for i in 0..5u64 {
        let got = feed(&mut wire, &append(i + 1, "personnel", &[b"x"]));
        assert_eq!(got, vec![ok(i + 1, i, 1, i + 1)]);
    }
    assert_eq!(ledger.calls.borrow().len(), 5);
    // Two complete requests and the start of a third: the two are answered (as one call), the
    // third when its end arrives.
    let third = append(8, "personnel", &[b"c"]);
    let mut input = append(6, "personnel", &[b"a"]);
    input.extend(append(7, "personnel", &[b"b"]));
    input.extend(&third[..5]);
    assert_eq!(
        feed(&mut wire, &input),
        vec![ok(6, 5, 1, 7), ok(7, 6, 1, 7)]
    );
    assert!(wire.in_frame());
    assert_eq!(ledger.calls.borrow().len(), 6);
    assert_eq!(feed(&mut wire, &third[5..]), vec![ok(8, 7, 1, 8)]);
    assert_eq!(wire.stats().grouped, 2);
}

#[test]
fn anything_else_ends_a_group_and_is_answered_in_its_place() {
    let (mut wire, ledger) = boot();
    let mut input = Vec::new();
    input.extend(append(1, "corporate", &[b"c0"]));
    input.extend(append(2, "corporate", &[b"c1", b"c2"]));
    // Another tenant.
    input.extend(append(3, "property", &[b"p0"]));
    input.extend(append(4, "property", &[b"p1"]));
    // A read (not an append).
    input.extend(frame_of(&Request {
        id: 5,
        tenant: "property",
        capability: &[],
        op: Op::Checkpoint,
    }));
    input.extend(append(6, "property", &[b"p2"]));
    // A damaged frame (a byte flipped).
    let mut bad = append(7, "property", &[b"lost"]);
    bad[3] = if bad[3] == 0xff { 1 } else { bad[3] + 1 };
    input.extend(bad);
    input.extend(append(8, "property", &[b"p3"]));
    // An unknown tenant, a capability, a truncated bundle, an empty append.
    input.extend(append(9, "mallory", &[b"m"]));
    input.extend(frame_of(&Request {
        id: 10,
        tenant: "property",
        capability: b"cap",
        op: Op::Append {
            entries: &bundle(&[b"x"]),
        },
    }));
    input.extend(frame_of(&Request {
        id: 11,
        tenant: "property",
        capability: &[],
        op: Op::Append {
            entries: &[0, 9, 1],
        },
    }));
    input.extend(frame_of(&Request {
        id: 12,
        tenant: "property",
        capability: &[],
        op: Op::Append { entries: &[] },
    }));
    input.extend(append(13, "property", &[b"p4"]));
    input.extend(append(14, "corporate", &[b"c3"]));
    input.extend(append(15, "corporate", &[b"c4"]));
    let got = feed(&mut wire, &input);
    assert_eq!(
        got,
        vec![
            ok(1, 0, 1, 3),
            ok(2, 1, 2, 3),
            ok(3, 0, 1, 2),
            ok(4, 1, 1, 2),
            (
                5,
                Ans::Other("Checkpoint { note: [110, 111, 116, 101] }".into())
            ),
            ok(6, 2, 1, 3),
            err(0, ErrorCode::BadFrame),
            ok(8, 3, 1, 4),
            err(9, ErrorCode::UnknownTenant),
            // The fake ledger does not check capabilities; the real one refuses them. Either
            // way the request went alone, as it came.
            ok(10, 4, 1, 5),
            err(11, ErrorCode::BadEntries),
            err(12, ErrorCode::BadRequest),
            ok(13, 5, 1, 6),
            ok(14, 3, 1, 5),
            ok(15, 4, 1, 5),
        ]
    );
    let tenants_and_counts: Vec<(usize, usize)> = ledger
        .calls
        .borrow()
        .iter()
        .map(|c| (c.tenant, c.entries))
        .collect();
    assert_eq!(
        tenants_and_counts,
        vec![
            (0, 3),
            (2, 2),
            (2, 0),
            (2, 1),
            (2, 1),
            (2, 1),
            (2, 0),
            (2, 0),
            (2, 1),
            (0, 2)
        ]
    );
    assert_eq!(
        ledger.logs.borrow()[2],
        [&b"p0"[..], b"p1", b"p2", b"p3", b"x", b"p4"]
    );
}

#[test]
fn a_refused_combined_append_falls_back_to_one_request_at_a_time() {
    let (mut wire, ledger) = boot();
    ledger.quota.set(5);
    // 2 + 2 + 3 + 1 entries: 8 do not fit a quota of 5. Alone: the first two fit (4), the third
    // does not (7), the fourth does (5).
    let mut input = Vec::new();
    input.extend(append(1, "corporate", &[b"a", b"b"]));
    input.extend(append(2, "corporate", &[b"c", b"d"]));
    input.extend(append(3, "corporate", &[b"e", b"f", b"g"]));
    input.extend(append(4, "corporate", &[b"h"]));
    let got = feed(&mut wire, &input);
    assert_eq!(
        got,
        vec![
            ok(1, 0, 2, 2),
            ok(2, 2, 2, 4),
            err(3, ErrorCode::Full),
            ok(4, 4, 1, 5)
        ]
    );
    // The refused request stored nothing.
    assert_eq!(ledger.logs.borrow()[0], [&b"a"[..], b"b", b"c", b"d", b"h"]);
    // One combined call (refused), then one per request, each with its own id.
    let calls: Vec<(u64, usize)> = ledger
        .calls
        .borrow()
        .iter()
        .map(|c| (c.id, c.entries))
        .collect();
    assert_eq!(calls, vec![(1, 8), (1, 2), (2, 2), (3, 3), (4, 1)]);
    let s = wire.stats();
    assert_eq!(
        (s.fallbacks, s.combined, s.calls, s.forwarded),
        (1, 0, 5, 4)
    );
}

#[test]
fn a_combined_append_without_a_valid_answer_is_not_sent_again() {
    let (mut wire, ledger) = boot();
    ledger.mode.set(Mode::GarbleBig);
    let mut input = append(1, "personnel", &[b"a"]);
    input.extend(append(2, "personnel", &[b"b"]));
    input.extend(append(3, "personnel", &[b"c"]));
    // The ledger may have stored them (this one did): sending them again could store them
    // twice. Each is told the ledger is unavailable, as a lone request would be.
    assert_eq!(
        feed(&mut wire, &input),
        vec![
            err(1, ErrorCode::Unavailable),
            err(2, ErrorCode::Unavailable),
            err(3, ErrorCode::Unavailable)
        ]
    );
    assert_eq!(ledger.calls.borrow().len(), 1);
    assert_eq!(ledger.logs.borrow()[1].len(), 3);
}

#[test]
fn a_group_is_bounded_by_its_calls_and_by_its_table() {
    let (mut wire, ledger) = boot();
    // Requests of 10 entries of 1,000 bytes (10,020 bytes of entries each): 13 fit one call's
    // worth of entries, so a group of 30 goes as two stages of 13 and a commit of 4, and every
    // request is answered with the one checkpoint's size.
    let e = vec![b'z'; 1000];
    let es: Vec<&[u8]> = vec![&e; 10];
    let per = GROUP_ENTRIES / bundle(&es).len();
    assert_eq!(per, 13);
    let input: Vec<u8> = (1..=30u64)
        .flat_map(|id| append(id, "corporate", &es))
        .collect();
    let got = feed(&mut wire, &input);
    assert_eq!(
        got,
        (0..30u64)
            .map(|i| ok(i + 1, i * 10, 10, 300))
            .collect::<Vec<_>>()
    );
    let calls = ledger.calls.borrow().clone();
    assert_eq!(
        calls
            .iter()
            .map(|c| (c.label, c.id, c.entries))
            .collect::<Vec<_>>(),
        [
            (ledger_labels::STAGE, 1, 130),
            (ledger_labels::STAGE, 1, 130),
            (ledger_labels::COMMIT, 1, 40)
        ]
    );
    assert!(calls.iter().all(|c| c.len <= MAX_PAYLOAD));
    assert_eq!(ledger.checkpoints.get(), 1);
    let s = wire.stats();
    assert_eq!((s.calls, s.stages, s.combined, s.grouped), (3, 2, 1, 30));

    // At most MAX_GROUP_CALLS calls per group: 13 × 8 = 104 requests, the 105th starts the
    // next group.
    ledger.calls.borrow_mut().clear();
    let per_group = per * MAX_GROUP_CALLS;
    assert_eq!(per_group, 104);
    let input: Vec<u8> = (1..=120u64)
        .flat_map(|id| append(id, "personnel", &es))
        .collect();
    let got = feed(&mut wire, &input);
    assert_eq!(
        got,
        (0..120u64)
            .map(|i| {
                let size = if (i as usize) < per_group { 1040 } else { 1200 };
                ok(i + 1, i * 10, 10, size)
            })
            .collect::<Vec<_>>()
    );
    let labels: Vec<(u64, usize)> = ledger
        .calls
        .borrow()
        .iter()
        .map(|c| (c.label, c.entries))
        .collect();
    let mut want = vec![(ledger_labels::STAGE, 130); MAX_GROUP_CALLS - 1];
    want.push((ledger_labels::COMMIT, 130));
    want.extend([(ledger_labels::STAGE, 130), (ledger_labels::COMMIT, 30)]);
    assert_eq!(labels, want);
    assert_eq!(ledger.checkpoints.get(), 3);

    // A request too large to share one with any other (entries past GROUP_ENTRIES, within a
    // frame) goes alone, as it came; the ones around it are grouped.
    ledger.calls.borrow_mut().clear();
    let big = vec![b'B'; 65_535];
    let rest = vec![b'R'; GROUP_ENTRIES + 6 - (2 + big.len()) - 2];
    let mut input = append(100, "corporate", &[b"1"]);
    input.extend(append(101, "corporate", &[b"2"]));
    input.extend(append(102, "corporate", &[&big, &rest]));
    input.extend(append(103, "corporate", &[b"3"]));
    input.extend(append(104, "corporate", &[b"4"]));
    let got = feed(&mut wire, &input);
    assert_eq!(
        got,
        vec![
            ok(100, 300, 1, 302),
            ok(101, 301, 1, 302),
            ok(102, 302, 2, 304),
            ok(103, 304, 1, 306),
            ok(104, 305, 1, 306)
        ]
    );
    let counts: Vec<(u64, usize)> = ledger
        .calls
        .borrow()
        .iter()
        .map(|c| (c.id, c.entries))
        .collect();
    assert_eq!(counts, vec![(100, 2), (102, 2), (103, 2)]);

    // At most MAX_GROUP requests per group.
    ledger.calls.borrow_mut().clear();
    let n = MAX_GROUP as u64 + 88;
    let input: Vec<u8> = (1..=n)
        .flat_map(|id| append(id, "property", &[b""]))
        .collect();
    let got = feed(&mut wire, &input);
    assert_eq!(got.len() as u64, n);
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, (id, a))| *id == i as u64 + 1
            && matches!(a, Ans::Appended { first, count: 1, .. } if *first == i as u64)));
    assert_eq!(
        ledger
            .calls
            .borrow()
            .iter()
            .map(|c| c.entries)
            .collect::<Vec<_>>(),
        [MAX_GROUP, 88]
    );
}

#[test]
fn the_output_limit_counts_what_a_group_owes() {
    // The longest answer to an append fits what the wire reserves for it.
    let mut buf = [0u8; 64];
    let n = Response {
        id: u64::MAX,
        body: Body::Appended {
            first: u64::MAX,
            count: u32::MAX,
            size: u64::MAX,
        },
    }
    .encode(&mut buf)
    .unwrap();
    let mut framed = 0;
    encode_frame(&buf[..n], |b| framed += b.len());
    assert!(
        framed <= APPEND_ANSWER_MAX,
        "{framed} > {APPEND_ANSWER_MAX}"
    );

    let (mut wire, ledger) = boot();
    let input: Vec<u8> = (1..=100u64)
        .flat_map(|id| append(id, "corporate", &[b"e"]))
        .collect();
    // Room for the answers of ten appends: ten are taken (as one call), the rest wait.
    let limit = 10 * APPEND_ANSWER_MAX;
    let mut out = Vec::new();
    let mut at = 0;
    let mut rounds = 0;
    while at < input.len() {
        let before = out.len();
        at += wire.on_bytes_within(&input[at..], limit - 1, &mut |b| out.extend_from_slice(b));
        assert!(out.len() - before <= limit);
        rounds += 1;
    }
    assert_eq!(rounds, 10);
    let got = answers(&out);
    assert_eq!(
        got,
        (0..100u64)
            .map(|i| ok(i + 1, i, 1, (i / 10 + 1) * 10))
            .collect::<Vec<_>>()
    );
    assert_eq!(ledger.calls.borrow().len(), 10);
    // A limit of 0 still takes one frame (every call makes progress).
    let one = append(500, "corporate", &[b"x"]);
    let mut two = one.clone();
    two.extend(append(501, "corporate", &[b"y"]));
    let mut out = Vec::new();
    assert_eq!(
        wire.on_bytes_within(&two, 0, &mut |b| out.extend_from_slice(b)),
        one.len()
    );
    assert_eq!(answers(&out), vec![ok(500, 100, 1, 101)]);
}

/// 30 requests of 10 entries of 1,000 bytes for `tenant`, ids 1..=30: a group of two stages
/// and a commit.
fn thirty(tenant: &str) -> Vec<u8> {
    let e = vec![b'z'; 1000];
    let es: Vec<&[u8]> = vec![&e; 10];
    (1..=30u64).flat_map(|id| append(id, tenant, &es)).collect()
}

#[test]
fn a_group_in_several_calls_refused_at_its_commit_falls_back_and_stores_what_fits_alone() {
    let (mut wire, ledger) = boot();
    // Room for 155 entries: the group's 300 do not fit; alone, the first 15 requests do and
    // every later one (10 more each) does not.
    ledger.quota.set(155);
    let got = feed(&mut wire, &thirty("corporate"));
    let want: Vec<_> = (0..30u64)
        .map(|i| {
            if i < 15 {
                ok(i + 1, i * 10, 10, (i + 1) * 10)
            } else {
                err(i + 1, ErrorCode::Full)
            }
        })
        .collect();
    assert_eq!(got, want);
    // Nothing of the group itself was stored: exactly the 15 requests that fit, once each.
    assert_eq!(ledger.logs.borrow()[0].len(), 150);
    let labels: Vec<u64> = ledger.calls.borrow().iter().map(|c| c.label).collect();
    let mut expect = vec![
        ledger_labels::STAGE,
        ledger_labels::STAGE,
        ledger_labels::COMMIT,
    ];
    expect.extend([ledger_labels::REQUEST; 30]);
    assert_eq!(labels, expect);
    let s = wire.stats();
    assert_eq!((s.fallbacks, s.combined, s.calls, s.stages), (1, 0, 33, 2));
}

#[test]
fn a_stage_not_kept_stores_nothing_and_each_request_is_then_answered_alone() {
    for mode in [Mode::RefuseStageOver(200), Mode::MiscountStage] {
        let (mut wire, ledger) = boot();
        ledger.mode.set(mode);
        let got = feed(&mut wire, &thirty("property"));
        assert_eq!(
            got,
            (0..30u64)
                .map(|i| ok(i + 1, i * 10, 10, (i + 1) * 10))
                .collect::<Vec<_>>(),
            "{mode:?}"
        );
        // The second stage (or, miscounted, the first) was not kept: the commit was never sent,
        // and each request went alone.
        let calls = ledger.calls.borrow().clone();
        let stages = if mode == Mode::MiscountStage { 1 } else { 2 };
        assert!(calls[..stages]
            .iter()
            .all(|c| c.label == ledger_labels::STAGE));
        assert!(calls[stages..]
            .iter()
            .all(|c| c.label == ledger_labels::REQUEST));
        assert_eq!(calls.len(), stages + 30, "{mode:?}");
        assert_eq!(ledger.logs.borrow()[2].len(), 300);
        assert_eq!(ledger.checkpoints.get(), 30);
        assert_eq!(wire.stats().fallbacks, 1);
    }
}

#[test]
fn a_commit_without_a_valid_answer_is_not_sent_again() {
    let (mut wire, ledger) = boot();
    ledger.mode.set(Mode::GarbleBig);
    let got = feed(&mut wire, &thirty("personnel"));
    assert_eq!(
        got,
        (1..=30u64)
            .map(|id| err(id, ErrorCode::Unavailable))
            .collect::<Vec<_>>()
    );
    // Two stages and the commit (which stored them all, then answered garbage): nothing again.
    assert_eq!(ledger.calls.borrow().len(), 3);
    assert_eq!(ledger.logs.borrow()[1].len(), 300);
}

// The wire's Check (docs/access.md, "Where each check happens"): audit is asked before any
// ledger, and before a tenant is looked up; archive-wide requests are audit's to answer.

fn request(id: u64, tenant: &str, auth: &[u8], op: Op<'_>) -> Vec<u8> {
    frame_of(&Request {
        id,
        tenant,
        capability: auth,
        op,
    })
}

fn signed_append(id: u64, tenant: &str, auth: &[u8], es: &[&[u8]]) -> Vec<u8> {
    request(
        id,
        tenant,
        auth,
        Op::Append {
            entries: &bundle(es),
        },
    )
}

#[test]
fn every_request_but_ping_is_checked_by_audit_before_any_ledger_sees_it() {
    let (mut wire, ledger) = boot();
    let mut input = request(1, "corporate", &[], Op::Ping);
    input.extend(request(2, "personnel", &[], Op::Hello));
    input.extend(request(3, "corporate", &[], Op::Read { since: 0, max: 5 }));
    input.extend(append(4, "corporate", &[b"a"]));
    input.extend(request(5, "nobody", &[], Op::Checkpoint));
    let got = feed(&mut wire, &input);
    assert_eq!(got[0], (1, Ans::Other("Pong".into())));
    assert_eq!(got[4], err(5, ErrorCode::UnknownTenant));
    assert_eq!(
        *ledger.events.borrow(),
        [
            "check personnel hello",
            "ledger 1",
            "check corporate read",
            "ledger 0",
            // The append waits in a group until the next request ends it (after that
            // request's Check); the answers still go in request order.
            "check corporate append",
            // An unknown tenant is named only after audit let the request go on.
            "check nobody checkpoint",
            "ledger 0",
        ]
    );
}

#[test]
fn a_ping_carrying_an_authorization_is_refused_and_reaches_nobody() {
    let (mut wire, ledger) = boot();
    let got = feed(
        &mut wire,
        &request(7, "corporate", b"not a signature", Op::Ping),
    );
    assert_eq!(got, [err(7, ErrorCode::BadRequest)]);
    assert!(
        ledger.events.borrow().is_empty(),
        "{:?}",
        ledger.events.borrow()
    );
}

#[test]
fn a_refusal_at_check_is_answered_its_code_and_reaches_no_ledger() {
    let (mut wire, ledger) = boot();
    // Refused at Check, in a group's middle: the group before it is sent and answered first,
    // the refusal in its place, the requests after it form the next group.
    let mut input = append(1, "corporate", &[b"a"]);
    input.extend(append(2, "corporate", &[b"b"]));
    input.extend(signed_append(3, "corporate", REFUSED_AT_CHECK, &[b"x"]));
    input.extend(request(
        4,
        "corporate",
        REFUSED_AT_CHECK,
        Op::Read { since: 0, max: 1 },
    ));
    // An unknown tenant refused at Check: its refusal, not `UnknownTenant`.
    input.extend(request(5, "nobody", REFUSED_AT_CHECK, Op::Hello));
    input.extend(append(6, "corporate", &[b"c"]));
    input.extend(append(7, "corporate", &[b"d"]));
    let got = feed(&mut wire, &input);
    assert_eq!(
        got,
        vec![
            ok(1, 0, 1, 2),
            ok(2, 1, 1, 2),
            err(3, ErrorCode::Unpaired),
            err(4, ErrorCode::Unpaired),
            err(5, ErrorCode::Unpaired),
            ok(6, 2, 1, 4),
            ok(7, 3, 1, 4),
        ]
    );
    // Two combined appends, nothing else reached a ledger; the refused entries are nowhere.
    let calls = ledger.calls.borrow().clone();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls.iter().all(|c| c.auth.is_empty()));
    assert_eq!(ledger.logs.borrow()[0].len(), 4);
    assert!(!ledger.logs.borrow()[0].contains(&b"x".to_vec()));
    // Audit refusing everything (an archive that requires signatures, unsigned requests):
    // no ledger is called at all, and every request gets audit's code.
    ledger.check_refuses.set(Some(ErrorCode::Unsigned));
    let before = ledger.calls.borrow().len();
    let mut input = append(8, "corporate", &[b"e"]);
    input.extend(append(9, "corporate", &[b"f"]));
    input.extend(request(10, "nobody", &[], Op::Status));
    input.extend(request(
        11,
        "personnel",
        &[],
        Op::GetObject {
            path: "checkpoint",
            offset: 0,
        },
    ));
    let got = feed(&mut wire, &input);
    assert_eq!(
        got,
        [8, 9, 10, 11].map(|i| err(i, ErrorCode::Unsigned)).to_vec()
    );
    assert_eq!(ledger.calls.borrow().len(), before);
    assert_eq!(ledger.logs.borrow()[0].len(), 4);
}

#[test]
fn archive_wide_requests_are_served_by_audit_and_relayed() {
    let (mut wire, ledger) = boot();
    let mut input = request(1, "", &[], Op::Identity { challenge: [7; 16] });
    input.extend(request(
        2,
        "",
        b"auth",
        Op::AuditObject {
            path: "checkpoint",
            offset: 0,
        },
    ));
    input.extend(request(3, "", b"auth", Op::PairChange { change: b"note" }));
    let got = feed(&mut wire, &input);
    assert_eq!(
        got,
        [1, 2, 3].map(|i| (i, Ans::Other("Pong".into()))).to_vec()
    );
    assert_eq!(*ledger.events.borrow(), ["serve 1", "serve 2", "serve 3"]);
    assert!(ledger.calls.borrow().is_empty());
    // An answer for another request is not relayed.
    ledger.serve_wrong_id.set(true);
    let got = feed(
        &mut wire,
        &request(4, "", &[], Op::Identity { challenge: [7; 16] }),
    );
    assert_eq!(got, vec![err(4, ErrorCode::AuditFailed)]);
}

#[test]
fn signed_appends_are_grouped_each_staged_with_its_own_authorization() {
    let (mut wire, ledger) = boot();
    // Five signed appends for one tenant; the third's Authorize is refused at its stage.
    let auths: [&[u8]; 5] = [
        b"auth-1",
        b"auth-2",
        REFUSED_AT_AUTHORIZE,
        b"auth-4",
        b"auth-5",
    ];
    let mut input = Vec::new();
    for (k, a) in auths.iter().enumerate() {
        let e = format!("s{k}").into_bytes();
        input.extend(signed_append(10 + k as u64, "corporate", a, &[&e, b"z"]));
    }
    let got = feed(&mut wire, &input);
    assert_eq!(
        got,
        vec![
            ok(10, 0, 2, 8),
            ok(11, 2, 2, 8),
            err(12, ErrorCode::Replayed),
            ok(13, 4, 2, 8),
            ok(14, 6, 2, 8),
        ]
    );
    // Each request a stage of its own with its own authorization, under the group's id, then
    // one commit with no entries and no authorization: one checkpoint.
    let calls = ledger.calls.borrow().clone();
    assert_eq!(calls.len(), 6, "{calls:?}");
    for (c, a) in calls.iter().zip(auths) {
        assert_eq!(
            (c.label, c.id, c.entries, c.auth.as_slice()),
            (ledger_labels::STAGE, 10, 2, a)
        );
    }
    assert_eq!(
        (calls[5].label, calls[5].entries),
        (ledger_labels::COMMIT, 0)
    );
    assert!(calls[5].auth.is_empty());
    assert_eq!(ledger.checkpoints.get(), 1);
    let log = ledger.logs.borrow()[0].clone();
    assert_eq!(log.len(), 8);
    assert!(
        !log.contains(&b"s2".to_vec()),
        "the refused request stored nothing"
    );
    let s = wire.stats();
    assert_eq!((s.combined, s.grouped, s.stages), (1, 4, 5));
}

#[test]
fn signed_and_unsigned_appends_never_share_a_group() {
    let (mut wire, ledger) = boot();
    let mut input = append(1, "corporate", &[b"a"]);
    input.extend(append(2, "corporate", &[b"b"]));
    input.extend(signed_append(3, "corporate", b"auth-3", &[b"c"]));
    input.extend(signed_append(4, "corporate", b"auth-4", &[b"d"]));
    input.extend(signed_append(5, "personnel", b"auth-5", &[b"e"]));
    let got = feed(&mut wire, &input);
    assert_eq!(
        got,
        vec![
            ok(1, 0, 1, 2),
            ok(2, 1, 1, 2),
            ok(3, 2, 1, 4),
            ok(4, 3, 1, 4),
            ok(5, 0, 1, 1),
        ]
    );
    let calls: Vec<(u64, u64)> = ledger
        .calls
        .borrow()
        .iter()
        .map(|c| (c.label, c.id))
        .collect();
    assert_eq!(
        calls,
        [
            (ledger_labels::REQUEST, 1),
            (ledger_labels::STAGE, 3),
            (ledger_labels::STAGE, 3),
            (ledger_labels::COMMIT, 3),
            // A group of one goes as the request it is, its authorization with it.
            (ledger_labels::REQUEST, 5),
        ]
    );
    assert_eq!(ledger.calls.borrow()[4].auth, b"auth-5");
}

#[test]
fn a_signed_group_refused_at_its_commit_stores_nothing_and_is_not_sent_again() {
    let (mut wire, ledger) = boot();
    ledger.quota.set(3);
    let mut input = Vec::new();
    for k in 0..3u64 {
        input.extend(signed_append(
            k + 1,
            "corporate",
            format!("auth-{k}").as_bytes(),
            &[b"a", b"b"],
        ));
    }
    let got = feed(&mut wire, &input);
    // Their nonces are taken at their stages: sent again they would be refused `Replayed`,
    // so each gets the commit's refusal, and the client signs again.
    assert_eq!(got, [1, 2, 3].map(|i| err(i, ErrorCode::Full)).to_vec());
    assert_eq!(ledger.calls.borrow().len(), 4);
    assert!(ledger.logs.borrow()[0].is_empty());
    assert_eq!(ledger.checkpoints.get(), 0);
}

#[test]
fn a_signed_group_whose_every_stage_is_refused_sends_no_commit() {
    let (mut wire, ledger) = boot();
    let mut input = signed_append(1, "corporate", REFUSED_AT_AUTHORIZE, &[b"a"]);
    input.extend(signed_append(2, "corporate", REFUSED_AT_AUTHORIZE, &[b"b"]));
    let got = feed(&mut wire, &input);
    assert_eq!(
        got,
        vec![err(1, ErrorCode::Replayed), err(2, ErrorCode::Replayed)]
    );
    let labels: Vec<u64> = ledger.calls.borrow().iter().map(|c| c.label).collect();
    assert_eq!(labels, [ledger_labels::STAGE, ledger_labels::STAGE]);
    assert!(ledger.logs.borrow()[0].is_empty());
}
