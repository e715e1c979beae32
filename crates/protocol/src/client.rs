//! A blocking client over any byte stream (a UNIX socket, TCP, a pipe to QEMU's serial port):
//! what `totebox client` and the whole-system tests use. Host only (feature `std`).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::string::String;
use std::vec::Vec;

use crate::frame::{encode_frame_vec, Decoder, FrameError, MAX_ENCODED, MAX_PAYLOAD};
use crate::msg::{push_entry, Body, ErrorCode, Op, Request, Response, RESPONSE_OVERHEAD};

/// Why a call failed.
#[derive(Debug)]
pub enum ClientError {
    /// The stream failed or closed.
    Io(io::Error),
    /// The box answered with an error.
    Remote(ErrorCode),
    /// The answer was not a valid response, or not the kind the request expects.
    Unexpected(String),
    /// The request would not fit in a frame.
    TooLarge,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "connection: {e}"),
            ClientError::Remote(c) => write!(f, "the box refused: {c}"),
            ClientError::Unexpected(s) => write!(f, "unexpected answer: {s}"),
            ClientError::TooLarge => f.write_str("request too large for one frame"),
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// What [`Client::hello`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The log's origin.
    pub origin: String,
    /// The checkpoint verifier key.
    pub vkey: String,
    /// The latest checkpoint's size.
    pub size: u64,
}

/// A client on `stream`. Requests are answered in order; frames that answer something else
/// (id 0: garbage this client or another sent earlier) are skipped.
#[derive(Debug)]
pub struct Client<S> {
    stream: S,
    decoder: Decoder<Vec<u8>>,
    frames: VecDeque<Result<Vec<u8>, FrameError>>,
    next_id: u64,
    /// Whether the leading delimiter has been sent on this stream.
    synced: bool,
}

impl<S: Read + Write> Client<S> {
    /// A client on a connected stream.
    pub fn new(stream: S) -> Self {
        Client {
            stream,
            decoder: Decoder::new(std::vec![0; MAX_ENCODED]),
            frames: VecDeque::new(),
            next_id: 1,
            synced: false,
        }
    }

    /// The stream (to send raw bytes in tests).
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Sends `op` for `tenant` and returns the payload of the response with its id.
    pub fn call_raw(&mut self, tenant: &str, op: Op<'_>) -> Result<Vec<u8>, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let req = Request {
            id,
            tenant,
            capability: &[],
            op,
        };
        let mut buf = std::vec![0; MAX_PAYLOAD];
        let n = req.encode(&mut buf).map_err(|_| ClientError::TooLarge)?;
        if !self.synced {
            // A lone delimiter first: a virtio-console stream outlives connections, so a
            // previous client killed mid-frame may have left a partial frame in the wire's
            // decoder. This ends it (answered as a damaged frame with id 0, which `call`
            // skips) instead of it swallowing our first request. Empty frames are ignored.
            self.stream.write_all(&[0])?;
            self.synced = true;
        }
        self.stream.write_all(&encode_frame_vec(&buf[..n]))?;
        self.stream.flush()?;
        loop {
            let payload = match self.next_frame()? {
                Ok(p) => p,
                Err(_) => continue, // a damaged frame: not ours to judge, the next one may be
            };
            let resp = Response::decode(&payload)
                .map_err(|e| ClientError::Unexpected(std::format!("{e}")))?;
            if resp.id == id {
                return Ok(payload);
            }
        }
    }

    /// Reads the next frame from the stream.
    pub fn next_frame(&mut self) -> Result<Result<Vec<u8>, FrameError>, ClientError> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(f) = self.frames.pop_front() {
                return Ok(f);
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(ClientError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the box closed the connection",
                )));
            }
            let frames = &mut self.frames;
            self.decoder
                .feed(&chunk[..n], |f| frames.push_back(f.map(<[u8]>::to_vec)));
        }
    }

    fn call<T>(
        &mut self,
        tenant: &str,
        op: Op<'_>,
        f: impl FnOnce(Body<'_>) -> Option<T>,
    ) -> Result<T, ClientError> {
        let payload = self.call_raw(tenant, op)?;
        let resp =
            Response::decode(&payload).map_err(|e| ClientError::Unexpected(std::format!("{e}")))?;
        match resp.body {
            Body::Error { code } => Err(ClientError::Remote(code)),
            body => {
                let what = std::format!("{body:?}");
                f(body).ok_or(ClientError::Unexpected(what))
            }
        }
    }

    /// Liveness check.
    pub fn ping(&mut self) -> Result<(), ClientError> {
        self.call("", Op::Ping, |b| matches!(b, Body::Pong).then_some(()))
    }

    /// The tenant log's origin, key and size.
    pub fn hello(&mut self, tenant: &str) -> Result<Hello, ClientError> {
        self.call(tenant, Op::Hello, |b| match b {
            Body::Hello { origin, vkey, size } => Some(Hello {
                origin: origin.into(),
                vkey: vkey.into(),
                size,
            }),
            _ => None,
        })
    }

    /// Appends `entries` in as few requests as fit in frames (each request is one durable
    /// checkpoint); returns the index of each entry.
    pub fn append<E: AsRef<[u8]>>(
        &mut self,
        tenant: &str,
        entries: &[E],
    ) -> Result<Vec<u64>, ClientError> {
        let budget = MAX_PAYLOAD - RESPONSE_OVERHEAD - tenant.len();
        let mut out = Vec::with_capacity(entries.len());
        let mut buf = std::vec![0u8; budget];
        let mut i = 0;
        while i < entries.len() {
            let (mut len, start) = (0usize, i);
            while i < entries.len() && push_entry(&mut buf, &mut len, entries[i].as_ref()) {
                i += 1;
            }
            if i == start {
                return Err(ClientError::TooLarge);
            }
            let want = (i - start) as u32;
            let (first, count) = self.call(
                tenant,
                Op::Append {
                    entries: &buf[..len],
                },
                |b| match b {
                    Body::Appended { first, count, .. } => Some((first, count)),
                    _ => None,
                },
            )?;
            if count != want {
                return Err(ClientError::Unexpected(std::format!(
                    "appended {count} of {want} entries"
                )));
            }
            // Box-supplied: an index range that does not fit a u64 is an error, not a panic.
            let end = first.checked_add(u64::from(count)).ok_or_else(|| {
                ClientError::Unexpected(std::format!("appended {count} entries from {first}"))
            })?;
            out.extend(first..end);
        }
        Ok(out)
    }

    /// Committed entries from `since`, at most `max` (all of them, over as many requests as
    /// needed, until `max` or the end of the log).
    pub fn read(
        &mut self,
        tenant: &str,
        since: u64,
        max: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, ClientError> {
        let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut next = since;
        while (out.len() as u64) < max {
            let want = u32::try_from(max - out.len() as u64).unwrap_or(u32::MAX);
            let got = self.call(
                tenant,
                Op::Read {
                    since: next,
                    max: want,
                },
                |b| match b {
                    Body::Entries { first, entries } => {
                        let mut v = Vec::new();
                        for e in crate::msg::entries(entries) {
                            v.push(e.ok()?.to_vec());
                        }
                        Some((first, v))
                    }
                    _ => None,
                },
            )?;
            let (first, batch) = got;
            if first != next {
                return Err(ClientError::Unexpected(std::format!(
                    "entries from {first}, asked from {next}"
                )));
            }
            if batch.is_empty() {
                break;
            }
            for e in batch {
                out.push((next, e));
                next = next.checked_add(1).ok_or_else(|| {
                    ClientError::Unexpected("entry index past the largest u64".into())
                })?;
            }
        }
        Ok(out)
    }

    /// The latest signed checkpoint note.
    pub fn checkpoint(&mut self, tenant: &str) -> Result<Vec<u8>, ClientError> {
        self.call(tenant, Op::Checkpoint, |b| match b {
            Body::Checkpoint { note } => Some(note.to_vec()),
            _ => None,
        })
    }

    /// A whole object of the tenant's log (fetched in chunks); `None` if absent.
    pub fn get_object(&mut self, tenant: &str, path: &str) -> Result<Option<Vec<u8>>, ClientError> {
        let mut out = Vec::new();
        loop {
            let r = self.call(
                tenant,
                Op::GetObject {
                    path,
                    offset: out.len() as u64,
                },
                |b| match b {
                    Body::Object {
                        total,
                        offset,
                        data,
                    } => Some((total, offset, data.to_vec())),
                    _ => None,
                },
            );
            let (total, offset, data) = match r {
                Err(ClientError::Remote(ErrorCode::NotFound)) => return Ok(None),
                r => r?,
            };
            if offset != out.len() as u64 || (data.is_empty() && offset < total) {
                return Err(ClientError::Unexpected("object chunk out of order".into()));
            }
            out.extend_from_slice(&data);
            if out.len() as u64 >= total {
                return Ok(Some(out));
            }
        }
    }
}
