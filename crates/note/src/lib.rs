//! C2SP signed notes, Ed25519 note keys, checkpoints and witness cosignatures.
//!
//! Implements, and only implements:
//! - [c2sp.org/signed-note@v1.0.0](https://c2sp.org/signed-note@v1.0.0): [`Note`] parsing,
//!   formatting and verification; Ed25519 (type 0x01) keys with the verifier key string
//!   `<name>+<8 hex key id>+<base64(0x01 || public key)>` and the signer key string
//!   `PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || seed)>` ([`Verifier`], [`Signer`]).
//! - [c2sp.org/tlog-checkpoint@v1.0.0](https://c2sp.org/tlog-checkpoint@v1.0.0): [`Checkpoint`].
//! - [c2sp.org/tlog-cosignature@v1.0.0](https://c2sp.org/tlog-cosignature@v1.0.0), Ed25519
//!   `cosignature/v1` only (type 0x04): [`Cosigner`], and [`Note::verify`] with type 0x04
//!   [`Verifier`]s.
//!
//! `no_std` + `alloc`, no `unsafe`, no panics on any input, no RNG (callers supply seeds).
//!
//! # Bounds
//! A note carries at most [`MAX_SIGNATURES`] (100) signature lines; the spec asks verifiers to
//! accept at least 16. Memory for a parsed note is proportional to its length (text copied
//! once, signatures decoded once); verification does at most one Ed25519 verification per
//! signature line and nothing for signatures from unknown keys.
//!
//! # Where this is stricter than the spec or other implementations
//! - Base64 (signatures, keys, root hashes) must be canonical standard padded base64 (no
//!   non-zero trailing bits), and key ids must be lowercase hex: every accepted input has one
//!   encoding, so parse-then-format reproduces it byte for byte.
//! - Key names may not contain ASCII control characters (they could never appear in a note).
//! - Public keys must be canonical encodings of points of large order.
//! - A verifier set with two keys of the same name and key id is refused outright
//!   ([`Error::AmbiguousVerifiers`]), not only when a signature from that key is seen.
//! - Every signature from a known key is verified, including repeats (the Go implementation
//!   verifies only the first per key).
//!
//! # Ed25519 verification policy
//! All verification goes through `ed25519_dalek::VerifyingKey::verify_strict`, plus a key check
//! at parse time. On the edge cases of the CCTV vectors
//! (`testdata/ed25519/ed25519vectors.json`, pinned by a test) this means a signature is
//! accepted only if none of these holds:
//! - A or R is of small order (`low_order_A`, `low_order_R`); small-order keys are already
//!   refused by [`Verifier::from_vkey`] with [`Error::PublicKey`];
//! - A or R is not canonically encoded (`non_canonical_A`, `non_canonical_R`, and so
//!   `reencoded_k`);
//! - the signature holds only under the cofactored equation (`low_order_residue`): the
//!   equation checked is the cofactorless `[S]B = R + [k]A`;
//! - S is not reduced (S >= L).
//!
//! Signatures whose A or R merely have a small-order component that cancels out
//! (`low_order_component_A`, `low_order_component_R` alone) are accepted, as in RFC 8032.
//!
//! # Example
//! ```
//! use note::{Checkpoint, Cosigner, Note, Signer};
//!
//! // Seeds come from the caller's RNG; fixed here for the example.
//! let log = Signer::generate("example.com/log", &[1; 32])?;
//! let witness = Cosigner::generate("witness.example", &[2; 32])?;
//!
//! let text = Checkpoint::new("example.com/log", 5, [0; 32], &[])?.to_text();
//! let mut note = Note::parse(log.sign(&text)?.as_bytes())?;
//! note.add_signature(witness.cosign(note.text(), 1_700_000_000)?)?;
//!
//! let wire = note.to_bytes();
//! let verified = Note::parse(&wire)?.verify(&[log.verifier(), witness.verifier()])?;
//! assert_eq!(verified.len(), 2);
//! assert_eq!(verified[1].timestamp, Some(1_700_000_000));
//! assert_eq!(Checkpoint::parse(note.text())?.size(), 5);
//! # Ok::<(), note::Error>(())
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod checkpoint;
mod cosignature;
mod error;
mod key;
mod note;

pub use checkpoint::Checkpoint;
pub use cosignature::MAX_TIMESTAMP;
pub use error::Error;
pub use key::{is_valid_name, key_id, Cosigner, KeyType, Signer, Verifier};
pub use note::{Note, Signature, Verified, MAX_SIGNATURES};
