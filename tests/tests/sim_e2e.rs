//! The whole system in the simulator, end to end: three tenants appended to and read, their
//! logs exported and verified, malformed client input survived, isolation enforced at the
//! channel level, reads failing closed when audit cannot record them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use interface::TENANTS;
use microkit::{set_mr, Channel, MessageInfo};
use protocol::client::ClientError;
use protocol::frame::encode_frame_vec;
use protocol::{ErrorCode, Response};
use psdb::RamDevice;
use sim::{Disk, Keys, Sim};

mod common;
use common::*;

use interface::msg::{audit, ledger, Message};

/// The typed protocol's labels ([`interface::msg::psdb::label`]), as numbers to match on (a
/// compromised ledger sends psdb registers no encoder would).
use interface::msg::psdb::label as psdb_labels;

#[test]
fn three_tenants_append_read_export_verify() {
    let mut rig = boot();
    let c = &mut rig.client;
    c.ping().unwrap();
    let counts = [300usize, 5, 1];
    let count = |t: usize| counts.get(t).copied().unwrap_or(2);
    for (t, tenant) in TENANTS.iter().enumerate() {
        let hello = c.hello(tenant).unwrap();
        assert_eq!(hello.size, 0);
        assert_eq!(hello.vkey, verifier(tenant).vkey());
        let entries: Vec<Vec<u8>> = (0..count(t))
            .map(|i| format!("{tenant} record {i}").into_bytes())
            .collect();
        // Two requests: indices continue across appends.
        let (a, b) = entries.split_at(count(t) / 2);
        let mut idx = c.append(tenant, a).unwrap();
        idx.extend(c.append(tenant, b).unwrap_or_default());
        assert_eq!(idx, (0..count(t) as u64).collect::<Vec<_>>());
    }
    for (t, tenant) in TENANTS.iter().enumerate() {
        let got = c.read(tenant, 0, u64::MAX).unwrap();
        assert_eq!(got.len(), count(t));
        for (i, (at, e)) in got.iter().enumerate() {
            assert_eq!(*at, i as u64);
            assert_eq!(e, format!("{tenant} record {i}").as_bytes());
        }
        assert_eq!(
            c.read(tenant, 3, 1).unwrap().len(),
            usize::from(count(t) > 3)
        );
        let note = c.checkpoint(tenant).unwrap();
        let v = verifier(tenant);
        note::Note::parse(&note).unwrap().verify(&[v]).unwrap();
        assert_eq!(export_and_verify(c, tenant), count(t) as u64);
    }
    // A tenant's key does not verify another tenant's checkpoint.
    let note = c.checkpoint("corporate").unwrap();
    let other = verifier("personnel");
    assert!(note::Note::parse(&note).unwrap().verify(&[other]).is_err());
    // A bundle beyond the checkpoint is not served, nor a bad path.
    assert!(matches!(
        c.get_object("property", "tile/entries/001"),
        Ok(None)
    ));
    assert!(matches!(
        c.get_object("property", "../corporate/checkpoint"),
        Err(ClientError::Remote(ErrorCode::BadRequest))
    ));

    // Everything durable: the disk holds an audit namespace with exactly one record per read
    // request and per entry bundle fetched, in order, each naming the tenant whose ledger
    // called (audit learns it from the channel), the range that left and the outcome.
    let mut expected = Vec::new();
    for (t, tenant) in TENANTS.iter().enumerate() {
        let n = count(t) as u64;
        // read(0, all): one request returns every entry, the next one finds the end.
        expected.push(format!("tenant={tenant} op=read first=0 count={n}"));
        expected.push(format!("tenant={tenant} op=read first={n} count=0"));
        // read(3, 1): one entry if there is a fourth, else the end.
        expected.push(format!(
            "tenant={tenant} op=read first=3 count={}",
            u64::from(n > 3)
        ));
        // The export: every entry bundle of the log, full ones then the partial one.
        for b in 0..n.div_ceil(256) {
            let count = (n - b * 256).min(256);
            expected.push(format!(
                "tenant={tenant} op=bundle first={} count={count}",
                b * 256
            ));
        }
    }
    assert_records(&audit_records(&rig.disk), &expected);
}

/// Every record of the audit log on `disk` (folded and pending, verified: `audit_log`), each
/// without its `index=<i> ` (checked to be its place).
fn audit_records(disk: &Rc<RefCell<RamDevice>>) -> Vec<String> {
    audit_log(disk)
        .into_iter()
        .map(|(i, line)| {
            let rest = line.strip_prefix(&format!("index={i} ")).unwrap();
            rest.to_string()
        })
        .collect()
}

/// `records` are exactly `expected` (each `tenant=.. op=.. first=.. count=..`), in order, each
/// with a request id (strictly increasing per tenant: one client) and `outcome=granted`.
fn assert_records(records: &[String], expected: &[String]) {
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    let got: Vec<String> = records
        .iter()
        .map(|r| {
            let (head, tail) = r.split_once(" request=").unwrap();
            let (id, outcome) = tail.split_once(' ').unwrap();
            assert_eq!(outcome, "outcome=granted", "{r}");
            let id: u64 = id.parse().unwrap();
            let tenant = head.split(' ').next().unwrap().to_string();
            if let Some(prev) = last.insert(tenant, id) {
                assert!(id > prev, "request ids out of order: {records:?}");
            }
            head.to_string()
        })
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn malformed_input_is_answered_and_the_wire_keeps_serving() {
    let mut rig = boot();
    rig.client.append("personnel", &[b"before"]).unwrap();
    let mut raw = |bytes: &[u8]| -> Vec<Result<Vec<u8>, protocol::FrameError>> {
        let s = sim(&mut rig);
        let mut out = Vec::new();
        s.feed(bytes, &mut |b| out.extend_from_slice(b)).unwrap();
        let mut d = protocol::Decoder::new(vec![0u8; protocol::MAX_ENCODED]);
        let mut frames = Vec::new();
        d.feed(&out, |f| frames.push(f.map(<[u8]>::to_vec)));
        frames
    };
    let code = |f: &Result<Vec<u8>, _>| match Response::decode(f.as_ref().unwrap()).unwrap().body {
        protocol::Body::Error { code } => code,
        b => panic!("not an error: {b:?}"),
    };
    // Garbage, then a delimiter.
    let f = raw(b"\x13\x37garbage bytes\xff\x00");
    assert_eq!(code(&f[0]), ErrorCode::BadFrame);
    // A truncated frame (its delimiter arrives after a cut).
    let good = encode_frame_vec(b"\x01\x00\x00\x00");
    let f = raw(&[&good[..good.len() - 3], &[0u8][..]].concat());
    assert_eq!(code(&f[0]), ErrorCode::BadFrame);
    // A valid frame that is not a request.
    let f = raw(&encode_frame_vec(&[0xff; 40]));
    assert_eq!(code(&f[0]), ErrorCode::BadMessage);
    // Oversize: more than a frame's worth of non-zero bytes.
    let mut big = vec![0x55u8; protocol::MAX_ENCODED + 100];
    big.push(0);
    let f = raw(&big);
    assert_eq!(f.len(), 1);
    assert_eq!(code(&f[0]), ErrorCode::Oversize);
    // An unknown tenant, and a non-empty capability.
    let mut buf = vec![0u8; 256];
    let n = protocol::Request {
        id: 77,
        tenant: "mallory",
        capability: &[],
        op: protocol::Op::Hello,
    }
    .encode(&mut buf)
    .unwrap();
    let f = raw(&encode_frame_vec(&buf[..n]));
    let r = Response::decode(f[0].as_ref().unwrap()).unwrap();
    assert_eq!((r.id, code(&f[0])), (77, ErrorCode::UnknownTenant));
    let n = protocol::Request {
        id: 78,
        tenant: "property",
        capability: b"cap",
        op: protocol::Op::Hello,
    }
    .encode(&mut buf)
    .unwrap();
    let f = raw(&encode_frame_vec(&buf[..n]));
    assert_eq!(code(&f[0]), ErrorCode::BadRequest);
    // Bad appends: truncated entries, none at all.
    let n = protocol::Request {
        id: 79,
        tenant: "property",
        capability: &[],
        op: protocol::Op::Append {
            entries: &[0, 5, 1],
        },
    }
    .encode(&mut buf)
    .unwrap();
    assert_eq!(
        code(&raw(&encode_frame_vec(&buf[..n]))[0]),
        ErrorCode::BadEntries
    );
    // A frame cut off by a disconnect is dropped, not glued to the next client's bytes.
    let _ = raw(&good[..good.len() - 1]);
    sim(&mut rig).disconnect();

    // Still serving, and no tenant noticed anything.
    let c = &mut rig.client;
    c.ping().unwrap();
    assert_eq!(c.append("personnel", &[b"after"]).unwrap(), [1]);
    assert_eq!(c.hello("corporate").unwrap().size, 0);
    assert_eq!(c.hello("property").unwrap().size, 0);
    let got = c.read("personnel", 0, 10).unwrap();
    assert_eq!(got.len(), 2);
    for pd in [
        "ledger_corporate",
        "ledger_personnel",
        "ledger_property",
        "audit",
        "psdb",
    ] {
        assert!(sim(&mut rig).is_running(pd), "{pd} stopped");
    }
    // Rejected by the wire itself: two bad frames, a non-request, an oversize, an unknown
    // tenant; and the non-empty capability, refused by audit at the wire's Check (an archive
    // that is not provisioned refuses one `BadRequest`) before any ledger saw it.
    assert_eq!(sim(&mut rig).wire_stats().rejected, 6);
}

#[test]
fn the_kernel_rules_hold_in_the_simulator() {
    let mut rig = boot();
    rig.client.append("corporate", &[b"secret"]).unwrap();
    let s = sim(&mut rig);
    // The wire has no channel to psdb: its ids past the last ledger's and audit's do not exist, and a
    // ppcall on a channel the wire does have goes only to its ledger.
    let r = s
        .as_pd("wire", || {
            Channel::new(interface::TENANT_COUNT + 2).pp_call(MessageInfo::new(1, 0))
        })
        .unwrap();
    assert_eq!(r.label(), sim::REFUSED);
    // A ledger cannot call downhill (to the wire) and psdb cannot call anyone.
    let r = s
        .as_pd("ledger_corporate", || {
            Channel::new(0).pp_call(MessageInfo::new(1, 0))
        })
        .unwrap();
    assert_eq!(r.label(), sim::REFUSED);
    let r = s
        .as_pd("psdb", || Channel::new(0).pp_call(MessageInfo::new(1, 0)))
        .unwrap();
    assert_eq!(r.label(), sim::REFUSED);
    // A compromised ledger sending psdb garbage gets error replies; psdb keeps running.
    for (label, path_len, data_len) in [(1, 1 << 40, 0), (1, 3, u64::MAX), (9, 0, 0), (2, 300, 0)] {
        let r = s
            .as_pd("ledger_personnel", || {
                set_mr(0, path_len);
                set_mr(1, data_len);
                interface::ledger::PSDB.pp_call(MessageInfo::new(label, 2))
            })
            .unwrap();
        assert_ne!(r.label(), psdb_labels::OK);
    }
    // What ledger_personnel can name is its own namespace: corporate's checkpoint path in
    // personnel's namespace is absent.
    let r = s
        .as_pd("ledger_personnel", || {
            let mut c =
                interface::PsdbClient::new(interface::ledger::PSDB, ledger_pd::PSDB.get().unwrap());
            let mut out = Vec::new();
            tlog::Storage::get(&mut c, "tile/entries/000.p/1", &mut out)
        })
        .unwrap();
    assert_eq!(r, Ok(false));
    assert!(s.is_running("psdb"));
    let console = s.console().join("\n");
    assert!(
        console.contains(&format!(
            "wire: ppcall on unknown channel {}",
            interface::TENANT_COUNT + 2
        )),
        "{console}"
    );
    assert!(
        console.contains("ledger_corporate: no ppcall right on channel 0"),
        "{console}"
    );

    // A description with a downhill ppcall is refused before anything runs.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../system.xml"))
        .unwrap()
        .replace(
            r#"name="audit" priority="200""#,
            r#"name="audit" priority="120""#,
        );
    let bad = sysdesc::System::parse(&text).unwrap();
    let err = Sim::new(bad, Disk::Ram(RamDevice::new(1 << 11)), &keys(), false).unwrap_err();
    assert!(err.0.contains("does not go strictly uphill"), "{err}");
}

#[test]
fn reads_fail_closed_when_audit_cannot_record() {
    let mut rig = boot();
    rig.client.append("property", &[b"a", b"b"]).unwrap();
    assert_eq!(rig.client.read("property", 0, 10).unwrap().len(), 2);
    rig.fail.set(true); // the disk stops taking writes: audit cannot make records durable
    match rig.client.read("property", 0, 10) {
        Err(ClientError::Remote(ErrorCode::AuditFailed)) => {}
        other => panic!("read without an audit record: {other:?}"),
    }
    match rig.client.get_object("property", "tile/entries/000.p/2") {
        Err(ClientError::Remote(ErrorCode::AuditFailed)) => {}
        other => panic!("bundle without an audit record: {other:?}"),
    }
    // Public objects still flow; appends fail without acknowledgement.
    assert!(rig
        .client
        .get_object("property", "checkpoint")
        .unwrap()
        .is_some());
    assert!(matches!(
        rig.client.append("property", &[b"c"]),
        Err(ClientError::Remote(ErrorCode::Storage))
    ));
    // The disk recovers: the system carries on where the last durable checkpoint left it.
    rig.fail.set(false);
    let after = boot_on(rig.disk.clone());
    let mut c = after.client;
    let got = c.read("property", 0, 10).unwrap();
    assert_eq!(got.len(), 2, "the unacknowledged append is not visible");
    assert_eq!(c.append("property", &[b"c"]).unwrap(), [2]);
}

#[test]
fn each_ledger_signs_only_with_its_own_tenants_key() {
    // A key set where corporate's slot holds personnel's key: corporate's ledger refuses it
    // (the key is named for another log), so the box does not start signing as the wrong log.
    let good = keys();
    let mut swapped = BTreeMap::new();
    for log in sim::logs() {
        let from = if log == "corporate" { "personnel" } else { log };
        swapped.insert(log, good.skey(from).unwrap().to_string());
    }
    let dir = tempdir();
    for (log, skey) in &swapped {
        std::fs::write(dir.join(format!("{log}.skey")), format!("{skey}\n")).unwrap();
    }
    let bad = Keys::load_or_generate(&dir);
    assert!(
        bad.as_ref()
            .is_err_and(|e| e.0.contains("this PD signs as")),
        "{bad:?}"
    );
    // Keys generated into an empty directory: one per log, each named for its log, with the
    // verifier keys written next to them.
    let fresh_dir = dir.join("fresh");
    let fresh = Keys::load_or_generate(&fresh_dir).unwrap();
    for log in sim::logs() {
        let vkey = std::fs::read_to_string(fresh_dir.join(format!("{log}.vkey"))).unwrap();
        assert_eq!(vkey.trim_end(), fresh.verifier(log).unwrap().vkey());
        assert_eq!(
            fresh.verifier(log).unwrap().name(),
            interface::keys::origin(log)
        );
    }
    let again = Keys::load_or_generate(&fresh_dir).unwrap();
    assert_eq!(
        again.skey("audit"),
        fresh.skey("audit"),
        "keys are loaded, not regenerated"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "totebox-sim-keys-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn the_archive_survives_a_restart() {
    let mut rig = boot();
    for t in TENANTS {
        rig.client.append(t, &[t.as_bytes()]).unwrap();
    }
    let before = rig.client.checkpoint("corporate").unwrap();
    let disk = rig.disk.clone();
    drop(rig);
    let mut again = boot_on(disk);
    assert_eq!(again.client.checkpoint("corporate").unwrap(), before);
    for t in TENANTS {
        assert_eq!(again.client.read(t, 0, 5).unwrap()[0].1, t.as_bytes());
        assert_eq!(again.client.append(t, &[b"more"]).unwrap(), [1]);
    }
}

/// A PD that faults inside a protected call never replies: on seL4 its caller (the wire,
/// whose Check reaches audit first) stays blocked forever and the box serves nothing more. The
/// simulator shows exactly that: no invented reply, a `SIM|ERROR` report, and every later
/// request fails. (A fault two calls down, a ledger's callee: `a_psdb_fault_blocks_a_ledger_and_the_wire`.)
#[test]
fn a_fault_during_a_call_blocks_the_chain_and_stops_the_system() {
    let mut rig = boot();
    rig.client.append("property", &[b"a", b"b"]).unwrap();
    assert!(sim(&mut rig).inject_fault("audit", "injected fault"));
    // The read's Check reaches audit, which faults: the wire never gets an answer, so
    // neither does the client, and no ledger is called. No content leaves.
    let err = rig.client.read("property", 0, 10).unwrap_err().to_string();
    let report = "SIM|ERROR: PD audit faulted during a call from wire: injected fault";
    assert!(err.contains(report), "{err}");
    assert!(
        rig.client.stream_mut().inbox.is_empty(),
        "no reply was made up"
    );
    let s = sim(&mut rig);
    assert_eq!(s.halted().as_deref(), Some(report));
    let console = s.console();
    assert!(console
        .iter()
        .any(|l| l == "MON|ERROR: faulting PD: audit: injected fault"));
    assert!(console.iter().any(|l| l == report), "{console:?}");
    assert!(s.has_faulted("audit") && !s.is_running("audit"));
    assert!(s.is_blocked("wire") && !s.is_running("wire"));
    // Untouched, but unreachable: nothing reaches them through the blocked wire.
    for pd in [
        "ledger_corporate",
        "ledger_personnel",
        "ledger_property",
        "psdb",
    ] {
        assert!(s.is_running(pd), "{pd} stopped");
    }
    // Nothing else is ever answered, for any tenant.
    let again = rig.client.hello("corporate").unwrap_err().to_string();
    assert!(again.contains(report), "{again}");
    let mut out = Vec::new();
    let fed = sim(&mut rig).feed(&encode_frame_vec(b"\x01\x00\x00\x00"), &mut |b| {
        out.extend_from_slice(b)
    });
    assert_eq!(fed.unwrap_err().0, report);
    assert!(out.is_empty());
    // Nothing was recorded: the read never happened as far as the audit log knows.
    assert!(audit_records(&rig.disk).is_empty());
}

/// A fault two calls down (psdb, while a ledger reads its log for the wire) blocks the whole
/// chain: the ledger and the wire below it.
#[test]
fn a_psdb_fault_blocks_a_ledger_and_the_wire() {
    let mut rig = boot();
    rig.client.append("property", &[b"a", b"b"]).unwrap();
    assert!(sim(&mut rig).inject_fault("psdb", "injected fault"));
    let err = rig.client.read("property", 0, 10).unwrap_err().to_string();
    let report = "SIM|ERROR: PD psdb faulted during a call from ledger_property: injected fault";
    assert!(err.contains(report), "{err}");
    assert!(
        rig.client.stream_mut().inbox.is_empty(),
        "no reply was made up"
    );
    let s = sim(&mut rig);
    assert_eq!(s.halted().as_deref(), Some(report));
    for pd in ["ledger_property", "wire"] {
        assert!(s.is_blocked(pd) && !s.is_running(pd), "{pd} is not blocked");
    }
    for pd in ["ledger_corporate", "ledger_personnel", "audit"] {
        assert!(s.is_running(pd), "{pd} stopped");
    }
}

/// A ledger (the wire's callee) faulting blocks the wire directly.
#[test]
fn a_ledger_fault_blocks_the_wire() {
    let mut rig = boot();
    rig.client.append("corporate", &[b"x"]).unwrap();
    sim(&mut rig).inject_fault("ledger_corporate", "bug");
    let err = rig.client.append("corporate", &[b"y"]).unwrap_err();
    assert!(
        err.to_string()
            .contains("SIM|ERROR: PD ledger_corporate faulted during a call from wire: bug"),
        "{err}"
    );
    assert!(sim(&mut rig).is_blocked("wire"));
    assert!(!sim(&mut rig).is_blocked("audit"));
    // The durable state is what it was: the second append never happened.
    let again = boot_on(rig.disk.clone());
    let mut c = again.client;
    assert_eq!(c.hello("corporate").unwrap().size, 1);
}

/// A compromised wire that writes a request for tenant B into ledger A's region gets
/// `WrongTenant`: nothing served, nothing appended, nothing audited, for either tenant.
#[test]
fn a_request_for_another_tenant_is_refused_by_the_ledger() {
    let mut rig = boot();
    rig.client.append("corporate", &[b"corp"]).unwrap();
    rig.client.append("personnel", &[b"pers"]).unwrap();
    let entries = {
        let mut buf = vec![0u8; 64];
        let mut len = 0;
        assert!(protocol::push_entry(&mut buf, &mut len, b"forged"));
        buf.truncate(len);
        buf
    };
    let ops = [
        protocol::Op::Append { entries: &entries },
        protocol::Op::Read { since: 0, max: 10 },
        protocol::Op::GetObject {
            path: "tile/entries/000.p/1",
            offset: 0,
        },
        protocol::Op::Checkpoint,
        protocol::Op::Hello,
    ];
    let s = sim(&mut rig);
    for (i, op) in ops.into_iter().enumerate() {
        let id = 900 + i as u64;
        let resp = s
            .as_pd("wire", || {
                let mut buf = vec![0u8; 1024];
                let n = protocol::Request {
                    id,
                    tenant: "personnel",
                    capability: &[],
                    op,
                }
                .encode(&mut buf)
                .unwrap();
                let region = wire_pd::REGIONS[0].get().unwrap(); // ledger_corporate's region
                region.write(0, &buf[..n]).unwrap();
                let req = ledger::Request {
                    call: ledger::Call::Request,
                    len: n,
                };
                let m: Message = req.encode().call(interface::wire::LEDGERS[0]);
                let Ok(ledger::Reply::Ok { len }) = ledger::Reply::decode(&req, m.info(), m.mrs())
                else {
                    panic!("{m:?}")
                };
                let mut out = vec![0u8; len];
                region.read(0, &mut out).unwrap();
                out
            })
            .unwrap();
        let r = Response::decode(&resp).unwrap();
        assert_eq!(r.id, id);
        assert!(
            matches!(
                r.body,
                protocol::Body::Error {
                    code: ErrorCode::WrongTenant
                }
            ),
            "op {i}: {:?}",
            r.body
        );
    }
    assert!(sim(&mut rig).halted().is_none());
    let c = &mut rig.client;
    assert_eq!(c.hello("corporate").unwrap().size, 1);
    assert_eq!(c.hello("personnel").unwrap().size, 1);
    assert_eq!(c.read("personnel", 0, 10).unwrap()[0].1, b"pers");
    assert_eq!(c.read("corporate", 0, 10).unwrap()[0].1, b"corp");
    // Only the two honest reads above are on the audit log (each: one request for the entry,
    // one that finds the end).
    assert_records(
        &audit_records(&rig.disk),
        &[
            "tenant=personnel op=read first=0 count=1".to_string(),
            "tenant=personnel op=read first=1 count=0".to_string(),
            "tenant=corporate op=read first=0 count=1".to_string(),
            "tenant=corporate op=read first=1 count=0".to_string(),
        ],
    );
}

/// Audit takes records only on its three ledger channels: a call arriving on any other channel
/// (here a wire -> audit channel added to the description, which system.xml does not have) is
/// refused and nothing is recorded, while the same record from a ledger is.
#[test]
fn audit_refuses_calls_on_a_non_ledger_channel() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../system.xml"))
        .unwrap()
        .replace(
            "</system>",
            r#"<channel>
        <end pd="wire" id="5" pp="true" notify="false" />
        <end pd="audit" id="5" notify="false" />
    </channel>
</system>"#,
        );
    let system = sysdesc::System::parse(&text).unwrap();
    let disk = Rc::new(RefCell::new(RamDevice::new(128 << 11)));
    let fail = Rc::new(Cell::new(false));
    let s = Sim::new(
        system,
        Disk::Shared(disk.clone(), fail.clone()),
        &keys(),
        false,
    )
    .unwrap();
    let record = interface::audit_call::encode(&interface::audit_call::Record {
        request: 7,
        kind: interface::audit_call::Kind::Read,
        first: 0,
        count: 1,
    });
    // From the wire, on its own channel to audit: refused (the record it would have written
    // sits in corporate's audit region, which a compromised ledger could fill).
    s.as_pd("ledger_corporate", || {
        ledger_pd::AUDIT.get().unwrap().write(0, &record).unwrap();
    })
    .unwrap();
    let call = audit::Request::Record { len: record.len() };
    let said = |m: Message| audit::Reply::decode(&call, m.info(), m.mrs());
    let r = s
        .as_pd("wire", || call.encode().call(Channel::new(5)))
        .unwrap();
    assert_eq!(said(r), Ok(audit::Reply::BadCall));
    assert!(audit_records(&disk).is_empty());
    // The same record from ledger_corporate on its channel is recorded, as corporate's.
    let r = s
        .as_pd("ledger_corporate", || {
            call.encode().call(interface::ledger::AUDIT)
        })
        .unwrap();
    assert_eq!(said(r), Ok(audit::Reply::Recorded { index: 0 }));
    assert_records(
        &audit_records(&disk),
        &["tenant=corporate op=read first=0 count=1".to_string()],
    );
    assert!(s.halted().is_none());
}

/// A tenant that fills its share of the disk (psdb's per-namespace quota, 28% of the disk for
/// each tenant): the append that does not fit gets `Full` (not a generic storage error),
/// nothing of it is acknowledged or visible, everything acknowledged before stays readable and
/// verifiable, and the other tenants keep appending and reading.
#[test]
fn a_full_tenant_gets_a_clear_error_and_loses_nothing() {
    let mut rig = boot_on(Rc::new(RefCell::new(RamDevice::new(12 << 11)))); // 12 MiB
    rig.client
        .append("personnel", &[b"personnel record"])
        .unwrap();
    let entry = vec![b'x'; 60_000];
    let batch: Vec<&[u8]> = vec![&entry; 2];
    let mut acked = 0u64;
    let err = loop {
        match rig.client.append("corporate", &batch) {
            Ok(idx) => {
                assert_eq!(idx, [acked, acked + 1]);
                acked += 2;
                assert!(acked < 1_000, "a 12 MiB disk never filled up");
            }
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, ClientError::Remote(ErrorCode::Full)),
        "{err:?}"
    );
    // Each checkpoint rewrites the growing partial bundle: 7 appends use about 3.4 MB.
    assert!(acked >= 10, "corporate was full after only {acked} entries");
    // Still full, still a clear error; nothing half-stored became visible.
    assert!(matches!(
        rig.client.append("corporate", &batch),
        Err(ClientError::Remote(ErrorCode::Full))
    ));
    assert_eq!(rig.client.hello("corporate").unwrap().size, acked);
    assert_eq!(
        rig.client.read("corporate", 0, 1_000).unwrap().len() as u64,
        acked
    );
    assert_eq!(export_and_verify(&mut rig.client, "corporate"), acked);
    // Another tenant's share is untouched.
    assert_eq!(
        rig.client
            .append("personnel", &[&b"more"[..], b"still"])
            .unwrap(),
        [1, 2]
    );
    // After a restart on the same disk, the same.
    let mut again = boot_on(rig.disk.clone());
    assert_eq!(again.client.hello("corporate").unwrap().size, acked);
    assert_eq!(again.client.read("personnel", 0, 10).unwrap().len(), 3);
}

/// What a fresh read-only mount of `disk` says namespace `ns` uses (disk bytes, index bytes).
fn stored_usage(disk: &Rc<RefCell<RamDevice>>, ns: &str) -> (u64, u64) {
    let image = disk.borrow().image().to_vec();
    let (mut store, _) =
        psdb::Store::mount(RamDevice::from_image(image), psdb::Mode::ReadOnly).unwrap();
    let h = store.open_namespace(ns).unwrap();
    let u = store.usage(h).unwrap();
    (u.disk_bytes, u.index_bytes)
}

/// `Status`: a tenant's figures grow with its appends and are what psdb has stored, another
/// tenant's do not move (only the shared volume's free bytes do), audit's grow with folds of
/// its journal (once per 256 audited reads) and not with appends or status requests (status
/// is not audited).
#[test]
fn status_reports_each_tenants_own_usage() {
    let mut rig = boot();
    let c0 = rig.client.status("corporate").unwrap();
    let p0 = rig.client.status("personnel").unwrap();
    // The ledger created its empty log at boot: its first checkpoint is stored.
    assert_eq!((c0.size, c0.damaged), (0, false));
    assert_eq!(
        (c0.disk_used, c0.index_used),
        stored_usage(&rig.disk, "corporate")
    );
    assert!(c0.disk_quota > 0 && c0.index_quota > 0 && c0.volume_free > 0);
    // Each tenant its share of the volume (28% of three), audit 16%.
    assert_eq!(p0.disk_quota, c0.disk_quota);
    let ratio = c0.disk_quota as f64 / c0.audit_disk_quota as f64;
    let want = psdb_pd::TENANT_SHARE_PERCENT as f64 / psdb_pd::AUDIT_SHARE_PERCENT as f64;
    assert!((ratio - want).abs() < 0.001, "{c0:?}");

    let entries: Vec<Vec<u8>> = (0..300)
        .map(|i| format!("entry {i}").into_bytes())
        .collect();
    rig.client.append("corporate", &entries).unwrap();
    let c1 = rig.client.status("corporate").unwrap();
    assert_eq!(c1.size, 300);
    assert!(c1.disk_used > c0.disk_used && c1.index_used > c0.index_used);
    assert!(c1.volume_free < c0.volume_free);
    assert_eq!(
        (c1.disk_quota, c1.index_quota, c1.audit_disk_used),
        (c0.disk_quota, c0.index_quota, c0.audit_disk_used)
    );
    assert_eq!(
        (c1.disk_used, c1.index_used),
        stored_usage(&rig.disk, "corporate")
    );
    // Another tenant's status: unchanged but for the volume's free bytes.
    let p1 = rig.client.status("personnel").unwrap();
    assert_eq!(
        protocol::client::Status {
            volume_free: p0.volume_free,
            ..p1
        },
        p0
    );
    assert_eq!(p1.volume_free, c1.volume_free);
    // A read is audited: its record goes into audit's journal, whose sectors were charged
    // when it was created, so audit's figures move once per 256 records (when a journal is
    // folded into the audit tlog and the next one created), not per read. Status requests
    // are not audited.
    let records = audit_records(&rig.disk).len();
    rig.client.read("corporate", 0, 10).unwrap();
    assert_eq!(audit_records(&rig.disk).len(), records + 1);
    let c2 = rig.client.status("corporate").unwrap();
    assert_eq!(c2.audit_disk_used, c1.audit_disk_used);
    for _ in records + 1..256 {
        rig.client.read("corporate", 0, 1).unwrap();
    }
    assert_eq!(rig.client.status("corporate").unwrap(), c2);
    rig.client.read("corporate", 0, 1).unwrap(); // the 257th record: a fold
    let c2 = rig.client.status("corporate").unwrap();
    assert!(
        c2.audit_disk_used > c1.audit_disk_used + 256 * 512,
        "{c2:?}"
    );
    assert_eq!(audit_records(&rig.disk).len(), 257);
    let c3 = rig.client.status("corporate").unwrap();
    assert_eq!(c3, c2);
    assert_eq!(
        c2.audit_disk_used,
        stored_usage(&rig.disk, interface::AUDIT_NAMESPACE).0
    );
    // More appends, more use.
    rig.client.append("corporate", &[b"one more"]).unwrap();
    let c4 = rig.client.status("corporate").unwrap();
    assert!(c4.size == 301 && c4.disk_used > c3.disk_used);
    assert_eq!(
        rig.client.status("personnel").unwrap().disk_used,
        p0.disk_used
    );
    // An unknown tenant is refused by the wire, as for any request.
    assert!(matches!(
        rig.client.status("nobody"),
        Err(ClientError::Remote(ErrorCode::UnknownTenant))
    ));
    let console = sim(&mut rig).console();
    assert!(problems(&console).is_empty(), "{console:?}");
}

/// The `psdb|WARN:` lines of a console for namespace `ns`'s disk quota.
fn disk_warnings(console: &[String], ns: &str) -> Vec<String> {
    let prefix = format!("psdb|WARN: namespace {ns} at ");
    console
        .iter()
        .filter(|l| l.starts_with(&prefix) && l.contains("of its disk quota"))
        .cloned()
        .collect()
}

/// A tenant filling its share of a small disk: one warning line when it passes 90% (naming the
/// figures its status shows), none per request after it, one more at 95%; at the next boot one
/// line again, at mount. No other namespace is named.
#[test]
fn a_tenant_past_90_percent_gets_one_warning_line() {
    let disk = Rc::new(RefCell::new(RamDevice::new(12 << 11))); // 12 MiB: quota about 3.5 MB
    let mut rig = boot_on(disk.clone());
    // Whole entry bundles per request (no partial bundle rewritten): about 2% of the quota
    // each, so no request jumps over a step.
    let bundle: Vec<Vec<u8>> = (0..256).map(|i| vec![b'a' + (i % 26) as u8; 200]).collect();
    let percent = |s: &protocol::client::Status| s.disk_used * 100 / s.disk_quota;
    let mut status = rig.client.status("corporate").unwrap();
    let mut requests = 0;
    while percent(&status) < 90 {
        rig.client.append("corporate", &bundle).unwrap();
        requests += 1;
        assert!(requests < 200, "never reached 90%");
        let before = status;
        status = rig.client.status("corporate").unwrap();
        assert!(
            percent(&status) - percent(&before) < 5,
            "{before:?} -> {status:?}"
        );
        if percent(&status) < 90 {
            assert!(disk_warnings(&sim(&mut rig).console(), "corporate").is_empty());
        }
    }
    let expected = format!(
        "psdb|WARN: namespace corporate at {}% of its disk quota ({}/{} bytes)",
        percent(&status),
        status.disk_used,
        status.disk_quota
    );
    assert!(percent(&status) < 95);
    assert_eq!(
        disk_warnings(&sim(&mut rig).console(), "corporate"),
        std::slice::from_ref(&expected)
    );
    // Requests that do not reach the next step print nothing more.
    rig.client.read("corporate", 0, 5).unwrap();
    rig.client.status("corporate").unwrap();
    rig.client.append("personnel", &[b"p"]).unwrap();
    let mut n = 0;
    while percent(&status) < 95 {
        assert_eq!(
            disk_warnings(&sim(&mut rig).console(), "corporate").len(),
            1
        );
        match rig.client.append("corporate", &bundle) {
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
        status = rig.client.status("corporate").unwrap();
        n += 1;
        assert!(n < 100);
    }
    let console = sim(&mut rig).console();
    let warned = disk_warnings(&console, "corporate");
    assert!(percent(&status) >= 95, "full before 95%: {status:?}");
    assert_eq!(warned.len(), 2, "{warned:?}");
    assert_eq!(warned[0], expected);
    assert!(warned[1].contains(&format!(" at {}% ", percent(&status))));
    // Only corporate is ever named.
    let all: Vec<&String> = console
        .iter()
        .filter(|l| l.contains("|WARN") && *l != NOT_PROVISIONED)
        .collect();
    assert_eq!(all.len(), warned.len(), "{all:?}");
    // The next boot names it once, at mount.
    drop(rig);
    let mut again = boot_on(disk);
    let console = sim(&mut again).console();
    let at_mount = disk_warnings(&console, "corporate");
    assert_eq!(
        at_mount,
        [format!(
            "psdb|WARN: namespace corporate at {}% of its disk quota ({}/{} bytes)",
            percent(&status),
            status.disk_used,
            status.disk_quota
        )]
    );
    // ... before the wire was ready: psdb mounts first.
    let ready = console.iter().position(|l| l == wire_ready()).unwrap();
    assert!(console.iter().position(|l| *l == at_mount[0]).unwrap() < ready);
    assert_eq!(again.client.status("corporate").unwrap(), status);
}

/// A tenant whose stored log is damaged still answers `Status`, flagged damaged; the other
/// tenants' are not.
#[test]
fn status_of_a_damaged_tenant_says_so() {
    let rig = boot_on(Rc::new(RefCell::new(RamDevice::new(16 << 11))));
    let disk = rig.disk.clone();
    drop(rig);
    {
        // A bit flipped in the manifest text of corporate's first batch (its empty log, written
        // at boot; later batches follow it).
        let mut d = disk.borrow_mut();
        let image = d.image_mut();
        let at = (0..image.len() / 512)
            .map(|s| s * 512)
            .find(|&at| {
                image[at..].starts_with(b".psdb/batch/")
                    && String::from_utf8_lossy(&image[at + 512..at + 1024]).contains("corporate/")
            })
            .unwrap();
        image[at + 600] ^= 0x20;
    }
    let mut rig = boot_on(disk);
    let s = rig.client.status("corporate").unwrap();
    assert!(s.damaged, "{s:?}");
    assert_eq!(s.size, 0);
    assert!(!rig.client.status("personnel").unwrap().damaged);
}

/// Boots the system with `keys` on a fresh disk; the client and the console.
fn boot_with(keys: &Keys) -> (protocol::client::Client<SimStream>, Vec<String>) {
    let disk = Rc::new(RefCell::new(RamDevice::new(32 << 11)));
    let sim = Sim::new(
        system(),
        Disk::Shared(disk, Rc::new(Cell::new(false))),
        keys,
        false,
    )
    .unwrap();
    let console = sim.console().to_vec();
    (protocol::client::Client::new(SimStream::new(sim)), console)
}

#[test]
fn a_ledger_that_cannot_start_refuses_and_the_other_tenants_carry_on() {
    // The image's own start-up (ledger_pd::LedgerImage), as seL4 runs it: personnel's ledger is
    // given corporate's key (another log's: it must never sign as personnel) and property's
    // ledger none at all.
    let wrong = keys().skey("corporate").unwrap().to_string();
    let k = keys()
        .with_key("personnel", Some(wrong))
        .with_key("property", None);
    let (mut c, console) = boot_with(&k);
    for t in ["personnel", "property"] {
        assert!(
            console
                .iter()
                .any(|l| l.starts_with(&format!("ledger_{t}|ERROR: not serving"))),
            "{t}: {console:?}"
        );
        for _ in 0..3 {
            assert!(
                matches!(
                    c.append(t, &[b"x"]),
                    Err(ClientError::Remote(ErrorCode::Unavailable))
                ),
                "{t}"
            );
            assert!(matches!(
                c.hello(t),
                Err(ClientError::Remote(ErrorCode::Unavailable))
            ));
        }
    }
    // Corporate is served as if nothing had happened, reads audited.
    assert_eq!(c.append("corporate", &[b"a", b"b"]).unwrap(), [0, 1]);
    assert_eq!(c.read("corporate", 0, 10).unwrap().len(), 2);
    assert_eq!(export_and_verify(&mut c, "corporate"), 2);
}

#[test]
fn an_audit_log_that_cannot_start_fails_reads_closed_and_appends_go_on() {
    let (mut c, console) = boot_with(&keys().with_key("audit", None));
    assert!(
        console
            .iter()
            .any(|l| l.starts_with("audit|ERROR: not serving")),
        "{console:?}"
    );
    for t in TENANTS {
        assert_eq!(c.append(t, &[b"kept"]).unwrap(), [0], "{t}");
        // No content leaves unaudited.
        assert!(c.read(t, 0, 1).is_err(), "{t}: read answered without audit");
    }
}
