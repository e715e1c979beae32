//! Signing on the host (feature `std`): what `totebox client --skey` and the benchmarks put in
//! each request ([`HostSigner`]), dated by the host clock ([`now`]) with a fresh random nonce
//! from the OS ([`random16`]).

use std::string::{String, ToString};
use std::time::{SystemTime, UNIX_EPOCH};
use std::vec::Vec;

use note::{Signer, Verifier};
use protocol::client::Authorizer;
use protocol::Op;

use crate::{Action, Class, SignedRequest};

/// The host clock, Unix seconds (what requests and capabilities are dated with).
pub fn now() -> Result<u64, String> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| "the host clock is before 1970".to_string())
}

/// 16 random bytes from the OS (a nonce).
pub fn random16() -> Result<[u8; 16], String> {
    let mut n = [0u8; 16];
    getrandom::fill(&mut n).map_err(|e| std::format!("no randomness from the OS: {e}"))?;
    Ok(n)
}

/// Signs every request a [`protocol::client::Client`] sends ([`Authorizer`]) with one key for
/// one archive: a [`SignedRequest`] dated [`now`], with a fresh [`random16`] nonce, carrying
/// the capability (if any) on content reads only, the only requests that use one.
#[derive(Clone)]
pub struct HostSigner {
    signer: Signer,
    archive: Verifier,
    capability: Vec<u8>,
}

impl core::fmt::Debug for HostSigner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HostSigner")
            .field("key", &self.signer.verifier().vkey())
            .field("archive", &self.archive.vkey())
            .finish_non_exhaustive()
    }
}

impl HostSigner {
    /// Signs with `signer` for `archive` (its identity verifier key), attaching the
    /// capability note `capability` (empty: none) to content reads.
    pub fn new(signer: Signer, archive: Verifier, capability: Vec<u8>) -> HostSigner {
        HostSigner {
            signer,
            archive,
            capability,
        }
    }

    /// The signing key's verifier.
    pub fn verifier(&self) -> Verifier {
        self.signer.verifier()
    }

    /// The archive signed for.
    pub fn archive(&self) -> &Verifier {
        &self.archive
    }
}

impl Authorizer for HostSigner {
    fn authorize(&mut self, tenant: &str, op: &Op<'_>) -> Result<Vec<u8>, String> {
        let action = Action::from_op(op)
            .map_err(|e| e.to_string())?
            .ok_or("a ping is not signed")?;
        let content = matches!(action.class(), Ok(Class::Content { .. }));
        let cap: &[u8] = if content { &self.capability } else { &[] };
        SignedRequest::sign(
            &self.signer,
            &self.archive,
            tenant,
            &action,
            now()?,
            random16()?,
            cap,
        )
        .map_err(|e| e.to_string())
    }
}
