//! Checkpoint signing keys: log origins, and the key slot each ledger (and audit) ELF carries.
//!
//! # Provisioning
//! `ledger.elf` is built once, for every tenant. Its checkpoint signing key is **not** in the
//! build: the ELF holds an empty, fixed-size key slot (symbol [`KEY_SLOT_SYMBOL`],
//! [`KEY_SLOT_LEN`] bytes, see [`EMPTY_SLOT`]), and `make image` writes one copy per tenant,
//! `ledger_<tenant>.elf`, whose only difference from `ledger.elf` is that tenant's key in the
//! slot (`totebox image set-key`, from `$(KEYS_DIR)/<tenant>.skey`). system.xml loads each
//! ledger PD from its own copy, so a tenant's signing key is mapped into that tenant's ledger PD
//! and no other: there is no shared secret from which one ledger could derive another's key.
//! `audit.elf` carries the audit log's key the same way. The key files never enter the
//! repository; `make image` generates absent ones (`totebox keygen`) and writes the `.vkey`
//! files clients verify checkpoints with.
//!
//! A PD checks its slot at start-up: an empty slot, a damaged one, or a key made for another log
//! (its name is not the PD's [`origin`]) is refused with an `|ERROR:` line and the PD serves
//! nothing. The simulator loads the same `.skey` files and hands them to the same code.
//!
//! # Slot layout (256 bytes)
//! `"TOTEBOX-KEY-SLOT"` (16 bytes), the key string's length (u16, little-endian), the signer key
//! string (`PRIVATE+KEY+<origin>+<id>+<base64>`, as `totebox keygen` prints it), zeros.

use core::fmt;

use note::Signer;

/// The symbol of the key slot in `ledger.elf` and `audit.elf`.
pub const KEY_SLOT_SYMBOL: &str = "totebox_signing_key";

/// Bytes of the key slot.
pub const KEY_SLOT_LEN: usize = 256;

/// The slot's first bytes, provisioned or not (how the patching tool recognises it).
pub const KEY_SLOT_MAGIC: [u8; 16] = *b"TOTEBOX-KEY-SLOT";

const HEADER: usize = KEY_SLOT_MAGIC.len() + 2;

/// Longest key string a slot holds.
pub const MAX_SKEY: usize = KEY_SLOT_LEN - HEADER;

/// An unprovisioned slot: the magic, length 0. (Not all zeros, so the slot is file-backed
/// `.data` that a host tool can patch; see `microkit::patched`.)
pub const EMPTY_SLOT: [u8; KEY_SLOT_LEN] = {
    let mut s = [0u8; KEY_SLOT_LEN];
    let mut i = 0;
    while i < KEY_SLOT_MAGIC.len() {
        s[i] = KEY_SLOT_MAGIC[i];
        i += 1;
    }
    s
};

/// Why a key slot or key string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The bytes do not start with [`KEY_SLOT_MAGIC`] (not a key slot, or a damaged one).
    NotASlot,
    /// The slot is empty: the ELF was never provisioned (`make image` does it).
    Unprovisioned,
    /// The slot's length field is out of range or its key string is not UTF-8.
    Malformed,
    /// A key string longer than [`MAX_SKEY`].
    TooLong(usize),
    /// The key string does not parse as a note signer key.
    Key(note::Error),
    /// A key made for another log.
    WrongLog {
        /// The origin the PD signs as.
        expected: alloc::string::String,
        /// The key's name.
        found: alloc::string::String,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::NotASlot => {
                f.write_str("the key slot is damaged (no TOTEBOX-KEY-SLOT magic)")
            }
            KeyError::Unprovisioned => f.write_str(
                "no signing key provisioned: this ELF's key slot is empty (make image writes \
                 one per PD with `totebox image set-key`)",
            ),
            KeyError::Malformed => f.write_str("the key slot is malformed"),
            KeyError::TooLong(n) => {
                write!(
                    f,
                    "key string of {n} bytes does not fit a slot ({MAX_SKEY} max)"
                )
            }
            KeyError::Key(e) => write!(f, "signer key: {e}"),
            KeyError::WrongLog { expected, found } => {
                write!(f, "the key is for `{found}`, this PD signs as `{expected}`")
            }
        }
    }
}

/// The origin (and key name) of a log: `totebox-envelope-b/<log>` (`<log>` is a tenant or
/// `audit`).
pub fn origin(log: &str) -> alloc::string::String {
    alloc::format!("totebox-envelope-b/{log}")
}

/// A slot holding `skey` (checked to be a signer key that fits).
pub fn encode_slot(skey: &str) -> Result<[u8; KEY_SLOT_LEN], KeyError> {
    Signer::from_skey(skey).map_err(KeyError::Key)?;
    let bytes = skey.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_SKEY {
        return Err(KeyError::TooLong(bytes.len()));
    }
    let mut slot = EMPTY_SLOT;
    slot[KEY_SLOT_MAGIC.len()..HEADER].copy_from_slice(&(bytes.len() as u16).to_le_bytes());
    slot[HEADER..HEADER + bytes.len()].copy_from_slice(bytes);
    Ok(slot)
}

/// The key string a slot holds.
pub fn slot_skey(slot: &[u8]) -> Result<&str, KeyError> {
    if slot.len() != KEY_SLOT_LEN || slot[..KEY_SLOT_MAGIC.len()] != KEY_SLOT_MAGIC {
        return Err(KeyError::NotASlot);
    }
    let len = usize::from(u16::from_le_bytes([slot[16], slot[17]]));
    if len == 0 {
        return Err(KeyError::Unprovisioned);
    }
    let body = slot.get(HEADER..HEADER + len).ok_or(KeyError::Malformed)?;
    core::str::from_utf8(body).map_err(|_| KeyError::Malformed)
}

/// The audit PD's second key slot: the archive identity key (docs/access.md), written by
/// `make image` (`totebox image set-key --symbol totebox_identity_key`).
pub const IDENTITY_SLOT_SYMBOL: &str = "totebox_identity_key";

/// The audit PD's pairings slot: the initial pairing set (`access::PairingSet::to_bytes`),
/// written by `make image` from `pairings.yaml` (`totebox image set-pairings`).
pub const PAIRINGS_SLOT_SYMBOL: &str = "totebox_pairings";

/// Bytes of the pairings slot: the header and at most 64 pairings of about 130 bytes.
pub const PAIRINGS_SLOT_LEN: usize = 16 * 1024;

/// An empty pairings slot (the same header as a key slot, length 0).
pub const EMPTY_PAIRINGS_SLOT: [u8; PAIRINGS_SLOT_LEN] = {
    let mut s = [0u8; PAIRINGS_SLOT_LEN];
    let mut i = 0;
    while i < KEY_SLOT_MAGIC.len() {
        s[i] = KEY_SLOT_MAGIC[i];
        i += 1;
    }
    s
};

/// A pairings slot holding `bytes`.
pub fn encode_pairings_slot(bytes: &[u8]) -> Result<alloc::vec::Vec<u8>, KeyError> {
    if bytes.is_empty() || bytes.len() > PAIRINGS_SLOT_LEN - HEADER {
        return Err(KeyError::TooLong(bytes.len()));
    }
    let mut slot = EMPTY_PAIRINGS_SLOT.to_vec();
    slot[KEY_SLOT_MAGIC.len()..HEADER].copy_from_slice(&(bytes.len() as u16).to_le_bytes());
    slot[HEADER..HEADER + bytes.len()].copy_from_slice(bytes);
    Ok(slot)
}

/// The bytes a pairings slot holds.
pub fn slot_pairings(slot: &[u8]) -> Result<&[u8], KeyError> {
    if slot.len() != PAIRINGS_SLOT_LEN || slot[..KEY_SLOT_MAGIC.len()] != KEY_SLOT_MAGIC {
        return Err(KeyError::NotASlot);
    }
    let len = usize::from(u16::from_le_bytes([slot[16], slot[17]]));
    if len == 0 {
        return Err(KeyError::Unprovisioned);
    }
    slot.get(HEADER..HEADER + len).ok_or(KeyError::Malformed)
}

/// The checkpoint signer of `log` from its key string, refused unless the key is named
/// [`origin`]`(log)`: a ledger handed another tenant's key does not sign with it.
pub fn signer(log: &str, skey: &str) -> Result<Signer, KeyError> {
    let signer = Signer::from_skey(skey).map_err(KeyError::Key)?;
    let expected = origin(log);
    if signer.name() != expected {
        return Err(KeyError::WrongLog {
            expected,
            found: signer.name().into(),
        });
    }
    Ok(signer)
}

/// The signer of `log` a key slot holds.
pub fn slot_signer(log: &str, slot: &[u8]) -> Result<Signer, KeyError> {
    signer(log, slot_skey(slot)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn skey(log: &str, seed: u8) -> alloc::string::String {
        Signer::generate(&origin(log), &[seed; 32]).unwrap().skey()
    }

    #[test]
    fn slots_round_trip_and_refuse_what_is_not_a_key() {
        let k = skey("corporate", 1);
        let slot = encode_slot(&k).unwrap();
        assert_eq!(slot_skey(&slot), Ok(k.as_str()));
        assert_eq!(slot[..16], KEY_SLOT_MAGIC);
        assert!(slot[HEADER + k.len()..].iter().all(|&b| b == 0));
        let s = slot_signer("corporate", &slot).unwrap();
        assert_eq!(s.name(), "totebox-envelope-b/corporate");

        assert_eq!(slot_skey(&EMPTY_SLOT), Err(KeyError::Unprovisioned));
        assert_eq!(slot_skey(&[0; KEY_SLOT_LEN]), Err(KeyError::NotASlot));
        assert_eq!(slot_skey(&slot[..100]), Err(KeyError::NotASlot));
        let mut bad = slot;
        bad[16] = 0xff;
        bad[17] = 0xff;
        assert_eq!(slot_skey(&bad), Err(KeyError::Malformed));
        let mut bad = slot;
        bad[HEADER] = 0xff;
        assert_eq!(slot_skey(&bad), Err(KeyError::Malformed));
        assert!(matches!(encode_slot("not a key"), Err(KeyError::Key(_))));
        assert!(EMPTY_SLOT.iter().any(|&b| b != 0), "must land in .data");
    }

    #[test]
    fn a_key_for_another_log_is_refused() {
        let k = skey("personnel", 2);
        match signer("corporate", &k) {
            Err(KeyError::WrongLog { expected, found }) => {
                assert_eq!(expected, "totebox-envelope-b/corporate");
                assert_eq!(found, "totebox-envelope-b/personnel");
            }
            other => panic!("{other:?}"),
        }
        assert!(signer("personnel", &k).is_ok());
        assert!(KeyError::Unprovisioned
            .to_string()
            .contains("no signing key provisioned"));
    }
}
