//! The index at its budget under a counting allocator: what it really holds must stay within
//! what it is charged ([`INDEX_ENTRY_BYTES`] + path per object, [`NAMESPACE_BYTES`] per
//! namespace), for tlog-tiles paths put in log order and for the longest paths put in random
//! order (which splits pages), after a remount too. Prints bytes per object.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{tile_path, Rng};
use microkit::host::CountingAlloc;
use psdb::store::{Limits, INDEX_ENTRY_BYTES, NAMESPACE_BYTES};
use psdb::{Error, FormatOptions, Mode, RamDevice, Store};

#[global_allocator]
static COUNTING: CountingAlloc = CountingAlloc::new();

/// Paths the ledger writes, in the order it writes them: per 256 entries the entry bundle and
/// the level-0 tile, level-1 partials, now and then a full level-1 tile.
fn tlog_paths() -> impl Iterator<Item = String> {
    (0u64..).flat_map(|b| {
        let mut v = vec![tile_path("entries", b, 0), tile_path("0", b, 0)];
        if (b + 1) % 256 == 0 {
            v.push(tile_path("1", b / 256, 0));
        } else {
            v.push(tile_path("1", b / 256, (b + 1) % 256));
        }
        v
    })
}

/// The longest paths a namespace `t` allows (`t/<path>` is 99 bytes), in random order.
fn long_paths() -> impl Iterator<Item = String> {
    let mut rng = Rng(99);
    (0u64..).map(move |_| {
        let head = format!("{:016x}/{:016x}/", rng.next(), rng.next());
        let mut p = head.clone();
        while p.len() < 97 {
            p.push('z');
        }
        p
    })
}

/// Fills an index of `budget` bytes with `paths` (empty objects); checks the heap the store
/// holds beyond its fixed buffers against what it charged, then again after a remount.
fn fill(budget: u64, paths: impl Iterator<Item = String>, what: &str) {
    let limits = Limits {
        index_bytes: budget,
        ..Limits::UNLIMITED
    };
    let opts = FormatOptions {
        volume_id: *b"index-memory-vol",
        max_batch_bytes: 1 << 20,
    };
    let dev = RamDevice::new(200_000 * 8);
    let mut s = Store::format_with(dev, opts, limits).unwrap();
    let ns = s.open_namespace("t").unwrap();
    // The store's own buffers (manifest lines, write buffer) exist from the first put.
    s.put(ns, "first", b"").unwrap();
    s.flush().unwrap();
    let (live0, charged0) = (COUNTING.live(), s.index_bytes_used());
    let mut n = 0u64;
    let mut path_bytes = 0u64;
    for p in paths {
        match s.put(ns, &p, b"") {
            Ok(()) => {
                n += 1;
                path_bytes += p.len() as u64;
            }
            Err(Error::IndexFull) => break,
            Err(e) => panic!("{what}: {e} after {n}"),
        }
    }
    s.flush().unwrap();
    let used = s.index_bytes_used();
    assert!(
        used <= budget && used + 1024 > budget,
        "{what}: filled to the budget"
    );
    let live = COUNTING.live() - live0;
    let charged = used - charged0;
    let per = |b: usize| (b as f64 - path_bytes as f64) / n as f64;
    println!(
        "{what}: {n} objects, {:.1} B of paths each; heap {:.1} B/object + path, charged \
         {:.1} B/object + path",
        path_bytes as f64 / n as f64,
        per(live),
        per(charged as usize)
    );
    // Beyond the per-object charge, one namespace's fixed share.
    assert!(
        live as u64 <= charged + NAMESPACE_BYTES,
        "{what}: heap {live} over its charge {charged}"
    );
    assert!(per(live) <= INDEX_ENTRY_BYTES as f64);

    // Remount: the index rebuilt from the manifests takes no more.
    let img = s.into_device();
    let base = COUNTING.live();
    let (mut s, report) = Store::mount_with(img, Mode::ReadOnly, limits).unwrap();
    assert_eq!(report.problem, None);
    assert_eq!(s.index_bytes_used(), used);
    let ns = s.open_namespace("t").unwrap();
    // The mount holds no batch buffers once done: all of it is the index.
    let live = COUNTING.live() - base;
    println!("{what}: remounted, heap {:.1} B/object + path", per(live));
    assert!(
        live as u64 <= used + NAMESPACE_BYTES,
        "{what}: remount heap {live}"
    );
    assert!(s.exists(ns, "first").unwrap());
    assert_eq!(s.stats().objects, n + 1);
}

#[test]
fn the_index_stays_within_its_charge_at_the_budget() {
    fill(4 << 20, tlog_paths(), "tlog paths in log order");
    fill(2 << 20, long_paths(), "99-byte names in random order");
}
