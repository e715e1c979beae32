//! The big crash sweep: a power loss at every write and flush boundary of a larger workload,
//! and at every sector of the writes in flight with the next sector torn.
//!
//! `cargo run --release -p psdb --example crash_sweep [puts] [seed]` (default 5000 puts).
// The harness is test code: a panic is how it reports a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    let mut args = std::env::args().skip(1);
    let puts = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let seed = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let t = std::time::Instant::now();
    let rec = common::crash::record(puts, seed);
    let stats = common::crash::sweep(&rec, true, 500);
    println!(
        "crash sweep (seed {seed}): {} puts in {} batches, {} device ops, {} crash points, {} crash \
         images mounted and checked ({} with a discarded tail, {} with the batch in flight \
         complete), {} extracted with tar, {:.1} s",
        rec.puts,
        rec.batches.len(),
        rec.ops.len(),
        stats.crash_points,
        stats.images,
        stats.discarded_tails,
        stats.inflight_survived,
        stats.tar_checks,
        t.elapsed().as_secs_f64()
    );
}
