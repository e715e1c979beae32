//! Differential tests against `tlog_tiles` 0.2 (Cloudflare's Rust port of Go's
//! golang.org/x/mod/sumdb/tlog) and `signed_note` 0.2: the same entries must give the same
//! tile paths and bytes, roots, inclusion and consistency proofs, and checkpoints signed on
//! either side must verify on the other.
//!
//! `tlog_tiles` names tiles the sumdb way, `tile/<H>/<L>/<N>` with the height in the path and
//! `data` for record tiles; c2sp.org/tlog-tiles drops the height (always 8) and says
//! `entries`. `tlog_tiles` has no entry bundle encoding, so bundles are checked against the
//! spec's encoding written out here independently.

// Test helpers outside #[test] functions: a panic is how a test fails (clippy.toml allows it
// inside tests only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::cell::RefCell;

use common::{new_log, signer, Rng, ORIGIN};
use signed_note::{Note, StandardSigner, StandardVerifier, VerifierList};
use tlog::tile::{parse_tile_path, tiles_for_size};
use tlog::{verify_tree, Hash, Log, MemStorage, Tile, TileKind};
use tlog_tiles::{HashReader, Tile as GoTile};

/// Go-style hash storage: every stored hash, indexed by `stored_hash_index`.
#[derive(Default)]
struct GoTree {
    hashes: RefCell<Vec<tlog_tiles::Hash>>,
}

impl HashReader for GoTree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        let h = self.hashes.borrow();
        indexes
            .iter()
            .map(|&i| {
                h.get(i as usize)
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

impl GoTree {
    fn append(&self, n: u64, entry: &[u8]) {
        let new = tlog_tiles::stored_hashes(n, entry, self).unwrap();
        self.hashes.borrow_mut().extend(new);
    }
}

fn go_tile(t: &Tile) -> GoTile {
    match t.kind() {
        TileKind::Hashes(l) => GoTile::new(8, l, t.index(), u32::from(t.width()), false),
        TileKind::Entries => GoTile::new(8, 0, t.index(), u32::from(t.width()), true),
    }
}

/// `tile/8/<L>/...` → `tile/<L>/...`, `tile/8/data/...` → `tile/entries/...`.
fn c2sp_path(go_path: &str) -> String {
    let rest = go_path.strip_prefix("tile/8/").unwrap();
    match rest.strip_prefix("data/") {
        Some(r) => format!("tile/entries/{r}"),
        None => format!("tile/{rest}"),
    }
}

fn bundle(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Vec::new();
    for e in entries {
        b.push((e.len() >> 8) as u8);
        b.push(e.len() as u8);
        b.extend_from_slice(e);
    }
    b
}

fn h(x: &tlog_tiles::Hash) -> Hash {
    x.0
}

#[test]
fn paths_match() {
    let mut rng = Rng(5);
    for _ in 0..20_000 {
        let digits = rng.below(17) as u32;
        let n = rng.next() % 10u64.pow(digits).max(1);
        let w = 1 + rng.below(256) as u16;
        let level = rng.below(4) as u8;
        // Keep the tile's first leaf within u64 (what `Tile::new` allows).
        let n = n.min(u64::MAX >> (8 * (u32::from(level) + 1)));
        for kind in [TileKind::Hashes(level), TileKind::Entries] {
            let ours = Tile::new(kind, n, w).unwrap();
            let theirs = go_tile(&ours);
            assert_eq!(ours.path().as_str(), c2sp_path(&theirs.path()));
            assert_eq!(parse_tile_path(ours.path().as_str()), Ok(ours));
            assert_eq!(GoTile::from_path(&theirs.path()).unwrap(), theirs);
        }
    }
}

#[test]
fn trees_match() {
    let mut rng = Rng(42);
    let go = GoTree::default();
    let mut log = new_log();
    let mut entries: Vec<Vec<u8>> = Vec::new();
    let mut checkpoints: Vec<(u64, Hash)> = vec![(0, tlog::EMPTY_ROOT)];
    let target = 70_000 + rng.below(2_000);
    while (entries.len() as u64) < target {
        let batch = match rng.below(5) {
            0 => rng.below(4),
            1 => 256,
            _ => rng.below(3_000),
        };
        for _ in 0..batch {
            let n = entries.len() as u64;
            let e = rng.entry(n);
            go.append(n, &e);
            assert_eq!(log.append(&e).unwrap(), n);
            entries.push(e);
        }
        let size = entries.len() as u64;
        let note = log.checkpoint().unwrap();
        let root = tlog_tiles::tree_hash(size, &go).unwrap();
        assert_eq!(log.committed_root(), h(&root), "root at {size}");
        checkpoints.push((size, h(&root)));

        // The checkpoint verifies with signed_note and parses with tlog_tiles.
        let vkey = signer().verifier().vkey();
        let verifiers = VerifierList::new(vec![Box::new(StandardVerifier::new(&vkey).unwrap())]);
        let parsed = Note::from_bytes(note.as_bytes()).unwrap();
        parsed.verify(&verifiers).unwrap();
        let cp = tlog_tiles::Checkpoint::from_bytes(parsed.text()).unwrap();
        assert_eq!((cp.origin(), cp.size(), cp.hash()), (ORIGIN, size, &root));
    }
    let size = entries.len() as u64;
    assert!(checkpoints.len() > 20);

    // Every object the log wrote (full tiles, and the partial tiles of every checkpoint) is
    // byte for byte what tlog_tiles computes for that tile; bundles are the spec encoding.
    let mut storage = log.into_storage();
    let (mut hash_tiles, mut bundles) = (0, 0);
    for (path, data) in storage.objects() {
        let t = parse_tile_path(path).unwrap();
        let start = t.index() as usize * 256;
        match t.kind() {
            TileKind::Hashes(_) => {
                let g = go_tile(&t);
                assert_eq!(c2sp_path(&g.path()), *path);
                assert_eq!(g.read_data(&go).unwrap(), *data, "{path}");
                hash_tiles += 1;
            }
            TileKind::Entries => {
                let want = bundle(&entries[start..start + usize::from(t.width())]);
                assert_eq!(*data, want, "{path}");
                bundles += 1;
            }
        }
    }
    // And every tile the final size needs is there.
    for t in tiles_for_size(size) {
        assert!(storage.objects().contains_key(t.path().as_str()), "{t}");
    }
    let full_tiles = GoTile::new_tiles(8, 0, size).len();
    assert!(hash_tiles >= full_tiles && bundles as u64 > size / 256);

    // Proofs: identical element by element, and each verifies on the other side.
    let mut log = Log::open(storage.clone(), ORIGIN, signer()).unwrap();
    let pick = |rng: &mut Rng| checkpoints[1 + rng.below(checkpoints.len() as u64 - 1) as usize];
    for _ in 0..300 {
        let (t, th) = pick(&mut rng);
        let n = rng.below(t);
        let ours = log.inclusion_proof(n, t).unwrap();
        let theirs = tlog_tiles::prove_record(t, n, &go).unwrap();
        assert_eq!(
            ours,
            theirs.iter().map(h).collect::<Vec<_>>(),
            "record {n} in {t}"
        );
        let leaf = tlog::leaf_hash(&entries[n as usize]);
        tlog::verify_inclusion(&leaf, n, t, &ours, &th).unwrap();
        tlog_tiles::check_record(&theirs, t, tlog_tiles::Hash(th), n, tlog_tiles::Hash(leaf))
            .unwrap();
    }
    for _ in 0..300 {
        let (a, ra) = pick(&mut rng);
        let (b, rb) = pick(&mut rng);
        let ((n, rn), (t, rt)) = if a <= b {
            ((a, ra), (b, rb))
        } else {
            ((b, rb), (a, ra))
        };
        let ours = log.consistency_proof(n, t).unwrap();
        let theirs = tlog_tiles::prove_tree(t, n, &go).unwrap();
        assert_eq!(
            ours,
            theirs.iter().map(h).collect::<Vec<_>>(),
            "tree {n} to {t}"
        );
        tlog::verify_consistency(n, t, &ours, &rn, &rt).unwrap();
        tlog_tiles::check_tree(&theirs, t, tlog_tiles::Hash(rt), n, tlog_tiles::Hash(rn)).unwrap();
        // Arbitrary sizes, not only checkpointed ones.
        let m = 1 + rng.below(t);
        assert_eq!(
            log.consistency_proof(m, t).unwrap(),
            tlog_tiles::prove_tree(t, m, &go)
                .unwrap()
                .iter()
                .map(h)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            log.root_at(m).unwrap(),
            h(&tlog_tiles::tree_hash(m, &go).unwrap())
        );
    }

    // A checkpoint made and signed entirely by the other implementations verifies our tree.
    let skey = signer().skey();
    let their_signer = StandardSigner::new(&skey).unwrap();
    let root = tlog_tiles::tree_hash(size, &go).unwrap();
    let text = tlog_tiles::Checkpoint::new(ORIGIN, size, root, "")
        .unwrap()
        .to_bytes();
    let mut n = Note::new(&text, &[]).unwrap();
    n.add_sigs(&[&their_signer]).unwrap();
    let theirs = n.to_bytes();
    let v = verify_tree(&mut storage, &theirs, &[signer().verifier()]).unwrap();
    assert_eq!((v.size, v.root), (size, root.0));
    // Byte-identical to ours, since Ed25519 is deterministic.
    assert_eq!(storage.latest_checkpoint(), Some(&theirs[..]));
}

/// A tree written only through `tlog_tiles` (hash tiles from its stored hashes, bundles by
/// the spec) verifies with `verify_tree`, and a changed byte in it is found.
#[test]
fn verify_a_tree_written_by_the_other_implementation() {
    let go = GoTree::default();
    let mut rng = Rng(9);
    let size = 66_000u64;
    let mut entries = Vec::new();
    for n in 0..size {
        let e = rng.entry(n);
        go.append(n, &e);
        entries.push(e);
    }
    let mut dir = MemStorage::new();
    for t in GoTile::new_tiles(8, 0, size) {
        let ours = parse_tile_path(&c2sp_path(&t.path())).unwrap();
        let data = t.read_data(&go).unwrap();
        tlog::Storage::put(&mut dir, ours.path().as_str(), &data).unwrap();
        let start = ours.index() as usize * 256;
        if ours.kind() == TileKind::Hashes(0) {
            let b = bundle(&entries[start..start + usize::from(ours.width())]);
            let p = Tile::new(TileKind::Entries, ours.index(), ours.width()).unwrap();
            tlog::Storage::put(&mut dir, p.path().as_str(), &b).unwrap();
        }
    }
    let root = tlog_tiles::tree_hash(size, &go).unwrap();
    let text = tlog_tiles::Checkpoint::new("other.example/log", size, root, "")
        .unwrap()
        .to_bytes();
    let key = note::Signer::generate("other.example/log", &[4; 32]).unwrap();
    let mut n = Note::new(&text, &[]).unwrap();
    n.add_sigs(&[&StandardSigner::new(&key.skey()).unwrap()])
        .unwrap();
    let cp = n.to_bytes();
    let v = verify_tree(&mut dir, &cp, &[key.verifier()]).unwrap();
    assert_eq!((v.origin.as_str(), v.size), ("other.example/log", size));
    tlog::Storage::set_checkpoint(&mut dir, &cp).unwrap();

    let path = "tile/entries/100";
    let mut b = dir.objects()[path].clone();
    b[40] ^= 1;
    dir.tamper(Some(path), &b);
    let e = verify_tree(&mut dir, &cp, &[key.verifier()]).unwrap_err();
    assert_eq!(e.object().to_string(), path);
}
