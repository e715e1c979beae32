//! Disk bytes per stored byte through the whole simulated system (every PD's handler, psdb on a
//! RAM disk): `amplification [N]` makes N single-entry appends of 256 bytes to one tenant, N/100
//! appends of 100 such entries to another, and N audited reads of one entry of a third, then
//! prints each namespace's disk bytes (as psdb charges them: members, manifest lines, batch
//! overhead, commit records) against the entry bytes, and audit's bytes per audited request.
//! Then the same appends again on a fresh system, pipelined (`Client::append_pipelined`:
//! [`WINDOW_SINGLE`] single-entry requests in flight, and each of [`WINDOWS_HUNDRED`] for the
//! 100-entry ones, or the second and third arguments), so the wire stores the requests it
//! receives together as one append each (group commit: a group larger than one region goes in
//! several calls under one checkpoint); it prints those ratios too, with how many requests
//! each checkpoint and each ledger call carried.
//! A benchmark, not a test: it prints figures (README, "Measured"; issue 7 sets the targets).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use protocol::client::Client;
use psdb::{Mode, RamDevice, Store};
use system_tests::SimStream;

const ENTRY: usize = 256;
/// Single-entry requests in flight in the pipelined run.
const WINDOW_SINGLE: usize = 64;
/// 100-entry requests in flight in the pipelined runs (one tenant each).
const WINDOWS_HUNDRED: [usize; 2] = [16, 32];

fn entry(i: u64) -> Vec<u8> {
    let mut e = format!("{i:010} ").into_bytes();
    e.resize(ENTRY, b'.');
    e
}

fn disk_bytes(disk: &Rc<RefCell<RamDevice>>, ns: &str) -> u64 {
    let image = disk.borrow().image().to_vec();
    let (mut store, _) = Store::mount(RamDevice::from_image(image), Mode::ReadOnly).unwrap();
    let h = store.open_namespace(ns).unwrap();
    store.usage(h).unwrap().disk_bytes
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().unwrap())
        .unwrap_or(10_000);
    // Big enough that no share fills: 1.5 GiB of RAM.
    let disk = Rc::new(RefCell::new(RamDevice::new(3 << 20)));
    let sim = sim::Sim::new(
        system_tests::system(),
        sim::Disk::Shared(disk.clone(), Rc::new(Cell::new(false))),
        &sim::Keys::from_seed(5),
        false,
    )
    .unwrap();
    let mut c = Client::new(SimStream::new(sim));
    let base = |disk: &Rc<RefCell<RamDevice>>, ns| disk_bytes(disk, ns);
    let before = [base(&disk, "corporate"), base(&disk, "personnel")];

    let start = Instant::now();
    for i in 0..n {
        c.append("corporate", &[entry(i)]).unwrap();
    }
    let single = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for r in 0..n / 100 {
        let batch: Vec<Vec<u8>> = (0..100).map(|i| entry(r * 100 + i)).collect();
        c.append("personnel", &batch).unwrap();
    }
    let hundred = start.elapsed().as_secs_f64();

    c.append("property", &[entry(0), entry(1), entry(2)])
        .unwrap();
    let audit_before = base(&disk, "audit");
    let start = Instant::now();
    let mut failed = 0u64;
    for i in 0..n {
        if !matches!(c.read("property", i % 3, 1).map(|v| v.len()), Ok(1)) {
            failed += 1;
        }
    }
    let reads = start.elapsed().as_secs_f64();
    let audit = base(&disk, "audit") - audit_before;

    let stored = (n as usize * ENTRY) as f64;
    let corp = (disk_bytes(&disk, "corporate") - before[0]) as f64;
    let pers = (disk_bytes(&disk, "personnel") - before[1]) as f64;
    let stored_100 = ((n / 100) as usize * 100 * ENTRY) as f64;
    println!("entries of {ENTRY} bytes; disk bytes as psdb charges them to each namespace");
    println!(
        "{n} single-entry appends: {:.0} disk bytes per entry, {:.2} x the entry bytes \
         ({:.0} appends/s)",
        corp / n as f64,
        corp / stored,
        n as f64 / single
    );
    println!(
        "{} appends of 100 entries: {:.0} disk bytes per entry, {:.2} x the entry bytes \
         ({:.0} entries/s)",
        n / 100,
        pers / ((n / 100) * 100) as f64,
        pers / stored_100,
        ((n / 100) * 100) as f64 / hundred
    );
    println!(
        "{n} audited reads: {:.0} audit disk bytes per audited request, {failed} failed \
         ({:.0} reads/s)",
        audit as f64 / n as f64,
        n as f64 / reads
    );
    drop(c);
    drop(disk);
    let window = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .map_or(default, |a| a.parse().unwrap())
    };
    let hundred = match std::env::args().nth(3) {
        Some(w) => vec![w.parse().unwrap()],
        None => WINDOWS_HUNDRED.to_vec(),
    };
    pipelined(n, window(2, WINDOW_SINGLE), &hundred);
}

/// The appends of `main` again, pipelined, on a fresh system (the 100-entry ones once per
/// window, each to its own tenant).
fn pipelined(n: u64, window_single: usize, windows_hundred: &[usize]) {
    // Room for far worse than the targets: 512 MiB of RAM.
    let disk = Rc::new(RefCell::new(RamDevice::new(512 << 11)));
    let sim = sim::Sim::new(
        system_tests::system(),
        sim::Disk::Shared(disk.clone(), Rc::new(Cell::new(false))),
        &sim::Keys::from_seed(5),
        false,
    )
    .unwrap();
    let mut c = Client::new(SimStream::new(sim));
    let hundred_tenants = ["personnel", "property"];
    assert!(windows_hundred.len() <= hundred_tenants.len());
    let before: Vec<u64> = ["corporate"]
        .iter()
        .chain(&hundred_tenants)
        .map(|t| disk_bytes(&disk, t))
        .collect();
    let stats = |c: &mut Client<SimStream>| c.stream_mut().sim.wire_stats();

    let s0 = stats(&mut c);
    let requests: Vec<Vec<Vec<u8>>> = (0..n).map(|i| vec![entry(i)]).collect();
    let start = Instant::now();
    let got = c.append_pipelined("corporate", &requests, window_single);
    let single = start.elapsed().as_secs_f64();
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.as_ref().unwrap().indices, i as u64..i as u64 + 1);
    }
    let s1 = stats(&mut c);
    let per_call = |a: wire_pd::Stats, b: wire_pd::Stats| {
        (b.forwarded - a.forwarded) as f64 / (b.calls - a.calls).max(1) as f64
    };
    // Calls that could checkpoint: every call but a stage.
    let per_checkpoint = |a: wire_pd::Stats, b: wire_pd::Stats| {
        (b.forwarded - a.forwarded) as f64
            / ((b.calls - b.stages) - (a.calls - a.stages)).max(1) as f64
    };
    let stored = (n as usize * ENTRY) as f64;
    let stored_100 = ((n / 100) as usize * 100 * ENTRY) as f64;
    let corp = (disk_bytes(&disk, "corporate") - before[0]) as f64;
    println!(
        "pipelined, {window_single} requests in flight: {n} single-entry appends: {:.0} disk \
         bytes per entry, {:.2} x the entry bytes ({:.1} requests per ledger call, {:.0} \
         appends/s)",
        corp / n as f64,
        corp / stored,
        per_call(s0, s1),
        n as f64 / single
    );
    let requests: Vec<Vec<Vec<u8>>> = (0..n / 100)
        .map(|r| (0..100).map(|i| entry(r * 100 + i)).collect())
        .collect();
    for (k, &window) in windows_hundred.iter().enumerate() {
        let tenant = hundred_tenants[k];
        let s1 = stats(&mut c);
        let start = Instant::now();
        let got = c.append_pipelined(tenant, &requests, window);
        let hundred = start.elapsed().as_secs_f64();
        for (r, a) in got.iter().enumerate() {
            let first = r as u64 * 100;
            assert_eq!(a.as_ref().unwrap().indices, first..first + 100);
        }
        let s2 = stats(&mut c);
        let bytes = (disk_bytes(&disk, tenant) - before[k + 1]) as f64;
        println!(
            "pipelined, {window} requests in flight: {} appends of 100 entries: {:.0} disk \
             bytes per entry, {:.2} x the entry bytes ({:.1} requests per checkpoint, {:.1} per \
             ledger call, {:.0} entries/s)",
            n / 100,
            bytes / ((n / 100) * 100) as f64,
            bytes / stored_100,
            per_checkpoint(s1, s2),
            per_call(s1, s2),
            ((n / 100) * 100) as f64 / hundred
        );
    }
}
