//! The crate's error types: closed enums with `Display`, so callers (and protection domains
//! passing them over IPC) can match every case.

use core::fmt;

use crate::proof::ProofError;
use crate::tile::{FormatError, Tile};

/// A stored object: the checkpoint, or a hash tile or entry bundle (named by its path when
/// displayed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// The checkpoint (a signed note).
    Checkpoint,
    /// A hash tile or entry bundle.
    Tile(Tile),
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Checkpoint => f.write_str("checkpoint"),
            Object::Tile(t) => fmt::Display::fmt(t, f),
        }
    }
}

/// Why a stored object is not what the tree needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The object is absent.
    Missing,
    /// The object's bytes do not decode.
    Format(FormatError),
    /// The checkpoint is not a valid signed note or checkpoint, or its signature fails.
    Note(note::Error),
    /// The checkpoint verified only with cosignature keys: no log (Ed25519, type 0x01) key
    /// signed it.
    NoLogSignature,
    /// The checkpoint's origin is not the log's.
    OriginMismatch,
    /// The partial tiles for the checkpoint's size do not hash to the checkpoint's root (the
    /// object named is the highest of them).
    RootMismatch,
    /// The tile's root differs from the hash its (already authenticated) parent tile holds.
    TileMismatch,
    /// The entry at this position of the bundle does not hash to the level-0 tile's hash.
    EntryMismatch(u16),
    /// A full bundle written after the last checkpoint does not start with the checkpoint's
    /// committed entries.
    BundlePrefixMismatch,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Missing => f.write_str("missing"),
            Reason::Format(e) => fmt::Display::fmt(e, f),
            Reason::Note(e) => fmt::Display::fmt(e, f),
            Reason::NoLogSignature => {
                f.write_str("no Ed25519 log signature from a known key (only cosignatures)")
            }
            Reason::OriginMismatch => f.write_str("origin is not this log's"),
            Reason::RootMismatch => f.write_str(
                "the partial tiles for the checkpoint's size do not hash to its root hash",
            ),
            Reason::TileMismatch => {
                f.write_str("tile does not hash to the hash its parent tile holds for it")
            }
            Reason::EntryMismatch(i) => {
                write!(f, "entry {i} does not hash to its level-0 tile hash")
            }
            Reason::BundlePrefixMismatch => f.write_str(
                "bundle written after the checkpoint does not start with the committed entries",
            ),
        }
    }
}

/// A named object and what is wrong with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectError {
    /// The object that failed.
    pub object: Object,
    /// Why.
    pub reason: Reason,
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.reason)
    }
}

/// Errors of [`crate::Log`] operations. `E` is the storage's error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error<E> {
    /// The storage failed. If this happened while writing, the log is poisoned (see
    /// [`Error::Poisoned`]).
    Storage(E),
    /// An entry is over 65,535 bytes, the most an entry bundle's length prefix can say.
    EntryTooLarge(usize),
    /// The log already holds `u64::MAX` entries.
    Full,
    /// A size given to a proof or read is beyond the latest checkpoint: only committed
    /// entries can be read or proved.
    BeyondCheckpoint,
    /// The proof arguments are invalid (index not below size, size 0, sizes out of order).
    Proof(ProofError),
    /// Signing the checkpoint failed (for example the origin is not a valid checkpoint line).
    Note(note::Error),
    /// `create` found a checkpoint already in storage.
    AlreadyExists,
    /// `open` found no checkpoint in storage.
    NoCheckpoint,
    /// An object read back from storage is missing, malformed or inconsistent.
    Corrupt(ObjectError),
    /// An earlier write failed part way, so the in-memory state may be ahead of storage; the
    /// log refuses to continue. Reopen it from storage (as after a crash).
    Poisoned,
    /// A buffer of this many bytes could not be allocated (the heap is exhausted). Nothing
    /// was written; allocate the log's buffers up front ([`crate::log::Buffers`]) to rule
    /// this out.
    OutOfMemory(usize),
    /// The tree of `size` entries does not extend the checkpoint of `signed` entries this log
    /// signed last, so it was not signed (and the log is poisoned): never two inconsistent
    /// checkpoints.
    Inconsistent { size: u64, signed: u64 },
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Storage(e) => write!(f, "storage: {e}"),
            Error::EntryTooLarge(n) => write!(
                f,
                "entry of {n} bytes is over 65,535 bytes, the limit of a bundle's length prefix"
            ),
            Error::Full => f.write_str("log is full (u64::MAX entries)"),
            Error::BeyondCheckpoint => f.write_str("size is beyond the latest checkpoint"),
            Error::Proof(e) => write!(f, "proof: {e}"),
            Error::Note(e) => write!(f, "checkpoint: {e}"),
            Error::AlreadyExists => f.write_str("storage already holds a log checkpoint"),
            Error::NoCheckpoint => f.write_str("storage holds no log checkpoint"),
            Error::Corrupt(e) => write!(f, "corrupt storage: {e}"),
            Error::Poisoned => f.write_str(
                "an earlier write failed part way; reopen the log from storage to continue",
            ),
            Error::OutOfMemory(n) => write!(f, "out of memory: {n} bytes could not be allocated"),
            Error::Inconsistent { size, signed } => write!(
                f,
                "refusing to sign: the tree of {size} entries does not extend the checkpoint of \
                 {signed} entries signed before"
            ),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for Error<E> {}

impl<E> From<ProofError> for Error<E> {
    fn from(e: ProofError) -> Self {
        Error::Proof(e)
    }
}

/// Why [`crate::verify_tree`] rejected a tree: the first object that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError<E> {
    /// Reading an object failed (I/O), as opposed to the object being wrong.
    Read {
        /// The object being read.
        object: Object,
        /// The reader's error.
        error: E,
    },
    /// An object is missing, malformed or does not hash as the tree requires.
    Invalid(ObjectError),
}

impl<E: fmt::Display> fmt::Display for VerifyError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Read { object, error } => write!(f, "{object}: read failed: {error}"),
            VerifyError::Invalid(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for VerifyError<E> {}

impl<E> VerifyError<E> {
    /// The object that failed.
    pub fn object(&self) -> Object {
        match self {
            VerifyError::Read { object, .. } => *object,
            VerifyError::Invalid(e) => e.object,
        }
    }
}
