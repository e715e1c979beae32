//! The archive's identity key.

use alloc::string::String;

use note::{Signer, Verifier};

use crate::pairing::{parse_note, verify_note};
use crate::text::{self, Lines};
use crate::Refusal;

/// The first line of an identity proof.
pub const IDENTITY_KIND: &str = "totebox-identity/v1";

/// The archive's Ed25519 identity keypair (held by the audit PD; provisioned once, travels
/// with the boot image, so a copy of the archive is the same archive and any other archive
/// has another key). Requests and capabilities name its verifier key; its private key signs
/// only identity proofs ([`Identity::prove`]), so a client can check it talks to the archive
/// that holds it.
#[derive(Debug, Clone)]
pub struct Identity {
    signer: Signer,
}

impl Identity {
    /// The identity from its signer key string (`PRIVATE+KEY+...`, type 0x01).
    pub fn from_skey(skey: &str) -> Result<Identity, note::Error> {
        Ok(Identity {
            signer: Signer::from_skey(skey)?,
        })
    }

    /// From a signer (tests, provisioning).
    pub fn from_signer(signer: Signer) -> Identity {
        Identity { signer }
    }

    /// The verifier key every request and capability names (`archive <vkey>`).
    pub fn verifier(&self) -> Verifier {
        self.signer.verifier()
    }

    /// A `totebox-identity/v1` note answering a client's `challenge`:
    ///
    /// ```text
    /// totebox-identity/v1
    /// archive <vkey>
    /// challenge <32 hex>
    /// time <unix seconds>
    /// ```
    pub fn prove(&self, challenge: [u8; 16], time: u64) -> Result<String, Refusal> {
        let text = alloc::format!(
            "{IDENTITY_KIND}\narchive {}\nchallenge {}\ntime {time}\n",
            self.verifier().vkey(),
            text::hex(&challenge)
        );
        self.signer.sign(&text).map_err(|_| Refusal::Malformed)
    }
}

/// Checks an identity proof from `archive` for `challenge`; returns the archive's time in it
/// (what a client may set its request times by).
pub fn verify_identity_proof(
    archive: &Verifier,
    proof: &[u8],
    challenge: [u8; 16],
) -> Result<u64, Refusal> {
    let n = parse_note(proof)?;
    let mut l = Lines::new(n.text(), IDENTITY_KIND)?;
    let named = text::vkey(l.field("archive")?)?;
    let c = text::nonce(l.field("challenge")?)?;
    let time = text::decimal(l.field("time")?)?;
    l.end()?;
    if &named != archive {
        return Err(Refusal::WrongArchive);
    }
    verify_note(proof, archive)?;
    if c != challenge {
        return Err(Refusal::Replayed);
    }
    Ok(time)
}
