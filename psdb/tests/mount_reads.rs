//! How many device reads a mount makes (issue 13): the chain walk reads through a 64 KiB
//! window, not three small requests per batch (each request costs about 45 us in QEMU, so a
//! disk of 4,590 small batches spent 1.3 s of its mount issuing them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use psdb::{BlockDevice, FormatOptions, IoError, Mode, RamDevice, Store};

/// Counts reads and the bytes read.
struct Counting {
    dev: RamDevice,
    reads: u64,
    bytes: u64,
}

impl BlockDevice for Counting {
    fn sector_count(&self) -> u64 {
        self.dev.sector_count()
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.reads += 1;
        self.bytes += buf.len() as u64;
        self.dev.read(lba, buf)
    }
    fn write(&mut self, lba: u64, buf: &[u8]) -> Result<usize, IoError> {
        self.dev.write(lba, buf)
    }
    fn flush(&mut self) -> Result<(), IoError> {
        self.dev.flush()
    }
}

#[test]
fn mounting_many_small_batches_reads_the_chain_in_large_pieces() {
    let batches = 400u64;
    let mut store = Store::format(RamDevice::new(32 << 11), FormatOptions::new([3; 16])).unwrap();
    let ns = store.open_namespace("tenant-a").unwrap();
    for i in 0..batches {
        // A ledger-like batch: a small object and a checkpoint version.
        store
            .put(ns, &format!("tile/0/{i:03}"), &[i as u8; 300])
            .unwrap();
        store
            .put_checkpoint(ns, format!("log\n{i}\nroot\n").as_bytes())
            .unwrap();
        store.flush().unwrap();
    }
    let dev = Counting {
        dev: store.into_device(),
        reads: 0,
        bytes: 0,
    };
    let (store, report) = Store::mount(dev, Mode::ReadOnly).unwrap();
    assert_eq!(report.problem, None);
    assert!(report.batches > batches, "{report:?}");
    let ns_objects = report.objects;
    assert_eq!(ns_objects, batches);
    let dev = store.into_device();
    // Before issue 13: three reads per batch (head, manifest, commit record), 1,200 here.
    // Now: the chain's ~3 KiB per batch in 64 KiB pieces, plus the final batch's check.
    assert!(
        dev.reads < batches / 4,
        "{} reads ({} bytes) to mount {batches} batches",
        dev.reads,
        dev.bytes
    );
    // And the same store, with the same answers, whichever way it was read.
    let (mut store, _) = Store::mount(dev.dev, Mode::ReadOnly).unwrap();
    let ns = store.open_namespace("tenant-a").unwrap();
    let mut out = Vec::new();
    assert!(store.get(ns, "tile/0/123", &mut out).unwrap());
    assert_eq!(out, [123u8; 300]);
}
