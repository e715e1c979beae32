//! The psdb PD's chunked calls, driven through its handler as a ledger drives them: an object
//! larger than the caller's region put in pieces (`PutBegin`, `PutChunk`s) and durable with the
//! checkpoint, read back by range (`ReadAt`: unverified until `Verify`), refused whole
//! (`TooLarge`) by `Get`, a damaged one refused (`Corrupt`) and never answered with bytes, and
//! a put abandoned part way leaving nothing.
// A panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use interface::msg::psdb::{label, Piece, Reply, Request};
use interface::msg::Message;
use interface::psdb_call::DATA;
use microkit::host::{set_backend, Backend};
use microkit::{Channel, MessageInfo};
use psdb::RamDevice;

/// The largest piece one call moves: the ledgers' region's data area.
const PIECE: usize = interface::size::LEDGER_PSDB - DATA;

impl Rig {
    /// Sends `req` on `ch` with `path` at 0 and `data` at `DATA` of its region; psdb's reply.
    fn send(&mut self, ch: Channel, req: Request, path: &str, data: &[u8]) -> Reply {
        let r = self.region(ch);
        r.write(0, path.as_bytes()).unwrap();
        r.write(DATA, data).unwrap();
        let m = req.encode();
        for (i, v) in m.mrs().iter().enumerate() {
            self.kernel.set_mr(i, *v);
        }
        let info = self.pd.handle(ch, m.info());
        let got = Message::received(info);
        Reply::decode(&req, got.info(), got.mrs()).unwrap()
    }

    fn put_in_pieces(&mut self, ch: Channel, path: &str, data: &[u8]) -> Reply {
        let begin = Request::PutBegin {
            path_len: path.len(),
            size: data.len() as u64,
        };
        let r = self.send(ch, begin, path, &[]);
        if r != Reply::Done {
            return r;
        }
        for chunk in data.chunks(PIECE) {
            let req = Request::PutChunk {
                data_len: chunk.len(),
            };
            let r = self.send(ch, req, "", chunk);
            if r != Reply::Done {
                return r;
            }
        }
        Reply::Done
    }

    fn checkpoint(&mut self, ch: Channel, cp: &[u8]) -> Reply {
        let req = Request::SetCheckpoint { data_len: cp.len() };
        self.send(ch, req, "", cp)
    }

    /// `ReadAt` of `max` bytes at `offset`: the piece and its bytes.
    fn read_at(&mut self, ch: Channel, path: &str, offset: u64, max: usize) -> (Reply, Vec<u8>) {
        let req = Request::ReadAt {
            path_len: path.len(),
            offset,
            max,
        };
        let r = self.send(ch, req, path, &[]);
        let mut bytes = Vec::new();
        if let Reply::Piece(Some(p)) = r {
            bytes.resize(p.len, 0);
            self.region(ch).read(DATA, &mut bytes).unwrap();
        }
        (r, bytes)
    }
}

fn object(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn store_code(e: psdb::Error) -> Reply {
    Reply::Store(e.code())
}

#[test]
fn an_object_larger_than_the_region_goes_and_comes_back_in_pieces() {
    let mut rig = boot(RamDevice::new(64 << 11));
    let big = object(3 * PIECE + 1234);
    let path = "tile/entries/000";
    assert_eq!(rig.put_in_pieces(CORPORATE, path, &big), Reply::Done);
    assert_eq!(rig.checkpoint(CORPORATE, b"cp 1"), Reply::Done);

    // A whole read does not fit the region: refused, never truncated.
    let get = Request::Get {
        path_len: path.len(),
    };
    assert_eq!(rig.send(CORPORATE, get, path, &[]), Reply::TooLarge);

    // By range: unverified until verified; the last piece is short; past the end, empty.
    let (r, bytes) = rig.read_at(CORPORATE, path, 100, PIECE);
    let size = big.len() as u64;
    assert_eq!(
        r,
        Reply::Piece(Some(Piece {
            len: PIECE,
            size,
            verified: false
        }))
    );
    assert_eq!(bytes, big[100..100 + PIECE]);
    // More than a region holds is clamped to it.
    let (r, _) = rig.read_at(CORPORATE, path, 0, usize::MAX >> 1);
    assert!(matches!(r, Reply::Piece(Some(p)) if p.len == PIECE));
    let verify = Request::Verify {
        path_len: path.len(),
    };
    assert_eq!(
        rig.send(CORPORATE, verify, path, &[]),
        Reply::Found(Some(big.len()))
    );
    let mut back = Vec::new();
    while back.len() < big.len() {
        let (r, bytes) = rig.read_at(CORPORATE, path, back.len() as u64, PIECE);
        assert!(matches!(r, Reply::Piece(Some(p)) if p.verified && p.size == size));
        back.extend_from_slice(&bytes);
    }
    assert_eq!(back, big);
    let (r, bytes) = rig.read_at(CORPORATE, path, size + 5, PIECE);
    assert!(matches!(r, Reply::Piece(Some(p)) if p.len == 0) && bytes.is_empty());
    // Absent, and another namespace's: not found.
    let (r, _) = rig.read_at(CORPORATE, "tile/entries/001", 0, 10);
    assert_eq!(r, Reply::Piece(None));
    let (r, _) = rig.read_at(PERSONNEL, path, 0, 10);
    assert_eq!(r, Reply::Piece(None));
    let verify = Request::Verify { path_len: 16 };
    assert_eq!(rig.send(PERSONNEL, verify, path, &[]), Reply::Found(None));

    // Damage: flip one byte of the object on the disk and remount (another batch after it, so
    // mount's check of the final batch does not read it). A piece read before the verdict is
    // unverified; the verdict is `Corrupt`, and from then on no bytes.
    assert_eq!(
        rig.request(CORPORATE, &[("tile/0/000", b"t")], b"cp 2"),
        label::OK
    );
    let mut image = rig.pd.into_store().into_device().into_image();
    let at = image
        .windows(64)
        .position(|w| w == &big[PIECE..PIECE + 64])
        .unwrap();
    image[at + 3] ^= 1;
    let mut rig = boot(RamDevice::from_image(image));
    let (r, _) = rig.read_at(CORPORATE, path, 0, PIECE);
    assert!(matches!(r, Reply::Piece(Some(p)) if !p.verified));
    let corrupt = Reply::Store(7);
    let verify = Request::Verify {
        path_len: path.len(),
    };
    assert_eq!(rig.send(CORPORATE, verify, path, &[]), corrupt);
    assert_eq!(rig.read_at(CORPORATE, path, 0, PIECE).0, corrupt);
    set_backend(None);
}

#[test]
fn a_put_in_pieces_abandoned_or_misused_leaves_nothing() {
    let mut rig = boot(RamDevice::new(64 << 11));
    let big = object(2 * PIECE + 7);
    let path = "tile/entries/000";
    let begin = Request::PutBegin {
        path_len: path.len(),
        size: big.len() as u64,
    };
    let chunk = |n: usize| Request::PutChunk { data_len: n };

    // Another caller arrives between the pieces: the put is dropped, the next piece refused.
    assert_eq!(rig.send(CORPORATE, begin, path, &[]), Reply::Done);
    assert_eq!(
        rig.send(CORPORATE, chunk(PIECE), "", &big[..PIECE]),
        Reply::Done
    );
    let _ = rig.usage(PERSONNEL);
    let staged = store_code(psdb::Error::Staged);
    assert_eq!(
        rig.send(CORPORATE, chunk(PIECE), "", &big[PIECE..2 * PIECE]),
        staged
    );
    assert_eq!(rig.checkpoint(CORPORATE, b"cp 1"), Reply::Done);
    assert_eq!(rig.read_at(CORPORATE, path, 0, 1).0, Reply::Piece(None));

    // A piece longer than what is left, a piece longer than the region, a put while one is
    // open: refused, and the whole request with it.
    assert_eq!(rig.send(CORPORATE, begin, path, &[]), Reply::Done);
    let long = vec![0u8; PIECE];
    assert_eq!(rig.send(CORPORATE, chunk(PIECE), "", &long), Reply::Done);
    assert_eq!(rig.send(CORPORATE, chunk(PIECE), "", &long), Reply::Done);
    assert_eq!(
        rig.send(CORPORATE, chunk(8), "", &long[..8]),
        store_code(psdb::Error::TooLarge)
    );
    assert_eq!(rig.send(CORPORATE, begin, path, &[]), Reply::Done);
    let m = rig.pd.handle(CORPORATE, {
        rig.kernel.set_mr(0, 0);
        rig.kernel.set_mr(1, (PIECE + 1) as u64);
        MessageInfo::new(label::PUT_CHUNK, 2)
    });
    assert_eq!(m.label(), label::BAD_LENGTH);
    assert_eq!(rig.send(CORPORATE, begin, path, &[]), Reply::Done);
    let put = Request::Put {
        path_len: 10,
        data_len: 1,
    };
    assert_eq!(rig.send(CORPORATE, put, "tile/0/000", b"x"), staged);
    assert_eq!(rig.checkpoint(CORPORATE, b"cp 2"), Reply::Done);
    assert_eq!(rig.read_at(CORPORATE, path, 0, 1).0, Reply::Piece(None));
    assert_eq!(
        rig.read_at(CORPORATE, "tile/0/000", 0, 1).0,
        Reply::Piece(None)
    );

    // Done right, it is there; put again with the same bytes, write-once holds.
    assert_eq!(rig.put_in_pieces(CORPORATE, path, &big), Reply::Done);
    assert_eq!(rig.checkpoint(CORPORATE, b"cp 3"), Reply::Done);
    assert_eq!(rig.put_in_pieces(CORPORATE, path, &big), Reply::Done);
    let mut other = big.clone();
    other[PIECE + 1] ^= 1;
    assert_eq!(
        rig.put_in_pieces(CORPORATE, path, &other),
        store_code(psdb::Error::Immutable)
    );
    let _ = rig.kernel.memory_region("psdb_vaddr");
    set_backend(None);
}
