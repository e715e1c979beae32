//! Frames and messages: round trips, and every kind of bad input a client or a line can produce.

use protocol::frame::{encode_frame_vec, max_encoded_len};
use protocol::msg::{count_entries, push_entry};
use protocol::*;

/// A small deterministic generator (tests never use wall-clock or OS randomness).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn bytes(&mut self, n: usize, zeros: bool) -> Vec<u8> {
        (0..n)
            .map(|_| {
                let b = self.next() as u8;
                if zeros || b != 0 {
                    b
                } else {
                    1
                }
            })
            .collect()
    }
}

fn decode_all(input: &[u8]) -> Vec<Result<Vec<u8>, FrameError>> {
    let mut d = Decoder::new(vec![0u8; MAX_ENCODED]);
    let mut out = Vec::new();
    d.feed(input, |f| out.push(f.map(<[u8]>::to_vec)));
    out
}

#[test]
fn frames_round_trip_at_every_cobs_boundary() {
    let mut rng = Lcg(1);
    for len in [
        0, 1, 2, 3, 4, 250, 251, 253, 254, 255, 256, 507, 508, 509, 1000, 70_000,
    ] {
        for zeros in [false, true] {
            let payload = rng.bytes(len, zeros);
            let frame = encode_frame_vec(&payload);
            assert_eq!(frame.last(), Some(&0));
            assert!(
                !frame[..frame.len() - 1].contains(&0),
                "COBS body has no zero"
            );
            assert!(frame.len() - 1 <= max_encoded_len(len + 4));
            assert_eq!(decode_all(&frame), vec![Ok(payload.clone())], "len {len}");
        }
    }
    // All-zero and all-0xFF payloads.
    for payload in [vec![0u8; 600], vec![0xFF; 600]] {
        assert_eq!(decode_all(&encode_frame_vec(&payload)), vec![Ok(payload)]);
    }
}

#[test]
fn largest_payload_fits_and_one_byte_more_is_oversize() {
    let mut rng = Lcg(2);
    // Non-zero bytes maximise the COBS overhead.
    let max = rng.bytes(MAX_PAYLOAD, false);
    assert_eq!(decode_all(&encode_frame_vec(&max)), vec![Ok(max.clone())]);
    let mut body = encode_frame_vec(&max);
    body.pop();
    body.extend(std::iter::repeat_n(7u8, MAX_ENCODED)); // run on past the limit
    body.push(0);
    let next = encode_frame_vec(b"after");
    body.extend_from_slice(&next);
    assert_eq!(
        decode_all(&body),
        vec![Err(FrameError::Oversize), Ok(b"after".to_vec())]
    );
}

#[test]
fn byte_at_a_time_equals_bulk() {
    let mut rng = Lcg(3);
    let mut stream = Vec::new();
    let mut want = Vec::new();
    for i in 0..50 {
        let n = (rng.next() % 700) as usize;
        let p = rng.bytes(n, i % 2 == 0);
        stream.extend_from_slice(&encode_frame_vec(&p));
        want.push(Ok(p));
    }
    let mut d = Decoder::new(vec![0u8; MAX_ENCODED]);
    let mut got = Vec::new();
    for b in &stream {
        d.feed(std::slice::from_ref(b), |f| got.push(f.map(<[u8]>::to_vec)));
    }
    assert_eq!(got, want);
    assert_eq!(decode_all(&stream), want);
}

#[test]
fn garbage_truncation_and_damage_are_dropped_and_the_stream_resyncs() {
    let good = encode_frame_vec(b"hello");
    // Garbage without zeros, then a delimiter: one bad frame, then the good one.
    let mut s = b"\x05garbage\xff\xfe".to_vec();
    s.push(0);
    s.extend_from_slice(&good);
    let got = decode_all(&s);
    assert_eq!(got.len(), 2);
    assert!(got[0].is_err());
    assert_eq!(got[1], Ok(b"hello".to_vec()));

    // Truncated: a frame that lost its tail (the delimiter of the next one ends it).
    let mut s = good[..good.len() - 3].to_vec();
    s.push(0);
    s.extend_from_slice(&good);
    let got = decode_all(&s);
    assert!(got[0].is_err());
    assert_eq!(got[1], Ok(b"hello".to_vec()));

    // Every single-byte corruption of the body is caught.
    for i in 0..good.len() - 1 {
        for flip in [1u8, 0x80] {
            let mut bad = good.clone();
            bad[i] ^= flip;
            if bad[i] == 0 {
                continue; // becomes a delimiter: two frames, both checked below
            }
            let got = decode_all(&bad);
            assert!(got.iter().all(|f| f.is_err()), "corruption at {i} passed");
        }
    }
    // A lone byte and repeated delimiters.
    assert_eq!(decode_all(&[0, 0, 0]), vec![]);
    assert_eq!(decode_all(&[3, 0]), vec![Err(FrameError::BadEncoding)]);
    assert_eq!(decode_all(&[2, 1, 0]), vec![Err(FrameError::Truncated)]);
    assert_eq!(
        decode_all(&[5, 1, 2, 3, 4, 0]),
        vec![Err(FrameError::BadChecksum)]
    );
}

#[test]
fn random_streams_never_panic() {
    let mut rng = Lcg(4);
    let mut d = Decoder::new(vec![0u8; 1024]); // a small buffer: overflow often
    for _ in 0..2000 {
        let n = (rng.next() % 3000) as usize;
        let chunk = rng.bytes(n, true);
        d.feed(&chunk, |f| {
            if let Ok(p) = f {
                let _ = Request::decode(p);
                let _ = Response::decode(p);
            }
        });
    }
}

#[test]
fn requests_and_responses_round_trip() {
    let mut bundle = vec![0u8; 64];
    let mut len = 0;
    assert!(push_entry(&mut bundle, &mut len, b"one"));
    assert!(push_entry(&mut bundle, &mut len, b""));
    assert!(push_entry(&mut bundle, &mut len, b"three"));
    assert_eq!(count_entries(&bundle[..len]), Some(3));
    assert_eq!(count_entries(&bundle[..len - 1]), None);
    let got: Vec<&[u8]> = entries(&bundle[..len]).map(|e| e.unwrap()).collect();
    assert_eq!(got, [&b"one"[..], b"", b"three"]);
    assert!(
        !push_entry(&mut bundle, &mut len, &[1; 100]),
        "does not fit"
    );

    let reqs = [
        Op::Ping,
        Op::Hello,
        Op::Append {
            entries: &bundle[..len],
        },
        Op::Read { since: 7, max: 9 },
        Op::Checkpoint,
        Op::GetObject {
            path: "tile/0/x001/234.p/5",
            offset: 1 << 40,
        },
        Op::Status,
    ];
    let mut buf = vec![0u8; MAX_PAYLOAD];
    for op in reqs {
        let r = Request {
            id: u64::MAX,
            tenant: "corporate",
            capability: &[],
            op,
        };
        let n = r.encode(&mut buf).unwrap();
        assert_eq!(Request::decode(&buf[..n]).unwrap(), r);
        assert_eq!(peek_request_id(&buf[..n]), u64::MAX);
        // Trailing bytes and truncation are refused.
        buf[n] = 0;
        assert_eq!(Request::decode(&buf[..n + 1]), Err(CodecError::Invalid));
        for cut in 0..n {
            assert!(Request::decode(&buf[..cut]).is_err() || cut == n);
        }
    }
    let bodies = [
        Body::Pong,
        Body::Hello {
            origin: "o",
            vkey: "k",
            size: 3,
        },
        Body::Appended {
            first: 1,
            count: 2,
            size: 3,
        },
        Body::Entries {
            first: 5,
            entries: &bundle[..len],
        },
        Body::Checkpoint { note: b"note\n" },
        Body::Object {
            total: 10,
            offset: 2,
            data: b"abc",
        },
        Body::Error {
            code: ErrorCode::TooLarge,
        },
        Body::Status {
            size: 1,
            disk_used: 2,
            disk_quota: u64::MAX,
            index_used: 4,
            index_quota: 5,
            volume_free: 6,
            audit_disk_used: 7,
            audit_disk_quota: 8,
            damaged: true,
        },
    ];
    for body in bodies {
        let r = Response { id: 3, body };
        let n = r.encode(&mut buf).unwrap();
        assert_eq!(Response::decode(&buf[..n]).unwrap(), r);
    }
    // Error codes travel as their discriminant byte; unknown ones are refused.
    let n = Response::error(1, ErrorCode::AuditFailed)
        .encode(&mut buf)
        .unwrap();
    assert_eq!(buf[n - 1], 10);
    buf[n - 1] = 99;
    assert!(Response::decode(&buf[..n]).is_err());
    // Numbering is append-only: 1..=15 before access control, 16..=34 its refusals.
    for c in 1..=34u8 {
        let code = ErrorCode::try_from(c).unwrap();
        assert_eq!(u8::from(code), c);
        assert!(!code.to_string().is_empty());
    }
    assert!(ErrorCode::try_from(0).is_err() && ErrorCode::try_from(35).is_err());
    assert_eq!(ErrorCode::Unsigned as u8, 16);
    assert_eq!(ErrorCode::LastAdmin as u8, 34);
    // A response that does not fit is an error, not a panic.
    let big = vec![1u8; 100];
    let r = Response {
        id: 1,
        body: Body::Object {
            total: 100,
            offset: 0,
            data: &big,
        },
    };
    assert_eq!(r.encode(&mut [0u8; 50]), Err(CodecError::TooLarge));
}

/// `Op::Status` and `Body::Status` were added last: every earlier message keeps its bytes (a
/// variant is its index, then its fields), the new ones take the next index, and an index past
/// the last is refused, not misread.
#[test]
fn status_is_appended_without_moving_earlier_encodings() {
    let mut buf = vec![0u8; 256];
    let req = |op| Request {
        id: 5,
        tenant: "t",
        capability: &[],
        op,
    };
    // id 5, tenant "t" (length 1), capability (length 0), then the variant index.
    let n = req(Op::Checkpoint).encode(&mut buf).unwrap();
    assert_eq!(&buf[..n], [5, 1, b't', 0, 4]);
    let n = req(Op::GetObject {
        path: "p",
        offset: 1,
    })
    .encode(&mut buf)
    .unwrap();
    assert_eq!(&buf[..n], [5, 1, b't', 0, 5, 1, b'p', 1]);
    let n = req(Op::Status).encode(&mut buf).unwrap();
    assert_eq!(&buf[..n], [5, 1, b't', 0, 6]);
    // The next index is no request (a newer client's op reaching this box: BadMessage).
    assert_eq!(
        Request::decode(&[5, 1, b't', 0, 7]),
        Err(CodecError::Invalid)
    );
    // Responses: Error stays index 6, Status is 7, 8 is refused.
    let n = Response::error(9, ErrorCode::Full)
        .encode(&mut buf)
        .unwrap();
    assert_eq!(&buf[..n], [9, 6, 13]);
    let status = Response {
        id: 9,
        body: Body::Status {
            size: 1,
            disk_used: 2,
            disk_quota: 3,
            index_used: 4,
            index_quota: 5,
            volume_free: 6,
            audit_disk_used: 7,
            audit_disk_quota: 8,
            damaged: false,
        },
    };
    let n = status.encode(&mut buf).unwrap();
    assert_eq!(&buf[..n], [9, 7, 1, 2, 3, 4, 5, 6, 7, 8, 0]);
    assert_eq!(Response::decode(&buf[..n]).unwrap(), status);
    assert!(Response::decode(&[9, 8]).is_err());
    // A damaged flag other than 0 or 1 is no response.
    assert!(Response::decode(&[9, 7, 1, 2, 3, 4, 5, 6, 7, 8, 2]).is_err());
}

/// The authorization envelope: a version-tagged pair of notes, bounded, and an unknown version
/// (a later variant) or trailing bytes refused rather than misread.
#[test]
fn authorization_round_trip_and_bounds() {
    use protocol::{Authorization, MAX_AUTH, MAX_AUTH_NOTE};
    let mut buf = vec![0u8; MAX_AUTH + 64];
    let a = Authorization::V1 {
        request: b"req",
        capability: b"",
    };
    let n = a.encode(&mut buf).unwrap();
    assert_eq!(&buf[..n], [0, 3, b'r', b'e', b'q', 0]);
    assert_eq!(Authorization::decode(&buf[..n]).unwrap(), a);
    // Version 2 does not exist yet: refused.
    assert_eq!(Authorization::decode(&[1, 0, 0]), Err(CodecError::Invalid));
    assert_eq!(
        Authorization::decode(&[0, 0, 0, 9]),
        Err(CodecError::Invalid)
    );
    assert!(Authorization::decode(&[]).is_err());
    // Notes over the bound are refused both ways.
    let big = vec![b'x'; MAX_AUTH_NOTE + 1];
    let a = Authorization::V1 {
        request: &big,
        capability: b"",
    };
    let n = postcard::to_slice(&a, &mut buf).unwrap().len();
    assert_eq!(Authorization::decode(&buf[..n]), Err(CodecError::TooLarge));
    // The largest allowed pair fits MAX_AUTH.
    let max = vec![b'x'; MAX_AUTH_NOTE];
    let a = Authorization::V1 {
        request: &max,
        capability: &max,
    };
    let n = a.encode(&mut buf).unwrap();
    assert!(n <= MAX_AUTH);
    assert_eq!(Authorization::decode(&buf[..n]).unwrap(), a);
}
