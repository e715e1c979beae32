//! The trust claims under faults and abuse, through the whole simulated system: a tamper matrix
//! (one byte flipped in each kind of object, in the final and in an earlier batch, then a
//! restart), objects planted in the raw disk, and a refused request on a full tenant. After
//! each: no acknowledged entry silently lost, no checkpoint signed that is inconsistent with an
//! earlier one, damage reported and kept on disk, the other tenants unaffected.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use interface::TENANTS;
use protocol::client::ClientError;
use protocol::ErrorCode;
use psdb::RamDevice;

mod common;
use common::*;

/// One tar member of the image: where its header is, its name and data size, and the batch
/// (counted from the volume batch, 0) it belongs to.
#[derive(Debug, Clone)]
struct Member {
    at: usize,
    name: String,
    size: usize,
    batch: usize,
}

/// Walks the image as tar does, up to the end-of-archive marker.
fn members(image: &[u8]) -> Vec<Member> {
    let mut out = Vec::new();
    let (mut at, mut batch) = (0usize, 0usize);
    while at + 512 <= image.len() && image[at] != 0 {
        let h = &image[at..at + 512];
        let name_len = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
        let name = String::from_utf8(h[..name_len].to_vec()).unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&h[124..135]).unwrap(), 8).unwrap();
        // A batch ends with its commit record, in every format version (v3 starts a batch
        // with its manifest, v4 with its head sector and puts the manifest last).
        let ends_batch = name.starts_with(".psdb/commit/");
        out.push(Member {
            at,
            name,
            size,
            batch,
        });
        if ends_batch {
            batch += 1;
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

/// The namespace whose objects batch `b` holds.
fn owner(members: &[Member], b: usize) -> String {
    members
        .iter()
        .filter(|m| m.batch == b && !m.name.starts_with(".psdb/"))
        .map(|m| m.name.split('/').next().unwrap().to_string())
        .next()
        .unwrap()
}

/// What each tenant acknowledged: its entries and its signed checkpoint.
struct Acked {
    entries: BTreeMap<String, Vec<Vec<u8>>>,
    checkpoints: BTreeMap<String, Vec<u8>>,
}

/// corporate 100 entries, personnel 50, property 601 (in requests of 100 and a last one of
/// 1, as in the issue): the final batch on disk is property's.
fn history() -> (Vec<u8>, Acked) {
    let mut rig = boot_on(Rc::new(RefCell::new(RamDevice::new(64 << 11))));
    let mut entries = BTreeMap::new();
    for (t, n, per) in [
        ("corporate", 100, 25),
        ("personnel", 50, 25),
        ("property", 601, 100),
    ] {
        let all: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("{t} record {i}").into_bytes())
            .collect();
        for chunk in all.chunks(per) {
            rig.client.append(t, chunk).unwrap();
        }
        entries.insert(t.to_string(), all);
    }
    let checkpoints = TENANTS
        .iter()
        .map(|t| (t.to_string(), rig.client.checkpoint(t).unwrap()))
        .collect();
    let image = rig.disk.borrow().image().to_vec();
    (
        image,
        Acked {
            entries,
            checkpoints,
        },
    )
}

fn root_of(note: &[u8]) -> (u64, [u8; 32]) {
    let text = std::str::from_utf8(note).unwrap();
    let note = note::Note::parse(text.as_bytes()).unwrap();
    let cp = note::Checkpoint::parse(note.text()).unwrap();
    (cp.size(), *cp.root())
}

/// Checks every promise for tenant `t` on a booted rig; returns whether the tenant answered
/// `Damaged` to anything (the only refusal allowed, and only where `may_refuse`).
fn check_tenant(rig: &mut Rig, acked: &Acked, t: &str, may_refuse: bool, ctx: &str) -> bool {
    // A tenant the scenario wrote nothing to (a system with more tenants) must stay empty.
    let none = Vec::new();
    let want = acked.entries.get(t).unwrap_or(&none);
    let refused = |e: &ClientError| {
        assert!(
            matches!(e, ClientError::Remote(ErrorCode::Damaged)),
            "{ctx}: {t}: {e:?}"
        );
        assert!(
            may_refuse,
            "{ctx}: {t} refused though its data is intact: {e:?}"
        );
        true
    };
    let mut damaged = false;
    // Never less than was acknowledged, served as if complete.
    match rig.client.hello(t) {
        Ok(h) => assert_eq!(h.size, want.len() as u64, "{ctx}: {t}: a rolled-back size"),
        Err(e) => damaged |= refused(&e),
    }
    match rig.client.read(t, 0, 1000) {
        Ok(got) => {
            let got: Vec<Vec<u8>> = got.into_iter().map(|(_, e)| e).collect();
            assert_eq!(&got, want, "{ctx}: {t}: entries lost or changed");
        }
        Err(e) => damaged |= refused(&e),
    }
    // A new checkpoint extends the acknowledged one, or none is signed.
    match rig.client.append(t, &[b"after the restart"]) {
        Ok(idx) => {
            assert_eq!(idx, [want.len() as u64], "{ctx}: {t}");
            let size = export_and_verify(&mut rig.client, t);
            assert_eq!(size, want.len() as u64 + 1);
            let (old_size, old_root) = root_of(&acked.checkpoints[t]);
            let new = rig.client.checkpoint(t).unwrap();
            let (new_size, new_root) = root_of(&new);
            let mut tiles = BTreeMap::new();
            for tile in tlog::tile::tiles_for_size(new_size) {
                let p = tile.path().as_str().to_string();
                tiles.insert(p.clone(), rig.client.get_object(t, &p).unwrap().unwrap());
            }
            tlog::verify::verify_consistency_tiles(
                &mut Fetched(tiles),
                old_size,
                &old_root,
                new_size,
                &new_root,
            )
            .unwrap_or_else(|e| panic!("{ctx}: {t}: signed a fork: {e:?}"));
        }
        Err(e) => damaged |= refused(&e),
    }
    damaged
}

#[test]
fn tamper_matrix_nothing_lost_no_fork_damage_reported_others_unaffected() {
    let (image, acked) = history();
    let all = members(&image);
    let last = all.iter().map(|m| m.batch).max().unwrap();
    assert_eq!(
        owner(&all, last),
        "property",
        "the final batch is property's"
    );
    // corporate's last batch: committed, with later batches after it.
    let earlier = all
        .iter()
        .filter(|m| m.name.starts_with("corporate/"))
        .map(|m| m.batch)
        .max()
        .unwrap();
    let mut tried = 0;
    for (batch, final_batch) in [(last, true), (earlier, false)] {
        let ns = owner(&all, batch);
        let in_batch: Vec<&Member> = all.iter().filter(|m| m.batch == batch).collect();
        let find = |pred: &dyn Fn(&str) -> bool| *in_batch.iter().find(|m| pred(&m.name)).unwrap();
        let kinds: Vec<(&str, &Member, usize)> = vec![
            ("bundle", find(&|n| n.contains("/tile/entries/")), 512),
            ("hash tile", find(&|n| n.contains("/tile/0/")), 512),
            ("checkpoint", find(&|n| n.ends_with("/checkpoint")), 512),
            (
                "checksum member",
                find(&|n| n.starts_with(".psdb/checkpoint/")),
                512,
            ),
            ("manifest", find(&|n| n.starts_with(".psdb/batch/")), 512),
            ("batch head", find(&|n| n.starts_with(".psdb/head/")), 512),
            (
                "commit record",
                find(&|n| n.starts_with(".psdb/commit/")),
                512,
            ),
            ("tar header", find(&|n| n.contains("/tile/entries/")), 0),
        ];
        for (kind, m, data) in kinds {
            let pos = m.at + data + if data > 0 { m.size / 2 } else { 20 };
            let ctx = format!(
                "{kind} of {} batch {batch} ({ns}, byte {pos})",
                if final_batch {
                    "the final"
                } else {
                    "an earlier"
                }
            );
            let mut img = image.clone();
            img[pos] ^= 0x10;
            let flipped = img[pos];
            let fsck = psdb::fsck(RamDevice::from_image(img.clone())).unwrap();
            let benign = final_batch && kind == "commit record";
            if benign {
                // A final batch whose commit record is unreadable is a crash between the two
                // flushes: the whole batch is kept (nothing is lost) and the record rewritten.
                assert_eq!(
                    fsck.tail.map(|p| p.reason),
                    Some(psdb::Corruption::BadCommit)
                );
            } else {
                assert!(fsck.damage.is_some(), "{ctx}: fsck found nothing: {fsck:?}");
            }
            let disk = Rc::new(RefCell::new(RamDevice::from_image(img)));
            let mut rig = boot_on(disk.clone());
            for t in TENANTS {
                let mine = t == ns;
                let damaged = check_tenant(&mut rig, &acked, t, mine && !benign, &ctx);
                if damaged {
                    let console = sim(&mut rig).console();
                    assert!(
                        console
                            .iter()
                            .any(|l| l.starts_with(&format!("ledger_{t}|ERROR"))
                                || l.starts_with("psdb|ERROR")),
                        "{ctx}: {t} refused without a console report: {console:?}"
                    );
                }
            }
            if !benign {
                assert_eq!(
                    disk.borrow().image()[pos],
                    flipped,
                    "{ctx}: the damaged byte was written over"
                );
            }
            tried += 1;
        }
    }
    println!(
        "tamper matrix: {tried} images, each checked for all {} tenants",
        TENANTS.len()
    );
    assert_eq!(tried, 16);
}

#[test]
fn a_planted_bundle_is_reported_never_signed_and_the_tenant_keeps_serving() {
    let (image, acked) = history();
    for extends in [true, false] {
        // With the box stopped, someone who can write the disk adds property's bundle 002.p/90
        // (the committed 601 plus one forged entry, or unrelated entries) as a valid batch.
        let dev = RamDevice::from_image(image.clone());
        let (mut store, _) = psdb::Store::mount(dev, psdb::Mode::ReadWrite).unwrap();
        let ns = store.open_namespace("property").unwrap();
        let mut bundle = Vec::new();
        if extends {
            store.get(ns, "tile/entries/002.p/89", &mut bundle).unwrap();
            bundle.extend_from_slice(&6u16.to_be_bytes());
            bundle.extend_from_slice(b"forged");
        } else {
            for _ in 0..90 {
                bundle.extend_from_slice(&5u16.to_be_bytes());
                bundle.extend_from_slice(b"other");
            }
        }
        store.put(ns, "tile/entries/002.p/90", &bundle).unwrap();
        store.flush().unwrap();
        let disk = Rc::new(RefCell::new(store.into_device()));
        let mut rig = boot_on(disk);
        // Served as committed: 601 entries, the forged one nowhere.
        assert_eq!(rig.client.hello("property").unwrap().size, 601);
        let got: Vec<Vec<u8>> = rig
            .client
            .read("property", 0, 1000)
            .unwrap()
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        assert_eq!(got, acked.entries["property"]);
        // Reported once it is found, at open.
        let console = sim(&mut rig).console();
        assert!(
            console
                .iter()
                .any(|l| l.starts_with("ledger_property|ERROR") && l.contains("002.p/90")),
            "{console:?}"
        );
        // The next append would have to write over the planted path: refused, nothing signed.
        assert!(matches!(
            rig.client.append("property", &[b"real"]),
            Err(ClientError::Remote(ErrorCode::Damaged))
        ));
        assert_eq!(rig.client.hello("property").unwrap().size, 601);
        assert_eq!(export_and_verify(&mut rig.client, "property"), 601);
        // Nobody else notices.
        for t in ["corporate", "personnel"] {
            check_tenant(&mut rig, &acked, t, false, "planted");
        }
    }
}

#[test]
fn a_refused_request_leaves_nothing_and_a_full_tenant_keeps_serving_reads() {
    // An 8 MiB disk (each tenant's share about 2.2 MiB): append until corporate's request is
    // refused for room, part way through its entries.
    let disk = Rc::new(RefCell::new(RamDevice::new(8 << 11)));
    let mut rig = boot_on(disk.clone());
    let entry = vec![b'x'; 1000];
    let batch: Vec<&[u8]> = vec![&entry; 100];
    let mut acked = 0u64;
    loop {
        match rig.client.append("corporate", &batch) {
            Ok(idx) => {
                assert_eq!(idx[0], acked);
                acked += 100;
                assert!(acked < 10_000, "never full");
            }
            Err(ClientError::Remote(ErrorCode::Full)) => break,
            Err(e) => panic!("{e:?}"),
        }
    }
    // Nothing of the refused request is on disk: no object beyond the checkpoint.
    let image = disk.borrow().image().to_vec();
    let (mut store, _) =
        psdb::Store::mount(RamDevice::from_image(image), psdb::Mode::ReadOnly).unwrap();
    let ns = store.open_namespace("corporate").unwrap();
    let bundles: Vec<String> = store
        .list(ns, "tile/entries/")
        .unwrap()
        .map(|(p, _)| p.to_string())
        .collect();
    let committed: Vec<String> = tlog::tile::entry_bundles_for_size(acked)
        .map(|t| t.path().as_str().to_string())
        .collect();
    for b in &bundles {
        let n = b.trim_start_matches("tile/entries/");
        let ok = committed.iter().any(|c| c == b)
            || tlog::tile::parse_tile_path(b).is_ok_and(|t| {
                // Earlier partial versions of committed bundles.
                t.index() * 256 + u64::from(t.width()) <= acked
            });
        assert!(
            ok,
            "bundle {n} of a refused request is on disk (acked {acked})"
        );
    }
    let _ = &mut store;
    // The full tenant still serves reads and exports, now and after a restart.
    for rig in [&mut rig, &mut boot_on(disk.clone())] {
        assert_eq!(rig.client.hello("corporate").unwrap().size, acked);
        assert_eq!(
            rig.client.read("corporate", acked - 5, 100).unwrap().len(),
            5
        );
        assert_eq!(export_and_verify(&mut rig.client, "corporate"), acked);
        assert!(matches!(
            rig.client.append("corporate", &batch),
            Err(ClientError::Remote(ErrorCode::Full))
        ));
        rig.client.append("personnel", &[b"room left"]).unwrap();
    }
}
