//! C2SP signed notes (c2sp.org/signed-note), Ed25519 keys and checkpoints.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;
