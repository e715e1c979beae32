//! Access control through the whole simulated box (docs/access.md), provisioned with
//! `sim::Keys::with_access`: the permission table (every pairing type against every operation,
//! with and without a capability), every kind of bad request, a captured frame replayed after
//! a reboot and against a copy of the disk, a compromised wire driving a ledger directly, and
//! signed appends in one group. Every refusal is checked for its exact code and for leaving
//! every tenant's state (its checkpoint) as it was; at the end the audit log verifies offline
//! and holds exactly one record per audited request, with the requester's key id.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use access::{
    Action, CapOps, Capability, Change, Pairing, PairingChange, PairingSet, PairingType, Refusal,
    RowRange, SignedRequest, Tenants,
};
use common::*;
use interface::msg::ledger::{Call, Reply as LedgerReply, Request as LedgerRequest};
use interface::msg::Message;
use interface::TENANTS;
use note::{Signer, Verifier};
use protocol::{encode_frame, Authorization, Body, Decoder, ErrorCode, Op, Request, Response};
use psdb::RamDevice;
use sim::{Disk, Keys, Sim};

const T: &str = "corporate";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The archive's keys and pairings: ADMIN for every tenant, INPUT, USER and INTERFACE for
/// corporate, and a stranger nobody paired.
struct World {
    identity: Signer,
    archive: Verifier,
    admin: Signer,
    input: Signer,
    user: Signer,
    iface: Signer,
    stranger: Signer,
    nonce: Cell<u64>,
}

impl World {
    fn new() -> World {
        let s = |name: &str, seed: u8| Signer::generate(name, &[seed; 32]).unwrap();
        let identity = s("archive", 40);
        World {
            archive: identity.verifier(),
            identity,
            admin: s("admin", 41),
            input: s("input", 42),
            user: s("user", 43),
            iface: s("iface", 44),
            stranger: s("stranger", 45),
            nonce: Cell::new(1),
        }
    }

    fn keys(&self, public_metadata: bool) -> Keys {
        let mut set = PairingSet::new();
        let t = |n: &[&str]| Tenants::new(n).unwrap();
        for (k, ty, ts) in [
            (&self.admin, PairingType::Admin, t(&["*"])),
            (&self.input, PairingType::Input, t(&[T])),
            (&self.user, PairingType::User, t(&[T])),
            (&self.iface, PairingType::Interface, t(&[T])),
        ] {
            set.insert(Pairing::new(k.verifier(), ty, ts).unwrap())
                .unwrap();
        }
        set.set_public_metadata(public_metadata);
        keys().with_access(self.identity.skey(), set.to_bytes())
    }

    fn fresh_nonce(&self) -> [u8; 16] {
        let n = self.nonce.get();
        self.nonce.set(n + 1);
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&n.to_be_bytes());
        out[8..].copy_from_slice(&std::process::id().to_be_bytes().repeat(2));
        out
    }

    /// A capability from `issuer` to `holder` for corporate, edited by `f`.
    fn cap(&self, issuer: &Signer, holder: &Signer, f: impl FnOnce(&mut Capability)) -> Vec<u8> {
        let mut c = Capability {
            archive: self.archive.clone(),
            tenant: T.into(),
            holder: holder.verifier(),
            ops: CapOps::parse("read,bundle", true).unwrap(),
            rows: RowRange::parse("0..").unwrap(),
            not_before: now() - 60,
            expires: now() + 3600,
            nonce: self.fresh_nonce(),
        };
        f(&mut c);
        c.sign(issuer).unwrap()
    }

    /// `who`'s signed request for `op` on `tenant` ("" archive-wide) with `cap`.
    fn sign(&self, who: &Signer, tenant: &str, op: &Op<'_>, cap: &[u8]) -> Vec<u8> {
        self.sign_with(who, &self.archive, tenant, op, cap, now())
    }

    fn sign_with(
        &self,
        who: &Signer,
        archive: &Verifier,
        tenant: &str,
        op: &Op<'_>,
        cap: &[u8],
        time: u64,
    ) -> Vec<u8> {
        let action = Action::from_op(op).unwrap().unwrap();
        SignedRequest::sign(who, archive, tenant, &action, time, self.fresh_nonce(), cap).unwrap()
    }

    /// A valid pairing change by the ADMIN: a new USER key for corporate.
    fn pair_change(&self) -> Vec<u8> {
        let n = self.fresh_nonce();
        PairingChange {
            archive: self.archive.clone(),
            change: Change::Add {
                kind: PairingType::User,
                tenants: Tenants::new(&[T]).unwrap(),
            },
            key: Signer::generate("new", &[n[7]; 32]).unwrap().verifier(),
            time: now(),
            nonce: n,
        }
        .sign(&self.admin)
        .unwrap()
    }
}

/// The simulated box on a RAM disk that outlives it.
struct Box_ {
    sim: Sim,
    disk: Rc<RefCell<RamDevice>>,
    next_id: u64,
    /// What each audited request should have left in the audit log, in order: its key id
    /// (`-` unsigned) and its outcome (`granted` or the refusal's name).
    expected: Vec<(String, String)>,
}

fn boot_box(keys: &Keys, disk: Rc<RefCell<RamDevice>>) -> Box_ {
    let sim = Sim::new(
        system(),
        Disk::Shared(disk.clone(), Rc::new(Cell::new(false))),
        keys,
        false,
    )
    .unwrap();
    assert!(problems(&sim.console()).is_empty(), "{:?}", sim.console());
    Box_ {
        sim,
        disk,
        next_id: 1,
        expected: Vec::new(),
    }
}

/// An answer, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ans {
    Ok(String),
    Err(ErrorCode),
}

fn frame(id: u64, tenant: &str, auth: &[u8], op: Op<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; protocol::MAX_PAYLOAD];
    let n = Request {
        id,
        tenant,
        capability: auth,
        op,
    }
    .encode(&mut buf)
    .unwrap();
    let mut out = Vec::new();
    encode_frame(&buf[..n], |b| out.extend_from_slice(b));
    out
}

fn answers(bytes: &[u8]) -> Vec<(u64, Ans)> {
    let mut d = Decoder::new(vec![0u8; protocol::MAX_ENCODED]);
    let mut got = Vec::new();
    d.feed(bytes, |f| {
        let r = Response::decode(f.unwrap()).unwrap();
        let a = match r.body {
            Body::Error { code } => Ans::Err(code),
            b => Ans::Ok(
                format!("{b:?}")
                    .split([' ', '{', '('])
                    .next()
                    .unwrap()
                    .into(),
            ),
        };
        got.push((r.id, a));
    });
    got
}

fn key_of(who: Option<&Signer>) -> String {
    who.map_or("-".into(), |s| format!("{:08x}", s.verifier().key_id()))
}

impl Box_ {
    /// Every tenant's checkpoint, read from the disk as a fresh mount sees it.
    fn state(&self) -> Vec<Vec<u8>> {
        let image = self.disk.borrow().image().to_vec();
        let (mut store, _) =
            psdb::Store::mount(RamDevice::from_image(image), psdb::Mode::ReadOnly).unwrap();
        TENANTS
            .iter()
            .map(|t| {
                let mut cp = Vec::new();
                if let Ok(ns) = store.open_namespace(t) {
                    store.checkpoint(ns, &mut cp).unwrap();
                }
                cp
            })
            .collect()
    }

    /// Feeds frames at once; the answers.
    fn feed(&mut self, input: &[u8]) -> Vec<(u64, Ans)> {
        let mut out = Vec::new();
        self.sim
            .feed(input, &mut |b| out.extend_from_slice(b))
            .unwrap();
        answers(&out)
    }

    /// Sends one request; its answer. `who` signed it (`None`: unsigned): an audited request
    /// leaves one record, except an unsigned one that is granted (public metadata).
    fn send(&mut self, who: Option<&Signer>, tenant: &str, auth: &[u8], op: Op<'_>) -> Ans {
        let id = self.next_id;
        self.next_id += 1;
        let got = self.feed(&frame(id, tenant, auth, op));
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, id);
        let ans = got[0].1.clone();
        let outcome = match &ans {
            Ans::Ok(_) => "granted".to_string(),
            Ans::Err(code) => Refusal::from_code(*code)
                .map_or_else(|| format!("{code:?}"), |r| r.name().to_string()),
        };
        if !(who.is_none() && outcome == "granted") {
            self.expected.push((key_of(who), outcome));
        }
        ans
    }

    /// Sends a request expected to be refused `code`: no tenant's state changes.
    fn refused(
        &mut self,
        who: Option<&Signer>,
        tenant: &str,
        auth: &[u8],
        op: Op<'_>,
        code: ErrorCode,
        what: &str,
    ) {
        let before = self.state();
        let got = self.send(who, tenant, auth, op);
        assert_eq!(got, Ans::Err(code), "{what}");
        assert_eq!(
            self.state(),
            before,
            "{what}: a refusal changed a tenant's state"
        );
    }

    /// The audit log verifies (signatures of the tlog and of every journal record) and holds
    /// exactly the records expected, in order, each with its key id and outcome.
    fn check_audit_log(&self) -> usize {
        let log = audit_log(&self.disk);
        let got: Vec<(String, String)> = log
            .iter()
            .map(|(_, l)| {
                let field = |k: &str| {
                    l.split(' ')
                        .find_map(|f| f.strip_prefix(k))
                        .unwrap_or_else(|| panic!("{l}: no {k}"))
                        .to_string()
                };
                (field("key="), field("outcome="))
            })
            .collect();
        assert_eq!(got.len(), self.expected.len(), "{log:#?}");
        for (i, (g, e)) in got.iter().zip(&self.expected).enumerate() {
            assert_eq!(g, e, "record {i}: {}", log[i].1);
        }
        got.len()
    }
}

/// The operations of the table, for `tenant` (a log of 300 entries: bundle 0 and level-0
/// tile 0 are whole). Each: its name, the op, and whether a capability is relevant (tenant
/// operations; the archive-wide ones take none).
fn ops<'a>(change: &'a [u8], entries: &'a [u8]) -> Vec<(&'static str, Op<'a>, bool)> {
    vec![
        ("hello", Op::Hello, true),
        ("checkpoint", Op::Checkpoint, true),
        ("status", Op::Status, true),
        (
            "get-object checkpoint",
            Op::GetObject {
                path: "checkpoint",
                offset: 0,
            },
            true,
        ),
        (
            "get-object tile",
            Op::GetObject {
                path: "tile/0/000",
                offset: 0,
            },
            true,
        ),
        (
            "get-object bundle",
            Op::GetObject {
                path: "tile/entries/000",
                offset: 0,
            },
            true,
        ),
        ("read", Op::Read { since: 0, max: 10 }, true),
        ("append", Op::Append { entries }, true),
        ("pair-change", Op::PairChange { change }, false),
        (
            "audit-object",
            Op::AuditObject {
                path: "checkpoint",
                offset: 0,
            },
            false,
        ),
    ]
}

fn bundle(es: &[&[u8]]) -> Vec<u8> {
    let mut buf = vec![0u8; protocol::MAX_PAYLOAD];
    let mut len = 0;
    for e in es {
        assert!(protocol::push_entry(&mut buf, &mut len, e));
    }
    buf.truncate(len);
    buf
}

/// Appends 300 entries to corporate as the ADMIN (so its first bundle and tile are whole).
fn fill(w: &World, b: &mut Box_) {
    let es: Vec<Vec<u8>> = (0..300).map(|i| format!("row {i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = es.iter().map(Vec::as_slice).collect();
    let entries = bundle(&refs);
    let op = Op::Append { entries: &entries };
    let auth = w.sign(&w.admin, T, &op, &[]);
    assert_eq!(
        b.send(Some(&w.admin), T, &auth, op),
        Ans::Ok("Appended".into())
    );
}

use Refusal::{CapabilityRequired as CapReq, Unpaired, Unsigned, WrongOperation as WrongOp};

/// The expected refusal of `who` (a type) for op `i` of [`ops`], without and with a
/// capability (read,bundle on every row, from the ADMIN): docs/access.md's table.
fn expect(who: &str, i: usize, public_metadata: bool) -> [Option<Refusal>; 2] {
    let metadata = i <= 4;
    let content = i == 5 || i == 6;
    match (who, i) {
        ("ADMIN", _) => [None, None],
        ("INPUT" | "USER", _) if content => [Some(CapReq), None],
        ("USER", 7) => [Some(WrongOp); 2],
        ("INPUT" | "USER" | "INTERFACE", 8) => [Some(WrongOp); 2],
        ("INPUT" | "USER" | "INTERFACE", 9) => [Some(Unpaired); 2],
        ("INTERFACE", _) if !metadata => [Some(WrongOp); 2],
        ("INPUT" | "USER" | "INTERFACE", _) => [None, None],
        ("unpaired", _) => [Some(Unpaired); 2],
        ("unsigned", _) if metadata && public_metadata => [None, None],
        ("unsigned", _) => [Some(Unsigned); 2],
        _ => unreachable!(),
    }
}

fn run_table(w: &World, b: &mut Box_, public_metadata: bool) -> usize {
    let mut cases = 0;
    let who: [(&str, Option<&Signer>); 6] = [
        ("ADMIN", Some(&w.admin)),
        ("INPUT", Some(&w.input)),
        ("USER", Some(&w.user)),
        ("INTERFACE", Some(&w.iface)),
        ("unpaired", Some(&w.stranger)),
        ("unsigned", None),
    ];
    for (name, signer) in who {
        for i in 0..10 {
            let change = w.pair_change();
            let entries = bundle(&[format!("{name} {i}").as_bytes()]);
            let (op_name, op, cap_relevant) = ops(&change, &entries).swap_remove(i);
            let want = expect(name, i, public_metadata);
            let with_cap = [false, true];
            for (k, cap_on) in with_cap.into_iter().enumerate() {
                if cap_on && (!cap_relevant || signer.is_none()) {
                    continue;
                }
                let cap = match (cap_on, signer) {
                    (true, Some(s)) => w.cap(&w.admin, s, |_| {}),
                    _ => Vec::new(),
                };
                let change = w.pair_change();
                let op = match &op {
                    Op::PairChange { .. } => Op::PairChange { change: &change },
                    o => o.clone(),
                };
                let tenant = if cap_relevant { T } else { "" };
                let auth = signer.map_or(Vec::new(), |s| w.sign(s, tenant, &op, &cap));
                let what = format!(
                    "{name} {op_name} (capability: {cap_on}, public metadata: {public_metadata})"
                );
                match want[k] {
                    Some(r) => b.refused(signer, tenant, &auth, op.clone(), r.code(), &what),
                    None => {
                        let before = b.state();
                        let got = b.send(signer, tenant, &auth, op.clone());
                        assert!(matches!(got, Ans::Ok(_)), "{what}: {got:?}");
                        // Only a granted append changes its tenant's state.
                        if i != 7 {
                            assert_eq!(b.state(), before, "{what}");
                        } else {
                            assert_ne!(b.state(), before, "{what}");
                        }
                    }
                }
                cases += 1;
            }
        }
    }
    cases
}

fn disk() -> Rc<RefCell<RamDevice>> {
    Rc::new(RefCell::new(RamDevice::new(32 << 11)))
}

/// The table, then every bad request, then the audit log (docs/access.md "Audit records").
#[test]
fn every_pairing_type_against_every_operation_and_every_bad_request() {
    let w = World::new();
    let mut total = 0;
    for public_metadata in [false, true] {
        let mut b = boot_box(&w.keys(public_metadata), disk());
        fill(&w, &mut b);
        let cases = run_table(&w, &mut b, public_metadata);
        println!("access table (public metadata {public_metadata}): {cases} cases");
        total += cases;
        if !public_metadata {
            total += bad_requests(&w, &mut b);
        }
        let records = b.check_audit_log();
        println!("audit log verifies: {records} records, one per audited request");
    }
    println!("access table: {total} cases in all");
    // 6 types x 10 ops, plus a capability for 4 signed paired types and the unpaired key on 8
    // tenant ops, twice (without and with public metadata); and the bad requests.
    assert_eq!(total, 2 * (60 + 5 * 8) + BAD_REQUESTS);
}

const BAD_REQUESTS: usize = 14;

/// Each bad request is refused its code and changes nothing. The number of cases.
fn bad_requests(w: &World, b: &mut Box_) -> usize {
    let read = Op::Read { since: 0, max: 10 };
    let n = Cell::new(0);
    let bad = |b: &mut Box_, who: &Signer, tenant: &str, auth: &[u8], op, code, what| {
        b.refused(Some(who), tenant, auth, op, code, what);
        n.set(n.get() + 1);
    };
    // Replayed: the same frame's authorization twice; the first is granted.
    let auth = w.sign(&w.admin, T, &read, &[]);
    assert!(matches!(
        b.send(Some(&w.admin), T, &auth, read.clone()),
        Ans::Ok(_)
    ));
    bad(
        b,
        &w.admin,
        T,
        &auth,
        read.clone(),
        ErrorCode::Replayed,
        "replayed",
    );
    // Capabilities: expired, not yet valid, rows out of range, another holder's, issued by a
    // USER (not an ADMIN).
    let cap = w.cap(&w.admin, &w.user, |c| {
        c.not_before = now() - 7200;
        c.expires = now() - 3600;
    });
    let auth = w.sign(&w.user, T, &read, &cap);
    bad(
        b,
        &w.user,
        T,
        &auth,
        read.clone(),
        ErrorCode::Expired,
        "expired capability",
    );
    let cap = w.cap(&w.admin, &w.user, |c| {
        c.not_before = now() + 3600;
        c.expires = now() + 7200;
    });
    let auth = w.sign(&w.user, T, &read, &cap);
    bad(
        b,
        &w.user,
        T,
        &auth,
        read.clone(),
        ErrorCode::NotYetValid,
        "not-yet-valid capability",
    );
    let cap = w.cap(&w.admin, &w.user, |c| {
        c.rows = RowRange::parse("100..200").unwrap()
    });
    let auth = w.sign(&w.user, T, &read, &cap);
    bad(
        b,
        &w.user,
        T,
        &auth,
        read.clone(),
        ErrorCode::OutOfRange,
        "out-of-range rows",
    );
    let cap = w.cap(&w.admin, &w.user, |_| {});
    let auth = w.sign(&w.input, T, &read, &cap);
    bad(
        b,
        &w.input,
        T,
        &auth,
        read.clone(),
        ErrorCode::WrongHolder,
        "wrong holder",
    );
    let cap = w.cap(&w.user, &w.user, |_| {});
    let auth = w.sign(&w.user, T, &read, &cap);
    bad(
        b,
        &w.user,
        T,
        &auth,
        read.clone(),
        ErrorCode::UntrustedIssuer,
        "untrusted issuer",
    );
    // Requests: for another archive, signed for another tenant, an operation the type may
    // not do, a damaged signature, not an authorization at all, outside the time window.
    let other = Signer::generate("archive", &[99; 32]).unwrap().verifier();
    let auth = w.sign_with(&w.admin, &other, T, &read, &[], now());
    bad(
        b,
        &w.admin,
        T,
        &auth,
        read.clone(),
        ErrorCode::WrongArchive,
        "wrong archive",
    );
    let auth = w.sign(&w.admin, "personnel", &read, &[]);
    bad(
        b,
        &w.admin,
        T,
        &auth,
        read.clone(),
        ErrorCode::WrongTenant,
        "wrong tenant",
    );
    let entries = bundle(&[b"user may not append"]);
    let app = Op::Append { entries: &entries };
    let auth = w.sign(&w.user, T, &app, &[]);
    bad(
        b,
        &w.user,
        T,
        &auth,
        app.clone(),
        ErrorCode::WrongOperation,
        "wrong operation",
    );
    let auth = w.sign(&w.admin, T, &read, &[]);
    let auth = damage_signature(&auth);
    bad(
        b,
        &w.admin,
        T,
        &auth,
        read.clone(),
        ErrorCode::BadSignature,
        "bad signature",
    );
    let before = b.state();
    let id = b.next_id;
    b.next_id += 1;
    let got = b.feed(&frame(id, T, b"\x00\x07not an authorization", read.clone()));
    assert_eq!(got, vec![(id, Ans::Err(ErrorCode::MalformedAuth))]);
    assert_eq!(b.state(), before, "malformed");
    b.expected.push(("-".into(), "malformed".into()));
    n.set(n.get() + 1);
    let auth = w.sign_with(&w.admin, &w.archive, T, &read, &[], now() - 1000);
    bad(
        b,
        &w.admin,
        T,
        &auth,
        read.clone(),
        ErrorCode::StaleRequest,
        "stale time",
    );
    let auth = w.sign_with(&w.admin, &w.archive, T, &read, &[], now() + 1000);
    bad(
        b,
        &w.admin,
        T,
        &auth,
        read.clone(),
        ErrorCode::StaleRequest,
        "time ahead",
    );
    // Entries changed after signing.
    let signed = bundle(&[b"what was signed"]);
    let auth = w.sign(&w.admin, T, &Op::Append { entries: &signed }, &[]);
    let sent = bundle(&[b"what was sent!!"]);
    let op = Op::Append { entries: &sent };
    bad(
        b,
        &w.admin,
        T,
        &auth,
        op.clone(),
        ErrorCode::RequestMismatch,
        "request mismatch",
    );
    assert_eq!(n.get(), BAD_REQUESTS);
    n.get()
}

/// The authorization with one character of its request note's signature changed.
fn damage_signature(auth: &[u8]) -> Vec<u8> {
    let Authorization::V1 {
        request,
        capability,
    } = Authorization::decode(auth).unwrap();
    let mut note = request.to_vec();
    let at = note.len() - 10;
    note[at] = if note[at] == b'A' { b'B' } else { b'A' };
    let mut out = vec![0u8; protocol::MAX_AUTH];
    let n = Authorization::V1 {
        request: &note,
        capability,
    }
    .encode(&mut out)
    .unwrap();
    out.truncate(n);
    out
}

/// A frame captured on the wire, replayed after a reboot on the same disk and against a copy
/// of the disk: refused `Replayed` both times (the nonce window is rebuilt from the records).
#[test]
fn a_captured_frame_is_refused_after_a_reboot_and_on_a_copy_of_the_disk() {
    let w = World::new();
    let keys = w.keys(false);
    let d = disk();
    let mut b = boot_box(&keys, d.clone());
    let entries = bundle(&[b"once"]);
    let op = Op::Append { entries: &entries };
    let auth = w.sign(&w.admin, T, &op, &[]);
    let captured = frame(7, T, &auth, op.clone());
    assert_eq!(b.feed(&captured), vec![(7, Ans::Ok("Appended".into()))]);
    let after = b.state();
    drop(b);
    // The same disk, rebooted.
    let mut b = boot_box(&keys, d.clone());
    assert_eq!(b.feed(&captured), vec![(7, Ans::Err(ErrorCode::Replayed))]);
    assert_eq!(b.state(), after);
    // A copy of the disk, booted elsewhere.
    let copy = Rc::new(RefCell::new(RamDevice::from_image(
        d.borrow().image().to_vec(),
    )));
    let mut c = boot_box(&keys, copy);
    assert_eq!(c.feed(&captured), vec![(7, Ans::Err(ErrorCode::Replayed))]);
    assert_eq!(c.state(), after);
    // A fresh request from the same key still works on both.
    for x in [&mut b, &mut c] {
        let auth = w.sign(&w.admin, T, &op, &[]);
        assert_eq!(
            x.feed(&frame(8, T, &auth, op.clone())),
            vec![(8, Ans::Ok("Appended".into()))]
        );
    }
}

/// Calls `tenant`'s ledger as a compromised wire would: no Check, any request it likes.
fn as_wire(b: &mut Box_, tenant: &str, req: &Request<'_>) -> Ans {
    let t = interface::tenant_index(tenant).unwrap();
    b.sim
        .as_pd("wire", || {
            let mut buf = vec![0u8; protocol::MAX_PAYLOAD];
            let n = req.encode(&mut buf).unwrap();
            let region = wire_pd::REGIONS[t].get().unwrap();
            region.write(0, &buf[..n]).unwrap();
            let call = LedgerRequest {
                call: Call::Request,
                len: n,
            };
            let m: Message = call.encode().call(interface::wire::LEDGERS[t]);
            match LedgerReply::decode(&call, m.info(), m.mrs()).unwrap() {
                LedgerReply::Ok { len } => {
                    let mut out = vec![0u8; len];
                    region.read(0, &mut out).unwrap();
                    let r = Response::decode(&out).unwrap();
                    match r.body {
                        Body::Error { code } => Ans::Err(code),
                        b => Ans::Ok(format!("{b:?}").split([' ', '{']).next().unwrap().into()),
                    }
                }
                r => panic!("{r:?}"),
            }
        })
        .unwrap()
}

/// A compromised wire, played by the test, calls the ledgers directly (no Check): each trick
/// is refused by the ledger's own re-check or its Authorize, and changes nothing.
#[test]
fn a_compromised_wire_cannot_act_for_a_tenant() {
    let w = World::new();
    let mut b = boot_box(&w.keys(false), disk());
    fill(&w, &mut b);
    let entries = bundle(&[b"compromised"]);
    let app = Op::Append { entries: &entries };
    let read = Op::Read { since: 0, max: 10 };
    let mut cases = 0;
    let mut trick = |b: &mut Box_, tenant: &str, auth: &[u8], op: Op<'_>, code, what: &str| {
        let before = b.state();
        let req = Request {
            id: 9,
            tenant,
            capability: auth,
            op,
        };
        assert_eq!(as_wire(b, tenant, &req), Ans::Err(code), "{what}");
        assert_eq!(b.state(), before, "{what}: changed a tenant's state");
        cases += 1;
    };
    // Corporate's authorization sent to personnel's ledger (the request names personnel).
    let auth = w.sign(&w.admin, T, &app, &[]);
    trick(
        &mut b,
        "personnel",
        &auth,
        app.clone(),
        ErrorCode::WrongTenant,
        "another tenant's authorization",
    );
    // No authorization at all: the ledger's Authorize refuses it.
    trick(
        &mut b,
        T,
        &[],
        app.clone(),
        ErrorCode::Unsigned,
        "unsigned, past the Check",
    );
    // A capability swapped for another (the signed request names the first one's hash).
    let cap1 = w.cap(&w.admin, &w.user, |c| {
        c.rows = RowRange::parse("0..5").unwrap()
    });
    let cap2 = w.cap(&w.admin, &w.user, |_| {});
    let auth = w.sign(&w.user, T, &read, &cap1);
    let Authorization::V1 { request, .. } = Authorization::decode(&auth).unwrap();
    let mut swapped = vec![0u8; protocol::MAX_AUTH];
    let n = Authorization::V1 {
        request,
        capability: &cap2,
    }
    .encode(&mut swapped)
    .unwrap();
    trick(
        &mut b,
        T,
        &swapped[..n],
        read.clone(),
        ErrorCode::RequestMismatch,
        "swapped capability",
    );
    // Entries changed after signing.
    let other = bundle(&[b"changed"]);
    let auth = w.sign(&w.admin, T, &app, &[]);
    trick(
        &mut b,
        T,
        &auth,
        Op::Append { entries: &other },
        ErrorCode::RequestMismatch,
        "changed entries",
    );
    // A replay of a request the ledger already acted on.
    let before = b.state();
    let req = Request {
        id: 9,
        tenant: T,
        capability: &auth,
        op: app.clone(),
    };
    assert_eq!(as_wire(&mut b, T, &req), Ans::Ok("Appended".into()));
    assert_ne!(b.state(), before);
    trick(&mut b, T, &auth, app.clone(), ErrorCode::Replayed, "replay");
    println!("compromised wire: {cases} tricks refused");
    assert_eq!(cases, 5);
}

/// Signed appends pipelined by several keys form one group: one commit, each request
/// Authorized with its own authorization and acknowledged its own range, a refused one (a
/// replay inside the group) answered its code and storing nothing, the others unaffected.
#[test]
fn signed_appends_share_one_group_and_a_refused_one_stops_nothing() {
    let w = World::new();
    let mut b = boot_box(&w.keys(false), disk());
    let mut input = Vec::new();
    let mut auths = Vec::new();
    let es: Vec<Vec<u8>> = (0..6)
        .map(|i| bundle(&[format!("g{i}").as_bytes(), b"z"]))
        .collect();
    for (i, e) in es.iter().enumerate() {
        let who = if i % 2 == 0 { &w.admin } else { &w.input };
        auths.push(w.sign(who, T, &Op::Append { entries: e }, &[]));
    }
    // Request 3 repeats request 2's authorization and entries: the Check cannot know (the
    // nonce is not yet taken), its Authorize refuses it.
    auths[3] = auths[2].clone();
    for (i, a) in auths.iter().enumerate() {
        let e = if i == 3 { &es[2] } else { &es[i] };
        input.extend(frame(100 + i as u64, T, a, Op::Append { entries: e }));
    }
    let before = b.sim.wire_stats();
    let got = b.feed(&input);
    let app = |id| (id, Ans::Ok("Appended".into()));
    assert_eq!(
        got,
        vec![
            app(100),
            app(101),
            app(102),
            (103, Ans::Err(ErrorCode::Replayed)),
            app(104),
            app(105)
        ]
    );
    let s = b.sim.wire_stats();
    assert_eq!(s.combined - before.combined, 1, "{s:?}");
    assert_eq!(s.grouped - before.grouped, 5);
    // One checkpoint over the five granted requests' 10 entries, in request order.
    let size = |cp: &[u8]| -> u64 {
        std::str::from_utf8(cp)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(size(&b.state()[0]), 10);
    // Each request left one record: five grants and the replay's refusal.
    let log = audit_log(&b.disk);
    let outcomes: Vec<&str> = log
        .iter()
        .map(|(_, l)| l.rsplit("outcome=").next().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["granted", "granted", "granted", "replayed", "granted", "granted"]
    );
}
