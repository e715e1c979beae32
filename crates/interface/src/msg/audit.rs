//! ledger_<t> -> audit (record layout at [`crate::audit_call`]).

use super::{labels, NOT_SERVING};

labels! {
    /// A call from a ledger.
    pub enum Request {
        /// Record a read: the encoded record at offset 0 of the region, MR0 its length.
        Record = 1,
        /// What the audit log's namespace uses of its quota. No arguments; audit asks psdb
        /// (on its own channel: it can only learn its own namespace's). Metadata only.
        Usage = 3,
    }
}

labels! {
    /// Audit's answer.
    pub enum Reply {
        /// The record is durable in the audit log; MR0 its index. To [`Request::Usage`]: the
        /// [`crate::psdb_call::Usage`] message registers.
        Recorded = 0x100,
        /// Malformed call (label, length, record or channel).
        BadCall = 0x101,
        /// The audit log could not store it (to [`Request::Usage`]: psdb did not answer).
        Storage = 0x102,
        /// The audit log could not start ([`super::NOT_SERVING`]): every read fails closed.
        NotServing = NOT_SERVING,
    }
}
