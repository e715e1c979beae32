//! Calls to psdb, from the ledgers, audit and any PD a description gives a channel to psdb: the
//! typed requests and replies, their labels and their message registers, shared by both ends.
//! The region layout (the path at offset 0, at most `interface::psdb_call::MAX_PATH` bytes,
//! the object's bytes at `interface::psdb_call::DATA`) and its limits are in `interface`,
//! which builds them from the system description; this crate is about labels and registers.
//! The namespace is the channel the call arrives on, never a field of a message.
//!
//! | request | label | MR0 | MR1 | `Ok` reply ([`Reply`]) |
//! |---------|-------|-----|-----|------------------------|
//! | [`Request::Put`] | 1 | path length | data length | [`Reply::Done`] |
//! | [`Request::Get`] | 2 | path length | 0 | [`Reply::Found`] |
//! | [`Request::SetCheckpoint`] | 3 | 0 | data length | [`Reply::Done`] |
//! | [`Request::Checkpoint`] | 4 | 0 | 0 | [`Reply::Found`] |
//! | [`Request::Usage`] | 24 | (no registers) | | [`Reply::Usage`] |
//! | [`Request::JournalCreate`] | 25 | path length | slots | [`Reply::Done`] |
//! | [`Request::JournalAppend`] | 26 | path length | record length | [`Reply::Appended`] |
//! | [`Request::JournalRead`] | 27 | path length | slot | [`Reply::Found`] |
//! | [`Request::JournalStat`] | 28 | path length | 0 | [`Reply::Stat`] |
//! | [`Request::PutBegin`] | 29 | path length | object size | [`Reply::Done`] |
//! | [`Request::PutChunk`] | 30 | 0 | data length | [`Reply::Done`] |
//! | [`Request::ReadAt`] | 31 | path length | offset (MR2: most bytes) | [`Reply::Piece`] |
//! | [`Request::Verify`] | 32 | path length | 0 | [`Reply::Found`] (the size) |
//!
//! **Chunked calls.** An object larger than the caller's region goes in pieces: `PutBegin`
//! (the path, the total size; everything that could refuse the object is checked here), then
//! `PutChunk`s in order, each at most the region's data area; the object is staged at its last
//! byte, and durable with the next `SetCheckpoint` like a `Put`. It is read by range:
//! `ReadAt` copies up to MR2 bytes from the offset into the region and says how many, the
//! object's size and whether the whole object was verified since psdb mounted (bytes read
//! before that are **unverified**: passed on only to someone who checks them, psdb's
//! `store::read` contract). `Verify` reads the whole object back and checks its SHA-256 once;
//! a damaged object is refused as a store error (`Corrupt`, code 7), never answered with
//! bytes, by every read.
//!
//! Every `Ok` reply has the label [`label::OK`] (0x100) and the registers its request's row
//! states; a refusal is 0x100 + its numeric code and carries no registers: `psdb::Error::code()`
//! 1..=19 ([`Reply::Store`]), then the call errors 20..=22, and [`NOT_SERVING`]. A register
//! the table says is 0 must be 0: a decoder refuses anything else, as it refuses a count other
//! than the label's. So an `Ok` reply is only ever read as the answer to the request that was
//! made ([`Reply::decode`] takes that request).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use microkit::MessageInfo;
pub use msg_core::{DecodeError, Message, NOT_SERVING};
use msg_core::{Registers, NOT_SERVING_REPLY};

/// The labels, each written once: requests from 1, replies from 0x100
/// (`msg_core::REQUEST_LABELS`, `msg_core::REPLY_LABELS`).
pub mod label {
    /// [`Put`](crate::Request::Put).
    pub const PUT: u64 = 1;
    /// [`Get`](crate::Request::Get).
    pub const GET: u64 = 2;
    /// [`SetCheckpoint`](crate::Request::SetCheckpoint).
    pub const SET_CHECKPOINT: u64 = 3;
    /// [`Checkpoint`](crate::Request::Checkpoint).
    pub const CHECKPOINT: u64 = 4;
    /// [`Usage`](crate::Request::Usage).
    pub const USAGE: u64 = 24;
    /// [`JournalCreate`](crate::Request::JournalCreate).
    pub const JOURNAL_CREATE: u64 = 25;
    /// [`JournalAppend`](crate::Request::JournalAppend).
    pub const JOURNAL_APPEND: u64 = 26;
    /// [`JournalRead`](crate::Request::JournalRead).
    pub const JOURNAL_READ: u64 = 27;
    /// [`JournalStat`](crate::Request::JournalStat).
    pub const JOURNAL_STAT: u64 = 28;
    /// [`PutBegin`](crate::Request::PutBegin).
    pub const PUT_BEGIN: u64 = 29;
    /// [`PutChunk`](crate::Request::PutChunk).
    pub const PUT_CHUNK: u64 = 30;
    /// [`ReadAt`](crate::Request::ReadAt).
    pub const READ_AT: u64 = 31;
    /// [`Verify`](crate::Request::Verify).
    pub const VERIFY: u64 = 32;
    /// Every request label.
    pub const REQUESTS: [u64; 13] = [
        PUT,
        GET,
        SET_CHECKPOINT,
        CHECKPOINT,
        USAGE,
        JOURNAL_CREATE,
        JOURNAL_APPEND,
        JOURNAL_READ,
        JOURNAL_STAT,
        PUT_BEGIN,
        PUT_CHUNK,
        READ_AT,
        VERIFY,
    ];

    /// Every `Ok` reply; a refusal with numeric code `c` is `OK + c`.
    pub const OK: u64 = 0x100;
    /// [`BadLabel`](crate::Reply::BadLabel): code 20.
    pub const BAD_LABEL: u64 = OK + 20;
    /// [`BadLength`](crate::Reply::BadLength): code 21.
    pub const BAD_LENGTH: u64 = OK + 21;
    /// [`TooLarge`](crate::Reply::TooLarge): code 22.
    pub const TOO_LARGE: u64 = OK + 22;
    /// [`NotServing`](crate::Reply::NotServing): the shared value.
    pub const NOT_SERVING: u64 = msg_core::NOT_SERVING;
}

/// Lowest `psdb::Error::code()`.
pub const FIRST_STORE_CODE: u8 = 1;
/// Highest `psdb::Error::code()` the engine gives today (a higher one would be answered
/// [`Reply::BadLength`]: refused all the same).
pub const LAST_STORE_CODE: u8 = 19;

/// A call to psdb, with its register arguments (the path and data they measure are in the
/// caller's region).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Store an immutable object (staged until the caller's next `SetCheckpoint`).
    Put {
        /// MR0: the path's length.
        path_len: usize,
        /// MR1: the object's length.
        data_len: usize,
    },
    /// Read an object.
    Get {
        /// MR0: the path's length.
        path_len: usize,
    },
    /// Make earlier puts durable, then record the data as the latest checkpoint.
    SetCheckpoint {
        /// MR1: the checkpoint's length.
        data_len: usize,
    },
    /// Read the latest checkpoint.
    Checkpoint,
    /// What the caller's own namespace uses of its quota, and the volume's free bytes. No
    /// registers. Metadata only.
    Usage,
    /// Create a journal at the path: staged like a put, durable with the next checkpoint.
    JournalCreate {
        /// MR0: the path's length.
        path_len: usize,
        /// MR1: records it can hold.
        slots: u32,
    },
    /// Append the data as the next record of the journal at the path; durable when `Ok`
    /// arrives.
    JournalAppend {
        /// MR0: the path's length.
        path_len: usize,
        /// MR1: the record's length.
        data_len: usize,
    },
    /// Read one record of the journal at the path.
    JournalRead {
        /// MR0: the path's length.
        path_len: usize,
        /// MR1: the record's slot.
        slot: u32,
    },
    /// How many records the journal at the path holds.
    JournalStat {
        /// MR0: the path's length.
        path_len: usize,
    },
    /// Start a put of an object of `size` bytes whose data follows in [`Request::PutChunk`]s.
    PutBegin {
        /// MR0: the path's length.
        path_len: usize,
        /// MR1: the object's total size.
        size: u64,
    },
    /// The next piece of the object [`Request::PutBegin`] started (the object is staged at
    /// its last byte).
    PutChunk {
        /// MR1: the piece's length.
        data_len: usize,
    },
    /// Read bytes `offset..offset + max` of the object at the path (fewer at its end) into the
    /// region's data area.
    ReadAt {
        /// MR0: the path's length.
        path_len: usize,
        /// MR1: the first byte.
        offset: u64,
        /// MR2: most bytes wanted.
        max: usize,
    },
    /// Read the whole object at the path back and check it against its SHA-256.
    Verify {
        /// MR0: the path's length.
        path_len: usize,
    },
}

impl Request {
    /// Its label.
    pub const fn label(&self) -> u64 {
        match self {
            Request::Put { .. } => label::PUT,
            Request::Get { .. } => label::GET,
            Request::SetCheckpoint { .. } => label::SET_CHECKPOINT,
            Request::Checkpoint => label::CHECKPOINT,
            Request::Usage => label::USAGE,
            Request::JournalCreate { .. } => label::JOURNAL_CREATE,
            Request::JournalAppend { .. } => label::JOURNAL_APPEND,
            Request::JournalRead { .. } => label::JOURNAL_READ,
            Request::JournalStat { .. } => label::JOURNAL_STAT,
            Request::PutBegin { .. } => label::PUT_BEGIN,
            Request::PutChunk { .. } => label::PUT_CHUNK,
            Request::ReadAt { .. } => label::READ_AT,
            Request::Verify { .. } => label::VERIFY,
        }
    }

    /// The length of the path it names at offset 0 of the region (0 for a call without one).
    pub const fn path_len(&self) -> usize {
        match *self {
            Request::Put { path_len, .. }
            | Request::Get { path_len }
            | Request::JournalCreate { path_len, .. }
            | Request::JournalAppend { path_len, .. }
            | Request::JournalRead { path_len, .. }
            | Request::JournalStat { path_len }
            | Request::PutBegin { path_len, .. }
            | Request::ReadAt { path_len, .. }
            | Request::Verify { path_len } => path_len,
            Request::SetCheckpoint { .. }
            | Request::Checkpoint
            | Request::Usage
            | Request::PutChunk { .. } => 0,
        }
    }

    /// The length of the data it carries in the region (0 for a call without any).
    pub const fn data_len(&self) -> usize {
        match *self {
            Request::Put { data_len, .. }
            | Request::SetCheckpoint { data_len }
            | Request::JournalAppend { data_len, .. }
            | Request::PutChunk { data_len } => data_len,
            Request::Get { .. }
            | Request::PutBegin { .. }
            | Request::ReadAt { .. }
            | Request::Verify { .. }
            | Request::Checkpoint
            | Request::Usage
            | Request::JournalCreate { .. }
            | Request::JournalRead { .. }
            | Request::JournalStat { .. } => 0,
        }
    }

    /// The message: [`Usage`](Request::Usage) has no registers, [`ReadAt`](Request::ReadAt)
    /// three, every other request two (MR0 the path length, MR1 the data length or the number
    /// it takes, 0 where unused).
    pub const fn encode(&self) -> Message {
        let (path, arg) = match *self {
            Request::Usage => return Message::new(label::USAGE, []),
            Request::ReadAt {
                path_len,
                offset,
                max,
            } => return Message::new(label::READ_AT, [path_len as u64, offset, max as u64]),
            Request::Put { path_len, data_len } | Request::JournalAppend { path_len, data_len } => {
                (path_len, data_len as u64)
            }
            Request::Get { path_len }
            | Request::JournalStat { path_len }
            | Request::Verify { path_len } => (path_len, 0),
            Request::PutBegin { path_len, size } => (path_len, size),
            Request::PutChunk { data_len } => (0, data_len as u64),
            Request::SetCheckpoint { data_len } => (0, data_len as u64),
            Request::Checkpoint => (0, 0),
            Request::JournalCreate { path_len, slots } => (path_len, slots as u64),
            Request::JournalRead { path_len, slot } => (path_len, slot as u64),
        };
        Message::new(self.label(), [path as u64, arg])
    }

    /// The request a received message is: its label, exactly its registers, each in range.
    pub fn decode(info: MessageInfo, mrs: &[u64]) -> Result<Request, DecodeError> {
        let l = info.label();
        if l == label::USAGE {
            Registers::<0>::of(info, mrs)?;
            return Ok(Request::Usage);
        }
        if l == label::READ_AT {
            let r = Registers::<3>::of(info, mrs)?;
            return Ok(Request::ReadAt {
                path_len: r.length(0)?,
                offset: r.word(1)?,
                max: r.length(2)?,
            });
        }
        if !label::REQUESTS.contains(&l) {
            return Err(DecodeError::UnknownLabel(l));
        }
        let r = Registers::<2>::of(info, mrs)?;
        Ok(match l {
            label::PUT => Request::Put {
                path_len: r.length(0)?,
                data_len: r.length(1)?,
            },
            label::GET => {
                r.zero(1)?;
                Request::Get {
                    path_len: r.length(0)?,
                }
            }
            label::SET_CHECKPOINT => {
                r.zero(0)?;
                Request::SetCheckpoint {
                    data_len: r.length(1)?,
                }
            }
            label::CHECKPOINT => {
                r.zero(0)?;
                r.zero(1)?;
                Request::Checkpoint
            }
            label::JOURNAL_CREATE => Request::JournalCreate {
                path_len: r.length(0)?,
                slots: r.u32(1)?,
            },
            label::JOURNAL_APPEND => Request::JournalAppend {
                path_len: r.length(0)?,
                data_len: r.length(1)?,
            },
            label::JOURNAL_READ => Request::JournalRead {
                path_len: r.length(0)?,
                slot: r.u32(1)?,
            },
            label::JOURNAL_STAT => {
                r.zero(1)?;
                Request::JournalStat {
                    path_len: r.length(0)?,
                }
            }
            label::PUT_BEGIN => Request::PutBegin {
                path_len: r.length(0)?,
                size: r.word(1)?,
            },
            label::PUT_CHUNK => {
                r.zero(0)?;
                Request::PutChunk {
                    data_len: r.length(1)?,
                }
            }
            label::VERIFY => {
                r.zero(1)?;
                Request::Verify {
                    path_len: r.length(0)?,
                }
            }
            _ => return Err(DecodeError::UnknownLabel(l)),
        })
    }
}

/// A [`Usage`](Reply::Usage) reply's figures, in its six message registers:
///
/// | MR | value |
/// |----|-------|
/// | 0  | disk bytes used by the namespace (durable objects, checkpoints, manifest lines) |
/// | 1  | the namespace's disk quota, bytes |
/// | 2  | index bytes charged to the namespace |
/// | 3  | the namespace's index quota, bytes |
/// | 4  | bytes still free on the volume (the only figure not the caller's own) |
/// | 5  | 1 if the namespace is marked damaged (it takes no more writes), else 0 |
///
/// Nothing about any other namespace is revealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// MR0: disk bytes the namespace uses.
    pub disk_used: u64,
    /// MR1: its disk quota.
    pub disk_quota: u64,
    /// MR2: index bytes charged to it.
    pub index_used: u64,
    /// MR3: its index quota.
    pub index_quota: u64,
    /// MR4: bytes free on the volume.
    pub volume_free: u64,
    /// MR5: whether the namespace is marked damaged.
    pub damaged: bool,
}

impl Usage {
    /// Message registers of a usage reply.
    pub const REGISTERS: usize = 6;

    /// The figures as a message with label `label` (psdb's, or another protocol's that
    /// passes them on).
    pub const fn encode(&self, label: u64) -> Message {
        Message::new(
            label,
            [
                self.disk_used,
                self.disk_quota,
                self.index_used,
                self.index_quota,
                self.volume_free,
                self.damaged as u64,
            ],
        )
    }

    /// The figures of a message that carries exactly [`Usage::REGISTERS`] registers, MR5 0 or
    /// 1 (the label is the caller's to check).
    pub fn decode(info: MessageInfo, mrs: &[u64]) -> Result<Usage, DecodeError> {
        let r = Registers::<{ Usage::REGISTERS }>::of(info, mrs)?;
        Ok(Usage {
            disk_used: r.word(0)?,
            disk_quota: r.word(1)?,
            index_used: r.word(2)?,
            index_quota: r.word(3)?,
            volume_free: r.word(4)?,
            damaged: r.flag(5)?,
        })
    }
}

/// A journal's size as psdb states it ([`Reply::Stat`]): `used <= slots`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalStat {
    /// Records it can hold.
    pub slots: u32,
    /// Records written: slots `0..used`.
    pub used: u32,
}

/// One piece of an object read by range ([`Reply::Piece`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Bytes at the region's data area: at most the request's `max`.
    pub len: usize,
    /// The object's size.
    pub size: u64,
    /// Whether the whole object was read back and matched its SHA-256 since psdb mounted;
    /// when `false` the bytes are unverified.
    pub verified: bool,
}

/// psdb's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Done, no registers: to `Put`, `SetCheckpoint`, `JournalCreate`.
    Done,
    /// To `Get`, `Checkpoint`, `JournalRead`: the object's (or record's) length, its bytes at
    /// `DATA`, or `None` if there is none. MR0 1 if found, else 0; MR1 the length (0 if not
    /// found).
    Found(Option<usize>),
    /// To `Usage`: the caller's namespace's figures, six registers.
    Usage(Usage),
    /// To `JournalAppend`: MR0 the record's slot (the record is durable).
    Appended {
        /// The slot.
        slot: u32,
    },
    /// To `JournalStat`: the journal's size, or `None` if there is no object at the path. MR0
    /// 1 if it exists, else 0; MR1 its slots, MR2 the slots used (both 0 if it does not).
    Stat(Option<JournalStat>),
    /// To `ReadAt`: the piece, or `None` if there is no object at the path. MR0 1 if found,
    /// else 0; MR1 the piece's length, MR2 the object's size, MR3 1 if verified (all 0 if not
    /// found).
    Piece(Option<Piece>),
    /// The store refused: `psdb::Error::code()`, 1..=19 (label 0x100 + code). Another code,
    /// which the engine never gives, is sent as [`Reply::BadLength`]: refused all the same,
    /// never read as `Ok` (whose label is 0x100 + 0).
    Store(u8),
    /// Unknown label or channel.
    BadLabel,
    /// A register or a length out of range (past the region or the path limit, a count
    /// other than the label's), or a path that is not UTF-8.
    BadLength,
    /// The object does not fit in the caller's region.
    TooLarge,
    /// psdb has no store (its disk failed to mount): [`NOT_SERVING`].
    NotServing,
}

const fn is_store_code(code: u8) -> bool {
    code >= FIRST_STORE_CODE && code <= LAST_STORE_CODE
}

impl Reply {
    /// The reply to a store error `code` (an out-of-range code, which the engine never gives,
    /// is answered as [`Reply::BadLength`]: refused all the same).
    pub const fn store(code: u8) -> Reply {
        if is_store_code(code) {
            Reply::Store(code)
        } else {
            Reply::BadLength
        }
    }

    /// Its label.
    pub const fn label(&self) -> u64 {
        match *self {
            Reply::Done
            | Reply::Found(_)
            | Reply::Usage(_)
            | Reply::Appended { .. }
            | Reply::Stat(_)
            | Reply::Piece(_) => label::OK,
            Reply::Store(code) if is_store_code(code) => label::OK + code as u64,
            Reply::Store(_) | Reply::BadLength => label::BAD_LENGTH,
            Reply::BadLabel => label::BAD_LABEL,
            Reply::TooLarge => label::TOO_LARGE,
            Reply::NotServing => NOT_SERVING,
        }
    }

    /// The numeric code of a refusal: `psdb::Error::code()` 1..=19, 20..=22 for the call
    /// errors, 23 for `NotServing`; `None` for an `Ok` reply.
    pub const fn code(&self) -> Option<u64> {
        match *self {
            Reply::NotServing => Some(23),
            r => match r.label() {
                label::OK => None,
                l => Some(l - label::OK),
            },
        }
    }

    /// The message.
    pub const fn encode(&self) -> Message {
        match *self {
            Reply::Found(found) => {
                let (flag, len) = match found {
                    Some(len) => (1, len as u64),
                    None => (0, 0),
                };
                Message::new(label::OK, [flag, len])
            }
            Reply::Usage(u) => u.encode(label::OK),
            Reply::Appended { slot } => Message::new(label::OK, [slot as u64]),
            Reply::Stat(stat) => match stat {
                Some(s) => Message::new(label::OK, [1, s.slots as u64, s.used as u64]),
                None => Message::new(label::OK, [0, 0, 0]),
            },
            Reply::Piece(piece) => match piece {
                Some(p) => Message::new(label::OK, [1, p.len as u64, p.size, p.verified as u64]),
                None => Message::new(label::OK, [0, 0, 0, 0]),
            },
            Reply::NotServing => NOT_SERVING_REPLY,
            r => Message::new(r.label(), []),
        }
    }

    /// psdb's answer to `to`, from the reply message: a refusal (any request), or the `Ok`
    /// reply `to`'s row states, with exactly its registers.
    pub fn decode(to: &Request, info: MessageInfo, mrs: &[u64]) -> Result<Reply, DecodeError> {
        let l = info.label();
        if l != label::OK {
            let reply = match l.checked_sub(label::OK) {
                Some(c @ 1..=255) if is_store_code(c as u8) => Reply::Store(c as u8),
                _ if l == label::BAD_LABEL => Reply::BadLabel,
                _ if l == label::BAD_LENGTH => Reply::BadLength,
                _ if l == label::TOO_LARGE => Reply::TooLarge,
                _ if l == NOT_SERVING => Reply::NotServing,
                _ => return Err(DecodeError::UnknownLabel(l)),
            };
            Registers::<0>::of(info, mrs)?;
            return Ok(reply);
        }
        Ok(match to {
            Request::Put { .. }
            | Request::SetCheckpoint { .. }
            | Request::JournalCreate { .. }
            | Request::PutBegin { .. }
            | Request::PutChunk { .. } => {
                Registers::<0>::of(info, mrs)?;
                Reply::Done
            }
            Request::ReadAt { max, .. } => {
                let r = Registers::<4>::of(info, mrs)?;
                if r.flag(0)? {
                    let (len, size) = (r.length(1)?, r.word(2)?);
                    // A piece is never longer than asked for, nor than the object.
                    if len > *max || len as u64 > size {
                        return Err(r.bad(1));
                    }
                    Reply::Piece(Some(Piece {
                        len,
                        size,
                        verified: r.flag(3)?,
                    }))
                } else {
                    for i in 1..4 {
                        r.zero(i)?;
                    }
                    Reply::Piece(None)
                }
            }
            Request::Get { .. }
            | Request::Checkpoint
            | Request::JournalRead { .. }
            | Request::Verify { .. } => {
                let r = Registers::<2>::of(info, mrs)?;
                if r.flag(0)? {
                    Reply::Found(Some(r.length(1)?))
                } else {
                    r.zero(1)?;
                    Reply::Found(None)
                }
            }
            Request::Usage => Reply::Usage(Usage::decode(info, mrs)?),
            Request::JournalAppend { .. } => {
                let r = Registers::<1>::of(info, mrs)?;
                Reply::Appended { slot: r.u32(0)? }
            }
            Request::JournalStat { .. } => {
                let r = Registers::<3>::of(info, mrs)?;
                if r.flag(0)? {
                    let (slots, used) = (r.u32(1)?, r.u32(2)?);
                    if used > slots {
                        return Err(r.bad(2));
                    }
                    Reply::Stat(Some(JournalStat { slots, used }))
                } else {
                    r.zero(1)?;
                    r.zero(2)?;
                    Reply::Stat(None)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msg_core::{REPLY_LABELS, REQUEST_LABELS};

    /// One request of each kind, with arguments that differ from each other and from 0.
    pub(crate) fn requests() -> Vec<Request> {
        vec![
            Request::Put {
                path_len: 11,
                data_len: 1 << 20,
            },
            Request::Get { path_len: 12 },
            Request::SetCheckpoint { data_len: 300 },
            Request::Checkpoint,
            Request::Usage,
            Request::JournalCreate {
                path_len: 24,
                slots: u32::MAX,
            },
            Request::JournalAppend {
                path_len: 24,
                data_len: 363,
            },
            Request::JournalRead {
                path_len: 24,
                slot: 255,
            },
            Request::JournalStat { path_len: 24 },
            Request::PutBegin {
                path_len: 30,
                size: u64::MAX,
            },
            Request::PutChunk { data_len: 65_536 },
            Request::ReadAt {
                path_len: 31,
                offset: u64::MAX,
                max: 65_536,
            },
            Request::Verify { path_len: 32 },
        ]
    }

    const USAGE: Usage = Usage {
        disk_used: 1,
        disk_quota: 2,
        index_used: 3,
        index_quota: u64::MAX,
        volume_free: 5,
        damaged: true,
    };

    /// Every reply that can answer `to`, with arguments at their limits.
    fn replies(to: &Request) -> Vec<Reply> {
        let mut v: Vec<Reply> = (FIRST_STORE_CODE..=LAST_STORE_CODE)
            .map(Reply::Store)
            .collect();
        v.extend([
            Reply::BadLabel,
            Reply::BadLength,
            Reply::TooLarge,
            Reply::NotServing,
        ]);
        match to {
            Request::Put { .. }
            | Request::SetCheckpoint { .. }
            | Request::JournalCreate { .. }
            | Request::PutBegin { .. }
            | Request::PutChunk { .. } => v.push(Reply::Done),
            Request::ReadAt { max, .. } => v.extend([
                Reply::Piece(None),
                Reply::Piece(Some(Piece {
                    len: 0,
                    size: 0,
                    verified: false,
                })),
                Reply::Piece(Some(Piece {
                    len: *max,
                    size: u64::MAX,
                    verified: true,
                })),
            ]),
            Request::Get { .. }
            | Request::Checkpoint
            | Request::JournalRead { .. }
            | Request::Verify { .. } => v.extend([
                Reply::Found(None),
                Reply::Found(Some(0)),
                Reply::Found(Some(usize::MAX)),
            ]),
            Request::Usage => v.extend([Reply::Usage(USAGE), Reply::Usage(Usage::default())]),
            Request::JournalAppend { .. } => v.push(Reply::Appended { slot: u32::MAX }),
            Request::JournalStat { .. } => v.extend([
                Reply::Stat(None),
                Reply::Stat(Some(JournalStat {
                    slots: 256,
                    used: 256,
                })),
            ]),
        }
        v
    }

    #[test]
    fn every_request_and_reply_round_trips() {
        for req in requests() {
            let m = req.encode();
            assert!(REQUEST_LABELS.contains(&m.label()), "{req:?}");
            assert_eq!(Request::decode(m.info(), m.mrs()), Ok(req));
            for reply in replies(&req) {
                let m = reply.encode();
                assert!(REPLY_LABELS.contains(&m.label()), "{reply:?}");
                assert_eq!(Reply::decode(&req, m.info(), m.mrs()), Ok(reply), "{req:?}");
            }
        }
    }

    /// The labels are the ones the committed documents and tests name.
    #[test]
    fn labels_are_as_documented() {
        let labels: Vec<u64> = requests().iter().map(Request::label).collect();
        assert_eq!(labels, [1, 2, 3, 4, 24, 25, 26, 27, 28, 29, 30, 31, 32]);
        assert_eq!(labels, label::REQUESTS);
        assert_eq!(Reply::Done.label(), 0x100);
        assert_eq!(Reply::Store(1).label(), 0x101);
        assert_eq!(Reply::Store(19).label(), 0x113);
        assert_eq!(
            [
                Reply::BadLabel,
                Reply::BadLength,
                Reply::TooLarge,
                Reply::NotServing
            ]
            .map(|r| r.label()),
            [0x114, 0x115, 0x116, NOT_SERVING]
        );
        assert_eq!(
            [
                Reply::Store(7),
                Reply::BadLabel,
                Reply::NotServing,
                Reply::Done
            ]
            .map(|r| r.code()),
            [Some(7), Some(20), Some(23), None]
        );
    }

    /// A store code the engine never gives is never sent as `Ok` (0x100 + 0) nor as another
    /// label: it is `BadLength`.
    #[test]
    fn an_out_of_range_store_code_is_bad_length() {
        for code in [0, LAST_STORE_CODE + 1, 0xff] {
            assert_eq!(Reply::Store(code).label(), label::BAD_LENGTH);
            assert_eq!(Reply::store(code), Reply::BadLength);
            let m = Reply::Store(code).encode();
            assert_eq!(
                Reply::decode(&Request::Checkpoint, m.info(), m.mrs()),
                Ok(Reply::BadLength)
            );
        }
    }

    #[test]
    fn unknown_labels_are_refused() {
        for l in (0..0x400).chain([u64::MAX >> 12, 0xFFFF_FFFF]) {
            let known = label::REQUESTS.contains(&l);
            let count = match l {
                label::USAGE => 0,
                label::READ_AT => 3,
                _ => 2,
            };
            let r = Request::decode(MessageInfo::new(l, count), &[0, 0, 0]);
            assert_eq!(r.is_ok(), known, "{l:#x}");
            if !known {
                assert_eq!(r, Err(DecodeError::UnknownLabel(l)));
            }
            let reply_known = (0x101..=0x116).contains(&l) || l == NOT_SERVING;
            let r = Reply::decode(
                &Request::Put {
                    path_len: 1,
                    data_len: 1,
                },
                MessageInfo::new(l, 0),
                &[],
            );
            assert_eq!(r.is_ok(), reply_known || l == label::OK, "{l:#x}");
        }
    }

    #[test]
    fn a_short_or_long_message_is_refused() {
        for req in requests() {
            let m = req.encode();
            let n = m.mrs().len();
            for count in [0, 1, 2, 3, 6, 7] {
                if count == n {
                    continue;
                }
                let info = MessageInfo::new(m.label(), count);
                assert_eq!(
                    Request::decode(info, &[0; 8]),
                    Err(DecodeError::Count {
                        label: m.label(),
                        expected: n,
                        got: count
                    }),
                    "{req:?}"
                );
            }
            // The registers must also be there: a count the slice does not hold is refused.
            if n > 0 {
                assert!(Request::decode(m.info(), &m.mrs()[..n - 1]).is_err());
            }
            for reply in replies(&req) {
                let m = reply.encode();
                let short = MessageInfo::new(m.label(), m.mrs().len().wrapping_sub(1) % 8);
                assert!(Reply::decode(&req, short, m.mrs()).is_err(), "{reply:?}");
            }
        }
    }

    #[test]
    fn registers_out_of_range_are_refused() {
        let bad = |label: u64, mrs: &[u64]| {
            Request::decode(MessageInfo::new(label, mrs.len()), mrs).unwrap_err()
        };
        // A slot count or slot past u32; a register that must be 0.
        assert_eq!(
            bad(label::JOURNAL_CREATE, &[1, 1 << 32]),
            DecodeError::Value {
                label: 25,
                register: 1
            }
        );
        assert_eq!(
            bad(label::JOURNAL_READ, &[1, 1 << 32]),
            DecodeError::Value {
                label: 27,
                register: 1
            }
        );
        assert_eq!(
            bad(label::GET, &[1, 5]),
            DecodeError::Value {
                label: 2,
                register: 1
            }
        );
        assert_eq!(
            bad(label::CHECKPOINT, &[3, 0]),
            DecodeError::Value {
                label: 4,
                register: 0
            }
        );
        assert_eq!(
            bad(label::SET_CHECKPOINT, &[3, 0]),
            DecodeError::Value {
                label: 3,
                register: 0
            }
        );
        // Replies: a found flag other than 0 or 1, a length with "not found", more used than
        // slots, a damage flag other than 0 or 1.
        let get = Request::Get { path_len: 1 };
        let stat = Request::JournalStat { path_len: 1 };
        let reply = |to: &Request, mrs: &[u64]| {
            Reply::decode(to, MessageInfo::new(label::OK, mrs.len()), mrs)
        };
        assert!(reply(&get, &[2, 0]).is_err());
        assert!(reply(&get, &[0, 7]).is_err());
        assert!(reply(&stat, &[1, 3, 4]).is_err());
        assert!(reply(&stat, &[0, 1, 0]).is_err());
        assert!(reply(
            &Request::JournalAppend {
                path_len: 1,
                data_len: 1
            },
            &[1 << 32]
        )
        .is_err());
        assert!(reply(&Request::Usage, &[0, 0, 0, 0, 0, 2]).is_err());
        // A piece longer than asked for or than its object, a verified flag other than 0 or
        // 1, registers set with "not found".
        let read = Request::ReadAt {
            path_len: 1,
            offset: 0,
            max: 10,
        };
        assert!(reply(&read, &[1, 11, 20, 0]).is_err());
        assert!(reply(&read, &[1, 5, 4, 0]).is_err());
        assert!(reply(&read, &[1, 5, 5, 2]).is_err());
        assert!(reply(&read, &[0, 0, 5, 0]).is_err());
        assert_eq!(
            reply(&read, &[1, 10, 20, 1]),
            Ok(Reply::Piece(Some(Piece {
                len: 10,
                size: 20,
                verified: true
            })))
        );
        assert_eq!(
            bad(label::PUT_CHUNK, &[1, 5]),
            DecodeError::Value {
                label: 30,
                register: 0
            }
        );
        assert_eq!(
            bad(label::VERIFY, &[1, 5]),
            DecodeError::Value {
                label: 32,
                register: 1
            }
        );
        // An `Ok` reply in another request's shape is not its answer.
        assert!(reply(&Request::Usage, &[1, 3]).is_err());
        assert!(reply(&get, &[]).is_err());
    }
}
