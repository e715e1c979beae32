//! Verifier and signer key string parsing on arbitrary strings: never panics, and what is
//! accepted formats back to the same string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use note::{Cosigner, Signer, Verifier};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(v) = Verifier::from_vkey(s) {
        assert_eq!(v.vkey(), s);
    }
    if let Ok(k) = Signer::from_skey(s) {
        assert_eq!(k.skey(), s);
        assert_eq!(Verifier::from_vkey(&k.verifier().vkey()), Ok(k.verifier()));
    }
    if let Ok(k) = Cosigner::from_skey(s) {
        assert_eq!(k.skey(), s);
    }
    // A signer key without its prefix has the verifier key shape (seed in place of public
    // key): parsing it must not panic either.
    if let Some(rest) = s.strip_prefix("PRIVATE+KEY+") {
        let _ = Verifier::from_vkey(rest);
    }
});
