//! Note and checkpoint parsing and verification on arbitrary bytes: never panics, and what is
//! accepted formats back byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use note::{Checkpoint, Cosigner, Note, Signer, Verifier};
use std::sync::OnceLock;

fn known() -> &'static [Verifier] {
    static KNOWN: OnceLock<Vec<Verifier>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let mut v = vec![
            Verifier::from_vkey("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
                .unwrap(),
            Signer::generate("EnochRoot", &[0; 32]).unwrap().verifier(),
        ];
        v.push(Cosigner::generate("w.example", &[1; 32]).unwrap().verifier());
        v
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = Note::parse(data) {
        assert_eq!(note.to_bytes(), data);
        assert!(note.signatures().len() <= note::MAX_SIGNATURES);
        if let Ok(verified) = note.verify(known()) {
            assert!(!verified.is_empty());
        }
        if let Ok(c) = Checkpoint::parse(note.text()) {
            assert_eq!(c.to_text(), note.text());
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = Checkpoint::parse(text) {
            assert_eq!(c.to_text(), text);
            assert!(Note::new(text).is_ok());
        }
    }
});
