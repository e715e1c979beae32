//! Reads in pieces: a sequential reader verifies the whole object by its last piece; offset
//! reads are unverified unless the whole member was checked since mount; damage found by any
//! whole read is remembered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{fresh, mount_ram, Rng};
use psdb::{Corruption, Error, Mode, Namespace, RamDevice, Store};

/// A volume with `a` (3,000 bytes, in an earlier batch) and `b` (in the final batch).
fn volume() -> (Store<RamDevice>, Vec<u8>, u64) {
    let mut s = fresh(4096);
    let ns = s.open_namespace("t").unwrap();
    let data = Rng(7).bytes(3000);
    s.put(ns, "a", &data).unwrap();
    s.flush().unwrap();
    s.put(ns, "b", b"final").unwrap();
    s.flush().unwrap();
    // Where `a`'s data is: find it in the image.
    let img = s.device().image();
    let at = img.windows(64).position(|w| w == &data[..64]).unwrap() as u64;
    (s, data, at)
}

fn remount(s: Store<RamDevice>) -> (Store<RamDevice>, Namespace) {
    let (mut s, _) = mount_ram(s.into_device().image().to_vec(), Mode::ReadWrite).unwrap();
    let ns = s.open_namespace("t").unwrap();
    (s, ns)
}

fn read_all(
    s: &mut Store<RamDevice>,
    ns: Namespace,
    path: &str,
    piece: usize,
) -> Result<Vec<u8>, Error> {
    let mut r = s.open_read(ns, path)?.unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0; piece];
    loop {
        let c = s.read_next(&mut r, &mut buf)?;
        out.extend_from_slice(&buf[..c.len]);
        if c.verified {
            assert_eq!(r.position(), r.size());
            return Ok(out);
        }
        assert_eq!(c.len, piece, "only the last piece is short");
    }
}

#[test]
fn sequential_reads_verify_at_the_last_piece() {
    let (s, data, _) = volume();
    let (mut s, ns) = remount(s);
    for piece in [1, 511, 512, 1000, 4096] {
        assert_eq!(read_all(&mut s, ns, "a", piece).unwrap(), data);
    }
    assert_eq!(read_all(&mut s, ns, "b", 3).unwrap(), b"final");
    assert!(s.open_read(ns, "nothing").unwrap().is_none());
    // An empty object: one piece, verified.
    s.put(ns, "e", b"").unwrap();
    s.flush().unwrap();
    assert_eq!(read_all(&mut s, ns, "e", 64).unwrap(), b"");
}

#[test]
fn offset_reads_say_whether_the_object_was_verified() {
    let (s, data, _) = volume();
    let (mut s, ns) = remount(s);
    let mut buf = [0u8; 700];
    // Any offset, any alignment; short at the end, empty past it.
    for off in [0u64, 1, 511, 512, 2999, 3000, 5000] {
        let c = s.read_at(ns, "a", off, &mut buf).unwrap().unwrap();
        let want = &data[(off as usize).min(3000)..(off as usize + 700).min(3000)];
        assert_eq!(&buf[..c.len], want, "offset {off}");
        assert_eq!(c.size, 3000);
        // `a` lies in an earlier batch: not checked by this mount.
        assert!(!c.verified);
    }
    // The final batch was checked at mount.
    assert!(s.read_at(ns, "b", 0, &mut buf).unwrap().unwrap().verified);
    // A whole read verifies it: then offset reads say so.
    assert!(s.verify(ns, "a").unwrap());
    assert!(s.read_at(ns, "a", 100, &mut buf).unwrap().unwrap().verified);
    assert!(s.read_at(ns, "nothing", 0, &mut buf).unwrap().is_none());
    assert!(!s.verify(ns, "nothing").unwrap());
    // A staged object is read whole (`get`), not in pieces.
    s.put(ns, "staged", b"x").unwrap();
    assert_eq!(s.read_at(ns, "staged", 0, &mut buf), Err(Error::Staged));
    assert!(matches!(s.open_read(ns, "staged"), Err(Error::Staged)));
    // `get` counts as a whole read too.
    let (mut s, ns) = remount(s);
    let mut out = Vec::new();
    assert!(s.get(ns, "a", &mut out).unwrap());
    assert!(s.read_at(ns, "a", 0, &mut buf).unwrap().unwrap().verified);
}

#[test]
fn a_damaged_member_read_by_range() {
    let (s, data, at) = volume();
    let mut img = s.into_device().image().to_vec();
    img[at as usize + 2000] ^= 1;
    let (mut s, _) = Store::mount(RamDevice::from_image(img), Mode::ReadWrite).unwrap();
    let ns = s.open_namespace("t").unwrap();
    let member = at - 512;
    let corrupt = Err(Error::Corrupt(psdb::Problem {
        offset: member,
        reason: Corruption::DataHash,
    }));
    // An offset read cannot know: the bytes come back, marked unverified.
    let mut buf = [0u8; 1000];
    let c = s.read_at(ns, "a", 1500, &mut buf).unwrap().unwrap();
    assert!(!c.verified);
    assert_ne!(
        &buf[..c.len],
        &data[1500..2500],
        "the damaged byte is served, unverified"
    );
    assert_eq!(&buf[..500], &data[1500..2000]);
    // A sequential read gives its pieces, then the verdict names the member.
    let mut r = s.open_read(ns, "a").unwrap().unwrap();
    let mut piece = [0u8; 1024];
    assert!(!s.read_next(&mut r, &mut piece).unwrap().verified);
    assert!(!s.read_next(&mut r, &mut piece).unwrap().verified);
    assert_eq!(s.read_next(&mut r, &mut piece).map(|_| ()), corrupt);
    // Remembered: every later read of it fails at once, by offset too.
    assert_eq!(s.read_at(ns, "a", 0, &mut buf).map(|_| ()), corrupt);
    assert_eq!(s.verify(ns, "a").map(|_| ()), corrupt);
    let mut out = Vec::new();
    assert_eq!(s.get(ns, "a", &mut out).map(|_| ()), corrupt);
    // The other object is served; nothing was repaired.
    assert_eq!(read_all(&mut s, ns, "b", 512).unwrap(), b"final");
    let img = s.into_device().image().to_vec();
    assert_eq!(img[at as usize + 2000], data[2000] ^ 1);
    // A fresh mount finds it the same way through `verify`.
    let (mut s, _) = mount_ram(img, Mode::ReadOnly).unwrap();
    let ns = s.open_namespace("t").unwrap();
    assert_eq!(s.verify(ns, "a").map(|_| ()), corrupt);
}

#[test]
fn a_damaged_header_fails_before_any_byte() {
    let (s, _, at) = volume();
    let mut img = s.into_device().image().to_vec();
    img[at as usize - 512 + 100] ^= 1; // the member header's mode field
    let (mut s, _) = mount_ram(img, Mode::ReadOnly).unwrap();
    let ns = s.open_namespace("t").unwrap();
    let bad = Err(Error::Corrupt(psdb::Problem {
        offset: at - 512,
        reason: Corruption::BadHeader,
    }));
    let mut buf = [0u8; 64];
    assert_eq!(s.read_at(ns, "a", 0, &mut buf).map(|_| ()), bad);
    assert_eq!(s.open_read(ns, "a").map(|_| ()), bad);
}

#[test]
fn journals_are_not_read_in_pieces() {
    let mut s = fresh(4096);
    let ns = s.open_namespace("t").unwrap();
    s.put_journal(ns, "j", 4).unwrap();
    s.flush().unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(s.read_at(ns, "j", 0, &mut buf), Err(Error::WrongKind));
    assert!(matches!(s.open_read(ns, "j"), Err(Error::WrongKind)));
}
