//! Verification of a whole tlog-tiles tree (c2sp.org/tlog-tiles v1.0.0, tile height 8) against
//! a signed checkpoint (c2sp.org/tlog-checkpoint v1.0.0, c2sp.org/signed-note v1.0.0): what
//! `totebox log verify` runs, on trees written by this crate or any other implementation.
//!
//! Order of checks, and what each authenticates:
//!
//! 1. The checkpoint: a signed note that verifies with a known Ed25519 log key (cosignatures
//!    alone are not enough), and a valid checkpoint text.
//! 2. The partial tiles for the checkpoint's size (one per level with a non-zero width) hash
//!    to the checkpoint's root. If a partial tile is absent, the full tile at the same index
//!    is used instead, truncated to the width (a log that has grown since may have replaced
//!    it); the error then names the full tile.
//! 3. Top down from each partial tile, every full tile below it: its root must equal the hash
//!    its (already authenticated) parent holds, so a mismatch is the child's fault.
//! 4. Every entry bundle that is present (bundles are optional: a public mirror may hold only
//!    hash tiles) against its level-0 tile: exactly its width of entries, each hashing to the
//!    tile's hash. An absent partial bundle falls back to the full one, as for tiles.
//!
//! Objects not part of the tree at the checkpoint's size (partial tiles of earlier sizes) are
//! not read. Memory: two tile buffers per level (8 KiB each, 16 in all) and one bundle buffer
//! (at most 16 MiB); recursion depth at most 8.
//!
//! Because bundles are optional here, a tree with none verifies: [`VerifiedTree`] says how
//! many of the bundles the size calls for were present and checked, and which one was the
//! first absent, so a caller that needs the entries (`totebox log verify` without
//! `--tiles-only`) can refuse a tree that lacks them instead of reporting it as verified.
//!
//! [`verify_consistency_tiles`] proves, from the hash tiles of a newer tree alone, that it
//! extends an older checkpoint (RFC 9162 §2.1.4): what a client runs against every newer
//! checkpoint it is given, to detect a rolled-back or forked log.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use note::{Checkpoint, KeyType, Note, Verifier};

use crate::error::{Object, ObjectError, Reason, VerifyError};
use crate::hash::{leaf_hash, node_hash, perfect_root, Hash, EMPTY_ROOT, HASH_SIZE};
use crate::proof::ProofError;
use crate::storage::ObjectReader;
use crate::tile::{
    bundle_entries, full_tile_count, partial_tile_width, tile_hashes, FormatError, Tile, TileKind,
    MAX_LEVELS, TILE_HEIGHT, TILE_WIDTH,
};

/// What a verified tree's checkpoint says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTree {
    /// The checkpoint's origin line.
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The root hash.
    pub root: Hash,
    /// Hash tiles read and checked (every one the size calls for: an absent one fails).
    pub hash_tiles: u64,
    /// Entry bundles present and checked against their level-0 tiles.
    pub bundles: u64,
    /// Entry bundles a tree of this size has: `ceil(size / 256)`.
    pub bundles_expected: u64,
    /// The first entry bundle that was absent (`None` when `bundles == bundles_expected`).
    pub first_missing_bundle: Option<Tile>,
}

type Result<T, E> = core::result::Result<T, VerifyError<E>>;

fn invalid<E>(object: Object, reason: Reason) -> VerifyError<E> {
    VerifyError::Invalid(ObjectError { object, reason })
}

const FULL: u16 = TILE_WIDTH as u16;

struct Walker<'r, R: ObjectReader> {
    reader: &'r mut R,
    bundle: Vec<u8>,
    scratch: [Hash; 128],
    /// Hash tiles read so far.
    hash_tiles: u64,
    /// Entry bundles present and checked so far.
    bundles: u64,
    /// The first absent bundle, in walk order (which is index order).
    first_missing_bundle: Option<Tile>,
}

/// Verifies the tree in `reader` against `checkpoint` (the signed note's bytes), signed by one
/// of `verifiers`. Returns the checkpoint's origin, size and root, or the first object that
/// fails and why. See the [module docs](crate::verify) for what is checked.
pub fn verify_tree<R: ObjectReader>(
    reader: &mut R,
    checkpoint: &[u8],
    verifiers: &[Verifier],
) -> Result<VerifiedTree, R::Error> {
    let cp_err = |e| invalid(Object::Checkpoint, Reason::Note(e));
    let note = Note::parse(checkpoint).map_err(cp_err)?;
    let verified = note.verify(verifiers).map_err(cp_err)?;
    if !verified.iter().any(|v| v.key_type == KeyType::Ed25519) {
        return Err(invalid(Object::Checkpoint, Reason::NoLogSignature));
    }
    let cp = Checkpoint::parse(note.text()).map_err(cp_err)?;
    let (size, root) = (cp.size(), *cp.root());

    let mut v = Walker {
        reader,
        bundle: Vec::new(),
        scratch: [[0; HASH_SIZE]; 128],
        hash_tiles: 0,
        bundles: 0,
        first_missing_bundle: None,
    };
    // Step 2: the partial tiles, and the root they make.
    let mut partial: [Vec<u8>; MAX_LEVELS] = Default::default();
    let mut read: [Option<Tile>; MAX_LEVELS] = [None; MAX_LEVELS];
    for level in 0..MAX_LEVELS as u8 {
        let w = partial_tile_width(level, size);
        if w == 0 {
            continue;
        }
        let tile = Tile::from_parts(TileKind::Hashes(level), full_tile_count(level, size), w);
        read[level as usize] = Some(v.read_hash_tile(tile, &mut partial[level as usize])?);
    }
    // MTH = right fold of the perfect subtrees, biggest first: level 7's down to level 0's,
    // each level's partial tile split by the bits of its width. Fold from the smallest.
    let mut acc: Option<Hash> = None;
    let mut top = Object::Checkpoint;
    for level in 0..MAX_LEVELS {
        let Some(tile) = read[level] else { continue };
        top = Object::Tile(tile);
        let w = usize::from(partial_tile_width(level as u8, size));
        let hashes = partial[level].as_chunks::<HASH_SIZE>().0;
        let mut end = w;
        for bit in 0..8 {
            if w & (1 << bit) == 0 {
                continue;
            }
            let start = end - (1 << bit);
            let chunk = hashes
                .get(start..end)
                .ok_or(invalid(top, Reason::Format(FormatError::TileLength)))?;
            let p = perfect_root(chunk, &mut v.scratch)
                .ok_or(invalid(top, Reason::Format(FormatError::TileLength)))?;
            acc = Some(match acc {
                None => p,
                Some(a) => node_hash(&p, &a),
            });
            end = start;
        }
    }
    if acc.unwrap_or(EMPTY_ROOT) != root {
        return Err(invalid(top, Reason::RootMismatch));
    }
    // Steps 3 and 4, from the highest level down.
    let mut bufs: [Vec<u8>; MAX_LEVELS] = Default::default();
    for level in (0..MAX_LEVELS).rev() {
        if read[level].is_none() {
            continue;
        }
        // `read_hash_tile` left exactly the partial width of hashes (also when it read the
        // full tile in place of the partial one: the children are the same).
        let hashes = partial[level].as_chunks::<HASH_SIZE>().0;
        let index = full_tile_count(level as u8, size);
        v.check_below(level as u8, index, hashes, &mut bufs[..level])?;
    }
    Ok(VerifiedTree {
        origin: cp.origin().to_string(),
        size,
        root,
        hash_tiles: v.hash_tiles,
        bundles: v.bundles,
        bundles_expected: size.div_ceil(TILE_WIDTH),
        first_missing_bundle: v.first_missing_bundle,
    })
}

/// Reads `tile` into `out`; `Ok(false)` if absent.
fn read<R: ObjectReader>(reader: &mut R, tile: Tile, out: &mut Vec<u8>) -> Result<bool, R::Error> {
    reader
        .read_object(tile.path().as_str(), out)
        .map_err(|error| VerifyError::Read {
            object: Object::Tile(tile),
            error,
        })
}

/// Reads a hash tile (falling back from a partial to the full one: a log that has grown since
/// may have replaced it), checks its length and leaves exactly `tile.width()` hashes in `out`.
/// Returns the tile actually read.
fn read_hash_tile<R: ObjectReader>(
    reader: &mut R,
    tile: Tile,
    out: &mut Vec<u8>,
) -> Result<Tile, R::Error> {
    let mut got = tile;
    if !read(reader, tile, out)? {
        let full = Tile::from_parts(tile.kind(), tile.index(), FULL);
        if tile.is_full() || !read(reader, full, out)? {
            return Err(invalid(Object::Tile(tile), Reason::Missing));
        }
        got = full;
    }
    tile_hashes(out, got.width()).map_err(|e| invalid(Object::Tile(got), Reason::Format(e)))?;
    out.truncate(usize::from(tile.width()) * HASH_SIZE);
    Ok(got)
}

impl<R: ObjectReader> Walker<'_, R> {
    /// Reads `tile` into `out`; `Ok(false)` if absent.
    fn read(&mut self, tile: Tile, out: &mut Vec<u8>) -> Result<bool, R::Error> {
        read(self.reader, tile, out)
    }

    /// Reads a hash tile (falling back from a partial to the full one), checks its length and
    /// leaves exactly `tile.width()` hashes in `out`. Returns the tile actually read.
    fn read_hash_tile(&mut self, tile: Tile, out: &mut Vec<u8>) -> Result<Tile, R::Error> {
        let got = read_hash_tile(self.reader, tile, out)?;
        self.hash_tiles += 1;
        Ok(got)
    }

    /// Checks everything below an authenticated tile at `level`, index `index`, holding
    /// `hashes`: its full child tiles (recursively), or at level 0 its entry bundle.
    /// `bufs[l]` is the buffer for a tile at level `l < level`.
    fn check_below(
        &mut self,
        level: u8,
        index: u64,
        hashes: &[Hash],
        bufs: &mut [Vec<u8>],
    ) -> Result<(), R::Error> {
        if level == 0 {
            return self.check_bundle(index, hashes);
        }
        let Some((buf, lower)) = bufs.split_last_mut() else {
            return Ok(());
        };
        for (j, want) in hashes.iter().enumerate() {
            let child = Tile::from_parts(
                TileKind::Hashes(level - 1),
                index * TILE_WIDTH + j as u64,
                FULL,
            );
            if !self.read(child, buf)? {
                return Err(invalid(Object::Tile(child), Reason::Missing));
            }
            let bad = |r| invalid(Object::Tile(child), r);
            let child_hashes = tile_hashes(buf, FULL).map_err(|e| bad(Reason::Format(e)))?;
            let root = perfect_root(child_hashes, &mut self.scratch)
                .ok_or(bad(Reason::Format(FormatError::TileLength)))?;
            if root != *want {
                return Err(bad(Reason::TileMismatch));
            }
            self.hash_tiles += 1;
            self.check_below(level - 1, child.index(), child_hashes, lower)?;
        }
        Ok(())
    }

    /// Checks entry bundle `index` against its level-0 tile's `hashes`, if it is present.
    fn check_bundle(&mut self, index: u64, hashes: &[Hash]) -> Result<(), R::Error> {
        let w = hashes.len() as u16;
        let mut tile = Tile::from_parts(TileKind::Entries, index, w);
        let mut data = core::mem::take(&mut self.bundle);
        let mut found = self.read(tile, &mut data)?;
        if !found && !tile.is_full() {
            tile = Tile::from_parts(TileKind::Entries, index, FULL);
            found = self.read(tile, &mut data)?;
        }
        if found {
            let bad = |r| invalid(Object::Tile(tile), r);
            let mut count = 0usize;
            for e in bundle_entries(&data) {
                let e = e.map_err(|e| bad(Reason::Format(e)))?;
                if count < hashes.len() && leaf_hash(e) != hashes[count] {
                    return Err(bad(Reason::EntryMismatch(count as u16)));
                }
                count += 1;
            }
            if count != usize::from(tile.width()) {
                return Err(bad(Reason::Format(FormatError::BundleCount)));
            }
            self.bundles += 1;
        } else if self.first_missing_bundle.is_none() {
            // Name the bundle the size calls for (the partial one), not the fallback.
            self.first_missing_bundle = Some(Tile::from_parts(TileKind::Entries, index, w));
        }
        self.bundle = data;
        Ok(())
    }
}

/// Why [`verify_consistency_tiles`] did not show that a newer tree extends an older one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsistencyError<E> {
    /// A hash tile of the newer tree could not be read, is absent or malformed: nothing was
    /// shown either way.
    Tiles(VerifyError<E>),
    /// The newer tree's hash tiles do not hash to its root: they are not that tree's, so
    /// nothing was shown either way.
    TilesNotOfTree,
    /// The "newer" tree is smaller than the older one (a rollback, if both are one log's).
    Shrunk,
    /// The trees are not consistent: equal sizes with different roots, or an RFC 9162
    /// consistency proof built from the newer tree's (authenticated) tiles does not lead to
    /// the older root. Both signed, so the log forked.
    Inconsistent(ProofError),
}

impl<E: core::fmt::Display> core::fmt::Display for ConsistencyError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ConsistencyError::Tiles(e) => write!(f, "hash tiles: {e}"),
            ConsistencyError::TilesNotOfTree => {
                f.write_str("the hash tiles do not hash to the newer tree's root")
            }
            ConsistencyError::Shrunk => f.write_str("the newer tree is smaller than the older"),
            ConsistencyError::Inconsistent(e) => write!(f, "not consistent: {e}"),
        }
    }
}

impl<E: core::fmt::Debug + core::fmt::Display> core::error::Error for ConsistencyError<E> {}

/// Verifies that the tree of `size2` leaves with root `root2` extends the tree of `size1`
/// leaves with root `root1`, reading only hash tiles of the newer tree from `reader` (public
/// objects: no entry bundles).
///
/// Steps: equal sizes need equal roots, and a tree of size 0 (whose root must be the empty
/// root) is extended by every tree; neither reads a tile. Otherwise the root of `size2` is
/// recomputed from the tiles and must be `root2`, which authenticates every tile hash used;
/// then the consistency proof `PROOF(size1, D[size2])` (RFC 9162 §2.1.4) is built from those
/// tiles and verified against both roots. So a failure after the first check is a real
/// inconsistency ([`ConsistencyError::Inconsistent`]), never the reader's fault.
///
/// Memory: the tiles read (8 KiB each) are kept until the end; the root and the proof touch
/// at most two per tile level, so a handful in practice (the bound is one per node asked, at
/// most 3 x 64).
pub fn verify_consistency_tiles<R: ObjectReader>(
    reader: &mut R,
    size1: u64,
    root1: &Hash,
    size2: u64,
    root2: &Hash,
) -> core::result::Result<(), ConsistencyError<R::Error>> {
    use crate::proof;
    if size1 > size2 {
        return Err(ConsistencyError::Shrunk);
    }
    if size1 == size2 {
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ConsistencyError::Inconsistent(ProofError::RootMismatch))
        };
    }
    if size1 == 0 {
        // Every tree extends the empty one (proof module docs); its root is a constant.
        return if *root1 == EMPTY_ROOT {
            Ok(())
        } else {
            Err(ConsistencyError::Inconsistent(ProofError::RootMismatch))
        };
    }
    let mut nodes = TileNodes {
        reader,
        size: size2,
        tiles: Vec::new(),
        scratch: [[0; HASH_SIZE]; 128],
    };
    let lift = |e: NodeError<R::Error>| match e {
        NodeError::Tiles(e) => ConsistencyError::Tiles(e),
        // Only nodes inside the tree are asked for, so this is a bug: report it, never panic.
        NodeError::Proof(e) => ConsistencyError::Inconsistent(e),
    };
    if proof::root(&mut nodes, size2).map_err(lift)? != *root2 {
        return Err(ConsistencyError::TilesNotOfTree);
    }
    let p = proof::prove_consistency(&mut nodes, size1, size2).map_err(lift)?;
    proof::verify_consistency(size1, size2, &p, root1, root2)
        .map_err(ConsistencyError::Inconsistent)
}

/// A node lookup's failure: a tile, or a node outside the tree.
enum NodeError<E> {
    Tiles(VerifyError<E>),
    Proof(ProofError),
}

impl<E> From<ProofError> for NodeError<E> {
    fn from(e: ProofError) -> Self {
        NodeError::Proof(e)
    }
}

/// The perfect-subtree hashes of the tree of `size` leaves, from its hash tiles: the node at
/// tree level `8L + r` is the root of `2^r` consecutive hashes of one level-`L` tile.
struct TileNodes<'r, R: ObjectReader> {
    reader: &'r mut R,
    size: u64,
    /// Tiles read so far, with exactly their width of hashes.
    tiles: Vec<(Tile, Vec<u8>)>,
    scratch: [Hash; 128],
}

impl<R: ObjectReader> crate::proof::NodeSource for TileNodes<'_, R> {
    type Error = NodeError<R::Error>;

    fn node(&mut self, level: u8, index: u64) -> core::result::Result<Hash, Self::Error> {
        let out_of_range = NodeError::Proof(ProofError::IndexOutOfRange);
        let tile_level = level / TILE_HEIGHT as u8;
        let r = u32::from(level) % TILE_HEIGHT;
        if usize::from(tile_level) >= MAX_LEVELS {
            return Err(out_of_range);
        }
        // The node's first hash at the tile level, and how many hashes it spans there.
        let count = 1u64 << r;
        let first = index
            .checked_mul(count)
            .ok_or(NodeError::Proof(ProofError::IndexOutOfRange))?;
        let (tile_index, offset) = (first / TILE_WIDTH, first % TILE_WIDTH);
        // Hashes at the tile level in this tree, hence the tile's width (partial or full).
        let at_level = self.size >> (TILE_HEIGHT * u32::from(tile_level));
        let width = match tile_index.cmp(&(at_level / TILE_WIDTH)) {
            core::cmp::Ordering::Less => TILE_WIDTH,
            core::cmp::Ordering::Equal => at_level % TILE_WIDTH,
            core::cmp::Ordering::Greater => 0,
        };
        if offset + count > width {
            return Err(out_of_range);
        }
        let tile = Tile::from_parts(TileKind::Hashes(tile_level), tile_index, width as u16);
        let at = match self.tiles.iter().position(|(t, _)| *t == tile) {
            Some(at) => at,
            None => {
                let mut buf = Vec::new();
                read_hash_tile(self.reader, tile, &mut buf).map_err(NodeError::Tiles)?;
                self.tiles.push((tile, buf));
                self.tiles.len() - 1
            }
        };
        let hashes = self.tiles[at].1.as_chunks::<HASH_SIZE>().0;
        // offset + count <= width = hashes.len(), checked above.
        let span = hashes
            .get(offset as usize..(offset + count) as usize)
            .ok_or(NodeError::Proof(ProofError::IndexOutOfRange))?;
        perfect_root(span, &mut self.scratch).ok_or(NodeError::Tiles(invalid(
            Object::Tile(tile),
            Reason::Format(FormatError::TileLength),
        )))
    }
}
