//! Key names, key ids and the verifier/signer key strings of c2sp.org/signed-note@v1.0.0, for
//! Ed25519 (type 0x01) and Ed25519 cosignature (type 0x04, c2sp.org/tlog-cosignature@v1.0.0)
//! keys.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::checkpoint::Checkpoint;
use crate::cosignature::{cosignature_message, encode_timestamped, MAX_TIMESTAMP};
use crate::note::{Note, Signature};
use crate::Error;

/// The signature type byte of a key (c2sp.org/signed-note, "Signature types").
///
/// Only the two Ed25519-based types are implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum KeyType {
    /// 0x01: Ed25519 over the note text.
    Ed25519 = 0x01,
    /// 0x04: timestamped Ed25519 witness cosignature (c2sp.org/tlog-cosignature, `cosignature/v1`).
    Cosignature = 0x04,
}

impl KeyType {
    /// The type identifier byte.
    pub fn byte(self) -> u8 {
        self as u8
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0x01 => Some(KeyType::Ed25519),
            0x04 => Some(KeyType::Cosignature),
            _ => None,
        }
    }
}

/// Whether `name` may be a key name: non-empty, no Unicode white space, no `+`.
///
/// Stricter than the spec in one way: ASCII control characters are refused too, because a note
/// may not contain them, so a key with such a name could never sign a parseable note.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c == '+' || c.is_whitespace() || c < '\u{20}')
}

/// The key id of a key: the first four bytes, big-endian, of
/// `SHA-256(name || 0x0A || type || public key)`.
pub fn key_id(name: &str, key_type: KeyType, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', key_type.byte()]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Parses exactly 8 lowercase hex digits. Uppercase is refused so that every key has one
/// string form (`vkey()` reproduces what was parsed).
fn parse_key_id(hex: &str) -> Result<u32, Error> {
    if hex.len() != 8 {
        return Err(Error::KeyIdHex);
    }
    let mut id = 0u32;
    for b in hex.bytes() {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return Err(Error::KeyIdHex),
        };
        id = (id << 4) | u32::from(digit);
    }
    Ok(id)
}

/// The parts of `<name>+<8 hex>+<base64(type || key)>`, split on the first two `+` only
/// (base64 itself contains `+`). The key id is returned unchecked: a signer key holds the seed,
/// so the caller checks the id against the derived public key.
fn parse_key_string(s: &str) -> Result<(&str, u32, KeyType, [u8; 32]), Error> {
    let (name, rest) = s.split_once('+').ok_or(Error::KeyFormat)?;
    let (hex, b64) = rest.split_once('+').ok_or(Error::KeyFormat)?;
    if !is_valid_name(name) {
        return Err(Error::KeyName);
    }
    let id = parse_key_id(hex)?;
    let raw = BASE64.decode(b64).map_err(|_| Error::KeyBase64)?;
    let (&type_byte, material) = raw.split_first().ok_or(Error::KeyLength)?;
    let key_type = KeyType::from_byte(type_byte).ok_or(Error::KeyType)?;
    let material: [u8; 32] = material.try_into().map_err(|_| Error::KeyLength)?;
    Ok((name, id, key_type, material))
}

fn format_key_string(name: &str, id: u32, key_type: KeyType, material: &[u8; 32]) -> String {
    let mut raw = Vec::with_capacity(33);
    raw.push(key_type.byte());
    raw.extend_from_slice(material);
    format!("{name}+{id:08x}+{}", BASE64.encode(raw))
}

/// Decodes an Ed25519 public key, refusing non-canonical encodings (y >= p) and points of small
/// order: neither can come from an honest key, and `verify_strict` would reject every signature
/// by a small-order key anyway, so the error is reported where the key is configured.
pub(crate) fn decode_public_key(bytes: &[u8; 32]) -> Result<VerifyingKey, Error> {
    let vk = VerifyingKey::from_bytes(bytes).map_err(|_| Error::PublicKey)?;
    if vk.is_weak() || vk.to_edwards().compress().to_bytes() != *bytes {
        return Err(Error::PublicKey);
    }
    Ok(vk)
}

/// The one Ed25519 verification used everywhere: `verify_strict` (canonical S, R not of small
/// order, cofactorless equation compared on the encoding of R). See the crate docs.
pub(crate) fn verify_ed25519(key: &VerifyingKey, msg: &[u8], sig: &[u8]) -> bool {
    let Ok(sig) = <[u8; 64]>::try_from(sig) else {
        return false;
    };
    key.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig))
        .is_ok()
}

/// A public key with its name and key id: the configuration a note is verified against.
///
/// Invariants: `name` is valid ([`is_valid_name`]), `key_id` is the id derived from name, type
/// and key, and the key is a canonical Ed25519 point of large order.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    key_id: u32,
    key_type: KeyType,
    key: VerifyingKey,
}

impl Verifier {
    /// Parses a verifier key string `<name>+<8 hex key id>+<base64(type || public key)>` of
    /// type 0x01 (Ed25519) or 0x04 (cosignature).
    pub fn from_vkey(vkey: &str) -> Result<Self, Error> {
        let (name, id, key_type, material) = parse_key_string(vkey)?;
        if id != key_id(name, key_type, &material) {
            return Err(Error::KeyIdMismatch);
        }
        let key = decode_public_key(&material)?;
        Ok(Verifier {
            name: name.to_string(),
            key_id: id,
            key_type,
            key,
        })
    }

    /// Builds a verifier from a name and a raw 32-byte Ed25519 public key.
    pub fn from_public_key(
        name: &str,
        key_type: KeyType,
        public_key: &[u8; 32],
    ) -> Result<Self, Error> {
        if !is_valid_name(name) {
            return Err(Error::KeyName);
        }
        let key = decode_public_key(public_key)?;
        Ok(Verifier {
            name: name.to_string(),
            key_id: key_id(name, key_type, public_key),
            key_type,
            key,
        })
    }

    /// The verifier key string; `Verifier::from_vkey(&v.vkey())` gives `v` back.
    pub fn vkey(&self) -> String {
        format_key_string(&self.name, self.key_id, self.key_type, self.key.as_bytes())
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub(crate) fn ed25519(&self) -> &VerifyingKey {
        &self.key
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Verifier").field(&self.vkey()).finish()
    }
}

/// A named private key of either type. The seed is the secret; `Debug` never prints it.
#[derive(Clone)]
struct KeyPair {
    name: String,
    key_id: u32,
    key_type: KeyType,
    key: SigningKey,
}

impl KeyPair {
    fn generate(name: &str, key_type: KeyType, seed: &[u8; 32]) -> Result<Self, Error> {
        if !is_valid_name(name) {
            return Err(Error::KeyName);
        }
        let key = SigningKey::from_bytes(seed);
        Ok(KeyPair {
            name: name.to_string(),
            key_id: key_id(name, key_type, key.verifying_key().as_bytes()),
            key_type,
            key,
        })
    }

    fn from_skey(skey: &str, want: KeyType) -> Result<Self, Error> {
        let rest = skey
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(Error::SignerKeyPrefix)?;
        let (name, id, key_type, seed) = parse_key_string(rest)?;
        if key_type != want {
            return Err(Error::WrongKeyType);
        }
        let pair = KeyPair::generate(name, key_type, &seed)?;
        if pair.key_id != id {
            return Err(Error::KeyIdMismatch);
        }
        Ok(pair)
    }

    fn skey(&self) -> String {
        let mut s = String::from("PRIVATE+KEY+");
        s.push_str(&format_key_string(
            &self.name,
            self.key_id,
            self.key_type,
            self.key.as_bytes(),
        ));
        s
    }

    fn verifier(&self) -> Verifier {
        Verifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key_type: self.key_type,
            key: self.key.verifying_key(),
        }
    }

    fn sign_raw(&self, msg: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        self.key.sign(msg).to_bytes()
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .field("key_type", &self.key_type)
            .finish_non_exhaustive()
    }
}

/// An Ed25519 (type 0x01) note signer: signs note texts.
///
/// Holds the 32-byte seed; the crate has no RNG, so [`Signer::generate`] takes the seed from
/// the caller, who must supply 32 uniformly random bytes.
#[derive(Clone, Debug)]
pub struct Signer(KeyPair);

impl Signer {
    /// A signer for `name` from a caller-supplied random 32-byte seed.
    pub fn generate(name: &str, seed: &[u8; 32]) -> Result<Self, Error> {
        KeyPair::generate(name, KeyType::Ed25519, seed).map(Signer)
    }

    /// Parses `PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || seed)>`; the key id must match
    /// the public key derived from the seed.
    pub fn from_skey(skey: &str) -> Result<Self, Error> {
        KeyPair::from_skey(skey, KeyType::Ed25519).map(Signer)
    }

    /// The signer key string (secret).
    pub fn skey(&self) -> String {
        self.0.skey()
    }

    /// The matching verifier.
    pub fn verifier(&self) -> Verifier {
        self.0.verifier()
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.0.key_id
    }

    /// The signature of `text` (which must be a valid note text: non-empty, ending in newline,
    /// no control characters but newline), ready to add to a [`Note`].
    pub fn signature(&self, text: &str) -> Result<Signature, Error> {
        crate::note::check_text(text)?;
        let sig = self.0.sign_raw(text.as_bytes());
        Signature::new(&self.0.name, self.0.key_id, &sig)
    }

    /// A complete signed note: `text`, a blank line, and this signer's signature line.
    /// Ed25519 is deterministic, so the result depends only on the key and the text.
    pub fn sign(&self, text: &str) -> Result<String, Error> {
        let mut note = Note::new(text)?;
        note.add_signature(self.signature(text)?)?;
        Ok(note.to_string())
    }
}

/// An Ed25519 cosignature (type 0x04) signer, as a witness uses.
///
/// The signer key string `PRIVATE+KEY+<name>+<id>+<base64(0x04 || seed)>` is this crate's
/// convention (the specs define only verifier keys for type 0x04).
#[derive(Clone, Debug)]
pub struct Cosigner(KeyPair);

impl Cosigner {
    /// A cosigner for `name` from a caller-supplied random 32-byte seed.
    pub fn generate(name: &str, seed: &[u8; 32]) -> Result<Self, Error> {
        KeyPair::generate(name, KeyType::Cosignature, seed).map(Cosigner)
    }

    /// Parses `PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x04 || seed)>`.
    pub fn from_skey(skey: &str) -> Result<Self, Error> {
        KeyPair::from_skey(skey, KeyType::Cosignature).map(Cosigner)
    }

    /// The signer key string (secret).
    pub fn skey(&self) -> String {
        self.0.skey()
    }

    /// The matching verifier (type 0x04).
    pub fn verifier(&self) -> Verifier {
        self.0.verifier()
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.0.key_id
    }

    /// A `cosignature/v1` signature on `checkpoint_text` (the note text, which must parse as a
    /// [`Checkpoint`]) at `timestamp` (POSIX seconds, at most 2^63 - 1). The result is a
    /// signature line to add to the checkpoint note.
    pub fn cosign(&self, checkpoint_text: &str, timestamp: u64) -> Result<Signature, Error> {
        if timestamp > MAX_TIMESTAMP {
            return Err(Error::CosignatureTimestamp);
        }
        Checkpoint::parse(checkpoint_text)?;
        let msg = cosignature_message(timestamp, checkpoint_text);
        let sig = self.0.sign_raw(&msg);
        Signature::new(
            &self.0.name,
            self.0.key_id,
            &encode_timestamped(timestamp, &sig),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{decode_public_key, verify_ed25519};

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Pins the policy of the crate docs on every CCTV Ed25519 vector (all of them are valid
    /// under some verifier): accepted exactly when no flag other than the cancelling
    /// small-order components is set. Counts are pinned too, so a change in the vectors file
    /// or in the verifier shows up.
    #[test]
    fn cctv_ed25519_vectors_follow_the_documented_policy() {
        const ACCEPTABLE: [&str; 2] = ["low_order_component_A", "low_order_component_R"];
        let json = include_str!("../testdata/ed25519/ed25519vectors.json");
        let vectors: serde_json::Value = serde_json::from_str(json).unwrap();
        let vectors = vectors.as_array().unwrap();
        assert_eq!(vectors.len(), 914);
        let (mut accepted, mut rejected) = (0, 0);
        for v in vectors {
            let number = v["number"].as_u64().unwrap();
            let key: [u8; 32] = hex(v["key"].as_str().unwrap()).try_into().unwrap();
            let sig = hex(v["sig"].as_str().unwrap());
            let msg = v["msg"].as_str().unwrap().as_bytes();
            let flags: Vec<&str> = v["flags"]
                .as_array()
                .map(|f| f.iter().map(|x| x.as_str().unwrap()).collect())
                .unwrap_or_default();
            let expect = flags.iter().all(|f| ACCEPTABLE.contains(f));
            let got = decode_public_key(&key).is_ok_and(|vk| verify_ed25519(&vk, msg, &sig));
            assert_eq!(got, expect, "vector {number} flags {flags:?}");
            if got {
                accepted += 1;
            } else {
                rejected += 1;
            }
        }
        assert_eq!((accepted, rejected), (43, 871));
    }

    /// `verify_strict` alone, without the key check, already rejects every vector with a
    /// small-order or non-canonical A: the key check only moves the error to configuration.
    #[test]
    fn key_check_only_rejects_what_verify_strict_rejects() {
        let json = include_str!("../testdata/ed25519/ed25519vectors.json");
        let vectors: serde_json::Value = serde_json::from_str(json).unwrap();
        for v in vectors.as_array().unwrap() {
            let key: [u8; 32] = hex(v["key"].as_str().unwrap()).try_into().unwrap();
            let sig: [u8; 64] = hex(v["sig"].as_str().unwrap()).try_into().unwrap();
            let msg = v["msg"].as_str().unwrap().as_bytes();
            if decode_public_key(&key).is_err() {
                let strict = ed25519_dalek::VerifyingKey::from_bytes(&key).is_ok_and(|vk| {
                    vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig))
                        .is_ok()
                });
                assert!(!strict, "vector {}", v["number"]);
            }
        }
    }

    #[test]
    fn non_canonical_s_is_rejected() {
        use ed25519_dalek::Signer as _;
        let sk = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let vk = decode_public_key(sk.verifying_key().as_bytes()).unwrap();
        let mut sig = sk.sign(b"m").to_bytes();
        assert!(verify_ed25519(&vk, b"m", &sig));
        // S + L is the same scalar, non-reduced.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for i in 0..32 {
            let s = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
            sig[32 + i] = s as u8;
            carry = s >> 8;
        }
        assert!(!verify_ed25519(&vk, b"m", &sig));
        assert!(!verify_ed25519(&vk, b"m", &sig[..63]));
    }
}
