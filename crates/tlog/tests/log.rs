//! Behaviour of `Log`: appends, checkpoints, reads, proofs, reopening, crashes and faults,
//! bad input; and `verify_tree` on what it writes, including tampering.

// Test helpers outside #[test] functions: a panic is how a test fails (clippy.toml allows it
// inside tests only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{new_log, reopen, signer, Rng, ORIGIN};
use tlog::proof::{verify_consistency, verify_inclusion};
use tlog::{
    leaf_hash, verify_tree, Error, Fault, FormatError, Log, MemError, MemStorage, Object,
    ObjectError, ProofError, Reason, TileKind, VerifyError,
};

fn entry(i: u64) -> Vec<u8> {
    format!("entry {i}").into_bytes()
}

fn verify(storage: &mut MemStorage) -> Result<tlog::VerifiedTree, VerifyError<MemError>> {
    let cp = storage.latest_checkpoint().unwrap().to_vec();
    verify_tree(storage, &cp, &[signer().verifier()])
}

fn path_of(e: &VerifyError<MemError>) -> String {
    e.object().to_string()
}

#[test]
fn append_checkpoint_read_prove() {
    let mut log = new_log();
    assert_eq!((log.size(), log.committed_size()), (0, 0));
    for i in 0..1000 {
        assert_eq!(log.append(&entry(i)).unwrap(), i);
    }
    // Pending: not readable, not provable.
    assert_eq!(log.read_since(0, 10).unwrap(), Vec::<Vec<u8>>::new());
    assert_eq!(log.inclusion_proof(0, 1), Err(Error::BeyondCheckpoint));
    let note = log.checkpoint().unwrap();
    assert!(note.starts_with(&format!("{ORIGIN}\n1000\n")));
    assert_eq!(log.committed_size(), 1000);

    let got = log.read_since(250, 10).unwrap();
    assert_eq!(got, (250..260).map(entry).collect::<Vec<_>>());
    let mut seen = Vec::new();
    assert_eq!(
        log.read_since_with(990, 100, |i, e| seen.push((i, e.to_vec())))
            .unwrap(),
        10
    );
    assert_eq!(seen, (990..1000).map(|i| (i, entry(i))).collect::<Vec<_>>());
    assert_eq!(log.read_since(1000, 10).unwrap().len(), 0);
    assert_eq!(log.read_since(5000, 10).unwrap().len(), 0);
    assert_eq!(log.read_since(0, 0).unwrap().len(), 0);
    assert_eq!(log.read_since(0, u64::MAX).unwrap().len(), 1000);

    let root = log.committed_root();
    for (i, size) in [(0, 1000), (999, 1000), (255, 256), (256, 600), (511, 512)] {
        let r = log.root_at(size).unwrap();
        let p = log.inclusion_proof(i, size).unwrap();
        verify_inclusion(&leaf_hash(&entry(i)), i, size, &p, &r).unwrap();
        assert!(verify_inclusion(&leaf_hash(&entry(i + 1)), i, size, &p, &r).is_err());
    }
    for (a, b) in [
        (1, 1000),
        (256, 1000),
        (257, 1000),
        (999, 1000),
        (1000, 1000),
        (3, 7),
    ] {
        let p = log.consistency_proof(a, b).unwrap();
        let (ra, rb) = (log.root_at(a).unwrap(), log.root_at(b).unwrap());
        verify_consistency(a, b, &p, &ra, &rb).unwrap();
    }
    assert_eq!(log.root_at(1000).unwrap(), root);
    let v = verify(&mut log.into_storage()).unwrap();
    assert_eq!((v.origin.as_str(), v.size, v.root), (ORIGIN, 1000, root));
}

#[test]
fn bad_input() {
    let mut log = new_log();
    log.append(b"a").unwrap();
    assert_eq!(
        log.append(&vec![0; 65_536]),
        Err(Error::EntryTooLarge(65_536))
    );
    // A rejected entry changes nothing.
    assert_eq!(log.append(&vec![0; 65_535]).unwrap(), 1);
    log.checkpoint().unwrap();
    assert_eq!(
        log.read_since(0, 5).unwrap(),
        vec![b"a".to_vec(), vec![0; 65_535]]
    );
    assert_eq!(
        log.inclusion_proof(2, 2),
        Err(Error::Proof(ProofError::IndexOutOfRange))
    );
    assert_eq!(log.inclusion_proof(0, 3), Err(Error::BeyondCheckpoint));
    assert_eq!(
        log.consistency_proof(0, 2),
        Err(Error::Proof(ProofError::SizeZero))
    );
    assert_eq!(
        log.consistency_proof(2, 1),
        Err(Error::Proof(ProofError::SizeOrder))
    );
    assert_eq!(log.consistency_proof(1, 3), Err(Error::BeyondCheckpoint));

    let storage = log.into_storage();
    assert!(matches!(
        Log::create(storage.clone(), ORIGIN, signer()),
        Err(Error::AlreadyExists)
    ));
    assert!(matches!(
        Log::open(MemStorage::new(), ORIGIN, signer()),
        Err(Error::NoCheckpoint)
    ));
    let cp_err = |r| {
        Err::<(), _>(Error::<MemError>::Corrupt(ObjectError {
            object: Object::Checkpoint,
            reason: r,
        }))
    };
    assert_eq!(
        Log::open(storage.clone(), "other.example/log", signer()).map(|_| ()),
        cp_err(Reason::OriginMismatch)
    );
    let other = note::Signer::generate(ORIGIN, &[8; 32]).unwrap();
    assert_eq!(
        Log::open(storage.clone(), ORIGIN, other).map(|_| ()),
        cp_err(Reason::Note(note::Error::NoVerifiedSignature))
    );
    // An origin that cannot be a checkpoint line.
    assert!(matches!(
        Log::create(MemStorage::new(), "bad\norigin", signer()),
        Err(Error::Note(_))
    ));
}

#[test]
fn reopen_is_the_same_as_never_closing() {
    // One log runs straight through; the other is dropped and reopened after every
    // checkpoint. Ed25519 signing is deterministic, so storage must end up byte-identical.
    let mut rng = Rng(1);
    let mut straight = new_log();
    let mut reopened = new_log();
    let mut i = 0;
    for _ in 0..40 {
        let batch = match rng.below(4) {
            0 => rng.below(3),
            1 => rng.below(300),
            _ => rng.below(1200),
        };
        for _ in 0..batch {
            let e = rng.entry(i);
            assert_eq!(straight.append(&e).unwrap(), i);
            assert_eq!(reopened.append(&e).unwrap(), i);
            i += 1;
        }
        let a = straight.checkpoint().unwrap();
        let b = reopened.checkpoint().unwrap();
        assert_eq!(a, b);
        reopened = reopen(reopened);
        assert_eq!(reopened.size(), i);
        assert_eq!(reopened.committed_root(), straight.committed_root());
    }
    assert!(i > 5_000, "only {i} entries");
    let (mut s1, s2) = (straight.into_storage(), reopened.into_storage());
    assert_eq!(s1.objects(), s2.objects());
    assert_eq!(s1.latest_checkpoint(), s2.latest_checkpoint());
    assert_eq!(verify(&mut s1).unwrap().size, i);
}

#[test]
fn uncommitted_appends_are_dropped_never_adopted() {
    // Dropped before a checkpoint, with no full bundle written: gone on reopen.
    let mut log = new_log();
    for i in 0..100 {
        log.append(&entry(i)).unwrap();
    }
    log.checkpoint().unwrap();
    for i in 100..200 {
        log.append(&entry(i)).unwrap();
    }
    let mut log = reopen(log);
    assert_eq!((log.size(), log.committed_size()), (100, 100));
    // ... and different entries can take their place.
    for i in 100..200 {
        log.append(&entry(i + 1_000_000)).unwrap();
    }
    log.checkpoint().unwrap();

    // A crash after two full bundles (and their tiles) were put past the checkpoint at 200:
    // they were never durable without a checkpoint, so nothing of them is adopted or found.
    for i in 200..600 {
        log.append(&entry(i)).unwrap();
    }
    let mut log = reopen(log);
    assert_eq!((log.size(), log.committed_size()), (200, 200));
    assert_eq!(log.stray(), None);
    for i in 200..700 {
        log.append(&entry(i + 2_000_000)).unwrap();
    }
    log.checkpoint().unwrap();
    let got = log.read_since(195, 1000).unwrap();
    let want: Vec<_> = (195..700)
        .map(|i| match i {
            100..200 => entry(i + 1_000_000),
            200.. => entry(i + 2_000_000),
            _ => entry(i),
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(verify(&mut log.into_storage()).unwrap().size, 700);
}

#[test]
fn a_failed_checkpoint_drops_its_request() {
    let mut log = new_log();
    for i in 0..10 {
        log.append(&entry(i)).unwrap();
    }
    log.checkpoint().unwrap();
    for i in 10..20 {
        log.append(&entry(i)).unwrap();
    }
    let mut storage = log.into_storage();
    let writes = storage.writes();
    // checkpoint() writes: partial bundle, partial tile, checkpoint. Fail the checkpoint.
    storage.inject(writes + 2, Fault::FailNotPersist);
    let mut log = Log::open(storage, ORIGIN, signer()).unwrap();
    for i in 10..20 {
        log.append(&entry(i)).unwrap();
    }
    assert!(matches!(
        log.checkpoint(),
        Err(Error::Storage(MemError::Injected))
    ));
    assert_eq!(log.append(b"x"), Err(Error::Poisoned));
    assert_eq!(log.checkpoint(), Err(Error::Poisoned));
    let mut log = reopen(log);
    assert_eq!((log.size(), log.committed_size()), (10, 10));
    assert_eq!(log.stray(), None, "the refused request left nothing");
    // Different entries at index 10 meet no leftover object.
    for i in 10..20 {
        log.append(&entry(i + 500)).unwrap();
    }
    log.checkpoint().unwrap();
    let want: Vec<_> = (0..20)
        .map(|i| entry(if i < 10 { i } else { i + 500 }))
        .collect();
    assert_eq!(log.read_since(0, 100).unwrap(), want);
}

#[test]
fn planted_bundles_are_reported_never_signed() {
    // Committed: 601 entries (bundle 002.p/89). Someone with the disk plants 002.p/90, the
    // committed entries plus one forged entry, and also a bundle that does not extend them.
    for extends in [true, false] {
        let mut log = new_log();
        for i in 0..601 {
            log.append(&entry(i)).unwrap();
        }
        log.checkpoint().unwrap();
        let mut storage = log.into_storage();
        let mut planted = if extends {
            storage.objects()["tile/entries/002.p/89"].clone()
        } else {
            Vec::new()
        };
        let forged: Vec<&[u8]> = if extends {
            vec![b"forged"]
        } else {
            vec![b"other"; 90]
        };
        for e in &forged {
            planted.extend_from_slice(&(e.len() as u16).to_be_bytes());
            planted.extend_from_slice(e);
        }
        storage.tamper(Some("tile/entries/002.p/90"), &planted);
        let mut log = Log::open(storage, ORIGIN, signer()).unwrap();
        // Reported, not adopted: the log is at its checkpoint and serves it.
        assert_eq!(
            log.stray().map(|t| t.path().to_string()),
            Some("tile/entries/002.p/90".into())
        );
        assert_eq!((log.size(), log.committed_size()), (601, 601));
        assert_eq!(log.read_since(598, 10).unwrap().len(), 3);
        // The next append would write over the planted path: refused, nothing signed.
        log.append(b"real entry").unwrap();
        assert!(matches!(
            log.checkpoint(),
            Err(Error::Storage(MemError::Immutable(p))) if p == "tile/entries/002.p/90"
        ));
        let mut log = reopen(log);
        assert_eq!(log.committed_size(), 601);
        assert_eq!(log.read_since(600, 10).unwrap(), vec![entry(600)]);
        let mut storage = log.into_storage();
        assert_eq!(verify(&mut storage).unwrap().size, 601);
    }
}

/// Storage that returns one object altered when it is read back (a fault between the log and
/// its storage): a test fake, nothing more.
struct Lying {
    inner: MemStorage,
    path: &'static str,
}

impl tlog::Storage for Lying {
    type Error = MemError;
    fn put(&mut self, path: &str, data: &[u8]) -> Result<(), MemError> {
        self.inner.put(path, data)
    }
    fn set_checkpoint(&mut self, c: &[u8]) -> Result<(), MemError> {
        self.inner.set_checkpoint(c)
    }
    fn get(&mut self, path: &str, out: &mut Vec<u8>) -> Result<bool, MemError> {
        let found = self.inner.get(path, out)?;
        if found && path == self.path {
            out[0] ^= 1;
        }
        Ok(found)
    }
    fn checkpoint(&mut self, out: &mut Vec<u8>) -> Result<bool, MemError> {
        self.inner.checkpoint(out)
    }
    fn put_begin(&mut self, path: &str, len: usize) -> Result<(), MemError> {
        self.inner.put_begin(path, len)
    }
    fn put_chunk(&mut self, data: &[u8]) -> Result<(), MemError> {
        self.inner.put_chunk(data)
    }
}

#[test]
fn a_tree_that_does_not_extend_the_signed_one_is_never_signed() {
    // Committed at 300; by 600, tile/0/001 (leaves 256..512) is full, and it is what proves
    // the new tree extends the one signed at 300. Storage hands it back altered.
    let storage = Lying {
        inner: MemStorage::new(),
        path: "tile/0/001",
    };
    let mut log = Log::create(storage, ORIGIN, signer()).unwrap();
    for i in 0..300 {
        log.append(&entry(i)).unwrap();
    }
    log.checkpoint().unwrap();
    for i in 300..600 {
        log.append(&entry(i)).unwrap();
    }
    assert_eq!(
        log.checkpoint(),
        Err(Error::Inconsistent {
            size: 600,
            signed: 300
        })
    );
    assert_eq!(log.committed_size(), 300);
    assert_eq!(log.append(b"x"), Err(Error::Poisoned));
    // Nothing was signed or stored past 300.
    let mut cp = Vec::new();
    let mut storage = log.into_storage();
    assert!(tlog::Storage::checkpoint(&mut storage.inner, &mut cp).unwrap());
    assert!(String::from_utf8(cp).unwrap().lines().nth(1) == Some("300"));
    // Honest storage: the same appends are signed.
    storage.path = "none";
    storage.inner.crash();
    let mut log = Log::open(storage, ORIGIN, signer()).unwrap();
    for i in 300..600 {
        log.append(&entry(i)).unwrap();
    }
    log.checkpoint().unwrap();
}

#[test]
fn every_single_write_fault() {
    // The sunlight-style table: for each write of a scenario, fail it (persisting or not),
    // reopen as a restarted PD would, finish the scenario, and re-verify the whole tree.
    let scenario: &[u64] = &[3, 300, 0, 260, 1, 600];
    let run = |fault: Option<(u64, Fault)>| -> (MemStorage, u64) {
        let mut storage = MemStorage::new();
        if let Some((at, f)) = fault {
            storage.inject(at, f);
        }
        let mut log = match Log::create(storage, ORIGIN, signer()) {
            Ok(l) => l,
            // The create's own checkpoint failed: start again on fresh storage.
            Err(Error::Storage(MemError::Injected)) => new_log(),
            Err(e) => panic!("{e}"),
        };
        let mut next = 0u64;
        for &batch in scenario {
            let target = next + batch;
            loop {
                let step = (|| -> Result<(), Error<MemError>> {
                    while log.size() < target {
                        log.append(&entry(log.size()))?;
                    }
                    log.checkpoint()?;
                    Ok(())
                })();
                match step {
                    Ok(()) => break,
                    Err(Error::Storage(MemError::Injected)) => log = reopen(log),
                    Err(e) => panic!("{e}"),
                }
            }
            next = target;
        }
        let size = log.size();
        (log.into_storage(), size)
    };
    let (mut clean, size) = run(None);
    let clean_root = verify(&mut clean).unwrap().root;
    let total_writes = clean.writes();
    assert!(total_writes > 10);
    for at in 0..total_writes {
        for f in [Fault::FailNotPersist, Fault::FailButPersist] {
            let (mut s, got) = run(Some((at, f)));
            assert_eq!(got, size, "fault {f:?} at write {at}");
            // Entries are the same wherever the fault hit, so the trees are identical.
            assert_eq!(verify(&mut s).unwrap().root, clean_root);
            assert_eq!(s.latest_checkpoint(), clean.latest_checkpoint());
        }
    }
}

#[test]
fn open_rejects_corrupt_storage() {
    let mut log = new_log();
    for i in 0..300 {
        log.append(&entry(i)).unwrap();
    }
    log.checkpoint().unwrap();
    let storage = log.into_storage();
    let open_err = |s: MemStorage| match Log::open(s, ORIGIN, signer()) {
        Err(Error::Corrupt(e)) => e,
        other => panic!("{other:?}"),
    };

    let mut s = storage.clone();
    s.remove("tile/0/001.p/44");
    let e = open_err(s);
    assert_eq!(
        (e.object.to_string(), e.reason),
        ("tile/0/001.p/44".into(), Reason::Missing)
    );

    let mut s = storage.clone();
    s.tamper(Some("tile/0/001.p/44"), &[0; 44 * 32 - 1]);
    let e = open_err(s);
    assert_eq!(e.reason, Reason::Format(FormatError::TileLength));

    let mut s = storage.clone();
    s.tamper(Some("tile/1/000.p/1"), &[0; 32]);
    let e = open_err(s);
    assert_eq!(
        (e.object.to_string(), e.reason),
        ("tile/1/000.p/1".into(), Reason::RootMismatch)
    );

    let mut s = storage.clone();
    let mut b = s.objects()["tile/entries/001.p/44"].clone();
    *b.last_mut().unwrap() ^= 1;
    s.tamper(Some("tile/entries/001.p/44"), &b);
    let e = open_err(s);
    assert_eq!(e.reason, Reason::EntryMismatch(43));

    let mut s = storage.clone();
    s.tamper(None, b"not a note");
    assert_eq!(open_err(s).object, Object::Checkpoint);

    // Corrupt full tiles and bundles show up when they are read.
    let mut s = storage.clone();
    s.tamper(Some("tile/entries/000"), b"\x00\x05abc");
    let mut log = Log::open(s, ORIGIN, signer()).unwrap();
    match log.read_since(0, 1) {
        Err(Error::Corrupt(e)) => {
            assert_eq!(e.object.to_string(), "tile/entries/000");
            assert_eq!(e.reason, Reason::Format(FormatError::BundleTruncated));
        }
        other => panic!("{other:?}"),
    }
    let mut s = storage.clone();
    s.tamper(Some("tile/0/000"), &[0; 100]);
    let mut log = Log::open(s, ORIGIN, signer()).unwrap();
    match log.inclusion_proof(3, 300) {
        Err(Error::Corrupt(e)) => assert_eq!(e.object.to_string(), "tile/0/000"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn verify_names_the_failing_object() {
    let mut log = new_log();
    for i in 0..70_000u64 {
        log.append(&i.to_be_bytes()).unwrap();
    }
    log.checkpoint().unwrap();
    let storage = log.into_storage();
    assert_eq!(verify(&mut storage.clone()).unwrap().size, 70_000);

    let fails = |f: &dyn Fn(&mut MemStorage)| {
        let mut s = storage.clone();
        f(&mut s);
        let e = verify(&mut s).unwrap_err();
        match e {
            VerifyError::Invalid(o) => (o.object.to_string(), o.reason),
            VerifyError::Read { .. } => panic!("{e}"),
        }
    };
    let flip = |path: &'static str, at: usize| {
        move |s: &mut MemStorage| {
            let mut b = s.objects()[path].clone();
            b[at] ^= 0x80;
            s.tamper(Some(path), &b);
        }
    };
    assert_eq!(
        fails(&flip("tile/0/200", 100)),
        ("tile/0/200".into(), Reason::TileMismatch)
    );
    assert_eq!(
        fails(&flip("tile/1/000", 5)),
        ("tile/1/000".into(), Reason::TileMismatch)
    );
    assert_eq!(fails(&flip("tile/2/000.p/1", 5)).1, Reason::RootMismatch);
    assert_eq!(
        fails(&flip("tile/entries/200", 3 + 10 * 10)),
        ("tile/entries/200".into(), Reason::EntryMismatch(10))
    );
    assert_eq!(
        fails(&|s| {
            s.remove("tile/0/200");
        }),
        ("tile/0/200".into(), Reason::Missing)
    );
    // Bundles are optional; partial tiles may be replaced by the full tile.
    let mut s = storage.clone();
    s.remove("tile/entries/200");
    s.remove("tile/entries/273.p/112");
    assert!(verify(&mut s).is_ok());
    let mut s = storage.clone();
    let partial = s.remove("tile/0/273.p/112").unwrap();
    let mut full = partial.clone();
    full.resize(256 * 32, 9);
    s.tamper(Some("tile/0/273"), &full);
    assert!(verify(&mut s).is_ok());
    full[0] ^= 1;
    s.tamper(Some("tile/0/273"), &full);
    assert_eq!(path_of(&verify(&mut s).unwrap_err()), "tile/2/000.p/1");
    s.tamper(Some("tile/0/273"), &full[..256 * 32 - 1]);
    let e = verify(&mut s).unwrap_err();
    assert_eq!(path_of(&e), "tile/0/273");

    // Keys: a cosignature key alone does not make a log checkpoint.
    let mut s = storage.clone();
    let cp = s.latest_checkpoint().unwrap().to_vec();
    let text = std::str::from_utf8(&cp)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap()
        .to_string()
        + "\n";
    let witness = note::Cosigner::generate("witness.example", &[3; 32]).unwrap();
    let mut n = note::Note::parse(&cp).unwrap();
    n.add_signature(witness.cosign(&text, 1_700_000_000).unwrap())
        .unwrap();
    let both = n.to_bytes();
    assert!(verify_tree(&mut s, &both, &[signer().verifier(), witness.verifier()]).is_ok());
    match verify_tree(&mut s, &both, &[witness.verifier()]) {
        Err(VerifyError::Invalid(e)) => assert_eq!(e.reason, Reason::NoLogSignature),
        other => panic!("{other:?}"),
    }
    let stranger = note::Signer::generate(ORIGIN, &[9; 32]).unwrap();
    match verify_tree(&mut s, &cp, &[stranger.verifier()]) {
        Err(VerifyError::Invalid(e)) => {
            assert_eq!(e.reason, Reason::Note(note::Error::NoVerifiedSignature))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn flipping_any_byte_fails_verification() {
    // A small log with one checkpoint (so every object is part of the verified tree):
    // 300 entries give full and partial tiles at level 0, a level-1 partial tile, a full and a
    // partial bundle.
    let mut log = Log::create(MemStorage::new(), ORIGIN, signer()).unwrap();
    for i in 0..300u64 {
        log.append(format!("{i}").as_bytes()).unwrap();
    }
    log.checkpoint().unwrap();
    let mut s = log.into_storage();
    let paths: Vec<String> = s.objects().keys().cloned().collect();
    assert_eq!(
        paths,
        [
            "tile/0/000",
            "tile/0/001.p/44",
            "tile/1/000.p/1",
            "tile/entries/000",
            "tile/entries/001.p/44"
        ]
    );
    assert!(verify(&mut s).is_ok());
    let mut checked = 0;
    for path in paths.iter().map(|p| Some(p.as_str())).chain([None]) {
        let orig = match path {
            Some(p) => s.objects()[p].clone(),
            None => s.latest_checkpoint().unwrap().to_vec(),
        };
        for at in 0..orig.len() {
            // One flip per byte, alternating the low and the high bit (both for every byte
            // doubles the runtime and adds nothing the decoders treat differently).
            {
                let bit = if at % 2 == 0 { 0x01 } else { 0x80 };
                let mut b = orig.clone();
                b[at] ^= bit;
                s.tamper(path, &b);
                let e = verify(&mut s).expect_err("tampered tree verified");
                match path {
                    // The checkpoint, or the tile/bundle itself, or (for a partial tile
                    // authenticated only with the others by the root) the top partial tile.
                    Some(p) if p.ends_with(".p/44") && !p.contains("entries") => {
                        assert_eq!(path_of(&e), "tile/1/000.p/1")
                    }
                    Some(p) => assert_eq!(path_of(&e), p),
                    None => assert_eq!(e.object(), Object::Checkpoint),
                }
                checked += 1;
            }
        }
        s.tamper(path, &orig);
    }
    assert!(verify(&mut s).is_ok());
    assert!(checked > 10_000, "{checked}");
}

#[test]
fn tile_kinds_in_storage() {
    // Everything a log writes is a canonical tlog-tiles path.
    let mut log = new_log();
    for i in 0..1000 {
        log.append(&entry(i)).unwrap();
        if i % 97 == 0 {
            log.checkpoint().unwrap();
        }
    }
    log.checkpoint().unwrap();
    for (p, data) in log.storage().objects() {
        let t = tlog::tile::parse_tile_path(p).unwrap();
        assert_eq!(t.path().as_str(), p);
        match t.kind() {
            TileKind::Hashes(_) => assert_eq!(data.len(), usize::from(t.width()) * 32),
            TileKind::Entries => {
                tlog::tile::decode_bundle(data, t.width()).unwrap();
            }
        }
    }
}

/// The pending bundle never outgrows the largest bundle: one 65,534-byte entry then 255 of
/// 65,535 (which used to double the buffer to 2^25 bytes, old and new copies live at once)
/// end at exactly MAX_BUNDLE_SIZE; small entries keep it small; preallocated buffers never
/// change, and come back from `into_parts` and from a failed `open_in`.
#[test]
fn bundle_buffer_is_capped_and_preallocated_buffers_are_kept() {
    use tlog::tile::MAX_BUNDLE_SIZE;
    let signer = note::Signer::generate("example.com/log", &[1; 32]).unwrap();
    let mut log = Log::create(MemStorage::new(), "example.com/log", signer.clone()).unwrap();
    for _ in 0..10 {
        log.append(&[5; 100]).unwrap();
    }
    let (_, bufs) = log.into_parts();
    assert!(bufs.capacity() <= 8192, "{}", bufs.capacity());

    let mut log = Log::create(MemStorage::new(), "example.com/log", signer.clone()).unwrap();
    log.append(&vec![1; 65_534]).unwrap();
    for _ in 1..256 + 255 {
        log.append(&vec![2; 65_535]).unwrap();
    }
    log.checkpoint().unwrap();
    let (storage, bufs) = log.into_parts();
    // The bundle's capacity is exactly MAX_BUNDLE_SIZE; the read buffer held a checkpoint.
    assert!(bufs.capacity() >= MAX_BUNDLE_SIZE);
    assert!(
        bufs.capacity() < MAX_BUNDLE_SIZE + 4096,
        "{}",
        bufs.capacity()
    );
    // Preallocated: the capacity never changes, through open (partial bundle of 255 large
    // entries), appends past the full bundle and reads of it.
    // The pending bound: 3 large entries between two checkpoints.
    let pending = 3 * (2 + 65_535);
    let fixed = tlog::Buffers::preallocated_bytes(pending);
    assert_eq!(fixed, pending + tlog::log::WINDOW);
    let mut bufs = tlog::Buffers::preallocated(pending).unwrap();
    assert_eq!(bufs.capacity(), fixed);
    let mut log = Log::open_in(storage, "example.com/log", signer.clone(), &mut bufs).unwrap();
    assert_eq!(bufs.capacity(), 0, "taken by the log");
    for _ in 0..3 {
        log.append(&vec![3; 65_535]).unwrap();
    }
    log.checkpoint().unwrap();
    assert_eq!(log.read_since(0, 600).unwrap().len(), 514);
    let (storage, bufs) = log.into_parts();
    assert_eq!(bufs.capacity(), fixed);
    // A failed open gives the buffers back.
    let mut bufs = bufs;
    let other = note::Signer::generate("example.com/log", &[2; 32]).unwrap();
    assert!(Log::open_in(storage, "example.com/log", other, &mut bufs).is_err());
    assert_eq!(bufs.capacity(), fixed);
}
