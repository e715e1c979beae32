//! Appends per second calling the ledger core directly (no PDs, no wire): `bench_core REQUESTS
//! BATCH` appends BATCH 64-byte entries then signs a checkpoint, REQUESTS times, as the ledger
//! PD does per append request, over (1) tlog's in-memory storage and (2) PSDB on a RAM disk,
//! and (3) the whole simulated system in-process (every PD's handler, no socket, RAM disk).
//! A benchmark, not a test (tests/bench-system.sh).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use note::Signer;
use psdb::{FormatOptions, RamDevice, Store};
use system_tests::SimStream;
use tlog::{Log, MemStorage, Storage};

fn entries(batch: usize) -> Vec<Vec<u8>> {
    (0..batch)
        .map(|i| format!("{i:08} bench entry {:>44}", "x").into_bytes())
        .collect()
}

fn run<S: Storage>(what: &str, storage: S, requests: usize, batch: usize) {
    let signer = Signer::generate("totebox-envelope-b/bench", &[9; 32]).unwrap();
    let mut log = Log::create(storage, "totebox-envelope-b/bench", signer)
        .ok()
        .unwrap();
    let e = entries(batch);
    let start = Instant::now();
    for _ in 0..requests {
        for x in &e {
            log.append(x).ok().unwrap();
        }
        log.checkpoint().ok().unwrap();
    }
    report(what, start, requests, batch);
}

fn report(what: &str, start: Instant, requests: usize, batch: usize) {
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{what}: {:.0} appends/s ({requests} x {batch} in {secs:.2} s, {:.3} ms/request)",
        (requests * batch) as f64 / secs,
        secs * 1000.0 / requests as f64
    );
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let [requests, batch] = args[..] else {
        eprintln!("usage: bench_core REQUESTS BATCH");
        std::process::exit(2);
    };
    run(
        "ledger core, tlog MemStorage",
        MemStorage::new(),
        requests,
        batch,
    );

    let opts = FormatOptions {
        volume_id: [7; 16],
        max_batch_bytes: 32 << 20,
    };
    let mut store = Store::format(RamDevice::new(512 << 11), opts).unwrap();
    let ns = store.open_namespace("bench").unwrap();
    run(
        "ledger core, PSDB on a RAM disk",
        psdb::NamespaceStorage::new(&mut store, ns),
        requests,
        batch,
    );

    let system = system_tests::system();
    let keys = sim::Keys::from_seed(3);
    let sim = sim::Sim::new(
        system,
        sim::Disk::Ram(RamDevice::new(512 << 11)),
        &keys,
        false,
    )
    .unwrap();
    let mut c = protocol::client::Client::new(SimStream::new(sim));
    let e = entries(batch);
    c.append("corporate", &e[..1]).unwrap();
    let start = Instant::now();
    for _ in 0..requests {
        assert_eq!(c.append("corporate", &e).unwrap().len(), batch);
    }
    report(
        "simulator in-process (all PDs, no socket, RAM disk)",
        start,
        requests,
        batch,
    );
}
