//! The fault-injecting device: failed writes, failed flushes and short writes, each with its
//! data persisted or not, at every device operation of a workload. The store must never report
//! success for data that is not durable, never serve wrong bytes, and keep working.
// A panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use psdb::fault::{Crash, Fault, FaultDevice};
use psdb::{Mode, RamDevice, Store};

const FAULTS: [Fault; 6] = [
    Fault::FailWrite { persisted: false },
    Fault::FailWrite { persisted: true },
    Fault::FailFlush { persisted: false },
    Fault::FailFlush { persisted: true },
    Fault::ShortWrite { persisted: false },
    Fault::ShortWrite { persisted: true },
];

/// (namespace, path, bytes) puts.
type Puts = Vec<(&'static str, String, Vec<u8>)>;

/// One batch of the workload: puts and a checkpoint.
fn batch(rng: &mut Rng, b: u64) -> (Puts, (&'static str, Vec<u8>)) {
    let names = ["tenant-a", "tenant-b"];
    let puts = (0..1 + rng.below(4))
        .map(|k| {
            let n = if rng.below(4) == 0 {
                3000
            } else {
                rng.below(600)
            } as usize;
            (
                names[rng.below(2) as usize],
                tile_path("0", b * 10 + k, 0),
                rng.bytes(n),
            )
        })
        .collect();
    let ns = names[rng.below(2) as usize];
    (puts, (ns, format!("{ns}\n{b}\n").into_bytes()))
}

fn apply(model: &mut Model, puts: &[(&str, String, Vec<u8>)], cp: &(&str, Vec<u8>)) {
    for (ns, p, d) in puts {
        model
            .objects
            .entry(ns.to_string())
            .or_default()
            .insert(p.clone(), d.clone());
    }
    model.checkpoints.insert(cp.0.to_string(), cp.1.clone());
}

/// Runs 20 batches with `fault` at device op `at`; `retry`: flush again after a failure.
/// Returns the device and the acknowledged model, and the failed batch's model if a flush
/// failed and was not retried.
fn run(fault: Fault, at: u64, retry: bool) -> (FaultDevice, Model, Option<Model>, bool) {
    let mut store = Store::format(FaultDevice::new(1 << 12), opts()).unwrap();
    let mut dev = store.into_device();
    dev.inject(dev.ops() + at, fault);
    store = Store::mount(dev, Mode::ReadWrite).unwrap().0;
    let mut rng = Rng(at * 31 + 7);
    let mut acked = Model::default();
    let mut failed = false;
    for b in 0..20 {
        let (puts, cp) = batch(&mut rng, b);
        let ns = store.open_namespace(cp.0).unwrap();
        let mut next = acked.clone();
        apply(&mut next, &puts, &cp);
        // Puts write their members as they are staged (format v4), so a put can meet the
        // fault too: the batch is then discarded exactly as after a failed flush.
        let mut written = || {
            for (ns, p, d) in &puts {
                let ns = store.open_namespace(ns).unwrap();
                store.put(ns, p, d)?;
            }
            store.put_checkpoint(ns, &cp.1)?;
            store.flush()
        };
        match written() {
            Ok(()) => acked = next,
            Err(e) => {
                assert!(matches!(e, psdb::Error::Io(_)), "{e:?}");
                failed = true;
                // The failed batch is discarded: reads see what is durable, never a checkpoint
                // that may not reach the disk.
                assert_eq!(snapshot(&mut store), acked);
                if !retry {
                    return (store.into_device(), acked, Some(next), failed);
                }
                // The caller puts again what it still wants; the next flush writes all of it.
                assert_eq!(store.flush(), Ok(()), "nothing staged after a failed flush");
                for (ns, p, d) in &puts {
                    let ns = store.open_namespace(ns).unwrap();
                    store.put(ns, p, d).unwrap();
                }
                store.put_checkpoint(ns, &cp.1).unwrap();
                store.flush().unwrap();
                acked = next;
            }
        }
    }
    assert_eq!(snapshot(&mut store), acked);
    (store.into_device(), acked, None, failed)
}

#[test]
fn faults_at_every_operation() {
    let mut runs = 0;
    let mut failures = 0;
    for fault in FAULTS {
        for at in 0..62 {
            for retry in [true, false] {
                let (dev, acked, in_flight, failed) = run(fault, at, retry);
                failures += usize::from(failed);
                // Power loss now: whatever the device kept, every acknowledged object is there
                // and the failed batch is all there or not at all.
                for how in [
                    Crash::LoseAll,
                    Crash::KeepAll,
                    Crash::Random {
                        seed: at,
                        torn: true,
                    },
                ] {
                    let img: RamDevice = dev.crash(how);
                    let ctx = format!("{fault:?} at op {at}, retry {retry}, {how:?}");
                    let (mut s, _) =
                        Store::mount(img, Mode::ReadWrite).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                    let got = snapshot(&mut s);
                    assert!(got == acked || Some(&got) == in_flight.as_ref(), "{ctx}");
                    runs += 1;
                }
            }
        }
    }
    println!("fault injection: {runs} crash images after {failures} reported failures");
    assert!(failures > 150);
}

#[test]
fn fsync_failure_that_drops_the_cache_is_rewritten_on_retry() {
    // The write-back cache is lost with the failed flush (the Linux "fsyncgate" behaviour): a
    // retry must write the whole batch again, not just flush.
    let mut store = Store::format(FaultDevice::new(1 << 12), opts()).unwrap();
    let ns = store.open_namespace("t").unwrap();
    store.put(ns, "a", &[1; 5000]).unwrap();
    let mut dev = store.into_device();
    // The put's one write, the manifest's, the head's, then the flush.
    let op = dev.ops() + 3;
    dev.inject(op, Fault::FailFlush { persisted: false });
    let (mut store, _) = Store::mount(dev, Mode::ReadWrite).unwrap();
    let ns = store.open_namespace("t").unwrap();
    store.put(ns, "a", &[1; 5000]).unwrap();
    assert!(store.flush().is_err());
    assert!(
        !store.exists(ns, "a").unwrap(),
        "the failed batch is discarded"
    );
    store.put(ns, "a", &[1; 5000]).unwrap();
    store.flush().unwrap();
    let img = store.into_device().crash(Crash::LoseAll);
    let (mut s, report) = Store::mount(img, Mode::ReadOnly).unwrap();
    assert_eq!(report.problem, None);
    let ns = s.open_namespace("t").unwrap();
    let mut out = Vec::new();
    assert!(s.get(ns, "a", &mut out).unwrap());
    assert_eq!(out, [1; 5000]);
}

#[test]
fn failed_checkpoint_flush_leaves_readers_on_the_durable_checkpoint() {
    // A ledger commits checkpoint 2, the flush fails and nothing reaches the disk: whoever reads
    // the checkpoint next (the ledger reopening) must see checkpoint 1, the durable one, and
    // nothing the failed batch staged.
    for persisted in [false, true] {
        let mut store = Store::format(FaultDevice::new(1 << 12), opts()).unwrap();
        let ns = store.open_namespace("t").unwrap();
        store.put(ns, "tile/0/000.p/1", b"one").unwrap();
        store.put_checkpoint(ns, b"cp 1").unwrap();
        store.flush().unwrap();
        let before = store.stats();
        let mut dev = store.into_device();
        // A write per put, the manifest's, the head's, then the flush.
        let op = dev.ops() + 4;
        dev.inject(op, Fault::FailFlush { persisted });
        let (mut store, _) = Store::mount(dev, Mode::ReadWrite).unwrap();
        let ns = store.open_namespace("t").unwrap();
        store.put(ns, "tile/0/000.p/2", b"one two").unwrap();
        store.put_checkpoint(ns, b"cp 2").unwrap();
        assert!(matches!(store.flush(), Err(psdb::Error::Io(_))));
        let mut out = Vec::new();
        assert!(store.checkpoint(ns, &mut out).unwrap());
        assert_eq!(out, b"cp 1", "persisted {persisted}");
        assert!(!store.exists(ns, "tile/0/000.p/2").unwrap());
        assert_eq!(store.checkpoint_versions(ns).unwrap(), 1);
        assert_eq!(store.stats(), before);
        // The log goes on from checkpoint 1 with different entries: no write-once conflict.
        store.put(ns, "tile/0/000.p/2", b"one TWO").unwrap();
        store.put_checkpoint(ns, b"cp 2'").unwrap();
        store.flush().unwrap();
        let img = store.into_device().crash(Crash::LoseAll);
        let (mut s, report) = Store::mount(img, Mode::ReadOnly).unwrap();
        assert_eq!(report.problem, None);
        let ns = s.open_namespace("t").unwrap();
        assert!(s.checkpoint(ns, &mut out).unwrap());
        assert_eq!(out, b"cp 2'");
        assert_eq!(
            s.checkpoint_versions(ns).unwrap(),
            2,
            "the failed version is not on disk"
        );
        assert!(s.get(ns, "tile/0/000.p/2", &mut out).unwrap());
        assert_eq!(out, b"one TWO");
    }
}

#[test]
fn a_batch_that_failed_after_writing_leaves_nothing_before_the_next_is_written() {
    // The commit record of a batch lands, but its flush reports failure: the batch is refused
    // (never acknowledged). Its bytes, that record and the refused checkpoint, must be gone
    // before anything else is written at that offset, so that neither a stale record can vouch
    // for the next batch there nor a refused signed checkpoint stays on the disk.
    let mut store = Store::format(FaultDevice::new(1 << 12), opts()).unwrap();
    let ns = store.open_namespace("t").unwrap();
    store.put(ns, "tile/0/000.p/1", b"one").unwrap();
    store.put_checkpoint(ns, b"cp 1").unwrap();
    store.flush().unwrap();
    let mut dev = store.into_device();
    // A write per put; phase 1: manifest write, head write, flush; phase 2: record write,
    // flush (fails).
    let op = dev.ops() + 6;
    dev.inject(op, Fault::FailFlush { persisted: true });
    let (mut store, _) = Store::mount(dev, Mode::ReadWrite).unwrap();
    let ns = store.open_namespace("t").unwrap();
    store.put(ns, "tile/0/000.p/2", &[7; 5000]).unwrap();
    store.put_checkpoint(ns, b"REFUSED cp 2").unwrap();
    assert!(matches!(store.flush(), Err(psdb::Error::Io(_))));
    // Power lost now: the refused batch is whole and committed on the device; mount keeps it
    // (the outcome of a request that met a device error is left to mount) and loses nothing.
    let crashed = store.device().crash(Crash::KeepAll);
    let (mut s, report) = Store::mount(crashed, Mode::ReadOnly).unwrap();
    assert_eq!(report.damage, None);
    let mut out = Vec::new();
    let sns = s.open_namespace("t").unwrap();
    assert!(s.checkpoint(sns, &mut out).unwrap());
    assert!(out == b"cp 1" || out == b"REFUSED cp 2");
    // Not lost: the next (shorter) batch scrubs the failed one's range first.
    store.put(ns, "tile/0/000.p/2", b"one two").unwrap();
    store.put_checkpoint(ns, b"cp 2").unwrap();
    store.flush().unwrap();
    let img = store.into_device().crash(Crash::LoseAll).into_image();
    let find = |needle: &[u8]| img.windows(needle.len()).any(|w| w == needle);
    assert!(
        !find(b"REFUSED cp 2"),
        "the refused checkpoint is still on the disk"
    );
    assert!(
        !find(&[7; 64]),
        "the refused batch's object is still on the disk"
    );
    let commits = img
        .chunks(512)
        .filter(|b| b.starts_with(b".psdb/commit/0000000000000002"))
        .count();
    assert_eq!(commits, 1, "a stale commit record for batch 2 survived");
    let (mut s, report) = Store::mount(RamDevice::from_image(img), Mode::ReadOnly).unwrap();
    assert_eq!((report.problem, report.damage), (None, None));
    let ns = s.open_namespace("t").unwrap();
    assert!(s.checkpoint(ns, &mut out).unwrap());
    assert_eq!(out, b"cp 2");
}
