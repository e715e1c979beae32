//! [`MemStorage`]: the in-memory [`Storage`] for tests and the benchmark.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::storage::Storage;

/// What an injected fault does to the operation it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The operation returns an error and stores nothing.
    FailNotPersist,
    /// The operation stores its data, then returns an error (a write whose acknowledgement
    /// was lost).
    FailButPersist,
}

/// Errors of [`MemStorage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemError {
    /// A `put` tried to change the bytes of an existing object (the path is given).
    Immutable(String),
    /// A fault injected with [`MemStorage::inject`].
    Injected,
    /// A `put_chunk` with no put open, or past the length `put_begin` gave.
    Chunk,
}

impl fmt::Display for MemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemError::Immutable(p) => {
                write!(f, "{p}: write-once object rewritten with other bytes")
            }
            MemError::Injected => f.write_str("injected fault"),
            MemError::Chunk => f.write_str("chunk outside an open put"),
        }
    }
}

/// A [`Storage`] in a `BTreeMap`, enforcing the write-once contract: re-putting an object
/// with identical bytes succeeds, with different bytes fails and changes nothing.
///
/// Every `put` and `set_checkpoint` counts as one write operation (numbered from 0), so a test
/// can make exactly the n-th write fail with [`MemStorage::inject`].
///
/// Puts are pending until the next `set_checkpoint`, which makes them and the checkpoint
/// durable together (the [`Storage`] contract); any failed operation discards what is pending,
/// as the psdb PD discards a refused request, and [`MemStorage::crash`] drops it as a power
/// loss would.
#[derive(Debug, Default, Clone)]
pub struct MemStorage {
    objects: BTreeMap<String, Vec<u8>>,
    /// Put since the last checkpoint, not yet durable.
    pending: BTreeMap<String, Vec<u8>>,
    checkpoint: Option<Vec<u8>>,
    writes: u64,
    fault: Option<(u64, Fault)>,
    /// The put `put_begin` opened: path, length, bytes so far.
    open: Option<(String, usize, Vec<u8>)>,
}

impl MemStorage {
    /// An empty storage.
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// Every durable object by path (the checkpoint is not among them).
    pub fn objects(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.objects
    }

    /// Drops what was put since the last checkpoint, as a crash would.
    pub fn crash(&mut self) {
        self.open = None;
        self.pending.clear();
    }

    /// The latest checkpoint, if any.
    pub fn latest_checkpoint(&self) -> Option<&[u8]> {
        self.checkpoint.as_deref()
    }

    /// Replaces an object's bytes, bypassing the write-once rule: for tests that simulate
    /// tampering or corruption. `None` for `path` means the checkpoint.
    pub fn tamper(&mut self, path: Option<&str>, data: &[u8]) {
        match path {
            Some(p) => {
                self.objects.insert(p.to_string(), data.to_vec());
            }
            None => self.checkpoint = Some(data.to_vec()),
        }
    }

    /// Removes an object (again bypassing the contract, for tests).
    pub fn remove(&mut self, path: &str) -> Option<Vec<u8>> {
        self.objects.remove(path)
    }

    /// Write operations so far (`put` and `set_checkpoint` calls).
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Makes write operation number `at` (counting from 0 over the storage's lifetime) fail
    /// with `fault`. One fault at a time; it fires once.
    pub fn inject(&mut self, at: u64, fault: Fault) {
        self.fault = Some((at, fault));
    }

    /// The fault for this write, if one is due.
    fn next_write(&mut self) -> Option<Fault> {
        let n = self.writes;
        self.writes += 1;
        match self.fault {
            Some((at, f)) if at == n => {
                self.fault = None;
                Some(f)
            }
            _ => None,
        }
    }
}

impl Storage for MemStorage {
    type Error = MemError;

    fn put(&mut self, path: &str, data: &[u8]) -> Result<(), MemError> {
        if self.next_write().is_some() {
            // A failed put fails its request: nothing of it stays (persisting or not, the
            // request is refused, and what it buffered is discarded).
            self.pending.clear();
            return Err(MemError::Injected);
        }
        match self.objects.get(path).or_else(|| self.pending.get(path)) {
            Some(old) if old.as_slice() != data => {
                self.pending.clear();
                return Err(MemError::Immutable(path.into()));
            }
            Some(_) => {}
            None => {
                self.pending.insert(path.to_string(), data.to_vec());
            }
        }
        Ok(())
    }

    fn set_checkpoint(&mut self, checkpoint: &[u8]) -> Result<(), MemError> {
        // A put whose last byte never came is never stored.
        self.open = None;
        let fault = self.next_write();
        if fault == Some(Fault::FailNotPersist) {
            self.pending.clear();
            return Err(MemError::Injected);
        }
        let pending = core::mem::take(&mut self.pending);
        self.objects.extend(pending);
        self.checkpoint = Some(checkpoint.to_vec());
        match fault {
            Some(_) => Err(MemError::Injected),
            None => Ok(()),
        }
    }

    fn get(&mut self, path: &str, out: &mut Vec<u8>) -> Result<bool, MemError> {
        out.clear();
        match self.objects.get(path).or_else(|| self.pending.get(path)) {
            Some(d) => {
                out.extend_from_slice(d);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn put_begin(&mut self, path: &str, len: usize) -> Result<(), MemError> {
        self.open = Some((path.to_string(), len, Vec::new()));
        Ok(())
    }

    /// Counts as a write only with the last byte (the `put` it becomes).
    fn put_chunk(&mut self, data: &[u8]) -> Result<(), MemError> {
        let Some((_, len, got)) = self.open.as_mut() else {
            self.pending.clear();
            return Err(MemError::Chunk);
        };
        if data.len() > *len - got.len() {
            self.open = None;
            self.pending.clear();
            return Err(MemError::Chunk);
        }
        got.extend_from_slice(data);
        if got.len() == *len {
            if let Some((path, _, got)) = self.open.take() {
                return self.put(&path, &got);
            }
        }
        Ok(())
    }

    fn get_range(
        &mut self,
        path: &str,
        offset: u64,
        out: &mut [u8],
    ) -> Result<Option<(u64, usize)>, MemError> {
        let Some(d) = self.objects.get(path).or_else(|| self.pending.get(path)) else {
            return Ok(None);
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(d.len());
        let n = (d.len() - start).min(out.len());
        out[..n].copy_from_slice(&d[start..start + n]);
        Ok(Some((d.len() as u64, n)))
    }

    fn checkpoint(&mut self, out: &mut Vec<u8>) -> Result<bool, MemError> {
        out.clear();
        match &self.checkpoint {
            Some(c) => {
                out.extend_from_slice(c);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_once() {
        let mut s = MemStorage::new();
        let mut out = Vec::new();
        assert!(!s.get("a", &mut out).unwrap());
        s.put("a", b"1").unwrap();
        s.put("a", b"1").unwrap();
        // Readable before the checkpoint, durable with it.
        assert!(s.get("a", &mut out).unwrap());
        assert!(s.objects().is_empty());
        s.set_checkpoint(b"c0").unwrap();
        assert_eq!(s.put("a", b"2"), Err(MemError::Immutable("a".into())));
        assert!(s.get("a", &mut out).unwrap());
        assert_eq!(out, b"1");
        s.set_checkpoint(b"c1").unwrap();
        s.set_checkpoint(b"c2").unwrap();
        assert!(s.checkpoint(&mut out).unwrap());
        assert_eq!(out, b"c2");
    }

    #[test]
    fn faults() {
        let mut s = MemStorage::new();
        let mut out = Vec::new();
        // A failed put refuses its whole request: what it had put is gone too.
        s.inject(1, Fault::FailNotPersist);
        s.put("a", b"1").unwrap();
        assert_eq!(s.put("b", b"1"), Err(MemError::Injected));
        assert!(!s.get("a", &mut out).unwrap());
        // A checkpoint whose write is lost takes its objects with it...
        s.inject(3, Fault::FailNotPersist);
        s.put("b", b"1").unwrap();
        assert_eq!(s.set_checkpoint(b"c"), Err(MemError::Injected));
        assert!(!s.get("b", &mut out).unwrap() && !s.checkpoint(&mut out).unwrap());
        // ... one whose acknowledgement is lost keeps them, together.
        s.inject(5, Fault::FailButPersist);
        s.put("c", b"1").unwrap();
        assert_eq!(s.set_checkpoint(b"c"), Err(MemError::Injected));
        assert!(s.objects().contains_key("c") && s.checkpoint(&mut out).unwrap());
        s.put("d", b"1").unwrap();
        s.crash();
        assert!(!s.get("d", &mut out).unwrap());
        assert_eq!(s.writes(), 7);
    }
}
