//! Access control of Totebox Envelope B (`docs/access.md` is the design; this crate is its
//! pure part, shared by the host tool and the PDs).
//!
//! - [`Identity`]: the archive's Ed25519 identity key; requests and capabilities name its
//!   verifier key, so they are good for one archive only.
//! - [`PairingSet`]: who may use the archive: [`Pairing`]s of a key, a [`PairingType`] and the
//!   tenants it covers; changed at run time only by an ADMIN-signed [`PairingChange`].
//!   [`yaml`] reads and writes `pairings.yaml`; [`PairingSet::to_bytes`] is the form the image
//!   carries.
//! - [`Capability`]: an ADMIN-signed grant of an operation on a tenant's rows to a holder key.
//! - [`SignedRequest`]: one request, signed by its holder, binding archive, tenant, key, time,
//!   nonce, the capability's hash and the operation with its arguments (an append's entries by
//!   their SHA-256).
//! - [`authorize`]: the permission table, a pure function; [`NonceWindow`]: the replay memory;
//!   [`AuditRecord`]: the audit line that makes a grant's nonce durable.
//!
//! - [`host`] (feature `std`): [`host::HostSigner`] signs a protocol client's requests with
//!   the host clock and a fresh random nonce each.
//!
//! Every note type is a C2SP signed note whose first line names its type and version
//! (`totebox-request/v1`, `totebox-capability/v1`, `totebox-pairing/v1`,
//! `totebox-identity/v1`): a signature over one type's text can never be taken for another's.
//!
//! `no_std` + `alloc`, no `unsafe`, no panics on any input (parsers are total; the tests feed
//! them mutated inputs). Bounds: notes of at most [`protocol::MAX_AUTH_NOTE`] bytes,
//! [`MAX_PAIRINGS`] pairings of at most [`MAX_TENANTS_PER_PAIRING`] tenants, a nonce window
//! of at most [`NONCE_CAPACITY`] entries ([`NonceWindow`] states its memory).
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod audit;
mod authorize;
mod capability;
#[cfg(feature = "std")]
pub mod host;
mod identity;
mod nonce;
mod pairing;
mod refusal;
mod request;
mod text;
pub mod yaml;

pub use audit::{AuditRecord, Outcome, MAX_AUDIT_LINE};
pub use authorize::{authorize, authorize_unsigned, Grant, KeyRef};
pub use capability::{CapOps, Capability, RowRange};
pub use identity::{verify_identity_proof, Identity};
pub use nonce::NonceWindow;
pub use pairing::{
    pairing_change_path, Change, Pairing, PairingChange, PairingError, PairingSet, PairingType,
    Tenants, INITIAL_PAIRINGS_PATH,
};
pub use refusal::Refusal;
pub use request::{Action, Class, SignedRequest};
pub use text::valid_tenant;

/// How far back of the archive's clock a request's time may be, in seconds. Also how long a
/// nonce is remembered: a request older than this is refused as stale, so its nonce is no
/// longer needed.
///
/// 30 s (was 120 until 2026-12-02): the window bounds how many nonces a key may have
/// remembered at once, so it sets the sustained signed-request rate per key (below); 30 s
/// still covers a request queued behind a full group and a client clock a few seconds slow.
pub const WINDOW_BACK: u64 = 30;

/// How far ahead of the archive's clock a request's time may be, in seconds (clock skew).
pub const WINDOW_AHEAD: u64 = 10;

/// Most nonces the window remembers for one key: a nonce is remembered until its request's
/// time is `WINDOW_BACK` old, at most `WINDOW_BACK + WINDOW_AHEAD` = 40 s, so 16,384 is about
/// 409 signed requests a second sustained per key (546 with clocks in step); an append request
/// carries up to 128 KiB of entries.
pub const NONCE_PER_KEY: usize = 16_384;

/// Most nonces the window remembers in all: four keys at their bound. So one client (up to
/// three) flooding cannot stop the others.
pub const NONCE_CAPACITY: usize = 4 * NONCE_PER_KEY;

/// Most pairings a set holds.
pub const MAX_PAIRINGS: usize = 64;

/// Most tenants one pairing names (a pairing for every tenant uses `*`).
pub const MAX_TENANTS_PER_PAIRING: usize = 16;

/// Longest name of a paired key (its note key name).
pub const MAX_KEY_NAME: usize = 32;

/// First row that no request may reach: 2^48 (a log of that many entries would hold at least
/// 512 TiB). Keeps every row range's spelling short enough for an audit record.
pub const MAX_ROW: u64 = 1 << 48;

/// The archive's clock readings it trusts: below 2^32 s (the year 2106). A reading at or past
/// it is treated as no clock.
pub const MAX_TIME: u64 = u32::MAX as u64;
