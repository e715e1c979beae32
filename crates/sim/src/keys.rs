//! The signing keys the simulated box signs with: each tenant's and audit's, from a key
//! directory (what `make image` provisions) or from a seed (tests).

use super::*;

/// The signer key strings of the logs the box signs: each tenant's and `audit`'s; and, when
/// the archive is provisioned ([`Keys::with_access`]), its identity key and initial pairing
/// set (what audit.elf's identity and pairings slots hold).
#[derive(Clone)]
pub struct Keys(BTreeMap<String, String>, Option<(String, Vec<u8>)>);

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a signer key.
        f.debug_set().entries(self.0.keys()).finish()?;
        f.write_str(if self.1.is_some() {
            " provisioned"
        } else {
            " not provisioned"
        })
    }
}

/// Every log that has a signing key: the tenants, then audit.
pub fn logs() -> impl Iterator<Item = &'static str> {
    interface::TENANTS
        .iter()
        .copied()
        .chain([interface::AUDIT_NAMESPACE])
}

/// The byte that tells one log's test key from another's in [`Keys::from_seed`]. Audit's is
/// fixed at 3 (its position in the committed three-tenant description) and tenants from the
/// fourth on skip it, so a description with more tenants keeps every earlier log's test key:
/// committed disk fixtures signed with them (tests/tests/audit_journal.rs) stay valid, and no
/// two logs share a key.
fn test_key_index(log: &str, position: usize) -> u8 {
    const AUDIT_INDEX: usize = 3;
    let index = if log == interface::AUDIT_NAMESPACE {
        AUDIT_INDEX
    } else if position >= AUDIT_INDEX {
        position + 1
    } else {
        position
    };
    index as u8
}

impl Keys {
    /// The keys in `dir` (`<log>.skey`, first line: the signer key string, as `totebox keygen`
    /// prints it); a log without one gets a fresh key from the OS's randomness, written as
    /// `<log>.skey` (mode 0600) and `<log>.vkey`. What `make image` provisions and clients
    /// verify with are the same files.
    pub fn load_or_generate(dir: &std::path::Path) -> Result<Keys, SimError> {
        let err =
            |p: &std::path::Path, e: &dyn fmt::Display| SimError(format!("{}: {e}", p.display()));
        std::fs::create_dir_all(dir).map_err(|e| err(dir, &e))?;
        let mut keys = BTreeMap::new();
        for log in logs() {
            let path = dir.join(format!("{log}.skey"));
            let skey = if path.exists() {
                let text = std::fs::read_to_string(&path).map_err(|e| err(&path, &e))?;
                text.lines().next().unwrap_or("").trim_end().to_string()
            } else {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| err(&path, &e))?;
                let signer = note::Signer::generate(&interface::keys::origin(log), &seed)
                    .map_err(|e| err(&path, &e))?;
                write_key(&path, &signer.skey(), 0o600)?;
                let vpath = dir.join(format!("{log}.vkey"));
                write_key(&vpath, &signer.verifier().vkey(), 0o644)?;
                signer.skey()
            };
            interface::keys::signer(log, &skey).map_err(|e| err(&path, &e))?;
            keys.insert(log.to_string(), skey);
        }
        Ok(Keys(keys, None))
    }

    /// Deterministic keys from `seed` (tests only: anyone knowing the seed has every key).
    pub fn from_seed(seed: u8) -> Keys {
        let mut keys = BTreeMap::new();
        for (i, log) in logs().enumerate() {
            let s = [seed, test_key_index(log, i), 0x5a, 0xa5].repeat(8);
            let mut bytes = [0u8; 32];
            bytes.copy_from_slice(&s);
            if let Ok(signer) = note::Signer::generate(&interface::keys::origin(log), &bytes) {
                keys.insert(log.to_string(), signer.skey());
            }
        }
        Keys(keys, None)
    }

    /// These keys with `log`'s signer key string replaced by `skey`, or removed when `None`
    /// (tests of a PD that cannot start: a missing key, or another log's).
    pub fn with_key(mut self, log: &str, skey: Option<String>) -> Keys {
        match skey {
            Some(k) => self.0.insert(log.to_string(), k),
            None => self.0.remove(log),
        };
        self
    }

    /// These keys with the archive provisioned: the identity signer key string and the
    /// initial pairing set (`access::PairingSet::to_bytes`), as `make image` would write them
    /// into audit.elf's slots. The audit PD then enforces (`audit_pd::Access::Enforce`);
    /// without them the archive is not provisioned and access control is off
    /// (`audit_pd::Access::Open`). The simulator binary never provisions yet.
    pub fn with_access(mut self, identity: String, pairings: Vec<u8>) -> Keys {
        self.1 = Some((identity, pairings));
        self
    }

    /// The identity key string and initial pairing set, if provisioned.
    pub fn access(&self) -> Option<(&str, &[u8])> {
        self.1.as_ref().map(|(i, p)| (i.as_str(), p.as_slice()))
    }

    /// The signer key string of `log`.
    pub fn skey(&self, log: &str) -> Option<&str> {
        self.0.get(log).map(String::as_str)
    }

    /// The verifier of `log`'s checkpoints.
    pub fn verifier(&self, log: &str) -> Option<note::Verifier> {
        let skey = self.skey(log)?;
        note::Signer::from_skey(skey).ok().map(|s| s.verifier())
    }
}

pub(crate) fn write_key(path: &std::path::Path, key: &str, mode: u32) -> Result<(), SimError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| SimError(format!("{}: {e}", path.display())))?;
    writeln!(f, "{key}").map_err(|e| SimError(format!("{}: {e}", path.display())))
}
