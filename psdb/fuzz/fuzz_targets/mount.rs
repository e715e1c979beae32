//! Mount and fsck any image: no panic, and every object served passes its checks.
//!
//! `cargo +nightly fuzz run mount` from `psdb/` (seed: `cargo run -p psdb --example make_image
//! -- fuzz/corpus/mount/demo 3 32`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use psdb::{fsck, Mode, RamDevice, Store};

fuzz_target!(|data: &[u8]| {
    let image = data.to_vec();
    let report = fsck(RamDevice::from_image(image.clone())).ok();
    if let Ok((mut store, mounted)) = Store::mount(RamDevice::from_image(image), Mode::ReadWrite) {
        let names: Vec<String> = store.namespaces().map(String::from).collect();
        let mut out = Vec::new();
        for name in &names {
            let Ok(ns) = store.open_namespace(name) else { continue };
            let paths: Vec<String> = match store.list(ns, "") {
                Ok(it) => it.map(|(p, _)| p.to_string()).collect(),
                Err(_) => continue,
            };
            for p in paths {
                let _ = store.get(ns, &p, &mut out);
            }
        }
        // A clean fsck means mount found the same volume.
        if let Some(r) = report {
            if r.problem.is_none() {
                assert_eq!(mounted.objects, r.objects);
                assert_eq!(mounted.end, r.end);
            }
        }
        // New puts work on anything mount accepted, and a remount sees them.
        if let Ok(ns) = store.open_namespace("fuzz") {
            if store.put(ns, "new/object", b"fuzz").is_ok() && store.flush().is_ok() {
                let dev = store.into_device();
                let (mut again, _) = Store::mount(dev, Mode::ReadOnly).expect("remount after put");
                let ns = again.open_namespace("fuzz").expect("namespace");
                assert!(again.get(ns, "new/object", &mut out).expect("get"));
                assert_eq!(out, b"fuzz");
            }
        }
    }
});
