//! Per-image checkpoint keys and log origins.
//!
//! **Placeholder provisioning.** Each log's Ed25519 seed is `SHA-256(DOMAIN || image seed ||
//! log name)`, where the image seed is fixed when the image is built (`TOTEBOX_IMAGE_SEED`, 64
//! hex digits, compiled into the ledger and audit ELFs; a fixed development seed otherwise).
//! Keys are therefore deterministic per image, which is what tests and `make qemu` need, but
//! every PD built with the seed could derive every tenant's key. A real deployment provisions
//! each tenant's key into a memory region mapped only into that tenant's ledger PD (sealed per
//! device, never in an ELF shared by tenants); that belongs to the access-control issue.

use note::{Signer, Verifier};
use sha2::{Digest, Sha256};

/// Domain separation for the seed derivation.
pub const DOMAIN: &[u8] = b"totebox-envelope-b/checkpoint-key/v0\0";

/// The development image seed, used when the build sets none.
pub const DEV_IMAGE_SEED: [u8; 32] = *b"totebox-envelope-b dev image  v0";

/// The image seed from a 64-hex-digit string (as `TOTEBOX_IMAGE_SEED` gives it).
pub const fn parse_seed(hex: &str) -> Option<[u8; 32]> {
    let b = hex.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        let (Some(hi), Some(lo)) = (nibble(b[2 * i]), nibble(b[2 * i + 1])) else {
            return None;
        };
        out[i] = (hi << 4) | lo;
        i += 1;
    }
    Some(out)
}

const fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The image seed this build was given (`TOTEBOX_IMAGE_SEED` at compile time), or the
/// development seed. A malformed value is a build error.
pub const IMAGE_SEED: [u8; 32] = match option_env!("TOTEBOX_IMAGE_SEED") {
    None => DEV_IMAGE_SEED,
    Some(hex) => match parse_seed(hex) {
        Some(s) => s,
        None => panic!("TOTEBOX_IMAGE_SEED must be 64 hex digits"),
    },
};

/// The origin (and key name) of a log: `totebox-envelope-b/<log>` (`<log>` is a tenant or
/// `audit`).
pub fn origin(log: &str) -> alloc::string::String {
    alloc::format!("totebox-envelope-b/{log}")
}

/// The checkpoint signer of `log` in the image with `image_seed`.
pub fn signer(image_seed: &[u8; 32], log: &str) -> Result<Signer, note::Error> {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(image_seed);
    h.update(log.as_bytes());
    let seed: [u8; 32] = h.finalize().into();
    Signer::generate(&origin(log), &seed)
}

/// Its verifier (what a client checks checkpoints with).
pub fn verifier(image_seed: &[u8; 32], log: &str) -> Result<Verifier, note::Error> {
    signer(image_seed, log).map(|s| s.verifier())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_and_keys_differ_per_log_and_image() {
        assert_eq!(parse_seed(&"00".repeat(32)), Some([0; 32]));
        assert_eq!(parse_seed(&"aB".repeat(32)), Some([0xab; 32]));
        assert_eq!(parse_seed("00"), None);
        assert_eq!(parse_seed(&"zz".repeat(32)), None);
        let a = verifier(&DEV_IMAGE_SEED, "corporate").unwrap().vkey();
        let b = verifier(&DEV_IMAGE_SEED, "personnel").unwrap().vkey();
        let c = verifier(&[1; 32], "corporate").unwrap().vkey();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, verifier(&DEV_IMAGE_SEED, "corporate").unwrap().vkey());
        assert!(a.starts_with("totebox-envelope-b/corporate+"));
    }
}
