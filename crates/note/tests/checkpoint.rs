//! Checkpoints (tlog-checkpoint) and Ed25519 cosignatures (tlog-cosignature, type 0x04).

// clippy.toml lets #[test] functions panic; these helpers panic for the same reason (a
// panic is how a test fails) but sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use note::{Checkpoint, Cosigner, Error, KeyType, Note, Signer, Verifier, MAX_TIMESTAMP};

const SPEC_TEXT: &str =
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

#[test]
fn spec_example_parses_and_formats_back() {
    let c = Checkpoint::parse(SPEC_TEXT).unwrap();
    assert_eq!(c.origin(), "example.com/behind-the-sofa");
    assert_eq!(c.size(), 20852163);
    assert_eq!(
        c.root().as_slice(),
        B64.decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
            .unwrap()
    );
    assert!(c.extensions().is_empty());
    assert_eq!(c.to_text(), SPEC_TEXT);
}

#[test]
fn extensions_and_extreme_sizes_round_trip() {
    for size in [0, 1, 10, u64::MAX] {
        let c = Checkpoint::new("o", size, [7; 32], &["ext one", "— two"]).unwrap();
        let text = c.to_text();
        assert_eq!(Checkpoint::parse(&text).unwrap(), c);
        assert!(text.ends_with("\next one\n— two\n"));
    }
}

#[test]
fn malformed_checkpoints_are_rejected() {
    let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
    let cases = [
        (String::new(), Error::CheckpointLines),
        ("o\n5\n".to_string(), Error::CheckpointLines),
        (format!("o\n5\n{root}"), Error::CheckpointLines),
        (format!("\n5\n{root}\n"), Error::CheckpointOrigin),
        (format!("o\tx\n5\n{root}\n"), Error::CheckpointOrigin),
        (format!("o\n05\n{root}\n"), Error::CheckpointSize),
        (format!("o\n00\n{root}\n"), Error::CheckpointSize),
        (format!("o\n+5\n{root}\n"), Error::CheckpointSize),
        (format!("o\n-5\n{root}\n"), Error::CheckpointSize),
        (format!("o\n 5\n{root}\n"), Error::CheckpointSize),
        (format!("o\n\n{root}\n"), Error::CheckpointSize),
        (
            format!("o\n18446744073709551616\n{root}\n"),
            Error::CheckpointSize,
        ),
        (format!("o\n5\n{root}=\n"), Error::CheckpointRoot),
        (
            "o\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n".to_string(),
            Error::CheckpointRoot,
        ),
        (
            format!("o\n5\n{}\n", B64.encode([0; 31])),
            Error::CheckpointRoot,
        ),
        (
            format!("o\n5\n{}\n", B64.encode([0; 33])),
            Error::CheckpointRoot,
        ),
        ("o\n5\n!!!!\n".to_string(), Error::CheckpointRoot),
        (format!("o\n5\n{root}\n\n"), Error::CheckpointExtension),
        (format!("o\n5\n{root}\next\n\n"), Error::CheckpointExtension),
        (
            format!("o\n5\n{root}\nx\u{1}\n"),
            Error::CheckpointExtension,
        ),
    ];
    for (text, want) in cases {
        assert_eq!(Checkpoint::parse(&text), Err(want), "{text:?}");
    }
    assert_eq!(
        Checkpoint::parse(&format!("o\n0\n{root}\n"))
            .unwrap()
            .size(),
        0
    );
    assert_eq!(
        Checkpoint::new("", 1, [0; 32], &[]),
        Err(Error::CheckpointOrigin)
    );
    assert_eq!(
        Checkpoint::new("a\nb", 1, [0; 32], &[]),
        Err(Error::CheckpointOrigin)
    );
    assert_eq!(
        Checkpoint::new("a", 1, [0; 32], &[""]),
        Err(Error::CheckpointExtension)
    );
    assert_eq!(
        Checkpoint::new("a", 1, [0; 32], &["x\ny"]),
        Err(Error::CheckpointExtension)
    );
}

fn log() -> Signer {
    Signer::generate("example.com/log", &[9; 32]).unwrap()
}

fn witness(i: u8) -> Cosigner {
    Cosigner::generate(&format!("witness{i}.example"), &[i; 32]).unwrap()
}

fn signed_checkpoint() -> (String, Note) {
    let text = Checkpoint::new("example.com/log", 42, [1; 32], &[])
        .unwrap()
        .to_text();
    let signed = log().sign(&text).unwrap();
    (text, Note::parse(signed.as_bytes()).unwrap())
}

#[test]
fn cosignature_keys_use_type_4() {
    let w = witness(1);
    let v = w.verifier();
    assert_eq!(v.key_type(), KeyType::Cosignature);
    assert_eq!(
        v.key_id(),
        note::key_id(w.name(), KeyType::Cosignature, &v.public_key())
    );
    let raw = B64.decode(v.vkey().rsplit_once('+').unwrap().1).unwrap();
    assert_eq!(raw[0], 0x04);
    assert_eq!(Verifier::from_vkey(&v.vkey()).unwrap(), v);
    assert_eq!(Cosigner::from_skey(&w.skey()).unwrap().skey(), w.skey());
    // The same seed and name under type 0x01 is a different key id.
    let s = Signer::generate(w.name(), &[1; 32]).unwrap();
    assert_ne!(s.key_id(), w.key_id());
    assert_eq!(s.verifier().public_key(), v.public_key());
    // A key of one type is refused where the other is expected.
    assert_eq!(
        Signer::from_skey(&w.skey()).unwrap_err(),
        Error::WrongKeyType
    );
    assert_eq!(
        Cosigner::from_skey(&s.skey()).unwrap_err(),
        Error::WrongKeyType
    );
}

#[test]
fn cosignature_wire_format() {
    let (text, _) = signed_checkpoint();
    let w = witness(1);
    let sig = w.cosign(&text, 1679315147).unwrap();
    assert_eq!(sig.signature().len(), 72);
    assert_eq!(sig.signature()[..8], 1679315147u64.to_be_bytes());
    // The Ed25519 part signs the cosignature/v1 message, checked with ed25519-dalek directly.
    let msg = format!("cosignature/v1\ntime 1679315147\n{text}");
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&w.verifier().public_key()).unwrap();
    let ed: [u8; 64] = sig.signature()[8..].try_into().unwrap();
    vk.verify_strict(msg.as_bytes(), &ed25519_dalek::Signature::from_bytes(&ed))
        .unwrap();
}

#[test]
fn note_with_log_signature_and_cosignatures_reports_each() {
    let (text, mut note) = signed_checkpoint();
    note.add_signature(witness(1).cosign(&text, 1000).unwrap())
        .unwrap();
    note.add_signature(witness(2).cosign(&text, 0).unwrap())
        .unwrap();
    note.add_signature(witness(3).cosign(&text, MAX_TIMESTAMP).unwrap())
        .unwrap();
    let note = Note::parse(&note.to_bytes()).unwrap();
    let known = [
        witness(2).verifier(),
        log().verifier(),
        witness(1).verifier(),
    ];
    let ok = note.verify(&known).unwrap();
    let got: Vec<_> = ok
        .iter()
        .map(|v| (v.name.as_str(), v.key_type, v.timestamp))
        .collect();
    assert_eq!(
        got,
        [
            ("example.com/log", KeyType::Ed25519, None),
            ("witness1.example", KeyType::Cosignature, Some(1000)),
            ("witness2.example", KeyType::Cosignature, Some(0)),
        ]
    );
    // Only cosigners known: the note still verifies, by its cosignatures.
    assert_eq!(
        note.verify(&[witness(3).verifier()]).unwrap()[0].timestamp,
        Some(MAX_TIMESTAMP)
    );
    assert_eq!(Checkpoint::parse(note.text()).unwrap().size(), 42);
}

#[test]
fn tampered_cosignatures_are_rejected() {
    let (text, note) = signed_checkpoint();
    let w = witness(1);
    let good = w.cosign(&text, 1000).unwrap();
    let with = |field: Vec<u8>| {
        let mut n = note.clone();
        n.add_signature(note::Signature::new(w.name(), w.key_id(), &field).unwrap())
            .unwrap();
        Note::parse(&n.to_bytes()).unwrap().verify(&[w.verifier()])
    };
    assert!(with(good.signature().to_vec()).is_ok());
    // Another timestamp: the signed message changes.
    let mut f = good.signature().to_vec();
    f[7] ^= 1;
    assert_eq!(with(f), Err(Error::InvalidSignature));
    // Timestamp above 2^63 - 1.
    let mut f = good.signature().to_vec();
    f[0] |= 0x80;
    assert_eq!(with(f), Err(Error::CosignatureTimestamp));
    // Wrong lengths: a plain Ed25519 signature, or one byte more.
    assert_eq!(
        with(good.signature()[8..].to_vec()),
        Err(Error::InvalidSignature)
    );
    let mut f = good.signature().to_vec();
    f.push(0);
    assert_eq!(with(f), Err(Error::InvalidSignature));
    // A cosignature does not verify as a type 0x01 signature by the same key material.
    let same_key_as_ed25519 =
        Verifier::from_public_key(w.name(), KeyType::Ed25519, &w.verifier().public_key()).unwrap();
    let mut n = note.clone();
    let as_ed = note::Signature::new(
        w.name(),
        same_key_as_ed25519.key_id(),
        &good.signature()[8..],
    )
    .unwrap();
    n.add_signature(as_ed).unwrap();
    assert_eq!(
        Note::parse(&n.to_bytes())
            .unwrap()
            .verify(&[same_key_as_ed25519]),
        Err(Error::InvalidSignature)
    );
}

#[test]
fn cosign_refuses_bad_input() {
    let w = witness(1);
    assert_eq!(
        w.cosign("not a checkpoint\n", 1),
        Err(Error::CheckpointLines)
    );
    let (text, _) = signed_checkpoint();
    assert_eq!(
        w.cosign(&text, MAX_TIMESTAMP + 1),
        Err(Error::CosignatureTimestamp)
    );
}
