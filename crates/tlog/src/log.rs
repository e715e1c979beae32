//! [`Log`]: the append-only log a ledger PD runs, writing c2sp.org/tlog-tiles objects to a
//! [`Storage`] and signing c2sp.org/tlog-checkpoint notes.
//!
//! # Operations
//!
//! [`Log::append`] adds an entry in memory (pending); [`Log::checkpoint`] writes the partial
//! entry bundle and the partial tile of every level for the new size, then the signed
//! checkpoint: when it returns the appends are durable and visible. Full bundles and full
//! tiles are written the moment they complete (by `append`), so memory stays bounded whatever
//! the batch size. Reads ([`Log::read_since`]) and proofs ([`Log::inclusion_proof`],
//! [`Log::consistency_proof`]) only cover committed entries (up to the latest checkpoint).
//! Nothing else writes.
//!
//! # Memory
//!
//! - Append state, `O(levels × tile)`: for each of at most 8 levels, the rightmost (partial)
//!   tile's hashes (a `Vec` of capacity 256 × 32 B = 8 KiB, allocated the first time that
//!   level is reached) and the at most 8 roots of the perfect subtrees those hashes form. At
//!   most 8 × (8 KiB + 256 B) ≈ 66 KiB. Never proportional to the number of entries.
//! - The pending entry bundle: the encoded entries of the rightmost bundle, at most
//!   [`MAX_BUNDLE_SIZE`] = 256 × (2 + 65,535) = 16,777,472 bytes. With
//!   [`Buffers::preallocated`] (what a PD with large entries and a fixed heap uses) its
//!   capacity is reserved once, exactly [`MAX_BUNDLE_SIZE`], and never grows. With
//!   [`Buffers::default`] it grows as entries need (so a log of small entries stays small),
//!   by fallible reservations ([`Error::OutOfMemory`], never a panic) capped at exactly
//!   [`MAX_BUNDLE_SIZE`] (plain doubling would end at 2^25 bytes, holding old and new copies
//!   at once). Its capacity is kept when a full bundle is written, so steady-state appends
//!   do not allocate.
//! - One read buffer, as large as the largest object read (a tile: 8 KiB; a bundle: up to
//!   [`MAX_BUNDLE_SIZE`]), used by `open`, reads and proofs. [`Buffers::preallocated`]
//!   reserves it once at [`MAX_BUNDLE_SIZE`]; a [`Storage`] filling it should reserve
//!   fallibly (the PD's psdb client does, and refuses objects above [`MAX_BUNDLE_SIZE`]).
//!
//! So with [`Buffers::preallocated`] the log's memory is fixed at 2 × [`MAX_BUNDLE_SIZE`]
//! plus the append state, whatever entries arrive. `append` allocates nothing beyond that: no
//! per-append allocation (the paths of full tiles are built on the stack). `checkpoint`
//! allocates the checkpoint text and the signed note (a few hundred bytes).
//!
//! # Failures
//!
//! If a storage write fails part way through `append` or `checkpoint`, the in-memory state
//! may be ahead of storage: the log is then *poisoned* and every later call returns
//! [`Error::Poisoned`]. Recover by reopening from storage, exactly as after a crash.

use alloc::collections::TryReserveError;
use alloc::string::String;
use alloc::vec::Vec;

use note::{Checkpoint, Note, Signer};

use crate::error::{Error, Object, ObjectError, Reason};
use crate::hash::{leaf_hash, node_hash, perfect_root, Hash, EMPTY_ROOT};
use crate::proof::{self, NodeSource, ProofError};
use crate::storage::Storage;
use crate::tile::{
    bundle_entries, decode_bundle, encode_entry, full_tile_count, partial_tile_width, tile_hashes,
    FormatError, Tile, TileKind, MAX_BUNDLE_SIZE, MAX_ENTRY_SIZE, MAX_LEVELS, TILE_HEIGHT,
    TILE_WIDTH,
};

const FULL: u16 = TILE_WIDTH as u16;

/// The rightmost tile of one level.
///
/// Invariant, between public calls: `hashes.len() == partial_tile_width(level, log.size)`
/// (< 256), and `peaks[..npeaks]` are the roots of the perfect subtrees `hashes` splits into,
/// biggest first (one per set bit of `hashes.len()`).
#[derive(Debug, Clone, Default)]
struct Level {
    hashes: Vec<Hash>,
    peaks: [Hash; TILE_HEIGHT as usize],
    npeaks: usize,
}

impl Level {
    /// Adds a hash; returns true if the tile is now full (256 hashes, `peaks[0]` its root),
    /// in which case the caller writes it and then calls [`Level::clear`].
    fn push(&mut self, h: Hash) -> bool {
        if self.hashes.capacity() == 0 {
            // The one allocation of this level, for the log's lifetime (8 KiB).
            self.hashes.reserve_exact(TILE_WIDTH as usize);
        }
        let mut n = self.hashes.len();
        self.hashes.push(h);
        // Binary counter: each trailing 1 bit of the old length is a peak of equal size that
        // merges with the new one. popcount(n) == npeaks, so this never underflows, and at
        // most 7 peaks remain before the push below (n < 256).
        let mut cur = h;
        while n & 1 == 1 {
            self.npeaks -= 1;
            cur = node_hash(&self.peaks[self.npeaks], &cur);
            n >>= 1;
        }
        self.peaks[self.npeaks] = cur;
        self.npeaks += 1;
        self.hashes.len() == TILE_WIDTH as usize
    }

    fn clear(&mut self) {
        self.hashes.clear();
        self.npeaks = 0;
    }
}

/// The two large buffers of a [`Log`]: the pending entry bundle and the read buffer. A PD
/// allocates them once ([`Buffers::preallocated`]), hands them to [`Log::create_in`] or
/// [`Log::open_in`] and gets them back from [`Log::into_parts`] (or, when opening fails, in
/// the `Buffers` it passed), so its heap use stays fixed across reopens.
#[derive(Debug, Default)]
pub struct Buffers {
    bundle: Vec<u8>,
    buf: Vec<u8>,
}

impl Buffers {
    /// Bytes [`Buffers::preallocated`] reserves: two of [`MAX_BUNDLE_SIZE`].
    pub const PREALLOCATED: usize = 2 * MAX_BUNDLE_SIZE;

    /// Both buffers with exactly [`MAX_BUNDLE_SIZE`] bytes of capacity each, reserved
    /// fallibly: an error, not a panic, if the heap cannot hold them.
    pub fn preallocated() -> core::result::Result<Self, TryReserveError> {
        let mut b = Buffers::default();
        b.bundle.try_reserve_exact(MAX_BUNDLE_SIZE)?;
        b.buf.try_reserve_exact(MAX_BUNDLE_SIZE)?;
        Ok(b)
    }

    /// Bytes of capacity held (the pending bundle's and the read buffer's).
    pub fn capacity(&self) -> usize {
        self.bundle.capacity() + self.buf.capacity()
    }
}

/// An append-only Merkle log over a [`Storage`], in the tlog-tiles layout (tile height 8),
/// with checkpoints signed by a [`note::Signer`]. See the [module docs](crate::log) for the
/// memory bounds and failure behaviour.
#[derive(Debug)]
pub struct Log<S: Storage> {
    storage: S,
    signer: Signer,
    origin: String,
    /// Entries appended, committed or not.
    size: u64,
    /// Size and root of the latest checkpoint this log wrote or opened.
    committed: u64,
    committed_root: Hash,
    levels: [Level; MAX_LEVELS],
    /// The encoded entries of bundle `size / 256`: `size % 256` of them.
    bundle: Vec<u8>,
    /// Read buffer for storage gets.
    buf: Vec<u8>,
    poisoned: bool,
    /// An entry bundle found beyond the checkpoint at open (see [`Log::open`]).
    stray: Option<Tile>,
}

type Result<T, S> = core::result::Result<T, Error<<S as Storage>::Error>>;

fn corrupt<E>(object: Object, reason: Reason) -> Error<E> {
    Error::Corrupt(ObjectError { object, reason })
}

fn hash_tile(level: u8, size: u64) -> Tile {
    Tile::from_parts(
        TileKind::Hashes(level),
        full_tile_count(level, size),
        partial_tile_width(level, size),
    )
}

impl<S: Storage> Log<S> {
    fn empty(storage: S, origin: &str, signer: Signer, bufs: Buffers) -> Self {
        let Buffers {
            mut bundle,
            mut buf,
        } = bufs;
        bundle.clear();
        buf.clear();
        Log {
            storage,
            signer,
            origin: origin.into(),
            size: 0,
            committed: 0,
            committed_root: EMPTY_ROOT,
            levels: Default::default(),
            bundle,
            buf,
            poisoned: false,
            stray: None,
        }
    }

    /// Starts a new, empty log on `storage`, writing its size-0 checkpoint. Fails with
    /// [`Error::AlreadyExists`] if the storage holds a checkpoint.
    pub fn create(storage: S, origin: &str, signer: Signer) -> Result<Self, S> {
        Self::create_in(storage, origin, signer, &mut Buffers::default())
    }

    /// [`Log::create`] using `bufs` (taken; given back, emptied, if creating fails).
    pub fn create_in(
        storage: S,
        origin: &str,
        signer: Signer,
        bufs: &mut Buffers,
    ) -> Result<Self, S> {
        let mut log = Log::empty(storage, origin, signer, core::mem::take(bufs));
        let made = match log.storage.checkpoint(&mut log.buf) {
            Err(e) => Err(Error::Storage(e)),
            Ok(true) => Err(Error::AlreadyExists),
            Ok(false) => log.checkpoint().map(|_| ()),
        };
        match made {
            Ok(()) => Ok(log),
            Err(e) => {
                *bufs = log.into_parts().1;
                Err(e)
            }
        }
    }

    /// Reopens the log in `storage`: reads and verifies the latest checkpoint (signed by
    /// `signer`'s key, for `origin`), reloads the partial tiles and partial entry bundle of
    /// its size and checks they hash to its root. Appending then continues exactly where the
    /// checkpoint left off; the result is the same as never having closed the log.
    ///
    /// **Objects beyond the checkpoint are never adopted.** The log signs only entries that
    /// were appended through it since it opened: an entry bundle on storage beyond the latest
    /// checkpoint did not come with a checkpoint of this log (storage makes a checkpoint and
    /// the objects put before it durable together; see [`Storage`]), so it is either left
    /// from a request that was never acknowledged or planted by someone who could write the
    /// disk. It is left where it is and reported by [`Log::stray`]; appending continues from
    /// the checkpoint (the same entries again write identical bytes; different ones meet the
    /// stray object's write-once path and fail, so the log never signs over it).
    pub fn open(storage: S, origin: &str, signer: Signer) -> Result<Self, S> {
        Self::open_in(storage, origin, signer, &mut Buffers::default())
    }

    /// [`Log::open`] using `bufs` (taken; given back, emptied, if opening fails).
    pub fn open_in(
        storage: S,
        origin: &str,
        signer: Signer,
        bufs: &mut Buffers,
    ) -> Result<Self, S> {
        let mut log = Log::empty(storage, origin, signer, core::mem::take(bufs));
        match log.reload() {
            Ok(()) => Ok(log),
            Err(e) => {
                *bufs = log.into_parts().1;
                Err(e)
            }
        }
    }

    /// The body of [`Log::open`], on an empty log.
    fn reload(&mut self) -> Result<(), S> {
        let log = self;
        if !log
            .storage
            .checkpoint(&mut log.buf)
            .map_err(Error::Storage)?
        {
            return Err(Error::NoCheckpoint);
        }
        let (size, root) = {
            let cp_err = |e| corrupt(Object::Checkpoint, Reason::Note(e));
            let note = Note::parse(&log.buf).map_err(cp_err)?;
            note.verify(&[log.signer.verifier()]).map_err(cp_err)?;
            let cp = Checkpoint::parse(note.text()).map_err(cp_err)?;
            if cp.origin() != log.origin {
                return Err(corrupt(Object::Checkpoint, Reason::OriginMismatch));
            }
            (cp.size(), *cp.root())
        };
        let mut top = Object::Checkpoint;
        for level in 0..MAX_LEVELS as u8 {
            if partial_tile_width(level, size) == 0 {
                continue;
            }
            let tile = hash_tile(level, size);
            top = Object::Tile(tile);
            log.get_tile(tile)?;
            let hashes = tile_hashes(&log.buf, tile.width())
                .map_err(|e| corrupt(Object::Tile(tile), Reason::Format(e)))?;
            let lvl = &mut log.levels[level as usize];
            for h in hashes {
                // Fewer than 256 hashes: never completes the tile.
                lvl.push(*h);
            }
        }
        let w = partial_tile_width(0, size);
        if w > 0 {
            let tile = Tile::from_parts(TileKind::Entries, size / TILE_WIDTH, w);
            log.get_tile(tile)?;
            let entries = decode_bundle(&log.buf, w)
                .map_err(|e| corrupt(Object::Tile(tile), Reason::Format(e)))?;
            for (i, (e, h)) in entries.iter().zip(&log.levels[0].hashes).enumerate() {
                if leaf_hash(e) != *h {
                    return Err(corrupt(Object::Tile(tile), Reason::EntryMismatch(i as u16)));
                }
            }
            // Copy once at open, into the bundle's one reservation; from here on the bundle
            // grows by appends.
            log.reserve_bundle(log.buf.len())?;
            log.bundle.extend_from_slice(&log.buf);
        }
        log.size = size;
        if log.current_root() != root {
            return Err(corrupt(top, Reason::RootMismatch));
        }
        log.committed = size;
        log.committed_root = root;
        log.find_stray()
    }

    /// Makes room for `need` more bytes in the pending bundle, fallibly. With preallocated
    /// [`Buffers`] there always is room. Otherwise the capacity grows geometrically (so a log
    /// of small entries, such as the audit log, stays small) but is capped at exactly
    /// [`MAX_BUNDLE_SIZE`]: never the 2^25 bytes plain doubling would reach.
    fn reserve_bundle(&mut self, need: usize) -> Result<(), S> {
        let (len, cap) = (self.bundle.len(), self.bundle.capacity());
        if cap - len >= need {
            return Ok(());
        }
        let target = cap
            .saturating_mul(2)
            .max(len.saturating_add(need))
            .max(4096)
            .min(MAX_BUNDLE_SIZE.max(len.saturating_add(need)));
        self.bundle
            .try_reserve_exact(target - len)
            .map_err(|_| Error::OutOfMemory(target))
    }

    /// Reads `tile` into `self.buf`; a missing object is corruption.
    fn get_tile(&mut self, tile: Tile) -> Result<(), S> {
        let path = tile.path();
        if self
            .storage
            .get(path.as_str(), &mut self.buf)
            .map_err(Error::Storage)?
        {
            Ok(())
        } else {
            Err(corrupt(Object::Tile(tile), Reason::Missing))
        }
    }

    /// Looks for an entry bundle beyond the checkpoint (see [`Log::open`]): the full bundle
    /// the checkpoint's partial one would grow into, or a wider partial one.
    fn find_stray(&mut self) -> Result<(), S> {
        let n = self.size / TILE_WIDTH;
        let have = partial_tile_width(0, self.size);
        for w in (have + 1..=FULL).rev() {
            let tile = Tile::from_parts(TileKind::Entries, n, w);
            if self
                .storage
                .get(tile.path().as_str(), &mut self.buf)
                .map_err(Error::Storage)?
            {
                self.stray = Some(tile);
                break;
            }
        }
        self.buf.clear();
        Ok(())
    }

    /// An entry bundle found on storage beyond the latest checkpoint when the log was opened:
    /// not adopted, not signed, left in place (see [`Log::open`]). The PD reports it.
    pub fn stray(&self) -> Option<Tile> {
        self.stray
    }

    /// The invariant checked before every signature: the tree about to be signed extends the
    /// one last signed (its root at the last checkpoint's size is that checkpoint's root), so
    /// no two checkpoints this log signs are ever inconsistent, whatever a bug or a storage
    /// fault did to the append state.
    fn check_extends(&mut self) -> Result<(), S> {
        let (old, old_root) = (self.committed, self.committed_root);
        let root = if old == self.size {
            self.current_root()
        } else if old == 0 {
            EMPTY_ROOT
        } else {
            proof::root(&mut self.tile_nodes(), old)?
        };
        if root == old_root {
            Ok(())
        } else {
            self.poisoned = true;
            Err(Error::Inconsistent {
                size: self.size,
                signed: old,
            })
        }
    }

    /// Appends an entry (pending until the next [`Log::checkpoint`]); returns its index.
    /// Writes the entry bundle and the tile of each level that the entry completes.
    pub fn append(&mut self, entry: &[u8]) -> Result<u64, S> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        if entry.len() > MAX_ENTRY_SIZE {
            return Err(Error::EntryTooLarge(entry.len()));
        }
        if self.size == u64::MAX {
            return Err(Error::Full);
        }
        let index = self.size;
        // Room first (nothing is changed if there is none); `clear` below keeps the capacity.
        self.reserve_bundle(2 + entry.len())?;
        // Cannot fail: the length was checked above.
        encode_entry(&mut self.bundle, entry).map_err(|_| Error::EntryTooLarge(entry.len()))?;
        let mut cur = leaf_hash(entry);
        self.size += 1;
        // Poisoned until every write of this append succeeded (module docs).
        self.poisoned = true;
        if self.size.is_multiple_of(TILE_WIDTH) {
            // The bundle first: every hash tile derives from entries, so after a crash the
            // entries are there to redo the rest (`open`).
            let tile = Tile::from_parts(TileKind::Entries, index / TILE_WIDTH, FULL);
            self.storage
                .put(tile.path().as_str(), &self.bundle)
                .map_err(Error::Storage)?;
            self.bundle.clear();
        }
        let mut level = 0;
        // size < 2^64 means level 7 never fills, so `level` stays below MAX_LEVELS.
        while self.levels[level].push(cur) {
            let n = (self.size >> (TILE_HEIGHT * (level as u32 + 1))) - 1;
            let tile = Tile::from_parts(TileKind::Hashes(level as u8), n, FULL);
            let lvl = &mut self.levels[level];
            self.storage
                .put(tile.path().as_str(), lvl.hashes.as_flattened())
                .map_err(Error::Storage)?;
            cur = lvl.peaks[0];
            lvl.clear();
            level += 1;
        }
        self.poisoned = false;
        Ok(index)
    }

    /// Root of the tree of all `size` appended entries, from the peaks of every level.
    fn current_root(&self) -> Hash {
        // MTH of a tree is the right fold of its perfect subtrees, biggest first: level 7's
        // peaks, ..., level 0's peaks. Fold from the smallest.
        let mut acc: Option<Hash> = None;
        for lvl in &self.levels {
            for p in lvl.peaks[..lvl.npeaks].iter().rev() {
                acc = Some(match acc {
                    None => *p,
                    Some(a) => node_hash(p, &a),
                });
            }
        }
        acc.unwrap_or(EMPTY_ROOT)
    }

    /// Commits every appended entry: writes the partial entry bundle and the partial tile of
    /// every level for the current size, then the signed checkpoint (origin, size, base64
    /// root; signed with the log's [`note::Signer`]). Returns the signed note. When it returns,
    /// the appends are durable and visible to reads and proofs.
    pub fn checkpoint(&mut self) -> Result<String, S> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        self.check_extends()?;
        let size = self.size;
        let root = self.current_root();
        let text = Checkpoint::new(&self.origin, size, root, &[])
            .map_err(Error::Note)?
            .to_text();
        let signed = self.signer.sign(&text).map_err(Error::Note)?;
        self.poisoned = true;
        let w = partial_tile_width(0, size);
        if w > 0 {
            // Entries first, as in `append`.
            let tile = Tile::from_parts(TileKind::Entries, size / TILE_WIDTH, w);
            self.storage
                .put(tile.path().as_str(), &self.bundle)
                .map_err(Error::Storage)?;
        }
        for level in 0..MAX_LEVELS as u8 {
            if partial_tile_width(level, size) == 0 {
                continue;
            }
            let tile = hash_tile(level, size);
            let hashes = &self.levels[level as usize].hashes;
            debug_assert_eq!(hashes.len(), usize::from(tile.width()));
            self.storage
                .put(tile.path().as_str(), hashes.as_flattened())
                .map_err(Error::Storage)?;
        }
        self.storage
            .set_checkpoint(signed.as_bytes())
            .map_err(Error::Storage)?;
        self.committed = size;
        self.committed_root = root;
        self.poisoned = false;
        Ok(signed)
    }

    /// Entries appended, committed or not.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Size of the latest checkpoint.
    pub fn committed_size(&self) -> u64 {
        self.committed
    }

    /// Root hash of the latest checkpoint.
    pub fn committed_root(&self) -> Hash {
        self.committed_root
    }

    /// The log's origin (first line of its checkpoints).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The storage, for reading.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Gives the storage back (pending appends are dropped, as in a crash).
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// Gives the storage and the buffers back (pending appends are dropped, as in a crash),
    /// so the buffers can serve the next [`Log::open_in`].
    pub fn into_parts(self) -> (S, Buffers) {
        (
            self.storage,
            Buffers {
                bundle: self.bundle,
                buf: self.buf,
            },
        )
    }

    /// Calls `f(index, entry)` for the committed entries from `index`, at most `max` of them,
    /// in order; returns how many. Nothing (0) if `index` is at or past the latest checkpoint.
    /// Each bundle read is checked to decode to exactly its width of entries.
    pub fn read_since_with(
        &mut self,
        index: u64,
        max: u64,
        mut f: impl FnMut(u64, &[u8]),
    ) -> Result<u64, S> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let end = self.committed.min(index.saturating_add(max));
        let mut i = index;
        while i < end {
            let n = i / TILE_WIDTH;
            let width = if n < self.committed / TILE_WIDTH {
                FULL
            } else {
                partial_tile_width(0, self.committed)
            };
            let tile = Tile::from_parts(TileKind::Entries, n, width);
            self.get_tile(tile)?;
            // Validate the whole bundle before handing out any of it.
            let bad = |e| corrupt(Object::Tile(tile), Reason::Format(e));
            let mut count = 0usize;
            for e in bundle_entries(&self.buf) {
                e.map_err(bad)?;
                count += 1;
            }
            if count != usize::from(width) {
                return Err(bad(FormatError::BundleCount));
            }
            for (j, e) in bundle_entries(&self.buf).flatten().enumerate() {
                let at = n * TILE_WIDTH + j as u64;
                if at >= i && at < end {
                    f(at, e);
                }
            }
            i = end.min((n + 1) * TILE_WIDTH);
        }
        Ok(end.saturating_sub(index))
    }

    /// The committed entries from `index`, at most `max` of them (see
    /// [`Log::read_since_with`]). Allocates one `Vec` per entry returned: the read path, not
    /// the append path; the PD copies entries out with `read_since_with` instead.
    pub fn read_since(&mut self, index: u64, max: u64) -> Result<Vec<Vec<u8>>, S> {
        let mut out = Vec::new();
        self.read_since_with(index, max, |_, e| out.push(e.to_vec()))?;
        Ok(out)
    }

    fn nodes(&mut self, size: u64) -> Result<TileNodes<'_, S>, S> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        if size > self.committed {
            return Err(Error::BeyondCheckpoint);
        }
        Ok(self.tile_nodes())
    }

    /// The nodes of the log's whole tree (full tiles from storage, the rightmost in memory).
    fn tile_nodes(&mut self) -> TileNodes<'_, S> {
        TileNodes {
            storage: &mut self.storage,
            levels: &self.levels,
            size: self.size,
            buf: &mut self.buf,
            cached: None,
            scratch: [[0; 32]; 128],
        }
    }

    /// Inclusion proof of entry `index` in the tree of `size` entries (`size` at most the
    /// latest checkpoint's), RFC 9162 §2.1.3.1.
    pub fn inclusion_proof(&mut self, index: u64, size: u64) -> Result<Vec<Hash>, S> {
        proof::prove_inclusion(&mut self.nodes(size)?, index, size)
    }

    /// Consistency proof from `size1` to `size2` (`0 < size1 <= size2 <=` the latest
    /// checkpoint's size), RFC 9162 §2.1.4.1.
    pub fn consistency_proof(&mut self, size1: u64, size2: u64) -> Result<Vec<Hash>, S> {
        proof::prove_consistency(&mut self.nodes(size2)?, size1, size2)
    }

    /// Root hash of the tree of the first `size` entries (at most the latest checkpoint's).
    pub fn root_at(&mut self, size: u64) -> Result<Hash, S> {
        proof::root(&mut self.nodes(size)?, size)
    }
}

/// Perfect-subtree hashes of the log's tree, read from full tiles in storage and the
/// in-memory rightmost tile of each level. Only nodes of the committed tree are asked for
/// (`Log::nodes` checks), and those are final: a full subtree's hash never changes.
struct TileNodes<'a, S: Storage> {
    storage: &'a mut S,
    levels: &'a [Level; MAX_LEVELS],
    /// The log's full size: which tiles are full (in storage) and which is the rightmost.
    size: u64,
    buf: &'a mut Vec<u8>,
    /// The full tile whose bytes `buf` holds.
    cached: Option<Tile>,
    /// Room to hash up to 128 hashes of one tile (the most a node below a tile level needs).
    scratch: [Hash; 128],
}

impl<S: Storage> NodeSource for TileNodes<'_, S> {
    type Error = Error<S::Error>;

    fn node(&mut self, level: u8, index: u64) -> core::result::Result<Hash, Self::Error> {
        let tile_level = level / TILE_HEIGHT as u8;
        let sub = u32::from(level) % TILE_HEIGHT;
        let first = index
            .checked_shl(sub)
            .ok_or(Error::Proof(ProofError::IndexOutOfRange))?;
        let n = first / TILE_WIDTH;
        let off = (first % TILE_WIDTH) as usize;
        let range = off..off + (1usize << sub);
        let out_of_range = Error::Proof(ProofError::IndexOutOfRange);
        let hashes: &[Hash] = if n < full_tile_count(tile_level, self.size) {
            let tile = Tile::from_parts(TileKind::Hashes(tile_level), n, FULL);
            let bad = |reason| corrupt(Object::Tile(tile), reason);
            if self.cached != Some(tile) {
                self.cached = None;
                if !self
                    .storage
                    .get(tile.path().as_str(), self.buf)
                    .map_err(Error::Storage)?
                {
                    return Err(bad(Reason::Missing));
                }
                self.cached = Some(tile);
            }
            tile_hashes(self.buf, FULL)
                .map_err(|e| bad(Reason::Format(e)))?
                .get(range)
                .ok_or(out_of_range)?
        } else {
            self.levels
                .get(usize::from(tile_level))
                .and_then(|l| l.hashes.get(range))
                .ok_or(out_of_range)?
        };
        perfect_root(hashes, &mut self.scratch).ok_or(Error::Proof(ProofError::IndexOutOfRange))
    }
}
