//! Strict `key value` line parsing shared by every note text of this crate.
//!
//! Every accepted text has exactly one spelling (fixed line order, one space, canonical
//! decimals, lowercase hex, canonical padded base64), so parsing then formatting gives the
//! same bytes back, and two parties can never disagree on what a signed text says.

use alloc::string::String;
use alloc::vec::Vec;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::Refusal;

/// The lines of a note text, each without its `\n`; the text must end in `\n`.
pub(crate) struct Lines<'a> {
    lines: core::str::Split<'a, char>,
}

impl<'a> Lines<'a> {
    /// Splits `text` (which ends in `\n`) after checking its first line is `kind`.
    pub(crate) fn new(text: &'a str, kind: &str) -> Result<Self, Refusal> {
        let body = text.strip_suffix('\n').ok_or(Refusal::Malformed)?;
        let mut lines = body.split('\n');
        if lines.next() != Some(kind) {
            return Err(Refusal::Malformed);
        }
        Ok(Lines { lines })
    }

    /// The value of the next line, which must be `key value`.
    pub(crate) fn field(&mut self, key: &str) -> Result<&'a str, Refusal> {
        let line = self.lines.next().ok_or(Refusal::Malformed)?;
        let (k, v) = line.split_once(' ').ok_or(Refusal::Malformed)?;
        if k != key || v.is_empty() {
            return Err(Refusal::Malformed);
        }
        Ok(v)
    }

    /// Refuses anything left.
    pub(crate) fn end(mut self) -> Result<(), Refusal> {
        match self.lines.next() {
            None => Ok(()),
            Some(_) => Err(Refusal::Malformed),
        }
    }
}

/// A decimal u64 without sign or leading zeros.
pub(crate) fn decimal(s: &str) -> Result<u64, Refusal> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 20 || (b.len() > 1 && b[0] == b'0') {
        return Err(Refusal::Malformed);
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return Err(Refusal::Malformed);
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
            .ok_or(Refusal::Malformed)?;
    }
    Ok(v)
}

/// A 128-bit nonce as 32 lowercase hex digits.
pub(crate) fn nonce(s: &str) -> Result<[u8; 16], Refusal> {
    let b = s.as_bytes();
    if b.len() != 32 {
        return Err(Refusal::Malformed);
    }
    let mut out = [0u8; 16];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Ok(out)
}

fn hex_digit(c: u8) -> Result<u8, Refusal> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(Refusal::Malformed),
    }
}

/// `bytes` as lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// A SHA-256 as canonical padded base64 (44 characters).
pub(crate) fn sha256_b64(s: &str) -> Result<[u8; 32], Refusal> {
    if s.len() != 44 {
        return Err(Refusal::Malformed);
    }
    let v: Vec<u8> = BASE64.decode(s).map_err(|_| Refusal::Malformed)?;
    v.try_into().map_err(|_| Refusal::Malformed)
}

/// Canonical padded base64 of `bytes`.
pub(crate) fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// A verifier key string of an Ed25519 (type 0x01) key, in its one canonical spelling.
pub(crate) fn vkey(s: &str) -> Result<note::Verifier, Refusal> {
    let v = note::Verifier::from_vkey(s).map_err(|_| Refusal::Malformed)?;
    if v.key_type() != note::KeyType::Ed25519 || v.vkey() != s {
        return Err(Refusal::Malformed);
    }
    Ok(v)
}

/// A tenant name: 1 to [`protocol::MAX_TENANT`] bytes, a lowercase letter first, then
/// lowercase letters, digits and `_` (the rule `system.toml` applies, which also caps the
/// length at 24).
pub fn valid_tenant(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= protocol::MAX_TENANT
        && t.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A path argument: 1 to 256 bytes of printable ASCII without space (every tile path is).
pub(crate) fn valid_path(p: &str) -> bool {
    !p.is_empty() && p.len() <= 256 && p.bytes().all(|b| b.is_ascii_graphic())
}
