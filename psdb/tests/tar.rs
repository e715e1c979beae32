//! The raw image is a tar stream: GNU tar extracts it cleanly and `sha256sum -c` checks it.
// A panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::tartools::*;
use common::*;
use psdb::fault::{Crash, Fault, FaultDevice};
use psdb::{Mode, RamDevice, Store};

fn workload(store: &mut Store<impl psdb::BlockDevice>, model: &mut Model, seed: u64, batches: u64) {
    let mut rng = Rng(seed);
    let names = ["tenant-a", "tenant-b", "audit"];
    for b in 0..batches {
        for k in 0..(1 + rng.below(6)) {
            let name = names[rng.below(3) as usize];
            let ns = store.open_namespace(name).unwrap();
            let n = rng.below(5000) as usize;
            let data = rng.bytes(n);
            let path = tile_path(&rng.below(3).to_string(), b * 10 + k, rng.below(3));
            if store.put(ns, &path, &data).is_ok() {
                model
                    .objects
                    .entry(name.into())
                    .or_default()
                    .insert(path, data);
            }
        }
        let name = names[rng.below(3) as usize];
        let ns = store.open_namespace(name).unwrap();
        let cp = format!("example.com/{name}\n{b}\nroot-{}\n", rng.next()).into_bytes();
        store.put_checkpoint(ns, &cp).unwrap();
        model.checkpoints.insert(name.into(), cp);
        store.flush().unwrap();
    }
}

#[test]
fn image_extracts_with_tar_and_checks_with_sha256sum() {
    let mut s = fresh(1 << 14);
    let mut model = Model::default();
    workload(&mut s, &mut model, 5, 40);
    assert_eq!(snapshot(&mut s), model);
    let image = s.into_device().into_image();
    let dir = TempDir::new("tar");
    let out = extract(&image, &dir);
    check_tree(&out, &model);
    let (ok, msg) = sha256sum_check(&out);
    assert!(ok, "{msg}");
    // Every checkpoint version is a member of the same name; the latest wins on extraction and
    // the earlier ones stay readable with --occurrence.
    let img = dir.0.join("disk.img");
    let list = Command::new("tar").arg("-tf").arg(&img).output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    let versions = list.lines().filter(|l| *l == "tenant-a/checkpoint").count();
    assert!(versions > 1);
    let first = Command::new("tar")
        .args(["-xOf"])
        .arg(&img)
        .args(["--occurrence=1", "tenant-a/checkpoint"])
        .output()
        .unwrap();
    assert!(first.status.success());
    assert!(first.stdout.starts_with(b"example.com/tenant-a\n"));
    // A damaged file is caught by sha256sum.
    let victim = out
        .join("tenant-b")
        .join(model.objects["tenant-b"].keys().next().unwrap());
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes.push(b'!');
    std::fs::write(&victim, bytes).unwrap();
    let (ok, msg) = sha256sum_check(&out);
    assert!(!ok && msg.contains("FAILED"), "{msg}");
}

#[test]
fn tar_stops_at_the_end_marker_over_stale_bytes() {
    // A disk full of old bytes: format and write; tar must stop at the end marker.
    let mut dev = RamDevice::from_image(vec![0xA5; 1 << 22]);
    dev.image_mut()[..512].fill(0);
    let mut s = Store::format(dev, opts()).unwrap();
    let mut model = Model::default();
    workload(&mut s, &mut model, 6, 10);
    let dir = TempDir::new("stale");
    let out = extract(s.into_device().image(), &dir);
    check_tree(&out, &model);
    assert!(sha256sum_check(&out).0);
}

#[test]
fn crashed_image_after_mount_repair_extracts_cleanly() {
    for k in 0..4 {
        let mut s = Store::format(FaultDevice::new(1 << 13), opts()).unwrap();
        let mut model = Model::default();
        workload(&mut s, &mut model, 8, 10);
        // The power fails during the flush of a batch: part of it lands, one sector torn.
        let ns = s.open_namespace("tenant-a").unwrap();
        s.put(ns, "unacknowledged", &vec![7; 20_000]).unwrap();
        s.put_checkpoint(ns, b"never acknowledged").unwrap();
        let mut dev = s.into_device();
        // Format v4 writes members as they are put: count the puts' writes on a copy, so that
        // the power fails at the flush's first device flush (after the manifest and the head).
        let puts = {
            let (mut s, _) = Store::mount(dev.clone(), Mode::ReadWrite).unwrap();
            let ns = s.open_namespace("tenant-a").unwrap();
            s.put(ns, "unacknowledged", &vec![7; 20_000]).unwrap();
            s.put_checkpoint(ns, b"never acknowledged").unwrap();
            s.device().ops() - dev.ops()
        };
        dev.inject(dev.ops() + puts + 2, Fault::PowerLoss);
        let (mut s, _) = Store::mount(dev, Mode::ReadWrite).unwrap();
        let ns = s.open_namespace("tenant-a").unwrap();
        s.put(ns, "unacknowledged", &vec![7; 20_000]).unwrap();
        s.put_checkpoint(ns, b"never acknowledged").unwrap();
        assert!(s.flush().is_err());
        let dev = s.into_device();
        assert!(dev.unflushed() > 0);
        let how = match k {
            // Everything but the head lands, the head torn (its first half): a dirty end
            // that mount repairs.
            0 => Crash::Prefix {
                n: dev.unflushed() - 1,
                torn: true,
            },
            1 => Crash::Prefix { n: 3, torn: true },
            _ => Crash::Random {
                seed: k,
                torn: true,
            },
        };
        let crashed = dev.crash(how).into_image();
        let (mut s, report) = mount_ram(crashed, Mode::ReadWrite).unwrap();
        assert_eq!(report.problem.is_some(), report.repaired, "{report:?}");
        assert!(k != 0 || report.repaired);
        // The batch in flight is all there or not at all.
        let mut with = model.clone();
        with.objects
            .get_mut("tenant-a")
            .unwrap()
            .insert("unacknowledged".into(), vec![7; 20_000]);
        with.checkpoints
            .insert("tenant-a".into(), b"never acknowledged".to_vec());
        let got = snapshot(&mut s);
        assert!(got == model || got == with);
        let dir = TempDir::new("crash");
        let out = extract(s.into_device().image(), &dir);
        check_tree(&out, &got);
        assert!(sha256sum_check(&out).0);
    }
}
