//! `totebox log consistency OLD_CHECKPOINT DIR --vkey VKEY`: does the log exported in DIR extend
//! the log an earlier checkpoint committed to?
//!
//! Verifies OLD_CHECKPOINT's signature, verifies DIR whole ([`tlog::verify::verify_tree`]:
//! signature, every bundle and tile, the root; a missing bundle fails), then proves consistency
//! from the old tree to the new one (RFC 9162 §2.1.4) from DIR's hash tiles
//! ([`tlog::verify::verify_consistency_tiles`]) and verifies that proof against both signed
//! roots. Success means every entry the old checkpoint covered is still there, unchanged, in
//! the same order. Prints `consistent ORIGIN OLD_SIZE NEW_SIZE`.

use std::path::Path;

use base64::Engine;
use note::{Checkpoint, Note};
use tlog::verify::{verify_consistency_tiles, ConsistencyError};
use tlog::Storage;

use crate::dir::DirStorage;
use crate::{fsio, keys};

/// See the module documentation.
pub fn consistency(old: &Path, dir: &Path, vkey: &str) -> Result<(), String> {
    let verifier = keys::verifier_arg(vkey)?;
    let verifiers = [verifier];
    let old_bytes = fsio::read_file(old, fsio::MAX_NOTE)?;
    let note = Note::parse(&old_bytes).map_err(|e| format!("{}: {e}", old.display()))?;
    note.verify(&verifiers)
        .map_err(|e| format!("{}: {e}", old.display()))?;
    let cp1 = Checkpoint::parse(note.text()).map_err(|e| format!("{}: {e}", old.display()))?;

    let mut storage =
        DirStorage::open_existing(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut cp2 = Vec::new();
    if !storage
        .checkpoint(&mut cp2)
        .map_err(|e| format!("{}: {e}", dir.display()))?
    {
        return Err(format!("{}: no checkpoint", dir.display()));
    }
    let tree = tlog::verify::verify_tree(&mut storage, &cp2, &verifiers)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    if let Some(missing) = tree.first_missing_bundle {
        return Err(format!(
            "{}: {} missing ({}/{} entry bundles present): the log is not there whole",
            dir.display(),
            missing.path(),
            tree.bundles,
            tree.bundles_expected
        ));
    }
    if tree.origin != cp1.origin() {
        return Err(format!(
            "origins differ: `{}` (old) and `{}` ({})",
            cp1.origin(),
            tree.origin,
            dir.display()
        ));
    }
    let (size1, size2) = (cp1.size(), tree.size);
    let b64 = |h: &[u8]| base64::engine::general_purpose::STANDARD.encode(h);
    verify_consistency_tiles(&mut storage, size1, cp1.root(), size2, &tree.root).map_err(|e| {
        let both = format!(
            "{} (size {size1}, root {}) and {} (size {size2}, root {})",
            old.display(),
            b64(cp1.root()),
            dir.display(),
            b64(&tree.root)
        );
        match e {
            ConsistencyError::Shrunk => format!("the log shrank: {both}"),
            e => format!(
                "{} is not consistent with {}: {both}: {e}",
                dir.display(),
                old.display()
            ),
        }
    })?;
    println!("consistent {} {size1} {size2}", tree.origin);
    Ok(())
}
