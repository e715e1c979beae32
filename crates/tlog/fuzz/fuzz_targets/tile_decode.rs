//! `tile_hashes` on arbitrary bytes and widths: never panics, and accepts exactly the inputs
//! of `32 × width` bytes, returning them unchanged as `width` hashes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlog::tile::tile_hashes;

fuzz_target!(|data: &[u8]| {
    let Some((&w, tile)) = data.split_first() else {
        return;
    };
    // Widths 0..=256 from one byte plus a bit of the length, so 256 is reachable.
    let width = u16::from(w) + u16::from(tile.len() > 8000);
    match tile_hashes(tile, width) {
        Ok(hashes) => {
            assert_eq!(tile.len(), usize::from(width) * 32);
            assert_eq!(hashes.len(), usize::from(width));
            assert_eq!(hashes.as_flattened(), tile);
        }
        Err(_) => assert_ne!(tile.len(), usize::from(width) * 32),
    }
});
