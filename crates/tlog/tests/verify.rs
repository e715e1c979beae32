//! `tlog::verify`: what `verify_tree` reports it checked (hash tiles, bundles present out of
//! expected), and `verify_consistency_tiles` on honest, rolled-back, forked and tampered trees.

// Test helpers outside #[test] functions: a panic is how a test fails (clippy.toml allows it
// inside tests only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{new_log, signer};
use tlog::verify::{verify_consistency_tiles, ConsistencyError};
use tlog::{verify_tree, Hash, Log, MemStorage, ProofError, Storage};

fn entry(i: u64) -> Vec<u8> {
    format!("entry {i}").into_bytes()
}

fn verify(storage: &mut MemStorage) -> tlog::VerifiedTree {
    let cp = storage.latest_checkpoint().unwrap().to_vec();
    verify_tree(storage, &cp, &[signer().verifier()]).unwrap()
}

/// A log with a checkpoint at each of `sizes` (increasing); the roots at those sizes.
fn log_with(sizes: &[u64], fork_at: Option<u64>) -> (Log<MemStorage>, Vec<(u64, Hash)>) {
    let mut log = new_log();
    let mut roots = Vec::new();
    for &size in sizes {
        while log.size() < size {
            let i = log.size();
            let e = if Some(i) == fork_at {
                b"the other history".to_vec()
            } else {
                entry(i)
            };
            log.append(&e).unwrap();
        }
        log.checkpoint().unwrap();
        roots.push((size, log.committed_root()));
    }
    (log, roots)
}

#[test]
fn verify_tree_counts_what_it_checked() {
    let (log, _) = log_with(&[600], None);
    let mut s = log.into_storage();
    let v = verify(&mut s);
    // Level 0: two full tiles and a partial (88); level 1: a partial of width 2.
    assert_eq!((v.hash_tiles, v.bundles, v.bundles_expected), (4, 3, 3));
    assert_eq!(v.first_missing_bundle, None);

    // Without the middle bundle the tree still verifies (bundles are optional), but says so.
    s.remove("tile/entries/001").unwrap();
    let v = verify(&mut s);
    assert_eq!((v.hash_tiles, v.bundles, v.bundles_expected), (4, 2, 3));
    assert_eq!(
        v.first_missing_bundle
            .map(|t| t.path().as_str().to_string()),
        Some("tile/entries/001".to_string())
    );
    // Without any: the first one is named, the partial one is named as the size calls for.
    s.remove("tile/entries/000").unwrap();
    s.remove("tile/entries/002.p/88").unwrap();
    let v = verify(&mut s);
    assert_eq!((v.bundles, v.bundles_expected), (0, 3));
    assert_eq!(
        v.first_missing_bundle.unwrap().path().as_str(),
        "tile/entries/000"
    );

    // The empty tree: nothing expected, nothing read.
    let mut log = new_log();
    log.checkpoint().unwrap();
    let v = verify(&mut log.into_storage());
    assert_eq!((v.hash_tiles, v.bundles, v.bundles_expected), (0, 0, 0));
}

#[test]
fn an_honest_log_is_consistent_at_every_pair_of_checkpoints() {
    let sizes = [
        1, 2, 3, 7, 255, 256, 257, 511, 512, 600, 65_536, 65_537, 70_000,
    ];
    let (log, roots) = log_with(&sizes, None);
    let mut s = log.into_storage();
    // The newest tree's tiles prove every older checkpoint it extends.
    let (n, rn) = *roots.last().unwrap();
    for &(m, rm) in &roots {
        verify_consistency_tiles(&mut s, m, &rm, n, &rn).unwrap();
    }
    // And each tree proves the ones before it, from its own (possibly partial) tiles.
    for (j, &(b, rb)) in roots.iter().enumerate() {
        for &(a, ra) in &roots[..j] {
            verify_consistency_tiles(&mut s, a, &ra, b, &rb)
                .unwrap_or_else(|e| panic!("{a} -> {b}: {e}"));
        }
    }
    // Size 0 is extended by everything; equal sizes need equal roots.
    verify_consistency_tiles(&mut s, 0, &tlog::EMPTY_ROOT, n, &rn).unwrap();
    verify_consistency_tiles(&mut s, n, &rn, n, &rn).unwrap();
}

#[test]
fn rollback_and_forks_are_refused() {
    let sizes = [10, 300, 1000];
    let (honest, roots) = log_with(&sizes, None);
    let (forked, fork_roots) = log_with(&sizes, Some(5));
    let mut h = honest.into_storage();
    let mut f = forked.into_storage();
    let (n, rn) = roots[2];

    // Rollback: the "newer" checkpoint is smaller.
    let (m, rm) = roots[1];
    assert_eq!(
        verify_consistency_tiles(&mut h, n, &rn, m, &rm),
        Err(ConsistencyError::Shrunk)
    );
    // Same size, another root.
    assert_eq!(
        verify_consistency_tiles(&mut f, n, &rn, n, &fork_roots[2].1),
        Err(ConsistencyError::Inconsistent(ProofError::RootMismatch))
    );
    // Larger, but another history: a fork after entry 5, seen from both sides.
    for &(a, ra) in &roots[..2] {
        let (b, rb) = fork_roots[2];
        assert!(
            matches!(
                verify_consistency_tiles(&mut f, a, &ra, b, &rb),
                Err(ConsistencyError::Inconsistent(_))
            ),
            "{a} -> {b}"
        );
    }
    // Both logs agree on their first 5 entries: a checkpoint there is consistent with both.
    let (early, early_roots) = log_with(&[5], None);
    drop(early);
    let (e, re) = early_roots[0];
    verify_consistency_tiles(&mut f, e, &re, fork_roots[2].0, &fork_roots[2].1).unwrap();
    verify_consistency_tiles(&mut h, e, &re, n, &rn).unwrap();
    // A bogus "empty" checkpoint (size 0, another root) is refused.
    assert!(verify_consistency_tiles(&mut h, 0, &rn, n, &rn).is_err());
}

#[test]
fn tiles_that_are_not_the_trees_prove_nothing() {
    let (log, roots) = log_with(&[300, 1000], None);
    let mut s = log.into_storage();
    let ((m, rm), (n, rn)) = (roots[0], roots[1]);
    // A changed byte in a tile the root needs: the tiles are not the tree's.
    let path = "tile/0/003.p/232";
    let mut t = s.objects()[path].clone();
    t[0] ^= 1;
    s.tamper(Some(path), &t);
    assert_eq!(
        verify_consistency_tiles(&mut s, m, &rm, n, &rn),
        Err(ConsistencyError::TilesNotOfTree)
    );
    // A missing one is named.
    s.remove(path).unwrap();
    match verify_consistency_tiles(&mut s, m, &rm, n, &rn) {
        Err(ConsistencyError::Tiles(e)) => assert_eq!(e.object().to_string(), path),
        other => panic!("{other:?}"),
    }
    // A truncated one is a format error on that tile, not a panic.
    s.put(path, &[0u8; 31]).unwrap();
    assert!(matches!(
        verify_consistency_tiles(&mut s, m, &rm, n, &rn),
        Err(ConsistencyError::Tiles(_))
    ));
}
