//! The store: mount, namespaces, write-once puts in batches, reads, and the checks fsck runs.
//!
//! # Writing
//!
//! Puts are staged in memory as a batch: the serialized members (header, data, padding) and
//! their manifest lines. [`Store::flush`] writes the members followed by two zero blocks at
//! `end + manifest length`, then the manifest member at `end`, then flushes the device once.
//! Only after that flush returns does the batch count as written: `end` advances and the staged
//! entries point at the disk. If any step fails the batch is discarded and its index changes
//! undone, so reads never serve a checkpoint (or object) that may not reach the disk; the caller
//! (a tenant log reopening from its durable checkpoint) puts again what it still wants, and the
//! next flush writes a whole new batch at the same place (after a failed flush nothing the
//! device holds is trusted, so no later write relies on an earlier partial one).
//!
//! # Journals
//!
//! A journal (format v3, [`crate::journal`]) is created like an object, in a batch, as a member
//! of zero sectors charged whole to its namespace; afterwards [`Store::journal_append`] writes
//! one record per call into its next free sector and flushes: one sector write and one device
//! flush per record, nothing appended to the stream. Only a namespace's latest journal takes
//! records. Mount checks every namespace's latest journal sector by sector (records, then only
//! zeros: its next slot; anything else is damage), earlier ones are checked when read and by
//! fsck. A journal sector lies inside a committed batch, never in the stream's tail, so no
//! batch write or scrub touches it, and a record never touches anything else.
//!
//! # Memory
//!
//! Bounded by [`Limits`], which the owner of the heap chooses: the staging buffer is allocated
//! once at `maxbatch` + 1 KiB and the manifest lines once at [`manifest_limit`] (never grown by
//! doubling); the index is charged [`INDEX_ENTRY_BYTES`] + path length per object and
//! [`STAGED_ENTRY_BYTES`] + path length per staged object against [`Limits::index_bytes`]. A put
//! past the budget fails with [`Error::IndexFull`] (nothing lost, like a full disk); mount of a
//! volume whose index or batch limit is over the limits fails with [`Error::ExceedsLimits`]
//! before writing anything. Buffers sized from disk contents are reserved fallibly.
//!
//! # Mounting
//!
//! Mount walks the chain of manifests from offset 0: batch `k+1` starts where batch `k` ends and
//! must carry sequence `k+1`, the volume id, and the hash of manifest `k`. Writes of batch `k+1`
//! are only issued after batch `k`'s flush returned, so a valid manifest `k+1` proves batch `k`
//! durable; only the last batch of the chain can be incomplete, and mount verifies that one
//! batch's members (bounded by the batch limit) and discards it if any is wrong. Anything else
//! read at mount is manifest text: mount cost grows with the number of objects, never with their
//! bytes. Where the chain stops, the image must hold two zero blocks (the end of the tar
//! stream). Anything else there is a crashed batch, unless a valid later manifest of this volume
//! lies within one batch length, which only damage can produce: then mount fails.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Bound;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::commit::{Commit, Touched, COMMIT_LEN};
use crate::device::{write_all, BlockDevice, IoError, SECTOR_SIZE};
use crate::error::{Corruption, Error, Problem};
use crate::journal::{self, Sector};
use crate::manifest::{self, Kind, Manifest, END_LINE};
use crate::names::{self, CHECKPOINT};
use crate::tar;

const BLOCK: u64 = SECTOR_SIZE as u64;
/// The end-of-archive marker: two zero blocks, always kept after the last batch.
const TAIL: u64 = 2 * BLOCK;
/// Set in [`Obj::loc`] while the object is staged: the low bits are its offset in the batch.
const STAGED: u64 = 1 << 63;

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
fn entry_cost(path: &str) -> u64 {
    INDEX_ENTRY_BYTES + path.len() as u64
}

/// What a staged object at `path` is charged while staged.
fn staged_cost(path: &str) -> u64 {
    STAGED_ENTRY_BYTES + path.len() as u64
}

/// `s` as a boxed str, allocated fallibly.
fn try_box(s: &str) -> Result<Box<str>, Error> {
    let mut b = String::new();
    b.try_reserve_exact(s.len())
        .map_err(|_| Error::OutOfMemory)?;
    b.push_str(s);
    Ok(b.into_boxed_str())
}

static NEXT_TAG: AtomicU64 = AtomicU64::new(1);

/// Parameters fixed when a volume is formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatOptions {
    /// Identifies this volume in every manifest. Must be fresh random bytes for every format:
    /// it is what keeps a reformatted disk's old batches from being taken for new ones.
    pub volume_id: [u8; 16],
    /// Largest batch on disk, in bytes. Bounds the largest object, the memory a batch is staged
    /// in, and what mount reads beyond manifests (the final batch, and after a crash one batch
    /// length of tail). Between [`MIN_MAX_BATCH`] and [`MAX_MAX_BATCH`].
    pub max_batch_bytes: u32,
}

impl FormatOptions {
    /// Options with the default batch limit.
    pub fn new(volume_id: [u8; 16]) -> Self {
        FormatOptions {
            volume_id,
            max_batch_bytes: DEFAULT_MAX_BATCH,
        }
    }
}

/// Whether a mounted store may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reads only; mount writes nothing, even after a crash.
    ReadOnly,
    /// Reads and writes; mount rewrites the end-of-archive marker after a crashed tail.
    ReadWrite,
}

/// What mount or fsck found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    /// Batches in the chain (the volume batch included).
    pub batches: u64,
    /// Write-once objects.
    pub objects: u64,
    /// Checkpoint versions, all namespaces.
    pub checkpoint_versions: u64,
    /// Bytes of object and checkpoint data.
    pub data_bytes: u64,
    /// Offset of the end-of-archive marker (where the next batch goes).
    pub end: u64,
    /// Device size in bytes.
    pub capacity: u64,
    /// The first thing to report: `damage` if there is any, else `tail`.
    pub problem: Option<Problem>,
    /// What the end of the chain held besides a clean end marker: a torn batch that was never
    /// committed (discarded, [`Corruption::IncompleteTail`]) or a whole batch whose commit
    /// record never landed (kept, [`Corruption::BadCommit`]). Never acknowledged data.
    pub tail: Option<Problem>,
    /// The first damage to committed data found (kept on disk, reported, never repaired).
    pub damage: Option<Problem>,
    /// How many damaged places were found (members, manifests, commit records).
    pub damaged: u64,
    /// Mount wrote over the never-acknowledged tail: the end-of-archive marker after a
    /// discarded batch, or the missing commit record of a whole final batch.
    pub repaired: bool,
}

/// A namespace handle. Opaque: only [`Store::open_namespace`] makes one, and it only works with
/// the store that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace {
    store: u64,
    index: u32,
}

/// One object in the index: 48 bytes plus its key.
#[derive(Debug, Clone, Copy)]
struct Obj {
    /// SHA-256 of the data (zeros for a journal: its content is written after its batch).
    hash: [u8; 32],
    /// Offset of the member header on disk, or `STAGED | offset in the staged batch`.
    loc: u64,
    size: u32,
    /// A journal member (v3): read and written by record, never by `get`.
    journal: bool,
}

/// A namespace's latest journal: the only one of its journals that takes records (creating a
/// journal closes the earlier ones), found by its member's offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Latest {
    /// Its member header's offset (`STAGED | ...` while its batch is staged).
    loc: u64,
    slots: u32,
    /// The next free slot: records `0..next` are written, the rest are zeros.
    next: u32,
}

/// What [`Store::journal_stat`] says of a journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalStat {
    /// Records it can hold.
    pub slots: u32,
    /// Records written (slots `0..used`).
    pub used: u32,
}

/// What an object's member holds when it is staged.
#[derive(Debug, Clone, Copy)]
enum Content<'a> {
    Bytes(&'a [u8]),
    /// A journal: this many zero bytes.
    Zeros(u32),
}

#[derive(Debug)]
struct NsState {
    name: Box<str>,
    /// Every object, the latest checkpoint version under `checkpoint` included.
    objects: BTreeMap<Box<str>, Obj>,
    checkpoint_versions: u64,
    quota: Quota,
    used: Usage,
    /// Damage to this namespace's committed data found at mount (see [`Store::damage`]).
    damage: Option<NsDamage>,
    /// Its latest journal, if it has any.
    journal: Option<Latest>,
}

/// Why a namespace is marked damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NsDamage {
    /// The first problem found.
    problem: Problem,
    /// A committed batch that wrote to it could not be indexed: a checkpoint version may be
    /// missing, so its checkpoint is not served (an older one would be a rollback).
    lost: bool,
}

/// One staged index change: enough to point it at the disk after the flush, or undo it.
#[derive(Debug)]
struct StagedEntry {
    ns: u32,
    path: Box<str>,
    /// The entry it replaced (a checkpoint's previous version), `None` for a new path.
    old: Option<Obj>,
    /// Index bytes charged for it (entry if new, plus the staged charge).
    charge: u64,
    /// Disk bytes charged to its namespace (members and manifest lines).
    disk: u64,
    checkpoint: bool,
    size: u32,
    /// For a journal: the namespace's latest journal before it (restored if the batch is
    /// discarded).
    journal_prev: Option<Option<Latest>>,
}

/// The batch being staged. Its buffers are allocated once, at their limits, and reused.
#[derive(Debug, Default)]
struct Staged {
    /// Manifest lines, without the header and `#end` lines (at most the manifest limit).
    lines: String,
    /// Serialized members (capacity: the batch limit plus the end marker).
    members: Vec<u8>,
    /// Every staged index change, in order.
    entries: Vec<StagedEntry>,
}

/// A mounted PSDB volume on a block device.
#[derive(Debug)]
pub struct Store<D: BlockDevice> {
    dev: D,
    mode: Mode,
    tag: u64,
    volume: [u8; 16],
    max_batch: u64,
    capacity: u64,
    end: u64,
    seq: u64,
    prev: [u8; 32],
    namespaces: Vec<NsState>,
    by_name: BTreeMap<Box<str>, u32>,
    staged: Staged,
    objects: u64,
    data_bytes: u64,
    checkpoint_versions: u64,
    limits: Limits,
    /// Index bytes charged (see [`Limits::index_bytes`]).
    index_used: u64,
    /// Whether a put that does not fit the staged batch flushes it first (the default) or
    /// fails with [`Error::TooLarge`] (see [`Store::set_early_flush`]).
    early_flush: bool,
    /// Damage found at mount: how many places, the first, and whether a lost batch named no
    /// namespaces it could be limited to (then every namespace is marked).
    damaged: u64,
    first_damage: Option<Problem>,
    lost_all: Option<Problem>,
    /// Mount only: the commit record a read-write mount writes for a whole final batch whose
    /// record never landed, and where.
    pending_commit: Option<(u64, Commit)>,
    /// The byte range a failed batch may have written (its manifest, members, commit record
    /// and end markers): zeroed and flushed before anything else is written, so that neither
    /// a stale commit record nor a refused, signed checkpoint survives in it to mislead mount
    /// or a forensic reader. Those bytes were never acknowledged.
    scrub: Option<(u64, u64)>,
    /// A journal record's sector write or flush failed and zeroing that sector failed too: no
    /// journal record is written until the next mount (which finds the sector zero, a valid
    /// record never acknowledged, or damage), so no later record can sit after a sector in an
    /// unknown state.
    journal_halted: bool,
}

/// What a batch costs on disk beyond its objects' members and manifest lines, at most: the
/// manifest member's header and padding, its header and `#end` lines, and the commit record.
/// Charged to the namespace of the batch's first object when it is staged (so quotas hold
/// before the batch is written) and trued up to the exact figure when it is flushed.
const BATCH_OVERHEAD_MAX: u64 = BLOCK + (BLOCK - 1) + 256 + END_LINE as u64 + COMMIT_LEN;

impl<D: BlockDevice> Store<D> {
    /// Formats `dev` as an empty volume (writes the volume batch at offset 0 and flushes) and
    /// returns it mounted read-write. Whatever the device held is abandoned.
    pub fn format(dev: D, opts: FormatOptions) -> Result<Self, Error> {
        Self::format_with(dev, opts, Limits::UNLIMITED)
    }

    /// [`Store::format`] with memory limits: fails with [`Error::InvalidConfig`] if the batch
    /// limit is above `limits.max_batch_ceiling`.
    pub fn format_with(dev: D, opts: FormatOptions, limits: Limits) -> Result<Self, Error> {
        if !(MIN_MAX_BATCH..=MAX_MAX_BATCH).contains(&opts.max_batch_bytes)
            || !opts.max_batch_bytes.is_multiple_of(SECTOR_SIZE as u32)
            || opts.max_batch_bytes > limits.max_batch_ceiling
        {
            return Err(Error::InvalidConfig);
        }
        let max_batch = u64::from(opts.max_batch_bytes);
        let capacity = dev.sector_count().saturating_mul(BLOCK);
        let mut store = Store::empty(dev, Mode::ReadWrite, opts.volume_id, max_batch, capacity);
        store.limits = limits;
        let text = store.manifest_text()?;
        let mut buf = member_bytes(&manifest::manifest_name(0), text.as_bytes());
        let prev = manifest::sha256(&text.as_bytes()[..text.len() - END_LINE]);
        let commit = Commit {
            seq: 0,
            volume: opts.volume_id,
            batch: 0,
            length: buf.len() as u64,
            manifest: prev,
            touched: Touched::Some(Vec::new()),
        };
        buf.extend_from_slice(&commit.member());
        buf.extend_from_slice(&[0; TAIL as usize]);
        if buf.len() as u64 > capacity {
            return Err(Error::Full);
        }
        // One flush: a format that does not finish leaves no volume, and is simply redone.
        write_all(&mut store.dev, 0, &buf)?;
        store.dev.flush()?;
        store.end = buf.len() as u64 - TAIL;
        store.seq = 1;
        store.prev = prev;
        Ok(store)
    }

    /// Mounts a volume. Fails with [`Error::Corrupt`] if the image is damaged anywhere mount
    /// reads; a crashed final batch is not an error: it is discarded and reported.
    pub fn mount(dev: D, mode: Mode) -> Result<(Self, Report), Error> {
        Self::mount_with(dev, mode, Limits::UNLIMITED)
    }

    /// [`Store::mount`] within memory limits: a volume formatted with a batch limit above
    /// `limits.max_batch_ceiling`, holding a manifest longer than [`manifest_limit`], or whose
    /// index would exceed `limits.index_bytes` is refused with [`Error::ExceedsLimits`] before
    /// anything is written, and buffers are reserved fallibly ([`Error::OutOfMemory`]).
    pub fn mount_with(dev: D, mode: Mode, limits: Limits) -> Result<(Self, Report), Error> {
        let (mut store, mut report) = load(dev, mode, false, limits)?;
        let pending = store.pending_commit.take();
        if let (Some(_), Mode::ReadWrite) = (report.tail, mode) {
            // Only never-acknowledged bytes are written over here (damage is never repaired):
            // the commit record a whole final batch lacks, then the end marker where the next
            // batch goes, so the image is a clean tar stream again.
            if store.scrub.is_some() {
                // A torn batch whose extent its manifest gives: zero all of it.
                store.scrub_failed()?;
            } else {
                let mut buf = Vec::new();
                let at = match &pending {
                    Some((at, commit)) => {
                        buf.extend_from_slice(&commit.member());
                        *at
                    }
                    None => store.end,
                };
                buf.extend_from_slice(&[0; TAIL as usize]);
                write_all(&mut store.dev, at / BLOCK, &buf)?;
                store.dev.flush()?;
            }
            report.repaired = true;
        }
        Ok((store, report))
    }

    fn empty(dev: D, mode: Mode, volume: [u8; 16], max_batch: u64, capacity: u64) -> Self {
        Store {
            dev,
            mode,
            tag: NEXT_TAG.fetch_add(1, Ordering::Relaxed),
            volume,
            max_batch,
            capacity,
            end: 0,
            seq: 0,
            prev: [0; 32],
            namespaces: Vec::new(),
            by_name: BTreeMap::new(),
            staged: Staged::default(),
            objects: 0,
            data_bytes: 0,
            checkpoint_versions: 0,
            limits: Limits::UNLIMITED,
            index_used: 0,
            early_flush: true,
            damaged: 0,
            first_damage: None,
            lost_all: None,
            pending_commit: None,
            scrub: None,
            journal_halted: false,
        }
    }

    /// Whether a put that does not fit the staged batch (its size, manifest or the index
    /// budget) first flushes what is staged (`true`, the default, for host tools that put many
    /// objects) or fails with [`Error::TooLarge`] / [`Error::IndexFull`] and changes nothing
    /// (`false`: the psdb PD, where a batch is one caller's request and must reach the disk
    /// whole, with its checkpoint, or not at all).
    pub fn set_early_flush(&mut self, on: bool) {
        self.early_flush = on;
    }

    /// Drops every staged object (nothing of them reaches the disk): the store is back at what
    /// the last successful flush made durable. The psdb PD calls it when a caller's request
    /// fails part way, so nothing of a refused request is ever written.
    pub fn discard(&mut self) {
        self.rollback();
    }

    /// Whether anything is staged.
    pub fn has_staged(&self) -> bool {
        !self.staged.entries.is_empty()
    }

    /// The damage found in `ns`'s committed data at mount, if any: the first problem, and
    /// whether a checkpoint version may be missing (then [`Store::checkpoint`] fails too).
    pub fn damage(&self, ns: Namespace) -> Result<Option<(Problem, bool)>, Error> {
        let st = &self.namespaces[self.ns(ns)?];
        Ok(st.damage.map(|d| (d.problem, d.lost)))
    }

    /// Every namespace with damage, with its first problem and whether it is lost.
    pub fn damaged_namespaces(&self) -> impl Iterator<Item = (&str, Problem, bool)> + '_ {
        self.namespaces
            .iter()
            .filter_map(|st| st.damage.map(|d| (&*st.name, d.problem, d.lost)))
    }

    /// Marks namespace `i` damaged (the first problem is kept; `lost` only ever turns on).
    fn mark(&mut self, i: usize, problem: Problem, lost: bool) {
        let st = &mut self.namespaces[i];
        match &mut st.damage {
            Some(d) => d.lost |= lost,
            None => st.damage = Some(NsDamage { problem, lost }),
        }
    }

    /// Counts one damaged place.
    fn note_damage(&mut self, problem: Problem) {
        self.damaged += 1;
        self.first_damage.get_or_insert(problem);
    }

    /// Refuses writes into a damaged namespace.
    fn undamaged(&self, i: usize) -> Result<(), Error> {
        match self.namespaces[i].damage {
            Some(d) => Err(Error::Damaged(d.problem)),
            None => Ok(()),
        }
    }

    /// The limits the store was formatted or mounted with.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Index bytes charged against [`Limits::index_bytes`].
    pub fn index_bytes_used(&self) -> u64 {
        self.index_used
    }

    /// **Privileged**: the handle for namespace `name`, creating it (in memory; it reaches the
    /// disk with its first object). Called by the psdb PD at init to build its channel → handle
    /// table, and by host tools. Nothing reachable from a request should call it.
    pub fn open_namespace(&mut self, name: &str) -> Result<Namespace, Error> {
        names::check_namespace(name).map_err(Error::InvalidName)?;
        Ok(Namespace {
            store: self.tag,
            index: self.ns_index_or_create(name)?,
        })
    }

    /// Names of every namespace known (on disk or opened), sorted. For host tools.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> + '_ {
        self.by_name.keys().map(|k| &**k)
    }

    /// The name of a namespace.
    pub fn namespace_name(&self, ns: Namespace) -> Result<&str, Error> {
        Ok(&self.namespaces[self.ns(ns)?].name)
    }

    /// The index of namespace `name`, creating it if new: a new namespace is charged
    /// [`NAMESPACE_BYTES`] + twice its name to the index budget ([`Error::IndexFull`] past it;
    /// at mount the caller turns that into [`Error::ExceedsLimits`]), so neither puts nor a
    /// crafted disk naming many namespaces can grow the heap past the budget.
    fn ns_index_or_create(&mut self, name: &str) -> Result<u32, Error> {
        if let Some(&i) = self.by_name.get(name) {
            return Ok(i);
        }
        let cost = NAMESPACE_BYTES + 2 * name.len() as u64;
        if self.index_used.saturating_add(cost) > self.limits.index_bytes {
            return Err(Error::IndexFull);
        }
        self.namespaces
            .try_reserve(1)
            .map_err(|_| Error::OutOfMemory)?;
        self.index_used += cost;
        let i = self.namespaces.len() as u32;
        self.namespaces.push(NsState {
            name: name.into(),
            objects: BTreeMap::new(),
            checkpoint_versions: 0,
            quota: Quota::NONE,
            used: Usage::default(),
            damage: self.lost_all.map(|problem| NsDamage {
                problem,
                lost: true,
            }),
            journal: None,
        });
        self.by_name.insert(name.into(), i);
        Ok(i)
    }

    /// **Privileged**: sets the quota of `ns` (see [`Quota`]). Called by the psdb PD at init.
    pub fn set_quota(&mut self, ns: Namespace, quota: Quota) -> Result<(), Error> {
        let i = self.ns(ns)?;
        self.namespaces[i].quota = quota;
        Ok(())
    }

    /// What `ns` uses of its quota.
    pub fn usage(&self, ns: Namespace) -> Result<Usage, Error> {
        Ok(self.namespaces[self.ns(ns)?].used)
    }

    fn ns(&self, ns: Namespace) -> Result<usize, Error> {
        let i = ns.index as usize;
        if ns.store != self.tag || i >= self.namespaces.len() {
            return Err(Error::BadHandle);
        }
        Ok(i)
    }

    fn writable(&self) -> Result<(), Error> {
        match self.mode {
            Mode::ReadWrite => Ok(()),
            Mode::ReadOnly => Err(Error::ReadOnly),
        }
    }

    /// Stores `data` at `path` in `ns`, write-once: a new path is staged (durable after the next
    /// [`Store::flush`]); the same bytes again are a no-op; different bytes fail with
    /// [`Error::Immutable`] and change nothing. May flush the staged batch first when the new
    /// object would not fit in it.
    pub fn put(&mut self, ns: Namespace, path: &str, data: &[u8]) -> Result<(), Error> {
        self.writable()?;
        let i = self.ns(ns)?;
        self.undamaged(i)?;
        let st = &self.namespaces[i];
        names::check_object_path(&st.name, path).map_err(Error::InvalidName)?;
        let hash = manifest::sha256(data);
        if let Some(o) = st.objects.get(path) {
            return if !o.journal && o.size as usize == data.len() && o.hash == hash {
                Ok(())
            } else {
                Err(Error::Immutable)
            };
        }
        if conflicts(&st.objects, path) {
            return Err(Error::PathConflict);
        }
        self.stage(i, path, Content::Bytes(data), hash, None)
    }

    /// Creates a journal of `slots` records at `path` in `ns` (format v3): staged like a put
    /// (durable after the next [`Store::flush`]), a member of `slots x 512` zero bytes, all
    /// charged to the namespace's disk quota (and its path to the index) now. Write-once like
    /// an object: the same journal again (same path, same slots) is a no-op; anything else at
    /// that path fails with [`Error::Immutable`]. Once flushed it is the namespace's latest
    /// journal, the only one that takes records ([`Store::journal_append`]); the earlier ones
    /// are closed. `slots` must be at least 1 and the member must fit a batch
    /// ([`Error::TooLarge`]).
    pub fn put_journal(&mut self, ns: Namespace, path: &str, slots: u32) -> Result<(), Error> {
        self.writable()?;
        let i = self.ns(ns)?;
        self.undamaged(i)?;
        let st = &self.namespaces[i];
        names::check_object_path(&st.name, path).map_err(Error::InvalidName)?;
        let size = u32::try_from(u64::from(slots) * BLOCK).map_err(|_| Error::TooLarge)?;
        if slots == 0 {
            return Err(Error::TooLarge);
        }
        if let Some(o) = st.objects.get(path) {
            return if o.journal && o.size == size {
                Ok(())
            } else {
                Err(Error::Immutable)
            };
        }
        if conflicts(&st.objects, path) {
            return Err(Error::PathConflict);
        }
        self.stage(i, path, Content::Zeros(size), [0; 32], None)
    }

    /// Appends a new version of `ns`'s checkpoint (staged like a put; durable after the next
    /// flush). Readers see the latest version; every version stays on disk.
    pub fn put_checkpoint(&mut self, ns: Namespace, data: &[u8]) -> Result<(), Error> {
        self.writable()?;
        let i = self.ns(ns)?;
        self.undamaged(i)?;
        let hash = manifest::sha256(data);
        let side = manifest::sidecar_content(&self.namespaces[i].name, &hash);
        self.stage(i, CHECKPOINT, Content::Bytes(data), hash, Some(side))
    }

    fn stage(
        &mut self,
        i: usize,
        path: &str,
        content: Content<'_>,
        hash: [u8; 32],
        sidecar: Option<String>,
    ) -> Result<(), Error> {
        let size = match content {
            Content::Bytes(data) => u32::try_from(data.len()).map_err(|_| Error::TooLarge)?,
            Content::Zeros(n) => n,
        };
        let is_journal = matches!(content, Content::Zeros(_));
        let ns_name = self.namespaces[i].name.clone();
        let mut full = String::with_capacity(ns_name.len() + 1 + path.len());
        full.push_str(&ns_name);
        full.push('/');
        full.push_str(path);
        let mut lines = String::new();
        let kind = if sidecar.is_some() {
            Kind::Checkpoint
        } else if is_journal {
            Kind::Journal
        } else {
            Kind::Object
        };
        manifest::push_record(&mut lines, kind, u64::from(size), &hash, &full);
        let mut members_len = tar::member_len(u64::from(size));
        let side_name = manifest::sidecar_name(&ns_name);
        if let Some(s) = &sidecar {
            let h = manifest::sha256(s.as_bytes());
            manifest::push_record(&mut lines, Kind::Sidecar, s.len() as u64, &h, &side_name);
            members_len += tar::member_len(s.len() as u64);
        }
        let mlimit = manifest_limit(self.max_batch);
        let exists = self.namespaces[i].objects.contains_key(path);
        let charge = staged_cost(path) + if exists { 0 } else { entry_cost(path) };
        let over_index = |s: &Self| s.index_used.saturating_add(charge) > s.limits.index_bytes;
        let over_quota = |s: &Self| {
            let st = &s.namespaces[i];
            st.used.index_bytes.saturating_add(charge) > st.quota.index_bytes
        };
        // A full batch, manifest or index budget flushes the batch first (that frees the staged
        // charges); disk quota is not freed by a flush.
        if self.early_flush
            && !self.staged.members.is_empty()
            && (self.batch_len(lines.len(), members_len) > self.max_batch
                || self.manifest_len(lines.len()) > mlimit
                || over_index(self)
                || over_quota(self))
        {
            self.flush()?;
        }
        let len = self.batch_len(lines.len(), members_len);
        if len > self.max_batch || self.manifest_len(lines.len()) > mlimit {
            return Err(Error::TooLarge);
        }
        if over_index(self) {
            return Err(Error::IndexFull);
        }
        // The first object of a batch also pays for the batch (its manifest member and commit
        // record), at most BATCH_OVERHEAD_MAX until the flush knows the exact figure.
        let overhead = if self.staged.entries.is_empty() {
            BATCH_OVERHEAD_MAX
        } else {
            0
        };
        let disk = members_len + lines.len() as u64 + overhead;
        let st = &self.namespaces[i];
        if over_quota(self) || st.used.disk_bytes.saturating_add(disk) > st.quota.disk_bytes {
            return Err(Error::Quota);
        }
        if self
            .end
            .saturating_add(len)
            .saturating_add(COMMIT_LEN + TAIL)
            > self.capacity
        {
            return Err(Error::Full);
        }
        self.reserve_staging()?;
        self.staged
            .entries
            .try_reserve(1)
            .map_err(|_| Error::OutOfMemory)?;
        let staged_path = try_box(path)?;
        let key = if exists { None } else { Some(try_box(path)?) };
        let rel = self.staged.members.len() as u64;
        self.staged.lines.push_str(&lines);
        match content {
            Content::Bytes(data) => push_member(&mut self.staged.members, full.as_bytes(), data),
            Content::Zeros(n) => {
                let m = &mut self.staged.members;
                m.extend_from_slice(&tar::header(full.as_bytes(), u64::from(n)));
                m.resize(m.len() + n as usize, 0);
            }
        }
        if let Some(s) = &sidecar {
            push_member(&mut self.staged.members, side_name.as_bytes(), s.as_bytes());
        }
        let obj = Obj {
            hash,
            loc: STAGED | rel,
            size,
            journal: is_journal,
        };
        let st = &mut self.namespaces[i];
        let journal_prev = is_journal.then(|| {
            st.journal.replace(Latest {
                loc: STAGED | rel,
                slots: size / BLOCK as u32,
                next: 0,
            })
        });
        let old = match key {
            Some(key) => {
                st.objects.insert(key, obj);
                None
            }
            None => st.objects.get_mut(path).map(|o| core::mem::replace(o, obj)),
        };
        let checkpoint = sidecar.is_some();
        if checkpoint {
            st.checkpoint_versions += 1;
            self.checkpoint_versions += 1;
        } else if old.is_none() {
            self.objects += 1;
        }
        self.staged.entries.push(StagedEntry {
            ns: i as u32,
            path: staged_path,
            old,
            charge,
            disk,
            checkpoint,
            size,
            journal_prev,
        });
        st.used.index_bytes += charge;
        st.used.disk_bytes += disk;
        self.index_used += charge;
        self.data_bytes += u64::from(size);
        Ok(())
    }

    /// Allocates the staging buffers at their limits, once: they never grow by doubling.
    fn reserve_staging(&mut self) -> Result<(), Error> {
        let oom = |_| Error::OutOfMemory;
        let members = usize::try_from(self.max_batch + TAIL).map_err(|_| Error::OutOfMemory)?;
        let lines =
            usize::try_from(manifest_limit(self.max_batch)).map_err(|_| Error::OutOfMemory)?;
        let st = &mut self.staged;
        if st.members.capacity() < members {
            st.members
                .try_reserve_exact(members - st.members.len())
                .map_err(oom)?;
        }
        if st.lines.capacity() < lines {
            st.lines
                .try_reserve_exact(lines - st.lines.len())
                .map_err(oom)?;
        }
        Ok(())
    }

    /// Undoes every staged index change and empties the batch (keeping its buffers): the store
    /// is back at what the last successful flush made durable.
    fn rollback(&mut self) {
        let Store {
            staged, namespaces, ..
        } = self;
        for e in staged.entries.drain(..).rev() {
            let st = &mut namespaces[e.ns as usize];
            if let Some(prev) = e.journal_prev {
                st.journal = prev;
            }
            match e.old {
                Some(o) => {
                    if let Some(cur) = st.objects.get_mut(&*e.path) {
                        *cur = o;
                    }
                }
                None => {
                    st.objects.remove(&*e.path);
                }
            }
            if e.checkpoint {
                st.checkpoint_versions -= 1;
                self.checkpoint_versions -= 1;
            } else if e.old.is_none() {
                self.objects -= 1;
            }
            self.data_bytes -= u64::from(e.size);
            self.index_used -= e.charge;
            st.used.index_bytes -= e.charge;
            st.used.disk_bytes -= e.disk;
        }
        staged.lines.clear();
        staged.members.clear();
    }

    /// Length of the staged batch's manifest text with `extra_lines` more bytes of lines.
    fn manifest_head_len(&self) -> usize {
        manifest::header_line(self.seq, &self.volume, &self.prev, self.max_batch).len()
    }

    fn manifest_len(&self, extra_lines: usize) -> u64 {
        let head = manifest::header_line(self.seq, &self.volume, &self.prev, self.max_batch);
        (head.len() + self.staged.lines.len() + extra_lines + END_LINE) as u64
    }

    /// Bytes the staged batch would take on disk with `extra_lines` more manifest bytes and
    /// `extra_members` more member bytes.
    fn batch_len(&self, extra_lines: usize, extra_members: u64) -> u64 {
        let head = manifest::header_line(self.seq, &self.volume, &self.prev, self.max_batch);
        let text = head.len() + self.staged.lines.len() + extra_lines + END_LINE;
        tar::member_len(text as u64) + self.staged.members.len() as u64 + extra_members
    }

    fn manifest_text(&self) -> Result<String, Error> {
        let mut text = manifest::header_line(self.seq, &self.volume, &self.prev, self.max_batch);
        text.try_reserve_exact(self.staged.lines.len() + END_LINE)
            .map_err(|_| Error::OutOfMemory)?;
        text.push_str(&self.staged.lines);
        let end = manifest::sha256(text.as_bytes());
        text.push_str("#end ");
        manifest::push_hex(&mut text, &end);
        text.push('\n');
        Ok(text)
    }

    /// Makes every staged object durable: when this returns `Ok`, they survive any crash. With
    /// nothing staged it does nothing. On error the staged batch is discarded and every staged
    /// index change undone: reads see again exactly what the last successful flush made durable
    /// (never a checkpoint that may not reach the disk), and the caller puts again what it still
    /// wants stored (the next flush writes it in full at the same place).
    pub fn flush(&mut self) -> Result<(), Error> {
        self.writable()?;
        if self.staged.members.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.scrub_failed() {
            self.rollback();
            return Err(e);
        }
        let r = self.write_batch();
        if r.is_err() {
            self.rollback();
        }
        r
    }

    /// Zeroes and flushes what a failed batch may have left (the `scrub` range), if anything,
    /// through a fixed block of zeros (no allocation). Until it succeeds, nothing is written.
    fn scrub_failed(&mut self) -> Result<(), Error> {
        let Some((from, to)) = self.scrub else {
            return Ok(());
        };
        const ZEROS: [u8; 16 * SECTOR_SIZE] = [0; 16 * SECTOR_SIZE];
        let mut at = from;
        while at < to {
            let n = (to - at).min(ZEROS.len() as u64) as usize;
            write_all(&mut self.dev, at / BLOCK, &ZEROS[..n])?;
            at += n as u64;
        }
        self.dev.flush()?;
        self.scrub = None;
        Ok(())
    }

    fn write_batch(&mut self) -> Result<(), Error> {
        // Anything that fails from the first write on leaves bytes behind: scrub them first
        // next time (see `scrub`). The range ends at the device's end at most.
        let end = self.end;
        let len = self.batch_len(0, 0) + COMMIT_LEN + 2 * TAIL;
        let scrub = (end, end.saturating_add(len).min(self.capacity));
        let r = self.write_batch_phases();
        if r.is_err() {
            self.scrub = Some(scrub);
        }
        r
    }

    fn write_batch_phases(&mut self) -> Result<(), Error> {
        let text = self.manifest_text()?;
        let name = manifest::manifest_name(self.seq);
        let mut head = Vec::new();
        head.try_reserve_exact(tar::member_len(text.len() as u64) as usize)
            .map_err(|_| Error::OutOfMemory)?;
        push_member(&mut head, name.as_bytes(), text.as_bytes());
        let members_at = self.end + head.len() as u64;
        let batch_end = members_at + self.staged.members.len() as u64;
        if batch_end + COMMIT_LEN + TAIL > self.capacity {
            return Err(Error::Full);
        }
        let manifest_hash = manifest::sha256(&text.as_bytes()[..text.len() - END_LINE]);
        // The commit record names the namespaces written, so that if this manifest is ever
        // damaged they are known (see crate::commit).
        let mut touched: Vec<String> = Vec::new();
        for e in &self.staged.entries {
            let name = &self.namespaces[e.ns as usize].name;
            if let Err(k) = touched.binary_search_by(|t| t.as_str().cmp(name)) {
                touched.insert(k, String::from(&**name));
            }
        }
        let commit = Commit {
            seq: self.seq,
            volume: self.volume,
            batch: self.end,
            length: batch_end - self.end,
            manifest: manifest_hash,
            touched: Touched::Some(touched),
        };
        // Phase 1: members and an end marker after them first, the manifest last (over the old
        // end marker), then a flush. On a device that keeps write order, a crash leaves the old
        // end marker in place and the image a clean tar stream. (The staging buffer has room
        // for the marker: it never reallocates.)
        let n = self.staged.members.len();
        self.staged.members.extend_from_slice(&[0; TAIL as usize]);
        let r = write_all(&mut self.dev, members_at / BLOCK, &self.staged.members);
        self.staged.members.truncate(n);
        r?;
        write_all(&mut self.dev, self.end / BLOCK, &head)?;
        self.dev.flush()?;
        // Phase 2: the commit record (over that end marker) and a new end marker, then a flush.
        // Only now is the batch acknowledged: from here on a member that fails its hash was
        // altered after it was durable, which mount reports as damage, never as a torn tail.
        let mut rec = commit.member();
        rec.extend_from_slice(&[0; TAIL as usize]);
        write_all(&mut self.dev, batch_end / BLOCK, &rec)?;
        self.dev.flush()?;
        // The batch's exact overhead, charged to its first object's namespace, which was
        // charged BATCH_OVERHEAD_MAX when it was staged.
        let overhead = head.len() as u64
            - (text.len() - self.manifest_head_len() - END_LINE) as u64
            + COMMIT_LEN;
        if let Some(first) = self.staged.entries.first() {
            let st = &mut self.namespaces[first.ns as usize];
            st.used.disk_bytes -= BATCH_OVERHEAD_MAX - overhead.min(BATCH_OVERHEAD_MAX);
        }
        let Store {
            staged, namespaces, ..
        } = self;
        for e in staged.entries.drain(..) {
            let st = &mut namespaces[e.ns as usize];
            if let Some(o) = st.objects.get_mut(&*e.path) {
                if o.loc & STAGED != 0 {
                    let staged_at = o.loc;
                    o.loc = members_at + (o.loc & !STAGED);
                    if let Some(j) = st.journal.as_mut().filter(|j| j.loc == staged_at) {
                        j.loc = o.loc;
                    }
                }
            }
            let released = staged_cost(&e.path);
            self.index_used -= released;
            namespaces[e.ns as usize].used.index_bytes -= released;
        }
        staged.lines.clear();
        staged.members.clear();
        self.end = batch_end + COMMIT_LEN;
        self.seq += 1;
        self.prev = manifest_hash;
        Ok(())
    }

    /// Whether `path` exists in `ns` (staged objects included). `checkpoint` exists once a
    /// version was put.
    pub fn exists(&self, ns: Namespace, path: &str) -> Result<bool, Error> {
        Ok(self.namespaces[self.ns(ns)?].objects.contains_key(path))
    }

    /// Size of the object at `path`, if it exists.
    pub fn size(&self, ns: Namespace, path: &str) -> Result<Option<u64>, Error> {
        let st = &self.namespaces[self.ns(ns)?];
        Ok(st.objects.get(path).map(|o| u64::from(o.size)))
    }

    /// Reads the object at `path` (or the latest checkpoint, for `checkpoint`) into `out`
    /// (cleared first); `Ok(false)` if absent. Data read from the device is checked against its
    /// header and SHA-256 first: damage is [`Error::Corrupt`], never wrong bytes.
    pub fn get(&mut self, ns: Namespace, path: &str, out: &mut Vec<u8>) -> Result<bool, Error> {
        out.clear();
        let i = self.ns(ns)?;
        let st = &self.namespaces[i];
        if let Some(d) = st.damage.filter(|d| d.lost && path == CHECKPOINT) {
            // Whichever way it is asked for (see `checkpoint`).
            return Err(Error::Damaged(d.problem));
        }
        let Some(&o) = st.objects.get(path) else {
            return Ok(false);
        };
        if o.journal {
            return Err(Error::WrongKind);
        }
        let size = o.size as usize;
        if o.loc & STAGED != 0 {
            let at = (o.loc & !STAGED) as usize + SECTOR_SIZE;
            out.try_reserve_exact(size)
                .map_err(|_| Error::OutOfMemory)?;
            out.extend_from_slice(&self.staged.members[at..at + size]);
            return Ok(true);
        }
        let mut name = [0u8; tar::MAX_NAME];
        let n = full_name(&mut name, &st.name, path);
        read_member(&mut self.dev, o.loc, &name[..n], size as u64, &o.hash, out).map_err(|e| {
            match e {
                MemberError::Io(e) => Error::Io(e),
                MemberError::NoMemory => Error::OutOfMemory,
                MemberError::Bad(reason) => Error::Corrupt(Problem {
                    offset: o.loc,
                    reason,
                }),
            }
        })?;
        Ok(true)
    }

    /// Reads the latest checkpoint of `ns`; `Ok(false)` if none was ever put.
    ///
    /// A namespace whose committed batch was lost to damage ([`Store::damage`] says `lost`)
    /// fails with [`Error::Damaged`]: the version the index holds may not be its latest, and
    /// serving an older one would roll its log back.
    pub fn checkpoint(&mut self, ns: Namespace, out: &mut Vec<u8>) -> Result<bool, Error> {
        self.get(ns, CHECKPOINT, out)
    }

    /// How many checkpoint versions `ns` has (each is on disk, the latest is the one read).
    pub fn checkpoint_versions(&self, ns: Namespace) -> Result<u64, Error> {
        Ok(self.namespaces[self.ns(ns)?].checkpoint_versions)
    }

    /// Appends one record holding `data` (at most [`journal::MAX_RECORD`] bytes) to the journal
    /// at `path` of `ns`, which must be the namespace's latest ([`Store::put_journal`]):
    /// writes its next free slot's sector ([`crate::journal`]), then flushes the device.
    /// Returns the slot only once the record is durable. A record is never rewritten.
    ///
    /// Refused, with nothing written: a journal with every slot used or not the latest
    /// ([`Error::JournalFull`]), a path that is not a journal ([`Error::WrongKind`]), data too
    /// long ([`Error::TooLarge`]), a damaged namespace, a read-only store, anything staged
    /// ([`Error::Staged`]: a record is never written while a batch is half built), and every
    /// append after a failure that could not be cleaned up ([`Error::JournalHalted`]).
    ///
    /// If the sector write or the flush fails, the sector is zeroed and flushed (nothing of a
    /// record that was not acknowledged stays; the slot is used by the next record) and the
    /// error returned; if zeroing fails too, journal appends are refused until the store is
    /// mounted again (`journal_halted`).
    pub fn journal_append(&mut self, ns: Namespace, path: &str, data: &[u8]) -> Result<u32, Error> {
        self.writable()?;
        let i = self.ns(ns)?;
        self.undamaged(i)?;
        if self.journal_halted {
            return Err(Error::JournalHalted);
        }
        if self.has_staged() {
            return Err(Error::Staged);
        }
        let st = &self.namespaces[i];
        let o = match st.objects.get(path) {
            Some(o) if o.journal => *o,
            _ => return Err(Error::WrongKind),
        };
        let latest = match st.journal {
            Some(j) if j.loc == o.loc && j.next < j.slots => j,
            _ => return Err(Error::JournalFull),
        };
        let sector = journal::encode(&self.volume, latest.next, data).ok_or(Error::TooLarge)?;
        let lba = o.loc / BLOCK + 1 + u64::from(latest.next);
        let written = write_all(&mut self.dev, lba, &sector).and_then(|()| self.dev.flush());
        if let Err(e) = written {
            let zeroed =
                write_all(&mut self.dev, lba, &[0; SECTOR_SIZE]).and_then(|()| self.dev.flush());
            if zeroed.is_err() {
                self.journal_halted = true;
            }
            return Err(Error::Io(e));
        }
        if let Some(j) = self.namespaces[i].journal.as_mut() {
            j.next += 1;
        }
        Ok(latest.next)
    }

    /// Reads record `slot` of the journal at `path` of `ns` into `out` (cleared first):
    /// `Ok(false)` if that slot was never written (or is past the journal's end). The sector
    /// is checked first ([`crate::journal`]): one that is neither zeros nor a valid record for
    /// its volume and slot is [`Error::Corrupt`], never wrong bytes. A path that is not a
    /// journal is [`Error::WrongKind`].
    pub fn journal_read(
        &mut self,
        ns: Namespace,
        path: &str,
        slot: u32,
        out: &mut Vec<u8>,
    ) -> Result<bool, Error> {
        out.clear();
        let i = self.ns(ns)?;
        let o = match self.namespaces[i].objects.get(path) {
            Some(o) if o.journal => *o,
            _ => return Err(Error::WrongKind),
        };
        if slot >= o.size / BLOCK as u32 || o.loc & STAGED != 0 {
            return Ok(false);
        }
        let at = o.loc + BLOCK * (1 + u64::from(slot));
        let mut sector = [0u8; SECTOR_SIZE];
        self.dev.read(at / BLOCK, &mut sector)?;
        match journal::decode(&sector, &self.volume, slot) {
            Sector::Zero => Ok(false),
            Sector::Record(data) => {
                out.try_reserve_exact(data.len())
                    .map_err(|_| Error::OutOfMemory)?;
                out.extend_from_slice(data);
                Ok(true)
            }
            Sector::Bad => Err(Error::Corrupt(Problem {
                offset: at,
                reason: Corruption::JournalRecord,
            })),
        }
    }

    /// The capacity and used slots of the journal at `path` of `ns`; `Ok(None)` if there is
    /// no such object, [`Error::WrongKind`] if it is not a journal. The namespace's latest
    /// journal was checked at mount and is known; an earlier one (or any, in a damaged
    /// namespace) is read and checked whole now (records `0..used`, then only zero sectors,
    /// else [`Error::Corrupt`]).
    pub fn journal_stat(
        &mut self,
        ns: Namespace,
        path: &str,
    ) -> Result<Option<JournalStat>, Error> {
        let i = self.ns(ns)?;
        let st = &self.namespaces[i];
        let o = match st.objects.get(path) {
            None => return Ok(None),
            Some(o) if o.journal => *o,
            Some(_) => return Err(Error::WrongKind),
        };
        let slots = o.size / BLOCK as u32;
        // A damaged namespace's latest journal may be where the damage is: read it again.
        if let Some(j) = st.journal.filter(|j| j.loc == o.loc && st.damage.is_none()) {
            return Ok(Some(JournalStat {
                slots,
                used: j.next,
            }));
        }
        match scan_journal(&mut self.dev, o.loc, slots, &self.volume)? {
            Ok(used) => Ok(Some(JournalStat { slots, used })),
            Err(p) => Err(Error::Corrupt(p)),
        }
    }

    /// The journals of `ns` (path and slots), in byte order of path.
    pub fn journals(&self, ns: Namespace) -> Result<impl Iterator<Item = (&str, u32)> + '_, Error> {
        let st = &self.namespaces[self.ns(ns)?];
        Ok(st
            .objects
            .iter()
            .filter(|(_, o)| o.journal)
            .map(|(k, o)| (&**k, o.size / BLOCK as u32)))
    }

    /// The path of `ns`'s latest journal (the one that takes records), if it has one.
    pub fn latest_journal(&self, ns: Namespace) -> Result<Option<&str>, Error> {
        let st = &self.namespaces[self.ns(ns)?];
        Ok(st.journal.and_then(|j| {
            st.objects
                .iter()
                .find(|(_, o)| o.journal && o.loc == j.loc)
                .map(|(k, _)| &**k)
        }))
    }

    /// Objects of `ns` whose path starts with `prefix`, in byte order, with their sizes
    /// (`checkpoint` included when it matches).
    pub fn list<'a>(
        &'a self,
        ns: Namespace,
        prefix: &'a str,
    ) -> Result<impl Iterator<Item = (&'a str, u64)> + 'a, Error> {
        let st = &self.namespaces[self.ns(ns)?];
        Ok(st
            .objects
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, o)| (&**k, u64::from(o.size))))
    }

    /// Volume statistics, as of the last flush plus staged objects.
    pub fn stats(&self) -> Report {
        Report {
            batches: self.seq,
            objects: self.objects,
            checkpoint_versions: self.checkpoint_versions,
            data_bytes: self.data_bytes,
            end: self.end,
            capacity: self.capacity,
            problem: self.first_damage,
            tail: None,
            damage: self.first_damage,
            damaged: self.damaged,
            repaired: false,
        }
    }

    /// Bytes still free for batches (the end marker's reserve already subtracted).
    pub fn free_bytes(&self) -> u64 {
        self.capacity
            .saturating_sub(self.end + COMMIT_LEN + TAIL + self.batch_len(0, 0))
    }

    /// The volume id given at format.
    pub fn volume_id(&self) -> [u8; 16] {
        self.volume
    }

    /// The batch limit given at format.
    pub fn max_batch_bytes(&self) -> u64 {
        self.max_batch
    }

    /// The device (tests inspect fault devices through it).
    pub fn device(&self) -> &D {
        &self.dev
    }

    /// Unmounts, returning the device. Staged objects that were not flushed are dropped.
    pub fn into_device(self) -> D {
        self.dev
    }
}

/// Whether `path` cannot coexist with `objects` in an extracted tree: an object is a directory
/// prefix of `path`, or `path` is a directory prefix of an object.
fn conflicts(objects: &BTreeMap<Box<str>, Obj>, path: &str) -> bool {
    let ancestor = path
        .bytes()
        .enumerate()
        .any(|(i, b)| b == b'/' && objects.contains_key(&path[..i]));
    if ancestor {
        return true;
    }
    let mut dir = String::with_capacity(path.len() + 1);
    dir.push_str(path);
    dir.push('/');
    objects
        .range::<str, _>((Bound::Included(dir.as_str()), Bound::Unbounded))
        .next()
        .is_some_and(|(k, _)| k.starts_with(dir.as_str()))
}

fn full_name(buf: &mut [u8; tar::MAX_NAME], ns: &str, path: &str) -> usize {
    let n = (ns.len() + 1 + path.len()).min(tar::MAX_NAME);
    let mut w = 0;
    for &b in ns
        .as_bytes()
        .iter()
        .chain(b"/")
        .chain(path.as_bytes())
        .take(n)
    {
        buf[w] = b;
        w += 1;
    }
    w
}

/// Header, data and padding of one member.
fn member_bytes(name: &str, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(tar::member_len(data.len() as u64) as usize);
    push_member(&mut v, name.as_bytes(), data);
    v
}

fn push_member(out: &mut Vec<u8>, name: &[u8], data: &[u8]) {
    out.extend_from_slice(&tar::header(name, data.len() as u64));
    out.extend_from_slice(data);
    let pad = tar::padded(data.len() as u64) as usize - data.len();
    out.resize(out.len() + pad, 0);
}

enum MemberError {
    Io(IoError),
    NoMemory,
    Bad(Corruption),
}

impl From<IoError> for MemberError {
    fn from(e: IoError) -> Self {
        MemberError::Io(e)
    }
}

/// Reads the member at `at` into `out` and checks header, padding and hash; leaves the data.
fn read_member<D: BlockDevice>(
    dev: &mut D,
    at: u64,
    name: &[u8],
    size: u64,
    hash: &[u8; 32],
    out: &mut Vec<u8>,
) -> Result<(), MemberError> {
    let len = usize::try_from(tar::member_len(size)).map_err(|_| IoError::OutOfRange)?;
    out.clear();
    out.try_reserve_exact(len)
        .map_err(|_| MemberError::NoMemory)?;
    out.resize(len, 0);
    dev.read(at / BLOCK, out)?;
    if out[..SECTOR_SIZE] != tar::header(name, size)[..] {
        return Err(MemberError::Bad(Corruption::BadHeader));
    }
    let end = SECTOR_SIZE + size as usize;
    if out[end..].iter().any(|&b| b != 0) {
        return Err(MemberError::Bad(Corruption::BadPadding));
    }
    if manifest::sha256(&out[SECTOR_SIZE..end]) != *hash {
        return Err(MemberError::Bad(Corruption::DataHash));
    }
    out.truncate(end);
    out.drain(..SECTOR_SIZE);
    Ok(())
}

/// Checks every member of a batch: each bad one's record index, offset and reason. A
/// journal's header is checked, and with `journals` its records too ([`scan_journal`]).
fn verify_batch<D: BlockDevice>(
    dev: &mut D,
    at: u64,
    m: &Manifest,
    journals: bool,
    volume: &[u8; 16],
) -> Result<Vec<(usize, Problem)>, Error> {
    let mut off = at + tar::member_len(m.text.len() as u64);
    let mut buf = Vec::new();
    let mut bad = Vec::new();
    for (k, r) in m.records.iter().enumerate() {
        if r.kind == Kind::Journal {
            let mut head = [0u8; SECTOR_SIZE];
            dev.read(off / BLOCK, &mut head)?;
            let problem = if head != tar::header(m.name(r).as_bytes(), r.size) {
                Some(Problem {
                    offset: off,
                    reason: Corruption::BadHeader,
                })
            } else if journals {
                let slots = (r.size / BLOCK) as u32;
                scan_journal(dev, off, slots, volume)?.err()
            } else {
                None
            };
            bad.extend(problem.map(|p| (k, p)));
            off += tar::member_len(r.size);
            continue;
        }
        match read_member(dev, off, m.name(r).as_bytes(), r.size, &r.hash, &mut buf) {
            Ok(()) => {}
            Err(MemberError::Io(e)) => return Err(Error::Io(e)),
            Err(MemberError::NoMemory) => return Err(Error::OutOfMemory),
            Err(MemberError::Bad(reason)) => bad.push((
                k,
                Problem {
                    offset: off,
                    reason,
                },
            )),
        }
        off += tar::member_len(r.size);
    }
    Ok(bad)
}

/// Checks the records of the journal whose member header is at `at`: slots `0..used` valid
/// records, then only zero sectors. `Ok(Ok(used))`, or the first damaged sector: one that is
/// neither zeros nor a valid record for its slot ([`Corruption::JournalRecord`]), or a record
/// after a zero sector ([`Corruption::JournalGap`]). Reads the whole journal, 64 sectors at a
/// time.
fn scan_journal<D: BlockDevice>(
    dev: &mut D,
    at: u64,
    slots: u32,
    volume: &[u8; 16],
) -> Result<Result<u32, Problem>, Error> {
    let from = at + BLOCK;
    let stop = from + u64::from(slots) * BLOCK;
    let mut used = None;
    let found = scan_sectors(dev, from, stop, |_, here, block| {
        let slot = ((here - from) / BLOCK) as u32;
        let bad = |reason| {
            Ok(Some(Problem {
                offset: here,
                reason,
            }))
        };
        match journal::decode(block, volume, slot) {
            Sector::Zero => {
                used.get_or_insert(slot);
                Ok(None)
            }
            Sector::Record(_) if used.is_none() => Ok(None),
            Sector::Record(_) => bad(Corruption::JournalGap),
            Sector::Bad => bad(Corruption::JournalRecord),
        }
    })?;
    Ok(match found {
        Some(p) => Err(p),
        None => Ok(used.unwrap_or(slots)),
    })
}

/// The namespace a manifest record belongs to (a checkpoint checksum member: its checkpoint's).
fn record_namespace<'m>(m: &'m Manifest, r: &manifest::Record) -> &'m str {
    let name = m.name(r);
    let skip = match r.kind {
        Kind::Sidecar => manifest::META_DIR.len() + "/checkpoint/".len(),
        _ => 0,
    };
    name.get(skip..skip + r.ns_len).unwrap_or("")
}

/// What the commit slot after a batch holds.
enum Slot {
    /// This batch's commit record, agreeing with its manifest.
    Commit,
    /// Zero blocks: the record was never written.
    Zero,
    /// Anything else: a torn or damaged record.
    Bad,
}

/// Reads the commit slot at `at` of batch `seq`, which started at `batch` with manifest `m`.
fn read_slot<D: BlockDevice>(
    dev: &mut D,
    at: u64,
    batch: u64,
    m: &Manifest,
    volume: &[u8; 16],
) -> Result<Slot, Error> {
    let mut block = [0u8; COMMIT_LEN as usize];
    dev.read(at / BLOCK, &mut block)?;
    if block.iter().all(|&b| b == 0) {
        return Ok(Slot::Zero);
    }
    Ok(match Commit::from_member(&block, m.seq) {
        Some(c)
            if c.volume == *volume
                && c.batch == batch
                && c.length == m.length
                && c.manifest == m.end =>
        {
            Slot::Commit
        }
        _ => Slot::Bad,
    })
}

/// Calls `look(dev, offset, sector)` for every sector in `[from, stop)` (in order, read 64
/// sectors at a time) until it returns `Some`; what it returned. The scans for evidence past a
/// damaged spot (a commit record, a later manifest) are this loop.
fn scan_sectors<D: BlockDevice, T>(
    dev: &mut D,
    from: u64,
    stop: u64,
    mut look: impl FnMut(&mut D, u64, &[u8]) -> Result<Option<T>, Error>,
) -> Result<Option<T>, Error> {
    let mut chunk = vec![0u8; 64 * SECTOR_SIZE];
    let mut off = from;
    while off < stop {
        let n = ((stop - off) as usize).min(chunk.len());
        dev.read(off / BLOCK, &mut chunk[..n])?;
        for (k, block) in chunk[..n].chunks_exact(SECTOR_SIZE).enumerate() {
            if let Some(t) = look(dev, off + (k * SECTOR_SIZE) as u64, block)? {
                return Ok(Some(t));
            }
        }
        off += n as u64;
    }
    Ok(None)
}

/// After a damaged manifest at `at`: the commit record of batch `seq` for a batch starting at
/// `at`, if one lies within one batch length (its offset and record). Only a batch that was
/// whole and flushed gets one, so finding it means the manifest was altered, not torn.
fn find_commit<D: BlockDevice>(
    dev: &mut D,
    capacity: u64,
    at: u64,
    seq: u64,
    volume: &[u8; 16],
    max_batch: u64,
) -> Result<Option<(u64, Commit)>, Error> {
    let stop = capacity.min(at.saturating_add(max_batch + COMMIT_LEN)) / BLOCK * BLOCK;
    let name = crate::commit::commit_name(seq);
    scan_sectors(dev, at + BLOCK, stop, |dev, here, block| {
        if !block.starts_with(name.as_bytes()) || here + COMMIT_LEN > stop {
            return Ok(None);
        }
        let mut rec = [0u8; COMMIT_LEN as usize];
        dev.read(here / BLOCK, &mut rec)?;
        Ok(Commit::from_member(&rec, seq).filter(|c| {
            c.volume == *volume
                && c.batch == at
                && c.length <= max_batch
                && at.checked_add(c.length) == Some(here)
        }))
        .map(|c| c.map(|c| (here, c)))
    })
}

/// What is at an offset where a batch may start.
enum Probe {
    /// A manifest of the expected sequence that parses and passes its hash.
    Batch(Manifest),
    /// Two zero blocks: the end of the stream.
    End,
    /// Anything else.
    Dirty,
}

/// Reads the manifest of batch `seq` at `at`, if one is there.
fn probe<D: BlockDevice>(
    dev: &mut D,
    capacity: u64,
    at: u64,
    seq: u64,
    max_batch: u64,
) -> Result<Probe, Error> {
    let corrupt = |reason| Error::Corrupt(Problem { offset: at, reason });
    if at + TAIL > capacity {
        return Err(corrupt(Corruption::Truncated));
    }
    // One read for the header and, usually, the whole manifest.
    let first = (capacity - at).min(8 * BLOCK) as usize;
    let mut buf = vec![0u8; first];
    dev.read(at / BLOCK, &mut buf)?;
    if buf[..TAIL as usize].iter().all(|&b| b == 0) {
        return Ok(Probe::End);
    }
    let name = manifest::manifest_name(seq);
    let size = match tar::parse(&buf[..SECTOR_SIZE]) {
        Some((n, size)) if n == name.as_bytes() => size,
        _ => return Ok(Probe::Dirty),
    };
    if tar::member_len(size) > max_batch {
        return Ok(Probe::Dirty);
    }
    if size > manifest_limit(max_batch) {
        // Only a writer with other limits makes this: refuse, do not truncate.
        return Err(Error::ExceedsLimits);
    }
    let len = tar::member_len(size);
    if at + len > capacity {
        return Err(corrupt(Corruption::Truncated));
    }
    let len = len as usize;
    if len > buf.len() {
        let have = buf.len();
        buf.try_reserve_exact(len - have)
            .map_err(|_| Error::OutOfMemory)?;
        buf.resize(len, 0);
        dev.read((at + have as u64) / BLOCK, &mut buf[have..])?;
    }
    if buf[SECTOR_SIZE + size as usize..len]
        .iter()
        .any(|&b| b != 0)
    {
        return Ok(Probe::Dirty);
    }
    buf.truncate(SECTOR_SIZE + size as usize);
    buf.drain(..SECTOR_SIZE);
    match Manifest::parse(buf) {
        Ok(m) => Ok(Probe::Batch(m)),
        Err(_) => Ok(Probe::Dirty),
    }
}

/// After a dirty end at `at`: whether a valid manifest of a later batch of this volume lies
/// within one batch length, which a crash cannot produce.
fn later_batch_within<D: BlockDevice>(
    dev: &mut D,
    capacity: u64,
    at: u64,
    seq: u64,
    volume: &[u8; 16],
    max_batch: u64,
) -> Result<bool, Error> {
    let stop = capacity.min(at.saturating_add(max_batch + TAIL)) / BLOCK * BLOCK;
    let prefix = b".psdb/batch/";
    let found = scan_sectors(dev, at + BLOCK, stop, |dev, here, block| {
        if !block.starts_with(prefix) {
            return Ok(None);
        }
        let Some(s) = tar::parse(block)
            .and_then(|(name, _)| name.strip_prefix(prefix))
            .and_then(|r| r.strip_suffix(b".sha256"))
            .filter(|hex| hex.len() == 16)
            .and_then(|hex| core::str::from_utf8(hex).ok())
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .filter(|&s| s > seq)
        else {
            return Ok(None);
        };
        match probe(dev, capacity, here, s, max_batch) {
            Ok(Probe::Batch(m)) if m.volume == *volume => Ok(Some(())),
            Err(e @ (Error::Io(_) | Error::OutOfMemory)) => Err(e),
            // Anything else here (not a manifest, another volume's, one reaching past the end
            // of the device) is not evidence of a later batch.
            _ => Ok(None),
        }
    })?;
    Ok(found.is_some())
}

/// At mount, a budget error means the volume needs more index than this store may use.
fn over(e: Error) -> Error {
    match e {
        Error::IndexFull => Error::ExceedsLimits,
        e => e,
    }
}

/// Whether a manifest continues the chain of `store`.
fn continues<D: BlockDevice>(store: &Store<D>, m: &Manifest) -> bool {
    m.volume == store.volume
        && m.prev == store.prev
        && m.seq == store.seq
        && m.max_batch == store.max_batch
        && m.length <= store.max_batch
}

/// Walks the chain and builds the index. `verify_all` (fsck) reads and checks every member;
/// otherwise only the final batch's, and those of a batch without a commit record.
///
/// Each batch is classified by its commit record (see [`crate::commit`]):
/// - committed: indexed; members that do not verify are damage (reported, kept, their
///   namespace marked: it takes no more writes);
/// - committed, manifest damaged: stepped over using the record; the namespaces it names are
///   marked lost (their checkpoints are not served);
/// - no record, members whole: indexed (a complete batch loses nothing by being kept); at the
///   end of the chain a read-write mount writes its record, before later batches the record
///   was damaged;
/// - no record, members not whole, nothing after it: a torn tail, discarded.
///
/// A damaged batch that no commit record or later batch accounts for, followed by later
/// batches, fails the mount ([`Corruption::DamagedBatch`]): two faults in one place.
pub(crate) fn load<D: BlockDevice>(
    mut dev: D,
    mode: Mode,
    verify_all: bool,
    limits: Limits,
) -> Result<(Store<D>, Report), Error> {
    let capacity = dev.sector_count().saturating_mul(BLOCK);
    let not_psdb = |reason| Error::Corrupt(Problem { offset: 0, reason });
    let ceiling = u64::from(limits.max_batch_ceiling.min(MAX_MAX_BATCH));
    let vol = match probe(&mut dev, capacity, 0, 0, ceiling) {
        Ok(Probe::Batch(m)) => m,
        Ok(_) | Err(Error::Corrupt(_)) => {
            let mut first = [0u8; 2 * SECTOR_SIZE];
            let old = capacity >= first.len() as u64
                && dev.read(0, &mut first).is_ok()
                && first[SECTOR_SIZE..].starts_with(b"#psdb-batch v1 seq=0 ");
            return Err(not_psdb(if old {
                Corruption::UnsupportedVersion
            } else {
                Corruption::NotPsdb
            }));
        }
        Err(e) => return Err(e),
    };
    if vol.seq != 0
        || vol.prev != [0; 32]
        || !(u64::from(MIN_MAX_BATCH)..=u64::from(MAX_MAX_BATCH)).contains(&vol.max_batch)
        || !vol.max_batch.is_multiple_of(BLOCK)
    {
        return Err(not_psdb(Corruption::NotPsdb));
    }
    if vol.max_batch > ceiling {
        return Err(Error::ExceedsLimits);
    }
    let mut store = Store::empty(dev, mode, vol.volume, vol.max_batch, capacity);
    store.limits = limits;
    let mut at = 0;
    // The last committed batch, whose members are checked at the end (unless verify_all did).
    let mut last: Option<(u64, Manifest)> = None;
    let mut tail = None;
    loop {
        let probed = probe(&mut store.dev, capacity, at, store.seq, store.max_batch)?;
        let m = match probed {
            Probe::End => break,
            Probe::Batch(m) if continues(&store, &m) => m,
            Probe::Batch(_) | Probe::Dirty => {
                if at == 0 {
                    return Err(not_psdb(Corruption::NotPsdb));
                }
                let found = find_commit(
                    &mut store.dev,
                    capacity,
                    at,
                    store.seq,
                    &store.volume,
                    store.max_batch,
                )?;
                if let Some((c_at, c)) = found {
                    // A committed batch whose manifest was altered afterwards.
                    let problem = Problem {
                        offset: at,
                        reason: Corruption::LostBatch,
                    };
                    store.note_damage(problem);
                    match &c.touched {
                        Touched::Some(names) => {
                            for n in names {
                                let i = store.ns_index_or_create(n).map_err(over)? as usize;
                                store.mark(i, problem, true);
                            }
                        }
                        Touched::All => {
                            store.lost_all = Some(problem);
                            for i in 0..store.namespaces.len() {
                                store.mark(i, problem, true);
                            }
                        }
                    }
                    last = None;
                    store.seq += 1;
                    store.prev = c.manifest;
                    at = c_at + COMMIT_LEN;
                    continue;
                }
                if later_batch_within(
                    &mut store.dev,
                    capacity,
                    at,
                    store.seq,
                    &store.volume,
                    store.max_batch,
                )? {
                    return Err(Error::Corrupt(Problem {
                        offset: at,
                        reason: Corruption::DamagedBatch,
                    }));
                }
                tail = Some(Problem {
                    offset: at,
                    reason: Corruption::IncompleteTail,
                });
                break;
            }
        };
        let slot_at = at + m.length;
        if slot_at + COMMIT_LEN + TAIL > capacity {
            return Err(Error::Corrupt(Problem {
                offset: at,
                reason: Corruption::Truncated,
            }));
        }
        let next = slot_at + COMMIT_LEN;
        let slot = read_slot(&mut store.dev, slot_at, at, &m, &store.volume)?;
        let committed = matches!(slot, Slot::Commit);
        let bad = if verify_all || !committed {
            // Without a record, a journal whose sectors are not zeros or records (stale bytes
            // of an older volume, say) makes the batch torn, not damaged.
            Some(verify_batch(&mut store.dev, at, &m, true, &store.volume)?)
        } else {
            None
        };
        // Without a valid record, only a later batch proves this one was committed (it was
        // written only after this batch's record was flushed).
        let proven_later = !committed && {
            let after = probe(
                &mut store.dev,
                capacity,
                next,
                store.seq + 1,
                store.max_batch,
            )?;
            matches!(after, Probe::Batch(n) if n.volume == store.volume && n.prev == m.end)
        };
        let whole = bad.as_ref().is_none_or(|b| b.is_empty());
        if !committed && !whole && !proven_later {
            // Torn: never acknowledged. Discard it.
            let offset = match bad.as_ref().and_then(|b| b.first()) {
                Some((_, p)) if verify_all => p.offset,
                _ => at,
            };
            tail = Some(Problem {
                offset,
                reason: Corruption::IncompleteTail,
            });
            // A read-write mount zeroes all of it, not just where the end marker goes: what a
            // torn batch held (a checkpoint signed for a request never acknowledged, say)
            // must not stay readable beside the one signed in its place later.
            store.scrub = Some((at, (next + TAIL).min(capacity)));
            break;
        }
        store.apply(at, &m)?;
        if let Some(bad) = bad {
            store.mark_members(&m, &bad).map_err(over)?;
        }
        store.seq += 1;
        store.prev = m.end;
        at = next;
        if committed {
            last = if verify_all {
                None
            } else {
                Some((slot_at - m.length, m))
            };
            continue;
        }
        last = None;
        let problem = Problem {
            offset: slot_at,
            reason: Corruption::BadCommit,
        };
        if proven_later {
            // The record of a committed batch was damaged: report it (it holds no data).
            store.note_damage(problem);
            continue;
        }
        // The end of the chain: a whole batch whose record never landed (a crash between the
        // two flushes: never acknowledged, and kept). A read-write mount writes the record.
        tail = Some(problem);
        let commit = Commit {
            seq: m.seq,
            volume: store.volume,
            batch: slot_at - m.length,
            length: m.length,
            manifest: m.end,
            touched: Touched::Some(touched_by(&m)),
        };
        store.pending_commit = Some((slot_at, commit));
        break;
    }
    if let Some((off, m)) = last.take() {
        // The final committed batch: checked whole at every mount (bounded by the batch limit).
        let bad = verify_batch(&mut store.dev, off, &m, false, &store.volume)?;
        store.mark_members(&m, &bad).map_err(over)?;
    }
    if !verify_all {
        // Every namespace's latest journal, the one that takes records: its records are
        // checked at every mount (at most `maxbatch` bytes each) and its next slot found.
        // Earlier journals are checked when read, and all of them by fsck (`verify_all`,
        // which checked them with their batches above).
        for i in 0..store.namespaces.len() {
            let Some(j) = store.namespaces[i].journal else {
                continue;
            };
            match scan_journal(&mut store.dev, j.loc, j.slots, &store.volume)? {
                Ok(used) => {
                    if let Some(j) = store.namespaces[i].journal.as_mut() {
                        j.next = used;
                    }
                }
                Err(problem) => {
                    store.note_damage(problem);
                    store.mark(i, problem, false);
                }
            }
        }
    }
    store.end = at;
    let stats = store.stats();
    let report = Report {
        problem: stats.damage.or(tail),
        tail,
        ..stats
    };
    Ok((store, report))
}

/// The namespaces a manifest's records write, sorted and without duplicates.
fn touched_by(m: &Manifest) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for r in &m.records {
        let ns = record_namespace(m, r);
        if let Err(k) = v.binary_search_by(|t| t.as_str().cmp(ns)) {
            v.insert(k, String::from(ns));
        }
    }
    v
}

impl<D: BlockDevice> Store<D> {
    /// Marks the namespaces of a committed batch's bad members damaged, and counts them.
    fn mark_members(&mut self, m: &Manifest, bad: &[(usize, Problem)]) -> Result<(), Error> {
        for &(k, problem) in bad {
            self.note_damage(problem);
            if let Some(r) = m.records.get(k) {
                let i = self.ns_index_or_create(record_namespace(m, r))? as usize;
                self.mark(i, problem, false);
            }
        }
        Ok(())
    }
}

impl<D: BlockDevice> Store<D> {
    /// Adds a mounted batch to the index.
    fn apply(&mut self, at: u64, m: &Manifest) -> Result<(), Error> {
        let mut off = at + tar::member_len(m.text.len() as u64);
        // The namespace of the previous record: a sidecar follows its checkpoint.
        let mut last = None;
        // Where the current record's manifest lines start: after the header line, then after
        // the previous record's name (a record's lines end with its name).
        let mut line_start = m.text.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1);
        // The batch's own cost (manifest member beyond its records' lines, commit record) is
        // its first object's namespace's, as when it was written.
        let records_lines = m.text.len().saturating_sub(line_start + END_LINE) as u64;
        let overhead = tar::member_len(m.text.len() as u64) - records_lines + COMMIT_LEN;
        let mut overhead = Some(overhead).filter(|_| !m.records.is_empty());
        for r in &m.records {
            let name = m.name(r);
            let offset = off;
            off += tar::member_len(r.size);
            // Disk charged to the namespace: the member and its manifest lines.
            let lines = (r.name.end + 1).saturating_sub(line_start) as u64;
            line_start = r.name.end + 1;
            let disk = tar::member_len(r.size) + lines;
            if r.kind == Kind::Sidecar {
                if let Some(i) = last.take() {
                    let st: &mut NsState = &mut self.namespaces[i];
                    st.used.disk_bytes += disk;
                }
                continue;
            }
            let (ns, path) = (&name[..r.ns_len], &name[r.ns_len + 1..]);
            let i = self.ns_index_or_create(ns).map_err(over)? as usize;
            last = Some(i);
            self.namespaces[i].used.disk_bytes += disk + overhead.take().unwrap_or(0);
            let journal = r.kind == Kind::Journal;
            let obj = Obj {
                hash: r.hash,
                loc: offset,
                size: r.size as u32,
                journal,
            };
            self.data_bytes += r.size;
            let st = &mut self.namespaces[i];
            if journal {
                // The latest so far; its records are checked once the chain is walked.
                st.journal = Some(Latest {
                    loc: offset,
                    slots: (r.size / BLOCK) as u32,
                    next: 0,
                });
            }
            if let Some(o) = st.objects.get_mut(path) {
                if r.kind != Kind::Checkpoint {
                    return Err(Error::Corrupt(Problem {
                        offset,
                        reason: Corruption::Duplicate,
                    }));
                }
                *o = obj;
            } else {
                let cost = entry_cost(path);
                if self.index_used.saturating_add(cost) > self.limits.index_bytes {
                    return Err(Error::ExceedsLimits);
                }
                st.objects.insert(try_box(path)?, obj);
                st.used.index_bytes += cost;
                self.index_used += cost;
                if r.kind != Kind::Checkpoint {
                    self.objects += 1;
                }
            }
            if r.kind == Kind::Checkpoint {
                st.checkpoint_versions += 1;
                self.checkpoint_versions += 1;
            }
        }
        Ok(())
    }
}

/// Checks a whole image: every manifest, header, padding and data hash, and the end marker.
/// Reads everything; writes nothing. `Err` only for device errors: damage is in the report.
pub fn fsck<D: BlockDevice>(dev: D) -> Result<Report, IoError> {
    let capacity = dev.sector_count().saturating_mul(BLOCK);
    match load(dev, Mode::ReadOnly, true, Limits::UNLIMITED) {
        Ok((_, report)) => Ok(report),
        Err(Error::Io(e)) => Err(e),
        Err(Error::Corrupt(p)) => Ok(Report {
            capacity,
            problem: Some(p),
            ..Report::default()
        }),
        Err(_) => Err(IoError::Failed),
    }
}
