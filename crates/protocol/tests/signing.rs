//! A client with an [`Authorizer`] puts its authorization in every request but a ping, and
//! leaves room for it in each append.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use protocol::client::{Authorizer, Client, ClientError};
use protocol::frame::encode_frame_vec;
use protocol::{Body, Decoder, Op, Request, Response, MAX_AUTH, MAX_ENCODED, MAX_PAYLOAD};

/// Records each request's (op name, authorization) and answers it.
struct Box_ {
    decoder: Decoder<Vec<u8>>,
    inbox: VecDeque<u8>,
    seen: Vec<(String, Vec<u8>, usize)>,
}

impl Write for Box_ {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut reqs = Vec::new();
        self.decoder.feed(buf, |f| {
            if let Ok(p) = f {
                reqs.push(p.to_vec());
            }
        });
        for p in reqs {
            let req = Request::decode(&p).unwrap();
            let name = format!("{:?}", req.op)
                .split([' ', '{'])
                .next()
                .unwrap()
                .to_string();
            self.seen.push((name, req.capability.to_vec(), p.len()));
            let body = match req.op {
                Op::Ping => Body::Pong,
                Op::Append { entries } => Body::Appended {
                    first: 0,
                    count: protocol::count_entries(entries).unwrap() as u32,
                    size: 1 << 20,
                },
                _ => Body::Checkpoint { note: b"cp" },
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

impl Read for Box_ {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inbox.read(buf)
    }
}

#[derive(Debug)]
struct Fixed(usize);
impl Authorizer for Fixed {
    fn authorize(&mut self, tenant: &str, op: &Op<'_>) -> Result<Vec<u8>, String> {
        if self.0 > MAX_AUTH {
            return Ok(vec![0; self.0]);
        }
        Ok(format!("{tenant}:{op:?}").into_bytes()[..self.0.min(8)].to_vec())
    }
}

fn client(auth: Option<usize>) -> Client<Box_> {
    let mut c = Client::new(Box_ {
        decoder: Decoder::new(vec![0; MAX_ENCODED]),
        inbox: VecDeque::new(),
        seen: Vec::new(),
    });
    if let Some(n) = auth {
        c.set_authorizer(Box::new(Fixed(n)));
    }
    c
}

#[test]
fn every_request_but_ping_carries_the_authorization() {
    let mut c = client(Some(8));
    c.ping().unwrap();
    c.checkpoint("corporate").unwrap();
    c.append("corporate", &[b"x"]).unwrap();
    c.append_pipelined("corporate", &[vec![b"y".to_vec()]], 4);
    let seen = &c.stream_mut().seen;
    assert_eq!(seen[0].0, "Ping");
    assert!(seen[0].1.is_empty());
    for (name, auth, _) in &seen[1..] {
        assert_eq!(auth, b"corporat", "{name}");
    }
    assert_eq!(seen.len(), 4);
    // Without an authorizer nothing changes: empty authorizations.
    let mut c = client(None);
    c.checkpoint("corporate").unwrap();
    assert!(c.stream_mut().seen[0].1.is_empty());
}

#[test]
fn appends_leave_room_for_the_authorization_and_oversized_ones_are_not_sent() {
    // Entries filling a frame: signed, each request still fits with MAX_AUTH bytes of
    // authorization.
    let entries: Vec<Vec<u8>> = (0..40).map(|_| vec![b'e'; 60_000]).collect();
    let mut c = client(Some(MAX_AUTH));
    // Fixed(MAX_AUTH) returns 8 bytes; the budget still reserves MAX_AUTH.
    c.append("corporate", &entries).unwrap();
    let frames = c.stream_mut().seen.len();
    let mut u = client(None);
    u.append("corporate", &entries).unwrap();
    assert!(frames >= u.stream_mut().seen.len());
    for (_, _, len) in &c.stream_mut().seen {
        assert!(*len + MAX_AUTH <= MAX_PAYLOAD);
    }
    let mut c = client(Some(MAX_AUTH + 1));
    let e = c.checkpoint("corporate").unwrap_err();
    assert!(matches!(e, ClientError::Unsigned(_)), "{e}");
    assert!(c.stream_mut().seen.is_empty());
}
