//! Damaged images: random bytes, truncation, bit flips anywhere. Mount and fsck report the
//! damage; nothing panics; no read ever returns bytes that were not stored.
// A panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use psdb::{Corruption, Error, Mode, RamDevice, Store};

/// A volume with a few batches over two namespaces; its image and model.
fn reference() -> (Vec<u8>, Model, u64) {
    let mut s = fresh(512);
    let mut rng = Rng(3);
    let mut model = Model::default();
    for b in 0..8u64 {
        for k in 0..3 {
            let name = ["a", "b"][rng.below(2) as usize];
            let ns = s.open_namespace(name).unwrap();
            let n = rng.below(1500) as usize;
            let data = rng.bytes(n);
            let path = tile_path("0", b * 3 + k, 0);
            s.put(ns, &path, &data).unwrap();
            model
                .objects
                .entry(name.into())
                .or_default()
                .insert(path, data);
        }
        let ns = s.open_namespace("a").unwrap();
        let cp = format!("cp {b}\n").into_bytes();
        s.put_checkpoint(ns, &cp).unwrap();
        model.checkpoints.insert("a".into(), cp);
        s.flush().unwrap();
    }
    let end = s.stats().end;
    (s.into_device().into_image(), model, end)
}

/// Mounts `image`; every object it serves must be the model's bytes (or a Corrupt error).
/// Returns the mount result's problem (Err → its problem, Ok → the report's).
fn check_served(image: Vec<u8>, model: &Model) -> Option<psdb::Problem> {
    match Store::mount(RamDevice::from_image(image), Mode::ReadOnly) {
        Err(Error::Corrupt(p)) => Some(p),
        Err(e) => panic!("mount failed with a non-corruption error: {e:?}"),
        Ok((mut s, report)) => {
            let names: Vec<String> = s.namespaces().map(String::from).collect();
            let mut served = 0;
            for name in names {
                let ns = s.open_namespace(&name).unwrap();
                let paths: Vec<String> = s.list(ns, "").unwrap().map(|(p, _)| p.into()).collect();
                for p in paths {
                    let mut out = Vec::new();
                    match s.get(ns, &p, &mut out) {
                        Ok(true) => {
                            let want = if p == "checkpoint" {
                                // An older version if the final batch was discarded.
                                assert!(out.starts_with(b"cp "), "{out:?}");
                                continue;
                            } else {
                                &model.objects[&name][&p]
                            };
                            assert_eq!(&out, want, "served wrong bytes for {name}/{p}");
                            served += 1;
                        }
                        Err(Error::Corrupt(_)) => {}
                        // A namespace that lost a batch serves no checkpoint at all.
                        Err(Error::Damaged(_)) if p == "checkpoint" => {}
                        other => panic!("{other:?}"),
                    }
                }
            }
            if report.problem.is_none() {
                // Nothing discarded: the index is complete.
                assert_eq!(report.objects as usize, model.count());
            }
            let _ = served;
            report.problem
        }
    }
}

#[test]
fn random_images_are_not_volumes() {
    let mut rng = Rng(11);
    for i in 0..300 {
        let len = 512 * (1 + rng.below(64) as usize);
        let mut img = rng.bytes(len);
        if i % 3 == 0 {
            // Looks like a tar stream start.
            img[..6].copy_from_slice(b".psdb/");
        }
        assert!(check_served(img.clone(), &Model::default()).is_some());
        assert!(psdb::fsck(RamDevice::from_image(img))
            .unwrap()
            .problem
            .is_some());
    }
}

#[test]
fn truncated_images_are_reported() {
    let (image, model, end) = reference();
    let used = end as usize + 1024;
    let mut cuts: Vec<usize> = (0..used).step_by(512).collect();
    cuts.extend((0..used).step_by(97));
    for cut in cuts {
        let img = image[..cut].to_vec();
        let p = check_served(img.clone(), &model);
        match p {
            Some(p) => assert!(
                matches!(p.reason, Corruption::Truncated | Corruption::NotPsdb),
                "cut {cut}: {p:?}"
            ),
            None => panic!("cut at {cut} of {used} not reported"),
        }
        let f = psdb::fsck(RamDevice::from_image(img)).unwrap();
        assert!(f.problem.is_some(), "fsck missed a cut at {cut}");
    }
    // Cut after the end marker: intact.
    assert_eq!(check_served(image[..used].to_vec(), &model), None);
}

#[test]
fn bit_flips_anywhere_are_reported_or_harmless() {
    let (image, model, end) = reference();
    let used = end as usize + 1024;
    let stride = std::env::var("PSDB_CORRUPT_STRIDE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut flips = 0;
    let mut hard = 0;
    for pos in (0..used + 4096).step_by(stride) {
        let mut img = image.clone();
        img[pos] ^= 1 << (pos % 8);
        let mounted = check_served(img.clone(), &model);
        let f = psdb::fsck(RamDevice::from_image(img)).unwrap();
        if pos < used {
            let p = f
                .problem
                .unwrap_or_else(|| panic!("fsck missed a flip at {pos}"));
            // fsck points at or before the damaged byte, within the damaged batch.
            assert!(p.offset as usize <= pos, "flip at {pos}, fsck says {p:?}");
            // Mount either fails or reports a discarded tail, or the flip is in object data
            // mount does not read (then the read of that object fails, checked above).
            if let Some(m) = mounted {
                if m.reason != Corruption::IncompleteTail {
                    hard += 1;
                }
            }
        } else {
            assert_eq!(f.problem, None, "flip past the end at {pos}");
            assert_eq!(mounted, None);
        }
        flips += 1;
    }
    println!("bit flips: {flips} images checked, {hard} refused by mount");
    assert!(hard > 0);
}

/// Offsets of every batch (its first member: a v4 head, or a v2/v3 manifest), of its first
/// member's data and of its manifest member, and the namespaces each batch wrote, by walking
/// the image as tar would.
fn batches(image: &[u8]) -> Vec<(usize, usize, Vec<String>, usize)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let octal = |h: usize| {
        usize::from_str_radix(std::str::from_utf8(&image[h + 124..h + 135]).unwrap(), 8).unwrap()
    };
    while at + 512 <= image.len() {
        let v4 = image[at..at + 11] == *b".psdb/head/";
        if !v4 && image[at..at + 12] != *b".psdb/batch/" {
            break;
        }
        let manifest_at = if v4 {
            let head = std::str::from_utf8(&image[at + 512..at + 512 + octal(at)]).unwrap();
            let f = head.split(' ').find_map(|f| f.strip_prefix("manifest="));
            f.unwrap().parse().unwrap()
        } else {
            at
        };
        let size = octal(manifest_at);
        let text =
            std::str::from_utf8(&image[manifest_at + 512..manifest_at + 512 + size]).unwrap();
        let manifest_len = 512 + size.div_ceil(512) * 512;
        let mut len = if v4 { 1024 } else { manifest_len };
        let first_data = at + len + 512;
        let mut names = Vec::new();
        for l in text.lines() {
            if let Some(r) = l
                .strip_prefix("#o ")
                .or_else(|| l.strip_prefix("#c "))
                .or_else(|| l.strip_prefix("#s "))
            {
                let n: usize = r.split(' ').next().unwrap().parse().unwrap();
                len += 512 + n.div_ceil(512) * 512;
                if let Some(name) = r.split("  ").nth(1) {
                    names.push(name.split('/').next().unwrap().to_string());
                }
            } else if let Some((_, name)) = l.split_once("  ") {
                names.push(name.split('/').next().unwrap().to_string());
            }
        }
        if v4 {
            assert_eq!(at + len, manifest_at);
            len += manifest_len;
        }
        names.retain(|n| n != ".psdb");
        names.sort();
        names.dedup();
        out.push((at, first_data, names, manifest_at));
        at += len + psdb::commit::COMMIT_LEN as usize;
    }
    out
}

/// Mounts read-write and returns the report, checking the image was not written: damage is
/// evidence, never repaired.
fn mount_rw_untouched(img: &[u8]) -> (Store<RamDevice>, psdb::Report) {
    let (s, report) = Store::mount(RamDevice::from_image(img.to_vec()), Mode::ReadWrite).unwrap();
    assert!(!report.repaired, "{report:?}");
    let after = s.into_device().into_image();
    assert!(
        after == img,
        "a read-write mount of a damaged image wrote to it"
    );
    Store::mount(RamDevice::from_image(after), Mode::ReadWrite).unwrap()
}

#[test]
fn damage_to_committed_batches_is_kept_reported_and_never_taken_for_a_crash() {
    let (image, model, _) = reference();
    let all = batches(&image);
    assert_eq!(all.len(), 9);
    let mut tried = 0;
    for (k, (off, data_at, names, manifest_at)) in all.iter().enumerate().skip(1) {
        let last = k + 1 == all.len();
        // The head or the manifest: the batch is stepped over with its commit record, the
        // namespaces it wrote are marked lost (no checkpoint served, no writes), the rest is
        // served.
        for flip_at in [off + 600, manifest_at + 600] {
            let mut img = image.clone();
            img[flip_at] ^= 0x20;
            let (mut s, report) = mount_rw_untouched(&img);
            let d = report.damage.unwrap();
            assert_eq!(
                (d.offset as usize, d.reason),
                (*off, Corruption::LostBatch),
                "batch {k}"
            );
            assert_eq!(report.tail, None);
            for name in ["a", "b"] {
                let ns = s.open_namespace(name).unwrap();
                let hit = names.iter().any(|n| n == name);
                let mut out = Vec::new();
                if hit {
                    assert!(
                        matches!(s.checkpoint(ns, &mut out), Err(Error::Damaged(_))),
                        "{k} {name}"
                    );
                    assert!(matches!(
                        s.put(ns, "tile/9/000", b"x"),
                        Err(Error::Damaged(_))
                    ));
                    assert!(matches!(s.put_checkpoint(ns, b"x"), Err(Error::Damaged(_))));
                } else {
                    assert_eq!(s.damage(ns).unwrap(), None);
                    s.put(ns, "tile/9/000", b"x").unwrap();
                }
            }
            // Objects of every other batch are still served with their bytes.
            assert!(check_served(img.clone(), &model).is_some());
            tried += 1;
        }

        // A member's data: the object fails its hash (never served), its namespace takes no
        // more writes, fsck reports it, and nothing is written over it.
        let mut img = image.clone();
        img[*data_at] ^= 0x01;
        let (_, report) = mount_rw_untouched(&img);
        if last {
            let d = report.damage.unwrap();
            assert_eq!(d.reason, Corruption::DataHash, "batch {k}");
        } else {
            // Mount reads only the final batch's members; the read fails (check_served).
            assert_eq!(report.damage, None);
        }
        assert_eq!(report.tail, None);
        let f = psdb::fsck(RamDevice::from_image(img.clone())).unwrap();
        assert_eq!(f.damage.map(|p| p.reason), Some(Corruption::DataHash));
        assert!(f.damaged >= 1);
        check_served(img, &model);
        tried += 1;

        // Its commit record: before later batches it is reported (nothing lost); the final
        // one is indistinguishable from a crash between the two flushes: the whole batch is
        // kept and a read-write mount writes the record again.
        let mut img = image.clone();
        let commit_at = all.get(k + 1).map_or(report.end as usize, |n| n.0) - 1024;
        img[commit_at + 512 + 30] ^= 0x04;
        let (s, report) = Store::mount(RamDevice::from_image(img), Mode::ReadWrite).unwrap();
        if last {
            assert_eq!(report.tail.map(|p| p.reason), Some(Corruption::BadCommit));
            assert!(report.repaired);
            assert_eq!(s.into_device().into_image()[..image.len()], image[..]);
        } else {
            assert_eq!(report.damage.map(|p| p.reason), Some(Corruption::BadCommit));
            assert!(!report.repaired);
        }
        assert_eq!(report.objects as usize, model.count());
        tried += 1;
    }
    println!("committed-damage cases: {tried}");
}

#[test]
fn a_torn_final_batch_is_discarded_and_a_whole_one_kept() {
    let (image, model, _) = reference();
    let all = batches(&image);
    let (off, data_at, _, _) = all[all.len() - 1].clone();
    let commit_at = image.len() - image.iter().rev().take_while(|&&b| b == 0).count();
    let commit_at = commit_at.div_ceil(512) * 512 - 1024;
    // Never committed (the record is still the end marker) and a member torn: discarded.
    let mut img = image.clone();
    img[commit_at..commit_at + 1024].fill(0);
    img[data_at] ^= 0x01;
    let (s, report) = Store::mount(RamDevice::from_image(img), Mode::ReadWrite).unwrap();
    let t = report.tail.unwrap();
    assert_eq!(
        (t.offset as usize, t.reason),
        (off, Corruption::IncompleteTail)
    );
    assert_eq!(report.damage, None);
    assert!(report.repaired);
    // Nothing the torn batch held stays readable: its checkpoint is gone from the image.
    let after = s.into_device().into_image();
    assert!(
        !after.windows(5).any(|w| w == b"cp 7\n"),
        "the torn batch was left readable"
    );
    assert!(after[off..].iter().all(|&b| b == 0));
    // Never committed but whole: kept, and its record written.
    let mut img = image.clone();
    img[commit_at..commit_at + 1024].fill(0);
    let (s, report) = Store::mount(RamDevice::from_image(img), Mode::ReadWrite).unwrap();
    assert_eq!(report.tail.map(|p| p.reason), Some(Corruption::BadCommit));
    assert_eq!(report.objects as usize, model.count());
    let img = s.into_device().into_image();
    assert_eq!(
        img[..image.len()],
        image[..],
        "the record written is the one a flush writes"
    );
}
