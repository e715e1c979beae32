//! The whole system in the simulator, end to end: three tenants appended to and read, their
//! logs exported and verified, malformed client input survived, isolation enforced at the
//! channel level, reads failing closed when audit cannot record them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::rc::Rc;

use interface::TENANTS;
use microkit::{set_mr, Channel, MessageInfo};
use protocol::client::{Client, ClientError};
use protocol::frame::encode_frame_vec;
use protocol::{ErrorCode, Response};
use psdb::RamDevice;
use sim::{Disk, Keys, Sim};

/// A byte stream to the simulated wire: what the client writes is fed to the wire, its
/// responses are read back.
struct SimStream {
    sim: Sim,
    inbox: VecDeque<u8>,
}

impl Read for SimStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.inbox.len());
        for b in buf.iter_mut().take(n) {
            *b = self.inbox.pop_front().unwrap();
        }
        Ok(n) // 0 = "connection closed": a request that got no answer fails the test
    }
}

impl Write for SimStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let inbox = &mut self.inbox;
        self.sim.feed(buf, &mut |b| inbox.extend(b));
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn system() -> sysdesc::System {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../system.xml")).unwrap();
    sysdesc::System::parse(&text).unwrap()
}

struct Rig {
    client: Client<SimStream>,
    disk: Rc<RefCell<RamDevice>>,
    fail: Rc<Cell<bool>>,
}

/// The test box's signing keys (the same on every boot, as the key files of a real box).
fn keys() -> Keys {
    Keys::from_seed(1)
}

fn verifier(log: &str) -> note::Verifier {
    keys().verifier(log).unwrap()
}

fn boot_on(disk: Rc<RefCell<RamDevice>>) -> Rig {
    let fail = Rc::new(Cell::new(false));
    let sim = Sim::new(
        system(),
        Disk::Shared(disk.clone(), fail.clone()),
        &keys(),
        false,
    )
    .unwrap();
    assert!(sim.console().iter().any(|l| l == wire_ready()));
    Rig {
        client: Client::new(SimStream {
            sim,
            inbox: VecDeque::new(),
        }),
        disk,
        fail,
    }
}

fn boot() -> Rig {
    boot_on(Rc::new(RefCell::new(RamDevice::new(128 << 11)))) // 128 MiB
}

fn wire_ready() -> &'static str {
    "WIRE|INFO: ready"
}

fn sim(rig: &mut Rig) -> &mut Sim {
    &mut rig.client.stream_mut().sim
}

/// tlog objects fetched from the box, as a verifier reads them.
struct Fetched(BTreeMap<String, Vec<u8>>);

impl tlog::ObjectReader for Fetched {
    type Error = std::convert::Infallible;
    fn read_object(&mut self, path: &str, out: &mut Vec<u8>) -> Result<bool, Self::Error> {
        out.clear();
        match self.0.get(path) {
            Some(b) => {
                out.extend_from_slice(b);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// Exports a tenant's log the way `totebox client export` does and verifies it from scratch.
fn export_and_verify(c: &mut Client<SimStream>, tenant: &str) -> u64 {
    let cp = c.get_object(tenant, "checkpoint").unwrap().unwrap();
    let text = std::str::from_utf8(&cp).unwrap();
    let size: u64 = text.lines().nth(1).unwrap().parse().unwrap();
    let mut objects = BTreeMap::new();
    objects.insert("checkpoint".to_string(), cp.clone());
    for tile in tlog::tile::tiles_for_size(size).chain(tlog::tile::entry_bundles_for_size(size)) {
        let path = tile.path().as_str().to_string();
        let data = c.get_object(tenant, &path).unwrap().unwrap();
        objects.insert(path, data);
    }
    let v = verifier(tenant);
    let origin = interface::keys::origin(tenant);
    let tree = tlog::verify_tree(&mut Fetched(objects), &cp, &[v]).unwrap();
    assert_eq!((tree.size, tree.origin.as_str()), (size, origin.as_str()));
    size
}

#[test]
fn three_tenants_append_read_export_verify() {
    let mut rig = boot();
    let c = &mut rig.client;
    c.ping().unwrap();
    let counts = [300usize, 5, 1];
    for (t, tenant) in TENANTS.iter().enumerate() {
        let hello = c.hello(tenant).unwrap();
        assert_eq!(hello.size, 0);
        assert_eq!(hello.vkey, verifier(tenant).vkey());
        let entries: Vec<Vec<u8>> = (0..counts[t])
            .map(|i| format!("{tenant} record {i}").into_bytes())
            .collect();
        // Two requests: indices continue across appends.
        let (a, b) = entries.split_at(counts[t] / 2);
        let mut idx = c.append(tenant, a).unwrap();
        idx.extend(c.append(tenant, b).unwrap_or_default());
        assert_eq!(idx, (0..counts[t] as u64).collect::<Vec<_>>());
    }
    for (t, tenant) in TENANTS.iter().enumerate() {
        let got = c.read(tenant, 0, u64::MAX).unwrap();
        assert_eq!(got.len(), counts[t]);
        for (i, (at, e)) in got.iter().enumerate() {
            assert_eq!(*at, i as u64);
            assert_eq!(e, format!("{tenant} record {i}").as_bytes());
        }
        assert_eq!(
            c.read(tenant, 3, 1).unwrap().len(),
            usize::from(counts[t] > 3)
        );
        let note = c.checkpoint(tenant).unwrap();
        let v = verifier(tenant);
        note::Note::parse(&note).unwrap().verify(&[v]).unwrap();
        assert_eq!(export_and_verify(c, tenant), counts[t] as u64);
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

    // Everything durable: the disk holds an audit namespace with one record per read and
    // bundle fetch, and each tenant's tree, as a fresh mount sees them.
    let image = rig.disk.borrow().image().to_vec();
    let (mut store, _) =
        psdb::Store::mount(RamDevice::from_image(image), psdb::Mode::ReadOnly).unwrap();
    let ns = store.open_namespace("audit").unwrap();
    let mut buf = Vec::new();
    assert!(store.checkpoint(ns, &mut buf).unwrap());
    let audit_size: u64 = std::str::from_utf8(&buf)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    // Per tenant: 1 full read (300 entries -> 3 requests for 300? no: one response holds them)
    // plus the single read and each bundle fetched: at least one record per read call.
    assert!(audit_size >= 6, "audit log has {audit_size} records");
    let bundle = store.get(ns, "tile/entries/000.p/1", &mut buf);
    assert!(bundle.unwrap());
    assert!(std::str::from_utf8(&buf[2..])
        .unwrap()
        .starts_with("tenant=corporate op=read first=0"));
}

#[test]
fn malformed_input_is_answered_and_the_wire_keeps_serving() {
    let mut rig = boot();
    rig.client.append("personnel", &[b"before"]).unwrap();
    let mut raw = |bytes: &[u8]| -> Vec<Result<Vec<u8>, protocol::FrameError>> {
        let s = sim(&mut rig);
        let mut out = Vec::new();
        s.feed(bytes, &mut |b| out.extend_from_slice(b));
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
    // Rejected by the wire itself: two bad frames, a non-request, an oversize, an unknown tenant.
    assert_eq!(sim(&mut rig).wire_stats().rejected, 5);
}

#[test]
fn the_kernel_rules_hold_in_the_simulator() {
    let mut rig = boot();
    rig.client.append("corporate", &[b"secret"]).unwrap();
    let s = sim(&mut rig);
    // The wire has no channel to psdb or audit: its channel ids above 3 do not exist, and a
    // ppcall on a channel the wire does have goes only to its ledger.
    let r = s
        .as_pd("wire", || Channel::new(4).pp_call(MessageInfo::new(1, 0)))
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
        assert_ne!(r.label(), interface::psdb_call::OK);
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
        console.contains("wire: ppcall on unknown channel 4"),
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
