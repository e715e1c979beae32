//! The psdb PD's limits: its heap size is system.xml's, volumes above its batch ceiling are
//! refused, and each namespace's quota leaves the others their share.
// A panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use psdb::{Error, Store};
use psdb_pd::HEAP_BYTES;

#[test]
fn heap_bytes_is_system_xml_heap_psdb() {
    let xml =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../system.xml")).unwrap();
    let line = xml
        .lines()
        .find(|l| l.contains("name=\"heap_psdb\""))
        .expect("heap_psdb region");
    let size = line.split("size=\"0x").nth(1).unwrap();
    let size = u64::from_str_radix(size.split('"').next().unwrap(), 16).unwrap();
    assert_eq!(size, HEAP_BYTES);
    assert!(psdb_pd::limits(HEAP_BYTES).index_bytes > 0);
}

#[test]
fn a_volume_above_the_batch_ceiling_is_refused() {
    let big = psdb::FormatOptions {
        volume_id: [5; 16],
        max_batch_bytes: psdb::store::MAX_MAX_BATCH,
    };
    let dev = Store::format(psdb::RamDevice::new(64), big)
        .unwrap()
        .into_device();
    let r = psdb_pd::open_store(dev);
    assert_eq!(r.err(), Some(Error::ExceedsLimits));
}

#[test]
fn quotas_leave_every_namespace_its_share() {
    let limits = psdb_pd::limits(HEAP_BYTES);
    let cap = 1u64 << 34;
    let total: u64 = interface::psdb::CLIENTS
        .iter()
        .map(|c| psdb_pd::quota(c.1, cap, limits).disk_bytes)
        .sum();
    assert!(total <= cap);
    let index: u64 = interface::psdb::CLIENTS
        .iter()
        .map(|c| psdb_pd::quota(c.1, cap, limits).index_bytes)
        .sum();
    assert!(index <= limits.index_bytes);
    let audit = psdb_pd::quota("audit", cap, limits);
    assert_eq!(
        audit.disk_bytes,
        (u128::from(cap) * u128::from(psdb_pd::AUDIT_SHARE_PERCENT) / 100) as u64
    );
    // A tenant that fills its share is stopped; audit still writes.
    let mut s = Store::format(
        psdb::RamDevice::new(4096),
        psdb::FormatOptions::new([1; 16]),
    )
    .unwrap();
    let t = s.open_namespace("corporate").unwrap();
    let a = s.open_namespace("audit").unwrap();
    let cap = s.stats().capacity;
    s.set_quota(t, psdb_pd::quota("corporate", cap, limits))
        .unwrap();
    s.set_quota(a, psdb_pd::quota("audit", cap, limits))
        .unwrap();
    let mut k = 0;
    let err = loop {
        match s.put(t, &format!("tile/{k}"), &[0; 4096]) {
            Ok(()) => k += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err, Error::Quota);
    s.put(a, "tile/0", &[0; 4096]).unwrap();
    s.put_checkpoint(a, b"audit cp").unwrap();
    s.flush().unwrap();
}

#[test]
fn a_volume_whose_first_sector_is_damaged_is_refused_never_reformatted() {
    use psdb::RamDevice;
    // A committed volume: one tenant object and checkpoint.
    let (mut store, opened) = psdb_pd::open_store(RamDevice::new(1 << 12)).unwrap();
    assert_eq!(opened, psdb_pd::Opened::Formatted);
    let ns = store.open_namespace("corporate").unwrap();
    store.put(ns, "tile/0/000.p/1", b"leaf").unwrap();
    store.put_checkpoint(ns, b"cp").unwrap();
    store.flush().unwrap();
    let mut image = store.into_device().into_image();
    // Sector 0 (the volume manifest's tar header) zeroed: not a blank disk.
    image[..512].fill(0);
    let before = image.clone();
    match psdb_pd::open_store(RamDevice::from_image(image)) {
        Err(Error::Corrupt(p)) => assert_eq!(p.reason, psdb::Corruption::NotPsdb),
        other => panic!("a damaged volume was not refused: {other:?}"),
    }
    // Nothing was written: open_store took the device by value, so check a copy the same way
    // the PD would see it on the next boot: still refused, still the same bytes.
    let dev = RamDevice::from_image(before.clone());
    assert!(psdb_pd::open_store(dev).is_err());
    // A disk that really is blank (all zeros, as a fresh sparse image) is formatted.
    let (_, opened) = psdb_pd::open_store(RamDevice::new(1 << 12)).unwrap();
    assert_eq!(opened, psdb_pd::Opened::Formatted);
}

#[test]
fn every_client_has_a_distinct_valid_namespace() {
    let clients = &interface::psdb::CLIENTS;
    for (k, c) in clients.iter().enumerate() {
        psdb::names::check_namespace(c.1).unwrap();
        assert!(clients[..k].iter().all(|d| d.1 != c.1), "{} twice", c.1);
    }
    // The ledgers in tenant order, then audit: what the shares and the tests rely on.
    for (t, tenant) in interface::TENANTS.iter().enumerate() {
        assert_eq!(clients[t].1, *tenant);
    }
    assert_eq!(
        clients[interface::TENANT_COUNT].1,
        interface::AUDIT_NAMESPACE
    );
}

/// A namespace that is neither a tenant nor audit (a PD added to the description with a
/// channel to psdb) has no share: it reads, and every write is refused.
#[test]
fn another_pds_namespace_reads_but_cannot_write() {
    let limits = psdb_pd::limits(HEAP_BYTES);
    assert_eq!(psdb_pd::share_percent("template"), 0);
    let q = psdb_pd::quota("template", 1 << 34, limits);
    assert_eq!((q.disk_bytes, q.index_bytes), (0, 0));
    let mut s = Store::format(
        psdb::RamDevice::new(4096),
        psdb::FormatOptions::new([2; 16]),
    )
    .unwrap();
    let ns = s.open_namespace("template").unwrap();
    let cap = s.stats().capacity;
    s.set_quota(ns, psdb_pd::quota("template", cap, limits))
        .unwrap();
    assert_eq!(s.put(ns, "anything", b"x"), Err(Error::Quota));
    let mut out = Vec::new();
    assert!(!s.checkpoint(ns, &mut out).unwrap());
    assert_eq!(s.usage(ns).unwrap().disk_bytes, 0);
}
