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
    // Anything accepted as a signer key with its prefix stripped is a verifier-shaped string
    // of seed material, and must not be accepted as a key of the other kind.
    if let Some(rest) = s.strip_prefix("PRIVATE+KEY+") {
        let _ = Verifier::from_vkey(rest);
    }
});
