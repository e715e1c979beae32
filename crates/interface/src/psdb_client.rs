//! The caller's side of [`psdb_call`](crate::psdb_call): a [`tlog::Storage`] over a ppcall
//! channel to psdb and the region shared with it.

use alloc::vec::Vec;
use core::fmt;

use microkit::region::{ReadWrite, Region};
use microkit::Channel;

pub use crate::msg::psdb::{JournalStat, Piece, Usage};
use crate::msg::psdb::{Reply, Request};
use crate::msg::DecodeError;
use crate::psdb_call::{DATA, JOURNAL_RECORD, MAX_PATH};

/// Why a psdb call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsdbError {
    /// psdb refused with this error code ([`Reply::code`]: `psdb::Error::code()` 1..=19, the
    /// call errors 20..=22).
    Refused(u64),
    /// psdb is not serving ([`Reply::NotServing`]: its disk failed to mount), or answered a
    /// label that is no reply of its protocol to the call made: unavailable.
    Unavailable,
    /// The path or object does not fit the region.
    TooLarge,
    /// psdb's reply does not make sense: it does not decode as the answer to the call made
    /// ([`Reply::decode`]: a register count other than its label's, a flag other than 0 or 1,
    /// more journal slots used than it has), or it states a length past the region, the
    /// largest tlog object or the caller's buffer.
    BadReply,
    /// The buffer for the object could not be allocated.
    OutOfMemory,
}

/// The psdb error labels that mean "no room" (`psdb::Error::code`, checked by a test): the
/// disk is full, the index is at its budget, or the namespace reached its quota. Nothing of the
/// refused put was stored and everything stored before is intact.
pub const PSDB_FULL_CODES: [u64; 3] = [6, 11, 14];

/// The psdb error labels for damage to committed data (`psdb::Error::Corrupt`: the object read
/// fails its hash; `psdb::Error::Damaged`: the namespace holds damage found at mount, so it
/// takes no more writes, and if a checkpoint version may be missing its checkpoint is not
/// served). Checked against the engine by a test.
pub const PSDB_DAMAGED_CODES: [u64; 2] = [7, 15];

/// The psdb error labels for a put of different bytes at a path that holds an object (written
/// by something other than this ledger's committed log: a planted or stray object), and for a
/// path that conflicts with one (`psdb::Error::Immutable`, `PathConflict`).
pub const PSDB_CONFLICT_CODES: [u64; 2] = [2, 4];

impl PsdbError {
    /// Whether psdb refused for lack of room ([`PSDB_FULL_CODES`]), as opposed to a fault.
    pub fn is_full(&self) -> bool {
        matches!(self, PsdbError::Refused(code) if PSDB_FULL_CODES.contains(code))
    }

    /// Whether psdb refused because of damaged committed data ([`PSDB_DAMAGED_CODES`]) or an
    /// object this log did not write ([`PSDB_CONFLICT_CODES`]).
    pub fn is_damage(&self) -> bool {
        matches!(self, PsdbError::Refused(code)
            if PSDB_DAMAGED_CODES.contains(code) || PSDB_CONFLICT_CODES.contains(code))
    }
}

impl fmt::Display for PsdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PsdbError::Refused(code) => {
                let why = match *code {
                    2 => "an object with other bytes is already at that path (write-once)",
                    4 => "the path conflicts with an existing object",
                    6 | 11 => "no room on the disk or in the index",
                    7 => "the stored object is damaged (fails its SHA-256 or tar header)",
                    14 => "the namespace's quota is reached",
                    15 => "the namespace holds damaged committed data (read-only)",
                    16 => "the journal is full or closed",
                    17 => "not a journal (or a journal read as an object)",
                    18 => "puts are staged: a journal record waits for their checkpoint",
                    19 => "journal records halted until psdb mounts the disk again",
                    _ => "",
                };
                if why.is_empty() {
                    write!(f, "psdb refused with code {code}")
                } else {
                    write!(f, "psdb refused with code {code}: {why}")
                }
            }
            PsdbError::Unavailable => f.write_str("psdb is not serving"),
            PsdbError::TooLarge => f.write_str("object too large for the psdb region"),
            PsdbError::BadReply => f.write_str("malformed psdb reply"),
            PsdbError::OutOfMemory => f.write_str("no memory for the object read from psdb"),
        }
    }
}

/// One PD's connection to psdb. The namespace is whichever the channel stands for in psdb.
#[derive(Debug, Clone)]
pub struct PsdbClient {
    channel: Channel,
    region: Region<ReadWrite>,
}

impl PsdbClient {
    /// A client calling psdb on `channel`, sharing `region` with it.
    pub fn new(channel: Channel, region: Region<ReadWrite>) -> Self {
        PsdbClient { channel, region }
    }

    /// Largest object (or piece) this client moves in one call: the region's data area.
    /// Larger objects go in pieces of this size ([`PsdbClient::put_begin`],
    /// [`PsdbClient::read_at`]); [`tlog::Storage::put`] and `get` do that themselves.
    pub fn max_object(&self) -> usize {
        self.region.len().saturating_sub(DATA)
    }

    /// Largest object a read accepts: the largest tlog object
    /// ([`tlog::tile::MAX_BUNDLE_SIZE`]), so a read buffer of that capacity is never grown.
    pub fn max_read(&self) -> usize {
        tlog::tile::MAX_BUNDLE_SIZE
    }

    /// Reads bytes `offset..` of the object at `path` (the checkpoint if `path` is `None`)
    /// straight from the shared region into `out`, as many as fit in `out` and in one call
    /// ([`PsdbClient::max_object`]); returns the object's total length and how many bytes were
    /// copied, or `None` if there is no such object. Allocates nothing: for serving an object
    /// in chunks without holding a copy of it. The bytes of an object are **unverified**
    /// ([`PsdbClient::read_at`]): for passing on to a client that checks them.
    pub fn get_range(
        &mut self,
        path: Option<&str>,
        offset: u64,
        out: &mut [u8],
    ) -> Result<Option<(u64, usize)>, PsdbError> {
        let Some(p) = path else {
            let reply = self.call(Request::Checkpoint, "", &[])?;
            let Some(len) = self.object_len(reply)? else {
                return Ok(None);
            };
            let start = usize::try_from(offset).unwrap_or(usize::MAX).min(len);
            let n = (len - start).min(out.len());
            self.region
                .read(DATA + start, &mut out[..n])
                .map_err(|_| PsdbError::BadReply)?;
            return Ok(Some((len as u64, n)));
        };
        Ok(self
            .read_at(p, offset, out)?
            .map(|piece| (piece.size, piece.len)))
    }

    /// Reads up to `out.len()` bytes (at most [`PsdbClient::max_object`]) of the object at
    /// `path` from byte `offset` ([`Request::ReadAt`]): the piece (how many bytes, the
    /// object's size, whether psdb verified the whole object since it mounted), or `None` if
    /// there is no such object. **Unverified unless `verified`**: pass such bytes only to
    /// someone who checks them. A damaged object is refused (`Corrupt`, a
    /// [`PSDB_DAMAGED_CODES`] code), never answered with bytes.
    pub fn read_at(
        &mut self,
        path: &str,
        offset: u64,
        out: &mut [u8],
    ) -> Result<Option<Piece>, PsdbError> {
        let max = out.len().min(self.max_object());
        let req = Request::ReadAt {
            path_len: path.len(),
            offset,
            max,
        };
        match self.call(req, path, &[])? {
            Reply::Piece(None) => Ok(None),
            // The decoder checked len <= max (so <= out.len()) and len <= size.
            Reply::Piece(Some(p)) => {
                self.region
                    .read(DATA, &mut out[..p.len])
                    .map_err(|_| PsdbError::BadReply)?;
                Ok(Some(p))
            }
            _ => Err(PsdbError::BadReply),
        }
    }

    /// Has psdb read the whole object at `path` back and check its SHA-256
    /// ([`Request::Verify`]): its size, or `None` if absent. Afterwards its
    /// [`PsdbClient::read_at`] pieces say `verified`. Damage is a refusal (`Corrupt`).
    pub fn verify(&mut self, path: &str) -> Result<Option<u64>, PsdbError> {
        let req = Request::Verify {
            path_len: path.len(),
        };
        match self.call(req, path, &[])? {
            Reply::Found(len) => Ok(len.map(|n| n as u64)),
            _ => Err(PsdbError::BadReply),
        }
    }

    /// Starts a put of an object of `size` bytes at `path` whose bytes follow in
    /// [`PsdbClient::put_chunk`]s ([`Request::PutBegin`]): psdb checks here everything that
    /// could refuse it. Staged at its last byte, durable with the next checkpoint, like `put`.
    pub fn put_begin(&mut self, path: &str, size: u64) -> Result<(), PsdbError> {
        let req = Request::PutBegin {
            path_len: path.len(),
            size,
        };
        self.call(req, path, &[]).map(|_| ())
    }

    /// The next piece (at most [`PsdbClient::max_object`] bytes) of the object
    /// [`PsdbClient::put_begin`] started ([`Request::PutChunk`]).
    pub fn put_chunk(&mut self, data: &[u8]) -> Result<(), PsdbError> {
        let req = Request::PutChunk {
            data_len: data.len(),
        };
        self.call(req, "", data).map(|_| ())
    }

    /// What this client's namespace uses of its quota, and the volume's free bytes
    /// ([`Request::Usage`]). A reply without all [`Usage::REGISTERS`] registers, or with a
    /// damage flag other than 0 or 1, is [`PsdbError::BadReply`].
    pub fn usage(&mut self) -> Result<Usage, PsdbError> {
        match self.send(Request::Usage)? {
            Reply::Usage(u) => Ok(u),
            _ => Err(PsdbError::BadReply),
        }
    }

    /// Creates a journal of `slots` records at `path` ([`Request::JournalCreate`]): staged with
    /// this client's puts, durable with its next checkpoint.
    pub fn create_journal(&mut self, path: &str, slots: u32) -> Result<(), PsdbError> {
        let req = Request::JournalCreate {
            path_len: path.len(),
            slots,
        };
        self.call(req, path, &[]).map(|_| ())
    }

    /// Appends `record` to the journal at `path` ([`Request::JournalAppend`]); its slot, once
    /// durable. A reply without its slot, or with a slot past `u32`, is
    /// [`PsdbError::BadReply`].
    pub fn journal_append(&mut self, path: &str, record: &[u8]) -> Result<u32, PsdbError> {
        if record.len() > JOURNAL_RECORD {
            return Err(PsdbError::TooLarge);
        }
        let req = Request::JournalAppend {
            path_len: path.len(),
            data_len: record.len(),
        };
        match self.call(req, path, record)? {
            Reply::Appended { slot } => Ok(slot),
            _ => Err(PsdbError::BadReply),
        }
    }

    /// Reads record `slot` of the journal at `path` into `out` ([`Request::JournalRead`]); its
    /// length, or `None` if that slot was never written. A length past [`JOURNAL_RECORD`] or
    /// `out` is [`PsdbError::BadReply`].
    pub fn journal_read(
        &mut self,
        path: &str,
        slot: u32,
        out: &mut [u8],
    ) -> Result<Option<usize>, PsdbError> {
        let req = Request::JournalRead {
            path_len: path.len(),
            slot,
        };
        match self.call(req, path, &[])? {
            Reply::Found(None) => Ok(None),
            Reply::Found(Some(len)) if len <= JOURNAL_RECORD && len <= out.len() => {
                self.region
                    .read(DATA, &mut out[..len])
                    .map_err(|_| PsdbError::BadReply)?;
                Ok(Some(len))
            }
            _ => Err(PsdbError::BadReply),
        }
    }

    /// The journal at `path`'s slots and slots used ([`Request::JournalStat`]), `None` if there
    /// is no such object. A reply without its three registers, or with more used than slots,
    /// is [`PsdbError::BadReply`].
    pub fn journal_stat(&mut self, path: &str) -> Result<Option<JournalStat>, PsdbError> {
        match self.call(
            Request::JournalStat {
                path_len: path.len(),
            },
            path,
            &[],
        )? {
            Reply::Stat(stat) => Ok(stat),
            _ => Err(PsdbError::BadReply),
        }
    }

    /// Writes `path` at offset 0 of the region and `data` at [`DATA`], then calls psdb with
    /// `req` (whose lengths are theirs); psdb's answer, or why not.
    fn call(&mut self, req: Request, path: &str, data: &[u8]) -> Result<Reply, PsdbError> {
        if path.len() > MAX_PATH || data.len() > self.max_object() {
            return Err(PsdbError::TooLarge);
        }
        self.region
            .write(0, path.as_bytes())
            .map_err(|_| PsdbError::TooLarge)?;
        self.region
            .write(DATA, data)
            .map_err(|_| PsdbError::TooLarge)?;
        self.send(req)
    }

    /// Calls psdb with `req`; its answer if it is an `Ok` reply to `req`. A refusal is
    /// [`PsdbError::Refused`] with its code ([`Reply::code`]); `NotServing`, or a label that is
    /// no reply to `req`, [`PsdbError::Unavailable`]; any other reply that does not decode
    /// (on seL4 a register the callee did not set still holds the caller's own value, so a
    /// short reply would otherwise read as the caller's path length) [`PsdbError::BadReply`].
    fn send(&mut self, req: Request) -> Result<Reply, PsdbError> {
        let m = req.encode().call(self.channel);
        match Reply::decode(&req, m.info(), m.mrs()) {
            Ok(Reply::NotServing) | Err(DecodeError::UnknownLabel(_)) => {
                Err(PsdbError::Unavailable)
            }
            Ok(r @ (Reply::Store(_) | Reply::BadLabel | Reply::BadLength | Reply::TooLarge)) => {
                Err(PsdbError::Refused(r.code().unwrap_or(0)))
            }
            Ok(
                r @ (Reply::Done
                | Reply::Found(_)
                | Reply::Usage(_)
                | Reply::Appended { .. }
                | Reply::Stat(_)
                | Reply::Piece(_)),
            ) => Ok(r),
            Err(DecodeError::Count { .. } | DecodeError::Value { .. }) => Err(PsdbError::BadReply),
        }
    }

    /// The object length a found/length reply states, `None` if not found; a length past
    /// the region ([`PsdbClient::max_object`]: a whole object comes in one reply only if it
    /// fits) is [`PsdbError::BadReply`].
    fn object_len(&self, reply: Reply) -> Result<Option<usize>, PsdbError> {
        match reply {
            Reply::Found(None) => Ok(None),
            Reply::Found(Some(len)) if len <= self.max_object() => Ok(Some(len)),
            _ => Err(PsdbError::BadReply),
        }
    }

    fn read_reply(&mut self, reply: Reply, out: &mut Vec<u8>) -> Result<bool, PsdbError> {
        out.clear();
        let Some(len) = self.object_len(reply)? else {
            return Ok(false);
        };
        // The length comes from outside: reserve fallibly and exactly (no doubling).
        out.try_reserve_exact(len)
            .map_err(|_| PsdbError::OutOfMemory)?;
        out.resize(len, 0);
        self.region
            .read(DATA, out)
            .map_err(|_| PsdbError::BadReply)?;
        Ok(true)
    }
}

/// psdb's code for a call refused because the object does not fit the caller's region
/// ([`Reply::TooLarge`]).
const TOO_LARGE_CODE: u64 = crate::msg::psdb::label::TOO_LARGE - crate::msg::psdb::label::OK;

impl PsdbClient {
    /// Reads the object at `path` whole into `out` in pieces, after psdb verified it: for an
    /// object larger than the region. The bytes are verified (each piece says so; one that
    /// does not is [`PsdbError::BadReply`]).
    fn get_in_pieces(&mut self, path: &str, out: &mut Vec<u8>) -> Result<bool, PsdbError> {
        out.clear();
        let Some(size) = self.verify(path)? else {
            return Ok(false);
        };
        let len = usize::try_from(size)
            .ok()
            .filter(|n| *n <= self.max_read())
            .ok_or(PsdbError::BadReply)?;
        // The length comes from outside: reserve fallibly and exactly (no doubling).
        out.try_reserve_exact(len)
            .map_err(|_| PsdbError::OutOfMemory)?;
        out.resize(len, 0);
        let mut at = 0;
        while at < len {
            let piece = self.read_at(path, at as u64, &mut out[at..])?;
            match piece {
                Some(p) if p.verified && p.size == size && p.len > 0 => at += p.len,
                _ => {
                    out.clear();
                    return Err(PsdbError::BadReply);
                }
            }
        }
        Ok(true)
    }
}

impl tlog::Storage for PsdbClient {
    type Error = PsdbError;

    /// One `Put` when the object fits the region, else `PutBegin` and `PutChunk`s of
    /// [`PsdbClient::max_object`] bytes.
    fn put(&mut self, path: &str, data: &[u8]) -> Result<(), PsdbError> {
        let max = self.max_object();
        if data.len() <= max {
            let req = Request::Put {
                path_len: path.len(),
                data_len: data.len(),
            };
            return self.call(req, path, data).map(|_| ());
        }
        if max == 0 {
            return Err(PsdbError::TooLarge);
        }
        self.put_begin(path, data.len() as u64)?;
        for chunk in data.chunks(max) {
            self.put_chunk(chunk)?;
        }
        Ok(())
    }

    fn set_checkpoint(&mut self, checkpoint: &[u8]) -> Result<(), PsdbError> {
        let req = Request::SetCheckpoint {
            data_len: checkpoint.len(),
        };
        self.call(req, "", checkpoint).map(|_| ())
    }

    /// One `Get` when the object fits the region; else (psdb refuses it `TooLarge`) `Verify`
    /// and `ReadAt`s of the verified object.
    fn get(&mut self, path: &str, out: &mut Vec<u8>) -> Result<bool, PsdbError> {
        let got = self.call(
            Request::Get {
                path_len: path.len(),
            },
            path,
            &[],
        );
        match got {
            Err(PsdbError::Refused(TOO_LARGE_CODE)) => self.get_in_pieces(path, out),
            reply => self.read_reply(reply?, out),
        }
    }

    fn checkpoint(&mut self, out: &mut Vec<u8>) -> Result<bool, PsdbError> {
        let reply = self.call(Request::Checkpoint, "", &[])?;
        self.read_reply(reply, out)
    }

    fn put_begin(&mut self, path: &str, len: usize) -> Result<(), PsdbError> {
        PsdbClient::put_begin(self, path, len as u64)
    }

    /// `PutChunk`s of at most [`PsdbClient::max_object`] bytes.
    fn put_chunk(&mut self, data: &[u8]) -> Result<(), PsdbError> {
        let max = self.max_object();
        if max == 0 {
            return Err(PsdbError::TooLarge);
        }
        for piece in data.chunks(max) {
            PsdbClient::put_chunk(self, piece)?;
        }
        Ok(())
    }

    /// One `ReadAt` (unverified bytes: the log checks them).
    fn get_range(
        &mut self,
        path: &str,
        offset: u64,
        out: &mut [u8],
    ) -> Result<Option<(u64, usize)>, PsdbError> {
        PsdbClient::get_range(self, Some(path), offset, out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn full_codes_are_the_engines() {
        use super::{PsdbError, PSDB_FULL_CODES};
        let full = [
            psdb::Error::Full,
            psdb::Error::IndexFull,
            psdb::Error::Quota,
        ];
        assert_eq!(full.map(|e| u64::from(e.code())), PSDB_FULL_CODES);
        for code in PSDB_FULL_CODES {
            assert!(PsdbError::Refused(code).is_full());
        }
        for e in [
            psdb::Error::Immutable,
            psdb::Error::TooLarge,
            psdb::Error::ReadOnly,
        ] {
            assert!(!PsdbError::Refused(u64::from(e.code())).is_full());
        }
        assert!(!PsdbError::BadReply.is_full());
    }

    #[test]
    fn journal_codes_and_limit_are_the_engines() {
        use crate::psdb_call::JOURNAL_RECORD;
        assert_eq!(JOURNAL_RECORD, psdb::journal::MAX_RECORD);
        let errors = [
            psdb::Error::JournalFull,
            psdb::Error::WrongKind,
            psdb::Error::Staged,
            psdb::Error::JournalHalted,
        ];
        assert_eq!(errors.map(|e| u64::from(e.code())), [16, 17, 18, 19]);
        for e in errors {
            let text = alloc::format!("{}", PsdbError::Refused(u64::from(e.code())));
            assert!(text.contains(": "), "{text}");
        }
    }

    #[test]
    fn damage_codes_are_the_engines() {
        use super::{PsdbError, PSDB_CONFLICT_CODES, PSDB_DAMAGED_CODES};
        let p = psdb::Problem {
            offset: 0,
            reason: psdb::Corruption::DataHash,
        };
        let damaged = [psdb::Error::Corrupt(p), psdb::Error::Damaged(p)];
        assert_eq!(damaged.map(|e| u64::from(e.code())), PSDB_DAMAGED_CODES);
        let conflict = [psdb::Error::Immutable, psdb::Error::PathConflict];
        assert_eq!(conflict.map(|e| u64::from(e.code())), PSDB_CONFLICT_CODES);
        for code in PSDB_DAMAGED_CODES.into_iter().chain(PSDB_CONFLICT_CODES) {
            assert!(PsdbError::Refused(code).is_damage());
        }
        for e in [psdb::Error::Full, psdb::Error::Quota, psdb::Error::TooLarge] {
            assert!(!PsdbError::Refused(u64::from(e.code())).is_damage());
        }
    }

    extern crate std;
    use alloc::rc::Rc;
    use core::cell::RefCell;

    use microkit::host::{set_backend, Backend, HostMemory};
    use microkit::{IrqAckError, MessageInfo};

    use crate::msg::psdb::label;
    use tlog::Storage as _;

    use super::*;

    /// psdb answering every call `OK` with `count` message registers, leaving MR0/MR1 as the
    /// caller set them (as seL4 does for registers a reply does not carry).
    struct Psdb {
        count: usize,
        mrs: RefCell<[u64; 6]>,
        region: HostMemory,
    }

    impl Backend for Psdb {
        fn pd_name(&self) -> &str {
            "ledger_corporate"
        }
        fn notify(&self, _: Channel) {}
        fn pp_call(&self, _: Channel, info: MessageInfo) -> MessageInfo {
            if info.label() == label::USAGE {
                if self.count >= 6 {
                    let damaged = (self.count - 6) as u64;
                    *self.mrs.borrow_mut() = [10, 20, 30, 40, 50, damaged];
                }
                return MessageInfo::new(label::OK, self.count.min(6));
            }
            if self.count == 2 {
                self.mrs.borrow_mut()[..2].copy_from_slice(&[1, 3]);
                self.region.write(DATA, b"abc").unwrap();
            }
            MessageInfo::new(label::OK, self.count)
        }
        fn irq_ack(&self, _: Channel) -> Result<(), IrqAckError> {
            Ok(())
        }
        fn get_mr(&self, i: usize) -> u64 {
            self.mrs.borrow()[i]
        }
        fn set_mr(&self, i: usize, v: u64) {
            self.mrs.borrow_mut()[i] = v;
        }
        fn debug_put_str(&self, _: &str) {}
        fn memory_region(&self, name: &str) -> Option<HostMemory> {
            (name == "psdb_vaddr").then(|| self.region.clone())
        }
    }

    fn client(count: usize) -> PsdbClient {
        microkit::memory_region! {
            static REGION: ReadWrite(vaddr = "psdb_vaddr", size = "psdb_size", min_len = 0x2000);
        }
        let region = HostMemory::new(0x2000);
        set_backend(Some(Rc::new(Psdb {
            count,
            mrs: RefCell::new([0; 6]),
            region,
        })));
        PsdbClient::new(Channel::new(2), REGION.get().unwrap())
    }

    #[test]
    fn a_reply_without_its_registers_is_malformed() {
        // The caller's own MR0 (path length, non-zero) and MR1 would read as "found".
        for count in [0, 1] {
            let mut c = client(count);
            let mut out = Vec::new();
            assert_eq!(c.get("tile/0/000", &mut out), Err(PsdbError::BadReply));
            assert_eq!(c.checkpoint(&mut out), Err(PsdbError::BadReply));
            assert_eq!(
                c.get_range(Some("tile/0/000"), 0, &mut [0; 4]),
                Err(PsdbError::BadReply)
            );
        }
        let mut c = client(2);
        let mut out = Vec::new();
        assert_eq!(c.get("tile/0/000", &mut out), Ok(true));
        assert_eq!(out, b"abc");
        let mut buf = [0; 2];
        assert_eq!(c.get_range(None, 1, &mut buf), Ok(Some((3, 2))));
        assert_eq!(&buf, b"bc");
        set_backend(None);
    }

    #[test]
    fn journal_replies_are_checked() {
        // An append reply without its slot, a stat reply without its three registers.
        assert_eq!(
            client(0).journal_append("journal/0", b"r"),
            Err(PsdbError::BadReply)
        );
        assert_eq!(
            client(2).journal_stat("journal/0"),
            Err(PsdbError::BadReply)
        );
        assert_eq!(
            client(1).journal_read("journal/0", 0, &mut [0; 8]),
            Err(PsdbError::BadReply)
        );
        // A record longer than the caller's buffer is refused, not truncated.
        let mut out = [0u8; 8];
        assert_eq!(
            client(2).journal_read("journal/0", 0, &mut out),
            Ok(Some(3))
        );
        assert_eq!(&out[..3], b"abc");
        assert_eq!(
            client(2).journal_read("journal/0", 0, &mut [0; 2]),
            Err(PsdbError::BadReply)
        );
        // Too long to send: refused before any call.
        assert_eq!(
            client(2).journal_append("journal/0", &[0; JOURNAL_RECORD + 1]),
            Err(PsdbError::TooLarge)
        );
        set_backend(None);
    }

    #[test]
    fn usage_needs_all_six_registers_and_a_clean_flag() {
        for count in [0, 1, 2, 5] {
            assert_eq!(client(count).usage(), Err(PsdbError::BadReply));
        }
        // count 6: flag 0; count 7: flag 1; count 8: flag 2 (malformed). All reply 6 MRs.
        assert_eq!(
            client(6).usage(),
            Ok(Usage {
                disk_used: 10,
                disk_quota: 20,
                index_used: 30,
                index_quota: 40,
                volume_free: 50,
                damaged: false,
            })
        );
        assert!(client(7).usage().unwrap().damaged);
        assert_eq!(client(8).usage(), Err(PsdbError::BadReply));
        set_backend(None);
    }
}
