//! The verifiable ledger core: an append-only Merkle log in the C2SP tlog-tiles format.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod storage;
pub use storage::Storage;
