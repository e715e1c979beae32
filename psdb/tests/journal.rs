//! Journals (format v3): creation in a batch, one-sector records durable on return, the full
//! and closed cases, what mount and fsck make of every sector (zero, record, damage), faults
//! and crashes around a record, and v2 volumes still mounting.
// A panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use psdb::fault::{Crash, Fault, FaultDevice};
use psdb::journal::{self, MAX_RECORD};
use psdb::{BlockDevice, Corruption, Error, JournalStat, Mode, RamDevice, Store, SECTOR_SIZE};

const VOLUME: [u8; 16] = *b"psdb-test-volume";

/// Offset of the header of the member called `name` (the last one of that name), walking the
/// image as tar does.
fn member_at(image: &[u8], name: &str) -> usize {
    let mut at = 0;
    let mut found = None;
    while at + 512 <= image.len() && image[at] != 0 {
        let h = &image[at..at + 512];
        let n = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
        let size = usize::from_str_radix(std::str::from_utf8(&h[124..135]).unwrap(), 8).unwrap();
        if &h[..n] == name.as_bytes() {
            found = Some(at);
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    found.unwrap_or_else(|| panic!("no member {name}"))
}

/// Offset of slot `slot` of journal `name` in `image`.
fn slot_at(image: &[u8], name: &str, slot: usize) -> usize {
    member_at(image, name) + 512 * (1 + slot)
}

fn record(i: u32) -> Vec<u8> {
    format!("record {i}\n").into_bytes()
}

#[test]
fn create_append_read_full_and_write_once() {
    let mut s = fresh(4096);
    let ns = s.open_namespace("audit").unwrap();
    let other = s.open_namespace("tenant").unwrap();
    let before = s.usage(ns).unwrap();
    s.put_journal(ns, "journal/0", 4).unwrap();
    // Staged: no record until its batch is flushed.
    assert_eq!(s.journal_append(ns, "journal/0", b"x"), Err(Error::Staged));
    assert_eq!(
        s.journal_stat(ns, "journal/0").unwrap(),
        Some(JournalStat { slots: 4, used: 0 })
    );
    s.flush().unwrap();
    // Charged whole at creation: the member (header and 4 sectors) and its manifest line.
    let created = s.usage(ns).unwrap();
    let line = "#j 2048  audit/journal/0\n".len() as u64;
    assert!(
        created.disk_bytes >= before.disk_bytes + 512 + 4 * 512 + line,
        "{created:?}"
    );
    assert_eq!(s.size(ns, "journal/0").unwrap(), Some(2048));
    let end = s.stats().end;
    for i in 0..4 {
        assert_eq!(s.journal_append(ns, "journal/0", &record(i)), Ok(i));
    }
    // Records take no new room: nothing appended to the stream, nothing charged.
    assert_eq!((s.stats().end, s.usage(ns).unwrap()), (end, created));
    assert_eq!(
        s.journal_append(ns, "journal/0", b"one more"),
        Err(Error::JournalFull)
    );
    let mut out = Vec::new();
    for i in 0..4 {
        assert!(s.journal_read(ns, "journal/0", i, &mut out).unwrap());
        assert_eq!(out, record(i));
    }
    assert!(!s.journal_read(ns, "journal/0", 4, &mut out).unwrap());
    assert!(out.is_empty());
    assert_eq!(
        s.journal_stat(ns, "journal/0").unwrap(),
        Some(JournalStat { slots: 4, used: 4 })
    );
    // Not an object, and objects are not journals.
    s.put(ns, "object", b"bytes").unwrap();
    s.flush().unwrap();
    assert_eq!(s.get(ns, "journal/0", &mut out), Err(Error::WrongKind));
    assert_eq!(s.put(ns, "journal/0", b""), Err(Error::Immutable));
    assert_eq!(s.journal_append(ns, "object", b"x"), Err(Error::WrongKind));
    assert_eq!(s.journal_append(ns, "absent", b"x"), Err(Error::WrongKind));
    assert_eq!(
        s.journal_read(ns, "object", 0, &mut out),
        Err(Error::WrongKind)
    );
    assert_eq!(s.journal_stat(ns, "absent"), Ok(None));
    // Write-once: the same journal again is a no-op, another at its path is refused.
    s.put_journal(ns, "journal/0", 4).unwrap();
    assert!(!s.has_staged());
    assert_eq!(s.put_journal(ns, "journal/0", 5), Err(Error::Immutable));
    assert_eq!(s.put_journal(ns, "object", 1), Err(Error::Immutable));
    assert_eq!(
        s.put_journal(ns, "journal/0/x", 1),
        Err(Error::PathConflict)
    );
    assert_eq!(s.put_journal(ns, "journal/z", 0), Err(Error::TooLarge));
    // A record is at most MAX_RECORD bytes, and a namespace's journal is its own.
    s.put_journal(ns, "journal/1", 2).unwrap();
    s.flush().unwrap();
    assert_eq!(
        s.journal_append(ns, "journal/1", &[b'x'; MAX_RECORD + 1]),
        Err(Error::TooLarge)
    );
    assert_eq!(
        s.journal_append(ns, "journal/1", &[b'x'; MAX_RECORD]),
        Ok(0)
    );
    assert_eq!(
        s.journal_append(other, "journal/1", b"x"),
        Err(Error::WrongKind)
    );
    let listed: Vec<(&str, u32)> = s.journals(ns).unwrap().collect();
    assert_eq!(listed, [("journal/0", 4), ("journal/1", 2)]);
    assert_eq!(s.latest_journal(ns).unwrap(), Some("journal/1"));
    assert_eq!(s.latest_journal(other).unwrap(), None);
    assert_eq!(psdb::fsck(s.into_device()).unwrap().problem, None);
}

#[test]
fn a_new_journal_closes_the_earlier_one_and_mount_finds_the_next_slot() {
    let mut s = fresh(4096);
    let ns = s.open_namespace("audit").unwrap();
    s.put_journal(ns, "journal/0", 8).unwrap();
    s.put(ns, "tile/0/000", b"tile").unwrap();
    s.flush().unwrap();
    for i in 0..3 {
        s.journal_append(ns, "journal/0", &record(i)).unwrap();
    }
    // A read-only mount and a read-write one both find slots 0..3 used.
    let image = s.into_device().into_image();
    for mode in [Mode::ReadOnly, Mode::ReadWrite] {
        let (mut s, report) = mount_ram(image.clone(), mode).unwrap();
        assert_eq!((report.problem, report.repaired), (None, false));
        let ns = s.open_namespace("audit").unwrap();
        assert_eq!(
            s.journal_stat(ns, "journal/0").unwrap(),
            Some(JournalStat { slots: 8, used: 3 })
        );
        if mode == Mode::ReadOnly {
            assert_eq!(
                s.journal_append(ns, "journal/0", b"x"),
                Err(Error::ReadOnly)
            );
        }
    }
    let (mut s, _) = mount_ram(image, Mode::ReadWrite).unwrap();
    let ns = s.open_namespace("audit").unwrap();
    assert_eq!(s.journal_append(ns, "journal/0", &record(3)), Ok(3));
    // A discarded batch's journal never was: the earlier one stays the latest.
    s.put_journal(ns, "journal/8", 4).unwrap();
    s.discard();
    assert_eq!(s.journal_stat(ns, "journal/8"), Ok(None));
    assert_eq!(s.journal_append(ns, "journal/0", &record(4)), Ok(4));
    // A flushed one closes it.
    s.put_journal(ns, "journal/8", 4).unwrap();
    s.flush().unwrap();
    assert_eq!(
        s.journal_append(ns, "journal/0", b"x"),
        Err(Error::JournalFull)
    );
    assert_eq!(s.journal_append(ns, "journal/8", &record(8)), Ok(0));
    let (mut s, report) = mount_ram(s.into_device().into_image(), Mode::ReadWrite).unwrap();
    assert_eq!(report.problem, None);
    let ns = s.open_namespace("audit").unwrap();
    assert_eq!(s.latest_journal(ns).unwrap(), Some("journal/8"));
    // The closed one is read and checked when asked about.
    assert_eq!(
        s.journal_stat(ns, "journal/0").unwrap(),
        Some(JournalStat { slots: 8, used: 5 })
    );
    assert_eq!(
        s.journal_stat(ns, "journal/8").unwrap(),
        Some(JournalStat { slots: 4, used: 1 })
    );
    assert_eq!(
        s.journal_append(ns, "journal/0", b"x"),
        Err(Error::JournalFull)
    );
    assert_eq!(s.journal_append(ns, "journal/8", &record(9)), Ok(1));
    let mut out = Vec::new();
    for (j, slot, want) in [
        ("journal/0", 4, 4),
        ("journal/8", 0, 8),
        ("journal/8", 1, 9),
    ] {
        assert!(s.journal_read(ns, j, slot, &mut out).unwrap());
        assert_eq!(out, record(want));
    }
}

/// One journal of 4 slots with records 0 and 1, and another namespace to write to.
fn two_records() -> Vec<u8> {
    let mut s = fresh(4096);
    let ns = s.open_namespace("audit").unwrap();
    s.put_journal(ns, "journal/0", 4).unwrap();
    s.flush().unwrap();
    s.journal_append(ns, "journal/0", &record(0)).unwrap();
    s.journal_append(ns, "journal/0", &record(1)).unwrap();
    let t = s.open_namespace("tenant").unwrap();
    s.put(t, "a", b"a").unwrap();
    s.flush().unwrap();
    s.into_device().into_image()
}

/// Mounts a damaged image read-write and checks: damage reported at `offset` for `reason`,
/// the journal's namespace refuses writes, the other namespace takes them, the damaged bytes
/// stay, and fsck reports it.
fn check_damage(image: Vec<u8>, offset: usize, reason: Corruption) {
    let damaged = image[offset..offset + 512].to_vec();
    let (mut s, report) = mount_ram(image, Mode::ReadWrite).unwrap();
    let p = report.damage.expect("damage reported");
    assert_eq!((p.offset, p.reason), (offset as u64, reason));
    assert_eq!(report.damaged, 1);
    let ns = s.open_namespace("audit").unwrap();
    assert_eq!(s.damage(ns).unwrap(), Some((p, false)));
    assert_eq!(s.journal_stat(ns, "journal/0"), Err(Error::Corrupt(p)));
    assert_eq!(
        s.journal_append(ns, "journal/0", b"x"),
        Err(Error::Damaged(p))
    );
    assert_eq!(s.put_journal(ns, "journal/4", 4), Err(Error::Damaged(p)));
    let t = s.open_namespace("tenant").unwrap();
    s.put(t, "b", b"b").unwrap();
    s.flush().unwrap();
    let image = s.into_device().into_image();
    assert_eq!(&image[offset..offset + 512], &damaged[..], "evidence kept");
    let fsck = psdb::fsck(RamDevice::from_image(image)).unwrap();
    assert_eq!(fsck.damage, Some(p));
}

#[test]
fn a_flipped_byte_in_a_record_is_damage_kept_and_reported() {
    let image = two_records();
    for (slot, byte) in [(0usize, 3usize), (1, 40), (1, 200), (0, 511)] {
        let mut img = image.clone();
        let at = slot_at(&img, "audit/journal/0", slot);
        img[at + byte] ^= 0x04;
        check_damage(img, at, Corruption::JournalRecord);
    }
    // A non-zero byte in a never-written slot: not a record, so damage too.
    let mut img = image.clone();
    let at = slot_at(&img, "audit/journal/0", 3);
    img[at + 100] = 1;
    check_damage(img, at, Corruption::JournalRecord);
}

#[test]
fn a_record_after_a_zero_sector_is_damage() {
    let image = two_records();
    // Record 0 wiped: record 1 follows a zero sector.
    let mut img = image.clone();
    let at = slot_at(&img, "audit/journal/0", 0);
    img[at..at + 512].fill(0);
    check_damage(img, at + 512, Corruption::JournalGap);
    // A well-framed record planted in slot 3, after the unwritten slot 2.
    let mut img = image.clone();
    let at = slot_at(&img, "audit/journal/0", 3);
    img[at..at + 512].copy_from_slice(&journal::encode(&VOLUME, 3, b"planted").unwrap());
    check_damage(img, at, Corruption::JournalGap);
    // A record for another slot, or of another volume, in the next free slot.
    for sector in [
        journal::encode(&VOLUME, 3, b"moved").unwrap(),
        journal::encode(b"another-volume!!", 2, b"stale").unwrap(),
    ] {
        let mut img = image.clone();
        let at = slot_at(&img, "audit/journal/0", 2);
        img[at..at + 512].copy_from_slice(&sector);
        check_damage(img, at, Corruption::JournalRecord);
    }
    // A well-framed record in the next free slot is a record (psdb cannot tell who wrote
    // it: what the records mean, and who may write them, is its user's to check).
    let mut img = image;
    let at = slot_at(&img, "audit/journal/0", 2);
    img[at..at + 512].copy_from_slice(&journal::encode(&VOLUME, 2, b"framed").unwrap());
    let (mut s, report) = mount_ram(img, Mode::ReadOnly).unwrap();
    assert_eq!(report.problem, None);
    let ns = s.open_namespace("audit").unwrap();
    let mut out = Vec::new();
    assert!(s.journal_read(ns, "journal/0", 2, &mut out).unwrap());
    assert_eq!(out, b"framed");
}

#[test]
fn damage_in_a_closed_journal_is_found_when_read_and_by_fsck() {
    let mut s = fresh(4096);
    let ns = s.open_namespace("audit").unwrap();
    s.put_journal(ns, "journal/0", 2).unwrap();
    s.flush().unwrap();
    s.journal_append(ns, "journal/0", &record(0)).unwrap();
    s.put_journal(ns, "journal/2", 2).unwrap();
    s.flush().unwrap();
    let mut img = s.into_device().into_image();
    let at = slot_at(&img, "audit/journal/0", 0);
    img[at + 80] ^= 1;
    // Mount checks the latest journal only; the closed one is checked when read.
    let (mut s, report) = mount_ram(img.clone(), Mode::ReadWrite).unwrap();
    assert_eq!(report.problem, None);
    let ns = s.open_namespace("audit").unwrap();
    let p = psdb::Problem {
        offset: at as u64,
        reason: Corruption::JournalRecord,
    };
    let mut out = Vec::new();
    assert_eq!(
        s.journal_read(ns, "journal/0", 0, &mut out),
        Err(Error::Corrupt(p))
    );
    assert_eq!(s.journal_stat(ns, "journal/0"), Err(Error::Corrupt(p)));
    assert_eq!(s.journal_append(ns, "journal/2", &record(2)), Ok(0));
    let fsck = psdb::fsck(RamDevice::from_image(img)).unwrap();
    assert_eq!((fsck.damage, fsck.damaged), (Some(p), 1));
}

/// A store on a fault device with a 4-slot journal and one record; the device's op counter.
fn faulty() -> (Store<FaultDevice>, psdb::Namespace, u64) {
    let mut s = Store::format(FaultDevice::new(4096), opts()).unwrap();
    let ns = s.open_namespace("audit").unwrap();
    s.put_journal(ns, "journal/0", 4).unwrap();
    s.flush().unwrap();
    s.journal_append(ns, "journal/0", &record(0)).unwrap();
    let ops = s.device().ops();
    (s, ns, ops)
}

#[test]
fn a_failed_record_is_zeroed_and_its_slot_reused() {
    for fault in [
        Fault::FailWrite { persisted: false },
        Fault::FailWrite { persisted: true },
        Fault::FailFlush { persisted: false },
        Fault::FailFlush { persisted: true },
    ] {
        let flush = matches!(fault, Fault::FailFlush { .. });
        let (s, _, ops) = faulty();
        // Op `ops` writes the record's sector, `ops + 1` flushes it.
        let mut dev = s.into_device();
        dev.inject(ops + u64::from(flush), fault);
        let (mut s, _) = Store::mount(dev, Mode::ReadWrite).unwrap();
        let ns2 = s.open_namespace("audit").unwrap();
        let r = s.journal_append(ns2, "journal/0", &record(1));
        assert!(matches!(r, Err(Error::Io(_))), "{fault:?}: {r:?}");
        // Nothing of it stays: not in what reads see, not on the medium.
        let mut out = Vec::new();
        assert!(!s.journal_read(ns2, "journal/0", 1, &mut out).unwrap());
        for how in [Crash::LoseAll, Crash::KeepAll] {
            let img = s.device().crash(how).into_image();
            let (mut m, report) = mount_ram(img, Mode::ReadOnly).unwrap();
            assert_eq!(report.problem, None, "{fault:?}");
            let h = m.open_namespace("audit").unwrap();
            assert_eq!(
                m.journal_stat(h, "journal/0").unwrap(),
                Some(JournalStat { slots: 4, used: 1 }),
                "{fault:?} {how:?}"
            );
        }
        // The next record takes the slot.
        assert_eq!(s.journal_append(ns2, "journal/0", &record(2)), Ok(1));
        assert!(s.journal_read(ns2, "journal/0", 1, &mut out).unwrap());
        assert_eq!(out, record(2));
    }
}

#[test]
fn a_failed_record_that_cannot_be_zeroed_halts_records_until_remount() {
    for persisted in [false, true] {
        let (s, _, ops) = faulty();
        let mut dev = s.into_device();
        // The record's write fails, then the zeroing write too.
        dev.inject(ops, Fault::FailWrite { persisted });
        dev.inject(ops + 1, Fault::FailWrite { persisted: false });
        let (mut s, _) = Store::mount(dev, Mode::ReadWrite).unwrap();
        let ns = s.open_namespace("audit").unwrap();
        assert!(matches!(
            s.journal_append(ns, "journal/0", &record(1)),
            Err(Error::Io(_))
        ));
        assert_eq!(
            s.journal_append(ns, "journal/0", &record(2)),
            Err(Error::JournalHalted)
        );
        // Batches still work; the next mount takes records again, after the failed one if
        // it reached the disk (a record never acknowledged: keeping it loses nothing).
        let t = s.open_namespace("tenant").unwrap();
        s.put(t, "a", b"a").unwrap();
        s.flush().unwrap();
        let img = s.device().crash(Crash::KeepAll).into_image();
        let (mut s, report) = mount_ram(img, Mode::ReadWrite).unwrap();
        assert_eq!(report.problem, None);
        let ns = s.open_namespace("audit").unwrap();
        let next = 1 + u32::from(persisted);
        assert_eq!(s.journal_append(ns, "journal/0", &record(3)), Ok(next));
    }
}

#[test]
fn power_lost_around_a_record_keeps_it_or_never_had_it() {
    for at in 0..2 {
        let (s, _, ops) = faulty();
        let mut dev = s.into_device();
        dev.inject(ops + at, Fault::PowerLoss);
        let (mut s, _) = Store::mount(dev, Mode::ReadWrite).unwrap();
        let ns = s.open_namespace("audit").unwrap();
        assert!(s.journal_append(ns, "journal/0", &record(1)).is_err());
        for (how, used) in [(Crash::LoseAll, 1), (Crash::KeepAll, 1 + at as u32)] {
            let img = s.device().crash(how).into_image();
            let (mut m, report) = mount_ram(img, Mode::ReadWrite).unwrap();
            assert_eq!(report.problem, None, "op +{at} {how:?}");
            let h = m.open_namespace("audit").unwrap();
            assert_eq!(
                m.journal_stat(h, "journal/0").unwrap(),
                Some(JournalStat { slots: 4, used }),
                "op +{at} {how:?}"
            );
            assert_eq!(m.journal_append(h, "journal/0", &record(9)), Ok(used));
        }
    }
    // A torn sector (half a record: what an atomic sector write never leaves) is damage.
    let (s, _, ops) = faulty();
    let mut dev = s.into_device();
    dev.inject(ops + 1, Fault::PowerLoss);
    let (mut s, _) = Store::mount(dev, Mode::ReadWrite).unwrap();
    let ns = s.open_namespace("audit").unwrap();
    // A record longer than half a sector, so the torn half holds part of it.
    assert!(s
        .journal_append(ns, "journal/0", &[b'r'; MAX_RECORD])
        .is_err());
    let img = s
        .device()
        .crash(Crash::Prefix { n: 0, torn: true })
        .into_image();
    let (_, report) = mount_ram(img, Mode::ReadOnly).unwrap();
    assert_eq!(
        report.damage.map(|p| p.reason),
        Some(Corruption::JournalRecord)
    );
}

/// A crash at any point of the batch that creates a journal leaves either no journal or an
/// empty, whole one, never damage; stale bytes where the journal goes (an older volume's)
/// make a crashed batch torn, not damaged.
#[test]
fn a_crash_while_creating_a_journal_is_a_torn_tail_never_damage() {
    let mut rng = Rng(7);
    let stale: Vec<u8> = rng.bytes(4096 * SECTOR_SIZE);
    let base = {
        let mut d = FaultDevice::from_image(stale.clone());
        let mut s = Store::format(&mut d, opts()).unwrap();
        let ns = s.open_namespace("audit").unwrap();
        s.put(ns, "first", b"first").unwrap();
        s.flush().unwrap();
        drop(s);
        d.durable().to_vec()
    };
    let mut outcomes = [0usize; 2];
    for (op, with_object) in (0..6).flat_map(|op| [(op, false), (op, true)]) {
        let random = (1..=40).map(|seed| Crash::Random { seed, torn: false });
        let fixed = [
            Crash::LoseAll,
            Crash::KeepAll,
            Crash::Prefix { n: 1, torn: false },
            Crash::Prefix { n: 3, torn: false },
        ];
        for how in fixed.into_iter().chain(random) {
            let mut dev = FaultDevice::from_image(base.clone());
            dev.inject(op, Fault::PowerLoss);
            let (mut s, _) = Store::mount(dev, Mode::ReadWrite).unwrap();
            let ns = s.open_namespace("audit").unwrap();
            // Members are written as they are put (format v4): the power may fail there too.
            let mut r = s.put_journal(ns, "journal/0", 4);
            if with_object && r.is_ok() {
                r = s.put(ns, "second", b"second");
            }
            let acked = r.and_then(|()| s.flush()).is_ok();
            let img = s.device().crash(how).into_image();
            let (mut m, report) = mount_ram(img, Mode::ReadWrite).unwrap();
            assert_eq!(report.damage, None, "op {op} {how:?}");
            let h = m.open_namespace("audit").unwrap();
            let stat = m.journal_stat(h, "journal/0").unwrap();
            if acked {
                assert!(stat.is_some());
            }
            match stat {
                Some(st) => {
                    assert_eq!(st, JournalStat { slots: 4, used: 0 });
                    assert_eq!(m.journal_append(h, "journal/0", b"r"), Ok(0));
                    outcomes[1] += 1;
                }
                None => {
                    // The torn batch is gone and the store writes after it.
                    m.put_journal(h, "journal/0", 4).unwrap();
                    m.flush().unwrap();
                    assert_eq!(m.journal_append(h, "journal/0", b"r"), Ok(0));
                    outcomes[0] += 1;
                }
            }
            let fsck = psdb::fsck(m.into_device()).unwrap();
            assert_eq!(fsck.problem, None, "op {op} {how:?}");
        }
    }
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

/// A volume written by the v2 code (commit 3ad35f9: the whole simulated system, three
/// tenants and an audit log of four records; see tests/data/README.md) mounts, verifies and
/// takes v4 batches with journals after its v2 ones.
#[test]
fn a_v2_volume_mounts_and_grows_in_v4() {
    let mut image = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/v2-box.img"
    ))
    .unwrap();
    assert!(image[512..].starts_with(b"#psdb-batch v2 seq=0 "));
    image.resize(4 << 20, 0);
    assert_eq!(
        psdb::fsck(RamDevice::from_image(image.clone()))
            .unwrap()
            .problem,
        None
    );
    let (mut s, report) = mount_ram(image, Mode::ReadWrite).unwrap();
    assert_eq!(report.problem, None);
    let names: Vec<&str> = s.namespaces().collect();
    assert_eq!(names, ["audit", "corporate", "personnel", "property"]);
    let ns = s.open_namespace("audit").unwrap();
    assert_eq!(s.journals(ns).unwrap().count(), 0);
    let mut out = Vec::new();
    assert!(s.get(ns, "tile/entries/000.p/4", &mut out).unwrap());
    assert!(s.checkpoint(ns, &mut out).unwrap());
    assert!(std::str::from_utf8(&out).unwrap().contains("\n4\n"));
    let end = s.stats().end as usize;
    s.put_journal(ns, "journal/0000000000000004", 252).unwrap();
    s.flush().unwrap();
    assert_eq!(
        s.journal_append(ns, "journal/0000000000000004", b"r"),
        Ok(0)
    );
    let image = s.into_device().into_image();
    assert!(image[end..].starts_with(b".psdb/head/000000000000000b"));
    assert!(image[end + 512..].starts_with(b"#psdb-head v4 seq=11 "));
    assert_eq!(
        psdb::fsck(RamDevice::from_image(image.clone()))
            .unwrap()
            .problem,
        None
    );
    let (mut s, report) = mount_ram(image, Mode::ReadOnly).unwrap();
    assert_eq!(report.problem, None);
    let ns = s.open_namespace("audit").unwrap();
    assert_eq!(
        s.journal_stat(ns, "journal/0000000000000004").unwrap(),
        Some(JournalStat {
            slots: 252,
            used: 1
        })
    );
}

/// What an auditor with tar sees: the journal is a file of its slots, records as text between
/// zeros (`tr -d '\000'` shows them), and `sha256sum -c` of the manifests skips it.
#[test]
fn tar_extracts_a_journal_as_its_records() {
    let mut s = fresh(4096);
    let ns = s.open_namespace("audit").unwrap();
    s.put_journal(ns, "journal/0", 3).unwrap();
    s.put(ns, "object", b"object").unwrap();
    s.flush().unwrap();
    s.journal_append(ns, "journal/0", b"index=0 first record")
        .unwrap();
    s.journal_append(ns, "journal/0", b"index=1 second record")
        .unwrap();
    let mut dev = s.into_device();
    let mut image = vec![0u8; dev.sector_count() as usize * SECTOR_SIZE];
    dev.read(0, &mut image).unwrap();
    let dir = tartools::TempDir::new("journal-tar");
    let path = dir.0.join("disk.img");
    std::fs::write(&path, &image).unwrap();
    let out = dir.0.join("out");
    std::fs::create_dir(&out).unwrap();
    let tar = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&path)
        .arg("-C")
        .arg(&out)
        .output()
        .unwrap();
    assert!(tar.status.success() && tar.stderr.is_empty(), "{tar:?}");
    let j = std::fs::read(out.join("audit/journal/0")).unwrap();
    assert_eq!(j.len(), 3 * 512);
    let text: Vec<u8> = j.iter().copied().filter(|&b| b != 0).collect();
    let text = String::from_utf8(text).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(lines[0].starts_with("#psdb-jrec v1 volume=") && lines[0].ends_with(" slot=0 len=20"));
    assert_eq!(lines[1], "index=0 first record");
    assert!(lines[2].starts_with("#end "));
    assert_eq!(lines[4], "index=1 second record");
    let sums = std::process::Command::new("sh")
        .arg("-c")
        .arg("cat .psdb/batch/*.sha256 | sha256sum -c --strict --quiet")
        .current_dir(&out)
        .output()
        .unwrap();
    assert!(sums.status.success(), "{sums:?}");
}

/// A volume written by the v3 code (commit dc8752b, the last before format v4: two namespaces,
/// three batches, checkpoints, a journal with two records; see tests/data/README.md) mounts,
/// verifies, takes records in its journal and v4 batches after its v3 ones, and the mixed
/// chain mounts and checks clean.
#[test]
fn a_v3_volume_mounts_and_grows_in_v4() {
    let mut image = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/v3-store.img"
    ))
    .unwrap();
    assert!(image[512..].starts_with(b"#psdb-batch v3 seq=0 "));
    image.resize(1 << 20, 0);
    assert_eq!(
        psdb::fsck(RamDevice::from_image(image.clone()))
            .unwrap()
            .problem,
        None
    );
    let (mut s, report) = mount_ram(image, Mode::ReadWrite).unwrap();
    assert_eq!(
        (report.problem, report.batches, report.objects),
        (None, 4, 7)
    );
    let ns = s.open_namespace("audit").unwrap();
    let j = "journal/0000000000000001";
    assert_eq!(
        s.journal_stat(ns, j).unwrap(),
        Some(JournalStat { slots: 8, used: 2 })
    );
    let mut out = Vec::new();
    assert!(s.journal_read(ns, j, 1, &mut out).unwrap());
    assert_eq!(out, b"record one");
    assert!(s.checkpoint(ns, &mut out).unwrap());
    assert_eq!(out, b"example.com/audit\n3\nroot2\n");
    assert!(s.get(ns, "tile/0/002", &mut out).unwrap());
    assert_eq!(out.len(), 619, "(2 * 301 + 17) % 900 bytes");
    assert_eq!(s.journal_append(ns, j, b"record two"), Ok(2));
    let end = s.stats().end as usize;
    let t = s.open_namespace("tenant-a").unwrap();
    s.put(t, "tile/0/003", &[3; 1500]).unwrap();
    s.put_checkpoint(t, b"example.com/tenant-a\n4\nroot3\n")
        .unwrap();
    s.flush().unwrap();
    let image = s.into_device().into_image();
    assert!(image[end + 512..].starts_with(b"#psdb-head v4 seq=4 "));
    let f = psdb::fsck(RamDevice::from_image(image.clone())).unwrap();
    assert_eq!((f.problem, f.batches), (None, 5));
    let (mut s, report) = mount_ram(image, Mode::ReadOnly).unwrap();
    assert_eq!((report.problem, report.objects), (None, 8));
    let ns = s.open_namespace("audit").unwrap();
    assert_eq!(
        s.journal_stat(ns, j).unwrap(),
        Some(JournalStat { slots: 8, used: 3 })
    );
    let t = s.open_namespace("tenant-a").unwrap();
    assert!(s.get(t, "tile/0/003", &mut out).unwrap());
    assert_eq!(out, [3; 1500]);
    assert!(s.checkpoint(t, &mut out).unwrap());
    assert_eq!(out, b"example.com/tenant-a\n4\nroot3\n");
    assert!(s.get(t, "tile/0/000", &mut out).unwrap());
    assert_eq!(out.len(), 17);
}
