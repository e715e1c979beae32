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

use crate::device::{write_all, BlockDevice, IoError, SECTOR_SIZE};
use crate::error::{Corruption, Error, Problem};
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
    /// For mount: the crashed tail it discarded, if any (reason
    /// [`Corruption::IncompleteTail`]). For fsck: the first problem found.
    pub problem: Option<Problem>,
    /// Mount rewrote the end-of-archive marker after discarding a tail.
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
    hash: [u8; 32],
    /// Offset of the member header on disk, or `STAGED | offset in the staged batch`.
    loc: u64,
    size: u32,
}

#[derive(Debug)]
struct NsState {
    name: Box<str>,
    /// Every object, the latest checkpoint version under `checkpoint` included.
    objects: BTreeMap<Box<str>, Obj>,
    checkpoint_versions: u64,
    quota: Quota,
    used: Usage,
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
}

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
        buf.extend_from_slice(&[0; TAIL as usize]);
        if buf.len() as u64 > capacity {
            return Err(Error::Full);
        }
        write_all(&mut store.dev, 0, &buf)?;
        store.dev.flush()?;
        store.end = buf.len() as u64 - TAIL;
        store.seq = 1;
        store.prev = manifest::sha256(&text.as_bytes()[..text.len() - END_LINE]);
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
        if let (Some(_), Mode::ReadWrite) = (report.problem, mode) {
            // Make the image a clean tar stream again: zero blocks where the next batch goes.
            write_all(&mut store.dev, store.end / BLOCK, &[0; TAIL as usize])?;
            store.dev.flush()?;
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
            index: self.ns_index_or_create(name),
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

    fn ns_index_or_create(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.by_name.get(name) {
            return i;
        }
        let i = self.namespaces.len() as u32;
        self.namespaces.push(NsState {
            name: name.into(),
            objects: BTreeMap::new(),
            checkpoint_versions: 0,
            quota: Quota::NONE,
            used: Usage::default(),
        });
        self.by_name.insert(name.into(), i);
        i
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
        let st = &self.namespaces[i];
        names::check_object_path(&st.name, path).map_err(Error::InvalidName)?;
        let hash = manifest::sha256(data);
        if let Some(o) = st.objects.get(path) {
            return if o.size as usize == data.len() && o.hash == hash {
                Ok(())
            } else {
                Err(Error::Immutable)
            };
        }
        if conflicts(&st.objects, path) {
            return Err(Error::PathConflict);
        }
        self.stage(i, path, data, hash, None)
    }

    /// Appends a new version of `ns`'s checkpoint (staged like a put; durable after the next
    /// flush). Readers see the latest version; every version stays on disk.
    pub fn put_checkpoint(&mut self, ns: Namespace, data: &[u8]) -> Result<(), Error> {
        self.writable()?;
        let i = self.ns(ns)?;
        let hash = manifest::sha256(data);
        let side = manifest::sidecar_content(&self.namespaces[i].name, &hash);
        self.stage(i, CHECKPOINT, data, hash, Some(side))
    }

    fn stage(
        &mut self,
        i: usize,
        path: &str,
        data: &[u8],
        hash: [u8; 32],
        sidecar: Option<String>,
    ) -> Result<(), Error> {
        let size = u32::try_from(data.len()).map_err(|_| Error::TooLarge)?;
        let ns_name = self.namespaces[i].name.clone();
        let mut full = String::with_capacity(ns_name.len() + 1 + path.len());
        full.push_str(&ns_name);
        full.push('/');
        full.push_str(path);
        let mut lines = String::new();
        let kind = if sidecar.is_some() {
            Kind::Checkpoint
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
        if !self.staged.members.is_empty()
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
        let disk = members_len + lines.len() as u64;
        let st = &self.namespaces[i];
        if over_quota(self) || st.used.disk_bytes.saturating_add(disk) > st.quota.disk_bytes {
            return Err(Error::Quota);
        }
        if self.end.saturating_add(len).saturating_add(TAIL) > self.capacity {
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
        push_member(&mut self.staged.members, full.as_bytes(), data);
        if let Some(s) = &sidecar {
            push_member(&mut self.staged.members, side_name.as_bytes(), s.as_bytes());
        }
        let obj = Obj {
            hash,
            loc: STAGED | rel,
            size,
        };
        let st = &mut self.namespaces[i];
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
        let r = self.write_batch();
        if r.is_err() {
            self.rollback();
        }
        r
    }

    fn write_batch(&mut self) -> Result<(), Error> {
        let text = self.manifest_text()?;
        let name = manifest::manifest_name(self.seq);
        let mut head = Vec::new();
        head.try_reserve_exact(tar::member_len(text.len() as u64) as usize)
            .map_err(|_| Error::OutOfMemory)?;
        push_member(&mut head, name.as_bytes(), text.as_bytes());
        let members_at = self.end + head.len() as u64;
        let batch_end = members_at + self.staged.members.len() as u64;
        if batch_end + TAIL > self.capacity {
            return Err(Error::Full);
        }
        // Members and the new end marker first, the manifest last: on a device that keeps write
        // order, a crash leaves the old end marker in place and the image a clean tar stream.
        // (The staging buffer has room for the marker: it never reallocates.)
        let n = self.staged.members.len();
        self.staged.members.extend_from_slice(&[0; TAIL as usize]);
        let r = write_all(&mut self.dev, members_at / BLOCK, &self.staged.members);
        self.staged.members.truncate(n);
        r?;
        write_all(&mut self.dev, self.end / BLOCK, &head)?;
        self.dev.flush()?;
        let Store {
            staged, namespaces, ..
        } = self;
        for e in staged.entries.drain(..) {
            if let Some(o) = namespaces[e.ns as usize].objects.get_mut(&*e.path) {
                if o.loc & STAGED != 0 {
                    o.loc = members_at + (o.loc & !STAGED);
                }
            }
            let released = staged_cost(&e.path);
            self.index_used -= released;
            namespaces[e.ns as usize].used.index_bytes -= released;
        }
        staged.lines.clear();
        staged.members.clear();
        self.end = batch_end;
        self.seq += 1;
        self.prev = manifest::sha256(&text.as_bytes()[..text.len() - END_LINE]);
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
        let Some(&o) = st.objects.get(path) else {
            return Ok(false);
        };
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
    pub fn checkpoint(&mut self, ns: Namespace, out: &mut Vec<u8>) -> Result<bool, Error> {
        self.get(ns, CHECKPOINT, out)
    }

    /// How many checkpoint versions `ns` has (each is on disk, the latest is the one read).
    pub fn checkpoint_versions(&self, ns: Namespace) -> Result<u64, Error> {
        Ok(self.namespaces[self.ns(ns)?].checkpoint_versions)
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
            problem: None,
            repaired: false,
        }
    }

    /// Bytes still free for batches (the end marker's reserve already subtracted).
    pub fn free_bytes(&self) -> u64 {
        self.capacity
            .saturating_sub(self.end + TAIL + self.batch_len(0, 0))
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

/// Checks every member of a batch; the first bad one's offset and reason.
fn verify_batch<D: BlockDevice>(
    dev: &mut D,
    at: u64,
    m: &Manifest,
) -> Result<Option<Problem>, Error> {
    let mut off = at + tar::member_len(m.text.len() as u64);
    let mut buf = Vec::new();
    for r in &m.records {
        match read_member(dev, off, m.name(r).as_bytes(), r.size, &r.hash, &mut buf) {
            Ok(()) => {}
            Err(MemberError::Io(e)) => return Err(Error::Io(e)),
            Err(MemberError::NoMemory) => return Err(Error::OutOfMemory),
            Err(MemberError::Bad(reason)) => {
                return Ok(Some(Problem {
                    offset: off,
                    reason,
                }))
            }
        }
        off += tar::member_len(r.size);
    }
    Ok(None)
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
    let stop = capacity.min(at + max_batch + TAIL);
    let prefix = b".psdb/batch/";
    let mut chunk = vec![0u8; 64 * SECTOR_SIZE];
    let mut off = at + BLOCK;
    while off < stop {
        let n = ((stop - off) as usize).min(chunk.len());
        dev.read(off / BLOCK, &mut chunk[..n])?;
        for (k, block) in chunk[..n].chunks_exact(SECTOR_SIZE).enumerate() {
            if !block.starts_with(prefix) {
                continue;
            }
            let Some((name, _)) = tar::parse(block) else {
                continue;
            };
            let Some(hex) = name
                .strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(b".sha256"))
            else {
                continue;
            };
            let Some(s) = core::str::from_utf8(hex)
                .ok()
                .and_then(|h| u64::from_str_radix(h, 16).ok())
            else {
                continue;
            };
            if s <= seq || hex.len() != 16 {
                continue;
            }
            let here = off + (k * SECTOR_SIZE) as u64;
            match probe(dev, capacity, here, s, max_batch) {
                Ok(Probe::Batch(m)) if m.volume == *volume => return Ok(true),
                Err(e @ (Error::Io(_) | Error::OutOfMemory)) => return Err(e),
                // Anything else here (not a manifest, another volume's, one reaching past the
                // end of the device) is not evidence of a later batch.
                _ => {}
            }
        }
        off += n as u64;
    }
    Ok(false)
}

/// Walks the chain and builds the index. `verify_all` (fsck) reads and checks every member;
/// otherwise only the final batch's. Damage is `Err(Corrupt)`; a crashed tail is reported.
pub(crate) fn load<D: BlockDevice>(
    mut dev: D,
    mode: Mode,
    verify_all: bool,
    limits: Limits,
) -> Result<(Store<D>, Report), Error> {
    let capacity = dev.sector_count().saturating_mul(BLOCK);
    let not_psdb = Error::Corrupt(Problem {
        offset: 0,
        reason: Corruption::NotPsdb,
    });
    let ceiling = u64::from(limits.max_batch_ceiling.min(MAX_MAX_BATCH));
    let vol = match probe(&mut dev, capacity, 0, 0, ceiling) {
        Ok(Probe::Batch(m)) => m,
        Ok(_) | Err(Error::Corrupt(_)) => return Err(not_psdb),
        Err(e) => return Err(e),
    };
    if vol.seq != 0
        || vol.prev != [0; 32]
        || !(u64::from(MIN_MAX_BATCH)..=u64::from(MAX_MAX_BATCH)).contains(&vol.max_batch)
    {
        return Err(not_psdb);
    }
    if vol.max_batch > ceiling {
        return Err(Error::ExceedsLimits);
    }
    let mut store = Store::empty(dev, mode, vol.volume, vol.max_batch, capacity);
    store.limits = limits;
    let mut at = vol.length;
    store.seq = 1;
    store.prev = vol.end;
    // The last valid batch, not yet applied: (offset, manifest, problem found by verify_all).
    let mut last: Option<(u64, Manifest, Option<Problem>)> = None;
    let end_problem = loop {
        match probe(&mut store.dev, capacity, at, store.seq, store.max_batch)? {
            Probe::Batch(m)
                if m.volume == store.volume
                    && m.prev == store.prev
                    && m.seq == store.seq
                    && m.max_batch == store.max_batch
                    && m.length <= store.max_batch =>
            {
                if at + m.length + TAIL > capacity {
                    return Err(Error::Corrupt(Problem {
                        offset: at,
                        reason: Corruption::Truncated,
                    }));
                }
                if let Some((off, prev, bad)) = last.take() {
                    if let Some(p) = bad {
                        // Damage in a batch that later batches prove was complete.
                        return Err(Error::Corrupt(p));
                    }
                    store.apply(off, &prev)?;
                }
                let bad = if verify_all {
                    verify_batch(&mut store.dev, at, &m)?
                } else {
                    None
                };
                store.seq += 1;
                store.prev = m.end;
                let len = m.length;
                last = Some((at, m, bad));
                at += len;
            }
            Probe::End => break None,
            Probe::Batch(_) | Probe::Dirty => {
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
                break Some(Problem {
                    offset: at,
                    reason: Corruption::IncompleteTail,
                });
            }
        }
    };
    let mut problem = end_problem;
    if let Some((off, m, bad)) = last.take() {
        let bad = match bad {
            Some(p) => Some(p),
            None if !verify_all => verify_batch(&mut store.dev, off, &m)?,
            None => None,
        };
        match bad {
            None => store.apply(off, &m)?,
            Some(p) => {
                // The final batch never fully reached the disk: discard it.
                store.seq -= 1;
                store.prev = m.prev;
                at = off;
                let offset = if verify_all { p.offset } else { off };
                problem = Some(Problem {
                    offset,
                    reason: Corruption::IncompleteTail,
                });
            }
        }
    }
    store.end = at;
    let report = Report {
        problem,
        ..store.stats()
    };
    Ok((store, report))
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
            let i = self.ns_index_or_create(ns) as usize;
            last = Some(i);
            self.namespaces[i].used.disk_bytes += disk;
            let obj = Obj {
                hash: r.hash,
                loc: offset,
                size: r.size as u32,
            };
            self.data_bytes += r.size;
            let st = &mut self.namespaces[i];
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
