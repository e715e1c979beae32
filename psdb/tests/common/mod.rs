//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

pub mod crash;
pub mod tartools;

use psdb::{BlockDevice, FormatOptions, Mode, RamDevice, Store};

/// Batch limit used by tests: small, so tails and window scans stay cheap.
pub const TEST_MAX_BATCH: u32 = 64 << 10;

pub fn opts() -> FormatOptions {
    FormatOptions {
        volume_id: *b"psdb-test-volume",
        max_batch_bytes: TEST_MAX_BATCH,
    }
}

pub fn fresh(sectors: u64) -> Store<RamDevice> {
    Store::format(RamDevice::new(sectors), opts()).unwrap()
}

/// Deterministic xorshift64.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// What a store should hold: namespace → path → bytes, and namespace → checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    pub objects: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    pub checkpoints: BTreeMap<String, Vec<u8>>,
}

impl Model {
    pub fn count(&self) -> usize {
        self.objects.values().map(|m| m.len()).sum()
    }
}

/// Everything a mounted store holds, read back through its API (every object read and checked).
pub fn snapshot<D: BlockDevice>(store: &mut Store<D>) -> Model {
    let mut m = Model::default();
    let names: Vec<String> = store.namespaces().map(String::from).collect();
    for name in names {
        let ns = store.open_namespace(&name).unwrap();
        // Journals are read by record (tests/journal.rs), not as objects.
        let journals: Vec<String> = store
            .journals(ns)
            .unwrap()
            .map(|(p, _)| p.to_string())
            .collect();
        let paths: Vec<String> = store
            .list(ns, "")
            .unwrap()
            .map(|(p, _)| p.to_string())
            .filter(|p| !journals.contains(p))
            .collect();
        let mut objs = BTreeMap::new();
        for p in paths {
            let mut out = Vec::new();
            assert!(store.get(ns, &p, &mut out).unwrap());
            if p == "checkpoint" {
                m.checkpoints.insert(name.clone(), out);
            } else {
                objs.insert(p, out);
            }
        }
        if !objs.is_empty() {
            m.objects.insert(name, objs);
        }
    }
    m
}

pub fn mount_ram(
    image: Vec<u8>,
    mode: Mode,
) -> Result<(Store<RamDevice>, psdb::Report), psdb::Error> {
    Store::mount(RamDevice::from_image(image), mode)
}

/// A tlog-tiles style path for tile `n` at `level`, partial width `w` (0 = full).
pub fn tile_path(level: &str, n: u64, w: u64) -> String {
    let mut digits = format!("{:03}", n % 1000);
    let mut rest = n / 1000;
    while rest > 0 {
        digits = format!("x{:03}/{digits}", rest % 1000);
        rest /= 1000;
    }
    if w == 0 {
        format!("tile/{level}/{digits}")
    } else {
        format!("tile/{level}/{digits}.p/{w}")
    }
}
