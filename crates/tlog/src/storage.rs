//! The storage a log writes its tlog-tiles objects to.

use alloc::vec::Vec;

/// Where a [`crate::Log`] keeps its objects, addressed by their tlog-tiles paths
/// (`tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]`) plus the one versioned object, the
/// checkpoint.
///
/// # Contract
///
/// Implementations (a directory on the host, PSDB inside the image, memory in tests) promise:
///
/// - **Write once.** `put` of a new path stores the bytes. `put` of an existing path with
///   identical bytes succeeds and changes nothing; with different bytes it returns an error and
///   changes nothing. Nothing is ever deleted.
/// - **Durability, atomically with the checkpoint.** An object given to `put` is buffered
///   until the next [`Storage::set_checkpoint`]; when that returns `Ok`, the objects put
///   since the previous checkpoint and the new checkpoint are durable together. After an error
///   or a crash at any point, either all of them and the checkpoint survive, or none of them
///   does: storage never keeps objects of a checkpoint that did not reach it. (PSDB does this
///   with one batch per checkpoint; an error from any put or from `set_checkpoint` discards
///   what was buffered.) So whatever lies beyond the latest checkpoint did not come from this
///   log, and [`crate::Log::open`] never adopts it.
/// - **Reads.** `get` and `checkpoint` fill `out` (cleared first) and return `Ok(false)` when
///   there is no such object. A `get` sees every earlier `put` on the same `Storage`, durable
///   yet or not (the log reads back full tiles it wrote since the last checkpoint to build
///   proofs).
///
/// What the log does about objects found beyond the last checkpoint (planted, or left by a
/// storage that does not keep this contract) is described in [`crate::Log::open`].
pub trait Storage {
    /// Why an operation failed (I/O, immutability violation, full device, ...).
    type Error: core::fmt::Debug + core::fmt::Display;

    /// Stores an immutable object under `path`.
    fn put(&mut self, path: &str, data: &[u8]) -> Result<(), Self::Error>;

    /// Makes all earlier puts durable, then records `checkpoint` as the latest checkpoint.
    fn set_checkpoint(&mut self, checkpoint: &[u8]) -> Result<(), Self::Error>;

    /// Reads the object at `path` into `out`; `Ok(false)` if absent.
    fn get(&mut self, path: &str, out: &mut Vec<u8>) -> Result<bool, Self::Error>;

    /// Reads the latest checkpoint into `out`; `Ok(false)` if none was ever set.
    fn checkpoint(&mut self, out: &mut Vec<u8>) -> Result<bool, Self::Error>;
}

/// Reading objects by their tlog-tiles path: all that verification needs.
///
/// Every [`Storage`] is one (through `get`); a host directory of a tlog-tiles tree written by
/// any implementation can be one without being a `Storage`.
pub trait ObjectReader {
    /// Why a read failed (I/O), as opposed to the object being absent.
    type Error: core::fmt::Debug + core::fmt::Display;

    /// Reads the object at `path` (relative to the tree's root, e.g. `tile/0/000`) into `out`
    /// (cleared first); `Ok(false)` if absent.
    fn read_object(&mut self, path: &str, out: &mut Vec<u8>) -> Result<bool, Self::Error>;
}

impl<S: Storage + ?Sized> ObjectReader for S {
    type Error = S::Error;

    fn read_object(&mut self, path: &str, out: &mut Vec<u8>) -> Result<bool, S::Error> {
        self.get(path, out)
    }
}
