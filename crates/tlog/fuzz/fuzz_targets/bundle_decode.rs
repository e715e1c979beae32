//! Entry bundle decoding on arbitrary bytes: never panics; whatever decodes re-encodes to the
//! same bytes, and `decode_bundle` agrees with the `bundle_entries` iterator.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlog::tile::{bundle_entries, decode_bundle, encode_entry};

fuzz_target!(|data: &[u8]| {
    let Some((&w, bundle)) = data.split_first() else {
        return;
    };
    let width = u16::from(w) + 1;
    let all: Result<Vec<&[u8]>, _> = bundle_entries(bundle).collect();
    match decode_bundle(bundle, width) {
        Ok(entries) => {
            assert_eq!(entries.len(), usize::from(width));
            assert_eq!(all.as_ref().ok(), Some(&entries));
            let mut again = Vec::new();
            for e in &entries {
                encode_entry(&mut again, e).unwrap();
            }
            assert_eq!(again, bundle);
        }
        Err(_) => {
            if let Ok(all) = all {
                assert_ne!(all.len(), usize::from(width));
            }
        }
    }
});
