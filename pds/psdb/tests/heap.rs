//! The psdb PD's heap in the worst case: the index at its budget, a batch whose manifest is at
//! the PD's limit ([`psdb_pd::MAX_MANIFEST`]) holding the largest tlog object (an entry
//! bundle of 16,777,472 bytes, put in 64 KiB pieces as a ledger sends it), the piece buffer,
//! a flush, the largest object verified and read back by range, and a remount of that volume
//! (every manifest, the final batch verified), all counted by a
//! global allocator in this test binary (`microkit::host::CountingAlloc`). The peak must stay within system.xml's `heap_psdb`
//! ([`psdb_pd::HEAP_BYTES`], which the second test checks against system.xml).
//!
//! The counter charges a reallocation as a new block plus the old one (what a first-fit heap
//! needs when it cannot grow in place), so the figure is an upper bound of the bytes live;
//! `HEAP_MARGIN` (2 MiB) is what is left for first-fit fragmentation.
// A panic is how a test reports failure.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use microkit::host::CountingAlloc;

use psdb::{Error, FileDevice, Mode, Store, SECTOR_SIZE};
use psdb_pd::{HEAP_BYTES, HEAP_MARGIN, MAX_MANIFEST, MAX_OBJECT};
use tlog::tile::MAX_BUNDLE_SIZE;

#[global_allocator]
static COUNTING: CountingAlloc = CountingAlloc::new();

/// Resets the peak to what is live now and returns it (the baseline).
fn baseline() -> usize {
    COUNTING.reset_peak()
}

fn peak_since(base: usize) -> usize {
    COUNTING.peak().saturating_sub(base)
}

#[test]
fn worst_case_stays_within_heap_psdb() {
    let dir = std::env::temp_dir().join(format!("psdb-heap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("disk.img");
    let limits = psdb_pd::limits(HEAP_BYTES);
    let dev = FileDevice::create(&path, 2 << 30).unwrap();

    let base = baseline();
    let (mut store, _) = psdb_pd::open_store(dev).unwrap();
    assert_eq!(store.limits(), limits);
    let ns = store.open_namespace("corporate").unwrap();
    // The PD's object buffer, as init allocates it.
    let mut buf: Vec<u8> = Vec::new();
    buf.try_reserve_exact(MAX_OBJECT + 2 * SECTOR_SIZE).unwrap();

    // The index up to its budget, less room for the final batch (its staged objects are
    // charged 320 B + path each until it is flushed): tile-like 20-byte paths of empty objects
    // (the per-entry constant dominates), full manifests flushed as they fill.
    let reserve_for_last = 6 << 20;
    let mut k = 0u64;
    let tile = |level: u8, k: u64| {
        format!(
            "tile/{level}/x{:03}/x{:03}/{:03}",
            k / 1_000_000,
            k / 1000 % 1000,
            k % 1000
        )
    };
    while store.index_bytes_used() + reserve_for_last < limits.index_bytes {
        store.put(ns, &tile(0, k), b"").unwrap();
        k += 1;
    }
    store.flush().unwrap();
    // The final batch: the largest tlog object in pieces through the piece buffer, then small
    // objects until the manifest is at its limit (the batch flushes early), a checkpoint, a
    // flush.
    buf.resize(MAX_OBJECT, 0xa5);
    let big = MAX_BUNDLE_SIZE as u64;
    store.put_begin(ns, "bundle/big", big).unwrap();
    let mut left = big;
    while left > 0 {
        let n = left.min(MAX_OBJECT as u64) as usize;
        left = store.put_chunk(&buf[..n]).unwrap();
    }
    let before = store.stats().batches;
    let mut small = 0u64;
    while store.stats().batches == before {
        store.put(ns, &tile(2, small), b"").unwrap();
        small += 1;
    }
    // Each line: `#o 0\n`, 64 hex digits, two spaces, `corporate/` and the 20-byte path, `\n`.
    assert!(
        small * 102 + 4096 > MAX_MANIFEST,
        "{small} objects did not fill the manifest"
    );
    store
        .put_checkpoint(ns, b"example.com/log\n1\nroot\n")
        .unwrap();
    store.flush().unwrap();
    // The largest object verified, then read back by range into the piece buffer.
    assert!(store.verify(ns, "bundle/big").unwrap());
    let mut at = 0;
    while at < big {
        let c = store
            .read_at(ns, "bundle/big", at, &mut buf)
            .unwrap()
            .unwrap();
        assert!(c.verified && c.len > 0);
        at += c.len as u64;
    }
    // Then puts until the budget is reached: a clear error, not an exhausted heap.
    loop {
        match store.put(ns, &tile(1, k), b"") {
            Ok(()) => k += 1,
            Err(Error::IndexFull) => break,
            Err(e) => panic!("{e}"),
        }
    }
    store.flush().unwrap();
    let used = store.index_bytes_used();
    assert!(
        used + 1024 > limits.index_bytes,
        "{used} of {}",
        limits.index_bytes
    );
    let running = peak_since(base);
    drop(store);
    drop(buf);

    // Remount: every manifest, the index rebuilt at its budget, the final batch verified.
    let base = baseline();
    let dev = FileDevice::open(&path, true).unwrap();
    let (store, report) = Store::mount_with(dev, Mode::ReadWrite, limits).unwrap();
    assert_eq!(report.problem, None);
    assert_eq!(store.index_bytes_used(), used);
    let mounting = peak_since(base);
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();

    let mib = |b: usize| b as f64 / f64::from(1 << 20);
    println!(
        "heap_psdb {:.1} MiB; index budget {:.1} MiB ({} objects); peak running {:.1} MiB, \
         mounting {:.1} MiB",
        mib(HEAP_BYTES as usize),
        mib(limits.index_bytes as usize),
        k + small + 1,
        mib(running),
        mib(mounting)
    );
    let bound = (HEAP_BYTES - HEAP_MARGIN) as usize;
    assert!(running <= bound, "running peak {running} over {bound}");
    assert!(mounting <= bound, "mount peak {mounting} over {bound}");
}
