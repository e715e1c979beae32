//! The store's API: write-once semantics, namespaces, checkpoints, listing, limits, tlog.
// A panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use psdb::{Corruption, Error, FormatOptions, Mode, NameError, NamespaceStorage, RamDevice, Store};

#[test]
fn put_get_write_once() {
    let mut s = fresh(4096);
    let ns = s.open_namespace("tenant-a").unwrap();
    s.put(ns, "tile/0/000", b"hello").unwrap();
    let mut out = Vec::new();
    // Staged objects are readable before the flush.
    assert!(s.get(ns, "tile/0/000", &mut out).unwrap());
    assert_eq!(out, b"hello");
    s.flush().unwrap();
    assert!(s.get(ns, "tile/0/000", &mut out).unwrap());
    assert_eq!(out, b"hello");
    // Same bytes: a no-op that writes nothing.
    let end = s.stats().end;
    s.put(ns, "tile/0/000", b"hello").unwrap();
    s.flush().unwrap();
    assert_eq!(s.stats().end, end);
    // Different bytes: refused, nothing changes.
    assert_eq!(s.put(ns, "tile/0/000", b"hellO"), Err(Error::Immutable));
    assert_eq!(s.put(ns, "tile/0/000", b""), Err(Error::Immutable));
    assert!(s.get(ns, "tile/0/000", &mut out).unwrap());
    assert_eq!(out, b"hello");
    assert!(!s.get(ns, "tile/0/001", &mut out).unwrap());
    assert!(out.is_empty());
    assert!(s.exists(ns, "tile/0/000").unwrap());
    assert!(!s.exists(ns, "tile/0").unwrap());
    // Empty objects are objects.
    s.put(ns, "empty", b"").unwrap();
    s.flush().unwrap();
    let (mut s, report) = mount_ram(s.into_device().into_image(), Mode::ReadWrite).unwrap();
    assert_eq!(report.problem, None);
    assert_eq!(report.objects, 2);
    let ns = s.open_namespace("tenant-a").unwrap();
    assert!(s.get(ns, "empty", &mut out).unwrap());
    assert!(out.is_empty());
    assert_eq!(s.put(ns, "tile/0/000", b"x"), Err(Error::Immutable));
}

#[test]
fn namespaces_are_isolated() {
    let mut s = fresh(4096);
    let a = s.open_namespace("a").unwrap();
    let b = s.open_namespace("b").unwrap();
    s.put(a, "x", b"from a").unwrap();
    s.put(b, "x", b"from b").unwrap();
    s.put_checkpoint(a, b"cp a").unwrap();
    s.flush().unwrap();
    let mut out = Vec::new();
    s.get(a, "x", &mut out).unwrap();
    assert_eq!(out, b"from a");
    s.get(b, "x", &mut out).unwrap();
    assert_eq!(out, b"from b");
    assert!(!s.checkpoint(b, &mut out).unwrap());
    assert_eq!(s.list(b, "").unwrap().count(), 1);
    // A path cannot climb out of its namespace.
    for p in ["../b/x", "/b/x", "x/../../b", "./x", "a\0", "a\\b"] {
        assert!(
            matches!(s.put(a, p, b"evil"), Err(Error::InvalidName(_))),
            "{p}"
        );
    }
    // A handle only works with the store that made it.
    let mut other = fresh(4096);
    let foreign = other.open_namespace("a").unwrap();
    assert_eq!(s.put(foreign, "y", b"z"), Err(Error::BadHandle));
    assert_eq!(s.get(foreign, "x", &mut out), Err(Error::BadHandle));
    assert!(matches!(
        s.open_namespace(".psdb"),
        Err(Error::InvalidName(_))
    ));
    assert!(matches!(
        s.open_namespace("a/b"),
        Err(Error::InvalidName(_))
    ));
}

#[test]
fn names_are_checked() {
    let mut s = fresh(4096);
    let ns = s.open_namespace("t").unwrap();
    assert_eq!(
        s.put(ns, "checkpoint", b"x"),
        Err(Error::InvalidName(NameError::Reserved))
    );
    assert_eq!(
        s.put(ns, "checkpoint/x", b"x"),
        Err(Error::InvalidName(NameError::Reserved))
    );
    assert_eq!(
        s.put(ns, &"x".repeat(98), b"x"),
        Err(Error::InvalidName(NameError::TooLong))
    );
    s.put(ns, &"x".repeat(97), b"x").unwrap();
    // File versus directory clashes tar could not extract.
    s.put(ns, "tile/0/000", b"x").unwrap();
    assert_eq!(s.put(ns, "tile/0/000/1", b"x"), Err(Error::PathConflict));
    assert_eq!(s.put(ns, "tile/0", b"x"), Err(Error::PathConflict));
    assert_eq!(s.put(ns, "tile", b"x"), Err(Error::PathConflict));
    s.put(ns, "tile/0/000.p/5", b"x").unwrap();
    s.put(ns, "tile/0/0001", b"x").unwrap();
}

#[test]
fn checkpoint_versions() {
    let mut s = fresh(4096);
    let ns = s.open_namespace("t").unwrap();
    for v in 0..5u8 {
        s.put(ns, &format!("obj/{v}"), &[v; 700]).unwrap();
        s.put_checkpoint(ns, format!("checkpoint version {v}\n").as_bytes())
            .unwrap();
        if v != 2 {
            s.flush().unwrap();
        }
    }
    let mut out = Vec::new();
    assert!(s.checkpoint(ns, &mut out).unwrap());
    assert_eq!(out, b"checkpoint version 4\n");
    assert_eq!(s.checkpoint_versions(ns).unwrap(), 5);
    let (mut s, report) = mount_ram(s.into_device().into_image(), Mode::ReadOnly).unwrap();
    assert_eq!(report.checkpoint_versions, 5);
    assert_eq!(report.objects, 5);
    let ns = s.open_namespace("t").unwrap();
    assert!(s.checkpoint(ns, &mut out).unwrap());
    assert_eq!(out, b"checkpoint version 4\n");
    assert_eq!(s.put(ns, "x", b"y"), Err(Error::ReadOnly));
    let list: Vec<_> = s
        .list(ns, "")
        .unwrap()
        .map(|(p, n)| (p.to_string(), n))
        .collect();
    assert_eq!(list.len(), 6);
    assert_eq!(list[0], ("checkpoint".to_string(), 21));
    let objs: Vec<_> = s
        .list(ns, "obj/")
        .unwrap()
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(objs, ["obj/0", "obj/1", "obj/2", "obj/3", "obj/4"]);
    assert_eq!(s.list(ns, "obj/4").unwrap().count(), 1);
    assert_eq!(s.list(ns, "nothing").unwrap().count(), 0);
}

#[test]
fn batches_split_when_full_and_objects_too_large() {
    let mut s = fresh(8192);
    let ns = s.open_namespace("t").unwrap();
    // Larger than a batch can ever hold.
    assert_eq!(
        s.put(ns, "big", &vec![1; TEST_MAX_BATCH as usize]),
        Err(Error::TooLarge)
    );
    // Many puts without a flush: the store flushes full batches by itself.
    let mut rng = Rng(7);
    let mut model = Model::default();
    for i in 0..200 {
        let n = rng.below(3000) as usize;
        let data = rng.bytes(n);
        s.put(ns, &format!("o/{i}"), &data).unwrap();
        model
            .objects
            .entry("t".into())
            .or_default()
            .insert(format!("o/{i}"), data);
    }
    assert!(s.stats().batches > 2);
    s.flush().unwrap();
    let (mut s, _) = mount_ram(s.into_device().into_image(), Mode::ReadOnly).unwrap();
    assert_eq!(snapshot(&mut s), model);
}

#[test]
fn full_disk_is_a_clear_error_and_loses_nothing() {
    let mut s = fresh(300);
    let ns = s.open_namespace("t").unwrap();
    let mut model = Model::default();
    let mut i = 0;
    let err = loop {
        let data = vec![i as u8; 1000 + i];
        match s.put(ns, &format!("o/{i}"), &data) {
            Ok(()) => {
                model
                    .objects
                    .entry("t".into())
                    .or_default()
                    .insert(format!("o/{i}"), data);
            }
            Err(e) => break e,
        }
        if i % 3 == 0 {
            s.flush().unwrap();
        }
        i += 1;
    };
    assert_eq!(err, Error::Full);
    // The refusal changed nothing: what was staged still flushes, small objects may still fit.
    s.flush().unwrap();
    assert!(s.free_bytes() < 2048);
    assert_eq!(snapshot(&mut s), model);
    assert_eq!(s.put_checkpoint(ns, &[0; 4096]), Err(Error::Full));
    let (mut s, report) = mount_ram(s.into_device().into_image(), Mode::ReadWrite).unwrap();
    assert_eq!(report.problem, None);
    assert_eq!(snapshot(&mut s), model);
    assert_eq!(psdb::fsck(s.into_device()).unwrap().problem, None);
}

#[test]
fn not_a_volume() {
    for image in [vec![0u8; 1 << 16], vec![0xA5; 1 << 16], vec![]] {
        let err = mount_ram(image.clone(), Mode::ReadOnly).unwrap_err();
        assert!(
            matches!(err, Error::Corrupt(p) if p.reason == Corruption::NotPsdb),
            "{err:?}"
        );
        let r = psdb::fsck(RamDevice::from_image(image)).unwrap();
        assert_eq!(r.problem.unwrap().reason, Corruption::NotPsdb);
    }
    assert_eq!(
        Store::format(RamDevice::new(1), opts()).unwrap_err(),
        Error::Full,
    );
    let mut o = opts();
    o.max_batch_bytes = 10;
    assert_eq!(
        Store::format(RamDevice::new(100), o).unwrap_err(),
        Error::InvalidConfig
    );
}

#[test]
fn tlog_storage_contract() {
    use tlog::Storage;
    let mut s = fresh(4096);
    let ns = s.open_namespace("ledger").unwrap();
    {
        let mut st = NamespaceStorage::new(&mut s, ns);
        let mut out = Vec::new();
        assert!(!st.checkpoint(&mut out).unwrap());
        st.put("tile/0/000.p/1", &[1; 32]).unwrap();
        st.put("tile/entries/000.p/1", b"\x00\x03abc").unwrap();
        st.put("tile/0/000.p/1", &[1; 32]).unwrap();
        assert!(st.put("tile/0/000.p/1", &[2; 32]).is_err());
        st.set_checkpoint(b"origin\n1\nroot\n").unwrap();
        assert!(st.checkpoint(&mut out).unwrap());
        assert_eq!(out, b"origin\n1\nroot\n");
        assert!(st.get("tile/0/000.p/1", &mut out).unwrap());
        assert_eq!(out, [1; 32]);
        assert!(!st.get("tile/0/001", &mut out).unwrap());
    }
    // set_checkpoint made everything durable: a remount without flush sees it.
    let (mut s, _) = mount_ram(s.into_device().into_image(), Mode::ReadWrite).unwrap();
    let ns = s.open_namespace("ledger").unwrap();
    let mut st = NamespaceStorage::new(&mut s, ns);
    let mut out = Vec::new();
    assert!(st.checkpoint(&mut out).unwrap());
    assert_eq!(out, b"origin\n1\nroot\n");
    assert!(st.get("tile/entries/000.p/1", &mut out).unwrap());
    assert_eq!(out, b"\x00\x03abc");
}

#[test]
fn ledger_shaped_workload_roundtrips() {
    let mut s = fresh(1 << 15);
    let ns = s.open_namespace("tenant").unwrap();
    let mut model = Model::default();
    let mut rng = Rng(99);
    for n in 0..20u64 {
        let len = 2000 + rng.below(2000) as usize;
        let bundle = rng.bytes(len);
        let tile = rng.bytes(8192);
        for (p, d) in [
            (tile_path("entries", n, 0), bundle),
            (tile_path("0", n, 0), tile),
        ] {
            s.put(ns, &p, &d).unwrap();
            model
                .objects
                .entry("tenant".into())
                .or_default()
                .insert(p, d);
        }
        let l1 = rng.bytes(32 * (n as usize + 1));
        s.put(ns, &tile_path("1", 0, n + 1), &l1).unwrap();
        model
            .objects
            .entry("tenant".into())
            .or_default()
            .insert(tile_path("1", 0, n + 1), l1);
        let cp = format!("example.com/log\n{}\nroot{n}\n", (n + 1) * 256).into_bytes();
        s.put_checkpoint(ns, &cp).unwrap();
        model.checkpoints.insert("tenant".into(), cp);
        s.flush().unwrap();
    }
    assert_eq!(snapshot(&mut s), model);
    let dev = s.into_device();
    let r = psdb::fsck(dev.clone()).unwrap();
    assert_eq!(r.problem, None);
    assert_eq!(r.batches, 21);
    assert_eq!(r.objects, 60);
    assert_eq!(r.checkpoint_versions, 20);
    let (mut s, report) = Store::mount(dev, Mode::ReadOnly).unwrap();
    assert_eq!(report, r);
    assert_eq!(snapshot(&mut s), model);
}

/// A volume formatted with the defaults holds the largest object a tenant log writes: a full
/// entry bundle of 256 entries of 65,535 bytes, each with its 2-byte length.
#[test]
fn default_volume_holds_the_largest_entry_bundle() {
    let bundle = vec![0xab; 256 * (2 + 65_535)];
    let mut store = Store::format(RamDevice::new(80 << 11), FormatOptions::new([3; 16])).unwrap();
    let ns = store.open_namespace("tenant").unwrap();
    store.put(ns, "tile/entries/000", &bundle).unwrap();
    store.put_checkpoint(ns, b"origin\n256\nroot\n").unwrap();
    store.flush().unwrap();
    let (mut store, report) = Store::mount(store.into_device(), Mode::ReadOnly).unwrap();
    assert_eq!(report.problem, None);
    let ns = store.open_namespace("tenant").unwrap();
    let mut out = Vec::new();
    assert!(store.get(ns, "tile/entries/000", &mut out).unwrap());
    assert!(out == bundle);
}

/// A put in pieces (format v4): nothing needs the whole object in memory; it is written as it
/// arrives, staged at its last byte, durable at the flush; the write-once check works piece
/// by piece; other writes wait; a discarded batch leaves nothing on the disk.
#[test]
fn chunked_puts_stream_to_the_disk_and_discard_leaves_nothing() {
    let mut s = Store::format(RamDevice::new(1 << 14), FormatOptions::new([5; 16])).unwrap();
    let ns = s.open_namespace("t").unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 511) as u8).collect();
    s.put_begin(ns, "bundle/0", data.len() as u64).unwrap();
    assert!(s.has_staged());
    assert_eq!(s.put(ns, "other", b"x"), Err(Error::Staged));
    assert_eq!(s.flush(), Err(Error::Staged));
    assert_eq!(s.put_begin(ns, "other", 1), Err(Error::Staged));
    assert!(
        !s.exists(ns, "bundle/0").unwrap(),
        "visible before its last byte"
    );
    let mut left = data.len() as u64;
    for piece in data.chunks(4093) {
        left = s.put_chunk(piece).unwrap();
    }
    assert_eq!(left, 0);
    assert_eq!(s.put_chunk(b"x"), Err(Error::Staged), "no put open");
    // Staged: readable by this store (from the disk), durable after the flush.
    let mut out = Vec::new();
    assert!(s.get(ns, "bundle/0", &mut out).unwrap());
    assert_eq!(out, data);
    s.put_checkpoint(ns, b"cp 1\n").unwrap();
    s.flush().unwrap();
    // The same bytes again in pieces: a no-op; other bytes of the same size: Immutable; a
    // piece past the size: TooLarge, the put still open.
    s.put_begin(ns, "bundle/0", data.len() as u64).unwrap();
    assert_eq!(s.put_chunk(&data[..10]).unwrap(), data.len() as u64 - 10);
    assert_eq!(s.put_chunk(&data), Err(Error::TooLarge));
    assert_eq!(s.put_chunk(&data[10..]), Ok(0));
    s.put_begin(ns, "bundle/0", data.len() as u64).unwrap();
    let mut other = data.clone();
    other[99_999] ^= 1;
    assert_eq!(s.put_chunk(&other), Err(Error::Immutable));
    assert_eq!(s.put_begin(ns, "bundle/0", 5), Err(Error::Immutable));
    assert!(!s.has_staged());
    // A refused request: a chunked put half sent and a signed checkpoint, then discard.
    let before = s.stats();
    let img_before = s.device().image().to_vec();
    s.put(ns, "tile/0/000", &[0x5a; 3000]).unwrap();
    s.put_checkpoint(ns, b"REFUSED cp 2\n").unwrap();
    s.put_begin(ns, "bundle/1", 50_000).unwrap();
    s.put_chunk(&[0xa5; 20_000]).unwrap();
    s.discard();
    assert_eq!(s.stats(), before);
    assert!(!s.exists(ns, "tile/0/000").unwrap());
    assert!(!s.has_staged());
    assert_eq!(
        s.device().image(),
        &img_before[..],
        "the discarded batch left bytes on the disk"
    );
    s.put(ns, "tile/0/000", b"kept").unwrap();
    s.flush().unwrap();
    let (mut s, report) = Store::mount(s.into_device(), Mode::ReadOnly).unwrap();
    assert_eq!(report.problem, None);
    let ns = s.open_namespace("t").unwrap();
    assert!(s.get(ns, "bundle/0", &mut out).unwrap());
    assert_eq!(out, data);
    assert!(s.checkpoint(ns, &mut out).unwrap());
    assert_eq!(out, b"cp 1\n");
    assert!(!s.exists(ns, "bundle/1").unwrap());
    assert_eq!(psdb::fsck(s.into_device()).unwrap().problem, None);
}
