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
//! - The pending entry bundle: the encoded entries appended since the latest checkpoint to the
//!   rightmost bundle (never the bundle's committed entries), at most [`MAX_BUNDLE_SIZE`] =
//!   256 × (2 + 65,535) = 16,777,472 bytes, and no more than the caller appends between two
//!   checkpoints. With [`Buffers::preallocated`] (what a PD with a fixed heap uses) its
//!   capacity is reserved once at the caller's bound and, for a caller within it, never
//!   grows. With [`Buffers::default`] it grows as entries need, by fallible reservations
//!   ([`Error::OutOfMemory`], never a panic) capped at exactly [`MAX_BUNDLE_SIZE`]. Its
//!   capacity is kept when a bundle is written, so steady-state appends do not allocate.
//! - One read buffer of [`WINDOW`] = 2 + 65,535 bytes (also what a tile, 8 KiB, or the
//!   checkpoint is read into), used by `open`, reads and proofs. **No bundle is ever held
//!   whole**: a new bundle (partial at a checkpoint, or full when it completes) is written in
//!   pieces ([`Storage::put_begin`], [`Storage::put_chunk`]): the committed partial bundle's
//!   entries, read back by range ([`Storage::get_range`]) through the window and each checked
//!   against its leaf hash in the log's level-0 tile (which the signed root covers: no
//!   unchecked byte is copied into an object the log signs over), then the pending entries.
//!   Reads and `open` read bundles by range through the window too.
//!
//! So with [`Buffers::preallocated`] the log's memory is fixed at the caller's pending bound
//! plus [`WINDOW`] plus the append state, whatever entries arrive. `append` allocates nothing
//! beyond that: no per-append allocation (the paths of full tiles are built on the stack).
//! `checkpoint` allocates the checkpoint text and the signed note (a few hundred bytes).
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
    encode_entry, full_tile_count, partial_tile_width, tile_hashes, FormatError, Tile, TileKind,
    MAX_BUNDLE_SIZE, MAX_ENTRY_SIZE, MAX_LEVELS, TILE_HEIGHT, TILE_WIDTH,
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
    /// Bytes [`Buffers::preallocated`] reserves for a log whose appends between two
    /// checkpoints encode to at most `max_pending` bytes: those, and the [`WINDOW`] reads go
    /// through.
    pub const fn preallocated_bytes(max_pending: usize) -> usize {
        max_pending + WINDOW
    }

    /// The pending bundle with `max_pending` bytes of capacity (at most [`MAX_BUNDLE_SIZE`]:
    /// what the caller appends between two checkpoints, encoded as 2 + length bytes an entry)
    /// and the read buffer with [`WINDOW`], reserved fallibly: an error, not a panic, if the
    /// heap cannot hold them. Appends past `max_pending` before a checkpoint grow the bundle
    /// (fallibly); a caller that bounds its groups never does.
    pub fn preallocated(max_pending: usize) -> core::result::Result<Self, TryReserveError> {
        let mut b = Buffers::default();
        b.bundle
            .try_reserve_exact(max_pending.min(MAX_BUNDLE_SIZE))?;
        b.buf.try_reserve_exact(WINDOW)?;
        Ok(b)
    }

    /// Bytes of capacity held (the pending bundle's and the read buffer's).
    pub fn capacity(&self) -> usize {
        self.bundle.capacity() + self.buf.capacity()
    }
}

/// Bytes of the window an entry bundle is read through ([`Buffers`]' read buffer): one
/// largest encoded entry, so every entry lies whole in it.
pub const WINDOW: usize = 2 + MAX_ENTRY_SIZE;

/// Reading an entry bundle by range through a [`WINDOW`]-byte buffer, entry by entry.
struct Scan {
    tile: Tile,
    /// The object's size (from the first read; every later read must say the same).
    size: u64,
    /// Object offset of `buf[0]`, bytes of `buf` read, next entry's position in `buf`.
    at: u64,
    len: usize,
    pos: usize,
    /// With `copy`, the bytes of `buf` before `flushed` were passed to `put_chunk`.
    copy: bool,
    flushed: usize,
}

impl Scan {
    fn open<S: Storage>(
        storage: &mut S,
        tile: Tile,
        buf: &mut Vec<u8>,
        copy: bool,
    ) -> Result<Scan, S> {
        if buf.len() != WINDOW {
            buf.clear();
            buf.try_reserve_exact(WINDOW)
                .map_err(|_| Error::OutOfMemory(WINDOW))?;
            buf.resize(WINDOW, 0);
        }
        let mut scan = Scan {
            tile,
            size: 0,
            at: 0,
            len: 0,
            pos: 0,
            copy,
            flushed: 0,
        };
        match storage
            .get_range(tile.path().as_str(), 0, &mut buf[..])
            .map_err(Error::Storage)?
        {
            Some((size, n)) if n <= buf.len() && n as u64 <= size => {
                scan.size = size;
                scan.len = n;
            }
            Some(_) => return Err(scan.bad(FormatError::BundleTruncated)),
            None => return Err(corrupt(Object::Tile(tile), Reason::Missing)),
        }
        scan.fill(storage, buf)?;
        Ok(scan)
    }

    fn bad<E>(&self, e: FormatError) -> Error<E> {
        corrupt(Object::Tile(self.tile), Reason::Format(e))
    }

    /// Reads on until the window is full or holds the object's end.
    fn fill<S: Storage>(&mut self, storage: &mut S, buf: &mut [u8]) -> Result<(), S> {
        while self.len < buf.len() && self.at + (self.len as u64) < self.size {
            let off = self.at + self.len as u64;
            match storage
                .get_range(self.tile.path().as_str(), off, &mut buf[self.len..])
                .map_err(Error::Storage)?
            {
                Some((size, n)) if size == self.size && n > 0 && n <= buf.len() - self.len => {
                    self.len += n
                }
                Some(_) => return Err(self.bad(FormatError::BundleTruncated)),
                None => return Err(corrupt(Object::Tile(self.tile), Reason::Missing)),
            }
        }
        Ok(())
    }

    fn flush<S: Storage>(&mut self, storage: &mut S, buf: &[u8]) -> Result<(), S> {
        if self.copy && self.pos > self.flushed {
            storage
                .put_chunk(&buf[self.flushed..self.pos])
                .map_err(Error::Storage)?;
        }
        self.flushed = self.pos;
        Ok(())
    }

    /// The next entry: where its bytes lie in `buf` (valid until the next call). Before
    /// reading on it passes the entries returned so far to the open put (with `copy`): the
    /// caller checks each entry before asking for the next.
    fn next_entry<S: Storage>(
        &mut self,
        storage: &mut S,
        buf: &mut [u8],
    ) -> Result<(usize, usize), S> {
        let mut refilled = false;
        loop {
            let avail = self.len - self.pos;
            let need = match buf.get(self.pos..self.pos + 2) {
                Some(l) if avail >= 2 => 2 + usize::from(u16::from_be_bytes([l[0], l[1]])),
                _ => 2,
            };
            if avail >= need {
                let start = self.pos + 2;
                self.pos += need;
                return Ok((start, self.pos));
            }
            if refilled || self.at + (self.len as u64) >= self.size {
                return Err(self.bad(if self.at + self.pos as u64 == self.size {
                    FormatError::BundleCount
                } else {
                    FormatError::BundleTruncated
                }));
            }
            self.flush(storage, buf)?;
            // Move the window to the entry's start: it holds any entry whole.
            self.at += self.pos as u64;
            (self.len, self.pos, self.flushed) = (0, 0, 0);
            self.fill(storage, buf)?;
            refilled = true;
        }
    }

    /// Checks that nothing follows the last entry read and passes what is left to the put.
    fn finish<S: Storage>(&mut self, storage: &mut S, buf: &[u8]) -> Result<(), S> {
        if self.at + self.pos as u64 != self.size {
            return Err(self.bad(FormatError::BundleCount));
        }
        self.flush(storage, buf)
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
    /// The encoded entries of bundle `size / 256` appended since the latest checkpoint (those
    /// after its first `base_w`).
    bundle: Vec<u8>,
    /// Entries of bundle `size / 256` already on storage in the committed partial bundle
    /// `tile/entries/<N>.p/<base_w>` (0 if none), and that object's length in bytes.
    base_w: u16,
    base_len: usize,
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
            base_w: 0,
            base_len: 0,
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
            // Read by range, each entry checked against its leaf hash; nothing is copied.
            log.base_w = w;
            log.base_len = log.scan_base(size / TILE_WIDTH, None)?;
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

    /// Reads the committed partial bundle `tile/entries/<n>.p/<base_w>` by range, checking
    /// each of its entries against its leaf hash in the level-0 tile (which the checkpoint's
    /// root covers) and that nothing follows them; returns its length. With `copy`, every
    /// checked entry is also passed on, in order, to the open put ([`Storage::put_chunk`]):
    /// only bytes that hash to the log's tree are ever copied into a new object.
    fn scan_base(&mut self, n: u64, copy: Option<usize>) -> Result<usize, S> {
        let tile = Tile::from_parts(TileKind::Entries, n, self.base_w);
        let mut scan = Scan::open(&mut self.storage, tile, &mut self.buf, copy.is_some())?;
        let len = usize::try_from(scan.size).unwrap_or(usize::MAX);
        if copy.is_some_and(|want| want != len) || len > MAX_BUNDLE_SIZE {
            return Err(corrupt(
                Object::Tile(tile),
                Reason::Format(FormatError::BundleTruncated),
            ));
        }
        for i in 0..usize::from(self.base_w) {
            let (a, b) = scan.next_entry(&mut self.storage, &mut self.buf)?;
            if self.levels[0].hashes.get(i) != Some(&leaf_hash(&self.buf[a..b])) {
                return Err(corrupt(Object::Tile(tile), Reason::EntryMismatch(i as u16)));
            }
        }
        scan.finish(&mut self.storage, &self.buf)?;
        Ok(len)
    }

    /// Writes entry bundle `tile` in pieces: the committed partial bundle's entries (read by
    /// range and checked, [`Log::scan_base`]) then the pending ones. Never holds the bundle.
    fn write_bundle(&mut self, tile: Tile) -> Result<(), S> {
        let path = tile.path();
        let len = self.base_len.saturating_add(self.bundle.len());
        self.storage
            .put_begin(path.as_str(), len)
            .map_err(Error::Storage)?;
        if self.base_w > 0 {
            self.scan_base(tile.index(), Some(self.base_len))?;
        }
        if !self.bundle.is_empty() {
            self.storage
                .put_chunk(&self.bundle)
                .map_err(Error::Storage)?;
        }
        Ok(())
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
                .get_range(tile.path().as_str(), 0, &mut [])
                .map_err(Error::Storage)?
                .is_some()
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
            self.write_bundle(tile)?;
            self.bundle.clear();
            self.base_w = 0;
            self.base_len = 0;
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
        if w > self.base_w {
            // Entries first, as in `append`. (At `w == base_w` the committed partial bundle
            // is this one already.)
            let tile = Tile::from_parts(TileKind::Entries, size / TILE_WIDTH, w);
            self.write_bundle(tile)?;
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
        self.base_len += self.bundle.len();
        self.base_w = w;
        self.bundle.clear();
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
            let mut scan = Scan::open(&mut self.storage, tile, &mut self.buf, false)?;
            let whole = n * TILE_WIDTH + u64::from(width);
            for at in n * TILE_WIDTH..end.min(whole) {
                let (a, b) = scan.next_entry(&mut self.storage, &mut self.buf)?;
                if at >= i {
                    f(at, &self.buf[a..b]);
                }
            }
            if end >= whole {
                // Read to its end: no bytes may follow its last entry.
                scan.finish(&mut self.storage, &self.buf)?;
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
