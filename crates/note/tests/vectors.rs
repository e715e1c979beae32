//! The signed-note vectors in testdata/notes (see its README) and every rejection it lists.

// clippy.toml lets #[test] functions panic; these helpers panic for the same reason (a
// panic is how a test fails) but sit outside them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use note::{Error, KeyType, Note, Signer, Verifier, MAX_SIGNATURES};

const PETER_SKEY: &str = include_str!("../testdata/notes/peterneumann.skey");
const PETER_VKEY: &str = include_str!("../testdata/notes/peterneumann.vkey");
const PETER_TXT: &str = include_str!("../testdata/notes/peterneumann.txt");
const PETER_NOTE: &str = include_str!("../testdata/notes/peterneumann.note");
const ENOCH_VKEY: &str = include_str!("../testdata/notes/enochroot.vkey");
const ENOCH_SIGLINE: &str = include_str!("../testdata/notes/enochroot.sigline");
const C2SP_VKEY: &str = include_str!("../testdata/notes/c2sp-example.vkey");
const C2SP_NOTE: &str = include_str!("../testdata/notes/c2sp-example.note");

fn line(s: &str) -> &str {
    s.strip_suffix('\n').expect("key files end in a newline")
}

fn peter() -> Verifier {
    Verifier::from_vkey(line(PETER_VKEY)).unwrap()
}

fn enoch() -> Verifier {
    Verifier::from_vkey(line(ENOCH_VKEY)).unwrap()
}

#[test]
fn peterneumann_sign_reproduces_note_byte_for_byte() {
    let signer = Signer::from_skey(line(PETER_SKEY)).unwrap();
    assert_eq!(signer.name(), "PeterNeumann");
    assert_eq!(signer.key_id(), 0xc74f20a3);
    assert_eq!(signer.skey(), line(PETER_SKEY));
    assert_eq!(signer.verifier().vkey(), line(PETER_VKEY));
    assert_eq!(signer.sign(PETER_TXT).unwrap(), PETER_NOTE);
}

#[test]
fn peterneumann_note_verifies() {
    let note = Note::parse(PETER_NOTE.as_bytes()).unwrap();
    assert_eq!(note.text(), PETER_TXT);
    let ok = note.verify(&[peter()]).unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].name, "PeterNeumann");
    assert_eq!(ok[0].key_id, 0xc74f20a3);
    assert_eq!(ok[0].key_type, KeyType::Ed25519);
    assert_eq!(ok[0].timestamp, None);
    assert_eq!(note.to_bytes(), PETER_NOTE.as_bytes());
}

#[test]
fn enochroot_is_the_all_zero_seed_and_signs_the_same_text() {
    let signer = Signer::generate("EnochRoot", &[0u8; 32]).unwrap();
    assert_eq!(signer.verifier().vkey(), line(ENOCH_VKEY));
    let sig = signer.signature(PETER_TXT).unwrap();
    assert_eq!(sig.to_line(), ENOCH_SIGLINE);
}

#[test]
fn note_with_two_signers_verifies_for_each_and_both() {
    let two = format!("{PETER_NOTE}{ENOCH_SIGLINE}");
    let note = Note::parse(two.as_bytes()).unwrap();
    assert_eq!(note.signatures().len(), 2);
    let names = |v: Vec<note::Verified>| v.into_iter().map(|v| v.name).collect::<Vec<_>>();
    assert_eq!(names(note.verify(&[peter()]).unwrap()), ["PeterNeumann"]);
    assert_eq!(names(note.verify(&[enoch()]).unwrap()), ["EnochRoot"]);
    assert_eq!(
        names(note.verify(&[enoch(), peter()]).unwrap()),
        ["PeterNeumann", "EnochRoot"]
    );
    assert_eq!(note.to_bytes(), two.as_bytes());
}

#[test]
fn c2sp_example_verifies() {
    let v = Verifier::from_vkey(line(C2SP_VKEY)).unwrap();
    assert_eq!(v.vkey(), line(C2SP_VKEY));
    let note = Note::parse(C2SP_NOTE.as_bytes()).unwrap();
    assert_eq!(note.text(), "This is an example message.\n");
    let ok = note.verify(&[v]).unwrap();
    assert_eq!(ok[0].name, "example.com/foo");
    // The example key does not verify PeterNeumann's note, whose key it does not know.
    let peter_note = Note::parse(PETER_NOTE.as_bytes()).unwrap();
    let v = Verifier::from_vkey(line(C2SP_VKEY)).unwrap();
    assert_eq!(peter_note.verify(&[v]), Err(Error::NoVerifiedSignature));
}

#[test]
fn every_proper_substring_of_a_verifier_key_is_rejected() {
    let vkey = line(PETER_VKEY);
    for i in 0..=vkey.len() {
        for j in i..=vkey.len() {
            if (i, j) == (0, vkey.len()) {
                continue;
            }
            let sub = &vkey[i..j];
            assert!(
                Verifier::from_vkey(sub).is_err(),
                "accepted substring {sub:?}"
            );
        }
    }
}

/// Every position, replaced by every ASCII byte and a few multi-byte characters.
#[test]
fn every_single_byte_change_of_a_verifier_key_is_rejected() {
    let vkey = line(PETER_VKEY);
    let mut replacements: Vec<String> = (0u8..0x80).map(|b| (b as char).to_string()).collect();
    replacements.extend(["\u{a0}", "\u{2014}", "é"].map(String::from));
    let mut tried = 0;
    for i in 0..vkey.len() {
        for r in &replacements {
            let changed = format!("{}{}{}", &vkey[..i], r, &vkey[i + 1..]);
            if changed == vkey {
                continue;
            }
            tried += 1;
            assert!(
                Verifier::from_vkey(&changed).is_err(),
                "accepted {changed:?}"
            );
        }
    }
    assert!(tried > 60 * 128);
}

#[test]
fn every_proper_substring_and_change_of_a_signer_key_is_rejected() {
    let skey = line(PETER_SKEY);
    for i in 0..=skey.len() {
        for j in i..=skey.len() {
            if (i, j) != (0, skey.len()) {
                assert!(Signer::from_skey(&skey[i..j]).is_err());
            }
        }
    }
    for i in 0..skey.len() {
        for b in 0u8..0x80 {
            let changed = format!("{}{}{}", &skey[..i], b as char, &skey[i + 1..]);
            if changed != skey {
                assert!(Signer::from_skey(&changed).is_err(), "accepted {changed:?}");
            }
        }
    }
}

#[test]
fn bad_key_length_is_rejected() {
    // "EY==" has non-zero trailing bits: refused as non-canonical base64 before the length is
    // looked at (Go's lenient decoder gets as far as the length check).
    assert_eq!(
        Verifier::from_vkey(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        ),
        Err(Error::KeyBase64)
    );
    // The same with canonical padding: 37 bytes of key.
    assert_eq!(
        Verifier::from_vkey(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEQ=="
        ),
        Err(Error::KeyLength)
    );
}

#[test]
fn unknown_algorithm_is_rejected() {
    assert_eq!(
        Verifier::from_vkey("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(Error::KeyType)
    );
}

fn peter_sig_line() -> &'static str {
    PETER_NOTE
        .strip_prefix(PETER_TXT)
        .unwrap()
        .strip_prefix('\n')
        .unwrap()
}

#[test]
fn malformed_notes_are_rejected_with_the_reason() {
    let sig = peter_sig_line();
    let cases: Vec<(Vec<u8>, Error)> = vec![
        (PETER_TXT.into(), Error::MissingBlankLine),
        (format!("{PETER_TXT}\n").into(), Error::NoSignatures),
        (
            format!("{PETER_TXT}\n{}", sig.strip_suffix('\n').unwrap()).into(),
            Error::MissingFinalNewline,
        ),
        (
            [b"\x01".as_slice(), PETER_NOTE.as_bytes()].concat(),
            Error::ControlCharacter,
        ),
        (
            [b"\xff".as_slice(), PETER_NOTE.as_bytes()].concat(),
            Error::NoteNotUtf8,
        ),
        (
            PETER_NOTE.replace("PeterNeumann", "Peter Neumann").into(),
            Error::SignatureBase64,
        ),
        (
            format!("{PETER_NOTE}Unexpected line.\n").into(),
            Error::SignatureLinePrefix,
        ),
        (
            format!("{PETER_TXT}\n-- PeterNeumann AAAAAAA=\n").into(),
            Error::SignatureLinePrefix,
        ),
        (
            format!("{PETER_TXT}\n\u{2014} PeterNeumann\n").into(),
            Error::SignatureLineFormat,
        ),
        (
            format!("{PETER_TXT}\n\u{2014}  AAAAAAA=\n").into(),
            Error::KeyName,
        ),
        (
            format!("{PETER_TXT}\n\u{2014} a+b AAAAAAA=\n").into(),
            Error::KeyName,
        ),
        (
            format!("{PETER_TXT}\n\u{2014} a\u{3000}b AAAAAAA=\n").into(),
            Error::KeyName,
        ),
        (
            format!("{PETER_TXT}\n\u{2014} a \n").into(),
            Error::SignatureTooShort,
        ),
        (
            format!("{PETER_TXT}\n\u{2014} a AAAAAAB=\n").into(),
            Error::SignatureBase64,
        ),
        (
            format!("{PETER_TXT}\n\u{2014} a AAAAAA==\n").into(),
            Error::SignatureTooShort,
        ),
        (
            format!("{PETER_TXT}\n\u{2014} a AAAAAAA\n").into(),
            Error::SignatureBase64,
        ),
        (
            format!("{PETER_TXT}\n{sig}\r").into(),
            Error::ControlCharacter,
        ),
        (
            format!("{PETER_TXT}\n\t{sig}").into(),
            Error::ControlCharacter,
        ),
        (Vec::new(), Error::MissingBlankLine),
        (b"\n\n".to_vec(), Error::NoSignatures),
    ];
    for (input, want) in cases {
        let got = Note::parse(&input);
        assert_eq!(
            got,
            Err(want),
            "input {:?}",
            String::from_utf8_lossy(&input)
        );
        // The message says what is wrong.
        assert!(want.to_string().len() > 20);
    }
}

#[test]
fn the_last_blank_line_separates_text_from_signatures() {
    // A blank line between two signature lines makes the first one part of the text, which
    // then no longer verifies under Peter's key.
    let sig = peter_sig_line();
    let note = Note::parse(format!("{PETER_TXT}\n{sig}\n{sig}").as_bytes()).unwrap();
    assert_eq!(note.text(), format!("{PETER_TXT}\n{sig}"));
    assert_eq!(note.verify(&[peter()]), Err(Error::InvalidSignature));
}

#[test]
fn a_signer_name_containing_a_space_cannot_sign() {
    assert_eq!(
        Signer::generate("Peter Neumann", &[1; 32]).unwrap_err(),
        Error::KeyName
    );
    assert_eq!(Signer::generate("", &[1; 32]).unwrap_err(), Error::KeyName);
    assert_eq!(
        Signer::generate("a+b", &[1; 32]).unwrap_err(),
        Error::KeyName
    );
    assert_eq!(
        Signer::generate("a\u{1}", &[1; 32]).unwrap_err(),
        Error::KeyName
    );
    assert!(Signer::generate("ok/é\u{2014}", &[1; 32]).is_ok());
}

#[test]
fn four_inserted_signature_bytes_make_an_invalid_signature() {
    // Decode the signature, insert four bytes after the key id, re-encode.
    let note = Note::parse(PETER_NOTE.as_bytes()).unwrap();
    let s = &note.signatures()[0];
    let mut bad = s.signature().to_vec();
    bad.splice(0..0, [1, 2, 3, 4]);
    let mut tampered = Note::new(note.text()).unwrap();
    tampered
        .add_signature(note::Signature::new(s.name(), s.key_id(), &bad).unwrap())
        .unwrap();
    let reparsed = Note::parse(&tampered.to_bytes()).unwrap();
    assert_eq!(reparsed.verify(&[peter()]), Err(Error::InvalidSignature));
    // Unknown to this verifier set: ignored, so the note has no verified signature.
    assert_eq!(reparsed.verify(&[enoch()]), Err(Error::NoVerifiedSignature));
}

#[test]
fn changed_text_is_an_invalid_signature() {
    let bad = PETER_NOTE.replacen("answer", "Answer", 1);
    let note = Note::parse(bad.as_bytes()).unwrap();
    assert_eq!(note.verify(&[peter()]), Err(Error::InvalidSignature));
}

#[test]
fn the_same_name_and_key_id_twice_is_ambiguous() {
    let note = Note::parse(PETER_NOTE.as_bytes()).unwrap();
    assert_eq!(
        note.verify(&[peter(), peter()]),
        Err(Error::AmbiguousVerifiers)
    );
    // Even when the note has no signature from that key.
    assert_eq!(
        note.verify(&[enoch(), enoch(), peter()]),
        Err(Error::AmbiguousVerifiers)
    );
    assert_eq!(note.verify(&[]), Err(Error::NoVerifiedSignature));
}

#[test]
fn same_name_other_id_or_same_id_other_name_is_ignored() {
    // A signature line claiming PeterNeumann with another key id, and one with Peter's key id
    // under another name: both come from keys the verifier does not know.
    let note = Note::parse(PETER_NOTE.as_bytes()).unwrap();
    let s = &note.signatures()[0];
    let mut n = Note::new(PETER_TXT).unwrap();
    n.add_signature(note::Signature::new("PeterNeumann", 0x12345678, &[0; 64]).unwrap())
        .unwrap();
    n.add_signature(note::Signature::new("Other", s.key_id(), &[0; 64]).unwrap())
        .unwrap();
    let parsed = Note::parse(&n.to_bytes()).unwrap();
    assert_eq!(parsed.verify(&[peter()]), Err(Error::NoVerifiedSignature));
    n.add_signature(s.clone()).unwrap();
    let parsed = Note::parse(&n.to_bytes()).unwrap();
    assert_eq!(parsed.verify(&[peter()]).unwrap().len(), 1);
}

/// A note with `n` signatures from distinct throwaway keys, Peter's last.
fn note_with(n: usize) -> Vec<u8> {
    let mut s = format!("{PETER_TXT}\n");
    for i in 0..n - 1 {
        let signer = Signer::generate(&format!("k{i}"), &[i as u8; 32]).unwrap();
        s.push_str(&signer.signature(PETER_TXT).unwrap().to_line());
    }
    s.push_str(peter_sig_line());
    s.into_bytes()
}

#[test]
fn sixteen_and_a_hundred_signatures_are_accepted_and_101_rejected() {
    for n in [16, MAX_SIGNATURES] {
        let note = Note::parse(&note_with(n)).unwrap();
        assert_eq!(note.signatures().len(), n);
        assert_eq!(note.verify(&[peter()]).unwrap()[0].name, "PeterNeumann");
    }
    assert_eq!(Note::parse(&note_with(101)), Err(Error::TooManySignatures));
}

#[test]
fn every_known_signature_is_verified_and_reported_once() {
    let signers: Vec<Signer> = (0..16)
        .map(|i| Signer::generate(&format!("log{i}.example/k"), &[i as u8 + 7; 32]).unwrap())
        .collect();
    let mut n = Note::new("hello\n").unwrap();
    for s in &signers {
        n.add_signature(s.signature("hello\n").unwrap()).unwrap();
    }
    let parsed = Note::parse(&n.to_bytes()).unwrap();
    let verifiers: Vec<Verifier> = signers.iter().map(Signer::verifier).collect();
    assert_eq!(parsed.verify(&verifiers).unwrap().len(), 16);

    // A repeated signature line from a known key: verified again, reported once.
    let dup = format!("{}{}", n, n.signatures()[3].to_line());
    let parsed = Note::parse(dup.as_bytes()).unwrap();
    assert_eq!(parsed.verify(&verifiers).unwrap().len(), 16);
    // A second, bad signature from a known key rejects the note even after a good one.
    let bad = note::Signature::new(signers[3].name(), signers[3].key_id(), &[0; 64]).unwrap();
    let dup = format!("{}{}", n, bad.to_line());
    let parsed = Note::parse(dup.as_bytes()).unwrap();
    assert_eq!(parsed.verify(&verifiers), Err(Error::InvalidSignature));
}

#[test]
fn add_signature_replaces_the_same_key_and_caps_at_100() {
    let signer = Signer::from_skey(line(PETER_SKEY)).unwrap();
    let mut n = Note::new(PETER_TXT).unwrap();
    n.add_signature(signer.signature(PETER_TXT).unwrap())
        .unwrap();
    n.add_signature(signer.signature(PETER_TXT).unwrap())
        .unwrap();
    assert_eq!(n.to_string(), PETER_NOTE);
    let mut n = Note::new("t\n").unwrap();
    for i in 0..MAX_SIGNATURES as u32 {
        n.add_signature(note::Signature::new("k", i, &[1]).unwrap())
            .unwrap();
    }
    assert_eq!(
        n.add_signature(note::Signature::new("k", 1000, &[1]).unwrap()),
        Err(Error::TooManySignatures)
    );
}

#[test]
fn texts_that_cannot_be_signed() {
    let signer = Signer::from_skey(line(PETER_SKEY)).unwrap();
    assert_eq!(signer.sign(""), Err(Error::TextFormat));
    assert_eq!(signer.sign("no newline"), Err(Error::TextFormat));
    assert_eq!(signer.sign("tab\there\n"), Err(Error::ControlCharacter));
    // Blank lines inside or at the end of the text survive a round trip: the text ends at the
    // last blank line.
    for text in ["\n", "a\n\nb\n", "a\n\n", "\n\n\n"] {
        let signed = signer.sign(text).unwrap();
        let note = Note::parse(signed.as_bytes()).unwrap();
        assert_eq!(note.text(), text);
        assert_eq!(note.verify(&[peter()]).unwrap().len(), 1);
    }
}

#[test]
fn key_string_round_trips() {
    for (i, name) in ["a", "example.com/log", "é\u{2014}x", "x=y/z"]
        .iter()
        .enumerate()
    {
        let s = Signer::generate(name, &[i as u8 * 31 + 1; 32]).unwrap();
        let again = Signer::from_skey(&s.skey()).unwrap();
        assert_eq!(again.skey(), s.skey());
        let v = Verifier::from_vkey(&s.verifier().vkey()).unwrap();
        assert_eq!(v, s.verifier());
        assert_eq!(v.vkey(), s.verifier().vkey());
        assert_eq!(
            v.key_id(),
            note::key_id(name, KeyType::Ed25519, &v.public_key())
        );
        let from_raw = Verifier::from_public_key(name, KeyType::Ed25519, &v.public_key()).unwrap();
        assert_eq!(from_raw, v);
    }
}

#[test]
fn key_string_errors_say_what_is_wrong() {
    let vkey = line(PETER_VKEY);
    assert_eq!(Verifier::from_vkey("PeterNeumann"), Err(Error::KeyFormat));
    assert_eq!(
        Verifier::from_vkey("PeterNeumann+c74f20a3"),
        Err(Error::KeyFormat)
    );
    assert_eq!(
        Verifier::from_vkey(&vkey.replace("c74f20a3", "C74F20A3")),
        Err(Error::KeyIdHex)
    );
    assert_eq!(
        Verifier::from_vkey(&vkey.replace("c74f20a3", "c74f20a")),
        Err(Error::KeyIdHex)
    );
    assert_eq!(
        Verifier::from_vkey(&vkey.replace("c74f20a3", "c74f20a4")),
        Err(Error::KeyIdMismatch)
    );
    assert_eq!(
        Verifier::from_vkey(&format!("{vkey}=")),
        Err(Error::KeyBase64)
    );
    assert_eq!(
        Verifier::from_vkey("PeterNeumann+c74f20a3+"),
        Err(Error::KeyLength)
    );
    // A small-order public key with a correct id.
    let weak = [0u8; 32];
    let id = note::key_id("w", KeyType::Ed25519, &weak);
    let mut raw = vec![1u8];
    raw.extend_from_slice(&weak);
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    assert_eq!(
        Verifier::from_vkey(&format!("w+{id:08x}+{b64}")),
        Err(Error::PublicKey)
    );
    // Signer key strings.
    assert_eq!(Signer::from_skey(vkey).unwrap_err(), Error::SignerKeyPrefix);
    let skey = line(PETER_SKEY);
    assert_eq!(
        Signer::from_skey(&skey.replace("c74f20a3", "c74f20a4")).unwrap_err(),
        Error::KeyIdMismatch
    );
}
