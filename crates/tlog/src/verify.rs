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

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use note::{Checkpoint, KeyType, Note, Verifier};

use crate::error::{Object, ObjectError, Reason, VerifyError};
use crate::hash::{leaf_hash, node_hash, perfect_root, Hash, EMPTY_ROOT, HASH_SIZE};
use crate::storage::ObjectReader;
use crate::tile::{
    bundle_entries, full_tile_count, partial_tile_width, tile_hashes, FormatError, Tile, TileKind,
    MAX_LEVELS, TILE_WIDTH,
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
    })
}

impl<R: ObjectReader> Walker<'_, R> {
    /// Reads `tile` into `out`; `Ok(false)` if absent.
    fn read(&mut self, tile: Tile, out: &mut Vec<u8>) -> Result<bool, R::Error> {
        self.reader
            .read_object(tile.path().as_str(), out)
            .map_err(|error| VerifyError::Read {
                object: Object::Tile(tile),
                error,
            })
    }

    /// Reads a hash tile (falling back from a partial to the full one), checks its length and
    /// leaves exactly `tile.width()` hashes in `out`. Returns the tile actually read.
    fn read_hash_tile(&mut self, tile: Tile, out: &mut Vec<u8>) -> Result<Tile, R::Error> {
        let mut got = tile;
        if !self.read(tile, out)? {
            let full = Tile::from_parts(tile.kind(), tile.index(), FULL);
            if tile.is_full() || !self.read(full, out)? {
                return Err(invalid(Object::Tile(tile), Reason::Missing));
            }
            got = full;
        }
        tile_hashes(out, got.width()).map_err(|e| invalid(Object::Tile(got), Reason::Format(e)))?;
        out.truncate(usize::from(tile.width()) * HASH_SIZE);
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
        }
        self.bundle = data;
        Ok(())
    }
}
