//! Limits: the batch size bounds, the index memory charges and per-namespace quotas.

/// Default limit on a batch's bytes on disk (manifest and members): 32 MiB, so a volume made
/// with the defaults (by `totebox psdb create` or by the psdb PD on a blank disk) holds the
/// largest object a tenant log writes, a full entry bundle of 256 x (2 + 65,535) =
/// 16,777,472 bytes, with its header and manifest line and room to spare. Since format v4 a
/// batch costs no memory of its size (its members go to the disk as they are put): it bounds
/// the largest object, the manifest ([`manifest_limit`]) and what mount verifies at the end of
/// the chain (read 64 KiB at a time).
pub const DEFAULT_MAX_BATCH: u32 = 32 << 20;
/// Smallest allowed batch limit.
pub const MIN_MAX_BATCH: u32 = 16 << 10;
/// Largest allowed batch limit.
pub const MAX_MAX_BATCH: u32 = 256 << 20;

/// Index memory charged per object (and per namespace's latest checkpoint), on top of its
/// path length (its bytes in the path arena): its 48-byte record, with the pages' slack (at
/// most 1/8: 54 bytes), the page lists and the arena's waste at page ends (at most 1.2 bytes
/// per object of 99-byte paths). See `store/index.rs`; `tests/index_memory.rs` fills an index
/// to its budget under a counting allocator and checks it.
pub const INDEX_ENTRY_BYTES: u64 = 56;
/// Charged per staged object on top of its path length while it is staged (its rollback
/// record, about 100 bytes, times three for the record vector's growth, and the path's block),
/// released when its batch is flushed or discarded.
pub const STAGED_ENTRY_BYTES: u64 = 320;
/// Index memory charged per namespace, on top of twice its name's length (it is held in the
/// namespace's state and as the name index's key): its state (about 200 bytes), its entry in
/// the name map, and what its index holds beyond [`INDEX_ENTRY_BYTES`] per object: a spare
/// page and two pages of slack (3 x 12 KiB) and a partly used arena page (8 KiB).
pub const NAMESPACE_BYTES: u64 = 45 << 10;

/// The longest manifest text a store of batch limit `max_batch` writes or mounts: an eighth of
/// the batch, at least 64 KiB, and at most [`Limits::max_manifest`]. A batch is flushed early
/// when its manifest would exceed it (or, without early flush, the put is refused).
pub fn manifest_limit(max_batch: u64) -> u64 {
    (max_batch / 8).max(64 << 10)
}

/// Memory limits of a mounted store, chosen by whoever owns its heap (the psdb PD derives them
/// from its heap size). Let `M` be the manifest limit (`min(manifest_limit(maxbatch),
/// max_manifest)`). A running store's heap use is at most `index_bytes + M + 8 KiB` (the
/// manifest lines, allocated once at `M` and written from there; one write buffer) plus a
/// 64 KiB check buffer while [`Store::verify`](super::Store::verify) runs; during mount `index_bytes + 3 x M +
/// 64 KiB + 32 KiB + 64 KiB` (two manifests and the parsed records of one, the member check
/// buffer, a sector scan buffer, the chain walk's read-ahead window). No batch data is held. Add whatever the caller reads into
/// ([`Store::get`](super::Store::get) returns a whole object; [`Store::read_next`](super::Store::read_next) and [`Store::read_at`](super::Store::read_at) fill
/// the caller's buffer only).
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
    /// Longest manifest text written or mounted, in bytes (on top of the batch limit's own,
    /// [`manifest_limit`]): a batch whose manifest would grow past it is flushed early or its
    /// put refused ([`Error::TooLarge`]); mount refuses a volume holding a longer one
    /// ([`Error::ExceedsLimits`]) before writing anything. The psdb PD, whose batch is one
    /// request (a handful of objects), can set it far below the batch limit's.
    pub max_manifest: u64,
}

impl Limits {
    /// No index budget and the largest batch limit: for host tools on std's allocator.
    pub const UNLIMITED: Limits = Limits {
        max_batch_ceiling: MAX_MAX_BATCH,
        index_bytes: u64::MAX,
        max_manifest: u64::MAX,
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
