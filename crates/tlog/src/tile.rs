//! Tile arithmetic, paths and encodings of c2sp.org/tlog-tiles (v1.0.0), tile height 8.
//!
//! Small pure functions named as the specification names things: [`tile_path`],
//! [`entries_path`], [`parse_tile_path`], the tiles that exist for a tree size
//! ([`tiles_for_size`], [`entry_bundles_for_size`]), and the two encodings: a hash tile is its
//! hashes concatenated ([`tile_hashes`]); an entry bundle is its entries, each prefixed by its
//! length as a big-endian `u16` ([`encode_entry`], [`bundle_entries`], [`decode_bundle`]).
//!
//! Rules implemented exactly:
//!
//! - A level-`L` tile holds up to 256 hashes; level 0 holds leaf hashes; each hash in a
//!   level-`L+1` tile is the root of a full level-`L` tile. Partial tiles are never hashed
//!   into the level above.
//! - For tree size `s` the partial tile at level `L` has `floor(s / 256^L) mod 256` hashes;
//!   a width of 0 means that tile does not exist.
//! - `N` is written as zero-padded 3-digit groups, every group but the last prefixed with `x`
//!   (1234067 → `x001/x234/067`). The parser accepts exactly the one canonical spelling.

use alloc::vec::Vec;
use core::fmt;

use crate::hash::{Hash, HASH_SIZE};

/// Tile height: each tile covers 8 levels of the tree.
pub const TILE_HEIGHT: u32 = 8;
/// Hashes in a full tile, entries in a full bundle (`2^TILE_HEIGHT`).
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
/// Largest entry an entry bundle can hold: its length must fit the 2-byte prefix.
pub const MAX_ENTRY_SIZE: usize = u16::MAX as usize;
/// Largest encoded entry bundle: 256 entries of [`MAX_ENTRY_SIZE`] bytes plus their prefixes
/// (16,777,472 bytes).
pub const MAX_BUNDLE_SIZE: usize = TILE_WIDTH as usize * (2 + MAX_ENTRY_SIZE);
/// Tile levels a tree of at most `u64::MAX` entries can have (levels 0 to 7).
pub const MAX_LEVELS: usize = 8;

/// Why bytes or a path are not a valid tlog-tiles object. Closed; discriminants start at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FormatError {
    /// Not a canonical `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]` path.
    TilePath = 1,
    /// A hash tile is not exactly `32 × width` bytes.
    TileLength = 2,
    /// An entry bundle ends inside a length prefix or inside an entry.
    BundleTruncated = 3,
    /// An entry bundle holds more or fewer entries than its width.
    BundleCount = 4,
    /// An entry is longer than 65,535 bytes, the most a bundle's 2-byte length prefix can say.
    EntryTooLarge = 5,
    /// A tile level, index or width outside what a 64-bit tree can have.
    TileRange = 6,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FormatError::TilePath => {
                "not a canonical tlog-tiles path (tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>])"
            }
            FormatError::TileLength => "hash tile is not 32 bytes times its width",
            FormatError::BundleTruncated => "entry bundle ends inside a length prefix or an entry",
            FormatError::BundleCount => "entry bundle does not hold exactly its width of entries",
            FormatError::EntryTooLarge => {
                "entry is longer than 65,535 bytes, the limit of a bundle's 2-byte length prefix"
            }
            FormatError::TileRange => "tile level, index or width outside a 64-bit tree",
        })
    }
}

impl core::error::Error for FormatError {}

/// What a tile holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TileKind {
    /// Hashes at tree level `8 × L` (`tile/<L>/...`).
    Hashes(u8),
    /// Entries: an entry bundle (`tile/entries/...`).
    Entries,
}

/// One tlog-tiles object: a hash tile or an entry bundle, identified by its kind, its index
/// `N` within the level and its width `W` (1 to 256; 256 is a full tile).
///
/// Invariant (checked by every constructor): `1 <= width <= 256`, level `<= 7`, and the tile's
/// first leaf `N × 256^(L+1)` fits in a `u64`, so arithmetic on its coordinates cannot
/// overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tile {
    kind: TileKind,
    index: u64,
    width: u16,
}

impl Tile {
    /// A tile, or [`FormatError::TileRange`] if the coordinates cannot exist in a 64-bit tree.
    pub fn new(kind: TileKind, index: u64, width: u16) -> Result<Tile, FormatError> {
        let level = match kind {
            TileKind::Hashes(l) => u32::from(l),
            TileKind::Entries => 0,
        };
        if width == 0 || u64::from(width) > TILE_WIDTH || level as usize >= MAX_LEVELS {
            return Err(FormatError::TileRange);
        }
        // The first leaf under the tile is index << (8 × (level + 1)); it must fit a u64.
        let shift = TILE_HEIGHT * (level + 1);
        if shift < 64 && index > (u64::MAX >> shift) || shift >= 64 && index != 0 {
            return Err(FormatError::TileRange);
        }
        Ok(Tile { kind, index, width })
    }

    /// A tile from coordinates the caller derived from a tree size (so within range): the log
    /// uses this on its hot path instead of re-checking. Debug builds still check.
    pub(crate) fn from_parts(kind: TileKind, index: u64, width: u16) -> Tile {
        debug_assert!(Tile::new(kind, index, width).is_ok());
        Tile { kind, index, width }
    }

    /// What the tile holds.
    pub fn kind(&self) -> TileKind {
        self.kind
    }

    /// `N`: the tile's index within its level.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// `W`: hashes or entries in the tile (256 for a full tile).
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Whether the tile is full (width 256).
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// The tile's path.
    pub fn path(&self) -> TilePath {
        let mut p = TilePath::new();
        p.push_str("tile/");
        match self.kind {
            TileKind::Hashes(l) => p.push_decimal(u64::from(l)),
            TileKind::Entries => p.push_str("entries"),
        }
        p.push_str("/");
        p.push_index(self.index);
        if !self.is_full() {
            p.push_str(".p/");
            p.push_decimal(u64::from(self.width));
        }
        p
    }
}

impl fmt::Display for Tile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path().as_str())
    }
}

/// A tile path built on the stack (no allocation). The longest possible path,
/// `tile/entries/x018/x446/x744/x073/x709/x551/615.p/255`, is 52 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TilePath {
    buf: [u8; 56],
    len: u8,
}

impl TilePath {
    fn new() -> TilePath {
        TilePath {
            buf: [0; 56],
            len: 0,
        }
    }

    // Callers only push what fits: at most 52 bytes in total (see the type's docs), so the
    // bounds-checked `get_mut` never fails; if it ever did, the path would be truncated and
    // then fail to parse or match, never panic.
    fn push_byte(&mut self, b: u8) {
        debug_assert!(b.is_ascii());
        if let Some(slot) = self.buf.get_mut(self.len as usize) {
            *slot = b;
            self.len += 1;
        }
    }

    fn push_str(&mut self, s: &str) {
        for &b in s.as_bytes() {
            self.push_byte(b);
        }
    }

    fn push_decimal(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for &d in &digits[i..] {
            self.push_byte(d);
        }
    }

    fn push_group(&mut self, g: u64) {
        self.push_byte(b'0' + (g / 100 % 10) as u8);
        self.push_byte(b'0' + (g / 10 % 10) as u8);
        self.push_byte(b'0' + (g % 10) as u8);
    }

    /// `N` as 3-digit groups, all but the last prefixed with `x`.
    fn push_index(&mut self, n: u64) {
        let mut groups = [0u64; 7]; // u64::MAX has 20 digits: 7 groups.
        let mut count = 0;
        let mut v = n;
        loop {
            groups[count] = v % 1000;
            count += 1;
            v /= 1000;
            if v == 0 {
                break;
            }
        }
        for (i, &g) in groups[..count].iter().rev().enumerate() {
            if i + 1 < count {
                self.push_str("x");
                self.push_group(g);
                self.push_str("/");
            } else {
                self.push_group(g);
            }
        }
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever pushed, so this is always valid UTF-8.
        core::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }
}

impl fmt::Debug for TilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for TilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for TilePath {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Path of the level-`level` hash tile `n` of `width` hashes (`tile/<L>/<N>[.p/<W>]`).
pub fn tile_path(level: u8, n: u64, width: u16) -> Result<TilePath, FormatError> {
    Ok(Tile::new(TileKind::Hashes(level), n, width)?.path())
}

/// Path of entry bundle `n` holding `width` entries (`tile/entries/<N>[.p/<W>]`).
pub fn entries_path(n: u64, width: u16) -> Result<TilePath, FormatError> {
    Ok(Tile::new(TileKind::Entries, n, width)?.path())
}

/// Parses a decimal without sign or leading zeros ("0" itself is fine).
fn parse_decimal(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 20 || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

fn parse_group(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 3 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(u64::from(b[0] - b'0') * 100 + u64::from(b[1] - b'0') * 10 + u64::from(b[2] - b'0'))
}

/// Parses a tile path, accepting only the canonical spelling: `tile/<L>/<N>[.p/<W>]` or
/// `tile/entries/<N>[.p/<W>]`, `L` and `W` decimal without leading zeros, `1 <= W <= 255`,
/// `N` in 3-digit groups with `x` on every group but the last and no leading `x000` group.
/// No prefix before `tile/`, no trailing slash.
pub fn parse_tile_path(path: &str) -> Result<Tile, FormatError> {
    let bad = FormatError::TilePath;
    let rest = path.strip_prefix("tile/").ok_or(bad)?;
    let (kind_str, rest) = rest.split_once('/').ok_or(bad)?;
    let kind = if kind_str == "entries" {
        TileKind::Entries
    } else {
        let l = parse_decimal(kind_str).ok_or(bad)?;
        TileKind::Hashes(u8::try_from(l).map_err(|_| FormatError::TileRange)?)
    };
    let (n_str, width) = match rest.split_once(".p/") {
        Some((n, w)) => {
            let w = parse_decimal(w).ok_or(bad)?;
            if !(1..TILE_WIDTH).contains(&w) {
                return Err(bad);
            }
            (n, w as u16)
        }
        None => (rest, TILE_WIDTH as u16),
    };
    let mut groups = n_str.split('/').peekable();
    let mut n: u64 = 0;
    let mut first = true;
    while let Some(g) = groups.next() {
        let is_last = groups.peek().is_none();
        let digits = if is_last {
            g
        } else {
            g.strip_prefix('x').ok_or(bad)?
        };
        let v = parse_group(digits).ok_or(bad)?;
        if first && !is_last && v == 0 {
            // `x000/005` spells 5 with a redundant leading group.
            return Err(bad);
        }
        first = false;
        n = n
            .checked_mul(1000)
            .and_then(|n| n.checked_add(v))
            .ok_or(FormatError::TileRange)?;
    }
    Tile::new(kind, n, width)
}

/// Width of the partial hash tile at `level` for tree `size`: `floor(size / 256^level) mod 256`
/// (0: no partial tile at that level).
pub fn partial_tile_width(level: u8, size: u64) -> u16 {
    let shift = TILE_HEIGHT * u32::from(level);
    if shift >= 64 {
        return 0;
    }
    ((size >> shift) % TILE_WIDTH) as u16
}

/// Number of full tiles at `level` for tree `size`: `floor(size / 256^(level+1))`.
pub fn full_tile_count(level: u8, size: u64) -> u64 {
    let shift = TILE_HEIGHT * (u32::from(level) + 1);
    if shift >= 64 {
        return 0;
    }
    size >> shift
}

/// The hash tiles that exist for a tree of `size` entries, level by level, full tiles first
/// then the partial one. Each level's partial tile (if any) is the last tile of that level.
/// (Lazy: about `size / 255` items.)
pub fn tiles_for_size(size: u64) -> impl Iterator<Item = Tile> {
    (0..MAX_LEVELS as u8).flat_map(move |level| level_tiles(TileKind::Hashes(level), level, size))
}

/// The entry bundles that exist for a tree of `size` entries: full bundles, then the partial.
pub fn entry_bundles_for_size(size: u64) -> impl Iterator<Item = Tile> {
    level_tiles(TileKind::Entries, 0, size)
}

fn level_tiles(kind: TileKind, level: u8, size: u64) -> impl Iterator<Item = Tile> {
    let full = full_tile_count(level, size);
    let w = partial_tile_width(level, size);
    let partial = if w > 0 {
        Tile::new(kind, full, w).ok()
    } else {
        None
    };
    (0..full)
        .filter_map(move |n| Tile::new(kind, n, TILE_WIDTH as u16).ok())
        .chain(partial)
}

/// The partial hash tiles for `size`, lowest level first (at most one per level).
pub fn partial_tiles_for_size(size: u64) -> impl Iterator<Item = Tile> {
    (0..MAX_LEVELS as u8).filter_map(move |level| {
        let w = partial_tile_width(level, size);
        if w == 0 {
            return None;
        }
        Tile::new(TileKind::Hashes(level), full_tile_count(level, size), w).ok()
    })
}

/// The hashes of a hash tile of `width` hashes; the data must be exactly `32 × width` bytes.
pub fn tile_hashes(data: &[u8], width: u16) -> Result<&[Hash], FormatError> {
    if data.len() != usize::from(width) * HASH_SIZE {
        return Err(FormatError::TileLength);
    }
    let (hashes, rest) = data.as_chunks::<HASH_SIZE>();
    if !rest.is_empty() {
        return Err(FormatError::TileLength);
    }
    Ok(hashes)
}

/// Appends `entry` to an entry bundle: its length as a big-endian `u16`, then its bytes.
/// Entries over 65,535 bytes are rejected ([`FormatError::EntryTooLarge`]) and leave `bundle`
/// unchanged.
pub fn encode_entry(bundle: &mut Vec<u8>, entry: &[u8]) -> Result<(), FormatError> {
    let len = u16::try_from(entry.len()).map_err(|_| FormatError::EntryTooLarge)?;
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(entry);
    Ok(())
}

/// The entries of an encoded entry bundle, in order. Yields an error (and then stops) where
/// the bundle is truncated; does not check the count (see [`decode_bundle`]).
pub fn bundle_entries(data: &[u8]) -> BundleEntries<'_> {
    BundleEntries { rest: data }
}

/// Iterator over an entry bundle's entries; see [`bundle_entries`].
#[derive(Debug, Clone)]
pub struct BundleEntries<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for BundleEntries<'a> {
    type Item = Result<&'a [u8], FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some((len, tail)) = self.rest.split_first_chunk::<2>() else {
            self.rest = &[];
            return Some(Err(FormatError::BundleTruncated));
        };
        let len = usize::from(u16::from_be_bytes(*len));
        let Some((entry, tail)) = tail.split_at_checked(len) else {
            self.rest = &[];
            return Some(Err(FormatError::BundleTruncated));
        };
        self.rest = tail;
        Some(Ok(entry))
    }
}

/// Decodes an entry bundle that must hold exactly `width` entries.
pub fn decode_bundle(data: &[u8], width: u16) -> Result<Vec<&[u8]>, FormatError> {
    // One allocation of the result, at most 256 slices, bounded by `width`.
    let mut out = Vec::with_capacity(usize::from(width));
    for e in bundle_entries(data) {
        if out.len() == usize::from(width) {
            return Err(FormatError::BundleCount);
        }
        out.push(e?);
    }
    if out.len() != usize::from(width) {
        return Err(FormatError::BundleCount);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn index_encoding_vectors() {
        // testdata/hashes.md, "Tile paths".
        for (n, want) in [
            (0u64, "000"),
            (5, "005"),
            (999, "999"),
            (1000, "x001/000"),
            (1234067, "x001/x234/067"),
            (123456078, "x123/x456/078"),
        ] {
            assert_eq!(
                tile_path(0, n, 256).unwrap().as_str(),
                format!("tile/0/{want}")
            );
            assert_eq!(
                entries_path(n, 256).unwrap().as_str(),
                format!("tile/entries/{want}")
            );
            assert_eq!(
                parse_tile_path(&format!("tile/3/{want}.p/17")).unwrap(),
                Tile::new(TileKind::Hashes(3), n, 17).unwrap()
            );
        }
        assert_eq!(
            tile_path(0, 1234067, 8).unwrap().as_str(),
            "tile/0/x001/x234/067.p/8"
        );
        assert_eq!(
            entries_path(1234067, 256).unwrap().as_str(),
            "tile/entries/x001/x234/067"
        );
        let max = Tile::new(TileKind::Entries, u64::MAX >> 8, 255).unwrap();
        assert_eq!(
            max.to_string(),
            "tile/entries/x072/x057/x594/x037/x927/935.p/255"
        );
        assert_eq!(parse_tile_path(max.path().as_str()), Ok(max));
    }

    #[test]
    fn parse_round_trips_and_rejects() {
        for p in [
            "tile/0/000",
            "tile/0/000.p/1",
            "tile/0/000.p/255",
            "tile/7/000.p/1",
            "tile/entries/x001/x234/067",
            "tile/entries/x001/x234/067.p/8",
            "tile/1/x999/999",
        ] {
            let t = parse_tile_path(p).unwrap();
            assert_eq!(t.path().as_str(), p);
        }
        for p in [
            "tile/0/123/456/078", // hashes.md: non-final groups need their x
            "tile/0/x123/x456/x078",
            "tile/0/x000/005",
            "tile/0/5",
            "tile/0/0005",
            "tile/0/x1/000",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/08",
            "tile/0/000.p/",
            "tile/0/000.p",
            "tile/0/000/",
            "tile/0/",
            "tile/00/000",
            "tile/-1/000",
            "tile/+1/000",
            "tile//000",
            "tile/data/000",
            "tile/8/0/000",
            "/tile/0/000",
            "tiles/0/000",
            "tile/0/00a",
            "tile/0/x00a/000",
            "tile/0/000.p/1/2",
            "tile/0/000.p/1.p/2",
            "tile/entries",
            "tile/entries/",
            "",
        ] {
            assert!(parse_tile_path(p).is_err(), "{p} parsed");
        }
        // Out of a 64-bit tree: level 8, or a first leaf beyond u64.
        assert_eq!(parse_tile_path("tile/8/000"), Err(FormatError::TileRange));
        assert_eq!(
            parse_tile_path("tile/7/001.p/1"),
            Err(FormatError::TileRange)
        );
        assert_eq!(
            parse_tile_path("tile/0/x018/x446/x744/x073/x709/x551/615"),
            Err(FormatError::TileRange)
        );
        assert_eq!(
            parse_tile_path("tile/0/x999/x999/x999/x999/x999/x999/x999/999"),
            Err(FormatError::TileRange)
        );
    }

    fn describe(size: u64) -> Vec<(TileKind, u64, u16)> {
        tiles_for_size(size)
            .map(|t| (t.kind(), t.index(), t.width()))
            .collect()
    }

    #[test]
    fn tiles_for_size_table() {
        // testdata/hashes.md, "Which tiles exist for a tree size".
        use TileKind::Hashes;
        assert_eq!(describe(0), vec![]);
        assert_eq!(describe(15), vec![(Hashes(0), 0, 15)]);
        assert_eq!(describe(256), vec![(Hashes(0), 0, 256), (Hashes(1), 0, 1)]);
        assert_eq!(
            describe(300),
            vec![(Hashes(0), 0, 256), (Hashes(0), 1, 44), (Hashes(1), 0, 1)]
        );
        let t = describe(70000);
        let count = |l: u8, w: u16| {
            t.iter()
                .filter(|&&(k, _, tw)| k == Hashes(l) && tw == w)
                .count()
        };
        assert_eq!(count(0, 256), 273);
        assert_eq!(count(1, 256), 1);
        assert_eq!(t.len(), 273 + 1 + 1 + 1 + 1);
        assert!(t.contains(&(Hashes(0), 273, 112)));
        assert!(t.contains(&(Hashes(1), 1, 17)));
        assert!(t.contains(&(Hashes(2), 0, 1)));
        let partial: Vec<_> = partial_tiles_for_size(70000)
            .map(|t| t.to_string())
            .collect();
        assert_eq!(
            partial,
            ["tile/0/273.p/112", "tile/1/001.p/17", "tile/2/000.p/1"]
        );
        let bundles: Vec<_> = entry_bundles_for_size(300).map(|t| t.to_string()).collect();
        assert_eq!(bundles, ["tile/entries/000", "tile/entries/001.p/44"]);
        // The largest tree still fits in levels 0..=7 (its partial tiles: one per level).
        let top: Vec<_> = partial_tiles_for_size(u64::MAX).collect();
        assert_eq!(top.len(), 8);
        assert_eq!(top[7].kind(), Hashes(7));
        assert_eq!(top[7].width(), 255);
    }

    #[test]
    fn tile_decoding() {
        let data = [7u8; 64];
        assert_eq!(tile_hashes(&data, 2).unwrap(), &[[7u8; 32]; 2]);
        assert_eq!(tile_hashes(&data, 1), Err(FormatError::TileLength));
        assert_eq!(tile_hashes(&data, 3), Err(FormatError::TileLength));
        assert_eq!(tile_hashes(&data[..63], 2), Err(FormatError::TileLength));
        assert_eq!(tile_hashes(&[], 0).unwrap().len(), 0);
    }

    #[test]
    fn bundle_encoding() {
        let mut b = Vec::new();
        encode_entry(&mut b, b"").unwrap();
        encode_entry(&mut b, b"abc").unwrap();
        let big = vec![9u8; MAX_ENTRY_SIZE];
        encode_entry(&mut b, &big).unwrap();
        assert_eq!(&b[..7], &[0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(&b[7..9], &[0xff, 0xff]);
        let before = b.clone();
        assert_eq!(
            encode_entry(&mut b, &vec![0u8; MAX_ENTRY_SIZE + 1]),
            Err(FormatError::EntryTooLarge)
        );
        assert_eq!(b, before, "a rejected entry leaves the bundle unchanged");
        let got = decode_bundle(&b, 3).unwrap();
        assert_eq!(got, vec![&b""[..], &b"abc"[..], &big[..]]);
        assert_eq!(decode_bundle(&b, 2), Err(FormatError::BundleCount));
        assert_eq!(decode_bundle(&b, 4), Err(FormatError::BundleCount));
        assert_eq!(
            decode_bundle(&b[..b.len() - 1], 3),
            Err(FormatError::BundleTruncated)
        );
        assert_eq!(decode_bundle(&[0], 1), Err(FormatError::BundleTruncated));
        assert_eq!(
            decode_bundle(&[0, 2, 1], 1),
            Err(FormatError::BundleTruncated)
        );
        assert_eq!(decode_bundle(&[], 0).unwrap().len(), 0);
    }
}
