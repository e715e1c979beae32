//! Signed notes, c2sp.org/signed-note@v1.0.0: parsing, formatting and verification.

use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::cosignature::{cosignature_message, decode_timestamped, MAX_TIMESTAMP};
use crate::key::{is_valid_name, verify_ed25519, KeyType, Verifier};
use crate::Error;

/// The most signature lines a note may carry; [`Note::parse`] rejects more. The spec requires
/// accepting at least 16. Bounds the work of parsing and verifying one note to 100 base64
/// decodes and at most 100 signature verifications.
pub const MAX_SIGNATURES: usize = 100;

const SIG_PREFIX: &str = "\u{2014} ";

/// Checks a note text: non-empty, ends in a newline, no ASCII control character but newline.
/// (UTF-8 validity is the `&str` type's invariant.)
pub(crate) fn check_text(text: &str) -> Result<(), Error> {
    if !text.ends_with('\n') {
        return Err(Error::TextFormat);
    }
    check_control(text)
}

/// Bytes below 0x20 other than `\n` are refused; in UTF-8 such bytes only encode themselves.
fn check_control(s: &str) -> Result<(), Error> {
    if s.bytes().any(|b| b < 0x20 && b != b'\n') {
        return Err(Error::ControlCharacter);
    }
    Ok(())
}

/// One signature line: key name, key id and the signature bytes after the id.
///
/// Invariants: the name is valid ([`is_valid_name`]) and the signature is non-empty, so
/// [`Signature::to_line`] always yields a line [`Note::parse`] accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    name: String,
    key_id: u32,
    sig: Vec<u8>,
}

impl Signature {
    /// A signature by key `name`/`key_id`; `sig` is what follows the key id (for type 0x04,
    /// the timestamp and the Ed25519 signature).
    pub fn new(name: &str, key_id: u32, sig: &[u8]) -> Result<Self, Error> {
        if !is_valid_name(name) {
            return Err(Error::KeyName);
        }
        if sig.is_empty() {
            return Err(Error::SignatureTooShort);
        }
        Ok(Signature {
            name: name.to_string(),
            key_id,
            sig: sig.to_vec(),
        })
    }

    /// Parses one signature line without its final newline.
    fn parse_line(line: &str) -> Result<Self, Error> {
        let rest = line
            .strip_prefix(SIG_PREFIX)
            .ok_or(Error::SignatureLinePrefix)?;
        let (name, b64) = rest.split_once(' ').ok_or(Error::SignatureLineFormat)?;
        if !is_valid_name(name) {
            return Err(Error::KeyName);
        }
        // The standard engine demands canonical padding and zero trailing bits, so each
        // signature has exactly one encoding and formatting reproduces the input.
        let raw = BASE64.decode(b64).map_err(|_| Error::SignatureBase64)?;
        if raw.len() < 5 {
            return Err(Error::SignatureTooShort);
        }
        let (id, sig) = raw.split_at(4);
        let key_id = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
        Ok(Signature {
            name: name.to_string(),
            key_id,
            sig: sig.to_vec(),
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The signature bytes after the key id.
    pub fn signature(&self) -> &[u8] {
        &self.sig
    }

    /// The signature line, `— <name> <base64(key id || signature)>\n`.
    pub fn to_line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.sig.len());
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(&self.sig);
        let mut line = String::from(SIG_PREFIX);
        line.push_str(&self.name);
        line.push(' ');
        line.push_str(&BASE64.encode(raw));
        line.push('\n');
        line
    }

    fn same_key(&self, name: &str, key_id: u32) -> bool {
        self.key_id == key_id && self.name == name
    }
}

/// A signature that verified against a known key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The key name.
    pub name: String,
    /// The key id.
    pub key_id: u32,
    /// The key type: [`KeyType::Ed25519`] for a note signature, [`KeyType::Cosignature`] for a
    /// witness cosignature.
    pub key_type: KeyType,
    /// For a cosignature, the POSIX time it claims to have been made at.
    pub timestamp: Option<u64>,
}

/// A note: a text and its signatures, not yet verified.
///
/// Invariants: the text is non-empty, ends in a newline and has no control character but
/// newline; there are at most [`MAX_SIGNATURES`] signatures. So `to_string()` is a note that
/// [`Note::parse`] accepts, and for any input `parse` accepts, `to_string()` reproduces it
/// byte for byte. The text MUST be treated as untrusted until [`Note::verify`] succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    sigs: Vec<Signature>,
}

impl Note {
    /// A note with `text` and no signatures yet (it needs at least one before it can be
    /// formatted into something [`Note::parse`] accepts).
    pub fn new(text: &str) -> Result<Self, Error> {
        check_text(text)?;
        Ok(Note {
            text: text.to_string(),
            sigs: Vec::new(),
        })
    }

    /// Parses a signed note: text ending in newline, a blank line, then 1 to
    /// [`MAX_SIGNATURES`] signature lines each ending in newline. The text is separated from
    /// the signatures by the last blank line. Signatures are only parsed here, not verified.
    pub fn parse(msg: &[u8]) -> Result<Self, Error> {
        let msg = core::str::from_utf8(msg).map_err(|_| Error::NoteNotUtf8)?;
        check_control(msg)?;
        let split = msg.rfind("\n\n").ok_or(Error::MissingBlankLine)?;
        let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
        if sigs.is_empty() {
            return Err(Error::NoSignatures);
        }
        let sigs = sigs.strip_suffix('\n').ok_or(Error::MissingFinalNewline)?;
        // Count before decoding anything, so an oversized note costs one scan.
        if sigs.bytes().filter(|&b| b == b'\n').count() >= MAX_SIGNATURES {
            return Err(Error::TooManySignatures);
        }
        let sigs = sigs
            .split('\n')
            .map(Signature::parse_line)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Note {
            text: text.to_string(),
            sigs,
        })
    }

    /// The note text, including its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signatures, in note order.
    pub fn signatures(&self) -> &[Signature] {
        &self.sigs
    }

    /// Adds a signature at the end, first removing any existing signature with the same name
    /// and key id (re-signing replaces).
    pub fn add_signature(&mut self, sig: Signature) -> Result<(), Error> {
        self.sigs.retain(|s| !s.same_key(&sig.name, sig.key_id));
        if self.sigs.len() >= MAX_SIGNATURES {
            return Err(Error::TooManySignatures);
        }
        self.sigs.push(sig);
        Ok(())
    }

    /// The encoded note (text, blank line, signature lines).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// Verifies the note against `known` keys (of type 0x01 or 0x04).
    ///
    /// Signatures whose name and key id match no known key are ignored. Every signature that
    /// matches a known key is verified (also repeated ones), and any failure rejects the whole
    /// note. A set of keys with the same name and key id twice is refused whatever the note
    /// says, as a configuration error. Returns each key that verified once, in note order;
    /// refuses a note with no signature from a known key.
    pub fn verify(&self, known: &[Verifier]) -> Result<Vec<Verified>, Error> {
        let mut ids = BTreeSet::new();
        for v in known {
            if !ids.insert((v.name(), v.key_id())) {
                return Err(Error::AmbiguousVerifiers);
            }
        }
        let mut out: Vec<Verified> = Vec::new();
        for sig in &self.sigs {
            let Some(v) = known.iter().find(|v| sig.same_key(v.name(), v.key_id())) else {
                continue;
            };
            let timestamp = match v.key_type() {
                KeyType::Ed25519 => {
                    if !verify_ed25519(v.ed25519(), self.text.as_bytes(), &sig.sig) {
                        return Err(Error::InvalidSignature);
                    }
                    None
                }
                KeyType::Cosignature => {
                    let (ts, ed_sig) =
                        decode_timestamped(&sig.sig).ok_or(Error::InvalidSignature)?;
                    if ts > MAX_TIMESTAMP {
                        return Err(Error::CosignatureTimestamp);
                    }
                    let msg = cosignature_message(ts, &self.text);
                    if !verify_ed25519(v.ed25519(), &msg, ed_sig) {
                        return Err(Error::InvalidSignature);
                    }
                    Some(ts)
                }
            };
            if !out
                .iter()
                .any(|o| o.key_id == v.key_id() && o.name == v.name())
            {
                out.push(Verified {
                    name: v.name().to_string(),
                    key_id: v.key_id(),
                    key_type: v.key_type(),
                    timestamp,
                });
            }
        }
        if out.is_empty() {
            return Err(Error::NoVerifiedSignature);
        }
        Ok(out)
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("\n")?;
        for sig in &self.sigs {
            f.write_str(&sig.to_line())?;
        }
        Ok(())
    }
}
