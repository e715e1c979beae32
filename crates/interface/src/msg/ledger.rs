//! wire -> ledger_<t> (layout and meanings at [`crate::ledger_call`]).

use super::{labels, NOT_SERVING};

labels! {
    /// A call from the wire. MR0: the request's length at offset 0 of the shared region.
    pub enum Request {
        /// One client request.
        Request = 1,
        /// Append these entries to the group being staged, do not store or checkpoint yet.
        Stage = 2,
        /// Append everything staged, then these entries, and sign one checkpoint.
        Commit = 3,
    }
}

labels! {
    /// A ledger's answer.
    pub enum Reply {
        /// A response is in the region; MR0 its length.
        Ok = 0x100,
        /// The call itself was malformed (bad label, length or channel).
        BadCall = 0x101,
        /// A [`Request::Stage`] was kept; MR0 = the entries staged so far.
        Staged = 0x102,
        /// The ledger could not start ([`super::NOT_SERVING`]): the wire answers `Unavailable`.
        NotServing = NOT_SERVING,
    }
}
