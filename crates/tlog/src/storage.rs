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

    /// Starts a put of an object of `len` bytes at `path` whose bytes follow in
    /// [`Storage::put_chunk`] calls (of any sizes, `len` bytes in all, in order). The object
    /// is put, under the same contract as [`Storage::put`], when its last byte arrives; one
    /// whose chunks never all arrive is never stored. While a put is open the log calls only
    /// `put_chunk` and [`Storage::get_range`] (of committed objects).
    fn put_begin(&mut self, path: &str, len: usize) -> Result<(), Self::Error>;

    /// The next bytes of the object [`Storage::put_begin`] started.
    fn put_chunk(&mut self, data: &[u8]) -> Result<(), Self::Error>;

    /// Reads bytes `offset..` of the object at `path` into `out`, as many as fit (fewer only
    /// at the object's end or if the storage moves fewer in one call, but at least one while
    /// any remain and `out` is not empty): the object's size and how many bytes were copied,
    /// or `None` if absent. The bytes are **unverified**: the log checks them against its
    /// tree before using them. The default reads the whole object with `get` (for host
    /// storages; a PD's storage reads the range itself).
    fn get_range(
        &mut self,
        path: &str,
        offset: u64,
        out: &mut [u8],
    ) -> Result<Option<(u64, usize)>, Self::Error> {
        let mut all = Vec::new();
        if !self.get(path, &mut all)? {
            return Ok(None);
        }
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(all.len());
        let n = (all.len() - start).min(out.len());
        out[..n].copy_from_slice(&all[start..start + n]);
        Ok(Some((all.len() as u64, n)))
    }
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
