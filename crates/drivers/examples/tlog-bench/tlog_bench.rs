//! The ledger core's append rate inside a PD (README.md): `tlog::Log` over `tlog::MemStorage`
//! in the PD's bounded heap, timed with the physical counter (`drivers::counter`), and the
//! SHA-256 rate of the same build. A benchmark: it prints figures, never a pass or a fail
//! (`bench|DONE` only says it finished).
//!
//! Built twice by `run.sh`, with and without `-C target-feature=+sha2` (the Armv8 SHA-256
//! instructions), and booted in QEMU virt once each.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::{string::String, vec::Vec};
use core::fmt::Write as _;

use drivers::counter;
use microkit::{debug_println, pd_name, ChannelSet, Handler};
use sha2::{Digest, Sha256};
use tlog::{Hash, Log, MemStorage};

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
microkit::memory_region! {
    /// The heap (`bench_heap` in bench.system): everything the logs store lives here.
    static HEAP_REGION: ReadWrite(vaddr = "heap_vaddr", size = "heap_size", min_len = 0x10_0000);
}

/// The runtime's allocator over that region, declared here rather than with `microkit::heap!`
/// so the benchmark can print what it holds.
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
#[global_allocator]
static HEAP: microkit::heap::Heap = microkit::heap::Heap::from_region(&HEAP_REGION);

/// Bytes in use and managed by the heap (none off seL4).
fn heap() -> (usize, usize) {
    #[cfg(all(target_os = "none", target_arch = "aarch64"))]
    {
        let s = HEAP.stats();
        (s.used, s.size)
    }
    #[cfg(not(all(target_os = "none", target_arch = "aarch64")))]
    (0, 0)
}

/// Entry size: the 64-byte entries of tests/examples/bench_core.rs.
const ENTRY: usize = 64;
/// Rounds of each workload; the best is reported (the machine is shared).
const ROUNDS: usize = 3;
/// SHA-256 rate: messages of this size, hashed for at least `HASH_MS` per round.
const MESSAGE: usize = 64 * 1024;
const HASH_MS: u64 = 500;

/// Entries the SHA-256 floor hashes per round.
const FLOOR: u64 = 100_000;
/// The workloads: `requests` times `batch` appends then one signed checkpoint, as the ledger PD
/// does per append request (the first two are bench_core's in tests/bench-system.sh; the last
/// is the shape of crates/tlog/examples/bench_append.rs, with its smaller entries).
const WORKLOADS: [(&str, u64, u64); 3] = [
    ("1 entry per checkpoint", 2000, 1),
    ("100 entries per checkpoint", 200, 100),
    ("100000 entries, one checkpoint", 1, 100_000),
];

fn entry(buf: &mut [u8; ENTRY], i: u64) -> &[u8] {
    buf[..8].copy_from_slice(&i.to_be_bytes());
    &buf[..]
}

/// `n` events in `ticks` at `freq` ticks per second, per second (0 with no clock).
fn per_second(n: u64, ticks: u64, freq: u64) -> u64 {
    if ticks == 0 {
        return 0;
    }
    u64::try_from(u128::from(n) * u128::from(freq) / u128::from(ticks)).unwrap_or(u64::MAX)
}

/// `ticks` as milliseconds with three decimals.
fn ms(ticks: u64, freq: u64) -> String {
    let us = u128::from(ticks) * 1_000_000 / u128::from(freq.max(1));
    let mut s = String::new();
    let _ = write!(s, "{}.{:03}", us / 1000, us % 1000);
    s
}

fn hex8(h: &Hash) -> String {
    let mut s = String::new();
    for b in &h[..8] {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// One round of a workload: its ticks, root and the heap in use before the log is dropped.
fn append_round(requests: u64, batch: u64) -> Result<(u64, Hash, usize), String> {
    let err = |e: &dyn core::fmt::Display| {
        let mut s = String::new();
        let _ = write!(s, "{e}");
        s
    };
    let signer =
        note::Signer::generate("totebox-envelope-b/bench", &[9; 32]).map_err(|e| err(&e))?;
    let mut log =
        Log::create(MemStorage::new(), "totebox-envelope-b/bench", signer).map_err(|e| err(&e))?;
    let mut buf = [0x5a; ENTRY];
    let mut i = 0;
    let start = counter::ticks();
    for _ in 0..requests {
        for _ in 0..batch {
            log.append(entry(&mut buf, i)).map_err(|e| err(&e))?;
            i += 1;
        }
        log.checkpoint().map_err(|e| err(&e))?;
    }
    let ticks = counter::ticks().wrapping_sub(start);
    Ok((ticks, log.committed_root(), heap().0))
}

/// The SHA-256 floor of appending: the leaf input `0x00 || entry` and one node input
/// `0x01 || left || right` per entry (tlog::hash's functions), nothing else.
fn floor_round(n: u64) -> (u64, Hash) {
    let mut buf = [0x5a; ENTRY];
    let mut acc = tlog::EMPTY_ROOT;
    let start = counter::ticks();
    for i in 0..n {
        let leaf = tlog::leaf_hash(entry(&mut buf, i));
        acc = tlog::node_hash(&acc, &leaf);
    }
    (counter::ticks().wrapping_sub(start), acc)
}

/// SHA-256 of `msg`, over and over for at least `HASH_MS`: (bytes hashed, ticks).
fn hash_round(msg: &[u8], freq: u64) -> (u64, u64) {
    let want = freq * HASH_MS / 1000;
    let mut bytes = 0u64;
    let mut sink = 0u8;
    let start = counter::ticks();
    loop {
        let d: Hash = Sha256::digest(core::hint::black_box(msg)).into();
        sink ^= d[0];
        bytes += msg.len() as u64;
        let t = counter::ticks().wrapping_sub(start);
        if t >= want || freq == 0 {
            core::hint::black_box(sink);
            return (bytes, t);
        }
    }
}

fn best<T: Copy>(runs: &[(u64, T)]) -> Option<(u64, T)> {
    runs.iter().copied().min_by_key(|r| r.0)
}

fn run() -> Result<(), String> {
    let name = pd_name();
    let freq = counter::frequency();
    if freq == 0 {
        return Err("no counter frequency (CNTFRQ_EL0 reads 0)".into());
    }
    let sha = if cfg!(target_feature = "sha2") {
        "on (built with target feature sha2: sha256h/sha256h2/sha256su0/sha256su1)"
    } else {
        "off (software SHA-256)"
    };
    debug_println!("{name}|INFO: SHA-256 instructions {sha}");
    debug_println!("{name}|INFO: counter {freq} Hz; {ENTRY}-byte entries; best of {ROUNDS} rounds");

    // SHA-256 alone, long messages: the hashing rate in MB/s (10^6 bytes).
    let msg: Vec<u8> = (0..MESSAGE).map(|i| (i % 251) as u8).collect();
    let digest: Hash = Sha256::digest(&msg).into();
    let mut rates = Vec::new();
    for _ in 0..ROUNDS {
        let (bytes, ticks) = hash_round(&msg, freq);
        rates.push(
            u128::from(bytes) * u128::from(freq) * 100 / u128::from(ticks.max(1)) / 1_000_000,
        );
    }
    let r = rates.iter().copied().max().unwrap_or(0);
    debug_println!(
        "{name}|INFO: sha256: {}.{:02} MB/s ({} KiB messages, {HASH_MS} ms a round; digest {})",
        r / 100,
        r % 100,
        MESSAGE / 1024,
        hex8(&digest)
    );
    drop(msg);

    // The floor: hashing per entry with no tree bookkeeping and no storage.
    let n = FLOOR;
    let runs: Vec<(u64, Hash)> = (0..ROUNDS).map(|_| floor_round(n)).collect();
    if let Some((ticks, acc)) = best(&runs) {
        debug_println!(
            "{name}|INFO: sha256 floor (leaf + node hash per entry): {} entries/s ({n} in {} ms; chain {})",
            per_second(n, ticks, freq),
            ms(ticks, freq),
            hex8(&acc)
        );
    }

    for (label, requests, batch) in WORKLOADS {
        let mut runs = Vec::new();
        let mut used = 0;
        for _ in 0..ROUNDS {
            let (ticks, root, u) = append_round(requests, batch)?;
            runs.push((ticks, root));
            used = used.max(u);
        }
        let n = requests * batch;
        if let Some((ticks, root)) = best(&runs) {
            debug_println!(
                "{name}|INFO: append, {label}: {} appends/s ({requests} x {batch} in {} ms, {} ms/checkpoint; root {}; heap {} KiB in use)",
                per_second(n, ticks, freq),
                ms(ticks, freq),
                ms(ticks / requests, freq),
                hex8(&root),
                used / 1024
            );
        }
    }
    let (_, size) = heap();
    debug_println!("{name}|INFO: heap {} KiB (bench_heap)", size / 1024);
    Ok(())
}

struct Idle;

impl Handler for Idle {
    type Error = core::convert::Infallible;

    fn notified(&mut self, _: ChannelSet) -> Result<(), Self::Error> {
        Ok(())
    }
}

fn init() -> Idle {
    match run() {
        Ok(()) => debug_println!("{}|DONE", pd_name()),
        Err(e) => debug_println!("{}|ERROR: {e}", pd_name()),
    }
    Idle
}

microkit::protection_domain!(init);
