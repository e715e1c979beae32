//! ledger_<t>/audit -> psdb (region layout and register conventions at [`crate::psdb_call`]).

use super::{labels, UnknownLabel, NOT_SERVING};

labels! {
    /// A call to psdb. MR0: the path's length (at offset 0 of the region), MR1: the data's
    /// length at [`crate::psdb_call::DATA`], or a slot count or slot for the journal calls.
    /// [`Request::Usage`] takes no arguments.
    pub enum Request {
        /// Store an immutable object.
        Put = 1,
        /// Read an object.
        Get = 2,
        /// Make earlier puts durable, then record the data as the latest checkpoint.
        SetCheckpoint = 3,
        /// Read the latest checkpoint.
        Checkpoint = 4,
        /// What the caller's own namespace uses of its quota, and the volume's free bytes.
        Usage = 24,
        /// Create a journal of MR1 slots at the path.
        JournalCreate = 25,
        /// Append the data as the next record of the journal at the path.
        JournalAppend = 26,
        /// Read record MR1 of the journal at the path.
        JournalRead = 27,
        /// How many records the journal at the path holds.
        JournalStat = 28,
    }
}

/// Lowest `psdb::Error::code()`.
pub const FIRST_STORE_CODE: u8 = 1;
/// Highest `psdb::Error::code()` the engine gives today (a higher one would be answered
/// [`Reply::BadLength`]: refused all the same).
pub const LAST_STORE_CODE: u8 = 19;

/// psdb's answer. Encoding: `Ok` = 0x100; `Store(code)` = 0x100 + code for
/// `psdb::Error::code()` 1..=19 (so the code stays numeric, as
/// [`crate::PSDB_FULL_CODES`] and its siblings state it); the call errors 0x114..=0x116 (0x100 +
/// 20..=22, the old numbers); `NotServing` = [`NOT_SERVING`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Done; the registers the request's documentation states.
    Ok,
    /// The store refused: `psdb::Error::code()`, 1..=19.
    Store(u8),
    /// Unknown label or channel.
    BadLabel,
    /// A length past the region or the path limit, or a path that is not UTF-8.
    BadLength,
    /// The object does not fit in the caller's region.
    TooLarge,
    /// psdb has no store (its disk failed to mount).
    NotServing,
}

const BASE: u64 = 0x100;

impl Reply {
    /// The label on the wire.
    pub const fn label(self) -> u64 {
        match self {
            Reply::Ok => BASE,
            Reply::Store(code) => BASE + code as u64,
            Reply::BadLabel => BASE + 20,
            Reply::BadLength => BASE + 21,
            Reply::TooLarge => BASE + 22,
            Reply::NotServing => NOT_SERVING,
        }
    }

    /// The numeric error code of a refusal: `psdb::Error::code()` 1..=19, 20..=22 for the call
    /// errors, 23 for `NotServing`; `None` for `Ok`.
    pub const fn code(self) -> Option<u64> {
        match self {
            Reply::Ok => None,
            Reply::Store(code) => Some(code as u64),
            Reply::BadLabel => Some(20),
            Reply::BadLength => Some(21),
            Reply::TooLarge => Some(22),
            Reply::NotServing => Some(23),
        }
    }

    /// A `MessageInfo` with this label and `count` message registers.
    pub const fn info(self, count: usize) -> microkit::MessageInfo {
        microkit::MessageInfo::new(self.label(), count)
    }

    /// The reply to a store error `code` (an out-of-range code, which the engine never gives,
    /// is answered as [`Reply::BadLength`]: refused all the same).
    pub fn store(code: u8) -> Reply {
        if (FIRST_STORE_CODE..=LAST_STORE_CODE).contains(&code) {
            Reply::Store(code)
        } else {
            Reply::BadLength
        }
    }

    /// Every value.
    pub fn all() -> alloc::vec::Vec<Reply> {
        let mut v = alloc::vec![Reply::Ok];
        v.extend((FIRST_STORE_CODE..=LAST_STORE_CODE).map(Reply::Store));
        v.extend([
            Reply::BadLabel,
            Reply::BadLength,
            Reply::TooLarge,
            Reply::NotServing,
        ]);
        v
    }
}

impl TryFrom<u64> for Reply {
    type Error = UnknownLabel;

    fn try_from(label: u64) -> Result<Self, Self::Error> {
        Ok(match label.checked_sub(BASE) {
            Some(0) => Reply::Ok,
            Some(c) if (u64::from(FIRST_STORE_CODE)..=u64::from(LAST_STORE_CODE)).contains(&c) => {
                Reply::Store(c as u8)
            }
            Some(20) => Reply::BadLabel,
            Some(21) => Reply::BadLength,
            Some(22) => Reply::TooLarge,
            _ if label == NOT_SERVING => Reply::NotServing,
            _ => return Err(UnknownLabel(label)),
        })
    }
}
