//! The crash harness: run a workload once on a recording device, then rebuild the image a power
//! loss could leave at every write and flush boundary (and at every sector within the writes in
//! flight, with the next sector torn), mount each, and check the guarantees.

use psdb::fault::{apply_crash, Crash, FaultDevice, Op};
use psdb::{Mode, RamDevice, Store, SECTOR_SIZE};

use super::tartools::{check_tree, extract, sha256sum_check, TempDir};
use super::{opts, snapshot, tile_path, Model, Rng};

/// One flushed batch: the op range of its writes and flush, and the model after it.
#[derive(Debug)]
pub struct Batch {
    pub first_op: usize,
    pub flush_op: usize,
    pub after: Model,
}

/// A recorded run.
#[derive(Debug)]
pub struct Recording {
    pub initial: Vec<u8>,
    pub ops: Vec<Op>,
    pub batches: Vec<Batch>,
    pub puts: usize,
}

/// Runs a ledger-like workload of at least `min_puts` puts on a recording device.
pub fn record(min_puts: usize, seed: u64) -> Recording {
    let sectors = (min_puts as u64 * 3000 / 512).max(1 << 12);
    let store = Store::format(FaultDevice::new(sectors), opts()).unwrap();
    let initial = store.device().durable().to_vec();
    let mut dev = store.into_device();
    dev.record();
    let base = dev.ops() as usize;
    let (mut store, _) = Store::mount(dev, Mode::ReadWrite).unwrap();
    let mut rng = Rng(seed);
    let mut model = Model::default();
    let mut batches = Vec::new();
    let mut puts = 0;
    let names = ["tenant-a", "tenant-b", "audit"];
    let mut n = 0u64;
    while puts < min_puts {
        let first_op = store.device().ops() as usize - base;
        let count = 1 + rng.below(10);
        for _ in 0..count {
            let name = names[rng.below(3) as usize];
            let ns = store.open_namespace(name).unwrap();
            let size = match rng.below(10) {
                0 => 2000 + rng.below(7000),
                1 => 0,
                _ => rng.below(700),
            } as usize;
            let data = rng.bytes(size);
            let path = tile_path(
                &rng.below(3).to_string(),
                n,
                rng.below(2) * (1 + rng.below(255)),
            );
            n += 1;
            store.put(ns, &path, &data).unwrap();
            puts += 1;
            model
                .objects
                .entry(name.into())
                .or_default()
                .insert(path.clone(), data.clone());
            // Now and then the same bytes again (a no-op) and different bytes (refused).
            if rng.below(8) == 0 {
                store.put(ns, &path, &data).unwrap();
                assert_eq!(store.put(ns, &path, b"other"), Err(psdb::Error::Immutable));
                puts += 2;
            }
        }
        if rng.below(4) != 0 {
            let name = names[rng.below(3) as usize];
            let ns = store.open_namespace(name).unwrap();
            let cp = format!("example.com/{name}\n{n}\nroot-{}\n", rng.next()).into_bytes();
            store.put_checkpoint(ns, &cp).unwrap();
            puts += 1;
            model.checkpoints.insert(name.into(), cp);
        }
        store.flush().unwrap();
        let flush_op = store.device().ops() as usize - 1 - base;
        batches.push(Batch {
            first_op,
            flush_op,
            after: model.clone(),
        });
    }
    let mut dev = store.into_device();
    let ops = dev.take_log();
    // Crash images only need the written part plus room for the puts made after the crash.
    let used = ops
        .iter()
        .map(|op| match op {
            Op::Write { lba, data } => *lba as usize * SECTOR_SIZE + data.len(),
            Op::Flush => 0,
        })
        .max()
        .unwrap_or(0);
    let mut initial = initial;
    initial.truncate(used + (64 << 10));
    Recording {
        initial,
        ops,
        batches,
        puts,
    }
}

/// Totals of a sweep.
#[derive(Debug, Default)]
pub struct SweepStats {
    pub crash_points: usize,
    pub images: usize,
    pub discarded_tails: usize,
    pub inflight_survived: usize,
    pub tar_checks: usize,
}

/// Crashes at every op boundary of `rec`; `every_sector`: also at every sector of the writes in
/// flight with the next one torn; `tar_every`: extract every n-th repaired image with tar.
pub fn sweep(rec: &Recording, every_sector: bool, tar_every: usize) -> SweepStats {
    let mut stats = SweepStats::default();
    let mut durable = rec.initial.clone();
    let mut unflushed: Vec<(u64, [u8; SECTOR_SIZE])> = Vec::new();
    let empty = Model::default();
    for c in 0..=rec.ops.len() {
        // Ops [0, c) ran; the power fails before op c.
        let acked = rec
            .batches
            .iter()
            .rev()
            .find(|b| b.flush_op < c)
            .map_or(&empty, |b| &b.after);
        let inflight = rec
            .batches
            .iter()
            .find(|b| b.first_op < c && c <= b.flush_op)
            .map(|b| &b.after);
        let mut variants = vec![
            Crash::LoseAll,
            Crash::KeepAll,
            Crash::Random {
                seed: c as u64 * 7 + 1,
                torn: true,
            },
            Crash::Random {
                seed: c as u64 * 7 + 2,
                torn: false,
            },
        ];
        if every_sector {
            variants.extend((0..unflushed.len()).map(|n| Crash::Prefix { n, torn: true }));
        } else if !unflushed.is_empty() {
            variants.push(Crash::Prefix {
                n: c % unflushed.len(),
                torn: true,
            });
        }
        if unflushed.is_empty() {
            variants.truncate(1);
        }
        stats.crash_points += 1;
        for how in variants {
            let mut img = durable.clone();
            apply_crash(&mut img, &unflushed, how);
            let ctx = format!("crash before op {c} of {}, {how:?}", rec.ops.len());
            let (mut store, report) = Store::mount(RamDevice::from_image(img), Mode::ReadWrite)
                .unwrap_or_else(|e| panic!("{ctx}: mount failed: {e}"));
            let got = snapshot(&mut store);
            if &got != acked {
                assert!(Some(&got) == inflight, "{ctx}: neither the acknowledged state nor the batch in flight: {:?} vs {:?} {:?}", got.checkpoints, inflight.map(|m| &m.checkpoints), report);
                stats.inflight_survived += 1;
            }
            if report.problem.is_some() {
                assert!(report.repaired, "{ctx}");
                stats.discarded_tails += 1;
            }
            stats.images += 1;
            let check_tar = tar_every > 0 && stats.images % tar_every == 0;
            // New puts work and are durable.
            let ns = store.open_namespace("after-crash").unwrap();
            store
                .put(ns, "tile/0/000", b"written after the crash")
                .unwrap();
            store.put_checkpoint(ns, b"after\n").unwrap();
            store.flush().unwrap();
            let dev = store.into_device();
            let (mut store, report) = Store::mount(dev, Mode::ReadOnly).unwrap();
            assert_eq!(report.problem, None, "{ctx}");
            let mut expect = got.clone();
            expect
                .objects
                .entry("after-crash".into())
                .or_default()
                .insert("tile/0/000".into(), b"written after the crash".to_vec());
            expect
                .checkpoints
                .insert("after-crash".into(), b"after\n".to_vec());
            if check_tar {
                assert_eq!(snapshot(&mut store), expect, "{ctx}");
            } else {
                // The new objects are there and nothing else changed in the index (the full
                // read-back above already checked every byte of the rest).
                assert_eq!(report.objects as usize, expect.count(), "{ctx}");
                let ns = store.open_namespace("after-crash").unwrap();
                let mut out = Vec::new();
                assert!(store.get(ns, "tile/0/000", &mut out).unwrap());
                assert_eq!(out, b"written after the crash");
                assert!(store.checkpoint(ns, &mut out).unwrap());
                assert_eq!(out, b"after\n");
            }
            let dev = store.into_device();
            if check_tar {
                let dir = TempDir::new("sweep");
                let out = extract(dev.image(), &dir);
                check_tree(&out, &expect);
                assert!(sha256sum_check(&out).0, "{ctx}");
                stats.tar_checks += 1;
            }
        }
        if let Some(op) = rec.ops.get(c) {
            match op {
                Op::Write { lba, data } => {
                    for (k, s) in data.chunks_exact(SECTOR_SIZE).enumerate() {
                        let mut sector = [0u8; SECTOR_SIZE];
                        sector.copy_from_slice(s);
                        unflushed.push((lba + k as u64, sector));
                    }
                }
                Op::Flush => {
                    apply_crash(&mut durable, &unflushed, Crash::KeepAll);
                    unflushed.clear();
                }
            }
        }
    }
    stats
}
