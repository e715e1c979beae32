//! Group commit through the whole simulated system (every PD's handler, psdb on a RAM disk):
//! pipelined appends get contiguous, in-order indices under their own ids, every acknowledged
//! entry reads back at its index with its bytes and the log verifies from scratch; a bad request
//! in the middle of a pipeline gets its own error while every other request is stored and
//! answered; tenants interleaved in one input each get their own log; a tenant whose quota
//! cannot take a combined append still stores the requests that fit, and the one that does not
//! fit stores nothing; and grouping happens (far fewer ledger calls and disk bytes than
//! requests sent one at a time).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::rc::Rc;

use protocol::client::{Acked, ClientError};
use protocol::frame::encode_frame_vec;
use protocol::{push_entry, Body, Decoder, ErrorCode, Op, Request, Response, MAX_ENCODED};
use psdb::RamDevice;

mod common;
use common::*;

use interface::msg::ledger::{Call, Reply as LedgerReply, Request as LedgerRequest};
use interface::msg::Message;

fn entry(tenant: &str, i: usize) -> Vec<u8> {
    format!("{tenant} record {i:05} {}", "-".repeat(i % 50)).into_bytes()
}

fn request(id: u64, tenant: &str, capability: &[u8], op: Op<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; protocol::MAX_PAYLOAD];
    let n = Request {
        id,
        tenant,
        capability,
        op,
    }
    .encode(&mut buf)
    .unwrap();
    encode_frame_vec(&buf[..n])
}

fn append_frame(id: u64, tenant: &str, es: &[Vec<u8>]) -> Vec<u8> {
    let mut bundle = vec![0u8; protocol::MAX_PAYLOAD];
    let mut len = 0;
    for e in es {
        assert!(push_entry(&mut bundle, &mut len, e));
    }
    request(
        id,
        tenant,
        &[],
        Op::Append {
            entries: &bundle[..len],
        },
    )
}

/// An answer, owned: `Ok((first, count, size))` or the error code.
type Answer = Result<(u64, u32, u64), ErrorCode>;

/// Feeds `input` to the wire in one go; each answer's id and what it says.
fn feed(rig: &mut Rig, input: &[u8]) -> Vec<(u64, Answer)> {
    let mut out = Vec::new();
    sim(rig)
        .feed(input, &mut |b| out.extend_from_slice(b))
        .unwrap();
    let mut d = Decoder::new(vec![0u8; MAX_ENCODED]);
    let mut got = Vec::new();
    d.feed(&out, |f| {
        let r = Response::decode(f.unwrap()).unwrap();
        let a = match r.body {
            Body::Appended { first, count, size } => Ok((first, count, size)),
            Body::Error { code } => Err(code),
            b => panic!("not an append's answer: {b:?}"),
        };
        got.push((r.id, a));
    });
    got
}

/// Every entry of `tenant`'s log, read back through the box.
fn read_all(rig: &mut Rig, tenant: &str) -> Vec<Vec<u8>> {
    let got = rig.client.read(tenant, 0, u64::MAX).unwrap();
    for (k, (i, _)) in got.iter().enumerate() {
        assert_eq!(*i, k as u64);
    }
    got.into_iter().map(|(_, e)| e).collect()
}

#[test]
fn pipelined_appends_are_stored_in_order_and_read_back() {
    let mut rig = boot();
    // 300 requests of 1 to 4 entries, 64 in flight.
    let mut n = 0;
    let requests: Vec<Vec<Vec<u8>>> = (0..300)
        .map(|r| {
            (0..=r % 4)
                .map(|_| {
                    n += 1;
                    entry("corporate", n - 1)
                })
                .collect()
        })
        .collect();
    let before = sim(&mut rig).wire_stats();
    let got = rig.client.append_pipelined("corporate", &requests, 64);
    let after = sim(&mut rig).wire_stats();
    let mut next = 0u64;
    for (r, a) in requests.iter().zip(&got) {
        let Acked { indices, size } = a.as_ref().unwrap();
        assert_eq!(indices.start, next);
        assert_eq!(indices.end - indices.start, r.len() as u64);
        assert!(*size >= indices.end);
        next = indices.end;
    }
    assert_eq!(next, n as u64);
    // Every acknowledged entry is at its index with its bytes, and the log verifies.
    let all: Vec<Vec<u8>> = requests.concat();
    assert_eq!(read_all(&mut rig, "corporate"), all);
    assert_eq!(export_and_verify(&mut rig.client, "corporate"), n as u64);
    // Grouped: 300 requests in a handful of ledger calls (5 windows of 64).
    let calls = after.calls - before.calls;
    assert!(calls <= 10, "{calls} ledger calls for 300 requests");
    assert_eq!(after.grouped - before.grouped, 300);
    // The same survives a restart, and appends carry on after it.
    let disk = rig.disk.clone();
    drop(rig);
    let mut again = boot_on(disk);
    assert_eq!(again.client.hello("corporate").unwrap().size, n as u64);
    assert_eq!(
        again.client.append("corporate", &[b"after"]).unwrap(),
        [n as u64]
    );
}

#[test]
fn grouping_writes_far_less_than_one_request_at_a_time() {
    let mut rig = boot();
    let requests: Vec<Vec<Vec<u8>>> = (0..200).map(|i| vec![entry("x", i)]).collect();
    let disk_of = |rig: &mut Rig, t: &str| rig.client.status(t).unwrap().disk_used;
    let (c0, p0) = (
        disk_of(&mut rig, "corporate"),
        disk_of(&mut rig, "personnel"),
    );
    let s0 = sim(&mut rig).wire_stats();
    for r in &requests {
        rig.client.append("corporate", r).unwrap();
    }
    let s1 = sim(&mut rig).wire_stats();
    let got = rig.client.append_pipelined("personnel", &requests, 64);
    assert!(got.iter().all(Result::is_ok));
    let s2 = sim(&mut rig).wire_stats();
    let one_at_a_time = disk_of(&mut rig, "corporate") - c0;
    let pipelined = disk_of(&mut rig, "personnel") - p0;
    // The same 200 entries: one checkpoint each, or one per group.
    assert_eq!(s1.calls - s0.calls, 200);
    assert!(s2.calls - s1.calls <= 4, "{} calls", s2.calls - s1.calls);
    assert!(
        pipelined * 10 < one_at_a_time,
        "pipelined {pipelined} disk bytes, one at a time {one_at_a_time}"
    );
    assert_eq!(
        read_all(&mut rig, "personnel"),
        read_all(&mut rig, "corporate")
    );
}

#[test]
fn a_bad_request_in_a_pipeline_gets_its_own_error_and_the_rest_are_stored() {
    let mut rig = boot();
    let t = "property";
    let e = |i| vec![entry(t, i)];
    let mut input = vec![0u8];
    input.extend(append_frame(1, t, &e(0)));
    input.extend(append_frame(2, t, &e(1)));
    // Garbage that ends at a delimiter: a damaged frame.
    input.extend(b"\x13\x37 not a frame \xff\x00");
    input.extend(append_frame(3, t, &e(2)));
    // An unknown tenant.
    input.extend(append_frame(4, "mallory", &e(99)));
    input.extend(append_frame(5, t, &e(3)));
    input.extend(append_frame(6, t, &e(4)));
    // More than a frame of non-zero bytes.
    input.extend(vec![0x55u8; MAX_ENCODED + 10]);
    input.push(0);
    input.extend(append_frame(7, t, &e(5)));
    // No entries; a truncated bundle; a capability.
    input.extend(request(8, t, &[], Op::Append { entries: &[] }));
    input.extend(append_frame(9, t, &e(6)));
    input.extend(request(
        10,
        t,
        &[],
        Op::Append {
            entries: &[0, 5, 1],
        },
    ));
    input.extend(request(
        11,
        t,
        b"cap",
        Op::Append {
            entries: &[0, 1, b'x'],
        },
    ));
    input.extend(append_frame(12, t, &e(7)));
    input.extend(append_frame(13, t, &e(8)));
    let got = feed(&mut rig, &input);
    let ok = |id, first| (id, Ok((first, 1, 0)));
    // Sizes depend on how the requests were grouped: compare them apart.
    let sizes: Vec<u64> = got
        .iter()
        .filter_map(|(_, a)| a.as_ref().ok().map(|x| x.2))
        .collect();
    let got: Vec<(u64, Answer)> = got
        .into_iter()
        .map(|(id, a)| (id, a.map(|(f, c, _)| (f, c, 0))))
        .collect();
    assert_eq!(
        got,
        vec![
            ok(1, 0),
            ok(2, 1),
            (0, Err(ErrorCode::BadFrame)),
            ok(3, 2),
            (4, Err(ErrorCode::UnknownTenant)),
            ok(5, 3),
            ok(6, 4),
            (0, Err(ErrorCode::Oversize)),
            ok(7, 5),
            (8, Err(ErrorCode::BadRequest)),
            ok(9, 6),
            (10, Err(ErrorCode::BadEntries)),
            (11, Err(ErrorCode::BadRequest)),
            ok(12, 7),
            ok(13, 8),
        ]
    );
    // Each acknowledgement's checkpoint covers it, and none is past the log.
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(sizes.last(), Some(&9));
    let stored: Vec<Vec<u8>> = (0..9).map(|i| entry(t, i)).collect();
    assert_eq!(read_all(&mut rig, t), stored);
    assert_eq!(export_and_verify(&mut rig.client, t), 9);
    // Nothing reached another tenant.
    assert_eq!(rig.client.hello("corporate").unwrap().size, 0);

    // The client's own refusals in a pipeline: an entry over the limit is not sent, a
    // request of no entries is refused by the box, the others are stored.
    let big = vec![b'b'; protocol::MAX_ENTRY + 1];
    let requests = vec![
        vec![entry(t, 9)],
        vec![entry(t, 10), big],
        vec![],
        vec![entry(t, 11), entry(t, 12)],
    ];
    let got = rig.client.append_pipelined(t, &requests, 8);
    assert_eq!(got[0].as_ref().unwrap().indices, 9..10);
    assert!(matches!(
        got[1],
        Err(ClientError::EntryTooLarge { index: 1, .. })
    ));
    assert!(matches!(
        got[2],
        Err(ClientError::Remote(ErrorCode::BadRequest))
    ));
    assert_eq!(got[3].as_ref().unwrap().indices, 10..12);
    assert_eq!(read_all(&mut rig, t).len(), 12);
}

#[test]
fn interleaved_tenants_each_get_their_own_log() {
    let mut rig = boot();
    // c c p c c c q q p p c q (c corporate, p personnel, q property), twice over.
    let pattern = [0usize, 0, 1, 0, 0, 0, 2, 2, 1, 1, 0, 2];
    let mut input = Vec::new();
    let mut counts = [0usize; 3];
    let mut expected = Vec::new();
    for (k, &t) in pattern.iter().chain(pattern.iter()).enumerate() {
        let tenant = interface::TENANTS[t];
        let es: Vec<Vec<u8>> = (0..=k % 2).map(|j| entry(tenant, counts[t] + j)).collect();
        input.extend(append_frame(100 + k as u64, tenant, &es));
        expected.push((100 + k as u64, counts[t] as u64, es.len() as u32));
        counts[t] += es.len();
    }
    let before = sim(&mut rig).wire_stats();
    let got = feed(&mut rig, &input);
    let got: Vec<(u64, u64, u32)> = got
        .into_iter()
        .map(|(id, a)| {
            let (first, count, _) = a.unwrap();
            (id, first, count)
        })
        .collect();
    assert_eq!(got, expected);
    // One call per run of one tenant: c c | p | c c c | q q | p p | c | q, twice.
    let calls = sim(&mut rig).wire_stats().calls - before.calls;
    assert_eq!(calls, 14);
    for (t, tenant) in interface::TENANTS.iter().enumerate() {
        let want: Vec<Vec<u8>> = (0..counts[t]).map(|i| entry(tenant, i)).collect();
        assert_eq!(read_all(&mut rig, tenant), want);
        assert_eq!(export_and_verify(&mut rig.client, tenant), counts[t] as u64);
    }
}

/// A tenant close to its quota (psdb's per-namespace share of a 12 MiB disk): a combined
/// append that does not fit is refused whole, then each request goes alone: the small ones
/// before and after the one that cannot fit are stored, that one gets `Full` and stores
/// nothing.
#[test]
fn a_combined_append_over_the_quota_falls_back_and_stores_what_fits() {
    let mut rig = boot_on(Rc::new(RefCell::new(RamDevice::new(12 << 11)))); // 12 MiB
    let t = "corporate";
    let used = |rig: &mut Rig| {
        let s = rig.client.status(t).unwrap();
        (s.disk_used, s.disk_quota, s.size)
    };
    // What a tiny append costs (the larger of the first two).
    let mut tiny = 0;
    for i in 0..2 {
        let (u0, _, _) = used(&mut rig);
        rig.client.append(t, &[format!("tiny {i}")]).unwrap();
        tiny = tiny.max(used(&mut rig).0 - u0);
    }
    // Up to the next whole entry bundle (256 entries), then whole bundles, one per request
    // (none rewritten), while the room left after one more would still be comfortably more
    // than a few tiny appends.
    let (_, _, size) = used(&mut rig);
    let pad: Vec<Vec<u8>> = (0..256 - size % 256).map(|_| vec![b'p'; 200]).collect();
    rig.client.append(t, &pad).unwrap();
    let bundle: Vec<Vec<u8>> = (0..256).map(|_| vec![b'w'; 200]).collect();
    let target = 6 * tiny + 8192;
    let mut cost = 0;
    let room = loop {
        let (u, quota, _) = used(&mut rig);
        let room = quota - u;
        if cost > 0 && room < cost + cost / 5 + target {
            break room;
        }
        rig.client.append(t, &bundle).unwrap();
        cost = cost.max(used(&mut rig).0 - u);
    };
    assert!(room >= target, "room {room} < {target}");
    let (_, _, size) = used(&mut rig);
    assert_eq!(size % 256, 0);
    // A request whose entries alone are more than the room left: it never fits.
    let over = room as usize + 1;
    let big: Vec<Vec<u8>> = vec![vec![b'B'; over / 2], vec![b'B'; over - over / 2]];
    let requests = vec![vec![b"small a".to_vec()], big, vec![b"small b".to_vec()]];
    let before = sim(&mut rig).wire_stats();
    let got = rig.client.append_pipelined(t, &requests, 8);
    let after = sim(&mut rig).wire_stats();
    assert_eq!(got[0].as_ref().unwrap().indices, size..size + 1);
    assert!(
        matches!(got[1], Err(ClientError::Remote(ErrorCode::Full))),
        "{:?}",
        got[1]
    );
    assert_eq!(got[2].as_ref().unwrap().indices, size + 1..size + 2);
    // One combined call, refused, then one call per request.
    assert_eq!(after.fallbacks - before.fallbacks, 1);
    assert_eq!(after.calls - before.calls, 4);
    // The refused request stored nothing; the log verifies.
    let all = read_all(&mut rig, t);
    assert_eq!(all.len() as u64, size + 2);
    assert_eq!(&all[size as usize..], [&b"small a"[..], b"small b"]);
    assert_eq!(export_and_verify(&mut rig.client, t), size + 2);
    // The other tenants carry on.
    assert_eq!(rig.client.append("personnel", &[b"fine"]).unwrap(), [0]);
}

/// Entries of 256 bytes, numbered from `from`.
fn entries_256(from: usize, n: usize) -> Vec<Vec<u8>> {
    (from..from + n)
        .map(|i| {
            let mut e = format!("{i:010} ").into_bytes();
            e.resize(256, b'.');
            e
        })
        .collect()
}

/// The disk as psdb mounts it: its committed batches and the paths of `tenant`'s entry bundles.
fn on_disk(rig: &Rig, tenant: &str) -> (u64, Vec<String>) {
    let image = rig.disk.borrow().image().to_vec();
    let (mut store, report) =
        psdb::Store::mount(RamDevice::from_image(image), psdb::Mode::ReadOnly).unwrap();
    let ns = store.open_namespace(tenant).unwrap();
    let bundles = store
        .list(ns, "tile/entries/")
        .unwrap()
        .map(|(p, _)| p.to_string())
        .collect();
    (report.batches, bundles)
}

/// No entry bundle of `tenant` on disk lies beyond `size` entries: nothing of a refused or
/// abandoned group was written.
fn nothing_beyond(rig: &Rig, tenant: &str, size: u64) {
    for b in on_disk(rig, tenant).1 {
        let t = tlog::tile::parse_tile_path(&b).unwrap();
        assert!(
            t.index() * 256 + u64::from(t.width()) <= size,
            "bundle {b} lies beyond the {size} committed entries"
        );
    }
}

#[test]
fn a_group_larger_than_one_region_is_stored_under_one_checkpoint() {
    let mut rig = boot();
    let t = "personnel";
    // 64 requests of 100 entries of 256 bytes, 32 in flight: each window is one group of
    // 825,600 entry bytes, 5 requests per call: 6 stages and a commit.
    let requests: Vec<Vec<Vec<u8>>> = (0..64).map(|r| entries_256(r * 100, 100)).collect();
    let (batches0, _) = on_disk(&rig, t);
    let s0 = sim(&mut rig).wire_stats();
    let got = rig.client.append_pipelined(t, &requests, 32);
    let s1 = sim(&mut rig).wire_stats();
    for (r, a) in got.iter().enumerate() {
        let Acked { indices, size } = a.as_ref().unwrap();
        assert_eq!(*indices, r as u64 * 100..r as u64 * 100 + 100);
        // Every request of a window is answered with its group's one checkpoint.
        assert_eq!(*size, (r as u64 / 32 + 1) * 3200);
    }
    assert_eq!(
        (
            s1.calls - s0.calls,
            s1.stages - s0.stages,
            s1.combined - s0.combined,
            s1.grouped - s0.grouped,
            s1.fallbacks - s0.fallbacks
        ),
        (14, 12, 2, 64, 0)
    );
    // One psdb batch (one checkpoint) per group.
    assert_eq!(on_disk(&rig, t).0, batches0 + 2);
    assert_eq!(read_all(&mut rig, t), requests.concat());
    assert_eq!(export_and_verify(&mut rig.client, t), 6400);
    let disk = rig.disk.clone();
    drop(rig);
    let mut again = boot_on(disk);
    assert_eq!(again.client.hello(t).unwrap().size, 6400);
    assert_eq!(again.client.append(t, &[b"after"]).unwrap(), [6400]);
}

/// A tenant close to its quota: a group of 16 requests of 100 entries (6 calls) is refused at
/// its commit, nothing of it is written, then each request goes alone: those that fit are
/// stored, the rest get `Full` and store nothing.
#[test]
fn a_group_in_several_calls_over_the_quota_falls_back_and_stores_what_fits() {
    let mut rig = boot_on(Rc::new(RefCell::new(RamDevice::new(12 << 11)))); // 12 MiB
    let t = "corporate";
    let used = |rig: &mut Rig| {
        let s = rig.client.status(t).unwrap();
        (s.disk_used, s.disk_quota, s.size)
    };
    // Whole bundles until about 250 KB are left: room for a few requests alone, not for the
    // group's 413 KB of entries.
    let bundle: Vec<Vec<u8>> = (0..256).map(|_| vec![b'w'; 200]).collect();
    let mut cost = 0;
    loop {
        let (u, quota, _) = used(&mut rig);
        if cost > 0 && quota - u < 250_000 + cost {
            break;
        }
        rig.client.append(t, &bundle).unwrap();
        cost = cost.max(used(&mut rig).0 - u);
    }
    let (u, quota, size) = used(&mut rig);
    assert!(quota - u >= 250_000, "room {}", quota - u);
    let requests: Vec<Vec<Vec<u8>>> = (0..16).map(|r| entries_256(r * 100, 100)).collect();
    let s0 = sim(&mut rig).wire_stats();
    let got = rig.client.append_pipelined(t, &requests, 16);
    let s1 = sim(&mut rig).wire_stats();
    let stored = got.iter().take_while(|a| a.is_ok()).count();
    assert!((1..16).contains(&stored), "{stored} stored alone");
    for (r, a) in got.iter().enumerate() {
        if r < stored {
            let first = size + r as u64 * 100;
            assert_eq!(a.as_ref().unwrap().indices, first..first + 100);
        } else {
            assert!(
                matches!(a, Err(ClientError::Remote(ErrorCode::Full))),
                "{r}: {a:?}"
            );
        }
    }
    // Three stages and a refused commit, then one call per request.
    assert_eq!(
        (
            s1.stages - s0.stages,
            s1.fallbacks - s0.fallbacks,
            s1.calls - s0.calls
        ),
        (3, 1, 4 + 16)
    );
    let n = size + stored as u64 * 100;
    nothing_beyond(&rig, t, n);
    let all = read_all(&mut rig, t);
    assert_eq!(all.len() as u64, n);
    assert_eq!(all[size as usize..], requests[..stored].concat());
    assert_eq!(export_and_verify(&mut rig.client, t), n);
    assert_eq!(rig.client.append("personnel", &[b"fine"]).unwrap(), [0]);
}

/// What a ledger said to a call made as the wire.
#[derive(Debug, PartialEq, Eq)]
enum Said {
    Staged(u64),
    Answer(Answer),
}

/// Calls `tenant`'s ledger as the wire does, a `call` of an append of `bundle` under `id`.
fn as_wire(rig: &mut Rig, tenant: &str, call: Call, id: u64, bundle: &[u8]) -> Said {
    let t = interface::tenant_index(tenant).unwrap();
    sim(rig)
        .as_pd("wire", || {
            let mut buf = vec![0u8; protocol::MAX_PAYLOAD];
            let n = Request {
                id,
                tenant,
                capability: &[],
                op: Op::Append { entries: bundle },
            }
            .encode(&mut buf)
            .unwrap();
            let region = wire_pd::REGIONS[t].get().unwrap();
            region.write(0, &buf[..n]).unwrap();
            let req = LedgerRequest { call, len: n };
            let m: Message = req.encode().call(interface::wire::LEDGERS[t]);
            match LedgerReply::decode(&req, m.info(), m.mrs()).unwrap() {
                LedgerReply::Staged { count } => Said::Staged(u64::from(count)),
                LedgerReply::Ok { len } => {
                    let mut out = vec![0u8; len];
                    region.read(0, &mut out).unwrap();
                    let r = Response::decode(&out).unwrap();
                    assert_eq!(r.id, id);
                    Said::Answer(match r.body {
                        Body::Appended { first, count, size } => Ok((first, count, size)),
                        Body::Error { code } => Err(code),
                        b => panic!("{b:?}"),
                    })
                }
                r => panic!("{r:?}"),
            }
        })
        .unwrap()
}

fn bundle_of(es: &[Vec<u8>]) -> Vec<u8> {
    let mut buf = vec![0u8; protocol::MAX_PAYLOAD];
    let mut len = 0;
    for e in es {
        assert!(push_entry(&mut buf, &mut len, e));
    }
    buf.truncate(len);
    buf
}

/// Against the real ledger and psdb: staged entries never reach the disk; any other call, a
/// bad or oversized stage, or another group's id discards them (the commit is then refused);
/// a group abandoned by a restart between its stages loses nothing acknowledged and nothing of
/// it is adopted; a full group commits once.
#[test]
fn staged_entries_reach_the_disk_only_with_their_commit() {
    use interface::ledger_call::MAX_STAGED;
    let mut rig = boot();
    let t = "corporate";
    let acked = entries_256(0, 10);
    rig.client.append(t, &acked).unwrap();
    // 300 entries per stage: more than a bundle, so an eager log would write one.
    let a = bundle_of(&entries_256(10, 300));
    let b = bundle_of(&entries_256(310, 300));
    let commit =
        |rig: &mut Rig, id| as_wire(rig, t, Call::Commit, id, &bundle_of(&entries_256(9, 1)));
    let refused = |code| Said::Answer(Err(code));

    // Staged: nothing on disk, not even a full bundle.
    let disk0 = on_disk(&rig, t);
    assert_eq!(as_wire(&mut rig, t, Call::Stage, 77, &a), Said::Staged(300));
    assert_eq!(as_wire(&mut rig, t, Call::Stage, 77, &b), Said::Staged(600));
    assert_eq!(on_disk(&rig, t), disk0);
    // Another tenant's ledger between the stages changes nothing: nothing of this group is in
    // psdb for its calls to disturb.
    rig.client.append("personnel", &[b"elsewhere"]).unwrap();
    // Any other call to this ledger discards the stage: the commit is refused.
    assert_eq!(rig.client.hello(t).unwrap().size, 10);
    assert_eq!(commit(&mut rig, 77), refused(ErrorCode::BadRequest));
    // A stage for another group, a bad stage, a commit under another id: discarded too.
    assert_eq!(as_wire(&mut rig, t, Call::Stage, 78, &a), Said::Staged(300));
    assert_eq!(
        as_wire(&mut rig, t, Call::Stage, 79, &a),
        refused(ErrorCode::BadRequest)
    );
    assert_eq!(commit(&mut rig, 78), refused(ErrorCode::BadRequest));
    assert_eq!(as_wire(&mut rig, t, Call::Stage, 80, &a), Said::Staged(300));
    assert_eq!(
        as_wire(&mut rig, t, Call::Stage, 80, &[0, 9, 1]),
        refused(ErrorCode::BadEntries)
    );
    assert_eq!(commit(&mut rig, 80), refused(ErrorCode::BadRequest));
    assert_eq!(as_wire(&mut rig, t, Call::Stage, 81, &a), Said::Staged(300));
    assert_eq!(commit(&mut rig, 82), refused(ErrorCode::BadRequest));
    assert_eq!(commit(&mut rig, 81), refused(ErrorCode::BadRequest));
    // Past the stage buffer: refused (and discarded).
    let big = bundle_of(&vec![vec![b'x'; 65_000]; 2]);
    let mut n = 0;
    let said = loop {
        match as_wire(&mut rig, t, Call::Stage, 83, &big) {
            Said::Staged(k) => {
                n += 2;
                assert_eq!(k, n);
            }
            other => break other,
        }
    };
    assert_eq!(n as usize, MAX_STAGED / big.len() * 2);
    assert_eq!(said, refused(ErrorCode::TooLarge));
    assert_eq!(commit(&mut rig, 83), refused(ErrorCode::BadRequest));
    assert_eq!(on_disk(&rig, t).0, disk0.0 + 1); // only personnel's append
    nothing_beyond(&rig, t, 10);

    // A plain request discards a stage as well, and is served as itself.
    assert_eq!(as_wire(&mut rig, t, Call::Stage, 84, &a), Said::Staged(300));
    assert_eq!(
        as_wire(
            &mut rig,
            t,
            Call::Request,
            85,
            &bundle_of(&entries_256(10, 1))
        ),
        Said::Answer(Ok((10, 1, 11)))
    );
    assert_eq!(commit(&mut rig, 84), refused(ErrorCode::BadRequest));

    // A whole group: one batch, contiguous indices from the stages on.
    let batches = on_disk(&rig, t).0;
    assert_eq!(as_wire(&mut rig, t, Call::Stage, 90, &a), Said::Staged(300));
    assert_eq!(as_wire(&mut rig, t, Call::Stage, 90, &b), Said::Staged(600));
    assert_eq!(commit(&mut rig, 90), Said::Answer(Ok((11, 601, 612))));
    assert_eq!(on_disk(&rig, t).0, batches + 1);
    let all = read_all(&mut rig, t);
    assert_eq!(all.len(), 612);
    assert_eq!(all[11..311], entries_256(10, 300)[..]);
    assert_eq!(all[611], entries_256(9, 1)[0]);

    // Restarted between two stages: everything acknowledged is there, nothing of the group.
    assert_eq!(as_wire(&mut rig, t, Call::Stage, 91, &a), Said::Staged(300));
    let disk1 = on_disk(&rig, t);
    let disk = rig.disk.clone();
    drop(rig);
    let mut again = boot_on(disk);
    assert_eq!(on_disk(&again, t), disk1);
    assert!(
        !again
            .client
            .stream_mut()
            .sim
            .console()
            .iter()
            .any(|l| l.contains("|ERROR")),
        "{:?}",
        again.client.stream_mut().sim.console()
    );
    assert_eq!(commit(&mut again, 91), refused(ErrorCode::BadRequest));
    assert_eq!(again.client.hello(t).unwrap().size, 612);
    nothing_beyond(&again, t, 612);
    assert_eq!(read_all(&mut again, t), all);
    assert_eq!(export_and_verify(&mut again.client, t), 612);
    assert_eq!(again.client.append(t, &[b"next"]).unwrap(), [612]);
}
