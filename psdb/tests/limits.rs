//! Memory limits: the index budget, the batch-limit ceiling at mount, and buffers sized from the
//! disk. Past a limit the store answers with an error and loses nothing; it never runs the heap
//! out.
// A panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use psdb::fault::{Fault, FaultDevice};
use psdb::store::{
    manifest_limit, Limits, INDEX_ENTRY_BYTES, MAX_MAX_BATCH, NAMESPACE_BYTES, STAGED_ENTRY_BYTES,
};

/// What namespace "t" itself is charged.
const NS_T: u64 = NAMESPACE_BYTES + 2;
use psdb::{Error, FormatOptions, Mode, Quota, RamDevice, Store};

fn limited(index_bytes: u64) -> Limits {
    Limits {
        max_batch_ceiling: TEST_MAX_BATCH,
        index_bytes,
        max_manifest: u64::MAX,
    }
}

#[test]
fn put_past_the_index_budget_is_index_full_and_loses_nothing() {
    // Room for exactly 10 objects at "o/NNN" (5 bytes), flushed, plus one staged.
    let entry = INDEX_ENTRY_BYTES + 5;
    let budget = NS_T + 10 * entry + STAGED_ENTRY_BYTES + 5;
    let mut s = Store::format_with(RamDevice::new(4096), opts(), limited(budget)).unwrap();
    let ns = s.open_namespace("t").unwrap();
    for k in 0..10 {
        s.put(ns, &format!("o/{k:03}"), &[k as u8; 100]).unwrap();
    }
    s.flush().unwrap();
    assert_eq!(s.index_bytes_used(), NS_T + 10 * entry);
    assert_eq!(s.put(ns, "o/010", b"x"), Err(Error::IndexFull));
    // Nothing changed: the same put of an existing object is still fine, every object reads.
    s.put(ns, "o/003", &[3; 100]).unwrap();
    let before = s.stats();
    assert_eq!(s.put(ns, "o/011", b"y"), Err(Error::IndexFull));
    assert_eq!(s.stats(), before);
    s.flush().unwrap();
    let mut out = Vec::new();
    for k in 0..10 {
        assert!(s.get(ns, &format!("o/{k:03}"), &mut out).unwrap());
        assert_eq!(out, [k as u8; 100]);
    }
    assert!(!s.exists(ns, "o/010").unwrap());
    // The same volume mounts within the same budget, charged the same.
    let (s2, _) = Store::mount_with(s.into_device(), Mode::ReadWrite, limited(budget)).unwrap();
    assert_eq!(s2.index_bytes_used(), NS_T + 10 * entry);
}

#[test]
fn staged_objects_are_flushed_early_to_stay_in_the_budget() {
    // Room for 20 entries, but only 4 staged at a time: puts keep working, batches are smaller.
    let entry = INDEX_ENTRY_BYTES + 5;
    let budget = NS_T + 20 * entry + 4 * (STAGED_ENTRY_BYTES + 5);
    let mut s = Store::format_with(RamDevice::new(4096), opts(), limited(budget)).unwrap();
    let ns = s.open_namespace("t").unwrap();
    for k in 0..20 {
        s.put(ns, &format!("o/{k:03}"), b"data").unwrap();
        assert!(s.index_bytes_used() <= budget);
    }
    s.flush().unwrap();
    // Without the budget this would be one batch after the volume batch.
    assert!(s.stats().batches >= 4, "{:?}", s.stats());
    // Then the staging room goes too, and puts end in IndexFull with every object kept.
    let mut k = 20;
    while s.put(ns, &format!("o/{k:03}"), b"data").is_ok() {
        k += 1;
        assert!(k <= 20 + 4 * (STAGED_ENTRY_BYTES + 5) / entry, "{k}");
    }
    assert_eq!(s.put(ns, "o/999", b"x"), Err(Error::IndexFull));
    s.flush().unwrap();
    assert_eq!(s.stats().objects, k);
}

#[test]
fn checkpoint_versions_are_one_index_entry() {
    let budget = NS_T + 2 * (INDEX_ENTRY_BYTES + 10) + 2 * (STAGED_ENTRY_BYTES + 10);
    let mut s = Store::format_with(RamDevice::new(4096), opts(), limited(budget)).unwrap();
    let ns = s.open_namespace("t").unwrap();
    for v in 0..50 {
        s.put_checkpoint(ns, format!("cp {v}").as_bytes()).unwrap();
        s.flush().unwrap();
    }
    assert_eq!(s.index_bytes_used(), NS_T + INDEX_ENTRY_BYTES + 10);
    let (mut s, _) = Store::mount_with(s.into_device(), Mode::ReadOnly, limited(budget)).unwrap();
    let ns = s.open_namespace("t").unwrap();
    assert_eq!(s.checkpoint_versions(ns).unwrap(), 50);
    assert_eq!(s.index_bytes_used(), NS_T + INDEX_ENTRY_BYTES + 10);
}

#[test]
fn mount_of_a_volume_over_the_index_budget_fails_cleanly() {
    let mut s = fresh(4096);
    let ns = s.open_namespace("t").unwrap();
    for k in 0..100 {
        s.put(ns, &format!("o/{k:03}"), b"data").unwrap();
    }
    s.flush().unwrap();
    let need = NS_T + 100 * (INDEX_ENTRY_BYTES + 5);
    let dev = s.into_device();
    let image = dev.clone();
    let r = Store::mount_with(dev, Mode::ReadWrite, limited(need - 1));
    assert_eq!(r.err(), Some(Error::ExceedsLimits));
    // Nothing was written, and with enough budget it mounts.
    let (s, report) = Store::mount_with(image, Mode::ReadWrite, limited(need)).unwrap();
    assert_eq!(report.problem, None);
    assert_eq!(s.stats().objects, 100);
}

#[test]
fn mount_refuses_a_batch_limit_above_the_ceiling() {
    // A crafted (or foreign) volume claiming the largest batch limit: a PD with a smaller heap
    // must refuse it rather than stage (or verify) batches that large.
    let big = FormatOptions {
        volume_id: [9; 16],
        max_batch_bytes: MAX_MAX_BATCH,
    };
    let s = Store::format(RamDevice::new(64), big).unwrap();
    let dev = s.into_device();
    let ceiling = Limits {
        max_batch_ceiling: 32 << 20,
        index_bytes: u64::MAX,
        max_manifest: u64::MAX,
    };
    let r = Store::mount_with(dev.clone(), Mode::ReadWrite, ceiling);
    assert_eq!(r.err(), Some(Error::ExceedsLimits));
    assert!(Store::mount_with(dev, Mode::ReadOnly, Limits::UNLIMITED).is_ok());
    // And format will not make one.
    let r = Store::format_with(RamDevice::new(64), big, ceiling);
    assert_eq!(r.err(), Some(Error::InvalidConfig));
}

#[test]
fn manifests_stay_within_the_manifest_limit() {
    // Many tiny objects: the batch is flushed when its manifest would pass the limit, so mount
    // never needs more than that for one manifest.
    let mut s = fresh(1 << 16);
    let ns = s.open_namespace("t").unwrap();
    let limit = manifest_limit(u64::from(TEST_MAX_BATCH));
    for k in 0..3000 {
        let p = format!("a-rather-long-directory-name/to-fill/manifests/{k:06}");
        s.put(ns, &p, b"").unwrap();
    }
    s.flush().unwrap();
    let batches = s.stats().batches;
    // 3000 lines of ~170 bytes are ~500 KB of manifest: several batches.
    assert!(batches >= 3000 * 150 / limit, "{batches}");
    let (s, _) = Store::mount(s.into_device(), Mode::ReadOnly).unwrap();
    assert_eq!(s.stats().objects, 3000);
}

#[test]
fn a_namespace_quota_stops_that_namespace_only() {
    let mut s = fresh(8192);
    let a = s.open_namespace("tenant-a").unwrap();
    let b = s.open_namespace("audit").unwrap();
    s.set_quota(
        a,
        Quota {
            index_bytes: u64::MAX,
            disk_bytes: 64 << 10,
        },
    )
    .unwrap();
    let mut k = 0;
    let err = loop {
        match s.put(a, &format!("o/{k:04}"), &[7; 3000]) {
            Ok(()) => k += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err, Error::Quota);
    assert!(s.usage(a).unwrap().disk_bytes <= 64 << 10);
    // Nothing changed for tenant-a, and the other namespace still has room.
    let before = s.usage(a).unwrap();
    assert_eq!(s.put(a, "o/x", &[7; 3000]), Err(Error::Quota));
    assert_eq!(s.usage(a).unwrap(), before);
    for j in 0..40 {
        s.put(b, &format!("r/{j:04}"), &[1; 3000]).unwrap();
    }
    s.flush().unwrap();
    let (ua, ub) = (s.usage(a).unwrap(), s.usage(b).unwrap());
    // Usage is rebuilt the same at mount (quotas themselves are set again by the owner).
    let (mut s, _) = Store::mount(s.into_device(), Mode::ReadWrite).unwrap();
    let a = s.open_namespace("tenant-a").unwrap();
    let b = s.open_namespace("audit").unwrap();
    assert_eq!(s.usage(a).unwrap(), ua);
    assert_eq!(s.usage(b).unwrap(), ub);
    let mut out = Vec::new();
    for j in 0..k {
        assert!(s.get(a, &format!("o/{j:04}"), &mut out).unwrap());
    }
}

#[test]
fn index_quota_counts_checkpoints_and_survives_rollback() {
    let mut s = Store::format(FaultDevice::new(4096), opts()).unwrap();
    let a = s.open_namespace("t").unwrap();
    let q = Quota {
        // The checkpoint and two objects, and room to stage one more checkpoint version.
        index_bytes: 3 * INDEX_ENTRY_BYTES + 20 + STAGED_ENTRY_BYTES + 10,
        disk_bytes: u64::MAX,
    };
    s.set_quota(a, q).unwrap();
    s.put_checkpoint(a, b"cp").unwrap();
    s.flush().unwrap();
    assert_eq!(s.usage(a).unwrap().index_bytes, INDEX_ENTRY_BYTES + 10);
    // Staged charges count too: the second put flushes the first to make room.
    s.put(a, "o/001", b"1").unwrap();
    s.put(a, "o/002", b"2").unwrap();
    assert_eq!(s.put(a, "o/003", b"3"), Err(Error::Quota));
    assert_eq!(
        s.usage(a).unwrap().index_bytes,
        3 * INDEX_ENTRY_BYTES + 20,
        "each put flushed the batch to make room; o/003 refused"
    );
    s.flush().unwrap();
    let flushed = s.usage(a).unwrap();
    assert_eq!(flushed.index_bytes, 3 * INDEX_ENTRY_BYTES + 20);
    // A failed flush gives back what the staged checkpoint was charged.
    let mut dev = s.into_device();
    // After the mount (which writes nothing here): the checkpoint's member, the manifest,
    // the head, then the first flush (format v4).
    let op = dev.ops() + 3;
    dev.inject(op, Fault::FailFlush { persisted: false });
    let (mut s, _) = Store::mount(dev, Mode::ReadWrite).unwrap();
    let a = s.open_namespace("t").unwrap();
    s.set_quota(a, q).unwrap();
    assert_eq!(s.usage(a).unwrap(), flushed);
    s.put_checkpoint(a, b"cp lost").unwrap();
    assert!(s.flush().is_err());
    assert_eq!(s.usage(a).unwrap(), flushed);
    // Checkpoint versions replace one entry: the quota does not stop them.
    for v in 0..5 {
        s.put_checkpoint(a, format!("cp{v}").as_bytes()).unwrap();
        s.flush().unwrap();
    }
    assert_eq!(s.usage(a).unwrap().index_bytes, flushed.index_bytes);
}

#[test]
fn batch_limits_off_the_sector_grid_are_refused() {
    let mut o = opts();
    o.max_batch_bytes = psdb::store::MIN_MAX_BATCH + 100;
    assert!(matches!(
        Store::format(RamDevice::new(1 << 12), o),
        Err(Error::InvalidConfig)
    ));
}

#[test]
fn namespaces_are_charged_to_the_index_budget() {
    let limits = Limits {
        max_batch_ceiling: psdb::DEFAULT_MAX_BATCH,
        index_bytes: 4 * (NAMESPACE_BYTES + 2 * 8),
        max_manifest: u64::MAX,
    };
    let mut s = Store::format_with(RamDevice::new(1 << 12), opts(), limits).unwrap();
    for i in 0..4 {
        s.open_namespace(&format!("tenant-{i}")).unwrap();
    }
    assert_eq!(s.open_namespace("tenant-4"), Err(Error::IndexFull));
    // Known ones are free.
    s.open_namespace("tenant-0").unwrap();
}

#[test]
fn the_manifest_ceiling_bounds_puts_and_refuses_larger_volumes_at_mount() {
    let small = Limits {
        max_manifest: 4 << 10,
        ..Limits::UNLIMITED
    };
    // 100 objects in two batches (the batch limit): manifests of about 4.6 KiB.
    let mut s = Store::format(RamDevice::new(4096), opts()).unwrap();
    let ns = s.open_namespace("t").unwrap();
    for k in 0..100 {
        s.put(ns, &format!("obj/{k:03}"), b"x").unwrap();
    }
    s.flush().unwrap();
    let image = s.into_device().image().to_vec();
    // Refused read-write too, with a torn batch after them (which a mount that accepted the
    // volume would zero: the refusal comes first).
    let mut crashed = image.clone();
    let end = Store::mount(RamDevice::from_image(image.clone()), Mode::ReadOnly)
        .unwrap()
        .1
        .end as usize;
    crashed[end..end + 512].fill(0xee);
    let dev = RamDevice::from_image(crashed.clone());
    let r = Store::mount_with(dev, Mode::ReadWrite, small);
    assert_eq!(r.err(), Some(Error::ExceedsLimits));
    let (s, report) = Store::mount_with(
        RamDevice::from_image(crashed.clone()),
        Mode::ReadOnly,
        Limits::UNLIMITED,
    )
    .unwrap();
    assert!(report.tail.is_some(), "{report:?}");
    assert_eq!(s.into_device().image(), &crashed[..]);
    // With the ceiling, a batch is flushed before its manifest passes it, or (without early
    // flush, as in the psdb PD) the put that would pass it is refused.
    let mut s = Store::format_with(RamDevice::new(4096), opts(), small).unwrap();
    let ns = s.open_namespace("t").unwrap();
    for k in 0..100 {
        s.put(ns, &format!("obj/{k:03}"), b"x").unwrap();
    }
    s.flush().unwrap();
    assert!(s.stats().batches > 3, "{:?}", s.stats());
    s.set_early_flush(false);
    let mut k = 0;
    let refused = loop {
        match s.put(ns, &format!("more/{k:03}"), b"x") {
            Ok(()) => k += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(refused, Error::TooLarge);
    assert!((20..50).contains(&k), "{k} objects in a 4 KiB manifest");
    s.flush().unwrap();
    let (_, report) = Store::mount_with(s.into_device(), Mode::ReadWrite, small).unwrap();
    assert_eq!(report.problem, None);
}
