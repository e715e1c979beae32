//! Crash safety: a power loss at every write and flush boundary of a 1,000+ put workload. At
//! each boundary the writes since the last flush land in several ways: none, all, two random
//! subsets in random order (one with a torn sector), and an in-order prefix ending in a torn
//! sector.
//!
//! `PSDB_CRASH_PUTS=<n>` enlarges the workload; `PSDB_CRASH_EVERY_SECTOR=1` also tears at every
//! sector of the writes in flight; `cargo run --release -p psdb --example crash_sweep` runs both
//! on a bigger workload.
// A panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[test]
fn crash_at_every_boundary() {
    let puts = std::env::var("PSDB_CRASH_PUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rec = common::crash::record(puts, 42);
    assert!(rec.puts >= puts);
    let every_sector = std::env::var_os("PSDB_CRASH_EVERY_SECTOR").is_some();
    let stats = common::crash::sweep(&rec, every_sector, 100);
    println!(
        "crash sweep: {} puts in {} batches, {} device ops, {} crash points, {} crash images \
         mounted and checked ({} with a discarded tail, {} with the batch in flight complete), \
         {} extracted with tar",
        rec.puts,
        rec.batches.len(),
        rec.ops.len(),
        stats.crash_points,
        stats.images,
        stats.discarded_tails,
        stats.inflight_survived,
        stats.tar_checks
    );
    assert_eq!(stats.crash_points, rec.ops.len() + 1);
    assert!(stats.discarded_tails > 0 && stats.inflight_survived > 0);
}
