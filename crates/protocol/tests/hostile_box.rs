//! The client against a box that answers with values chosen to overflow: errors, not panics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use protocol::client::{Client, ClientError};
use protocol::frame::encode_frame_vec;
use protocol::{Body, Decoder, Request, Response, MAX_ENCODED, MAX_PAYLOAD};

/// A box that answers every request with `answer(request id)`.
struct Hostile<F: FnMut(u64, &mut Vec<u8>) -> usize> {
    decoder: Decoder<Vec<u8>>,
    inbox: VecDeque<u8>,
    answer: F,
}

impl<F: FnMut(u64, &mut Vec<u8>) -> usize> Write for Hostile<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut ids = Vec::new();
        self.decoder.feed(buf, |f| {
            if let Ok(r) = f.map(|p| Request::decode(p).map(|r| r.id)) {
                ids.extend(r.ok());
            }
        });
        for id in ids {
            let mut out = vec![0u8; MAX_PAYLOAD];
            let n = (self.answer)(id, &mut out);
            self.inbox.extend(encode_frame_vec(&out[..n]));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<F: FnMut(u64, &mut Vec<u8>) -> usize> Read for Hostile<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.inbox.len());
        for (d, s) in buf.iter_mut().zip(self.inbox.drain(..n)) {
            *d = s;
        }
        Ok(n)
    }
}

fn hostile(
    body: impl Fn() -> Body<'static>,
) -> Client<Hostile<impl FnMut(u64, &mut Vec<u8>) -> usize>> {
    Client::new(Hostile {
        decoder: Decoder::new(vec![0u8; MAX_ENCODED]),
        inbox: VecDeque::new(),
        answer: move |id, out: &mut Vec<u8>| Response { id, body: body() }.encode(out).unwrap(),
    })
}

#[test]
fn an_append_range_past_u64_is_an_error() {
    let mut c = hostile(|| Body::Appended {
        first: u64::MAX - 1,
        count: 3,
        size: u64::MAX,
    });
    let r = c.append("t", &[b"a", b"b", b"c"]);
    assert!(matches!(r, Err(ClientError::Unexpected(_))), "{r:?}");
}

#[test]
fn entry_indices_past_u64_are_an_error() {
    const ENTRIES: &[u8] = &[0, 1, b'a', 0, 1, b'b'];
    let mut c = hostile(|| Body::Entries {
        first: u64::MAX,
        entries: ENTRIES,
    });
    let r = c.read("t", u64::MAX, 10);
    assert!(matches!(r, Err(ClientError::Unexpected(_))), "{r:?}");
}
