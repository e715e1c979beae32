//! Errors: what a caller did wrong, what the device did, and what is wrong with an image.

use crate::device::IoError;

/// Why a store operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The device failed; nothing since the last successful flush is known to be durable.
    Io(IoError),
    /// `put` of an existing path with different bytes. Nothing changed.
    Immutable,
    /// A namespace name or object path that is not allowed (see [`crate::names`]).
    InvalidName(NameError),
    /// The path is a directory of an existing object or has an existing object as a directory:
    /// tar could not extract both. Nothing changed.
    PathConflict,
    /// The object is larger than a batch can hold.
    TooLarge,
    /// The device has no room for the object. Nothing changed; everything stored stays.
    Full,
    /// The image is damaged at `offset`.
    Corrupt(Problem),
    /// The store was mounted read-only.
    ReadOnly,
    /// A namespace handle from another store.
    BadHandle,
    /// Format options out of range.
    InvalidConfig,
    /// The index reached its memory budget ([`crate::store::Limits::index_bytes`]): like a full
    /// disk, nothing changed and everything stored stays readable.
    IndexFull,
    /// Mount refused a volume this store's [`crate::store::Limits`] cannot hold: a batch limit
    /// above the ceiling, a manifest longer than the manifest limit, or more index than the
    /// budget. Nothing was written.
    ExceedsLimits,
    /// A buffer could not be allocated (the heap is exhausted). Nothing changed.
    OutOfMemory,
    /// The namespace reached its quota ([`crate::store::Quota`]) of index or disk bytes: like a
    /// full disk for that namespace only. Nothing changed.
    Quota,
    /// The namespace holds damaged committed data (found at mount): it takes no more writes,
    /// and if the damage may have hidden a checkpoint version, its checkpoint is not served
    /// either (never an older one in its place). The problem names where.
    Damaged(Problem),
    /// The journal takes no more records: every slot is used, or it is not its namespace's
    /// latest journal (creating a journal closes the earlier ones). Nothing was written.
    JournalFull,
    /// A journal call on a path that is no journal (absent, or an object), or `get` of a
    /// journal (read by record: `journal_read`). Nothing changed.
    WrongKind,
    /// A journal record while a batch is staged: flush or discard it first. Nothing was
    /// written.
    Staged,
    /// An earlier journal record's write failed and its sector could not be zeroed: no
    /// journal record is written until the volume is mounted again. Nothing was written.
    JournalHalted,
}

impl Error {
    /// A stable one-byte code for the psdb PD's wire protocol (0 is success there).
    pub fn code(&self) -> u8 {
        match self {
            Error::Io(_) => 1,
            Error::Immutable => 2,
            Error::InvalidName(_) => 3,
            Error::PathConflict => 4,
            Error::TooLarge => 5,
            Error::Full => 6,
            Error::Corrupt(_) => 7,
            Error::ReadOnly => 8,
            Error::BadHandle => 9,
            Error::InvalidConfig => 10,
            Error::IndexFull => 11,
            Error::ExceedsLimits => 12,
            Error::OutOfMemory => 13,
            Error::Quota => 14,
            Error::Damaged(_) => 15,
            Error::JournalFull => 16,
            Error::WrongKind => 17,
            Error::Staged => 18,
            Error::JournalHalted => 19,
        }
    }
}

impl From<IoError> for Error {
    fn from(e: IoError) -> Self {
        Error::Io(e)
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Immutable => f.write_str("object exists with different content (write-once)"),
            Error::InvalidName(e) => write!(f, "invalid name: {e}"),
            Error::PathConflict => {
                f.write_str("path conflicts with an existing object (file versus directory)")
            }
            Error::TooLarge => f.write_str("object too large"),
            Error::Full => f.write_str("device full"),
            Error::Corrupt(p) => write!(f, "corrupt image: {p}"),
            Error::ReadOnly => f.write_str("store is mounted read-only"),
            Error::BadHandle => f.write_str("namespace handle belongs to another store"),
            Error::InvalidConfig => f.write_str("invalid format options"),
            Error::IndexFull => f.write_str("index memory budget reached (store full)"),
            Error::ExceedsLimits => {
                f.write_str("volume exceeds this store's limits (batch, manifest or index)")
            }
            Error::OutOfMemory => f.write_str("out of memory"),
            Error::Quota => f.write_str("namespace quota reached"),
            Error::Damaged(p) => write!(f, "namespace holds damaged committed data ({p})"),
            Error::JournalFull => {
                f.write_str("journal full (every slot used, or a later journal was created)")
            }
            Error::WrongKind => f.write_str(
                "not a journal (journal calls), or a journal (read by record, not as an object)",
            ),
            Error::Staged => f.write_str("a batch is staged: journal records wait for its flush"),
            Error::JournalHalted => f.write_str(
                "journal records refused until the next mount (a failed record could not be zeroed)",
            ),
        }
    }
}

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum NameError {
    /// Empty namespace name, path or path component.
    Empty = 1,
    /// Longer than allowed.
    TooLong = 2,
    /// A byte outside `[A-Za-z0-9._-]` (this excludes NUL, `\`, spaces and non-ASCII).
    BadChar = 3,
    /// A component starting with `.` (this excludes `.`, `..` and hidden files).
    DotComponent = 4,
    /// A leading `/`, trailing `/` or `//`.
    BadSlash = 5,
    /// `checkpoint` is the versioned object: written with `put_checkpoint`.
    Reserved = 6,
}

impl core::fmt::Display for NameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            NameError::Empty => "empty name or component",
            NameError::TooLong => "name too long",
            NameError::BadChar => "character outside [A-Za-z0-9._-]",
            NameError::DotComponent => "component starts with '.'",
            NameError::BadSlash => "leading, trailing or doubled '/'",
            NameError::Reserved => "'checkpoint' is written with put_checkpoint",
        })
    }
}

/// Where an image is damaged, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Problem {
    /// Byte offset in the image of the damaged block (a member header, or the batch start).
    pub offset: u64,
    /// What is wrong there.
    pub reason: Corruption,
}

impl core::fmt::Display for Problem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "offset {}: {}", self.offset, self.reason)
    }
}

/// What is wrong with an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Corruption {
    /// The image does not start with a PSDB volume batch.
    NotPsdb = 1,
    /// A manifest whose text does not parse.
    BadManifest = 2,
    /// A manifest whose `#end` hash does not match its text.
    ManifestHash = 3,
    /// A member header that is not the header PSDB wrote for that member.
    BadHeader = 4,
    /// Object data whose SHA-256 is not the one its manifest records.
    DataHash = 5,
    /// Non-zero bytes in the padding after a member's data.
    BadPadding = 6,
    /// A batch reaching past the end of the device (a truncated image).
    Truncated = 7,
    /// A write-once path stored twice.
    Duplicate = 8,
    /// A name in a manifest that PSDB would never have accepted.
    BadName = 9,
    /// A damaged batch with later batches after it: not a crash, the image was altered.
    DamagedBatch = 10,
    /// The final batch is incomplete and has no commit record: a crash before it was
    /// acknowledged. Mount discards it.
    IncompleteTail = 11,
    /// A batch's commit record is missing, torn or damaged while the batch itself is whole: at
    /// the end of the chain a crash between the two flushes (the batch is kept, and a read-write
    /// mount writes the record); before later batches, damage to the record (reported).
    BadCommit = 12,
    /// A committed batch whose manifest is damaged: its objects cannot be indexed, and the
    /// namespaces its commit record names are marked damaged.
    LostBatch = 13,
    /// A PSDB volume of an older on-disk format version than this build reads.
    UnsupportedVersion = 14,
    /// A journal sector that is neither zeros (never written) nor a valid record for its
    /// volume and slot: a record altered after it was written (sector writes are atomic).
    JournalRecord = 15,
    /// A valid journal record after a zero sector: records are written in slot order, so one
    /// was erased or one planted.
    JournalGap = 16,
}

impl core::fmt::Display for Corruption {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Corruption::NotPsdb => "not a PSDB image (no volume batch at offset 0)",
            Corruption::BadManifest => "malformed batch manifest",
            Corruption::ManifestHash => "batch manifest checksum mismatch",
            Corruption::BadHeader => "tar header is not the one PSDB wrote",
            Corruption::DataHash => "object data SHA-256 mismatch",
            Corruption::BadPadding => "non-zero padding after object data",
            Corruption::Truncated => "batch extends past the end of the device (truncated image)",
            Corruption::Duplicate => "write-once path stored twice",
            Corruption::BadName => "invalid name in manifest",
            Corruption::DamagedBatch => "damaged batch followed by later batches",
            Corruption::IncompleteTail => {
                "final batch incomplete and never committed (a crash before it was acknowledged); discarded"
            }
            Corruption::BadCommit => "commit record missing or damaged (its batch is whole and kept)",
            Corruption::LostBatch => {
                "committed batch with a damaged manifest: its objects are lost to the index"
            }
            Corruption::UnsupportedVersion => {
                "PSDB format v1 volume: this build reads v2 and v3 (copy the data out with tar)"
            }
            Corruption::JournalRecord => {
                "journal sector neither zeros nor a valid record for its slot (altered after writing)"
            }
            Corruption::JournalGap => "journal record after an unwritten slot",
        })
    }
}

impl core::error::Error for Error {}
impl core::error::Error for IoError {}
