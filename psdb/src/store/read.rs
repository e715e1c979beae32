//! Reading an object in pieces: a sequential [`Reader`] that verifies the whole object by its
//! last piece, and [`Store::read_at`], a piece at any offset, unverified, with a flag saying
//! whether the whole object was verified since mount.
//!
//! # The contract
//!
//! Bytes a read returns before the object's verdict are **unverified**: they come from the
//! disk as it is, and may be damaged. A sequential reader's last piece carries the verdict:
//! `Ok` if the SHA-256 of every byte read matches the one its manifest recorded, else
//! [`Error::Corrupt`] naming the object's member. A caller must not act on the earlier pieces
//! as if verified until that verdict: it passes them on only to someone who verifies them
//! anyway (the ledger serves tlog tiles and entry bundles to clients that check them against
//! a signed checkpoint), or it holds them, or it drops them when the verdict is `Corrupt`.
//!
//! # Why offset reads are unverified
//!
//! The ledger serves an object to a client 64 KiB per request, one request per piece, by
//! offset. Verifying the whole object for every piece would read it `n` times over (O(n²) for
//! an entry bundle of 16 MiB); keeping a hash state per client would be state psdb cannot
//! bound. So [`Store::read_at`] returns the bytes with `verified`: true only when the whole
//! member was read back and matched its SHA-256 since mount (by [`Store::get`], a
//! [`Reader`] to its end, [`Store::verify`], or mount's check of the final batch), a bit
//! kept in the index at no cost per object. A caller that wants verified pieces calls
//! [`Store::verify`] once (one pass, 64 KiB at a time) and then reads by offset. A member
//! found damaged by any of these is remembered: later reads of it fail with
//! [`Error::Corrupt`] at once. The bit says what was read back, not what the disk holds now:
//! damage made after the check is found by the next whole read or `fsck`.
//!
//! Every read checks the member's tar header first (one sector): a header that is not the one
//! PSDB wrote is [`Error::Corrupt`] before any byte is returned.

use super::*;

/// An object being read from its start ([`Store::open_read`]). Holds no reference to the
/// store and no buffer: the caller gives one to each [`Store::read_next`].
#[derive(Debug, Clone)]
pub struct Reader {
    store: u64,
    ns: u32,
    /// The member header's offset.
    at: u64,
    size: u64,
    hash: [u8; 32],
    pos: u64,
    hasher: manifest::Hasher,
    path: [u8; tar::MAX_NAME],
    path_len: u8,
}

impl Reader {
    /// The object's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes read so far.
    pub fn position(&self) -> u64 {
        self.pos
    }
}

/// What one piece of a read returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Bytes written to the start of the caller's buffer.
    pub len: usize,
    /// The object's size.
    pub size: u64,
    /// For [`Store::read_next`]: the object was read to its end and matched its SHA-256 (the
    /// verdict; a mismatch is an error instead). For [`Store::read_at`]: the whole object was
    /// verified since mount (see the module docs). When `false`, the bytes are unverified.
    pub verified: bool,
}

/// Reads `out.len()` bytes at byte offset `pos` of the device (any alignment): whole sectors
/// straight into `out`, a partial first or last sector through a sector on the stack.
fn read_bytes<D: BlockDevice>(dev: &mut D, mut pos: u64, mut out: &mut [u8]) -> Result<(), Error> {
    while !out.is_empty() {
        let in_sector = (pos % BLOCK) as usize;
        if in_sector == 0 && out.len() >= SECTOR_SIZE {
            let whole = out.len() / SECTOR_SIZE * SECTOR_SIZE;
            let (now, rest) = out.split_at_mut(whole);
            dev.read(pos / BLOCK, now)?;
            pos += whole as u64;
            out = rest;
        } else {
            let mut sector = [0u8; SECTOR_SIZE];
            dev.read(pos / BLOCK, &mut sector)?;
            let n = (SECTOR_SIZE - in_sector).min(out.len());
            let (now, rest) = out.split_at_mut(n);
            now.copy_from_slice(&sector[in_sector..in_sector + n]);
            pos += n as u64;
            out = rest;
        }
    }
    Ok(())
}

impl<D: BlockDevice> Store<D> {
    /// The committed object at `path` of namespace `i` for a piece-wise read: `Ok(None)` if
    /// absent; [`Error::WrongKind`] for a journal, [`Error::Staged`] for an object not yet
    /// flushed (read it whole with [`Store::get`]), [`Error::Damaged`] for the checkpoint of a
    /// namespace marked lost, [`Error::Corrupt`] for a member known bad or whose header is not
    /// the one PSDB wrote.
    fn open_member(&mut self, i: usize, path: &str) -> Result<Option<Obj>, Error> {
        let st = &self.namespaces[i];
        if let Some(d) = st.damage.filter(|d| d.lost && path == CHECKPOINT) {
            return Err(Error::Damaged(d.problem));
        }
        let Some(o) = st.objects.get(path) else {
            return Ok(None);
        };
        if o.journal {
            return Err(Error::WrongKind);
        }
        if o.loc & STAGED != 0 {
            return Err(Error::Staged);
        }
        let bad = |reason| {
            Error::Corrupt(Problem {
                offset: o.loc,
                reason,
            })
        };
        if o.check == Check::Bad {
            return Err(bad(Corruption::DataHash));
        }
        let mut name = [0u8; tar::MAX_NAME];
        let n = full_name(&mut name, &st.name, path);
        let mut head = [0u8; SECTOR_SIZE];
        self.dev.read(o.loc / BLOCK, &mut head)?;
        if head != tar::header(&name[..n], u64::from(o.size)) {
            return Err(bad(Corruption::BadHeader));
        }
        Ok(Some(o))
    }

    /// Records what a whole read of the member at `loc` found.
    pub(super) fn set_check(&mut self, i: usize, path: &str, loc: u64, check: Check) {
        let objects = &mut self.namespaces[i].objects;
        if let Some(mut o) = objects.get(path).filter(|o| o.loc == loc) {
            o.check = check;
            objects.set(path, o);
        }
    }

    /// Opens the object at `path` of `ns` (the latest checkpoint, for `checkpoint`) to be read
    /// from its start in pieces ([`Store::read_next`]); `Ok(None)` if absent. Errors as for
    /// [`Store::read_at`]. What a caller may do with pieces before the last: see the module
    /// docs of `psdb::store::read` (they are unverified until the verdict).
    pub fn open_read(&mut self, ns: Namespace, path: &str) -> Result<Option<Reader>, Error> {
        let i = self.ns(ns)?;
        let Some(o) = self.open_member(i, path)? else {
            return Ok(None);
        };
        let mut p = [0u8; tar::MAX_NAME];
        let n = path.len().min(p.len());
        p[..n].copy_from_slice(&path.as_bytes()[..n]);
        Ok(Some(Reader {
            store: self.tag,
            ns: i as u32,
            at: o.loc,
            size: u64::from(o.size),
            hash: o.hash,
            pos: 0,
            hasher: manifest::Hasher::new(),
            path: p,
            path_len: n as u8,
        }))
    }

    /// The next piece of `r` into `buf`: up to `buf.len()` bytes (fewer only at the end; 0
    /// once the end was reached). The piece that reaches the end carries the verdict:
    /// `verified: true` if the object's bytes match its SHA-256 and its padding is zeros,
    /// else [`Error::Corrupt`] naming the member (and the member is remembered as bad). Bytes
    /// of earlier pieces are unverified until then.
    pub fn read_next(&mut self, r: &mut Reader, buf: &mut [u8]) -> Result<Chunk, Error> {
        if r.store != self.tag {
            return Err(Error::BadHandle);
        }
        let done = Chunk {
            len: 0,
            size: r.size,
            verified: true,
        };
        if r.pos == r.size && r.size > 0 {
            return Ok(done);
        }
        let n = (r.size - r.pos).min(buf.len() as u64) as usize;
        read_bytes(&mut self.dev, r.at + BLOCK + r.pos, &mut buf[..n])?;
        r.hasher.update(&buf[..n]);
        r.pos += n as u64;
        if r.pos < r.size {
            return Ok(Chunk {
                len: n,
                verified: false,
                ..done
            });
        }
        let padding = tar::padded(r.size) - r.size;
        let mut tail = [0u8; SECTOR_SIZE];
        let tail = &mut tail[..padding as usize];
        read_bytes(&mut self.dev, r.at + BLOCK + r.size, tail)?;
        let reason = if tail.iter().any(|&b| b != 0) {
            Some(Corruption::BadPadding)
        } else if r.hasher.clone().finish() != r.hash {
            Some(Corruption::DataHash)
        } else {
            None
        };
        let path = core::str::from_utf8(&r.path[..usize::from(r.path_len)]).unwrap_or("");
        let i = r.ns as usize;
        match reason {
            None => {
                self.set_check(i, path, r.at, Check::Good);
                Ok(Chunk { len: n, ..done })
            }
            Some(reason) => {
                self.set_check(i, path, r.at, Check::Bad);
                Err(Error::Corrupt(Problem {
                    offset: r.at,
                    reason,
                }))
            }
        }
    }

    /// Reads up to `buf.len()` bytes of the object at `path` of `ns` from byte `offset`
    /// (fewer at its end; none at or past it); `Ok(None)` if absent. **Unverified** unless
    /// `verified` says the whole object was checked since mount (module docs). Fails with
    /// [`Error::Corrupt`] if its header is not the one PSDB wrote or a whole read of it since
    /// mount found it damaged; [`Error::WrongKind`] for a journal; [`Error::Staged`] for an
    /// object staged and not yet flushed; [`Error::Damaged`] for the checkpoint of a
    /// namespace marked lost.
    pub fn read_at(
        &mut self,
        ns: Namespace,
        path: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<Option<Chunk>, Error> {
        let i = self.ns(ns)?;
        let Some(o) = self.open_member(i, path)? else {
            return Ok(None);
        };
        let size = u64::from(o.size);
        let n = size.saturating_sub(offset).min(buf.len() as u64) as usize;
        read_bytes(
            &mut self.dev,
            o.loc + BLOCK + offset.min(size),
            &mut buf[..n],
        )?;
        Ok(Some(Chunk {
            len: n,
            size,
            verified: o.check == Check::Good,
        }))
    }

    /// Reads the whole object at `path` of `ns` back from the disk, 64 KiB at a time, and
    /// checks it against its SHA-256: `Ok(true)` and remembered (later [`Store::read_at`]
    /// pieces say `verified`), `Ok(false)` if absent, [`Error::Corrupt`] if damaged (also
    /// remembered: later reads of it fail). Errors otherwise as for [`Store::read_at`].
    pub fn verify(&mut self, ns: Namespace, path: &str) -> Result<bool, Error> {
        let i = self.ns(ns)?;
        let Some(o) = self.open_member(i, path)? else {
            return Ok(false);
        };
        let mut name = [0u8; tar::MAX_NAME];
        let n = full_name(&mut name, &self.namespaces[i].name, path);
        let mut buf = Vec::new();
        let r = check_member(
            &mut self.dev,
            o.loc,
            &name[..n],
            u64::from(o.size),
            &o.hash,
            &mut buf,
        );
        match r {
            Ok(()) => {
                self.set_check(i, path, o.loc, Check::Good);
                Ok(true)
            }
            Err(MemberError::Io(e)) => Err(Error::Io(e)),
            Err(MemberError::NoMemory) => Err(Error::OutOfMemory),
            Err(MemberError::Bad(reason)) => {
                self.set_check(i, path, o.loc, Check::Bad);
                Err(Error::Corrupt(Problem {
                    offset: o.loc,
                    reason,
                }))
            }
        }
    }
}
