//! `parse_tile_path` on arbitrary text: never panics, and whatever it accepts is the one
//! canonical spelling (formatting the parsed tile gives the input back).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlog::tile::parse_tile_path;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(tile) = parse_tile_path(s) {
        assert_eq!(tile.path().as_str(), s);
        assert!((1..=256).contains(&tile.width()));
        assert_eq!(parse_tile_path(tile.path().as_str()), Ok(tile));
    }
});
