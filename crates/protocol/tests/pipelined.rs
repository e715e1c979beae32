//! `Client::append_pipelined` against a scripted box: no more than `window` requests are in
//! flight, answers are matched to requests by id (whatever order they come in, skipping frames
//! for no request in flight), a request the client cannot send is refused without being sent
//! and without stopping the others, the box's refusal of one request is that request's alone,
//! and a connection that fails mid-way fails every request not yet answered.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};

use protocol::client::{Acked, Client, ClientError};
use protocol::frame::encode_frame_vec;
use protocol::{Body, Decoder, ErrorCode, Op, Request, Response, MAX_ENCODED, MAX_ENTRY};

/// A box that stores appends, answering the requests of each write in reverse order (after
/// a frame for id 0 and a damaged one), refusing appends whose first entry is `b"refuse"`, and
/// closing the connection once it has received `close_after` requests (a later write fails,
/// reads end once its answers are read).
struct Scripted {
    decoder: Decoder<Vec<u8>>,
    inbox: VecDeque<u8>,
    size: u64,
    /// What each id was told.
    told: BTreeMap<u64, Result<(u64, u32), ErrorCode>>,
    received: usize,
    /// End offset (in bytes ever queued) of each answer frame; bytes the client has read.
    ends: VecDeque<usize>,
    queued: usize,
    consumed: usize,
    answers_read: usize,
    /// Most requests received whose answers the client had not read.
    max_in_flight: usize,
    writes: usize,
    close_after: usize,
}

impl Scripted {
    fn new(close_after: usize) -> Self {
        Scripted {
            decoder: Decoder::new(vec![0u8; MAX_ENCODED]),
            inbox: VecDeque::new(),
            size: 0,
            told: BTreeMap::new(),
            received: 0,
            ends: VecDeque::new(),
            queued: 0,
            consumed: 0,
            answers_read: 0,
            max_in_flight: 0,
            writes: 0,
            close_after,
        }
    }

    fn queue(&mut self, frame: &[u8], counted: bool) {
        self.inbox.extend(frame);
        self.queued += frame.len();
        if counted {
            self.ends.push_back(self.queued);
        }
    }
}

impl Write for Scripted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.received >= self.close_after {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        self.writes += 1;
        let mut reqs = Vec::new();
        self.decoder.feed(buf, |f| {
            if let Ok(p) = f {
                reqs.push(p.to_vec());
            }
        });
        if reqs.is_empty() {
            return Ok(buf.len());
        }
        // Noise first: an error for no request, and a damaged frame.
        let mut out = vec![0u8; 64];
        let n = Response::error(0, ErrorCode::BadFrame)
            .encode(&mut out)
            .unwrap();
        self.queue(&encode_frame_vec(&out[..n]), false);
        let mut damaged = encode_frame_vec(b"\x01\x02\x03\x04\x05");
        damaged[1] ^= 0x10;
        self.queue(&damaged, false);
        let mut answers = Vec::new();
        for p in reqs {
            self.received += 1;
            let req = Request::decode(&p).unwrap();
            let Op::Append { entries } = req.op else {
                panic!("not an append")
            };
            let es: Vec<&[u8]> = protocol::entries(entries).map(|e| e.unwrap()).collect();
            let body = if es.first() == Some(&&b"refuse"[..]) {
                self.told.insert(req.id, Err(ErrorCode::Full));
                Body::Error {
                    code: ErrorCode::Full,
                }
            } else {
                let first = self.size;
                self.size += es.len() as u64;
                self.told.insert(req.id, Ok((first, es.len() as u32)));
                Body::Appended {
                    first,
                    count: es.len() as u32,
                    size: self.size,
                }
            };
            let n = Response { id: req.id, body }.encode(&mut out).unwrap();
            answers.push(encode_frame_vec(&out[..n]));
        }
        let in_flight = self.received - self.answers_read;
        self.max_in_flight = self.max_in_flight.max(in_flight);
        for a in answers.iter().rev() {
            self.queue(a, true);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Scripted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inbox.is_empty() && self.received >= self.close_after {
            return Ok(0); // closed
        }
        // A few bytes at a time: answers arrive in pieces.
        let n = buf.len().min(self.inbox.len()).min(7);
        for (d, s) in buf.iter_mut().zip(self.inbox.drain(..n)) {
            *d = s;
        }
        self.consumed += n;
        while self.ends.front().is_some_and(|&e| e <= self.consumed) {
            self.ends.pop_front();
            self.answers_read += 1;
        }
        Ok(n)
    }
}

fn entry(i: usize) -> Vec<u8> {
    format!("entry {i}").into_bytes()
}

#[test]
fn answers_are_matched_by_id_within_the_window() {
    let mut c = Client::new(Scripted::new(usize::MAX));
    // 50 requests of 1, 2 or 3 entries.
    let requests: Vec<Vec<Vec<u8>>> = (0..50)
        .map(|r| (0..=r % 3).map(|e| entry(r * 10 + e)).collect())
        .collect();
    let got = c.append_pipelined("corporate", &requests, 8);
    assert_eq!(got.len(), 50);
    let told: Vec<(u64, u32)> = c
        .stream_mut()
        .told
        .values()
        .map(|t| *t.as_ref().unwrap())
        .collect();
    // Ids are given in request order, so the box's record by id is in request order too.
    for (k, (r, t)) in got.iter().zip(&told).enumerate() {
        let Acked { indices, size } = r.as_ref().unwrap();
        assert_eq!(
            (indices.start, (indices.end - indices.start) as u32),
            *t,
            "request {k}"
        );
        assert_eq!(indices.end - indices.start, requests[k].len() as u64);
        assert!(*size >= indices.end);
    }
    let s = c.stream_mut();
    assert_eq!(s.size, requests.iter().map(Vec::len).sum::<usize>() as u64);
    assert!(s.max_in_flight <= 8, "{} in flight", s.max_in_flight);
    assert_eq!(s.max_in_flight, 8, "the client did not pipeline");
    // Writes carry several requests each, not one.
    assert!(s.writes < 50, "{} writes for 50 requests", s.writes);
    // A window of 0 is a window of 1.
    let mut c = Client::new(Scripted::new(usize::MAX));
    let got = c.append_pipelined("corporate", &requests[..5], 0);
    assert!(got.iter().all(Result::is_ok));
    assert_eq!(c.stream_mut().max_in_flight, 1);
}

#[test]
fn a_request_that_fails_fails_alone() {
    let mut c = Client::new(Scripted::new(usize::MAX));
    let big = vec![b'x'; MAX_ENTRY + 1];
    let huge: Vec<Vec<u8>> = vec![vec![b'y'; 60_000]; 3]; // over one frame
    let requests: Vec<Vec<Vec<u8>>> = vec![
        vec![entry(0)],
        vec![entry(1), big.clone()],
        vec![b"refuse".to_vec()],
        huge,
        vec![entry(2), entry(3)],
    ];
    let got = c.append_pipelined("personnel", &requests, 4);
    assert_eq!(got[0].as_ref().unwrap().indices, 0..1);
    assert!(
        matches!(got[1], Err(ClientError::EntryTooLarge { index: 1, len }) if len == big.len()),
        "{:?}",
        got[1]
    );
    assert!(matches!(got[2], Err(ClientError::Remote(ErrorCode::Full))));
    assert!(matches!(got[3], Err(ClientError::TooLarge)));
    assert_eq!(got[4].as_ref().unwrap().indices, 1..3);
    // Only the three that could be sent were.
    assert_eq!(c.stream_mut().received, 3);
    // The client carries on as before.
    assert_eq!(c.append("personnel", &[entry(4)]).unwrap(), [3]);
}

#[test]
fn a_failed_connection_fails_every_request_not_answered() {
    // The box takes 5 requests or a little more (the rest of the write that reaches 5), answers
    // them, then is gone.
    let mut c = Client::new(Scripted::new(5));
    let requests: Vec<Vec<Vec<u8>>> = (0..12).map(|i| vec![entry(i)]).collect();
    let got = c.append_pipelined("property", &requests, 4);
    let answered = got.iter().take_while(|r| r.is_ok()).count();
    assert_eq!(answered, c.stream_mut().received);
    assert!((5..12).contains(&answered), "{answered} answered");
    for (i, r) in got.iter().enumerate().take(answered) {
        assert_eq!(r.as_ref().unwrap().indices, i as u64..i as u64 + 1);
    }
    // Those in the write that failed may have reached the box: the stream's end is their
    // error. Those never written say so, with the write's error.
    let mut not_sent = 0;
    for r in &got[answered..] {
        let Err(ClientError::Io(e)) = r else {
            panic!("{r:?}")
        };
        if e.to_string().starts_with("not sent") {
            assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
            not_sent += 1;
        } else {
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        }
    }
    assert!(
        not_sent >= 1 && not_sent < 12 - answered,
        "{not_sent} marked not sent"
    );
}
