//! The client's own checks: an oversized entry stores nothing, a failed later request reports
//! what earlier ones stored, and objects are bounded by what the caller allows.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use protocol::client::{Client, ClientError};
use protocol::frame::encode_frame_vec;
use protocol::{Body, Decoder, ErrorCode, Op, Request, Response, MAX_ENCODED, MAX_PAYLOAD};

/// A box that stores appends (counting requests) until `fail_after` of them, then refuses
/// with `Storage`; objects are `object_total` bytes, served 10 at a time.
struct Scripted {
    decoder: Decoder<Vec<u8>>,
    inbox: VecDeque<u8>,
    requests: usize,
    appends: usize,
    size: u64,
    fail_after: usize,
    object_total: u64,
    /// Serve whole 10-byte chunks even past the stated total.
    overshoot: bool,
}

impl Write for Scripted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut reqs = Vec::new();
        self.decoder.feed(buf, |f| {
            if let Ok(p) = f {
                reqs.push(p.to_vec());
            }
        });
        for p in reqs {
            let req = Request::decode(&p).unwrap();
            self.requests += 1;
            let data = [7u8; 10];
            let body = match req.op {
                Op::Append { entries } => {
                    self.appends += 1;
                    if self.appends > self.fail_after {
                        Body::Error {
                            code: ErrorCode::Storage,
                        }
                    } else {
                        let count = protocol::msg::entries(entries).count() as u32;
                        let first = self.size;
                        self.size += u64::from(count);
                        Body::Appended {
                            first,
                            count,
                            size: self.size,
                        }
                    }
                }
                Op::GetObject { offset, .. } => {
                    let left = self.object_total.saturating_sub(offset).min(10) as usize;
                    Body::Object {
                        total: self.object_total,
                        offset,
                        data: &data[..if self.overshoot { 10 } else { left }],
                    }
                }
                _ => Body::Error {
                    code: ErrorCode::BadRequest,
                },
            };
            let mut out = vec![0u8; MAX_PAYLOAD];
            let n = Response { id: req.id, body }.encode(&mut out).unwrap();
            self.inbox.extend(encode_frame_vec(&out[..n]));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Scripted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.inbox.len());
        for (d, s) in buf.iter_mut().zip(self.inbox.drain(..n)) {
            *d = s;
        }
        Ok(n)
    }
}

fn scripted(fail_after: usize, object_total: u64) -> Client<Scripted> {
    scripted_with(fail_after, object_total, false)
}

fn scripted_with(fail_after: usize, object_total: u64, overshoot: bool) -> Client<Scripted> {
    Client::new(Scripted {
        decoder: Decoder::new(vec![0u8; MAX_ENCODED]),
        inbox: VecDeque::new(),
        requests: 0,
        appends: 0,
        size: 0,
        fail_after,
        object_total,
        overshoot,
    })
}

#[test]
fn an_oversized_entry_anywhere_sends_nothing() {
    let mut c = scripted(usize::MAX, 0);
    let mut entries = vec![vec![b'a'; 60_000]; 5];
    entries[3] = vec![b'b'; 70_000];
    let f = c.append_all("t", &entries).unwrap_err();
    assert!(
        matches!(
            f.error,
            ClientError::EntryTooLarge {
                index: 3,
                len: 70_000
            }
        ),
        "{f:?}"
    );
    assert!(f.stored.indices.is_empty());
    assert_eq!(c.stream_mut().requests, 0);
    // The largest entry the format allows goes through.
    entries[3] = vec![b'b'; 65_535];
    let a = c.append_all("t", &entries).unwrap();
    assert_eq!(a.indices, [0, 1, 2, 3, 4]);
    assert_eq!(a.size, 5);
}

#[test]
fn a_failed_later_request_reports_what_was_stored() {
    // 60,000-byte entries: two per request, so five entries take three requests.
    let mut c = scripted(1, 0);
    let entries = vec![vec![b'a'; 60_000]; 5];
    let f = c.append_all("t", &entries).unwrap_err();
    assert!(
        matches!(f.error, ClientError::Remote(ErrorCode::Storage)),
        "{f:?}"
    );
    assert_eq!(f.stored.indices, [0, 1]);
    assert_eq!(f.stored.size, 2);
    assert_eq!(c.stream_mut().appends, 2);
}

#[test]
fn objects_are_bounded() {
    let mut c = scripted(0, 1 << 40);
    let e = c.get_object_max("t", "tile/0/000", 8192).unwrap_err();
    assert!(
        matches!(e, ClientError::ObjectTooLarge { total, max: 8192, .. } if total == 1 << 40),
        "{e:?}"
    );
    assert_eq!(c.stream_mut().requests, 1);
    // Within the limit: fetched whole, chunk by chunk.
    let mut c = scripted(0, 35);
    assert_eq!(c.get_object_max("t", "x", 35).unwrap().unwrap(), [7u8; 35]);
    // More bytes than stated (35 stated, chunks of 10 would reach 40) are refused.
    let mut c = scripted_with(0, 35, true);
    let e = c.get_object("t", "x").unwrap_err();
    assert!(matches!(e, ClientError::Unexpected(_)), "{e:?}");
}
