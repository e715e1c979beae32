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

use access::{Pairing, PairingSet, PairingType, RowRange, Tenants};
use common::*;
use interface::msg::ledger::{Call, Reply as LedgerReply, Request as LedgerRequest};
use interface::msg::Message;
use interface::TENANTS;
use note::Signer;
use protocol::{Authorization, Body, ErrorCode, Op, Request, Response};
use psdb::RamDevice;
use sim::{Disk, Keys, Sim};
use system_tests::access_cases::{
    self as cases, answers, bundle, frame, Ans, Runner, Transport, BAD_REQUESTS, T, TABLE_CASES,
};

/// The archive's keys (the shared table's [`cases::World`]) and its identity's signer.
struct World {
    identity: Signer,
    w: cases::World,
}

impl std::ops::Deref for World {
    type Target = cases::World;
    fn deref(&self) -> &cases::World {
        &self.w
    }
}

impl World {
    fn new() -> World {
        let s = |name: &str, seed: u8| Signer::generate(name, &[seed; 32]).unwrap();
        let identity = s("archive", 40);
        let keys = [
            s("admin", 41),
            s("input", 42),
            s("user", 43),
            s("iface", 44),
            s("stranger", 45),
        ];
        let salt = std::process::id().to_be_bytes().repeat(2);
        World {
            w: cases::World::new(identity.verifier(), keys, salt.try_into().unwrap()),
            identity,
        }
    }

    /// The initial set: ADMIN for every tenant, INPUT, USER and INTERFACE for corporate.
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
}

/// The simulated box on a RAM disk that outlives it.
struct Box_ {
    sim: Sim,
    disk: Rc<RefCell<RamDevice>>,
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
    Box_ { sim, disk }
}

impl Box_ {
    /// Every tenant's checkpoint, read from the disk as a fresh mount sees it.
    fn disk_state(&self) -> Vec<Vec<u8>> {
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
}

/// The simulated wire as the table's transport; the state read from the disk directly (a
/// fresh mount), so no request of the check itself reaches the box.
impl Transport for &mut Box_ {
    fn exchange(&mut self, frames: &[u8], _n: usize) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        self.sim
            .feed(frames, &mut |b| out.extend_from_slice(b))
            .map_err(|e| e.0)?;
        Ok(out)
    }
    fn state(&mut self) -> Option<Vec<Vec<u8>>> {
        Some(self.disk_state())
    }
}

/// The audit log verifies (signatures of the tlog and of every journal record) and holds
/// exactly the records `expected`, in order, each with its key id and outcome.
fn check_audit_log(b: &Box_, expected: &[(String, String)]) -> usize {
    let log = audit_log(&b.disk);
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
    assert_eq!(got.len(), expected.len(), "{log:#?}");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert_eq!(g, e, "record {i}: {}", log[i].1);
    }
    got.len()
}

/// Appends 300 entries to corporate as the ADMIN (so its first bundle and tile are whole).
fn fill(w: &World, b: &mut Box_) {
    let mut r = Runner::new(b, w);
    r.fill();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
}

fn disk() -> Rc<RefCell<RamDevice>> {
    Rc::new(RefCell::new(RamDevice::new(32 << 11)))
}

/// The table (tests/access_cases.rs: the same cases `access_table_client` runs against a live
/// box), then every bad request, then the audit log (docs/access.md "Audit records").
#[test]
fn every_pairing_type_against_every_operation_and_every_bad_request() {
    let w = World::new();
    let mut total = 0;
    for public_metadata in [false, true] {
        let mut b = boot_box(&w.keys(public_metadata), disk());
        let mut r = Runner::new(&mut b, &w);
        r.fill();
        let cases = r.run_table(public_metadata);
        println!("access table (public metadata {public_metadata}): {cases} cases");
        assert_eq!(cases, TABLE_CASES);
        total += cases;
        if !public_metadata {
            let bad = r.bad_requests();
            assert_eq!(bad, BAD_REQUESTS);
            total += bad;
        }
        assert!(r.failures.is_empty(), "{:#?}", r.failures);
        let expected = std::mem::take(&mut r.expected);
        let records = check_audit_log(&b, &expected);
        println!("audit log verifies: {records} records, one per audited request");
    }
    println!("access table: {total} cases in all");
    // 6 types x 10 ops, plus a capability for 4 signed paired types and the unpaired key on 8
    // tenant ops, twice (without and with public metadata); and the bad requests.
    assert_eq!(total, 2 * (60 + 5 * 8) + BAD_REQUESTS);
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
    let after = b.disk_state();
    drop(b);
    // The same disk, rebooted.
    let mut b = boot_box(&keys, d.clone());
    assert_eq!(b.feed(&captured), vec![(7, Ans::Err(ErrorCode::Replayed))]);
    assert_eq!(b.disk_state(), after);
    // A copy of the disk, booted elsewhere.
    let copy = Rc::new(RefCell::new(RamDevice::from_image(
        d.borrow().image().to_vec(),
    )));
    let mut c = boot_box(&keys, copy);
    assert_eq!(c.feed(&captured), vec![(7, Ans::Err(ErrorCode::Replayed))]);
    assert_eq!(c.disk_state(), after);
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
        let before = b.disk_state();
        let req = Request {
            id: 9,
            tenant,
            capability: auth,
            op,
        };
        assert_eq!(as_wire(b, tenant, &req), Ans::Err(code), "{what}");
        assert_eq!(b.disk_state(), before, "{what}: changed a tenant's state");
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
    let before = b.disk_state();
    let req = Request {
        id: 9,
        tenant: T,
        capability: &auth,
        op: app.clone(),
    };
    assert_eq!(as_wire(&mut b, T, &req), Ans::Ok("Appended".into()));
    assert_ne!(b.disk_state(), before);
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
    assert_eq!(size(&b.disk_state()[0]), 10);
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
