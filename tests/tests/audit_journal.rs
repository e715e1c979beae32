//! The audit log through the whole simulated system (issue 7 part 2): audited reads cost under
//! 1 KiB of disk each on the default disk; a record is acknowledged only once it is durable
//! (a failed write refuses that read and loses nothing; power lost at any device operation
//! around a journal fold keeps every acknowledged record exactly once, in order); damage to a
//! journal record or a record planted in the raw disk makes audit refuse every record (reads
//! fail closed) while the tenants' own logs carry on; an audit log written before journals is
//! picked up where it was.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::rc::Rc;

use interface::audit_log::journal_path;
use protocol::client::{Client, ClientError};
use protocol::ErrorCode;
use psdb::fault::{Crash, Fault, FaultDevice};
use psdb::RamDevice;
use sim::{Disk, Sim};

mod common;
use common::*;

/// The default disk of `totebox-sim` (crates/sim/src/main.rs `--disk-size`): 256 MiB.
const DEFAULT_DISK_SECTORS: u64 = 256 << 11;

/// The audit record line of `read(property, first, 1)` without its index and request id.
fn read_record(first: u64) -> String {
    format!("tenant=property op=read first={first} count=1")
}

/// `line` less its `index=<i> ` and ` request=<id> outcome=granted` (checked).
fn what(line: &str) -> String {
    let rest = line.split_once(' ').unwrap().1;
    let (head, tail) = rest.split_once(" request=").unwrap();
    assert!(tail.ends_with(" outcome=granted"), "{line}");
    head.to_string()
}

fn usage_of(image: Vec<u8>, ns: &str) -> psdb::Usage {
    let (mut store, _) =
        psdb::Store::mount(RamDevice::from_image(image), psdb::Mode::ReadOnly).unwrap();
    let h = store.open_namespace(ns).unwrap();
    store.usage(h).unwrap()
}

fn audit_refused(r: Result<Vec<(u64, Vec<u8>)>, ClientError>) -> bool {
    matches!(r, Err(ClientError::Remote(ErrorCode::AuditFailed)))
}

/// 10,000 audited reads on the simulator's default disk: all granted, at most 1 KiB of audit
/// disk per record (psdb's own accounting of the audit namespace), and after a restart reads
/// go on with the indices continuing.
#[test]
fn ten_thousand_audited_reads_cost_under_1_kib_each_and_survive_a_restart() {
    const N: u64 = 10_000;
    let disk = Rc::new(RefCell::new(RamDevice::new(DEFAULT_DISK_SECTORS)));
    let mut rig = boot_on(disk.clone());
    rig.client
        .append("property", &[b"e0", b"e1", b"e2"])
        .unwrap();
    let before = rig.client.status("property").unwrap().audit_disk_used;
    for i in 0..N {
        let got = rig.client.read("property", i % 3, 1).unwrap();
        assert_eq!(
            got,
            [(i % 3, format!("e{}", i % 3).into_bytes())],
            "read {i}"
        );
    }
    let status = rig.client.status("property").unwrap();
    let after = status.audit_disk_used;
    assert_eq!(
        after,
        usage_of(disk.borrow().image().to_vec(), "audit").disk_bytes
    );
    let per = (after - before) as f64 / N as f64;
    let total = after as f64 / N as f64;
    println!(
        "{N} audited reads on a {} MiB disk: {per:.0} audit disk bytes per record ({} -> {} \
         bytes; {total:.0} per record counting the log's creation), audit quota {} bytes",
        DEFAULT_DISK_SECTORS >> 11,
        before,
        after,
        status.audit_disk_quota
    );
    assert!(per <= 1024.0 && total <= 1024.0, "{per} / {total}");
    let log = audit_log(&disk);
    assert_eq!(log.len() as u64, N);
    for (i, line) in &log {
        assert_eq!(what(line), read_record(i % 3));
    }
    // A restart: the pending records are picked up, the next one gets the next index, and a
    // fold after the restart (at 10,240) carries them into the tlog.
    drop(rig);
    let mut rig = boot_on(disk.clone());
    let console = sim(&mut rig).console();
    assert!(problems(&console).is_empty(), "{console:?}");
    for i in N..N + 300 {
        assert_eq!(rig.client.read("property", i % 3, 1).unwrap().len(), 1);
    }
    let log = audit_log(&disk);
    assert_eq!(log.len() as u64, N + 300);
    for (i, line) in &log {
        assert_eq!(what(line), read_record(i % 3));
    }
    assert_eq!(
        psdb::fsck(RamDevice::from_image(disk.borrow().image().to_vec()))
            .unwrap()
            .problem,
        None
    );
}

/// A client of the whole system with psdb on `dev`.
fn boot_faulty(dev: &Rc<RefCell<FaultDevice>>) -> Client<SimStream> {
    let sim = Sim::new(system(), Disk::Faulty(dev.clone()), &keys(), false).unwrap();
    Client::new(SimStream::new(sim))
}

/// A disk with property's 3 entries and `reads` audited reads of them, as a fault device.
fn faulty_disk(reads: u64) -> Rc<RefCell<FaultDevice>> {
    let disk = Rc::new(RefCell::new(RamDevice::new(16 << 11)));
    let mut rig = boot_on(disk.clone());
    rig.client
        .append("property", &[b"e0", b"e1", b"e2"])
        .unwrap();
    for i in 0..reads {
        rig.client.read("property", i % 3, 1).unwrap();
    }
    drop(rig);
    let image = disk.borrow().image().to_vec();
    Rc::new(RefCell::new(FaultDevice::from_image(image)))
}

/// One failed sector write or flush: that read is refused, nothing acknowledged is lost, and
/// the next read takes the slot; a write that fails and cannot be cleaned up stops records
/// until psdb mounts the disk again.
#[test]
fn a_failed_record_write_refuses_that_read_and_loses_nothing() {
    for fault in [
        Fault::FailWrite { persisted: false },
        Fault::FailWrite { persisted: true },
        Fault::FailFlush { persisted: false },
        Fault::FailFlush { persisted: true },
    ] {
        let dev = faulty_disk(5);
        let mut c = boot_faulty(&dev);
        let at = dev.borrow().ops() + u64::from(matches!(fault, Fault::FailFlush { .. }));
        dev.borrow_mut().inject(at, fault);
        assert!(audit_refused(c.read("property", 2, 1)), "{fault:?}");
        for i in 5..10 {
            assert_eq!(c.read("property", i % 3, 1).unwrap().len(), 1, "{fault:?}");
        }
        // Records 0..10 acknowledged, the refused one nowhere, on the medium as after a crash.
        for how in [Crash::LoseAll, Crash::KeepAll] {
            let log = audit_log_of(dev.borrow().crash(how).into_image());
            let got: Vec<String> = log.iter().map(|(_, l)| what(l)).collect();
            let want: Vec<String> = (0..10).map(|i| read_record(i % 3)).collect();
            assert_eq!(got, want, "{fault:?} {how:?}");
        }
    }
    // The write fails and so does zeroing its sector: no record until psdb remounts.
    let dev = faulty_disk(5);
    let mut c = boot_faulty(&dev);
    let at = dev.borrow().ops();
    dev.borrow_mut()
        .inject(at, Fault::FailWrite { persisted: false });
    dev.borrow_mut()
        .inject(at + 1, Fault::FailWrite { persisted: false });
    assert!(audit_refused(c.read("property", 2, 1)));
    assert!(audit_refused(c.read("property", 0, 1)));
    // The tenants' own writes are batches: they carry on.
    c.append("corporate", &[b"still writing"]).unwrap();
    drop(c);
    let image = dev.borrow().crash(Crash::KeepAll).into_image();
    let disk = Rc::new(RefCell::new(RamDevice::from_image(image)));
    let mut rig = boot_on(disk.clone());
    assert_eq!(rig.client.read("property", 0, 1).unwrap().len(), 1);
    let log = audit_log(&disk);
    let got: Vec<String> = log.iter().map(|(_, l)| what(l)).collect();
    let mut want: Vec<String> = (0..5).map(|i| read_record(i % 3)).collect();
    want.push(read_record(0));
    assert_eq!(got, want);
}

/// Power lost at each device operation of 12 reads that fill the first journal, fold it into
/// the audit tlog (one batch: entries, checkpoint, next journal) and go on in the next: after
/// the crash, whatever the device kept, every acknowledged record is in the audit log exactly
/// once and in order (at most the one in flight besides), and the box records on.
#[test]
fn power_lost_mid_journal_and_mid_fold_loses_no_acknowledged_record() {
    const BEFORE: u64 = 250;
    const READS: u64 = 12;
    let base = faulty_disk(BEFORE).borrow().durable().to_vec();
    let mut op = 0;
    let mut crashes = 0;
    loop {
        let dev = Rc::new(RefCell::new(FaultDevice::from_image(base.clone())));
        let mut c = boot_faulty(&dev);
        let start = dev.borrow().ops();
        dev.borrow_mut().inject(start + op, Fault::PowerLoss);
        let mut acked = 0;
        for i in BEFORE..BEFORE + READS {
            if c.read("property", i % 3, 1).is_ok() {
                assert_eq!(acked, i - BEFORE, "a read after the power loss was granted");
                acked += 1;
            }
        }
        drop(c);
        if acked == READS {
            break; // the power loss came after the last operation
        }
        for how in [
            Crash::LoseAll,
            Crash::KeepAll,
            Crash::Random {
                seed: op + 1,
                torn: false,
            },
            Crash::Random {
                seed: op + 100,
                torn: false,
            },
        ] {
            let ctx = format!("power lost at op +{op}, {acked} acknowledged, {how:?}");
            let image = dev.borrow().crash(how).into_image();
            let disk = Rc::new(RefCell::new(RamDevice::from_image(image)));
            let log = audit_log(&disk);
            let n = log.len() as u64;
            assert!(
                n == BEFORE + acked || n == BEFORE + acked + 1,
                "{ctx}: {n} records"
            );
            for (i, line) in &log {
                assert_eq!(what(line), read_record(i % 3), "{ctx}");
            }
            // The box boots on what the crash left and records on, with the next index.
            let mut rig = boot_on(disk.clone());
            assert_eq!(
                rig.client.read("property", n % 3, 1).unwrap().len(),
                1,
                "{ctx}"
            );
            let log = audit_log(&disk);
            assert_eq!(log.len() as u64, n + 1, "{ctx}");
            assert_eq!(what(&log[n as usize].1), read_record(n % 3), "{ctx}");
            crashes += 1;
        }
        op += 1;
    }
    // 12 records (a write and a flush each) and the fold's batch (three writes, two flushes).
    assert!(op >= 2 * READS + 5, "only {op} operations");
    println!("{crashes} crash images at {op} operations, every acknowledged record kept");
}

/// The disk offset of slot `slot` of `audit`'s journal `path`, and the volume id.
fn slot_offset(image: &[u8], path: &str, slot: u32) -> (usize, [u8; 16]) {
    let name = format!("audit/{path}");
    let mut at = 0;
    while image[at] != 0 {
        let h = &image[at..at + 512];
        let n = h[..100].iter().position(|&b| b == 0).unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&h[124..135]).unwrap(), 8).unwrap();
        if &h[..n] == name.as_bytes() {
            let (store, _) =
                psdb::Store::mount(RamDevice::from_image(image.to_vec()), psdb::Mode::ReadOnly)
                    .unwrap();
            return (at + 512 * (1 + slot as usize), store.volume_id());
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    panic!("no {name}");
}

/// Boots on `image` and checks that audit refuses to record (reads fail closed) with a
/// console line matching `reported`, while the tenants' own logs carry on.
fn refuses_records(image: Vec<u8>, reported: &str, ctx: &str) -> Rc<RefCell<RamDevice>> {
    let disk = Rc::new(RefCell::new(RamDevice::from_image(image)));
    let mut rig = boot_on(disk.clone());
    assert!(audit_refused(rig.client.read("property", 0, 1)), "{ctx}");
    assert!(audit_refused(rig.client.read("corporate", 0, 1)), "{ctx}");
    let console = sim(&mut rig).console();
    assert!(
        console.iter().any(|l| l.contains(reported)),
        "{ctx}: {console:?}"
    );
    // Appends and checkpoints are not audited: every tenant keeps writing and signing
    // (content, bundles included, stays behind the audit).
    for t in interface::TENANTS {
        let size = rig.client.hello(t).unwrap().size;
        assert_eq!(rig.client.append(t, &[b"after"]).unwrap(), [size], "{ctx}");
        let cp = rig.client.checkpoint(t).unwrap();
        let note = note::Note::parse(&cp).unwrap();
        note.verify(&[verifier(t)]).unwrap();
        assert!(note.text().contains(&format!("\n{}\n", size + 1)), "{ctx}");
    }
    assert!(audit_refused(
        rig.client
            .get_object("property", "tile/entries/000.p/4")
            .map(|_| Vec::new())
    ));
    assert!(sim(&mut rig).halted().is_none());
    disk
}

/// A byte flipped in a written journal record: psdb reports damage at mount, audit refuses to
/// record, the tenants carry on, the byte stays, fsck reports it.
#[test]
fn a_damaged_journal_record_makes_reads_fail_closed_and_stays_as_evidence() {
    let dev = faulty_disk(5);
    let image = dev.borrow().durable().to_vec();
    let (at, _) = slot_offset(&image, &journal_path(0), 3);
    let mut img = image.clone();
    img[at + 100] ^= 0x01;
    let flipped = img[at..at + 512].to_vec();
    let disk = refuses_records(img, "psdb|ERROR: namespace audit damaged", "flipped");
    let console_check = disk.borrow().image()[at..at + 512].to_vec();
    assert_eq!(
        console_check, flipped,
        "the damaged record was written over"
    );
    let fsck = psdb::fsck(RamDevice::from_image(disk.borrow().image().to_vec())).unwrap();
    let p = fsck.damage.expect("fsck reports it");
    assert_eq!(
        (p.offset, p.reason),
        (at as u64, psdb::Corruption::JournalRecord)
    );
}

/// Records planted in the raw disk, framed as psdb frames them (so psdb takes them for
/// records) but not signed by audit's key, or signed for another place: audit refuses them,
/// says so, folds nothing and records nothing more.
#[test]
fn a_planted_record_is_refused_and_reported() {
    let dev = faulty_disk(5);
    let image = dev.borrow().durable().to_vec();
    let (at, volume) = slot_offset(&image, &journal_path(0), 5);
    let line = "index=5 tenant=corporate op=read first=0 count=1 request=1 outcome=granted\n";
    let other = note::Signer::generate(&interface::keys::origin("audit"), &[9; 32]).unwrap();
    let audit = note::Signer::from_skey(keys().skey("audit").unwrap()).unwrap();
    let planted = [
        ("unsigned", line.to_string()),
        ("signed by another key", other.sign(line).unwrap()),
        (
            "signed for another index",
            audit.sign(&line.replace("index=5", "index=6")).unwrap(),
        ),
    ];
    for (what, data) in planted {
        let mut img = image.clone();
        let sector = psdb::journal::encode(&volume, 5, data.as_bytes()).unwrap();
        img[at..at + 512].copy_from_slice(&sector);
        // psdb sees a well-framed record: no damage.
        let fsck = psdb::fsck(RamDevice::from_image(img.clone())).unwrap();
        assert_eq!(fsck.problem, None, "{what}");
        let disk = refuses_records(img, "audit|ERROR: journal/0000000000000000 slot 5", what);
        // Nothing was folded or recorded: the tlog is still empty, the journal as planted.
        let (mut store, _) = psdb::Store::mount(
            RamDevice::from_image(disk.borrow().image().to_vec()),
            psdb::Mode::ReadOnly,
        )
        .unwrap();
        let ns = store.open_namespace("audit").unwrap();
        let stat = store.journal_stat(ns, &journal_path(0)).unwrap().unwrap();
        assert_eq!(stat.used, 6, "{what}");
        assert_eq!(disk.borrow().image()[at..at + 512], sector[..], "{what}");
    }
    // The same record, signed by audit's key at its own index, is one more record.
    let mut img = image;
    let sector = psdb::journal::encode(&volume, 5, audit.sign(line).unwrap().as_bytes()).unwrap();
    img[at..at + 512].copy_from_slice(&sector);
    let disk = Rc::new(RefCell::new(RamDevice::from_image(img)));
    let mut rig = boot_on(disk.clone());
    assert_eq!(rig.client.read("property", 0, 1).unwrap().len(), 1);
    assert_eq!(audit_log(&disk).len(), 7);
}

/// A disk from before journals (written by the v2 code: psdb/tests/data/README.md): its audit
/// log of four records is picked up, its first journal (for indices 4..256) created, and
/// reads go on from index 4, folding at 256.
#[test]
fn an_audit_log_from_before_journals_is_carried_on() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../psdb/tests/data/v2-box.img");
    let mut image = std::fs::read(path).unwrap();
    image.resize(4 << 20, 0);
    let disk = Rc::new(RefCell::new(RamDevice::from_image(image)));
    let mut rig = boot_on(disk.clone());
    assert!(!sim(&mut rig).console().iter().any(|l| l.contains("|ERROR")));
    let old = audit_log(&disk);
    assert_eq!(old.len(), 4);
    assert!(old[0]
        .1
        .starts_with("tenant=corporate op=read first=0 count=3 "));
    for i in 4..300u64 {
        assert_eq!(rig.client.read("corporate", i % 3, 1).unwrap().len(), 1);
    }
    let log = audit_log(&disk);
    assert_eq!(log.len(), 300);
    for (i, line) in &log[4..] {
        assert!(line.starts_with(&format!(
            "index={i} tenant=corporate op=read first={} count=1 ",
            i % 3
        )));
    }
    let (mut store, _) = psdb::Store::mount(
        RamDevice::from_image(disk.borrow().image().to_vec()),
        psdb::Mode::ReadOnly,
    )
    .unwrap();
    let ns = store.open_namespace("audit").unwrap();
    let journals: Vec<(String, u32)> = store
        .journals(ns)
        .unwrap()
        .map(|(p, n)| (p.to_string(), n))
        .collect();
    assert_eq!(journals, [(journal_path(4), 252), (journal_path(256), 256)]);
}
