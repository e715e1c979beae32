//! `totebox log consistency OLD_CHECKPOINT DIR --vkey VKEY`: does the log exported in DIR extend
//! the log an earlier checkpoint committed to?
//!
//! Verifies OLD_CHECKPOINT's signature, verifies DIR whole ([`tlog::verify::verify_tree`]:
//! signature, every bundle and tile, the root), then proves consistency from the old tree to the
//! new one (RFC 9162 §2.1.4) over the leaf hashes of DIR's entry bundles and verifies that proof
//! against both signed roots. Success means every entry the old checkpoint covered is still
//! there, unchanged, in the same order. Prints `consistent ORIGIN OLD_SIZE NEW_SIZE`.

use std::path::Path;

use note::{Checkpoint, Note};
use tlog::hash::{leaf_hash, Hash};
use tlog::tile::{bundle_entries, entry_bundles_for_size};
use tlog::Storage;

use crate::dir::DirStorage;
use crate::keys;

/// See the module documentation.
pub fn consistency(old: &Path, dir: &Path, vkey: &str) -> Result<(), String> {
    let verifier = keys::verifier_arg(vkey)?;
    let verifiers = [verifier];
    let old_bytes = std::fs::read(old).map_err(|e| format!("{}: {e}", old.display()))?;
    let note = Note::parse(&old_bytes).map_err(|e| format!("{}: {e}", old.display()))?;
    note.verify(&verifiers)
        .map_err(|e| format!("{}: {e}", old.display()))?;
    let cp1 = Checkpoint::parse(note.text()).map_err(|e| format!("{}: {e}", old.display()))?;

    let mut storage = DirStorage::open(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut cp2 = Vec::new();
    if !storage
        .checkpoint(&mut cp2)
        .map_err(|e| format!("{}: {e}", dir.display()))?
    {
        return Err(format!("{}: no checkpoint", dir.display()));
    }
    let tree = tlog::verify::verify_tree(&mut storage, &cp2, &verifiers)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    if tree.origin != cp1.origin() {
        return Err(format!(
            "origins differ: `{}` (old) and `{}` ({})",
            cp1.origin(),
            tree.origin,
            dir.display()
        ));
    }
    let (size1, size2) = (cp1.size(), tree.size);
    if size1 > size2 {
        return Err(format!(
            "{}: the log shrank from {size1} to {size2} entries",
            dir.display()
        ));
    }
    if size1 > 0 {
        let leaves = leaf_hashes(&mut storage, size2)?;
        let proof = tlog::proof::prove_consistency(&mut leaves.as_slice(), size1, size2)
            .map_err(|e| format!("consistency proof: {e}"))?;
        tlog::proof::verify_consistency(size1, size2, &proof, cp1.root(), &tree.root).map_err(
            |e| {
                format!(
                    "{} is not consistent with {}: {e}",
                    dir.display(),
                    old.display()
                )
            },
        )?;
    }
    println!("consistent {} {size1} {size2}", tree.origin);
    Ok(())
}

/// The leaf hashes of the first `size` entries, from the entry bundles (already verified).
fn leaf_hashes(storage: &mut DirStorage, size: u64) -> Result<Vec<Hash>, String> {
    let mut leaves = Vec::new();
    let mut buf = Vec::new();
    for tile in entry_bundles_for_size(size) {
        let path = tile.path();
        let found = storage
            .get(path.as_str(), &mut buf)
            .map_err(|e| format!("{path}: {e}"))?;
        if !found {
            return Err(format!("{path}: missing"));
        }
        for entry in bundle_entries(&buf).take(usize::from(tile.width())) {
            let entry = entry.map_err(|e| format!("{path}: {e}"))?;
            leaves.push(leaf_hash(entry));
        }
    }
    if leaves.len() as u64 != size {
        return Err(format!("{} entries found, {size} expected", leaves.len()));
    }
    Ok(leaves)
}
