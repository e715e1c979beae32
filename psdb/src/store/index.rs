//! A namespace's object index: a sorted array of fixed 48-byte records, kept in pages of
//! [`PAGE`] records (a two-level B+-tree: one sorted list of sorted pages), with the paths in
//! an append-only arena of [`ARENA_PAGE`]-byte pages.
//!
//! Why this shape: the index is what grows with the disk, and it must fit a heap of a few MiB
//! (the psdb PD's). A record is 48 bytes (the SHA-256, a 40-bit sector address, the size, the
//! path's place in the arena); a path costs its bytes, with no allocation of its own. No
//! allocation is ever larger than a page (12 KiB of records, 8 KiB of paths), so the index
//! never reallocates a large block (a first-fit heap would need the old and the new one at
//! once), and a page freed is a hole any later page fits.
//!
//! **Memory bound.** Every page but the last of a namespace's insertion hot spots is full when
//! objects arrive in order (a full page that takes an object at its end starts a new page
//! instead of splitting); out-of-order inserts split pages in halves. Whenever the pages
//! outnumber `len / PAGE x 9/8 + 2`, they are compacted in place (no allocation) to 15/16
//! full. So the records take at most `48 x 9/8 = 54` bytes per object plus two pages and a
//! spare page per namespace; the arena wastes at most one path (99 bytes) per 8 KiB page
//! (1.2 bytes per object of 99-byte paths) plus one partial page. [`super::INDEX_ENTRY_BYTES`]
//! (56) + path length per object and [`super::NAMESPACE_BYTES`] per namespace cover it;
//! `tests/index_memory.rs` fills an index to its budget under a counting allocator.
//!
//! Time: a lookup is two binary searches (pages by their last key, then within the page),
//! about `log2(n)` path comparisons, as in a B-tree; an insert moves at most one page.

use alloc::vec::Vec;

use super::{Check, Obj, BLOCK, STAGED};
use crate::error::Error;

/// Records per page.
pub(super) const PAGE: usize = 256;
/// Bytes per arena page. A path never straddles two pages.
pub(super) const ARENA_PAGE: usize = 8 << 10;
/// Sectors are stored in 40 bits: a device is used up to this many bytes (512 TiB).
pub(super) const MAX_CAPACITY: u64 = (1 << 40) * BLOCK;

const JOURNAL: u8 = 1;
const IS_STAGED: u8 = 2;
const GOOD: u8 = 4;
const BAD: u8 = 8;

/// One object: 48 bytes.
#[derive(Debug, Clone, Copy)]
struct Rec {
    hash: [u8; 32],
    /// The member's sector (or, staged, its sector in the batch): low 32 bits, and `hi`.
    lo: u32,
    size: u32,
    /// The path's offset in the arena, and its length.
    path: u32,
    len: u8,
    hi: u8,
    flags: u8,
}

impl Rec {
    fn new(o: &Obj, path: u32, len: u8) -> Rec {
        let sector = (o.loc & !STAGED) / BLOCK;
        let mut flags = 0;
        if o.journal {
            flags |= JOURNAL;
        }
        if o.loc & STAGED != 0 {
            flags |= IS_STAGED;
        }
        flags |= match o.check {
            Check::Unchecked => 0,
            Check::Good => GOOD,
            Check::Bad => BAD,
        };
        Rec {
            hash: o.hash,
            lo: sector as u32,
            size: o.size,
            path,
            len,
            hi: (sector >> 32) as u8,
            flags,
        }
    }

    fn set(&mut self, o: &Obj) {
        *self = Rec::new(o, self.path, self.len);
    }

    fn obj(&self) -> Obj {
        let sector = u64::from(self.lo) | u64::from(self.hi) << 32;
        let staged = if self.flags & IS_STAGED != 0 {
            STAGED
        } else {
            0
        };
        Obj {
            hash: self.hash,
            loc: (sector * BLOCK) | staged,
            size: self.size,
            journal: self.flags & JOURNAL != 0,
            check: if self.flags & BAD != 0 {
                Check::Bad
            } else if self.flags & GOOD != 0 {
                Check::Good
            } else {
                Check::Unchecked
            },
        }
    }
}

/// The paths, appended in pages.
#[derive(Debug, Default)]
struct Arena {
    pages: Vec<Vec<u8>>,
}

impl Arena {
    fn get(&self, r: &Rec) -> &[u8] {
        let (p, at) = (r.path as usize / ARENA_PAGE, r.path as usize % ARENA_PAGE);
        self.pages
            .get(p)
            .and_then(|page| page.get(at..at + usize::from(r.len)))
            .unwrap_or(&[])
    }

    /// Makes room for `len` more bytes in the last page (a new page if needed).
    fn reserve(&mut self, len: usize) -> Result<(), Error> {
        let room = self
            .pages
            .last()
            .is_some_and(|p| p.len() + len <= ARENA_PAGE);
        if room {
            return Ok(());
        }
        if self.pages.len() >= u32::MAX as usize / ARENA_PAGE {
            return Err(Error::IndexFull);
        }
        let mut page = Vec::new();
        page.try_reserve_exact(ARENA_PAGE)
            .map_err(|_| Error::OutOfMemory)?;
        self.pages.try_reserve(1).map_err(|_| Error::OutOfMemory)?;
        self.pages.push(page);
        Ok(())
    }

    /// Appends `path` (room reserved by [`Arena::reserve`]); its offset.
    fn push(&mut self, path: &[u8]) -> Option<u32> {
        let n = self.pages.len().checked_sub(1)?;
        let page = &mut self.pages[n];
        if page.len() + path.len() > ARENA_PAGE {
            return None;
        }
        let at = n * ARENA_PAGE + page.len();
        page.extend_from_slice(path);
        Some(at as u32)
    }

    /// Takes back the path at `r` if it is the last one appended.
    fn pop(&mut self, r: &Rec) {
        let (p, at) = (r.path as usize / ARENA_PAGE, r.path as usize % ARENA_PAGE);
        let last = p + 1 == self.pages.len();
        if let Some(page) = self.pages.last_mut().filter(|_| last) {
            if at + usize::from(r.len) == page.len() {
                page.truncate(at);
            }
        }
    }
}

/// One namespace's objects, sorted by path (byte order).
#[derive(Debug, Default)]
pub(super) struct Index {
    /// Non-empty pages, each of capacity [`PAGE`], every key of page `k` below page `k+1`'s.
    pages: Vec<Vec<Rec>>,
    /// A page allocated ahead ([`Index::reserve`]), so an insert needs no allocation.
    spare: Option<Vec<Rec>>,
    arena: Arena,
    len: usize,
}

/// Why an insert did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// The path is in the index already (nothing changed).
    Exists,
    /// Room was not reserved, or the path is too long (nothing changed).
    NoRoom,
}

impl Index {
    /// Where `key` is or would go: the page (`pages.len()` if past every key: then the last
    /// page, if any, takes it) and the position in it, and whether it is there.
    fn find(&self, key: &[u8]) -> (usize, usize, bool) {
        let arena = &self.arena;
        let k = self
            .pages
            .partition_point(|p| p.last().is_some_and(|r| arena.get(r) < key));
        let Some(page) = self.pages.get(k) else {
            let last = self.pages.len().saturating_sub(1);
            let at = self.pages.get(last).map_or(0, |p| p.len());
            return (last, at, false);
        };
        match page.binary_search_by(|r| arena.get(r).cmp(key)) {
            Ok(at) => (k, at, true),
            Err(at) => (k, at, false),
        }
    }

    pub(super) fn get(&self, path: &str) -> Option<Obj> {
        match self.find(path.as_bytes()) {
            (k, at, true) => Some(self.pages[k][at].obj()),
            _ => None,
        }
    }

    pub(super) fn contains(&self, path: &str) -> bool {
        self.find(path.as_bytes()).2
    }

    /// Replaces the entry at `path`, returning what it held; `None` (and nothing changed) if
    /// there is none.
    pub(super) fn set(&mut self, path: &str, obj: Obj) -> Option<Obj> {
        match self.find(path.as_bytes()) {
            (k, at, true) => {
                let r = &mut self.pages[k][at];
                let old = r.obj();
                r.set(&obj);
                Some(old)
            }
            _ => None,
        }
    }

    /// Allocates what inserting a path of `len` bytes may need, so that the next
    /// [`Index::insert`] cannot fail for memory.
    pub(super) fn reserve(&mut self, len: usize) -> Result<(), Error> {
        if len > usize::from(u8::MAX) {
            return Err(Error::TooLarge);
        }
        self.arena.reserve(len)?;
        if self.spare.is_none() {
            let mut page = Vec::new();
            page.try_reserve_exact(PAGE)
                .map_err(|_| Error::OutOfMemory)?;
            self.spare = Some(page);
        }
        self.pages.try_reserve(1).map_err(|_| Error::OutOfMemory)?;
        Ok(())
    }

    /// Adds `path` (after [`Index::reserve`]).
    pub(super) fn insert(&mut self, path: &str, obj: Obj) -> Result<(), Refused> {
        let key = path.as_bytes();
        let (mut k, mut at, found) = self.find(key);
        if found {
            return Err(Refused::Exists);
        }
        if at == 0 && k > 0 {
            // Between two pages: at the end of the earlier one, so that objects put in order
            // in the middle of the index fill pages too.
            k -= 1;
            at = self.pages[k].len();
        }
        let len = u8::try_from(key.len()).map_err(|_| Refused::NoRoom)?;
        let needs_page = self.pages.get(k).is_none_or(|p| p.len() == PAGE);
        if needs_page && (self.spare.is_none() || self.pages.len() == self.pages.capacity()) {
            return Err(Refused::NoRoom);
        }
        let off = self.arena.push(key).ok_or(Refused::NoRoom)?;
        let rec = Rec::new(&obj, off, len);
        if !needs_page {
            self.pages[k].insert(at, rec);
        } else if let Some(mut page) = self.spare.take() {
            page.clear();
            if self.pages.is_empty() {
                page.push(rec);
                self.pages.push(page);
            } else if at == PAGE {
                // A full page taking a key at its end: a new page after it (objects put in
                // order leave full pages behind).
                page.push(rec);
                self.pages.insert(k + 1, page);
            } else {
                let full = &mut self.pages[k];
                page.extend_from_slice(&full[PAGE / 2..]);
                full.truncate(PAGE / 2);
                if at <= PAGE / 2 {
                    full.insert(at, rec);
                } else {
                    page.insert(at - PAGE / 2, rec);
                }
                self.pages.insert(k + 1, page);
            }
        }
        self.len += 1;
        self.compact_if_sparse();
        Ok(())
    }

    /// Removes `path`, returning its entry (and its path's arena bytes if they were the last
    /// appended: rollback removes in reverse order of insertion, so it takes back all of them).
    pub(super) fn remove(&mut self, path: &str) -> Option<Obj> {
        let (k, at, found) = self.find(path.as_bytes());
        if !found {
            return None;
        }
        let r = self.pages[k].remove(at);
        self.arena.pop(&r);
        if self.pages[k].is_empty() {
            let page = self.pages.remove(k);
            if self.spare.is_none() {
                self.spare = Some(page);
            }
        }
        self.len -= 1;
        self.compact_if_sparse();
        Some(r.obj())
    }

    /// Compacts the pages (in place, no allocation) to 15/16 full when they are more than
    /// 9/8 of what the records need, plus two.
    fn compact_if_sparse(&mut self) {
        let need = self.len.div_ceil(PAGE);
        if self.pages.len() <= need + need / 8 + 2 {
            return;
        }
        let fill = PAGE - PAGE / 16;
        let mut w = 0;
        for r in 1..self.pages.len() {
            while w < r && !self.pages[r].is_empty() {
                let (left, right) = self.pages.split_at_mut(r);
                let dst = &mut left[w];
                let src = &mut right[0];
                let take = fill.saturating_sub(dst.len()).min(src.len());
                dst.extend_from_slice(&src[..take]);
                src.drain(..take);
                if dst.len() >= fill {
                    w += 1;
                }
            }
        }
        let mut spare = self.spare.take();
        self.pages.retain_mut(|p| {
            if !p.is_empty() {
                return true;
            }
            if spare.is_none() {
                spare = Some(core::mem::take(p));
            }
            false
        });
        self.spare = spare;
    }

    /// Entries from the first path `>= from`, in byte order.
    pub(super) fn range_from<'a>(
        &'a self,
        from: &str,
    ) -> impl Iterator<Item = (&'a str, Obj)> + 'a {
        let (k, at, _) = self.find(from.as_bytes());
        let arena = &self.arena;
        self.pages
            .iter()
            .enumerate()
            .skip(k)
            .flat_map(move |(i, p)| p[if i == k { at.min(p.len()) } else { 0 }..].iter())
            .map(move |r| (core::str::from_utf8(arena.get(r)).unwrap_or(""), r.obj()))
    }

    /// Every entry, in byte order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, Obj)> + '_ {
        self.range_from("")
    }
}
