//! The **psdb** protection domain's logic: PSDB ([`psdb::Store`]) on the disk, serving
//! [`interface::psdb_call`] to every ledger, to audit, and to any PD a description gives a
//! channel to psdb.
//!
//! **The caller's namespace is the channel the call arrived on** ([`interface::psdb::CLIENTS`]:
//! channel 0 is `corporate`, 1 `personnel`, 2 `property`, 3 `audit`; a PD added to the
//! description with a channel to psdb, after those, gets the namespace of its short name),
//! resolved to a [`psdb::Namespace`] handle once, at init. Nothing in a message names a
//! namespace, so a ledger can reach its own tenant's objects and no others whatever it sends.
//!
//! Every length read from a message register is checked against the caller's region before it
//! is used, and the bytes are copied out of the shared region before psdb sees them (the caller
//! cannot change them under it). Every failure is an error reply; nothing a caller sends stops
//! this PD.
//!
//! **Memory and space are bounded**: the store runs within [`limits`] of the PD's heap (an index
//! budget and a batch-limit ceiling; a volume beyond them is refused at mount, and the PD then
//! answers `NotServing` instead of running out of heap), and each namespace within its [`quota`]
//! (a tenant that fills its share gets `Quota` errors; the others and audit keep theirs).
//!
//! **Running low is visible before it bites.** [`Usage`](interface::msg::psdb::Request::Usage) tells a caller
//! what its own namespace uses of its quota and how much of the volume is free, and the console
//! warns ([`WARN_STEPS`]): `psdb|WARN: namespace <ns> at <p>% of its disk quota (<used>/<quota>
//! bytes)`, and the same for the index quota.
//!
//! **Journals** (psdb format v3; audit keeps its records in them):
//! [`JournalCreate`](interface::msg::psdb::Request::JournalCreate) is staged like a put, with the caller's request;
//! [`JournalAppend`](interface::msg::psdb::Request::JournalAppend) writes one sector and flushes before it replies, so
//! `Ok` means the record is durable; `JournalRead` and `JournalStat` read them back. All of
//! them on the caller's own namespace only, like every call.
//!
//! The same code runs over virtio-blk on seL4 (`src/main.rs`) and over a file in the simulator:
//! it is generic over [`psdb::BlockDevice`]. I/O is polled inside the protected call, which is
//! acceptable for the highest-priority PD.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

use interface::msg::psdb::{label, Piece, Reply, Request};
use interface::msg::{DecodeError, Message};
use interface::psdb::CLIENTS;
use interface::psdb_call::{Usage, DATA, JOURNAL_RECORD, MAX_PATH};
use microkit::region::{ReadWrite, Region, RegionError};
use microkit::{Channel, Handler, MessageInfo};
use psdb::{BlockDevice, FormatOptions, Mode, Namespace, Report, Store, SECTOR_SIZE};
use sha2::{Digest, Sha256};

/// Largest batch the volume is formatted with: psdb's default, which a whole entry bundle
/// (16 MiB) plus its tar header and manifest line fits (the same limit `totebox psdb create`
/// uses, so host-made and PD-made disks are alike). Since psdb format v4 a batch costs no
/// memory of its size: its members go to the disk as they are put.
pub const MAX_BATCH: u32 = psdb::DEFAULT_MAX_BATCH;

/// The PD's heap: system.xml's `heap_psdb` (a test checks they agree).
pub const HEAP_BYTES: u64 = 0x100_0000;

/// Largest piece a caller can send or receive in one call: the largest region's data area
/// (64 KiB). Larger objects move in pieces (`PutBegin`/`PutChunk`, `ReadAt`).
pub const MAX_OBJECT: usize = {
    let (l, a) = (interface::size::LEDGER_PSDB, interface::size::AUDIT_PSDB);
    (if l > a { l } else { a }) - DATA
};

/// Longest manifest text the PD writes or mounts ([`psdb::store::Limits::max_manifest`]): a
/// batch is one caller's request. The largest is a ledger's group commit of
/// `ledger_pd::MAX_GROUP_ENTRIES` (524,288) empty entries: 2,048 full entry bundles, 2,048
/// level-0 tiles, 8 level-1 tiles, a few partial ones and the checkpoint, about 4,110 objects,
/// at most 178 manifest bytes each (`#o <size>`, the SHA-256 line with a 99-byte name): 731 KB
/// (`tests/heap.rs` checks the count against the ledger's constants). 1 MiB holds it.
pub const MAX_MANIFEST: u64 = 1 << 20;

/// Heap held outside the index in the worst case, on top of the index budget (psdb's
/// `Limits`: a running store holds budget + manifest limit + 8 KiB, + 64 KiB during `verify`;
/// mount budget + 3 x manifest limit + 160 KiB):
/// - mount's two manifests and their parsed records, 3 x [`MAX_MANIFEST`] (running holds one);
/// - mount's check and scan buffers and its chain walk's read-ahead window, 160 KiB
///   (running: the write buffer and `verify`'s);
/// - the piece buffer, allocated once at init: [`MAX_OBJECT`] + 1 KiB (65 KiB);
/// - a margin of [`HEAP_MARGIN`] for small buffers and first-fit fragmentation.
///
/// The worst-case test (`tests/heap.rs`) runs all of it with the index at its budget and checks
/// the peak.
pub const NON_INDEX_BYTES: u64 =
    3 * MAX_MANIFEST + (160 << 10) + MAX_OBJECT as u64 + 1024 + HEAP_MARGIN;

/// The margin in [`NON_INDEX_BYTES`].
pub const HEAP_MARGIN: u64 = 2 << 20;

/// The store's limits for a heap of `heap_bytes`: batch limits up to [`MAX_BATCH`], manifests
/// up to [`MAX_MANIFEST`], and an index budget of whatever [`NON_INDEX_BYTES`] leaves (at
/// 16 MiB: 10.8 MiB, about 140,000 objects with 25-byte tlog paths at 56 bytes + path each;
/// `tests/heap.rs` prints the count it reaches). Past it puts fail `IndexFull`, like a full
/// disk; a volume whose index exceeds it is refused at mount (every call then answers
/// `NotServing`) instead of the PD running out of heap on every boot.
pub fn limits(heap_bytes: u64) -> psdb::store::Limits {
    psdb::store::Limits {
        max_batch_ceiling: MAX_BATCH,
        index_bytes: heap_bytes.saturating_sub(NON_INDEX_BYTES),
        max_manifest: MAX_MANIFEST,
    }
}

interface::psdb_regions!();

/// Why the PD could not start.
#[derive(Debug)]
pub enum InitError {
    /// A shared region is missing or too small.
    Region(RegionError),
    /// The disk could not be read, formatted or mounted.
    Store(psdb::Error),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::Region(e) => write!(f, "region: {e}"),
            InitError::Store(e) => write!(f, "store: {e}"),
        }
    }
}

/// What [`open_store`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// The disk was blank (see [`BLANK_CHECK_BYTES`]) and was formatted.
    Formatted,
    /// An existing volume was mounted.
    Mounted(Report),
}

/// Audit's share of the volume and of the index budget, in percent: every read of every tenant
/// adds audit records, so it gets its own room that no tenant can take.
pub const AUDIT_SHARE_PERCENT: u64 = 16;
/// Each tenant's share: the rest, split evenly between the tenants system.toml names (three
/// tenants: 28% each, 3 x 28 + 16 = 100; four: 21% each).
pub const TENANT_SHARE_PERCENT: u64 = (100 - AUDIT_SHARE_PERCENT) / interface::TENANT_COUNT as u64;

/// The share of namespace `ns`, in percent: [`AUDIT_SHARE_PERCENT`] for `audit`,
/// [`TENANT_SHARE_PERCENT`] for a tenant, and **0 for any other** (a PD added to the
/// description with a channel to psdb, `docs/adding-a-pd.md`): it may read its namespace and ask
/// [`USAGE`], and every write it attempts is refused (`Quota`), so adding a PD takes nothing
/// from the tenants or audit. Giving one room is a decision about everyone's shares, made here.
pub fn share_percent(ns: &str) -> u64 {
    if ns == interface::AUDIT_NAMESPACE {
        AUDIT_SHARE_PERCENT
    } else if interface::tenant_index(ns).is_some() {
        TENANT_SHARE_PERCENT
    } else {
        0
    }
}

/// The quota of the namespace `ns` on a volume of `capacity` bytes under `limits`: its share
/// ([`share_percent`]) of the disk and of the index budget. The shares of [`CLIENTS`] add up
/// to at most 100, so no namespace can fill the volume or the index for another: past its
/// share, its puts fail `Quota`.
pub fn quota(ns: &str, capacity: u64, limits: psdb::store::Limits) -> psdb::Quota {
    let pct = share_percent(ns);
    let share = |n: u64| {
        if n == u64::MAX {
            u64::MAX
        } else {
            n / 100 * pct + n % 100 * pct / 100
        }
    };
    psdb::Quota {
        index_bytes: share(limits.index_bytes),
        disk_bytes: share(capacity),
    }
}

/// Mounts the volume on `dev`, formatting it first if it is blank (its first
/// [`BLANK_CHECK_BYTES`] all zeros: a fresh disk image). Anything else is mounted, and a volume
/// that does not mount is refused, never reformatted. The volume id of a volume formatted here is derived from the disk size (the PD
/// has no random source; the id names a volume, it is no secret); host tools format with random
/// ids.
///
/// The store is bounded by the PD's limits ([`limits`] of [`HEAP_BYTES`]): a volume formatted
/// with a batch limit above [`MAX_BATCH`], or whose index exceeds the budget, is refused with
/// [`psdb::Error::ExceedsLimits`] and nothing is written.
pub fn open_store<D: BlockDevice>(dev: D) -> Result<(Store<D>, Opened), psdb::Error> {
    open_store_with(dev, limits(HEAP_BYTES))
}

/// How much of the disk must be zeros for it to count as blank and be formatted: the volume
/// batch, its commit record and far more. One damaged (zeroed) sector at the start of a volume
/// must never pass for a blank disk: formatting would abandon every tenant's log and write over
/// it. A fresh disk image is sparse, all zeros.
pub const BLANK_CHECK_BYTES: u64 = 1 << 20;

/// The piece [`blank`] reads at a time: a device request costs about the same in QEMU whatever
/// its size (`tests/mount_reads.rs`), so the check of a blank disk is 16 requests, not 256 (it
/// was 22 ms of a 0.25 s boot in 4 KiB pieces, tested byte by byte). Freed before the volume
/// is formatted or mounted, so it adds nothing to the heap's worst case (`NON_INDEX_BYTES`).
pub const BLANK_CHECK_PIECE: usize = 64 << 10;

/// Whether the first [`BLANK_CHECK_BYTES`] of `dev` (or all of it, if smaller) are zeros.
fn blank<D: BlockDevice>(dev: &mut D) -> Result<bool, psdb::Error> {
    let mut piece = Vec::new();
    piece
        .try_reserve_exact(BLANK_CHECK_PIECE)
        .map_err(|_| psdb::Error::OutOfMemory)?;
    piece.resize(BLANK_CHECK_PIECE, 0);
    let per = (BLANK_CHECK_PIECE / SECTOR_SIZE) as u64;
    let sectors = dev
        .sector_count()
        .min(BLANK_CHECK_BYTES / SECTOR_SIZE as u64);
    let mut lba = 0;
    while lba < sectors {
        let n = per.min(sectors - lba) as usize * SECTOR_SIZE;
        dev.read(lba, &mut piece[..n])?;
        // OR of every byte, no early exit: the compiler does it a vector at a time.
        if piece[..n].iter().fold(0u8, |acc, &b| acc | b) != 0 {
            return Ok(false);
        }
        lba += per;
    }
    Ok(true)
}

/// [`open_store`] with other limits.
pub fn open_store_with<D: BlockDevice>(
    mut dev: D,
    limits: psdb::store::Limits,
) -> Result<(Store<D>, Opened), psdb::Error> {
    if blank(&mut dev)? {
        let mut h = Sha256::new();
        h.update(b"totebox-envelope-b/psdb-volume/v0\0");
        h.update(dev.sector_count().to_le_bytes());
        let digest: [u8; 32] = h.finalize().into();
        let mut volume_id = [0u8; 16];
        volume_id.copy_from_slice(&digest[..16]);
        let opts = FormatOptions {
            volume_id,
            max_batch_bytes: MAX_BATCH,
        };
        return Ok((Store::format_with(dev, opts, limits)?, Opened::Formatted));
    }
    let (store, report) = Store::mount_with(dev, Mode::ReadWrite, limits)?;
    Ok((store, Opened::Mounted(report)))
}

/// Prints what opening the disk found, on the console: the mount summary, a discarded or
/// completed tail (never acknowledged data), and an `|ERROR` line for every namespace with
/// damaged committed data (kept on disk as evidence; that namespace takes no more writes).
/// The seL4 binary and the simulator both call it.
pub fn print_opened<D: BlockDevice>(store: &Store<D>, opened: &Opened) {
    let r = match opened {
        Opened::Formatted => {
            let sectors = store.stats().capacity / SECTOR_SIZE as u64;
            microkit::debug_println!("psdb|INFO: blank disk of {sectors} sectors formatted");
            return;
        }
        Opened::Mounted(r) => r,
    };
    microkit::debug_println!(
        "psdb|INFO: mounted {} sectors: {} batches, {} objects, {} checkpoints, end {:#x}",
        r.capacity / SECTOR_SIZE as u64,
        r.batches,
        r.objects,
        r.checkpoint_versions,
        r.end
    );
    if let Some(t) = r.tail {
        let done = if r.repaired { "" } else { " (not repaired)" };
        microkit::debug_println!("psdb|INFO: tail never acknowledged, {t}{done}");
    }
    if r.damaged > 0 {
        microkit::debug_println!(
            "psdb|ERROR: {} damaged place(s) in committed data, kept as evidence; first: {}",
            r.damaged,
            r.damage
                .map_or(Default::default(), |p| alloc::format!("{p}"))
        );
    }
    for (ns, p, lost) in store.damaged_namespaces() {
        let what = if lost {
            "a committed batch is unreadable: no checkpoint served"
        } else {
            "serves what verifies"
        };
        microkit::debug_println!(
            "psdb|ERROR: namespace {ns} damaged at {p}: no more writes, {what}"
        );
    }
}

/// The console warning steps, in percent of a quota. **The rule**: for each namespace and each
/// of its two quotas (disk, index), a `psdb|WARN:` line is printed the first time the namespace
/// is found at or past a step it has not been warned about: at mount (a namespace already past
/// 90% is named once per boot), then after each successful flush of its own request. One line
/// names the highest step reached (a flush that jumps from 80% to 97% prints one line, at 97%);
/// a step already announced is never announced again, so nothing is printed per request. Usage
/// never shrinks (the store is write-once), so nothing re-arms a step until the next boot.
pub const WARN_STEPS: [u8; 3] = [90, 95, 100];

/// `used` in whole percent of `quota` (rounded down; 0 for a zero or absent quota).
fn percent(used: u64, quota: u64) -> u64 {
    if quota == 0 || quota == u64::MAX {
        return 0;
    }
    (u128::from(used) * 100 / u128::from(quota)).min(u128::from(u64::MAX)) as u64
}

/// The highest of [`WARN_STEPS`] that `used` of `quota` reaches (0 if none).
fn step(used: u64, quota: u64) -> u8 {
    let p = percent(used, quota);
    WARN_STEPS
        .iter()
        .copied()
        .filter(|s| p >= u64::from(*s))
        .max()
        .unwrap_or(0)
}

/// One calling channel: its namespace, region, quota and the warning steps announced.
#[derive(Debug)]
struct Client {
    channel: Channel,
    ns: Namespace,
    region: Region<ReadWrite>,
    quota: psdb::Quota,
    /// The highest [`WARN_STEPS`] step announced for the disk and for the index quota.
    warned: [u8; 2],
}

/// The psdb PD.
#[derive(Debug)]
pub struct PsdbPd<D: BlockDevice> {
    store: Store<D>,
    /// Indexed like [`CLIENTS`]: each calling channel.
    clients: Vec<Client>,
    /// One piece (or small object), copied out of or into a region: allocated once at init,
    /// at [`MAX_OBJECT`] plus a tar header and padding (a read checks the member in place),
    /// never grown.
    buf: Vec<u8>,
    /// The caller (index in `clients`) whose puts are staged, between its first put and the
    /// checkpoint that flushes them.
    staging: Option<usize>,
}

/// Gets every region and builds the PD over `store`.
pub fn init<D: BlockDevice>(mut store: Store<D>) -> Result<PsdbPd<D>, InitError> {
    let decls = &REGIONS;
    let mut clients = Vec::with_capacity(CLIENTS.len());
    for ((channel, ns, _, _), decl) in CLIENTS.iter().zip(decls) {
        let region = decl.get().map_err(InitError::Region)?;
        let handle = store.open_namespace(ns).map_err(InitError::Store)?;
        // A batch is one caller's request, written whole with its checkpoint or not at all:
        // a put that does not fit is refused rather than flushing half a request.
        store.set_early_flush(false);
        let q = quota(ns, store.stats().capacity, store.limits());
        store.set_quota(handle, q).map_err(InitError::Store)?;
        clients.push(Client {
            channel: *channel,
            ns: handle,
            region,
            quota: q,
            warned: [0; 2],
        });
    }
    let mut buf = Vec::new();
    buf.try_reserve_exact(MAX_OBJECT + 2 * SECTOR_SIZE)
        .map_err(|_| InitError::Store(psdb::Error::OutOfMemory))?;
    let mut pd = PsdbPd {
        store,
        clients,
        buf,
        staging: None,
    };
    // Namespaces already running low are named at mount.
    for i in 0..pd.clients.len() {
        pd.warn(i);
    }
    Ok(pd)
}

impl<D: BlockDevice> PsdbPd<D> {
    /// The store (for tests and the simulator's reports).
    pub fn store(&self) -> &Store<D> {
        &self.store
    }

    /// The store back, dropping the PD (tests: to remount its disk or check it).
    pub fn into_store(self) -> Store<D> {
        self.store
    }

    /// What the namespace of client `i` uses (see [`Usage`](interface::msg::psdb::Request::Usage)).
    fn usage(&self, i: usize) -> Result<Usage, psdb::Error> {
        let c = &self.clients[i];
        let used = self.store.usage(c.ns)?;
        Ok(Usage {
            disk_used: used.disk_bytes,
            disk_quota: c.quota.disk_bytes,
            index_used: used.index_bytes,
            index_quota: c.quota.index_bytes,
            volume_free: self.store.free_bytes(),
            damaged: self.store.damage(c.ns)?.is_some(),
        })
    }

    /// Prints a `psdb|WARN:` line for each quota of client `i`'s namespace that reached a
    /// [`WARN_STEPS`] step not announced yet (the rule is there).
    fn warn(&mut self, i: usize) {
        let Ok(u) = self.usage(i) else { return };
        let c = &mut self.clients[i];
        let Ok(name) = self.store.namespace_name(c.ns) else {
            return;
        };
        let figures = [
            ("disk", u.disk_used, u.disk_quota),
            ("index", u.index_used, u.index_quota),
        ];
        for (k, (what, used, quota)) in figures.into_iter().enumerate() {
            let s = step(used, quota);
            if s > c.warned[k] {
                c.warned[k] = s;
                microkit::debug_println!(
                    "psdb|WARN: namespace {name} at {}% of its {what} quota ({used}/{quota} bytes)",
                    percent(used, quota)
                );
            }
        }
    }

    /// Handles one call on `channel`; returns the reply's info (its registers set).
    pub fn handle(&mut self, channel: Channel, info: MessageInfo) -> MessageInfo {
        let m = Message::received(info);
        let request = Request::decode(m.info(), m.mrs());
        let reply = match self.serve(channel, info.label(), request) {
            Ok(reply) => reply,
            Err(reply) => {
                if matches!(
                    info.label(),
                    label::PUT
                        | label::SET_CHECKPOINT
                        | label::JOURNAL_CREATE
                        | label::PUT_BEGIN
                        | label::PUT_CHUNK
                ) {
                    // A refused request leaves nothing behind: not its earlier puts either
                    // (malformed or not: a caller that sent it is in no state to checkpoint).
                    self.store.discard();
                    self.staging = None;
                }
                reply
            }
        };
        reply.encode().set_mrs()
    }

    /// Serves the call labelled `call_label`, decoded as `request`: the reply, `Err` for a
    /// refusal.
    fn serve(
        &mut self,
        channel: Channel,
        call_label: u64,
        request: Result<Request, DecodeError>,
    ) -> Result<Reply, Reply> {
        let Some(i) = self.clients.iter().position(|c| c.channel == channel) else {
            return Err(Reply::BadLabel);
        };
        let code = |e: psdb::Error| Reply::store(e.code());
        // A call from anyone else while a caller's puts are staged means that caller abandoned
        // its request (it faulted, or failed before its checkpoint): nothing of it is written.
        if self.staging.is_some_and(|j| j != i) {
            self.store.discard();
            self.staging = None;
        }
        // The same for the staging caller reading its checkpoint: a ledger (or audit) reads it
        // only when it (re)opens its log, which begins a new request, so whatever it staged
        // before belongs to one that failed before its checkpoint (for example a tree it
        // refused to sign): nothing of that is written.
        if call_label == label::CHECKPOINT && self.staging == Some(i) {
            self.store.discard();
            self.staging = None;
        }
        // A malformed call is refused after the staging rules above, as before: an unknown
        // label as such, a register count or value out of range as a bad length.
        let request = request.map_err(|e| match e {
            DecodeError::UnknownLabel(_) => Reply::BadLabel,
            DecodeError::Count { .. } | DecodeError::Value { .. } => Reply::BadLength,
        })?;
        if request == Request::Usage {
            // No arguments: nothing the caller sends is read. Its own namespace only.
            return self.usage(i).map(Reply::Usage).map_err(code);
        }
        let (ns, region) = (self.clients[i].ns, self.clients[i].region.clone());
        // At most the object buffer's size (a client's region may be larger than the ledgers').
        let max_data = region.len().saturating_sub(DATA).min(MAX_OBJECT);
        let (path_len, data_len) = (request.path_len(), request.data_len());
        if path_len > MAX_PATH || data_len > max_data {
            return Err(Reply::BadLength);
        }
        let mut path_buf = [0u8; MAX_PATH];
        let path_bytes = &mut path_buf[..path_len];
        region.read(0, path_bytes).map_err(|_| Reply::BadLength)?;
        let path = core::str::from_utf8(path_bytes).map_err(|_| Reply::BadLength)?;
        match request {
            Request::Put { .. } | Request::SetCheckpoint { .. } | Request::PutChunk { .. } => {
                self.buf.clear();
                self.buf.resize(data_len, 0);
                region
                    .read(DATA, &mut self.buf)
                    .map_err(|_| Reply::BadLength)?;
                let put = !matches!(request, Request::SetCheckpoint { .. });
                let done = if let Request::PutChunk { .. } = request {
                    // The open put is this caller's (any other caller's call dropped it).
                    self.staging = Some(i);
                    self.store.put_chunk(&self.buf).map(|_| ())
                } else if put {
                    self.staging = Some(i);
                    self.store.put(ns, path, &self.buf)
                } else {
                    self.staging = None;
                    self.store
                        .put_checkpoint(ns, &self.buf)
                        .and_then(|()| self.store.flush())
                };
                done.map_err(code)?;
                if !put {
                    self.warn(i); // flushed: the namespace grew
                }
                Ok(Reply::Done)
            }
            Request::Get { .. } | Request::Checkpoint => {
                // An object larger than the caller's region is refused before it is read, so
                // the buffer never grows past its size at init.
                let get = matches!(request, Request::Get { .. });
                let size = if get {
                    self.store.size(ns, path).map_err(code)?
                } else {
                    self.store.size(ns, psdb::names::CHECKPOINT).map_err(code)?
                };
                if size.is_some_and(|n| n > max_data as u64) {
                    return Err(Reply::TooLarge);
                }
                let found = if get {
                    self.store.get(ns, path, &mut self.buf).map_err(code)?
                } else {
                    self.store.checkpoint(ns, &mut self.buf).map_err(code)?
                };
                if found {
                    if self.buf.len() > max_data {
                        return Err(Reply::TooLarge);
                    }
                    region.write(DATA, &self.buf).map_err(|_| Reply::TooLarge)?;
                }
                Ok(Reply::Found(found.then_some(self.buf.len())))
            }
            Request::PutBegin { size, .. } => {
                self.staging = Some(i);
                self.store.put_begin(ns, path, size).map_err(code)?;
                Ok(Reply::Done)
            }
            Request::ReadAt { offset, max, .. } => {
                // Unverified unless the reply says so (psdb's `store::read` contract); a
                // member known damaged, or whose header is wrong, is refused (`Corrupt`).
                let n = max.min(max_data);
                self.buf.clear();
                self.buf.resize(n, 0);
                let piece = self
                    .store
                    .read_at(ns, path, offset, &mut self.buf)
                    .map_err(code)?;
                let Some(c) = piece else {
                    return Ok(Reply::Piece(None));
                };
                region
                    .write(DATA, &self.buf[..c.len])
                    .map_err(|_| Reply::TooLarge)?;
                Ok(Reply::Piece(Some(Piece {
                    len: c.len,
                    size: c.size,
                    verified: c.verified,
                })))
            }
            Request::Verify { .. } => {
                if !self.store.verify(ns, path).map_err(code)? {
                    return Ok(Reply::Found(None));
                }
                let size = self.store.size(ns, path).map_err(code)?;
                match size.map(usize::try_from) {
                    Some(Ok(n)) => Ok(Reply::Found(Some(n))),
                    Some(Err(_)) => Err(Reply::TooLarge),
                    None => Ok(Reply::Found(None)),
                }
            }
            Request::JournalCreate { slots, .. } => {
                self.staging = Some(i);
                self.store.put_journal(ns, path, slots).map_err(code)?;
                Ok(Reply::Done)
            }
            Request::JournalAppend { .. } => {
                if data_len > JOURNAL_RECORD {
                    return Err(Reply::BadLength);
                }
                let mut record = [0u8; JOURNAL_RECORD];
                let record = &mut record[..data_len];
                region.read(DATA, record).map_err(|_| Reply::BadLength)?;
                let slot = self.store.journal_append(ns, path, record).map_err(code)?;
                Ok(Reply::Appended { slot })
            }
            Request::JournalRead { slot, .. } => {
                let found = self
                    .store
                    .journal_read(ns, path, slot, &mut self.buf)
                    .map_err(code)?;
                if found {
                    region.write(DATA, &self.buf).map_err(|_| Reply::TooLarge)?;
                }
                Ok(Reply::Found(found.then_some(self.buf.len())))
            }
            Request::JournalStat { .. } => {
                let stat = self.store.journal_stat(ns, path).map_err(code)?;
                Ok(Reply::Stat(stat.map(|s| interface::JournalStat {
                    slots: s.slots,
                    used: s.used,
                })))
            }
            // Answered above, before any argument is read.
            Request::Usage => Err(Reply::BadLabel),
        }
    }
}

impl<D: BlockDevice> Handler for PsdbPd<D> {
    type Error = core::convert::Infallible;

    fn protected(
        &mut self,
        channel: Channel,
        info: MessageInfo,
    ) -> Result<MessageInfo, Self::Error> {
        Ok(self.handle(channel, info))
    }
}
