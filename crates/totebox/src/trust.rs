//! Client-side rollback and fork detection: the client is the last line of defence against a
//! box whose disk was rolled back or whose log forked, so it remembers the latest checkpoint it
//! verified for each log and accepts a newer one only with proof that it extends it (as the Go
//! checksum-database client does with its `latest` note).
//!
//! # The state directory
//!
//! `--state DIR`, else `$TOTEBOX_STATE`, else `$XDG_STATE_HOME/totebox` (if absolute), else
//! `$HOME/.local/state/totebox`. It holds one file per log, named
//! `<origin, sanitised>.<32 hex digits>`: the digits are the first 16 bytes of
//! SHA-256(0x00 || verifier key string) (tlog's leaf hash, used here as a plain
//! domain-separated hash). The log's identity is its origin and key, there being no archive
//! identity yet, so a box provisioned with a new key is a new log, never a fork of the old.
//! The file holds the checkpoint note exactly as the box signed it; it is re-verified with
//! the log's key whenever it is read (a damaged or foreign file is an error, never ignored).
//! Writes are a new temporary file, synced, renamed over the old one, the directory synced;
//! a `<file>.lock` taken with an exclusive lock serialises clients checking the same log.
//!
//! # The rule
//!
//! For a new checkpoint (signature verified with the log's key, origin the key's name):
//! nothing remembered → remember it; same size → the roots must be equal; larger → an RFC 9162
//! consistency proof from the remembered tree, built from the box's public hash tiles
//! ([`tlog::verify::verify_consistency_tiles`]), must verify; smaller → rollback. On success
//! the newer one is remembered. Every failure names both checkpoints (size and root).

use std::path::{Path, PathBuf};

use base64::Engine;
use note::{Checkpoint, Note, Verifier};
use tlog::verify::ConsistencyError;
use tlog::ObjectReader;

use crate::fsio;

/// Where the remembered checkpoints live.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// The state directory: `arg` (`--state`), else the environment (module docs). Created
    /// when first written to.
    pub fn locate(arg: Option<&Path>) -> Result<StateDir, String> {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let dir = arg
            .map(Path::to_path_buf)
            .or_else(|| env("TOTEBOX_STATE"))
            .or_else(|| {
                env("XDG_STATE_HOME")
                    .filter(|p| p.is_absolute())
                    .map(|p| p.join("totebox"))
            })
            .or_else(|| env("HOME").map(|h| h.join(".local/state/totebox")))
            .ok_or(
                "no state directory for remembered checkpoints: pass --state DIR or set \
                 TOTEBOX_STATE (or HOME)",
            )?;
        Ok(StateDir { dir })
    }

    /// The state file of the log `verifier` verifies.
    pub fn file(&self, verifier: &Verifier) -> PathBuf {
        let origin: String = verifier
            .name()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        let id = tlog::leaf_hash(verifier.vkey().as_bytes());
        let hex: String = id[..16].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{origin}.{hex}"))
    }

    fn root(&self) -> Result<PathBuf, String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        std::fs::canonicalize(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))
    }

    /// Takes the log's lock (released when the guard drops, or when the process dies).
    fn lock(&self, verifier: &Verifier) -> Result<std::fs::File, String> {
        self.root()?;
        let mut path = self.file(verifier).into_os_string();
        path.push(".lock");
        let path = PathBuf::from(path);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        f.lock().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(f)
    }

    /// The remembered checkpoint of the log `verifier` verifies, re-verified; `None` if none.
    pub fn load(&self, verifier: &Verifier) -> Result<Option<Seen>, String> {
        let file = self.file(verifier);
        let root = self.root()?;
        let name = file.file_name().map(Path::new).unwrap_or(Path::new(""));
        let bytes = fsio::read_in(&root, name, fsio::MAX_NOTE)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let cp = verified(&bytes, verifier).map_err(|e| {
            format!(
                "{}: the remembered checkpoint does not verify ({e}); it is evidence: move it \
                 aside only if you know why it changed",
                file.display()
            )
        })?;
        Ok(Some(Seen {
            size: cp.size(),
            root: *cp.root(),
            file,
        }))
    }

    fn store(&self, verifier: &Verifier, note: &[u8]) -> Result<(), String> {
        self.root()?;
        fsio::write_new(&self.file(verifier), note, 0o644)
    }
}

/// A remembered checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Its tree size.
    pub size: u64,
    /// Its root hash.
    pub root: tlog::Hash,
    /// Where it is remembered.
    pub file: PathBuf,
}

/// `size N, root B64`: how a checkpoint is named in messages.
pub fn describe(size: u64, root: &[u8]) -> String {
    format!(
        "size {size}, root {}",
        base64::engine::general_purpose::STANDARD.encode(root)
    )
}

/// The checkpoint in `note`, if it is at most [`fsio::MAX_NOTE`] bytes, a signed note that
/// verifies with `verifier`, and a checkpoint of the log `verifier` names.
pub fn verified(note: &[u8], verifier: &Verifier) -> Result<Checkpoint, String> {
    if note.len() as u64 > fsio::MAX_NOTE {
        return Err(format!(
            "checkpoint of {} bytes, over the {}-byte limit of a signed note",
            note.len(),
            fsio::MAX_NOTE
        ));
    }
    let parsed = Note::parse(note).map_err(|e| format!("checkpoint: {e}"))?;
    parsed
        .verify(std::slice::from_ref(verifier))
        .map_err(|e| format!("checkpoint not signed by the log's key: {e}"))?;
    let cp = Checkpoint::parse(parsed.text()).map_err(|e| format!("malformed checkpoint: {e}"))?;
    if cp.origin() != verifier.name() {
        return Err(format!(
            "checkpoint is for {}, not {}",
            cp.origin(),
            verifier.name()
        ));
    }
    Ok(cp)
}

/// Accepts `note` as the log's latest checkpoint only if it extends the one remembered for it
/// (module docs), reading hash tiles of the newer tree from `tiles` when a proof is needed;
/// then remembers it. Returns the checkpoint.
pub fn advance<R: ObjectReader>(
    state: &StateDir,
    verifier: &Verifier,
    note: &[u8],
    tiles: &mut R,
) -> Result<Checkpoint, String> {
    let cp = verified(note, verifier)?;
    let _lock = state.lock(verifier)?;
    let Some(seen) = state.load(verifier)? else {
        state.store(verifier, note)?;
        return Ok(cp);
    };
    let new = describe(cp.size(), cp.root());
    let old = describe(seen.size, &seen.root);
    let origin = cp.origin();
    let file = seen.file.display();
    tlog::verify::verify_consistency_tiles(tiles, seen.size, &seen.root, cp.size(), cp.root())
        .map_err(|e| match e {
            ConsistencyError::Shrunk => format!(
                "rollback: the box's checkpoint of {origin} ({new}) is older than the one \
                 verified before ({old}, remembered in {file})"
            ),
            ConsistencyError::Inconsistent(e) => format!(
                "fork: the box's checkpoint of {origin} ({new}) does not extend the one verified \
                 before ({old}, remembered in {file}): {e}"
            ),
            e => format!(
                "cannot check that the box's checkpoint of {origin} ({new}) extends the one \
                 verified before ({old}, remembered in {file}): {e}"
            ),
        })?;
    if cp.size() > seen.size {
        state.store(verifier, note)?;
    }
    Ok(cp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_is_per_origin_and_key() {
        let s = StateDir::locate(Some(Path::new("/x"))).unwrap();
        let a = note::Signer::generate("example.com/log", &[1; 32]).unwrap();
        let b = note::Signer::generate("example.com/log", &[2; 32]).unwrap();
        let c = note::Signer::generate("other/log", &[1; 32]).unwrap();
        let fa = s.file(&a.verifier());
        assert!(fa.starts_with("/x"));
        let name = fa.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("example.com_log."), "{name}");
        assert_eq!(name.len(), "example.com_log.".len() + 32);
        assert_ne!(fa, s.file(&b.verifier()));
        assert_ne!(fa, s.file(&c.verifier()));
        assert_eq!(fa, s.file(&a.verifier()));
    }
}
