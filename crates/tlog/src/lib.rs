//! The verifiable ledger core: an append-only Merkle log in the C2SP tlog-tiles format, run by
//! every tenant ledger PD and the audit PD.
//!
//! Specifications implemented (and the versions pinned):
//! - RFC 9162 §2.1 (Merkle tree hashing, inclusion and consistency proofs): [`hash`],
//!   [`proof`].
//! - [c2sp.org/tlog-tiles@v1.0.0](https://c2sp.org/tlog-tiles@v1.0.0), tile height 8 (width
//!   256): paths, tile and entry bundle encodings ([`tile`]), the log writing them ([`Log`])
//!   and whole-tree verification ([`verify_tree`]).
//! - [c2sp.org/tlog-checkpoint@v1.0.0](https://c2sp.org/tlog-checkpoint@v1.0.0) and
//!   [c2sp.org/signed-note@v1.0.0](https://c2sp.org/signed-note@v1.0.0) through the `note`
//!   crate.
//!
//! `no_std` + `alloc`, no `unsafe`, no panics on storage content or any other input: every
//! failure is a closed error enum with `Display`.
//!
//! Where to start: [`Log`] (the writer: `create`/`open`, `append`, `checkpoint`, `read_since`,
//! proofs; its [module docs](log) state the memory bounds), [`verify_tree`] (whole-tree
//! verification through the read-only [`ObjectReader`]), the [`Storage`] contract, and
//! [`MemStorage`] for tests.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod error;
pub mod hash;
pub mod log;
mod mem;
pub mod proof;
mod storage;
pub mod tile;
pub mod verify;

pub use error::{Error, Object, ObjectError, Reason, VerifyError};
pub use hash::{leaf_hash, node_hash, Hash, EMPTY_ROOT};
pub use log::{Buffers, Log};
pub use mem::{Fault, MemError, MemStorage};
pub use proof::{
    prove_consistency, prove_inclusion, verify_consistency, verify_inclusion, NodeSource,
    ProofError,
};
pub use storage::{ObjectReader, Storage};
pub use tile::{FormatError, Tile, TileKind};
pub use verify::{verify_tree, VerifiedTree};
