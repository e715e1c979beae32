//! Helpers shared by the integration tests.

// Test helpers outside #[test] functions: a panic is how a test fails (clippy.toml allows it
// inside tests only).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tlog::{Log, MemStorage};

pub const ORIGIN: &str = "example.com/totebox/test";

/// splitmix64: a small deterministic generator, so every run tests the same cases.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), near enough for tests.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// An entry of random length: mostly short, sometimes long, rarely the maximum.
    pub fn entry(&mut self, i: u64) -> Vec<u8> {
        let len = match self.below(1000) {
            0 => 65_535,
            1..=20 => self.below(4000) as usize,
            _ => self.below(64) as usize,
        };
        let mut e = vec![0u8; len];
        let tag = i.to_be_bytes();
        for (j, b) in e.iter_mut().enumerate() {
            *b = tag[j % 8] ^ (j as u8);
        }
        e
    }
}

pub fn signer() -> note::Signer {
    note::Signer::generate(ORIGIN, &[7; 32]).unwrap()
}

pub fn new_log() -> Log<MemStorage> {
    Log::create(MemStorage::new(), ORIGIN, signer()).unwrap()
}

/// Drops the log as a restart (or crash) would: what was put since its last checkpoint is
/// lost with it; then opens it again.
pub fn reopen(log: Log<MemStorage>) -> Log<MemStorage> {
    let mut storage = log.into_storage();
    storage.crash();
    Log::open(storage, ORIGIN, signer()).unwrap()
}
