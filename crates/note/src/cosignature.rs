//! Ed25519 witness cosignatures, c2sp.org/tlog-cosignature@v1.0.0 (`cosignature/v1`, key type
//! 0x04). The ML-DSA-44 `subtree/v1` type of later revisions is not implemented.
//!
//! The signature field of a type 0x04 signature line is `timestamp (u64 big-endian) ||
//! Ed25519 signature (64 bytes)`, 72 bytes; the signed message is
//! `cosignature/v1\ntime <timestamp in decimal>\n` followed by the checkpoint note text.

use alloc::format;
use alloc::vec::Vec;

/// The largest timestamp a cosignature may carry (2^63 - 1).
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// Length of the signature field of a cosignature line.
pub(crate) const TIMESTAMPED_LEN: usize = 8 + 64;

/// The message a `cosignature/v1` signature signs.
pub(crate) fn cosignature_message(timestamp: u64, text: &str) -> Vec<u8> {
    let mut msg = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    msg.extend_from_slice(text.as_bytes());
    msg
}

pub(crate) fn encode_timestamped(timestamp: u64, sig: &[u8; 64]) -> [u8; TIMESTAMPED_LEN] {
    let mut out = [0u8; TIMESTAMPED_LEN];
    out[..8].copy_from_slice(&timestamp.to_be_bytes());
    out[8..].copy_from_slice(sig);
    out
}

/// Splits a cosignature field into its timestamp and Ed25519 signature; `None` if the length
/// is not 72.
pub(crate) fn decode_timestamped(field: &[u8]) -> Option<(u64, &[u8])> {
    if field.len() != TIMESTAMPED_LEN {
        return None;
    }
    let (ts, sig) = field.split_at(8);
    let ts: [u8; 8] = ts.try_into().ok()?;
    Some((u64::from_be_bytes(ts), sig))
}
