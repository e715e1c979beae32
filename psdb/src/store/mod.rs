//! The store: mount, namespaces, write-once puts in batches, reads, and the checks fsck runs.
//!
//! # Writing
//!
//! Puts are written to the disk as they are made (format v4): each member goes beyond the end
//! of the stream, after the sector where the batch's head will go, so the old end-of-archive
//! marker stays in place and nothing committed is written over; only its manifest lines and
//! rollback record stay in memory ([`Store::put_begin`] and [`Store::put_chunk`] take an object
//! in pieces). [`Store::flush`] writes the manifest after the members with an end marker after
//! it, then the head over the old end marker, flushes, then writes the commit record and
//! flushes again. Only after that does the batch count as written: `end` advances and the
//! staged entries point at the disk. If any step fails the batch is discarded, its index
//! changes undone and its range scrubbed before anything else is written, so reads never
//! serve a checkpoint (or object) that may not reach the disk; the caller (a tenant log
//! reopening from its durable checkpoint) puts again what it still wants.
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
//! Bounded by [`Limits`], which the owner of the heap chooses: no batch data is held (one
//! 8 KiB write buffer), the manifest lines are allocated once at [`manifest_limit`] (never
//! grown by doubling); the index (`index.rs`: 48-byte records in pages, paths in an arena) is
//! charged [`INDEX_ENTRY_BYTES`] + path length per object and
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
use core::sync::atomic::{AtomicU64, Ordering};

use crate::commit::{Commit, Touched, COMMIT_LEN};
use crate::device::{write_all, BlockDevice, IoError, SECTOR_SIZE};
use crate::error::{Corruption, Error, Problem};
use crate::head::{self, Head, HEAD_LEN};
use crate::journal::{self, Sector};
use crate::manifest::{self, Kind, Manifest, END_LINE};
use crate::names::{self, CHECKPOINT};
use crate::tar;

mod index;
mod limits;
mod mount;
mod read;
mod write;

use index::Index;
pub use limits::*;
pub use mount::fsck;
use mount::*;
pub use read::{Chunk, Reader};

const BLOCK: u64 = SECTOR_SIZE as u64;
/// The end-of-archive marker: two zero blocks, always kept after the last batch.
const TAIL: u64 = 2 * BLOCK;
/// Set in [`Obj::loc`] while the object is staged: the low bits are its offset in the batch.
const STAGED: u64 = 1 << 63;

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
    /// Largest batch on disk, in bytes. Bounds the largest object, the manifest
    /// ([`manifest_limit`]), and what mount reads beyond manifests (the final batch, and after a crash one batch
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

/// One object, as the index gives it (stored in 48 bytes plus its path: [`index`]).
#[derive(Debug, Clone, Copy)]
struct Obj {
    /// SHA-256 of the data (zeros for a journal: its content is written after its batch).
    hash: [u8; 32],
    /// Offset of the member header on disk, or `STAGED | offset in the staged batch`.
    loc: u64,
    size: u32,
    /// A journal member (v3): read and written by record, never by `get`.
    journal: bool,
    /// What reading the whole member back since mount found (see [`Store::read_at`]).
    check: Check,
}

/// Whether an object's member was read back whole and checked against its SHA-256 since the
/// store was mounted: by [`Store::get`], a sequential [`Reader`] to its end, [`Store::verify`],
/// or mount's check of the final batch. Never set by a put (its bytes were hashed on the way
/// to the disk, not read back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Unchecked,
    Good,
    Bad,
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
    objects: Index,
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

/// The batch being staged: its members are on the disk already (after the head's place at the
/// end of the stream), its manifest lines and rollback records here. Its buffers are allocated
/// once, at their limits, and reused.
#[derive(Debug, Default)]
struct Staged {
    /// Manifest lines, without the header and `#end` lines (at most the manifest limit).
    lines: String,
    /// Bytes of the members written and recorded, from `end + HEAD_LEN`.
    members: u64,
    /// Every staged index change, in order.
    entries: Vec<StagedEntry>,
    /// The sectors every member is written through ([`WRITE_CHUNK`] bytes, allocated once).
    buf: Vec<u8>,
    /// A chunked put in progress ([`Store::put_begin`]).
    open: Option<OpenPut>,
}

impl Staged {
    /// Frees the rollback records' vector after a large batch (it is charged per staged
    /// object, [`STAGED_ENTRY_BYTES`], only while they are staged); a small one is kept.
    fn release_entries(&mut self) {
        if self.entries.capacity() > 64 {
            self.entries = Vec::new();
        }
    }
}

/// A member that fits the staged batch, checked and reserved by [`Store::prepare`], recorded
/// once written.
#[derive(Debug)]
struct Prep {
    ns: u32,
    path: Box<str>,
    /// A new path (room for it reserved in the index).
    new: bool,
    kind: Kind,
    size: u32,
    charge: u64,
    disk: u64,
    /// `<namespace>/<path>`.
    full: String,
    /// Its offset in the staged batch's members.
    rel: u64,
    /// Its members' bytes (a checkpoint's checksum member included).
    members_len: u64,
}

/// A put whose data arrives in pieces.
#[derive(Debug)]
struct OpenPut {
    /// The checked, reserved member (`None` for a write-once check of an existing path).
    prep: Option<Prep>,
    /// The existing object's hash and size, for a write-once check.
    same: Option<([u8; 32], u32)>,
    got: u32,
    hasher: manifest::Hasher,
    writer: Option<SectorWriter>,
}

/// Bytes the write path buffers before writing: small members are written in one piece,
/// large ones straight from the caller's bytes.
pub(super) const WRITE_CHUNK: usize = 16 * SECTOR_SIZE;

/// A block of zeros (scrubs, journals, end markers).
pub(super) static ZEROS: [u8; WRITE_CHUNK] = [0; WRITE_CHUNK];

/// Writes a byte stream to consecutive sectors from a start sector: through its buffer of
/// [`WRITE_CHUNK`] bytes, or straight from the caller's slice when the buffer is empty and the
/// slice holds at least that much; [`SectorWriter::finish`] pads the last sector with zeros.
#[derive(Debug)]
pub(super) struct SectorWriter {
    lba: u64,
    buf: Vec<u8>,
}

impl SectorWriter {
    /// A writer starting at sector `lba`, using `buf` (reserved at [`WRITE_CHUNK`]).
    pub(super) fn new(lba: u64, mut buf: Vec<u8>) -> Self {
        buf.clear();
        SectorWriter { lba, buf }
    }

    pub(super) fn push<D: BlockDevice>(
        &mut self,
        dev: &mut D,
        mut data: &[u8],
    ) -> Result<(), IoError> {
        while !data.is_empty() {
            if self.buf.is_empty() && data.len() >= WRITE_CHUNK {
                let whole = data.len() / SECTOR_SIZE * SECTOR_SIZE;
                write_all(dev, self.lba, &data[..whole])?;
                self.lba += (whole / SECTOR_SIZE) as u64;
                data = &data[whole..];
                continue;
            }
            let n = (WRITE_CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == WRITE_CHUNK {
                self.write_buf(dev)?;
            }
        }
        Ok(())
    }

    /// Pads the stream to a whole sector with zeros (the end of a member), writing only if
    /// the buffer is full.
    pub(super) fn pad<D: BlockDevice>(&mut self, dev: &mut D) -> Result<(), IoError> {
        let padded = self.buf.len().div_ceil(SECTOR_SIZE) * SECTOR_SIZE;
        self.buf.resize(padded, 0);
        if self.buf.len() == WRITE_CHUNK {
            self.write_buf(dev)?;
        }
        Ok(())
    }

    /// Pads to a whole sector with zeros and writes what is buffered.
    pub(super) fn finish<D: BlockDevice>(&mut self, dev: &mut D) -> Result<(), IoError> {
        self.pad(dev)?;
        self.write_buf(dev)
    }

    fn write_buf<D: BlockDevice>(&mut self, dev: &mut D) -> Result<(), IoError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = write_all(dev, self.lba, &self.buf);
        self.lba += (self.buf.len() / SECTOR_SIZE) as u64;
        self.buf.clear();
        r
    }

    /// Its buffer, for the next writer.
    pub(super) fn into_buf(self) -> Vec<u8> {
        self.buf
    }
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
const BATCH_OVERHEAD_MAX: u64 = HEAD_LEN + BLOCK + (BLOCK - 1) + 256 + END_LINE as u64 + COMMIT_LEN;

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
        let capacity = dev
            .sector_count()
            .saturating_mul(BLOCK)
            .min(index::MAX_CAPACITY);
        let mut store = Store::empty(dev, Mode::ReadWrite, opts.volume_id, max_batch, capacity);
        store.limits = limits;
        // The volume batch, in the v4 shape: its head, no members, its manifest, its record.
        let text = store.manifest_text()?;
        let prev = manifest::sha256(&text.as_bytes()[..text.len() - END_LINE]);
        let head = Head {
            seq: 0,
            volume: opts.volume_id,
            prev: [0; 32],
            max_batch,
            manifest: HEAD_LEN,
            size: text.len() as u64,
        };
        let mut buf = Vec::from(head.member());
        buf.extend_from_slice(&member_bytes(&manifest::manifest_name(0), text.as_bytes()));
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
    ///
    /// Staged members are already on the disk (beyond the end of the stream, so outside the
    /// tar stream and never read by mount): discard zeroes them and flushes, so nothing of a
    /// refused request (a signed checkpoint, say) stays readable. If that fails, the zeroing
    /// is done before anything else is written.
    pub fn discard(&mut self) {
        let written = self.staged.members > 0 || self.staged.open.is_some();
        let to = self.end + HEAD_LEN + self.staged.members;
        let in_flight = self
            .staged
            .open
            .as_ref()
            .and_then(|o| o.prep.as_ref())
            .map_or(0, |p| p.members_len);
        self.rollback();
        if written && self.mode == Mode::ReadWrite {
            self.widen_scrub(self.end, (to + in_flight + TAIL).min(self.capacity));
            // A failure leaves the range pending: it is zeroed before the next write.
            let _ = self.scrub_failed();
        }
    }

    /// Whether anything is staged (a chunked put open included).
    pub fn has_staged(&self) -> bool {
        !self.staged.entries.is_empty() || self.staged.open.is_some()
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
            objects: Index::default(),
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

    /// Writable, and no chunked put open ([`Error::Staged`]).
    fn writable_idle(&self) -> Result<(), Error> {
        self.writable()?;
        match self.staged.open {
            Some(_) => Err(Error::Staged),
            None => Ok(()),
        }
    }

    /// Whether `path` exists in `ns` (staged objects included). `checkpoint` exists once a
    /// version was put.
    pub fn exists(&self, ns: Namespace, path: &str) -> Result<bool, Error> {
        Ok(self.namespaces[self.ns(ns)?].objects.contains(path))
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
        let Some(o) = st.objects.get(path) else {
            return Ok(false);
        };
        if o.journal {
            return Err(Error::WrongKind);
        }
        let size = o.size as usize;
        // A staged object is on the disk already, after the place of its batch's head.
        let at = self.disk_offset(o.loc);
        let mut name = [0u8; tar::MAX_NAME];
        let n = full_name(&mut name, &st.name, path);
        let r = read_member(&mut self.dev, at, &name[..n], size as u64, &o.hash, out);
        match r {
            Ok(()) => {
                self.set_check(i, path, o.loc, Check::Good);
                Ok(true)
            }
            Err(MemberError::Io(e)) => Err(Error::Io(e)),
            Err(MemberError::NoMemory) => Err(Error::OutOfMemory),
            Err(MemberError::Bad(reason)) => {
                out.clear();
                self.set_check(i, path, o.loc, Check::Bad);
                Err(Error::Corrupt(Problem { offset: at, reason }))
            }
        }
    }

    /// Where the member an index entry points at is on the disk.
    fn disk_offset(&self, loc: u64) -> u64 {
        if loc & STAGED != 0 {
            self.end + HEAD_LEN + (loc & !STAGED)
        } else {
            loc
        }
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
            Some(o) if o.journal => o,
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
            Some(o) if o.journal => o,
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
            Some(o) if o.journal => o,
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
            .map(|(k, o)| (k, o.size / BLOCK as u32)))
    }

    /// The path of `ns`'s latest journal (the one that takes records), if it has one.
    pub fn latest_journal(&self, ns: Namespace) -> Result<Option<&str>, Error> {
        let st = &self.namespaces[self.ns(ns)?];
        Ok(st.journal.and_then(|j| {
            st.objects
                .iter()
                .find(|(_, o)| o.journal && o.loc == j.loc)
                .map(|(k, _)| k)
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
            .range_from(prefix)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, o)| (k, u64::from(o.size))))
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
fn conflicts(objects: &Index, path: &str) -> bool {
    let ancestor = path
        .bytes()
        .enumerate()
        .any(|(i, b)| b == b'/' && objects.contains(&path[..i]));
    if ancestor {
        return true;
    }
    // `path/`, on the stack (a checked path is at most 99 bytes).
    let mut buf = [0u8; tar::MAX_NAME + 1];
    let Some(dir) = buf.get_mut(..path.len() + 1) else {
        return true;
    };
    dir[..path.len()].copy_from_slice(path.as_bytes());
    dir[path.len()] = b'/';
    let Ok(dir) = core::str::from_utf8(dir) else {
        return true;
    };
    objects
        .range_from(dir)
        .next()
        .is_some_and(|(k, _)| k.starts_with(dir))
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
