//! Differential tests against `signed_note` 0.2 (Cloudflare's independent Rust implementation
//! of c2sp.org/signed-note).
//!
//! Justified differences, each checked to be the only kind seen:
//! - Key strings: we refuse uppercase hex key ids (one encoding per key), names with ASCII
//!   control characters (they could never appear in a note) and small-order or non-canonical
//!   public keys; `signed_note` accepts them.
//! - Notes: we verify every signature from a known key, so a second, bad signature by a key
//!   that already verified rejects the note; `signed_note` (like Go) skips repeats.
//! - Ed25519: we use `verify_strict`, `signed_note` uses `verify`; they differ only on
//!   small-order keys/R points, which mutations of honest signatures do not produce.

// clippy.toml lets #[test] functions panic; these helpers panic for the same reason (a
// panic is how a test fails) but sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use note::{Error, Note, Signer, Verifier};
use signed_note as sn;
use signed_note::Verifier as _;

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn seed(&mut self) -> [u8; 32] {
        let mut s = [0u8; 32];
        for b in &mut s {
            *b = self.next() as u8;
        }
        s
    }
}

fn their_signer(s: &Signer) -> sn::StandardSigner {
    sn::StandardSigner::new(&s.skey()).unwrap()
}

fn their_verifiers(vs: &[Verifier]) -> sn::VerifierList {
    sn::VerifierList::new(
        vs.iter()
            .map(|v| {
                Box::new(sn::StandardVerifier::new(&v.vkey()).unwrap()) as Box<dyn sn::Verifier>
            })
            .collect(),
    )
}

#[test]
fn key_strings_agree() {
    let mut rng = Rng(1);
    for i in 0..200 {
        let name = format!("log{i}.example/{}", "é—x".repeat(i % 3));
        let seed = rng.seed();
        let ours = Signer::generate(&name, &seed).unwrap();
        let vk = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        assert_eq!(
            ours.verifier().vkey(),
            sn::new_ed25519_verifier_key(&name, &vk)
        );
        let theirs_s = sn::StandardSigner::new(&ours.skey()).unwrap();
        let theirs_v = sn::StandardVerifier::new(&ours.verifier().vkey()).unwrap();
        use sn::Signer as _;
        assert_eq!(theirs_s.key_id(), ours.key_id());
        assert_eq!(theirs_v.key_id(), ours.key_id());
        assert_eq!(theirs_v.name(), ours.name());
        assert_eq!(
            sn::key_id(&name, &[&[1u8][..], vk.as_bytes()].concat()),
            ours.key_id()
        );
    }
}

#[test]
fn notes_signed_by_each_side_verify_on_the_other() {
    let mut rng = Rng(2);
    for i in 0..50 {
        let a = Signer::generate(&format!("a{i}"), &rng.seed()).unwrap();
        let b = Signer::generate(&format!("b{i}.example/x"), &rng.seed()).unwrap();
        let text = format!("line {i}\n\nafter a blank line — {}\n", "x".repeat(i));

        // Ours -> theirs.
        let mut ours = Note::new(&text).unwrap();
        ours.add_signature(a.signature(&text).unwrap()).unwrap();
        ours.add_signature(b.signature(&text).unwrap()).unwrap();
        let bytes = ours.to_bytes();
        let theirs = sn::Note::from_bytes(&bytes).unwrap();
        let (ok, unknown) = theirs
            .verify(&their_verifiers(&[a.verifier(), b.verifier()]))
            .unwrap();
        assert_eq!((ok.len(), unknown.len()), (2, 0));
        assert_eq!(theirs.text(), text.as_bytes());

        // Theirs -> ours, byte-identical to what we produce (Ed25519 is deterministic).
        let mut theirs = sn::Note::new(text.as_bytes(), &[]).unwrap();
        theirs
            .add_sigs(&[&their_signer(&a), &their_signer(&b)])
            .unwrap();
        let their_bytes = theirs.to_bytes();
        assert_eq!(their_bytes, bytes);
        let parsed = Note::parse(&their_bytes).unwrap();
        let names: Vec<_> = parsed
            .verify(&[b.verifier(), a.verifier()])
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names, [a.name(), b.name()]);
    }
}

fn ours_accepts(msg: &[u8], known: &[Verifier]) -> Result<usize, Error> {
    Note::parse(msg)?.verify(known).map(|v| v.len())
}

fn theirs_accepts(msg: &[u8], known: &sn::VerifierList) -> bool {
    sn::Note::from_bytes(msg)
        .and_then(|n| n.verify(known))
        .is_ok()
}

/// A known key signs more than once in `msg` (the one justified note difference).
fn has_repeated_known_signature(msg: &[u8], known: &[Verifier]) -> bool {
    let Ok(n) = Note::parse(msg) else {
        return false;
    };
    known.iter().any(|v| {
        n.signatures()
            .iter()
            .filter(|s| s.name() == v.name() && s.key_id() == v.key_id())
            .count()
            > 1
    })
}

const PIECES: &[&[u8]] = &[
    b"\n",
    b"\n\n",
    b" ",
    b"+",
    b"=",
    b"/",
    b"A",
    b"\xe2\x80\x94 ",
    b"\xe2\x80\x94",
    b"\x01",
    b"\xff",
    b"\xe3\x80\x80",
    b"\t",
    b"\r",
    b"0",
];

fn mutate(rng: &mut Rng, base: &[u8], lines: &[Vec<u8>]) -> Vec<u8> {
    let mut m = base.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(m.len() + 1);
        match rng.below(7) {
            0 if !m.is_empty() => {
                let at = at.min(m.len() - 1);
                m[at] ^= 1 << rng.below(8);
            }
            1 if at < m.len() => {
                m.remove(at);
            }
            2 => {
                let piece = PIECES[rng.below(PIECES.len())];
                m.splice(at..at, piece.iter().copied());
            }
            3 => m.extend_from_slice(&lines[rng.below(lines.len())]),
            4 => {
                let end = (at + rng.below(8)).min(m.len());
                m.drain(at..end);
            }
            5 if !m.is_empty() => {
                let at = at.min(m.len() - 1);
                m[at] = PIECES[rng.below(PIECES.len())][0];
            }
            _ => m.truncate(at),
        }
    }
    m
}

#[test]
fn mutated_notes_get_the_same_outcome() {
    let mut rng = Rng(3);
    let a = Signer::generate("a.example", &rng.seed()).unwrap();
    let b = Signer::generate("b.example", &rng.seed()).unwrap();
    let stranger = Signer::generate("a.example", &rng.seed()).unwrap();
    let known = [a.verifier(), b.verifier()];
    let theirs_known = their_verifiers(&known);
    let (mut same, mut accepted, mut repeated) = (0, 0, 0);
    for round in 0..300 {
        let text: String = (0..rng.below(40))
            .map(|_| ["a", "b", " ", "\n", "—", "é", "+", "="][rng.below(8)])
            .collect::<String>()
            + "\n";
        let mut lines = Vec::new();
        for s in [&a, &b, &stranger] {
            lines.push(s.signature(&text).unwrap().to_line().into_bytes());
        }
        let mut base = format!("{text}\n").into_bytes();
        for _ in 0..1 + rng.below(3) {
            base.extend_from_slice(&lines[rng.below(lines.len())]);
        }
        for _ in 0..200 {
            let m = if round % 10 == 0 {
                base.clone()
            } else {
                mutate(&mut rng, &base, &lines)
            };
            let ours = ours_accepts(&m, &known);
            let theirs = theirs_accepts(&m, &theirs_known);
            if ours.is_ok() == theirs {
                same += 1;
                accepted += usize::from(theirs);
                if let Ok(n) = Note::parse(&m) {
                    // Whatever we parse, we format back byte for byte.
                    assert_eq!(n.to_bytes(), m);
                }
            } else {
                assert!(
                    ours == Err(Error::InvalidSignature)
                        && theirs
                        && has_repeated_known_signature(&m, &known),
                    "ours {ours:?}, theirs {theirs} on {:?}",
                    String::from_utf8_lossy(&m)
                );
                repeated += 1;
            }
        }
    }
    println!("same outcome {same} (accepted {accepted}), repeated-key difference {repeated}");
    assert!(
        same > 55_000 && accepted > 1_000,
        "mutations too tame or too wild"
    );
}

#[test]
fn mutated_verifier_keys_get_the_same_outcome_modulo_strictness() {
    let mut rng = Rng(4);
    let (mut same, mut stricter) = (0, 0);
    for i in 0..100 {
        let vkey = Signer::generate(&format!("k{i}/x"), &rng.seed())
            .unwrap()
            .verifier()
            .vkey();
        let lines = vec![b"+".to_vec(), b"=".to_vec()];
        for _ in 0..200 {
            let m = mutate(&mut rng, vkey.as_bytes(), &lines);
            let Ok(m) = String::from_utf8(m) else {
                continue;
            };
            let ours = Verifier::from_vkey(&m);
            let theirs = sn::StandardVerifier::new(&m);
            match (&ours, &theirs) {
                (Ok(o), Ok(t)) => {
                    assert_eq!((o.name(), o.key_id()), (t.name(), t.key_id()));
                    assert_eq!(o.vkey(), m);
                    same += 1;
                }
                (Err(_), Err(_)) => same += 1,
                (Err(e), Ok(_)) => {
                    let (name, rest) = m.split_once('+').unwrap();
                    let hex = rest.split_once('+').unwrap().0;
                    let justified = match e {
                        Error::KeyIdHex => hex.bytes().any(|b| b.is_ascii_uppercase()),
                        Error::KeyName => name.bytes().any(|b| b < 0x20),
                        Error::PublicKey => true,
                        _ => false,
                    };
                    assert!(justified, "{e:?} on {m:?}");
                    stricter += 1;
                }
                (Ok(_), Err(e)) => panic!("we accept {m:?}, they say {e:?}"),
            }
        }
    }
    println!("same outcome {same}, justified stricter {stricter}");
    assert!(same > 15_000);
}

#[test]
fn uppercase_key_id_is_the_known_key_string_difference() {
    let vkey = include_str!("../testdata/notes/peterneumann.vkey").trim_end();
    let upper = vkey.replace("c74f20a3", "C74F20A3");
    assert!(sn::StandardVerifier::new(&upper).is_ok());
    assert_eq!(Verifier::from_vkey(&upper), Err(Error::KeyIdHex));
}
