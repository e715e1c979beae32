//! The psdb PD's `USAGE` call and its console warnings, driven through its handler as a caller
//! would: the numbers are the store's own (`Store::usage`, the PD's quota, `free_bytes`), each
//! caller learns only its own namespace's, and a namespace running low is named once per
//! warning step, never once per request.
// A panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use interface::Usage;
use microkit::host::set_backend;
use psdb::{RamDevice, Store};
use psdb_labels::{OK, PUT};

/// The typed protocol's labels ([`interface::msg::psdb::label`]), as numbers to match on.
use interface::msg::psdb::label as psdb_labels;

/// What the store itself says of namespace `ns`, and the quota the PD gives it.
fn expected(store: &mut Store<RamDevice>, ns: &str) -> Usage {
    let h = store.open_namespace(ns).unwrap();
    let u = store.usage(h).unwrap();
    let q = psdb_pd::quota(ns, store.stats().capacity, store.limits());
    Usage {
        disk_used: u.disk_bytes,
        disk_quota: q.disk_bytes,
        index_used: u.index_bytes,
        index_quota: q.index_bytes,
        volume_free: store.free_bytes(),
        damaged: store.damage(h).unwrap().is_some(),
    }
}

#[test]
fn usage_is_the_callers_own_namespace_as_the_store_counts_it() {
    let mut rig = boot(RamDevice::new(16 << 11)); // 16 MiB
    let empty = rig.usage(CORPORATE);
    assert_eq!((empty.disk_used, empty.index_used), (0, 0));
    assert!(!empty.damaged);
    assert!(empty.disk_quota > 0 && empty.index_quota > 0 && empty.volume_free > 0);
    let audit_before = rig.usage(AUDIT);
    assert!(audit_before.disk_quota < empty.disk_quota); // 16% against a tenant's share

    let data = vec![7u8; 10_000];
    assert_eq!(
        rig.request(
            CORPORATE,
            &[("tile/0/000", &data), ("tile/entries/000", b"e")],
            b"cp 1"
        ),
        OK
    );
    let one = rig.usage(CORPORATE);
    assert!(one.disk_used > 10_000 && one.index_used > 0);
    assert!(one.volume_free < empty.volume_free);
    assert_eq!(one.disk_quota, empty.disk_quota);
    // Another tenant sees only its own: nothing yet, whatever corporate stored.
    let other = rig.usage(PERSONNEL);
    assert_eq!((other.disk_used, other.index_used), (0, 0));
    assert_eq!(other.volume_free, one.volume_free);
    assert_eq!(rig.request(PERSONNEL, &[("tile/0/000", b"p")], b"p 1"), OK);
    let two = rig.usage(CORPORATE);
    assert_eq!(
        (two.disk_used, two.index_used),
        (one.disk_used, one.index_used)
    );
    assert!(two.volume_free < one.volume_free);
    let personnel = rig.usage(PERSONNEL);
    assert!(personnel.disk_used > 0);
    let audit = rig.usage(AUDIT);
    assert_eq!((audit.disk_used, audit.index_used), (0, 0));

    // Every figure is the store's own.
    let mut store = rig.pd.into_store();
    assert_eq!(two, expected(&mut store, "corporate"));
    assert_eq!(personnel, expected(&mut store, "personnel"));
    assert_eq!(audit, expected(&mut store, "audit"));
    set_backend(None);
}

#[test]
fn usage_after_a_refused_request_counts_nothing_of_it() {
    let mut rig = boot(RamDevice::new(16 << 11));
    assert_eq!(rig.request(CORPORATE, &[("tile/0/000", b"a")], b"cp"), OK);
    let before = rig.usage(CORPORATE);
    // A put staged, then the caller goes away (another caller calls): discarded.
    assert_eq!(rig.call(CORPORATE, PUT, "tile/0/001", b"b").label(), OK);
    let _ = rig.usage(PERSONNEL);
    assert_eq!(rig.usage(CORPORATE), before);
    // A label psdb does not know is refused (the journal labels follow USAGE; tests/journal.rs;
    // the chunked calls follow them, up to VERIFY).
    let r = rig.call(CORPORATE, psdb_labels::VERIFY + 1, "", b"");
    assert_eq!(r.label(), psdb_labels::BAD_LABEL);
    let mut store = rig.pd.into_store();
    assert_eq!(before, expected(&mut store, "corporate"));
    set_backend(None);
}

/// Fills corporate up to its disk quota on a 2 MiB disk, one request at a time, checking after
/// every request that exactly one warning line appeared for each new step reached (90, 95,
/// 100) and none otherwise; then a remount names it once more.
#[test]
fn a_namespace_running_low_is_warned_once_per_step() {
    let mut rig = boot(RamDevice::new(2 << 11)); // 2 MiB: quota about 587 KB
    let data = vec![1u8; 4096];
    let mut announced = 0u8;
    let mut lines = 0usize;
    let mut k = 0;
    loop {
        let label = rig.request(
            CORPORATE,
            &[(&format!("tile/0/{k:03}"), &data)],
            format!("cp {k}").as_bytes(),
        );
        if label != OK {
            let quota = interface::msg::psdb::Reply::Store(psdb::Error::Quota.code());
            assert_eq!(label, quota.label());
            break;
        }
        k += 1;
        let u = rig.usage(CORPORATE);
        let p = u128::from(u.disk_used) * 100 / u128::from(u.disk_quota);
        let step = [90u8, 95, 100]
            .into_iter()
            .filter(|s| p >= u128::from(*s))
            .max()
            .unwrap_or(0);
        if step > announced {
            announced = step;
            lines += 1;
            let last = rig.warnings().last().cloned().unwrap_or_default();
            assert_eq!(
                last,
                format!(
                    "psdb|WARN: namespace corporate at {p}% of its disk quota ({}/{} bytes)",
                    u.disk_used, u.disk_quota
                )
            );
        }
        assert_eq!(rig.warnings().len(), lines, "after request {k}");
        // Reads and usage requests never print.
        let _ = rig.usage(PERSONNEL);
        assert_eq!(rig.warnings().len(), lines);
    }
    assert!(announced >= 95, "filled to step {announced} only");
    // One line per step reached: 90 (at 90..94%), 95 (95..99%), and 100 only if exactly full.
    let w = rig.warnings();
    assert!(w
        .iter()
        .all(|l| l.contains("namespace corporate") && l.contains("disk quota")));
    let pct = |l: &str| -> u64 {
        l.split(" at ")
            .nth(1)
            .unwrap()
            .split('%')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        (90..95).contains(&pct(&w[0])) && (95..100).contains(&pct(&w[1])),
        "{w:?}"
    );
    assert_eq!(w.len(), if announced == 100 { 3 } else { 2 }, "{w:?}");
    // Refused puts print nothing either.
    let before = rig.warnings().len();
    let _ = rig.request(CORPORATE, &[("tile/1/000", &data)], b"again");
    assert_eq!(rig.warnings().len(), before);

    // At mount: one line for the namespace already past 90%, none for the others.
    let used = rig.usage(CORPORATE);
    let dev = rig.pd.into_store().into_device();
    set_backend(None);
    let rig = boot(dev);
    let p = u128::from(used.disk_used) * 100 / u128::from(used.disk_quota);
    assert_eq!(
        rig.warnings(),
        [format!(
            "psdb|WARN: namespace corporate at {p}% of its disk quota ({}/{} bytes)",
            used.disk_used, used.disk_quota
        )]
    );
    set_backend(None);
}

/// A namespace holding damaged committed data is flagged in its own USAGE reply (and only
/// there), and takes no more writes.
#[test]
fn usage_flags_a_damaged_namespace_only() {
    let mut rig = boot(RamDevice::new(4 << 11));
    assert_eq!(rig.request(CORPORATE, &[("tile/0/000", b"c")], b"c 1"), OK);
    assert_eq!(rig.request(PERSONNEL, &[("tile/0/000", b"p")], b"p 1"), OK);
    assert_eq!(rig.request(PERSONNEL, &[("tile/0/001", b"q")], b"p 2"), OK);
    let mut image = rig.pd.into_store().into_device().into_image();
    set_backend(None);
    // The manifest of corporate's batch (not the last one): one flipped bit in its text.
    let batch = (0..image.len() / 512)
        .map(|s| s * 512)
        .find(|&at| {
            image[at..].starts_with(b".psdb/batch/")
                && String::from_utf8_lossy(&image[at + 512..at + 1024]).contains("corporate/")
        })
        .expect("corporate's batch");
    image[batch + 600] ^= 0x20;
    let mut rig = boot(RamDevice::from_image(image));
    assert!(rig.usage(CORPORATE).damaged);
    assert!(!rig.usage(PERSONNEL).damaged);
    assert!(!rig.usage(AUDIT).damaged);
    assert_ne!(rig.request(CORPORATE, &[("tile/0/002", b"x")], b"c 2"), OK);
    assert_eq!(rig.request(PERSONNEL, &[("tile/0/002", b"x")], b"p 3"), OK);
    let mut store = rig.pd.into_store();
    assert!(expected(&mut store, "corporate").damaged);
    set_backend(None);
}
