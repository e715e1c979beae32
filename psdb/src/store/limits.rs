//! Limits: the batch size bounds, the index memory charges and per-namespace quotas.

/// Default limit on a batch's bytes on disk (manifest and members): 32 MiB, so a volume made
/// with the defaults (by `totebox psdb create` or by the psdb PD on a blank disk) holds the
/// largest object a tenant log writes, a full entry bundle of 256 x (2 + 65,535) =
/// 16,777,472 bytes, with its header and manifest line and room to spare. A staged batch is at
/// most this much memory.
pub const DEFAULT_MAX_BATCH: u32 = 32 << 20;
/// Smallest allowed batch limit.
pub const MIN_MAX_BATCH: u32 = 16 << 10;
/// Largest allowed batch limit.
pub const MAX_MAX_BATCH: u32 = 256 << 20;

/// Index memory charged per object (and per namespace's latest checkpoint), on top of its
/// path length: the B-tree entry (16-byte key, 48-byte value), node slack and the path's heap
/// block overhead. Measured at about 137 bytes + path (FORMAT.md); 192 leaves room for
/// half-full nodes and allocator rounding. The worst-case heap test checks it under a bounded
/// allocator.
pub const INDEX_ENTRY_BYTES: u64 = 192;
/// Charged per staged object on top of its path length while it is staged (its rollback
/// record, about 100 bytes, times three for the record vector's growth, and the path's block),
/// released when its batch is flushed or discarded.
pub const STAGED_ENTRY_BYTES: u64 = 320;
/// Index memory charged per namespace, on top of twice its name's length (it is held in the
/// namespace's state and as the name index's key): its state (object map, quota, usage,
/// damage: about 100 bytes), its entries in two maps and their allocator rounding.
pub const NAMESPACE_BYTES: u64 = 256;

/// The longest manifest text a store of batch limit `max_batch` writes or mounts: an eighth of
/// the batch, at least 64 KiB. A batch is flushed early when its manifest would exceed it.
pub fn manifest_limit(max_batch: u64) -> u64 {
    (max_batch / 8).max(64 << 10)
}

/// Memory limits of a mounted store, chosen by whoever owns its heap (the psdb PD derives them
/// from its heap size). With them, a store's heap use is at most
/// `index_bytes + max_batch + 2 x manifest_limit + a few KiB` (the staging buffer is allocated
/// once, at `max_batch` plus the end marker; manifest lines at most `manifest_limit`, copied
/// once more while flushing), and during mount `index_bytes + 2 x manifest_limit + max_batch`
/// (two manifests and one member of the final batch), plus what the caller's read buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Mount refuses a volume formatted with a larger batch limit ([`Error::ExceedsLimits`]),
    /// and format refuses to make one ([`Error::InvalidConfig`]).
    pub max_batch_ceiling: u32,
    /// Budget for the index: [`INDEX_ENTRY_BYTES`] + path length per object, plus
    /// [`STAGED_ENTRY_BYTES`] + path length per staged object. A put past it fails with
    /// [`Error::IndexFull`]; mount of a volume whose index exceeds it fails with
    /// [`Error::ExceedsLimits`].
    pub index_bytes: u64,
}

impl Limits {
    /// No index budget and the largest batch limit: for host tools on std's allocator.
    pub const UNLIMITED: Limits = Limits {
        max_batch_ceiling: MAX_MAX_BATCH,
        index_bytes: u64::MAX,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::UNLIMITED
    }
}

/// A namespace's share of the volume, set by [`Store::set_quota`] (privileged: the psdb PD sets
/// one per calling channel at init), so one tenant cannot fill the disk or the index for the
/// others and audit keeps room. A put that would take the namespace past either fails with
/// [`Error::Quota`] and changes nothing. Not checked at mount: a namespace already over its
/// quota (a smaller quota than before) can still be read, and only its puts fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Index bytes, charged as for [`Limits::index_bytes`].
    pub index_bytes: u64,
    /// Bytes on disk: every member of the namespace's objects and checkpoints (header, data,
    /// padding, checkpoint checksum members) and their manifest lines.
    pub disk_bytes: u64,
}

impl Quota {
    /// No quota.
    pub const NONE: Quota = Quota {
        index_bytes: u64::MAX,
        disk_bytes: u64::MAX,
    };
}

/// What a namespace uses of its [`Quota`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Index bytes charged (staged objects included).
    pub index_bytes: u64,
    /// Bytes on disk (staged objects included).
    pub disk_bytes: u64,
}

/// What an index entry for `path` is charged.
pub(super) fn entry_cost(path: &str) -> u64 {
    INDEX_ENTRY_BYTES + path.len() as u64
}

/// What a staged object at `path` is charged while staged.
pub(super) fn staged_cost(path: &str) -> u64 {
    STAGED_ENTRY_BYTES + path.len() as u64
}
